/**
 * The proxy config's `rateLimits` block: local rate limits a sidecar enforces on its inbound side
 * (weft's RateLimit with `scope: local`, and Istio's `memquota`, pkg/translate/ratelimit.ts).
 * Each limit is a token bucket per destination pod; an override (first match wins) replaces the
 * default budget for the callers it matches. Plain JSON, durations in milliseconds.
 */

/** A budget: `requests` tokens per `intervalMs`, at most `burst` at once. */
export interface RateBudget {
  requests: number;
  intervalMs: number;
  /** Bucket capacity; default `requests`. */
  burst?: number;
  /**
   * One bucket for every caller the budget applies to (`shared`), or one per caller (`source`,
   * keyed by the limit's `sourceKey`).
   */
  per?: 'shared' | 'source';
}

/**
 * How callers are told apart for `per: source` buckets. `clientIP`: the downstream peer's
 * address, or at a gateway behind `numTrustedProxies` proxies the address they vouch for in
 * x-forwarded-for (RateLimitBlock.numTrustedProxies).
 */
export type SourceKey =
  | { kind: 'principal' }
  | { kind: 'namespace' }
  | { kind: 'clientIP' }
  | { kind: 'header'; name: string }
  | { kind: 'claim'; name: string };

/** Who an override applies to: every field set must match (lists: any element). */
export interface SourceSelector {
  /** SPIFFE principals of the mTLS peer, exact or `*`-suffix/prefix as AuthorizationPolicy. */
  principals?: string[];
  /** The mTLS peer's namespace. */
  namespaces?: string[];
  /** A request header with one of these values (any value when `values` is absent). */
  header?: { name: string; values?: string[] };
  /** A claim of the verified JWT (RequestAuthentication) with one of these values. */
  claim?: { name: string; values?: string[] };
}

export interface RateLimitOverride {
  /** Shown in metrics, the access log and explain: the override's name or `overrides[i]`. */
  name: string;
  source: SourceSelector;
  budget: RateBudget;
}

export interface LocalRateLimit {
  /** e.g. `RateLimit demo/ratings`, `memquota istio-system/handler requestcount`. */
  name: string;
  /** Workload ports it applies to; absent: every port. */
  ports?: number[];
  /** Path prefixes (normalized path, query excluded); absent: every path. */
  pathPrefixes?: string[];
  /** Methods (upper case); absent: every method. */
  methods?: string[];
  budget: RateBudget;
  /**
   * What metrics, the access log and explain call the default budget (a memquota override that
   * matches every caller, e.g. `overrides[1]`); absent: `default`.
   */
  defaultName?: string;
  overrides?: RateLimitOverride[];
  /** Default: the peer's principal (plaintext callers share the key `anonymous`). */
  sourceKey?: SourceKey;
  /**
   * The key of the limit's shared (`per: shared`) buckets; absent: `shared`. A memquota sets its
   * destination dimension's value (`ratings`): with `scope: global` the one name of a memquota
   * covers many destinations, and each keeps its own budget in weftd's Redis as Mixer's counters
   * per dimension set did. In a local limit each pod has its own buckets anyway.
   */
  sharedKey?: string;
  /**
   * `global`: the bucket lives in weftd's Redis (one budget across every pod; ADR 0017) and the
   * sidecar asks weftd per request; absent: a token bucket in this sidecar.
   */
  scope?: 'global';
  /** Global only: what a request gets when weftd or Redis does not answer in time (default allow). */
  failureMode?: 'allow' | 'deny';
}

export interface RateLimitBlock {
  /** Checked in order; the first that applies to a request decides it (one limit per request). */
  limits: LocalRateLimit[];
  /** Per-source buckets kept per limit before the least recently used is evicted (default 10000). */
  maxKeysPerLimit?: number;
  /**
   * Gateways only (Istio's gatewayTopology.numTrustedProxies): proxies in front of this one, so
   * the client address a `clientIP` key uses is the Nth entry from the right of
   * x-forwarded-for; absent or 0: the peer address (any x-forwarded-for is the client's to forge).
   */
  numTrustedProxies?: number;
}

/** Bounds shared by the webhook and the proxy's own check (docs/limits.md). */
export const RATE_LIMIT_BOUNDS = {
  /** Shortest interval: below 1 ms the clock cannot tell requests apart. */
  minIntervalMs: 1,
  /** Longest interval: 1 day; longer windows belong to a quota system, not a bucket. */
  maxIntervalMs: 86_400_000,
  /** Most requests (and burst) in one budget. */
  maxRequests: 1_000_000_000,
  maxOverrides: 64,
  maxLimits: 256,
  maxKeysPerLimit: 1_000_000,
  /** More hops than any real chain of load balancers; bounds the x-forwarded-for walk. */
  maxTrustedProxies: 16,
  /** A Service name or label value is at most 63; weftd takes check keys up to 160. */
  maxSharedKeyChars: 128,
} as const;

export const DEFAULT_MAX_KEYS_PER_LIMIT = 10_000;

interface Problem {
  path: string;
  message: string;
}
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((s) => typeof s === 'string' && s !== '');

function checkBudget(b: unknown, path: string, out: Problem[]): void {
  if (!isObj(b)) return void out.push({ path, message: 'must be an object' });
  const B = RATE_LIMIT_BOUNDS;
  const intIn = (k: string, min: number, max: number, optional: boolean): void => {
    const v = b[k];
    if (v === undefined && optional) return;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
      out.push({ path: `${path}.${k}`, message: `must be an integer in ${min}..${max}` });
  };
  intIn('requests', 1, B.maxRequests, false);
  intIn('intervalMs', B.minIntervalMs, B.maxIntervalMs, false);
  intIn('burst', 1, B.maxRequests, true);
  if (b.per !== undefined && b.per !== 'shared' && b.per !== 'source')
    out.push({ path: `${path}.per`, message: 'must be shared or source' });
}

function checkSourceKey(k: unknown, path: string, out: Problem[]): void {
  if (k === undefined) return;
  if (!isObj(k)) return void out.push({ path, message: 'must be an object' });
  if (k.kind === 'principal' || k.kind === 'namespace' || k.kind === 'clientIP') return;
  if (k.kind === 'header' || k.kind === 'claim') {
    if (typeof k.name !== 'string' || k.name === '')
      out.push({ path: `${path}.name`, message: 'must be a non-empty string' });
    return;
  }
  out.push({ path: `${path}.kind`, message: 'must be principal, namespace, clientIP, header or claim' });
}

function checkSelector(s: unknown, path: string, out: Problem[]): void {
  if (!isObj(s)) return void out.push({ path, message: 'must be an object' });
  for (const k of ['principals', 'namespaces'])
    if (s[k] !== undefined && !isStrList(s[k]))
      out.push({ path: `${path}.${k}`, message: 'must be a list of non-empty strings' });
  for (const k of ['header', 'claim']) {
    const v = s[k];
    if (v === undefined) continue;
    if (!isObj(v) || typeof v.name !== 'string' || v.name === '')
      out.push({ path: `${path}.${k}`, message: 'must be an object with a non-empty name' });
    else if (v.values !== undefined && !isStrList(v.values))
      out.push({ path: `${path}.${k}.values`, message: 'must be a list of non-empty strings' });
  }
}

export function validateRateLimitBlock(block: unknown): Problem[] {
  const out: Problem[] = [];
  if (block === undefined) return out;
  if (!isObj(block)) return [{ path: 'rateLimits', message: 'must be an object' }];
  const B = RATE_LIMIT_BOUNDS;
  const mk = block.maxKeysPerLimit;
  if (mk !== undefined && (!Number.isInteger(mk) || (mk as number) < 1 || (mk as number) > B.maxKeysPerLimit))
    out.push({
      path: 'rateLimits.maxKeysPerLimit',
      message: `must be an integer in 1..${B.maxKeysPerLimit}`,
    });
  const hops = block.numTrustedProxies;
  if (
    hops !== undefined &&
    (!Number.isInteger(hops) || (hops as number) < 0 || (hops as number) > B.maxTrustedProxies)
  )
    out.push({
      path: 'rateLimits.numTrustedProxies',
      message: `must be an integer in 0..${B.maxTrustedProxies}`,
    });
  const limits = block.limits;
  if (!Array.isArray(limits)) return [...out, { path: 'rateLimits.limits', message: 'must be a list' }];
  if (limits.length > B.maxLimits)
    out.push({ path: 'rateLimits.limits', message: `at most ${B.maxLimits} limits` });
  limits.forEach((l: unknown, i) => {
    const p = `rateLimits.limits[${i}]`;
    if (!isObj(l)) return void out.push({ path: p, message: 'must be an object' });
    if (typeof l.name !== 'string' || l.name === '')
      out.push({ path: `${p}.name`, message: 'must be a non-empty string' });
    if (
      l.ports !== undefined &&
      !(Array.isArray(l.ports) && l.ports.every((x) => Number.isInteger(x) && x >= 1 && x <= 65535))
    )
      out.push({ path: `${p}.ports`, message: 'must be a list of ports 1..65535' });
    for (const k of ['pathPrefixes', 'methods'])
      if (l[k] !== undefined && !isStrList(l[k]))
        out.push({ path: `${p}.${k}`, message: 'must be a list of non-empty strings' });
    checkBudget(l.budget, `${p}.budget`, out);
    if (l.defaultName !== undefined && (typeof l.defaultName !== 'string' || l.defaultName === ''))
      out.push({ path: `${p}.defaultName`, message: 'must be a non-empty string' });
    checkSourceKey(l.sourceKey, `${p}.sourceKey`, out);
    if (
      l.sharedKey !== undefined &&
      (typeof l.sharedKey !== 'string' || l.sharedKey === '' || l.sharedKey.length > B.maxSharedKeyChars)
    )
      out.push({
        path: `${p}.sharedKey`,
        message: `must be a string of 1..${B.maxSharedKeyChars} characters`,
      });
    if (l.scope !== undefined && l.scope !== 'global')
      out.push({ path: `${p}.scope`, message: 'must be "global" or absent (local)' });
    if (l.failureMode !== undefined && l.failureMode !== 'allow' && l.failureMode !== 'deny')
      out.push({ path: `${p}.failureMode`, message: 'must be "allow" or "deny"' });
    if (l.overrides === undefined) return;
    if (!Array.isArray(l.overrides) || l.overrides.length > B.maxOverrides)
      return void out.push({
        path: `${p}.overrides`,
        message: `must be a list of at most ${B.maxOverrides}`,
      });
    l.overrides.forEach((o: unknown, j) => {
      const q = `${p}.overrides[${j}]`;
      if (!isObj(o)) return void out.push({ path: q, message: 'must be an object' });
      if (typeof o.name !== 'string' || o.name === '')
        out.push({ path: `${q}.name`, message: 'must be a non-empty string' });
      checkSelector(o.source, `${q}.source`, out);
      checkBudget(o.budget, `${q}.budget`, out);
    });
  });
  return out;
}
