/**
 * HTTP/2 floods against the proxy's downstream listener, with frames written by hand
 * (h2-frames.ts): rapid reset (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27983 and
 * kin), a SETTINGS flood, oversized header lists (bytes and field count), more streams than
 * SETTINGS_MAX_CONCURRENT_STREAMS. Each must be bounded (the attacker's connection refused or
 * closed, little reaching the upstream), and the proxy must keep serving everyone else.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import { request, reviewsEntry, startProxy, upstream, vs, type Started, type Upstream } from './helpers.js';
import { blast, ERR, F, frame, literal, literalHuffmanA, rawH2, requestBlock, T } from './h2-frames.js';
import { H2_MAX_CONCURRENT_STREAMS } from '../../../proxy/h2/downstream.js';

const AUTH = 'reviews:9080';

/** An ordinary h2c client's GET through the proxy. */
function h2ok(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({ ':path': '/', ':authority': AUTH });
    s.on('response', (h) => {
      s.resume();
      s.on('end', () => {
        session.close();
        resolve(Number(h[':status']));
      });
    });
    s.on('error', reject);
    s.end();
  });
}

/** weft_proxy_downstream_protocol_errors_total: HTTP/1's 431/408 and HTTP/2's alike. */
async function protocolErrors(p: Started): Promise<number> {
  const body = (await request(p.metrics, { path: '/stats/prometheus' })).body;
  const m = /^weft_proxy_downstream_protocol_errors_total(?:\{[^}]*\})? (\d+)/m.exec(body);
  return m === null ? 0 : Number(m[1]);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

describe('HTTP/2 floods are bounded and others are unaffected', function () {
  this.timeout(60_000);
  let app: Upstream;
  let p: Started;
  before(async () => {
    // takes any header list the proxy forwards: what the proxy refuses must be the proxy's doing
    app = await upstream('app', { maxHeaderSize: 1024 * 1024 });
    p = await startProxy(reviewsEntry([app]) + vs(`  - route: [{destination: {host: reviews}}]`));
  });
  after(async () => {
    await p.stop();
    await app.close();
  });
  beforeEach(() => {
    app.seen.length = 0;
  });
  afterEach(async () => {
    // the proxy still serves: HTTP/2 and HTTP/1.1 clients alike
    expect(await h2ok(p.port)).to.equal(200);
    expect((await request(p.port)).status).to.equal(200);
  });

  it('rapid reset (HEADERS then RST_STREAM, 10 000 times): the session is closed (GOAWAY) after the reset burst', async () => {
    const c = await rawH2(p.port);
    const frames = function* (): Generator<Buffer> {
      for (let i = 0; i < 10_000; i++) {
        const id = 1 + 2 * i;
        yield Buffer.concat([
          frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, requestBlock(AUTH, [], '/reset')),
          frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, ERR.CANCEL])),
        ]);
      }
    };
    await blast(c.socket, frames());
    expect(await withTimeout(c.closed, 10_000)).to.not.equal('timeout');
    // nghttp2's stream-reset rate limit ends the session (GOAWAY INTERNAL_ERROR, as nghttp2 sends it)
    expect(c.goaway()).to.equal(ERR.INTERNAL);
    // the streams it let through before that are a small multiple of the burst (200)
    await new Promise((r) => setTimeout(r, 300));
    expect(app.seen.filter((r) => r.url === '/reset').length).to.be.below(1000);
  });

  it('CONTINUATION flood (a header block that never ends): refused before 1 MiB is read', async () => {
    const c = await rawH2(p.port);
    const chunk = literal('x-flood', 'a'.repeat(1000));
    const frames = function* (): Generator<Buffer> {
      yield frame(T.HEADERS, 0, 1, requestBlock(AUTH));
      for (let i = 0; i < 2048; i++) yield frame(T.CONTINUATION, 0, 1, chunk);
    };
    await blast(c.socket, frames());
    expect(await withTimeout(c.closed, 10_000)).to.not.equal('timeout');
    // nghttp2 refuses a header block past its CONTINUATION limit (a connection error)
    expect(c.goaway()).to.not.equal(null);
    expect(app.seen.some((r) => r.headers['x-flood'] !== undefined)).to.equal(false);
  });

  it('SETTINGS flood (100 000 frames, their ACKs never read): the session is closed', async () => {
    const c = await rawH2(p.port);
    c.socket.pause(); // never read the ACKs
    const one = frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0xff, 0xff])); // INITIAL_WINDOW_SIZE
    const frames = function* (): Generator<Buffer> {
      for (let i = 0; i < 100_000; i += 100) yield Buffer.concat(Array.from({ length: 100 }, () => one));
    };
    await blast(c.socket, frames());
    c.socket.resume();
    expect(await withTimeout(c.closed, 10_000)).to.not.equal('timeout');
    expect(c.goaway()).to.not.equal(null);
  });

  it('a header list over 60 KiB, or over 100 fields, is refused and reaches no upstream', async () => {
    const big = await rawH2(p.port);
    // 70 KiB in 1 KiB fields, sent as HEADERS + CONTINUATIONs of at most 16 KiB
    const block = requestBlock(
      AUTH,
      Array.from({ length: 70 }, (_, i) => literal(`x-big-${i}`, 'b'.repeat(1000))),
    );
    const parts: Buffer[] = [];
    for (let o = 0; o < block.length; o += 16_000) parts.push(block.subarray(o, o + 16_000));
    await blast(
      big.socket,
      parts.map((b, i) =>
        frame(
          i === 0 ? T.HEADERS : T.CONTINUATION,
          (i === parts.length - 1 ? F.END_HEADERS : 0) | (i === 0 ? F.END_STREAM : 0),
          1,
          b,
        ),
      ),
    );
    const many = await rawH2(p.port);
    const fields = Array.from({ length: 120 }, (_, i) => literal(`x-f-${i}`, 'v'));
    many.socket.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, requestBlock(AUTH, fields)));
    await new Promise((r) => setTimeout(r, 500));
    for (const c of [big, many]) {
      const refused = c.rsts().has(1) || c.goaway() !== null || c.socket.destroyed;
      const answered = c.frames.some((f) => f.type === T.HEADERS && f.stream === 1);
      expect(refused || answered, 'refused or answered').to.equal(true);
      c.socket.destroy();
    }
    expect(
      app.seen.some((r) => r.headers['x-big-0'] !== undefined || r.headers['x-f-0'] !== undefined),
    ).to.equal(false);
  });

  it('a header list of 4 fields × 50 KB (under the field count, over 60 KiB as RFC 7541 counts it): answered, never forwarded', async () => {
    const c = await rawH2(p.port);
    const errorsBefore = await protocolErrors(p);
    // 200 KB decoded in 125 KB of HPACK: 8 frames, within nghttp2's CONTINUATION count
    const fields = Array.from({ length: 4 }, (_, i) => literalHuffmanA(`x-huge-${i}`, 50_000));
    const block = requestBlock(AUTH, fields, '/huge');
    const parts: Buffer[] = [];
    for (let o = 0; o < block.length; o += 16_384) parts.push(block.subarray(o, o + 16_384));
    await blast(
      c.socket,
      parts.map((b, i) =>
        frame(
          i === 0 ? T.HEADERS : T.CONTINUATION,
          (i === parts.length - 1 ? F.END_HEADERS : 0) | (i === 0 ? F.END_STREAM : 0),
          1,
          b,
        ),
      ),
    );
    const done = new Promise<void>((resolve) => {
      const t = setInterval(() => {
        const answered = c.frames.some((f) => f.type === T.HEADERS && f.stream === 1);
        if (answered || c.rsts().has(1) || c.socket.destroyed) resolve(clearInterval(t));
      }, 20);
    });
    expect(await withTimeout(done, 10_000)).to.not.equal('timeout');
    // an ordinary request on another connection is served meanwhile (afterEach: once more)
    expect(await h2ok(p.port)).to.equal(200);
    expect(app.seen.some((r) => r.url === '/huge')).to.equal(false);
    expect(await protocolErrors(p)).to.equal(errorsBefore + 1);
    c.socket.destroy();
  });

  it(`more than ${H2_MAX_CONCURRENT_STREAMS} streams at once: the connection is closed (PROTOCOL_ERROR), at most ${H2_MAX_CONCURRENT_STREAMS} reach the upstream`, async () => {
    app.handler = (_req, res) => setTimeout(() => res.end('slow'), 1500);
    const c = await rawH2(p.port);
    // wait for the proxy's SETTINGS and ACK them, so its stream limit is in force
    await new Promise((r) => setTimeout(r, 100));
    c.socket.write(frame(T.SETTINGS, F.ACK, 0));
    const n = H2_MAX_CONCURRENT_STREAMS + 20;
    for (let i = 0; i < n; i++)
      c.socket.write(
        frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1 + 2 * i, requestBlock(AUTH, [], '/many')),
      );
    await new Promise((r) => setTimeout(r, 700));
    // past the limit the peer ACKed, nghttp2 treats a new stream as a connection error
    expect(c.goaway()).to.equal(ERR.PROTOCOL);
    expect(app.seen.filter((r) => r.url === '/many').length).to.be.at.most(H2_MAX_CONCURRENT_STREAMS);
    c.socket.destroy();
    app.handler = (_req, res) => {
      res.writeHead(200, { 'x-upstream': 'app' });
      res.end('app');
    };
  });
});

describe('HTTP/2 header blocks must complete within the headers timeout', function () {
  this.timeout(30_000);
  let app: Upstream;
  let p: Started;
  before(async () => {
    app = await upstream('app');
    p = await startProxy(reviewsEntry([app]) + vs(`  - route: [{destination: {host: reviews}}]`), {
      headersTimeoutMs: 300,
    });
  });
  after(async () => {
    await p.stop();
    await app.close();
  });

  it('HEADERS without END_HEADERS, then nothing: that session is closed, an idle one beside it is not', async () => {
    const errorsBefore = await protocolErrors(p);
    const bystander = http2.connect(`http://127.0.0.1:${p.port}`);
    const c = await rawH2(p.port);
    c.socket.write(frame(T.HEADERS, 0, 1, requestBlock(AUTH, [literal('x-slow', 's')], '/slow')));
    // the session idle timer (60 s) would keep it far longer than this
    expect(await withTimeout(c.closed, 10_000)).to.not.equal('timeout');
    expect(c.goaway()).to.equal(ERR.NO_ERROR);
    expect(app.seen.some((r) => r.url === '/slow')).to.equal(false);
    expect(await protocolErrors(p)).to.equal(errorsBefore + 1);
    // the session that began no header block is still open and served
    expect(bystander.closed || bystander.destroyed).to.equal(false);
    const status = await new Promise<number>((resolve, reject) => {
      const s = bystander.request({ ':path': '/', ':authority': AUTH });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    expect(status).to.equal(200);
    bystander.close();
  });
});

describe('HTTP/2 idle sessions: frames other than requests do not keep them open', function () {
  this.timeout(30_000);
  let app: Upstream;
  let p: Started;
  before(async () => {
    app = await upstream('app');
    p = await startProxy(reviewsEntry([app]) + vs(`  - route: [{destination: {host: reviews}}]`), {
      idleTimeoutMs: 500,
    });
  });
  after(async () => {
    await p.stop();
    await app.close();
  });

  it('a client that sends only PINGs (more often than the idle timeout) gets GOAWAY', async () => {
    const c = await rawH2(p.port);
    const ping = frame(T.PING, 0, 0, Buffer.alloc(8));
    const pings = setInterval(() => c.socket.writable && c.socket.write(ping), 100);
    try {
      // a guard: node's session timer is not reset by received PINGs (were it, this would hang)
      expect(await withTimeout(c.closed, 10_000)).to.not.equal('timeout');
      expect(c.goaway()).to.equal(ERR.NO_ERROR);
    } finally {
      clearInterval(pings);
    }
    expect(await h2ok(p.port)).to.equal(200);
  });
});
