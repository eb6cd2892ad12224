/**
 * HTTP/2 against HTTP/1.1 through one in-process proxy, in the same run (ADR 0019):
 *   - `h1`: keep-alive HTTP/1.1 clients → proxy → an HTTP/1.1 upstream (the baseline),
 *   - `h2`: one h2c session with CONCURRENCY streams → proxy (compatibility API, the same router)
 *     → an HTTP/2 upstream session pool,
 *   - `h2-direct`: the same h2c client straight to the HTTP/2 upstream (what the hop costs).
 * Reports requests per second and the ratios h2/h1 and h2/h2-direct. Ratios, not absolute
 * numbers: client, proxy and upstreams share the machine (and the proxy shares the client's
 * event loop here, as in tcp-routes.ts).
 *
 *   npx tsx bench/proxy/h2.ts          # DURATION_S (3) per phase, CONCURRENCY (32)
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createLogger } from '../../pkg/log/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { ProxyServer } from '../../proxy/server.js';

const DURATION_S = Number(process.env.DURATION_S ?? 3);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const BODY = Buffer.alloc(256, 'x');

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

function config(h1Port: number, h2Port: number): ProxyConfig {
  const vhost = (name: string, cluster: string) => ({
    name,
    domains: [name],
    routes: [
      {
        action: { type: 'route' as const, destinations: [{ cluster, weight: 100 }] },
        retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
      },
    ],
  });
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'bench',
    listeners: [
      {
        name: 'http',
        protocol: 'HTTP',
        address: '127.0.0.1',
        port: 0,
        virtualHosts: [vhost('h1', 'h1'), vhost('h2', 'h2')],
      },
    ],
    clusters: [
      { name: 'h1', endpoints: [{ address: '127.0.0.1', port: h1Port }] },
      { name: 'h2', http2: true, endpoints: [{ address: '127.0.0.1', port: h2Port }] },
    ],
  };
}

async function loop(run: () => Promise<void>): Promise<number> {
  const end = Date.now() + DURATION_S * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await run();
        done++;
      }
    }),
  );
  return done / DURATION_S;
}

function h1Rate(port: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const r = http.request(
        { host: '127.0.0.1', port, path: '/', headers: { host: 'h1' }, agent },
        (res) => {
          res.resume();
          res.on('end', () => resolve());
        },
      );
      r.on('error', reject);
      r.end();
    });
  return loop(one).finally(() => agent.destroy());
}

async function h2Rate(port: number, authority: string): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':path': '/', ':authority': authority });
      s.on('error', reject);
      s.resume();
      s.on('end', () => resolve());
      s.end();
    });
  try {
    return await loop(one);
  } finally {
    session.close();
  }
}

async function main(): Promise<void> {
  const h1 = http.createServer((_req, res) => res.end(BODY));
  const h2 = http2.createServer((_req, res) => res.end(BODY));
  const h1Port = await listen(h1);
  const h2Port = await listen(h2);
  const proxy = new ProxyServer({
    adminPort: null,
    metricsPort: null,
    healthPort: null,
    logger: createLogger('bench', { silent: true }),
    accessLogSink: { write: () => true } as unknown as NodeJS.WritableStream,
    onExit: () => undefined,
  });
  await proxy.apply(config(h1Port, h2Port));
  const port = proxy.ports().http!;
  // warm-up (JIT, pools)
  await Promise.all([h1Rate(port), h2Rate(port, 'h2')].map((p) => p.catch(() => 0)));
  const rows: Record<string, number> = {};
  rows.h1 = await h1Rate(port);
  rows.h2 = await h2Rate(port, 'h2');
  rows['h2-direct'] = await h2Rate(h2Port, 'h2');
  const out = {
    durationS: DURATION_S,
    concurrency: CONCURRENCY,
    reqPerS: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(v)])),
    ratioH2toH1: Number((rows.h2! / rows.h1!).toFixed(2)),
    ratioH2toDirect: Number((rows.h2! / rows['h2-direct']!).toFixed(2)),
  };
  console.log(JSON.stringify(out, null, 2));
  await proxy.shutdown(Date.now());
  h1.close();
  h2.close();
}

void main();
