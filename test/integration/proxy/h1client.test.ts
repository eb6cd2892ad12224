import { expect } from 'chai';
import net from 'node:net';
import { Readable } from 'node:stream';
import { H1Pool, type Headers, type ResponseHandler } from '../../../proxy/upstream/h1client.js';

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
});
