/**
 * Everything the node changes on the host outside its state dir, and how `down` puts it back.
 * Each step is idempotent and tolerant of a half-done `up` (a crash, a Ctrl-C), because `down`
 * must leave this shared CI machine as it found it whatever state it is in.
 *
 * `up` records what it is about to change (sysctls, hard-coded host paths the kubelet and
 * containerd create whatever their config says) in `host-before.json` once; `down` restores
 * from it and deletes it, so a second `up` after a crash still remembers the true originals.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WeftError } from '../../pkg/errors/index.js';
import type { Logger } from '../../pkg/log/index.js';
import { BRIDGE, NODE_IP, POD_CIDR } from './config.js';
import { guardInstalled, ownedLeftovers, planCleanup, planGuard, type Family } from './iptables.js';

/**
 * Sysctls the kubelet (kernel.*, vm.*), the CNI bridge plugin (ip_forward) and the node itself
 * (bridge-nf-call-iptables: Services between pods on one bridge need bridged packets to pass
 * iptables) set.
 */
export const TOUCHED_SYSCTLS = [
  'net.ipv4.ip_forward',
  'kernel.panic',
  'kernel.panic_on_oops',
  'vm.overcommit_memory',
  'net.bridge.bridge-nf-call-iptables',
];

/** Host paths created by containerd, CRI, libcni and the kubelet regardless of their config. */
export const HARDCODED_PATHS = [
  '/run/containerd',
  '/run/netns',
  '/var/lib/cni',
  '/var/lib/kubelet',
  '/var/log/containers',
  '/var/log/pods',
];

export const CGROUP_ROOT = '/sys/fs/cgroup';
export const KUBEPODS = 'kubepods';

export interface HostBefore {
  sysctls: Record<string, string>;
  /** `nft list tables` lines (e.g. `table ip filter`), when nft is installed. */
  nftTables?: string[];
  existed: Record<string, boolean>;
  /** cgroup hierarchies in which /kubepods already existed. */
  kubepodsExisted: string[];
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded), never through a shell. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): RunResult {
  const r = spawnSync(cmd, args, {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const why = r.error !== undefined ? `${r.error.message}\n` : '';
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: `${why}${r.stderr ?? ''}` };
}

function mustRun(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    throw new WeftError(
      'WEFT_NODE_PRECONDITION',
      `${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`,
    );
  }
  return r.stdout;
}

function sysctlPath(name: string): string {
  return join('/proc/sys', ...name.split('.'));
}

export function readSysctl(name: string): string {
  return readFileSync(sysctlPath(name), 'utf8').trim();
}

function writeSysctl(name: string, value: string): void {
  writeFileSync(sysctlPath(name), `${value}\n`);
}

export function cgroupHierarchies(): string[] {
  try {
    return readdirSync(CGROUP_ROOT)
      .map((d) => join(CGROUP_ROOT, d))
      .filter((d) => existsSync(join(d, 'cgroup.procs')));
  } catch {
    return [];
  }
}

/** Records the host's state once per up/down cycle (kept across a crashed up). */
export function recordHostBefore(file: string): HostBefore {
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as HostBefore;
  const before: HostBefore = {
    sysctls: Object.fromEntries(
      TOUCHED_SYSCTLS.filter((s) => existsSync(sysctlPath(s))).map((s) => [s, readSysctl(s)]),
    ),
    existed: Object.fromEntries(HARDCODED_PATHS.map((p) => [p, existsSync(p)])),
    kubepodsExisted: cgroupHierarchies().filter((h) => existsSync(join(h, KUBEPODS))),
  };
  const tables = nftTables();
  if (tables !== undefined) before.nftTables = tables;
  writeFileSync(file, `${JSON.stringify(before, null, 2)}\n`);
  return before;
}

export function readHostBefore(file: string): HostBefore | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as HostBefore;
  } catch (err) {
    throw new WeftError('WEFT_CLUSTER_STATE_INVALID', `${file} is unreadable; fix or delete it`, {
      cause: err,
    });
  }
}

/** Preconditions that, if unmet, would make the node fail half-way; checked before any change. */
export function checkPreconditions(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('the node needs root (network namespaces, mounts, iptables)');
  for (const bin of [
    '/usr/bin/containerd',
    '/usr/sbin/runc',
    '/usr/lib/cni/bridge',
    '/usr/lib/cni/host-local',
  ]) {
    if (!existsSync(bin)) problems.push(`${bin} is missing (run hack/ensure-deps.sh)`);
  }
  if (run('iptables-save', ['-t', 'mangle']).status !== 0) problems.push('iptables-save does not work here');
  if (!existsSync(join(CGROUP_ROOT, 'memory', 'cgroup.procs')))
    problems.push('no cgroup v1 memory hierarchy');
  if (problems.length > 0) throw new WeftError('WEFT_NODE_PRECONDITION', problems.join('; '));
}

/** Bridged IPv4 must traverse iptables, or pod→ClusterIP→pod on the one bridge breaks. */
export function ensureBridgeNetfilter(): void {
  const name = 'net.bridge.bridge-nf-call-iptables';
  if (!existsSync(sysctlPath(name))) {
    throw new WeftError('WEFT_NODE_PRECONDITION', `${name} is missing: the kernel needs br_netfilter`);
  }
  if (readSysctl(name) !== '1') writeSysctl(name, '1');
}

// ---- one node per machine ----

/** The node's host resources (bridge, node IP, /run/containerd, KUBE-* chains) exist once. */
export const OWNER_FILE = '/run/weft-node.owner';

function ownerAlive(stateDir: string): boolean {
  try {
    const pid = Number.parseInt(
      readFileSync(join(stateDir, 'pids', 'containerd.pid'), 'utf8').split('\n')[0] ?? '',
      10,
    );
    return pid > 1 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(stateDir);
  } catch {
    return false;
  }
}

/**
 * Claims the machine's one node for `stateDir`. Another checkout's running node (e.g. a
 * developer's demo cluster when CI starts) is refused with a clear error instead of two
 * nodes fighting over the bridge, ports and iptables chains; a stale claim is taken over.
 */
export function claimNode(stateDir: string): void {
  if (existsSync(OWNER_FILE)) {
    const owner = readFileSync(OWNER_FILE, 'utf8').trim();
    if (owner !== stateDir && owner !== '' && ownerAlive(owner)) {
      throw new WeftError(
        'WEFT_NODE_PRECONDITION',
        `another weft node is running on this machine (state ${owner}); run \`hack/local-cluster down\` in its checkout first`,
      );
    }
  }
  writeFileSync(OWNER_FILE, `${stateDir}\n`);
}

/** The state dir of another checkout whose node owns this machine, if any. */
export function otherOwner(stateDir: string): string | undefined {
  try {
    const owner = readFileSync(OWNER_FILE, 'utf8').trim();
    return owner !== '' && owner !== stateDir ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The state dir of another checkout whose node is running on this machine now (a stale claim
 * left by a crash does not count: `claimNode` takes it over).
 */
export function runningOtherOwner(stateDir: string): string | undefined {
  const other = otherOwner(stateDir);
  return other !== undefined && ownerAlive(other) ? other : undefined;
}

export interface NodeWait {
  /** the other checkout's state dir while its node runs, undefined once the machine is free */
  busyWith: () => string | undefined;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  say: (line: string) => void;
  timeoutMs: number;
  pollMs: number;
}

/**
 * Waits, bounded, until no other checkout's node runs on this machine: two test runs on one
 * CI machine (a developer's run still in its e2e stage when CI starts) must take turns instead
 * of the second failing on the first one's bridge and chains. Returns false on timeout.
 */
export async function waitForNodeFree(w: NodeWait): Promise<boolean> {
  const start = w.now();
  let lastSaid = -Infinity;
  for (let owner = w.busyWith(); owner !== undefined; owner = w.busyWith()) {
    const waited = w.now() - start;
    if (waited >= w.timeoutMs) return false;
    if (waited - lastSaid >= 60_000) {
      w.say(
        `another weft node runs on this machine (state ${owner}); waiting for it to go down (${Math.round(waited / 1000)} s of ${Math.round(w.timeoutMs / 1000)} s)`,
      );
      lastSaid = waited;
    }
    await w.sleep(Math.min(w.pollMs, w.timeoutMs - waited));
  }
  return true;
}

export function releaseNode(stateDir: string): void {
  try {
    if (readFileSync(OWNER_FILE, 'utf8').trim() === stateDir) rmSync(OWNER_FILE, { force: true });
  } catch {
    // not claimed
  }
}

// ---- firewall ----

function saveCmd(f: Family): string {
  return f === 4 ? 'iptables-save' : 'ip6tables-save';
}
function restoreCmd(f: Family): string {
  return f === 4 ? 'iptables-restore' : 'ip6tables-restore';
}

export function iptablesSave(f: Family): string {
  return mustRun(saveCmd(f), []);
}

/**
 * Installs the FORWARD guard for both families, and the egress guard for hostNetwork pods
 * where a cgroup v2 hierarchy exists (iptables' cgroup match needs the pod cgroup to exist,
 * so it is created here, before the kubelet would; `down` removes it). Verifies both.
 */
export function installGuard(): void {
  const unified = [join(CGROUP_ROOT, 'unified'), CGROUP_ROOT].find(
    (d) => existsSync(join(d, 'cgroup.procs')) && existsSync(join(d, 'cgroup.controllers')),
  );
  if (unified !== undefined) mkdirSync(join(unified, KUBEPODS), { recursive: true });
  const egress = unified !== undefined;
  for (const f of [4, 6] as const) {
    mustRun(restoreCmd(f), ['--noflush'], { input: planGuard(f, iptablesSave(f), egress) });
    if (!guardInstalled(iptablesSave(f), egress)) {
      throw new WeftError('WEFT_NODE_PRECONDITION', `the IPv${f} guard did not install; not starting pods`);
    }
  }
}

/** Removes every KUBE-*, CNI-* and WEFT-NODE-* chain and the rules jumping to them. */
export function removeOwnedRules(log: Logger): string[] {
  const left: string[] = [];
  for (const f of [4, 6] as const) {
    // Two passes: a chain kube-proxy re-creates while we work, or a rule added between our
    // save and restore, makes the first restore fail; the second sees the settled state.
    for (let pass = 0; pass < 2; pass++) {
      const plan = planCleanup(iptablesSave(f));
      if (plan === '') break;
      const r = run(restoreCmd(f), ['--noflush'], { input: plan });
      if (r.status !== 0)
        log.warn('iptables cleanup pass failed; retrying', { family: f, err: r.stderr.trim() });
    }
    left.push(...ownedLeftovers(iptablesSave(f)).map((l) => `ipv${f} ${l}`));
  }
  return left;
}

/** `nft list tables` lines, or undefined without nft. */
export function nftTables(): string[] | undefined {
  const r = run('nft', ['list', 'tables']);
  if (r.status !== 0) return undefined;
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('table '));
}

/** True when an `nft list table` listing holds only base chains with accept policies, no rules. */
export function nftTableEmpty(listing: string): boolean {
  const lines = listing.split('\n').map((l) => l.trim());
  const chains = lines.filter((l) => /^chain \S+ \{$/.test(l)).length;
  const baseChains = lines.filter((l) => /^type \S+ hook \S+ priority [^;]+; policy accept;$/.test(l)).length;
  const other = lines.filter(
    (l) =>
      !(
        l === '' ||
        l === '}' ||
        /^table \S+ \S+ \{$/.test(l) ||
        /^chain \S+ \{$/.test(l) ||
        /^type .*policy accept;$/.test(l)
      ),
  );
  // Every chain must be a base chain (a user chain, even empty, is someone's) and hold no rule.
  return other.length === 0 && chains === baseChains;
}

/**
 * iptables-nft creates the nf_tables tables (ip filter, ip6 nat, ...) on first use and never
 * deletes them. Those the node's `up` created are removed again once they are empty.
 */
export function removeCreatedNftTables(before: HostBefore): string[] {
  if (before.nftTables === undefined) return [];
  const left: string[] = [];
  for (const t of nftTables() ?? []) {
    if (before.nftTables.includes(t)) continue;
    const [, family, name] = t.split(/\s+/);
    if (family === undefined || name === undefined) continue;
    const listing = run('nft', ['list', 'table', family, name]);
    if (listing.status !== 0 || !nftTableEmpty(listing.stdout)) continue; // someone else's rules: keep
    if (run('nft', ['delete', 'table', family, name]).status !== 0) left.push(`nft ${t}`);
  }
  return left;
}

// ---- links ----

function linkExists(name: string): boolean {
  return run('ip', ['link', 'show', 'dev', name]).status === 0;
}

/**
 * Creates the pod bridge with the node IP before the kubelet starts (it binds the node IP);
 * the CNI bridge plugin reuses it. A bridge left by a crashed run is reused as it is.
 */
export function ensureBridge(): void {
  if (!linkExists(BRIDGE)) mustRun('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  const addrs = mustRun('ip', ['-o', '-4', 'addr', 'show', 'dev', BRIDGE]);
  if (!addrs.includes(`${NODE_IP}/`))
    mustRun('ip', ['addr', 'add', `${NODE_IP}/${POD_CIDR.split('/')[1] ?? '24'}`, 'dev', BRIDGE]);
  mustRun('ip', ['link', 'set', BRIDGE, 'up']);
}

/** Deletes the veths still enslaved to the bridge, then the bridge. */
export function removeLinks(): string[] {
  if (!linkExists(BRIDGE)) return [];
  const ports = run('ip', ['-o', 'link', 'show', 'master', BRIDGE]).stdout;
  for (const m of ports.matchAll(/^\d+:\s+([^:@\s]+)/gm))
    if (m[1] !== undefined) run('ip', ['link', 'del', m[1]]);
  run('ip', ['link', 'del', BRIDGE]);
  return linkExists(BRIDGE) ? [`link ${BRIDGE}`] : [];
}

// ---- mounts ----

/** Mount points (decoded) from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && p !== '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
}

/** Mounts the node owns: anything under its state dirs, and CRI's pod netns files. */
export function ownedMounts(prefixes: string[]): string[] {
  return mountPoints().filter(
    (m) => prefixes.some((p) => m === p || m.startsWith(`${p}/`)) || /^\/run\/netns\/cni-[0-9a-f-]+$/.test(m),
  );
}

/**
 * Unmounts deepest first; a busy mount is detached lazily so `down` never hangs on it. With
 * `netns`, also CRI's pod network namespaces (/run/netns/cni-*), which only the last step of
 * teardown may touch (containerd must be gone). Never throws: what stays is returned.
 */
export function unmountOwned(prefixes: string[], netns = false): string[] {
  const mine = (): string[] => ownedMounts(prefixes).filter((m) => netns || !m.startsWith('/run/netns/'));
  for (let pass = 0; pass < 3; pass++) {
    const mounts = [...new Set(mine())].sort((a, b) => b.length - a.length);
    if (mounts.length === 0) break;
    for (const m of mounts) if (run('umount', [m]).status !== 0) run('umount', ['-l', m]);
  }
  const left = mine().map((m) => `mount ${m}`);
  if (netns) {
    for (const f of safeReaddir('/run/netns')) {
      if (!/^cni-[0-9a-f-]+$/.test(f)) continue;
      try {
        rmSync(join('/run/netns', f), { force: true });
      } catch {
        // Still a mount point underneath a later mount of /run/netns (e.g. `ip netns add`).
        left.push(`netns /run/netns/${f}`);
      }
    }
  }
  return left;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---- processes and cgroups ----

function subdirs(dir: string): string[] {
  return safeReaddir(dir)
    .map((d) => join(dir, d))
    .filter((d) => {
      try {
        return statSync(d).isDirectory();
      } catch {
        return false;
      }
    });
}

/** Every cgroup dir under /kubepods in one hierarchy, deepest first. */
function kubepodsTree(hierarchy: string): string[] {
  const root = join(hierarchy, KUBEPODS);
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const s of subdirs(d)) walk(s);
    out.push(d);
  };
  walk(root);
  return out;
}

/** PIDs of every process in the node's pod cgroups: all of them are pod processes. */
export function podPids(): number[] {
  const pids = new Set<number>();
  for (const dir of kubepodsTree(join(CGROUP_ROOT, 'memory'))) {
    try {
      for (const l of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) {
        const pid = Number.parseInt(l, 10);
        if (pid > 1) pids.add(pid);
      }
    } catch {
      // cgroup removed meanwhile
    }
  }
  return [...pids];
}

/** SIGKILLs every pod process until the pod cgroups are empty (bounded). */
export async function killPodProcesses(timeoutMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pids = podPids();
  while (pids.length > 0 && Date.now() < deadline) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(200);
    pids = podPids();
  }
  return pids;
}

/**
 * containerd shims (and any of their children) serving our containerd socket. The socket path
 * in their command line is what makes them ours; nothing is matched by name alone.
 */
export function shimPids(containerdSocket: string): number[] {
  const pids: number[] = [];
  for (const d of safeReaddir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if ((argv[0] ?? '').includes('containerd-shim') && argv.includes(containerdSocket))
        pids.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

export async function killShims(containerdSocket: string, timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pids = shimPids(containerdSocket);
  let sig: NodeJS.Signals = 'SIGTERM';
  while (pids.length > 0 && Date.now() < deadline) {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone
      }
    }
    await sleep(300);
    sig = 'SIGKILL';
    pids = shimPids(containerdSocket);
  }
  return pids;
}

/** Removes /kubepods trees created by this node (deepest first); reports what stays. */
export function removeCgroups(before: HostBefore | undefined): string[] {
  const left: string[] = [];
  for (const h of cgroupHierarchies()) {
    if (before?.kubepodsExisted.includes(h) === true) continue;
    for (const d of kubepodsTree(h)) {
      try {
        rmdirSync(d);
      } catch {
        left.push(`cgroup ${d}`);
      }
    }
  }
  return left;
}

// ---- sysctls and host paths ----

export function restoreSysctls(before: HostBefore): string[] {
  const left: string[] = [];
  for (const [name, value] of Object.entries(before.sysctls)) {
    try {
      if (readSysctl(name) !== value) writeSysctl(name, value);
      if (readSysctl(name) !== value) left.push(`sysctl ${name}`);
    } catch {
      left.push(`sysctl ${name}`);
    }
  }
  return left;
}

/** Removes the hard-coded host paths the node created (only those that did not exist before). */
export function removeCreatedPaths(before: HostBefore): string[] {
  const left: string[] = [];
  for (const p of HARDCODED_PATHS) {
    if (before.existed[p] === true || !existsSync(p)) continue;
    // Never recurse into a mounted file system: whatever is still mounted there is reported.
    const busy = mountPoints().filter((m) => m.startsWith(`${p}/`));
    if (busy.length > 0) {
      left.push(...busy.map((m) => `mount ${m}`));
      continue;
    }
    rmSync(p, { recursive: true, force: true, maxRetries: 2 });
    if (existsSync(p)) left.push(`path ${p}`);
  }
  return left;
}
