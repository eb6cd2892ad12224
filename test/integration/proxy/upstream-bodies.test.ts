import { expect } from 'chai';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { bounded, raw, request, reviewsEntry, startProxy, type Started, type Upstream } from './helpers.js';

/** Deterministic bytes (xorshift32), so a failure replays. */
function payload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Server {
  port: number;
  close(): Promise<void>;
}

/** A real upstream on loopback; `close` also ends its keep-alive sockets. */
async function serve(
  handler: http.RequestListener | ((s: net.Socket) => void),
  rawTcp = false,
): Promise<Server> {
  const server = rawTcp
    ? net.createServer(handler as (s: net.Socket) => void)
    : http.createServer(handler as http.RequestListener);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The ServiceEntry/DestinationRule pair of helpers.ts for one endpoint on `port`. */
const entry = (port: number, extra = ''): string => reviewsEntry([{ name: 'v1', port } as Upstream], extra);

/** Uploads `body` in `piece`-byte writes, chunked unless `withLength`; resolves with the reply. */
function upload(
  port: number,
  body: Buffer,
  piece: number,
  withLength = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: 'reviews:9080' };
    if (withLength) headers['content-length'] = String(body.length);
    const r = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/upload', agent: false, headers },
      (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    r.on('error', reject);
    let off = 0;
    const pump = (): void => {
      while (off < body.length) {
        const ok = r.write(body.subarray(off, off + piece));
        off += piece;
        if (!ok) return void r.once('drain', pump);
      }
      r.end();
    };
    pump();
  });
}

describe('proxy bodies and upstream heads end to end', function () {
  this.timeout(60_000);
  let p: Started | null = null;
  let up: Server | null = null;
  afterEach(async () => {
    await p?.stop();
    await up?.close();
    p = null;
    up = null;
  });

  /**
   * An upstream that reads slowly (pauses 1 ms per read): the proxy's writes to it back up
   * within a few MB. It answers with the length and sha256 of the body it got, and Node's parser
   * in front of it refuses any framing error.
   */
  const slowReader: http.RequestListener = (req, res) => {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
      req.pause();
      setTimeout(() => req.resume(), 1);
    });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
  };

  // 10 MB, as in the report (50–200 MB failed every time; 4 MB already fails on loopback here)
  for (const [piece, withLength] of [
    [64 * 1024 + 3, false],
    [1000, false],
    [64 * 1024 + 3, true],
  ] as const) {
    it(`a 10 MB ${withLength ? 'Content-Length' : 'chunked'} upload in ${piece}-byte writes reaches a slow upstream byte-exact`, async () => {
      up = await serve(slowReader);
      p = await startProxy(entry(up.port));
      const body = payload(10 * 1024 * 1024, piece);
      const r = await upload(p.port, body, piece, withLength);
      expect(r.status, r.body.slice(0, 200)).to.equal(200);
      expect(r.body).to.equal(`${body.length} ${sha(body)}`);
    });
  }

  /** Reads a response slowly (1 ms pauses between reads) and resolves with its byte count. */
  function slowDownload(port: number, path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let n = 0;
      s.on('data', (d: Buffer) => {
        n += d.length;
        s.pause();
        setTimeout(() => s.resume(), 1);
      });
      s.on('error', reject);
      s.on('close', () => resolve(n));
      s.write(`GET ${path} HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n`);
    });
  }

  it('a slow downstream does not leave its upstream connection paused in the pool', async () => {
    // the router pauses the upstream when a downstream write reports back-pressure, and
    // resumes on the downstream's 'drain', which never comes once the response has ended. Node
    // reports back-pressure past 64 KiB queued, so the last read must be a full 64 KiB one: each
    // response is exactly 64 × 64 KiB on the wire (reads stay aligned across responses)
    const total = 64 * 64 * 1024;
    const headOf = (n: number): string => `HTTP/1.1 200 OK\r\ncontent-length: ${n}\r\n\r\n`;
    const bodyLen = total - headOf(total).length;
    const response = Buffer.from(headOf(bodyLen) + 'x'.repeat(bodyLen));
    expect(response.length).to.equal(total);
    up = await serve((s: net.Socket) => {
      s.on('data', (d: Buffer) => {
        for (let i = d.indexOf('\r\n\r\n'); i >= 0; i = d.indexOf('\r\n\r\n', i + 4)) s.write(response);
      });
    }, true);
    // one upstream connection: the next request must reuse the one the slow download used
    p = await startProxy(entry(up.port, '  trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}'));
    for (let round = 0; round < 3; round++) {
      const got = await bounded(slowDownload(p.port, '/big'), 30_000);
      expect(got).to.be.greaterThan(bodyLen);
      const r = await bounded(request(p.port, { path: '/next', agent: false }));
      expect(r.body.length, `round ${round}`).to.equal(bodyLen);
    }
  });

  describe('an invalid upstream response head → 502 UPE, the connection discarded', () => {
    const ok = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
    const BAD: [string, string][] = [
      ['a space in a header name', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx y: a\r\n\r\nok'],
      ['a NUL in a value', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: a\0b\r\n\r\nok'],
      ['a bare LF in a value', 'HTTP/1.1 200 OK\r\nx: a\nb: c\r\ncontent-length: 2\r\n\r\nok'],
      ['bare LF line endings', 'HTTP/1.1 200 OK\ncontent-length: 2\n\nok'],
      ['5,000 header fields', `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${'x: 1\r\n'.repeat(5000)}\r\nok`],
      ['a 70 KB head', `HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: ${'a'.repeat(70_000)}\r\n\r\nok`],
    ];
    for (const [name, resp] of BAD) {
      it(name, async () => {
        let n = 0;
        up = await serve((s: net.Socket) => {
          const conn = n++;
          // first connection: the bad head; any later one: a good answer
          s.on('data', () => s.write(conn === 0 ? resp : ok));
        }, true);
        p = await startProxy(entry(up.port));
        const r = await bounded(request(p.port, { agent: false }));
        expect(r.status).to.equal(502);
        expect(r.headers['x-weft-response-flags']).to.equal('UPE');
        expect(r.body).to.match(/upstream protocol error/);
        expect((await request(p.port, { agent: false })).body).to.equal('ok');
        expect(n).to.equal(2);
      });
    }
  });

  it('request header count: 100 fields pass, 101 get 431 (the same limit as responses)', async () => {
    up = await serve((_req, res) => res.end('ok'));
    p = await startProxy(entry(up.port));
    // host + connection + 98 = 100 fields
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `x-${i}: ${i}\r\n`).join('');
    const at = await raw(
      p.port,
      `GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n${fields(98)}\r\n`,
    );
    expect(at).to.match(/^HTTP\/1\.1 200 /);
    const over = await raw(
      p.port,
      `GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n${fields(99)}\r\n`,
    );
    expect(over).to.match(/^HTTP\/1\.1 431 /);
    expect(over).to.match(/x-weft-response-flags: DPE/);
  });
});
