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
