/**
 * Config scoping, Istio's way: which hosts a proxy is given.
 *
 *  - exportTo (VirtualService, DestinationRule, ServiceEntry `spec.exportTo`; a Kubernetes
 *    Service's `networking.istio.io/exportTo` annotation, comma-separated): `*` every namespace,
 *    `.` the object's own, a name that namespace, `~` none. Empty or absent = the mesh default,
 *    which is Istio's `*` (weft's Mesh has no defaultServiceExportTo etc. yet). A DestinationRule
 *    is always seen by its own namespace (Istio keeps it namespace-local whatever its exportTo).
 *  - Sidecar selection (Istio's getSidecarScope): in the proxy's namespace, the oldest Sidecar
 *    whose workloadSelector matches the proxy's labels; else the oldest Sidecar of that namespace
 *    without a selector; else the oldest selector-less Sidecar of the root namespace; else none
 *    (everything exported to the namespace, `*` + `/` + `*`).
 *  - Egress `hosts` (`namespace/dnsName`): namespace `*` any, `.` the proxy's namespace (also for
 *    the root-namespace default: `./*` there means "each proxy's own namespace"), `~` none, or a
 *    name; dnsName `*`, a wildcard `*.example.com` (not `example.com` itself), or an FQDN. Host
 *    and pattern match when they overlap (Istio's host.Name.Matches: both ways for wildcards).
 *    A service is imported when its namespace and host match some entry; a VirtualService when its
 *    namespace and one of its hosts do, and the services its routes send to come with it (Istio's
 *    "services referenced in imported virtual services").
 *  - `outboundTrafficPolicy.mode` from the Sidecar, else the mesh default (ALLOW_ANY).
 *
 * Pure functions over plain objects: the translator filters with them, weftd keys its shared
 * translations with them, weftctl explains with them.
 */
import { BlockList, isIP } from 'node:net';
import type { Sidecar } from '../api/sidecar.js';
import type { VirtualService } from '../api/virtualservice.js';
import { parseCIDR } from '../validation/primitives.js';
import { byCreation } from './precedence.js';
import { labelsSubsetOf } from './sourcematch.js';

/** The Service annotation Istio reads a Service's exportTo from. */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';
/** Istio's default for every kind when meshConfig sets no default*ExportTo. */
export const DEFAULT_EXPORT_TO: readonly string[] = ['*'];

export type OutboundMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/**
 * Is an object of `owner` namespace with this exportTo visible in `viewer`? `defaults` stands in
 * for an empty list (the mesh's default*ExportTo).
 */
export function exportedTo(
  exportTo: readonly string[] | undefined,
  owner: string,
  viewer: string,
  defaults: readonly string[] = DEFAULT_EXPORT_TO,
): boolean {
  const to = exportTo && exportTo.length > 0 ? exportTo : defaults;
  return to.some((e) => e === '*' || e === viewer || (e === '.' && owner === viewer));
}

/** The `networking.istio.io/exportTo` annotation's list (absent or blank: undefined, the default). */
export function exportToAnnotation(annotations: Record<string, string> | undefined): string[] | undefined {
  const raw = annotations?.[EXPORT_TO_ANNOTATION];
  if (raw === undefined) return undefined;
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return list.length > 0 ? list : undefined;
}

/** A DestinationRule's visibility: its own namespace always, others by exportTo. */
export function ruleExportedTo(
  dr: { metadata: { namespace?: string }; spec: { exportTo?: string[] } },
  viewer: string,
): boolean {
  return nsOf(dr) === viewer || exportedTo(dr.spec.exportTo, nsOf(dr), viewer);
}

/** Objects with `spec.exportTo` (VirtualService, ServiceEntry) visible in `viewer`. */
export function visibleIn<T extends { metadata: { namespace?: string }; spec: { exportTo?: string[] } }>(
  objs: readonly T[],
  viewer: string | undefined,
): T[] {
  if (viewer === undefined) return [...objs];
  return objs.filter((o) => exportedTo(o.spec.exportTo, nsOf(o), viewer));
}

// ---- Sidecar selection ------------------------------------------------------------------------

export type SidecarScopeKind = 'workload' | 'namespace' | 'root';

export interface SelectedSidecar {
  sidecar: Sidecar;
  /** How it was chosen: a workloadSelector match, the namespace's default, the root default. */
  via: SidecarScopeKind;
}

const hasSelector = (s: Sidecar): boolean => s.spec?.workloadSelector !== undefined;

/** The Sidecar that scopes a proxy (Istio's precedence), or undefined when none applies. */
export function selectSidecar(
  sidecars: readonly Sidecar[],
  proxy: { namespace: string; labels: Record<string, string> },
  rootNamespace: string,
): SelectedSidecar | undefined {
  const own = byCreation(sidecars.filter((s) => nsOf(s) === proxy.namespace));
  const workload = own.find(
    (s) => hasSelector(s) && labelsSubsetOf(s.spec.workloadSelector?.labels ?? {}, proxy.labels),
  );
  if (workload) return { sidecar: workload, via: 'workload' };
  const namespace = own.find((s) => !hasSelector(s));
  if (namespace) return { sidecar: namespace, via: 'namespace' };
  if (proxy.namespace === rootNamespace) return undefined;
  const root = byCreation(sidecars.filter((s) => nsOf(s) === rootNamespace && !hasSelector(s)))[0];
  return root ? { sidecar: root, via: 'root' } : undefined;
}

/** `ns/name` of a Sidecar (for keys, warnings and weftctl). */
export const sidecarRef = (s: Sidecar): string => `${nsOf(s)}/${s.metadata.name ?? ''}`;

// ---- egress hosts -----------------------------------------------------------------------------

export interface EgressHost {
  /** `*`, `~` or a namespace name (`.` already resolved to the proxy's namespace). */
  namespace: string;
  /** Lower-cased dnsName: `*`, `*.suffix` or an FQDN. */
  host: string;
}

/** One egress host entry; null when it is not `namespace/dnsName` (validation refuses those). */
export function parseEgressHost(entry: string, proxyNamespace: string): EgressHost | null {
  const slash = entry.indexOf('/');
  if (slash <= 0 || slash === entry.length - 1) return null;
  const ns = entry.slice(0, slash);
  const host = entry.slice(slash + 1).toLowerCase();
  if (host.includes('/')) return null;
  return { namespace: ns === '.' ? proxyNamespace : ns, host };
}

/**
 * Do two host names overlap (Istio's host.Name.Matches)? `*` overlaps everything; a wildcard
 * `*.x` overlaps the names ending in `.x` and the narrower wildcards under it; FQDNs only
 * themselves.
 */
export function hostsOverlap(a: string, b: string): boolean {
  if (a === '*' || b === '*') return true;
  const wa = a.startsWith('*');
  const wb = b.startsWith('*');
  if (!wa && !wb) return a === b;
  if (wa && !wb) return b.endsWith(a.slice(1));
  if (!wa && wb) return a.endsWith(b.slice(1));
  return a.length <= b.length ? b.endsWith(a.slice(1)) : a.endsWith(b.slice(1));
}

/** Does an egress entry import `host` of namespace `namespace`? */
export function egressImports(e: EgressHost, namespace: string, host: string): boolean {
  if (e.namespace === '~') return false;
  if (e.namespace !== '*' && e.namespace !== namespace) return false;
  return hostsOverlap(e.host, host.toLowerCase());
}

/** What a proxy may see, as far as its Sidecar decides. */
export interface ProxyScope {
  /** The Sidecar in force (absent: none; every exported host). */
  sidecar?: SelectedSidecar;
  /** Its egress hosts, every listener's (ports are not told apart: docs/scoping.md). */
  egress?: EgressHost[];
  /** Malformed egress hosts, skipped. */
  invalid: string[];
  outboundMode: OutboundMode;
}

/**
 * The scope of a proxy in `proxyNamespace` under `selected` (selectSidecar's answer).
 * `meshOutboundMode` is the mesh default for proxies whose Sidecar does not set one.
 */
export function proxyScope(
  selected: SelectedSidecar | undefined,
  proxyNamespace: string,
  meshOutboundMode: OutboundMode = 'ALLOW_ANY',
): ProxyScope {
  if (!selected) return { invalid: [], outboundMode: meshOutboundMode };
  const egress: EgressHost[] = [];
  const invalid: string[] = [];
  for (const l of selected.sidecar.spec?.egress ?? [])
    for (const h of l.hosts ?? []) {
      const parsed = typeof h === 'string' ? parseEgressHost(h, proxyNamespace) : null;
      if (parsed) egress.push(parsed);
      else invalid.push(String(h));
    }
  const mode = selected.sidecar.spec?.outboundTrafficPolicy?.mode ?? meshOutboundMode;
  // no egress listener at all: Istio's default egress, `*/*`
  const hasEgress = (selected.sidecar.spec?.egress ?? []).length > 0;
  return {
    sidecar: selected,
    ...(hasEgress ? { egress } : {}),
    invalid,
    outboundMode: mode,
  };
}

/** Is a service (its host and namespace) imported by the scope? */
export function scopeImports(scope: ProxyScope, namespace: string, host: string): boolean {
  if (scope.egress === undefined) return true;
  return scope.egress.some((e) => egressImports(e, namespace, host));
}

/** Is a VirtualService imported: its namespace and one of its (FQDN) hosts match some entry? */
export function scopeImportsVirtualService(scope: ProxyScope, namespace: string, hosts: string[]): boolean {
  if (scope.egress === undefined) return true;
  return hosts.some((h) => scope.egress!.some((e) => egressImports(e, namespace, h)));
}

/**
 * The key proxies that see the same hosts share: the Sidecar in force, and the namespace when
 * the Sidecar's hosts name it through `.` (a root default seen from several namespaces).
 */
export function scopeKey(scope: ProxyScope, proxyNamespace: string): string {
  if (!scope.sidecar) return '';
  const s = scope.sidecar.sidecar;
  const usesDot = (s.spec?.egress ?? []).some((l) => (l.hosts ?? []).some((h) => h.startsWith('./')));
  // (translations are cached per registry generation: an edited Sidecar starts a new one)
  return `${sidecarRef(s)}${usesDot ? `:${proxyNamespace}` : ''}`;
}

/** The hosts a VirtualService's routes and mirrors send to (as written: short names are the VirtualService's namespace). */
export function virtualServiceDestinations(vs: VirtualService): string[] {
  const out = new Set<string>();
  const add = (d: { host?: string } | undefined): void => {
    if (typeof d?.host === 'string' && d.host !== '') out.add(d.host);
  };
  for (const r of vs.spec.http ?? []) {
    for (const rd of r.route ?? []) add(rd.destination);
    add(r.mirror);
    for (const m of r.mirrors ?? []) add(m.destination);
  }
  for (const r of [...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])])
    for (const rd of r.route ?? []) add(rd.destination);
  return [...out];
}

// ---- on-demand hosts (ADR 0023) ------------------------------------------------------------------

/**
 * The scope an on-demand sidecar starts from, narrowed from what its Sidecar (or the mesh) lets
 * it see, `full`: FQDN entries stay (the Sidecar names them); a wildcard entry (`*`, `*.x`) stays
 * only for the proxy's own namespace (`*` narrowed to it, another namespace's dropped: those
 * hosts come on demand); no Sidecar egress means the own namespace. Then the subscribed entries
 * (already checked against `full` by resolveOnDemand). Never wider than `full`.
 */
export function onDemandScope(
  full: ProxyScope,
  proxyNamespace: string,
  subscribed: readonly EgressHost[],
): ProxyScope {
  const base: EgressHost[] = [];
  for (const e of full.egress ?? [{ namespace: '*', host: '*' }]) {
    if (e.namespace === '~') continue;
    if (!e.host.startsWith('*')) base.push(e);
    else if (e.namespace === proxyNamespace || e.namespace === '*')
      base.push({ namespace: proxyNamespace, host: e.host });
  }
  return { ...full, egress: [...base, ...subscribed] };
}

/** Where a requested name may point: the objects resolveOnDemand looks through. */
export interface OnDemandCatalog {
  /** Registry services (Kubernetes Services and ServiceEntry hosts) with their exportTo and addresses. */
  services: readonly { host: string; namespace: string; exportTo?: string[]; addresses?: string[] }[];
  virtualServices: readonly VirtualService[];
  /** `svc.<domain suffix>`, e.g. `svc.cluster.local`. */
  suffix: string;
}

/** The FQDNs a name the app sent may mean from `proxyNamespace` (Kubernetes DNS search order). */
export function onDemandCandidates(name: string, proxyNamespace: string, suffix: string): string[] {
  const h = name.toLowerCase();
  const domain = suffix.replace(/^svc\./, '');
  const out = [h];
  const dots = h.split('.').length - 1;
  if (dots === 0) out.push(`${h}.${proxyNamespace}.${suffix}`);
  if (dots === 1) out.push(`${h}.${suffix}`);
  if (dots === 2 && h.endsWith('.svc')) out.push(`${h}.${domain}`);
  return out;
}

type CatalogService = OnDemandCatalog['services'][number];

/**
 * A catalogue indexed for resolveOnDemand: built once per registry generation (weftd's
 * configgen), so a name costs a few map lookups rather than a scan of every service.
 */
export interface OnDemandIndex {
  byHost: Map<string, CatalogService[]>;
  /** Exact addresses (an IP as written, e.g. a cluster IP or a ServiceEntry VIP). */
  byAddress: Map<string, CatalogService[]>;
  /** Services with CIDR addresses (ServiceEntry `addresses: [10.1.0.0/16]`), checked in turn. */
  cidrs: { blocks: BlockList; svc: CatalogService }[];
  /** Wildcard hosts (`*.example.com`), checked in turn. */
  wildcards: CatalogService[];
  /** VirtualServices by each of their FQDN hosts. */
  virtualServices: Map<string, VirtualService[]>;
  suffix: string;
}

const push = <K, V>(m: Map<K, V[]>, k: K, v: V): void => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/** Indexes a catalogue by host, address and VirtualService host (see OnDemandIndex). */
export function indexOnDemandCatalog(catalog: OnDemandCatalog): OnDemandIndex {
  const index: OnDemandIndex = {
    byHost: new Map(),
    byAddress: new Map(),
    cidrs: [],
    wildcards: [],
    virtualServices: new Map(),
    suffix: catalog.suffix,
  };
  for (const svc of catalog.services) {
    const host = svc.host.toLowerCase();
    if (host.startsWith('*')) index.wildcards.push(svc);
    else push(index.byHost, host, svc);
    for (const address of svc.addresses ?? []) {
      const cidr = parseCIDR(address);
      if (cidr === null) continue;
      const whole = cidr.prefixLen === (cidr.family === 4 ? 32 : 128);
      if (whole) push(index.byAddress, address.replace(/\/\d+$/, ''), svc);
      else {
        const blocks = new BlockList();
        blocks.addSubnet(cidr.address, cidr.prefixLen, cidr.family === 4 ? 'ipv4' : 'ipv6');
        index.cidrs.push({ blocks, svc });
      }
    }
  }
  for (const vs of catalog.virtualServices) {
    const ns = nsOf(vs);
    for (const h of vs.spec.hosts ?? []) {
      const host =
        h.includes('.') || h.includes('*') ? h.toLowerCase() : `${h.toLowerCase()}.${ns}.${catalog.suffix}`;
      push(index.virtualServices, host, vs);
    }
  }
  return index;
}

/** The catalogue's services a name (or address) may mean: exact hosts, addresses, CIDRs, wildcards. */
function servicesNamed(name: string, candidates: readonly string[], index: OnDemandIndex): CatalogService[] {
  const out = new Set<CatalogService>();
  for (const c of candidates) for (const svc of index.byHost.get(c) ?? []) out.add(svc);
  // an app may call a service by its cluster IP or VIP (the config accepts those as authorities too)
  for (const svc of index.byAddress.get(name) ?? []) out.add(svc);
  const family = isIP(name);
  if (family !== 0)
    for (const { blocks, svc } of index.cidrs)
      if (blocks.check(name, family === 4 ? 'ipv4' : 'ipv6')) out.add(svc);
  for (const svc of index.wildcards)
    if (candidates.some((c) => hostsOverlap(svc.host.toLowerCase(), c))) out.add(svc);
  return [...out];
}

/**
 * The egress entries that bring `name` (a host name, or a service's address) to a proxy in `proxyNamespace` whose full scope is
 * `full`: the services and VirtualServices with that host that are exported to the namespace and
 * imported by the Sidecar. Empty: unknown or not visible (the caller answers both `not_found`, so
 * a forbidden host is indistinguishable from a missing one). Pass an index (indexOnDemandCatalog)
 * when resolving many names against one catalogue.
 */
export function resolveOnDemand(
  name: string,
  proxyNamespace: string,
  full: ProxyScope,
  catalog: OnDemandCatalog | OnDemandIndex,
): EgressHost[] {
  const index = 'byHost' in catalog ? catalog : indexOnDemandCatalog(catalog);
  const candidates = onDemandCandidates(name, proxyNamespace, index.suffix);
  const out = new Map<string, EgressHost>();
  const add = (namespace: string, host: string): void => {
    out.set(`${namespace}/${host}`, { namespace, host });
  };
  for (const svc of servicesNamed(name, candidates, index)) {
    const host = svc.host.toLowerCase();
    if (!exportedTo(svc.exportTo, svc.namespace, proxyNamespace)) continue;
    if (scopeImports(full, svc.namespace, host)) add(svc.namespace, host);
  }
  for (const host of candidates)
    for (const vs of index.virtualServices.get(host) ?? []) {
      const ns = nsOf(vs);
      if (!exportedTo(vs.spec.exportTo, ns, proxyNamespace)) continue;
      if (scopeImportsVirtualService(full, ns, [host])) add(ns, host);
    }
  return [...out.values()];
}

/** `namespace/host`: how a subscribed entry is named in configs and keys. */
export const egressRef = (e: EgressHost): string => `${e.namespace}/${e.host}`;
