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

/**
 * The limit and override that applied, and what it decided (access log). Not the bucket's key:
 * a header key may be a credential (an API key), and logs are read by more people than tokens.
 */
export function rateLimitLogFields(v: RateLimitVerdict): Record<string, unknown> {
  return {
    ratelimit: v.limit,
    ratelimit_override: v.override ?? 'default',
    ratelimit_result: v.allowed ? 'allowed' : 'limited',
  };
}

/**
 * What a limited request gets, on a sidecar's inbound side and at a gateway alike. The body
 * starts with Envoy's response detail for the filter that would have refused it: its local rate
 * limit's `local_rate_limited`, its global rate-limit service's `request_rate_limited`.
 */
export function limitedReply(v: RateLimitVerdict): {
  detail: string;
  body: string;
  headers: Record<string, string>;
} {
  const detail = policyName(v);
  return {
    detail,
    body: `${v.global ? 'request_rate_limited' : 'local_rate_limited'}: ${detail} [flag RL]\n`,
    headers: { ...rateLimitHeaders(v), 'content-type': 'text/plain; charset=utf-8' },
  };
}
