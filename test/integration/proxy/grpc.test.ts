/**
 * gRPC and HTTP/2 through the proxy on loopback (issue #18): real @grpc/grpc-js servers and
 * clients, h2c with prior knowledge downstream, an HTTP/2 session pool upstream (the ServiceEntry
 * port says GRPC). Routing by method path, weights, retries on `unavailable`, deadlines, the
 * grpcStatus fault, local replies as gRPC errors, metrics with gRPC codes.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import { startProxy, type Started } from './helpers.js';
import {
  clientVia,
  grpc,
  grpcUpstream,
  GreeterClient,
  OtherClient,
  unary,
  type GrpcUpstream,
} from './grpc-fixture.js';

function greeterEntry(ups: GrpcUpstream[], dr = '', protocol = 'GRPC'): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 50051, name: grpc, protocol: ${protocol}}]
  endpoints:
${ups.map((u) => `  - {address: 127.0.0.1, ports: {grpc: ${u.port}}, labels: {version: ${u.name}}}`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: default}
spec:
  host: greeter
${dr}
  subsets:
${ups.map((u) => `  - {name: ${u.name}, labels: {version: ${u.name}}}`).join('\n')}
`;
}

function greeterVs(rules: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter]
  http:
${rules}
`;
}

const AUTHORITY = 'greeter:50051';

async function metricsText(p: Started): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${p.metrics}/stats/prometheus`);
  return r.text();
}

describe('gRPC and HTTP/2 through the proxy', function () {
  this.timeout(30_000);
  let v1: GrpcUpstream;
  let v2: GrpcUpstream;
  let p: Started | null = null;
  const clients: grpc.Client[] = [];
  const greeter = (): grpc.Client => {
    const c = clientVia(GreeterClient, p!.port, AUTHORITY);
    clients.push(c);
    return c;
  };
  before(async () => {
    v1 = await grpcUpstream('v1');
    v2 = await grpcUpstream('v2');
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await p?.stop();
    p = null;
    for (const u of [v1, v2]) {
      u.calls.length = 0;
      u.fail = () => null;
      u.delayMs = 0;
      u.maxInflight = 0;
    }
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });

  it('routes unary and server-streaming calls by method path prefix, trailers and status intact', async () => {
    p = await startProxy(
      greeterEntry([v1, v2]) +
        greeterVs(`
  - match: [{uri: {prefix: /weft.test.Other/}}]
    route: [{destination: {host: greeter, subset: v2}}]
  - route: [{destination: {host: greeter, subset: v1}}]`),
    );
    const hello = await unary(greeter(), 'Hello', { name: 'ann' });
    expect(hello.reply).to.deep.include({ name: 'ann', from: 'v1' });
    const other = clientVia(OtherClient, p.port, AUTHORITY);
    clients.push(other);
    expect((await unary(other, 'Ping', { name: 'x' })).reply?.from).to.equal('v2');
    const streamed: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = (
        greeter() as unknown as { Count: (r: unknown) => grpc.ClientReadableStream<{ name: string }> }
      ).Count({ name: 'n', n: 5 });
      call.on('data', (m: { name: string }) => streamed.push(m.name));
      call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
      call.on('error', reject);
    });
    expect(streamed).to.deep.equal(['n-0', 'n-1', 'n-2', 'n-3', 'n-4']);
    // an application error travels in the trailers (or trailers-only): code and message intact
    v1.fail = () =>
      Object.assign(new Error('no such user'), {
        code: grpc.status.NOT_FOUND,
        details: 'no such user',
      }) as grpc.ServiceError;
    const nf = await unary(greeter(), 'Hello', { name: 'bob' });
    expect(nf.error?.code).to.equal(grpc.status.NOT_FOUND);
    expect(nf.error?.details).to.equal('no such user');
    const m = await metricsText(p);
    // Istio's labels: request_protocol grpc, grpc_response_status the code (HTTP status 200)
    const v1ok =
      /istio_requests_total\{[^}]*destination_version="v1"[^}]*request_protocol="grpc"[^}]*response_code="200",response_flags="-",grpc_response_status="0"\} 2/;
    expect(m).to.match(v1ok);
    expect(m).to.match(
      /istio_requests_total\{[^}]*destination_version="v2"[^}]*grpc_response_status="0"\} 1/,
    );
    expect(m).to.match(
      /istio_requests_total\{[^}]*destination_version="v1"[^}]*grpc_response_status="5"\} 1/,
    );
  });

  it('splits by weight over HTTP/2 upstream sessions', async () => {
    p = await startProxy(
      greeterEntry([v1, v2]) +
        greeterVs(`
  - route:
    - {destination: {host: greeter, subset: v1}, weight: 75}
    - {destination: {host: greeter, subset: v2}, weight: 25}`),
    );
    const c = greeter();
    const got = await Promise.all(Array.from({ length: 200 }, () => unary(c, 'Hello', { name: 'w' })));
    const v2n = got.filter((g) => g.reply?.from === 'v2').length;
    expect(got.every((g) => g.reply !== undefined)).to.equal(true);
    expect(v2n).to.be.within(25, 75); // 50 expected; binomial sd ≈ 6
  });

  it('upstream stream limits: maxConcurrentStreams 1 on one connection serializes calls; unlimited runs them at once', async () => {
    p = await startProxy(
      greeterEntry(
        [v1],
        `  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {maxConcurrentStreams: 1}`,
      ) + greeterVs(`  - route: [{destination: {host: greeter}}]`),
    );
    v1.delayMs = 50;
    const c = greeter();
    const got = await Promise.all(Array.from({ length: 6 }, () => unary(c, 'Hello', { name: 's' })));
    expect(got.every((g) => g.reply !== undefined)).to.equal(true);
    expect(v1.maxInflight).to.equal(1);
    await p.stop();
    p = await startProxy(greeterEntry([v1]) + greeterVs(`  - route: [{destination: {host: greeter}}]`));
    v1.maxInflight = 0;
    const c2 = greeter();
    await Promise.all(Array.from({ length: 6 }, () => unary(c2, 'Hello', { name: 's' })));
    expect(v1.maxInflight).to.be.above(1);
  });

  it('an HTTP port goes upstream as HTTP/2 only with h2UpgradePolicy UPGRADE', async () => {
    const upgrade = `  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}`;
    p = await startProxy(
      greeterEntry([v1], upgrade, 'HTTP') + greeterVs(`  - route: [{destination: {host: greeter}}]`),
    );
    expect((await unary(greeter(), 'Hello', { name: 'up' })).reply?.from).to.equal('v1');
    await p.stop();
    // without it the upstream hop is HTTP/1.1, which a gRPC server does not speak
    p = await startProxy(
      greeterEntry([v1], '', 'HTTP') + greeterVs(`  - route: [{destination: {host: greeter}}]`),
    );
    expect((await unary(greeter(), 'Hello', { name: 'h1' })).error).to.not.equal(undefined);
  });

  it('http2MaxRequests is the circuit breaker: calls past it are UNAVAILABLE with flag UO', async () => {
    p = await startProxy(
      greeterEntry([v1], `  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 2}}}`) +
        greeterVs(`  - route: [{destination: {host: greeter}}]`),
    );
    v1.delayMs = 300;
    const c = greeter();
    const got = await Promise.all(Array.from({ length: 5 }, () => unary(c, 'Hello', { name: 'cb' })));
    const overflow = got.filter((g) => g.error?.code === grpc.status.UNAVAILABLE);
    expect(got.filter((g) => g.reply !== undefined).length).to.equal(2);
    expect(overflow.length).to.equal(3);
    expect(await metricsText(p)).to.match(/response_flags="UO",grpc_response_status="14"\} 3/);
  });

  it('retries a call answered UNAVAILABLE (retryOn unavailable) on another endpoint', async () => {
    p = await startProxy(
      greeterEntry([v1, v2]) +
        greeterVs(`
  - route: [{destination: {host: greeter}}]
    retries: {attempts: 2, retryOn: unavailable}`),
    );
    // whichever endpoint gets the first attempt fails; the retry goes to the other one
    let failed = 0;
    const failOnce = (): grpc.ServiceError | null =>
      failed++ === 0
        ? (Object.assign(new Error('down'), {
            code: grpc.status.UNAVAILABLE,
            details: 'down',
          }) as grpc.ServiceError)
        : null;
    v1.fail = failOnce;
    v2.fail = failOnce;
    const r = await unary(greeter(), 'Hello', { name: 'retry' });
    expect(r.error).to.equal(undefined);
    expect(v1.calls.length + v2.calls.length).to.equal(2);
    const m = await metricsText(p);
    expect(m).to.match(/grpc_response_status="0"\} 1/);
  });

  it('does not retry codes retryOn does not name', async () => {
    p = await startProxy(
      greeterEntry([v1]) +
        greeterVs(`
  - route: [{destination: {host: greeter}}]
    retries: {attempts: 2, retryOn: unavailable}`),
    );
    v1.fail = () =>
      Object.assign(new Error('x'), { code: grpc.status.INTERNAL, details: 'x' }) as grpc.ServiceError;
    const r = await unary(greeter(), 'Hello', { name: 'x' });
    expect(r.error?.code).to.equal(grpc.status.INTERNAL);
    expect(v1.calls.length).to.equal(1);
  });

  it('propagates the deadline upstream and enforces the smaller of grpc-timeout and the route timeout', async () => {
    p = await startProxy(
      greeterEntry([v1]) +
        greeterVs(`
  - route: [{destination: {host: greeter}}]
    timeout: 5s`),
    );
    const r = await unary(greeter(), 'Hello', { name: 'd' }, { deadlineMs: 3000 });
    expect(r.reply?.deadlineMs).to.be.within(1, 3000);
    // the upstream is slower than the client's deadline: the proxy's own timer answers DEADLINE
    // or UNAVAILABLE (504 UT mapped), whichever the client sees first; never a hang past 5 s
    v1.delayMs = 1500;
    const t = performance.now();
    const slow = await unary(greeter(), 'Hello', { name: 'slow' }, { deadlineMs: 300 });
    expect(performance.now() - t).to.be.below(1400);
    expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).to.include(slow.error?.code);
  });

  it('answers a route timeout to a gRPC client as a gRPC error (HTTP 200, grpc-status 14, flag UT)', async () => {
    p = await startProxy(
      greeterEntry([v1]) +
        greeterVs(`
  - route: [{destination: {host: greeter}}]
    timeout: 200ms`),
    );
    v1.delayMs = 1000;
    const r = await unary(greeter(), 'Hello', { name: 'slow' });
    expect(r.error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(r.error?.details).to.match(/upstream request timeout/i);
    const m = await metricsText(p);
    expect(m).to.match(/response_code="200",response_flags="UT",grpc_response_status="14"\} 1/);
  });

  it('grpcStatus fault: every call aborted with that status, the upstream never called', async () => {
    p = await startProxy(
      greeterEntry([v1]) +
        greeterVs(`
  - fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
    route: [{destination: {host: greeter}}]`),
    );
    const r = await unary(greeter(), 'Hello', { name: 'f' });
    expect(r.error?.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    expect(v1.calls.length).to.equal(0);
    const m = await metricsText(p);
    expect(m).to.match(/response_flags="FI",grpc_response_status="8"\} 1/);
  });

  it('no route and no healthy upstream are gRPC errors too (UNIMPLEMENTED 404 NR, UNAVAILABLE 503)', async () => {
    p = await startProxy(
      greeterEntry([v1]) +
        greeterVs(`
  - match: [{uri: {prefix: /weft.test.Greeter/}}]
    route: [{destination: {host: greeter}}]`),
    );
    const other = clientVia(OtherClient, p.port, AUTHORITY);
    clients.push(other);
    const nr = await unary(other, 'Ping', { name: 'x' });
    expect(nr.error?.code).to.equal(grpc.status.UNIMPLEMENTED);
    await v1.close();
    const down = await unary(greeter(), 'Hello', { name: 'x' });
    expect(down.error?.code).to.equal(grpc.status.UNAVAILABLE);
    v1 = await grpcUpstream('v1');
  });

  it("serves h2c with prior knowledge to node's http2 client (plain HTTP/2 to an HTTP/2 upstream)", async () => {
    p = await startProxy(greeterEntry([v1]) + greeterVs(`  - route: [{destination: {host: greeter}}]`));
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    try {
      const res = await new Promise<{ status: number; flags: string }>((resolve, reject) => {
        const s = session.request({ ':path': '/nothing', ':authority': 'unknown-host' });
        s.on('response', (h) =>
          resolve({ status: Number(h[':status']), flags: String(h['x-weft-response-flags']) }),
        );
        s.on('error', reject);
        s.resume();
        s.end();
      });
      expect(res).to.deep.equal({ status: 404, flags: 'NR' });
    } finally {
      session.close();
    }
  });

  it('drain: an HTTP/2 connection gets GOAWAY, and the call in progress on it completes', async () => {
    p = await startProxy(greeterEntry([v1]) + greeterVs(`  - route: [{destination: {host: greeter}}]`));
    v1.delayMs = 400;
    const c = greeter();
    const call = unary(c, 'Hello', { name: 'draining' });
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    const goaway = new Promise<boolean>((r) => {
      session.once('goaway', () => r(true));
      setTimeout(() => r(false), 3000).unref();
    });
    // an idle HTTP/2 connection (one request done) and the gRPC call in flight
    await new Promise<void>((resolve) => {
      const s = session.request({ ':path': '/', ':authority': 'nowhere' });
      s.resume();
      s.on('close', () => resolve());
      s.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    p.proxy.drain();
    expect(await goaway).to.equal(true);
    expect((await call).reply?.name).to.equal('draining');
    session.destroy();
  });
});
