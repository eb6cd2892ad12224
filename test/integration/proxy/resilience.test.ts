import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import {
  request,
  reviewsEntry,
  sleep,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';

const ok = (name: string) => (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(200, { 'x-upstream': name });
  res.end(name);
};

describe('proxy resilience (timeouts, retries, faults, circuit breaking, outlier detection)', function () {
  this.timeout(30_000);
  let v1: Upstream;
  let v2: Upstream;
  let p: Started | null = null;
  before(async () => {
    v1 = await upstream('v1');
    v2 = await upstream('v2');
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
    v1.seen.length = 0;
    v2.seen.length = 0;
    v1.handler = ok('v1');
    v2.handler = ok('v2');
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });

  it('delay fault for one user (300 ms here, 7 s in Bookinfo) and an HTTP 500 abort for another', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{headers: {end-user: {exact: maria}}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    const t = performance.now();
    const delayed = await request(p.port, { headers: { 'end-user': 'jason' } });
    const delayedMs = performance.now() - t;
    expect((await request(p.port)).body).to.equal('v1');
    expect(delayed.body).to.equal('v1');
    // A delay is a lower bound; how fast the others are is the machine's business, not a test's
    // (the metrics below prove exactly one request was delayed: response_flags="DI" counts 1).
    expect(delayedMs).to.be.at.least(290);
    const aborted = await request(p.port, { headers: { 'end-user': 'maria' } });
    expect(aborted.status).to.equal(500);
    expect(aborted.headers['x-weft-response-flags']).to.equal('FI');
    expect(v1.seen).to.have.length(2); // the aborted request never reached the upstream
    const metrics = await request(p.metrics, { path: '/stats/prometheus' });
    expect(metrics.body).to.match(/response_code="200",response_flags="DI"\} 1/);
    expect(metrics.body).to.match(/response_code="500",response_flags="FI"\} 1/);
  });

  it('fault on a route turns off its retries and timeout (Istio semantics)', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - fault: {delay: {fixedDelay: 10ms, percentage: {value: 0}}}
    timeout: 100ms
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    v1.handler = (_q, res) => setTimeout(() => res.writeHead(500).end('slow failure'), 250);
    const r = await request(p.port);
    expect(r.status).to.equal(500); // not a 504 UT, and not retried
    expect(v1.seen).to.have.length(1);
  });

  it('retries on 5xx (attempts 2, perTryTimeout) then succeeds; the upstream saw 3 attempts', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - timeout: 10s
    retries: {attempts: 2, perTryTimeout: 5s, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    let n = 0;
    v1.handler = (_q, res) => (++n <= 2 ? res.writeHead(500).end('boom') : ok('v1')(_q, res));
    const r = await request(p.port);
    expect(r.status).to.equal(200);
    expect(n).to.equal(3);
  });

  it('retries exhausted → the last 5xx with URX; attempts: 0 disables retries', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {prefix: /none}}]
    retries: {attempts: 0}
    route: [{destination: {host: reviews, subset: v1}}]
  - retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    v1.handler = (_q, res) => res.writeHead(503).end('down');
    const r = await request(p.port);
    expect(r.status).to.equal(503);
    expect(v1.seen).to.have.length(3);
    v1.seen.length = 0;
    expect((await request(p.port, { path: '/none' })).status).to.equal(503);
    expect(v1.seen).to.have.length(1);
    const m = await request(p.metrics, { path: '/stats/prometheus' });
    expect(m.body).to.match(/response_code="503",response_flags="URX"\} 1/);
  });

  it('default retry policy (no retries field): a 503 is not retried (Istio ≥ 1.24), nor a 500', async () => {
    p = await startProxy(reviewsEntry([v1]));
    let n = 0;
    v1.handler = (_q, res) => (++n === 1 ? res.writeHead(503).end('acted') : ok('v1')(_q, res));
    const r = await request(p.port);
    expect(r.status).to.equal(503);
    expect(r.body).to.equal('acted'); // the app's own 503, passed through once
    expect(n).to.equal(1);
    v1.handler = (_q, res) => res.writeHead(500).end();
    expect((await request(p.port)).status).to.equal(500);
    expect(v1.seen.length).to.equal(2);
  });

  it('default retry policy: a refused connection is retried on another endpoint (previous_hosts)', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    // two endpoints, round robin: the first pick is the dead one, the retry avoids it
    p = await startProxy(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${deadPort}}}
  - {address: 127.0.0.1, ports: {http: ${v1.port}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`);
    for (let i = 0; i < 4; i++) {
      const r = await request(p.port);
      expect(r.status).to.equal(200);
      expect(r.headers['x-weft-response-flags']).to.equal(undefined);
    }
    expect(v1.seen).to.have.length(4);
    const stats = (await request(p.admin, { path: '/stats' })).body;
    const fails = Number(
      /reviews\.default\.svc\.cluster\.local\.upstream_cx_connect_fail: (\d+)/.exec(stats)?.[1],
    );
    const retries = Number(
      /reviews\.default\.svc\.cluster\.local\.upstream_rq_retry: (\d+)/.exec(stats)?.[1],
    );
    expect(fails).to.be.at.least(1);
    expect(retries).to.equal(fails);
  });

  it('route timeout → 504 UT; per-try timeout retries onto the next attempt', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {prefix: /hang}}]
    timeout: 300ms
    route: [{destination: {host: reviews, subset: v1}}]
  - timeout: 2s
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    v1.handler = () => undefined; // hang
    const t = performance.now();
    const r = await request(p.port, { path: '/hang' });
    expect(r.status).to.equal(504);
    expect(r.headers['x-weft-response-flags']).to.equal('UT');
    // the /hang route's 300 ms timeout ended it (without it the request would hang until the
    // test's own timeout); the upper bound is loose, for a loaded machine
    expect(performance.now() - t).to.be.within(280, 5000);
    let n = 0;
    v1.handler = (q, res) => (++n === 1 ? undefined : ok('v1')(q, res));
    const r2 = await request(p.port);
    expect(r2.status).to.equal(200);
    expect(n).to.equal(2);
  });

  it('maxConnections 1 + http1MaxPendingRequests 1 under concurrency → 503 UO', async () => {
    p = await startProxy(
      reviewsEntry(
        [v1],
        `  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}`,
      ),
    );
    v1.handler = (q, res) => setTimeout(() => ok('v1')(q, res), 200);
    const replies = await Promise.all(Array.from({ length: 8 }, () => request(p!.port, { agent: false })));
    const codes = replies.map((r) => r.status);
    expect(codes.filter((c) => c === 200).length).to.equal(2);
    const uo = replies.filter((r) => r.status === 503);
    expect(uo).to.have.length(6);
    expect(uo.every((r) => r.headers['x-weft-response-flags'] === 'UO')).to.equal(true);
    expect((await request(p.admin, { path: '/stats' })).body).to.match(/upstream_rq_pending_overflow: 6/);
  });

  it('an outlier is ejected after consecutive 5xx and comes back after baseEjectionTime', async () => {
    p = await startProxy(
      reviewsEntry(
        [v1, v2],
        `  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3, interval: 100ms, baseEjectionTime: 600ms, maxEjectionPercent: 100}`,
      ).replace(/labels: \{version: v[12]\}\}/g, 'labels: {version: v1, pod: x}}'),
    );
    v2.handler = (_q, res) => res.writeHead(500, { 'x-upstream': 'v2' }).end('bad');
    // default retry policy does not retry 500, so each request hits exactly one endpoint
    for (let i = 0; i < 6; i++) await request(p.port);
    const clusters = JSON.parse((await request(p.admin, { path: '/clusters' })).body) as {
      clusters: { name: string; endpoints: { address: string; healthy: boolean }[] }[];
    };
    const c = clusters.clusters.find((x) => x.name === 'outbound|9080||reviews.default.svc.cluster.local')!;
    expect(c.endpoints.find((e) => e.address.endsWith(`:${v2.port}`))!.healthy).to.equal(false);
    const during = await Promise.all(Array.from({ length: 10 }, () => request(p!.port)));
    expect(during.every((r) => r.body === 'v1')).to.equal(true);
    v2.handler = ok('v2');
    await sleep(800);
    const after = await Promise.all(Array.from({ length: 10 }, () => request(p!.port)));
    expect(after.some((r) => r.body === 'v2')).to.equal(true);
  });

  it('a pooled connection the upstream closed is retried once on a fresh one (no 503 UC)', async () => {
    // an upstream that keeps the connection "alive" but silently drops it on the next request
    let conns = 0;
    const server = net.createServer((s) => {
      conns++;
      let served = 0;
      s.on('data', () => {
        if (served++ === 0) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-upstream: raw\r\n\r\nok');
        else s.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    p = await startProxy(
      reviewsEntry([{ ...v1, port }]) +
        vs(`
  - retries: {attempts: 0}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    for (let i = 0; i < 3; i++) {
      const r = await request(p.port);
      expect(r.status, `request ${i}`).to.equal(200);
    }
    expect(conns).to.equal(3);
    server.close();
  });

  it('an upstream response with smuggling-style framing → 502 UPE, connection not reused', async () => {
    const bad = net.createServer((s) =>
      s.on('data', () =>
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'),
      ),
    );
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    p = await startProxy(reviewsEntry([{ ...v1, port: (bad.address() as net.AddressInfo).port }]));
    const r = await request(p.port);
    expect(r.status).to.equal(502);
    expect(r.headers['x-weft-response-flags']).to.equal('UPE');
    bad.close();
  });

  it('connection refused → 503 UF after default retries; reset before headers → 503 UC', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const resetter = net.createServer((s) => s.on('data', () => s.resetAndDestroy()));
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', () => r()));
    const resetPort = (resetter.address() as net.AddressInfo).port;
    p = await startProxy(
      reviewsEntry([
        { ...v1, name: 'dead', port: deadPort },
        { ...v2, name: 'reset', port: resetPort },
      ]) +
        vs(`
  - match: [{uri: {prefix: /dead}}]
    route: [{destination: {host: reviews, subset: dead}}]
  - route: [{destination: {host: reviews, subset: reset}}]`),
    );
    const uf = await request(p.port, { path: '/dead' });
    expect(uf.status).to.equal(503);
    expect(uf.headers['x-weft-response-flags']).to.equal('UF,URX');
    const uc = await request(p.port);
    expect(uc.status).to.equal(503);
    expect(uc.headers['x-weft-response-flags']).to.equal('UC');
    expect(uc.body).to.match(/connection termination/);
    resetter.close();
  });
});
