/**
 * The headers Istio's sidecars and gateways add by default (x-envoy-attempt-count,
 * x-envoy-upstream-service-time, x-envoy-overloaded, x-envoy-original-path), the mesh setting that
 * turns them off (Istio's meshConfig.defaultConfig.proxyHeaders, here in a standalone Mesh
 * document), and edge sanitizing of the x-envoy-* control headers a client outside the mesh sends.
 */
import { expect } from 'chai';
import type http from 'node:http';
import { configFromText } from '../../../proxy/config/load.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { request, reviewsEntry, startProxy, upstream, vs, type Started, type Upstream } from './helpers.js';

const MESH_OFF = `apiVersion: mesh.weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  defaultConfig:
    proxyHeaders:
      attemptCount: {disabled: true}
      envoyDebugHeaders: {disabled: true}
---
`;

const ROUTES = `
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new}
    route: [{destination: {host: reviews, subset: v1}}]
  - retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: reviews, subset: v1}}]`;

async function until(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setImmediate(r));
}

describe('proxy: headers Istio adds by default, proxyHeaders, edge sanitizing', function () {
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
    v1.handler = (_q, res) => res.end('v1');
  });
  after(() => v1.close());

  it('x-envoy-attempt-count 1, 2, 3 on each attempt; a client value is replaced', async () => {
    p = await startProxy(reviewsEntry([v1]) + vs(ROUTES));
    let n = 0;
    v1.handler = (_q, res) => (++n < 3 ? res.writeHead(500).end() : res.end('ok'));
    const r = await request(p.port, { headers: { 'x-envoy-attempt-count': '99' } });
    expect(r.status).to.equal(200);
    expect(v1.seen.map((s) => s.headers['x-envoy-attempt-count'])).to.deep.equal(['1', '2', '3']);
  });

  it('x-envoy-upstream-service-time on proxied responses (an upstream value replaced), not on local replies', async () => {
    p = await startProxy(reviewsEntry([v1]) + vs(ROUTES));
    v1.handler = (_q, res) => res.writeHead(200, { 'x-envoy-upstream-service-time': 'forged' }).end('ok');
    const r = await request(p.port);
    expect(r.headers['x-envoy-upstream-service-time']).to.match(/^\d+$/);
    const nr = await request(p.port, { host: 'nowhere:9080' });
    expect(nr.status).to.equal(404);
    expect(nr.headers).to.not.have.property('x-envoy-upstream-service-time');
  });

  it('x-envoy-original-path on a rewritten request only', async () => {
    p = await startProxy(reviewsEntry([v1]) + vs(ROUTES));
    await request(p.port, { path: '/old/x?q=1' });
    await request(p.port, { path: '/other' });
    expect(v1.seen[0]!.url).to.equal('/new/x?q=1');
    expect(v1.seen[0]!.headers['x-envoy-original-path']).to.equal('/old/x?q=1');
    expect(v1.seen[1]!.headers).to.not.have.property('x-envoy-original-path');
  });

  it('x-envoy-overloaded: true on a circuit-breaker 503 UO, not on other 503s', async () => {
    p = await startProxy(
      reviewsEntry(
        [v1],
        `  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}`,
      ),
    );
    const held: http.ServerResponse[] = [];
    v1.handler = (_q, res) => held.push(res);
    const active = async (want: number): Promise<boolean> =>
      new RegExp(`upstream_rq_active: ${want}\\b`).test((await request(p!.admin, { path: '/stats' })).body);
    const a = request(p.port, { agent: false });
    await until(() => active(1));
    const b = request(p.port, { agent: false });
    await until(() => active(2));
    const c = await request(p.port, { agent: false });
    expect(c.status).to.equal(503);
    expect(c.headers['x-weft-response-flags']).to.equal('UO');
    expect(c.headers['x-envoy-overloaded']).to.equal('true');
    await until(async () => held.length > 0);
    held.shift()!.writeHead(503).end('app says no');
    const ra = await a;
    expect(ra.status).to.equal(503);
    expect(ra.headers).to.not.have.property('x-envoy-overloaded');
    await until(async () => held.length > 0);
    held.shift()!.end('ok');
    expect((await b).status).to.equal(200);
  });

  it('proxyHeaders attemptCount + envoyDebugHeaders disabled (Mesh defaultConfig): none of them; client values pass', async () => {
    p = await startProxy(MESH_OFF + reviewsEntry([v1]) + vs(ROUTES));
    let n = 0;
    v1.handler = (_q, res) =>
      ++n < 2
        ? res.writeHead(500).end()
        : res.writeHead(200, { 'x-envoy-upstream-service-time': '7' }).end('ok');
    const r = await request(p.port, { headers: { 'x-envoy-attempt-count': '99' } });
    expect(r.status).to.equal(200);
    expect(r.headers['x-envoy-upstream-service-time']).to.equal('7'); // the upstream's own, untouched
    expect(v1.seen.map((s) => s.headers['x-envoy-attempt-count'])).to.deep.equal(['99', '99']);
    await request(p.port, { path: '/old' });
    expect(v1.seen[2]!.url).to.equal('/new');
    expect(v1.seen[2]!.headers).to.not.have.property('x-envoy-original-path');
  });

  const CONTROL = {
    'x-envoy-retry-on': '5xx',
    'x-envoy-max-retries': '10',
    'x-envoy-upstream-rq-timeout-ms': '1',
    'x-envoy-force-trace': 'true',
    'x-envoy-original-url': 'http://evil/',
    'x-envoy-downstream-service-cluster': 'admin',
  };

  for (const edge of [true, false])
    it(`${edge ? 'edge (gateway) listener: Envoy-internal control headers are stripped' : 'sidecar listener: the workload is trusted, they pass'}`, async () => {
      const cfg: ProxyConfig = configFromText(reviewsEntry([v1]) + vs(ROUTES), 'test.yaml').config;
      if (edge) for (const l of cfg.listeners) if (l.protocol === 'HTTP') l.edge = true;
      p = await startProxy(cfg);
      await request(p.port, {
        headers: { ...CONTROL, 'x-envoy-custom': 'kept', 'x-envoy-original-path': '/spoof' },
      });
      const h = v1.seen[0]!.headers;
      for (const [k, v] of Object.entries(CONTROL)) expect(h[k]).to.equal(edge ? undefined : v, k);
      expect(h['x-envoy-custom']).to.equal('kept');
      // not rewritten: Envoy forwards a client's x-envoy-original-path (not in its sanitize list)
      expect(h['x-envoy-original-path']).to.equal('/spoof');
    });
});
