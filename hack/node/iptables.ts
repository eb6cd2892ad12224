/**
 * The node's host firewall work, as pure functions over `iptables-save` text that return
 * `iptables-restore --noflush` input. Restore input is applied atomically per table, so a
 * half-removed or half-installed rule set never exists, and quoting is iptables' own.
 *
 * What the node owns on the host: chains named KUBE-* (kubelet, kube-proxy), CNI-* (CNI
 * portmap) and WEFT-NODE-* (our guard), plus every rule elsewhere that jumps to one of them.
 * Nothing else is touched, so other users' rules on this shared machine survive `down`.
 */
import { BRIDGE, POD_CIDR } from './config.js';

export const GUARD_CHAIN = 'WEFT-NODE-GUARD';
export const EGRESS_CHAIN = 'WEFT-NODE-EGRESS';
/** The kubelet's pod cgroup (cgroupfs driver), as seen in the cgroup v2 hierarchy. */
export const POD_CGROUP = 'kubepods';
export const OWNED_CHAIN_PREFIXES = ['KUBE-', 'CNI-', 'WEFT-NODE-'];

export type Family = 4 | 6;

export function isOwnedChain(name: string): boolean {
  return OWNED_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}

interface TableDump {
  name: string;
  chains: string[];
  /** Each rule as saved, without the leading `-A `. */
  rules: { chain: string; spec: string }[];
}

/** Parses `iptables-save` output into tables, chains and rules; ignores comments and counters. */
export function parseSave(text: string): TableDump[] {
  const tables: TableDump[] = [];
  let cur: TableDump | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      cur = { name: line.slice(1), chains: [], rules: [] };
      tables.push(cur);
    } else if (line === 'COMMIT') {
      cur = undefined;
    } else if (cur !== undefined && line.startsWith(':')) {
      const name = line.slice(1).split(/\s+/)[0];
      if (name !== undefined && name !== '') cur.chains.push(name);
    } else if (cur !== undefined && line.startsWith('-A ')) {
      const rest = line.slice(3);
      const sp = rest.indexOf(' ');
      const chain = sp === -1 ? rest : rest.slice(0, sp);
      cur.rules.push({ chain, spec: sp === -1 ? '' : rest.slice(sp + 1) });
    }
  }
  return tables;
}

/** The chain a rule jumps or goes to (`-j X` / `-g X`), if any. */
export function ruleTarget(spec: string): string | undefined {
  // Quoted text (comments) may contain anything, including "-j X"; blank it out first.
  const unquoted = spec.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const m = /(?:^|\s)-(?:j|g|-jump|-goto)\s+(\S+)/.exec(unquoted);
  return m?.[1];
}

/**
 * Restore input removing every owned chain and every rule that references one, or '' when
 * there is nothing to remove. Jumps are deleted first, then all owned chains are flushed,
 * then deleted (they may jump to each other, so all flushes precede any delete).
 */
export function planCleanup(saveText: string): string {
  const out: string[] = [];
  for (const t of parseSave(saveText)) {
    const owned = t.chains.filter(isOwnedChain);
    const jumps = t.rules.filter((r) => !isOwnedChain(r.chain) && isOwnedChain(ruleTarget(r.spec) ?? ''));
    if (owned.length === 0 && jumps.length === 0) continue;
    out.push(`*${t.name}`);
    for (const r of jumps) out.push(`-D ${r.chain} ${r.spec}`);
    for (const c of owned) out.push(`-F ${c}`);
    for (const c of owned) out.push(`-X ${c}`);
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Names of owned chains still present, per table (`table/chain`), for the leftover check. */
export function ownedLeftovers(saveText: string): string[] {
  const left: string[] = [];
  for (const t of parseSave(saveText)) {
    for (const c of t.chains) if (isOwnedChain(c)) left.push(`${t.name}/${c}`);
    for (const r of t.rules) {
      const target = ruleTarget(r.spec) ?? '';
      if (!isOwnedChain(r.chain) && isOwnedChain(target)) left.push(`${t.name}/${r.chain} -> ${target}`);
    }
  }
  return left;
}

/**
 * The FORWARD guard, in the mangle table so no kube-proxy or CNI rule in filter/FORWARD (which
 * they prepend to) can accept a packet before it: pod traffic may be forwarded only from the
 * pod bridge back onto the pod bridge (pod→Service→pod). Anything from pods to any other
 * interface (eth0 above all) and anything from elsewhere into the bridge is dropped. Pod→node
 * traffic (DNS, kube-apiserver, kubelet) is local delivery (INPUT) and unaffected.
 *
 * Installed before containerd starts, so no pod ever runs without it; removed last by `down`.
 * Idempotent: an existing guard chain is replaced, and its jump is never duplicated.
 */
export function planGuard(family: Family, saveText: string, egress = true): string {
  const mangle = parseSave(saveText).find((t) => t.name === 'mangle');
  const has = (chain: string): boolean => mangle?.chains.includes(chain) ?? false;
  const jumps = (from: string, to: string): boolean =>
    mangle?.rules.some((r) => r.chain === from && ruleTarget(r.spec) === to) ?? false;
  const lines = ['*mangle', has(GUARD_CHAIN) ? `-F ${GUARD_CHAIN}` : `:${GUARD_CHAIN} - [0:0]`];
  if (!jumps('FORWARD', GUARD_CHAIN)) lines.push(`-I FORWARD 1 -j ${GUARD_CHAIN}`);
  lines.push(
    `-A ${GUARD_CHAIN} -i ${BRIDGE} -o ${BRIDGE} -j RETURN`,
    `-A ${GUARD_CHAIN} -i ${BRIDGE} -j DROP`,
    `-A ${GUARD_CHAIN} -o ${BRIDGE} -j DROP`,
  );
  if (family === 4)
    lines.push(`-A ${GUARD_CHAIN} -s ${POD_CIDR} -j DROP`, `-A ${GUARD_CHAIN} -d ${POD_CIDR} -j DROP`);
  if (egress) {
    // hostNetwork pods send from the host's own stack (OUTPUT, not FORWARD): their sockets
    // belong to the pods' cgroup, so loopback and the pod bridge are all they may use. Checked
    // in POSTROUTING, after kube-proxy's DNAT has chosen the real destination (a ClusterIP
    // first routes towards eth0); forwarded packets have no socket and never match.
    lines.push(has(EGRESS_CHAIN) ? `-F ${EGRESS_CHAIN}` : `:${EGRESS_CHAIN} - [0:0]`);
    if (!jumps('POSTROUTING', EGRESS_CHAIN)) lines.push(`-I POSTROUTING 1 -j ${EGRESS_CHAIN}`);
    lines.push(
      `-A ${EGRESS_CHAIN} -o lo -j RETURN`,
      `-A ${EGRESS_CHAIN} -o ${BRIDGE} -j RETURN`,
      `-A ${EGRESS_CHAIN} -m cgroup --path ${POD_CGROUP} -j DROP`,
    );
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** True when the guard chains exist and are jumped to first (FORWARD, and POSTROUTING if `egress`). */
export function guardInstalled(saveText: string, egress = true): boolean {
  const mangle = parseSave(saveText).find((t) => t.name === 'mangle');
  if (mangle === undefined) return false;
  const firstIs = (chain: string, target: string): boolean => {
    const first = mangle.rules.find((r) => r.chain === chain);
    return mangle.chains.includes(target) && first !== undefined && ruleTarget(first.spec) === target;
  };
  return firstIs('FORWARD', GUARD_CHAIN) && (!egress || firstIs('POSTROUTING', EGRESS_CHAIN));
}
