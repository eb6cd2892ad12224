/**
 * The router's request and response for an HTTP/2 stream, made straight from node:http2's raw
 * stream API instead of its compatibility API (ADR 0019, "fast path"). The router (router/
 * exchange.ts, inbound/http.ts) is written against node:http's IncomingMessage/ServerResponse;
 * node's Http2ServerRequest/Response gave it that shape at a price paid on every request: two
 * more stream objects (the request a Readable fed chunk by chunk from the HTTP/2 stream, the
 * response a Stream), eleven listeners on the HTTP/2 stream, a proxy socket per stream and a
 * header object rebuilt through setHeader. With node's 1 MB young generation (the image's
 * `--max-semi-space-size=1`, ADR 0009) what a request keeps alive is what the scavenger copies
 * and promotes, so those objects cost more in the collector than in the code that makes them.
 *
 * Here the request IS the ServerHttp2Stream (a Readable already: data, end, pause, resume,
 * pipe) with the IncomingMessage fields the router reads set on it, and the response is a
 * small object writing to the same stream. Behaviour kept from the compatibility API, so the
 * router cannot tell the difference:
 *  - `writeHead` validates every field as `setHeader` did (a bad name or value throws, and the
 *    router aborts the upstream), drops a `connection` field (HTTP/2 has none; node's
 *    compatibility API drops it too) and lets node refuse the other connection-specific fields
 *    (`transfer-encoding`, `keep-alive`, `upgrade`, `te` other than `trailers`: RFC 9113 §8.2.2);
 *  - every response is sent waiting for trailers: `addTrailers` before the end puts them in a
 *    trailing HEADERS frame, none ends the stream with an empty DATA frame (so a head followed
 *    by a body never ends the stream early; a trailers-only gRPC answer uses `endWithHead`);
 *  - CONNECT is answered 405 and an `expect` other than `100-continue` 417, `100-continue` gets
 *    its 100 first, as node's compatibility server does;
 *  - `req.socket` is the session's socket stand-in (one per connection, node's own), so the
 *    listener's per-connection bookkeeping sees one key per HTTP/2 connection;
 *  - a stream the client reset is not a finished response (the router then cancels upstream);
 *  - a response the router cuts (`destroy()`) is reset with INTERNAL_ERROR, not node's NO_ERROR;
 *  - errors on the stream are swallowed (the 'close' that follows tells the router);
 *  - a request body still unread when the response is complete is read and dropped.
 */
import { http, http2 } from '../../pkg/builtins/index.js';
import type * as Http2 from 'node:http2';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';

/** The IncomingMessage fields the router reads, set on the stream itself. */
export interface H2StreamRequest extends ServerHttp2Stream {
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  method: string;
  url: string;
  httpVersion: '2.0';
  httpVersionMajor: 2;
  httpVersionMinor: 0;
  /** The stream itself (what Http2ServerRequest.stream is; downstream.ts reads it). */
  stream: ServerHttp2Stream;
  socket: unknown;
}

/** Makes `stream` readable as the router's request (in place: no object per request). */
export function streamRequest(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: string[],
): H2StreamRequest {
  const r = stream as H2StreamRequest;
  r.headers = headers;
  r.rawHeaders = rawHeaders;
  r.method = String(headers[':method'] ?? '');
  r.url = String(headers[':path'] ?? '');
  r.httpVersion = '2.0';
  r.httpVersionMajor = 2;
  r.httpVersionMinor = 0;
  r.stream = stream;
  r.socket = stream.session?.socket ?? stream;
  return r;
}

type HeaderValue = string | number | string[] | undefined;

/** respond() only reads its options: one object for every response. */
const WAIT_FOR_TRAILERS: Http2.ServerStreamResponseOptions = Object.freeze({ waitForTrailers: true });

/** The ServerResponse the router writes to, on one HTTP/2 stream. */
export class H2StreamResponse {
  /** node:http's flag; false asks the listener for a GOAWAY (downstream.ts). */
  shouldKeepAlive = true;
  private trailers: Record<string, HeaderValue> | null = null;

  constructor(readonly stream: ServerHttp2Stream) {
    // 'finish' and 'wantTrailers' come once per stream: shared functions added with on(), not a
    // closure and once()'s wrapper per response
    (stream as ResponseStream)[RESPONSE] = this;
    stream.on('finish', dumpUnread);
    stream.on('wantTrailers', sendTrailers);
  }

  /** The trailers added so far (none: the stream ends with an empty trailing HEADERS frame). */
  get pendingTrailers(): Record<string, HeaderValue> {
    return this.trailers ?? NO_TRAILERS;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * The response was written whole. node ends the writable side of a stream the client reset
   * too, so its writableFinished alone would tell the router a cancelled response had finished,
   * and the upstream stream would never be cancelled (the compatibility API had that flaw).
   */
  get writableFinished(): boolean {
    const s = this.stream;
    return (
      s.writableFinished && (s.rstCode === undefined || s.rstCode === http2().constants.NGHTTP2_NO_ERROR)
    );
  }

  /** node:http's shape; throws on a field HTTP/2 cannot carry, as the compatibility API. */
  writeHead(status: number, headers?: Readonly<Record<string, HeaderValue>>): this {
    const s = this.stream;
    if (s.destroyed || s.closed) return this;
    s.respond(responseHead(status, headers) as unknown as Http2.OutgoingHttpHeaders, WAIT_FOR_TRAILERS);
    return this;
  }

  write(chunk: Buffer | string): boolean {
    const s = this.stream;
    if (s.destroyed || s.closed || s.writableEnded) return false;
    if (!s.headersSent) this.writeHead(200);
    return s.write(chunk);
  }

  end(chunk?: Buffer | string | null): this {
    const s = this.stream;
    if (s.destroyed || s.closed || s.writableEnded) return this;
    if (!s.headersSent) this.writeHead(200);
    if (chunk !== undefined && chunk !== null) s.end(chunk);
    else s.end();
    return this;
  }

  addTrailers(t: Readonly<Record<string, HeaderValue>>): void {
    const out = (this.trailers ??= {});
    for (const k in t) {
      const name = k.toLowerCase();
      const v = t[k];
      http.validateHeaderName(name);
      http.validateHeaderValue(name, v as string);
      out[name] = v;
    }
  }

  /**
   * The router cuts a response it cannot finish (the upstream reset or timed out after the head):
   * RST_STREAM INTERNAL_ERROR, so the client cannot take the truncated body for a whole one
   * (node's destroy() without an error resets with NO_ERROR, which RFC 9113 §8.1 keeps for a
   * complete response).
   */
  destroy(err?: Error): void {
    const s = this.stream;
    if (err === undefined && !s.destroyed && !s.writableFinished)
      s.close(http2().constants.NGHTTP2_INTERNAL_ERROR);
    else s.destroy(err);
  }

  once(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.once(event, fn);
    return this;
  }

  on(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.on(event, fn);
    return this;
  }
}

const RESPONSE = Symbol('weft.h2.response');
type ResponseStream = ServerHttp2Stream & { [RESPONSE]: H2StreamResponse };
const NO_TRAILERS: Readonly<Record<string, HeaderValue>> = Object.freeze({});

/** node asks for the trailers once the body is written (`waitForTrailers`). */
function sendTrailers(this: ResponseStream): void {
  try {
    this.sendTrailers(this[RESPONSE].pendingTrailers);
  } catch {
    this.close(http2().constants.NGHTTP2_INTERNAL_ERROR);
  }
}

/**
 * Once the response is complete, what is left of the request body is read and dropped (node:http's
 * `_dump`): a request the router never read (a local reply, a denial) would otherwise keep its
 * stream, and so the client's session, open for ever. The compatibility API read every body
 * into its request object, so this was never visible there.
 */
function dumpUnread(this: ServerHttp2Stream): void {
  if (!this.readableEnded) this.resume();
}

/**
 * The HEADERS frame's fields as node's flat raw list (`[name, value, ...]`, which respond() takes
 * as is: no null-prototype copy of an object per response): `:status` first, then each field
 * validated as node:http's setHeader does (ERR_INVALID_HTTP_TOKEN, ERR_HTTP_INVALID_HEADER_VALUE,
 * ERR_INVALID_CHAR), names lower-cased, a list value one field per element, `connection`
 * dropped. Pseudo-header fields other than `:status` are not the caller's to set.
 */
export function responseHead(
  status: number,
  headers: Readonly<Record<string, HeaderValue>> | undefined,
): string[] {
  const out: string[] = [':status', String(status)];
  if (headers === undefined) return out;
  for (const k in headers) {
    const name = k.toLowerCase();
    const v = headers[k];
    if (name.charCodeAt(0) === 58 /* : */) throw new TypeError(`pseudo-header ${name} in a response head`);
    http.validateHeaderName(name);
    http.validateHeaderValue(name, v as string);
    if (name === 'connection') continue;
    if (Array.isArray(v)) for (const one of v) out.push(name, String(one));
    else out.push(name, String(v));
  }
  return out;
}

/**
 * What node's compatibility server answers itself before any 'request' (compat.js
 * onServerStream): CONNECT 405, an unknown expectation 417, `100-continue` a 100 then the
 * request. True when the stream was answered here.
 */
export function answeredBeforeRouting(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
  if (headers[':method'] === 'CONNECT') {
    respondBare(stream, 405);
    return true;
  }
  const expect = headers.expect;
  if (expect === undefined) return false;
  if (expect === '100-continue') {
    try {
      stream.additionalHeaders({ ':status': 100 });
    } catch {
      // the stream went away meanwhile: its 'close' ends the request
    }
    return false;
  }
  respondBare(stream, 417);
  return true;
}

function respondBare(stream: ServerHttp2Stream, status: number): void {
  try {
    stream.respond({ ':status': status }, { endStream: true });
  } catch {
    stream.close(http2().constants.NGHTTP2_INTERNAL_ERROR);
  }
}
