/**
 * HTTP/2 on the proxy's downstream listeners (outbound and gateway in server.ts, the sidecar's
 * inbound hop in inbound/http.ts): every connection a listener's node:http server is given is
 * first looked at; one that opens with the HTTP/2 connection preface (`PRI * HTTP/2.0...`: h2c
 * with prior knowledge, or h2 after TLS ALPN, where the preface comes first too) is served by
 * a node:http2 server instead, whose streams reach the same request handler on node's raw
 * stream API: the stream itself is the request, a small object writing to it the response
 * (h2/stream-io.ts; node's compatibility API, an Http2ServerRequest/Response pair per request,
 * cost more than the router itself); `adaptRequest` fills in what differs from HTTP/1.
 *
 * Limits, set explicitly because node:http2's own have had CVEs in exactly these places
 * (docs/http2-grpc.md, test/unit/h2/floods.test.ts):
 *  - streams at once per connection: 100 (SETTINGS_MAX_CONCURRENT_STREAMS; more are refused);
 *  - header list: the HTTP/1 limits (60 KiB, 100 fields), so a request one protocol refuses the
 *    other refuses too. The size is advertised (SETTINGS_MAX_HEADER_LIST_SIZE) but nghttp2 does
 *    not enforce it, so each request's list is measured (RFC 7541 §4.1) and over it answered 431
 *    before routing; a CONTINUATION flood is bounded by nghttp2's CONTINUATION count;
 *  - a header block's deadline: HTTP/1's headers timeout, from the HEADERS frame that began it
 *    (the session idle timer cannot bound it: any frame, a PING or a CONTINUATION, resets it);
 *  - rapid reset (CVE-2023-44487): nghttp2's stream-reset rate limit, burst 200 then 50/s, past
 *    which the session is closed with ENHANCE_YOUR_CALM;
 *  - SETTINGS and PING floods: at most 32 settings per frame, 10 unanswered pings; nghttp2
 *    closes a session that leaves over 1000 ACKs unread;
 *  - session memory: 10 MB per connection (node counts header tables and buffered frames);
 *  - invalid frames and refused streams: a session is closed after 100 of either;
 *  - the first bytes: a connection that sends nothing that decides within the headers timeout
 *    is handed to HTTP/1, whose header timeout then answers it.
 */
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type * as Http2 from 'node:http2';
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { http2 } from '../../pkg/builtins/index.js';
import net from 'node:net';
import { answeredBeforeRouting, H2StreamResponse, streamRequest, type H2StreamRequest } from './stream-io.js';

const noop = (): void => undefined;

/** The client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const H2_MAX_CONCURRENT_STREAMS = 100;
export const H2_MAX_SESSION_MEMORY_MB = 10;
export const H2_RESET_BURST = 200;
export const H2_RESET_RATE = 50;

/** 'h2': the preface; 'h1': anything else; 'more': a prefix of the preface so far. */
export function prefaceVerdict(buf: Buffer): 'h2' | 'h1' | 'more' {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, n).compare(H2_PREFACE, 0, n) !== 0) return 'h1';
  return n === H2_PREFACE.length ? 'h2' : 'more';
}

/** Why a request or session was refused here; the listener counts it like HTTP/1's clientError. */
export type H2Refusal = (status: 408 | 431, code: string, conn: net.Socket) => void;

export interface H2Limits {
  maxHeaderBytes: number;
  maxHeaderFields: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  /** Tests lower them to provoke each limit with few frames. */
  maxConcurrentStreams?: number;
  maxSessionMemoryMb?: number;
  resetBurst?: number;
  resetRate?: number;
}

export function h2ServerOptions(l: H2Limits): Http2.ServerOptions {
  return {
    maxSessionMemory: l.maxSessionMemoryMb ?? H2_MAX_SESSION_MEMORY_MB,
    // header fields plus the four request pseudo-headers
    maxHeaderListPairs: l.maxHeaderFields + 4,
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    streamResetBurst: l.resetBurst ?? H2_RESET_BURST,
    streamResetRate: l.resetRate ?? H2_RESET_RATE,
    settings: {
      maxConcurrentStreams: l.maxConcurrentStreams ?? H2_MAX_CONCURRENT_STREAMS,
      maxHeaderListSize: l.maxHeaderBytes,
      enablePush: false,
    },
  } as Http2.ServerOptions;
}

/**
 * A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2, RFC 7541
 * §4.1): each field's name and value octets plus 32, pseudo-header fields included. node gives
 * HTTP/2 field values as latin1 strings: one character per octet.
 */
export function headerListBytes(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    n += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + 32;
  return n;
}

/** 431 with flag DPE, as HTTP/1's oversized heads are answered (the upstream never sees it). */
function refuseOversized(res: H2StreamResponse): void {
  const body = 'downstream protocol error: header list too large [flag DPE]\n';
  res.writeHead(431, { 'content-type': 'text/plain', 'x-weft-response-flags': 'DPE' });
  res.end(body);
}

/**
 * HTTP/1's headers timeout for HTTP/2: a header block begun (nghttp2's last processed stream id
 * moved past the last stream whose headers completed) must complete within `timeoutMs`, else the
 * session is closed (GOAWAY, destroyed `timeoutMs` later). Checked every `min(timeoutMs, 1 s)`, as node:http
 * checks its own (`connectionsCheckingInterval`); no frame extends it.
 */
function enforceHeadersDeadline(session: Http2Session, timeoutMs: number, onTimeout: () => void): void {
  if (timeoutMs <= 0) return;
  let completed = 0;
  let pending = 0;
  let pendingSince = 0;
  session.on('stream', (stream: Http2.ServerHttp2Stream) => {
    completed = Math.max(completed, stream.id ?? 0);
  });
  const check = (): void => {
    if (session.destroyed) return void clearInterval(timer);
    const begun = session.state.lastProcStreamID ?? 0;
    if (begun <= completed) return void (pending = 0);
    const now = Date.now();
    if (pending !== begun) [pending, pendingSince] = [begun, now];
    else if (now - pendingSince >= timeoutMs) {
      clearInterval(timer);
      onTimeout();
      // GOAWAY, then as long again for streams in progress to finish (a block nghttp2 refused
      // never completes either; its client's other streams should not die at once); nghttp2
      // keeps the unfinished block open, so the end is a destroy
      session.close();
      setTimeout(() => session.destroy(), timeoutMs).unref();
    }
  };
  const timer = setInterval(check, Math.min(timeoutMs, 1000));
  timer.unref();
  session.once('close', () => clearInterval(timer));
}

/** The HTTP/2 sessions open on each listener's server (a drain sends them GOAWAY). */
const serverSessions = new WeakMap<HttpServer, Set<Http2Session>>();

/**
 * Drain: every HTTP/2 session of `server` gets a GOAWAY; streams in progress finish, then the
 * connection closes (HTTP/1's `Connection: close` for a multiplexed connection).
 */
export function goAwayH2(server: HttpServer): void {
  for (const s of serverSessions.get(server) ?? []) if (!s.closed) s.close();
}

/** The real socket of each downstream h2 session (node gives requests a proxy object instead). */
const sessionSockets = new WeakMap<Http2Session, net.Socket>();

/** What the router's HTTP/2 request and response (h2/stream-io.ts) carry that node:http's do not. */
interface OnH2Stream {
  readonly stream: ServerHttp2Stream;
}

/**
 * True for the router's request or response of an HTTP/2 stream: typed as node:http's (the shape
 * the router reads, see serveH2Too), they are the stream and an H2StreamResponse (h2/stream-io.ts).
 */
function onH2Stream<T extends IncomingMessage | ServerResponse>(m: T): m is T & OnH2Stream {
  return 'stream' in m && m.stream !== undefined;
}

/**
 * The connection a request came on: for HTTP/1 `req.socket`, for HTTP/2 the session's socket
 * (the object the listeners keyed their per-connection state on: TLS server, peer, original
 * destination). An HTTP/2 request's `req.socket` is node's stand-in for the session's socket.
 */
export function connectionOf(req: IncomingMessage): net.Socket {
  if (!onH2Stream(req)) return req.socket;
  return sessionSockets.get(req.stream.session!) ?? req.socket;
}

/**
 * Answers with a head alone that ends the stream (HTTP/2 HEADERS with END_STREAM): a gRPC
 * trailers-only response, which writeHead and end() cannot send (every HTTP/2 response waits for
 * trailers, so end() without them adds an empty DATA frame, and gRPC clients then miss the
 * status). False when `res` is not HTTP/2 or already answered: the caller writes the head and
 * ends as for HTTP/1.
 */
export function endWithHead(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
): boolean {
  if (!onH2Stream(res)) return false;
  const stream = res.stream;
  if (res.headersSent || stream.headersSent || stream.destroyed) return false;
  try {
    stream.respond({ ...headers, ':status': status }, { endStream: true });
  } catch {
    stream.close(http2().constants.NGHTTP2_INTERNAL_ERROR);
  }
  return true;
}

/** True for a request that arrived over HTTP/2. */
export function isH2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/**
 * True when the request has a body still to read although it declares no length: an HTTP/2
 * request whose HEADERS did not end the stream (gRPC sends no content-length).
 */
export function hasUndeclaredBody(req: IncomingMessage): boolean {
  return onH2Stream(req) && !req.stream.endAfterHeaders;
}

/**
 * The compatibility request as the router reads it: `host` from `:authority` (RFC 9113 §8.3.1:
 * it wins over a `host` field), also in rawHeaders where the router looks for Host values.
 * Pseudo-header fields stay in `headers` (node reads method and path from them); the router's
 * forwarding strips every `:` name.
 */
function adaptRequest(req: H2StreamRequest): void {
  const authority = req.headers[':authority'];
  if (typeof authority !== 'string') return; // no Host at all: the router's 400, as for HTTP/1
  req.headers.host = authority;
  const raw = req.rawHeaders;
  // HTTP/2 field names arrive lower-case (nghttp2 refuses others, RFC 9113 §8.2.1)
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i] === 'host') raw.splice(i, 2);
  raw.push('host', authority);
}

/**
 * Makes `server` (a listener's node:http server) serve HTTP/2 too: its 'connection' handling is
 * wrapped so each connection's first bytes choose node:http (as before) or a node:http2 server
 * calling the same `onRequest`. The http2 server (and node:http2 itself) is made on the first
 * HTTP/2 connection: a listener that only ever sees HTTP/1 never loads it (ADR 0009).
 */
export function serveH2Too(
  server: HttpServer,
  limits: H2Limits,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onRefused: H2Refusal = () => undefined,
): void {
  const sessions = new Set<Http2Session>();
  serverSessions.set(server, sessions);
  const opening: { socket: net.Socket | null } = { socket: null };
  let h2: Http2.Http2Server | null = null;
  const h1 = server.listeners('connection') as ((s: net.Socket) => void)[];
  server.removeAllListeners('connection');
  const toH1 = (s: net.Socket): void => {
    for (const fn of h1) fn.call(server, s);
  };
  const toH2 = (s: net.Socket): void => {
    h2 ??= createH2Server(limits, onRequest, onRefused, sessions, opening);
    opening.socket = s;
    try {
      h2.emit('connection', s);
    } finally {
      opening.socket = null;
    }
  };
  server.on('connection', (s: net.Socket) => choose(s, limits.headersTimeoutMs, toH1, toH2));
}

/** The node:http2 server behind a listener: streams to `onRequest`, sessions into `sessions`. */
function createH2Server(
  limits: H2Limits,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  onRefused: H2Refusal,
  sessions: Set<Http2Session>,
  opening: { socket: net.Socket | null },
): Http2.Http2Server {
  const h2 = http2().createServer(h2ServerOptions(limits));
  // the raw stream API (h2/stream-io.ts), not node's compatibility 'request': no
  // Http2ServerRequest/Response pair per request
  h2.on(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      stream.on('error', noop); // its 'close' tells the router (rstCode), as the compatibility API
      // reset, or its session closed (a flood's GOAWAY), before it got here: nothing to answer
      if (stream.destroyed || stream.session === undefined) return;
      if (headerListBytes(raw) > limits.maxHeaderBytes) {
        onRefused(
          431,
          'H2_HEADER_LIST_TOO_LARGE',
          sessionSockets.get(stream.session!) ?? (stream.session!.socket as net.Socket),
        );
        return refuseOversized(new H2StreamResponse(stream));
      }
      if (answeredBeforeRouting(stream, headers)) return;
      const req = streamRequest(stream, headers, raw);
      const res = new H2StreamResponse(stream);
      adaptRequest(req);
      onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      // what `shouldKeepAlive = false` means for HTTP/1 (draining, a framing error): for HTTP/2 a
      // GOAWAY, the streams in progress finish
      if (res.shouldKeepAlive === false) stream.session?.close();
    },
  );
  h2.on('session', (session: Http2Session) => {
    if (opening.socket !== null) sessionSockets.set(session, opening.socket);
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // a flood or a protocol error nghttp2 detected: this connection ends, no one else's
    session.on('error', () => session.destroy());
    if (limits.idleTimeoutMs > 0) session.setTimeout(limits.idleTimeoutMs, () => session.close());
    const conn = sessionSockets.get(session);
    enforceHeadersDeadline(session, limits.headersTimeoutMs, () => {
      if (conn !== undefined) onRefused(408, 'H2_HEADERS_TIMEOUT', conn);
    });
  });
  h2.on('sessionError', () => undefined);
  return h2;
}

/** Reads the first bytes of `s` (put back) until they decide between HTTP/1 and HTTP/2. */
function choose(
  s: net.Socket,
  timeoutMs: number,
  toH1: (s: net.Socket) => void,
  toH2: (s: net.Socket) => void,
): void {
  let head: Buffer = Buffer.alloc(0);
  let decided = false;
  const decide = (to: (s: net.Socket) => void): void => {
    if (decided) return;
    decided = true;
    clearTimeout(timer);
    s.off('data', onData);
    s.off('end', onEnd);
    s.pause();
    if (head.length > 0) s.unshift(head);
    to(s);
    // node:http reads in flowing mode; node:http2 consumes the handle (and the bytes put back)
    if (to === toH1) s.resume();
  };
  const onData = (c: Buffer): void => {
    head = head.length === 0 ? c : Buffer.concat([head, c]);
    const v = prefaceVerdict(head);
    if (v === 'h2') decide(toH2);
    else if (v === 'h1') decide(toH1);
  };
  const onEnd = (): void => decide(toH1);
  const timer = setTimeout(() => decide(toH1), timeoutMs);
  s.on('data', onData);
  s.once('end', onEnd);
  s.on('error', () => s.destroy());
}
