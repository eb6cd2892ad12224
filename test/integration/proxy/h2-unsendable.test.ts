/**
 * A request head an HTTP/2 upstream stream cannot carry (`unsendableOverH2`, proxy/h2/pool.ts)
 * is answered as the HTTP/1.1 path answers it (unsendable.test.ts): one local 503 DPE
 * (WEFT_PROXY_REQUEST_UNSENDABLE), no retry even with a policy that covers resets and 5xx, and no
 * outlier-detection record against the endpoint, which never saw a stream. Before, node either
 * sent it and the server reset the stream (PROTOCOL_ERROR: blamed on the endpoint, retried,
 * ejected) or threw (502 UPE). Real h2c server on loopback, Istio YAML through the translator.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import type net from 'node:net';
import { configFromText } from '../../../proxy/config/load.js';
import { request, sleep, startProxy, type Started } from './helpers.js';

const HOST = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${HOST}`;

interface H2Upstream {
  port: number;
  /** Streams the server accepted (what reached the endpoint). */
  streams: number;
  close(): Promise<void>;
}

async function h2Upstream(): Promise<H2Upstream> {
  const server = http2.createServer();
  const u: H2Upstream = {
    port: 0,
    streams: 0,
    close: () =>
      new Promise((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream) => {
    u.streams++;
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('h2-ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}

function config(port: number): string {
  const route = (c: string, extra: string): string => `
  - match: [{headers: {x-case: {exact: ${c}}}}]
    ${extra}
    retries: {attempts: 3, retryOn: "5xx,reset,connect-failure,gateway-error,refused-stream"}
    route: [{destination: {host: reviews}}]`;
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http2, protocol: HTTP2}]
  endpoints: [{address: 127.0.0.1, ports: {http2: ${port}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xxErrors: 1, interval: 50ms, baseEjectionTime: 30s, maxEjectionPercent: 100}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:${route('space', 'rewrite: {authority: "bad host.example"}')}${route('euro', 'rewrite: {authority: "caf\u20ac.example"}')}${route('userinfo', 'rewrite: {authority: "user@reviews"}')}
  - route: [{destination: {host: reviews}}]
`;
}

describe('proxy: a request an HTTP/2 upstream cannot carry is answered locally', function () {
  this.timeout(30_000);
  let up: H2Upstream;
  let p: Started;

  before(async () => {
    up = await h2Upstream();
    const cfg = configFromText(config(up.port), 'test.yaml').config;
    p = await startProxy({ ...cfg, telemetry: { accessLog: false, explainHeader: true } });
  });
  after(async () => {
    await p?.stop();
    await up?.close();
  });

  const cases: [string, string][] = [
    ['space', 'a rewrite.authority with a space'],
    ['euro', 'a rewrite.authority with U+20AC'],
    ['userinfo', 'a rewrite.authority with userinfo'],
  ];
  for (const [c, what] of cases)
    it(`${what}: one 503 DPE, no stream upstream, no retry, the endpoint stays healthy`, async () => {
      const before = up.streams;
      const r = await request(p.port, { headers: { 'x-case': c, 'x-weft-explain': '1' } });
      expect(r.status, r.body).to.equal(503);
      expect(r.headers['x-weft-response-flags']).to.equal('DPE');
      expect(r.body).to.contain('WEFT_PROXY_REQUEST_UNSENDABLE');
      expect(r.body, 'the value is never echoed').to.not.match(/bad host|caf|user@/);
      const explain = JSON.parse(String(r.headers['x-weft-explain'])) as Record<string, unknown>;
      expect(explain).to.deep.include({ attempts: 1, retries: 0, status: 503, flags: 'DPE' });
      expect(up.streams - before, 'nothing reached the endpoint').to.equal(0);

      await sleep(150); // a few outlier-detection intervals
      const clusters = JSON.parse((await request(p.admin, { path: '/clusters' })).body) as {
        clusters: { name: string; endpoints: { healthy: boolean }[] }[];
      };
      const cl = clusters.clusters.find((x) => x.name === CLUSTER)!;
      expect(
        cl.endpoints.map((e) => e.healthy),
        'not ejected',
      ).to.deep.equal([true]);
      const stats = (await request(p.admin, { path: '/stats' })).body;
      expect(/reviews\.default\.svc\.cluster\.local\.upstream_rq_retry: (\d+)/.exec(stats)?.[1]).to.equal(
        '0',
      );
      const ok = await request(p.port);
      expect(ok.status).to.equal(200);
      expect(ok.body).to.equal('h2-ok');
    });

  it('a gRPC call over HTTP/2 gets a gRPC error (UNAVAILABLE, flag DPE) at once, nothing sent upstream', async () => {
    const before = up.streams;
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => undefined);
    try {
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const st = session.request({
          ':method': 'POST',
          ':path': '/pkg.Svc/Call',
          ':authority': 'reviews',
          'content-type': 'application/grpc',
          'x-case': 'space',
        });
        let got: http2.IncomingHttpHeaders = {};
        st.on('response', (h) => (got = h));
        st.on('trailers', (t) => (got = { ...got, ...t }));
        st.on('data', () => undefined);
        st.on('end', () => resolve(got));
        st.on('error', reject);
        st.end();
      });
      expect(head[':status']).to.equal(200);
      expect(head['grpc-status']).to.equal('14');
      expect(head['x-weft-response-flags']).to.equal('DPE');
    } finally {
      session.destroy();
    }
    expect(up.streams - before).to.equal(0);
  });
});
