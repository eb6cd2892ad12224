/**
 * Loopback fixtures for proxy integration tests: real upstream HTTP servers on 127.0.0.1 with
 * programmable behaviour, an in-process ProxyServer on ephemeral ports, and a raw HTTP client
 * (node:http, so the Host header can be set freely).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { ProxyServer, type ProxyOptions } from '../../../proxy/server.js';
import { configFromText } from '../../../proxy/config/load.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

export interface Upstream {
  name: string;
  port: number;
  /** Requests seen, in order. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  /** TCP connections accepted so far. */
  accepted: number;
  /** Replace to change behaviour; default answers 200 "<name>". */
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;
  close(): Promise<void>;
}

export async function upstream(name: string): Promise<Upstream> {
  const u: Upstream = {
    name,
    port: 0,
    seen: [],
    accepted: 0,
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(name);
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy(); // including upgraded (WebSocket) sockets
        server.close(() => r());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      u.handler(req, res, body);
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    u.accepted++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket) => {
    u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}

export interface Started {
  proxy: ProxyServer;
  port: number;
  admin: number;
  metrics: number;
  health: number;
  stop(): Promise<void>;
}

const quiet = createLogger('proxy-test', { silent: true });

export async function startProxy(
  config: ProxyConfig | string,
  opts: Partial<ProxyOptions> = {},
): Promise<Started> {
  const cfg = typeof config === 'string' ? configFromText(config, 'test.yaml').config : config;
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    adminPort: 0,
    metricsPort: 0,
    healthPort: 0,
    logger: quiet,
    drainMs: 2000,
    onExit: () => undefined,
    ...opts,
  });
  await proxy.apply(cfg);
  await proxy.startAux();
  const p = proxy.ports();
  const listenerName = Object.keys(p).find((k) => !['admin', 'metrics', 'health'].includes(k))!;
  return {
    proxy,
    port: p[listenerName]!,
    admin: p.admin!,
    metrics: p.metrics!,
    health: p.health!,
    stop: () => proxy.shutdown(),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function request(
  port: number,
  opts: {
    host?: string;
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: http.Agent | false;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: { host: opts.host ?? 'reviews:9080', ...opts.headers },
        agent: opts.agent ?? agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(opts.body);
  });
}

/** Sends raw bytes and returns everything the proxy answered before closing (or after ms). */
export function raw(port: number, data: string, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    s.write(data);
    setTimeout(() => s.destroy(), ms).unref();
  });
}

/** ServiceEntry for `reviews` with one endpoint per upstream, labelled version=<name>. */
export function reviewsEntry(ups: Upstream[], extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
${ups.map((u) => `  - {address: 127.0.0.1, ports: {http: ${u.port}}, labels: {version: ${u.name}}}`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
${extra}
  subsets:
${ups.map((u) => `  - {name: ${u.name}, labels: {version: ${u.name}}}`).join('\n')}
`;
}

export function vs(http: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
${http}
`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counts responses by `x-upstream` over n sequential-ish requests (16 at a time). */
export async function distribution(
  port: number,
  n: number,
  opts: Parameters<typeof request>[1] = {},
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, n - i) }, () => request(port, opts)));
    for (const r of batch) {
      const k = String(r.headers['x-upstream'] ?? r.status);
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }
  return counts;
}

/** Deterministic PRNG (mulberry32): split tests use a fixed seed so they cannot flake. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fails with a name instead of hanging: `ms` is a bound far beyond any loopback exchange, not a timing assertion. */
export function bounded<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms (a hang)`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}
