/**
 * The sidecar's local rate limiter: the config's `rateLimits` block compiled into matchers and
 * token buckets. A request is checked against the first limit that applies to it (port, path
 * prefix, method); within it, the first override whose source selector matches the caller
 * decides the budget, else the limit's default. A `per: source` budget keeps one bucket per
 * caller in a bounded LRU: idle buckets (full again, so dropping them loses nothing) expire, and
 * past `maxKeysPerLimit` the least recently used is evicted (counted). A flood of distinct keys
 * (forged header values) therefore costs bounded memory, and keys are capped in length.
 *
 * Buckets survive config pushes: a limit whose compiled form is unchanged keeps its state.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  DEFAULT_MAX_KEYS_PER_LIMIT,
  type LocalRateLimit,
  type RateBudget,
  type RateLimitBlock,
  type SourceKey,
  type SourceSelector,
} from '../../pkg/proxyconfig/ratelimit.js';
import { labelText, type MetricsRegistry } from '../telemetry/metrics.js';
import { TokenBucket, type BucketParams, type TakeResult } from './bucket.js';
import { BACKEND_ERRORS_METRIC, ThrottledLog, type GlobalBackend } from './global.js';
import type { Logger } from '../../pkg/log/index.js';
import { remoteAddress } from '../authz/engine.js';

export const RATELIMIT_METRIC = 'weft_proxy_ratelimit_requests_total';
export const EVICTIONS_METRIC = 'weft_proxy_ratelimit_evictions_total';
/** Longer source keys (header values, claims) are hashed: 10,000 keys of 60 KiB would be 600 MB. */
export const MAX_KEY_CHARS = 128;
/** Idle buckets checked for expiry per new key (amortized sweep, no timer). */
const SWEEP_PER_INSERT = 4;

export interface RateLimitRequest {
  port: number;
  /** Normalized origin-form target (query ignored for prefixes). */
  target: string;
  method: string;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  /** mTLS peer's SPIFFE ID; null on plaintext. */
  principal: string | null;
  /** Verified JWT claims (RequestAuthentication); null without a token. */
  claims: Record<string, unknown> | null;
  /** The downstream connection's peer address (`clientIP` keys); absent: unknown. */
  peerIp?: string | undefined;
}

export interface RateLimitVerdict {
  allowed: boolean;
  limit: string;
  /** The override that applied; null: the default budget. */
  override: string | null;
  budget: Required<RateBudget>;
  /** The bucket's key: the limit's sharedKey (default `shared`), or the caller's key (per-source budgets). */
  key: string;
  take: TakeResult;
  /** Decided by the global backend (or its failure mode): a `scope: global` limit. */
  global?: true;
}

/** An LRU entry: doubly linked, most recent at `head`. */
interface Entry {
  key: string;
  b: TokenBucket;
  seen: number;
  prev: Entry | null;
  next: Entry | null;
}

/**
 * A per-budget bucket store: one shared bucket, or an LRU of per-caller buckets. The LRU is a Map
 * for lookup plus a linked list for order: a hit relinks (no Map delete/insert: V8's ordered
 * maps leave tombstones at their head that `keys().next()` walks, which made a key flood cost
 * ~10 µs a request), an eviction unlinks the tail.
 */
class Buckets {
  private shared: TokenBucket | null = null;
  private readonly byKey = new Map<string, Entry>();
  private head: Entry | null = null;
  private tail: Entry | null = null;
  evictions = 0;
  expired = 0;

  constructor(
    readonly params: BucketParams,
    readonly perSource: boolean,
    private readonly maxKeys: number,
  ) {}

  /** Milliseconds after which an untouched bucket is full again (and may be forgotten). */
  private get idleMs(): number {
    return (this.params.burst * this.params.intervalMs) / this.params.requests;
  }

  private unlink(e: Entry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
  }

  private pushHead(e: Entry): void {
    e.next = this.head;
    if (this.head !== null) this.head.prev = e;
    this.head = e;
    this.tail ??= e;
  }

  private drop(e: Entry): void {
    this.unlink(e);
    this.byKey.delete(e.key);
  }

  take(key: string, now: number): TakeResult {
    if (!this.perSource) return (this.shared ??= new TokenBucket(this.params, now)).take(now);
    const hit = this.byKey.get(key);
    if (hit !== undefined) {
      if (hit !== this.head) {
        this.unlink(hit);
        this.pushHead(hit);
      }
      hit.seen = now;
      return hit.b.take(now);
    }
    this.sweep(now);
    if (this.byKey.size >= this.maxKeys && this.tail !== null) {
      this.drop(this.tail);
      this.evictions++;
    }
    const e: Entry = { key, b: new TokenBucket(this.params, now), seen: now, prev: null, next: null };
    this.byKey.set(key, e);
    this.pushHead(e);
    return e.b.take(now);
  }

  /** Drops a few least recently used buckets that have been idle long enough to be full. */
  private sweep(now: number): void {
    const idle = this.idleMs;
    for (let n = 0; n < SWEEP_PER_INSERT && this.tail !== null; n++) {
      // a clock that went backwards leaves `seen` in the future: not idle, kept (bounded by maxKeys)
      if (now - this.tail.seen < idle) break;
      this.drop(this.tail);
      this.expired++;
    }
  }

  get size(): number {
    return this.byKey.size + (this.shared === null ? 0 : 1);
  }
}

interface CompiledBudget {
  name: string | null;
  budget: Required<RateBudget>;
  buckets: Buckets;
  /** Precomputed metric label text per result (no per-request string building). */
  labels: { allowed: string; limited: string };
  match: ((r: RateLimitRequest) => boolean) | null;
}

interface CompiledLimit {
  signature: string;
  rule: LocalRateLimit;
  applies: (r: RateLimitRequest) => boolean;
  keyOf: (r: RateLimitRequest) => string;
  budgets: CompiledBudget[];
  fallback: CompiledBudget;
}

function resolve(b: RateBudget): Required<RateBudget> {
  return {
    requests: b.requests,
    intervalMs: b.intervalMs,
    burst: b.burst ?? b.requests,
    per: b.per ?? 'shared',
  };
}

/** AuthorizationPolicy-style string match: exact, `*`, `prefix*` or `*suffix`. */
function glob(pattern: string, v: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return v.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return v.endsWith(pattern.slice(1));
  return v === pattern;
}

function headerValue(r: RateLimitRequest, name: string): string | undefined {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function claimValue(r: RateLimitRequest, name: string): string | undefined {
  const v = r.claims?.[name];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** `spiffe://td/ns/<ns>/sa/<sa>` → `<ns>`. */
export function principalNamespace(p: string | null): string | undefined {
  if (p === null) return undefined;
  const m = /\/ns\/([^/]+)\/sa\//.exec(p);
  return m?.[1];
}

function selectorMatcher(s: SourceSelector): (r: RateLimitRequest) => boolean {
  return (r) => {
    if (
      s.principals !== undefined &&
      (r.principal === null || !s.principals.some((p) => glob(p, r.principal!)))
    )
      return false;
    if (s.namespaces !== undefined) {
      const ns = principalNamespace(r.principal);
      if (ns === undefined || !s.namespaces.includes(ns)) return false;
    }
    if (s.header !== undefined) {
      const v = headerValue(r, s.header.name);
      if (v === undefined || (s.header.values !== undefined && !s.header.values.includes(v))) return false;
    }
    if (s.claim !== undefined) {
      const v = claimValue(r, s.claim.name);
      if (v === undefined || (s.claim.values !== undefined && !s.claim.values.includes(v))) return false;
    }
    return true;
  };
}

function capKey(k: string): string {
  return k.length <= MAX_KEY_CHARS ? k : `sha256:${createHash('sha256').update(k).digest('hex')}`;
}

/**
 * The client address a `clientIP` key uses: the peer, or behind `hops` trusted proxies the
 * address they put in x-forwarded-for (only the last `hops` entries are read; with too few the
 * peer). Without trusted proxies x-forwarded-for is ignored: it is the client's to forge, and a
 * forged value per request would be a fresh bucket per request.
 */
export function clientAddress(r: RateLimitRequest, hops: number): string {
  if (r.peerIp === undefined || r.peerIp === '') return 'unknown';
  return remoteAddress(r.peerIp, hops > 0 ? r.headers['x-forwarded-for'] : undefined, hops);
}

function keyFn(k: SourceKey | undefined, hops: number): (r: RateLimitRequest) => string {
  switch (k?.kind) {
    case 'clientIP':
      return (r) => capKey(clientAddress(r, hops));
    case 'namespace':
      return (r) => principalNamespace(r.principal) ?? 'anonymous';
    case 'header': {
      const name = k.name;
      return (r) => capKey(headerValue(r, name) ?? '(none)');
    }
    case 'claim': {
      const name = k.name;
      return (r) => capKey(claimValue(r, name) ?? '(none)');
    }
    default:
      return (r) => r.principal ?? 'anonymous';
  }
}

function appliesFn(l: LocalRateLimit): (r: RateLimitRequest) => boolean {
  const ports = l.ports === undefined ? null : new Set(l.ports);
  const methods = l.methods === undefined ? null : new Set(l.methods.map((m) => m.toUpperCase()));
  const prefixes = l.pathPrefixes ?? null;
  return (r) => {
    if (ports !== null && !ports.has(r.port)) return false;
    if (methods !== null && !methods.has(r.method)) return false;
    if (prefixes === null) return true;
    const q = r.target.indexOf('?');
    const path = q < 0 ? r.target : r.target.slice(0, q);
    return prefixes.some((p) => path.startsWith(p));
  };
}

export class RateLimiter {
  private limits: CompiledLimit[] = [];
  private counters: Map<string, number> | null = null;
  private readonly now: () => number;
  /** weftd's check endpoint for `scope: global` limits (null: every global check is a backend error). */
  private global: GlobalBackend | null;
  private readonly backendLog: ThrottledLog;
  /** Global checks that failed (the failure mode applied). */
  backendErrors = 0;

  constructor(
    private readonly metrics: MetricsRegistry | null,
    opts: { now?: () => number; global?: GlobalBackend; log?: Logger } = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.global = opts.global ?? null;
    this.backendLog = new ThrottledLog(opts.log ?? null);
    if (metrics !== null) {
      metrics.gauge('weft_proxy_ratelimit_buckets', 'Token buckets kept per rate limit.', () =>
        this.limits.map((l) => [
          labelText({ limit: l.rule.name }),
          l.budgets.reduce((n, b) => n + b.buckets.size, 0),
        ]),
      );
    }
  }

  get active(): boolean {
    return this.limits.length > 0;
  }

  /** A new config's block; limits whose compiled form is unchanged keep their buckets. */
  update(block: RateLimitBlock | undefined): void {
    const maxKeys = block?.maxKeysPerLimit ?? DEFAULT_MAX_KEYS_PER_LIMIT;
    const hops = block?.numTrustedProxies ?? 0;
    const old = new Map(this.limits.map((l) => [l.signature, l]));
    this.limits = (block?.limits ?? []).map((rule) => {
      const signature = `${maxKeys}|${hops}|${JSON.stringify(rule)}`;
      return old.get(signature) ?? this.compile(rule, signature, maxKeys, hops);
    });
  }

  private compile(rule: LocalRateLimit, signature: string, maxKeys: number, hops: number): CompiledLimit {
    // the key cap is per limit: its per-source budgets (overrides and default) share it, or a
    // limit with 64 per-source overrides would hold 65 times the keys it advertises
    const perSource = [...(rule.overrides ?? []).map((o) => o.budget), rule.budget].filter(
      (b) => b.per === 'source',
    ).length;
    const keysPerBudget = Math.max(1, Math.ceil(maxKeys / Math.max(1, perSource)));
    const mk = (name: string | null, b: RateBudget, match: CompiledBudget['match']): CompiledBudget => {
      const budget = resolve(b);
      const base = { limit: rule.name, override: name ?? 'default' };
      return {
        name,
        budget,
        buckets: new Buckets(budget, budget.per === 'source', keysPerBudget),
        labels: {
          allowed: labelText({ ...base, result: 'allowed' }),
          limited: labelText({ ...base, result: 'limited' }),
        },
        match,
      };
    };
    return {
      signature,
      rule,
      applies: appliesFn(rule),
      keyOf: keyFn(rule.sourceKey, hops),
      budgets: (rule.overrides ?? []).map((o) => mk(o.name, o.budget, selectorMatcher(o.source))),
      fallback: mk(rule.defaultName ?? null, rule.budget, null),
    };
  }

  /** The limit and budget a request falls under, without taking a token (explain). */
  select(r: RateLimitRequest): Omit<RateLimitVerdict, 'allowed' | 'take'> | null {
    const s = this.pick(r);
    return s === null
      ? null
      : { limit: s.l.rule.name, override: s.chosen.name, budget: s.chosen.budget, key: s.key };
  }

  /** The first limit that applies, its first matching override (else the default), the bucket key. */
  private pick(r: RateLimitRequest): { l: CompiledLimit; chosen: CompiledBudget; key: string } | null {
    for (const l of this.limits) {
      if (!l.applies(r)) continue;
      let chosen = l.fallback;
      for (const b of l.budgets)
        if (b.match!(r)) {
          chosen = b;
          break;
        }
      return { l, chosen, key: chosen.budget.per === 'source' ? l.keyOf(r) : (l.rule.sharedKey ?? 'shared') };
    }
    return null;
  }

  setGlobal(g: GlobalBackend | null): void {
    this.global = g;
  }

  /** Does any limit need weftd (the caller must use checkAsync)? */
  get hasGlobal(): boolean {
    return this.limits.some((l) => l.rule.scope === 'global');
  }

  /**
   * Like check, but a `scope: global` limit asks weftd for the token (ADR 0017); a failed ask
   * applies the limit's failure mode (default allow), counted and logged (throttled).
   */
  async checkAsync(r: RateLimitRequest): Promise<RateLimitVerdict | null> {
    const s = this.pick(r);
    if (s === null) return null;
    if (s.l.rule.scope !== 'global') return this.check(r);
    const { l, chosen, key } = s;
    const mode = l.rule.failureMode ?? 'allow';
    let take: TakeResult;
    try {
      if (this.global === null)
        throw new Error('this sidecar has no global rate-limit backend (weftd address)');
      const a = await this.global.check({
        limit: l.rule.name,
        override: chosen.name,
        // principals are not capped locally (bounded by the LRU); weftd takes keys up to 160 chars
        key: capKey(key),
        hits: 1,
        budget: {
          requests: chosen.budget.requests,
          intervalMs: chosen.budget.intervalMs,
          burst: chosen.budget.burst,
        },
      });
      take = { allowed: a.allowed, remaining: a.remaining, retryAfterMs: a.retryAfterMs, resetMs: a.resetMs };
    } catch (err) {
      this.backendErrors++;
      this.metrics?.inc(BACKEND_ERRORS_METRIC, 1);
      this.backendLog.error(l.rule.name, mode, err);
      const allowed = mode === 'allow';
      const per = chosen.budget.intervalMs / chosen.budget.requests;
      take = {
        allowed,
        remaining: 0,
        retryAfterMs: allowed ? 0 : Math.max(1000, Math.ceil(per)),
        resetMs: 0,
      };
    }
    this.count(chosen, take.allowed, 0);
    return {
      allowed: take.allowed,
      limit: l.rule.name,
      override: chosen.name,
      budget: chosen.budget,
      key,
      take,
      global: true,
    };
  }

  /** null: no limit applies to this request. Global limits: use checkAsync. */
  check(r: RateLimitRequest): RateLimitVerdict | null {
    const s = this.pick(r);
    if (s === null) return null;
    const { l, chosen, key } = s;
    const before = chosen.buckets.evictions;
    const take = chosen.buckets.take(key, this.now());
    this.count(chosen, take.allowed, chosen.buckets.evictions - before);
    return {
      allowed: take.allowed,
      limit: l.rule.name,
      override: chosen.name,
      budget: chosen.budget,
      key,
      take,
    };
  }

  private count(b: CompiledBudget, allowed: boolean, evicted: number): void {
    if (this.metrics === null) return;
    if (this.counters === null) {
      const all = this.metrics.labelledCounters;
      this.counters = all.get(RATELIMIT_METRIC) ?? new Map();
      all.set(RATELIMIT_METRIC, this.counters);
    }
    const text = allowed ? b.labels.allowed : b.labels.limited;
    this.counters.set(text, (this.counters.get(text) ?? 0) + 1);
    if (evicted > 0) this.metrics.inc(EVICTIONS_METRIC, evicted);
  }

  /** Buckets and evictions per limit (admin and tests). */
  stats(): { limit: string; buckets: number; evictions: number; expired: number }[] {
    return this.limits.map((l) => {
      const all = [...l.budgets, l.fallback].map((b) => b.buckets);
      return {
        limit: l.rule.name,
        buckets: all.reduce((n, b) => n + b.size, 0),
        evictions: all.reduce((n, b) => n + b.evictions, 0),
        expired: all.reduce((n, b) => n + b.expired, 0),
      };
    });
  }
}
