/**
 * On-demand hosts, weftd's side (ADR 0023): what one discovery stream is subscribed to, and the
 * bounds on asking. A sidecar of a mesh with `onDemandHosts` asks for a host name it does not hold
 * (POST /v1/discovery/ondemand); weftd resolves the name against what that proxy may see
 * (configgen resolveOnDemand: exportTo and its Sidecar, so a forbidden host is answered exactly as
 * an unknown one), adds the entries to the stream's subscriptions and pushes. The app behind a
 * sidecar chooses the names (a Host header), so every name costs a token of a per-pod bucket
 * (OnDemandBudget: kept across the pod's streams, so reconnecting does not refill it), a name
 * that resolved to nothing is remembered (per registry generation, bounded) and answered from
 * memory, and a stream holds at most `maxSubscriptions` entries. A reconnected proxy re-declares
 * what it held (`redeclare`): those names skip the bucket, but only as many as the pod's last
 * stream held (what it earned through the bucket), never more per reconnect.
 */
import type { OnDemandResult } from '../pkg/discovery/protocol.js';
import { egressRef, type EgressHost } from '../pkg/translate/scope.js';

export interface OnDemandLimits {
  /** Names resolved per second per stream (the bucket's refill), and its size. */
  ratePerSecond: number;
  burst: number;
  /** Entries one stream may be subscribed to. */
  maxSubscriptions: number;
  /** Unknown names remembered per stream (cleared past it, and on every registry generation). */
  maxNegative: number;
}

export const ONDEMAND_LIMITS: OnDemandLimits = {
  ratePerSecond: 20,
  burst: 40,
  maxSubscriptions: 512,
  maxNegative: 1024,
};

/** The outcome of one name, as counted (weft_weftd_ondemand_hosts_total); `answer` maps it to the wire. */
export type OnDemandOutcome = 'found' | 'held' | 'not_found' | 'negative' | 'rate_limited' | 'too_many';

export function answerOf(outcome: OnDemandOutcome): OnDemandResult {
  if (outcome === 'found' || outcome === 'held') return 'found';
  if (outcome === 'not_found' || outcome === 'negative') return 'not_found';
  return 'limited';
}

/**
 * What one pod may still ask for, across its streams: the rate bucket, and the re-declares its
 * next stream may make without a token (as many entries as its last stream held).
 */
export class OnDemandBudget {
  private tokens: number;
  private refilledAt: number;
  /** A pod weftd has no record of (new, or weftd restarted) may re-declare a full stream's worth once. */
  private redeclares: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly limits: OnDemandLimits = ONDEMAND_LIMITS,
  ) {
    this.tokens = limits.burst;
    this.refilledAt = now();
    this.redeclares = limits.maxSubscriptions;
  }

  /** A stream of the pod closed holding `held` entries: its successor may re-declare that many. */
  streamClosed(held: number): void {
    this.redeclares = Math.min(held, this.limits.maxSubscriptions);
  }

  /** One re-declared name: free while the allowance lasts. */
  takeRedeclare(): boolean {
    if (this.redeclares <= 0) return false;
    this.redeclares--;
    return true;
  }

  takeToken(): boolean {
    const t = this.now();
    const { ratePerSecond, burst } = this.limits;
    this.tokens = Math.min(burst, this.tokens + ((t - this.refilledAt) / 1000) * ratePerSecond);
    this.refilledAt = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class OnDemandSubscriptions {
  private readonly entries = new Map<string, EgressHost>();
  private readonly negative = new Set<string>();
  private negativeGeneration = -1;

  constructor(
    /** The pod's budget (shared by its streams); a fresh one when the stream stands alone (tests). */
    readonly budget: OnDemandBudget = new OnDemandBudget(),
    private readonly limits: OnDemandLimits = ONDEMAND_LIMITS,
  ) {}

  /** The subscribed entries, in the order they were added. */
  list(): EgressHost[] {
    return [...this.entries.values()];
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Decides one name at registry `generation`; `resolve` is only called when the name is neither
   * remembered as unknown nor over the rate. Entries are added on `found`.
   */
  ask(
    name: string,
    generation: number,
    resolve: (name: string) => EgressHost[],
    opts: { skipRate?: boolean } = {},
  ): OnDemandOutcome {
    if (this.negativeGeneration !== generation) {
      this.negative.clear();
      this.negativeGeneration = generation;
    }
    if (this.negative.has(name)) return 'negative';
    if (opts.skipRate !== true && !this.budget.takeToken()) return 'rate_limited';
    const found = resolve(name);
    if (found.length === 0) {
      if (this.negative.size >= this.limits.maxNegative) this.negative.clear();
      this.negative.add(name);
      return 'not_found';
    }
    const fresh = found.filter((e) => !this.entries.has(egressRef(e)));
    if (fresh.length === 0) return 'held';
    if (this.entries.size + fresh.length > this.limits.maxSubscriptions) return 'too_many';
    for (const e of fresh) this.entries.set(egressRef(e), e);
    return 'found';
  }
}
