/**
 * Arguments of the `proxy init` container, in istio-iptables' short-flag form (the flags a
 * `kubectl describe pod` reader already knows):
 *
 *   -p outbound capture port   -z inbound capture port   -u proxy uid (its traffic is not captured)
 *   -m interception mode       -i / -x outbound CIDRs to include / exclude
 *   -b inbound ports to capture ("*" = all)   -d inbound ports never captured   -o outbound ports never captured
 */
import type { PodOverrides } from './annotations.js';
import { PORT_HEALTH, PORT_INBOUND, PORT_OUTBOUND, PORT_PROMETHEUS, PROXY_UID } from './ports.js';

/** The proxy's own inbound ports are always excluded, or kubelet probes and scrapes would loop into the proxy. */
const ALWAYS_EXCLUDED_INBOUND = [PORT_PROMETHEUS, PORT_HEALTH].map(String);

function joinUnique(base: string[], extra: string | undefined): string {
  const items = [...base, ...(extra ? extra.split(',') : [])];
  return [...new Set(items)].join(',');
}

export function proxyInitArgs(o: PodOverrides): string[] {
  const args = [
    'proxy',
    'init',
    '-p',
    String(PORT_OUTBOUND),
    '-z',
    String(PORT_INBOUND),
    '-u',
    String(PROXY_UID),
    '-m',
    'REDIRECT',
    '-i',
    o.includeOutboundIPRanges ?? '*',
    '-x',
    o.excludeOutboundIPRanges ?? '',
    '-b',
    o.includeInboundPorts ?? '*',
    '-d',
    joinUnique(ALWAYS_EXCLUDED_INBOUND, o.excludeInboundPorts),
  ];
  if (o.excludeOutboundPorts) args.push('-o', o.excludeOutboundPorts);
  return args;
}
