/**
 * Locality-aware load balancing, Istio's semantics (pilot loadbalancer.go, Envoy priorities):
 *
 * - A locality is `region/zone/subzone`. A pod's comes from its `istio-locality` label (dots for
 *   slashes, since a label value cannot hold `/`), else from its node's labels
 *   `topology.kubernetes.io/region`, `topology.kubernetes.io/zone` and `topology.istio.io/subzone`.
 *   A ServiceEntry endpoint's is its `locality` field.
 * - Which setting applies to a cluster (GetLocalityLbSetting): the DestinationRule's
 *   `loadBalancer.localityLbSetting` when set (`enabled: false` turns locality LB off), else the
 *   mesh's, which is `{enabled: true}` (Istio's default).
 * - `distribute` weights localities for proxies in its `from` locality; localities that no `to`
 *   names get no traffic. It needs no outlier detection.
 * - Otherwise failover, only with outlier detection (without it Envoy never leaves priority 0):
 *   the proxy's own locality is priority 0, same zone other subzone 1, same region 2, others 3;
 *   a `failover` rule for the proxy's region pushes every region but its `to` one step further;
 *   `failoverPriority` labels (optionally `label=value`) rank endpoints first by how many of the
 *   listed labels, in order, match the proxy's. Priorities are then renumbered 0..N without gaps.
 *
 * The translator keeps each endpoint's `locality` and the cluster's resolved policy
 * (`localityLbPolicy`); weftd resolves priorities per proxy locality with `applyLocality`, so
 * proxies in one locality share one result. The proxy spills load between priorities
 * (proxy/upstream/priority.ts).
 */
import type { LocalityLoadBalancerSetting } from '../api/destinationrule.js';
import type { Cluster, Endpoint } from '../proxyconfig/types.js';

export const LOCALITY_LABEL = 'istio-locality';
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

/** `us-east/a/1` → its parts; missing parts are empty. */
export function parseLocality(s: string | undefined): Locality {
  const [region = '', zone = '', subzone = ''] = (s ?? '').split('/');
  return { region, zone, subzone };
}

/** The canonical `region/zone/subzone`, trailing empty parts dropped; '' when nothing is known. */
export function formatLocality(l: Locality): string {
  return [l.region, l.zone, l.subzone].join('/').replace(/\/+$/, '');
}

/**
 * A pod's locality: its `istio-locality` label (`region.zone.subzone`) wins, else its node's
 * topology labels; undefined when neither says anything.
 */
export function localityOf(
  podLabels: Record<string, string> | undefined,
  nodeLabels: Record<string, string> | undefined,
): string | undefined {
  const own = podLabels?.[LOCALITY_LABEL];
  if (own !== undefined && own !== '') return formatLocality(parseLocality(own.replaceAll('.', '/')));
  if (!nodeLabels) return undefined;
  const l = formatLocality({
    region: nodeLabels[REGION_LABEL] ?? '',
    zone: nodeLabels[ZONE_LABEL] ?? '',
    subzone: nodeLabels[SUBZONE_LABEL] ?? '',
  });
  return l === '' ? undefined : l;
}

/** Istio's LocalityMatch: a rule `region[/zone[/subzone]]`, `*` matching any part (or all). */
export function localityMatch(l: Locality, rule: string): boolean {
  const r = parseLocality(rule);
  return (
    (r.region === '*' || r.region === l.region) &&
    (r.zone === '*' || r.zone === '' || r.zone === l.zone) &&
    (r.subzone === '*' || r.subzone === '' || r.subzone === l.subzone)
  );
}

/** Istio's LbPriority: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
export function lbPriority(proxy: Locality, ep: Locality): number {
  if (proxy.region !== ep.region) return 3;
  if (proxy.zone !== ep.zone) return 2;
  if (proxy.subzone !== ep.subzone) return 1;
  return 0;
}

/** The part of a localityLbSetting that applies to a cluster, resolved. */
export interface LocalityLbPolicy {
  distribute?: { from: string; to: Record<string, number> }[];
  failover?: { from: string; to: string }[];
  failoverPriority?: string[];
}

/**
 * The policy for a cluster from its DestinationRule setting (absent: the mesh default, enabled)
 * and whether it has outlier detection; undefined = every endpoint alike.
 */
export function localityLbPolicy(
  setting: LocalityLoadBalancerSetting | undefined,
  hasOutlierDetection: boolean,
): LocalityLbPolicy | undefined {
  if (setting?.enabled === false) return undefined;
  const distribute = (setting?.distribute ?? []).map((d) => ({
    from: d.from ?? '',
    to: { ...(d.to ?? {}) },
  }));
  if (distribute.length > 0) return { distribute };
  if (!hasOutlierDetection) return undefined;
  const out: LocalityLbPolicy = {};
  const failover = (setting?.failover ?? []).map((f) => ({ from: f.from ?? '', to: f.to ?? '' }));
  if (failover.length > 0) out.failover = failover;
  if ((setting?.failoverPriority ?? []).length > 0) out.failoverPriority = [...setting!.failoverPriority!];
  return out;
}

/** The proxy that locality is resolved for. */
export interface LocalityProxy {
  /** `region/zone/subzone`; absent or '' when unknown (only endpoints without one rank first). */
  locality?: string;
  labels: Record<string, string>;
}

/** Labels as failoverPriority compares them: the topology labels follow the locality (Istio adds them). */
function withTopology(labels: Record<string, string>, locality: string | undefined): Record<string, string> {
  const l = parseLocality(locality);
  return { ...labels, [REGION_LABEL]: l.region, [ZONE_LABEL]: l.zone, [SUBZONE_LABEL]: l.subzone };
}

/** Istio's applyFailoverPriorityPerLocality: N − (index of the first listed label that differs), 0 if all match. */
function failoverPriorityRank(
  priorityLabels: { name: string; value?: string }[],
  proxyLabels: Record<string, string>,
  epLabels: Record<string, string>,
): number {
  for (let j = 0; j < priorityLabels.length; j++) {
    const { name, value } = priorityLabels[j]!;
    if ((value ?? proxyLabels[name]) !== epLabels[name]) return priorityLabels.length - j;
  }
  return 0;
}

/** Renumbers priorities 0..N in order, without gaps (Envoy requires it). */
function compact(ranks: number[]): number[] {
  const order = [...new Set(ranks)].sort((a, b) => a - b);
  return ranks.map((r) => order.indexOf(r));
}

/**
 * The endpoints of a cluster for a proxy: `priority` set by failover, or `localityWeight` set
 * (and unnamed localities dropped) by distribute. Priority 0 and absent weights are omitted.
 */
export function applyLocality(
  endpoints: Endpoint[],
  policy: LocalityLbPolicy,
  proxy: LocalityProxy,
): Endpoint[] {
  const me = parseLocality(proxy.locality);
  if (policy.distribute) return distribute(endpoints, policy.distribute, me);
  let ranks = endpoints.map(() => 0);
  const fp = policy.failoverPriority;
  const withFp = fp !== undefined && Object.keys(proxy.labels).length > 0;
  if (withFp) {
    const labels = fp.map((s) => {
      const eq = s.indexOf('=');
      return eq < 0 ? { name: s } : { name: s.slice(0, eq), value: s.slice(eq + 1) };
    });
    const mine = withTopology(proxy.labels, proxy.locality);
    ranks = compact(
      endpoints.map((e) => failoverPriorityRank(labels, mine, withTopology(e.labels ?? {}, e.locality))),
    );
  }
  // failoverPriority alone replaces the locality ranking (even when the proxy has no labels to
  // compare: then every endpoint stays at 0); with `failover` as well, both apply
  if (fp === undefined || (policy.failover ?? []).length > 0) {
    const rule = (policy.failover ?? []).find((f) => f.from === me.region);
    ranks = endpoints.map((e, i) => {
      const ep = parseLocality(e.locality);
      let p = lbPriority(me, ep);
      if (p === 3 && rule !== undefined && ep.region !== rule.to) p = 4;
      return ranks[i]! * 5 + p;
    });
  }
  const priorities = compact(ranks);
  return endpoints.map((e, i) => withPriority(e, priorities[i]!));
}

function withPriority(e: Endpoint, priority: number): Endpoint {
  const { priority: _old, ...rest } = e;
  return priority === 0 ? rest : { ...rest, priority };
}

/** Istio's applyLocalityWeights: the first rule whose `from` matches the proxy. */
function distribute(
  endpoints: Endpoint[],
  rules: NonNullable<LocalityLbPolicy['distribute']>,
  me: Locality,
): Endpoint[] {
  const rule = rules.find((r) => localityMatch(me, r.from));
  if (!rule) return endpoints;
  // the localities present, each with its weight (the sum of its endpoints' weights, as Istio's EDS)
  const groups = new Map<string, number>();
  for (const e of endpoints)
    groups.set(e.locality ?? '', (groups.get(e.locality ?? '') ?? 0) + (e.weight ?? 1));
  const claimed = new Map<string, number>();
  for (const [to, weight] of Object.entries(rule.to)) {
    const matched = [...groups.keys()].filter((l) => !claimed.has(l) && localityMatch(parseLocality(l), to));
    const total = matched.reduce((s, l) => s + groups.get(l)!, 0);
    for (const l of matched) {
      const w = Math.ceil((groups.get(l)! * weight) / total);
      if (w > 0) claimed.set(l, w);
    }
  }
  return endpoints
    .filter((e) => claimed.has(e.locality ?? ''))
    .map((e) => {
      const { priority: _p, ...rest } = e;
      return { ...rest, localityWeight: claimed.get(e.locality ?? '')! };
    });
}

/** The clusters of a config with `applyLocality` done for `proxy` where a policy applies. */
export function localizeClusters(
  clusters: Cluster[],
  policies: Record<string, LocalityLbPolicy>,
  proxy: LocalityProxy,
): Cluster[] {
  return clusters.map((c) => {
    const p = policies[c.name];
    return p === undefined ? c : { ...c, endpoints: applyLocality(c.endpoints, p, proxy) };
  });
}

/**
 * What of a proxy its localized clusters depend on, as a cache key: its locality, and the values
 * of the labels some failoverPriority names.
 */
export function localityKey(policies: Record<string, LocalityLbPolicy>, proxy: LocalityProxy): string {
  const names = new Set<string>();
  let anyFp = false;
  for (const p of Object.values(policies))
    for (const s of p.failoverPriority ?? []) {
      anyFp = true;
      names.add(s.split('=')[0]!);
    }
  const values = [...names].sort().map((n) => proxy.labels[n] ?? null);
  return JSON.stringify([proxy.locality ?? '', anyFp && Object.keys(proxy.labels).length > 0, values]);
}
