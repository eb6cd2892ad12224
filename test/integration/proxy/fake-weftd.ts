/**
 * A stand-in for weftd's discovery endpoint: a real HTTPS server (certificates from pkg/certs,
 * signed by a throwaway mesh root) speaking pkg/discovery/protocol.ts. Tests push configs, cut
 * streams and look at the requests it saw. `POST /v1/certificates` signs with weftd's real CA
 * code (signWorkloadCsr) under the same root, for the identity of the bearer token
 * (`identities`: token → namespace/service account), with `certTtlMs`; `certsDown` answers 503
 * as a weftd without a CA does.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { signWorkloadCsr, spiffeId } from '../../../pkg/certs/workload.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import {
  CERTIFICATES_PATH,
  DISCOVERY_CONTENT_TYPE,
  DISCOVERY_PATH,
  encodeMessage,
  PING_INTERVAL_MS,
  parseDiscoveryQuery,
  type DiscoveryMessage,
  type DiscoveryRequest,
} from '../../../pkg/discovery/protocol.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

export const GOOD_TOKEN = 'token-for-test';

export interface FakeWeftd {
  port: number;
  address: string;
  /** Files for the proxy: the mesh root, a good token, a bad token. */
  rootPath: string;
  tokenPath: string;
  badTokenPath: string;
  requests: { query: DiscoveryRequest; authorized: boolean }[];
  /** The config sent to every new stream; null = send nothing (the proxy stays unready). */
  config: ProxyConfig | null;
  /** Sets the config and pushes it to the open streams. */
  push(config: ProxyConfig): void;
  send(m: DiscoveryMessage): void;
  /** Destroys every open stream (a broken connection, as a weftd restart or a middlebox would). */
  cut(): void;
  openStreams(): number;
  close(): Promise<void>;
  /** Bearer token → identity the CA signs for; GOOD_TOKEN is default/default. */
  identities: Map<string, { namespace: string; serviceAccount: string }>;
  certTtlMs: number;
  /** true: the certificate endpoint answers 503 (weftd without a usable CA). */
  certsDown: boolean;
  /** Certificates issued so far. */
  issued: number;
  /** The mesh root (and its key: tests sign peers' certificates with it). */
  ca: KeyPairPem;
  trustDomain: string;
  /** Extra POST endpoints by path (e.g. weftd's real global rate-limit handler). */
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
}

const certs = new Map<string, { root: string; cert: string; key: string; ca: KeyPairPem }>();

function testCerts(names: string[]): { root: string; cert: string; key: string; ca: KeyPairPem } {
  const key = names.join(',');
  const cached = certs.get(key);
  if (cached) return cached;
  const now = new Date();
  const ca = createCA({ commonName: 'weft test mesh root', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: names, ttlMs: 3600_000, now });
  const made = { root: ca.certPem, cert: leaf.certPem, key: leaf.keyPem, ca };
  certs.set(key, made);
  return made;
}

/** `host`: where to listen (default 127.0.0.1, reached as localhost); an IP gets an IP SAN. */
export async function fakeWeftd(config: ProxyConfig | null, host = '127.0.0.1'): Promise<FakeWeftd> {
  const c = testCerts(host === '127.0.0.1' ? ['localhost'] : [host]);
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-fake-weftd-'));
  const rootPath = path.join(dir, 'root-cert.pem');
  const tokenPath = path.join(dir, 'token');
  const badTokenPath = path.join(dir, 'bad-token');
  writeFileSync(rootPath, c.root);
  writeFileSync(tokenPath, `${GOOD_TOKEN}\n`);
  writeFileSync(badTokenPath, 'not-a-valid-token\n');
  const streams = new Set<ServerResponse>();
  const sockets = new Set<net.Socket>();
  const server = https.createServer({ cert: c.cert, key: c.key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://weftd');
    if (url.pathname === CERTIFICATES_PATH && req.method === 'POST') return void certificate(req, res);
    const extra = f.routes.get(url.pathname);
    if (extra !== undefined && req.method === 'POST') return void extra(req, res);
    if (url.pathname !== DISCOVERY_PATH) return void res.writeHead(404).end();
    let query: DiscoveryRequest;
    try {
      query = parseDiscoveryQuery(url.searchParams);
    } catch (err) {
      return void res.writeHead(400).end((err as Error).message);
    }
    const authorized = req.headers.authorization === `Bearer ${GOOD_TOKEN}`;
    f.requests.push({ query, authorized });
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({
          code: 'WEFT_UNAUTHENTICATED',
          message: 'the bearer token is not valid (TokenReview)',
        }),
      );
    }
    res.writeHead(200, { 'content-type': DISCOVERY_CONTENT_TYPE });
    res.flushHeaders();
    streams.add(res);
    res.once('close', () => streams.delete(res));
    if (f.config !== null)
      res.write(encodeMessage({ type: 'config', version: f.config.version, config: f.config }));
  });
  async function certificate(req: import('node:http').IncomingMessage, res: ServerResponse): Promise<void> {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const id = f.identities.get(token);
    let body = '';
    for await (const chunk of req as AsyncIterable<Buffer>) body += chunk.toString();
    if (!id) return void res.writeHead(401).end('{"code":"WEFT_UNAUTHENTICATED"}');
    if (f.certsDown) return void res.writeHead(503).end('{"code":"WEFT_CA_NOT_READY"}');
    try {
      const { csr } = JSON.parse(body) as { csr: string };
      const leaf = signWorkloadCsr(c.ca, csr, {
        spiffeId: spiffeId(f.trustDomain, id.namespace, id.serviceAccount),
        ttlMs: f.certTtlMs,
        now: new Date(),
      });
      f.issued++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ certChain: [leaf], rootCert: c.root }));
    } catch (err) {
      res
        .writeHead(isWeftError(err, 'WEFT_CSR_INVALID') ? 400 : 500)
        .end(JSON.stringify({ message: String(err) }));
    }
  }
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  // weftd pings every stream; without it a proxy takes a quiet stream for dead after three
  // intervals and reconnects (benchmarks that run longer than 45 s measured that, not weft)
  const pinger = setInterval(() => f.send({ type: 'ping' }), PING_INTERVAL_MS).unref();
  const f: FakeWeftd = {
    port,
    address: `${host === '127.0.0.1' ? 'localhost' : host}:${port}`,
    rootPath,
    tokenPath,
    badTokenPath,
    requests: [],
    config,
    push(cfg) {
      f.config = cfg;
      f.send({ type: 'config', version: cfg.version, config: cfg });
    },
    send(m) {
      for (const s of streams) s.write(encodeMessage(m));
    },
    cut() {
      for (const s of streams) s.destroy();
      for (const s of sockets) s.destroy();
    },
    openStreams: () => streams.size,
    identities: new Map([[GOOD_TOKEN, { namespace: 'default', serviceAccount: 'default' }]]),
    routes: new Map(),
    certTtlMs: 3600_000,
    certsDown: false,
    issued: 0,
    ca: c.ca,
    trustDomain: 'cluster.local',
    close: () =>
      new Promise((r) => {
        clearInterval(pinger);
        f.cut();
        server.close(() => r());
        rmSync(dir, { recursive: true, force: true });
      }),
  };
  return f;
}
