import { expect } from 'chai';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import {
  H1Pool,
  type Controller,
  type Headers,
  type ResponseHandler,
} from '../../../proxy/upstream/h1client.js';
import { createDownstreamServer } from '../../../proxy/http1-limits.js';
import { bounded, sleep } from './helpers.js';

interface Result {
  status?: number;
  headers?: Headers;
  body: string;
  error?: { code: string; reused: boolean; beforeResponse: boolean };
}

/** A raw upstream that answers each request with the next canned response (or a function). */
async function rawServer(
  responses: (string | ((s: net.Socket) => void))[],
): Promise<{ port: number; requests: string[]; conns: () => number; close(): void }> {
  const requests: string[] = [];
  let conns = 0;
  let i = 0;
  const server = net.createServer((s) => {
    conns++;
    s.on('data', (d: Buffer) => {
      requests.push(d.toString('latin1'));
      const r = responses[Math.min(i++, responses.length - 1)]!;
      if (typeof r === 'string') s.write(r);
      else r(s);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    conns: () => conns,
    close: () => server.close(),
  };
}

function call(
  pool: H1Pool,
  method = 'GET',
  body: Buffer | Readable | null = null,
  headers: Headers = { host: 'x' },
): Promise<Result> {
  return new Promise((resolve) => {
    const out: Result = { body: '' };
    const h: ResponseHandler = {
      onRequestStart() {},
      onResponseStart(_c, status, hd) {
        out.status = status;
        out.headers = hd;
      },
      onResponseData(_c, chunk) {
        out.body += chunk.toString();
      },
      onResponseEnd() {
        resolve(out);
      },
      onResponseError(_c, err) {
        const e = err as Error & { code: string; reused: boolean; beforeResponse: boolean };
        out.error = { code: e.code, reused: e.reused, beforeResponse: e.beforeResponse };
        resolve(out);
      },
    };
    pool.dispatch({ method, path: '/p', headers, body }, h);
  });
}

const opts = {
  maxConnections: Infinity,
  connectTimeoutMs: 1000,
  idleTimeoutMs: 4000,
  maxRequestsPerConnection: 0,
};

describe('proxy upstream HTTP/1.1 client', function () {
  this.timeout(10_000);

  // [name, canned response, expected status, expected body, expected error code]
  const FRAMING: [string, string, number | undefined, string, string | undefined][] = [
    ['content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello', 200, 'hello', undefined],
    [
      'chunked with extensions and trailers',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n',
      200,
      'hello world',
      undefined,
    ],
    [
      'interim 100 Continue is skipped',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok',
      201,
      'ok',
      undefined,
    ],
    ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', 204, '', undefined],
    [
      'TE + CL is rejected (smuggling)',
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      undefined,
      '',
      'EPROTO_UPSTREAM',
    ],
    [
      'conflicting content-length is rejected',
      'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd',
      undefined,
      '',
      'EPROTO_UPSTREAM',
    ],
    [
      'non-numeric content-length is rejected',
      'HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\nabcd',
      undefined,
      '',
      'EPROTO_UPSTREAM',
    ],
    ['bad status line', 'SMTP ready\r\n\r\n', undefined, '', 'EPROTO_UPSTREAM'],
    [
      'bad chunk size',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      200,
      '',
      'EPROTO_UPSTREAM',
    ],
  ];
  for (const [name, resp, status, body, code] of FRAMING) {
    it(name, async () => {
      const s = await rawServer([resp]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      const r = await call(pool);
      expect(r.status).to.equal(status);
      expect(r.body).to.equal(body);
      expect(r.error?.code).to.equal(code);
      await pool.destroy();
      s.close();
    });
  }

  it('a request that cannot be written as HTTP/1.1 (CR/LF or a char above U+00FF in a header) fails before any byte is sent', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na']);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    // U+010A's low byte is LF once the head is written as latin1: a smuggled header and request
    const smuggle = 'a\u010d\u010ax-injected: 1\u010d\u010a\u010d\u010aGET /admin HTTP/1.1';
    for (const headers of [
      { host: 'x', 'x-forwarded-client-cert': smuggle },
      { host: 'x', 'x-a': 'ok\r\nx-b: injected' },
      { host: 'x', 'bad name': 'v' },
      { host: 'x', 'x-list': ['fine', 'no\nway'] },
    ] as Headers[]) {
      const r = await call(pool, 'GET', null, headers);
      expect(r.error?.code, JSON.stringify(headers)).to.equal('EINVALIDHEADER');
    }
    expect(s.requests).to.deep.equal([]);
    expect(s.conns()).to.equal(0);
    // Latin-1 text (obs-text) and tabs stay allowed, as node:http allows them
    expect((await call(pool, 'GET', null, { host: 'x', 'x-name': 'caf\u00e9\tok' })).body).to.equal('a');
    await pool.destroy();
    s.close();
  });

  it('body until close (no length, no chunking)', async () => {
    const s = await rawServer([(sock) => sock.end('HTTP/1.1 200 OK\r\n\r\nstreamed until close')]);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    expect((await call(pool)).body).to.equal('streamed until close');
    await pool.destroy();
    s.close();
  });

  it('reuses keep-alive connections and reports a reset on a reused one as stale', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na', (sock) => sock.destroy()]);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    expect((await call(pool)).body).to.equal('a');
    const r = await call(pool);
    expect(r.error).to.deep.equal({ code: 'ECONNRESET', reused: true, beforeResponse: true });
    expect(s.conns()).to.equal(1);
    await pool.destroy();
    s.close();
  });

  it('never reuses a connection within 1 s of the upstream Keep-Alive timeout', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\nkeep-alive: timeout=1\r\n\r\na']);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    await call(pool);
    await call(pool);
    expect(s.conns()).to.equal(2);
    await pool.destroy();
    s.close();
  });

  describe('idle limits (the unannounced limit shortened to 150 ms)', () => {
    const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na';
    const ANNOUNCED = 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\nkeep-alive: timeout=60\r\n\r\na';
    const idleOpts = { ...opts, idleTimeoutMs: 3_600_000, unannouncedIdleMs: 150 };
    const cases: { name: string; response: string; idleTimeoutMs: number; conns: number }[] = [
      {
        name: 'an upstream that announces nothing: closed after the unannounced limit',
        response: OK,
        idleTimeoutMs: 3_600_000,
        conns: 2,
      },
      {
        name: 'an upstream announcing Keep-Alive: timeout=60 (weft inbound): kept past it',
        response: ANNOUNCED,
        idleTimeoutMs: 3_600_000,
        conns: 1,
      },
      {
        name: "announced, but the DestinationRule's idleTimeout (100 ms) is shorter: closed",
        response: ANNOUNCED,
        idleTimeoutMs: 100,
        conns: 2,
      },
      {
        name: 'announced nothing, idleTimeout shorter than the unannounced limit: closed',
        response: OK,
        idleTimeoutMs: 100,
        conns: 2,
      },
    ];
    for (const c of cases)
      it(c.name, async () => {
        const s = await rawServer([c.response]);
        const pool = new H1Pool('127.0.0.1', s.port, { ...idleOpts, idleTimeoutMs: c.idleTimeoutMs });
        expect((await call(pool)).body).to.equal('a');
        await sleep(400); // idle past both short limits (and a sweep)
        expect((await call(pool)).body).to.equal('a');
        expect(s.conns()).to.equal(c.conns);
        await pool.destroy();
        s.close();
      });

    it("weft's inbound side (node:http, keepAliveTimeout 60 s) announces its window, so mesh hops stay pooled", async () => {
      let conns = 0;
      const server = createDownstreamServer({}, {}, (_req, res) => res.end('a'));
      server.on('connection', () => conns++);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const pool = new H1Pool('127.0.0.1', (server.address() as net.AddressInfo).port, idleOpts);
      const first = await call(pool);
      expect(first.headers?.['keep-alive']).to.equal('timeout=60');
      await sleep(400);
      await call(pool);
      expect(conns).to.equal(1);
      await pool.destroy();
      server.close();
    });
  });

  it('connection: close is honoured; refused connections are connect failures', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\na']);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    await call(pool);
    await call(pool);
    expect(s.conns()).to.equal(2);
    await pool.destroy();
    s.close();
    const dead = new H1Pool('127.0.0.1', s.port, opts);
    await new Promise((r) => setTimeout(r, 50));
    expect((await call(dead)).error).to.deep.include({ code: 'ECONNREFUSED', reused: false });
    await dead.destroy();
  });

  it('sends buffered bodies with their length and streams others chunked', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n']);
    const pool = new H1Pool('127.0.0.1', s.port, opts);
    await call(pool, 'POST', Buffer.from('abc'), { host: 'x', 'content-length': '999' });
    expect(s.requests[0]).to.match(/^POST \/p HTTP\/1\.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc$/);
    await call(pool, 'POST', Readable.from([Buffer.from('hello')]));
    await new Promise((r) => setTimeout(r, 50));
    expect(s.requests.slice(1).join('')).to.include(
      'transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    await pool.destroy();
    s.close();
  });

  it('queues beyond maxConnections and serves the queue in order', async () => {
    const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nz']);
    const pool = new H1Pool('127.0.0.1', s.port, { ...opts, maxConnections: 1 });
    const all = await Promise.all([call(pool), call(pool), call(pool)]);
    expect(all.map((r) => r.status)).to.deep.equal([200, 200, 200]);
    expect(s.conns()).to.equal(1);
    await pool.destroy();
    s.close();
  });

  describe('invalid response heads: 502 material, never a hang, never relayed', () => {
    const head = (lines: string): string => `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${lines}\r\nok`;
    const BAD: [string, string][] = [
      ['bare LF line endings', 'HTTP/1.1 200 OK\ncontent-length: 2\n\nok'],
      ['a bare LF in one header line', 'HTTP/1.1 200 OK\r\nx: a\ncontent-length: 2\r\n\r\nok'],
      ['a bare CR in a value', head('x: a\rb\r\n')],
      ['a space in a header name', head('x y: a\r\n')],
      ['a space before the colon', head('x : a\r\n')],
      ['a NUL in a value', head('x: a\0b\r\n')],
      ['DEL in a value', head('x: a\x7fb\r\n')],
      ['an empty header name', head(': a\r\n')],
      ['obs-fold', head('x: a\r\n b\r\n')],
      ['a line without a colon', head('just words\r\n')],
      ['status 099', 'HTTP/1.1 099 Low\r\ncontent-length: 0\r\n\r\n'],
      ['HTTP/2.0 status line', 'HTTP/2.0 200 OK\r\ncontent-length: 0\r\n\r\n'],
      ['a control character in the reason', 'HTTP/1.1 200 O\x01K\r\ncontent-length: 0\r\n\r\n'],
      ['101 header fields', head('x: 1\r\n'.repeat(100))],
      ['5,000 header fields', head('x: 1\r\n'.repeat(5000))],
      [
        'bare LF after a chunk size',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n',
      ],
      ['bare LF after chunk data', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n'],
      [
        'CRs piled after chunk data',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\r\n0\r\n\r\n',
      ],
      ['an invalid trailer', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n'],
    ];
    for (const [name, resp] of BAD) {
      it(`${name} → EPROTO_UPSTREAM and the connection is closed`, async () => {
        const s = await rawServer([resp, 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext']);
        const pool = new H1Pool('127.0.0.1', s.port, opts);
        const r = await bounded(call(pool));
        expect(r.error?.code, JSON.stringify(r).slice(0, 200)).to.equal('EPROTO_UPSTREAM');
        // the next request gets a fresh connection, never the one that carried garbage
        expect((await bounded(call(pool))).body).to.equal('next');
        expect(s.conns()).to.equal(2);
        await pool.destroy();
        s.close();
      });
    }

    it('100 header fields are relayed (the limit is inclusive), one more is refused', async () => {
      const fields = Array.from({ length: 99 }, (_, i) => `x-${i}: ${i}\r\n`).join('');
      const s = await rawServer([head(fields)]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      const r = await bounded(call(pool));
      expect(r.status).to.equal(200);
      expect(r.headers!['x-98']).to.equal('98');
      await pool.destroy();
      s.close();
    });

    it('a header named __proto__ is an ordinary header', async () => {
      const s = await rawServer([head('__proto__: a\r\n__proto__: b\r\n')]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      const r = await bounded(call(pool));
      expect(r.headers!['__proto__']).to.deep.equal(['a', 'b']);
      expect(Object.keys(r.headers!)).to.deep.equal(['content-length', '__proto__']);
      await pool.destroy();
      s.close();
    });

    // the head limit is a property of the head, not of how the reads fell
    const LIMIT = 64 * 1024;
    /** A head of exactly `size` bytes (status line, one padded field, CRLFs) and a 2-byte body. */
    const sized = (size: number): string => {
      const fixed = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-pad: \r\n\r\n';
      return `HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-pad: ${'p'.repeat(size - fixed.length)}\r\n\r\nok`;
    };
    for (const split of [0, 1000, 40_000, LIMIT - 2, LIMIT]) {
      it(`head of exactly 64 KiB passes, one byte more fails (written ${split ? `split at ${split}` : 'at once'})`, async () => {
        for (const [size, ok] of [
          [LIMIT, true],
          [LIMIT + 1, false],
          [70_000, false],
          [127_000, false],
        ] as const) {
          const text = sized(size);
          const s = await rawServer([
            (sock) => {
              if (split === 0 || split >= text.length) return void sock.write(text);
              sock.write(text.slice(0, split));
              setTimeout(() => sock.write(text.slice(split)), 20);
            },
          ]);
          const pool = new H1Pool('127.0.0.1', s.port, opts);
          const r = await bounded(call(pool));
          if (ok) expect(r.body, `size ${size}`).to.equal('ok');
          else expect(r.error?.code, `size ${size}`).to.equal('EPROTO_UPSTREAM');
          await pool.destroy();
          s.close();
        }
      });
    }

    it('a head dripped one byte per read still parses', async () => {
      const text = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: y\r\n\r\nok';
      const s = await rawServer([
        (sock) => {
          let i = 0;
          const next = (): void => {
            if (i < text.length) sock.write(text[i++]!, () => setTimeout(next, 1));
          };
          next();
        },
      ]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      expect((await bounded(call(pool))).body).to.equal('ok');
      await pool.destroy();
      s.close();
    });
  });

  describe('the pool hands out clean connections only', () => {
    it('a connection paused by its last handler is resumed before reuse', async () => {
      const big = 'x'.repeat(200_000);
      const s = await rawServer([
        `HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n${big}`,
        'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext',
      ]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      // a handler that pauses on every chunk and never resumes: a downstream that stopped
      // draining just as the response ended (its drain never comes after res.end())
      let got = 0;
      await bounded(
        new Promise<void>((resolve, reject) =>
          pool.dispatch(
            { method: 'GET', path: '/big', headers: { host: 'x' }, body: null },
            {
              onRequestStart() {},
              onResponseStart() {},
              onResponseData(c, chunk) {
                got += chunk.length;
                c.pause();
                // what the router does on back-pressure: resume on the downstream's drain,
                // here only while the response is still running
                if (got < big.length) setImmediate(() => c.resume());
              },
              onResponseEnd: () => resolve(),
              onResponseError: (_c, e) => reject(e),
            },
          ),
        ),
      );
      const r = await bounded(call(pool));
      expect(r.body).to.equal('next');
      expect(s.conns()).to.equal(1);
      await pool.destroy();
      s.close();
    });

    it("a finished request's controller cannot touch the next request on its connection", async () => {
      const s = await rawServer([
        'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na',
        (sock) => setTimeout(() => sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb'), 50),
      ]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      let stale: Controller | null = null;
      await bounded(
        new Promise<void>((resolve) =>
          pool.dispatch(
            { method: 'GET', path: '/a', headers: { host: 'x' }, body: null },
            {
              onRequestStart(c) {
                stale = c;
              },
              onResponseStart() {},
              onResponseData() {},
              onResponseEnd: () => resolve(),
              onResponseError: () => resolve(),
            },
          ),
        ),
      );
      const second = call(pool);
      await sleep(10);
      // a late route timeout of the first exchange, or its downstream going away
      stale!.pause();
      stale!.abort(new Error('late abort of a finished request'));
      const r = await bounded(second);
      expect(r.body).to.equal('b');
      expect(s.conns()).to.equal(1);
      await pool.destroy();
      s.close();
    });

    it('an early response while the body is still streaming: the connection is not reused', async () => {
      const s = await rawServer([
        (sock) => sock.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n'),
        'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext',
      ]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      const body = new PassThrough();
      body.write('first part of a body whose end never came');
      const r = await bounded(call(pool, 'POST', body));
      expect(r.status).to.equal(413);
      // the upstream still reads the rest of that body: the next request must not be it
      expect((await bounded(call(pool))).body).to.equal('next');
      expect(s.conns()).to.equal(2);
      body.end();
      await pool.destroy();
      s.close();
    });
  });

  describe('request framing', () => {
    it('an empty piece of a streamed body does not end the chunked body early', async () => {
      // answers once the body's last chunk arrived (each read is one entry of s.requests)
      const answer = (sock: net.Socket): void => {
        if (s.requests.join('').endsWith('0\r\n\r\n'))
          sock.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      };
      const s = await rawServer([answer]);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      // an object-mode stream (Readable.from) does emit an empty buffer as a piece
      const done = call(pool, 'POST', Readable.from([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')]));
      await bounded(done);
      await sleep(20);
      expect(s.requests.join('')).to.match(/\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n$/);
      await pool.destroy();
      s.close();
    });

    it('no body: a content-length the headers carry is not promised to the upstream', async () => {
      // the router mirrors a streamed request without its body: "content-length: 5" with no
      // bytes would make the upstream read the next request as this one's body
      const s = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n']);
      const pool = new H1Pool('127.0.0.1', s.port, opts);
      await bounded(call(pool, 'POST', null, { host: 'x', 'content-length': '5' }));
      expect(s.requests[0]).to.equal('POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n');
      await pool.destroy();
      s.close();
    });
  });
});
