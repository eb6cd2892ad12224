/**
 * Reads a TLS ClientHello from the first bytes of a connection without consuming them (Envoy's
 * tls_inspector): is this TLS at all, which server name (SNI) and which application protocols
 * (ALPN) does the client ask for. The inbound listener decides on that before any handshake:
 * plaintext under STRICT is refused, a mesh client (Istio's ALPN) is terminated, other TLS under
 * PERMISSIVE is the app's own and passes through.
 *
 * Pure and total: any byte sequence gives an answer, never an exception; lengths are checked
 * against what is there before anything is read, and the hello may span several TLS records
 * (post-quantum key shares make it ~1.2-1.8 KB) up to MAX_CLIENT_HELLO bytes.
 */

/** A ClientHello larger than this is refused (real ones are under 2 KB; one record max). */
export const MAX_CLIENT_HELLO = 16 * 1024;
/**
 * Records a hello may be split into (OpenSSL, BoringSSL and Go send one). With `need` below, a
 * client trickling bytes costs one parse per record, so this caps the parses per connection.
 */
export const MAX_HELLO_RECORDS = 16;

const RECORD_HEADER = 5;
/** TLSPlaintext.length must not exceed 2^14 (RFC 8446 §5.1). */
const MAX_RECORD = 16 * 1024;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

export type HelloVerdict =
  /** Not enough bytes to tell yet; nothing new can be said before the buffer has `need` bytes. */
  | { kind: 'more'; need: number }
  /** The first bytes are not a TLS handshake record: plaintext. */
  | { kind: 'plaintext' }
  /** Starts like TLS but is not a well-formed ClientHello. */
  | { kind: 'malformed'; reason: string }
  | { kind: 'hello'; sni: string | null; alpn: string[] };

/** A cursor over one byte range; every read is bounds-checked. */
class Reader {
  constructor(
    private readonly b: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  left(): number {
    return this.end - this.pos;
  }
  u8(): number | null {
    return this.pos + 1 <= this.end ? this.b[this.pos++]! : null;
  }
  u16(): number | null {
    if (this.pos + 2 > this.end) return null;
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  /** A sub-reader of `n` bytes, advancing past them; null if they are not there. */
  take(n: number): Reader | null {
    if (n < 0 || this.pos + n > this.end) return null;
    const r = new Reader(this.b, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  /** A vector with a 1- or 2-byte length prefix. */
  vector(lenBytes: 1 | 2): Reader | null {
    const n = lenBytes === 1 ? this.u8() : this.u16();
    return n === null ? null : this.take(n);
  }
  text(): string {
    return this.b.toString('latin1', this.pos, this.end);
  }
}

/** Concatenates the payloads of the leading handshake records; null = plaintext, string = malformed. */
function handshakeBytes(buf: Buffer): { bytes: Buffer; complete: boolean; need: number } | null | string {
  const parts: Buffer[] = [];
  let pos = 0;
  let total = 0;
  let need = -1;
  while (pos < buf.length) {
    if (buf[pos] !== CONTENT_HANDSHAKE)
      return pos === 0 ? null : 'a non-handshake record inside the ClientHello';
    if (pos + 1 < buf.length && buf[pos + 1] !== 0x03) return pos === 0 ? null : 'bad record version';
    if (pos + RECORD_HEADER > buf.length)
      return { bytes: Buffer.alloc(0), complete: false, need: pos + RECORD_HEADER };
    if (parts.length >= MAX_HELLO_RECORDS)
      return `ClientHello split over more than ${MAX_HELLO_RECORDS} records`;
    const len = buf.readUInt16BE(pos + 3);
    if (len === 0) return 'empty handshake record';
    if (len > MAX_RECORD) return `a ${len}-byte record (TLS allows ${MAX_RECORD})`;
    const body = buf.subarray(pos + RECORD_HEADER, Math.min(pos + RECORD_HEADER + len, buf.length));
    parts.push(body);
    total += body.length;
    if (need < 0 && total >= 4) {
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return 'the first handshake message is not a ClientHello';
      need = 4 + head.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO) return `ClientHello of ${need} bytes (limit ${MAX_CLIENT_HELLO})`;
    }
    if (need >= 0 && total >= need)
      return { bytes: Buffer.concat(parts).subarray(0, need), complete: true, need: 0 };
    pos += RECORD_HEADER + len;
    // this record is still arriving: nothing changes before it is complete
    if (body.length < len) return { bytes: Buffer.alloc(0), complete: false, need: pos };
  }
  return { bytes: Buffer.alloc(0), complete: false, need: pos + RECORD_HEADER };
}

function parseExtensions(ext: Reader): HelloVerdict {
  let sni: string | null = null;
  let alpn: string[] = [];
  while (ext.left() > 0) {
    const type = ext.u16();
    const data = ext.vector(2);
    if (type === null || data === null) return { kind: 'malformed', reason: 'truncated extension' };
    if (type === EXT_SERVER_NAME) {
      const list = data.vector(2);
      if (list === null) return { kind: 'malformed', reason: 'bad server_name extension' };
      while (list.left() > 0) {
        const nameType = list.u8();
        const name = list.vector(2);
        if (nameType === null || name === null) return { kind: 'malformed', reason: 'bad server_name entry' };
        if (nameType === 0 && sni === null) sni = name.text();
      }
    } else if (type === EXT_ALPN) {
      const list = data.vector(2);
      if (list === null) return { kind: 'malformed', reason: 'bad ALPN extension' };
      alpn = [];
      while (list.left() > 0) {
        const proto = list.vector(1);
        if (proto === null || proto.left() === 0) return { kind: 'malformed', reason: 'bad ALPN protocol' };
        alpn.push(proto.text());
      }
    }
  }
  return { kind: 'hello', sni: sni === '' ? null : sni, alpn };
}

/** Classifies the bytes read so far (call again with more while the answer is `more`). */
export function inspectClientHello(buf: Buffer): HelloVerdict {
  if (buf.length === 0) return { kind: 'more', need: 1 };
  const hs = handshakeBytes(buf);
  if (hs === null) return { kind: 'plaintext' };
  if (typeof hs === 'string') return { kind: 'malformed', reason: hs };
  if (!hs.complete) return { kind: 'more', need: Math.max(hs.need, buf.length + 1) };
  const r = new Reader(hs.bytes, 4, hs.bytes.length);
  if (r.take(2 + 32) === null || r.vector(1) === null)
    return { kind: 'malformed', reason: 'truncated ClientHello' };
  const suites = r.vector(2);
  if (suites === null || suites.left() < 2 || suites.left() % 2 !== 0)
    return { kind: 'malformed', reason: 'bad cipher suites' };
  const compression = r.vector(1);
  if (compression === null || compression.left() < 1)
    return { kind: 'malformed', reason: 'bad compression methods' };
  if (r.left() === 0) return { kind: 'hello', sni: null, alpn: [] }; // no extensions (old clients)
  const ext = r.vector(2);
  if (ext === null || r.left() !== 0) return { kind: 'malformed', reason: 'bad extensions block' };
  return parseExtensions(ext);
}
