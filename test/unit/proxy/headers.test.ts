import { expect } from 'chai';
import {
  forwardableTrailers,
  chainOps,
  compileHeaderOps,
  connectionOptions,
  forwardableHeaders,
  withoutHopByHop,
} from '../../../proxy/router/headers.js';

describe('proxy header operations', () => {
  const TABLE: [
    string,
    Parameters<typeof compileHeaderOps>[0],
    Record<string, string | string[]>,
    Record<string, string | string[]>,
  ][] = [
    ['set replaces', { set: { 'x-a': '2' } }, { 'x-a': '1' }, { 'x-a': '2' }],
    ['set creates', { set: { 'X-New': 'v' } }, {}, { 'x-new': 'v' }],
    ['add appends to existing', { add: { 'x-a': '2' } }, { 'x-a': '1' }, { 'x-a': ['1', '2'] }],
    ['add appends to a list', { add: { 'x-a': '3' } }, { 'x-a': ['1', '2'] }, { 'x-a': ['1', '2', '3'] }],
    ['add creates', { add: { 'x-a': '1' } }, {}, { 'x-a': '1' }],
    ['remove', { remove: ['X-A'] }, { 'x-a': '1', 'x-b': '2' }, { 'x-b': '2' }],
    [
      'remove then set (Envoy order)',
      { remove: ['x-a'], set: { 'x-a': 'new' } },
      { 'x-a': 'old' },
      { 'x-a': 'new' },
    ],
  ];
  for (const [name, ops, input, want] of TABLE) {
    it(name, () => {
      const h = { ...input };
      compileHeaderOps(ops)!(h);
      expect(h).to.deep.equal(want);
    });
  }
  // the proxy frames each hop itself: a set/add of a connection or framing field would smuggle
  // (transfer-encoding next to the proxy's content-length) or fail an HTTP/2 stream, so it is
  // ignored, as Envoy's connection manager drops it; removing one is harmless
  for (const field of [
    'transfer-encoding',
    'Content-Length',
    'connection',
    'keep-alive',
    'proxy-connection',
    'upgrade',
    'te',
    'trailer',
    'http2-settings',
  ])
    it(`ignores a set and an add of ${field} (the proxy writes it)`, () => {
      const h: Record<string, string> = { 'x-a': '1' };
      compileHeaderOps({ set: { [field]: 'chunked' }, add: { [field]: 'x' }, remove: ['x-a'] })!(h);
      expect(h).to.deep.equal({});
    });
  it('an ops block of proxy-owned fields only compiles to nothing', () => {
    expect(compileHeaderOps({ set: { 'transfer-encoding': 'chunked' } })).to.equal(null);
  });
  it('a value beyond ASCII goes out as its UTF-8 bytes (one char per byte, as Envoy sends it)', () => {
    const h: Record<string, string> = {};
    compileHeaderOps({ set: { 'x-city': 'Zürich 東京' } })!(h);
    expect(Buffer.from(h['x-city']!, 'latin1').toString('utf8')).to.equal('Zürich 東京');
    expect(h['x-city']).to.match(/^[\x20-\xff]*$/);
  });
  const refused: [string, Parameters<typeof compileHeaderOps>[0], RegExp][] = [
    [
      'CR LF in a set value (a response header injection)',
      { set: { 'x-a': 'a\r\nset-cookie: evil=1' } },
      /control character/,
    ],
    ['a lone LF in an added value', { add: { 'x-a': 'a\nb' } }, /control character/],
    ['NUL', { set: { 'x-a': 'a\u0000' } }, /control character/],
    ['a name that is not a token', { set: { 'bad name': 'v' } }, /not an HTTP token/],
    ['a name with a colon', { add: { 'x:y': 'v' } }, /not an HTTP token/],
  ];
  for (const [name, ops, re] of refused)
    it(`refuses ${name} when the config compiles`, () => {
      expect(() => compileHeaderOps(ops)).to.throw(re);
    });
  it('a tab in a value is allowed (HTTP field whitespace)', () => {
    const h: Record<string, string> = {};
    compileHeaderOps({ set: { 'x-a': 'a\tb' } })!(h);
    expect(h['x-a']).to.equal('a\tb');
  });
  it('empty ops compile to null (skipped on the hot path)', () => {
    expect(compileHeaderOps(undefined)).to.equal(null);
    expect(compileHeaderOps({})).to.equal(null);
  });
  it('route ops run before destination ops', () => {
    const h: Record<string, string> = {};
    chainOps(compileHeaderOps({ set: { x: 'route' } }), compileHeaderOps({ set: { x: 'dest' } }))!(h);
    expect(h.x).to.equal('dest');
  });
  it('strips hop-by-hop headers, host, and headers named by Connection', () => {
    const out = forwardableHeaders({
      host: 'a',
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'x',
      'x-secret': 's',
      'x-keep': 'k',
    });
    expect(out).to.deep.equal({ 'x-keep': 'k' });
  });
  it('strips a header named by a short Connection value (regression: only values over 10 chars were parsed)', () => {
    expect(forwardableHeaders({ connection: 'x-secret', 'x-secret': 's', 'x-keep': 'k' })).to.deep.equal({
      'x-keep': 'k',
    });
    expect(forwardableHeaders({ connection: 'X-A', 'x-a': '1' })).to.deep.equal({});
  });
  it('parses every Connection line and token, any case and spacing', () => {
    expect(connectionOptions(['close', ' X-A ,,x-b'])).to.deep.equal(['close', 'x-a', 'x-b']);
    expect(connectionOptions(undefined)).to.deep.equal([]);
    expect(forwardableHeaders({ connection: ['keep-alive', 'x-a'], 'x-a': '1', 'x-b': '2' })).to.deep.equal({
      'x-b': '2',
    });
  });
  it('responses lose hop-by-hop headers and the ones their Connection names, and keep the rest', () => {
    expect(
      withoutHopByHop({
        connection: 'x-internal',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'x-internal': 'secret',
        'content-type': 'text/plain',
        host: 'kept-on-responses',
      }),
    ).to.deep.equal({ 'content-type': 'text/plain', host: 'kept-on-responses' });
  });
});

/**
 * The one hop-by-hop filter of every response path (outbound, gateway, inbound) and its request
 * twin: RFC 9110 §7.6.1's Connection-named fields, the standard set, and what HTTP/2 forbids.
 */
describe('withoutHopByHop / forwardableHeaders: the Connection header and the hop-by-hop set', () => {
  type Row = [string, Record<string, string | string[]>, Record<string, string | string[]>];
  const RESPONSES: Row[] = [
    ['a named field goes', { connection: 'x-secret', 'x-secret': '1', 'x-keep': 'k' }, { 'x-keep': 'k' }],
    [
      'a list with spaces and empty elements',
      { connection: ' x-a ,  ,x-b,x-c ', 'x-a': '1', 'x-b': '2', 'x-c': '3', 'x-d': '4' },
      { 'x-d': '4' },
    ],
    ['any case, in the list', { connection: 'X-Secret', 'x-secret': '1' }, {}],
    [
      'every Connection line (node joins repeated lines, h1client keeps them as a list)',
      { connection: ['close', 'x-a', 'X-B, x-c'], 'x-a': '1', 'x-b': '2', 'x-c': '3', 'x-keep': 'k' },
      { 'x-keep': 'k' },
    ],
    [
      'close and keep-alive tokens name no field that stays',
      { connection: 'close, keep-alive', 'keep-alive': 'timeout=5', close: 'odd but named', 'x-keep': 'k' },
      { 'x-keep': 'k' },
    ],
    [
      'a Connection naming itself',
      { connection: 'connection, x-a', 'x-a': '1', 'x-keep': 'k' },
      { 'x-keep': 'k' },
    ],
    [
      'the standard set, named or not (TE and HTTP2-Settings would fail an HTTP/2 stream)',
      {
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        trailer: 'x-checksum',
        te: 'gzip',
        'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
        'content-type': 'text/plain',
      },
      { 'content-type': 'text/plain' },
    ],
    [
      'Proxy-Authenticate passes on a response (Envoy forwards it)',
      { 'proxy-authenticate': 'Basic realm="corp"', 'x-keep': 'k' },
      { 'proxy-authenticate': 'Basic realm="corp"', 'x-keep': 'k' },
    ],
    [
      'an undefined value is left out (writeHead would throw on it)',
      { 'x-a': undefined as never, 'x-b': '2' },
      { 'x-b': '2' },
    ],
    [
      "naming a field the proxy adds removes only the app's own copy (the proxy adds after)",
      { connection: 'x-ratelimit-remaining, x-envoy-upstream-service-time', 'x-ratelimit-remaining': '999' },
      {},
    ],
  ];
  for (const [name, input, want] of RESPONSES)
    it(`response: ${name}`, () => {
      expect(withoutHopByHop(input)).to.deep.equal(want);
    });

  const REQUESTS: Row[] = [
    [
      'a client naming the XFCC, x-forwarded-* and trace fields loses only its own values',
      {
        host: 'a',
        connection: 'x-forwarded-client-cert, X-Forwarded-Proto, x-request-id, authorization',
        'x-forwarded-client-cert': 'URI=spiffe://forged',
        'x-forwarded-proto': 'http',
        'x-request-id': 'mine',
        authorization: 'Bearer t',
        'x-keep': 'k',
      },
      { 'x-keep': 'k' },
    ],
    [
      'Proxy-Authorization and TE stay on the client hop',
      { 'proxy-authorization': 'Basic eDp5', te: 'trailers', 'x-keep': 'k' },
      { 'x-keep': 'k' },
    ],
    [
      'pseudo-header fields of an HTTP/2 request never pass',
      { ':path': '/', ':method': 'GET', 'x-keep': 'k' },
      { 'x-keep': 'k' },
    ],
  ];
  for (const [name, input, want] of REQUESTS)
    it(`request: ${name}`, () => {
      expect(forwardableHeaders(input)).to.deep.equal(want);
    });

  it('the input is not changed (the access log and policies read the original)', () => {
    const input = { connection: 'x-a', 'x-a': '1' };
    withoutHopByHop(input);
    forwardableHeaders(input);
    expect(input).to.deep.equal({ connection: 'x-a', 'x-a': '1' });
  });
});

describe('forwardableTrailers: what an upstream trailer section may pass downstream', () => {
  it('keeps gRPC status and application trailers', () => {
    expect(
      forwardableTrailers({
        'grpc-status': '0',
        'grpc-message': 'ok',
        'x-checksum': 'abc',
        missing: undefined,
      }),
    ).to.deep.equal({ 'grpc-status': '0', 'grpc-message': 'ok', 'x-checksum': 'abc' });
  });
  // node's HTTP/2 server throws from the stream's end (uncaught) on a connection-specific trailer
  for (const name of [
    ':status',
    'connection',
    'keep-alive',
    'transfer-encoding',
    'te',
    'upgrade',
    'proxy-connection',
    'Content-Length',
    'host',
  ])
    it(`drops ${name}`, () => {
      expect(forwardableTrailers({ [name]: 'x', 'grpc-status': '0' })).to.deep.equal({ 'grpc-status': '0' });
    });
});
