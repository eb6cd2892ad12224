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
 * Response framing follows RFC 9112 §6.3 strictly: Transfer-Encoding with Content-Length, an
 * invalid or conflicting Content-Length, an oversized head or bytes after a complete response
 * are protocol errors and the connection is destroyed (no response smuggling across requests).
 */
import net from 'node:net';
import type { Readable } from 'node:stream';

export type Headers = Record<string, string | string[] | undefined>;

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
  body: Buffer | Readable | null;
}

export interface PoolOptions {
  /** Infinity = unlimited. */
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
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

const MAX_HEAD_BYTES = 64 * 1024;
const STREAM_IDLE_MS = 300_000;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const enum Body {
  None,
  Length,
  Chunked,
  UntilClose,
}
const enum Chunk {
  Size,
  Data,
  DataCrlf,
  Trailers,
}

/** One request/response exchange on a connection. */
interface Job {
  spec: RequestSpec;
  handler: ResponseHandler;
}

class Conn implements Controller {
  readonly socket: net.Socket;
  connected = false;
  served = 0;
  /** Don't reuse after this time (upstream Keep-Alive hint). */
  reuseUntil = Infinity;
  idleSince = 0;
  job: Job | null = null;
  private head: Buffer | null = null;
  private gotBytes = false;
  private started = false;
  private bodyMode = Body.None;
  private remaining = 0;
  private chunkState = Chunk.Size;
  private sizeLine = '';
  private keepAlive = true;
  private done = true;

  constructor(private readonly pool: H1Pool) {
    const o = pool.opts;
    this.socket = net.connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      localAddress: o.localAddress,
    });
    this.socket.setTimeout(o.connectTimeoutMs);
    this.socket.once('connect', () => {
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
    this.socket.on('error', (e: NodeJS.ErrnoException) =>
      this.fail(new UpstreamError(e.message, e.code ?? 'ESOCKET', this.served > 0, !this.gotBytes)),
    );
    this.socket.on('close', () => this.onClose());
  }

  // --- Controller -------------------------------------------------------------------------
  abort(err: Error): void {
    this.fail(err);
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }

  send(job: Job): void {
    this.job = job;
    this.head = null;
    this.gotBytes = false;
    this.started = false;
    this.done = false;
    this.keepAlive = true;
    job.handler.onRequestStart(this);
    if (this.job !== job) return; // aborted in onRequestStart
    const { spec } = job;
    const body = spec.body;
    const streamed = body !== null && !Buffer.isBuffer(body);
    let head = `${spec.method} ${spec.path} HTTP/1.1\r\n`;
    const h = spec.headers;
    let hasLength = false;
    for (const k in h) {
      const v = h[k];
      if (v === undefined) continue;
      if (k === 'content-length') {
        // the length we send must be the length we have (buffered), or the client's (streamed)
        if (Buffer.isBuffer(body)) continue;
        hasLength = true;
      }
      if (typeof v === 'string') head += `${k}: ${v}\r\n`;
      else for (const x of v) head += `${k}: ${x}\r\n`;
    }
    const s = this.socket;
    if (Buffer.isBuffer(body)) {
      head += `content-length: ${body.length}\r\n\r\n`;
      s.cork();
      s.write(head, 'latin1');
      s.write(body);
      s.uncork();
    } else if (streamed) {
      const chunked = !hasLength;
      s.write(chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`, 'latin1');
      this.streamBody(body, chunked, job);
    } else {
      s.write(`${head}\r\n`, 'latin1');
    }
  }

  private streamBody(body: Readable, chunked: boolean, job: Job): void {
    const s = this.socket;
    const onData = (c: Buffer): void => {
      if (this.job !== job) return;
      const ok = chunked
        ? s.write(`${c.length.toString(16)}\r\n`) && s.write(c) && s.write('\r\n')
        : s.write(c);
      if (!ok) {
        body.pause();
        s.once('drain', () => body.resume());
      }
    };
    body.on('data', onData);
    body.once('end', () => {
      if (this.job === job && chunked) s.write('0\r\n\r\n');
    });
    body.once('error', (e) =>
      this.fail(new UpstreamError(`request body: ${e.message}`, 'EBODY', this.served > 0, !this.gotBytes)),
    );
  }

  // --- response parsing ---------------------------------------------------------------------
  private onData(d: Buffer): void {
    if (this.job === null || this.done) {
      // bytes nobody asked for: a misbehaving upstream; never hand them to the next request
      this.socket.destroy();
      return;
    }
    this.gotBytes = true;
    if (!this.started) {
      const buf = this.head === null ? d : Buffer.concat([this.head, d]);
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) return void this.protocolError('response head larger than 64 KiB');
        this.head = buf;
        return;
      }
      this.head = null;
      if (!this.parseHead(buf.toString('latin1', 0, end))) return;
      const rest = buf.subarray(end + 4);
      if (!this.started) {
        // an interim 1xx response: parse what follows as a new head
        if (rest.length > 0) this.onData(rest);
        return;
      }
      if (this.bodyMode === Body.None) return this.complete(rest);
      if (rest.length > 0) this.body(rest);
      return;
    }
    this.body(d);
  }

  /** Returns false if the connection was failed. */
  private parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (m === null) return this.protocolError(`bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const status = Number(m[2]);
    if (status >= 100 && status < 200) {
      if (status === 101) return this.protocolError('unexpected 101 Switching Protocols');
      return true; // 100 Continue / 103 Early Hints: skip
    }
    const headers: Headers = {};
    let te: string | undefined;
    let cl: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9)
        return this.protocolError('malformed header line');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (cl !== undefined && cl !== value))
          return this.protocolError('invalid or conflicting content-length');
        cl = value;
      } else if (name === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`;
      else if (name === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(value)) this.keepAlive = false;
      else if (name === 'keep-alive') this.keepAliveHint(value);
      const cur = headers[name];
      headers[name] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
    }
    if (m[1] === '0' && !/keep-alive/i.test(String(headers.connection ?? ''))) this.keepAlive = false;
    const method = this.job!.spec.method;
    if (method === 'HEAD' || status === 204 || status === 304) this.bodyMode = Body.None;
    else if (te !== undefined) {
      if (cl !== undefined) return this.protocolError('both transfer-encoding and content-length');
      if (/(^|,)\s*chunked\s*$/i.test(te)) {
        this.bodyMode = Body.Chunked;
        this.chunkState = Chunk.Size;
        this.sizeLine = '';
      } else {
        this.bodyMode = Body.UntilClose;
        this.keepAlive = false;
      }
    } else if (cl !== undefined) {
      this.remaining = Number(cl);
      this.bodyMode = this.remaining === 0 ? Body.None : Body.Length;
    } else {
      this.bodyMode = Body.UntilClose;
      this.keepAlive = false;
    }
    this.started = true;
    this.job!.handler.onResponseStart(this, status, headers);
    return this.job !== null;
  }

  private keepAliveHint(value: string): void {
    const t = /timeout=(\d+)/i.exec(value);
    if (t) this.reuseUntil = Date.now() + Number(t[1]) * 1000 - 1000;
  }

  private body(d: Buffer): void {
    const job = this.job;
    if (job === null) return;
    switch (this.bodyMode) {
      case Body.Length: {
        if (d.length < this.remaining) {
          this.remaining -= d.length;
          job.handler.onResponseData(this, d);
          return;
        }
        const last = d.length === this.remaining ? d : d.subarray(0, this.remaining);
        this.remaining = 0;
        job.handler.onResponseData(this, last);
        if (this.job === job) this.complete(d.subarray(last.length));
        return;
      }
      case Body.Chunked:
        return this.chunked(d, job);
      case Body.UntilClose:
        job.handler.onResponseData(this, d);
        return;
      default:
        this.complete(d);
    }
  }

  private chunked(d: Buffer, job: Job): void {
    let i = 0;
    while (i < d.length && this.job === job) {
      switch (this.chunkState) {
        case Chunk.Size:
        case Chunk.Trailers: {
          const nl = d.indexOf(10, i);
          const part = d.toString('latin1', i, nl < 0 ? d.length : nl);
          this.sizeLine += part;
          if (this.sizeLine.length > 4096) return void this.protocolError('chunk size line too long');
          if (nl < 0) return;
          i = nl + 1;
          const line = this.sizeLine.replace(/\r$/, '');
          this.sizeLine = '';
          if (this.chunkState === Chunk.Trailers) {
            if (line === '') return this.complete(d.subarray(i));
            continue; // trailers are dropped (HTTP/1.1 → HTTP/1.1 without TE: trailers)
          }
          const hex = line.split(';')[0]!.trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return void this.protocolError('bad chunk size');
          this.remaining = parseInt(hex, 16);
          this.chunkState = this.remaining === 0 ? Chunk.Trailers : Chunk.Data;
          break;
        }
        case Chunk.Data: {
          const n = Math.min(this.remaining, d.length - i);
          job.handler.onResponseData(this, d.subarray(i, i + n));
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.chunkState = Chunk.DataCrlf;
          break;
        }
        case Chunk.DataCrlf: {
          const c = d[i]!;
          i++;
          if (c === 10) this.chunkState = Chunk.Size;
          else if (c !== 13) return void this.protocolError('missing CRLF after chunk');
          break;
        }
      }
    }
  }

  private complete(rest: Buffer): void {
    const job = this.job!;
    this.done = true;
    this.job = null;
    this.served++;
    if (rest.length > 0) this.keepAlive = false; // we never pipeline: extra bytes are garbage
    job.handler.onResponseEnd(this);
    this.pool.release(this, this.keepAlive);
  }

  private protocolError(msg: string): false {
    this.fail(
      new UpstreamError(`upstream protocol error: ${msg}`, 'EPROTO_UPSTREAM', this.served > 0, false),
    );
    return false;
  }

  private onEnd(): void {
    if (this.job !== null && this.started && this.bodyMode === Body.UntilClose) {
      this.done = true;
      const job = this.job;
      this.job = null;
      job.handler.onResponseEnd(this);
    }
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const job = this.job;
    this.job = null;
    this.done = true;
    this.socket.destroy();
    job?.handler.onResponseError(this, err);
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
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(opts.idleTimeoutMs, 1000)));
    this.sweeper.unref();
  }

  get connections(): number {
    return this.total;
  }

  dispatch(spec: RequestSpec, handler: ResponseHandler): void {
    const job: Job = { spec, handler };
    const now = Date.now();
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (now < c.reuseUntil && !c.socket.destroyed) return c.send(job);
      c.socket.destroy(); // past the upstream's keep-alive window: don't race its close
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

  private sweep(): void {
    const cutoff = Date.now() - this.opts.idleTimeoutMs;
    for (const c of [...this.idle])
      if (c.idleSince < cutoff || Date.now() >= c.reuseUntil) c.socket.destroy();
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
    for (const j of this.queue.splice(0))
      j.handler.onResponseError(NOOP_CONTROLLER, new UpstreamError('pool destroyed', 'EDESTROYED'));
    const done = this.close();
    for (const c of [...this.all]) c.socket.destroy();
    return done;
  }
}

const NOOP_CONTROLLER: Controller = { abort() {}, pause() {}, resume() {} };
