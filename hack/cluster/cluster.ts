/**
 * `up`, `down` and `status` of a local cluster: an ordered list of components (see types.ts)
 * sharing one state dir. The demo cluster lives in `.local/cluster`; each test run gets its
 * own throwaway cluster in a temp dir with random ports, so the two never collide.
 *
 * State on disk: `state.json` (profile, bin dir, allocated ports), `pids/<component>.pid`,
 * `logs/<component>.log`, `pki/`, one dir per component, `admin.kubeconfig`.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError, errorMessage } from '../../pkg/errors/index.js';
import type { Logger } from '../../pkg/log/index.js';
import { ensureBinaries } from './binaries.js';
import { openClusterPki } from './cluster-pki.js';
import { components as registry } from './components/index.js';
import { freePort, portInUse, waitUntil } from './net.js';
import { peakRssBytes, relevantLogLines, rssBytes, runningPid, startProcess, stopProcess } from './proc.js';
import type { ClusterContext, ClusterPki, Component, HealthResult, Profile } from './types.js';
import { withLock } from './lock.js';

export interface ClusterOptions {
  stateDir: string;
  profile: Profile;
  log: Logger;
  /** Where to copy the admin kubeconfig after `up` (the demo's `.local/kubeconfig`). */
  kubeconfigOut?: string;
  /** Defaults to every registered component whose profiles include `profile`. */
  components?: Component[];
  /** Test clusters: a reaper tears the cluster down if this process dies without `down`. */
  ownerPid?: number;
}

interface StateFile {
  version: 1;
  profile: Profile;
  binDir: string;
  /** `<component>.<port name>` → port. Kept across `up`s so URLs and kubeconfigs stay valid. */
  ports: Record<string, number>;
  createdAt: string;
}

export interface UpResult {
  stateDir: string;
  binDir: string;
  apiserverUrl: string;
  /** The admin kubeconfig (kubeconfigOut when given; '' for a cluster without kube-apiserver). */
  kubeconfigPath: string;
  alreadyUp: boolean;
  /** Milliseconds per step: `binaries`, `pki`, then one entry per component. */
  timings: Record<string, number>;
  totalMs: number;
}

export interface ComponentStatus {
  name: string;
  pid: number | undefined;
  healthy: boolean;
  detail: string;
  ports: Record<string, number>;
  rssBytes: number | undefined;
  peakRssBytes: number | undefined;
}

export function componentsFor(opts: Pick<ClusterOptions, 'components' | 'profile'>): Component[] {
  return opts.components ?? registry.filter((c) => c.profiles.includes(opts.profile));
}

const statePath = (stateDir: string): string => join(stateDir, 'state.json');
export const logPath = (stateDir: string, name: string): string => join(stateDir, 'logs', `${name}.log`);

function readState(stateDir: string): StateFile | undefined {
  const file = statePath(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    return parsed.version === 1 ? parsed : undefined;
  } catch {
    throw new WeftError(
      'WEFT_CLUSTER_STATE_INVALID',
      `${file} is not valid JSON; run \`hack/local-cluster down\` to reset the cluster`,
    );
  }
}

function writeState(stateDir: string, state: StateFile): void {
  writeFileSync(statePath(stateDir), `${JSON.stringify(state, null, 2)}\n`);
}

interface Built {
  ctx: ClusterContext;
  state: StateFile;
}

function makeContext(opts: ClusterOptions, state: StateFile, comps: Component[]): ClusterContext {
  const apiserverUrl = (): string => `https://127.0.0.1:${port('kube-apiserver', 'secure')}`;
  const port = (component: string, name: string): number => {
    const p = state.ports[`${component}.${name}`];
    if (p === undefined) {
      throw new WeftError(
        'WEFT_CLUSTER_START_FAILED',
        `port ${component}.${name} is not allocated (component order?)`,
      );
    }
    return p;
  };
  let pki: ClusterPki | undefined;
  const ctx: ClusterContext = {
    profile: opts.profile,
    stateDir: opts.stateDir,
    binDir: state.binDir,
    log: opts.log,
    get pki(): ClusterPki {
      return (pki ??= openClusterPki(join(opts.stateDir, 'pki'), apiserverUrl));
    },
    get adminKubeconfig(): string {
      return ctx.pki.ensureKubeconfig('admin', 'weft-admin', ['system:masters']);
    },
    get apiserverUrl(): string {
      return apiserverUrl();
    },
    port,
    dir: (component, ...parts) => {
      const d = join(opts.stateDir, component, ...parts);
      mkdirSync(d, { recursive: true });
      return d;
    },
    components: comps,
    bin: (name) => (name.startsWith('/') ? name : join(state.binDir, name)),
  };
  return ctx;
}

/** Gives each of the component's ports a loopback port, unless state already has one. */
async function allocatePorts(c: Component, state: StateFile, profile: Profile, fresh = false): Promise<void> {
  for (const [name, preferred] of Object.entries(c.ports ?? {})) {
    const key = `${c.name}.${name}`;
    if (state.ports[key] !== undefined && !fresh) continue;
    state.ports[key] = await freePort(profile === 'demo' && !fresh ? preferred : 0);
  }
}

function portsOf(c: Component, state: StateFile): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(c.ports ?? {})) {
    const p = state.ports[`${c.name}.${name}`];
    if (p !== undefined) out[name] = p;
  }
  return out;
}

async function safeHealth(c: Component, ctx: ClusterContext): Promise<HealthResult> {
  try {
    return await c.health(ctx);
  } catch (err) {
    return { ok: false, detail: errorMessage(err) };
  }
}

function startFailure(c: Component, ctx: ClusterContext, why: string): WeftError {
  const log = logPath(ctx.stateDir, c.name);
  const lines = relevantLogLines(log);
  const tail =
    lines.length > 0 ? `\n  last lines of ${log}:\n    ${lines.join('\n    ')}` : `\n  (${log} is empty)`;
  return new WeftError('WEFT_CLUSTER_START_FAILED', `${c.name} did not become healthy: ${why}${tail}`, {
    details: { component: c.name, log, lines },
  });
}

/** Starts `c` and waits for its health; the wait stops early if the process exits. */
async function startAndWait(c: Component, ctx: ClusterContext, state: StateFile): Promise<void> {
  for (const [name, p] of Object.entries(portsOf(c, state))) {
    if (await portInUse(p)) {
      throw new WeftError(
        'WEFT_CLUSTER_START_FAILED',
        `${c.name}: port ${p} (${name}) is already in use by another process; stop it, or run \`hack/local-cluster down\` to reset the cluster's ports`,
      );
    }
  }
  await c.prepare?.(ctx);
  const cmd = c.command(ctx);
  const bin = ctx.bin(cmd.bin);
  if (!existsSync(bin)) throw new WeftError('WEFT_BINARY_MISSING', `${c.name}: ${bin} does not exist`);
  mkdirSync(join(ctx.stateDir, 'logs'), { recursive: true });
  startProcess(ctx.stateDir, {
    name: c.name,
    bin,
    args: cmd.args,
    ...(cmd.env === undefined ? {} : { env: cmd.env }),
    cwd: ctx.dir(c.name),
    logFile: logPath(ctx.stateDir, c.name),
  });
  const abort = (): string | undefined =>
    runningPid(ctx.stateDir, c.name) === undefined ? 'the process exited' : undefined;
  try {
    await waitUntil(() => safeHealth(c, ctx), { timeoutMs: c.startTimeoutMs ?? 60_000, abort });
  } catch (err) {
    await stopProcess(ctx.stateDir, c.name, 3000);
    throw startFailure(c, ctx, errorMessage(err));
  }
}

const isPortClash = (err: unknown, stateDir: string, name: string): boolean =>
  err instanceof WeftError &&
  relevantLogLines(logPath(stateDir, name), 50).some((l) => /address already in use/i.test(l));

/** Brings one component up unless it already runs healthy; returns true if it was started. */
async function ensureComponent(c: Component, built: Built, profile: Profile): Promise<boolean> {
  const { ctx, state } = built;
  await allocatePorts(c, state, profile);
  writeState(ctx.stateDir, state);
  if (runningPid(ctx.stateDir, c.name) !== undefined) {
    // Running (maybe still starting, from a concurrent `up`): give it its start timeout.
    try {
      await waitUntil(() => safeHealth(c, ctx), { timeoutMs: c.startTimeoutMs ?? 60_000 });
      return false;
    } catch (err) {
      throw startFailure(c, ctx, `it is running but unhealthy: ${errorMessage(err)}`);
    }
  }
  try {
    await startAndWait(c, ctx, state);
  } catch (err) {
    // Between choosing a random port and binding it, another process may have taken it.
    if (profile !== 'test' || !isPortClash(err, ctx.stateDir, c.name)) throw err;
    ctx.log.warn('port clash, retrying with fresh ports', { component: c.name });
    await allocatePorts(c, state, profile, true);
    writeState(ctx.stateDir, state);
    await startAndWait(c, ctx, state);
  }
  return true;
}

async function loadOrCreate(opts: ClusterOptions, comps: Component[]): Promise<Built> {
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  const existing = readState(opts.stateDir);
  if (existing !== undefined && existing.profile !== opts.profile) {
    throw new WeftError(
      'WEFT_CLUSTER_STATE_INVALID',
      `${opts.stateDir} holds a ${existing.profile} cluster, not a ${opts.profile} one`,
    );
  }
  const binaries = [...new Set(comps.flatMap((c) => c.binaries))];
  const binDir = await ensureBinaries(binaries);
  const state: StateFile = existing ?? {
    version: 1,
    profile: opts.profile,
    binDir,
    ports: {},
    createdAt: new Date().toISOString(),
  };
  state.binDir = binDir;
  return { ctx: makeContext(opts, state, comps), state };
}

async function timed<T>(timings: Record<string, number>, key: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    timings[key] = Date.now() - t;
  }
}

export async function up(opts: ClusterOptions): Promise<UpResult> {
  const comps = componentsFor(opts);
  return withLock(lockPath(opts.stateDir), async () => {
    const t0 = Date.now();
    const timings: Record<string, number> = {};
    const built = await timed(timings, 'binaries', () => loadOrCreate(opts, comps));
    await timed(timings, 'pki', async () => built.ctx.pki);
    if (opts.ownerPid !== undefined) startReaper(opts.stateDir, opts.ownerPid);
    let started = 0;
    for (const c of comps) {
      const log = opts.log.child({ component: c.name });
      const didStart = await timed(timings, c.name, () => ensureComponent(c, built, opts.profile));
      if (didStart) started++;
      log.info(
        didStart ? `started in ${fmtMs(timings[c.name])}` : 'already running',
        portsOf(c, built.state),
      );
    }
    // A cluster without kube-apiserver (lifecycle tests run etcd alone) has no kubeconfig.
    const hasApiserver = comps.some((c) => c.name === 'kube-apiserver');
    const kubeconfigPath = hasApiserver ? built.ctx.adminKubeconfig : '';
    if (hasApiserver && opts.kubeconfigOut !== undefined) copyFileSync(kubeconfigPath, opts.kubeconfigOut);
    return {
      stateDir: opts.stateDir,
      binDir: built.state.binDir,
      apiserverUrl: hasApiserver ? built.ctx.apiserverUrl : '',
      kubeconfigPath: hasApiserver ? (opts.kubeconfigOut ?? kubeconfigPath) : '',
      alreadyUp: started === 0,
      timings,
      totalMs: Date.now() - t0,
    };
  });
}

/** Next to the state dir, not in it: `down` removes the state dir while holding the lock. */
const lockPath = (stateDir: string): string => `${stateDir.replace(/\/+$/, '')}.lock`;

export function fmtMs(ms: number | undefined): string {
  return ms === undefined ? '?' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Stops, in reverse order, only the processes whose PIDs this cluster recorded, then removes
 * the state dir (and the kubeconfig copy). Returns the names of the components it stopped.
 */
export async function down(opts: ClusterOptions): Promise<string[]> {
  return withLock(lockPath(opts.stateDir), () => downLocked(opts));
}

async function downLocked(opts: ClusterOptions): Promise<string[]> {
  const comps = componentsFor(opts);
  const state = readStateLenient(opts.stateDir);
  const stopped: string[] = [];
  if (state !== undefined) {
    const ctx = makeContext(opts, state, comps);
    for (const c of [...comps].reverse()) {
      if (await stopProcess(opts.stateDir, c.name)) stopped.push(c.name);
      await c.afterStop?.(ctx);
    }
  }
  stopReaper(opts.stateDir);
  rmSync(opts.stateDir, { recursive: true, force: true });
  if (opts.kubeconfigOut !== undefined) rmSync(opts.kubeconfigOut, { force: true });
  return stopped;
}

/** A damaged state file must not stop `down` from cleaning up. */
function readStateLenient(stateDir: string): StateFile | undefined {
  try {
    return readState(stateDir);
  } catch {
    return undefined;
  }
}

export async function status(opts: ClusterOptions): Promise<ComponentStatus[] | undefined> {
  const state = readState(opts.stateDir);
  if (state === undefined) return undefined;
  const comps = componentsFor(opts);
  const ctx = makeContext(opts, state, comps);
  const out: ComponentStatus[] = [];
  for (const c of comps) {
    const pid = runningPid(opts.stateDir, c.name);
    const ports = portsOf(c, state);
    const h = pid === undefined ? { ok: false, detail: 'not running' } : await safeHealth(c, ctx);
    out.push({
      name: c.name,
      pid,
      healthy: h.ok,
      detail: h.detail,
      ports,
      rssBytes: pid === undefined ? undefined : rssBytes(pid),
      peakRssBytes: pid === undefined ? undefined : peakRssBytes(pid),
    });
  }
  return out;
}

/**
 * A detached shell that waits for the owner (the test runner) to exit and then kills this
 * cluster's recorded processes and removes its state dir — so a test run killed with SIGKILL
 * or a closed terminal leaves nothing behind. `down` stops the reaper first.
 */
const REAPER = `
owner=$1; dir=$2
while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
[ -d "$dir" ] || exit 0
ours() { grep -qF -- "$dir" "/proc/$1/cmdline" 2>/dev/null; }
each() { for f in "$dir"/pids/*.pid; do [ -f "$f" ] && "$@" "$(head -n 1 "$f")"; done; return 0; }
term() { ours "$1" && kill -s TERM "$1" 2>/dev/null; }
force() { ours "$1" && kill -s KILL "$1" 2>/dev/null; }
left() { ours "$1" && touch "$dir/.left"; }
each term
for i in $(seq 1 50); do rm -f "$dir/.left"; each left; [ -e "$dir/.left" ] || break; sleep 0.2; done
each force
rm -rf "$dir"
`;

function startReaper(stateDir: string, ownerPid: number): void {
  const child = spawn('/bin/bash', ['-c', REAPER, 'weft-cluster-reaper', String(ownerPid), stateDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  if (child.pid !== undefined) writeFileSync(join(stateDir, 'reaper.pid'), `${child.pid}\n`);
}

function stopReaper(stateDir: string): void {
  const file = join(stateDir, 'reaper.pid');
  if (!existsSync(file)) return;
  const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!cmdline.includes('weft-cluster-reaper') || !cmdline.includes(stateDir)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Exited on its own in the meantime.
  }
}
