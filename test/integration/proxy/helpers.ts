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

/**
 * A recording upstream. `upgrade: false` is an unmodified node:http server: it has no 'upgrade'
 * listener, so it answers an Upgrade request like any other (200), as most apps do.
 */
export async function upstream(
  name: string,
  opts: { upgrade?: boolean; maxHeaderSize?: number } = {},
): Promise<Upstream> {
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
  const server = http.createServer({ maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024 }, (req, res) => {
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
  if (opts.upgrade !== false)
    server.on('upgrade', (req, socket, head: Buffer) => {
      u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\nConnection: Upgrade\r\n\r\n`,
      );
      if (head.length > 0) socket.write(`echo:${head.toString()}`);
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

// the one sleep of the test tree, re-exported for the files that import it from here
export { sleep } from '../../support/wait.js';

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

/** A connection or handshake that must fail: its error code and message (throws if it succeeded). */
export async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`;
  }
  throw new Error('expected the connection to fail');
}

/** The proxy's Prometheus text from its metrics port. */
export async function metricsText(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/stats/prometheus`);
  return r.text();
}

/**
 * The value of the first sample of `name` in Prometheus text whose labels include every one of
 * `labels` (`reason="no_sni_match"`); 0 when there is none (a counter never incremented is not
 * rendered).
 */
export function metricValue(text: string, name: string, ...labels: string[]): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

export interface RawResponse {
  status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/**
 * A client connection driven byte by byte: write any bytes (pipelined requests, tunnel data),
 * read the proxy's HTTP/1.1 responses one at a time (Content-Length, chunked, or until close;
 * after a 101 the rest is tunnel data). Every wait gives up after `waitMs` with what it has.
 */
export class RawConn {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  write(data: string): void {
    this.socket.write(data);
  }

  /** Bytes received and not yet consumed as a response (tunnel data after a 101). */
  pending(): string {
    return this.buf.toString('latin1');
  }

  /** The next complete response, or null if the connection closed (or waitMs passed) first. */
  async response(waitMs = 5000): Promise<RawResponse | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const r = this.parse();
      if (r !== undefined) return r;
      if (this.closed || Date.now() > deadline) return null;
      await this.next(deadline);
    }
  }

  /** Waits until the unconsumed bytes satisfy `pred` (tunnel data), the close, or waitMs. */
  async until(pred: (pending: string) => boolean, waitMs = 5000): Promise<string> {
    const deadline = Date.now() + waitMs;
    while (!pred(this.pending()) && !this.closed && Date.now() <= deadline) await this.next(deadline);
    return this.pending();
  }

  /** Resolves once the peer closed the connection (or waitMs passed); true if it closed. */
  async closedByPeer(waitMs = 5000): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    while (!this.closed && Date.now() <= deadline) await this.next(deadline);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private next(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  /** A complete response taken off the buffer; undefined when more bytes are needed. */
  private parse(): RawResponse | null | undefined {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buf.toString('latin1', 0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      const k = line.slice(0, c).trim().toLowerCase();
      const v = line.slice(c + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    let rest = this.buf.subarray(end + 4);
    let body: Buffer;
    if (status === 101 || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let i = 0;
      for (;;) {
        const nl = rest.indexOf('\r\n', i);
        if (nl < 0) return undefined;
        const size = parseInt(rest.toString('latin1', i, nl), 16);
        if (size === 0) {
          const fin = rest.indexOf('\r\n\r\n', nl);
          if (fin < 0) return undefined;
          rest = rest.subarray(fin + 4);
          break;
        }
        if (rest.length < nl + 2 + size + 2) return undefined;
        parts.push(rest.subarray(nl + 2, nl + 2 + size));
        i = nl + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (rest.length < n) return undefined;
      body = rest.subarray(0, n);
      rest = rest.subarray(n);
    } else {
      if (!this.closed) return undefined; // delimited by the close
      body = rest;
      rest = Buffer.alloc(0);
    }
    this.buf = rest;
    if (status >= 100 && status < 200 && status !== 101) return this.parse();
    return { status, headers, body: body.toString() };
  }
}

/** A request head as a client would write it (Host reviews:9080 unless given). */
export function head(method: string, path: string, headers: Record<string, string> = {}): string {
  const all = { Host: 'reviews:9080', ...headers };
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}
