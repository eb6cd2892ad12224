import { expect } from 'chai';
import {
  ChunkedDecoder,
  Framing,
  HeadReader,
  parseChunkSize,
  parseField,
  parseResponseHead,
  type ChunkResult,
  type FinalHead,
} from '../../../proxy/upstream/h1parse.js';
import { MAX_HEADERS_COUNT, MAX_RESPONSE_HEAD_BYTES } from '../../../proxy/http1-limits.js';

/** Feeds `text` to a HeadReader split at `cuts`; returns the last result. */
function readHead(text: string, cuts: number[] = []): ReturnType<HeadReader['push']> {
  const r = new HeadReader();
  const b = Buffer.from(text, 'latin1');
  let from = 0;
  let out: ReturnType<HeadReader['push']> = null;
  for (const at of [...cuts, b.length]) {
    out = r.push(b.subarray(from, at));
    from = at;
    if (out !== null) return out;
  }
  return out;
}

const final = (text: string, method = 'GET'): FinalHead => {
  const h = parseResponseHead(Buffer.from(text, 'latin1'), method);
  if ('error' in h || h.interim) throw new Error(`not a final head: ${JSON.stringify(h)}`);
  return h;
};

describe('proxy upstream response parser (RFC 9112, strict)', () => {
  describe('HeadReader: where a head ends, whatever the reads', () => {
    const head = 'HTTP/1.1 200 OK\r\nx: y\r\n\r\n';
    it('finds the empty line at every split point, and hands back what follows', () => {
      const text = `${head}body`;
      for (let a = 0; a <= text.length; a++)
        for (let b = a; b <= text.length; b++) {
          const r = readHead(text, [a, b]);
          expect(r, `cuts ${a},${b}`).to.not.equal(null);
          if (r === null || 'error' in r) throw new Error(`cuts ${a},${b}: ${JSON.stringify(r)}`);
          expect(r.head.toString('latin1')).to.equal(head);
          // the body bytes may come in the same read or the next ones: none are lost or added
          expect(text.slice(r.head.length).startsWith(r.rest.toString('latin1'))).to.equal(true);
        }
    });
    const ERRORS: [string, string, RegExp][] = [
      ['bare LF ends nothing', 'HTTP/1.1 200 OK\nx: y\n\n', /bare LF/],
      ['bare LF after a CRLF line', 'HTTP/1.1 200 OK\r\nx: y\n\r\n', /bare LF/],
      ['a lone LF first', '\n', /bare LF/],
    ];
    for (const [name, text, msg] of ERRORS)
      it(name, () => {
        for (let cut = 0; cut <= text.length; cut++) {
          const r = readHead(text, [cut]);
          expect(r !== null && 'error' in r ? r.error : r, `cut ${cut}`).to.match(msg);
        }
      });
    it('the size limit is exact: 64 KiB passes, 64 KiB + 1 fails, at any split', () => {
      const sized = (n: number): string => {
        const fixed = 'HTTP/1.1 200 OK\r\nx: \r\n\r\n'.length;
        return `HTTP/1.1 200 OK\r\nx: ${'a'.repeat(n - fixed)}\r\n\r\n`;
      };
      for (const cut of [0, 1, 30, 65_000, MAX_RESPONSE_HEAD_BYTES - 1, MAX_RESPONSE_HEAD_BYTES]) {
        const at = readHead(sized(MAX_RESPONSE_HEAD_BYTES), [cut]);
        expect(at !== null && 'head' in at ? at.head.length : at, `cut ${cut}`).to.equal(
          MAX_RESPONSE_HEAD_BYTES,
        );
        const over = readHead(sized(MAX_RESPONSE_HEAD_BYTES + 1), [cut]);
        expect(over !== null && 'error' in over ? over.error : over, `cut ${cut}`).to.match(/larger than/);
      }
    });
    it('an endless head fails as soon as it passes the limit, not at its end', () => {
      const r = new HeadReader();
      let out: ReturnType<HeadReader['push']> = null;
      let fed = 0;
      while (out === null && fed < 10 * MAX_RESPONSE_HEAD_BYTES) {
        out = r.push(Buffer.alloc(1000, 'a'));
        fed += 1000;
      }
      expect(out).to.deep.equal({ error: `response head larger than ${MAX_RESPONSE_HEAD_BYTES} bytes` });
      expect(fed).to.be.at.most(MAX_RESPONSE_HEAD_BYTES + 1000);
    });
  });

  describe('parseResponseHead', () => {
    // [name, head, method, framing, length, keepAlive]
    const FRAMING: [string, string, string, Framing, number, boolean][] = [
      ['content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n', 'GET', Framing.Length, 5, true],
      [
        'identical content-lengths',
        'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n',
        'GET',
        Framing.Length,
        5,
        true,
      ],
      ['content-length 0', 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', 'GET', Framing.None, 0, true],
      ['chunked', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', 'GET', Framing.Chunked, 0, true],
      [
        'gzip, chunked',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n',
        'GET',
        Framing.Chunked,
        0,
        true,
      ],
      [
        'chunked, gzip: until close',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n',
        'GET',
        Framing.UntilClose,
        0,
        false,
      ],
      ['no length: until close', 'HTTP/1.1 200 OK\r\n\r\n', 'GET', Framing.UntilClose, 0, false],
      ['HEAD has no body', 'HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n', 'HEAD', Framing.None, 0, true],
      ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', 'GET', Framing.None, 0, true],
      [
        '304 has no body',
        'HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n',
        'GET',
        Framing.None,
        0,
        true,
      ],
      [
        'connection: close',
        'HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: Close\r\n\r\n',
        'GET',
        Framing.Length,
        1,
        false,
      ],
      ['HTTP/1.0 closes', 'HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n', 'GET', Framing.Length, 1, false],
      [
        'HTTP/1.0 keep-alive',
        'HTTP/1.0 200 OK\r\ncontent-length: 1\r\nconnection: keep-alive\r\n\r\n',
        'GET',
        Framing.Length,
        1,
        true,
      ],
      ['no reason phrase', 'HTTP/1.1 200\r\ncontent-length: 1\r\n\r\n', 'GET', Framing.Length, 1, true],
      ['empty reason phrase', 'HTTP/1.1 200 \r\ncontent-length: 1\r\n\r\n', 'GET', Framing.Length, 1, true],
    ];
    for (const [name, text, method, framing, length, keepAlive] of FRAMING)
      it(name, () => {
        const h = final(text, method);
        expect([h.framing, h.length, h.keepAlive]).to.deep.equal([framing, length, keepAlive]);
      });

    const INVALID: [string, string][] = [
      ['TE and CL together', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n'],
      ['conflicting lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n'],
      ['a length list', 'HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\n'],
      ['a signed length', 'HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\n'],
      ['a 16-digit length', `HTTP/1.1 200 OK\r\ncontent-length: ${'9'.repeat(16)}\r\n\r\n`],
      ['status 99', 'HTTP/1.1 099 X\r\n\r\n'],
      ['a four-digit status', 'HTTP/1.1 2000 X\r\n\r\n'],
      ['HTTP/1.2', 'HTTP/1.2 200 OK\r\n\r\n'],
      ['lower-case http', 'http/1.1 200 OK\r\n\r\n'],
      ['101 (never asked for)', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n'],
      ['a bare CR in the status line', 'HTTP/1.1 200 O\rK\r\n\r\n'],
      ['an empty head', '\r\n'],
      [
        `${MAX_HEADERS_COUNT + 1} fields`,
        `HTTP/1.1 200 OK\r\n${'x: 1\r\n'.repeat(MAX_HEADERS_COUNT + 1)}\r\n`,
      ],
      ['an invalid field in a 1xx', 'HTTP/1.1 100 Continue\r\nx y: z\r\n\r\n'],
    ];
    for (const [name, text] of INVALID)
      it(`refuses ${name}`, () => {
        expect(parseResponseHead(Buffer.from(text, 'latin1'), 'GET')).to.have.property('error');
      });

    it(`${MAX_HEADERS_COUNT} fields are fine`, () => {
      const h = final(`HTTP/1.1 200 OK\r\n${'x: 1\r\n'.repeat(MAX_HEADERS_COUNT)}\r\n`);
      expect(h.headers.x).to.have.length(MAX_HEADERS_COUNT);
    });
    it('1xx other than 101 is interim', () => {
      expect(
        parseResponseHead(Buffer.from('HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n'), 'GET'),
      ).to.deep.equal({
        interim: true,
        status: 103,
      });
    });
    it('repeated fields become arrays in order; names lower-cased; keep-alive timeout read', () => {
      const h = final(
        'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nKeep-Alive: max=5, timeout=7\r\ncontent-length: 0\r\n\r\n',
      );
      expect(h.headers['set-cookie']).to.deep.equal(['a=1', 'b=2']);
      expect(h.keepAliveTimeoutS).to.equal(7);
      expect(Object.getPrototypeOf(h.headers)).to.equal(null);
    });
  });

  describe('parseField', () => {
    const OK: [string, [string, string]][] = [
      ['X-A: b', ['x-a', 'b']],
      ['x:b', ['x', 'b']],
      ['x: \t b c \t', ['x', 'b c']],
      ['x:', ['x', '']],
      ['x: a\tb', ['x', 'a\tb']],
      ['x: caf\xe9', ['x', 'caf\xe9']], // obs-text is allowed in values
      ["!#$%&'*+-.^_`|~09az: v", ["!#$%&'*+-.^_`|~09az", 'v']],
    ];
    for (const [line, want] of OK)
      it(`accepts ${JSON.stringify(line)}`, () => expect(parseField(line)).to.deep.equal(want));
    const BAD = [
      'x y: a',
      'x : a',
      ' x: a',
      ': a',
      'x',
      '(x): a',
      'x\xe9: a',
      'x: a\0b',
      'x: a\rb',
      'x: a\x7f',
      'x: \x01',
    ];
    for (const line of BAD)
      it(`refuses ${JSON.stringify(line)}`, () => expect(parseField(line)).to.have.property('error'));
  });

  describe('chunked bodies', () => {
    const SIZES: [string, number][] = [
      ['0', 0],
      ['a', 10],
      ['FF', 255],
      ['0000ff', 255],
      ['5;name=value', 5],
      ['5 ; name="quoted"', 5],
      ['ffffffffffff', 0xffffffffffff],
      ['', -1],
      [' 5', -1],
      ['5 6', -1],
      ['-5', -1],
      ['0x5', -1],
      ['1ffffffffffff', -1],
      ['5;\x01', -1],
      ['5;a\rb', -1],
    ];
    for (const [line, want] of SIZES)
      it(`chunk size ${JSON.stringify(line)} → ${want}`, () => expect(parseChunkSize(line)).to.equal(want));

    /** Decodes `wire` fed in `step`-byte reads; returns the body, the result and the rest. */
    function decode(wire: string, step: number): { body: string; result: ChunkResult['kind']; rest: string } {
      const d = new ChunkedDecoder();
      const b = Buffer.from(wire, 'latin1');
      let body = '';
      for (let i = 0; i < b.length; i += step) {
        const r = d.feed(b.subarray(i, i + step), (x) => ((body += x.toString('latin1')), true));
        if (r.kind === 'end')
          return { body, result: 'end', rest: r.rest.toString('latin1') + b.toString('latin1', i + step) };
        if (r.kind !== 'more') return { body, result: r.kind, rest: '' };
      }
      return { body, result: 'more', rest: '' };
    }
    const WIRE: [string, string, ChunkResult['kind'], string][] = [
      ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 'end', 'hello'],
      ['extensions and trailers', '5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nx-t: 1\r\n\r\n', 'end', 'hello!'],
      ['incomplete', '5\r\nhel', 'more', 'hel'],
      ['bare LF after the size', '5\nhello\r\n0\r\n\r\n', 'error', ''],
      ['bare LF after the data', '5\r\nhello\n0\r\n\r\n', 'error', 'hello'],
      ['too much data', '5\r\nhello!\r\n0\r\n\r\n', 'error', 'hello'],
      ['an invalid trailer', '0\r\nno colon\r\n\r\n', 'error', ''],
      ['a size line over 4 KiB', `5;${'e'.repeat(4096)}\r\nhello\r\n0\r\n\r\n`, 'error', ''],
      [
        `${MAX_HEADERS_COUNT + 1} trailers`,
        `0\r\n${'t: 1\r\n'.repeat(MAX_HEADERS_COUNT + 1)}\r\n`,
        'error',
        '',
      ],
    ];
    for (const [name, wire, result, body] of WIRE)
      it(`${name}, in reads of 1, 2, 7 and all bytes`, () => {
        for (const step of [1, 2, 7, wire.length]) {
          const r = decode(wire, step);
          expect([r.result, r.body], `step ${step}`).to.deep.equal([result, body]);
        }
      });
    it('bytes after the last chunk are handed back, not eaten', () => {
      for (const step of [1, 3, 100]) expect(decode('1\r\na\r\n0\r\n\r\nNEXT', step).rest).to.equal('NEXT');
    });
    it('stops when the sink says so', () => {
      const r = new ChunkedDecoder().feed(Buffer.from('1\r\na\r\n1\r\nb\r\n0\r\n\r\n'), () => false);
      expect(r.kind).to.equal('stopped');
    });
  });
});
