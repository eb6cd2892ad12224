/**
 * The sidecar's outbound TCP and TLS services (ProxyConfig.outboundTcp): a captured connection
 * whose original destination is one of a service's addresses on one of its declared non-HTTP
 * ports is routed by that service's L4 routes (proxy/tcp-route.ts), without sniffing. Istio
 * builds the same thing as one `<vip>:<port>` listener per service port with a tcp_proxy (or SNI
 * filter chains for `tls:` routes) instead of the PassthroughCluster.
 *
 * A port's catch-all (OutboundTcpService.catchAll: Istio's `0.0.0.0:<port>` listener of DNS
 * ServiceEntries without addresses) is kept apart: capture.ts consults it after sniffing, for
 * TLS to an address that is no service's, and only its SNI routes; what they do not take goes
 * on to the pass-through / REGISTRY_ONLY path.
 */
import type { OutboundTcpService } from '../../pkg/proxyconfig/types.js';
import type { TcpGroup } from '../telemetry/metrics.js';
import type { ClusterRuntime } from '../upstream/cluster.js';
import { addressSet } from './registry-only.js';
import { bindL4, compileL4, type CompiledL4 } from '../tcp-route.js';

export interface OutboundTcpEntry {
  name: string;
  l4: CompiledL4;
}

export interface OutboundTcpTable {
  /**
   * The service port this original destination belongs to; null: not one (sniffed as before).
   * Catch-alls are never returned: a service's own address always wins over them.
   */
  find(address: string, port: number): OutboundTcpEntry | null;
  /** The port's catch-all (TLS routes by SNI to services without addresses), if it has one. */
  catchAll(port: number): OutboundTcpEntry | null;
  /** After the cluster table is adopted: every destination gets its runtime. */
  bind(get: (name: string) => ClusterRuntime | null): void;
}

interface Compiled extends OutboundTcpEntry {
  contains: (address: string) => boolean;
}

export function compileOutboundTcp(
  services: OutboundTcpService[] | undefined,
  metricsFor: (cluster: string) => TcpGroup,
): OutboundTcpTable | null {
  if (services === undefined || services.length === 0) return null;
  const byPort = new Map<number, Compiled[]>();
  const catchAlls = new Map<number, OutboundTcpEntry>();
  for (const s of services) {
    const l4 = compileL4(s, metricsFor);
    if (l4 === null) continue; // validated: never (a service has routes)
    if (s.catchAll) {
      catchAlls.set(s.port, { name: s.name, l4 });
      continue;
    }
    const list = byPort.get(s.port) ?? [];
    list.push({ name: s.name, l4, contains: addressSet(s.addresses) });
    byPort.set(s.port, list);
  }
  return {
    find(address, port) {
      return byPort.get(port)?.find((e) => e.contains(address)) ?? null;
    },
    catchAll: (port) => catchAlls.get(port) ?? null,
    bind(get) {
      for (const list of byPort.values()) for (const e of list) bindL4(e.l4, get);
      for (const e of catchAlls.values()) bindL4(e.l4, get);
    },
  };
}
