import { configFromText } from '../../../proxy/config/load.js';
import { expect } from 'chai';
import {
  distribution,
  request,
  seeded,
  reviewsEntry,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';

describe('proxy HTTP routing (real upstreams on loopback)', function () {
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
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });

  it('end-user: jason → v2, everyone else → v1', async () => {
    p = await startProxy(
      reviewsEntry([v1, v2]) +
        vs(`
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    expect((await request(p.port, { headers: { 'end-user': 'jason' } })).body).to.equal('v2');
    expect((await request(p.port, { headers: { 'end-user': 'maria' } })).body).to.equal('v1');
    expect((await request(p.port)).body).to.equal('v1');
  });

  for (const [a, b] of [
    [90, 10],
    [50, 50],
  ] as const) {
    it(`${a}/${b} split lands within tolerance over 2,000 requests`, async () => {
      p = await startProxy(
        reviewsEntry([v1, v2]) +
          vs(`
  - route:
    - {destination: {host: reviews, subset: v1}, weight: ${a}}
    - {destination: {host: reviews, subset: v2}, weight: ${b}}`),
        { rand: seeded(a) },
      );
      const d = await distribution(p.port, 2000);
      expect(d.v1! + d.v2!).to.equal(2000);
      // fixed seed over real sockets; ±3 points (> 2.6 standard deviations for n = 2000)
      expect(d.v1! / 2000).to.be.closeTo(a / 100, 0.03);
    });
  }

  it('routes by host, short name, name.namespace and host:port; unknown host → 404 NR', async () => {
    p = await startProxy(reviewsEntry([v1]));
    for (const host of [
      'reviews',
      'reviews:9080',
      'reviews.default',
      'reviews.default.svc.cluster.local:9080',
      'REVIEWS:9080',
    ]) {
      expect((await request(p.port, { host })).body, host).to.equal('v1');
    }
    const r = await request(p.port, { host: 'ratings:9080' });
    expect(r.status).to.equal(404);
    expect(r.headers['x-weft-response-flags']).to.equal('NR');
    expect(r.body).to.match(/no virtual host for authority "ratings:9080"/);
  });

  it('no matching rule → 404 NR (no implicit catch-all)', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    expect((await request(p.port, { path: '/api/x' })).status).to.equal(200);
    const r = await request(p.port, { path: '/other' });
    expect(r.status).to.equal(404);
    expect(r.headers['x-weft-response-flags']).to.equal('NR');
  });

  it('first match wins; match blocks ORed; method, query, regex and withoutHeaders', async () => {
    p = await startProxy(
      reviewsEntry([v1, v2]) +
        vs(`
  - match: [{method: {exact: POST}, queryParams: {v: {exact: "2"}}}, {uri: {regex: "/re/[0-9]+"}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{withoutHeaders: {x-old: {}}, uri: {prefix: /new}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    expect((await request(p.port, { method: 'POST', path: '/?v=2', body: 'x' })).body).to.equal('v2');
    expect((await request(p.port, { method: 'GET', path: '/?v=2' })).body).to.equal('v1');
    expect((await request(p.port, { path: '/re/123' })).body).to.equal('v2');
    expect((await request(p.port, { path: '/re/123x' })).body).to.equal('v1');
    expect((await request(p.port, { path: '/new' })).body).to.equal('v2');
    expect((await request(p.port, { path: '/new', headers: { 'x-old': '1' } })).body).to.equal('v1');
  });

  it('undefined subset → 503 NC; subset without endpoints → 503 UH; both explained', async () => {
    p = await startProxy(
      reviewsEntry([v1]).replace('  subsets:\n', '  subsets:\n  - {name: empty, labels: {version: none}}\n') +
        vs(`
  - match: [{uri: {prefix: /nc}}]
    route: [{destination: {host: reviews, subset: missing}}]
  - route: [{destination: {host: reviews, subset: empty}}]`),
    );
    const nc = await request(p.port, { path: '/nc' });
    expect(nc.status).to.equal(503);
    expect(nc.headers['x-weft-response-flags']).to.equal('NC');
    expect(nc.body).to.match(/outbound\|9080\|missing\|reviews/);
    const uh = await request(p.port);
    expect(uh.status).to.equal(503);
    expect(uh.headers['x-weft-response-flags']).to.equal('UH');
  });

  it('direct response and redirect', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {exact: /direct}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: other.example.com, redirectCode: 302}
  - match: [{uri: {prefix: /moved}}]
    redirect: {uri: /there}`),
    );
    const d = await request(p.port, { path: '/direct' });
    expect([d.status, d.body]).to.deep.equal([418, 'short and stout']);
    const r = await request(p.port, { path: '/old/x?q=1' });
    expect(r.status).to.equal(302);
    expect(r.headers.location).to.equal('http://other.example.com/new?q=1');
    const m = await request(p.port, { path: '/moved', host: 'reviews:9080' });
    expect(m.status).to.equal(301);
    expect(m.headers.location).to.equal('http://reviews:9080/there');
    expect(v1.seen).to.have.length(0);
  });

  it('rewrite: prefix, whole path, regex, authority', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {prefix: /v1/api}}]
    rewrite: {uri: /api}
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {exact: /exact}}]
    rewrite: {uri: /replaced, authority: backend.internal}
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {prefix: /service}}]
    rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\\\2/instance/\\\\1"}}
    route: [{destination: {host: reviews, subset: v1}}]`),
    );
    await request(p.port, { path: '/v1/api/users?x=1' });
    await request(p.port, { path: '/exact' });
    await request(p.port, { path: '/service/foo/v1/api' });
    expect(v1.seen.map((s) => s.url)).to.deep.equal(['/api/users?x=1', '/replaced', '/v1/api/instance/foo']);
    expect(v1.seen[0]!.headers.host).to.equal('reviews:9080');
    expect(v1.seen[1]!.headers.host).to.equal('backend.internal');
  });

  it('header operations at route and destination level, request and response', async () => {
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - headers:
      request: {set: {x-route: r}, remove: [x-drop]}
      response: {add: {x-resp: route}}
    route:
    - destination: {host: reviews, subset: v1}
      headers:
        request: {add: {x-dest: d}, set: {x-route: overridden}}
        response: {set: {x-upstream: hidden}, remove: [content-type]}`),
    );
    const r = await request(p.port, { headers: { 'x-drop': '1', connection: 'keep-alive' } });
    const seen = v1.seen[0]!.headers;
    expect(seen['x-route']).to.equal('overridden');
    expect(seen['x-dest']).to.equal('d');
    expect(seen['x-drop']).to.equal(undefined);
    expect(seen['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    expect(seen.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(r.headers['x-resp']).to.equal('route');
    expect(r.headers['x-upstream']).to.equal('hidden');
    expect(r.headers['content-type']).to.equal(undefined);
  });

  it('keeps x-request-id and W3C traceparent; derives traceparent from B3', async () => {
    p = await startProxy(reviewsEntry([v1]));
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await request(p.port, { headers: { 'x-request-id': 'abc', traceparent: tp } });
    await request(p.port, {
      headers: {
        'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-sampled': '1',
      },
    });
    expect(v1.seen[0]!.headers['x-request-id']).to.equal('abc');
    expect(v1.seen[0]!.headers.traceparent).to.equal(tp);
    expect(v1.seen[1]!.headers.traceparent).to.equal(
      '00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01',
    );
    expect(v1.seen[1]!.headers['x-b3-traceid']).to.equal('80f198ee56343ba864fe8b2a57d3eff7');
  });

  const mirrorRoutes = `
  - match: [{uri: {prefix: /none}}]
    route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 0}
  - route: [{destination: {host: reviews, subset: v1}}]
    mirror: {host: reviews, subset: v2}`;

  it('mirrors fire-and-forget keeping the original Host (Istio ≥ 1.28); mirrorPercentage 0 sends none', async () => {
    p = await startProxy(reviewsEntry([v1, v2]) + vs(mirrorRoutes));
    v2.handler = () => undefined; // a mirror that never answers must not delay the response
    const r = await request(p.port, { method: 'POST', path: '/m', body: 'payload' });
    expect(r.body).to.equal('v1');
    await request(p.port, { path: '/none' });
    await new Promise((res) => setTimeout(res, 200));
    expect(v2.seen).to.have.length(1);
    expect(v2.seen[0]!.headers.host).to.equal('reviews:9080');
    expect(v2.seen[0]!.body).to.equal('payload');
    v2.handler = (_q, res) => res.end('v2');
  });

  it('mirrors with shadowHostSuffix (DISABLE_SHADOW_HOST_SUFFIX=false) get a -shadow Host', async () => {
    const cfg = configFromText(reviewsEntry([v1, v2]) + vs(mirrorRoutes), 'test.yaml').config;
    for (const l of cfg.listeners)
      if (l.protocol === 'HTTP')
        for (const vh of l.virtualHosts)
          for (const r of vh.routes) for (const m of r.mirrors ?? []) m.shadowHostSuffix = true;
    p = await startProxy(cfg);
    v2.handler = (_q, res) => res.end('v2');
    await request(p.port, { path: '/m' });
    await new Promise((res) => setTimeout(res, 200));
    expect(v2.seen.map((s) => s.headers.host)).to.deep.equal(['reviews-shadow:9080']);
  });

  it('request bodies are forwarded (buffered and streamed)', async () => {
    p = await startProxy(reviewsEntry([v1]));
    v1.handler = (_req, res, body) => res.end(`len=${body.length}`);
    expect((await request(p.port, { method: 'POST', body: 'hello' })).body).to.equal('len=5');
    const big = 'x'.repeat(200 * 1024);
    expect((await request(p.port, { method: 'PUT', body: big })).body).to.equal(`len=${big.length}`);
    v1.handler = (_q, res) => {
      res.writeHead(200, { 'x-upstream': 'v1' });
      res.end('v1');
    };
  });
});
