/**
 * A stand-in for weftd's discovery endpoint: a real HTTPS server (certificates from pkg/certs,
 * signed by a throwaway mesh root) speaking pkg/discovery/protocol.ts. Tests push configs, cut
 * streams and look at the requests it saw.
 */
import https from 'node:https';
import type { ServerResponse } from 'node:http';
import type net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import {
  DISCOVERY_CONTENT_TYPE,
  DISCOVERY_PATH,
  encodeMessage,
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
}

const certs = new Map<string, { root: string; cert: string; key: string }>();

function testCerts(names: string[]): { root: string; cert: string; key: string } {
  const key = names.join(',');
  const cached = certs.get(key);
  if (cached) return cached;
  const now = new Date();
  const ca = createCA({ commonName: 'weft test mesh root', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: names, ttlMs: 3600_000, now });
  const made = { root: ca.certPem, cert: leaf.certPem, key: leaf.keyPem };
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
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
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
    close: () =>
      new Promise((r) => {
        f.cut();
        server.close(() => r());
        rmSync(dir, { recursive: true, force: true });
      }),
  };
  return f;
}
