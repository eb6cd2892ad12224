/**
 * L4 routes: VirtualService `tcp:` and `tls:` rules as the proxy runs them (docs/proxy-config.md
 * "TCP and TLS routes"). A TCP listener (a gateway's TCP or TLS PASSTHROUGH server) and a
 * sidecar's outbound TCP service hold an ordered list of them: the first whose match takes the
 * connection picks one of its weighted clusters, and the bytes are piped there unchanged (TLS is
 * never terminated: `sniHosts` is read from the ClientHello). Source scoping (`sourceLabels`,
 * `sourceNamespace`, `gateways`) is resolved by the translator: a match block that cannot apply to
 * this proxy is not in its config.
 */
import type { RouteSource } from './types.js';

export interface L4Route {
  name?: string;
  source?: RouteSource;
  /** ORed; fields of one block are ANDed. Absent or empty: every connection. */
  match?: L4Match[];
  /** Weighted clusters (a single one gets everything whatever its weight). */
  destinations: L4Destination[];
}

export interface L4Match {
  /** The port the connection was addressed to (original destination, or the listener's port). */
  port?: number;
  /** IPs or CIDRs the connection's destination address must be in (any of them). */
  destinationSubnets?: string[];
  /** TLS routes only: the ClientHello's SNI, exact or `*.suffix`, lowercase (any of them). */
  sniHosts?: string[];
}

export interface L4Destination {
  cluster: string;
  weight: number;
}

/** What the validator needs to report errors (pkg/proxyconfig/validate.ts Checker). */
export interface L4Checker {
  fail(path: string, message: string): void;
  array(v: unknown, path: string): unknown[];
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/** Checks `routes` (a list of L4Route); `tls`: every match block must name sniHosts. */
export function checkL4Routes(
  c: L4Checker,
  routes: unknown,
  path: string,
  tls: boolean,
  isIpOrCidr: (a: string) => boolean,
): void {
  c.array(routes, path).forEach((r, i) => {
    const at = `${path}[${i}]`;
    if (!isObj(r)) return c.fail(at, 'must be an object like {destinations: [{cluster, weight}]}');
    const dests = c.array(r.destinations, `${at}.destinations`);
    if (dests.length === 0) c.fail(`${at}.destinations`, 'must list at least one cluster');
    dests.forEach((d, j) => {
      if (!isObj(d) || typeof d.cluster !== 'string' || d.cluster === '')
        return c.fail(`${at}.destinations[${j}]`, 'must be {cluster: <name>, weight: <n>}');
      if (!Number.isInteger(d.weight) || (d.weight as number) < 0)
        c.fail(`${at}.destinations[${j}].weight`, 'must be a non-negative integer');
    });
    const matches = r.match === undefined ? [] : c.array(r.match, `${at}.match`);
    if (tls && matches.length === 0) c.fail(`${at}.match`, 'a TLS route must match sniHosts');
    matches.forEach((m, j) => {
      const mp = `${at}.match[${j}]`;
      if (!isObj(m)) return c.fail(mp, 'must be an object');
      if (m.port !== undefined && !isPort(m.port)) c.fail(`${mp}.port`, 'must be a port number 1-65535');
      if (m.destinationSubnets !== undefined)
        c.array(m.destinationSubnets, `${mp}.destinationSubnets`).forEach((s, k) => {
          if (typeof s !== 'string' || !isIpOrCidr(s))
            c.fail(`${mp}.destinationSubnets[${k}]`, 'must be an IP address or a CIDR');
        });
      if (m.sniHosts === undefined) {
        if (tls) c.fail(`${mp}.sniHosts`, 'a TLS route must match sniHosts');
        return;
      }
      const hosts = c.array(m.sniHosts, `${mp}.sniHosts`);
      if (tls && hosts.length === 0) c.fail(`${mp}.sniHosts`, 'must list at least one host');
      hosts.forEach((h, k) => {
        if (typeof h !== 'string' || h === '') c.fail(`${mp}.sniHosts[${k}]`, 'must be a non-empty string');
      });
    });
  });
}
