/**
 * Which protocol a request goes upstream in, beyond the port's: DestinationRule
 * `connectionPool.http.useClientProtocol` (the client's protocol, Envoy's
 * use_downstream_protocol_config, whatever the port or h2UpgradePolicy say) and HTTP/2 towards a
 * cluster with TLS origination (SIMPLE/MUTUAL), where the session offers ALPN `h2` (Istio's
 * ALPNH2Only) so a server that insists on ALPN, as node's and gRPC's TLS servers do, accepts it.
 * Also `http2KeepAlive` (PINGs on upstream sessions; a peer that stops answering is dropped).
 * Real sockets and TLS on loopback, Istio YAML through the translator.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCA, issueCert } from '../../../hack/cluster/pki.js';
import { H2_PREFACE } from '../../../proxy/h2/downstream.js';
import { startProxy, type Started } from './helpers.js';
import { waitFor } from '../../support/wait.js';

interface Seen {
  version: string;
  alpn?: string | false | undefined;
}

/** An upstream that answers HTTP/1.1 and h2c on one port (the first bytes decide), recording which. */
async function bothProtocols(): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const answer = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): void => {
    seen.push({ version: req.httpVersion });
    res.end(`HTTP/${req.httpVersion}`);
  };
  const h1 = http.createServer(answer);
  const h2 = http2.createServer(answer);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.once('readable', () => {
      const head =
        (s.read(H2_PREFACE.length) as Buffer | null) ?? (s.read() as Buffer | null) ?? Buffer.alloc(0);
      s.unshift(head);
      (head.equals(H2_PREFACE) ? h2 : h1).emit('connection', s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function entry(port: number, protocol: string, dr: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: web, protocol: ${protocol}}]
  endpoints: [{address: 127.0.0.1, ports: {web: ${port}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app, namespace: default}
spec:
  host: app.example.com
  trafficPolicy: ${dr}
`;
}

function h1get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, path: '/', agent: false, headers: { host: 'app.example.com:8080' } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    r.on('error', reject);
    r.end();
  });
}

function h2get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':path': '/', ':authority': 'app.example.com:8080' });
    let status = 0;
    let body = '';
    s.on('response', (h) => (status = Number(h[':status'])));
    s.on('data', (c: Buffer) => (body += c.toString()));
    s.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    s.on('error', reject);
    s.end();
  });
}

describe('upstream protocol: useClientProtocol, and HTTP/2 over TLS origination (ALPN h2)', function () {
  this.timeout(60_000);
  let p: Started | null = null;
  afterEach(async () => {
    await p?.stop();
    p = null;
  });

  describe('useClientProtocol', () => {
    let up: Awaited<ReturnType<typeof bothProtocols>>;
    before(async () => (up = await bothProtocols()));
    after(() => up.close());

    it('an HTTP/1.1 client goes upstream in HTTP/1.1, an h2c client in HTTP/2, on one cluster', async () => {
      p = await startProxy(entry(up.port, 'HTTP', '{connectionPool: {http: {useClientProtocol: true}}}'));
      expect(await h1get(p.port)).to.deep.equal({ status: 200, body: 'HTTP/1.1' });
      expect(await h2get(p.port)).to.deep.equal({ status: 200, body: 'HTTP/2.0' });
      expect(await h1get(p.port)).to.deep.equal({ status: 200, body: 'HTTP/1.1' });
    });

    it('wins over the port: an HTTP/1.1 client to a GRPC port goes upstream in HTTP/1.1', async () => {
      p = await startProxy(entry(up.port, 'GRPC', '{connectionPool: {http: {useClientProtocol: true}}}'));
      expect((await h1get(p.port)).body).to.equal('HTTP/1.1');
      expect((await h2get(p.port)).body).to.equal('HTTP/2.0');
    });

    it('without it the port decides: an h2c client to an HTTP port goes upstream in HTTP/1.1', async () => {
      p = await startProxy(entry(up.port, 'HTTP', '{connectionPool: {http: {maxRetries: 3}}}'));
      expect((await h2get(p.port)).body).to.equal('HTTP/1.1');
    });
  });

  describe('TLS origination to an HTTP/2 port', () => {
    const ca = createCA('h2-origination-ca', 30);
    const serving = issueCert(ca, {
      commonName: 'h2.example.com',
      hosts: ['h2.example.com'],
      usage: 'server',
      validDays: 30,
    });
    const client = issueCert(ca, { commonName: 'client', hosts: ['client'], usage: 'client', validDays: 30 });
    const dir = mkdtempSync(path.join(tmpdir(), 'weft-h2-origination-'));
    const file = (n: string, s: string): string => {
      writeFileSync(path.join(dir, n), s);
      return path.join(dir, n);
    };
    const caFile = file('ca.pem', ca.certPem);
    const certFile = file('client.pem', client.certPem);
    const keyFile = file('client.key', client.keyPem);
    const seen: Seen[] = [];
    let server: http2.Http2SecureServer;
    let port = 0;
    before(async () => {
      // HTTP/2 only: a client without ALPN h2 is refused (node's rule; gRPC servers have it too)
      server = http2.createSecureServer(
        {
          cert: serving.certPem,
          key: serving.keyPem,
          ca: ca.certPem,
          requestCert: true,
          rejectUnauthorized: false,
        },
        (req, res) => {
          seen.push({ version: req.httpVersion, alpn: req.stream.session?.alpnProtocol });
          res.end(`HTTP/${req.httpVersion}`);
        },
      );
      server.on('unknownProtocol', (s) => s.destroy());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    after(() => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const [mode, extra] of [
      ['SIMPLE', ''],
      ['MUTUAL', `, clientCertificate: ${certFile}, privateKey: ${keyFile}`],
    ] as const)
      it(`${mode}: the session offers ALPN h2 and speaks HTTP/2`, async () => {
        seen.length = 0;
        p = await startProxy(
          entry(
            port,
            'HTTP2',
            `{tls: {mode: ${mode}, sni: h2.example.com, caCertificates: ${caFile}${extra}}}`,
          ),
        );
        expect(await h1get(p.port)).to.deep.equal({ status: 200, body: 'HTTP/2.0' });
        expect(seen).to.deep.equal([{ version: '2.0', alpn: 'h2' }]);
      });
  });
});

describe('http2KeepAlive: PINGs on upstream HTTP/2 sessions', function () {
  this.timeout(60_000);
  let p: Started | null = null;
  afterEach(async () => {
    await p?.stop();
    p = null;
  });
  const keepAlive = '{connectionPool: {http: {http2KeepAlive: {interval: 100ms, timeout: 300ms}}}}';

  it('a session gets a PING each interval, none without the setting', async () => {
    let pings = 0;
    const server = http2.createServer((_req, res) => res.end('ok'));
    server.on('session', (s) => s.on('ping', () => pings++));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      p = await startProxy(entry(port, 'HTTP2', keepAlive));
      expect((await h1get(p.port)).status).to.equal(200);
      await new Promise((r) => setTimeout(r, 800));
      expect(pings).to.be.at.least(3);
      await p.stop();
      p = await startProxy(entry(port, 'HTTP2', '{connectionPool: {http: {maxRetries: 3}}}'));
      pings = 0;
      expect((await h1get(p.port)).status).to.equal(200);
      await new Promise((r) => setTimeout(r, 800));
      expect(pings).to.equal(0);
    } finally {
      server.close();
    }
  });

  it('a peer that stops answering: the session is closed after the timeout and its request fails (503 UC)', async () => {
    // an HTTP/2 server by hand that completes the handshake, then answers nothing (not even PING)
    const sockets: net.Socket[] = [];
    const closed: number[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.once('data', () => s.write(Buffer.concat([h2frame(4, 0, 0), h2frame(4, 1, 0)])));
      s.on('error', () => undefined);
      s.once('close', () => closed.push(Date.now()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      p = await startProxy(entry(port, 'HTTP2', keepAlive));
      const t0 = Date.now();
      const r = await h1get(p.port);
      expect(r.status).to.equal(503);
      expect(r.body).to.include('UC');
      expect(Date.now() - t0).to.be.below(5000);
      await waitFor('the dead session was closed', () => closed.length >= 1);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

/** One HTTP/2 frame header with an empty payload (SETTINGS, SETTINGS ACK). */
function h2frame(type: number, flags: number, stream: number): Buffer {
  const h = Buffer.alloc(9);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return h;
}
