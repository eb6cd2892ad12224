/**
 * A lock file so two `up`s (or an `up` and a `down`) of the same cluster never interleave.
 * The file holds the owner's PID; a lock whose owner is dead is stale and taken over.
 */
import { openSync, closeSync, writeSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WeftError } from '../../pkg/errors/index.js';

function ownerAlive(path: string): boolean {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    if (!Number.isInteger(pid) || pid <= 1) return false;
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else — still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryAcquire(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!ownerAlive(path)) rmSync(path, { force: true });
    return false;
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 20 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  // On a fresh clone or machine the lock's folder (.local/, ~/.cache/weft/) does not exist yet.
  mkdirSync(dirname(path), { recursive: true });
  while (!tryAcquire(path)) {
    if (Date.now() > deadline) {
      throw new WeftError(
        'WEFT_CLUSTER_TIMEOUT',
        `another process holds ${path} (still held after ${Math.round(timeoutMs / 1000)} s); if no \`up\`/\`down\` is running, delete it`,
      );
    }
    await sleep(250);
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}
