/**
 * The HTTP/2 downstream on node:http2's raw stream API (proxy/h2/stream-io.ts): what node's
 * compatibility API did for the router and the raw path now does itself, on real sockets with a
 * real HTTP/2 upstream: trailers, resets in both directions, request heads RFC 9113 §8.2 calls
 * malformed (refused, never forwarded), response fields HTTP/2 cannot carry, CONNECT and
 * `expect`, and request bodies the router never reads.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import type net from 'node:net';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startProxy, type Started } from './helpers.js';
import { ERR, F, frame, literal, rawH2, requestBlock, T } from './h2-frames.js';

const HOST = 'echo.test.svc.cluster.local';

interface Seen {
  headers: http2.IncomingHttpHeaders;
  rst?: number;
}

/** An h2c upstream whose behaviour each path chooses; it records what reached it. */
async function h2Upstream(): Promise<{ port: number; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const s: Seen = { headers };
    seen.push(s);
    stream.on('error', () => undefined);
    stream.once('close', () => (s.rst = stream.rstCode));
    const path = headers[':path'];
    if (path === '/trailers') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
      stream.end('body');
    } else if (path === '/reset-after-head') {
      stream.respond({ ':status': 200 });
      stream.write('partial');
      // destroy with an error: RST_STREAM INTERNAL_ERROR without an END_STREAM (close() ends first)
      setTimeout(() => stream.destroy(new Error('upstream gives up')), 50);
    } else if (path === '/slow') {
      stream.respond({ ':status': 200 });
      stream.write('first');
      // never ends: the client cancels
    } else {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('ok');
    }
    stream.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function config(upstreamPort: number): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'raw',
    listeners: [
      {
        name: 'http',
        protocol: 'HTTP',
        address: '127.0.0.1',
        port: 0,
        virtualHosts: [
          {
            name: HOST,
            domains: [HOST],
            routes: [
              {
                match: [{ uri: { prefix: '/ops' } }],
                action: { type: 'route', destinations: [{ cluster: 'echo', weight: 100 }] },
                // `connection` cannot go in an HTTP/2 head: dropped, the rest of the head kept
                headers: { response: { set: { connection: 'close', 'x-op': 'set' } } },
              },
              { action: { type: 'route', destinations: [{ cluster: 'echo', weight: 100 }] } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'echo', http2: true, endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
  } as ProxyConfig;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | null;
  rst: number;
  informational: number[];
}

function call(
  port: number,
  headers: http2.OutgoingHttpHeaders,
  opts: { body?: string; cancelAfterFirstChunk?: boolean } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const st = session.request({ ':authority': HOST, ...headers });
    const a: Answer = { status: 0, headers: {}, body: '', trailers: null, rst: 0, informational: [] };
    st.on('headers', (h) => a.informational.push(Number(h[':status'])));
    st.on('continue', () => a.informational.push(100));
    st.on('response', (h) => {
      a.status = Number(h[':status']);
      a.headers = h;
    });
    st.on('trailers', (t) => (a.trailers = t));
    st.on('data', (d: Buffer) => {
      a.body += d.toString();
      if (opts.cancelAfterFirstChunk === true) st.close(http2.constants.NGHTTP2_CANCEL);
    });
    st.on('error', () => undefined);
    st.once('close', () => {
      a.rst = st.rstCode ?? 0;
      session.close();
      resolve(a);
    });
    if (opts.body !== undefined) st.end(opts.body);
    else st.end();
  });
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
};

describe('HTTP/2 downstream on the raw stream API (proxy/h2/stream-io.ts)', function () {
  this.timeout(30_000);
  let up: Awaited<ReturnType<typeof h2Upstream>>;
  let p: Started;
  before(async () => {
    up = await h2Upstream();
    p = await startProxy(config(up.port));
  });
  after(async () => {
    await p.stop();
    await up.close();
  });
  beforeEach(() => {
    up.seen.length = 0;
  });

  it('passes trailers on as trailers; a response without any ends cleanly (no reset)', async () => {
    const t = await call(p.port, { ':path': '/trailers' });
    expect(t.status).to.equal(200);
    expect(t.body).to.equal('body');
    expect(t.trailers).to.deep.include({ 'x-checksum': 'abc123' });
    expect(t.rst).to.equal(0);
    const plain = await call(p.port, { ':path': '/' });
    expect(plain).to.deep.include({ status: 200, body: 'ok', rst: 0 });
  });

  it('an upstream reset after the head resets the client stream; a client cancel cancels the upstream stream', async () => {
    const cut = await call(p.port, { ':path': '/reset-after-head' });
    expect(cut.status).to.equal(200);
    expect(cut.rst, 'the client stream is reset, not ended').to.equal(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const cancelled = await call(p.port, { ':path': '/slow' }, { cancelAfterFirstChunk: true });
    expect(cancelled.body).to.equal('first');
    const slow = (): Seen | undefined => up.seen.find((s) => s.headers[':path'] === '/slow');
    await until(() => slow()?.rst !== undefined);
    expect(slow()?.rst, 'the upstream stream is cancelled').to.equal(http2.constants.NGHTTP2_CANCEL);
  });

  it('a response field HTTP/2 cannot carry (connection) is dropped, the rest of the head kept', async () => {
    const a = await call(p.port, { ':path': '/ops' });
    expect(a.status).to.equal(200);
    expect(a.headers['x-op']).to.equal('set');
    expect(a.headers.connection).to.equal(undefined);
    expect(a.body).to.equal('ok');
  });

  it('request heads RFC 9113 §8.2 calls malformed are refused and never forwarded; te: trailers is fine', async () => {
    const bad: [string, Buffer][] = [
      ['connection', requestBlock(HOST, [literal('connection', 'keep-alive')])],
      ['keep-alive', requestBlock(HOST, [literal('keep-alive', 'timeout=5')])],
      ['transfer-encoding', requestBlock(HOST, [literal('transfer-encoding', 'chunked')])],
      ['upgrade', requestBlock(HOST, [literal('upgrade', 'websocket')])],
      ['te other than trailers', requestBlock(HOST, [literal('te', 'gzip')])],
      ['an unknown pseudo-header', requestBlock(HOST, [literal(':foo', 'bar')])],
      ['a pseudo-header after a field', requestBlock(HOST, [literal('x-a', 'b'), literal(':method', 'GET')])],
      ['an upper-case name', requestBlock(HOST, [literal('X-Upper', 'v')])],
      ['no :path', Buffer.concat([Buffer.from([0x82, 0x86]), literal(':authority', HOST)])],
    ];
    for (const [why, block] of bad) {
      const c = await rawH2(p.port);
      c.socket.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block));
      await until(() => c.rsts().has(1) || c.goaway() !== null);
      const answered = c.frames.some((f) => f.type === T.HEADERS && f.stream === 1);
      expect(answered, `${why}: answered`).to.equal(false);
      expect(c.rsts().get(1) ?? c.goaway(), `${why}: refused`).to.equal(ERR.PROTOCOL);
      c.socket.destroy();
    }
    expect(up.seen, 'nothing malformed forwarded').to.have.length(0);
    const ok = await rawH2(p.port);
    ok.socket.write(
      frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, requestBlock(HOST, [literal('te', 'trailers')])),
    );
    await until(() => ok.frames.some((f) => f.type === T.HEADERS && f.stream === 1));
    expect(
      ok.frames.some((f) => f.type === T.HEADERS && f.stream === 1),
      'te: trailers answered',
    ).to.equal(true);
    ok.socket.destroy();
    expect(up.seen).to.have.length(1);
  });

  it('CONNECT is 405 and an unknown expectation 417, as node answered them; 100-continue gets its 100', async () => {
    const connect = await call(p.port, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    expect(connect.status).to.equal(405);
    const odd = await call(p.port, { ':path': '/', expect: 'something' }, { body: 'x' });
    expect(odd.status).to.equal(417);
    const cont = await call(
      p.port,
      { ':method': 'POST', ':path': '/', expect: '100-continue' },
      { body: 'x' },
    );
    expect(cont.informational).to.include(100);
    expect(cont.status).to.equal(200);
    expect(up.seen).to.have.length(1);
  });

  it('a request body the router never reads (a local reply) is dropped: the stream and session still close', async () => {
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    const st = session.request({ ':method': 'POST', ':path': '/', ':authority': 'nowhere.example' });
    st.write(Buffer.alloc(16 * 1024, 'a'));
    const status = await new Promise<number>((r) => st.once('response', (h) => r(Number(h[':status']))));
    expect(status).to.equal(404);
    st.resume();
    st.end(Buffer.alloc(16 * 1024, 'b')); // the rest comes after the answer
    const closed = await new Promise<number>((r) => st.once('close', () => r(st.rstCode ?? -1)));
    expect(closed, 'closed without a reset').to.equal(0);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('session did not close')), 3000);
      session.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  });
});
