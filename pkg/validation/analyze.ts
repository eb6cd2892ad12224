/**
 * Cross-object checks: problems no single object shows, which break Istio users in production
 * (Istio admits each object on its own). Objects that are not VirtualServices or
 * DestinationRules, or are too broken to read, are skipped here: per-object validation reports
 * them.
 *
 *   analyze.subset.undefined   a VS routes to a subset no DestinationRule defines (→ 503 NR);
 *                              a warning, because GitOps tools apply objects in any order
 *   analyze.vs.hostConflict    two mesh-bound VirtualServices claim the same host; sidecars use
 *                              the oldest (creationTimestamp, then name, then namespace), silently
 *   analyze.dr.hostConflict    two DestinationRules for the same host in one namespace: merged
 *                              oldest first (the older's trafficPolicy, subsets by new name)
 *   analyze.dr.precedence      DestinationRules for one host in several namespaces: each client
 *                              uses its own namespace's, else the service's, else the root's
 *                              (pkg/translate/precedence.ts)
 *   analyze.object.duplicate   one kind/namespace/name defined twice in the input
 *   analyze.gateway.undefined  a VS binds to a Gateway missing from a set that has Gateways
 *   analyze.sidecar.multipleDefaults  two Sidecars without workloadSelector in one namespace
 *                              (Istio's IST0109): only the oldest scopes the namespace
 *   analyze.sidecar.selectorConflict  two Sidecars in one namespace whose selectors can select
 *                              the same workload (Istio's IST0110): the oldest is used
 */
import type { DestinationRuleSpec } from '../api/destinationrule.js';
import type { SidecarSpec } from '../api/sidecar.js';
import type { Destination, VirtualServiceSpec } from '../api/virtualservice.js';
import { formatPath, type PathSegment } from './report.js';
import { isObject } from './schema.js';
import { ROOT_NAMESPACE, compareByCreation } from '../translate/precedence.js';
import type { ObjectFinding, ObjectRef } from './types.js';

const DOMAIN_SUFFIX = 'svc.cluster.local';

interface Loaded<Spec> {
  ref: ObjectRef;
  namespace: string;
  spec: Spec;
  /** For Istio's order (compareByCreation). */
  metadata: { name: string; namespace: string; creationTimestamp?: string };
}

/**
 * What a caller that sees the whole cluster (weftd's status controller) knows beyond the input:
 * with `knownHost`, a destination host that is neither a Service nor a ServiceEntry host is a
 * finding; with `wholeCluster`, a gateway missing from the input is missing, even when the
 * input holds no Gateway at all.
 */
export interface AnalyzeContext {
  knownHost?: (host: string) => boolean;
  wholeCluster?: boolean;
}

/** The findings that mean "something this object names does not exist" (ResolvedRefs). */
export const REFERENCE_RULES: ReadonlySet<string> = new Set([
  'analyze.subset.undefined',
  'analyze.gateway.undefined',
  'analyze.host.undefined',
]);

export function analyze(
  objs: unknown[],
  defaultNamespace: string,
  context: AnalyzeContext = {},
): ObjectFinding[] {
  const vss: Loaded<VirtualServiceSpec>[] = [];
  const drs: Loaded<DestinationRuleSpec>[] = [];
  const sidecars: Loaded<SidecarSpec>[] = [];
  const gateways = new Set<string>();
  for (const obj of objs) {
    const loaded = load(obj, defaultNamespace);
    if (!loaded) continue;
    if (loaded.ref.kind === 'Gateway') gateways.add(`${loaded.namespace}/${loaded.ref.name}`);
    if (loaded.ref.kind === 'VirtualService') vss.push(loaded as Loaded<VirtualServiceSpec>);
    if (loaded.ref.kind === 'Sidecar') sidecars.push(loaded as Loaded<SidecarSpec>);
    if (
      loaded.ref.kind === 'DestinationRule' &&
      typeof (loaded.spec as DestinationRuleSpec).host === 'string'
    )
      drs.push(loaded as Loaded<DestinationRuleSpec>);
  }
  return [
    ...duplicateObjects([...vss, ...drs]),
    ...undefinedSubsets(vss, drs),
    ...vsHostConflicts(vss),
    ...drHostConflicts(drs),
    ...drPrecedence(drs),
    ...sidecarConflicts(sidecars),
    // Gateways are often managed elsewhere; only a set that has some can miss one.
    ...(gateways.size > 0 || context.wholeCluster === true ? undefinedGateways(vss, gateways) : []),
    ...(context.knownHost ? undefinedHosts(vss, context.knownHost) : []),
  ];
}

/** `ns/name`, a short name in the VS's namespace, or the legacy `name.ns[.svc...]` form. */
export function resolveGatewayRef(ref: string, namespace: string): string {
  const slash = ref.indexOf('/');
  if (slash >= 0) return ref;
  const parts = ref.split('.');
  return parts.length > 1 ? `${parts[1]}/${parts[0]}` : `${namespace}/${ref}`;
}

function undefinedGateways(vss: Loaded<VirtualServiceSpec>[], gateways: Set<string>): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  const check = (vs: Loaded<VirtualServiceSpec>, list: unknown, path: PathSegment[]): void => {
    if (!Array.isArray(list)) return;
    list.forEach((g, i) => {
      if (typeof g !== 'string' || g === 'mesh') return;
      const ref = resolveGatewayRef(g, vs.namespace);
      if (gateways.has(ref)) return;
      out.push({
        severity: 'warning',
        object: vs.ref,
        path: formatPath([...path, i]),
        message: `gateway ${ref} is not defined in this input; the routes bound to it apply nowhere until it exists`,
        rule: 'analyze.gateway.undefined',
      });
    });
  };
  for (const vs of vss) {
    check(vs, vs.spec.gateways, ['spec', 'gateways']);
    for (const kind of ['http', 'tcp', 'tls'] as const) {
      const routes = vs.spec[kind];
      if (!Array.isArray(routes)) continue;
      routes.forEach((route, i) => {
        if (!isObject(route) || !Array.isArray(route.match)) return;
        route.match.forEach(
          (m, j) => isObject(m) && check(vs, m.gateways, ['spec', kind, i, 'match', j, 'gateways']),
        );
      });
    }
  }
  return out;
}

function identity(l: { ref: ObjectRef }): string {
  return `${l.ref.kind}/${l.ref.namespace ?? ''}/${l.ref.name}`;
}

/**
 * The same kind/namespace/name defined twice (often per-environment copies analyzed together):
 * in one cluster the one applied last replaces the other. A warning; such copies are not
 * compared with each other by the checks below.
 */
function duplicateObjects(all: Loaded<unknown>[]): ObjectFinding[] {
  const seen = new Set<string>();
  const out: ObjectFinding[] = [];
  for (const l of all) {
    const id = identity(l);
    if (seen.has(id)) {
      out.push({
        severity: 'warning',
        object: l.ref,
        path: 'metadata.name',
        message: `${l.ref.kind} ${l.ref.namespace ?? ''}/${l.ref.name} is defined more than once in this input; in one cluster the one applied last replaces the others`,
        rule: 'analyze.object.duplicate',
      });
    }
    seen.add(id);
  }
  return out;
}

function load(obj: unknown, defaultNamespace: string): Loaded<unknown> | undefined {
  if (!isObject(obj) || !isObject(obj.metadata) || !isObject(obj.spec)) return undefined;
  const { apiVersion, kind } = obj;
  const { name, namespace } = obj.metadata;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || typeof name !== 'string')
    return undefined;
  if (!apiVersion.startsWith('networking.istio.io/')) return undefined;
  const ns = typeof namespace === 'string' && namespace !== '' ? namespace : defaultNamespace;
  const ts = obj.metadata.creationTimestamp;
  const metadata = { name, namespace: ns, ...(typeof ts === 'string' ? { creationTimestamp: ts } : {}) };
  return { ref: { apiVersion, kind, namespace: ns, name }, namespace: ns, spec: obj.spec, metadata };
}

/** Istio resolves a short name (no dot) in the object's namespace; dotted names are taken as-is. */
export function resolveHost(host: string, namespace: string): string {
  return host.includes('.') || host.startsWith('*') ? host : `${host}.${namespace}.${DOMAIN_SUFFIX}`;
}

/** Namespaces an object is visible in (`undefined` = all). */
function visibleIn(exportTo: unknown, namespace: string): Set<string> | undefined {
  if (!Array.isArray(exportTo) || exportTo.length === 0 || exportTo.includes('*')) return undefined;
  return new Set(
    exportTo.filter((e): e is string => typeof e === 'string').map((e) => (e === '.' ? namespace : e)),
  );
}

function canSee(viewerNamespace: string, exportTo: unknown, ownerNamespace: string): boolean {
  const set = visibleIn(exportTo, ownerNamespace);
  return set === undefined || set.has(viewerNamespace);
}

function overlaps(a: Set<string> | undefined, b: Set<string> | undefined): boolean {
  if (a === undefined || b === undefined) return (a?.size ?? 1) > 0 && (b?.size ?? 1) > 0;
  for (const x of a) if (b.has(x)) return true;
  return false;
}

/** DestinationRule host (maybe wildcard) covers a resolved destination host. */
function drCovers(drHost: string, host: string): boolean {
  if (drHost.startsWith('*')) return host.endsWith(drHost.slice(1));
  return drHost === host;
}

// ---- subsets ------------------------------------------------------------------------------

interface DestinationUse {
  destination: Destination;
  path: PathSegment[];
}

function destinationsOf(spec: VirtualServiceSpec): DestinationUse[] {
  const out: DestinationUse[] = [];
  const add = (d: unknown, path: PathSegment[]): void => {
    if (isObject(d) && typeof d.host === 'string')
      out.push({ destination: d as unknown as Destination, path });
  };
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  for (const kind of ['http', 'tcp', 'tls'] as const) {
    list(spec[kind]).forEach((route, i) => {
      if (!isObject(route)) return;
      list(route.route).forEach(
        (rd, j) => isObject(rd) && add(rd.destination, ['spec', kind, i, 'route', j, 'destination']),
      );
      if (kind === 'http') {
        add(route.mirror, ['spec', kind, i, 'mirror']);
        list(route.mirrors).forEach(
          (m, j) => isObject(m) && add(m.destination, ['spec', kind, i, 'mirrors', j, 'destination']),
        );
      }
    });
  }
  return out;
}

/**
 * Destinations naming a host that no Service or ServiceEntry defines (Istio's
 * ReferencedResourceNotFound): requests routed there fail. Wildcard hosts are left alone.
 */
function undefinedHosts(
  vss: Loaded<VirtualServiceSpec>[],
  knownHost: (host: string) => boolean,
): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  for (const vs of vss) {
    for (const use of destinationsOf(vs.spec)) {
      const host = resolveHost(use.destination.host, vs.namespace);
      if (host.startsWith('*') || knownHost(host)) continue;
      out.push({
        severity: 'warning',
        object: vs.ref,
        path: formatPath(use.path.concat('host')),
        message: `host ${host} is not a Service or ServiceEntry host; requests routed to it fail with 503 until it exists`,
        rule: 'analyze.host.undefined',
      });
    }
  }
  return out;
}

/**
 * The DestinationRules covering a resolved host, in input order: exact hosts by map, wildcards
 * by scan. Whole-cluster analysis (weftd's status writer) runs this for every destination of
 * every VirtualService; a scan of every rule each time was quadratic.
 */
function drHostIndex(drs: Loaded<DestinationRuleSpec>[]): (host: string) => Loaded<DestinationRuleSpec>[] {
  const exact = new Map<string, number[]>();
  const wildcards: { host: string; i: number }[] = [];
  drs.forEach((dr, i) => {
    const host = resolveHost(dr.spec.host, dr.namespace);
    if (host.startsWith('*')) wildcards.push({ host, i });
    else exact.set(host, [...(exact.get(host) ?? []), i]);
  });
  return (host) => {
    const at = [
      ...(exact.get(host) ?? []),
      ...wildcards.filter((w) => drCovers(w.host, host)).map((w) => w.i),
    ];
    return at.sort((a, b) => a - b).map((i) => drs[i]!);
  };
}

function undefinedSubsets(
  vss: Loaded<VirtualServiceSpec>[],
  drs: Loaded<DestinationRuleSpec>[],
): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  const hostsOf = drHostIndex(drs);
  for (const vs of vss) {
    for (const use of destinationsOf(vs.spec)) {
      const subset = use.destination.subset;
      if (typeof subset !== 'string' || subset === '') continue;
      const host = resolveHost(use.destination.host, vs.namespace);
      const candidates = hostsOf(host).filter((dr) => canSee(vs.namespace, dr.spec.exportTo, dr.namespace));
      const defining = candidates.filter(
        (dr) =>
          Array.isArray(dr.spec.subsets) && dr.spec.subsets.some((s) => isObject(s) && s.name === subset),
      );
      if (defining.length > 0) continue;
      const message =
        candidates.length === 0
          ? `subset "${subset}" of host ${host} is not defined: no DestinationRule for that host (requests to it fail with 503 NR until one exists)`
          : `subset "${subset}" of host ${host} is not defined by ${candidates.map(refText).join(', ')} (requests to it fail with 503 NR)`;
      const finding: ObjectFinding = {
        severity: 'warning',
        object: vs.ref,
        path: formatPath(use.path.concat('subset')),
        message,
        rule: 'analyze.subset.undefined',
      };
      if (candidates.length > 0) finding.related = candidates.map((c) => c.ref);
      out.push(finding);
    }
  }
  return out;
}

// ---- host conflicts -----------------------------------------------------------------------

function vsHostConflicts(vss: Loaded<VirtualServiceSpec>[]): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  const claims = new Map<string, { vs: Loaded<VirtualServiceSpec>; index: number }[]>();
  for (const vs of vss) {
    const gateways = Array.isArray(vs.spec.gateways) ? vs.spec.gateways : [];
    if (gateways.length > 0 && !gateways.includes('mesh')) continue;
    const hosts = Array.isArray(vs.spec.hosts) ? vs.spec.hosts : [];
    hosts.forEach((h, index) => {
      if (typeof h !== 'string') return;
      const host = resolveHost(h, vs.namespace);
      claims.set(host, [...(claims.get(host) ?? []), { vs, index }]);
    });
  }
  for (const [host, unsorted] of claims) {
    // sidecars use the oldest: report the others against it
    const list = [...unsorted].sort((x, y) => compareByCreation(x.vs, y.vs));
    for (let i = 1; i < list.length; i++) {
      const cur = list[i];
      if (!cur) continue;
      const others = list
        .slice(0, i)
        .filter(
          (o) =>
            identity(o.vs) !== identity(cur.vs) &&
            overlaps(
              visibleIn(o.vs.spec.exportTo, o.vs.namespace),
              visibleIn(cur.vs.spec.exportTo, cur.vs.namespace),
            ),
        );
      if (others.length === 0) continue;
      out.push({
        severity: 'error',
        object: cur.vs.ref,
        related: others.map((o) => o.vs.ref),
        path: formatPath(['spec', 'hosts', cur.index]),
        message: `host ${host} is also claimed for the mesh by ${others.map((o) => refText(o.vs)).join(', ')}; sidecars use only one VirtualService per host: ${refText(others[0]!.vs)} wins (${whyFirst(others[0]!.vs, cur.vs)}) and this one's routes for the host are ignored, except at a sidecar for which the winner has no rule left (sourceLabels/sourceNamespace); gateways merge them (merge them into one)`,
        rule: 'analyze.vs.hostConflict',
      });
    }
  }
  return out;
}

/** Why `a` comes before `b` in Istio's order. */
function whyFirst(a: Loaded<unknown>, b: Loaded<unknown>): string {
  const ta = a.metadata.creationTimestamp;
  const tb = b.metadata.creationTimestamp;
  if (ta !== tb && ta !== undefined && tb !== undefined) return `older: created ${ta}, this one ${tb}`;
  if (ta !== tb)
    return `in a cluster the older wins; here ${ta === undefined ? 'it has' : 'this one has'} no creationTimestamp`;
  return a.metadata.name !== b.metadata.name
    ? 'same creationTimestamp: the first by name'
    : 'same creationTimestamp and name: the first by namespace';
}

function drHostConflicts(unsorted: Loaded<DestinationRuleSpec>[]): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  const drs = [...unsorted].sort(compareByCreation);
  // the rules seen so far per namespace and host (grouped: a scan of all earlier ones was quadratic)
  const earlier = new Map<string, Loaded<DestinationRuleSpec>[]>();
  drs.forEach((dr) => {
    if (dr.spec.workloadSelector) return;
    const host = resolveHost(dr.spec.host, dr.namespace);
    const key = `${dr.namespace}|${host}`;
    const group = earlier.get(key) ?? [];
    earlier.set(key, [...group, dr]);
    const others = group.filter((o) => identity(o) !== identity(dr));
    if (others.length === 0) return;
    out.push({
      severity: 'warning',
      object: dr.ref,
      related: others.map((o) => o.ref),
      path: 'spec.host',
      message: `host ${host} already has a DestinationRule in namespace ${dr.namespace} (${others.map(refText).join(', ')}); they merge oldest first: ${refText(others[0]!)} comes first (${whyFirst(others[0]!, dr)}), so ${dr.spec.trafficPolicy !== undefined && others.some((o) => o.spec.trafficPolicy !== undefined) ? "this one's trafficPolicy is ignored" : 'its trafficPolicy, if any, is kept'} and only this one's subsets with new names are added`,
      rule: 'analyze.dr.hostConflict',
    });
  });
  return out;
}

function refText(l: { ref: ObjectRef }): string {
  return `${l.ref.kind} ${l.ref.namespace ?? ''}/${l.ref.name}`;
}

/** The namespace of a Kubernetes service host (`name.ns.svc.<domain>`), if it is one. */
function serviceNamespaceOf(host: string): string | undefined {
  const parts = host.split('.');
  return parts.length >= 3 && parts[2] === 'svc' && !host.startsWith('*') ? parts[1] : undefined;
}

/**
 * DestinationRules for one host in several namespaces: which one each client uses (a client's
 * own namespace, then the service's, then the root namespace; one namespace's rule applies whole).
 * Reported on every rule outside the service's namespace, a warning: the others' settings do not
 * reach those clients.
 */
function drPrecedence(drs: Loaded<DestinationRuleSpec>[]): ObjectFinding[] {
  const byHost = new Map<string, Loaded<DestinationRuleSpec>[]>();
  for (const dr of drs) {
    if (dr.spec.workloadSelector) continue;
    const host = resolveHost(dr.spec.host, dr.namespace);
    byHost.set(host, [...(byHost.get(host) ?? []), dr]);
  }
  const out: ObjectFinding[] = [];
  for (const [host, list] of byHost) {
    const namespaces = new Set(list.map((d) => d.namespace));
    if (namespaces.size < 2) continue;
    const svcNs = serviceNamespaceOf(host);
    const inSvc = list.filter((d) => d.namespace === svcNs);
    const inRoot = list.filter((d) => d.namespace === ROOT_NAMESPACE);
    const fallback = inSvc.length > 0 ? inSvc : inRoot;
    const fallbackText =
      fallback.length > 0
        ? `${fallback.map(refText).join(', ')} (${fallback === inSvc ? "the service's namespace" : `the root namespace ${ROOT_NAMESPACE}`})`
        : 'none';
    for (const dr of list) {
      if (dr.namespace === svcNs) continue;
      const others = list.filter((o) => o.namespace !== dr.namespace);
      const message =
        dr.namespace === ROOT_NAMESPACE
          ? `host ${host} also has DestinationRules in ${[...namespaces].filter((n) => n !== ROOT_NAMESPACE).join(', ')}: this root-namespace rule applies only to clients whose namespace has none${svcNs !== undefined && inSvc.length > 0 ? ` (none do: ${svcNs}, the service's namespace, has one)` : ''}`
          : `host ${host} also has DestinationRules in ${[...namespaces].filter((n) => n !== dr.namespace).join(', ')}: clients in ${dr.namespace} use this one whole (their own namespace comes first: client, service, root ${ROOT_NAMESPACE}), and ignore the others' subsets and policy; clients elsewhere never use it and get ${fallbackText}`;
      out.push({
        severity: 'warning',
        object: dr.ref,
        related: others.map((o) => o.ref),
        path: 'spec.host',
        message,
        rule: 'analyze.dr.precedence',
      });
    }
  }
  return out;
}

// ---- Sidecar conflicts --------------------------------------------------------------------

/** Could both selectors match one workload: no label key they require with different values? */
function selectorsOverlap(a: Record<string, string>, b: Record<string, string>): boolean {
  return Object.entries(a).every(([k, v]) => !Object.hasOwn(b, k) || b[k] === v);
}

const selectorOf = (s: Loaded<SidecarSpec>): Record<string, string> | undefined => {
  const ws: unknown = s.spec.workloadSelector;
  if (!isObject(ws)) return undefined;
  const labels: unknown = ws.labels;
  return isObject(labels) ? (labels as Record<string, string>) : {};
};

/**
 * Istio's MultipleSidecarsWithoutSelectors and ConflictingSidecarWorkloadSelectors: in one
 * namespace, a second selector-less Sidecar, or a second Sidecar whose workloadSelector can
 * select a workload an older one selects. Istio leaves the outcome undefined (sidecar.proto);
 * weft uses the oldest (pkg/translate/scope.ts), and the finding on each newer one says so.
 * Without pods in the input, "can select the same workload" is read from the selectors: no
 * label they both name with different values.
 */
function sidecarConflicts(unsorted: Loaded<SidecarSpec>[]): ObjectFinding[] {
  const out: ObjectFinding[] = [];
  const all = [...unsorted].sort(compareByCreation);
  all.forEach((sc, i) => {
    const older = all.slice(0, i).filter((o) => o.namespace === sc.namespace && identity(o) !== identity(sc));
    const mine = selectorOf(sc);
    if (mine === undefined) {
      const defaults = older.filter((o) => selectorOf(o) === undefined);
      if (defaults.length === 0) return;
      out.push({
        severity: 'error',
        object: sc.ref,
        related: defaults.map((o) => o.ref),
        path: 'spec',
        message: `namespace ${sc.namespace} already has a Sidecar without workloadSelector (${defaults.map(refText).join(', ')}); only one is allowed, weft uses the oldest (${refText(defaults[0]!)}) and ignores this one`,
        rule: 'analyze.sidecar.multipleDefaults',
      });
      return;
    }
    const rivals = older.filter((o) => {
      const theirs = selectorOf(o);
      return theirs !== undefined && selectorsOverlap(mine, theirs);
    });
    if (rivals.length === 0) return;
    out.push({
      severity: 'error',
      object: sc.ref,
      related: rivals.map((o) => o.ref),
      path: 'spec.workloadSelector',
      message: `its workloadSelector ${JSON.stringify(mine)} can select the same workloads as ${rivals.map(refText).join(', ')}; a workload selected by several Sidecars gets the oldest (${refText(rivals[0]!)}), not this one`,
      rule: 'analyze.sidecar.selectorConflict',
    });
  });
  return out;
}
