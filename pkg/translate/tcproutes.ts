/**
 * VirtualService `tcp:` and `tls:` rules → L4 routes (pkg/proxyconfig/l4.ts), for sidecars and
 * gateways, with Istio's semantics (networking/v1alpha3 TCPRoute, TLSRoute; pilot's
 * buildSidecarOutboundTCPTLSFilterChainOpts and gateway passthrough):
 *
 * - A match block is kept for this proxy when its `port` is the service (or server) port, its
 *   `gateways` name this proxy's gateway (`mesh` for sidecars), or, without `gateways`, its
 *   `sourceLabels`/`sourceNamespace` fit the proxy (sourcematch.ts); `destinationSubnets` and
 *   `sniHosts` are left for the proxy to match per connection. A rule whose every block went
 *   is not in this proxy's config; a rule without blocks (TCP only) matches every connection.
 * - `route[]`: weighted destinations, as for HTTP (a lone one gets everything, weights omitted
 *   among several are 0); `destination.port` absent: the service's only port, else this port.
 * - The first rule that matches wins (the proxy walks them in order).
 * - Sidecars: after the VirtualService's rules, the service itself (Istio's default TCP proxy
 *   to the service); gateways have no such default: a connection no rule takes is closed.
 * - Gateway PASSTHROUGH servers: a TLS rule's `sniHosts` are narrowed to the server's hosts.
 */
import type {
  Destination,
  L4MatchAttributes,
  Server,
  TCPRoute,
  TLSMatchAttributes,
  TLSRoute,
  VirtualService,
} from '../api/index.js';
import type { L4Match, L4Route } from '../proxyconfig/l4.js';
import type { OutboundTcpService, TcpListener } from '../proxyconfig/types.js';
import { isIpOrCidr } from '../proxyconfig/validate.js';
import { byCreation } from './precedence.js';
import { boundGateways, gatewayRef, intersectHosts, parseServerHost } from './gateway.js';
import { sourceMatches, type ProxyIdentity } from './sourcematch.js';

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/** Service-port protocols a sidecar routes at L4 (never sniffed): Istio's non-HTTP TCP protocols. */
export const L4_TCP_PROTOCOLS = new Set(['TCP', 'MONGO', 'MYSQL', 'REDIS']);
/** Service-port protocols whose connections are TLS a sidecar may route by SNI (`tls:` rules). */
export const L4_TLS_PROTOCOLS = new Set(['TLS', 'HTTPS']);
/** Gateway server protocols served as plain TCP (routed by `tcp:` rules). */
export const GATEWAY_TCP_PROTOCOLS = new Set(['TCP', 'MONGO', 'MYSQL', 'REDIS']);

/** Who the rules are scoped for: the sidecars (`mesh`) or one gateway `ns/name`. */
export type L4Scope = { kind: 'mesh' } | { kind: 'gateway'; key: string };

/** What the translator lends: clusters for destinations, and somewhere to warn. */
export interface L4Context {
  proxy: ProxyIdentity;
  /** The cluster of a destination (index.ts destCluster: DestinationRule subsets, ports). */
  clusterOf(d: Destination, vsNamespace: string, port: number): string;
  warn(message: string): void;
}

type AnyL4Match = L4MatchAttributes | TLSMatchAttributes;

/** Does this match block apply to the proxy in `scope`, on `port`? */
export function l4MatchApplies(
  m: AnyL4Match,
  vsNamespace: string,
  scope: L4Scope,
  proxy: ProxyIdentity,
  port: number,
): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  const gws = m.gateways ?? [];
  if (gws.length > 0)
    return scope.kind === 'mesh'
      ? gws.includes('mesh')
      : gws.some((g) => g !== 'mesh' && gatewayRef(g, vsNamespace) === scope.key);
  return sourceMatches(m, proxy);
}

/** The proxy-side part of a kept block: subsets (valid ones), SNI names (narrowed by `sni`). */
function convertMatch(
  m: AnyL4Match,
  narrowSni: ((h: string) => string[]) | null,
  where: string,
  warn: (s: string) => void,
): L4Match | null {
  const out: L4Match = {};
  const subnets = (m.destinationSubnets ?? []).filter((s) => {
    if (isIpOrCidr(s)) return true;
    warn(`${where}: destinationSubnets entry ${s} is not an IP or CIDR; ignored`);
    return false;
  });
  if (subnets.length > 0) out.destinationSubnets = subnets;
  if ('sniHosts' in m && m.sniHosts !== undefined) {
    const names = m.sniHosts.map((h) => h.toLowerCase());
    const hosts = [...new Set(narrowSni ? names.flatMap(narrowSni) : names)].sort();
    if (hosts.length === 0) return null; // none of its names is served here
    out.sniHosts = hosts;
  }
  return out;
}

/**
 * One `tcp:` or `tls:` rule as this proxy runs it on `port`; null when it does not apply here
 * (every block scoped elsewhere) or routes nowhere.
 */
export function l4Route(
  ctx: L4Context,
  vs: VirtualService,
  rule: TCPRoute | TLSRoute,
  index: number,
  kind: 'tcp' | 'tls',
  scope: L4Scope,
  port: number,
  narrowSni: ((h: string) => string[]) | null = null,
): L4Route | null {
  const ns = nsOf(vs);
  const where = `VirtualService ${ns}/${vs.metadata.name ?? ''} ${kind}[${index}]`;
  const blocks = (rule.match ?? []) as (AnyL4Match | null)[];
  let match: L4Match[] | undefined;
  if (blocks.length > 0) {
    match = blocks
      .map((m) => m ?? {})
      .filter((m) => l4MatchApplies(m, ns, scope, ctx.proxy, port))
      .map((m) => convertMatch(m, narrowSni, where, (s) => ctx.warn(s)))
      .filter((m): m is L4Match => m !== null);
    if (match.length === 0) return null;
  } else if (kind === 'tls') return null; // validation requires sniHosts; nothing to match on
  const dests = rule.route ?? [];
  if (dests.length === 0) {
    ctx.warn(`${where}: no route; rule skipped`);
    return null;
  }
  return {
    name: `${ns}/${vs.metadata.name ?? ''}.${kind}[${index}]`,
    source: { kind: 'VirtualService', namespace: ns, name: vs.metadata.name ?? '', rule: index },
    ...(match !== undefined ? { match } : {}),
    destinations: dests.map((d) => ({
      cluster: ctx.clusterOf(d.destination, ns, port),
      weight: d.weight ?? (dests.length === 1 ? 100 : 0),
    })),
  };
}

/** Every rule of `kind` of the VirtualServices (oldest first), in order, for this proxy and port. */
export function l4Routes(
  ctx: L4Context,
  vss: readonly VirtualService[],
  kind: 'tcp' | 'tls',
  scope: L4Scope,
  port: number,
  narrowSni: ((h: string) => string[]) | null = null,
): L4Route[] {
  const out: L4Route[] = [];
  for (const vs of byCreation(vss)) {
    const rules: (TCPRoute | TLSRoute)[] = kind === 'tcp' ? (vs.spec.tcp ?? []) : (vs.spec.tls ?? []);
    rules.forEach((rule, i) => {
      const r = l4Route(ctx, vs, rule, i, kind, scope, port, narrowSni);
      if (r !== null) out.push(r);
    });
  }
  return out;
}

/** A service port for the sidecar's outbound L4 table. */
export interface L4ServicePort {
  host: string;
  addresses: string[];
  port: number;
  protocol: string;
  /** The service's own cluster on this port (the default route). */
  cluster: string;
}

/**
 * The sidecar's outbound entry for a declared TCP or TLS service port: the VirtualService rules
 * for its host (the oldest VirtualService with rules for this port wins, as for HTTP), then the
 * service itself. Null for a service without IP addresses (headless, DNS ServiceEntries): those
 * connections are sniffed and passed through as before.
 */
export function outboundTcpService(
  ctx: L4Context,
  sp: L4ServicePort,
  vssForHost: readonly VirtualService[],
): OutboundTcpService | null {
  const addresses = sp.addresses.filter(isIpOrCidr);
  if (addresses.length === 0) return null;
  const mesh: L4Scope = { kind: 'mesh' };
  const meshVss = vssForHost.filter((vs) => boundGateways(vs).includes('mesh'));
  const owner = byCreation(meshVss).find(
    (vs) =>
      l4Routes(ctx, [vs], 'tcp', mesh, sp.port).length + l4Routes(ctx, [vs], 'tls', mesh, sp.port).length > 0,
  );
  const tls = owner && L4_TLS_PROTOCOLS.has(sp.protocol) ? l4Routes(ctx, [owner], 'tls', mesh, sp.port) : [];
  const tcp = owner ? l4Routes(ctx, [owner], 'tcp', mesh, sp.port) : [];
  tcp.push({ name: 'default', destinations: [{ cluster: sp.cluster, weight: 100 }] });
  return {
    name: `${sp.host}:${sp.port}`,
    addresses,
    port: sp.port,
    tcpRoutes: tcp,
    ...(tls.length > 0 ? { tlsRoutes: tls } : {}),
  };
}

/** A service without addresses on a TLS or HTTPS port: its SNI is routed on the port's catch-all. */
export interface L4SniService {
  /** Exact, or `*.suffix` (an entry with endpoints): as Envoy's filter chain `server_names`. */
  host: string;
  /** The service's own cluster on the port (STRICT_DNS: its resolved addresses or endpoints). */
  cluster: string;
  /** The VirtualServices naming the host. */
  vss: readonly VirtualService[];
}

/** `*.suffix` patterns rank by length (longer: more specific); exact names rank above them all. */
function sniRank(route: L4Route): number {
  const names = (route.match ?? []).flatMap((m) => m.sniHosts ?? []);
  return Math.max(...names.map((h) => (h.startsWith('*') ? h.length : Number.MAX_SAFE_INTEGER)), 0);
}

/**
 * The catch-all of `port` (Istio's `0.0.0.0:<port>` listener with one SNI filter chain per
 * service without a VIP): a host's mesh VirtualService `tls:` rules when one has rules for the
 * port (Istio adds the default chain only when none matched), else SNI = the host → the host's
 * cluster. SNI names are narrowed to the host a rule belongs to, so nothing but the registry's
 * own names is taken. Envoy picks the most specific `server_names`; a first-match list gets that
 * by ordering exact names first, then longer wildcards (stable: VirtualService rules before a
 * default of the same rank). Null when no route is left.
 */
export function sniCatchAll(
  ctx: L4Context,
  port: number,
  services: readonly L4SniService[],
): OutboundTcpService | null {
  const mesh: L4Scope = { kind: 'mesh' };
  const routes: L4Route[] = [];
  for (const s of [...services].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))) {
    const narrow = (sni: string): string[] => {
      const shared = intersectHosts(s.host, sni);
      return shared === null ? [] : [shared];
    };
    const meshVss = s.vss.filter((vs) => boundGateways(vs).includes('mesh'));
    const owner = byCreation(meshVss).find((vs) => l4Routes(ctx, [vs], 'tls', mesh, port, narrow).length > 0);
    if (owner) routes.push(...l4Routes(ctx, [owner], 'tls', mesh, port, narrow));
    else
      routes.push({
        name: `${s.host}:${port}`,
        match: [{ sniHosts: [s.host] }],
        destinations: [{ cluster: s.cluster, weight: 100 }],
      });
  }
  if (routes.length === 0) return null;
  const ordered = routes
    .map((r, i) => ({ r, i, rank: sniRank(r) }))
    .sort((a, b) => b.rank - a.rank || a.i - b.i)
    .map((x) => x.r);
  return {
    name: `0.0.0.0:${port}`,
    addresses: ['0.0.0.0/0', '::/0'],
    port,
    tlsRoutes: ordered,
    catchAll: true,
  };
}

/** How a gateway server is served at L4; null: not an L4 server (HTTP, HTTPS terminated). */
export function gatewayL4Kind(server: Server): 'tcp' | 'passthrough' | { refused: string } | null {
  const protocol = (server.port?.protocol ?? '').toUpperCase();
  const mode = server.tls?.mode;
  if (GATEWAY_TCP_PROTOCOLS.has(protocol)) return 'tcp';
  const m = mode ?? 'PASSTHROUGH'; // Istio's enum default
  // HTTPS needs a tls block (index.ts refuses one without); PASSTHROUGH on it is Istio's SNI example
  const httpsPassthrough =
    protocol === 'HTTPS' && server.tls !== undefined && (m === 'PASSTHROUGH' || m === 'AUTO_PASSTHROUGH');
  if (protocol === 'TLS' || httpsPassthrough) {
    if (m === 'PASSTHROUGH') return 'passthrough';
    if (m === 'AUTO_PASSTHROUGH')
      return {
        refused:
          'tls.mode AUTO_PASSTHROUGH (routing by SNI-encoded cluster names, for multi-network east-west gateways) is not served',
      };
    return {
      refused: `${protocol} with tls.mode ${m} (terminate, then TCP) is not served yet; use PASSTHROUGH`,
    };
  }
  return null;
}

/** The L4 routes one gateway builds per server port (servers sharing a port merge, in order). */
export class GatewayL4Ports {
  readonly byPort = new Map<number, { tcp: L4Route[]; tls: L4Route[] }>();

  constructor(private readonly ctx: L4Context) {}

  /** Adds a TCP or PASSTHROUGH server of gateway `key` with the VirtualServices bound to it. */
  add(
    server: Server,
    kind: 'tcp' | 'passthrough',
    key: string,
    gatewayNs: string,
    bound: VirtualService[],
  ): void {
    const port = server.port.number;
    const entry = this.byPort.get(port) ?? { tcp: [], tls: [] };
    this.byPort.set(port, entry);
    const hosts = (server.hosts ?? []).map((h) => parseServerHost(h, gatewayNs));
    // a VirtualService uses the server when a host of its own is one the server offers its namespace
    const offered = (vs: VirtualService): string[] =>
      hosts.filter((h) => h.namespace === '*' || h.namespace === nsOf(vs)).map((h) => h.host);
    const scope: L4Scope = { kind: 'gateway', key };
    const before = entry.tcp.length + entry.tls.length;
    for (const vs of byCreation(bound)) {
      const serverHosts = offered(vs);
      const vsHosts = (vs.spec.hosts ?? []).map((h) => h.toLowerCase());
      const binds = serverHosts.some((s) => vsHosts.some((h) => intersectHosts(s, h) !== null));
      if (!binds) continue;
      if (kind === 'tcp') entry.tcp.push(...l4Routes(this.ctx, [vs], 'tcp', scope, port));
      else {
        const narrow = (sni: string): string[] =>
          serverHosts.map((s) => intersectHosts(s, sni)).filter((x): x is string => x !== null);
        entry.tls.push(...l4Routes(this.ctx, [vs], 'tls', scope, port, narrow));
      }
    }
    if (entry.tcp.length + entry.tls.length === before)
      this.ctx.warn(
        `Gateway ${key} port ${port}: no VirtualService ${kind === 'tcp' ? 'tcp' : 'tls'} rule is bound to this ${kind === 'tcp' ? 'TCP' : 'PASSTHROUGH'} server; its connections are closed`,
      );
  }

  /** The listeners, at their bind ports (`bindsOf`: Service target ports, as for HTTP). */
  listeners(bindsOf: (port: number) => number[]): TcpListener[] {
    const byBind = new Map<number, { tcp: L4Route[]; tls: L4Route[] }>();
    for (const [port, e] of this.byPort)
      for (const bind of bindsOf(port)) {
        const b = byBind.get(bind) ?? { tcp: [], tls: [] };
        b.tcp.push(...e.tcp);
        b.tls.push(...e.tls);
        byBind.set(bind, b);
      }
    return [...byBind.entries()]
      .sort(([a], [b]) => a - b)
      .map(([port, e]) => ({
        name: `gateway-${port}`,
        protocol: 'TCP',
        address: '0.0.0.0',
        port,
        tcpRoutes: e.tcp,
        ...(e.tls.length > 0 ? { tlsRoutes: e.tls } : {}),
      }));
  }
}
