/**
 * What one idle keep-alive connection costs a Node server like weftd (issue #19: weftd's RSS with
 * a fleet connected is mostly connections): a server child process answers one POST on each of
 * N connections (one keep-alive agent each, as a proxy's ACK sender), then reports its RSS and
 * heap per connection, TLS against plaintext. Memory, not time: load on the machine does not
 * change the figures much.
 *   npx tsx bench/weftd/conn-memory.ts        N=1000 MODES=tls,plain
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCA, issueServing } from '../../pkg/certs/index.js';

interface Usage {
  rss: number;
  heap: number;
}

function serve(mode: string): void {
  const now = new Date();
  const ca = createCA({ commonName: 'bench', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    req.resume();
    req.on('end', () => res.end('{"result":"ack"}\n'));
  };
  const keepAliveTimeout = 3600_000;
  const server =
    mode === 'tls'
      ? https.createServer({ cert: leaf.certPem, key: leaf.keyPem, keepAliveTimeout }, answer)
      : http.createServer({ keepAliveTimeout }, answer);
  server.listen(0, '127.0.0.1', () =>
    process.send!({ port: (server.address() as AddressInfo).port, ca: ca.certPem }),
  );
  process.on('message', () => {
    global.gc?.();
    const m = process.memoryUsage();
    process.send!({ rss: m.rss, heap: m.heapUsed } satisfies Usage);
  });
}

async function measure(mode: string, n: number): Promise<Record<string, number>> {
  const child = fork(new URL(import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, CONN_MEMORY_SERVER: mode },
  });
  const next = <T>(send?: boolean): Promise<T> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as T));
      if (send) child.send('measure');
    });
  const { port, ca } = await next<{ port: number; ca: string }>();
  await new Promise((r) => setTimeout(r, 500));
  const before = await next<Usage>(true);
  const agents: http.Agent[] = [];
  const post = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const agent =
        mode === 'tls'
          ? new https.Agent({ keepAlive: true, maxSockets: 1, ca })
          : new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      const req = (mode === 'tls' ? https : http).request(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/discovery/ack', agent },
        (res) => res.resume().on('end', () => resolve()),
      );
      req.on('error', reject);
      req.end(JSON.stringify({ version: 'v'.repeat(32), nonce: 'n'.repeat(32) }));
    });
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, post));
  await new Promise((r) => setTimeout(r, 1000));
  const after = await next<Usage>(true);
  child.kill();
  for (const a of agents) a.destroy();
  return {
    connections: n,
    rssBeforeMB: before.rss / 1e6,
    rssAfterMB: after.rss / 1e6,
    rssPerConnectionKB: (after.rss - before.rss) / n / 1024,
    heapPerConnectionKB: (after.heap - before.heap) / n / 1024,
  };
}

if (process.env.CONN_MEMORY_SERVER) serve(process.env.CONN_MEMORY_SERVER);
else {
  const n = Number(process.env.N ?? 1000);
  const out: Record<string, Record<string, number>> = {};
  for (const mode of (process.env.MODES ?? 'tls,plain').split(',')) out[mode] = await measure(mode, n);
  console.log(JSON.stringify(out, null, 2));
}
