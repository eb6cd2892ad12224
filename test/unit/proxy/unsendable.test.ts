/**
 * `unsendable()`, the HTTP/1.1 client's last check before it writes a request head: what it
 * refuses (RFC 9110 §5.5 field values, tokens, the request target) and that the reason, which the
 * proxy's local reply and access log carry (WEFT_PROXY_REQUEST_UNSENDABLE), names the header and
 * never echoes its value (a value may be a credential).
 */
import { expect } from 'chai';
import { unsendable } from '../../../proxy/upstream/h1client.js';
import { unsendableOverH2 } from '../../../proxy/h2/pool.js';
import { buildExplain, type ExplainSource } from '../../../proxy/router/explain.js';

const head = (headers: Record<string, string | string[]>, method = 'GET', path = '/') => ({
  method,
  path,
  headers,
});

describe('unsendable(): a request head HTTP/1.1 cannot carry', () => {
  const refused: [string, ReturnType<typeof head>, string][] = [
    ['CR LF in a value (header injection)', head({ 'x-a': 'v\r\nx-b: smuggled' }), 'header x-a has'],
    ['a lone LF', head({ 'x-a': 'v\nw' }), 'header x-a has'],
    ['NUL', head({ 'x-a': 'v\0' }), 'header x-a has'],
    [
      'a character above U+00FF (its low byte could be a CR)',
      head({ host: 'caf\u20ac.example' }),
      'header host has',
    ],
    ['U+010D, whose low byte is CR', head({ 'x-a': '\u010d' }), 'header x-a has'],
    ['one bad value of several', head({ 'set-cookie': ['a=1', 'b=\r2'] }), 'header set-cookie has'],
    ['a name that is no token', head({ 'x a': 'v' }), 'header name "x a" is not an HTTP token'],
    ['a method that is no token', head({}, 'GE T'), 'the request method is not an HTTP token'],
    ['a space in the target', head({}, 'GET', '/a b'), 'the request target has a character HTTP forbids'],
    // a rewrite.authority Istio accepts (it checks no value) that no upstream may be sent
    ['a space in the Host', head({ host: 'bad host.example' }), 'header host is not uri-host[:port]'],
    ['userinfo in the Host', head({ host: 'user@reviews' }), 'header host is not uri-host[:port]'],
    ['a quote in the Host', head({ host: 'a"b' }), 'header host is not uri-host[:port]'],
    ['a Host with a bad port', head({ host: 'reviews:99999' }), 'header host is not uri-host[:port]'],
    ['an empty Host', head({ host: '' }), 'header host is not uri-host[:port]'],
  ];
  for (const [what, spec, reason] of refused)
    it(`refuses ${what}`, () => {
      const why = unsendable(spec);
      expect(why).to.contain(reason);
      for (const v of Object.values(spec.headers).flat())
        if (v.length > 1) expect(why, 'the value is not echoed').to.not.contain(v);
    });

  it('sends tabs, obs-text (U+0080..U+00FF, a UTF-8 byte string) and ordinary heads', () => {
    expect(unsendable(head({ 'x-a': 'a\tb', 'x-b': 'caf\u00c3\u00a9', host: 'reviews:9080' }))).to.equal(
      null,
    );
  });
});

describe('unsendableOverH2(): a request head an HTTP/2 stream cannot carry', () => {
  const refused: [string, ReturnType<typeof head>, string][] = [
    ['what HTTP/1.1 cannot carry (CR LF)', head({ 'x-a': 'v\r\nx-b: 1' }), 'header x-a has'],
    ['a Host that is no authority (it becomes :authority)', head({ host: 'a b' }), 'header host is not'],
    ['connection', head({ connection: 'close' }), 'header connection is connection-specific'],
    ['upgrade', head({ upgrade: 'websocket' }), 'header upgrade is connection-specific'],
    ['transfer-encoding', head({ 'transfer-encoding': 'chunked' }), 'header transfer-encoding is'],
    ['keep-alive', head({ 'keep-alive': 'timeout=5' }), 'header keep-alive is'],
    ['proxy-connection', head({ 'proxy-connection': 'close' }), 'header proxy-connection is'],
    ['te other than trailers', head({ te: 'gzip' }), 'header te is connection-specific'],
  ];
  for (const [what, spec, reason] of refused)
    it(`refuses ${what}`, () => expect(unsendableOverH2(spec)).to.contain(reason));

  it("sends te: trailers, a gRPC request (its te is the pool's own), IPv6 and ported authorities", () => {
    expect(unsendableOverH2(head({ te: 'trailers', host: '[::1]:9080' }))).to.equal(null);
    expect(unsendableOverH2(head({ te: 'deflate', 'content-type': 'application/grpc' }))).to.equal(null);
    expect(
      unsendableOverH2(head({ host: 'reviews.default.svc.cluster.local:9080', 'x-a': 'a\tb' })),
    ).to.equal(null);
  });
});

describe('explain: response code details', () => {
  const src: ExplainSource = {
    cfg: { version: 'v1' } as ExplainSource['cfg'],
    vhost: null,
    route: null,
    block: -1,
    dest: null,
    attempts: 1,
    flags: 'DPE',
    status: 503,
    endpointKey: undefined,
  };
  it('are shown when the reply has them, and absent otherwise', () => {
    expect(buildExplain({ ...src, details: 'filter_removed_required_request_headers{x}' })).to.include({
      details: 'filter_removed_required_request_headers{x}',
    });
    expect(buildExplain(src)).to.not.have.property('details');
  });
});
