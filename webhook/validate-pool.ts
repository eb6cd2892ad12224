/**
 * Validation off the main thread for large objects. A 600 KB VirtualService takes ~1-2 s to
 * validate here; inline, that would stall every other admission request (and the API server's
 * timeouts with them). Small objects (the common case, ~0.2 ms) stay inline: a thread hop would
 * cost more than the work.
 *
 * One worker by default: the point is to keep the main thread free, not to add parallelism on a
 * 2-core machine. A job that overruns its budget has its worker terminated and replaced, so one
 * pathological object cannot wedge the pool.
 */
import { Worker } from 'node:worker_threads';
import { WeftError } from '../pkg/errors/index.js';
import type { ValidateOptions, ValidationResult } from '../pkg/validation/index.js';

interface Pending {
  id: number;
  obj: unknown;
  options: ValidateOptions;
  resolve: (r: ValidationResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Pending | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** The worker's source: .ts when running from source under tsx, .js when built. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './validate-worker.ts' : './validate-worker.js', import.meta.url);
/** From source the worker needs tsx's loader too (mocha registers it in-process, so execArgv may lack it). */
const WORKER_EXEC_ARGV = FROM_SOURCE ? ['--import', 'tsx'] : [];

export class ValidationPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  private resolveReady!: () => void;
  /** Resolves once the first worker has loaded and compiled the schemas (startup waits for it). */
  readonly ready: Promise<void> = new Promise((r) => (this.resolveReady = r));

  constructor(
    size = 1,
    private readonly jobTimeoutMs = 7000,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  validate(obj: unknown, options: ValidateOptions): Promise<ValidationResult> {
    if (this.closed) return Promise.reject(new Error('validation pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: ++this.nextId, obj, options, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('validation pool is closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const slot: Slot = {
      worker: new Worker(WORKER_URL, { execArgv: WORKER_EXEC_ARGV }),
      ready: false,
      job: undefined,
      timer: undefined,
    };
    slot.worker.unref();
    slot.worker.on(
      'message',
      (msg: { ready?: boolean; id: number; result?: ValidationResult; error?: string }) => {
        if (msg.ready) {
          slot.ready = true;
          this.resolveReady();
          this.pump();
          return;
        }
        const job = slot.job;
        if (!job || job.id !== msg.id) return;
        this.finish(slot);
        if (msg.result) job.resolve(msg.result);
        else job.reject(new Error(msg.error ?? 'validation failed'));
      },
    );
    slot.worker.on('error', (err: Error) => this.replace(slot, err));
    return slot;
  }

  private finish(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    this.pump();
  }

  /** A crashed or overrunning worker is replaced; its job fails alone. */
  private replace(slot: Slot, err: Error): void {
    const job = slot.job;
    clearTimeout(slot.timer);
    void slot.worker.terminate();
    const i = this.slots.indexOf(slot);
    if (i >= 0 && !this.closed) this.slots[i] = this.spawn();
    job?.reject(err);
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.job || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.timer = setTimeout(
        () =>
          this.replace(
            slot,
            new WeftError('WEFT_ADMISSION_TIMEOUT', `validation took longer than ${this.jobTimeoutMs} ms`),
          ),
        this.jobTimeoutMs,
      );
      slot.worker.postMessage({ id: job.id, obj: job.obj, options: job.options });
    }
  }
}
