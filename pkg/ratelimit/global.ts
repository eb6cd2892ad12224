/**
 * Global rate limits (ADR 0017): one token bucket per (namespace, limit, override, key, budget)
 * kept in Redis and updated by one Lua script, so a take is atomic across every weftd replica
 * and every sidecar asking. The bucket is the local limiter's (proxy/ratelimit/bucket.ts): same
 * `requests` per `intervalMs` refill, `burst` capacity, lazy refill, a clock that steps backwards
 * refills nothing. The clock is Redis's own (`TIME`): one clock for every caller, so skew between
 * nodes cannot mint tokens. A bucket key expires when the bucket would be full again (PEXPIRE),
 * so a flood of distinct keys costs Redis memory only for as long as it lasts.
 *
 * This module also holds the wire contract of `POST /v1/ratelimit/check` on weftd's discovery
 * port (controlplane/globalratelimit.ts serves it, proxy/ratelimit/global.ts asks it).
 */
import { createHash } from 'node:crypto';
import { WeftError } from '../errors/index.js';
import { RATE_LIMIT_BOUNDS } from '../proxyconfig/ratelimit.js';
import { RedisReplyError, type RedisClient, type RespValue } from './redis.js';

export const RATELIMIT_CHECK_PATH = '/v1/ratelimit/check';

/** `host:port` or `[v6]:port` of the global rate-limit Redis (weftd flag, Mesh field); null: not one. */
export function parseRedisAddress(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(v);
  const p = Number(m?.[3]);
  if (m === null || p < 1 || p > 65535) return null;
  return { host: m[1] ?? m[2]!, port: p };
}
/** A check body is a few hundred bytes; past this it is not one. */
export const MAX_CHECK_BYTES = 4 * 1024;
/** Limit and override names as the translator makes them (`RateLimit ns/name`) fit easily. */
export const MAX_NAME_CHARS = 320;
/** Source keys are capped (hashed past 128 chars) by the proxy already. */
export const MAX_CHECK_KEY_CHARS = 160;
/** Tokens one check may take (batched hits). */
export const MAX_HITS = 1000;

export interface GlobalCheckRequest {
  limit: string;
  override: string | null;
  key: string;
  hits: number;
  budget: { requests: number; intervalMs: number; burst: number };
}

export interface GlobalCheckResponse {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
}

function invalid(msg: string): WeftError {
  return new WeftError('WEFT_RATELIMIT_REQUEST_INVALID', msg, { details: { status: 400 } });
}

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** A check body, validated against the same bounds as a RateLimit's budget. */
export function parseCheck(body: unknown): GlobalCheckRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('the body is not an object');
  const b = body as Record<string, unknown>;
  if (typeof b.limit !== 'string' || b.limit === '' || b.limit.length > MAX_NAME_CHARS)
    throw invalid(`limit must be a string of 1..${MAX_NAME_CHARS} characters`);
  const override = b.override ?? null;
  if (override !== null && (typeof override !== 'string' || override.length > MAX_NAME_CHARS))
    throw invalid(`override must be null or a string of at most ${MAX_NAME_CHARS} characters`);
  if (typeof b.key !== 'string' || b.key.length > MAX_CHECK_KEY_CHARS)
    throw invalid(`key must be a string of at most ${MAX_CHECK_KEY_CHARS} characters`);
  if (!isInt(b.hits, 1, MAX_HITS)) throw invalid(`hits must be an integer in 1..${MAX_HITS}`);
  const bu = b.budget as Record<string, unknown> | undefined;
  const B = RATE_LIMIT_BOUNDS;
  if (
    typeof bu !== 'object' ||
    bu === null ||
    !isInt(bu.requests, 1, B.maxRequests) ||
    !isInt(bu.intervalMs, B.minIntervalMs, B.maxIntervalMs) ||
    !isInt(bu.burst, 1, B.maxRequests)
  )
    throw invalid(
      `budget must be {requests: 1..${B.maxRequests}, intervalMs: ${B.minIntervalMs}..${B.maxIntervalMs}, burst: 1..${B.maxRequests}}`,
    );
  return {
    limit: b.limit,
    override,
    key: b.key,
    hits: b.hits,
    budget: { requests: bu.requests, intervalMs: bu.intervalMs, burst: bu.burst },
  };
}

/**
 * KEYS[1] the bucket; ARGV requests, intervalMs, burst, hits[, now ms (tests only)].
 * State: hash {t: tokens (float), ts: last refill (ms)}. Returns {allowed, remaining,
 * retryAfterMs, resetMs} as integers.
 */
export const TOKEN_BUCKET_LUA = `
local requests = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local hits = tonumber(ARGV[4])
local now
if ARGV[5] then now = tonumber(ARGV[5]) else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local per = interval / requests
local st = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(st[1])
local last = tonumber(st[2])
if tokens == nil or last == nil then tokens = burst; last = now end
if now > last then tokens = math.min(burst, tokens + (now - last) / per) end
local allowed = 0
local retry = 0
if tokens >= hits then
  tokens = tokens - hits
  allowed = 1
else
  retry = math.max(1, math.ceil((hits - tokens) * per))
end
local reset = math.ceil((burst - tokens) * per)
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.max(1, reset))
return {allowed, math.floor(tokens), retry, reset}
`;

const SHA = createHash('sha1').update(TOKEN_BUCKET_LUA).digest('hex');

/** The Redis key of a bucket: fixed length whatever the names, namespaced by the caller's identity. */
export function bucketKey(namespace: string, r: GlobalCheckRequest): string {
  const h = createHash('sha256')
    .update(
      JSON.stringify([
        namespace,
        r.limit,
        r.override,
        r.key,
        r.budget.requests,
        r.budget.intervalMs,
        r.budget.burst,
      ]),
    )
    .digest('base64url');
  return `weft:rl:1:${h}`;
}

function replyOf(v: RespValue): GlobalCheckResponse {
  if (v instanceof RedisReplyError) throw v;
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number'))
    throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(v).slice(0, 120)}`);
  const [allowed, remaining, retryAfterMs, resetMs] = v as number[];
  return { allowed: allowed === 1, remaining: remaining!, retryAfterMs: retryAfterMs!, resetMs: resetMs! };
}

/** Takes `hits` tokens from a bucket in Redis. Rejects (the caller applies its failure mode) on any Redis trouble. */
export class GlobalBucketStore {
  constructor(
    private readonly redis: RedisClient,
    /** Tests pin the clock; production uses Redis TIME. */
    private readonly now?: () => number,
  ) {}

  async take(namespace: string, r: GlobalCheckRequest): Promise<GlobalCheckResponse> {
    const args = [
      1,
      bucketKey(namespace, r),
      r.budget.requests,
      r.budget.intervalMs,
      r.budget.burst,
      r.hits,
      ...(this.now ? [this.now()] : []),
    ];
    const v = await this.redis.command(['EVALSHA', SHA, ...args]);
    if (v instanceof RedisReplyError && v.message.startsWith('NOSCRIPT'))
      return replyOf(await this.redis.command(['EVAL', TOKEN_BUCKET_LUA, ...args]));
    return replyOf(v);
  }
}
