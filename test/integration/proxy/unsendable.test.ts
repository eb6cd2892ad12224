/**
 * A request the HTTP/1.1 client refuses to write (EINVALIDHEADER, `unsendable()` in
 * proxy/upstream/h1client.ts) is the proxy's own deterministic fault, not the endpoint's: one
 * local 503 DPE (Envoy's upstream codec reply, `filter_removed_required_request_headers{...}`)
 * naming the header, no retry even with a retry policy that covers 5xx and resets, and no
 * outlier-detection record against the endpoint that never saw it.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { configFromText } from '../../../proxy/config/load.js';
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

const CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';

describe('proxy: a request HTTP/1.1 cannot carry is answered locally', function () {
  this.timeout(30_000);
  let v1: Upstream;
  let p: Started | null = null;
  const lines: string[] = [];

  before(async () => {
    v1 = await upstream('v1');
  });
  after(async () => {
    await p?.stop();
    await v1.close();
  });

  it('a rewrite.authority with U+20AC (an unsendable Host): one 503 DPE naming the header, no retry, the endpoint stays healthy', async () => {
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(...chunk.toString().trim().split('\n'));
        cb();
      },
    });
    // outlier detection ejects after one gateway error: a recorded failure would show at once
    const yaml =
      reviewsEntry(
        [v1],
        `  trafficPolicy:
    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xxErrors: 1, interval: 50ms, baseEjectionTime: 30s, maxEjectionPercent: 100}`,
      ) +
      vs(`
  - match: [{headers: {x-case: {exact: unsendable}}}]
    rewrite: {authority: "caf\u20ac.example"}
    retries: {attempts: 3, retryOn: "5xx,reset,connect-failure,gateway-error"}
    route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]`);
    const cfg = configFromText(yaml, 'test.yaml').config;
    p = await startProxy(
      { ...cfg, telemetry: { accessLog: true, explainHeader: true } },
      { accessLogSink: sink },
    );

    const r = await request(p.port, { headers: { 'x-case': 'unsendable', 'x-weft-explain': '1' } });
    expect(r.status, r.body).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.equal('DPE');
    expect(r.body).to.contain('WEFT_PROXY_REQUEST_UNSENDABLE').and.contain('header host');
    expect(r.body, 'the value is never echoed').to.not.contain('caf');
    const explain = JSON.parse(String(r.headers['x-weft-explain'])) as Record<string, unknown>;
    expect(explain).to.deep.include({ attempts: 1, retries: 0, status: 503, flags: 'DPE' });
    expect(String(explain.details)).to.match(
      /^filter_removed_required_request_headers\{WEFT_PROXY_REQUEST_UNSENDABLE:_header_host_/,
    );
    expect(v1.seen, 'nothing reached the endpoint').to.have.length(0);

    await sleep(150); // a few outlier-detection intervals
    const clusters = JSON.parse((await request(p.admin, { path: '/clusters' })).body) as {
      clusters: { name: string; endpoints: { address: string; healthy: boolean }[] }[];
    };
    const c = clusters.clusters.find((x) => x.name === CLUSTER)!;
    expect(
      c.endpoints.map((e) => e.healthy),
      'not ejected',
    ).to.deep.equal([true]);
    const stats = (await request(p.admin, { path: '/stats' })).body;
    expect(/reviews\.default\.svc\.cluster\.local\.upstream_rq_retry: (\d+)/.exec(stats)?.[1]).to.equal('0');
    const ok = await request(p.port);
    expect(ok.status).to.equal(200);
    expect(ok.body).to.equal('v1');

    await sleep(50);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).to.deep.include({ response_code: 503, response_flags: 'DPE', upstream_cluster: CLUSTER });
    expect(String(entry.response_code_details)).to.contain('header_host_has_a_character_HTTP_forbids');
  });

  it('a rewrite.authority Istio accepts but no upstream may be sent (space, CR/LF, userinfo): 503 DPE, never sent', async () => {
    const route = (c: string, authority: string): string => `
  - match: [{headers: {x-case: {exact: ${c}}}}]
    rewrite: {authority: ${JSON.stringify(authority)}}
    retries: {attempts: 3, retryOn: "5xx,reset,connect-failure,gateway-error"}
    route: [{destination: {host: reviews}}]`;
    const yaml =
      reviewsEntry([v1]) +
      vs(
        route('space', 'bad host.example') +
          route('crlf', 'reviews\r\nx-injected: 1') +
          route('userinfo', 'user@reviews') +
          `
  - route: [{destination: {host: reviews}}]`,
      );
    const proxy = await startProxy(yaml);
    try {
      const before = v1.seen.length;
      for (const c of ['space', 'crlf', 'userinfo']) {
        const r = await request(proxy.port, { headers: { 'x-case': c } });
        expect(r.status, `${c}: ${r.body}`).to.equal(503);
        expect(r.headers['x-weft-response-flags'], c).to.equal('DPE');
        expect(r.body, c).to.contain('WEFT_PROXY_REQUEST_UNSENDABLE').and.contain('header host');
        expect(r.body, 'the value is never echoed').to.not.match(/bad host|injected|user@/);
      }
      expect(v1.seen.length - before, 'nothing reached the endpoint').to.equal(0);
      expect((await request(proxy.port)).body).to.equal('v1');
    } finally {
      await proxy.stop();
    }
  });

  it('a redirect whose Location HTTP cannot carry (CR/LF in redirect.authority or uri): 503 DPE, no header injected, the proxy lives on', async () => {
    // node refuses to write such a Location: the throw used to escape the request handler
    // (an uncaught exception: the proxy process down for every request on the route)
    const yaml =
      reviewsEntry([v1]) +
      vs(`
  - match: [{headers: {x-case: {exact: authority}}}]
    redirect: {authority: "evil.example\\r\\nset-cookie: stolen=1"}
  - match: [{headers: {x-case: {exact: uri}}}]
    redirect: {uri: "/moved\\r\\nset-cookie: stolen=1"}
  - route: [{destination: {host: reviews}}]`);
    const proxy = await startProxy(yaml);
    try {
      for (const c of ['authority', 'uri']) {
        const r = await request(proxy.port, { headers: { 'x-case': c } });
        expect(r.status, `${c}: ${r.body}`).to.equal(503);
        expect(r.headers['x-weft-response-flags'], c).to.equal('DPE');
        expect(r.headers['set-cookie'], c).to.equal(undefined);
        expect(r.headers.location, c).to.equal(undefined);
        expect(r.body, c).to.contain('WEFT_PROXY_REDIRECT_UNSENDABLE').and.not.contain('stolen');
      }
      expect((await request(proxy.port)).body, 'still serving').to.equal('v1');
    } finally {
      await proxy.stop();
    }
  });
});
