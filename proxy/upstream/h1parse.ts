/**
 * The upstream client's HTTP/1.1 response parser (RFC 9112), pure: h1client.ts feeds it socket
 * reads, whatever their boundaries. Strict wherever a lenient reading would let an upstream say
 * two things at once:
 *  - every line ends with CRLF. A bare LF or a bare CR is an error, not a line break. Node's
 *    llhttp (the proxy's request parser) is as strict; Envoy's balsa accepts a bare LF. We don't,
 *    because a bare LF inside a header value is how a reflected value becomes an injected header;
 *  - header names are tokens (no space before the colon), values hold no control character but
 *    HTAB, obs-fold is refused;
 *  - a head is at most MAX_RESPONSE_HEAD_BYTES and MAX_HEADERS_COUNT fields, counted exactly;
 *  - framing per RFC 9112 §6.3: Transfer-Encoding with Content-Length, or an invalid or
 *    conflicting Content-Length, is an error (no response smuggling).
 * Every error is a message; the client turns it into 502 (UPE) and destroys the connection.
 */
import { MAX_CHUNK_LINE_BYTES, MAX_HEADERS_COUNT, MAX_RESPONSE_HEAD_BYTES } from '../http1-limits.js';

export type Headers = Record<string, string | string[] | undefined>;

/** How the response body is delimited. */
export const Framing = { None: 0, Length: 1, Chunked: 2, UntilClose: 3 } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

export interface FinalHead {
  interim: false;
  status: number;
  /** Lower-case names; a repeated field becomes an array in arrival order. Null prototype. */
  headers: Headers;
  framing: Framing;
  /** Body length for Framing.Length. */
  length: number;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
  /** The upstream's `Keep-Alive: timeout=N`, in seconds. */
  keepAliveTimeoutS: number | undefined;
}

/** 100 Continue, 103 Early Hints, ...: skipped, the final response follows. */
export interface InterimHead {
  interim: true;
  status: number;
}

export interface ParseError {
  error: string;
}

const TOO_LARGE = `response head larger than ${MAX_RESPONSE_HEAD_BYTES} bytes`;
const CR = 13;
const LF = 10;

/**
 * Collects a head across reads until its empty line, in time linear in the bytes (a head
 * dripped one byte per read is not a CPU bomb), and enforces the size limit on the head itself,
 * not on how the reads happened to fall.
 */
export class HeadReader {
  private parts: Buffer[] = [];
  /** Bytes held in `parts` (the head so far). */
  private held = 0;
  /** Offset in the head of the line being read. */
  private lineStart = 0;
  /** Last byte of the previous read: a CRLF can straddle two reads. */
  private lastByte = -1;

  /** Feeds one read: the head and what follows it, an error, or null for "need more". */
  push(d: Buffer): { head: Buffer; rest: Buffer } | ParseError | null {
    let from = 0;
    for (;;) {
      const lf = d.indexOf(LF, from);
      if (lf < 0) break;
      const at = this.held + lf;
      // the head ends at or after this LF: past the limit already
      if (at >= MAX_RESPONSE_HEAD_BYTES) return { error: TOO_LARGE };
      if ((lf > 0 ? d[lf - 1] : this.lastByte) !== CR) return { error: 'bare LF in the response head' };
      if (at - 1 === this.lineStart) return this.finish(d, lf + 1);
      this.lineStart = at + 1;
      from = lf + 1;
    }
    this.parts.push(d);
    this.held += d.length;
    if (d.length > 0) this.lastByte = d[d.length - 1]!;
    // the empty line's LF is still to come, so the head will be longer than what is held
    return this.held >= MAX_RESPONSE_HEAD_BYTES ? { error: TOO_LARGE } : null;
  }

  private finish(d: Buffer, end: number): { head: Buffer; rest: Buffer } {
    const tail = d.subarray(0, end);
    const head = this.held === 0 ? tail : Buffer.concat([...this.parts, tail], this.held + end);
    this.parts = [];
    this.held = 0;
    this.lineStart = 0;
    this.lastByte = -1;
    return { head, rest: d.subarray(end) };
  }
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters other than HTAB (RFC 9110 §5.5: never in a field value). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** One `name: value` line (without CRLF) → [lower-case name, value without OWS], or an error. */
export function parseField(line: string): [string, string] | ParseError {
  const colon = line.indexOf(':');
  // a line starting with SP/HTAB (obs-fold) or without a name fails the token test
  if (colon <= 0 || !TOKEN.test(line.slice(0, colon)))
    return { error: `invalid header line ${JSON.stringify(line.slice(0, 40))}` };
  let s = colon + 1;
  let e = line.length;
  while (s < e && (line.charCodeAt(s) === 32 || line.charCodeAt(s) === 9)) s++;
  while (e > s && (line.charCodeAt(e - 1) === 32 || line.charCodeAt(e - 1) === 9)) e--;
  const value = line.slice(s, e);
  if (CTL.test(value))
    return { error: `control character in the value of header ${JSON.stringify(line.slice(0, colon))}` };
  return [line.slice(0, colon).toLowerCase(), value];
}

/** Parses a complete head (as HeadReader returns it, ending with the empty line). */
export function parseResponseHead(head: Buffer, method: string): FinalHead | InterimHead | ParseError {
  // HeadReader guarantees every LF follows a CR, so CRLF splits lines exactly; a CR left inside
  // a line is a bare CR, refused below as a control character
  const lines = head.toString('latin1', 0, Math.max(0, head.length - 4)).split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (m === null) return { error: `bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}` };
  if (lines.length - 1 > MAX_HEADERS_COUNT)
    return { error: `${lines.length - 1} header fields, more than ${MAX_HEADERS_COUNT}` };
  const status = Number(m[2]);
  const headers: Headers = Object.create(null) as Headers;
  const f = { te: undefined as string | undefined, cl: undefined as string | undefined };
  let close = false;
  let keepAliveToken = false;
  let keepAliveTimeoutS: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const field = parseField(lines[i]!);
    if (!Array.isArray(field)) return field;
    const [name, value] = field;
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (f.cl !== undefined && f.cl !== value))
        return { error: `invalid or conflicting content-length ${JSON.stringify(value.slice(0, 40))}` };
      f.cl = value;
    } else if (name === 'transfer-encoding') f.te = f.te === undefined ? value : `${f.te}, ${value}`;
    else if (name === 'connection') {
      close ||= /(^|,)[ \t]*close[ \t]*(,|$)/i.test(value);
      keepAliveToken ||= /(^|,)[ \t]*keep-alive[ \t]*(,|$)/i.test(value);
    } else if (name === 'keep-alive') {
      const t = /(?:^|[,; \t])timeout[ \t]*=[ \t]*(\d{1,9})/i.exec(value);
      if (t) keepAliveTimeoutS = Number(t[1]);
    }
    const cur = headers[name];
    headers[name] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
  }
  if (status < 200) {
    // 101 only answers an Upgrade, which this client never sends (upgrade.ts has its own path)
    if (status === 101) return { error: 'unexpected 101 Switching Protocols' };
    return { interim: true, status };
  }
  if (f.te !== undefined && f.cl !== undefined) return { error: 'both transfer-encoding and content-length' };
  const head1: FinalHead = {
    interim: false,
    status,
    headers,
    framing: Framing.UntilClose,
    length: 0,
    keepAlive: !close && (m[1] === '1' || keepAliveToken),
    keepAliveTimeoutS,
  };
  if (method === 'HEAD' || status === 204 || status === 304) head1.framing = Framing.None;
  else if (f.te !== undefined) {
    if (/(^|,)[ \t]*chunked[ \t]*$/i.test(f.te)) head1.framing = Framing.Chunked;
    else head1.keepAlive = false; // another coding last: the body runs until the upstream closes
  } else if (f.cl !== undefined) {
    head1.length = Number(f.cl);
    head1.framing = head1.length === 0 ? Framing.None : Framing.Length;
  } else head1.keepAlive = false;
  return head1;
}

const CHUNK_SIZE = /^0*([0-9a-fA-F]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;

/** `size[;ext]` (without CRLF) → the size, or -1. At most 12 significant hex digits (256 TiB). */
export function parseChunkSize(line: string): number {
  const m = CHUNK_SIZE.exec(line);
  return m === null ? -1 : parseInt(m[1]!, 16);
}

const Chunk = { Size: 0, Data: 1, DataCR: 2, DataLF: 3, Trailer: 4 } as const;
type Chunk = (typeof Chunk)[keyof typeof Chunk];

export type ChunkResult =
  { kind: 'more' } | { kind: 'end'; rest: Buffer } | { kind: 'stopped' } | { kind: 'error'; error: string };

const MORE: ChunkResult = { kind: 'more' };
const STOPPED: ChunkResult = { kind: 'stopped' };

/**
 * A chunked body (RFC 9112 §7.1) fed read by read. Chunk data goes to the sink as slices of the
 * reads (no copy); extensions are checked and ignored; trailers are checked, counted against
 * the head limits, and dropped (the downstream hop gets no `TE: trailers`).
 */
export class ChunkedDecoder {
  private state: Chunk = Chunk.Size;
  private remaining = 0;
  private line = '';
  private trailerFields = 0;
  private trailerBytes = 0;

  /** `sink` returns false when the caller dropped the response: decoding stops there. */
  feed(d: Buffer, sink: (data: Buffer) => boolean): ChunkResult {
    let i = 0;
    while (i < d.length) {
      switch (this.state) {
        case Chunk.Size:
        case Chunk.Trailer: {
          const lf = d.indexOf(LF, i);
          const end = lf < 0 ? d.length : lf;
          const err = this.growLine(end - i);
          if (err !== null) return err;
          this.line += d.toString('latin1', i, end);
          if (lf < 0) return MORE;
          i = lf + 1;
          const r = this.onLine();
          if (r === null) continue;
          return r.kind === 'end' ? { kind: 'end', rest: d.subarray(i) } : r;
        }
        case Chunk.Data: {
          const n = Math.min(this.remaining, d.length - i);
          this.remaining -= n;
          if (this.remaining === 0) this.state = Chunk.DataCR;
          const slice = d.subarray(i, i + n);
          i += n;
          if (!sink(slice)) return STOPPED;
          break;
        }
        case Chunk.DataCR:
        case Chunk.DataLF: {
          const want = this.state === Chunk.DataCR ? CR : LF;
          if (d[i] !== want) return { kind: 'error', error: 'missing CRLF after chunk data' };
          i++;
          this.state = this.state === Chunk.DataCR ? Chunk.DataLF : Chunk.Size;
          break;
        }
      }
    }
    return MORE;
  }

  private growLine(n: number): ChunkResult | null {
    const len = this.line.length + n;
    if (this.state === Chunk.Size && len > MAX_CHUNK_LINE_BYTES + 1)
      return { kind: 'error', error: `chunk size line longer than ${MAX_CHUNK_LINE_BYTES} bytes` };
    if (this.state === Chunk.Trailer && this.trailerBytes + len + 1 > MAX_RESPONSE_HEAD_BYTES)
      return { kind: 'error', error: `trailers larger than ${MAX_RESPONSE_HEAD_BYTES} bytes` };
    return null;
  }

  /** A complete line (up to its LF): null to go on, or the end / an error. */
  private onLine(): ChunkResult | null {
    const raw = this.line;
    this.line = '';
    if (raw.charCodeAt(raw.length - 1) !== CR) return { kind: 'error', error: 'bare LF in a chunked body' };
    const line = raw.slice(0, -1);
    if (this.state === Chunk.Size) {
      const size = parseChunkSize(line);
      if (size < 0)
        return { kind: 'error', error: `bad chunk size line ${JSON.stringify(line.slice(0, 40))}` };
      this.remaining = size;
      this.state = size === 0 ? Chunk.Trailer : Chunk.Data;
      return null;
    }
    if (line === '') return { kind: 'end', rest: Buffer.alloc(0) };
    this.trailerBytes += raw.length + 1;
    if (++this.trailerFields > MAX_HEADERS_COUNT)
      return { kind: 'error', error: `more than ${MAX_HEADERS_COUNT} trailer fields` };
    const field = parseField(line);
    return Array.isArray(field) ? null : { kind: 'error', error: field.error };
  }
}
