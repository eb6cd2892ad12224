/**
 * Property suites for the upstream hop (seeded, bounded, real loopback sockets):
 *  - responses: random framings (content-length, chunked with random chunk sizes, extensions and
 *    trailers, close-delimited, 1xx interims, HEAD/204/304 without a body) and random invalid
 *    heads, written by a fake upstream split at random points with small delays, to an H1Pool of
 *    one connection whose handler pauses like the router does. A valid response arrives
 *    byte-exact, an invalid one is EPROTO_UPSTREAM (502 UPE) and its connection is never used
 *    again, nothing hangs, and the pool never sends a request on a connection that is still
 *    answering the previous one;
 *  - requests, through the proxy: random bodies (Content-Length or chunked) written by the client
 *    split at random points, to a slow-reading Node upstream (llhttp, strict). What the upstream
 *    receives is exactly one well-framed request per client request, bodies byte-exact.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { H1Pool, type Headers } from '../../../proxy/upstream/h1client.js';
import { bounded, reviewsEntry, sleep, startProxy, type Started, type Upstream } from './helpers.js';

/**
 * Fixed seed; shrinking a failure (each hanging try costs its bound) stops after 60 s so the
 * counterexample is printed before mocha's timeout; an interrupted run counts as a failure.
 * NO_SHRINK=1 prints the first counterexample as found.
 */
const RUN = {
  seed: 1212,
  interruptAfterTimeLimit: 60_000,
  markInterruptAsFailure: true,
  endOnFailure: process.env.NO_SHRINK === '1',
};

// --- responses ------------------------------------------------------------------------------

type Framing = 'length' | 'chunked' | 'close' | 'none';
const MUTATIONS = [
  'bare-lf',
  'bare-cr',
  'space-in-name',
  'nul-in-value',
  'too-many-fields',
  'head-too-large',
  'conflicting-length',
  'te-and-cl',
  'bad-status',
  'bad-chunk-size',
  'chunk-without-crlf',
] as const;
type Mutation = (typeof MUTATIONS)[number];

interface Resp {
  method: 'GET' | 'HEAD';
  status: number;
  interims: number[];
  fields: [string, string][];
  framing: Framing;
  body: Buffer;
  /** Chunk sizes (chunked): their sum is the body length. */
  chunks: number[];
  ext: string;
  trailers: [string, string][];
  mutation: Mutation | null;
  /** Where the fake upstream splits its write, and the pause between pieces (ms). */
  cuts: number[];
  delay: number;
  /** The handler pauses the socket on data, resuming later only if the response is still on. */
  pauses: boolean;
}

const FRAMING_NAMES = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/).filter((n) => !FRAMING_NAMES.has(n));
const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);
const fields = fc.uniqueArray(fc.tuple(name, value), { maxLength: 8, selector: ([n]) => n });

/** Splits `total` into chunk sizes ≥ 1 from random seeds. */
const partition = (total: number, seeds: number[]): number[] => {
  const out: number[] = [];
  let left = total;
  for (const s of seeds) {
    if (left === 0) break;
    const n = Math.min(left, 1 + (s % 700));
    out.push(n);
    left -= n;
  }
  if (left > 0) out.push(left);
  return out;
};

const validResp: fc.Arbitrary<Resp> = fc
  .record({
    framing: fc.constantFrom<Framing>('length', 'chunked', 'close', 'none'),
    noBody: fc.constantFrom<'HEAD' | 204 | 304>('HEAD', 204, 304),
    status: fc.constantFrom(200, 201, 404, 500, 503),
    interims: fc.array(fc.constantFrom(100, 103), { maxLength: 2 }),
    fields,
    body: fc.uint8Array({ maxLength: 3000 }),
    chunkSeeds: fc.array(fc.nat(), { maxLength: 8 }),
    ext: fc.constantFrom('', ';a=b', ';x', ' ;q="v"'),
    trailers: fc.uniqueArray(fc.tuple(name, value), { maxLength: 3, selector: ([n]) => n }),
    cuts: fc.array(fc.nat(), { maxLength: 5 }),
    delay: fc.integer({ min: 0, max: 2 }),
    pauses: fc.boolean(),
  })
  .map((r) => {
    const none = r.framing === 'none';
    const body = none ? Buffer.alloc(0) : Buffer.from(r.body);
    return {
      method: none && r.noBody === 'HEAD' ? 'HEAD' : 'GET',
      status: none && r.noBody !== 'HEAD' ? r.noBody : r.status,
      interims: r.interims,
      fields: r.fields,
      framing: r.framing,
      body,
      chunks: partition(body.length, r.chunkSeeds),
      ext: r.ext,
      trailers: r.trailers,
      mutation: null,
      cuts: r.cuts,
      delay: r.delay,
      pauses: r.pauses,
    };
  });

const invalidResp: fc.Arbitrary<Resp> = fc
  .tuple(validResp, fc.constantFrom(...MUTATIONS))
  .map(([r, mutation]) => {
    const chunky = mutation === 'bad-chunk-size' || mutation === 'chunk-without-crlf';
    const body = r.body.length > 0 ? r.body : Buffer.from('body');
    return {
      ...r,
      method: 'GET',
      status: 200,
      framing: chunky ? 'chunked' : 'length',
      body,
      chunks: [body.length],
      mutation,
    } as Resp;
  });

/** The bytes the fake upstream sends for one response. */
function wire(r: Resp): Buffer {
  const m = r.mutation;
  const lines = [`HTTP/1.1 ${m === 'bad-status' ? '20' : r.status} OK`];
  for (const [n, v] of r.fields) lines.push(`${n}: ${v}`);
  if (m === 'space-in-name') lines.push('bad name: v');
  if (m === 'nul-in-value') lines.push('x-nul: a\0b');
  if (m === 'bare-cr') lines.push('x-cr: a\rb');
  if (m === 'too-many-fields') for (let i = 0; i < 101; i++) lines.push(`x-many-${i}: ${i}`);
  if (m === 'head-too-large') lines.push(`x-big: ${'b'.repeat(64 * 1024)}`);
  if (r.framing === 'length' || (r.framing === 'none' && r.method === 'HEAD'))
    lines.push(`content-length: ${r.framing === 'none' ? 1234 : r.body.length}`);
  if (m === 'conflicting-length') lines.push(`content-length: ${r.body.length + 1}`);
  if (r.framing === 'chunked' || m === 'te-and-cl') lines.push('transfer-encoding: chunked');
  let head = `${lines.join('\r\n')}\r\n\r\n`;
  if (m === 'bare-lf') head = head.replace('\r\n', '\n');
  const interims = r.interims.map((s) =>
    s === 103 ? 'HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n' : 'HTTP/1.1 100 Continue\r\n\r\n',
  );
  const parts: Buffer[] = [Buffer.from(interims.join('') + head, 'latin1')];
  if (r.framing === 'chunked') {
    let off = 0;
    for (const [i, n] of r.chunks.entries()) {
      const size = m === 'bad-chunk-size' && i === 0 ? 'zz' : n.toString(16);
      parts.push(Buffer.from(`${size}${r.ext}\r\n`, 'latin1'), r.body.subarray(off, off + n));
      parts.push(Buffer.from(m === 'chunk-without-crlf' ? '' : '\r\n'));
      off += n;
    }
    parts.push(Buffer.from(`0\r\n${r.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  } else if (r.framing !== 'none') parts.push(r.body);
  return Buffer.concat(parts);
}

/** Writes `b` in pieces at `cuts` (mod length), `delay` ms apart. */
async function writeSplit(s: net.Socket, b: Buffer, cuts: number[], delay: number): Promise<void> {
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))]
    .filter((c) => c > 0 && c < b.length)
    .sort((x, y) => x - y);
  let from = 0;
  for (const c of at) {
    if (c > from && !s.destroyed) s.write(b.subarray(from, c));
    from = Math.max(from, c);
    if (delay > 0) await sleep(delay);
  }
  // the last piece ends the write: a client may answer it at once
  if (!s.destroyed) s.write(b.subarray(from));
}

interface FakeUpstream {
  port: number;
  /** Broken rules seen by the upstream (must stay empty). */
  violations: string[];
  close(): Promise<void>;
}

/**
 * Answers `GET|HEAD /r<i>` with `script[i]`. Records a violation when a request arrives on a
 * connection still writing its previous response, or on one that sent an invalid response.
 */
async function fakeUpstream(script: Resp[]): Promise<FakeUpstream> {
  const violations: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    let pending = '';
    let busy = false;
    let poisoned = false;
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const i = Number(/^[A-Z]+ \/r(\d+) /.exec(head)?.[1] ?? -1);
        if (busy) violations.push(`request ${i} on a connection still answering`);
        if (poisoned) violations.push(`request ${i} on a connection that sent an invalid response`);
        const r = script[i];
        if (r === undefined) return void violations.push(`unexpected request ${JSON.stringify(head)}`);
        busy = true;
        void writeSplit(s, wire(r), r.cuts, r.delay).then(() => {
          busy = false;
          poisoned ||= r.mutation !== null;
          if (r.framing === 'close') s.end();
        });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    violations,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Outcome {
  status?: number;
  headers?: Headers;
  body: Buffer;
  error?: string;
}

/** One request through the pool; the handler pauses on data like the router under back-pressure. */
function exchange(pool: H1Pool, i: number, r: Resp): Promise<Outcome> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const out: Outcome = { body: Buffer.alloc(0) };
    let ended = false;
    pool.dispatch(
      { method: r.method, path: `/r${i}`, headers: { host: 'upstream' }, body: null },
      {
        onRequestStart() {},
        onResponseStart(_c, status, headers) {
          out.status = status;
          out.headers = headers;
        },
        onResponseData(c, chunk) {
          parts.push(Buffer.from(chunk));
          if (!r.pauses) return;
          c.pause();
          // the router's resume comes on the downstream's 'drain', never after the response ended
          setTimeout(() => ended || c.resume(), 1);
        },
        onResponseEnd() {
          ended = true;
          out.body = Buffer.concat(parts);
          resolve(out);
        },
        onResponseError(_c, err) {
          ended = true;
          out.error = (err as { code?: string }).code ?? err.message;
          resolve(out);
        },
      },
    );
  });
}

function checkRelayed(r: Resp, o: Outcome): void {
  expect(o.error, `valid ${r.framing} response failed`).to.equal(undefined);
  expect(o.status).to.equal(r.status);
  expect(o.body.equals(r.body), `body of ${o.body.length} bytes, sent ${r.body.length}`).to.equal(true);
  for (const [n, v] of r.fields) expect(o.headers![n], n).to.equal(v);
}

describe('upstream client properties (fast-check, seeded)', function () {
  this.timeout(120_000);

  it('responses: valid ones relayed byte-exact, invalid ones EPROTO_UPSTREAM and dropped, no hang, clean reuse', async () => {
    const script = fc.array(
      fc.oneof({ weight: 3, arbitrary: validResp }, { weight: 1, arbitrary: invalidResp }),
      {
        minLength: 1,
        maxLength: 4,
      },
    );
    await fc.assert(
      fc.asyncProperty(script, async (responses) => {
        const up = await fakeUpstream(responses);
        // one connection: every request after the first reuses it, or needs a new one
        const pool = new H1Pool('127.0.0.1', up.port, {
          maxConnections: 1,
          connectTimeoutMs: 2000,
          idleTimeoutMs: 4000,
          maxRequestsPerConnection: 0,
        });
        try {
          for (const [i, r] of responses.entries()) {
            const o = await bounded(exchange(pool, i, r), 4000);
            if (r.mutation === null) checkRelayed(r, o);
            else expect(o.error, `${r.mutation} was accepted`).to.equal('EPROTO_UPSTREAM');
          }
          expect(up.violations, up.violations.join('; ')).to.deep.equal([]);
        } finally {
          await pool.destroy();
          await up.close();
        }
      }),
      { ...RUN, numRuns: 80 },
    );
  });

  describe('requests through the proxy to a slow upstream', () => {
    interface Seen {
      method: string;
      url: string;
      length: number;
      sha: string;
    }
    let p: Started | null = null;
    let server: http.Server | null = null;
    const seen: Seen[] = [];
    const violations: string[] = [];
    before(async () => {
      // Node's parser in front: any framing error is a clientError, any extra request a record
      server = http.createServer((req, res) => {
        const h = createHash('sha256');
        let n = 0;
        const onData = (c: Buffer): void => {
          h.update(c);
          n += c.length;
          req.pause();
          setTimeout(() => req.resume(), 1);
        };
        // a slow start, then a slow read: the loopback buffers fill and stay full
        setTimeout(() => req.on('data', onData), 50);
        req.on('end', () => {
          const s: Seen = { method: req.method!, url: req.url!, length: n, sha: h.digest('hex') };
          seen.push(s);
          res.end(`${s.length} ${s.sha}`);
        });
      });
      server.on('clientError', (e: Error, s: net.Socket) => {
        violations.push(`upstream parse error: ${e.message}`);
        s.destroy();
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      p = await startProxy(reviewsEntry([{ name: 'v1', port } as Upstream]));
    });
    after(async () => {
      await p?.stop();
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    });

    interface Req {
      method: 'POST' | 'PUT';
      size: number;
      seed: number;
      chunked: boolean;
      chunkSeeds: number[];
      cuts: number[];
      delay: number;
    }
    const req: fc.Arbitrary<Req> = fc.record({
      method: fc.constantFrom('POST', 'PUT'),
      // small (buffered by the router, ≤ 64 KiB), streamed, and big enough to fill the loopback
      // buffers to a slow reader (the proxy's writes to the upstream then meet back-pressure)
      size: fc.oneof(
        { weight: 2, arbitrary: fc.integer({ min: 0, max: 5000 }) },
        { weight: 2, arbitrary: fc.integer({ min: 70_000, max: 700_000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 5_000_000, max: 8_000_000 }) },
      ),
      seed: fc.integer({ min: 1, max: 2 ** 31 }),
      chunked: fc.boolean(),
      chunkSeeds: fc.array(fc.nat(), { maxLength: 6 }),
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
      delay: fc.integer({ min: 0, max: 2 }),
    });

    /** The body bytes (deterministic from the seed). */
    const bodyOf = (r: Req): Buffer => {
      const b = Buffer.alloc(r.size);
      let x = r.seed;
      for (let i = 0; i < b.length; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        b[i] = x >>> 24;
      }
      return b;
    };

    /** The client's bytes: Content-Length, or chunked with random sizes (big chunks scaled up). */
    function clientWire(r: Req, i: number, body: Buffer): Buffer {
      const head = `${r.method} /q${i} HTTP/1.1\r\nhost: reviews:9080\r\n`;
      if (!r.chunked)
        return Buffer.concat([Buffer.from(`${head}content-length: ${body.length}\r\n\r\n`), body]);
      const parts: Buffer[] = [Buffer.from(`${head}transfer-encoding: chunked\r\n\r\n`)];
      const scale = body.length > 10_000 ? 200 : 1;
      let off = 0;
      for (const n of partition(Math.ceil(body.length / scale), r.chunkSeeds)) {
        const piece = body.subarray(off, off + n * scale);
        if (piece.length === 0) break;
        parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
        off += piece.length;
      }
      parts.push(Buffer.from('0\r\n\r\n'));
      return Buffer.concat(parts);
    }

    /** Reads one Content-Length response off a keep-alive socket. */
    function readResponse(s: net.Socket): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        let buf = Buffer.alloc(0);
        const onData = (d: Buffer): void => {
          buf = Buffer.concat([buf, d]);
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.toString('latin1', 0, end);
          const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + len) return;
          s.off('data', onData);
          s.off('close', onClose);
          resolve({
            status: Number(head.slice(9, 12)),
            body: buf.toString('latin1', end + 4, end + 4 + len),
          });
        };
        const onClose = (): void =>
          reject(new Error(`connection closed; got ${JSON.stringify(buf.toString('latin1', 0, 120))}`));
        s.on('data', onData);
        s.once('close', onClose);
      });
    }

    it('the upstream gets exactly one well-framed request per client request, bodies byte-exact', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(req, { minLength: 1, maxLength: 3 }), async (reqs) => {
          seen.length = 0;
          violations.length = 0;
          const s = net.connect(p!.port, '127.0.0.1');
          s.on('error', () => undefined);
          try {
            for (const [i, r] of reqs.entries()) {
              const body = bodyOf(r);
              const reply = readResponse(s);
              await writeSplit(s, clientWire(r, i, body), r.cuts, r.delay);
              const got = await bounded(reply, 15_000);
              const sha = createHash('sha256').update(body).digest('hex');
              expect(got.status, got.body.slice(0, 200)).to.equal(200);
              expect(got.body).to.equal(`${body.length} ${sha}`);
            }
            expect(violations).to.deep.equal([]);
            expect(seen.map((x) => `${x.method} ${x.url} ${x.length}`)).to.deep.equal(
              reqs.map((r, i) => `${r.method} /q${i} ${r.size}`),
            );
          } finally {
            s.destroy();
          }
        }),
        { ...RUN, numRuns: 30 },
      );
    });
  });
});
