/**
 * Push debouncing as istiod does it (PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX): a burst of
 * changes (a rollout touches many pods and slices) becomes one push, sent once nothing has
 * changed for `afterMs`, or at the latest `maxMs` after the burst began so a never-quiet cluster
 * still converges. The callback gets the time of the burst's first change (for the convergence
 * histogram). Timers and clock are injectable so the logic is tested without waiting.
 */
export interface DebounceClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const realClock: DebounceClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class Debouncer {
  private firstAt: number | undefined;
  private timer: unknown;
  private stopped = false;

  constructor(
    private readonly fire: (firstChangeAt: number) => void,
    private readonly opts: { afterMs: number; maxMs: number },
    private readonly clock: DebounceClock = realClock,
  ) {}

  /** A change happened. */
  trigger(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.firstAt ??= now;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    const untilMax = this.firstAt + this.opts.maxMs - now;
    this.timer = this.clock.setTimer(() => this.flush(), Math.max(0, Math.min(this.opts.afterMs, untilMax)));
  }

  get pending(): boolean {
    return this.firstAt !== undefined;
  }

  private flush(): void {
    const first = this.firstAt;
    this.firstAt = undefined;
    this.timer = undefined;
    if (first !== undefined && !this.stopped) this.fire(first);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
  }
}
