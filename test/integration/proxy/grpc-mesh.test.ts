/**
 * gRPC between two sidecars over mesh mTLS, on loopback: a grpc-js client → the client sidecar's
 * outbound (an in-process proxy: HTTP/2 upstream, ISTIO_MUTUAL with ALPN istio-h2) → the server
 * sidecar's inbound listener (proxy/inbound: mTLS terminated, the HTTP/2 preface sniffed, HTTP/2
 * to the app) → a grpc-js server. Both hops report with the gRPC status; the app sees the peer's
 * identity in XFCC; streaming and trailers survive both hops.
 */
import { expect } from 'chai';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { InboundListener } from '../../../proxy/inbound/listener.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';
import { meshRoot, TestIdentity } from './mesh-identity.js';
import { startProxy, type Started } from './helpers.js';
import { clientVia, grpc, grpcUpstream, GreeterClient, unary, type GrpcUpstream } from './grpc-fixture.js';

const SERVER = 'spiffe://cluster.local/ns/demo/sa/greeter';
const CLIENT = 'spiffe://cluster.local/ns/shop/sa/frontend';

function outbound(inboundPort: number): ProxyConfig {
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'v1',
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        port: 0,
        virtualHosts: [
          {
            name: 'greeter',
            domains: ['greeter:50051'],
            routes: [
              {
                action: {
                  type: 'route',
                  destinations: [{ cluster: 'outbound|50051||greeter', weight: 100 }],
                },
                retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
              },
            ],
          },
        ],
      },
    ],
    clusters: [
      {
        name: 'outbound|50051||greeter',
        service: 'greeter.demo.svc.cluster.local',
        port: 50051,
        http2: true,
        endpoints: [{ address: '127.0.0.1', port: inboundPort }],
        tls: { mode: 'ISTIO_MUTUAL', sni: 'outbound_.50051_._.greeter', subjectAltNames: [SERVER] },
      },
    ],
    telemetry: { workload: { name: 'frontend', namespace: 'shop' } },
  };
}

describe('gRPC through two sidecars over mesh mTLS (HTTP/2 both hops)', function () {
  this.timeout(30_000);
  const root = meshRoot();
  let app: GrpcUpstream;
  const inboundConfig = (version = 'v1'): ProxyConfig => ({
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: [],
    clusters: [],
    inbound: {
      mtls: { mode: 'STRICT', policy: 'PeerAuthentication demo/strict' },
      // a `grpc` Service port: the HTTP hop, HTTP/2 to the app (pkg/translate/inbound.ts)
      ports: [{ port: app.port, protocol: 'HTTP', http2: true, service: 'greeter.demo.svc.cluster.local' }],
    },
  });
  let inbound: InboundListener;
  let capture: net.Server;
  let client: Started;
  const metrics = new MetricsRegistry({
    workload: 'greeter',
    namespace: 'demo',
    app: 'greeter',
    version: 'v1',
  });

  before(async () => {
    app = await grpcUpstream('app');
    inbound = new InboundListener({
      log: createLogger('grpc-mesh', { silent: true }),
      metrics,
      accessLog: null,
      appHost: '127.0.0.1',
      identity: new TestIdentity(SERVER, root),
      sniffTimeoutMs: 300,
      handshakeTimeoutMs: 2000,
      capturePorts: () => [],
      dst: () => ({ address: '127.0.0.1', port: app.port, family: 4 }),
    });
    inbound.apply(inboundConfig());
    capture = net.createServer((s) => inbound.handle(s));
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    const inboundPort = (capture.address() as net.AddressInfo).port;
    // the /certs summary is not under test
    const identity = Object.assign(new TestIdentity(CLIENT, root), { summary: () => ({}) as never });
    client = await startProxy(outbound(inboundPort), { identity });
  });
  after(async () => {
    await client.stop();
    capture.close();
    await inbound.close();
    await app.close();
  });

  it('unary and server-streaming calls, the peer identity in XFCC, gRPC codes on both hops', async () => {
    const c = clientVia(GreeterClient, client.port, 'greeter:50051');
    try {
      const r = await unary(c, 'Hello', { name: 'mesh' });
      expect(r.error).to.equal(undefined);
      expect(r.reply).to.deep.include({ name: 'mesh', from: 'app' });
      const xfcc = String(app.calls.at(-1)!.metadata.get('x-forwarded-client-cert')[0] ?? '');
      expect(xfcc).to.include(`URI=${CLIENT}`);
      const names: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = (
          c as unknown as { Count: (r: unknown) => grpc.ClientReadableStream<{ name: string }> }
        ).Count({
          name: 's',
          n: 4,
        });
        call.on('data', (m: { name: string }) => names.push(m.name));
        call.on('status', (s: grpc.StatusObject) =>
          s.code === 0 ? resolve() : reject(new Error(s.details)),
        );
        call.on('error', reject);
      });
      expect(names).to.deep.equal(['s-0', 's-1', 's-2', 's-3']);
      app.fail = () =>
        Object.assign(new Error('busy'), {
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: 'busy',
        }) as grpc.ServiceError;
      const busy = await unary(c, 'Hello', { name: 'x' });
      expect(busy.error).to.deep.include({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'busy' });
    } finally {
      c.close();
      app.fail = () => null;
    }
    const dest = metrics.render();
    expect(dest).to.match(
      /reporter="destination"[^}]*connection_security_policy="mutual_tls"[^}]*grpc_response_status="0"\} 2/,
    );
    expect(dest).to.match(/reporter="destination"[^}]*grpc_response_status="8"\} 1/);
    const src = await (await fetch(`http://127.0.0.1:${client.metrics}/stats/prometheus`)).text();
    expect(src).to.match(/reporter="source"[^}]*request_protocol="grpc"[^}]*grpc_response_status="0"\} 2/);
  });

  it('an AuthorizationPolicy denial at the inbound side is PERMISSION_DENIED to the gRPC client', async () => {
    const deny = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-count', namespace: 'demo' },
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/weft.test.Greeter/Hello'] } }] }] },
    } as AuthorizationPolicy;
    const { block } = translateAuthz({ policies: [deny], pod: { namespace: 'demo', labels: {} } });
    inbound.apply({ ...inboundConfig('deny'), authz: { ...block!, listeners: [] } });
    const c = clientVia(GreeterClient, client.port, 'greeter:50051');
    const calls = app.calls.length;
    try {
      const r = await unary(c, 'Hello', { name: 'no' });
      expect(r.error?.code).to.equal(grpc.status.PERMISSION_DENIED);
      expect(app.calls.length).to.equal(calls);
      expect(metrics.render()).to.match(
        /reporter="destination"[^}]*response_flags="RBAC",grpc_response_status="7"\} 1/,
      );
    } finally {
      c.close();
      inbound.apply(inboundConfig('v2'));
    }
  });

  it('a declared HTTP port (not GRPC/HTTP2) gets HTTP/1.1 at the app even when the client hop is HTTP/2', async () => {
    // an HTTP/1.1-only app behind the same inbound, on a port declared plain HTTP
    const seen: string[] = [];
    const h1app = http.createServer((req, res) => {
      seen.push(req.httpVersion);
      res.end('h1 app');
    });
    await new Promise<void>((r) => h1app.listen(0, '127.0.0.1', r));
    const h1Port = (h1app.address() as net.AddressInfo).port;
    const plain = new InboundListener({
      log: createLogger('grpc-mesh', { silent: true }),
      metrics,
      accessLog: null,
      appHost: '127.0.0.1',
      identity: new TestIdentity(SERVER, root),
      sniffTimeoutMs: 300,
      handshakeTimeoutMs: 2000,
      capturePorts: () => [],
      dst: () => ({ address: '127.0.0.1', port: h1Port, family: 4 }),
    });
    plain.apply({
      ...inboundConfig('h1'),
      inbound: {
        mtls: { mode: 'PERMISSIVE', policy: 'PeerAuthentication demo/default' },
        ports: [{ port: h1Port, protocol: 'HTTP', service: 'web.demo.svc.cluster.local' }],
      },
    });
    const front = net.createServer((s) => plain.handle(s));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const session = http2.connect(`http://127.0.0.1:${(front.address() as net.AddressInfo).port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const st = session.request({ ':path': '/', ':authority': 'web:80' });
        let b = '';
        st.on('data', (d: Buffer) => (b += d.toString()));
        st.on('end', () => resolve(b));
        st.on('error', reject);
        st.end();
      });
      expect(body).to.equal('h1 app');
      expect(seen).to.deep.equal(['1.1']);
    } finally {
      session.destroy();
      front.close();
      await plain.close();
      h1app.close();
    }
  });
});
