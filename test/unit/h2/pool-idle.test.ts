/**
 * The upstream HTTP/2 pool's stream idle timeout (Envoy's stream_idle_timeout, 5 min): one sweep
 * per session instead of a timer per stream; a stream with no frame either way for the timeout
 * fails (ETIMEDOUT_STREAM, before the response: retriable as a reset), one that keeps moving
 * does not. On loopback with a node:http2 server, the timeout shortened.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import type net from 'node:net';
import { H2Pool } from '../../../proxy/h2/pool.js';
import type { Controller } from '../../../proxy/upstream/h1client.js';

const IDLE_MS = 300;

function outcome(
  pool: H2Pool,
  path: string,
): Promise<{ error?: string | undefined; body?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let body = '';
    pool.dispatch(
      { method: 'GET', path, headers: { host: 'up' }, body: null },
      {
        onRequestStart: (_c: Controller) => undefined,
        onResponseStart: () => undefined,
        onResponseData: (_c: Controller, d: Buffer) => void (body += d.toString()),
        onResponseEnd: () => resolve({ body, ms: Date.now() - t0 }),
        onResponseError: (_c: Controller, e: Error) =>
          resolve({ error: (e as { code?: string }).code, ms: Date.now() - t0 }),
      },
    );
  });
}

describe('H2Pool stream idle timeout (one sweep per session)', () => {
  let server: http2.Http2Server;
  let pool: H2Pool;
  let silentClosed: number | null = null;
  before(async () => {
    server = http2.createServer();
    server.on('stream', (stream: http2.ServerHttp2Stream, headers) => {
      stream.on('error', () => undefined);
      if (headers[':path'] === '/silent') {
        stream.on('close', () => (silentClosed = stream.rstCode ?? -1));
        return; // never answers
      }
      // a frame every IDLE_MS / 3, for 3 × IDLE_MS in all: never idle for the timeout
      stream.respond({ ':status': 200 });
      let n = 0;
      const t = setInterval(() => {
        if (stream.destroyed) return clearInterval(t);
        stream.write('x');
        if (++n === 9) {
          clearInterval(t);
          stream.end();
        }
      }, IDLE_MS / 3);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    pool = new H2Pool('127.0.0.1', port, {
      maxConnections: 1,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 60_000,
      maxConcurrentStreams: Infinity,
      streamIdleMs: IDLE_MS,
    });
  });
  after(async () => {
    await pool.destroy();
    server.close();
  });

  it('a stream with no frame for the timeout fails with ETIMEDOUT_STREAM', async () => {
    const r = await outcome(pool, '/silent');
    expect(r.error).to.equal('ETIMEDOUT_STREAM');
    // between one timeout and one timeout plus a sweep interval (IDLE_MS / 5), with slack
    expect(r.ms).to.be.within(IDLE_MS, IDLE_MS * 3);
    // the upstream stream is cancelled, not left open on the session
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(silentClosed).to.equal(http2.constants.NGHTTP2_CANCEL);
  });

  it('a stream whose frames keep coming outlives the timeout', async () => {
    const r = await outcome(pool, '/trickle');
    expect(r.error).to.equal(undefined);
    expect(r.body).to.equal('xxxxxxxxx');
    expect(r.ms).to.be.greaterThan(IDLE_MS * 2);
  });
});
