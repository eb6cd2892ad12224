/**
 * Trace-context propagation and request ids, cheap enough for every request: random hex comes
 * from a pre-filled 4 KiB buffer (one crypto call per ~100 requests, not one per id).
 *
 * W3C `traceparent` is preferred; when only B3 (`x-b3-traceid`/`x-b3-spanid` or single `b3`) is
 * present, an equivalent `traceparent` is added and B3 is forwarded unchanged; with neither, a
 * new trace is started. `x-request-id` is generated when absent, as Envoy does.
 */
import { randomFillSync } from 'node:crypto';
import type { HeaderMap } from '../router/headers.js';

const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

/** The offset in `pool` of `bytes` fresh random bytes. */
function take(bytes: number): number {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += bytes;
  return at;
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/**
 * The text of an id is written into one reused buffer and read out as one string: no hex string
 * cut into slices and joined again (half a dozen short-lived strings per request otherwise).
 */
const scratch = Buffer.alloc(64);

function hexInto(at: number, from: number, bytes: number): number {
  for (let i = 0; i < bytes; i++) {
    const b = pool[from + i]!;
    scratch[at++] = HEX_DIGITS[b >> 4]!;
    scratch[at++] = HEX_DIGITS[b & 15]!;
  }
  return at;
}

/** A v4-shaped UUID (variant/version bits set) from the pooled random bytes. */
export function requestId(): string {
  const from = take(16);
  pool[from + 6] = (pool[from + 6]! & 0x0f) | 0x40; // version 4
  pool[from + 8] = (pool[from + 8]! & 0x3f) | 0x80; // variant 10xx
  let at = hexInto(0, from, 4);
  scratch[at++] = 0x2d; // -
  at = hexInto(at, from + 4, 2);
  scratch[at++] = 0x2d;
  at = hexInto(at, from + 6, 2);
  scratch[at++] = 0x2d;
  at = hexInto(at, from + 8, 2);
  scratch[at++] = 0x2d;
  at = hexInto(at, from + 10, 6);
  return scratch.toString('latin1', 0, at);
}

/** A new W3C traceparent (`00-<trace id>-<span id>-01`, sampled) from the pooled random bytes. */
function newTraceparent(): string {
  const from = take(24);
  scratch.write('00-', 0, 'latin1');
  let at = hexInto(3, from, 16);
  scratch[at++] = 0x2d;
  at = hexInto(at, from + 16, 8);
  scratch.write('-01', at, 'latin1');
  return scratch.toString('latin1', 0, at + 3);
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

function fromB3(h: HeaderMap): string | null {
  let trace: string | undefined;
  let span: string | undefined;
  let sampled = '01';
  const single = h.b3;
  if (typeof single === 'string') {
    const parts = single.split('-');
    trace = parts[0];
    span = parts[1];
    if (parts[2] === '0') sampled = '00';
  } else {
    const t = h['x-b3-traceid'];
    const s = h['x-b3-spanid'];
    trace = typeof t === 'string' ? t : undefined;
    span = typeof s === 'string' ? s : undefined;
    if (h['x-b3-sampled'] === '0') sampled = '00';
  }
  if (trace === undefined || span === undefined) return null;
  if (trace.length === 16) trace = '0000000000000000' + trace;
  if (!HEX32.test(trace) || !HEX16.test(span)) return null;
  return `00-${trace}-${span}-${sampled}`;
}

/** Ensures `x-request-id` and `traceparent` on an outgoing header map; returns the request id. */
export function propagate(h: HeaderMap): string {
  let id = h['x-request-id'];
  if (typeof id !== 'string' || id === '') {
    id = requestId();
    h['x-request-id'] = id;
  }
  if (h.traceparent === undefined) {
    h.traceparent = fromB3(h) ?? newTraceparent();
  }
  return id;
}
