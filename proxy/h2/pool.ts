/**
 * The upstream HTTP/2 client of one endpoint: a pool of sessions (connections), each carrying
 * up to its stream limit of requests at once, with the same dispatch/handler contract as the
 * HTTP/1 pool (upstream/h1client.ts), so the router's retries, timeouts, outlier recording and
 * circuit breakers apply unchanged. Used when the destination port speaks HTTP/2 (a `grpc`,
 * `http2` or `h2c` Service port, or DestinationRule `h2UpgradePolicy: UPGRADE`; cluster.ts).
 *
 * - Streams per session: the smaller of the DestinationRule's `maxConcurrentStreams` and what
 *   the server's SETTINGS allow; a request finding every session full opens another one while
 *   the cluster's `maxConnections` allows, else waits in order for a stream to free up.
 * - Trailers (gRPC's status) reach the handler's onResponseTrailers before the end.
 * - A session the server sends GOAWAY on takes no new stream and closes once its streams end;
 *   a stream the server refused (REFUSED_STREAM) fails as `EREFUSED_STREAM` before any response
 *   byte (the router's refused-stream retry).
 * - Idle sessions close after the cluster's idle timeout.
 * - Mesh mTLS: the connection comes from the cluster's connector (upstream/tls.ts) offering
 *   `istio-h2` first; the inbound side of a weft sidecar reads the HTTP/2 preface either way.
 */
import type * as Http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import { http2 } from '../../pkg/builtins/index.js';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Controller, Headers, RequestSpec, ResponseHandler } from '../upstream/h1client.js';
import { UpstreamError, unsendable } from '../upstream/h1client.js';
import type { Connect, OpenedConnection } from '../upstream/tls.js';
import { isGrpcRequest } from './grpc.js';
import { ReplayableBody } from './body.js';

/** A request body an HTTP/2 stream takes: besides HTTP/1's, a replayable body written directly. */
export type H2Body = Buffer | Readable | ReplayableBody | null;
export type H2RequestSpec = Omit<RequestSpec, 'body'> & { body: H2Body };

/** In-mesh ALPN for HTTP/2 (Istio's `istio-h2`), then plain `istio` for older peers. */
export const MESH_ALPN_H2 = ['istio-h2', 'istio'];

export interface H2PoolOptions {
  /** Sessions at most (the cluster's maxConnections; Infinity = unlimited). */
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Streams per session at most (DestinationRule maxConcurrentStreams; Infinity = the server's). */
  maxConcurrentStreams: number;
  connect?: Connect | null;
  localAddress?: string | undefined;
  /** Response header list bytes accepted from the upstream (the HTTP/1 response head limit). */
  maxHeaderListSize?: number;
  /** DestinationRule http2KeepAlive: a PING each interval, the session closed without an answer. */
  keepAlive?: { intervalMs: number; timeoutMs: number } | null;
  /** Envoy's stream idle timeout (5 min); tests shorten it. */
  streamIdleMs?: number;
}

const noop = (): void => undefined;

/** Envoy's stream idle timeout: no frame of a stream for this long fails it. */
const STREAM_IDLE_MS = 300_000;
/**
 * The idle timeout is checked by one sweep per session, STREAM_IDLE_TICKS times per timeout, not
 * by a timer per stream (node's stream.setTimeout: a Timeout, a bound function and a listener per
 * stream, refreshed on every frame). A stream fails at the first sweep finding it silent for more
 * than STREAM_IDLE_TICKS sweeps: after one timeout to one timeout plus a sweep interval of silence.
 */
const STREAM_IDLE_TICKS = 5;

/** One request on one stream; it is also the handler's Controller while it runs. */
class Job implements Controller {
  stream: ClientHttp2Stream | null = null;
  session: Session | null = null;
  done = false;
  gotResponse = false;
  /** Idle sweeps since the stream's last frame (either way); reset by every frame. */
  idleTicks = 0;
  constructor(
    readonly pool: H2Pool,
    readonly spec: H2RequestSpec,
    readonly handler: ResponseHandler & {
      onResponseTrailers?: (c: Controller, t: Headers) => void;
    },
  ) {}
  abort(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(http2().constants.NGHTTP2_CANCEL);
    void err;
  }
  pause(): void {
    this.stream?.pause();
  }
  resume(): void {
    this.stream?.resume();
  }
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onResponseError(this, err);
  }
  /** A frame of this stream went either way (the idle sweep's clock). */
  touch(): void {
    this.idleTicks = 0;
  }
}

class Session {
  active = 0;
  ready = false;
  closing = false;
  idleTimer: NodeJS.Timeout | null = null;
  pingTimer: NodeJS.Timeout | null = null;
  sweepTimer: NodeJS.Timeout | null = null;
  /** The server's SETTINGS_MAX_CONCURRENT_STREAMS, read once per SETTINGS frame (not per request). */
  remoteLimit = 100;
  /** The streams in progress (the idle sweep's). */
  readonly jobs = new Set<Job>();
  constructor(readonly s: ClientHttp2Session) {}
  limit(own: number): number {
    return Math.min(own, this.remoteLimit);
  }
}

/** The Job a pool stream carries (one set of handlers for every stream, not six closures each). */
const JOB = Symbol('weft.h2.job');
type JobStream = ClientHttp2Stream & { [JOB]: Job };

function onStreamResponse(this: JobStream, h: Http2.IncomingHttpHeaders): void {
  const job = this[JOB];
  job.idleTicks = 0;
  if (job.done) return;
  const status = Number(h[':status']);
  if (status >= 100 && status < 200) return; // informational: the final head follows
  job.gotResponse = true;
  job.handler.onResponseStart(job, status, asHeaders(h));
}

function onStreamTrailers(this: JobStream, t: Http2.IncomingHttpHeaders): void {
  const job = this[JOB];
  job.idleTicks = 0;
  if (!job.done) job.handler.onResponseTrailers?.(job, asHeaders(t));
}

function onStreamData(this: JobStream, d: Buffer): void {
  const job = this[JOB];
  job.idleTicks = 0;
  if (!job.done) job.handler.onResponseData(job, d);
}

function onStreamEnd(this: JobStream): void {
  const job = this[JOB];
  if (job.done || !job.gotResponse) return;
  // node ends the readable side of a reset stream too: a reset other than NO_ERROR is a cut
  // response, which 'close' reports as one (the client must not see a clean end)
  const rst = this.rstCode;
  if (rst !== undefined && rst !== http2().constants.NGHTTP2_NO_ERROR) return;
  job.done = true;
  job.handler.onResponseEnd(job);
}

function onStreamClose(this: JobStream): void {
  const job = this[JOB];
  job.pool.streamClosed(job, this);
}

export class H2Pool {
  private readonly sessions = new Set<Session>();
  private readonly queue: Job[] = [];
  private closing: (() => void) | null = null;
  /** `:authority` for a request without Host. */
  private readonly authority: string;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly opts: H2PoolOptions,
  ) {
    this.authority = `${host}:${port}`;
  }

  get connections(): number {
    return this.sessions.size;
  }

  dispatch(spec: H2RequestSpec, handler: ResponseHandler): void {
    const job = new Job(this, spec, handler);
    const bad = unsendableOverH2(spec);
    if (bad !== null) {
      // the proxy's own fault, the same for every endpoint: the router answers 503 DPE, no
      // retry, no outlier record (exchange.ts unsendableReply), as for HTTP/1.1
      process.nextTick(() => job.fail(new UpstreamError(bad, 'EINVALIDHEADER')));
      return;
    }
    handler.onRequestStart(job);
    if (job.done) return;
    this.place(job);
  }

  private place(job: Job): void {
    for (const s of this.sessions)
      if (s.ready && !s.closing && s.active < s.limit(this.opts.maxConcurrentStreams))
        return this.start(s, job);
    const opening = [...this.sessions].some((s) => !s.ready && !s.closing);
    if (!opening && this.sessions.size < this.opts.maxConnections) this.open();
    this.queue.push(job);
  }

  private open(): void {
    const authority = `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
    let opened: OpenedConnection | null = null;
    const c = this.opts.connect;
    const createConnection = (): net.Socket => {
      opened =
        c != null
          ? c(this.host, this.port, MESH_ALPN_H2)
          : {
              socket: net.connect({ host: this.host, port: this.port, localAddress: this.opts.localAddress }),
              readyEvent: 'connect',
            };
      return opened.socket;
    };
    const session = http2().connect(authority, {
      createConnection,
      settings: { enablePush: false, maxHeaderListSize: this.opts.maxHeaderListSize ?? 64 * 1024 },
      maxSessionMemory: 10,
    } as Http2.SecureClientSessionOptions);
    const s = new Session(session);
    this.sessions.add(s);
    const timer = setTimeout(
      () => failOpen(new UpstreamError('connect timeout', 'ETIMEDOUT_CONNECT')),
      this.opts.connectTimeoutMs,
    );
    const failOpen = (err: Error): void => {
      clearTimeout(timer);
      if (!this.sessions.delete(s)) return;
      session.destroy();
      // every request waiting for this session fails with the connect error (a connect failure)
      const waiting = this.queue.splice(0);
      for (const j of waiting) j.fail(err);
      this.settle();
    };
    const ready = (): void => {
      clearTimeout(timer);
      s.ready = true;
      this.keepAlive(s);
      this.sweepIdleStreams(s);
      this.drainQueue();
    };
    // the session is usable once the server's SETTINGS arrived (its stream limit is known)
    session.once('remoteSettings', ready);
    session.on('remoteSettings', (settings: Http2.Settings) => {
      s.remoteLimit = settings.maxConcurrentStreams ?? 100;
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      const o = opened as OpenedConnection | null;
      const code = !s.ready
        ? (o?.errorCode?.(err) ?? err.code ?? 'ECONNREFUSED')
        : (err.code ?? 'ECONNRESET');
      if (!s.ready) failOpen(new UpstreamError(err.message, code));
    });
    session.on('goaway', () => {
      s.closing = true;
      this.idleCheck(s);
    });
    session.once('close', () => {
      clearTimeout(timer);
      if (s.idleTimer !== null) clearTimeout(s.idleTimer);
      if (s.pingTimer !== null) clearInterval(s.pingTimer);
      if (s.sweepTimer !== null) clearInterval(s.sweepTimer);
      if (!s.ready) return failOpen(new UpstreamError('connection closed before SETTINGS', 'ECONNRESET'));
      this.sessions.delete(s);
      this.settle();
      if (this.queue.length > 0 && this.closing === null) this.place(this.queue.shift()!);
    });
  }

  /**
   * http2KeepAlive (Envoy's connection_keepalive): a PING each interval while none is
   * outstanding; an answer missing after the timeout means a dead peer or path (a NAT that
   * dropped the flow): the session is destroyed, its streams fail, new requests open another.
   */
  private keepAlive(s: Session): void {
    const ka = this.opts.keepAlive;
    if (ka === null || ka === undefined) return;
    let waiting = false;
    s.pingTimer = setInterval(() => {
      if (waiting || s.s.destroyed) return;
      waiting = true;
      const deadline = setTimeout(() => s.s.destroy(new Error('HTTP/2 keepalive timeout')), ka.timeoutMs);
      const sent = s.s.ping((err) => {
        clearTimeout(deadline);
        waiting = false;
        if (err) s.s.destroy(err);
      });
      if (!sent) {
        clearTimeout(deadline);
        waiting = false;
      }
    }, ka.intervalMs);
    s.pingTimer.unref();
  }

  /** The stream idle timeout of every stream of `s` (STREAM_IDLE_TICKS). */
  private sweepIdleStreams(s: Session): void {
    const idleMs = this.opts.streamIdleMs ?? STREAM_IDLE_MS;
    s.sweepTimer = setInterval(() => {
      for (const job of s.jobs) {
        if (++job.idleTicks <= STREAM_IDLE_TICKS) continue;
        job.fail(new UpstreamError('stream idle timeout', 'ETIMEDOUT_STREAM', false, !job.gotResponse));
        // and the stream is cancelled, so it stops counting against the session's limit
        job.stream?.close(http2().constants.NGHTTP2_CANCEL);
      }
    }, idleMs / STREAM_IDLE_TICKS);
    s.sweepTimer.unref();
  }

  private drainQueue(): void {
    while (this.queue.length > 0) {
      const s = [...this.sessions].find(
        (x) => x.ready && !x.closing && x.active < x.limit(this.opts.maxConcurrentStreams),
      );
      if (s === undefined) {
        if (this.sessions.size < this.opts.maxConnections && ![...this.sessions].some((x) => !x.ready))
          this.open();
        return;
      }
      const job = this.queue.shift()!;
      if (!job.done) this.start(s, job);
    }
  }

  private start(s: Session, job: Job): void {
    if (s.idleTimer !== null) {
      clearTimeout(s.idleTimer);
      s.idleTimer = null;
    }
    const spec = job.spec;
    const headers = requestHead(spec, this.authority);
    const body = spec.body;
    let stream: ClientHttp2Stream;
    try {
      stream = s.s.request(
        headers as unknown as OutgoingHttpHeaders,
        body === null ? END_STREAM : OPEN_STREAM,
      );
    } catch (err) {
      return job.fail(requestRefused(err));
    }
    job.stream = stream;
    job.session = s;
    (stream as JobStream)[JOB] = job;
    s.active++;
    s.jobs.add(job);
    stream.on('response', onStreamResponse);
    stream.on('trailers', onStreamTrailers);
    stream.on('data', onStreamData);
    stream.on('end', onStreamEnd);
    stream.on('error', noop); // reported by 'close' with its code
    stream.once('close', onStreamClose);
    if (body !== null) sendBody(stream, body, job);
  }

  /** A stream of this pool closed: its session's count, the queue, and the job's outcome. */
  streamClosed(job: Job, stream: ClientHttp2Stream): void {
    const s = job.session!;
    s.active--;
    s.jobs.delete(job);
    this.idleCheck(s);
    this.drainQueue();
    if (job.done) return;
    const refused = stream.rstCode === http2().constants.NGHTTP2_REFUSED_STREAM;
    const code = refused ? 'EREFUSED_STREAM' : 'ECONNRESET';
    job.fail(
      new UpstreamError(`upstream stream closed (code ${stream.rstCode})`, code, false, !job.gotResponse),
    );
  }

  private idleCheck(s: Session): void {
    if (s.active > 0) return;
    if (s.closing || this.closing !== null) {
      s.s.close();
      return;
    }
    if (s.idleTimer === null && Number.isFinite(this.opts.idleTimeoutMs)) {
      s.idleTimer = setTimeout(() => s.s.close(), this.opts.idleTimeoutMs);
      s.idleTimer.unref();
    }
  }

  private settle(): void {
    if (this.closing !== null && this.sessions.size === 0) this.closing();
  }

  /** Graceful: streams in progress finish, then the sessions close. */
  close(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.closing = resolve;
      for (const s of this.sessions) this.idleCheck(s);
    });
  }

  destroy(): Promise<void> {
    for (const j of this.queue.splice(0)) j.fail(new UpstreamError('pool destroyed', 'EDESTROYED'));
    const done = this.close();
    for (const s of [...this.sessions]) s.s.destroy();
    return done;
  }
}

/** request() only reads its options. */
const END_STREAM: Http2.ClientSessionRequestOptions = Object.freeze({ endStream: true });
const OPEN_STREAM: Http2.ClientSessionRequestOptions = Object.freeze({ endStream: false });

/**
 * The request's HEADERS as node's flat raw list (`[name, value, ...]`, which request() takes as
 * is, without the null-prototype copy it makes of a header object): the pseudo-header fields,
 * then every field but `host` (it became `:authority`), a list value one field per element.
 * gRPC servers want `te: trailers` (a hop-by-hop field the router removed).
 */
export function requestHead(spec: H2RequestSpec, fallbackAuthority: string): string[] {
  const h = spec.headers;
  const grpc = isGrpcRequest(h as never);
  // `:scheme` given (what node would add: the session's URL is http:), so node takes this list
  // as is instead of copying it into a new one with the missing pseudo-header in front
  const out = [
    ':method',
    spec.method,
    ':scheme',
    'http',
    ':path',
    spec.path,
    ':authority',
    String(h.host ?? fallbackAuthority),
  ];
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k === 'host' || k.charCodeAt(0) === 58 /* : */ || (grpc && k === 'te')) continue;
    if (Array.isArray(v)) for (const one of v) out.push(k, String(one));
    else out.push(k, String(v));
  }
  if (grpc) out.push('te', 'trailers');
  return out;
}

/** Fields RFC 9113 §8.2.2 forbids in HTTP/2 (`te` but for `trailers`): node refuses to send them. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Why a request cannot be sent on an HTTP/2 stream; null: it can. What HTTP/1.1 cannot carry
 * (`unsendable`: CR, LF, NUL, characters above U+00FF, a name or method that is no token, an
 * invalid Host, which becomes `:authority`), and the connection-specific fields HTTP/2 forbids
 * (the router strips them; only a header op can add one). Node would send some of these and the
 * server reset the stream (PROTOCOL_ERROR) or drop the field; that is no fault of the endpoint.
 */
export function unsendableOverH2(spec: Pick<RequestSpec, 'method' | 'path' | 'headers'>): string | null {
  const h1 = unsendable(spec);
  if (h1 !== null) return h1;
  const grpc = isGrpcRequest(spec.headers as never);
  for (const k in spec.headers) {
    const v = spec.headers[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    const te = name === 'te' && !grpc && !(typeof v === 'string' && v.toLowerCase() === 'trailers');
    if (CONNECTION_SPECIFIC.has(name) || te)
      return `header ${name} is connection-specific: HTTP/2 forbids it (RFC 9113 §8.2.2)`;
  }
  return null;
}

/** node's own checks of a request head throw these: a head it will not send, not a broken peer. */
const REFUSED_HEAD_CODES: ReadonlySet<string> = new Set([
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_HTTP2_INVALID_PSEUDOHEADER',
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
]);

/**
 * What a throw of `session.request()` means: a head node refuses (EINVALIDHEADER, named by its
 * code: node's messages can quote the value, which may be a credential), or a session that
 * cannot take a stream (the endpoint's side: EPROTO_UPSTREAM, as before).
 */
function requestRefused(err: unknown): UpstreamError {
  const code = (err as { code?: string }).code ?? '';
  if (REFUSED_HEAD_CODES.has(code))
    return new UpstreamError(`the HTTP/2 request head cannot be sent (${code})`, 'EINVALIDHEADER');
  return new UpstreamError((err as Error).message, 'EPROTO_UPSTREAM');
}

/**
 * node's header object as the handler's, not copied: its pseudo-header fields (`:status`) stay
 * in it, and every consumer already drops `:` names when it forwards (withoutHopByHop,
 * forwardableTrailers), so a copy without them per head and per trailer section bought nothing.
 */
function asHeaders(h: Http2.IncomingHttpHeaders): Headers {
  return h as Headers;
}

/** Streams the request body with back-pressure; an error in it cancels the stream. */
function sendBody(stream: ClientHttp2Stream, body: NonNullable<H2Body>, job: Job): void {
  if (Buffer.isBuffer(body)) {
    stream.end(body);
    return;
  }
  if (body instanceof ReplayableBody) return body.streamTo(stream, job);
  body.on('error', () => job.abort(new Error('request body failed')));
  body.on('data', () => job.touch()); // the idle timeout counts what the client sends, too
  body.pipe(stream);
  if (body.isPaused()) body.resume();
}
