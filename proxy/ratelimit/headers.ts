/**
 * The response headers of a rate-limited (or counted) request: `retry-after` (RFC 9110, whole
 * seconds) and the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy:
 * "<name>";q=<quota>;w=<window s>` and `RateLimit: "<name>";r=<remaining>;t=<reset s>`). The
 * draft's window is in whole seconds: a sub-second budget is shown scaled to one second.
 */
import type { RateLimitVerdict } from './limiter.js';

/** A structured-field string: printable ASCII, `"` and `\` escaped. */
function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function policyName(v: Pick<RateLimitVerdict, 'limit' | 'override'>): string {
  return v.override === null ? v.limit : `${v.limit} ${v.override}`;
}

/** Quota and window (seconds) as the draft wants them. */
export function policyWindow(b: { requests: number; intervalMs: number }): { q: number; w: number } {
  const w = Math.max(1, Math.round(b.intervalMs / 1000));
  return { q: Math.max(1, Math.floor((b.requests * w * 1000) / b.intervalMs)), w };
}

export function rateLimitHeaders(v: RateLimitVerdict): Record<string, string> {
  const name = sfString(policyName(v));
  const { q, w } = policyWindow(v.budget);
  const out: Record<string, string> = {
    'ratelimit-policy': `${name};q=${q};w=${w}`,
    ratelimit: `${name};r=${v.take.remaining};t=${Math.ceil(v.take.resetMs / 1000)}`,
  };
  if (!v.allowed) out['retry-after'] = String(Math.max(1, Math.ceil(v.take.retryAfterMs / 1000)));
  return out;
}
