import { expect } from 'chai';
import {
  decodeGrpcWebText,
  grpcWebMode,
  grpcWebResponseType,
  GrpcWebTextDecoder,
  isGrpcResponse,
  MAX_GRPC_WEB_REQUEST_BYTES,
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

  // more than the one-shot table: padding inside the stream, bad bytes anywhere, both alphabets
  const moreDecodes: [string, string, Buffer | null][] = [
    ['padded groups back to back', 'YQ==YWI=YWJj', Buffer.from('aababc')],
    ['one `=` then a second group is not padding', 'YQ=YWJj', null],
    ['three `=` in a group', 'Y===', null],
    ['four `=`', '====', null],
    ['`=` opening a group after a padded one', 'YQ===', null],
    ['data after `xx=`', 'YQ=a', null],
    ['ends after `xx=` (half the padding)', 'YQ=', null],
    ['ends inside a group after padded groups', 'YQ==Y', null],
    ['non-zero trailing bits are decoded, not refused (as before)', 'YR==', Buffer.from('a')],
    ['NUL byte', 'YWJj\0AAA', null],
    ['high byte', 'YWJj\u00c1AAA', null],
  ];
  for (const [name, text, want] of moreDecodes)
    it(`-text request body: ${name}`, () => {
      const got = decodeGrpcWebText(Buffer.from(text, 'latin1'));
      if (want === null) expect(got).to.equal(null);
      else expect(got!.equals(want)).to.equal(true);
    });

  /** Decodes `text` split into the given chunk boundaries. */
  const decodeInChunks = (text: Buffer, cuts: number[]): Buffer | null => {
    const d = new GrpcWebTextDecoder();
    let from = 0;
    for (const at of [...cuts, text.length]) {
      if (!d.push(text.subarray(from, at))) return null;
      from = at;
    }
    return d.end();
  };

  it('-text request body: chunk boundaries at every offset, once and twice, decode the same', () => {
    const parts = [Buffer.from('a'), Buffer.from('bc'), Buffer.from('def'), frame(0, Buffer.from('hello!'))];
    const text = Buffer.from(parts.map((p) => p.toString('base64')).join(''), 'latin1');
    const want = Buffer.concat(parts);
    for (let i = 0; i <= text.length; i++) {
      expect(decodeInChunks(text, [i])!.equals(want), `cut at ${i}`).to.equal(true);
      for (let j = i; j <= text.length; j++)
        expect(decodeInChunks(text, [i, j])!.equals(want), `cuts at ${i}, ${j}`).to.equal(true);
    }
    const oneByte = [...Array(text.length).keys()];
    expect(decodeInChunks(text, oneByte)!.equals(want), 'a byte at a time').to.equal(true);
  });

  it('-text request body: a bad byte at any offset of any chunking is refused, and stays refused', () => {
    const good = Buffer.from('YQ==YWI=YWJjZA==', 'latin1');
    for (let at = 0; at < good.length; at++)
      for (const bad of ['*', '-', '\n', ' ']) {
        const text = Buffer.from(good);
        text[at] = bad.charCodeAt(0);
        for (let cut = 0; cut <= text.length; cut++)
          expect(decodeInChunks(text, [cut]), `${bad} at ${at}, cut ${cut}`).to.equal(null);
      }
    const d = new GrpcWebTextDecoder();
    expect(d.push(Buffer.from('YW*j'))).to.equal(false);
    expect(d.push(Buffer.from('YWJj'))).to.equal(false);
    expect(d.end()).to.equal(null);
  });

  it('-text request body: the size counts decoded bytes (the bound is on the message, not its text)', () => {
    const msg = Buffer.alloc(MAX_GRPC_WEB_REQUEST_BYTES, 7);
    const d = new GrpcWebTextDecoder();
    const text = Buffer.from(msg.toString('base64'), 'latin1');
    expect(text.length).to.be.above(MAX_GRPC_WEB_REQUEST_BYTES); // refused before as too big
    for (let i = 0; i < text.length; i += 65536) expect(d.push(text.subarray(i, i + 65536))).to.equal(true);
    expect(d.size).to.equal(MAX_GRPC_WEB_REQUEST_BYTES);
    expect(d.end()!.equals(msg)).to.equal(true);
    expect(decodeGrpcWebText(Buffer.from('AA=='.repeat(1000), 'latin1'))!.length).to.equal(1000);
  });

  it('-text request body: 4 MiB of AAAA and of AA== decode in time proportional to Buffer.from', () => {
    const n = 4 * 1024 * 1024;
    const plain = Buffer.from('AAAA'.repeat(n / 4), 'latin1');
    const padded = Buffer.from('AA=='.repeat(n / 4), 'latin1');
    /** The best of five runs (a shared machine: the least disturbed run is the cost). */
    const best = (f: () => unknown): number => {
      let min = Infinity;
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        f();
        min = Math.min(min, performance.now() - t);
      }
      return min;
    };
    // the baseline: Node's own decoder on a body of the same size as it arrives (bytes, so made
    // a string first); it stops at the first `=`, so both use the unpadded body
    const baseline = best(() => Buffer.from(plain.toString('latin1'), 'base64'));
    const plainMs = best(() => decodeGrpcWebText(plain));
    const paddedMs = best(() => decodeGrpcWebText(padded));
    const plainBody = plain;
    expect(decodeGrpcWebText(plainBody)!.length).to.equal((n / 4) * 3);
    expect(decodeGrpcWebText(padded)!.length).to.equal(n / 4);
    // a decoder quadratic in the body would take ~10^6 times the baseline here; 100× leaves a
    // loaded CI machine its noise (21.7× was seen at load 18) and still catches one
    expect(plainMs / baseline, `AAAA: ${plainMs} ms against ${baseline} ms`).to.be.below(100);
    expect(paddedMs / baseline, `AA==: ${paddedMs} ms against ${baseline} ms`).to.be.below(100);
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

  it('text response: a big frame in many small chunks comes out as its base64, bit by bit', () => {
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
    expect(enc.push(h)).to.equal('');
    expect(enc.oversized).to.equal(true);
    expect(enc.push(Buffer.alloc(100))).to.equal('');
  });

  it('text response: the bound is 4 MiB of message, as for requests; frames before it go out', () => {
    const enc = new TextFrameEncoder();
    const ok = frame(0, Buffer.from('fine'));
    const over = Buffer.alloc(5);
    over.writeUInt32BE(MAX_GRPC_WEB_REQUEST_BYTES + 1, 1);
    expect(enc.push(Buffer.concat([ok, over]))).to.equal(ok.toString('base64'));
    expect(enc.oversized).to.equal(true);
    const atBound = new TextFrameEncoder();
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MAX_GRPC_WEB_REQUEST_BYTES, 1);
    atBound.push(head);
    expect(atBound.oversized).to.equal(false);
  });

  it('text response: a 1-byte chunk then 1,024 chunks of 16 KiB: linear work, nothing re-joined', () => {
    // 16 frames of 1 MiB (the last one byte longer): 16 MiB + 1 bytes in all
    const frames = [...Array(16).keys()].map((i) =>
      frame(i, Buffer.alloc((1 << 20) - 5 + (i === 15 ? 1 : 0), i)),
    );
    const stream = Buffer.concat(frames);
    const chunks = [stream.subarray(0, 1)];
    for (let at = 1; at < stream.length; at += 16384) chunks.push(stream.subarray(at, at + 16384));
    expect(chunks.length).to.equal(1025);
    const enc = new TextFrameEncoder();
    // count the bytes joined: the quadratic version re-joined everything held at each chunk
    const concat = Buffer.concat;
    let joined = 0;
    Buffer.concat = (...args: Parameters<typeof concat>): ReturnType<typeof concat> => {
      const b = concat(...args);
      joined += b.length;
      return b;
    };
    let out = '';
    try {
      for (const c of chunks) out += enc.push(c);
    } finally {
      Buffer.concat = concat;
    }
    expect(joined, 'bytes joined').to.be.at.most(stream.length);
    expect(enc.leftover).to.equal(0);
    expect(out).to.equal(frames.map((f) => f.toString('base64')).join(''));
  });

  it('text response: each push holds at most a header or a partial base64 group', () => {
    const enc = new TextFrameEncoder();
    const f = frame(0, Buffer.from('0123456789'));
    let out = '';
    for (let i = 0; i < f.length; i++) {
      out += enc.push(f.subarray(i, i + 1));
      // what came out so far is the base64 of all but at most 2 bytes (5 while in the header)
      expect(Buffer.from(out, 'base64').length).to.be.at.least(i + 1 - (i < 5 ? 5 : 2));
    }
    expect(out).to.equal(f.toString('base64'));
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
