/**
 * Exponential backoff with jitter, shaped like client-go's per-item limiter (base doubling per
 * failure, capped) plus "full jitter" so many keys failing together do not retry in lockstep.
 */
// Type-only: the proxy's discovery client uses this file's backoff, and client.ts brings
// node:https, the kubeconfig loader and yaml, which a sidecar does not need (client.ts once
// loaded @kubernetes/client-node: ~60 MB RSS per sidecar, bench/proxy/sidecar.ts).
import type { ApiError } from './client.js';

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** 0..1: the fraction of the delay that is randomised (0 = deterministic). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5, maxMs: 1_000_000, jitter: 0.2 };

/** Delay before retry number `failures` (1 = first retry). `random` is injectable for tests. */
export function backoffDelay(
  failures: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  if (!Number.isFinite(failures) || failures < 1) return 0;
  // 2^(failures-1) overflows to Infinity for big counts; Math.min copes with that.
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 60));
  const jitterSpan = exp * Math.max(0, Math.min(1, policy.jitter));
  return Math.round(exp - jitterSpan + random() * jitterSpan);
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Whether an error from the API is transient (conflict, throttling, 5xx, network). */
export function isTransient(err: unknown): boolean {
  return err instanceof Error && err.name === 'ApiError' && (err as ApiError).retryable;
}

/**
 * Runs `fn` until it succeeds, retrying transient errors with backoff up to `attempts` times.
 * Permanent errors (4xx other than 409/429) are thrown at once.
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  opts: { attempts?: number; policy?: BackoffPolicy; signal?: AbortSignal } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const policy = opts.policy ?? { baseMs: 100, maxMs: 5_000, jitter: 0.5 };
  for (let failure = 1; ; failure++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || failure >= attempts || opts.signal?.aborted) throw err;
      await sleep(backoffDelay(failure, policy), opts.signal);
    }
  }
}
