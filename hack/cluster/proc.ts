/**
 * Starting and stopping the cluster's processes. Every process is started detached (its own
 * process group, stdio to a log file) so `hack/local-cluster up` can exit and leave it
 * running, and its PID is written to `<stateDir>/pids/<name>.pid`. Before signalling a
 * recorded PID we check /proc/<pid>/cmdline still names our binary and our state dir, so a
 * PID the kernel has since reused for someone else's process is never killed.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartSpec {
  name: string;
  bin: string;
  args: string[];
  env?: Record<string, string>;
  cwd: string;
  logFile: string;
}

export function pidFile(stateDir: string, name: string): string {
  return join(stateDir, 'pids', `${name}.pid`);
}

export function startProcess(stateDir: string, spec: StartSpec): number {
  mkdirSync(join(stateDir, 'pids'), { recursive: true });
  const out = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.bin, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${spec.bin}`);
    // A spawn error (ENOENT, EACCES) arrives asynchronously; the liveness check reports it.
    child.on('error', () => undefined);
    child.unref();
    // The binary is recorded with the PID so stop/status can verify identity without
    // re-deriving the component's command line.
    writeFileSync(pidFile(stateDir, spec.name), `${child.pid}\n${spec.bin}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

export function readPid(stateDir: string, name: string): { pid: number; bin: string } | undefined {
  const file = pidFile(stateDir, name);
  if (!existsSync(file)) return undefined;
  const [pidText = '', bin = ''] = readFileSync(file, 'utf8').split('\n');
  const pid = Number.parseInt(pidText.trim(), 10);
  return Number.isInteger(pid) && pid > 1 && bin !== '' ? { pid, bin } : undefined;
}

function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}

/** Zombies keep their /proc entry until reaped; treat them as gone. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** True when `pid` is alive and is the process we started: our binary, our state dir. */
export function isOurs(pid: number, bin: string, stateDir: string): boolean {
  const argv = cmdlineOf(pid);
  if (argv === undefined || argv.length === 0 || isZombie(pid)) return false;
  return argv[0] === bin && argv.some((a) => a.includes(stateDir));
}

/** The PID recorded for `name` if that process is still alive and still ours. */
export function runningPid(stateDir: string, name: string): number | undefined {
  const rec = readPid(stateDir, name);
  return rec !== undefined && isOurs(rec.pid, rec.bin, stateDir) ? rec.pid : undefined;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(stateDir: string, name: string, graceMs = 10_000): Promise<boolean> {
  const rec = readPid(stateDir, name);
  const pid = runningPid(stateDir, name);
  rmSync(pidFile(stateDir, name), { force: true });
  if (rec === undefined || pid === undefined) return false;
  const alive = (): boolean => isOurs(pid, rec.bin, stateDir);
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive()) return true;
    await sleep(100);
  }
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone between the check and the signal: nothing to do.
  }
}

/** Resident set size in bytes (VmRSS), for the status table and the memory measurements. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Peak resident set size in bytes (VmHWM) since the process started. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

const ERRORISH = /^[EF]\d{4} |"level":"(error|fatal|panic)"|\b(error|fatal|panic|failed)\b/i;

/**
 * The lines of a log most likely to explain a failure: the last `max` error-looking lines if
 * there are any, else simply the last `max` lines.
 */
export function relevantLogLines(logFile: string, max = 15): string[] {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => ERRORISH.test(l));
  const chosen = errors.length > 0 ? errors : lines;
  return chosen.slice(-max).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
}
