/**
 * The ClientHello inspector on real hellos (written by node:tls clients over loopback, so the
 * bytes are what OpenSSL sends today, post-quantum key share included), fed whole, byte by byte
 * and re-split across records; on plaintext and on broken TLS; and on random bytes (seeded),
 * where it must answer without throwing.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import net from 'node:net';
import tls from 'node:tls';
import { inspectClientHello, MAX_CLIENT_HELLO } from '../../../proxy/inbound/clienthello.js';

/** The first bytes a node:tls client sends with `opts`. */
async function helloBytes(opts: tls.ConnectionOptions): Promise<Buffer> {
  let got = Buffer.alloc(0);
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (inspectClientHello(got).kind !== 'more') s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
  server.close();
  return got;
}

/** Re-frames a single-record hello into records of at most `size` payload bytes. */
function resplit(hello: Buffer, size: number): Buffer {
  const payload = hello.subarray(5);
  const out: Buffer[] = [];
  for (let i = 0; i < payload.length; i += size) {
    const part = payload.subarray(i, i + size);
    const head = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe('TLS ClientHello inspection', () => {
  let mesh: Buffer;
  let bare: Buffer;

  before(async () => {
    mesh = await helloBytes({
      servername: 'outbound_.9080_._.reviews.default.svc.cluster.local',
      ALPNProtocols: ['istio-http/1.1', 'istio'],
    });
    // connecting to an IP without servername: node sends no SNI; no ALPN either
    bare = await helloBytes({});
  });

  it('reads SNI and ALPN from a real hello', () => {
    expect(inspectClientHello(mesh)).to.deep.equal({
      kind: 'hello',
      sni: 'outbound_.9080_._.reviews.default.svc.cluster.local',
      alpn: ['istio-http/1.1', 'istio'],
    });
  });

  it('a hello with neither SNI nor ALPN', () => {
    expect(inspectClientHello(bare)).to.deep.equal({ kind: 'hello', sni: null, alpn: [] });
  });

  it('says "more" until the whole hello has arrived, byte by byte', () => {
    for (let n = 1; n < mesh.length; n++)
      expect(inspectClientHello(mesh.subarray(0, n)).kind, `${n} bytes`).to.equal('more');
    expect(inspectClientHello(mesh).kind).to.equal('hello');
  });

  it('reassembles a hello split across several records', () => {
    for (const size of [256, 512, Math.ceil((mesh.length - 5) / 16)]) {
      const split = resplit(mesh, size);
      expect(inspectClientHello(split), `records of ${size} bytes`).to.deep.equal(inspectClientHello(mesh));
    }
  });

  const plaintext: [string, string][] = [
    ['an HTTP request', 'GET / HTTP/1.1\r\n'],
    ['HTTP/2 prior knowledge', 'PRI * HTTP/2.0\r\n'],
    ['a single byte', 'x'],
    ['0x16 followed by a non-TLS version', '\x16\x09hello'],
  ];
  for (const [title, text] of plaintext)
    it(`plaintext: ${title}`, () =>
      expect(inspectClientHello(Buffer.from(text, 'latin1')).kind).to.equal('plaintext'));

  it('a lone 0x16 waits for more', () => {
    expect(inspectClientHello(Buffer.from([0x16])).kind).to.equal('more');
    expect(inspectClientHello(Buffer.from([0x16, 0x03])).kind).to.equal('more');
  });

  const broken: [string, () => Buffer, RegExp][] = [
    [
      'a ServerHello instead of a ClientHello',
      () => Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0]),
      /not a ClientHello/,
    ],
    ['an empty handshake record', () => Buffer.from([0x16, 3, 1, 0, 0]), /empty/],
    [
      'a hello that claims 1 MB',
      () => Buffer.from([0x16, 3, 1, 0, 4, 1, 0x10, 0, 0]),
      new RegExp(`limit ${MAX_CLIENT_HELLO}`),
    ],
    ['a record longer than TLS allows', () => Buffer.from([0x16, 3, 1, 0x40, 0x01]), /TLS allows/],
    [
      'a hello split over more records than any client uses (bounds the parses per connection)',
      () => resplit(mesh, 16),
      /more than 16 records/,
    ],
    [
      'an alert record inside the hello',
      () => Buffer.concat([resplit(mesh, 50).subarray(0, 55), Buffer.from([0x15, 3, 1, 0, 2, 2, 40])]),
      /non-handshake record/,
    ],
    [
      'lengths that point past the message',
      () => {
        const b = Buffer.from(mesh);
        b.writeUInt16BE(0xffff, 5 + 4 + 34 + 1 + b[5 + 4 + 34]!); // cipher suites length
        return b;
      },
      /cipher suites|truncated|extensions/,
    ],
  ];
  for (const [title, make, re] of broken)
    it(`malformed: ${title}`, () => {
      const v = inspectClientHello(make());
      expect(v.kind).to.equal('malformed');
      expect(v.kind === 'malformed' && v.reason).to.match(re);
    });

  it('never throws, on random bytes or on a real hello with random bytes changed (seeded)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const v = inspectClientHello(Buffer.from(bytes));
        return ['more', 'plaintext', 'malformed', 'hello'].includes(v.kind);
      }),
      { seed: 1306, numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (edits) => {
          const b = Buffer.from(mesh);
          for (const [at, v] of edits) b[at % b.length] = v;
          const v = inspectClientHello(b);
          return ['more', 'plaintext', 'malformed', 'hello'].includes(v.kind);
        },
      ),
      { seed: 1306, numRuns: 2000 },
    );
  });
});
