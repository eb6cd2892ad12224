/**
 * weftctl explain against fixture configs (no cluster): the proxy's compiler and explain decide,
 * weftctl adds why earlier rules missed and the nearest miss. Argument parsing from tables.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../cli/main.js';
import {
  conditionsOf,
  editDistance,
  explainRequest,
  explainText,
  notAppliedText,
  parseHeader,
  requestFromPositionals,
  syntheticRequest,
  type ExplainReport,
} from '../../../cli/explainer.js';
import type { RequestView } from '../../../proxy/compile/match.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { configFromText } from '../../../proxy/config/load.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'reviews.yaml');
const REVIEWS = configFromText(readFileSync(FIXTURE, 'utf8'), FIXTURE).config;
const HOST = 'reviews.bookinfo.svc.cluster.local';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

interface Picked {
  route?: string;
  subsets: (string | undefined)[];
  outcome: string;
}

function picked(r: ExplainReport): Picked {
  const route = r.explain.route as { name?: string } | undefined;
  const dests = (r.explain.destinations as { subset?: string }[] | undefined) ?? [];
  return {
    ...(route?.name !== undefined ? { route: route.name } : {}),
    subsets: dests.map((d) => d.subset),
    outcome: String(r.explain.outcome ?? r.explain.error),
  };
}

describe('weftctl explain', () => {
  it('parses [METHOD] URL', () => {
    expect(requestFromPositionals(['http://a/'])).to.deep.equal({ method: 'GET', url: 'http://a/' });
    expect(requestFromPositionals(['DELETE', 'a/x'])).to.deep.equal({ method: 'DELETE', url: 'a/x' });
    const bad: [string[], RegExp][] = [
      [[], /a URL is required/],
      [['get', 'http://a/'], /not an HTTP method/],
      [['GET', 'http://a/', 'extra'], /too many arguments/],
    ];
    for (const [args, want] of bad) expect(() => requestFromPositionals(args), args.join(' ')).to.throw(want);
  });

  it('parses -H like curl, lowercasing the name', () => {
    expect(parseHeader('End-User: jason')).to.deep.equal(['end-user', 'jason']);
    expect(parseHeader('x-empty:')).to.deep.equal(['x-empty', '']);
    expect(parseHeader('x-url: http://a:1/')).to.deep.equal(['x-url', 'http://a:1/']);
    for (const bad of ['novalue', ': v', 'bad name: v'])
      expect(() => parseHeader(bad), bad).to.throw(/WEFT_INPUT_UNREADABLE|name: value/);
  });

  it('builds the synthetic request: authority and port from the URL or a Host header', () => {
    const cases: [string, [string, string][], { authority: string; path: string; port: number }][] = [
      ['http://reviews:9080/r/1?x=1', [], { authority: 'reviews:9080', path: '/r/1?x=1', port: 9080 }],
      ['reviews/r', [], { authority: 'reviews', path: '/r', port: 80 }],
      [
        'http://10.0.0.1:8080/',
        [['host', 'shop.example.com']],
        { authority: 'shop.example.com', path: '/', port: 80 },
      ],
      ['http://[fd00::1]:81/', [], { authority: '[fd00::1]:81', path: '/', port: 81 }],
    ];
    for (const [url, headers, want] of cases) {
      const r = syntheticRequest({ method: 'GET', url, headers });
      expect({ authority: r.authority, path: r.path, port: r.port }, url).to.deep.equal(want);
      expect(r.headers?.host).to.equal(want.authority);
    }
    expect(() => syntheticRequest({ method: 'GET', url: 'https://a/', headers: [] })).to.throw(/only http/);
    expect(() => syntheticRequest({ method: 'GET', url: 'http://a b/', headers: [] })).to.throw(/not a URL/);
  });

  it('picks the route, subsets and weights the proxy would', () => {
    const cases: [string, string, [string, string][], Picked][] = [
      [
        'GET',
        `http://${HOST}:9080/reviews/1`,
        [['end-user', 'jason']],
        { route: 'jason', subsets: ['v2'], outcome: 'forwarded to one destination by weight' },
      ],
      [
        'GET',
        'http://reviews:9080/reviews/1',
        [['end-user', 'jason']],
        { route: 'jason', subsets: ['v2'], outcome: 'forwarded to one destination by weight' },
      ],
      [
        'GET',
        `http://${HOST}:9080/api/x`,
        [['end-user', 'jason']],
        { route: 'api', subsets: ['v1', 'v3'], outcome: 'forwarded to one destination by weight' },
      ],
      [
        'POST',
        `http://${HOST}:9080/flaky`,
        [],
        { route: 'flaky', subsets: ['v3'], outcome: 'forwarded to one destination by weight' },
      ],
      [
        'GET',
        `http://${HOST}:9080/reviews/1`,
        [['end-user', 'bob']],
        { subsets: [], outcome: `404 NR: none of the 3 rules of ${HOST}:9080 matched` },
      ],
      [
        'GET',
        'http://ratings:9080/',
        [],
        { subsets: [], outcome: '404 NR: no virtual host for authority "ratings:9080"' },
      ],
    ];
    for (const [method, url, headers, want] of cases)
      expect(
        picked(explainRequest(REVIEWS, { method, url, headers })),
        `${method} ${url} ${JSON.stringify(headers)}`,
      ).to.deep.equal(want);
  });

  it('says why each earlier rule missed: the failing conditions and what the request had', () => {
    const r = explainRequest(REVIEWS, { method: 'GET', url: `http://${HOST}:9080/flaky`, headers: [] });
    expect(r.routed).to.equal(true);
    expect(r.misses.map((m) => [m.index, m.name, m.source])).to.deep.equal([
      [0, 'jason', 'VirtualService bookinfo/reviews http[0]'],
      [1, 'api', 'VirtualService bookinfo/reviews http[1]'],
    ]);
    expect(r.misses[0]!.blocks[0]!.failed).to.deep.equal([
      { condition: 'uri prefix "/reviews"', request: '"/flaky"' },
      { condition: 'header end-user exact "jason"', request: '(absent)' },
    ]);
    expect(r.misses[1]!.blocks[0]!.failed).to.deep.equal([
      { condition: 'uri prefix "/api/"', request: '"/flaky"' },
    ]);
  });

  it('on 404 NR names the nearest miss (fewest failed conditions)', () => {
    const r = explainRequest(REVIEWS, {
      method: 'GET',
      url: `http://${HOST}:9080/reviews/2`,
      headers: [['end-user', 'jasn']],
    });
    expect(r.routed).to.equal(false);
    expect(r.nearestMiss?.name).to.equal('jason');
    expect(r.nearestMiss?.blocks[0]?.failed).to.deep.equal([
      { condition: 'header end-user exact "jason"', request: '"jasn"' },
    ]);
  });

  it('on a missing virtual host suggests hosts with a close name', () => {
    const r = explainRequest(REVIEWS, { method: 'GET', url: 'http://review:9080/', headers: [] });
    expect(r.nearestHosts).to.deep.equal([`${HOST}:9080`]);
    expect(editDistance('review', 'reviews')).to.equal(1);
    expect(editDistance('ratings', 'reviews')).to.be.greaterThan(2);
  });

  it('tests each condition with the proxy matcher on its own', () => {
    const view = (over: Partial<RequestView>): RequestView => ({
      method: 'GET',
      path: '/',
      query: '',
      target: '/',
      authority: 'a',
      scheme: 'http',
      port: 80,
      headers: {},
      ...over,
    });
    const cs = conditionsOf({
      uri: { exact: '/A' },
      ignoreUriCase: true,
      method: { regex: 'GET|HEAD' },
      port: 8080,
      headers: { 'x-a': { present: true } },
      withoutHeaders: { 'x-b': { exact: '1' } },
      queryParams: { v: { exact: '2' } },
    });
    expect(cs.map((c) => c.text)).to.deep.equal([
      'uri exact "/A" (any case)',
      'method ~GET|HEAD',
      'port 8080',
      'header x-a present',
      'without header x-b exact "1"',
      'query v exact "2"',
    ]);
    const v = view({ path: '/a', port: 8080, headers: { 'x-a': '', 'x-b': '1' }, query: 'v=3' });
    expect(cs.map((c) => c.test(v))).to.deep.equal([true, true, true, true, false, false]);
    expect(cs.map((c) => c.actual(v))).to.deep.equal(['"/a"', 'GET', '8080', '""', '"1"', '"3"']);
  });

  it('chooses the listener on the URL port (gateways), or the one --listener names', () => {
    const vh = (name: string): ProxyConfig['listeners'][number] & { protocol: 'HTTP' } => ({
      name,
      protocol: 'HTTP',
      port: name === 'http-80' ? 80 : 8443,
      virtualHosts: [
        {
          name: `vh-${name}`,
          domains: ['*'],
          routes: [{ action: { type: 'directResponse', status: name === 'http-80' ? 200 : 201 } }],
        },
      ],
    });
    const cfg: ProxyConfig = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'g',
      listeners: [vh('http-80'), vh('http-8443')],
      clusters: [],
    };
    const at = (url: string, listener?: string): unknown =>
      explainRequest(cfg, { method: 'GET', url, headers: [], ...(listener ? { listener } : {}) }).explain
        .outcome;
    expect(at('http://shop:8443/')).to.equal('direct response 201');
    expect(at('http://shop/')).to.equal('direct response 200');
    expect(at('http://shop:9999/')).to.equal('direct response 200');
    expect(at('http://shop/', 'http-8443')).to.equal('direct response 201');
    const none = explainRequest(cfg, { method: 'GET', url: 'http://shop/', headers: [], listener: 'nope' });
    expect([none.routed, none.explain.error]).to.deep.equal([false, 'no HTTP listener named nope']);
  });

  it('text for a missing cluster, an empty one, a redirect, a mirror and a TCP-only config', () => {
    const cfg: ProxyConfig = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'x',
      listeners: [
        {
          name: 'outbound',
          protocol: 'HTTP',
          port: 15001,
          virtualHosts: [
            {
              name: 'a',
              domains: ['a'],
              routes: [
                {
                  match: [{ uri: { prefix: '/old' } }],
                  action: { type: 'redirect', redirect: { uri: '/new', code: 308 } },
                },
                {
                  match: [{ uri: { prefix: '/gone' } }],
                  action: { type: 'route', destinations: [{ cluster: 'nowhere', weight: 1 }] },
                },
                {
                  action: { type: 'route', destinations: [{ cluster: 'empty', weight: 1 }] },
                  mirrors: [{ cluster: 'empty', percentage: 25 }],
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'empty', endpoints: [] }],
    };
    const text = (path: string): string =>
      explainText(explainRequest(cfg, { method: 'GET', url: `http://a${path}`, headers: [] }));
    expect(text('/old/x'))
      .to.match(/^redirect +\{"uri":"\/new","code":308\}$/m)
      .and.match(/^outcome +redirect 308$/m);
    expect(text('/gone')).to.match(
      /^destination +nowhere, 100\.00% of requests, LEAST_REQUEST, no endpoints → 503 NC \(cluster not found\)$/m,
    );
    expect(text('/'))
      .to.match(/^destination +empty, .* no endpoints → 503 UH \(no healthy upstream\)$/m)
      .and.match(/^mirrors +empty 25%$/m);
    const tcp: ProxyConfig = {
      ...cfg,
      listeners: [{ name: 'db', protocol: 'TCP', port: 5432, cluster: 'empty' }],
    };
    const none = explainRequest(tcp, { method: 'GET', url: 'http://a/', headers: [] });
    expect(none.routed).to.equal(false);
    expect(explainText(none)).to.match(/^outcome +cannot explain: no HTTP listener$/m);
  });

  it('the command: text with the decision, exit 0 routed / 1 NR / 2 bad arguments, -o json', async () => {
    const ok = await run([
      'explain',
      '--config',
      FIXTURE,
      'GET',
      `http://${HOST}:9080/api/v`,
      '-H',
      'end-user: x',
    ]);
    expect(ok.code).to.equal(0);
    expect(ok.out)
      .to.match(/^virtual host +reviews\.bookinfo\.svc\.cluster\.local:9080$/m)
      .and.match(/^route +#1 api \(VirtualService bookinfo\/reviews http\[1\]\), match block 0: \/api\/\*$/m)
      .and.match(
        /^destination +outbound\|9080\|v1\|\S+ subset v1, 90\.00% of requests, ROUND_ROBIN, 1\/1 endpoints healthy \(10\.0\.0\.1:9080\)$/m,
      )
      .and.match(/^rewrite +uri → \/$/m)
      .and.match(/^timeout +2000ms$/m)
      .and.match(/^retries +3 on 5xx, 500ms per try$/m)
      .and.match(
        /^ {4}block 0 \[\/reviews\* header end-user=jason\]: uri prefix "\/reviews", request has "\/api\/v"; header end-user exact "jason", request has "x"$/m,
      );
    const fault = await run(['explain', '--config', FIXTURE, `${HOST}:9080/flaky`]);
    expect(fault.out)
      .to.match(/^fault +abort 503 for 50% \(retries and timeout off, as Istio does\)$/m)
      .and.match(/^retries +none$/m);
    const nr = await run(['explain', '--config', FIXTURE, `http://${HOST}:9080/nope`]);
    expect(nr.code).to.equal(1);
    expect(nr.out)
      .to.match(/^outcome +404 NR: none of the 3 rules/m)
      .and.match(/^nearest miss:$/m);
    const json = await run([
      'explain',
      '--config',
      FIXTURE,
      '-o',
      'json',
      `http://${HOST}:9080/reviews`,
      '-H',
      'End-User: jason',
    ]);
    const report = JSON.parse(json.out) as ExplainReport;
    expect(picked(report).subsets).to.deep.equal(['v2']);
    const bad: [string[], RegExp][] = [
      [['explain', '--config', FIXTURE], /a URL is required/],
      [['explain', '--config', FIXTURE, 'http://a/', '-H', 'oops'], /-H needs 'name: value'/],
      [['explain', '--config', join(FIXTURE, 'nope')], /WEFT_INPUT_UNREADABLE: cannot read/],
      [['explain'], /POD\[\.NAMESPACE\] and a URL are required/],
      [['explain', 'pod.ns', 'get', 'http://a/'], /not an HTTP method/],
      [['explain', '--kind', 'proxy', 'p', 'http://a/'], /--kind must be sidecar or gateway/],
      [['explain', '-o', 'yaml', 'p', 'http://a/'], /--output must be text, json/],
    ];
    for (const [args, want] of bad) {
      const r = await run(args);
      expect([r.code, r.err], args.join(' ')).to.satisfy(
        ([c, e]: [number, string]) => c === 2 && want.test(e),
      );
    }
  });
});

describe('weftctl explain: objects weftd leaves out of the config', () => {
  const crlf = {
    kind: 'VirtualService',
    namespace: 'demo',
    name: 'crlf',
    error:
      'spec.http[0].headers.response.set.x-a: header value configuration: invalid character 0x0d in header value',
    errors: 1,
  };

  it('names each one with its first error, and where its status says why', () => {
    const text = notAppliedText([crlf, { ...crlf, kind: 'AuthorizationPolicy', name: 'deny', errors: 3 }]);
    expect(text).to.match(/^not applied\s+2 objects that could reach this proxy fail validation/);
    expect(text).to.include('VirtualService demo/crlf: spec.http[0].headers.response.set.x-a:');
    expect(text).to.include('AuthorizationPolicy demo/deny: ').and.include('(and 2 more errors)');
    expect(text).to.include('condition Accepted');
  });

  it('says what weft enforces instead of a security object that fails closed', () => {
    const instead = 'weft denies every request to the workloads it selects (fail closed)';
    const text = notAppliedText([{ ...crlf, kind: 'AuthorizationPolicy', name: 'deny', instead }]);
    expect(text).to.include('weft does not apply it as written:');
    expect(text).to.include(`AuthorizationPolicy demo/deny: `).and.include(`\n    instead: ${instead}\n`);
  });

  it('says nothing when every object applies', () => expect(notAppliedText([])).to.equal(''));

  it('lists five, counts the rest', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({ ...crlf, name: `vs${i}` }));
    const text = notAppliedText(many);
    expect(text).to.include('vs4').and.include('(and 3 more)');
    expect(text).not.to.include('vs5');
  });

  it('shows control characters from the cluster escaped, never sent to the terminal', () => {
    const text = notAppliedText([{ ...crlf, error: 'spec.x: bad \u001b[2J\r\nvalue' }]);
    expect(text).to.include('bad \\u001b[2J\\u000d\\u000avalue');
    expect(text).not.to.include('\u001b');
  });
});
