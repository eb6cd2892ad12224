/**
 * What a rate limit does with one request, in words (weftctl explain, the sidecar's and the
 * gateway's alike): the limit and override that apply (the proxy's own selection, no token
 * taken), the budget, whether it is a bucket in this proxy or one budget in weftd's Redis (and
 * what happens when that does not answer), and for per-caller buckets which key the request
 * draws from and why — for a gateway's client address, whether x-forwarded-for was read.
 */
import type { LocalRateLimit, RateLimitBlock } from '../../pkg/proxyconfig/ratelimit.js';
import { policyName } from './headers.js';
import { RateLimiter, type RateLimitRequest } from './limiter.js';

export interface RateLimitExplanation {
  limit: string;
  override: string;
  /** local: a bucket in this proxy; global: one budget across every pod, in weftd's Redis. */
  scope: 'local' | 'global';
  requests: number;
  intervalMs: number;
  burst: number;
  /** The limit's sharedKey (`shared` unless set: a memquota's destination), or the caller's key (per-source budgets). */
  bucket: string;
  /** Per-source budgets: what the key is and where it came from. */
  key?: string;
  /** Global only: what a request gets when weftd or Redis does not answer. */
  failureMode?: 'allow' | 'deny';
  /** Global only: where the budget is kept, as far as the caller knows. */
  backend?: string;
}

/** Where the global budget lives, for the words; `redis` when weftd said (its debug answer). */
export function backendText(redis: string | undefined): string {
  return redis !== undefined
    ? `weftd's Redis at ${redis}, asked through weftd's /v1/ratelimit/check`
    : "weftd's Redis (weftd --ratelimit-redis), asked through weftd's /v1/ratelimit/check";
}

function keyText(rule: LocalRateLimit, key: string, hops: number): string {
  const k = rule.sourceKey;
  switch (k?.kind) {
    case 'clientIP':
      return hops > 0
        ? `client address ${key}: entry ${hops} from the right of x-forwarded-for (${hops} trusted ${hops === 1 ? 'proxy' : 'proxies'} in front; the connection's peer when the header is shorter)`
        : `client address ${key}: the connection's peer (x-forwarded-for is ignored: no trusted proxies in front)`;
    case 'namespace':
      return `caller namespace ${key} (from the mTLS principal)`;
    case 'header':
      return `header ${k.name}: ${key} (chosen by the caller)`;
    case 'claim':
      return `JWT claim ${k.name}: ${key}`;
    default:
      return `mTLS principal ${key}`;
  }
}

export function explainRateLimit(
  block: RateLimitBlock | undefined,
  r: RateLimitRequest,
  redis?: string,
): RateLimitExplanation | null {
  if (block === undefined) return null;
  const limiter = new RateLimiter(null);
  limiter.update(block);
  const s = limiter.select(r);
  if (s === null) return null;
  const rule = block.limits.find((l) => l.name === s.limit)!;
  const b = s.budget;
  const global = rule.scope === 'global';
  return {
    limit: s.limit,
    override: s.override ?? 'default',
    scope: global ? 'global' : 'local',
    requests: b.requests,
    intervalMs: b.intervalMs,
    burst: b.burst,
    bucket: s.key,
    ...(b.per === 'source' ? { key: keyText(rule, s.key, block.numTrustedProxies ?? 0) } : {}),
    ...(global ? { failureMode: rule.failureMode ?? 'allow', backend: backendText(redis) } : {}),
  };
}

/** One sentence: the limit, the budget, where it is counted, what is beyond it. */
export function rateLimitSentence(x: RateLimitExplanation, where: 'per pod' | 'per gateway pod'): string {
  const name = policyName({ limit: x.limit, override: x.override === 'default' ? null : x.override });
  const budget = `${x.requests} per ${x.intervalMs} ms (burst ${x.burst})`;
  const scope =
    x.scope === 'global'
      ? `one budget across every pod, kept in ${x.backend}; if it does not answer in time: ${x.failureMode === 'deny' ? '429 (failureMode deny)' : 'allowed (failureMode allow)'}`
      : where;
  const shared =
    x.bucket === 'shared'
      ? 'one bucket shared by these callers'
      : `one bucket shared by these callers, keyed ${x.bucket}`;
  const bucket = x.key !== undefined ? `the caller's own bucket, keyed by ${x.key}` : shared;
  return `rate limit ${name} applies: ${budget} ${scope}, from ${bucket}; beyond it 429 (flag RL)`;
}
