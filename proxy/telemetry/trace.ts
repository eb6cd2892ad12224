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

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const s = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return s;
}

/** A v4-shaped UUID (variant/version bits set) from the pooled random bytes. */
export function requestId(): string {
  const h = randomHex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
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
    h.traceparent = fromB3(h) ?? `00-${randomHex(16)}-${randomHex(8)}-01`;
  }
  return id;
}
