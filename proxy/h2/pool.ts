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
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Controller, Headers, RequestSpec, ResponseHandler } from '../upstream/h1client.js';
import { UpstreamError, unsendable } from '../upstream/h1client.js';
import type { Connect, OpenedConnection } from '../upstream/tls.js';
import { isGrpcRequest } from './grpc.js';

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
}

/** Envoy's stream idle timeout: no frame of a stream for this long fails it. */
const STREAM_IDLE_MS = 300_000;

/** One request on one stream; it is also the handler's Controller while it runs. */
class Job implements Controller {
  stream: ClientHttp2Stream | null = null;
  done = false;
  gotResponse = false;
  constructor(
    readonly spec: RequestSpec,
    readonly handler: ResponseHandler & {
      onResponseTrailers?: (c: Controller, t: Headers) => void;
    },
  ) {}
  abort(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(http2.constants.NGHTTP2_CANCEL);
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
}

class Session {
  active = 0;
  ready = false;
  closing = false;
  idleTimer: NodeJS.Timeout | null = null;
  pingTimer: NodeJS.Timeout | null = null;
  constructor(readonly s: ClientHttp2Session) {}
  limit(own: number): number {
    const remote = this.s.remoteSettings?.maxConcurrentStreams ?? 100;
    return Math.min(own, remote);
  }
}

export class H2Pool {
  private readonly sessions = new Set<Session>();
  private readonly queue: Job[] = [];
  private closing: (() => void) | null = null;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly opts: H2PoolOptions,
  ) {}

  get connections(): number {
    return this.sessions.size;
  }

  dispatch(spec: RequestSpec, handler: ResponseHandler): void {
    const job = new Job(spec, handler);
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
    const session = http2.connect(authority, {
      createConnection,
      settings: { enablePush: false, maxHeaderListSize: this.opts.maxHeaderListSize ?? 64 * 1024 },
      maxSessionMemory: 10,
    } as http2.SecureClientSessionOptions);
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
      this.drainQueue();
    };
    // the session is usable once the server's SETTINGS arrived (its stream limit is known)
    session.once('remoteSettings', ready);
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
    const headers = requestHead(spec, `${this.host}:${this.port}`);
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
    s.active++;
    stream.setTimeout(STREAM_IDLE_MS, () =>
      job.fail(new UpstreamError('stream idle timeout', 'ETIMEDOUT_STREAM', false, !job.gotResponse)),
    );
    stream.on('response', (h) => {
      if (job.done) return;
      const status = Number(h[':status']);
      if (status >= 100 && status < 200) return; // informational: the final head follows
      job.gotResponse = true;
      job.handler.onResponseStart(job, status, withoutPseudo(h));
    });
    stream.on('trailers', (t) => {
      if (!job.done) job.handler.onResponseTrailers?.(job, withoutPseudo(t));
    });
    stream.on('data', (d: Buffer) => {
      if (!job.done) job.handler.onResponseData(job, d);
    });
    stream.on('end', () => {
      if (job.done || !job.gotResponse) return;
      // node ends the readable side of a reset stream too: a reset other than NO_ERROR is a cut
      // response, which 'close' reports as one (the client must not see a clean end)
      const rst = stream.rstCode;
      if (rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR) return;
      job.done = true;
      job.handler.onResponseEnd(job);
    });
    stream.on('error', () => undefined); // reported by 'close' with its code
    stream.once('close', () => {
      s.active--;
      this.idleCheck(s);
      this.drainQueue();
      if (job.done) return;
      const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
      const code = refused ? 'EREFUSED_STREAM' : 'ECONNRESET';
      job.fail(
        new UpstreamError(`upstream stream closed (code ${stream.rstCode})`, code, false, !job.gotResponse),
      );
    });
    if (body !== null) sendBody(stream, body, job);
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
const END_STREAM: http2.ClientSessionRequestOptions = Object.freeze({ endStream: true });
const OPEN_STREAM: http2.ClientSessionRequestOptions = Object.freeze({ endStream: false });

/**
 * The request's HEADERS as node's flat raw list (`[name, value, ...]`, which request() takes as
 * is, without the null-prototype copy it makes of a header object): the pseudo-header fields,
 * then every field but `host` (it became `:authority`), a list value one field per element.
 * gRPC servers want `te: trailers` (a hop-by-hop field the router removed).
 */
export function requestHead(spec: RequestSpec, fallbackAuthority: string): string[] {
  const h = spec.headers;
  const grpc = isGrpcRequest(h as never);
  const out = [':method', spec.method, ':path', spec.path, ':authority', String(h.host ?? fallbackAuthority)];
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

function withoutPseudo(h: http2.IncomingHttpHeaders): Headers {
  const out: Headers = {};
  for (const k in h) if (k.charCodeAt(0) !== 58) out[k] = h[k] as string | string[];
  return out;
}

/** Streams the request body with back-pressure; an error in it cancels the stream. */
function sendBody(stream: ClientHttp2Stream, body: Buffer | Readable, job: Job): void {
  if (Buffer.isBuffer(body)) {
    stream.end(body);
    return;
  }
  body.on('error', () => job.abort(new Error('request body failed')));
  body.pipe(stream);
  if (body.isPaused()) body.resume();
}
