/**
 * Gateway servers with `tls.mode: ISTIO_MUTUAL` on loopback (proxy/gateway-tls.ts, issue #18):
 *
 *  - a real `proxy gateway` process whose workload certificate comes from a fake weftd's CA
 *    (short-lived, so it rotates during the suite): mesh clients (HTTP/1.1, h2, the mesh ALPN a
 *    sidecar offers) get 200 and are the request's source principal (AuthorizationPolicy
 *    `principals`, the access log); no client certificate, one from another root, or a SAN not in
 *    `subjectAltNames` is refused; a SIMPLE server on the same port is chosen by SNI; an
 *    in-process sidecar originating ISTIO_MUTUAL (HTTP/1.1 and HTTP/2 clusters) reaches it;
 *  - an in-process gateway with a test identity: no certificate yet refuses cleanly (counted)
 *    and serves once one arrives, and a root rotation (old + new roots, then new only) applies to
 *    new handshakes without a restart.
 */
import { expect } from 'chai';
import https from 'node:https';
import http2 from 'node:http2';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import {
  PROXY_CONFIG_API_VERSION,
  type GatewayTlsServer,
  type ProxyConfig,
} from '../../../pkg/proxyconfig/types.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';
import { createCA, issueCert, type CertPem } from '../../../hack/cluster/pki.js';
import { fakeWeftd, GOOD_TOKEN, type FakeWeftd } from './fake-weftd.js';
import { leafWithSans, meshRoot, TestIdentity, workloadCert } from './mesh-identity.js';
import {
  failure,
  metricsText,
  metricValue,
  request,
  startProxy,
  upstream,
  type Started,
  type Upstream,
} from './helpers.js';
import { waitFor } from '../../support/wait.js';
import { freePort } from '../../support/ports.js';
import { startGatewayProcess, type ProxyProcess } from '../../support/proxy-process.js';

const GATEWAY_ID = 'spiffe://cluster.local/ns/istio-system/sa/ingressgateway';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const OTHER = 'spiffe://cluster.local/ns/shop/sa/other';

const HOSTS = ['mesh.example.com', 'only.example.com', 'simple.example.com'];

function servers(): GatewayTlsServer[] {
  return [
    { name: 'edge/gw[0]', sniHosts: ['mesh.example.com'], mode: 'ISTIO_MUTUAL' },
    { name: 'edge/gw[1]', sniHosts: ['only.example.com'], mode: 'ISTIO_MUTUAL', subjectAltNames: [WEB] },
    { name: 'edge/gw[2]', sniHosts: ['simple.example.com'], mode: 'SIMPLE', credentialName: 'simple-cert' },
  ];
}

function gatewayConfig(
  port: number,
  appPort: number,
  simple: CertPem,
  extra: Partial<ProxyConfig> = {},
): ProxyConfig {
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: `v${Math.random()}`,
    listeners: [
      {
        name: 'gateway-443',
        protocol: 'HTTP',
        address: '127.0.0.1',
        port,
        edge: true,
        tls: { servers: servers() },
        virtualHosts: HOSTS.map((h) => ({
          name: h,
          domains: [h, `${h}:443`],
          routes: [
            {
              action: { type: 'route', destinations: [{ cluster: 'app', weight: 100 }] },
              retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
            },
          ],
        })),
      },
    ],
    clusters: [{ name: 'app', type: 'STATIC', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
    credentials: {
      'simple-cert': {
        source: 'istio-system/simple-cert',
        certChain: simple.certPem,
        privateKey: simple.keyPem,
      },
    },
    telemetry: { accessLog: true, workload: { name: 'ingressgateway', namespace: 'istio-system' } },
    ...extra,
  };
}

interface Reply {
  status: number;
  body: string;
  /** The gateway certificate's URI SAN and serial. */
  serverId: string;
  serial: string;
  alpn: string | false | null;
}

/** The gateway's certificate carries a SPIFFE ID only: the mesh check, not a host name check. */
const meshServerCheck = (): undefined => undefined;

function idOf(cert: tls.PeerCertificate | undefined): string {
  return (cert?.subjectaltname ?? '').replace(/^URI:/, '');
}

/** HTTP/1.1 over TLS (ALPN http/1.1) with an optional client certificate. */
function get(port: number, sni: string, ca: string, cert?: KeyPairPem, path = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host: '127.0.0.1',
      port,
      path,
      servername: sni,
      headers: { host: sni },
      ca,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      checkServerIdentity: meshServerCheck,
      ALPNProtocols: ['http/1.1'],
      agent: false,
      timeout: 5000,
    };
    const req = https.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const s = res.socket as tls.TLSSocket;
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          serverId: idOf(s.getPeerCertificate()),
          serial: s.getPeerCertificate()?.serialNumber ?? '',
          alpn: s.alpnProtocol,
        });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** h2 over TLS (ALPN h2). */
async function getH2(port: number, sni: string, ca: string, cert: KeyPairPem): Promise<Reply> {
  const session = http2.connect(`https://${sni}`, {
    host: '127.0.0.1',
    port,
    servername: sni,
    ca,
    cert: cert.certPem,
    key: cert.keyPem,
    checkServerIdentity: meshServerCheck,
  } as http2.SecureClientSessionOptions);
  try {
    return await new Promise<Reply>((resolve, reject) => {
      session.once('error', reject);
      const req = session.request({ ':path': '/', ':authority': sni });
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        const s = session.socket as tls.TLSSocket;
        resolve({
          status,
          body: Buffer.concat(chunks).toString(),
          serverId: idOf(s.getPeerCertificate()),
          serial: s.getPeerCertificate()?.serialNumber ?? '',
          alpn: s.alpnProtocol,
        });
      });
      req.end();
    });
  } finally {
    session.destroy();
  }
}

/** A raw HTTP/1.1 request over TLS offering `alpn` (a sidecar's mesh ALPN); the status line and the ALPN chosen. */
function rawWithAlpn(
  port: number,
  sni: string,
  ca: string,
  cert: KeyPairPem,
  alpn: string[],
): Promise<{ statusLine: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: sni,
      ca,
      cert: cert.certPem,
      key: cert.keyPem,
      ALPNProtocols: alpn,
      checkServerIdentity: meshServerCheck,
    });
    let data = '';
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('error', reject);
    s.once('secureConnect', () => s.write(`GET / HTTP/1.1\r\nHost: ${sni}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('close', () => resolve({ statusLine: data.split('\r\n')[0] ?? '', alpn: s.alpnProtocol }));
  });
}

/** A sidecar's outbound config: HTTP to `gateway.example` → ISTIO_MUTUAL to the gateway's port. */
function sidecarConfig(gatewayPort: number, h2: boolean): ProxyConfig {
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'sidecar',
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        port: 0,
        virtualHosts: [
          {
            name: 'gw',
            domains: ['mesh.example.com'],
            routes: [
              {
                action: { type: 'route', destinations: [{ cluster: 'to-gateway', weight: 100 }] },
                retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
              },
            ],
          },
        ],
      },
    ],
    clusters: [
      {
        name: 'to-gateway',
        type: 'STATIC',
        ...(h2 ? { http2: true } : {}),
        endpoints: [{ address: '127.0.0.1', port: gatewayPort }],
        // a DestinationRule's tls: ISTIO_MUTUAL, the gateway's server name and identity
        tls: { mode: 'ISTIO_MUTUAL', sni: 'mesh.example.com', subjectAltNames: [GATEWAY_ID] },
      },
    ],
  };
}

describe('gateway ISTIO_MUTUAL: a `proxy gateway` process with its workload certificate from weftd', function () {
  this.timeout(60_000);
  let weftd: FakeWeftd;
  let gateway: ProxyProcess;
  let app: Upstream;
  let port: number;
  let metricsPort: number;
  let root: string;
  let web: KeyPairPem;
  let other: KeyPairPem;
  const simplePki = createCA('simple-ca', 30);
  const simple = issueCert(simplePki, {
    commonName: 'simple.example.com',
    hosts: ['simple.example.com'],
    usage: 'server',
    validDays: 30,
  });

  /** The gateway's access log has a line for `path` whose source principal is `principal`. */
  const accessLogged = (path: string, principal: string): boolean =>
    gateway
      .log()
      .split('\n')
      .some((l) => l.includes(path) && l.includes(`"source_principal":"${principal}"`));

  const push = async (extra: Partial<ProxyConfig> = {}): Promise<void> => {
    const cfg = gatewayConfig(port, app.port, simple, extra);
    weftd.push(cfg);
    await waitFor('the gateway applied the config', () =>
      gateway.log().includes(`"version":"${cfg.version}"`),
    );
  };

  before(async () => {
    app = await upstream('shop');
    port = await freePort();
    weftd = await fakeWeftd(null);
    // the gateway's service account; a short life, so the certificate rotates during the suite
    weftd.identities.set(GOOD_TOKEN, { namespace: 'istio-system', serviceAccount: 'ingressgateway' });
    weftd.certTtlMs = 6000;
    root = weftd.ca.certPem;
    web = workloadCert(weftd.ca, WEB);
    other = workloadCert(weftd.ca, OTHER);
    gateway = await startGatewayProcess(weftd);
    metricsPort = gateway.ports.metrics!;
    await push();
    await waitFor('the gateway holds its certificate', () => weftd.issued > 0);
  });

  after(async () => {
    gateway?.child.kill('SIGKILL');
    await weftd?.close();
    await app?.close();
  });

  it('a mesh client gets 200 over HTTP/1.1 and h2; the gateway presents its own SPIFFE identity', async () => {
    const h1 = await waitFor('HTTP/1.1 through ISTIO_MUTUAL', () =>
      get(port, 'mesh.example.com', root, web).catch(() => null),
    );
    expect(h1).to.include({ status: 200, body: 'shop', serverId: GATEWAY_ID, alpn: 'http/1.1' });
    const h2 = await getH2(port, 'mesh.example.com', root, web);
    expect(h2).to.include({ status: 200, body: 'shop', serverId: GATEWAY_ID, alpn: 'h2' });
    // the app behind hears who called, in Istio's XFCC form, from the gateway (SANITIZE_SET)
    expect(app.seen.at(-1)!.headers['x-forwarded-client-cert']).to.match(
      new RegExp(`^By=${GATEWAY_ID};Hash=[0-9a-f]{64};Subject="";URI=${WEB}$`),
    );
  });

  it('the mesh ALPN a sidecar offers is accepted (a Node server with no ALPN in common would fail the handshake)', async () => {
    // what a sidecar offers (proxy/upstream/tls.ts, proxy/h2/pool.ts) → what the gateway picks
    const offers: [string[], string][] = [
      [['istio-http/1.1', 'istio'], 'istio-http/1.1'],
      [['istio'], 'istio'],
      [['istio-peer-exchange', 'istio'], 'istio'],
      [['istio-h2', 'istio'], 'istio-h2'],
      [['http/1.1', 'h2'], 'h2'],
    ];
    for (const [offer, picked] of offers) {
      const r = await rawWithAlpn(port, 'mesh.example.com', root, web, offer);
      // the first bytes decide the protocol: an HTTP/1.1 request is served whatever ALPN said
      expect(r, offer.join(',')).to.deep.equal({ statusLine: 'HTTP/1.1 200 OK', alpn: picked });
    }
    // the SIMPLE server offers h2 and http/1.1 only, as before: a mesh-only offer fails there
    expect(
      await failure(rawWithAlpn(port, 'simple.example.com', simplePki.certPem, web, ['istio-http/1.1'])),
    ).to.match(/no_application_protocol|ALPN|socket hang up|ECONNRESET/i);
  });

  it('refused: no client certificate, a certificate from another root, a SAN not in subjectAltNames', async () => {
    const before = await metricsText(metricsPort);
    expect(await failure(get(port, 'mesh.example.com', root))).to.match(
      /certificate|ECONNRESET|socket hang up/i,
    );
    const foreign = workloadCert(meshRoot('another mesh'), WEB);
    expect(await failure(get(port, 'mesh.example.com', root, foreign))).to.match(
      /certificate|ECONNRESET|hang up|unknown ca/i,
    );
    // subjectAltNames restrict the identities: web is listed, other is not
    expect((await get(port, 'only.example.com', root, web)).status).to.equal(200);
    expect(await failure(get(port, 'only.example.com', root, other))).to.match(/ECONNRESET|socket hang up/i);
    const after = await metricsText(metricsPort);
    const refused = (t: string, reason: string): number =>
      metricValue(t, 'weft_proxy_gateway_tls_refused_total', `reason="${reason}"`);
    expect(refused(after, 'handshake_failed') - refused(before, 'handshake_failed')).to.equal(2);
    expect(refused(after, 'san_mismatch') - refused(before, 'san_mismatch')).to.equal(1);
  });

  it('a SIMPLE server on the same port is chosen by SNI and asks for no client certificate', async () => {
    const r = await get(port, 'simple.example.com', simplePki.certPem);
    expect(r.status).to.equal(200);
    expect(r.serverId).to.equal('DNS:simple.example.com');
  });

  it('the peer SPIFFE ID is the source principal: AuthorizationPolicy principals and the access log', async () => {
    const allowWeb: AuthorizationPolicy = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'only-web', namespace: 'istio-system' },
      spec: {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }],
      },
    };
    const { block } = translateAuthz({
      policies: [allowWeb],
      pod: { namespace: 'istio-system', labels: { istio: 'ingressgateway' } },
    });
    await push({ authz: block! });
    try {
      expect((await get(port, 'mesh.example.com', root, web)).status).to.equal(200);
      const denied = await get(port, 'mesh.example.com', root, other, '/denied-path');
      expect(denied.status).to.equal(403);
      // the SIMPLE server has no peer identity: no principal matches
      expect((await get(port, 'simple.example.com', simplePki.certPem)).status).to.equal(403);
      await waitFor('the access log names the principal', () => accessLogged('/denied-path', OTHER));
    } finally {
      await push();
    }
  });

  it('rate limits per source: each mesh caller has its own bucket, keyed by its SPIFFE ID', async () => {
    await push({
      rateLimits: {
        limits: [
          {
            name: 'RateLimit istio-system/per-caller',
            budget: { requests: 1, intervalMs: 3_600_000, per: 'source' },
          },
        ],
      },
    });
    try {
      expect((await get(port, 'mesh.example.com', root, web)).status).to.equal(200);
      expect((await get(port, 'mesh.example.com', root, web)).status).to.equal(429);
      expect((await get(port, 'mesh.example.com', root, other)).status, 'another principal').to.equal(200);
    } finally {
      await push();
    }
  });

  it('the gateway certificate rotates (short-lived) and new handshakes get the new one, open h2 sessions keep working', async () => {
    const session = http2.connect('https://mesh.example.com', {
      host: '127.0.0.1',
      port,
      servername: 'mesh.example.com',
      ca: root,
      cert: web.certPem,
      key: web.keyPem,
      checkServerIdentity: meshServerCheck,
    } as http2.SecureClientSessionOptions);
    const call = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':path': '/', ':authority': 'mesh.example.com' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        req.end();
      });
    try {
      expect(await call()).to.equal(200);
      const first = (await get(port, 'mesh.example.com', root, web)).serial;
      const issued = weftd.issued;
      await waitFor('a renewed certificate is presented', async () => {
        const r = await get(port, 'mesh.example.com', root, web);
        return r.status === 200 && r.serial !== first;
      });
      expect(weftd.issued).to.be.greaterThan(issued);
      expect(await call(), 'the session opened before the rotation').to.equal(200);
    } finally {
      session.destroy();
    }
  });

  for (const h2 of [false, true])
    it(`a sidecar originating ISTIO_MUTUAL (${h2 ? 'HTTP/2, istio-h2' : 'HTTP/1.1, istio-http/1.1'}) reaches the gateway`, async () => {
      const identity = Object.assign(new TestIdentity(WEB, weftd.ca), { summary: () => ({}) as never });
      const sidecar: Started = await startProxy(sidecarConfig(port, h2), { identity });
      try {
        const seen = app.seen.length;
        const r = await request(sidecar.port, {
          host: 'mesh.example.com',
          path: '/via-sidecar',
          agent: false,
        });
        expect(r.status).to.equal(200);
        expect(r.body).to.equal('shop');
        expect(app.seen.slice(seen).map((s) => s.url)).to.deep.equal(['/via-sidecar']);
        await waitFor('the gateway logged the sidecar as the principal', () =>
          accessLogged('/via-sidecar', WEB),
        );
      } finally {
        await sidecar.stop();
      }
    });
});

describe('gateway ISTIO_MUTUAL: identity arriving late and root rotation (in-process gateway)', function () {
  this.timeout(30_000);
  const rootA = meshRoot('root A');
  const rootB = meshRoot('root B');
  const both: KeyPairPem = { certPem: rootA.certPem + rootB.certPem, keyPem: '' };
  let app: Upstream;
  let gw: Started;
  let identity: TestIdentity & { summary: () => never };
  const simplePki = createCA('simple-ca', 30);
  const simple = issueCert(simplePki, {
    commonName: 'simple.example.com',
    hosts: ['simple.example.com'],
    usage: 'server',
    validDays: 30,
  });

  before(async () => {
    app = await upstream('shop');
    identity = Object.assign(new TestIdentity(null, rootA), { summary: () => ({}) as never });
    gw = await startProxy(gatewayConfig(0, app.port, simple), {
      identity,
      accessLogSink: new PassThrough().resume(),
    });
  });
  after(async () => {
    await gw.stop();
    await app.close();
  });

  it('no workload certificate yet: the handshake is refused and counted; served once one arrives, without a restart', async () => {
    const client = workloadCert(rootA, WEB);
    expect(await failure(get(gw.port, 'mesh.example.com', rootA.certPem, client))).to.match(
      /handshake failure|alert|ECONNRESET|hang up/i,
    );
    expect(
      metricValue(
        await metricsText(gw.metrics),
        'weft_proxy_gateway_tls_refused_total',
        'reason="no_identity"',
      ),
    ).to.equal(1);
    // the SIMPLE server on the port does not depend on it
    expect((await get(gw.port, 'simple.example.com', simplePki.certPem)).status).to.equal(200);
    identity.set(GATEWAY_ID, rootA, workloadCert(rootA, GATEWAY_ID));
    const r = await get(gw.port, 'mesh.example.com', rootA.certPem, client);
    expect(r).to.include({ status: 200, serverId: GATEWAY_ID });
  });

  it('a certificate of the mesh CA without exactly one SPIFFE ID is refused (counted), not given a principal', async () => {
    identity.set(GATEWAY_ID, rootA, workloadCert(rootA, GATEWAY_ID));
    const before = metricValue(
      await metricsText(gw.metrics),
      'weft_proxy_gateway_tls_refused_total',
      'reason="peer_bad_identity"',
    );
    const dnsOnly = leafWithSans(rootA, [{ type: 2, value: 'web.shop.svc' }]);
    const twoIds = leafWithSans(rootA, [
      { type: 6, value: WEB },
      { type: 6, value: OTHER },
    ]);
    for (const cert of [dnsOnly, twoIds])
      expect(await failure(get(gw.port, 'mesh.example.com', rootA.certPem, cert))).to.match(
        /ECONNRESET|hang up/i,
      );
    const after = metricValue(
      await metricsText(gw.metrics),
      'weft_proxy_gateway_tls_refused_total',
      'reason="peer_bad_identity"',
    );
    expect(after - before).to.equal(2);
  });

  it('root rotation: old and new roots both trusted during it, then the old one no more', async () => {
    const fromA = workloadCert(rootA, WEB);
    const fromB = workloadCert(rootB, WEB);
    identity.set(GATEWAY_ID, rootA, workloadCert(rootA, GATEWAY_ID));
    expect((await get(gw.port, 'mesh.example.com', rootA.certPem, fromA)).status).to.equal(200);
    expect(await failure(get(gw.port, 'mesh.example.com', rootA.certPem, fromB))).to.match(/./);
    // weftd publishes both roots; the gateway's own certificate still from A
    identity.set(GATEWAY_ID, both, workloadCert(rootA, GATEWAY_ID));
    expect((await get(gw.port, 'mesh.example.com', both.certPem, fromA)).status).to.equal(200);
    expect((await get(gw.port, 'mesh.example.com', both.certPem, fromB)).status).to.equal(200);
    // the old root removed: the gateway's certificate from B, clients from A refused
    identity.set(GATEWAY_ID, rootB, workloadCert(rootB, GATEWAY_ID));
    expect((await get(gw.port, 'mesh.example.com', rootB.certPem, fromB)).status).to.equal(200);
    expect(await failure(get(gw.port, 'mesh.example.com', both.certPem, fromA))).to.match(/./);
  });
});
