import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import {
  encodeGrpcMessage,
  formatGrpcTimeout,
  grpcStatusOfHttp,
  isGrpcRequest,
  parseGrpcTimeout,
} from '../../../proxy/h2/grpc.js';
import { grpcStatusLabel, grpcTimeoutMs } from '../../../proxy/h2/router.js';
import { prefaceVerdict, H2_PREFACE } from '../../../proxy/h2/downstream.js';
import { ReplayableBody } from '../../../proxy/h2/body.js';
import { speaksH2 } from '../../../pkg/translate/index.js';

describe('gRPC on the router path (proxy/h2)', () => {
  // gRPC's doc/http-grpc-status-mapping.md, which Envoy's httpToGrpcStatus implements
  const MAPPING: [number, number][] = [
    [400, 13],
    [401, 16],
    [403, 7],
    [404, 12],
    [429, 14],
    [502, 14],
    [503, 14],
    [504, 14],
    [500, 2],
    [418, 2],
  ];
  for (const [http, grpc] of MAPPING)
    it(`a local reply ${http} is gRPC status ${grpc}`, () => expect(grpcStatusOfHttp(http)).to.equal(grpc));

  const TIMEOUTS: [string | undefined, number | null][] = [
    ['1S', 1000],
    ['250m', 250],
    ['2M', 120_000],
    ['1H', 3_600_000],
    ['1500u', 2],
    ['1n', 1],
    ['0m', 0],
    // past node's timer limit (2^31-1 ms, 24.8 days) a timer fires at once: clamped to it
    ['99999999S', 2_147_483_647],
    ['2592000S', 2_147_483_647], // 30 days: a long watch's deadline
    ['99999999H', 2_147_483_647],
    ['2147483S', 2_147_483_000],
    ['123456789S', null], // 9 digits: malformed
    ['1s', null], // units are case-sensitive
    ['-1S', null],
    ['S', null],
    ['1.5S', null],
    [undefined, null],
  ];
  for (const [v, want] of TIMEOUTS)
    it(`grpc-timeout ${JSON.stringify(v)} → ${want}`, () => expect(parseGrpcTimeout(v)).to.equal(want));

  it('grpc-timeout and the route timeout: the smaller wins; either alone applies; 0 is none', () => {
    const g = { status: '' };
    expect(grpcTimeoutMs(g, { 'grpc-timeout': '100m' }, 5000)).to.equal(100);
    expect(grpcTimeoutMs(g, { 'grpc-timeout': '10S' }, 5000)).to.equal(5000);
    expect(grpcTimeoutMs(g, { 'grpc-timeout': '10S' }, 0)).to.equal(10_000);
    expect(grpcTimeoutMs(g, {}, 5000)).to.equal(5000);
    expect(grpcTimeoutMs(g, { 'grpc-timeout': 'junk' }, 5000)).to.equal(5000);
    // not a gRPC request: the header means nothing
    expect(grpcTimeoutMs(null, { 'grpc-timeout': '100m' }, 5000)).to.equal(5000);
    expect(formatGrpcTimeout(99.2)).to.equal('100m');
    // the header takes at most 8 digits: larger deadlines go up a unit
    expect(formatGrpcTimeout(99_999_999)).to.equal('99999999m');
    expect(formatGrpcTimeout(2_147_483_647)).to.equal('2147484S');
    expect(parseGrpcTimeout(formatGrpcTimeout(2_147_483_647))).to.equal(2_147_483_647);
  });

  it('grpc-message is percent-encoded and bounded', () => {
    expect(encodeGrpcMessage('no healthy upstream')).to.equal('no healthy upstream');
    expect(encodeGrpcMessage('100% é\n')).to.equal('100%25 %C3%A9%0A');
    expect(encodeGrpcMessage('x'.repeat(5000)).length).to.equal(1024);
  });

  it('the grpc_response_status label takes 0–16 only (anything else is UNKNOWN, 2)', () => {
    for (const ok of ['0', '5', '14', '16']) expect(grpcStatusLabel(ok)).to.equal(ok);
    for (const bad of ['', '17', '-1', '05', 'OK', '1e1', '14 ']) expect(grpcStatusLabel(bad)).to.equal('2');
  });

  it('gRPC requests by content-type (gRPC-Web is not bridged: not gRPC here)', () => {
    expect(isGrpcRequest({ 'content-type': 'application/grpc' })).to.equal(true);
    expect(isGrpcRequest({ 'content-type': 'application/grpc+proto' })).to.equal(true);
    expect(isGrpcRequest({ 'content-type': 'application/grpc-web+proto' })).to.equal(false);
    expect(isGrpcRequest({ 'content-type': 'application/json' })).to.equal(false);
    expect(isGrpcRequest({})).to.equal(false);
  });

  it('the HTTP/2 preface is recognized byte by byte', () => {
    expect(prefaceVerdict(H2_PREFACE)).to.equal('h2');
    expect(prefaceVerdict(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])]))).to.equal('h2');
    expect(prefaceVerdict(H2_PREFACE.subarray(0, 10))).to.equal('more');
    expect(prefaceVerdict(Buffer.from('P'))).to.equal('more');
    expect(prefaceVerdict(Buffer.from('POST / HTTP/1.1\r\n'))).to.equal('h1');
    expect(prefaceVerdict(Buffer.from('PRI * HTTP/1.1\r\n'))).to.equal('h1');
    expect(prefaceVerdict(Buffer.from('GET'))).to.equal('h1');
  });

  it('HTTP/2 upstream: declared grpc/http2 ports, or an HTTP port with h2UpgradePolicy UPGRADE', () => {
    expect(speaksH2('GRPC', undefined)).to.equal(true);
    expect(speaksH2('HTTP2', 'DO_NOT_UPGRADE')).to.equal(true); // never downgraded
    expect(speaksH2('HTTP', 'UPGRADE')).to.equal(true);
    expect(speaksH2('HTTP', 'DEFAULT')).to.equal(false);
    expect(speaksH2('HTTP', undefined)).to.equal(false);
    expect(speaksH2('GRPC-WEB', undefined)).to.equal(true); // Istio's IsHTTP2; bridged by the proxy
    expect(speaksH2('TCP', 'UPGRADE')).to.equal(false);
  });
});

describe('ReplayableBody (a body of unknown length: streamed, kept for retries while small)', () => {
  const read = (r: NodeJS.ReadableStream): Promise<string> =>
    new Promise((resolve) => {
      let s = '';
      r.on('data', (c: Buffer) => (s += c.toString()));
      r.on('end', () => resolve(s));
    });

  it('streams to the first attempt at once, and once complete a retry gets the whole buffer', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 64);
    const first = body.forAttempt();
    expect(Buffer.isBuffer(first)).to.equal(false);
    const got = read(first as NodeJS.ReadableStream);
    src.write('hello ');
    src.end('world');
    expect(await got).to.equal('hello world');
    expect(body.complete).to.equal(true);
    expect(String(body.forAttempt())).to.equal('hello world');
    expect(body.bytes).to.equal(11);
  });

  it('a retry before the end replays what was kept, then follows the client', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 64);
    const first = body.forAttempt() as NodeJS.ReadableStream;
    first.resume();
    src.write('abc');
    await new Promise((r) => setImmediate(r));
    expect(body.complete).to.equal(false);
    const second = body.forAttempt() as NodeJS.ReadableStream;
    const got = read(second);
    src.end('def');
    expect(await got).to.equal('abcdef');
  });

  const owner = () => {
    const o = { touched: 0, aborted: null as Error | null };
    return Object.assign(o, { touch: () => void o.touched++, abort: (e: Error) => void (o.aborted = e) });
  };

  it('streamTo (an HTTP/2 stream) writes what was kept, then each chunk, then the end', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 64);
    src.write('abc');
    await new Promise((r) => setImmediate(r));
    const sink = new PassThrough();
    const o = owner();
    const got = read(sink);
    body.streamTo(sink, o);
    src.write('def');
    src.end('ghi');
    expect(await got).to.equal('abcdefghi');
    expect(o.touched).to.be.greaterThan(0);
    // complete: a retry's stream gets the whole buffer
    const again = new PassThrough();
    const got2 = read(again);
    body.streamTo(again, owner());
    expect(await got2).to.equal('abcdefghi');
  });

  it('streamTo: the client is paused while the stream is full, and resumed when it drains or closes', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 1 << 20);
    const sink = new PassThrough({ highWaterMark: 4 });
    body.streamTo(sink, owner());
    src.write(Buffer.alloc(64, 'x'));
    await new Promise((r) => setImmediate(r));
    expect(src.isPaused()).to.equal(true);
    sink.resume(); // drains
    await new Promise((r) => setImmediate(r));
    expect(src.isPaused()).to.equal(false);
    // a dropped attempt's stream: the client is not held for it
    const stuck = new PassThrough({ highWaterMark: 4 });
    body.streamTo(stuck, owner());
    src.write(Buffer.alloc(64, 'y'));
    await new Promise((r) => setImmediate(r));
    expect(src.isPaused()).to.equal(true);
    stuck.destroy();
    await new Promise((r) => setImmediate(r));
    expect(src.isPaused()).to.equal(false);
  });

  it('streamTo: a failing client body cancels the attempt', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 64);
    const o = owner();
    body.streamTo(new PassThrough(), o);
    src.destroy(new Error('client reset'));
    await new Promise((r) => setImmediate(r));
    expect(o.aborted?.message).to.equal('request body failed');
  });

  it('past the limit it is not kept: never complete, so never retried', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 8);
    const got = read(body.forAttempt() as NodeJS.ReadableStream);
    src.end('0123456789abcdef');
    expect(await got).to.equal('0123456789abcdef');
    expect(body.complete).to.equal(false);
    expect(body.bytes).to.equal(16);
  });
});
