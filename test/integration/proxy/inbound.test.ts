/**
 * The sidecar's inbound listener on loopback, with real TLS: a mesh root and workload
 * certificates made here (pkg/certs), the original destination injected (the netns test covers
 * the real one), real HTTP and TCP apps behind it.
 *
 * STRICT / PERMISSIVE / DISABLE and port-level modes; XFCC in Istio's format (and a client's own
 * XFCC replaced); reporter="destination" metrics with the principals and the security policy;
 * access log lines; TCP pipes with istio_tcp_*; and the bad input of issue #13 (a certificate of
 * another CA, an expired one, none, garbage, a ClientHello without SNI or with a foreign ALPN):
 * each refused and counted with its reason, none affecting the next good request.
 * AuthorizationPolicies (translated as weftd does) are enforced here with the peer's mTLS identity.
 */
import { expect } from 'chai';
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import type { Logger } from '../../../pkg/log/index.js';
import {
  PROXY_CONFIG_API_VERSION,
  type Inbound,
  type InboundPort,
  type ProxyConfig,
} from '../../../pkg/proxyconfig/types.js';
import { InboundListener } from '../../../proxy/inbound/listener.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { DETECTION_TIMEOUT_METRIC } from '../../../proxy/sidecar/capture.js';
import { AccessLog } from '../../../proxy/telemetry/accesslog.js';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import { leafWithSans, meshRoot, TestIdentity, workloadCert } from './mesh-identity.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';
import type { RequestAuthentication } from '../../../pkg/api/requestauthentication.js';
import { requestAuthnFor } from '../../../pkg/translate/requestauthn.js';
import { jwks, makeKey, signJwt } from '../../support/jwt.js';
import { h2Exchange } from '../../support/h2.js';
import { sleep } from './helpers.js';
import { MAX_HEADERS_COUNT } from '../../../proxy/http1-limits.js';

const SELF = 'spiffe://cluster.local/ns/demo/sa/reviews';
const PEER = 'spiffe://cluster.local/ns/shop/sa/productpage';
const STRICT = 'PeerAuthentication demo/strict';

interface SeenRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
  from: string | undefined;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** Captured warn/info lines of the listener (a Logger stand-in). */
function captureLog(): { log: Logger; lines: { message: string; meta: Record<string, unknown> }[] } {
  const lines: { message: string; meta: Record<string, unknown> }[] = [];
  const push = (message: string, meta: Record<string, unknown> = {}): void =>
    void lines.push({ message, meta });
  const log = { warn: push, info: push, error: push, debug: push } as unknown as Logger;
  return { log, lines };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function collect(res: http.IncomingMessage, resolve: (r: Reply) => void, reject: (e: Error) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () =>
    resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
  );
  res.on('error', reject);
}

/** An HTTP request over mesh mTLS, as a peer sidecar would originate it. */
function meshRequest(
  port: number,
  client: KeyPairPem | null,
  roots: string,
  opts: { path?: string; headers?: Record<string, string>; alpn?: string[]; servername?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        headers: { host: 'reviews.demo.svc.cluster.local:9080', ...opts.headers },
        servername: opts.servername ?? 'outbound_.9080_._.reviews.demo.svc.cluster.local',
        ALPNProtocols: opts.alpn ?? ['istio-http/1.1', 'istio'],
        ...(client ? { key: client.keyPem, cert: client.certPem } : {}),
        ca: roots,
        // the server's SPIFFE identity is checked by the client side (not under test here)
        checkServerIdentity: () => undefined,
        agent: false,
      } as https.RequestOptions,
      (res) => collect(res, resolve, reject),
    );
    r.on('error', reject);
    r.end();
  });
}

function plainRequest(
  port: number,
  opts: { path?: string; headers?: Record<string, string>; agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        headers: { host: 'reviews.demo.svc.cluster.local:9080', ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => collect(res, resolve, reject),
    );
    r.on('error', reject);
    r.end();
  });
}

/** Writes `bytes` and resolves when the proxy closes the connection (or `untilBytes` came back), with what it answered. */
function rawExchange(port: number, bytes: Buffer | string, untilBytes = Infinity): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let out = '';
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.length >= untilBytes) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
  });
}

/** A TLS client with `opts`; resolves with the error or close it ends with (never throws). */
function tlsAttempt(
  port: number,
  opts: tls.ConnectionOptions,
  send = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n',
  until?: string,
): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...opts });
    let out = '';
    s.on('secureConnect', () => s.write(send));
    s.on('data', (d: Buffer) => {
      out += d.toString();
      if (until !== undefined && out.includes(until)) s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    s.on('close', () => resolve(out === '' ? 'closed' : out));
  });
}

/** The ClientHello a node:tls client sends with `opts`. */
async function clientHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    setTimeout(() => s.destroy(), 200);
  });
  const port = await listen(server);
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
  server.close();
  return Buffer.concat(chunks);
}

describe('sidecar inbound: mesh mTLS, PeerAuthentication, L7 (loopback, real TLS)', function () {
  this.timeout(30_000);
  const root = meshRoot();
  const otherRoot = meshRoot('another mesh');
  const peerCert = workloadCert(root, PEER);
  let identity: TestIdentity;
  let app: http.Server;
  let appPort: number;
  let echo: net.Server;
  let echoPort: number;
  let sniffed: http.Server;
  let sniffedPort: number;
  const seen: SeenRequest[] = [];
  const echoFrom: (string | undefined)[] = [];
  /** Requests whose body the app read to the end. */
  const completed: string[] = [];
  let inbound: InboundListener;
  let capture: net.Server;
  let port: number;
  let dstPort: number | null = null;
  const metrics = new MetricsRegistry({
    workload: 'reviews-v1',
    namespace: 'demo',
    app: 'reviews',
    version: 'v1',
  });
  const accessLines: Record<string, unknown>[] = [];
  const logs = captureLog();

  const config = (inboundBlock: Inbound, version = 'v1'): ProxyConfig => ({
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: [],
    clusters: [],
    telemetry: {
      accessLog: true,
      workload: { name: 'reviews-v1', namespace: 'demo', app: 'reviews', version: 'v1' },
    },
    inbound: inboundBlock,
  });
  const ports = (): InboundPort[] => [
    { port: appPort, protocol: 'HTTP', service: 'reviews.demo.svc.cluster.local' },
    { port: echoPort, protocol: 'TCP', service: 'db.demo.svc.cluster.local' },
  ];
  const strict = (): Inbound => ({ mtls: { mode: 'STRICT', policy: STRICT }, ports: ports() });
  const permissive = (): Inbound => ({
    mtls: { mode: 'PERMISSIVE', policy: 'PeerAuthentication demo/default' },
    ports: ports(),
  });
  const refused = (reason: string): number =>
    metrics.labelledCounters.get('weft_proxy_inbound_refused_total')?.get(`reason="${reason}"`) ?? 0;

  before(async () => {
    identity = new TestIdentity(SELF, root);
    app = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers, from: req.socket.remoteAddress });
      if (req.url === '/cut-after-head' || req.url === '/cut-chunked') {
        // the app dies mid-response: its head and part of the body are out, the rest never comes
        const length = req.url === '/cut-after-head' ? { 'content-length': '100' } : {};
        res.writeHead(200, { 'content-type': 'text/plain', ...length });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 30);
        return;
      }
      if (req.url === '/hop-by-hop') {
        // an app naming a field as hop-by-hop, and request-only fields HTTP/2 forbids in a response
        res.writeHead(200, {
          connection: 'x-secret, keep-alive',
          'x-secret': '1',
          'proxy-connection': 'keep-alive',
          te: 'gzip',
          'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
          'x-kept': 'yes',
        });
        return void res.end('app');
      }
      let bytes = 0;
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        completed.push(req.url ?? '');
        res.end(bytes === 0 ? 'app' : `app got ${bytes} ${hash.digest('hex')}`);
      });
    });
    app.on('upgrade', (req, socket) => {
      seen.push({ url: req.url ?? '', headers: req.headers, from: (socket as net.Socket).remoteAddress });
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(`ws:${d.toString()}`));
    });
    appPort = await listen(app);
    sniffed = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers, from: req.socket.remoteAddress });
      res.end('sniffed');
    });
    sniffedPort = await listen(sniffed);
    echo = net.createServer((c) => {
      echoFrom.push(c.remoteAddress);
      c.on('data', (d: Buffer) => c.write(d));
      c.on('error', () => undefined);
    });
    echoPort = await listen(echo);
    inbound = new InboundListener({
      log: logs.log,
      metrics,
      accessLog: new AccessLog(
        new Writable({
          write(chunk: Buffer, _e, cb) {
            for (const l of chunk.toString().split('\n'))
              if (l) accessLines.push(JSON.parse(l) as Record<string, unknown>);
            cb();
          },
        }),
      ),
      appHost: '127.0.0.1',
      identity,
      sniffTimeoutMs: 300,
      handshakeTimeoutMs: 2000,
      capturePorts: () => [port],
      dst: () => (dstPort === null ? null : { address: '127.0.0.1', port: dstPort, family: 4 }),
    });
    capture = net.createServer((s) => inbound.handle(s));
    port = await listen(capture);
  });

  after(async () => {
    capture?.close();
    await inbound?.close();
    app?.close();
    sniffed?.close();
    echo?.close();
  });

  beforeEach(() => {
    dstPort = appPort;
    inbound.apply(config(strict()));
  });

  describe('STRICT', () => {
    it('terminates mesh mTLS and forwards HTTP to the app from 127.0.0.6, with XFCC in Istio format', async () => {
      const r = await meshRequest(port, peerCert, root.certPem, {
        path: '/reviews/1',
        headers: {
          'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://cluster.local/ns/admin/sa/root',
        },
      });
      expect(r.status).to.equal(200);
      expect(r.body).to.equal('app');
      const got = seen.at(-1)!;
      expect(got.url).to.equal('/reviews/1');
      expect(got.from).to.equal('127.0.0.6');
      const hash = createHash('sha256').update(new X509Certificate(peerCert.certPem).raw).digest('hex');
      expect(
        got.headers['x-forwarded-client-cert'],
        'the client-sent XFCC is replaced, not appended to',
      ).to.equal(`By=${SELF};Hash=${hash};Subject="";URI=${PEER}`);
      expect(got.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
      expect(got.headers.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(got.headers['x-forwarded-proto']).to.equal('https');
      expect(got.headers.host).to.equal('reviews.demo.svc.cluster.local:9080');
    });

    it('answers each keep-alive request on the mesh hop in one TLS record (head and body in one write)', async () => {
      // a relay between the peer and the listener counts the TLS records coming back: each record
      // is an encryption, a write and a wake-up of the peer, the per-request cost of the mesh hop
      // that the CPU target of issue 13 is about (docs/identity-mtls.md)
      let records = 0;
      let pending = Buffer.alloc(0);
      const countRecords = (d: Buffer): void => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
          records++;
          pending = pending.subarray(5 + pending.readUInt16BE(3));
        }
      };
      const relay = net.createServer((down) => {
        const up = net.connect(port, '127.0.0.1');
        down.pipe(up);
        up.on('data', (d: Buffer) => {
          countRecords(d);
          down.write(d);
        });
        const close = (): void => void (down.destroy(), up.destroy());
        down.on('error', close).on('close', close);
        up.on('error', close).on('close', close);
      });
      const relayPort = await listen(relay);
      const s = tls.connect({
        host: '127.0.0.1',
        port: relayPort,
        servername: 'outbound_.9080_._.reviews.demo.svc.cluster.local',
        ALPNProtocols: ['istio-http/1.1', 'istio'],
        key: peerCert.keyPem,
        cert: peerCert.certPem,
        ca: root.certPem,
        checkServerIdentity: () => undefined,
      });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const exchange = async (i: number): Promise<void> => {
        got = '';
        s.write(`GET /r/${i} HTTP/1.1\r\nhost: reviews.demo.svc.cluster.local:9080\r\n\r\n`);
        for (let t = 0; t < 200 && !got.endsWith('\r\n\r\napp'); t++) await sleep(10);
        expect(got, `response ${i}`).to.match(/^HTTP\/1\.1 200 [^]*\r\n\r\napp$/);
      };
      try {
        await new Promise<void>((r, j) => s.once('secureConnect', r).once('error', j));
        // the first answer shares the wire with TLS 1.3's post-handshake session tickets
        await exchange(0);
        await sleep(50);
        const before = records;
        for (let i = 1; i <= 10; i++) await exchange(i);
        expect(records - before).to.equal(10);
      } finally {
        s.destroy();
        relay.close();
      }
    });

    it('reports the request with reporter="destination", both principals and connection_security_policy="mutual_tls"', async () => {
      await meshRequest(port, peerCert, root.certPem);
      const line = metrics
        .render()
        .split('\n')
        .find((l) => l.startsWith('istio_requests_total{reporter="destination"') && l.includes('mutual_tls'));
      expect(line).to.be.a('string');
      expect(line).to.include(`source_principal="${PEER}"`);
      expect(line).to.include('source_workload_namespace="shop"');
      expect(line).to.include(`destination_principal="${SELF}"`);
      expect(line).to.include('destination_workload="reviews-v1"');
      expect(line).to.include('destination_service="reviews.demo.svc.cluster.local"');
      expect(line).to.include('destination_service_name="reviews"');
      expect(line).to.include('response_code="200"');
    });

    it('writes an access log line saying the connection was mTLS and who the peer was', async () => {
      await meshRequest(port, peerCert, root.certPem, { path: '/logged' });
      await sleep(20); // the access log flushes on the next turn
      const l = accessLines.filter((x) => x.path === '/logged').at(-1)!;
      expect(l).to.deep.include({
        direction: 'inbound',
        response_code: 200,
        connection_security_policy: 'mutual_tls',
        mtls: true,
        source_principal: PEER,
        destination_principal: SELF,
        requested_server_name: 'outbound_.9080_._.reviews.demo.svc.cluster.local',
        mtls_mode: 'STRICT',
        mtls_policy: STRICT,
        upstream_host: `127.0.0.1:${appPort}`,
      });
    });

    it('refuses plaintext: closed, counted, logged with the source address and the deciding policy', async () => {
      const before = refused('plaintext');
      const answer = await rawExchange(port, 'GET / HTTP/1.1\r\nhost: reviews\r\n\r\n');
      expect(answer).to.equal('');
      expect(refused('plaintext')).to.equal(before + 1);
      const line = logs.lines.filter((l) => l.message === 'Inbound connection refused').at(-1)!;
      expect(line.meta.message).to.match(
        new RegExp(`^plaintext from 127\\.0\\.0\\.1 refused by ${STRICT} on port ${appPort}`),
      );
      expect(line.meta).to.include({ reason: 'plaintext', mode: 'STRICT', policy: STRICT });
      expect(inbound.recent.at(-1)!.message).to.equal(line.meta.message);
      await sleep(20);
      expect(accessLines.at(-1)).to.include({ refused: 'plaintext', mtls_policy: STRICT });
    });

    it('pipes mTLS TCP to the app with istio_tcp_* metrics (received from the client, sent to it)', async () => {
      dstPort = echoPort;
      const answer = await tlsAttempt(
        port,
        {
          servername: 'outbound_.5432_._.db.demo.svc.cluster.local',
          ALPNProtocols: ['istio'],
          key: peerCert.keyPem,
          cert: peerCert.certPem,
          ca: root.certPem,
        },
        'ping-1234',
        'ping-1234',
      );
      expect(answer).to.equal('ping-1234');
      expect(echoFrom.at(-1)).to.equal('127.0.0.6');
      const text = metrics.render();
      const tcp = (name: string): string | undefined =>
        text.split('\n').find((l) => l.startsWith(`${name}{reporter="destination"`) && l.includes('db.demo'));
      expect(tcp('istio_tcp_connections_opened_total'))
        .to.include('connection_security_policy="mutual_tls"')
        .and.include(`source_principal="${PEER}"`)
        .and.include('request_protocol="tcp"');
      expect(tcp('istio_tcp_received_bytes_total')).to.match(/ 9$/);
      expect(tcp('istio_tcp_sent_bytes_total')).to.match(/ 9$/);
    });

    it('a WebSocket upgrade over mTLS gets XFCC and is piped both ways', async () => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'outbound_.9080_._.reviews',
        ALPNProtocols: ['istio-http/1.1'],
        key: peerCert.keyPem,
        cert: peerCert.certPem,
        ca: root.certPem,
        checkServerIdentity: () => undefined,
      });
      const got = await new Promise<string>((resolve, reject) => {
        let out = '';
        sock.on('secureConnect', () =>
          sock.write(
            'GET /ws HTTP/1.1\r\nhost: reviews\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-forwarded-client-cert: forged\r\n\r\n',
          ),
        );
        sock.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\r\n\r\n') && !out.includes('ws:')) sock.write('hello');
          if (out.includes('ws:hello')) resolve(out);
        });
        sock.on('error', reject);
      });
      sock.destroy();
      expect(got).to.match(/^HTTP\/1\.1 101/);
      expect(seen.at(-1)!.headers['x-forwarded-client-cert']).to.match(
        new RegExp(`^By=${SELF};Hash=[0-9a-f]{64};Subject="";URI=${PEER}$`),
      );
    });
  });

  describe('hop-by-hop fields (RFC 9110 §7.6.1): the same filter as the outbound side', () => {
    it("the app's Connection-named field never reaches the mesh client (HTTP/1.1)", async () => {
      const r = await meshRequest(port, peerCert, root.certPem, { path: '/hop-by-hop' });
      expect(r.status).to.equal(200);
      expect(r.body).to.equal('app');
      expect(r.headers['x-secret'], "named in the app's Connection header").to.equal(undefined);
      expect(r.headers['proxy-connection']).to.equal(undefined);
      expect(r.headers.te).to.equal(undefined);
      expect(r.headers['http2-settings']).to.equal(undefined);
      expect(r.headers['x-kept']).to.equal('yes');
    });

    it('an HTTP/2 mesh client gets the answer whole: no Connection-named or connection-specific field, no stream error', async () => {
      const session = http2.connect('https://reviews.demo.svc.cluster.local:9080', {
        createConnection: () =>
          tls.connect({
            host: '127.0.0.1',
            port,
            servername: 'outbound_.9080_._.reviews.demo.svc.cluster.local',
            ALPNProtocols: ['istio-h2'],
            key: peerCert.keyPem,
            cert: peerCert.certPem,
            ca: root.certPem,
            checkServerIdentity: () => undefined,
          }),
      });
      session.on('error', () => undefined);
      try {
        const got = await h2Exchange(session, { ':path': '/hop-by-hop' });
        expect(got.head[':status']).to.equal(200);
        expect(got.body).to.equal('app');
        expect(got.head['x-secret']).to.equal(undefined);
        expect(got.head['x-kept']).to.equal('yes');
      } finally {
        session.destroy();
      }
    });

    it("a client naming XFCC, x-forwarded-proto or x-request-id in Connection drops only its own copies: the sidecar's are added after", async () => {
      await meshRequest(port, peerCert, root.certPem, {
        path: '/named',
        headers: {
          connection: 'x-forwarded-client-cert, X-Forwarded-Proto, x-request-id, x-client-only',
          'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/admin/sa/root',
          'x-forwarded-proto': 'http',
          'x-request-id': 'forged',
          'x-client-only': '1',
        },
      });
      const got = seen.at(-1)!;
      expect(got.url).to.equal('/named');
      expect(got.headers['x-client-only']).to.equal(undefined);
      expect(got.headers['x-forwarded-client-cert']).to.match(
        new RegExp(`^By=${SELF};Hash=[0-9a-f]{64};Subject="";URI=${PEER}$`),
      );
      expect(got.headers['x-forwarded-proto']).to.equal('https');
      expect(got.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    });
  });

  describe('an app response cut after its head (onResponseError once the head is sent)', () => {
    /** What an HTTP/1.1 mesh client sees: the body so far and how the response ended. */
    const h1Cut = (path: string): Promise<{ status: number; body: string; ended: 'end' | 'aborted' }> =>
      new Promise((resolve, reject) => {
        const r = https.request(
          {
            host: '127.0.0.1',
            port,
            path,
            headers: { host: 'reviews.demo.svc.cluster.local:9080' },
            servername: 'outbound_.9080_._.reviews.demo.svc.cluster.local',
            ALPNProtocols: ['istio-http/1.1', 'istio'],
            key: peerCert.keyPem,
            cert: peerCert.certPem,
            ca: root.certPem,
            checkServerIdentity: () => undefined,
            agent: false,
          } as https.RequestOptions,
          (res) => {
            let body = '';
            let settled = false;
            const done = (ended: 'end' | 'aborted'): void => {
              if (settled) return;
              settled = true;
              resolve({ status: res.statusCode ?? 0, body, ended });
            };
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => done(res.complete ? 'end' : 'aborted'));
            res.on('aborted', () => done('aborted'));
            res.on('error', () => done('aborted'));
            res.on('close', () => done(res.complete ? 'end' : 'aborted'));
          },
        );
        r.on('error', reject);
        r.setTimeout(5000, () => r.destroy(new Error('the client hangs')));
        r.end();
      });

    const urLines = (path: string): Record<string, unknown>[] =>
      accessLines.filter((l) => l.path === path && String(l.response_flags).includes('UR'));

    for (const path of ['/cut-after-head', '/cut-chunked'])
      it(`HTTP/1.1 client, ${path === '/cut-chunked' ? 'chunked' : 'content-length'} body: the connection is cut, never presented as complete, and counted (UR)`, async () => {
        const before = urLines(path).length;
        const got = await h1Cut(path);
        expect(got.status).to.equal(200);
        expect(got.body).to.equal('partial');
        expect(got.ended, 'a truncated response is not complete').to.equal('aborted');
        await sleep(50);
        expect(urLines(path).length - before, 'access-logged with flag UR').to.equal(1);
      });

    it('HTTP/2 client: the stream is reset with an error code (not NO_ERROR, which reads as a clean end), and counted (UR)', async () => {
      const before = urLines('/cut-chunked').length;
      const session = http2.connect('https://reviews.demo.svc.cluster.local:9080', {
        createConnection: () =>
          tls.connect({
            host: '127.0.0.1',
            port,
            servername: 'outbound_.9080_._.reviews.demo.svc.cluster.local',
            ALPNProtocols: ['istio-h2'],
            key: peerCert.keyPem,
            cert: peerCert.certPem,
            ca: root.certPem,
            checkServerIdentity: () => undefined,
          }),
      });
      session.on('error', () => undefined);
      try {
        const got = await new Promise<{ body: string; rst: number | undefined; ended: boolean }>(
          (resolve) => {
            const st = session.request({ ':path': '/cut-chunked' });
            let body = '';
            let ended = false;
            st.on('data', (d: Buffer) => (body += d.toString()));
            st.on('end', () => (ended = true));
            st.on('error', () => undefined);
            st.on('close', () => resolve({ body, rst: st.rstCode, ended }));
            st.setTimeout(5000, () => st.close(http2.constants.NGHTTP2_CANCEL));
          },
        );
        expect(got.body).to.equal('partial');
        expect(got.rst, 'reset with an error code').to.equal(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } finally {
        session.destroy();
      }
      await sleep(50);
      expect(urLines('/cut-chunked').length - before, 'access-logged with flag UR').to.equal(1);
    });
  });

  describe('bad input under STRICT: refused and counted, nothing else affected', () => {
    const cases: [string, string, () => Promise<unknown>][] = [
      [
        'a client certificate from another CA',
        'peer_untrusted',
        () => meshRequest(port, workloadCert(otherRoot, PEER), root.certPem),
      ],
      [
        'an expired client certificate',
        'peer_untrusted',
        () =>
          meshRequest(
            port,
            workloadCert(root, PEER, { now: new Date(Date.now() - 2 * 3600_000), ttlMs: 3600_000 }),
            root.certPem,
          ),
      ],
      ['no client certificate', 'peer_no_certificate', () => meshRequest(port, null, root.certPem)],
      ['garbage bytes', 'plaintext', () => rawExchange(port, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42]))],
      [
        'garbage that starts like TLS',
        'tls_bad_client_hello',
        () => rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0])),
      ],
      [
        'a ClientHello with no SNI',
        'tls_no_sni',
        () =>
          tlsAttempt(port, {
            ALPNProtocols: ['istio'],
            key: peerCert.keyPem,
            cert: peerCert.certPem,
            ca: root.certPem,
          }),
      ],
      [
        'a ClientHello with an unknown ALPN',
        'tls_unknown_alpn',
        () =>
          tlsAttempt(port, {
            servername: 'reviews',
            ALPNProtocols: ['h2', 'http/1.1'],
            key: peerCert.keyPem,
            cert: peerCert.certPem,
            ca: root.certPem,
          }),
      ],
      [
        'a ClientHello with no ALPN at all',
        'tls_unknown_alpn',
        () => tlsAttempt(port, { servername: 'reviews', ca: root.certPem }),
      ],
      [
        'a client that sends half a ClientHello and stops',
        'plaintext',
        () => rawExchange(port, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])),
      ],
      [
        'a peer certificate with no SPIFFE ID (DNS SAN only)',
        'peer_bad_identity',
        () => meshRequest(port, leafWithSans(root, [{ type: 2, value: 'productpage.shop' }]), root.certPem),
      ],
      [
        'a peer certificate with two URI SANs',
        'peer_bad_identity',
        () =>
          meshRequest(
            port,
            leafWithSans(root, [
              { type: 6, value: PEER },
              { type: 6, value: SELF },
            ]),
            root.certPem,
          ),
      ],
    ];
    for (const [title, reason, attempt] of cases)
      it(`${title}: ${reason}`, async () => {
        const before = refused(reason);
        const seenBefore = seen.length;
        await attempt().then(
          () => undefined,
          () => undefined,
        );
        expect(refused(reason), `weft_proxy_inbound_refused_total{reason="${reason}"}`).to.equal(before + 1);
        expect(seen.length, 'the app saw nothing').to.equal(seenBefore);
        const ok = await meshRequest(port, peerCert, root.certPem);
        expect(ok.status, 'the next good request').to.equal(200);
      });

    it('a workload without a certificate yet refuses mesh TLS (no_identity) instead of failing the handshake blindly', async () => {
      const bare = new InboundListener({
        log: captureLog().log,
        metrics,
        accessLog: null,
        appHost: '127.0.0.1',
        identity: new TestIdentity(null, root),
        sniffTimeoutMs: 300,
        capturePorts: () => [],
        dst: () => ({ address: '127.0.0.1', port: appPort, family: 4 }),
      });
      bare.apply(config(strict()));
      const server = net.createServer((s) => bare.handle(s));
      const p = await listen(server);
      const before = refused('no_identity');
      await meshRequest(p, peerCert, root.certPem).catch(() => undefined);
      expect(refused('no_identity')).to.equal(before + 1);
      server.close();
      await bare.close();
    });
  });

  describe('PERMISSIVE', () => {
    beforeEach(() => inbound.apply(config(permissive())));

    it('accepts plaintext HTTP (connection_security_policy="none") and drops a client-sent XFCC', async () => {
      const r = await plainRequest(port, {
        path: '/plain',
        headers: { 'x-forwarded-client-cert': `By=x;URI=${PEER}` },
      });
      expect(r.status).to.equal(200);
      const got = seen.at(-1)!;
      expect(got.url).to.equal('/plain');
      expect(got.headers['x-forwarded-client-cert']).to.equal(undefined);
      expect(got.headers['x-forwarded-proto']).to.equal('http');
      expect(metrics.render()).to.match(
        /istio_requests_total\{reporter="destination",[^}]*source_principal="unknown"[^}]*destination_principal="unknown"[^}]*connection_security_policy="none"[^}]*\} \d+/,
      );
    });

    // docs/identity-mtls.md, "PERMISSIVE to STRICT": the metric names the workload that still
    // receives plaintext (its source labels are unknown), the access log names the sender
    it('says who still sends plaintext: destination series with unknown source, the sender in the access log', async () => {
      const r = await plainRequest(port, { path: '/who-is-plaintext' });
      expect(r.status).to.equal(200);
      const line = metrics
        .render()
        .split('\n')
        .find(
          (l) =>
            l.startsWith('istio_requests_total{reporter="destination"') &&
            l.includes('destination_service="reviews.demo.svc.cluster.local"') &&
            l.includes('connection_security_policy="none"'),
        );
      expect(line).to.be.a('string');
      for (const label of [
        'source_workload="unknown"',
        'source_workload_namespace="unknown"',
        'source_principal="unknown"',
        'destination_workload="reviews-v1"',
        'destination_workload_namespace="demo"',
      ])
        expect(line).to.include(label);
      await sleep(20); // the access log flushes on the next turn
      const l = accessLines.filter((x) => x.path === '/who-is-plaintext').at(-1)!;
      expect(l).to.deep.include({
        direction: 'inbound',
        connection_security_policy: 'none',
        mtls: false,
        mtls_mode: 'PERMISSIVE',
        mtls_policy: 'PeerAuthentication demo/default',
      });
      expect(l.downstream_remote_address).to.match(/^127\.0\.0\.1:\d+$/);
      expect(l.source_principal).to.equal(undefined);
    });

    it('accepts mesh mTLS on the same port', async () => {
      expect((await meshRequest(port, peerCert, root.certPem)).status).to.equal(200);
      expect(seen.at(-1)!.headers['x-forwarded-client-cert']).to.contain(`URI=${PEER}`);
    });

    it("passes TLS without Istio's ALPN (the app's own TLS) through untouched", async () => {
      dstPort = echoPort;
      const hello = await clientHello({ servername: 'db.example', ALPNProtocols: ['h2'] });
      const back = await rawExchange(port, hello, hello.length);
      expect(
        Buffer.from(back, 'latin1').equals(hello),
        'the echo app got the ClientHello byte for byte',
      ).to.equal(true);
      expect(echoFrom.at(-1)).to.equal('127.0.0.6');
    });

    it('sniffs an undeclared port: HTTP is parsed, anything else piped', async () => {
      dstPort = sniffedPort;
      expect((await plainRequest(port, { path: '/sniffed' })).body).to.equal('sniffed');
      expect(seen.at(-1)!.headers['x-request-id'], 'parsed (trace headers added)').to.be.a('string');
    });

    it('a server-first protocol on an undeclared port: the client says nothing, the app speaks first', async () => {
      const greeter = net.createServer((c) => c.end('220 greetings\r\n'));
      dstPort = await listen(greeter);
      const got = await new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        let out = '';
        c.on('data', (d: Buffer) => (out += d.toString()));
        c.on('close', () => resolve(out));
        c.on('error', () => undefined);
      });
      greeter.close();
      expect(got).to.equal('220 greetings\r\n');
      // the wait is counted (PERMISSIVE: mTLS or plaintext is told by the first bytes)
      expect(metrics.labelledCounters.get(DETECTION_TIMEOUT_METRIC)?.get('side="inbound"')).to.be.greaterThan(
        0,
      );
    });

    it('a config that turns the port STRICT closes the plaintext keep-alive connections open on it', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      expect((await plainRequest(port, { agent })).status).to.equal(200);
      const sock = Object.values(agent.freeSockets)[0]![0]!;
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      inbound.apply(config(strict(), 'v2'));
      await closed;
      agent.destroy();
      const warn = logs.lines.find(
        (l) => l.message === 'Closed a plaintext connection: its port is STRICT now',
      );
      expect(warn?.meta).to.include({ port: appPort, policy: STRICT });
    });
  });

  // The outbound listener's request-head limits (proxy/http1-limits.ts; its own tests are in
  // edge.test.ts): the inbound side parses requests from any client, meshed or not.
  describe('request head limits and smuggling, as on the outbound listener', () => {
    beforeEach(() => inbound.apply(config(permissive())));
    const HOST = 'host: reviews.demo.svc.cluster.local:9080\r\n';
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `x-f${i}: ${i}\r\n`).join('');
    /** istio_requests_total of DPE answers with `status`, summed (plaintext and mTLS peers are separate series). */
    const count = (status: number): number =>
      [
        ...metrics
          .render()
          .matchAll(
            new RegExp(
              `^istio_requests_total\\{[^}]*response_code="${status}",response_flags="DPE"\\} (\\d+)$`,
              'gm',
            ),
          ),
      ].reduce((n, m) => n + Number(m[1]), 0);

    it(`${MAX_HEADERS_COUNT} header fields pass; ${MAX_HEADERS_COUNT + 1} → 431 DPE, nothing reaches the app (plaintext and mTLS)`, async () => {
      const before = seen.length;
      const ok = await rawExchange(
        port,
        `GET /limit-ok HTTP/1.1\r\n${HOST}connection: close\r\n${fields(MAX_HEADERS_COUNT - 2)}\r\n`,
      );
      expect(ok).to.match(/^HTTP\/1\.1 200 /);
      expect(seen.at(-1)!.url).to.equal('/limit-ok');
      const counted = count(431);
      const over = await rawExchange(
        port,
        `GET /limit-over HTTP/1.1\r\n${HOST}connection: close\r\n${fields(MAX_HEADERS_COUNT - 1)}\r\n`,
      );
      expect(over).to.match(/^HTTP\/1\.1 431 /);
      expect(over).to.match(/x-weft-response-flags: DPE/);
      // over mesh mTLS: node's https client sends host, connection and our fields
      const tlsOver = await meshRequest(port, peerCert, root.certPem, {
        path: '/limit-over-tls',
        headers: Object.fromEntries(Array.from({ length: MAX_HEADERS_COUNT }, (_, i) => [`x-f${i}`, `${i}`])),
      });
      expect(tlsOver.status).to.equal(431);
      expect(seen.slice(before).map((r) => r.url)).to.deep.equal(['/limit-ok']);
      expect(count(431)).to.equal(counted + 2);
    });

    // Request smuggling and malformed framing: llhttp's strict mode refuses each. 'head': refused
    // before the request is dispatched, the app sees nothing. 'body': the head was valid and is
    // streamed to the app (as on the outbound listener), the framing error aborts the body, so the
    // app never gets a complete request and nothing after it is read as another request.
    const smuggling: [string, 'head' | 'body', string][] = [
      [
        'Content-Length and Transfer-Encoding',
        'head',
        `POST / HTTP/1.1\r\n${HOST}content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${HOST}\r\n`,
      ],
      [
        'two different Content-Length fields',
        'head',
        `POST / HTTP/1.1\r\n${HOST}content-length: 1\r\ncontent-length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\n${HOST}\r\n`,
      ],
      [
        'two equal Content-Length fields',
        'head',
        `POST / HTTP/1.1\r\n${HOST}content-length: 2\r\ncontent-length: 2\r\n\r\nab`,
      ],
      ['a Content-Length list', 'head', `POST / HTTP/1.1\r\n${HOST}content-length: 2, 2\r\n\r\nab`],
      [
        'Transfer-Encoding with chunked not last',
        'head',
        `POST / HTTP/1.1\r\n${HOST}transfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
      ],
      [
        'an unknown Transfer-Encoding',
        'body',
        `POST / HTTP/1.1\r\n${HOST}transfer-encoding: xchunked\r\n\r\n0\r\n\r\n`,
      ],
      [
        'whitespace between a field name and the colon',
        'head',
        `POST / HTTP/1.1\r\n${HOST}transfer-encoding : chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n`,
      ],
      ['obs-fold (a continuation line)', 'head', `GET /folded HTTP/1.1\r\n${HOST}x-a: one\r\n two\r\n\r\n`],
      ['a NUL in a field value', 'head', `GET /nul HTTP/1.1\r\n${HOST}x-a: a\0b\r\n\r\n`],
      [
        'a chunk-size line ended by a bare LF',
        'body',
        `POST /lf HTTP/1.1\r\n${HOST}transfer-encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n`,
      ],
    ];
    for (const [title, stage, bytes] of smuggling)
      it(`${title} → 400 DPE, ${stage === 'head' ? 'nothing forwarded' : 'the request never completes at the app'}`, async () => {
        const before = seen.length;
        const completedBefore = completed.length;
        const counted = count(400);
        const out = await rawExchange(port, bytes);
        expect(out).to.match(/^HTTP\/1\.1 400 /);
        expect(out).to.match(/x-weft-response-flags: DPE/);
        const started = seen.slice(before).map((r) => r.url);
        expect(started).to.deep.equal(stage === 'head' ? [] : [started[0]]);
        expect(started).to.not.include('/smuggled');
        expect(completed.slice(completedBefore)).to.deep.equal([]);
        expect(count(400)).to.equal(counted + 1);
        expect((await plainRequest(port)).status, 'the next request is served').to.equal(200);
      });
  });

  describe('DISABLE and port-level modes', () => {
    it('DISABLE: plaintext goes through and mesh TLS is not terminated (the app gets the raw bytes)', async () => {
      inbound.apply(
        config({ mtls: { mode: 'DISABLE', policy: 'PeerAuthentication demo/off' }, ports: ports() }),
      );
      expect((await plainRequest(port)).status).to.equal(200);
      const before = seen.length;
      const refusedBefore = [
        ...(metrics.labelledCounters.get('weft_proxy_inbound_refused_total')?.values() ?? []),
      ].reduce((a, b) => a + b, 0);
      const out = await meshRequest(port, peerCert, root.certPem).then(
        (r) => `status ${r.status}`,
        (e: Error) => e.message,
      );
      expect(out).to.not.equal('status 200');
      expect(seen.length, 'the app got no request').to.equal(before);
      const refusedAfter = [
        ...(metrics.labelledCounters.get('weft_proxy_inbound_refused_total')?.values() ?? []),
      ].reduce((a, b) => a + b, 0);
      expect(refusedAfter, 'DISABLE never inspects TLS, so it refuses nothing').to.equal(refusedBefore);
    });

    it('portLevelMtls: STRICT workload with one DISABLE port', async () => {
      inbound.apply(
        config({
          mtls: { mode: 'STRICT', policy: STRICT },
          ports: [
            {
              port: appPort,
              protocol: 'HTTP',
              mtls: { mode: 'DISABLE', policy: `${STRICT} portLevelMtls[${appPort}]` },
            },
            { port: sniffedPort, protocol: 'HTTP' },
          ],
        }),
      );
      expect((await plainRequest(port)).status, 'the DISABLE port').to.equal(200);
      dstPort = sniffedPort;
      const before = refused('plaintext');
      await plainRequest(port).catch(() => undefined);
      expect(refused('plaintext'), 'the STRICT port').to.equal(before + 1);
      expect((await meshRequest(port, peerCert, root.certPem)).body).to.equal('sniffed');
    });
  });

  describe('AuthorizationPolicy on the inbound side (the mTLS peer is the principal)', () => {
    const policy = (name: string, spec: Record<string, unknown>): AuthorizationPolicy =>
      ({
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name, namespace: 'demo' },
        spec,
      }) as AuthorizationPolicy;
    /** The config weftd pushes a sidecar selected by `policies` (its block guards no outbound listener). */
    const withPolicies = (
      inboundBlock: Inbound,
      policies: AuthorizationPolicy[],
      version = 'az',
    ): ProxyConfig => {
      const { block } = translateAuthz({ policies, pod: { namespace: 'demo', labels: { app: 'reviews' } } });
      return { ...config(inboundBlock, version), ...(block ? { authz: { ...block, listeners: [] } } : {}) };
    };
    const allowProductpage = policy('allow-productpage', {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/shop/sa/productpage'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/reviews/*'] } }],
        },
      ],
    });
    const denied = (): number =>
      [...(metrics.labelledCounters.get('weft_proxy_authz_denied_total')?.values() ?? [])].reduce(
        (a, b) => a + b,
        0,
      );

    it('ALLOW by principal: the mesh peer passes; a plaintext client (no principal) gets 403 RBAC and the app sees nothing', async () => {
      inbound.apply(withPolicies(permissive(), [allowProductpage]));
      const ok = await meshRequest(port, peerCert, root.certPem, { path: '/reviews/7' });
      expect(ok.status).to.equal(200);
      expect(metrics.render()).to.match(
        /^weft_proxy_authz_allowed_total\{policy="demo\/allow-productpage"\} [1-9]/m,
      );
      expect(seen.at(-1)!.url).to.equal('/reviews/7');
      const before = seen.length;
      const deniedBefore = denied();
      const no = await plainRequest(port, { path: '/reviews/7' });
      expect(no.status).to.equal(403);
      expect(no.body).to.equal('RBAC: access denied: no ALLOW policy matched');
      expect(no.headers['x-weft-response-flags']).to.equal('RBAC');
      expect(seen.length, 'the app got nothing').to.equal(before);
      expect(denied()).to.equal(deniedBefore + 1);
      await sleep(20);
      const line = accessLines.filter((l) => l.response_code === 403).at(-1)!;
      expect(line.response_code_details).to.equal('rbac_access_denied_matched_policy[none]');
      expect(line.response_flags).to.equal('RBAC');
    });

    it('another mesh identity, a method or a path outside the rule: 403', async () => {
      inbound.apply(withPolicies(strict(), [allowProductpage]));
      const other = workloadCert(root, 'spiffe://cluster.local/ns/shop/sa/checkout');
      expect((await meshRequest(port, other, root.certPem, { path: '/reviews/1' })).status).to.equal(403);
      expect((await meshRequest(port, peerCert, root.certPem, { path: '/admin' })).status).to.equal(403);
      expect((await meshRequest(port, peerCert, root.certPem, { path: '/reviews/1' })).status).to.equal(200);
    });

    it('the app gets the normalized path the policy was checked on; an encoded traversal out of /reviews/* is denied', async () => {
      inbound.apply(withPolicies(strict(), [allowProductpage]));
      const r = await meshRequest(port, peerCert, root.certPem, { path: '/reviews/a/../b' });
      expect(r.status).to.equal(200);
      expect(seen.at(-1)!.url, 'dot segments resolved before forwarding').to.equal('/reviews/b');
      const before = seen.length;
      for (const path of ['/reviews/..%2Fadmin', '/reviews/%2E%2E/admin', '/reviews/../admin'])
        expect((await meshRequest(port, peerCert, root.certPem, { path })).status, path).to.equal(403);
      expect(seen.length).to.equal(before);
    });

    it('DENY by source namespace wins over ALLOW; a policy applied later holds on an open keep-alive connection', async () => {
      inbound.apply(withPolicies(permissive(), []));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        expect((await plainRequest(port, { agent })).status).to.equal(200);
        inbound.apply(
          withPolicies(
            permissive(),
            [
              policy('deny-plain', {
                action: 'DENY',
                rules: [{ from: [{ source: { notPrincipals: ['*'] } }] }],
              }),
            ],
            'az2',
          ),
        );
        const r = await plainRequest(port, { agent });
        expect(r.status, 'same connection, new policy').to.equal(403);
        expect(r.headers['x-weft-response-flags']).to.equal('RBAC');
      } finally {
        agent.destroy();
      }
      inbound.apply(
        withPolicies(strict(), [
          allowProductpage,
          policy('deny-shop', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['shop'] } }] }] }),
        ]),
      );
      expect((await meshRequest(port, peerCert, root.certPem, { path: '/reviews/1' })).status).to.equal(403);
    });

    describe('TCP connections (Istio reads HTTP-only fields as it does for TCP)', () => {
      const meshTcp = (cert: KeyPairPem): Promise<string> =>
        tlsAttempt(
          port,
          {
            servername: 'outbound_.5432_._.db.demo.svc.cluster.local',
            ALPNProtocols: ['istio'],
            key: cert.keyPem,
            cert: cert.certPem,
            ca: root.certPem,
          },
          'ping',
          'ping',
        );
      const plainTcp = (): Promise<string> => rawExchange(port, 'ping', 4);
      const checkout = workloadCert(root, 'spiffe://cluster.local/ns/shop/sa/checkout');
      const refusedAuthz = (): number => refused('authz_denied');

      it('ALLOW by principal: the peer passes, another identity and plaintext are closed before the app', async () => {
        dstPort = echoPort;
        inbound.apply(
          withPolicies(permissive(), [
            policy('db-clients', {
              rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/productpage'] } }] }],
            }),
          ]),
        );
        expect(await meshTcp(peerCert)).to.equal('ping');
        const before = echoFrom.length;
        const refusedBefore = refusedAuthz();
        expect(await meshTcp(checkout)).to.not.include('ping');
        expect(await plainTcp()).to.equal('');
        expect(echoFrom.length, 'the app accepted nothing').to.equal(before);
        expect(refusedAuthz()).to.equal(refusedBefore + 2);
        expect(inbound.recent.at(-1)!.message).to.match(
          /^a connection \(authz_denied\) from 127\.0\.0\.1 refused by AuthorizationPolicy \(no ALLOW policy matched\) on port \d+: no ALLOW policy matched$/,
        );
      });

      it('a DENY applied later closes the open TCP connections it denies, and only those', async () => {
        dstPort = echoPort;
        inbound.apply(withPolicies(strict(), []));
        /** An open mesh TCP connection that has echoed once; resolves `closed` when the proxy ends it. */
        const openTcp = async (
          cert: KeyPairPem,
        ): Promise<{ closed: Promise<void>; socket: tls.TLSSocket }> => {
          const socket = tls.connect({
            host: '127.0.0.1',
            port,
            servername: 'outbound_.5432_._.db.demo.svc.cluster.local',
            ALPNProtocols: ['istio'],
            key: cert.keyPem,
            cert: cert.certPem,
            ca: root.certPem,
            checkServerIdentity: () => undefined,
          });
          socket.on('error', () => undefined);
          const closed = new Promise<void>((r) => socket.once('close', () => r()));
          await new Promise<void>((resolve) => {
            socket.once('secureConnect', () => socket.write('hello'));
            socket.once('data', () => resolve());
          });
          return { closed, socket };
        };
        const shop = await openTcp(peerCert);
        const billing = await openTcp(workloadCert(root, 'spiffe://cluster.local/ns/billing/sa/api'));
        const before = refusedAuthz();
        inbound.apply(
          withPolicies(
            strict(),
            [
              policy('no-shop', {
                action: 'DENY',
                rules: [{ from: [{ source: { namespaces: ['shop'] } }] }],
              }),
            ],
            'deny-later',
          ),
        );
        await shop.closed;
        expect(refusedAuthz()).to.equal(before + 1);
        const still = await new Promise<string>((resolve) => {
          billing.socket.once('data', (d: Buffer) => resolve(d.toString()));
          billing.socket.write('still');
        });
        expect(still, 'the other namespace keeps its connection').to.equal('still');
        billing.socket.destroy();
        await billing.closed;
      });

      it('an ALLOW rule with only HTTP fields allows no TCP; a DENY rule with HTTP fields denies on the rest', async () => {
        dstPort = echoPort;
        inbound.apply(
          withPolicies(strict(), [
            policy('get-only', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
          ]),
        );
        expect(await meshTcp(peerCert), 'methods cannot match TCP').to.not.include('ping');
        inbound.apply(
          withPolicies(strict(), [
            policy('no-shop-admin', {
              action: 'DENY',
              rules: [
                {
                  from: [{ source: { namespaces: ['shop'] } }],
                  to: [{ operation: { paths: ['/admin'] } }],
                },
              ],
            }),
          ]),
        );
        expect(await meshTcp(peerCert), 'shop is denied: the path is ignored on TCP').to.not.include('ping');
        expect(inbound.recent.at(-1)!.message).to.include('AuthorizationPolicy demo/no-shop-admin');
        const other = workloadCert(root, 'spiffe://cluster.local/ns/billing/sa/api');
        expect(await meshTcp(other), 'another namespace passes').to.equal('ping');
      });
    });

    it('a bad request target is refused with 400 DPE before any policy or the app', async () => {
      inbound.apply(withPolicies(permissive(), [allowProductpage]));
      const before = seen.length;
      for (const head of [
        'GET /reviews/1 HTTP/1.1\r\nhost: reviews\r\nhost: admin\r\n\r\n',
        'GET /reviews/1#x HTTP/1.1\r\nhost: reviews\r\n\r\n',
      ]) {
        const out = await rawExchange(port, head);
        expect(out, head).to.match(/^HTTP\/1\.1 400 /);
        expect(out, 'the connection is closed').to.include('x-weft-response-flags: DPE');
      }
      expect(seen.length).to.equal(before);
    });
  });

  describe('request bodies and upgrades on the inbound side', () => {
    /** POSTs `body` on a fresh connection (so the app connection is opened after the head arrived). */
    const post = (body: Buffer, headers: Record<string, string> = {}): Promise<Reply> =>
      new Promise((resolve, reject) => {
        const r = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/upload',
            headers: { host: 'reviews.demo.svc.cluster.local:9080', ...headers },
            agent: false,
          },
          (res) => collect(res, resolve, reject),
        );
        r.on('error', reject);
        r.end(body);
      });

    it('a body reaches the app whole, with or without policies (none of it read away before the app connection is up)', async () => {
      const body = Buffer.alloc(300_000, 7);
      const want = `app got ${body.length} ${createHash('sha256').update(body).digest('hex')}`;
      inbound.apply(config(permissive()));
      expect((await post(body)).body).to.equal(want);
      const { block } = translateAuthz({
        policies: [
          {
            apiVersion: 'security.istio.io/v1',
            kind: 'AuthorizationPolicy',
            metadata: { name: 'posts', namespace: 'demo' },
            spec: { rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
          } as AuthorizationPolicy,
        ],
        pod: { namespace: 'demo', labels: { app: 'reviews' } },
      });
      inbound.apply({ ...config(permissive(), 'posts'), authz: { ...block!, listeners: [] } });
      expect((await post(body)).body).to.equal(want);
    });

    it('an Upgrade request is checked like any request: a denied WebSocket never reaches the app', async () => {
      const { block } = translateAuthz({
        policies: [
          {
            apiVersion: 'security.istio.io/v1',
            kind: 'AuthorizationPolicy',
            metadata: { name: 'no-admin', namespace: 'demo' },
            spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] },
          } as AuthorizationPolicy,
        ],
        pod: { namespace: 'demo', labels: { app: 'reviews' } },
      });
      inbound.apply({ ...config(permissive(), 'ws'), authz: { ...block!, listeners: [] } });
      const upgrade = (path: string): Promise<string> =>
        rawExchange(
          port,
          `GET ${path} HTTP/1.1\r\nhost: reviews\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n`,
          12,
        );
      const before = seen.length;
      const denied = await upgrade('/admin');
      expect(denied).to.match(/^HTTP\/1\.1 403/);
      const encoded = await upgrade('/%61dmin');
      expect(encoded, 'the normalized path is checked').to.match(/^HTTP\/1\.1 403/);
      expect(seen.length, 'the app saw no upgrade').to.equal(before);
      expect(await upgrade('/chat')).to.match(/^HTTP\/1\.1 101/);
      expect(seen.at(-1)!.url).to.equal('/chat');
    });

    it("an upgrade's Connection-named fields stay on the client hop; the upgrade reaches the app, a client's XFCC never does", async () => {
      inbound.apply(config(permissive(), 'ws-named'));
      const answer = await rawExchange(
        port,
        'GET /chat-named HTTP/1.1\r\nhost: reviews\r\nconnection: Upgrade, x-secret, x-forwarded-client-cert\r\n' +
          'upgrade: websocket\r\nx-secret: 1\r\nx-forwarded-client-cert: URI=spiffe://forged\r\nkeep-alive: timeout=5\r\n\r\n',
        12,
      );
      expect(answer).to.match(/^HTTP\/1\.1 101/);
      const got = seen.at(-1)!;
      expect(got.url).to.equal('/chat-named');
      expect(got.headers['x-secret']).to.equal(undefined);
      expect(got.headers['keep-alive']).to.equal(undefined);
      expect(got.headers['x-forwarded-client-cert'], "plaintext: no XFCC, and never the client's").to.equal(
        undefined,
      );
      expect(got.headers.upgrade).to.equal('websocket');
      expect(got.headers.connection).to.equal('upgrade');
      expect(got.headers.host).to.equal('reviews');
    });
  });

  describe('RequestAuthentication on the inbound side, and its principal in AuthorizationPolicy', () => {
    const key = makeKey('rsa', 'k1');
    const ISSUER = 'https://issuer.example';
    const now = (): number => Math.floor(Date.now() / 1000);
    const token = (sub: string, extra: Record<string, unknown> = {}): string =>
      signJwt('RS256', key.privateKey, { iss: ISSUER, sub, exp: now() + 600, ...extra }, { kid: 'k1' });
    const requireJwt = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'require-jwt', namespace: 'demo' },
      spec: { rules: [{ from: [{ source: { requestPrincipals: [`${ISSUER}/alice`] } }] }] },
    } as AuthorizationPolicy;
    /** The sidecar config weftd pushes: jwt and authz blocks guarding no outbound listener. */
    const withJwt = (policies: AuthorizationPolicy[]): ProxyConfig => {
      const ra = {
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: { name: 'jwt', namespace: 'demo' },
        spec: { jwtRules: [{ issuer: ISSUER, jwks: jwks(key) }] },
      } as RequestAuthentication;
      const { jwt } = requestAuthnFor({
        policies: [ra],
        workload: { namespace: 'demo', labels: { app: 'reviews' } },
        rootNamespace: 'weft-system',
        jwks: { keys: () => ({ jwks: '', error: 'no URIs here' }) },
      });
      const { block } = translateAuthz({ policies, pod: { namespace: 'demo', labels: { app: 'reviews' } } });
      return {
        ...config(permissive(), 'jwt'),
        jwt: { ...jwt!, listeners: [] },
        ...(block ? { authz: { ...block, listeners: [] } } : {}),
      };
    };

    it('a valid token passes and is stripped before the app; a bad one is 401 with www-authenticate and the app sees nothing', async () => {
      inbound.apply(withJwt([]));
      const ok = await plainRequest(port, {
        path: '/t',
        headers: { authorization: `Bearer ${token('alice')}` },
      });
      expect(ok.status).to.equal(200);
      expect(seen.at(-1)!.headers.authorization, 'forwardOriginalToken is false').to.equal(undefined);
      const before = seen.length;
      const bad = await plainRequest(port, {
        headers: { authorization: `Bearer ${token('alice', { exp: now() - 3600 })}` },
      });
      expect(bad.status).to.equal(401);
      expect(bad.body).to.equal('Jwt is expired');
      expect(bad.headers['www-authenticate']).to.match(/^Bearer realm=/);
      expect(bad.headers['x-weft-response-flags']).to.equal('JWT');
      expect(seen.length).to.equal(before);
      expect(
        (await plainRequest(port)).status,
        'no token: no principal, still allowed without a policy',
      ).to.equal(200);
    });

    it('requestPrincipals: alice passes, bob and a request without a token get 403 RBAC', async () => {
      inbound.apply(withJwt([requireJwt]));
      const h = (sub: string): Record<string, string> => ({ authorization: `Bearer ${token(sub)}` });
      expect((await plainRequest(port, { headers: h('alice') })).status).to.equal(200);
      expect((await plainRequest(port, { headers: h('bob') })).status).to.equal(403);
      expect((await plainRequest(port)).status).to.equal(403);
      expect((await meshRequest(port, peerCert, root.certPem, { headers: h('alice') })).status).to.equal(200);
    });
  });

  it('without an original destination, HTTP goes to the Host port; a Host port out of range answers 400 instead of crashing', async () => {
    inbound.apply(config(permissive()));
    dstPort = null;
    const r = await plainRequest(port, { headers: { host: `reviews:${appPort}` }, path: '/by-host' });
    expect(r.body).to.equal('app');
    const bad = await plainRequest(port, { headers: { host: 'reviews:99999' } });
    expect(bad.status, 'the Host is not uri-host[:port]').to.equal(400);
    expect(bad.headers['x-weft-response-flags']).to.equal('DPE');
    expect((await plainRequest(port, { headers: { host: `reviews:${appPort}` } })).status).to.equal(200);
  });

  it('describe() says what is enforced and what was refused lately', async () => {
    await rawExchange(port, 'plaintext');
    const d = inbound.describe();
    expect(d.workload).to.deep.equal({ mode: 'STRICT', policy: STRICT });
    expect(d.identity).to.equal(SELF);
    expect((d.refused as Record<string, number>).plaintext).to.be.greaterThan(0);
    expect((d.recentRefusals as unknown[]).length).to.be.greaterThan(0);
  });
});
