/**
 * Gateway TLS termination for real on loopback (proxy/gateway-tls.ts, ADR 0014): an in-process
 * gateway proxy with two SIMPLE servers and one MUTUAL server on one port, real TLS clients
 * (node:tls / node:https) with and without client certificates, unknown SNI, SNI/Host confusion,
 * credential rotation under an open connection, a broken credential, stalled handshakes and the
 * handshake cap.
 */
import { expect } from 'chai';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { createCA, issueCert, type CertPem } from '../../../hack/cluster/pki.js';
import { createLogger } from '../../../pkg/log/index.js';
import type {
  GatewayTlsServer,
  HttpListener,
  ProxyConfig,
  UpstreamCredential,
} from '../../../pkg/proxyconfig/types.js';
import { ProxyServer } from '../../../proxy/server.js';
import {
  failure,
  metricsText,
  metricValue,
  request,
  sleep,
  startProxy,
  upstream,
  type Started,
  type Upstream,
} from './helpers.js';

const quiet = createLogger('gateway-tls-test', { silent: true });

interface Pki {
  ca: CertPem;
  server: CertPem;
}

function serverPki(hosts: string[]): Pki {
  const ca = createCA('gw-test-ca', 30);
  return { ca, server: issueCert(ca, { commonName: hosts[0]!, hosts, usage: 'server', validDays: 30 }) };
}

function cred(p: Pki, clientCa?: CertPem): UpstreamCredential {
  return {
    source: 'istio-system/cert',
    certChain: p.server.certPem,
    privateKey: p.server.keyPem,
    ...(clientCa ? { caCertificates: clientCa.certPem } : {}),
  };
}

function config(
  upstreamPort: number,
  servers: GatewayTlsServer[],
  credentials: Record<string, UpstreamCredential>,
  version = `v${Math.random()}`,
): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version,
    listeners: [
      {
        name: 'gateway-443',
        protocol: 'HTTP',
        port: 0,
        edge: true,
        tls: { servers },
        virtualHosts: ['a.example.com', 'b.example.com', 'm.example.com', 'x.wild.example.com'].map((h) => ({
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
    clusters: [{ name: 'app', type: 'STATIC', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
    credentials,
  };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peerSerial: string;
}

function get(
  port: number,
  o: {
    sni: string;
    host?: string;
    ca: string;
    cert?: CertPem;
    path?: string;
    headers?: Record<string, string>;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: o.path ?? '/',
        servername: o.sni,
        headers: { ...o.headers, host: o.host ?? o.sni },
        ca: o.ca,
        ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            peerSerial: (res.socket as tls.TLSSocket).getPeerX509Certificate?.()?.serialNumber ?? '',
          }),
        );
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Resolves when `socket` closes, with how long it took. */
function closedWithin(socket: net.Socket): Promise<number> {
  const t0 = Date.now();
  socket.resume(); // reads what the server sends, so its close is seen
  return new Promise((r) => socket.once('close', () => r(Date.now() - t0)));
}

/** The bytes of a real ClientHello (node:tls's) for `sni`. */
async function realClientHello(sni: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({
        port: (srv.address() as net.AddressInfo).port,
        host: '127.0.0.1',
        servername: sni,
      });
      c.on('error', () => undefined);
    });
  });
}

describe('gateway TLS termination (loopback)', function () {
  this.timeout(30_000);
  let app: Upstream;
  let gw: Started;
  const ab = serverPki(['a.example.com', 'b.example.com']);
  const wild = serverPki(['*.wild.example.com']);
  const m = serverPki(['m.example.com']);
  const clientCa = createCA('gw-client-ca', 30);
  const goodClient = issueCert(clientCa, {
    commonName: 'client',
    hosts: ['client.example.com'],
    usage: 'client',
  });
  const otherCa = createCA('gw-other-ca', 30);
  const strangerClient = issueCert(otherCa, {
    commonName: 'x',
    hosts: ['client.example.com'],
    usage: 'client',
  });
  const wrongSan = issueCert(clientCa, { commonName: 'y', hosts: ['intruder.example.com'], usage: 'client' });
  const servers: GatewayTlsServer[] = [
    { name: 'istio-system/gw[0]', sniHosts: ['a.example.com'], mode: 'SIMPLE', credentialName: 'ab' },
    { name: 'istio-system/gw[1]', sniHosts: ['b.example.com'], mode: 'SIMPLE', credentialName: 'ab' },
    { name: 'istio-system/gw[2]', sniHosts: ['*.wild.example.com'], mode: 'SIMPLE', credentialName: 'wild' },
    {
      name: 'istio-system/gw[3]',
      sniHosts: ['m.example.com'],
      mode: 'MUTUAL',
      credentialName: 'm',
      subjectAltNames: ['client.example.com'],
    },
    {
      name: 'istio-system/gw[4]',
      sniHosts: ['n.example.com'],
      mode: 'SIMPLE',
      credentialName: 'never-delivered',
    },
  ];
  const creds = (): Record<string, UpstreamCredential> => ({
    ab: cred(ab),
    wild: cred(wild),
    m: cred(m, clientCa),
  });

  before(async () => {
    app = await upstream('app');
    gw = await startProxy(config(app.port, servers, creds()), {
      gatewayTls: { helloTimeoutMs: 400, handshakeTimeoutMs: 400, maxHandshakes: 3 },
    });
  });
  after(async () => {
    await gw.stop();
    await app.close();
  });

  it('SIMPLE: terminates for the SNI, forwards with x-forwarded-proto https', async () => {
    const r = await get(gw.port, { sni: 'a.example.com', ca: ab.ca.certPem });
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('app');
    expect(app.seen.at(-1)!.headers['x-forwarded-proto']).to.equal('https');
  });

  it('a wildcard server takes deeper names', async () => {
    const r = await get(gw.port, { sni: 'x.wild.example.com', ca: wild.ca.certPem });
    expect(r.status).to.equal(200);
  });

  it('a Host that is not a host of the SNI-selected server is 404 NR (no SNI/Host bypass)', async () => {
    const r = await get(gw.port, { sni: 'a.example.com', host: 'm.example.com', ca: ab.ca.certPem });
    expect(r.status).to.equal(404);
    expect(r.headers['x-weft-response-flags']).to.equal('NR');
    const seen = app.seen.length;
    const ok = await get(gw.port, { sni: 'b.example.com', host: 'b.example.com:443', ca: ab.ca.certPem });
    expect(ok.status).to.equal(200);
    expect(app.seen.length).to.equal(seen + 1);
  });

  it('an SNI no server has gets an unrecognized_name alert, counted', async () => {
    const before = metricValue(
      await metricsText(gw.metrics),
      'weft_proxy_gateway_tls_refused_total',
      'reason="no_sni_match"',
    );
    const code = await failure(get(gw.port, { sni: 'nobody.example.com', ca: ab.ca.certPem }));
    expect(code).to.match(/unrecognized.name/i);
    // no SNI at all: no catch-all server here either
    const noSni = await failure(
      new Promise((resolve, reject) => {
        const c = tls.connect({
          port: gw.port,
          host: '127.0.0.1',
          ca: ab.ca.certPem,
          rejectUnauthorized: false,
        });
        c.on('secureConnect', () => resolve(c));
        c.on('error', reject);
      }),
    );
    expect(noSni).to.match(/unrecognized.name/i);
    const after = metricValue(
      await metricsText(gw.metrics),
      'weft_proxy_gateway_tls_refused_total',
      'reason="no_sni_match"',
    );
    expect(after - before).to.equal(2);
  });

  it('a server without a usable credential answers handshake_failure; plaintext on the TLS port is closed', async () => {
    const code = await failure(get(gw.port, { sni: 'n.example.com', ca: ab.ca.certPem }));
    expect(code).to.match(/handshake.failure/i);
    const plain = net.connect(gw.port, '127.0.0.1', () =>
      plain.write('GET / HTTP/1.1\r\nhost: a.example.com\r\n\r\n'),
    );
    plain.on('error', () => undefined);
    let got = '';
    plain.on('data', (d: Buffer) => (got += d.toString()));
    expect(await closedWithin(plain)).to.be.below(1000);
    expect(got).to.equal('');
    const text = await metricsText(gw.metrics);
    expect(metricValue(text, 'weft_proxy_gateway_tls_refused_total', 'reason="no_credential"')).to.equal(1);
    expect(metricValue(text, 'weft_proxy_gateway_tls_refused_total', 'reason="not_tls"')).to.equal(1);
  });

  it('MUTUAL: a client certificate from the Secret CA with a listed SAN is served', async () => {
    const r = await get(gw.port, { sni: 'm.example.com', ca: m.ca.certPem, cert: goodClient });
    expect(r.status).to.equal(200);
  });

  it("x-forwarded-client-cert: a client's own is never forwarded; MUTUAL sets it from the verified certificate (SANITIZE_SET)", async () => {
    const forged = 'By=spiffe://cluster.local/ns/prod/sa/admin;URI=spiffe://cluster.local/ns/prod/sa/admin';
    const simple = await get(gw.port, {
      sni: 'a.example.com',
      ca: ab.ca.certPem,
      headers: { 'x-forwarded-client-cert': forged },
    });
    expect(simple.status).to.equal(200);
    expect(app.seen.at(-1)!.headers).to.not.have.property('x-forwarded-client-cert');
    const mutual = await get(gw.port, {
      sni: 'm.example.com',
      ca: m.ca.certPem,
      cert: goodClient,
      headers: { 'x-forwarded-client-cert': forged },
    });
    expect(mutual.status).to.equal(200);
    expect(app.seen.at(-1)!.headers['x-forwarded-client-cert']).to.match(
      /^Hash=[0-9a-f]{64};Subject="CN=client";DNS=client\.example\.com$/,
    );
  });

  it('MUTUAL: no client certificate, an untrusted one, or one without a listed SAN is refused', async () => {
    const text0 = await metricsText(gw.metrics);
    await failure(get(gw.port, { sni: 'm.example.com', ca: m.ca.certPem }));
    await failure(get(gw.port, { sni: 'm.example.com', ca: m.ca.certPem, cert: strangerClient }));
    await failure(get(gw.port, { sni: 'm.example.com', ca: m.ca.certPem, cert: wrongSan }));
    const text1 = await metricsText(gw.metrics);
    const d = (reason: string): number =>
      metricValue(text1, 'weft_proxy_gateway_tls_refused_total', `reason="${reason}"`) -
      metricValue(text0, 'weft_proxy_gateway_tls_refused_total', `reason="${reason}"`);
    expect(d('handshake_failed')).to.equal(2);
    expect(d('san_mismatch')).to.equal(1);
  });

  it('rotation: new connections get the new certificate, an open connection keeps working', async () => {
    // an open keep-alive connection with one request done
    const sock = tls.connect({
      port: gw.port,
      host: '127.0.0.1',
      servername: 'a.example.com',
      ca: ab.ca.certPem,
    });
    await new Promise<void>((r, j) => {
      sock.once('secureConnect', r);
      sock.once('error', j);
    });
    const exchange = (): Promise<string> =>
      new Promise((resolve) => {
        let buf = '';
        const onData = (d: Buffer): void => {
          buf += d.toString();
          if (buf.endsWith('\r\n0\r\n\r\n')) {
            sock.off('data', onData);
            resolve(buf);
          }
        };
        sock.on('data', onData);
        sock.write('GET / HTTP/1.1\r\nhost: a.example.com\r\n\r\n');
      });
    expect(await exchange()).to.match(/^HTTP\/1.1 200/);
    const oldSerial = sock.getPeerX509Certificate()!.serialNumber;
    const ab2 = serverPki(['a.example.com', 'b.example.com']);
    await gw.proxy.apply(config(app.port, servers, { ...creds(), ab: cred(ab2) }));
    const r = await get(gw.port, { sni: 'a.example.com', ca: ab2.ca.certPem });
    expect(r.status).to.equal(200);
    expect(r.peerSerial).to.not.equal(oldSerial);
    expect(await exchange()).to.match(/^HTTP\/1.1 200/);
    sock.destroy();
    await gw.proxy.apply(config(app.port, servers, creds()));
  });

  it('a broken credential (mismatched key, or unusable) keeps the previous certificate, counted', async () => {
    const other = serverPki(['a.example.com']);
    const text0 = await metricsText(gw.metrics);
    const mismatched = { ...cred(ab), privateKey: other.server.keyPem };
    await gw.proxy.apply(config(app.port, servers, { ...creds(), ab: mismatched }));
    expect((await get(gw.port, { sni: 'a.example.com', ca: ab.ca.certPem })).status).to.equal(200);
    await gw.proxy.apply(
      config(app.port, servers, { ...creds(), ab: { source: 'istio-system/ab', error: 'Secret not found' } }),
    );
    expect((await get(gw.port, { sni: 'b.example.com', ca: ab.ca.certPem })).status).to.equal(200);
    const text1 = await metricsText(gw.metrics);
    const refused = (t: string): number =>
      metricValue(t, 'weft_proxy_gateway_tls_credential_refused_total', 'server="istio-system/gw[0]"');
    expect(refused(text1) - refused(text0)).to.equal(2);
    await gw.proxy.apply(config(app.port, servers, creds()));
  });

  it('a client that sends no ClientHello, or stalls mid-handshake, is closed', async () => {
    const silent = net.connect(gw.port, '127.0.0.1');
    silent.on('error', () => undefined);
    expect(await closedWithin(silent)).to.be.below(3000);
    const hello = await realClientHello('a.example.com');
    const stalled = net.connect(gw.port, '127.0.0.1', () => stalled.write(hello));
    stalled.on('error', () => undefined);
    expect(await closedWithin(stalled)).to.be.below(3000);
    const text = await metricsText(gw.metrics);
    expect(
      metricValue(text, 'weft_proxy_gateway_tls_refused_total', 'reason="hello_timeout"'),
    ).to.be.at.least(1);
    expect(
      metricValue(text, 'weft_proxy_gateway_tls_refused_total', 'reason="handshake_timeout"'),
    ).to.be.at.least(1);
  });

  it('handshakes past the cap are closed at once; others are unaffected', async () => {
    const idle = [0, 1, 2].map(() => net.connect(gw.port, '127.0.0.1'));
    await Promise.all(idle.map((s) => new Promise((r) => s.once('connect', r))));
    await sleep(50);
    const extra = net.connect(gw.port, '127.0.0.1');
    extra.on('error', () => undefined);
    expect(await closedWithin(extra)).to.be.below(300);
    const text = await metricsText(gw.metrics);
    expect(
      metricValue(text, 'weft_proxy_gateway_tls_refused_total', 'reason="handshake_limit"'),
    ).to.be.at.least(1);
    for (const s of idle) s.destroy();
    await sleep(50);
    expect((await get(gw.port, { sni: 'a.example.com', ca: ab.ca.certPem })).status).to.equal(200);
  });
});

describe('gateway TLS: a port that switches between plaintext and TLS', function () {
  this.timeout(30_000);

  it('is re-bound in place (the new server can listen), both ways; a refused switch keeps the port serving', async () => {
    const app = await upstream('app');
    const pki = serverPki(['a.example.com']);
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const server: GatewayTlsServer = {
      name: 'gw[0]',
      sniHosts: ['a.example.com'],
      mode: 'SIMPLE',
      credentialName: 'c',
    };
    const at = (c: ProxyConfig, tlsOn: boolean): ProxyConfig => {
      const l = { ...c.listeners[0]!, address: '127.0.0.1', port } as HttpListener;
      if (!tlsOn) delete l.tls;
      return { ...c, listeners: [l] };
    };
    const base = config(app.port, [server], { c: cred(pki) });
    const proxy = new ProxyServer({
      adminPort: null,
      metricsPort: null,
      healthPort: null,
      logger: quiet,
      onExit: () => undefined,
    });
    try {
      await proxy.apply(at(base, false));
      expect((await request(port, { host: 'a.example.com' })).status).to.equal(200);
      await proxy.apply(at(base, true));
      expect((await get(port, { sni: 'a.example.com', ca: pki.ca.certPem })).status).to.equal(200);
      await proxy.apply(at(base, false));
      expect((await request(port, { host: 'a.example.com', agent: false })).status).to.equal(200);

      // a config that switches the port to TLS and also needs a port someone else holds is
      // refused: the switched port serves as before (it was released for the new server)
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      const busyPort = (busy.address() as net.AddressInfo).port;
      try {
        const switched = at(base, true);
        const blocked = { ...switched.listeners[0]!, name: 'blocked', port: busyPort } as HttpListener;
        delete blocked.tls;
        const refused = await proxy.apply({ ...switched, listeners: [...switched.listeners, blocked] }).then(
          () => 'applied',
          (err: unknown) => String(err),
        );
        expect(refused).to.match(/EADDRINUSE/);
        expect((await request(port, { host: 'a.example.com', agent: false })).status).to.equal(200);
      } finally {
        busy.close();
      }
    } finally {
      await proxy.shutdown();
      await app.close();
    }
  });
});
