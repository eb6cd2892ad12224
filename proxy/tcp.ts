/**
 * Plain TCP pass-through for non-HTTP ports: each downstream connection is piped to one endpoint
 * of the listener's cluster (load-balanced, outlier-aware). Connect failures close the client
 * connection (flag UF in the log); either side closing or resetting tears down the other.
 */
import net from 'node:net';
import type { Logger } from '../pkg/log/index.js';
import type { CompiledTcpListener } from './compile/compile.js';

export function pipeTcp(client: net.Socket, l: CompiledTcpListener, log: Logger): void {
  const cluster = l.cluster;
  const ep = cluster?.pick(null, null) ?? null;
  if (cluster === null || ep === null) {
    log.warn('TCP connection refused', {
      listener: l.name,
      cluster: l.clusterName,
      flag: cluster === null ? 'NC' : 'UH',
    });
    client.destroy();
    return;
  }
  const m = l.metrics;
  m.opened++;
  ep.active++;
  const upstream = net.connect({ host: ep.address, port: ep.port, timeout: cluster.limits.connectTimeoutMs });
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    cluster.record(ep, 200);
  });
  upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
  upstream.on('data', (c: Buffer) => {
    m.received += c.length;
  });
  client.on('data', (c: Buffer) => {
    m.sent += c.length;
  });
  client.pipe(upstream);
  upstream.pipe(client);
  let closed = false;
  const close = (err?: Error): void => {
    if (closed) return;
    closed = true;
    ep.active--;
    m.closed++;
    if (!connected) {
      cluster.record(ep, 0);
      log.warn('TCP upstream connect failed', {
        listener: l.name,
        endpoint: ep.key,
        flag: 'UF',
        error: err?.message,
      });
    }
    client.destroy();
    upstream.destroy();
  };
  client.once('close', () => close());
  upstream.once('close', () => close());
  client.once('error', (e) => close(e));
  upstream.once('error', (e) => close(e));
}
