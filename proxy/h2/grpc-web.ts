/**
 * gRPC-Web bridged to gRPC (gRPC's doc/PROTOCOL-WEB.md), as Envoy's grpc_web filter does it: a
 * browser's request (HTTP/1.1 or HTTP/2, `application/grpc-web[-text][+proto]`) goes upstream
 * as a gRPC call over HTTP/2, and the gRPC response comes back with its trailers as the body's
 * last frame (flag 0x80, `name:value\r\n` lines). The `-text` forms are base64, in the request
 * body and (when the Accept header asks for it) in the response. Which requests are bridged is
 * the router's decision (router/exchange.ts: only towards an HTTP/2 cluster).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The four content types Envoy bridges (compared exactly, as Envoy does: no parameters). */
const WEB_TYPES: Readonly<Record<string, { text: boolean }>> = {
  'application/grpc-web': { text: false },
  'application/grpc-web+proto': { text: false },
  'application/grpc-web-text': { text: true },
  'application/grpc-web-text+proto': { text: true },
};

/**
 * A gRPC-Web request body is one message (gRPC-Web has no client streaming), read whole before
 * the call starts; past this size (gRPC's default maximum message) the call is refused.
 */
export const MAX_GRPC_WEB_REQUEST_BYTES = 4 * 1024 * 1024;

/** How one gRPC-Web request is encoded. */
export interface GrpcWebMode {
  /** The request body is base64 (`-text`). */
  textRequest: boolean;
  /** The response body is base64: the Accept header names a `-text` type. */
  textResponse: boolean;
}

/** The mode of a gRPC-Web request, null for any other request. */
export function grpcWebMode(headers: IncomingHttpHeaders): GrpcWebMode | null {
  const ct = headers['content-type'];
  const t = typeof ct === 'string' ? WEB_TYPES[ct] : undefined;
  if (t === undefined) return null;
  const accept = headers.accept;
  const textResponse = typeof accept === 'string' && WEB_TYPES[accept]?.text === true;
  return { textRequest: t.text, textResponse };
}

/** The response content type for the client: Envoy's, always `+proto`. */
export function grpcWebResponseType(mode: GrpcWebMode): string {
  return mode.textResponse ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto';
}

/**
 * The request headers as a gRPC server wants them (in place): content-type `application/grpc`,
 * no content-length (the HTTP/1.1 length is not the HTTP/2 body's), `te: trailers` (the HTTP/2
 * pool adds it to every gRPC request), and `grpc-accept-encoding` when the client sent none.
 */
export function toGrpcRequestHeaders(h: Record<string, string | string[] | undefined>): void {
  h['content-type'] = 'application/grpc';
  delete h['content-length'];
  h['grpc-accept-encoding'] ??= 'identity,deflate,gzip';
}

const BASE64_GROUPS = /^(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)*$/;

/**
 * A `-text` request body decoded: groups of four base64 characters, padding mandatory (as
 * Envoy: a length not a multiple of four is refused), padded segments may follow one another
 * (a client that encodes each frame on its own). null when anything else is there.
 */
export function decodeGrpcWebText(body: Buffer): Buffer | null {
  const s = body.toString('latin1');
  if (!BASE64_GROUPS.test(s)) return null;
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 3; i < s.length; i += 4)
    if (s.charCodeAt(i) === 0x3d /* = */) {
      parts.push(Buffer.from(s.slice(from, i + 1), 'base64'));
      from = i + 1;
    }
  if (from < s.length) parts.push(Buffer.from(s.slice(from), 'base64'));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * The trailers frame: flag 0x80, a 4-byte big-endian length, then `name:value\r\n` for each
 * trailer (names lower case, as HTTP/2 has them; a repeated trailer gives one line per value).
 */
export function trailersFrame(trailers: Readonly<Record<string, string | string[] | undefined>>): Buffer {
  let text = '';
  for (const [k, v] of Object.entries(trailers)) {
    if (v === undefined || k.startsWith(':')) continue;
    for (const x of Array.isArray(v) ? v : [v]) text += `${k.toLowerCase()}:${x}\r\n`;
  }
  const payload = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/**
 * Base64 of a response stream, a whole gRPC frame at a time (as Envoy: each frame encoded and
 * padded on its own, so the client can decode every frame as it arrives). Holds at most one
 * incomplete frame; a frame header announcing more than `maxFrame` bytes is an error (null).
 */
export class TextFrameEncoder {
  /** Bytes of frames not complete yet, joined only once the first is (no copy per chunk). */
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxFrame = MAX_GRPC_WEB_REQUEST_BYTES * 4) {}

  /** The base64 of the frames `chunk` completes ('' if none), or null for an oversized frame. */
  push(chunk: Buffer): string | null {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size < 5) return '';
    const head = this.parts[0]!.length >= 5 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    const first = head.readUInt32BE(1);
    if (first > this.maxFrame) return null;
    if (this.size < 5 + first) return '';
    let buf = Buffer.concat(this.parts, this.size);
    let out = '';
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (len > this.maxFrame) return null;
      if (buf.length < 5 + len) break;
      out += buf.subarray(0, 5 + len).toString('base64');
      buf = buf.subarray(5 + len);
    }
    this.parts = buf.length === 0 ? [] : [buf];
    this.size = buf.length;
    return out;
  }

  /** Bytes of an incomplete frame left at the end of the stream (a truncated response). */
  get leftover(): number {
    return this.size;
  }
}

/** Whether an upstream response head is a gRPC response (HTTP 200, content-type application/grpc…). */
export function isGrpcResponse(status: number, headers: Readonly<Record<string, unknown>>): boolean {
  const ct = headers['content-type'];
  return status === 200 && typeof ct === 'string' && /^application\/grpc(?:[+;]|$)/.test(ct);
}
