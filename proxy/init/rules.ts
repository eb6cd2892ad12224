/**
 * flags → an `iptables-restore` nat ruleset shaped like istio-iptables' REDIRECT mode, so a
 * reader who knows Istio's chains finds the same ones:
 *
 *   PREROUTING → ISTIO_INBOUND → ISTIO_IN_REDIRECT (REDIRECT to the inbound port, 15006)
 *   OUTPUT     → ISTIO_OUTPUT  → ISTIO_REDIRECT    (REDIRECT to the outbound port, 15001)
 *
 * ISTIO_OUTPUT, in order: excluded outbound ports; traffic from 127.0.0.6 (the proxy's inbound
 * pass-through to the app, which must not loop back into 15006); the proxy's own traffic to a
 * pod-local address over lo (app calling itself through its Service: goes through inbound
 * capture); everything else on lo; the proxy's own traffic (uid, then gid); 127.0.0.1; explicitly
 * included ports; excluded CIDRs; included CIDRs (or everything with "*").
 *
 * Only custom chains are declared (`:CHAIN - [0:0]`), so `iptables-restore --noflush` flushes
 * and refills them but never touches other rules of PREROUTING/OUTPUT.
 */
import type { InitConfig } from './flags.js';

export const CHAINS = ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'] as const;
/** The source address the proxy uses for inbound pass-through connections to the app. */
export const INBOUND_PASSTHROUGH_SOURCE = '127.0.0.6';
export const JUMP_INBOUND = '-A PREROUTING -p tcp -j ISTIO_INBOUND';
export const JUMP_OUTPUT = '-A OUTPUT -p tcp -j ISTIO_OUTPUT';

function inboundRules(c: InitConfig): string[] {
  if (c.includeInboundPorts !== '*' && c.includeInboundPorts.length === 0) return [];
  const out = [JUMP_INBOUND];
  if (c.includeInboundPorts === '*') {
    for (const p of c.excludeInboundPorts) out.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
    out.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
  } else {
    for (const p of c.includeInboundPorts)
      out.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_IN_REDIRECT`);
  }
  return out;
}

function outboundCaptures(c: InitConfig): boolean {
  return (
    c.includeOutboundCidrs === '*' || c.includeOutboundCidrs.length > 0 || c.includeOutboundPorts.length > 0
  );
}

function ownerRules(c: InitConfig, match: '--uid-owner' | '--gid-owner', idList: string[]): string[] {
  const out: string[] = [];
  for (const id of idList) {
    out.push(`-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner ${match} ${id} -j ISTIO_IN_REDIRECT`);
    out.push(`-A ISTIO_OUTPUT -o lo -m owner ! ${match} ${id} -j RETURN`);
    out.push(`-A ISTIO_OUTPUT -m owner ${match} ${id} -j RETURN`);
  }
  return out;
}

function outboundRules(c: InitConfig): string[] {
  if (!outboundCaptures(c)) return [];
  const out = [JUMP_OUTPUT];
  for (const p of c.excludeOutboundPorts) out.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j RETURN`);
  out.push(`-A ISTIO_OUTPUT -s ${INBOUND_PASSTHROUGH_SOURCE}/32 -o lo -j RETURN`);
  out.push(...ownerRules(c, '--uid-owner', c.proxyUid));
  out.push(...ownerRules(c, '--gid-owner', c.proxyGid));
  out.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const p of c.includeOutboundPorts) out.push(`-A ISTIO_OUTPUT -p tcp --dport ${p} -j ISTIO_REDIRECT`);
  for (const cidr of c.excludeOutboundCidrs) out.push(`-A ISTIO_OUTPUT -d ${cidr} -j RETURN`);
  if (c.includeOutboundCidrs === '*') out.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else for (const cidr of c.includeOutboundCidrs) out.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
  return out;
}

/** The full ruleset, one `iptables-restore` input for the nat table. */
export function natRules(c: InitConfig): string {
  const lines = [
    '*nat',
    ...CHAINS.map((ch) => `:${ch} - [0:0]`),
    `-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${c.inboundPort}`,
    `-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${c.proxyPort}`,
    ...inboundRules(c),
    ...outboundRules(c),
    'COMMIT',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Re-running init in the same network namespace (an init container restarted) must not add a
 * second jump from PREROUTING/OUTPUT: drop the jumps that `iptables-save` shows already exist.
 * The custom chains themselves are flushed and refilled by their declarations.
 */
export function withoutExistingJumps(rules: string, saved: string): string {
  const existing = new Set(saved.split('\n').map((l) => l.trim()));
  return rules
    .split('\n')
    .filter((l) => !((l === JUMP_INBOUND || l === JUMP_OUTPUT) && existing.has(l)))
    .join('\n');
}
