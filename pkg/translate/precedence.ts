/**
 * Which object wins when several claim one host, as Istio decides it (push_context.go), per proxy:
 *
 *  - DestinationRules: a proxy looks for a rule for the host in its own namespace, then in the
 *    service's namespace, then in the root namespace (weft's `weft-system`); the first namespace
 *    that has one decides. Within a namespace the exact host beats wildcards and the longest
 *    wildcard beats shorter ones; several rules for one host in one namespace merge in creation
 *    order: the oldest's top-level trafficPolicy (a later one's only when the older has none),
 *    the union of their subsets (a name already taken is dropped). A rule in any other namespace
 *    is not used by that proxy. A proxy in the root namespace looks in the service's namespace
 *    before the root's (Istio's "istio-system is often the root" rule).
 *    Only rules exported to the proxy's namespace take part (scope.ts ruleExportedTo: the
 *    translator filters them before indexing).
 *  - VirtualServices bound to the mesh: oldest first (creationTimestamp, then name, then
 *    namespace); for a sidecar the first one with a rule for the proxy owns the host and the
 *    others are ignored there. Gateways merge every bound VirtualService's rules in that order.
 *
 * weftctl analyze (pkg/validation/analyze.ts) reports the same conflicts, naming the winner.
 */
import type { DestinationRule, ServiceEntry, Subset, VirtualService } from '../api/index.js';
import type { ObjectMeta } from '../api/common.js';
import { projectLabels, sourceScopeOf, type ProxyIdentity } from './sourcematch.js';

/** weft's root namespace (Istio's meshConfig.rootNamespace, istio-system there). */
export const ROOT_NAMESPACE = 'weft-system';

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/** Istio's configCompareByCreationTime: creationTimestamp, then name, then namespace. */
export function compareByCreation(a: { metadata: ObjectMeta }, b: { metadata: ObjectMeta }): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return Date.parse(ta) - Date.parse(tb) || (ta < tb ? -1 : 1);
  const na = a.metadata.name ?? '';
  const nb = b.metadata.name ?? '';
  if (na !== nb) return na < nb ? -1 : 1;
  const sa = nsOf(a);
  const sb = nsOf(b);
  return sa === sb ? 0 : sa < sb ? -1 : 1;
}

/** Oldest first (a copy). */
export function byCreation<T extends { metadata: ObjectMeta }>(objs: readonly T[]): T[] {
  return [...objs].sort(compareByCreation);
}

/**
 * Istio's MostSpecificHostMatch over one namespace's rules: the exact host, else the longest
 * wildcard that covers it (`*` covers everything). A wildcard needle matches the same wildcard,
 * then broader ones.
 */
export function mostSpecificHost<V>(
  needle: string,
  specific: ReadonlyMap<string, V>,
  wildcard: ReadonlyMap<string, V>,
): V | undefined {
  const exact = needle.startsWith('*') ? wildcard.get(needle) : specific.get(needle);
  if (exact !== undefined) return exact;
  const tail = needle.startsWith('*') ? needle.slice(1) : needle;
  let best: string | undefined;
  for (const h of wildcard.keys()) {
    if (!tail.endsWith(h.slice(1))) continue;
    if (best === undefined || h.length > best.length || (h.length === best.length && h < best)) best = h;
  }
  return best === undefined ? undefined : wildcard.get(best);
}

/** The rules of one namespace for one host, merged; `from` lists them oldest first (`ns/name`). */
export interface MergedDestinationRule {
  rule: DestinationRule;
  from: string[];
}

interface NamespaceRules {
  specific: Map<string, MergedDestinationRule>;
  wildcard: Map<string, MergedDestinationRule>;
}

export class DestinationRuleIndex {
  readonly warnings: string[] = [];
  private readonly byNamespace = new Map<string, NamespaceRules>();

  constructor(
    drs: readonly DestinationRule[],
    fqdnOf: (host: string, namespace: string) => string,
    readonly rootNamespace = ROOT_NAMESPACE,
  ) {
    for (const dr of byCreation(drs)) {
      const ns = nsOf(dr);
      if (typeof dr.spec?.host !== 'string' || dr.spec.host === '') continue;
      const host = fqdnOf(dr.spec.host, ns);
      let rules = this.byNamespace.get(ns);
      if (!rules) this.byNamespace.set(ns, (rules = { specific: new Map(), wildcard: new Map() }));
      const map = host.startsWith('*') ? rules.wildcard : rules.specific;
      const prev = map.get(host);
      if (prev) this.merge(prev, dr, host);
      else map.set(host, { rule: dr, from: [`${ns}/${dr.metadata.name ?? ''}`] });
    }
  }

  /** Namespaces that hold at least one rule. */
  namespaces(): Set<string> {
    return new Set(this.byNamespace.keys());
  }

  /** mergeDestinationRule: the older keeps its top-level policy; subsets are added by new name. */
  private merge(into: MergedDestinationRule, dr: DestinationRule, host: string): void {
    const name = `${nsOf(dr)}/${dr.metadata.name ?? ''}`;
    const first = into.from[0]!;
    const spec = { ...into.rule.spec };
    const taken = new Set((spec.subsets ?? []).map((s) => s.name));
    const added: Subset[] = [];
    for (const s of dr.spec.subsets ?? []) {
      if (taken.has(s.name)) {
        this.warnings.push(
          `DestinationRule ${name}: subset ${s.name} of ${host} is already defined by an older DestinationRule in its namespace (${into.from.join(', ')}); ignored`,
        );
        continue;
      }
      taken.add(s.name);
      added.push(s);
    }
    if (added.length > 0) spec.subsets = [...(spec.subsets ?? []), ...added];
    if (dr.spec.trafficPolicy !== undefined) {
      if (spec.trafficPolicy === undefined) spec.trafficPolicy = dr.spec.trafficPolicy;
      else
        this.warnings.push(
          `DestinationRule ${name}: its trafficPolicy for ${host} is ignored: ${first} (older, same namespace) has one`,
        );
    }
    into.rule = { ...into.rule, spec };
    into.from.push(name);
  }

  /** The namespaces a proxy searches, in order (Istio's destinationRule()). */
  searchOrder(proxyNamespace: string | undefined, serviceNamespace: string): string[] {
    const order: string[] = [];
    if (proxyNamespace !== undefined && proxyNamespace !== this.rootNamespace) order.push(proxyNamespace);
    order.push(serviceNamespace, this.rootNamespace);
    return [...new Set(order)];
  }

  /** The rule a proxy in `proxyNamespace` (absent: none) uses for `host`, a service of `serviceNamespace`. */
  lookup(
    host: string,
    proxyNamespace: string | undefined,
    serviceNamespace: string,
  ): MergedDestinationRule | undefined {
    for (const ns of this.searchOrder(proxyNamespace, serviceNamespace)) {
      const rules = this.byNamespace.get(ns);
      const hit = rules && mostSpecificHost(host, rules.specific, rules.wildcard);
      if (hit) return hit;
    }
    return undefined;
  }
}

/**
 * The VirtualService that owns each host for a sidecar: oldest first, the first that `applies`
 * (has a rule for this proxy) wins; later ones are reported in `warnings`.
 */
export function meshVirtualServicesByHost(
  vss: readonly VirtualService[],
  hostsOf: (vs: VirtualService) => string[],
  applies: (vs: VirtualService) => boolean,
): { byHost: Map<string, VirtualService>; warnings: string[] } {
  const byHost = new Map<string, VirtualService>();
  const warnings: string[] = [];
  for (const vs of byCreation(vss)) {
    if (!applies(vs)) continue;
    for (const host of hostsOf(vs)) {
      const owner = byHost.get(host);
      if (owner === undefined) byHost.set(host, vs);
      else if (owner !== vs)
        warnings.push(
          `VirtualService ${nsOf(vs)}/${vs.metadata.name ?? ''}: host ${host} is already routed by VirtualService ${nsOf(owner)}/${owner.metadata.name ?? ''} (the oldest wins: creationTimestamp, then name, then namespace); ignored for this host`,
        );
    }
  }
  return { byHost, warnings };
}

/**
 * A key such that two proxies with the same key get the same translation from these objects:
 * their namespace where some DestinationRule or sourceNamespace can tell it apart (else `*`), and
 * their labels restricted to the keys some sourceLabels names. weftd translates once per key.
 */
export function translationScopeKeyer(input: {
  virtualServices?: readonly VirtualService[];
  destinationRules?: readonly DestinationRule[];
  rootNamespace?: string;
  /**
   * Registry services (host and namespace, the first definition of a host wins as in the
   * translator): a rule for a service of its own namespace is what every client finds there
   * anyway, so it does not tell its namespace apart. Absent: every rule does.
   */
  services?: readonly { host: string; namespace: string }[];
  /** Hosts ServiceEntries define (they come first in the registry): a rule for one always tells its namespace apart. */
  serviceEntries?: readonly ServiceEntry[];
  /** Short DestinationRule hosts → FQDN (default: as-is). */
  fqdnOf?: (host: string, namespace: string) => string;
}): (proxy: ProxyIdentity) => string {
  const root = input.rootNamespace ?? ROOT_NAMESPACE;
  const scope = sourceScopeOf(input.virtualServices ?? []);
  const telling = new Set(scope.namespaces);
  const serviceNs = new Map<string, string>();
  for (const s of input.services ?? []) if (!serviceNs.has(s.host)) serviceNs.set(s.host, s.namespace);
  const fqdnOf = input.fqdnOf ?? ((h: string) => h.toLowerCase());
  for (const se of input.serviceEntries ?? [])
    for (const h of se.spec?.hosts ?? []) serviceNs.set(fqdnOf(h, nsOf(se)), '');
  for (const dr of input.destinationRules ?? []) {
    const ns = nsOf(dr);
    if (ns === root || telling.has(ns)) continue;
    const host = typeof dr.spec?.host === 'string' ? fqdnOf(dr.spec.host, ns) : '';
    if (host.startsWith('*') || serviceNs.get(host) !== ns) telling.add(ns);
  }
  return (proxy) => {
    const ns = proxy.namespace !== undefined && telling.has(proxy.namespace) ? proxy.namespace : '*';
    return JSON.stringify([ns, projectLabels(scope, proxy.labels)]);
  };
}
