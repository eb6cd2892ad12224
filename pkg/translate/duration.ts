/**
 * Go/protobuf duration strings as Istio accepts them (`10s`, `1.5s`, `300ms`, `1m30s`) →
 * milliseconds. Returns null for anything else so callers can report the field.
 */
const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
};
const PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/y;

export function parseDurationMs(d: string): number | null {
  if (typeof d !== 'string' || d === '') return null;
  if (d === '0') return 0;
  let total = 0;
  PART.lastIndex = 0;
  let pos = 0;
  while (pos < d.length) {
    PART.lastIndex = pos;
    const m = PART.exec(d);
    if (m === null) return null;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART.lastIndex;
  }
  return Math.round(total);
}
