/**
 * Istio's outboundTrafficPolicy REGISTRY_ONLY on the sidecar's outbound capture: the registry's
 * TCP destinations (the config's `outboundTrafficPolicy.destinations`, computed by weftd from the
 * hosts the proxy's Sidecar lets it see) compiled to one address set per port. A connection whose
 * original destination is not in it is closed (Istio's BlackHoleCluster); an HTTP request for an
 * unknown host gets 404 NR from the router. TLS to a DNS ServiceEntry without addresses is not
 * decided here: the port's catch-all routes it to the entry's cluster (outbound-tcp.ts).
 */
import net from 'node:net';
import type { OutboundTrafficPolicy } from '../../pkg/proxyconfig/types.js';

export interface RegistryOnly {
  /** May TCP to this original destination pass through? */
  allows(address: string, port: number): boolean;
}

/** `*.example.com` covers `a.example.com` and deeper names, not `example.com`; names compare lowercased. */
export function hostCovers(pattern: string, name: string): boolean {
  if (pattern.startsWith('*.')) return name.length > pattern.length - 1 && name.endsWith(pattern.slice(1));
  return pattern === name;
}

/**
 * One BlockList per family and port (a BlockList answers IP and CIDR membership; kept apart by
 * family because a BlockList matches an IPv4 address against IPv6 rules such as `::/0`).
 */
export function compileRegistryOnly(policy: OutboundTrafficPolicy | undefined): RegistryOnly | null {
  if (policy?.mode !== 'REGISTRY_ONLY') return null;
  const byPort = new Map<string, net.BlockList>();
  for (const d of policy.destinations) {
    const slash = d.address.indexOf('/');
    const ip = slash < 0 ? d.address : d.address.slice(0, slash);
    const family = net.isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    for (const port of d.ports) {
      let list = byPort.get(`${family}:${port}`);
      if (!list) byPort.set(`${family}:${port}`, (list = new net.BlockList()));
      if (slash < 0) list.addAddress(ip, family);
      else list.addSubnet(ip, Number(d.address.slice(slash + 1)), family);
    }
  }
  return {
    allows(address, port) {
      const a = unmapped(address);
      const kind = net.isIP(a);
      if (kind === 0) return false;
      const family = kind === 6 ? 'ipv6' : 'ipv4';
      return byPort.get(`${family}:${port}`)?.check(a, family) ?? false;
    },
  };
}

/** An IPv4-mapped IPv6 address (a dual-stack socket's view) is its IPv4 address. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * Membership in a list of IPs and CIDRs (validated already: pkg/proxyconfig/validate.ts
 * isIpOrCidr), one BlockList per family as above. Used by L4 routes' `destinationSubnets`.
 */
export function addressSet(addresses: readonly string[]): (address: string) => boolean {
  const lists = { ipv4: new net.BlockList(), ipv6: new net.BlockList() };
  for (const entry of addresses) {
    const slash = entry.indexOf('/');
    const ip = slash < 0 ? entry : entry.slice(0, slash);
    const family = net.isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (slash < 0) lists[family].addAddress(ip, family);
    else lists[family].addSubnet(ip, Number(entry.slice(slash + 1)), family);
  }
  return (address) => {
    const a = unmapped(address);
    const kind = net.isIP(a);
    if (kind === 0) return false;
    const family = kind === 6 ? 'ipv6' : 'ipv4';
    return lists[family].check(a, family);
  };
}
