/**
 * Validation off the main thread for expensive objects. A 600 KB VirtualService or one with a
 * thousand regexes takes ~0.3-2 s to validate here; inline, that would stall every other
 * admission request (and the API server's timeouts with them). Cheap objects (the common case,
 * ~0.2 ms) stay inline: a thread hop would cost more than the work. The handler decides which by
 * the object's estimated cost (webhook/validate.ts).
 *
 * One worker by default: the point is to keep the main thread free, not to add parallelism on a
 * 2-core machine. Everything a job can consume is bounded:
 *  - time: a job that overruns its budget has its worker terminated and replaced, so one
 *    pathological object cannot wedge the pool; a job still queued when its caller's deadline
 *    passes is dropped unrun;
 *  - memory: the worker's heap is capped (`resourceLimits`); a job that needs more fails alone
 *    and the worker is replaced;
 *  - queue: at most `maxQueued` jobs, of at most `maxQueuedBytes` of request body in all, wait;
 *    more are refused at once (503, retry) rather than each holding a parsed object in memory.
 *    Waiting (rather than refusing early) is also what slows a client that floods expensive
 *    objects: its next request comes only when this one is answered.
 * No failure here escapes as an exception: every job settles, and the pool keeps serving.
 *
 * Workers start on demand and stop when idle (ADR 0025): an idle worker is a second V8 isolate
 * with the validator's modules and compiled schemas, 27 MB of the combined control plane's 148 MB
 * RSS, held for objects that are rare (the cheap common case never reaches the pool). The first
 * expensive object after a quiet spell waits for a worker to load (its wait counts against the
 * caller's deadline; the job's own budget starts once the worker is ready).
 */
import { Worker } from 'node:worker_threads';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import type { ObjectFinding, ValidateOptions, ValidationResult } from '../pkg/validation/index.js';

/** What a worker validates: the object, and for the cross-object checks the objects it relates to. */
export interface ValidationJob {
  obj: unknown;
  options: ValidateOptions;
  /** `MeshIndex.withCandidate(obj)`, when the index is ready; the worker analyses it too. */
  related?: unknown[];
}

/** What the caller knows of a job: how long it waits in all, and the body it came in (for the queue bound). */
export interface JobLimits {
  waitMs?: number;
  bodyBytes?: number;
}

export interface JobResult {
  result: ValidationResult;
  /** Cross-object findings that concern the object (empty without `related`). */
  cross: ObjectFinding[];
}

export interface PoolOptions {
  /** Workers (default 1). */
  size?: number;
  /** A running job's budget (default 3 s, inside the validating webhook's 5 s timeoutSeconds). */
  jobTimeoutMs?: number;
  /** Jobs waiting for a worker beyond this are refused (default 32). */
  maxQueued?: number;
  /** Request bytes of the waiting jobs beyond this are refused (default 8 MiB). */
  maxQueuedBytes?: number;
  /** Each worker's V8 old-generation heap (default 256 MB). */
  maxHeapMb?: number;
  /** A worker without a job for this long is stopped (default 5 min); the next job starts one. */
  idleMs?: number;
}

interface Pending {
  id: number;
  job: ValidationJob;
  bytes: number;
  /** performance.now() after which nobody waits for the answer. */
  deadline: number;
  resolve: (r: JobResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Crashed, overran or was terminated: its events no longer count. */
  dead: boolean;
  job: Pending | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Stops the worker once it has had no job for `idleMs`. */
  idleTimer: NodeJS.Timeout | undefined;
}

type WorkerMessage = { ready: true } | { id: number; result: JobResult } | { id: number; error: string };

/** The worker's source: .ts when running from source under tsx, .js when built. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './validate-worker.ts' : './validate-worker.js', import.meta.url);
/** From source the worker needs tsx's loader too (mocha registers it in-process, so execArgv may lack it). */
const WORKER_EXEC_ARGV = FROM_SOURCE ? ['--import', 'tsx'] : [];

export const DEFAULT_JOB_TIMEOUT_MS = 3000;
export const DEFAULT_MAX_QUEUED = 32;
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
export const DEFAULT_WORKER_HEAP_MB = 256;
export const DEFAULT_WORKER_IDLE_MS = 5 * 60_000;
const RESPAWN_PAUSE_MS = 1000;

export class ValidationPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  /** Callers of warm() waiting for a worker to be ready. */
  private whenReady: (() => void)[] = [];
  private readonly jobTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number;
  private queuedBytes = 0;
  private readonly maxHeapMb: number;
  private readonly size: number;
  private readonly idleMs: number;
  /** Workers replaced after a crash, an overrun or running out of memory (tests and metrics). */
  replacements = 0;
  /** Workers started (on demand) and stopped for idling, since the pool was made (tests and metrics). */
  started = 0;
  retired = 0;

  constructor(opts: PoolOptions = {}) {
    this.jobTimeoutMs = opts.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.maxHeapMb = opts.maxHeapMb ?? DEFAULT_WORKER_HEAP_MB;
    this.size = Math.max(1, opts.size ?? 1);
    this.idleMs = opts.idleMs ?? DEFAULT_WORKER_IDLE_MS;
  }

  /** Workers running now (loading, idle or busy). */
  get workers(): number {
    return this.slots.filter((s) => !s.dead).length;
  }

  /**
   * Starts a worker now, if none runs, and resolves once one has loaded and compiled the
   * schemas (tests that time jobs; the server does not wait: workers start on demand).
   */
  warm(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('validation pool is closed'));
    if (this.slots.some((s) => s.ready && !s.dead)) return Promise.resolve();
    if (!this.slots.some((s) => !s.dead)) this.slots.push(this.spawn());
    return new Promise((resolve) => this.whenReady.push(resolve));
  }

  /** Validates on a worker, or fails at once (503) when the queue is full. */
  validate(job: ValidationJob, limits: JobLimits = {}): Promise<JobResult> {
    if (this.closed) return Promise.reject(new Error('validation pool is closed'));
    const bytes = limits.bodyBytes ?? 0;
    if (this.queue.length >= this.maxQueued || this.queuedBytes + bytes > this.maxQueuedBytes)
      return Promise.reject(
        new WeftError(
          'WEFT_ADMISSION_OVERLOADED',
          `${this.queue.length} expensive objects (${Math.ceil(this.queuedBytes / 1024)} KiB) are already waiting for the validation worker (limits: ${this.maxQueued} objects, ${Math.round(this.maxQueuedBytes / 1024)} KiB); retry shortly`,
        ),
      );
    const deadline = performance.now() + (limits.waitMs ?? this.jobTimeoutMs);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: ++this.nextId, job, bytes, deadline, resolve, reject });
      this.queuedBytes += bytes;
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queuedBytes = 0;
    for (const p of this.queue.splice(0)) p.reject(new Error('validation pool is closed'));
    for (const s of this.slots) {
      clearTimeout(s.idleTimer);
      clearTimeout(s.timer);
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    this.started++;
    const slot: Slot = {
      worker: new Worker(WORKER_URL, {
        execArgv: WORKER_EXEC_ARGV,
        resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb },
      }),
      ready: false,
      dead: false,
      job: undefined,
      timer: undefined,
      idleTimer: undefined,
    };
    slot.worker.unref();
    slot.worker.on('message', (msg: WorkerMessage) => this.onMessage(slot, msg));
    slot.worker.on('error', (err: Error) => this.replace(slot, this.describeCrash(err)));
    // An exit without an error event (terminated from inside, killed): the job must not hang.
    slot.worker.on('exit', (code) => {
      if (!this.closed) this.replace(slot, new Error(`validation worker exited (code ${code})`));
    });
    return slot;
  }

  private onMessage(slot: Slot, msg: WorkerMessage): void {
    if ('ready' in msg) {
      slot.ready = true;
      for (const resolve of this.whenReady.splice(0)) resolve();
      this.pump();
      this.idleWhenFree(slot);
      return;
    }
    const job = slot.job;
    if (!job || job.id !== msg.id) return;
    this.finish(slot);
    if ('result' in msg) job.resolve(msg.result);
    else job.reject(new Error(msg.error));
  }

  private describeCrash(err: Error): Error {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_OUT_OF_MEMORY') return err;
    return new WeftError(
      'WEFT_INPUT_TOO_LARGE',
      `validating this object needed more than the worker's ${this.maxHeapMb} MB heap`,
    );
  }

  private finish(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    this.pump();
    this.idleWhenFree(slot);
  }

  /** A ready worker left without a job stops after `idleMs` unless a job comes first. */
  private idleWhenFree(slot: Slot): void {
    if (slot.dead || slot.job || this.closed) return;
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => this.retire(slot), this.idleMs);
    slot.idleTimer.unref();
  }

  private retire(slot: Slot): void {
    if (slot.dead || slot.job) return;
    slot.dead = true; // its exit event is expected, not a crash
    this.slots.splice(this.slots.indexOf(slot), 1);
    this.retired++;
    void slot.worker.terminate();
  }

  /**
   * A crashed, overrunning or out-of-memory worker is replaced; its job fails alone. One that
   * died before it was ready (it cannot even load) is replaced after a pause, not in a loop.
   */
  private replace(slot: Slot, err: Error): void {
    if (slot.dead) return; // already replaced (an error event, then the exit), or retired
    slot.dead = true;
    const job = slot.job;
    clearTimeout(slot.timer);
    clearTimeout(slot.idleTimer);
    slot.job = undefined;
    void slot.worker.terminate();
    this.replacements++;
    // The dead slot keeps its place until it is dropped, so pump() starts no worker in it meanwhile.
    const drop = (): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (!this.closed) this.pump();
    };
    if (slot.ready || this.closed) drop();
    else setTimeout(drop, RESPAWN_PAUSE_MS).unref();
    job?.reject(err);
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      while (slot.ready && !slot.dead && !slot.job) {
        const job = this.nextLiveJob();
        if (!job) return;
        this.start(slot, job);
      }
    }
    // Jobs still wait and every worker is busy (or there is none): start one, up to `size`.
    const loading = this.slots.filter((s) => !s.ready && !s.dead).length;
    if (!this.closed && this.queue.length > loading && this.slots.length < this.size)
      this.slots.push(this.spawn());
  }

  /** The oldest queued job whose caller still waits; the others are failed unrun. */
  private nextLiveJob(): Pending | undefined {
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      this.queuedBytes -= job.bytes;
      if (performance.now() < job.deadline) return job;
      job.reject(
        new WeftError(
          'WEFT_ADMISSION_TIMEOUT',
          'gave up waiting for the validation worker (busy with other objects)',
        ),
      );
    }
    return undefined;
  }

  private start(slot: Slot, job: Pending): void {
    try {
      slot.worker.postMessage({ id: job.id, ...job.job });
    } catch (err) {
      // Not transferable (the caller checks depth first; this is the backstop): fail the job alone.
      job.reject(
        new WeftError(
          'WEFT_INPUT_TOO_LARGE',
          `the object cannot be passed to the validation worker: ${errorMessage(err)}`,
        ),
      );
      return;
    }
    clearTimeout(slot.idleTimer);
    slot.job = job;
    slot.timer = setTimeout(
      () =>
        this.replace(
          slot,
          new WeftError('WEFT_ADMISSION_TIMEOUT', `validation took longer than ${this.jobTimeoutMs} ms`),
        ),
      this.jobTimeoutMs,
    );
  }
}
