/**
 * Worker-thread side of the validation pool: validates one object per message. Large objects are
 * validated here so a multi-second validation never blocks the event loop that answers every
 * other admission request.
 */
import { parentPort } from 'node:worker_threads';
import { validateObject, type ValidateOptions } from '../pkg/validation/index.js';
import { warmUpValidation } from './warmup.js';

interface Job {
  id: number;
  obj: unknown;
  options: ValidateOptions;
}

parentPort?.on('message', (job: Job) => {
  try {
    parentPort?.postMessage({ id: job.id, result: validateObject(job.obj, job.options) });
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});

// Compile the schemas before taking jobs, then say so: the pool starts job timers only on ready workers.
warmUpValidation();
parentPort?.postMessage({ ready: true });
