/**
 * Istio's source scoping of VirtualService match blocks (route.go sourceMatchHTTP): a match block
 * with `sourceLabels` / `sourceNamespace` is part of a proxy's config only when the proxy's
 * workload labels are a superset of `sourceLabels` and its namespace equals `sourceNamespace`.
 * The rest of the rule is untouched; a rule whose every match block is removed is not in that
 * proxy's config at all (and a VirtualService left with no rule does not claim its hosts there).
 *
 * Istio trims a match block that names `gateways` by those gateways alone: its source fields are
 * not checked (the gateway scoping in gateway.ts has already kept or dropped it). weft does the same.
 *
 * For a gateway the proxy is the gateway pod: its labels and namespace.
 */
import type { HTTPMatchRequest, HTTPRoute, VirtualService } from '../api/index.js';

/** The client side a config is generated for: the workload's labels and namespace. */
export interface ProxyIdentity {
  /** Absent for a proxy outside any namespace (standalone `run --config`): no sourceNamespace matches it. */
  namespace?: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * `want ⊆ have` (Istio's labels.Instance.SubsetOf): every key of `want` is an own label of the
 * proxy with exactly that value (case-sensitive; `key: ""` needs the label, set to empty). An
 * empty `want` matches every proxy, one with no labels included.
 */
export function labelsSubsetOf(
  want: Readonly<Record<string, string>> | undefined,
  have: Readonly<Record<string, string>>,
): boolean {
  if (want === undefined) return true;
  // own properties only: a label named `constructor` or `__proto__` is compared like any other
  for (const [k, v] of Object.entries(want)) if (!Object.hasOwn(have, k) || have[k] !== v) return false;
  return true;
}

/** Does this match block (HTTP, or a tcp/tls rule's L4 block) apply to the proxy (sourceMatchHTTP)? */
export function sourceMatches(
  m: Pick<HTTPMatchRequest, 'gateways' | 'sourceLabels' | 'sourceNamespace'>,
  proxy: ProxyIdentity,
): boolean {
  if (m.gateways && m.gateways.length > 0) return true;
  if (!labelsSubsetOf(m.sourceLabels, proxy.labels)) return false;
  return m.sourceNamespace === undefined || m.sourceNamespace === '' || m.sourceNamespace === proxy.namespace;
}

/**
 * The rule as `proxy` sees it: match blocks that cannot match the proxy removed; null when every
 * block was removed (the rule is not in its config). A rule without match blocks matches all.
 */
export function ruleForSource(rule: HTTPRoute, proxy: ProxyIdentity): HTTPRoute | null {
  if (!rule.match || rule.match.length === 0) return rule;
  const kept = rule.match.filter((m) => sourceMatches(m, proxy));
  if (kept.length === 0) return null;
  return kept.length === rule.match.length ? rule : { ...rule, match: kept };
}

/** What of a proxy's identity the source scoping of these VirtualServices reads. */
export interface SourceScope {
  /** Label keys some `sourceLabels` names (sorted). */
  labelKeys: string[];
  /** Namespaces some `sourceNamespace` names. */
  namespaces: Set<string>;
}

export function sourceScopeOf(vss: readonly VirtualService[]): SourceScope {
  const keys = new Set<string>();
  const namespaces = new Set<string>();
  for (const vs of vss)
    for (const rule of [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])])
      for (const m of rule.match ?? []) {
        // a null block (admitted, read as {}) names nothing
        for (const k of Object.keys(m?.sourceLabels ?? {})) keys.add(k);
        if (m?.sourceNamespace) namespaces.add(m.sourceNamespace);
      }
  return { labelKeys: [...keys].sort(), namespaces };
}

/**
 * The proxy's labels restricted to the keys `scope` reads: two proxies with the same projection
 * (and the same namespace as far as the translation reads it) get the same routes.
 */
export function projectLabels(
  scope: SourceScope,
  labels: Readonly<Record<string, string>>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const k of scope.labelKeys) if (Object.hasOwn(labels, k)) out.push([k, labels[k]!]);
  return out;
}
