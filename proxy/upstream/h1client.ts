/**
 * A small HTTP/1.1 client made for the proxy's upstream hop: keep-alive pools per endpoint, no
 * pipelining, one request per connection at a time. Why not undici: undici's generic machinery
 * (Request objects, diagnostics channels, a WebAssembly llhttp) cost ~25 MB of RSS per process
 * and a measurable share of per-request CPU (bench/proxy, ADR 0002); the proxy needs only this.
 *
 * What it knows that a generic client hides, and the router needs:
 *  - whether a failed request went out on a *reused* connection and got no response byte — the
 *    stale keep-alive race behind Istio's intermittent 503 UC, safe to retry once;
 *  - the upstream's `Keep-Alive: timeout=N`: a connection is never reused within 1 s of it.
 *
 * Responses are parsed by h1parse.ts (strict RFC 9112: CRLF only, token names, no control
 * characters, exact head size and field count limits, no conflicting framing). Any protocol
 * error destroys the connection (no response smuggling across requests) and reaches the handler
 * as EPROTO_UPSTREAM (the router's 502 UPE).
 *
 * A connection goes back to the pool only clean: its request fully written, its response fully
 * read, its socket flowing. Each request gets its own Controller, dead once that request ends,
 * so a late pause/resume/abort from a finished exchange cannot reach the next one.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import {
  ChunkedDecoder,
  Framing,
  HeadReader,
  parseResponseHead,
  type FinalHead,
  type Headers,
} from './h1parse.js';
import type { Connect } from './tls.js';
import { validAuthority } from '../../pkg/http/authority.js';
import { FIELD_VALUE_FORBIDDEN } from '../../pkg/http/fields.js';

export type { Headers } from './h1parse.js';

export interface Controller {
  abort(err: Error): void;
  pause(): void;
  resume(): void;
}

/** The callback contract (same names and order as undici's handler API). */
export interface ResponseHandler {
  onRequestStart(c: Controller): void;
  onResponseStart(c: Controller, status: number, headers: Headers): void;
  onResponseData(c: Controller, chunk: Buffer): void;
  onResponseEnd(c: Controller): void;
  onResponseError(c: Controller, err: Error): void;
}

export interface RequestSpec {
  method: string;
  path: string;
  headers: Headers;
  /** null = no body; a Buffer is sent with its length; a stream with the client's length, or chunked. */
  body: Buffer | Readable | null;
}

/**
 * How long a pooled connection may idle when its upstream has not said how long it keeps idle
 * connections. A pooled socket must be closed before the upstream closes it, or a request races
 * with the close (503 UC); many servers close idle sockets after 5 s, so 4 s. An upstream that
 * announces its window (`Keep-Alive: timeout=N`) is trusted up to N - 1 s instead: weft's inbound
 * side announces 60 s, so a mesh hop stays pooled between bursts like Envoy's (1 h) instead of
 * paying a new mTLS handshake every few seconds (the p99 of the mesh benchmark, issue #13).
 */
export const UNANNOUNCED_IDLE_MS = 4_000;

export interface PoolOptions {
  /** Infinity = unlimited. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** The longest a connection may idle in the pool (the DestinationRule's idleTimeout). */
  idleTimeoutMs: number;
  /** The idle limit for upstreams that announce no Keep-Alive timeout (tests shorten it). */
  unannouncedIdleMs?: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
  /** Opens a connection (TLS: proxy/upstream/tls.ts); default plain TCP. */
  connect?: Connect | null;
  /** Source address of the connections (the sidecar's inbound side connects from 127.0.0.6). */
  localAddress?: string | undefined;
}

export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** The connection had served a request before this one. */
    readonly reused = false,
    /** No byte of a response had arrived. */
    readonly beforeResponse = true,
  ) {
    super(message);
  }
}

/** Envoy's stream idle timeout: no byte either way for this long fails the request. */
const STREAM_IDLE_MS = 300_000;

/** One request/response exchange; it is also the handler's Controller, live while it runs. */
class Job implements Controller {
  conn: Conn | null = null;
  /** The whole request (head and body) has been written. */
  sent = false;
  /** Stops streaming the request body (set while a streamed body is being sent). */
  detachBody: (() => void) | null = null;

  constructor(
    readonly spec: RequestSpec,
    readonly handler: ResponseHandler,
  ) {}

  private get live(): Conn | null {
    return this.conn !== null && this.conn.job === this ? this.conn : null;
  }
  abort(err: Error): void {
    this.live?.fail(err);
  }
  pause(): void {
    this.live?.socket.pause();
  }
  resume(): void {
    this.live?.socket.resume();
  }
}

class Conn {
  readonly socket: net.Socket;
  connected = false;
  served = 0;
  /** Don't reuse after this time (upstream Keep-Alive hint). */
  reuseUntil = Infinity;
  /** The upstream said how long it keeps idle connections (reuseUntil bounds the idle time). */
  announced = false;
  idleSince = 0;
  job: Job | null = null;
  private readonly head = new HeadReader();
  private chunks: ChunkedDecoder | null = null;
  private gotBytes = false;
  private started = false;
  private framing: Framing = Framing.None;
  private remaining = 0;
  private keepAlive = true;
  private done = true;

  constructor(private readonly pool: H1Pool) {
    const o = pool.opts;
    // mesh mTLS / TLS origination (proxy/upstream/tls.ts) hands in a TLS socket: ready after the handshake
    const opened = o.connect?.(pool.host, pool.port) ?? {
      socket: net.connect({ host: pool.host, port: pool.port, noDelay: true, localAddress: o.localAddress }),
      readyEvent: 'connect' as const,
    };
    const errorCode = opened.errorCode;
    this.socket = opened.socket;
    this.socket.setTimeout(o.connectTimeoutMs);
    this.socket.once(opened.readyEvent, () => {
      this.connected = true;
      // from now on: Envoy's stream idle timeout (5 min without a byte either way)
      this.socket.setTimeout(STREAM_IDLE_MS);
      this.pool.onConnect(this);
    });
    this.socket.on('timeout', () =>
      this.fail(
        this.connected
          ? new UpstreamError(
              `upstream idle for ${STREAM_IDLE_MS / 1000} s`,
              'ETIMEDOUT_STREAM',
              this.served > 0,
              !this.gotBytes,
            )
          : new UpstreamError(`connect timeout after ${o.connectTimeoutMs} ms`, 'ETIMEDOUT_CONNECT'),
      ),
    );
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = (!this.connected && errorCode?.(e)) || e.code || 'ESOCKET';
      this.fail(new UpstreamError(e.message, code, this.served > 0, !this.gotBytes));
    });
    this.socket.on('close', () => this.onClose());
  }

  send(job: Job): void {
    this.job = job;
    job.conn = this;
    this.gotBytes = false;
    this.started = false;
    this.chunks = null;
    this.done = false;
    this.keepAlive = true;
    job.handler.onRequestStart(job);
    if (this.job !== job) return; // aborted in onRequestStart
    this.writeRequest(job);
  }

  private writeRequest(job: Job): void {
    const { spec } = job;
    const body = spec.body;
    let head = `${spec.method} ${spec.path} HTTP/1.1\r\n`;
    const h = spec.headers;
    let clientLength: string | undefined;
    for (const k in h) {
      const v = h[k];
      if (v === undefined) continue;
      if (k === 'content-length') {
        // the length we promise is the length we send: our own for a buffer or no body
        clientLength = String(v);
        continue;
      }
      if (typeof v === 'string') head += `${k}: ${v}\r\n`;
      else for (const x of v) head += `${k}: ${x}\r\n`;
    }
    const s = this.socket;
    if (body === null) {
      // a request that declared a body we don't have (the router mirrors a streamed request
      // without it) says so: "content-length: 0", never a length nobody will send
      s.write(clientLength === undefined ? `${head}\r\n` : `${head}content-length: 0\r\n\r\n`, 'latin1');
      job.sent = true;
    } else if (Buffer.isBuffer(body)) {
      s.cork();
      s.write(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
      s.write(body);
      s.uncork();
      job.sent = true;
    } else {
      const chunked = clientLength === undefined;
      s.write(
        chunked
          ? `${head}transfer-encoding: chunked\r\n\r\n`
          : `${head}content-length: ${clientLength}\r\n\r\n`,
        'latin1',
      );
      this.streamBody(job, body, chunked);
    }
  }

  /**
   * Copies a streamed request body to the socket, chunk-framed or as is, pausing the body while
   * the socket is backed up. Every write is buffered whatever it returns: a `false` only asks us
   * to stop producing, so a chunk's size line, data and CRLF always go out together.
   */
  private streamBody(job: Job, body: Readable, chunked: boolean): void {
    const s = this.socket;
    let paused = false;
    const onDrain = (): void => {
      paused = false;
      body.resume();
    };
    const onData = (c: Buffer): void => {
      // an empty chunk would be the last-chunk marker "0\r\n\r\n": the body would end early
      if (c.length === 0) return;
      let ok: boolean;
      if (chunked) {
        s.cork();
        s.write(`${c.length.toString(16)}\r\n`, 'latin1');
        s.write(c);
        s.write('\r\n', 'latin1');
        s.uncork();
        // what is still queued after the flush uncork() attempted (a false from a write while
        // corked says nothing about the kernel); past the mark, 'drain' follows once it empties
        ok = s.writableLength < s.writableHighWaterMark;
      } else ok = s.write(c);
      if (!ok && !paused) {
        paused = true;
        body.pause();
        s.once('drain', onDrain);
      }
    };
    const onEnd = (): void => {
      if (chunked) s.write('0\r\n\r\n', 'latin1');
      job.sent = true;
      detach();
    };
    const onError = (e: Error): void =>
      this.fail(new UpstreamError(`request body: ${e.message}`, 'EBODY', this.served > 0, !this.gotBytes));
    const onClose = (): void => {
      if (!job.sent) onError(new Error('the client went away before the end of the body'));
    };
    const detach = (): void => {
      job.detachBody = null;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      s.off('drain', onDrain);
      // undo our own pause only: the body's owner decides what happens to the rest
      if (paused) body.resume();
    };
    job.detachBody = detach;
    if (body.readableEnded) return onError(new Error('the body was already read by someone else'));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    // a body its owner held paused until a connection could take it (the inbound hop does, so
    // no chunk flows to its byte counter alone): a 'data' listener does not restart it
    if (body.isPaused()) body.resume();
  }

  // --- response parsing ---------------------------------------------------------------------
  private onData(d: Buffer): void {
    const job = this.job;
    if (job === null || this.done) {
      // bytes nobody asked for: a misbehaving upstream; never hand them to the next request
      this.socket.destroy();
      return;
    }
    this.gotBytes = true;
    if (this.started) this.onBody(d, job);
    else this.onHead(d, job);
  }

  /** Head bytes: interim (1xx) heads are skipped, the final head starts the response. */
  private onHead(d: Buffer, job: Job): void {
    let bytes = d;
    for (;;) {
      const r = this.head.push(bytes);
      if (r === null) return;
      if ('error' in r) return this.protocolError(r.error);
      const h = parseResponseHead(r.head, job.spec.method);
      if ('error' in h) return this.protocolError(h.error);
      if (!h.interim) return this.start(h, r.rest, job);
      bytes = r.rest;
      if (bytes.length === 0) return;
    }
  }

  private start(h: FinalHead, rest: Buffer, job: Job): void {
    this.started = true;
    this.framing = h.framing;
    this.remaining = h.length;
    this.keepAlive = h.keepAlive;
    if (h.framing === Framing.Chunked) this.chunks = new ChunkedDecoder();
    if (h.keepAliveTimeoutS !== undefined) {
      this.reuseUntil = Date.now() + h.keepAliveTimeoutS * 1000 - 1000;
      this.announced = true;
    }
    job.handler.onResponseStart(job, h.status, h.headers);
    if (this.job !== job) return;
    if (h.framing === Framing.None) return this.complete(rest);
    if (rest.length > 0) this.onBody(rest, job);
  }

  private onBody(d: Buffer, job: Job): void {
    switch (this.framing) {
      case Framing.Length: {
        if (d.length < this.remaining) {
          this.remaining -= d.length;
          return job.handler.onResponseData(job, d);
        }
        const last = d.length === this.remaining ? d : d.subarray(0, this.remaining);
        this.remaining = 0;
        job.handler.onResponseData(job, last);
        if (this.job === job) this.complete(d.subarray(last.length));
        return;
      }
      case Framing.Chunked: {
        const r = this.chunks!.feed(d, (data) => {
          job.handler.onResponseData(job, data);
          return this.job === job;
        });
        if (r.kind === 'error') return this.protocolError(r.error);
        if (r.kind === 'end') this.complete(r.rest);
        return;
      }
      case Framing.UntilClose:
        return job.handler.onResponseData(job, d);
      default:
        this.complete(d);
    }
  }

  /** The response is complete: the connection goes back to the pool if it is clean. */
  private complete(rest: Buffer): void {
    const job = this.job!;
    this.done = true;
    this.job = null;
    this.served++;
    // we never pipeline: extra bytes are garbage
    if (rest.length > 0) this.keepAlive = false;
    // the upstream answered before the whole body went out: it is mid-request, and would read
    // the next request as the rest of this body
    if (!job.sent) this.keepAlive = false;
    job.detachBody?.();
    // the handler may have paused the socket for back-pressure, and its resume may never come
    // (a finished response gets no 'drain'): a pooled socket must flow, to serve and to see FIN
    this.socket.resume();
    job.handler.onResponseEnd(job);
    this.pool.release(this, this.keepAlive);
  }

  private protocolError(msg: string): void {
    this.fail(
      new UpstreamError(`upstream protocol error: ${msg}`, 'EPROTO_UPSTREAM', this.served > 0, false),
    );
  }

  private onEnd(): void {
    const job = this.job;
    if (job !== null && this.started && this.framing === Framing.UntilClose) {
      this.done = true;
      this.job = null;
      job.detachBody?.();
      job.handler.onResponseEnd(job);
    }
    this.socket.destroy();
  }

  fail(err: Error): void {
    const job = this.job;
    this.job = null;
    this.done = true;
    job?.detachBody?.();
    this.socket.destroy();
    job?.handler.onResponseError(job, err);
  }

  private onClose(): void {
    if (this.job !== null) {
      const code = this.connected ? 'ECONNRESET' : 'ECONNREFUSED';
      this.fail(
        new UpstreamError(
          this.connected ? 'upstream closed the connection' : 'connection failed',
          code,
          this.served > 0,
          !this.gotBytes,
        ),
      );
    }
    this.pool.forget(this);
  }
}

/** What HTTP/1.1 forbids in a field value (pkg/http/fields.ts) and in a request target. */
const BAD_VALUE = FIELD_VALUE_FORBIDDEN;
const BAD_TARGET = /[^\x21-\x7e\x80-\xff]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Why a request cannot be written as HTTP/1.1 without changing its meaning; null: it can. The
 * HTTP/2 pool runs it too (h2/pool.ts `unsendableOverH2`): HPACK would carry these bytes, but
 * the peer refuses them (a stream reset the router would blame on the endpoint) or reads them as
 * something else.
 */
export function unsendable(spec: Pick<RequestSpec, 'method' | 'path' | 'headers'>): string | null {
  if (!TOKEN.test(spec.method)) return 'the request method is not an HTTP token';
  if (BAD_TARGET.test(spec.path)) return 'the request target has a character HTTP forbids';
  for (const k in spec.headers) {
    const v = spec.headers[k];
    if (v === undefined) continue;
    if (!TOKEN.test(k)) return `header name ${JSON.stringify(k.slice(0, 64))} is not an HTTP token`;
    const bad = typeof v === 'string' ? BAD_VALUE.test(v) : v.some((x) => BAD_VALUE.test(x));
    if (bad) return `header ${k} has a character HTTP forbids (CR, LF, NUL or above U+00FF)`;
    // the door refuses such a Host (target.ts); only a rewrite or a header op can make one, and
    // the upstream would take it for another host or refuse it: never sent, whatever the protocol
    if (k === 'host' && (typeof v !== 'string' || !validAuthority(v)))
      return 'header host is not uri-host[:port] (a space, userinfo or another character an authority forbids)';
  }
  return null;
}

/** Keep-alive pool to one endpoint. */
export class H1Pool {
  private readonly idle: Conn[] = [];
  private readonly all = new Set<Conn>();
  private readonly queue: Job[] = [];
  private total = 0;
  private closing: (() => void) | null = null;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly opts: PoolOptions,
  ) {
    const shortest = Math.min(opts.idleTimeoutMs, opts.unannouncedIdleMs ?? UNANNOUNCED_IDLE_MS);
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(shortest / 4, 1000)));
    this.sweeper.unref();
  }

  get connections(): number {
    return this.total;
  }

  dispatch(spec: RequestSpec, handler: ResponseHandler): void {
    const job = new Job(spec, handler);
    const bad = unsendable(spec);
    if (bad !== null) {
      // the head is written as latin1: a CR or LF (or a char above U+00FF, whose low byte may be
      // one) in a value would end the header and smuggle another; node:http refuses them too
      process.nextTick(() => handler.onResponseError(job, new UpstreamError(bad, 'EINVALIDHEADER')));
      return;
    }
    const now = Date.now();
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (!this.expired(c, now) && !c.socket.destroyed) return c.send(job);
      c.socket.destroy(); // past its idle limit or the upstream's keep-alive window: don't race its close
    }
    if (this.total < this.opts.maxConnections) {
      this.open(job);
      return;
    }
    this.queue.push(job);
  }

  /** A new connection is up: send the job it was opened for. */
  onConnect(c: Conn): void {
    const job = c.job;
    c.job = null;
    if (job !== null) c.send(job);
  }

  release(c: Conn, reusable: boolean): void {
    const max = this.opts.maxRequestsPerConnection;
    if (!reusable || (max > 0 && c.served >= max) || c.socket.destroyed) {
      c.socket.destroy();
      return;
    }
    const next = this.queue.shift();
    if (next !== undefined) return c.send(next);
    if (this.closing !== null) {
      c.socket.destroy();
      return;
    }
    c.idleSince = Date.now();
    this.idle.push(c);
  }

  private open(job: Job): void {
    this.total++;
    const c = new Conn(this);
    c.job = job; // sent once connected
    this.all.add(c);
  }

  forget(c: Conn): void {
    if (!this.all.delete(c)) return;
    this.total--;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // a slot freed up: open a connection for the next queued request
    if (this.queue.length > 0 && this.total < this.opts.maxConnections && this.closing === null)
      this.open(this.queue.shift()!);
    if (this.closing !== null && this.total === 0) this.closing();
  }

  private expired(c: Conn, now: number): boolean {
    const limit = c.announced
      ? this.opts.idleTimeoutMs
      : Math.min(this.opts.idleTimeoutMs, this.opts.unannouncedIdleMs ?? UNANNOUNCED_IDLE_MS);
    return now - c.idleSince >= limit || now >= c.reuseUntil;
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of [...this.idle]) if (this.expired(c, now)) c.socket.destroy();
  }

  /** Graceful: in-flight requests finish, idle connections close. */
  close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.total === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.closing = resolve;
      for (const c of [...this.idle]) c.socket.destroy();
    });
  }

  destroy(): Promise<void> {
    clearInterval(this.sweeper);
    // a queued job's controller is inert (it has no connection)
    for (const j of this.queue.splice(0))
      j.handler.onResponseError(j, new UpstreamError('pool destroyed', 'EDESTROYED'));
    const done = this.close();
    for (const c of [...this.all]) c.socket.destroy();
    return done;
  }
}
