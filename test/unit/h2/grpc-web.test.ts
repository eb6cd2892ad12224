import { expect } from 'chai';
import {
  decodeGrpcWebText,
  grpcWebMode,
  grpcWebResponseType,
  isGrpcResponse,
  TextFrameEncoder,
  toGrpcRequestHeaders,
  trailersFrame,
} from '../../../proxy/h2/grpc-web.js';

const frame = (flag: number, payload: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h[0] = flag;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
};

describe('gRPC-Web framing (Envoy grpc_web filter, gRPC PROTOCOL-WEB.md)', () => {
  const modes: [string, Record<string, string>, ReturnType<typeof grpcWebMode>][] = [
    ['binary', { 'content-type': 'application/grpc-web' }, { textRequest: false, textResponse: false }],
    [
      'binary +proto',
      { 'content-type': 'application/grpc-web+proto' },
      { textRequest: false, textResponse: false },
    ],
    ['text', { 'content-type': 'application/grpc-web-text' }, { textRequest: true, textResponse: false }],
    [
      'text, text response asked by Accept',
      { 'content-type': 'application/grpc-web-text+proto', accept: 'application/grpc-web-text' },
      { textRequest: true, textResponse: true },
    ],
    [
      'binary request, text response',
      { 'content-type': 'application/grpc-web', accept: 'application/grpc-web-text+proto' },
      { textRequest: false, textResponse: true },
    ],
    ['gRPC is not gRPC-Web', { 'content-type': 'application/grpc' }, null],
    [
      'a parameter is not one of the four types (exact, as Envoy)',
      { 'content-type': 'application/grpc-web; x=1' },
      null,
    ],
    ['json subtype is not bridged', { 'content-type': 'application/grpc-web+json' }, null],
    ['no content type', {}, null],
  ];
  for (const [name, headers, want] of modes)
    it(`mode: ${name}`, () => expect(grpcWebMode(headers)).to.deep.equal(want));

  it('the response content type is always +proto, text when asked', () => {
    expect(grpcWebResponseType({ textRequest: true, textResponse: false })).to.equal(
      'application/grpc-web+proto',
    );
    expect(grpcWebResponseType({ textRequest: false, textResponse: true })).to.equal(
      'application/grpc-web-text+proto',
    );
  });

  it('request headers: application/grpc, no content-length, grpc-accept-encoding unless sent', () => {
    const h: Record<string, string | undefined> = {
      'content-type': 'application/grpc-web-text',
      'content-length': '12',
    };
    toGrpcRequestHeaders(h);
    expect(h).to.deep.equal({
      'content-type': 'application/grpc',
      'grpc-accept-encoding': 'identity,deflate,gzip',
    });
    const g: Record<string, string | undefined> = {
      'content-type': 'application/grpc-web',
      'grpc-accept-encoding': 'identity',
    };
    toGrpcRequestHeaders(g);
    expect(g['grpc-accept-encoding']).to.equal('identity');
  });

  const msg = frame(0, Buffer.from('hello'));
  const decodes: [string, string, Buffer | null][] = [
    ['one padded segment', msg.toString('base64'), msg],
    ['no padding needed', Buffer.from('abc').toString('base64'), Buffer.from('abc')],
    [
      'two padded segments one after the other',
      Buffer.from('a').toString('base64') + Buffer.from('bc').toString('base64'),
      Buffer.from('abc'),
    ],
    ['empty body', '', Buffer.alloc(0)],
    ['length not a multiple of 4 (padding is mandatory)', 'YWJj' + 'YQ', null],
    ['characters outside base64', 'YW*j', null],
    ['url-safe alphabet is not base64 here', 'YW-_', null],
    ['padding in the middle of a group', 'Y=Jj', null],
    ['whitespace', 'YWJj\n', null],
  ];
  for (const [name, text, want] of decodes)
    it(`-text request body: ${name}`, () => {
      const got = decodeGrpcWebText(Buffer.from(text, 'latin1'));
      if (want === null) expect(got).to.equal(null);
      else expect(got!.equals(want)).to.equal(true);
    });

  it('trailers frame: flag 0x80, big-endian length, name:value CRLF lines', () => {
    const f = trailersFrame({
      'grpc-status': '0',
      'grpc-message': 'ok',
      'x-multi': ['a', 'b'],
      skipped: undefined,
    });
    const body = 'grpc-status:0\r\ngrpc-message:ok\r\nx-multi:a\r\nx-multi:b\r\n';
    expect(f[0]).to.equal(0x80);
    expect(f.readUInt32BE(1)).to.equal(body.length);
    expect(f.subarray(5).toString()).to.equal(body);
    expect(trailersFrame({}).equals(Buffer.from([0x80, 0, 0, 0, 0]))).to.equal(true);
  });

  it('text response: each whole frame base64-encoded on its own, split frames held', () => {
    const enc = new TextFrameEncoder();
    const a = frame(0, Buffer.from('first'));
    const b = frame(0, Buffer.from('second message'));
    const both = Buffer.concat([a, b]);
    expect(enc.push(both.subarray(0, 3))).to.equal(''); // not even a header
    expect(enc.push(both.subarray(3, a.length + 4))).to.equal(a.toString('base64'));
    expect(enc.leftover).to.equal(4);
    expect(enc.push(both.subarray(a.length + 4))).to.equal(b.toString('base64'));
    expect(enc.leftover).to.equal(0);
  });

  it('text response: a big frame in many small chunks is encoded once, whole', () => {
    const enc = new TextFrameEncoder();
    const big = frame(0, Buffer.alloc(1 << 20, 7));
    let out = '';
    for (let i = 0; i < big.length; i += 1000) out += enc.push(big.subarray(i, i + 1000));
    expect(out).to.equal(big.toString('base64'));
    expect(enc.leftover).to.equal(0);
  });

  it('text response: a frame announcing more than the bound is refused, not buffered', () => {
    const enc = new TextFrameEncoder(1024);
    const h = Buffer.alloc(5);
    h.writeUInt32BE(1025, 1);
    expect(enc.push(h)).to.equal(null);
  });

  const responses: [string, number, Record<string, string>, boolean][] = [
    ['200 application/grpc', 200, { 'content-type': 'application/grpc' }, true],
    ['200 application/grpc+proto', 200, { 'content-type': 'application/grpc+proto' }, true],
    ['200 text/html', 200, { 'content-type': 'text/html' }, false],
    ['503 application/grpc', 503, { 'content-type': 'application/grpc' }, false],
    ['200 application/grpcx', 200, { 'content-type': 'application/grpcx' }, false],
  ];
  for (const [name, status, headers, want] of responses)
    it(`gRPC response head: ${name}`, () => expect(isGrpcResponse(status, headers)).to.equal(want));
});
