/**
 * Client-side mesh mTLS and TLS origination, for real on loopback: an in-process proxy (the
 * client sidecar) with a workload certificate from the weftd stand-in (weftd's CA code), and on
 * the other side a second workload identity behind a TLS terminator that forwards to an HTTP app
 * (a stand-in for the server sidecar's inbound, which is built separately). Checks the SPIFFE
 * identity both ways, ALPN, auto-mTLS by endpoint label, and that a wrong or untrusted peer is a
 * connect failure (503 UF, counted) that never reaches the app.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { Cluster, ProxyConfig, UpstreamTls } from '../../../pkg/proxyconfig/types.js';
import { WorkloadIdentity } from '../../../proxy/identity/workload.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { raw, request, startProxy, upstream, type Started, type Upstream } from './helpers.js';

const quiet = createLogger('mtls-test', { silent: true });
const MESHED = { 'security.istio.io/tlsMode': 'istio' };

interface Terminator {
  port: number;
  /** Per accepted TLS connection: the client's URI SAN and the ALPN protocol chosen. */
  peers: { spiffe: string | undefined; alpn: string | false | null; serial?: string | undefined }[];
  close(): void;
}

/** Terminates mTLS with `identity` (client certificate required, mesh roots) and pipes to `app`. */
async function terminator(identity: WorkloadIdentity, app: Upstream): Promise<Terminator> {
  const t: Terminator = { port: 0, peers: [], close: () => server.close() };
  const options = (): tls.TlsOptions => {
    const c = identity.current()!;
    return { key: c.keyPem, cert: c.certChainPem, ca: c.rootsPem };
  };
  const server = tls.createServer(
    { ...options(), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['istio-http/1.1', 'istio'] },
    (sock) => {
      const peer = sock.getPeerX509Certificate();
      t.peers.push({
        spiffe: peer?.subjectAltName?.replace(/^URI:/, ''),
        alpn: sock.alpnProtocol,
        serial: peer?.serialNumber,
      });
      const out = net.connect(app.port, '127.0.0.1');
      sock.pipe(out).pipe(sock);
      sock.on('error', () => out.destroy());
      out.on('error', () => sock.destroy());
    },
  );
  identity.onChange(() => server.setSecureContext(options()));
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.port = (server.address() as net.AddressInfo).port;
  return t;
}

function config(clusters: Cluster[]): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: `v${Math.random()}`,
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        port: 0,
        virtualHosts: clusters.map((c) => ({
          name: c.name,
          domains: [c.service!],
          routes: [
            {
              action: { type: 'route', destinations: [{ cluster: c.name, weight: 100 }] },
              retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
            },
          ],
        })),
      },
    ],
    clusters,
  };
}

const cluster = (
  service: string,
  port: number,
  tlsCfg?: UpstreamTls,
  labels: Record<string, string> = {},
): Cluster => ({
  name: `outbound|80||${service}`,
  service,
  port: 80,
  endpoints: [{ address: '127.0.0.1', port, labels }],
  ...(tlsCfg ? { tls: tlsCfg } : {}),
});

async function stat(p: Started, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${p.admin}/stats`)).text();
  const m = new RegExp(`^cluster\\.${name.replace(/[|.]/g, '\\$&')}: (\\d+)$`, 'm').exec(text);
  return Number(m?.[1] ?? NaN);
}

describe('proxy upstream mTLS (client side) over loopback', function () {
  this.timeout(60_000);
  let weftd: FakeWeftd;
  let client: WorkloadIdentity;
  let server: WorkloadIdentity;
  let app: Upstream;
  let term: Terminator;
  const CLIENT = 'spiffe://cluster.local/ns/shop/sa/productpage';
  const SERVER = 'spiffe://cluster.local/ns/shop/sa/reviews';
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-mtls-'));
  const identity = (token: string): WorkloadIdentity => {
    const tokenPath = path.join(dir, token);
    writeFileSync(tokenPath, token);
    return new WorkloadIdentity({
      address: weftd.address,
      caRootPath: weftd.rootPath,
      tokenPath,
      log: quiet,
    });
  };

  before(async () => {
    weftd = await fakeWeftd(null);
    weftd.identities.set('t-client', { namespace: 'shop', serviceAccount: 'productpage' });
    weftd.identities.set('t-server', { namespace: 'shop', serviceAccount: 'reviews' });
    client = identity('t-client');
    server = identity('t-server');
    await client.start();
    await server.start();
    expect(client.current()?.spiffeId).to.equal(CLIENT);
    app = await upstream('reviews-app');
    term = await terminator(server, app);
  });
  after(async () => {
    client.stop();
    server.stop();
    term.close();
    await app.close();
    await weftd.close();
  });
  let proxy: Started | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  it('ISTIO_MUTUAL: originates mTLS with the workload certificate, Istio ALPN, and the peer is who the cluster expects', async () => {
    const c = cluster('reviews', term.port, {
      mode: 'ISTIO_MUTUAL',
      sni: 'outbound_.80_._.reviews',
      subjectAltNames: [SERVER],
    });
    proxy = await startProxy(config([c]), { identity: client });
    const before = app.seen.length;
    const r = await request(proxy.port, { host: 'reviews' });
    expect(r.status, r.body).to.equal(200);
    expect(r.body).to.equal('reviews-app');
    expect(app.seen.length).to.equal(before + 1);
    expect(term.peers.at(-1)).to.deep.include({ spiffe: CLIENT, alpn: 'istio-http/1.1' });
    expect(await stat(proxy, `${c.name}.ssl.handshake`)).to.equal(1);
  });

  it('a peer with another identity: 503 UF, counted as fail_verify_san, the app never sees the request', async () => {
    const c = cluster('reviews', term.port, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/ratings'],
    });
    proxy = await startProxy(config([c]), { identity: client });
    const before = app.seen.length;
    const r = await request(proxy.port, { host: 'reviews' });
    expect(r.status).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.equal('UF');
    expect(r.body).to.match(/ETLS_HANDSHAKE/);
    expect(app.seen.length).to.equal(before);
    expect(await stat(proxy, `${c.name}.ssl.fail_verify_san`)).to.equal(1);
    expect(await stat(proxy, `${c.name}.upstream_cx_connect_fail`)).to.equal(1);
  });

  it('a peer whose certificate another root signed: 503 UF, ssl.connection_error', async () => {
    const stranger = createCA({ commonName: 'not the mesh', ttlMs: 3600_000, now: new Date() });
    const leaf = issueServing(stranger, {
      commonName: 'x',
      dnsNames: ['x'],
      ttlMs: 3600_000,
      now: new Date(),
    });
    const rogue = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end());
    rogue.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
    const c = cluster('reviews', (rogue.address() as net.AddressInfo).port, { mode: 'ISTIO_MUTUAL' });
    proxy = await startProxy(config([c]), { identity: client });
    const r = await request(proxy.port, { host: 'reviews' });
    expect(r.status).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.equal('UF');
    expect(await stat(proxy, `${c.name}.ssl.connection_error`)).to.equal(1);
    expect(await stat(proxy, `${c.name}.ssl.fail_verify_san`)).to.equal(0);
    rogue.close();
  });

  it('auto-mTLS: TLS to an endpoint labelled tlsMode=istio, plaintext to one without', async () => {
    const plainApp = await upstream('legacy-app');
    const auto: UpstreamTls = { mode: 'ISTIO_MUTUAL', auto: true, subjectAltNames: [SERVER] };
    const meshed = cluster('reviews', term.port, auto, MESHED);
    const legacy = cluster('legacy', plainApp.port, auto, {});
    proxy = await startProxy(config([meshed, legacy]), { identity: client });
    const peers = term.peers.length;
    expect((await request(proxy.port, { host: 'reviews' })).body).to.equal('reviews-app');
    expect(term.peers.length).to.equal(peers + 1);
    expect((await request(proxy.port, { host: 'legacy' })).body).to.equal('legacy-app');
    expect(plainApp.seen).to.have.length(1);
    await plainApp.close();
  });

  it('a TCP listener originates mesh mTLS too, offering ALPN istio (the peer pipes it as TCP), and a wrong peer is cut', async () => {
    const tcpConfig = (c: Cluster): ProxyConfig => ({
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: `v${Math.random()}`,
      listeners: [{ name: 'tcp-out', protocol: 'TCP', port: 0, cluster: c.name }],
      clusters: [c],
    });
    const good = cluster('reviews', term.port, { mode: 'ISTIO_MUTUAL', subjectAltNames: [SERVER] });
    proxy = await startProxy(tcpConfig(good), { identity: client });
    const req = 'GET /tcp HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n';
    expect(await raw(proxy.port, req, 2000)).to.match(/^HTTP\/1\.1 200[\s\S]*reviews-app/);
    expect(term.peers.at(-1)).to.deep.include({ spiffe: CLIENT, alpn: 'istio' });
    expect(await stat(proxy, `${good.name}.ssl.handshake`)).to.equal(1);
    await proxy.stop();
    const bad = cluster('reviews', term.port, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://x/ns/y/sa/z'],
    });
    proxy = await startProxy(tcpConfig(bad), { identity: client });
    const before = app.seen.length;
    expect(await raw(proxy.port, req, 2000)).to.equal('');
    expect(app.seen.length, 'nothing reaches the app through an unverified peer').to.equal(before);
    expect(await stat(proxy, `${bad.name}.ssl.fail_verify_san`)).to.equal(1);
  });

  it('a WebSocket upgrade goes over mesh mTLS too, and a wrong peer is refused with UF', async () => {
    const up = 'GET /ws HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
    const good = cluster('reviews', term.port, { mode: 'ISTIO_MUTUAL', subjectAltNames: [SERVER] });
    proxy = await startProxy(config([good]), { identity: client });
    const peers = term.peers.length;
    const first = await raw(proxy.port, up, 1000);
    expect(first, first).to.match(/^HTTP\/1\.1 101/);
    expect(term.peers.length).to.equal(peers + 1);
    await proxy.stop();
    const bad = cluster('reviews', term.port, {
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://x/ns/y/sa/z'],
    });
    proxy = await startProxy(config([bad]), { identity: client });
    expect(await raw(proxy.port, up, 1000)).to.match(/^HTTP\/1\.1 503[\s\S]*x-weft-response-flags: UF/);
    expect(await stat(proxy, `${bad.name}.ssl.fail_verify_san`)).to.equal(1);
  });

  it('no workload certificate yet: mesh mTLS fails as UF (never plaintext)', async () => {
    const c = cluster('reviews', term.port, { mode: 'ISTIO_MUTUAL' });
    proxy = await startProxy(config([c])); // no identity
    const r = await request(proxy.port, { host: 'reviews' });
    expect(r.status).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.equal('UF');
    expect(r.body).to.match(/ETLS_HANDSHAKE/);
  });

  it('a rotated client certificate is used for new connections', async () => {
    const c = cluster('reviews', term.port, { mode: 'ISTIO_MUTUAL', subjectAltNames: [SERVER] });
    proxy = await startProxy(config([c]), { identity: client });
    await request(proxy.port, { host: 'reviews', agent: false });
    const first = new X509Certificate(client.current()!.certChainPem).serialNumber;
    await client.renew();
    const second = new X509Certificate(client.current()!.certChainPem).serialNumber;
    expect(second).to.not.equal(first);
    // the pooled connection (old certificate) is still fine; drop it to see a new handshake
    await proxy.stop();
    proxy = await startProxy(config([c]), { identity: client });
    expect((await request(proxy.port, { host: 'reviews' })).status).to.equal(200);
    expect(term.peers.at(-1)).to.deep.include({ spiffe: CLIENT, serial: second });
  });

  describe('TLS origination (SIMPLE / MUTUAL)', () => {
    const ext = createCA({ commonName: 'external CA', ttlMs: 3600_000, now: new Date() });
    const serving = issueServing(ext, {
      commonName: 'api.example.com',
      dnsNames: ['api.example.com'],
      ttlMs: 3600_000,
      now: new Date(),
    });
    const caFile = path.join(dir, 'ext-ca.pem');
    let https: tls.Server;
    let port = 0;
    const sawClientCert: boolean[] = [];
    before(async () => {
      writeFileSync(caFile, ext.certPem);
      https = tls.createServer(
        {
          cert: serving.certPem,
          key: serving.keyPem,
          ca: ext.certPem,
          requestCert: true,
          rejectUnauthorized: false,
        },
        (s) => {
          sawClientCert.push(s.getPeerX509Certificate() !== undefined);
          const out = net.connect(app.port, '127.0.0.1');
          s.pipe(out).pipe(s);
          s.on('error', () => out.destroy());
          out.on('error', () => s.destroy());
        },
      );
      https.on('tlsClientError', () => undefined);
      await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
      port = (https.address() as net.AddressInfo).port;
    });
    after(() => https.close());

    const table: [string, () => UpstreamTls, number, boolean | null][] = [
      [
        'SIMPLE with the CA file and the host as SNI',
        () => ({ mode: 'SIMPLE', sni: 'api.example.com', caCertificates: caFile }),
        200,
        false,
      ],
      [
        'SIMPLE verifying subjectAltNames',
        () => ({ mode: 'SIMPLE', sni: 'x', caCertificates: caFile, subjectAltNames: ['api.example.com'] }),
        200,
        false,
      ],
      [
        'SIMPLE: the certificate is not for the SNI name → UF',
        () => ({ mode: 'SIMPLE', sni: 'other.example.com', caCertificates: caFile }),
        503,
        null,
      ],
      [
        'SIMPLE: untrusted (system roots) → UF',
        () => ({ mode: 'SIMPLE', sni: 'api.example.com' }),
        503,
        null,
      ],
      [
        'SIMPLE insecureSkipVerify',
        () => ({ mode: 'SIMPLE', sni: 'other', insecureSkipVerify: true }),
        200,
        false,
      ],
      [
        'MUTUAL presents the client certificate from files',
        () => {
          const mine = issueServing(ext, {
            commonName: 'client',
            dnsNames: ['client'],
            ttlMs: 3600_000,
            now: new Date(),
          });
          writeFileSync(path.join(dir, 'c.pem'), mine.certPem);
          writeFileSync(path.join(dir, 'k.pem'), mine.keyPem);
          return {
            mode: 'MUTUAL',
            sni: 'api.example.com',
            caCertificates: caFile,
            clientCertificate: path.join(dir, 'c.pem'),
            privateKey: path.join(dir, 'k.pem'),
          };
        },
        200,
        true,
      ],
      [
        'MUTUAL with credentialName but no credential delivered (a sidecar) → UF, never plaintext',
        () => ({ mode: 'MUTUAL', credentialName: 'client-cert' }),
        503,
        null,
      ],
    ];
    for (const [name, tlsCfg, status, clientCert] of table)
      it(name, async () => {
        const seen = sawClientCert.length;
        proxy = await startProxy(config([cluster('api.example.com', port, tlsCfg())]));
        const r = await request(proxy.port, { host: 'api.example.com' });
        expect(r.status, r.body).to.equal(status);
        if (status === 503) expect(r.headers['x-weft-response-flags']).to.equal('UF');
        if (clientCert !== null) expect(sawClientCert.slice(seen)).to.deep.equal([clientCert]);
      });
  });
});
