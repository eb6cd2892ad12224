/**
 * A key-based work queue with client-go's semantics, which is what makes reconciling safe:
 *  - a key is queued at most once however many events arrive (dedup while waiting);
 *  - a key is never processed by two workers at once; a key added while it is being processed
 *    is processed again right after (nothing is lost, nothing runs concurrently);
 *  - failures requeue with per-key exponential backoff and jitter (`addRateLimited`), reset by
 *    `forget` on success;
 *  - `addAfter` schedules a later visit (certificate renewal, periodic resync).
 */
import { backoffDelay, type BackoffPolicy } from '../pkg/kube/backoff.js';

export interface QueueMetrics {
  adds(): void;
  depth(n: number): void;
  retries(): void;
  queueLatency(seconds: number): void;
  workDuration(seconds: number): void;
}

const NO_METRICS: QueueMetrics = {
  adds() {},
  depth() {},
  retries() {},
  queueLatency() {},
  workDuration() {},
};

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | null) => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly metrics: QueueMetrics = NO_METRICS,
    private readonly random: () => number = Math.random,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics.adds();
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  /** Adds after `ms`; an earlier pending schedule for the key wins (never postpones). */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Requeues after the key's backoff delay; returns the delay chosen. */
  addRateLimited(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    this.metrics.retries();
    const delay = backoffDelay(n, this.policy, this.random);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the key's backoff (call after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; null once the queue shuts down. */
  get(): Promise<string | null> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks processing of `key` finished; if it was re-added meanwhile, queues it again. */
  done(key: string, startedAt: number): void {
    this.metrics.workDuration((performance.now() - startedAt) / 1000);
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(null);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.metrics.depth(this.queue.length);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics.queueLatency((performance.now() - added) / 1000);
    this.addedAt.delete(key);
    this.metrics.depth(this.queue.length);
    return key;
  }
}
