/**
 * WebSocket (HTTP/1.1 Upgrade) proxying: the route is chosen exactly as for a normal request,
 * then the request head is replayed to one endpoint over a fresh TCP connection and both
 * sockets are piped; the upstream's 101 (or refusal) flows back unchanged. Local failures get
 * a plain HTTP response with a flag before the socket closes.
 */
import net from 'node:net';
import http, { type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  ActionType,
  metricsOf,
  pickDest,
  resolveCluster,
  type CompiledConfig,
  type CompiledRoute,
} from './compile/compile.js';
import type { MetricsRegistry } from './telemetry/metrics.js';

function refuse(socket: Duplex, status: number, flag: string, detail: string): void {
  const body = `${detail} [flag ${flag}]\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\nx-weft-response-flags: ${flag}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  route: CompiledRoute | null,
  rand: () => number,
  metrics: MetricsRegistry,
  cfg: CompiledConfig,
): void {
  socket.on('error', () => socket.destroy());
  if (route === null) {
    cfg.unknownMetrics.record(404, 'NR', 0, 0, 0);
    return refuse(socket, 404, 'NR', 'no route matched the upgrade request');
  }
  if (route.type !== ActionType.Route)
    return refuse(socket, 404, 'NR', 'the matched route has no destination for an upgrade');
  const dest = pickDest(route, route.dests.length === 1 ? 0 : rand());
  const cluster = resolveCluster(dest);
  if (cluster === null) return refuse(socket, 503, 'NC', `cluster ${dest.clusterName} is not defined`);
  const ep = cluster.pick(null, null);
  if (ep === null) return refuse(socket, 503, 'UH', `cluster ${dest.clusterName} has no healthy endpoint`);
  // mesh mTLS / TLS origination as for requests (proxy/upstream/tls.ts); ready after the handshake
  const opened = cluster.connectorFor(ep)?.(ep.address, ep.port) ?? {
    socket: net.connect({ host: ep.address, port: ep.port }),
    readyEvent: 'connect' as const,
  };
  const upstream = opened.socket;
  let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (route.rewriteAuthority !== null && raw[i]!.toLowerCase() === 'host')
      lines += `Host: ${route.rewriteAuthority}\r\n`;
    else lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  let connected = false;
  upstream.once(opened.readyEvent, () => {
    connected = true;
    upstream.write(lines + '\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
    metricsOf(dest, metrics).record(101, '-', 0, 0, 0);
  });
  upstream.once('error', (err) => {
    if (connected) return socket.destroy(); // mid-stream: bytes already flowed, just cut
    cluster.record(ep, 0);
    if (socket.writable) refuse(socket, 503, 'UF', `upstream connect error: ${err.message}`);
    metrics.inc('weft_proxy_upgrade_failures_total');
  });
  socket.once('close', () => upstream.destroy());
  upstream.once('close', () => socket.destroy());
}
