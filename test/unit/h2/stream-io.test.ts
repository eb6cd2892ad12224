/**
 * The heads the raw-stream HTTP/2 path gives node (proxy/h2/stream-io.ts, proxy/h2/pool.ts):
 * flat raw lists, validated as node:http's setHeader validates, HTTP/2's rules on top.
 */
import { expect } from 'chai';
import { responseHead } from '../../../proxy/h2/stream-io.js';
import { requestHead } from '../../../proxy/h2/pool.js';

describe('HTTP/2 heads as raw lists (proxy/h2)', () => {
  it('response: :status first, names lower-cased, a list one field per value, connection dropped', () => {
    expect(
      responseHead(200, {
        'Content-Type': 'text/plain',
        'set-cookie': ['a=1', 'b=2'],
        connection: 'close',
        n: 3,
      } as never),
    ).to.deep.equal([
      ':status',
      '200',
      'content-type',
      'text/plain',
      'set-cookie',
      'a=1',
      'set-cookie',
      'b=2',
      'n',
      '3',
    ]);
    expect(responseHead(204, undefined)).to.deep.equal([':status', '204']);
  });

  it('response: a pseudo-header, a bad name or a value with CR/LF/NUL throws (the router aborts the upstream)', () => {
    expect(() => responseHead(200, { ':path': '/' })).to.throw(/pseudo-header/);
    expect(() => responseHead(200, { 'bad name': 'v' })).to.throw();
    expect(() => responseHead(200, { 'x-a': 'v\r\nx-injected: 1' })).to.throw();
    expect(() => responseHead(200, { 'x-a': 'v\0' })).to.throw();
    expect(() => responseHead(200, { 'x-a': undefined })).to.throw();
  });

  const spec = (headers: Record<string, string | string[] | undefined>) =>
    ({ method: 'POST', path: '/pkg.Svc/Call', headers, body: null }) as never;

  it('request: pseudo-headers first, host becomes :authority, lists expanded, stray pseudo-headers dropped', () => {
    expect(
      requestHead(
        spec({ host: 'svc:50051', accept: ['a', 'b'], ':method': 'GET', 'x-none': undefined }),
        'ep:1',
      ),
    ).to.deep.equal([
      ':method',
      'POST',
      ':scheme',
      'http',
      ':path',
      '/pkg.Svc/Call',
      ':authority',
      'svc:50051',
      'accept',
      'a',
      'accept',
      'b',
    ]);
    expect(requestHead(spec({}), '10.0.0.1:8080').slice(6, 8)).to.deep.equal([':authority', '10.0.0.1:8080']);
  });

  it('request: te: trailers for gRPC only, never another te value', () => {
    const grpc = requestHead(spec({ host: 'h', 'content-type': 'application/grpc', te: 'gzip' }), 'x');
    expect(grpc.filter((_, i) => i % 2 === 0 && grpc[i] === 'te').length).to.equal(1);
    expect(grpc.slice(-2)).to.deep.equal(['te', 'trailers']);
    expect(requestHead(spec({ host: 'h', 'content-type': 'text/plain' }), 'x')).to.not.include('te');
  });
});
