/**
 * Worker-thread side of the validation pool: validates one object per message, and runs the
 * cross-object checks against the related objects the main thread sent with it. Expensive
 * objects are validated here so a multi-second validation never blocks the event loop that
 * answers every other admission request.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { validateObject } from '../pkg/validation/index.js';
import type { ValidationJob } from './validate-pool.js';
import { crossObjectFindings } from './validate.js';
import { warmUpValidation } from './warmup.js';

function run(job: ValidationJob): unknown {
  return {
    result: validateObject(job.obj, job.options),
    cross: job.related ? crossObjectFindings(job.related) : [],
  };
}

parentPort?.on('message', (msg: ValidationJob & { id: number }) => {
  let answer: unknown;
  try {
    answer = { id: msg.id, result: run(msg) };
  } catch (err) {
    answer = { id: msg.id, error: err instanceof Error ? err.message : String(err) };
  }
  try {
    parentPort?.postMessage(answer);
  } catch (err) {
    // A result that cannot be posted still answers the job, or the pool would wait for its budget.
    parentPort?.postMessage({ id: msg.id, error: `validation result not transferable: ${String(err)}` });
  }
});

/**
 * This thread yields the CPU to the main thread: on a busy node, a stream of expensive objects
 * here would otherwise take CPU time from the event loop that answers every cheap admission. On
 * Linux a thread's nice value is its own (setpriority on the calling thread); elsewhere, or
 * when refused, it stays at the process's priority.
 */
const WORKER_NICE = 10;
try {
  setPriority(WORKER_NICE);
} catch {
  // not permitted here: the same priority as the main thread, as before
}

// Compile the schemas before taking jobs, then say so: the pool starts job timers only on ready workers.
warmUpValidation();
parentPort?.postMessage({ ready: true });
