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

/** Each byte's base64 value (0–63), PAD for `=`, BAD for anything else (no URL-safe alphabet). */
const PAD = 0xfe;
const BAD = 0xff;
const SEXTET: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(BAD);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  t[0x3d] = PAD;
  return t;
})();

/**
 * A `-text` request body decoded as it streams in, in one linear pass over a lookup table (no
 * regular expression, no per-group copies: a body of a million `AA==` groups costs about what a
 * million `AAAA` groups do). The text is groups of four base64 characters, padding mandatory
 * (as Envoy: a length not a multiple of four is refused); a padded group may be followed by
 * more groups (a client that encodes each frame on its own), and a group may be split across
 * chunks anywhere. `size` counts the decoded bytes, so the caller bounds those, not the text.
 */
export class GrpcWebTextDecoder {
  /** Decoded bytes so far. */
  size = 0;
  private readonly parts: Buffer[] = [];
  /** The sextets of the group in progress (`held` of them), and its `=` so far (0–1). */
  private acc = 0;
  private held = 0;
  private pads = 0;
  private bad = false;

  /** Decodes one chunk of the body; false once the text is not base64 (then for good). */
  push(chunk: Buffer): boolean {
    if (this.bad) return false;
    const out = Buffer.allocUnsafe(((this.held + this.pads + chunk.length) >> 2) * 3);
    let o = 0;
    let i = 0;
    let acc = this.acc;
    let held = this.held;
    let pads = this.pads;
    const len = chunk.length;
    while (i < len) {
      if (held === 0) {
        // the fast path: whole groups without padding, four table lookups each (faster than
        // Node's decoder, which needs the bytes as a string first)
        while (i + 4 <= len) {
          const a = SEXTET[chunk[i]!]!;
          const b = SEXTET[chunk[i + 1]!]!;
          const c = SEXTET[chunk[i + 2]!]!;
          const d = SEXTET[chunk[i + 3]!]!;
          if ((a | b | c | d) > 63) break; // padding or a bad byte: the slow path below
          const v = (a << 18) | (b << 12) | (c << 6) | d;
          out[o++] = v >> 16;
          out[o++] = (v >> 8) & 0xff;
          out[o++] = v & 0xff;
          i += 4;
        }
        if (i >= len) break;
      }
      // the slow path, a byte at a time: a group with padding or split across chunks
      const v = SEXTET[chunk[i++]!]!;
      if (v < 64 && pads === 0) {
        acc = (acc << 6) | v;
        if (++held < 4) continue;
        out[o++] = acc >> 16;
        out[o++] = (acc >> 8) & 0xff;
        out[o++] = acc & 0xff;
      } else if (v === PAD && held === 3) {
        out[o++] = acc >> 10;
        out[o++] = (acc >> 2) & 0xff;
      } else if (v === PAD && held === 2 && pads === 0) {
        pads = 1; // `xx=` so far: the group needs its second `=`
        continue;
      } else if (v === PAD && held === 2) {
        out[o++] = acc >> 4;
      } else {
        this.bad = true;
        return false;
      }
      acc = held = pads = 0;
    }
    this.acc = acc;
    this.held = held;
    this.pads = pads;
    // mostly padding (`AA==` gives a byte for four): keep a copy, not the 3-for-4 allocation
    if (o > 0) this.parts.push(o * 2 < out.length ? Buffer.from(out.subarray(0, o)) : out.subarray(0, o));
    this.size += o;
    return true;
  }

  /** The whole body decoded, or null when it was not base64 or ends inside a group. */
  end(): Buffer | null {
    if (this.bad || this.held !== 0) return null;
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }
}

/** A whole `-text` body decoded at once (GrpcWebTextDecoder); null when it is not base64. */
export function decodeGrpcWebText(body: Buffer): Buffer | null {
  const d = new GrpcWebTextDecoder();
  return d.push(body) ? d.end() : null;
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
 * Base64 of a response stream, each gRPC frame padded on its own (so the client can decode
 * every message as it completes) but encoded as it streams: the bytes of a frame go out in
 * multiples of three as they arrive, never buffered whole. What is held between chunks is at
 * most a frame header's 5 bytes or 2 bytes short of a base64 group: memory and copies are
 * linear in the response, whatever the chunk sizes. A frame header announcing more than
 * `maxFrame` bytes (gRPC's default message limit, as for requests) is refused: `oversized` is
 * set, nothing more is encoded, and the caller ends the call with RESOURCE_EXHAUSTED.
 */
export class TextFrameEncoder {
  /** The frame header being read (until 5 bytes), then the 0–2 bytes not encoded yet. */
  private readonly held = Buffer.alloc(5);
  private heldLen = 0;
  /** Bytes of the current frame still to come after its header; -1 while reading a header. */
  private remaining = -1;
  /** Bytes of the current, incomplete frame received so far (header included). */
  private frameBytes = 0;
  /** A frame header announced more than `maxFrame` bytes: the stream is refused from there. */
  oversized = false;

  constructor(private readonly maxFrame = MAX_GRPC_WEB_REQUEST_BYTES) {}

  /** The base64 of what `chunk` lets out ('' if nothing yet); stops at an oversized frame. */
  push(chunk: Buffer): string {
    if (this.oversized) return '';
    let out = '';
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining < 0) {
        const take = Math.min(5 - this.heldLen, chunk.length - at);
        chunk.copy(this.held, this.heldLen, at, at + take);
        this.heldLen += take;
        this.frameBytes += take;
        at += take;
        if (this.heldLen < 5) break;
        const len = this.held.readUInt32BE(1);
        if (len > this.maxFrame) {
          this.oversized = true;
          return out; // the frames before it, complete
        }
        this.remaining = len;
        // the header's 5 bytes: 3 encode now, 2 wait for the payload's first byte
        out += this.held.toString('base64', 0, 3);
        this.held.copy(this.held, 0, 3, 5);
        this.heldLen = 2;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      out += this.encodePayload(chunk.subarray(at, at + take));
      this.remaining -= take;
      this.frameBytes += take;
      at += take;
      if (this.remaining === 0) out += this.endFrame();
    }
    return out;
  }

  /** Base64 of held bytes and `part`, in whole groups; the last 0–2 bytes are held back. */
  private encodePayload(part: Buffer): string {
    let out = '';
    let from = 0;
    if (this.heldLen > 0) {
      from = Math.min(3 - this.heldLen, part.length);
      part.copy(this.held, this.heldLen, 0, from);
      this.heldLen += from;
      if (this.heldLen < 3) return '';
      out = this.held.toString('base64', 0, 3);
      this.heldLen = 0;
    }
    const whole = from + Math.floor((part.length - from) / 3) * 3;
    if (whole > from) out += part.toString('base64', from, whole);
    part.copy(this.held, 0, whole);
    this.heldLen = part.length - whole;
    return out;
  }

  /** The frame's last 0–2 bytes, padded; the next bytes start a header. */
  private endFrame(): string {
    const out = this.held.toString('base64', 0, this.heldLen);
    this.heldLen = 0;
    this.remaining = -1;
    this.frameBytes = 0;
    return out;
  }

  /** Bytes of an incomplete frame left at the end of the stream (a truncated response). */
  get leftover(): number {
    return this.frameBytes;
  }
}

/** Whether an upstream response head is a gRPC response (HTTP 200, content-type application/grpc…). */
export function isGrpcResponse(status: number, headers: Readonly<Record<string, unknown>>): boolean {
  const ct = headers['content-type'];
  return status === 200 && typeof ct === 'string' && /^application\/grpc(?:[+;]|$)/.test(ct);
}
