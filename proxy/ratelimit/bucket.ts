/**
 * A token bucket on an injected clock (milliseconds). Refill is computed lazily on each take, so
 * an idle bucket costs nothing. A clock that jumps backwards (NTP step, a VM restored) refills
 * nothing and never makes the level negative: the bucket re-anchors on the new time. A clock that
 * jumps forwards refills at most to the capacity (no "refill bomb" beyond `burst`).
 */

export interface BucketParams {
  /** Tokens added per `intervalMs`. */
  requests: number;
  intervalMs: number;
  /** Capacity (and the level a new bucket starts at). */
  burst: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Milliseconds until one token is available (0 when allowed). */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly p: BucketParams,
    now: number,
  ) {
    this.tokens = p.burst;
    this.last = now;
  }

  /** Milliseconds per token. */
  private get msPerToken(): number {
    return this.p.intervalMs / this.p.requests;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    // a broken reading (NaN, Infinity) is ignored: anchoring on it would freeze the bucket
    if (!Number.isFinite(now)) return;
    // backwards: no refill, re-anchor so the next step is measured from here
    if (elapsed <= 0) {
      this.last = now;
      return;
    }
    this.tokens = Math.min(this.p.burst, this.tokens + elapsed / this.msPerToken);
    this.last = now;
  }

  take(now: number): TakeResult {
    this.refill(now);
    const per = this.msPerToken;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return {
        allowed: true,
        remaining: Math.floor(this.tokens),
        retryAfterMs: 0,
        resetMs: Math.ceil((this.p.burst - this.tokens) * per),
      };
    }
    return {
      allowed: false,
      remaining: 0,
      retryAfterMs: Math.max(1, Math.ceil((1 - this.tokens) * per)),
      resetMs: Math.ceil((this.p.burst - this.tokens) * per),
    };
  }

  /** Full at `now` (an idle bucket that may be dropped: a new one would be identical). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.p.burst;
  }

  get level(): number {
    return this.tokens;
  }
}
