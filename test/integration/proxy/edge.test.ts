import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import {
  raw,
  request,
  reviewsEntry,
  sleep,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { MAX_HEADERS_COUNT } from '../../../proxy/http1-limits.js';

describe('proxy bad input, admin, telemetry, upgrades and TCP', function () {
  this.timeout(30_000);
  let v1: Upstream;
  let p: Started | null = null;
  before(async () => {
    v1 = await upstream('v1');
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
    v1.seen.length = 0;
    v1.handler = (_q, res) => res.writeHead(200, { 'x-upstream': 'v1' }).end('v1');
  });
  after(() => v1.close());

  const alive = async (): Promise<void> => {
    expect((await request(p!.port)).body).to.equal('v1');
  };

  it('malformed request line → 400 DPE, and the proxy keeps serving', async () => {
    p = await startProxy(reviewsEntry([v1]));
    const out = await raw(p.port, 'GARBAGE\r\n\r\n');
    expect(out).to.match(/^HTTP\/1\.1 400 /);
    expect(out).to.match(/x-weft-response-flags: DPE/);
    await alive();
  });

  it('oversized headers → 431', async () => {
    p = await startProxy(reviewsEntry([v1]), { maxHeaderBytes: 8 * 1024 });
    const out = await raw(
      p.port,
      `GET / HTTP/1.1\r\nHost: reviews:9080\r\nx-big: ${'a'.repeat(16 * 1024)}\r\n\r\n`,
    );
    expect(out).to.match(/^HTTP\/1\.1 431 /);
    await alive();
  });

  it(`${MAX_HEADERS_COUNT} header fields pass; ${MAX_HEADERS_COUNT + 1} → 431 DPE, nothing forwarded`, async () => {
    p = await startProxy(reviewsEntry([v1]));
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `x-f${i}: ${i}\r\n`).join('');
    const head = 'Host: reviews:9080\r\nConnection: close\r\n';
    const ok = await raw(p.port, `GET /ok HTTP/1.1\r\n${head}${fields(MAX_HEADERS_COUNT - 2)}\r\n`);
    expect(ok).to.match(/^HTTP\/1\.1 200 /);
    const out = await raw(p.port, `GET /over HTTP/1.1\r\n${head}${fields(MAX_HEADERS_COUNT - 1)}\r\n`);
    expect(out).to.match(/^HTTP\/1\.1 431 /);
    expect(out).to.match(/x-weft-response-flags: DPE/);
    expect(v1.seen.map((s) => s.url)).to.deep.equal(['/ok']);
    await alive();
  });

  it('request smuggling: Content-Length with Transfer-Encoding → 400, nothing forwarded', async () => {
    p = await startProxy(reviewsEntry([v1]));
    const out = await raw(
      p.port,
      'POST / HTTP/1.1\r\nHost: reviews:9080\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: reviews:9080\r\n\r\n',
    );
    expect(out).to.match(/^HTTP\/1\.1 400 /);
    expect(v1.seen.map((s) => s.url)).to.not.include('/smuggled');
    const dup = await raw(
      p.port,
      'POST / HTTP/1.1\r\nHost: reviews:9080\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    );
    expect(dup).to.match(/^HTTP\/1\.1 400 /);
    await alive();
  });

  it('a slow client that never finishes its headers is cut off (408)', async () => {
    p = await startProxy(reviewsEntry([v1]), { headersTimeoutMs: 300 });
    const t = performance.now();
    const out = await raw(p.port, 'GET / HTTP/1.1\r\nHost: rev', 5000);
    expect(performance.now() - t).to.be.lessThan(3000);
    expect(out === '' || /^HTTP\/1\.1 408 /.test(out)).to.equal(true);
    await alive();
  });

  it('a client that disconnects mid-response frees the pooled connection (pool of 1)', async () => {
    p = await startProxy(
      reviewsEntry(
        [v1],
        `  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}}`,
      ),
    );
    v1.handler = (_q, res) => {
      res.writeHead(200, { 'x-upstream': 'v1' });
      res.write('partial');
      // never ends by itself
    };
    const s = net.connect(p.port, '127.0.0.1');
    s.write('GET /stream HTTP/1.1\r\nHost: reviews:9080\r\n\r\n');
    await new Promise((r) => s.once('data', r));
    s.destroy();
    await sleep(100);
    v1.handler = (_q, res) => res.writeHead(200, { 'x-upstream': 'v1' }).end('v1');
    await alive();
    const m = await request(p.metrics, { path: '/stats/prometheus' });
    expect(m.body).to.match(/response_code="200",response_flags="DC"\} 1/);
  });

  it('admin: config_dump, ready, stats, clusters, explain; health; Istio metrics', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - name: jason-rule
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    await request(p.port, { headers: { 'end-user': 'jason' } });
    const dump = JSON.parse((await request(p.admin, { path: '/config_dump' })).body) as {
      version: string;
      config: ProxyConfig;
    };
    expect(dump.config.kind).to.equal('ProxyConfig');
    expect(dump.version).to.equal(p.proxy.current!.version);
    expect((await request(p.admin, { path: '/ready' })).body).to.equal('LIVE\n');
    expect((await request(p.health, { path: '/healthz/ready' })).status).to.equal(200);
    expect((await request(p.admin, { path: '/stats' })).body).to.match(
      /cluster\.outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local\.upstream_rq_total: 1/,
    );
    const explain = JSON.parse(
      (
        await request(p.admin, {
          path: '/explain',
          method: 'POST',
          body: JSON.stringify({ authority: 'reviews:9080', path: '/x', headers: { 'end-user': 'jason' } }),
        })
      ).body,
    ) as Record<string, unknown>;
    expect(explain.route).to.deep.include({
      index: 0,
      name: 'jason-rule',
      source: 'VirtualService default/reviews http[0]',
    });
    expect((explain.destinations as { cluster: string; outcomeIfChosen: string }[])[0]).to.deep.include({
      cluster: 'outbound|9080|v1|reviews.default.svc.cluster.local',
      outcomeIfChosen: 'forwarded',
    });
    const miss = JSON.parse(
      (await request(p.admin, { path: '/explain', method: 'POST', body: '{"authority":"reviews:9080"}' }))
        .body,
    ) as { outcome: string };
    expect(miss.outcome).to.match(/^404 NR/);
    expect(v1.seen).to.have.length(1); // explain sent nothing
    const bad = await request(p.admin, { path: '/explain', method: 'POST', body: '{not json' });
    expect(bad.status).to.equal(400);
    const prom = (await request(p.metrics, { path: '/stats/prometheus' })).body;
    for (const name of [
      'istio_requests_total',
      'istio_request_duration_milliseconds_bucket',
      'istio_request_bytes_bucket',
      'istio_response_bytes_bucket',
    ])
      expect(prom).to.include(name);
    expect(prom).to.match(
      /istio_requests_total\{reporter="source",.*destination_service="reviews\.default\.svc\.cluster\.local".*response_code="200",response_flags="-"\} 1/,
    );
  });

  it('explain header (opt-in) and JSON access log', async () => {
    const lines: string[] = [];
    const sink = new (await import('node:stream')).Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(...chunk.toString().trim().split('\n'));
        cb();
      },
    });
    const yaml = reviewsEntry([v1]);
    const { configFromText } = await import('../../../proxy/config/load.js');
    const cfg = configFromText(yaml).config;
    p = await startProxy(
      { ...cfg, telemetry: { accessLog: true, explainHeader: true } },
      { accessLogSink: sink },
    );
    const r = await request(p.port, { headers: { 'x-weft-explain': '1' } });
    const ex = JSON.parse(String(r.headers['x-weft-explain'])) as Record<string, unknown>;
    expect(ex).to.deep.include({
      virtualHost: 'reviews.default.svc.cluster.local:9080',
      endpoint: `127.0.0.1:${v1.port}`,
      attempts: 1,
    });
    expect((await request(p.port)).headers['x-weft-explain']).to.equal(undefined);
    await sleep(50);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).to.deep.include({
      method: 'GET',
      response_code: 200,
      response_flags: '-',
      upstream_cluster: 'outbound|9080||reviews.default.svc.cluster.local',
    });
  });

  it('hot reload swaps routes without dropping in-flight requests; an invalid config is rejected', async () => {
    const v2 = await upstream('v2');
    const { configFromText } = await import('../../../proxy/config/load.js');
    p = await startProxy(
      reviewsEntry([v1, v2]) +
        vs(`
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    v1.handler = (_q, res) => setTimeout(() => res.writeHead(200, { 'x-upstream': 'v1' }).end('v1'), 300);
    const inflight = request(p.port);
    await sleep(50);
    await p.proxy.apply(
      configFromText(
        reviewsEntry([v1, v2]) +
          vs(`
  - route: [{destination: {host: reviews, subset: v2}}]`),
      ).config,
    );
    expect((await request(p.port)).body).to.equal('v2');
    expect((await inflight).body).to.equal('v1');
    const before = p.proxy.current!.version;
    expect(() =>
      configFromText(
        reviewsEntry([v1]) +
          vs(`
  - route: [{destination: {host: reviews, subset: v1}, weight: -5}]`),
      ),
    ).to.throw(/WEFT_PROXY_CONFIG_INVALID|weight/);
    const badRegex = configFromText(reviewsEntry([v1, v2])).config;
    const vh = (badRegex.listeners[0] as { virtualHosts: { routes: { match?: unknown[] }[] }[] })
      .virtualHosts[0]!;
    vh.routes[0]!.match = [{ uri: { regex: '(unclosed' } }];
    let err: unknown;
    try {
      await p.proxy.apply(badRegex);
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/invalid RE2 regex/);
    expect(p.proxy.current!.version).to.equal(before);
    expect((await request(p.port)).body).to.equal('v2');
    await v2.close();
  });

  it('a reload that leaves a cluster unchanged keeps its pooled upstream connections', async () => {
    const { configFromText } = await import('../../../proxy/config/load.js');
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) await request(p.port, { agent });
    const before = v1.accepted;
    await p.proxy.apply(
      configFromText(
        reviewsEntry([v1]) +
          vs(`
  - match: [{uri: {prefix: /new}}]
    directResponse: {status: 204}
  - route: [{destination: {host: reviews, subset: v1}}]`),
      ).config,
    );
    for (let i = 0; i < 5; i++) expect((await request(p.port, { agent })).body).to.equal('v1');
    expect((await request(p.port, { agent, path: '/new' })).status).to.equal(204);
    expect(v1.accepted).to.equal(before); // same upstream connection, same client connection
    agent.destroy();
  });

  it('drain: readiness fails and new connections are refused', async () => {
    p = await startProxy(reviewsEntry([v1]));
    await alive();
    const d = await request(p.admin, { path: '/drain', method: 'POST' });
    expect(d.status).to.equal(200);
    expect((await request(p.health, { path: '/healthz/ready' })).status).to.equal(503);
    let refused = false;
    try {
      await request(p.port, { agent: false });
    } catch {
      refused = true;
    }
    expect(refused).to.equal(true);
  });

  it('SIGTERM-style shutdown keeps serving (Connection: close) until in-flight work is done', async () => {
    p = await startProxy(reviewsEntry([v1]), { drainMs: 20_000 });
    v1.handler = (_q, res) => setTimeout(() => res.writeHead(200, { 'x-upstream': 'v1' }).end('slow'), 300);
    const slow = request(p.port, { agent: false });
    await sleep(50);
    const stopping = p.proxy.shutdown();
    expect(
      (await request(p.health, { path: '/healthz/ready' }).catch(() => ({ status: 503 }))).status,
    ).to.equal(503);
    v1.handler = (_q, res) => res.writeHead(200, { 'x-upstream': 'v1' }).end('v1');
    const during = await request(p.port, { agent: false });
    expect(during.body).to.equal('v1');
    expect(during.headers.connection).to.equal('close');
    expect((await slow).body).to.equal('slow');
    const t = performance.now();
    await stopping;
    expect(performance.now() - t).to.be.lessThan(10_000); // stopped when idle, not at the 20 s deadline
    p = null;
  });

  it('WebSocket upgrade is routed and piped both ways', async () => {
    p = await startProxy(reviewsEntry([v1]));
    const s = net.connect(p.port, '127.0.0.1');
    s.write(
      'GET /ws HTTP/1.1\r\nHost: reviews:9080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('101') && !got.includes('echo')) s.write('ping');
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no echo: ${got}`)), 3000);
      const check = setInterval(() => {
        if (got.includes('echo:ping')) {
          clearTimeout(t);
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
    expect(got).to.match(/^HTTP\/1\.1 101/);
    s.destroy();
  });

  it('TCP pass-through listener pipes bytes to an endpoint', async () => {
    const echo = net.createServer((c) => c.on('data', (d: Buffer) => c.write(d)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const cfg: ProxyConfig = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'tcp-1',
      listeners: [
        { name: 'db', protocol: 'TCP', address: '127.0.0.1', port: 0, cluster: 'outbound|5432||db' },
      ],
      clusters: [
        { name: 'outbound|5432||db', service: 'db', endpoints: [{ address: '127.0.0.1', port: echoPort }] },
      ],
    };
    p = await startProxy(cfg, { listen: undefined as never });
    const port = p.proxy.ports().db!;
    const s = net.connect(port, '127.0.0.1');
    s.write('hello tcp');
    const reply = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
    expect(reply).to.equal('hello tcp');
    s.destroy();
    echo.close();
    await sleep(50);
    expect((await request(p.metrics, { path: '/stats/prometheus' })).body).to.match(
      /istio_tcp_connections_opened_total\{.*destination_service="db".*\} 1/,
    );
  });

  it('an HTTP client can still use plain http.get through the proxy (keep-alive reuse)', async () => {
    p = await startProxy(reviewsEntry([v1]));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) expect((await request(p.port, { agent })).body).to.equal('v1');
    agent.destroy();
  });
});
