/**
 * Plain TCP pass-through for non-HTTP ports: each downstream connection is piped to one endpoint
 * of the listener's cluster (load-balanced, outlier-aware). Connect failures close the client
 * connection (flag UF in the log); either side closing or resetting tears down the other.
 */
import net from 'node:net';
import type { Logger } from '../pkg/log/index.js';
import type { CompiledTcpListener } from './compile/compile.js';
import type { TcpGroup } from './telemetry/metrics.js';
import type { ClusterRuntime } from './upstream/cluster.js';
import type { HashInput } from './upstream/lb.js';
import type { AccessLog } from './telemetry/accesslog.js';
import { MESH_ALPN_TCP, type OpenedConnection } from './upstream/tls.js';

export function pipeTcp(
  client: net.Socket,
  l: CompiledTcpListener,
  log: Logger,
  accessLog: AccessLog | null = null,
): void {
  const target = { name: l.name, clusterName: l.clusterName, cluster: l.cluster, metrics: l.metrics };
  pipeToCluster(client, target, Buffer.alloc(0), log, { accessLog });
}

/** Where pipeToCluster sends a connection: a cluster and the istio_tcp_* counters of its destination. */
export interface TcpTarget {
  /** The listener or outbound service, for logs. */
  name: string;
  clusterName: string;
  cluster: ClusterRuntime | null;
  metrics: TcpGroup;
}

/** What else a connection carries: where it was going, and what its access log line says. */
export interface PipeContext {
  /** The captured original destination (ORIGINAL_DST clusters). */
  originalDst?: { address: string; port: number } | null;
  /** Set when access logging is on: one line per connection when it closes. */
  accessLog?: AccessLog | null;
  /** `outbound` (sidecar, gateway). */
  direction?: string;
  route?: string;
  sni?: string | null;
}

/**
 * Pipes `client` (with `head`, bytes already read from it, first) to one endpoint of the
 * target's cluster. Istio's byte counters: `received` is what the client sent (the request
 * direction), `sent` what went back to it (the response direction).
 */
export function pipeToCluster(
  client: net.Socket,
  t: TcpTarget,
  head: Buffer,
  log: Logger,
  ctx: PipeContext = {},
): void {
  const start = Date.now();
  const cluster = t.cluster;
  const ep = cluster?.pick(connectionHashInput(client, ctx.originalDst ?? null), null) ?? null;
  if (cluster === null || ep === null) {
    const flag = cluster === null ? 'NC' : 'UH';
    log.warn('TCP connection refused', { listener: t.name, cluster: t.clusterName, flag });
    ctx.accessLog?.write(l4LogEntry(client, t, ctx, { start, flag, received: 0, sent: 0, upstream: null }));
    client.destroy();
    return;
  }
  const m = t.metrics;
  let received = head.length;
  let sent = 0;
  m.opened++;
  m.received += head.length;
  ep.active++;
  // mesh mTLS (ALPN `istio`: the peer's inbound pipes it as TCP) or TLS origination, as for HTTP
  const opened = cluster.connectorFor(ep)?.(ep.address, ep.port, MESH_ALPN_TCP);
  const upstream = splice(
    client,
    opened ?? { host: ep.address, port: ep.port },
    cluster.limits.connectTimeoutMs,
    head,
    ({ connected, error }) => {
      ep.active--;
      m.closed++;
      const flag = connected ? '-' : 'UF';
      ctx.accessLog?.write(l4LogEntry(client, t, ctx, { start, flag, received, sent, upstream: ep.key }));
      if (connected) return;
      cluster.record(ep, 0);
      log.warn('TCP upstream connect failed', {
        listener: t.name,
        endpoint: ep.key,
        flag: 'UF',
        error: error?.message,
      });
    },
  );
  upstream.once(opened?.readyEvent ?? 'connect', () => cluster.record(ep, 200));
  upstream.on('data', (c: Buffer) => {
    sent += c.length;
    m.sent += c.length;
  });
  client.on('data', (c: Buffer) => {
    received += c.length;
    m.received += c.length;
  });
}

/** One access log line for an L4 connection, in the shape of the HTTP and inbound lines. */
export function l4LogEntry(
  client: net.Socket,
  t: Pick<TcpTarget, 'name' | 'clusterName'> | null,
  ctx: PipeContext,
  end: { start: number; flag: string; received: number; sent: number; upstream: string | null },
): Record<string, unknown> {
  return {
    start_time: new Date(end.start).toISOString(),
    direction: ctx.direction ?? 'outbound',
    protocol: 'TCP',
    response_flags: end.flag,
    bytes_received: end.received,
    bytes_sent: end.sent,
    duration: Date.now() - end.start,
    upstream_host: end.upstream,
    upstream_cluster: t?.clusterName ?? null,
    listener: t?.name ?? null,
    route_name: ctx.route ?? null,
    requested_server_name: ctx.sni ?? null,
    downstream_remote_address: `${(client.remoteAddress ?? '').replace(/^::ffff:/, '')}:${client.remotePort ?? 0}`,
  };
}

/**
 * What a TCP connection offers the balancers: its source IP (consistentHash `useSourceIp`) and
 * where it was going (ORIGINAL_DST clusters: a sidecar's ServiceEntry with resolution NONE). A
 * connection has no request: header, cookie and query hashes find nothing and pick at random.
 */
function connectionHashInput(
  client: net.Socket,
  originalDst: { address: string; port: number } | null,
): HashInput {
  return {
    view: { method: '', path: '', query: '', target: '', authority: '', scheme: '', port: 0, headers: {} },
    sourceIp: (client.remoteAddress ?? '').replace(/^::ffff:/, ''),
    originalDst,
  };
}

/** How a spliced connection ended: whether the upstream ever connected, and the first error. */
export interface SpliceEnd {
  connected: boolean;
  error?: Error | undefined;
}

/**
 * Opens `target` (or takes a connection already opened, e.g. TLS by proxy/upstream/tls.ts, ready
 * at its `readyEvent`) and joins it to `client` both ways (`head`, bytes already read from the
 * client, goes first). A connect that takes longer than `connectTimeoutMs` fails; either side
 * closing or failing tears down both, and `onEnd` runs exactly once. Shared by TCP listeners and
 * the sidecar's pass-through, so both release sockets the same way.
 */
export function splice(
  client: net.Socket,
  target: { host: string; port: number; localAddress?: string | undefined } | OpenedConnection,
  connectTimeoutMs: number,
  head: Buffer,
  onEnd: (end: SpliceEnd) => void,
): net.Socket {
  const opened: OpenedConnection =
    'socket' in target
      ? target
      : { socket: net.connect({ ...target, timeout: connectTimeoutMs }), readyEvent: 'connect' };
  const upstream = opened.socket;
  upstream.setTimeout(connectTimeoutMs);
  let connected = false;
  upstream.once(opened.readyEvent, () => {
    connected = true;
    upstream.setTimeout(0);
  });
  upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
  if (head.length > 0) upstream.write(head);
  join(client, upstream, (error) => onEnd({ connected, error }));
  return upstream;
}

/**
 * Joins two connections both ways; either side closing or failing tears down both, and `onEnd`
 * runs exactly once with the first error. splice() and the upgrade tunnels (upgrade.ts) use it.
 */
export function join(client: net.Socket, upstream: net.Socket, onEnd: (error?: Error) => void): void {
  client.pipe(upstream);
  upstream.pipe(client);
  // a side that already sent its FIN (while its first bytes were sniffed) never emits 'end' again,
  // so pipe() would never pass it on: pass it on here. The other direction stays open (half-close)
  if (client.readableEnded) upstream.end();
  if (upstream.readableEnded) client.end();
  let ended = false;
  const end = (error?: Error): void => {
    if (ended) return;
    ended = true;
    client.destroy();
    upstream.destroy();
    onEnd(error);
  };
  client.once('close', () => end());
  upstream.once('close', () => end());
  client.once('error', end);
  upstream.once('error', end);
}
