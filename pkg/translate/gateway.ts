/**
 * Istio Gateway semantics as pure helpers (reference: anchors-and-semantics.md, gateway.proto):
 * which Gateways a gateway pod runs, which VirtualServices bind to a Gateway, and which hostnames
 * a VirtualService gets on a server (the intersection of its hosts with the server's, wildcards
 * included). The translator (index.ts) builds listeners and virtual hosts from them.
 */
import type { Gateway, HTTPMatchRequest, HTTPRoute, Server, VirtualService } from '../api/index.js';
import type { GatewayTlsServer, GatewayTlsVersion } from '../proxyconfig/types.js';

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/**
 * A Gateway applies to a pod when its selector's labels are all on the pod (an empty selector
 * matches every gateway pod). Istio looks in every namespace unless
 * PILOT_SCOPE_GATEWAY_TO_NAMESPACE is set; `scopeToNamespace` is that switch.
 */
export function gatewaySelects(
  gw: Gateway,
  pod: { namespace: string; labels: Record<string, string> },
  scopeToNamespace = false,
): boolean {
  if (scopeToNamespace && nsOf(gw) !== pod.namespace) return false;
  return Object.entries(gw.spec.selector ?? {}).every(([k, v]) => pod.labels[k] === v);
}

/** `gateways` entries name `ns/name` or `name` (in the VirtualService's namespace). */
export function gatewayRef(ref: string, vsNamespace: string): string {
  return ref.includes('/') ? ref : `${vsNamespace}/${ref}`;
}

/** The VirtualService lists the gateway `ns/name` in its top-level `gateways`. */
export function bindsTo(vs: VirtualService, gatewayKey: string): boolean {
  return (vs.spec.gateways ?? []).some((g) => g !== 'mesh' && gatewayRef(g, nsOf(vs)) === gatewayKey);
}

/**
 * A server host is `[namespace/]dnsName`; the namespace part says which namespaces' VirtualServices
 * may use it: `*` (also when absent) any, `.` the Gateway's own, else that namespace.
 */
export function parseServerHost(h: string, gatewayNamespace: string): { namespace: string; host: string } {
  const slash = h.indexOf('/');
  if (slash < 0) return { namespace: '*', host: h.toLowerCase() };
  const ns = h.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: h.slice(slash + 1).toLowerCase() };
}

function wildcardCovers(wild: string, host: string): boolean {
  if (wild === '*') return true;
  return wild.startsWith('*.') && host.endsWith(wild.slice(1)) && host.length > wild.length - 1;
}

/**
 * The hostname two host patterns share, or null: the more specific of the two when one covers
 * the other (`*.example.com` ∩ `a.example.com` = `a.example.com`; `*` ∩ x = x).
 */
export function intersectHosts(a: string, b: string): string | null {
  if (a === b) return a;
  if (a.startsWith('*') && wildcardCovers(a, b)) return b;
  if (b.startsWith('*') && wildcardCovers(b, a)) return a;
  return null;
}

/** The hostnames `vsHosts` (already fully qualified) get on `server` of the gateway in `gatewayNamespace`. */
export function serverHostsFor(
  server: Server,
  gatewayNamespace: string,
  vsNamespace: string,
  vsHosts: string[],
): string[] {
  const out = new Set<string>();
  for (const raw of server.hosts ?? []) {
    const { namespace, host } = parseServerHost(raw, gatewayNamespace);
    if (namespace !== '*' && namespace !== vsNamespace) continue;
    for (const h of vsHosts) {
      const shared = intersectHosts(host, h);
      if (shared !== null) out.add(shared);
    }
  }
  return [...out].sort();
}

/**
 * The rule with each `null` match element read as `{}`, a match with no conditions: Istio's
 * routing matches every request with a nil match, and validation admits one for that reason.
 * Every HTTP rule passes through `ruleForGateway` or `ruleForMesh`, which call this first.
 */
export function nullMatchesAsEmpty(rule: HTTPRoute): HTTPRoute {
  const match = rule.match as (HTTPMatchRequest | null)[] | undefined;
  if (!match?.includes(null)) return rule;
  return { ...rule, match: match.map((m) => m ?? {}) };
}

/**
 * The rule as the gateway `gatewayKey` sees it: matches scoped to other gateways (`match[].gateways`)
 * dropped; null when every match was scoped elsewhere (the rule does not apply here).
 */
export function ruleForGateway(input: HTTPRoute, vsNamespace: string, gatewayKey: string): HTTPRoute | null {
  const rule = nullMatchesAsEmpty(input);
  if (!rule.match || rule.match.length === 0) return rule;
  const kept = rule.match.filter(
    (m) =>
      !m.gateways ||
      m.gateways.length === 0 ||
      m.gateways.some((g) => gatewayRef(g, vsNamespace) === gatewayKey),
  );
  if (kept.length === 0) return null;
  return kept.length === rule.match.length ? rule : { ...rule, match: kept };
}

/**
 * The rule as sidecars (the `mesh` gateway) see it: matches scoped to gateways only
 * (`match[].gateways` without `mesh`) dropped; null when every match was scoped to gateways.
 */
export function ruleForMesh(input: HTTPRoute): HTTPRoute | null {
  const rule = nullMatchesAsEmpty(input);
  if (!rule.match || rule.match.length === 0) return rule;
  const kept = rule.match.filter(
    (m) => !m.gateways || m.gateways.length === 0 || m.gateways.includes('mesh'),
  );
  if (kept.length === 0) return null;
  return kept.length === rule.match.length ? rule : { ...rule, match: kept };
}

/** The gateways a VirtualService binds to: an absent or empty list means `mesh` (Istio). */
export function boundGateways(vs: VirtualService): string[] {
  const g = vs.spec.gateways;
  return g && g.length > 0 ? g : ['mesh'];
}

/** Protocols served by an HTTP listener on a gateway. */
export const GATEWAY_HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

const TLS_VERSIONS: Record<string, GatewayTlsVersion | undefined> = {
  TLSV1_0: 'TLSv1',
  TLSV1_1: 'TLSv1.1',
  TLSV1_2: 'TLSv1.2',
  TLSV1_3: 'TLSv1.3',
};

/**
 * The SNI names of a server (Istio's getSNIHostsForServer): its hosts without the namespace
 * part, lowercased; a `*` host makes it a catch-all (no names: every SNI, and none).
 */
export function sniHostsOf(server: Server, gatewayNamespace: string): string[] {
  const hosts = (server.hosts ?? []).map((h) => parseServerHost(h, gatewayNamespace).host);
  return hosts.includes('*') ? [] : [...new Set(hosts)].sort();
}

/**
 * An HTTPS server as the gateway terminates it, or why it cannot be: SIMPLE and MUTUAL with a
 * `credentialName`, and ISTIO_MUTUAL with the gateway's own workload certificate (validation
 * refuses certificates on it); the other modes and file-based certificates are not served (their
 * not-enforced entries warn at apply time, pkg/api/not-enforced.ts). `subjectAltNames` restrict
 * the client certificates of MUTUAL and ISTIO_MUTUAL (Istio's validation context for both).
 */
export function gatewayTlsServer(
  server: Server,
  name: string,
  gatewayNamespace: string,
): GatewayTlsServer | string {
  const t = server.tls;
  if (t === undefined) return 'HTTPS without tls settings';
  const mode = t.mode ?? 'PASSTHROUGH'; // Istio's enum default
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'ISTIO_MUTUAL')
    return `tls.mode ${mode} is not served yet (SIMPLE, MUTUAL and ISTIO_MUTUAL only)`;
  const out: GatewayTlsServer = { name, sniHosts: sniHostsOf(server, gatewayNamespace), mode };
  if (mode !== 'ISTIO_MUTUAL') {
    if (t.credentialName === undefined || t.credentialName === '')
      return 'tls.credentialName is required (certificates from files are not supported)';
    out.credentialName = t.credentialName;
  }
  if (mode !== 'SIMPLE' && t.subjectAltNames && t.subjectAltNames.length > 0)
    out.subjectAltNames = [...t.subjectAltNames];
  const min = TLS_VERSIONS[t.minProtocolVersion ?? ''];
  const max = TLS_VERSIONS[t.maxProtocolVersion ?? ''];
  if (min !== undefined) out.minProtocolVersion = min;
  if (max !== undefined) out.maxProtocolVersion = max;
  if (t.cipherSuites && t.cipherSuites.length > 0) out.cipherSuites = [...t.cipherSuites];
  return out;
}

/**
 * `servers` with `s` added; an SNI name an earlier server of the port already has stays with it
 * (Istio keeps the first filter chain for a duplicate server name), and a server left with no
 * name of its own is skipped (the reason is returned).
 */
export function addTlsServer(servers: GatewayTlsServer[], s: GatewayTlsServer): GatewayTlsServer[] | string {
  const taken = new Set(servers.flatMap((x) => (x.sniHosts.length === 0 ? ['*'] : x.sniHosts)));
  const mine = s.sniHosts.length === 0 ? ['*'] : s.sniHosts;
  const free = mine.filter((h) => !taken.has(h));
  if (free.length === 0)
    return `its hosts (${mine.join(', ')}) are already served by an earlier TLS server of this port`;
  return [...servers, { ...s, sniHosts: free[0] === '*' ? [] : free }];
}
