/**
 * The little DER (ITU-T X.690) that workload certificates need, over node:crypto: an encoder for
 * building CSRs (in the proxy) and certificates (in weftd's CA), and a strict reader for the
 * CSRs weftd receives. node:crypto does every cryptographic operation (keys, signatures, the
 * parsing of public keys and certificates); this module only lays out bytes.
 *
 * Why not an X.509 library: the proxy may load no npm package (ADR 0009), node-forge embeds
 * RSA keys only, and a CSR and a leaf are a dozen fixed fields (ADR 0010).
 *
 * The reader is for hostile input: definite, minimal lengths only (DER), low tag numbers only,
 * every child inside its parent, and a depth limit; anything else throws `DerError` with the
 * offset, never reads out of bounds. Pure: no I/O.
 */

export class DerError extends Error {}

// ------------------------------------------------------------------------------- tags

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** `[n]` context-specific tag byte: constructed (EXPLICIT or a constructed IMPLICIT type) or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new DerError(`context tag [${n}] out of range`);
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

// ------------------------------------------------------------------------------- encoder

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a low-number tag byte. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));
/** A SET OF: DER sorts the encodings (X.690 §11.6). */
export const setOf = (...items: Buffer[]): Buffer =>
  tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));
export const nullValue = (): Buffer => Buffer.from([TAG.NULL, 0]);
export const bool = (v: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0]));
export const octetString = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const ia5String = (s: string): Buffer => {
  if ([...s].some((c) => c.charCodeAt(0) > 0x7f)) throw new DerError('IA5String holds ASCII only');
  return tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));
};
/** A BIT STRING of whole bytes (signatures, keys). */
export const bitString = (b: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), b]));
/** `[n] EXPLICIT inner`. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(contextTag(n, true), inner);

/** A non-negative INTEGER from big-endian magnitude bytes (a serial) or a small number. */
export function uint(v: Buffer | number): Buffer {
  let b = typeof v === 'number' ? numberBytes(v) : Buffer.from(v);
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++; // minimal: no leading zero bytes...
  b = b.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]); // ...but stay positive
  return tlv(TAG.INTEGER, b);
}

function numberBytes(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new DerError(`not a non-negative integer: ${n}`);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from(out.length > 0 ? out : [0]);
}

/** An OBJECT IDENTIFIER from dotted text. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new DerError(`bad OID ${dotted}`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39))
    throw new DerError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: number): void => {
    const group: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) group.unshift(0x80 | (x & 0x7f));
    bytes.push(...group);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.OID, Buffer.from(bytes));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole seconds, Z. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-23T12:00:00.000Z
  const year = d.getUTCFullYear();
  const rest = iso.slice(5, 19).replace(/[-T:]/g, ''); // MMDDhhmmss
  if (year >= 1950 && year < 2050)
    return tlv(TAG.UTC_TIME, Buffer.from(`${iso.slice(2, 4)}${rest}Z`, 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${iso.slice(0, 4)}${rest}Z`, 'ascii'));
}

// ------------------------------------------------------------------------------- reader

export interface DerNode {
  tag: number;
  constructed: boolean;
  /** The whole TLV, header included (what a signature covers). */
  raw: Buffer;
  /** The value bytes. */
  content: Buffer;
  /** Offset of the TLV in the outermost buffer given to `readDer` (for messages). */
  offset: number;
}

const MAX_DEPTH = 16;

function readAt(buf: Buffer, pos: number, base: number): DerNode {
  const at = base + pos;
  if (pos + 2 > buf.length) throw new DerError(`truncated DER at byte ${at}`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high tag numbers are not supported (byte ${at})`);
  let len = buf[pos + 1]!;
  let header = 2;
  if (len === 0x80) throw new DerError(`indefinite length is not DER (byte ${at})`);
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new DerError(`length of ${n} bytes at byte ${at} is too large`);
    if (pos + 2 + n > buf.length) throw new DerError(`truncated DER length at byte ${at}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (buf[pos + 2] === 0 || len < 0x80) throw new DerError(`non-minimal length at byte ${at}`);
    header += n;
  }
  const end = pos + header + len;
  if (end > buf.length) throw new DerError(`a value at byte ${at} runs past the end of its container`);
  return {
    tag,
    constructed: (tag & 0x20) !== 0,
    raw: buf.subarray(pos, end),
    content: buf.subarray(pos + header, end),
    offset: at,
  };
}

/** Reads exactly one TLV filling `buf` (trailing bytes are an error). */
export function readDer(buf: Buffer): DerNode {
  const node = readAt(buf, 0, 0);
  if (node.raw.length !== buf.length)
    throw new DerError(`${buf.length - node.raw.length} bytes after the DER value`);
  return node;
}

/** The children of a constructed node; they must fill it exactly. */
export function children(node: DerNode, depth = 0): DerNode[] {
  if (!node.constructed) throw new DerError(`byte ${node.offset}: expected a constructed value`);
  if (depth > MAX_DEPTH) throw new DerError(`nesting deeper than ${MAX_DEPTH}`);
  const out: DerNode[] = [];
  const base = node.offset + (node.raw.length - node.content.length);
  for (let pos = 0; pos < node.content.length;) {
    const child = readAt(node.content, pos, base);
    out.push(child);
    pos += child.raw.length;
  }
  return out;
}

/** Checks the tag and returns the node (for readable parsers). */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) throw new DerError(`${what} is missing`);
  if (node.tag !== tag)
    throw new DerError(
      `${what} at byte ${node.offset} has tag 0x${node.tag.toString(16)}, expected 0x${tag.toString(16)}`,
    );
  return node;
}

/** Dotted text of an OID's content bytes. */
export function oidText(node: DerNode): string {
  const b = expectTag(node, TAG.OID, 'an OBJECT IDENTIFIER').content;
  if (b.length === 0 || b.length > 64) throw new DerError(`byte ${node.offset}: bad OID length`);
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    const byte = b[i]!;
    if (v === 0 && byte === 0x80) throw new DerError(`byte ${node.offset}: non-minimal OID arc`);
    v = v * 128 + (byte & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`byte ${node.offset}: OID arc too large`);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === b.length - 1) throw new DerError(`byte ${node.offset}: truncated OID`);
  }
  const first = arcs.shift()!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** A small non-negative INTEGER's value (versions, flags). */
export function smallInt(node: DerNode): number {
  const b = expectTag(node, TAG.INTEGER, 'an INTEGER').content;
  if (b.length === 0 || b.length > 4 || (b[0]! & 0x80) !== 0)
    throw new DerError(`byte ${node.offset}: not a small non-negative INTEGER`);
  return b.reduce((acc, x) => acc * 256 + x, 0);
}

/** A BIT STRING's bytes; `unusedBits` is the count of padding bits in the last byte. */
export function bitStringValue(node: DerNode): { bytes: Buffer; unusedBits: number } {
  const c = expectTag(node, TAG.BIT_STRING, 'a BIT STRING').content;
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0))
    throw new DerError(`byte ${node.offset}: malformed BIT STRING`);
  return { bytes: c.subarray(1), unusedBits: c[0]! };
}

/** PEM armour → DER; exactly one block of `label`, base64 only inside. */
export function pemToDer(pem: string, label: string): Buffer {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`, 'g');
  const blocks = [...pem.matchAll(re)];
  if (blocks.length !== 1) throw new DerError(`expected one PEM "${label}" block, found ${blocks.length}`);
  const der = Buffer.from(blocks[0]![1]!.replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new DerError(`the PEM "${label}" block is empty`);
  return der;
}

export function derToPem(der: Buffer, label: string): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
