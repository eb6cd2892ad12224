/**
 * On-demand hosts, the sidecar's side (ADR 0023). With `onDemand` in its config the sidecar holds
 * part of the mesh; a request whose Host it does not hold (or a TCP/h2c connection whose original
 * IPv4 destination it does not know) is held here while weftd is asked for the name or address
 * (POST /v1/discovery/ondemand), and goes on as soon as a config holding it is swapped in.
 *
 * A hold ends in one of three verdicts (`OnDemandVerdict`):
 *  - `routed`: a config that routes it is in force;
 *  - `unknown`: weftd answered `not_found` (or remembered so), or the Host is no host name: the
 *    usual unknown-host path (ALLOW_ANY passes it through, REGISTRY_ONLY answers 404 NR), as a
 *    proxy holding the whole mesh would do;
 *  - `unresolved`: nobody knows (no answer within `holdMs`, weftd down or limiting, or past a
 *    bound here). The caller refuses it (503 NC, or the connection closed): passed through, a
 *    request to a mesh service would leave without its routing rules and without mTLS, and a
 *    user must be able to trust that a slow control plane never downgrades traffic.
 *
 * Everything is bounded, because the app chooses the names (a client can send random Host
 * headers as fast as it likes):
 *
 *  - a request is held at most `holdMs`;
 *  - at most `maxPendingHosts` names are being asked for and `maxHeldRequests` requests held;
 *  - names are asked at most `asksPerSecond` (a bucket of `burst`); a name past the bucket waits
 *    for its token when that comes within half the hold (an app's start-up burst), else it is
 *    `rate_limited` at once;
 *  - a name weftd answered `not_found` is not asked again for `negativeTtlMs` (an external host
 *    under ALLOW_ANY is then passed through without a hold; at most `maxNegative` names kept);
 *  - what is re-declared on a new stream is at most `maxFound` names (weftd's subscription cap),
 *    one per config entry routing them (`entryOf`: the subdomains of one wildcard ServiceEntry
 *    count once), the least recently found dropped past it.
 *
 * Past any bound the request is not held: it is `unresolved` at once. Pure apart from the
 * injected clock and timers (unit-tested with fakes).
 */
import { onDemandHostName, type OnDemandResult } from '../../pkg/discovery/protocol.js';

export interface OnDemandHoldOptions {
  /** Asks weftd for names; rejects on a transport failure. */
  ask: (names: string[], redeclare?: boolean) => Promise<Record<string, OnDemandResult>>;
  /** Does the config in force route this authority (Host header as sent)? */
  isHeld: (authority: string) => boolean;
  /**
   * The config entry routing a name now (e.g. its virtual host's name), null if none: names
   * routed by one entry are remembered as one.
   */
  entryOf?: (name: string) => string | null;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  /** Counts one outcome per held-or-not request (weft_proxy_ondemand_requests_total{result}). */
  count?: (outcome: OnDemandOutcome) => void;
  holdMs?: number;
  maxPendingHosts?: number;
  maxHeldRequests?: number;
  asksPerSecond?: number;
  burst?: number;
  negativeTtlMs?: number;
  maxNegative?: number;
  maxFound?: number;
}

export type OnDemandOutcome =
  | 'routed'
  | 'timeout'
  | 'not_found'
  | 'negative'
  | 'limited'
  | 'rate_limited'
  | 'overflow'
  | 'error'
  | 'invalid';

/** How a hold ended, for the caller (see the module comment). */
export type OnDemandVerdict = 'routed' | 'unknown' | 'unresolved';

/** The verdict of each outcome: only weftd's `not_found` (or no host name at all) is `unknown`. */
export const VERDICT_OF: Record<OnDemandOutcome, OnDemandVerdict> = {
  routed: 'routed',
  not_found: 'unknown',
  negative: 'unknown',
  invalid: 'unknown',
  timeout: 'unresolved',
  limited: 'unresolved',
  rate_limited: 'unresolved',
  overflow: 'unresolved',
  error: 'unresolved',
};

/** Requests that met an unknown host with on-demand hosts on, by result. */
export const ONDEMAND_METRIC = 'weft_proxy_ondemand_requests_total';

export const ONDEMAND_HOLD_DEFAULTS = {
  /**
   * Long enough for a loaded node (the first request's worst case measured at 0.5 s, ADR 0023),
   * since running out of it refuses the request; weftd down answers at once (a refused connect).
   */
  holdMs: 5000,
  maxPendingHosts: 32,
  maxHeldRequests: 256,
  asksPerSecond: 10,
  burst: 20,
  negativeTtlMs: 30_000,
  maxNegative: 1024,
  /** weftd's subscriptions per stream (controlplane/ondemand.ts ONDEMAND_LIMITS.maxSubscriptions). */
  maxFound: 512,
} as const;

interface Waiter {
  authority: string;
  /** Is it routable now? (default: the options' isHeld of its authority) */
  held: (() => boolean) | undefined;
  resolve: (verdict: OnDemandVerdict) => void;
}

interface Pending {
  waiters: Waiter[];
  timer: { cancel(): void };
}

const realTimer = (fn: () => void, ms: number): { cancel(): void } => {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
};

export class OnDemandHolder {
  private readonly pending = new Map<string, Pending>();
  private readonly negative = new Map<string, number>();
  /**
   * Names weftd answered `found`, re-declared on a new stream: by the config entry routing them
   * (`name:<name>` until one does), least recently found first.
   */
  private readonly found = new Map<string, string>();
  private held = 0;
  private tokens: number;
  private refilledAt: number;
  private readonly o: Required<Omit<OnDemandHoldOptions, 'count' | 'entryOf'>> &
    Pick<OnDemandHoldOptions, 'count' | 'entryOf'>;

  constructor(opts: OnDemandHoldOptions) {
    this.o = { now: Date.now, setTimer: realTimer, ...ONDEMAND_HOLD_DEFAULTS, ...opts };
    this.tokens = this.o.burst;
    this.refilledAt = this.o.now();
  }

  /** Requests held now, and names being asked for (admin/debug, tests). */
  get heldRequests(): number {
    return this.held;
  }
  get pendingHosts(): number {
    return this.pending.size;
  }
  subscribedNames(): string[] {
    return [...this.found.values()];
  }

  /**
   * Holds a request for `authority` until a config routes it or the hold ends (the verdict says
   * how). Never rejects. `held`: how to tell it is routable (a TCP connection's original
   * destination asks by address, and is routed by the outbound TCP table, not by a virtual host;
   * a TLS connection asks by SNI and is routed by a port's catch-all).
   */
  wait(authority: string, held?: () => boolean): Promise<OnDemandVerdict> {
    const name = onDemandHostName(authority);
    if (name === null) return this.done('invalid');
    const until = this.negative.get(name);
    if (until !== undefined) {
      if (until > this.o.now()) return this.done('negative');
      this.negative.delete(name);
    }
    if (this.held >= this.o.maxHeldRequests) return this.done('overflow');
    let p = this.pending.get(name);
    if (p === undefined) {
      if (this.pending.size >= this.o.maxPendingHosts) return this.done('overflow');
      const delay = this.reserveAsk();
      if (delay === null) return this.done('rate_limited');
      p = this.startAsk(name, delay);
    }
    const waiting = p;
    this.held++;
    return new Promise<OnDemandVerdict>((resolve) => waiting.waiters.push({ authority, held, resolve }));
  }

  /** A pending name, asked now or once its token comes (`delay` ms); its hold starts now. */
  private startAsk(name: string, delay: number): Pending {
    const entry: Pending = { waiters: [], timer: { cancel: () => undefined } };
    entry.timer = this.o.setTimer(() => this.settle(name, 'timeout'), this.o.holdMs);
    this.pending.set(name, entry);
    const ask = (): void => {
      if (this.pending.get(name) !== entry) return; // released meanwhile (another push routed it)
      this.o.ask([name]).then(
        (answers) => this.answered(name, answers[name] ?? 'not_found'),
        () => this.settle(name, 'error'),
      );
    };
    if (delay === 0) ask();
    else this.o.setTimer(ask, delay);
    return entry;
  }

  /** A config was swapped in: releases the requests it routes. */
  configApplied(): void {
    for (const [name, p] of this.pending) {
      const still: Waiter[] = [];
      for (const w of p.waiters) {
        if (w.held ? w.held() : this.o.isHeld(w.authority)) {
          this.release(w, 'routed');
          if (this.found.delete(`name:${name}`)) this.remember(name); // now under its entry
        } else still.push(w);
      }
      p.waiters = still;
      if (still.length === 0) {
        p.timer.cancel();
        this.pending.delete(name);
      }
    }
  }

  /** A new stream: asks again for what the last one held, in batches weftd accepts (not rated there). */
  async redeclare(batch = 16): Promise<void> {
    const names = this.subscribedNames();
    for (let i = 0; i < names.length; i += batch)
      await this.o.ask(names.slice(i, i + batch), true).then(
        (answers) => {
          for (const [n, r] of Object.entries(answers)) if (r !== 'found') this.forget(n);
        },
        () => undefined,
      );
  }

  private answered(name: string, result: OnDemandResult): void {
    if (result === 'found') {
      this.remember(name);
      // weftd wrote the push before answering: it may be in force already
      this.configApplied();
      return;
    }
    if (result === 'not_found') {
      if (this.negative.size >= this.o.maxNegative) this.negative.delete(this.negative.keys().next().value!);
      this.negative.set(name, this.o.now() + this.o.negativeTtlMs);
      this.forget(name);
    }
    this.settle(name, result === 'not_found' ? 'not_found' : 'limited');
  }

  /** Remembers a found name under the entry routing it (once per entry), within maxFound. */
  private remember(name: string): void {
    const key = this.keyOf(name);
    const kept = this.found.get(key) ?? name;
    this.found.delete(key); // re-added last: the most recently found
    this.found.set(key, kept);
    if (this.found.size > this.o.maxFound) this.found.delete(this.found.keys().next().value!);
  }

  private forget(name: string): void {
    for (const [key, n] of this.found) if (n === name) this.found.delete(key);
  }

  private keyOf(name: string): string {
    const entry = this.o.entryOf?.(name) ?? null;
    return entry === null ? `name:${name}` : `entry:${entry}`;
  }

  /** Ends the hold of every request waiting for `name` without a route. */
  private settle(name: string, outcome: OnDemandOutcome): void {
    const p = this.pending.get(name);
    if (p === undefined) return;
    this.pending.delete(name);
    p.timer.cancel();
    for (const w of p.waiters) this.release(w, outcome);
  }

  private release(w: Waiter, outcome: OnDemandOutcome): void {
    this.held--;
    this.o.count?.(outcome);
    w.resolve(VERDICT_OF[outcome]);
  }

  private done(outcome: OnDemandOutcome): Promise<OnDemandVerdict> {
    this.o.count?.(outcome);
    return Promise.resolve(VERDICT_OF[outcome]);
  }

  /**
   * Takes a token for one ask: 0 when one is there, else the wait (ms) until it comes if that
   * is within half the hold (the token is taken ahead: the bucket goes below zero), else null.
   */
  private reserveAsk(): number | null {
    const t = this.o.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((t - this.refilledAt) / 1000) * this.o.asksPerSecond);
    this.refilledAt = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    const delay = Math.ceil(((1 - this.tokens) / this.o.asksPerSecond) * 1000);
    if (delay > this.o.holdMs / 2) return null;
    this.tokens -= 1;
    return delay;
  }
}
