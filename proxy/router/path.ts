/**
 * Request path normalization, Istio's `meshConfig.pathNormalization` (default BASE) with the
 * Envoy semantics Istio configures for each mode:
 *
 * - NONE: the path is matched and forwarded as received.
 * - BASE: Envoy's `normalize_path`, the Chromium URL path canonicalizer Envoy embeds: RFC 3986
 *   dot segments removed (`.`, `..`, and their `%2e` spellings), percent-encoded unreserved
 *   characters (ALPHA DIGIT `-` `.` `_` `~`) decoded, `\` turned into `/`, characters a URL
 *   may not carry raw (`"` `<` `>` `^` `` ` `` `{` `|` `}`, space, controls, bytes >= 0x80)
 *   percent-encoded, every other escape kept byte for byte (hex case included). `%00` (or a raw
 *   NUL) cannot be normalized safely: null, the caller answers 400.
 * - MERGE_SLASHES: BASE, then runs of `/` merged into one (Envoy `merge_slashes`).
 * - DECODE_AND_MERGE_SLASHES: `%2F`/`%5C` decoded first (Envoy
 *   `path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD`), then MERGE_SLASHES.
 *
 * The input is the path alone (no query, no fragment): the query is never normalized. Strings
 * are byte strings (one char per byte, as node:http's latin1 `req.url`); a char above 0xFF
 * cannot come off the wire and is refused (null). Pure: no I/O, no state.
 */

import type { PathNormalizationSetting, PathNormalizationType } from '../../pkg/proxyconfig/types.js';

/** A mode the proxy runs (Istio's DEFAULT is resolved to BASE). */
export type PathNormalization = Exclude<PathNormalizationType, 'DEFAULT'>;
export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'BASE';

/** The mode a config asks for: absent or DEFAULT means BASE, as in Istio. */
export function resolvePathNormalization(setting: PathNormalizationSetting | undefined): PathNormalization {
  const n = setting?.normalization;
  return n === undefined || n === 'DEFAULT' ? DEFAULT_PATH_NORMALIZATION : n;
}

// Character classes of the canonicalizer (Chromium's kPathCharLookup as Envoy ships it).
const PASS = 0;
/** Needs a look: dot, backslash, percent, and every ESCAPE/INVALID character. */
const SPECIAL = 1;
const ESCAPE_BIT = 2;
const ESCAPE = ESCAPE_BIT | SPECIAL;
/** Decoded when it arrives percent-encoded; copied as is when raw. */
const UNESCAPE = 4;
const INVALID_BIT = 8;
const INVALID = INVALID_BIT | SPECIAL;

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PERCENT = 0x25;
const HEX = '0123456789ABCDEF';

const TABLE = buildTable();

function buildTable(): Uint8Array {
  // controls, space, DEL and every byte >= 0x80 are escaped; the rest is set below
  const t = new Uint8Array(256).fill(ESCAPE);
  t[0] = INVALID;
  for (const ch of "!$&'()*+,/:;=@[]") t[ch.charCodeAt(0)] = PASS;
  const unreserved = '-_~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  for (const ch of unreserved) t[ch.charCodeAt(0)] = UNESCAPE;
  t[DOT] = SPECIAL;
  // still ESCAPE: ' ' " # % < > ? \ ^ ` { | } (\ and % have their own handling)
  return t;
}

/** Normalizes `path` (without query) per `mode`; null when it cannot be normalized safely (400). */
export function normalizePath(path: string, mode: PathNormalization): string | null {
  switch (mode) {
    case 'NONE':
      return path;
    case 'BASE':
      return canonicalPath(path);
    case 'MERGE_SLASHES': {
      const c = canonicalPath(path);
      return c === null ? null : mergeSlashes(c);
    }
    case 'DECODE_AND_MERGE_SLASHES': {
      const c = canonicalPath(unescapeSlashes(path));
      return c === null ? null : mergeSlashes(c);
    }
  }
}

/** `%2F`/`%2f` → `/` and `%5C`/`%5c` → `\` (one left-to-right pass, like Envoy's unescapeSlashes). */
export function unescapeSlashes(path: string): string {
  if (path.indexOf('%') < 0) return path;
  return path.replace(/%2F|%5C/gi, (m) => (m[2] === 'F' || m[2] === 'f' ? '/' : '\\'));
}

/**
 * Envoy's merge_slashes: runs of `/` become one, a leading and a trailing slash are kept. One
 * deliberate difference: a path of slashes only gives `/` (Envoy leaves `//` as is), so a merged
 * path never has an empty segment.
 */
export function mergeSlashes(path: string): string {
  if (path.indexOf('//') < 0) return path;
  const lead = path.startsWith('/') ? '/' : '';
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.length === 0) return '/';
  return `${lead}${segments.join('/')}${path.endsWith('/') ? '/' : ''}`;
}

/** RFC 3986 normalization as Envoy's normalize_path does it (see the module comment); null = reject. */
export function canonicalPath(path: string): string | null {
  if (alreadyCanonical(path)) return path;
  return new Canonicalizer(path).run();
}

/** The common case, checked without allocating: nothing to decode, escape, or resolve. */
function alreadyCanonical(path: string): boolean {
  if (path.charCodeAt(0) !== SLASH) return false;
  let prev = SLASH;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c > 0xff) return false;
    const f = TABLE[c]!;
    // a dot is harmless unless it may start a dot segment (right after a slash)
    if ((f & SPECIAL) !== 0 && !(c === DOT && prev !== SLASH)) return false;
    prev = c;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The byte `%XY` at `at` stands for, or -1 if it is not a valid escape. */
function escapedByte(code: (i: number) => number, at: number, end: number): number {
  if (at + 3 > end) return -1;
  const hi = hexValue(code(at + 1));
  const lo = hexValue(code(at + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** Output scratch shared by every call (synchronous, never re-entered); grows to the longest path seen. */
let scratch = Buffer.allocUnsafe(1024);

/** Chromium's DoPartialPath over a byte string, writing bytes into a scratch buffer. */
class Canonicalizer {
  private readonly out: Buffer;
  private n = 0;
  private ok = true;
  /** Output index of the last `%` that did not start a valid escape (nested-escape defence). */
  private lastInvalidPercent = -10;
  private readonly end: number;
  private readonly inCode = (i: number): number => this.s.charCodeAt(i);
  private readonly outCode = (i: number): number => this.out[i]!;

  constructor(private readonly s: string) {
    this.end = s.length;
    // every input byte yields at most 3 output bytes; +4 for the leading slash and a nested fix
    const need = s.length * 3 + 4;
    if (scratch.length < need) scratch = Buffer.allocUnsafe(need);
    this.out = scratch;
  }

  run(): string | null {
    const s = this.s;
    if (this.end === 0) return '/';
    const first = s.charCodeAt(0);
    if (first !== SLASH && first !== BACKSLASH) this.out[this.n++] = SLASH;
    for (let i = 0; i < this.end; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) return null;
      const f = TABLE[c]!;
      if ((f & SPECIAL) === 0) this.out[this.n++] = c;
      else i = this.special(i, c, f);
    }
    if (!this.ok) return null;
    return this.out.toString('latin1', 0, this.n);
  }

  /** Handles one special character at `i`; returns the index of the last input char consumed. */
  private special(i: number, c: number, f: number): number {
    const dotLen = this.dotAt(i);
    if (dotLen > 0) return this.dot(i, dotLen);
    if (c === BACKSLASH) {
      this.out[this.n++] = SLASH;
      return i;
    }
    if (c === PERCENT) return this.percent(i);
    if ((f & INVALID_BIT) !== 0) this.ok = false;
    this.appendEscaped(c);
    return i;
  }

  /** 1 for `.`, 3 for `%2e`/`%2E`, else 0. */
  private dotAt(i: number): number {
    const s = this.s;
    if (i >= this.end) return 0;
    const c = s.charCodeAt(i);
    if (c === DOT) return 1;
    if (c === PERCENT && i + 3 <= this.end && s.charCodeAt(i + 1) === 0x32) {
      const e = s.charCodeAt(i + 2);
      if (e === 0x65 || e === 0x45) return 3;
    }
    return 0;
  }

  private isSlashAt(i: number): boolean {
    const c = this.s.charCodeAt(i);
    return c === SLASH || c === BACKSLASH;
  }

  private dot(i: number, dotLen: number): number {
    if (this.n === 0 || this.out[this.n - 1] !== SLASH) {
      // part of a segment name, not a dot segment
      this.out[this.n++] = DOT;
      return i + dotLen - 1;
    }
    const after = i + dotLen;
    if (after === this.end) return after - 1; // "/." at the end: current directory
    if (this.isSlashAt(after)) return after; // "/./": skip it and its slash
    const second = this.dotAt(after);
    if (second > 0) {
      const afterSecond = after + second;
      if (afterSecond === this.end) {
        this.backUpToPreviousSlash();
        return afterSecond - 1;
      }
      if (this.isSlashAt(afterSecond)) {
        this.backUpToPreviousSlash();
        return afterSecond;
      }
    }
    this.out[this.n++] = DOT; // "..x" or ".x": a name
    return i + dotLen - 1;
  }

  /** The output ends with `/`: drop the last segment, never above the first slash. */
  private backUpToPreviousSlash(): void {
    let i = this.n - 1;
    if (i === 0) return;
    i--;
    while (this.out[i] !== SLASH && i > 0) i--;
    this.n = i + 1;
  }

  private percent(i: number): number {
    const v = escapedByte(this.inCode, i, this.end);
    if (v < 0) {
      // not an escape: kept as is (Chromium is permissive), remembered for the nested check
      this.lastInvalidPercent = this.n;
      this.out[this.n++] = PERCENT;
      return i;
    }
    const flags = TABLE[v]!;
    if ((flags & UNESCAPE) !== 0) {
      this.out[this.n++] = v;
      if (this.lastInvalidPercent >= this.n - 3) this.fixNestedEscape(i + 3);
    } else {
      // kept escaped, hex digits untouched (a server may be case-sensitive about them)
      this.out[this.n++] = PERCENT;
      this.out[this.n++] = this.s.charCodeAt(i + 1);
      this.out[this.n++] = this.s.charCodeAt(i + 2);
      if ((flags & INVALID_BIT) !== 0) this.ok = false;
    }
    return i + 2;
  }

  /**
   * `%%30%30` would come out as `%00` and `%%32%65` as `%2e`: escapes that a second decoding
   * (the upstream's) turns into a NUL or a dot segment. When a decoded byte completes a valid
   * escape with an earlier stray `%`, that `%` becomes `%25` (Chromium's CheckForNestedEscapes),
   * which also keeps normalization idempotent.
   */
  private fixNestedEscape(nextInput: number): void {
    const lip = this.lastInvalidPercent;
    const length = this.n;
    const lastUnescaped = this.out[length - 1]!;
    const appendNext = lip === length - 2;
    if (appendNext) {
      if (nextInput === this.end || this.s.charCodeAt(nextInput) >= 0x80) return;
      this.out[this.n++] = this.s.charCodeAt(nextInput);
    }
    if (escapedByte(this.outCode, lip, this.n) >= 0) {
      if (!appendNext) this.out[this.n++] = this.out[lip + 1]!;
      this.out[lip + 1] = 0x32; // '2'
      this.out[lip + 2] = 0x35; // '5'
      this.out[this.n++] = lastUnescaped;
    } else if (appendNext) {
      this.n = length; // undo: the next input char is processed normally
    }
  }

  private appendEscaped(c: number): void {
    this.out[this.n++] = PERCENT;
    this.out[this.n++] = HEX.charCodeAt(c >> 4);
    this.out[this.n++] = HEX.charCodeAt(c & 15);
  }
}
