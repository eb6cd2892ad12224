/**
 * HTTP/2 at the gateway's TLS termination (ALPN `h2`, proxy/gateway-tls.ts → proxy/h2/downstream.ts):
 * node's http2 client over real TLS reaches an HTTP/1.1 app through the same routes, the SNI/Host
 * rule holds for `:authority`, an HTTP/1.1 client on the same port still gets HTTP/1.1, and a
 * gRPC client over TLS reaches a gRPC app (HTTP/2 upstream) with its status intact.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import https from 'node:https';
import { createCA, issueCert } from '../../../hack/cluster/pki.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startProxy, upstream, type Started, type Upstream } from './helpers.js';
import { gatewayTlsConfig } from '../../support/gateway-tls.js';
import { h2Exchange } from '../../support/h2.js';
import { grpc, grpcUpstream, GreeterClient, unary, type GrpcUpstream } from './grpc-fixture.js';

const ca = createCA('h2-gw-ca', 30);
const cert = issueCert(ca, {
  commonName: 'a.example.com',
  hosts: ['a.example.com', 'b.example.com', 'grpc.a.example.com'],
  usage: 'server',
  validDays: 30,
});

function config(appPort: number, grpcPort: number): ProxyConfig {
  const route = (cluster: string) => [
    {
      action: { type: 'route' as const, destinations: [{ cluster, weight: 100 }] },
      retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
    },
  ];
  return gatewayTlsConfig({
    servers: [
      { name: 'istio-system/gw[0]', sniHosts: ['a.example.com'], mode: 'SIMPLE', credentialName: 'a' },
      { name: 'istio-system/gw[1]', sniHosts: ['grpc.a.example.com'], mode: 'SIMPLE', credentialName: 'a' },
    ],
    virtualHosts: [
      { name: 'a', domains: ['a.example.com', 'a.example.com:443'], routes: route('app') },
      { name: 'b', domains: ['b.example.com', 'b.example.com:443'], routes: route('app') },
      { name: 'grpc', domains: ['grpc.a.example.com'], routes: route('grpc') },
    ],
    clusters: [
      { name: 'app', type: 'STATIC', endpoints: [{ address: '127.0.0.1', port: appPort }] },
      { name: 'grpc', type: 'STATIC', http2: true, endpoints: [{ address: '127.0.0.1', port: grpcPort }] },
    ],
    certs: { a: cert },
  });
}

/** An h2 session to the gateway over TLS, SNI a.example.com; its failure fails its streams. */
function connect(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.certPem, servername: 'a.example.com' });
  session.on('error', () => undefined);
  return session;
}

async function h2get(
  port: number,
  authority: string,
): Promise<{ status: number; alpn: string; body: string; flags: string }> {
  const session = connect(port);
  try {
    const { head, body } = await h2Exchange(session, { ':path': '/h2', ':authority': authority });
    return {
      status: Number(head[':status']),
      alpn: String(session.alpnProtocol),
      body,
      flags: String(head['x-weft-response-flags'] ?? ''),
    };
  } finally {
    session.close();
  }
}

describe('HTTP/2 through gateway TLS (ALPN h2)', function () {
  this.timeout(30_000);
  let app: Upstream;
  let g: GrpcUpstream;
  let gw: Started;
  before(async () => {
    app = await upstream('app');
    g = await grpcUpstream('g');
    gw = await startProxy(config(app.port, g.port));
  });
  after(async () => {
    await gw.stop();
    await app.close();
    await g.close();
  });

  it('an h2 client negotiates h2 and is routed to the HTTP/1.1 app; the app sees HTTP/1.1 and the real Host', async () => {
    const r = await h2get(gw.port, 'a.example.com');
    expect(r).to.include({ status: 200, alpn: 'h2', body: 'app' });
    const seen = app.seen.at(-1)!;
    expect(seen.url).to.equal('/h2');
    expect(seen.headers.host).to.equal('a.example.com');
    expect(seen.headers['x-forwarded-proto']).to.equal('https');
    expect(Object.keys(seen.headers).some((k) => k.startsWith(':'))).to.equal(false);
  });

  it("the app's Connection-named and HTTP/2-forbidden response fields are dropped (RFC 9110 §7.6.1, RFC 9113 §8.2.2): the stream still answers", async () => {
    const plain = app.handler;
    app.handler = (_req, res) => {
      res.writeHead(200, {
        connection: 'x-secret',
        'x-secret': '1',
        te: 'gzip',
        'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
        'x-kept': 'yes',
      });
      res.end('app');
    };
    const session = connect(gw.port);
    try {
      const got = await h2Exchange(session, { ':path': '/hop', ':authority': 'a.example.com' });
      expect(got.head[':status']).to.equal(200);
      expect(got.body).to.equal('app');
      expect(got.head['x-secret']).to.equal(undefined);
      expect(got.head['x-kept']).to.equal('yes');
    } finally {
      app.handler = plain;
      session.destroy();
    }
  });

  it('the SNI/Host rule holds for :authority (a host of no server the SNI chose is 404 NR)', async () => {
    const r = await h2get(gw.port, 'b.example.com');
    expect(r).to.include({ status: 404, flags: 'NR' });
  });

  it('an HTTP/1.1 client on the same port still gets HTTP/1.1', async () => {
    const r = await new Promise<{ status: number; alpn: string }>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: gw.port,
          servername: 'a.example.com',
          ca: ca.certPem,
          headers: { host: 'a.example.com' },
          agent: false,
          ALPNProtocols: ['http/1.1'],
        } as https.RequestOptions,
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              alpn: String((res.socket as import('node:tls').TLSSocket).alpnProtocol),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(r).to.deep.equal({ status: 200, alpn: 'http/1.1' });
  });

  it('a gRPC client over TLS reaches a gRPC app over HTTP/2 (status and message intact)', async () => {
    const client = (authority: string): grpc.Client =>
      new GreeterClient(`127.0.0.1:${gw.port}`, grpc.credentials.createSsl(Buffer.from(ca.certPem)), {
        'grpc.ssl_target_name_override': 'grpc.a.example.com',
        'grpc.default_authority': authority,
      });
    const ok = client('grpc.a.example.com');
    const other = client('a.example.com');
    try {
      const r = await unary(ok, 'Hello', { name: 'tls' });
      expect(r.reply).to.deep.include({ name: 'tls', from: 'g' });
      g.fail = () =>
        Object.assign(new Error('nope'), {
          code: grpc.status.PERMISSION_DENIED,
          details: 'nope',
        }) as grpc.ServiceError;
      const denied = await unary(ok, 'Hello', { name: 'tls' });
      expect(denied.error).to.deep.include({ code: grpc.status.PERMISSION_DENIED, details: 'nope' });
      // the SNI's server does not serve a.example.com: the router's 404 NR as a gRPC error
      const nr = await unary(other, 'Hello', { name: 'x' });
      expect(nr.error?.code).to.equal(grpc.status.UNIMPLEMENTED);
    } finally {
      ok.close();
      other.close();
    }
  });
});
