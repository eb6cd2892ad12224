/**
 * A snapshot of the host state a node can leave behind — processes, mounts, links, iptables
 * rules, sysctls, cgroups, hard-coded paths — to prove that `down` restores the machine.
 *
 * This machine is shared (other engineers' tests run at the same time), so two snapshots are
 * compared only on what the node could have made: entries matching the node's own names.
 * Everything else that differs is reported separately as "not the node's".
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  HARDCODED_PATHS,
  OWNER_FILE,
  TOUCHED_SYSCTLS,
  cgroupHierarchies,
  mountPoints,
  readSysctl,
} from '../../../hack/node/host.js';

export interface HostSnapshot {
  processes: string[];
  mounts: string[];
  links: string[];
  iptables: string[];
  sysctls: string[];
  cgroups: string[];
  paths: string[];
}

const NODE_PROCESS = /(^|\/)(containerd|containerd-shim-runc-v2|kubelet|kube-proxy|kube-scheduler|coredns)$/;

function sh(cmd: string, args: string[]): string {
  return spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '';
}

function processes(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (NODE_PROCESS.test(argv0)) out.push(`${argv0} (pid ${pid})`);
    } catch {
      // exited
    }
  }
  return out;
}

/** Rules without counters, one per line, prefixed with family and table. */
function iptables(): string[] {
  const out: string[] = [];
  for (const [fam, cmd] of [
    ['v4', 'iptables-save'],
    ['v6', 'ip6tables-save'],
  ] as const) {
    let table = '';
    for (const line of sh(cmd, []).split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith(':')) out.push(`${fam} ${table} chain ${line.slice(1).split(' ')[0] ?? ''}`);
      else if (line.startsWith('-A')) out.push(`${fam} ${table} ${line}`);
    }
  }
  return out;
}

export function snapshot(): HostSnapshot {
  return {
    processes: processes(),
    mounts: mountPoints(),
    links: sh('ip', ['-o', 'link', 'show'])
      .split('\n')
      .map((l) => /^\d+:\s+([^:]+):/.exec(l)?.[1]?.replace(/@.*/, '') ?? '')
      .filter((l) => l !== ''),
    iptables: iptables(),
    sysctls: TOUCHED_SYSCTLS.filter((s) => existsSync(join('/proc/sys', ...s.split('.')))).map(
      (s) => `${s}=${readSysctl(s)}`,
    ),
    cgroups: cgroupHierarchies()
      .map((h) => join(h, 'kubepods'))
      .filter((p) => existsSync(p)),
    paths: [...HARDCODED_PATHS, OWNER_FILE].filter((p) => existsSync(p)),
  };
}

/** Would the node have made this entry? (names it uses, nothing else) */
export function nodeish(kind: keyof HostSnapshot, entry: string, stateDir: string): boolean {
  switch (kind) {
    case 'processes':
    case 'sysctls':
    case 'cgroups':
    case 'paths':
      return true;
    case 'mounts':
      return (
        entry.startsWith(stateDir) ||
        entry.startsWith('/run/containerd') ||
        /^\/run\/netns\/cni-/.test(entry) ||
        entry.includes('kubelet')
      );
    case 'links':
      return entry === 'weftcni0' || /^veth[0-9a-f]{8}$/.test(entry);
    case 'iptables':
      return /KUBE-|CNI-|WEFT-NODE-/.test(entry);
  }
}

export interface SnapshotDiff {
  /** Node-made entries present after but not before (or gone that were there). */
  node: string[];
  other: string[];
}

export function diff(before: HostSnapshot, after: HostSnapshot, stateDir: string): SnapshotDiff {
  const node: string[] = [];
  const other: string[] = [];
  for (const kind of Object.keys(before) as (keyof HostSnapshot)[]) {
    const b = new Set(before[kind]);
    const a = new Set(after[kind]);
    const changes = [
      ...[...a].filter((x) => !b.has(x)).map((x) => `+ ${kind}: ${x}`),
      ...[...b].filter((x) => !a.has(x)).map((x) => `- ${kind}: ${x}`),
    ];
    for (const c of changes) (nodeish(kind, c.slice(kind.length + 4), stateDir) ? node : other).push(c);
  }
  // Processes are compared by command, not PID: a node process running before is not ours.
  return { node: node.filter((c) => !c.startsWith('- processes')), other };
}
