/**
 * ServiceEntry `resolution` → the proxy's cluster type (Istio's cluster_builder: DNS →
 * STRICT_DNS, DNS_ROUND_ROBIN → LOGICAL_DNS, NONE → ORIGINAL_DST, STATIC → the endpoints as
 * given), and the endpoints a DNS entry without endpoints resolves: its host itself (Istio
 * builds one cluster per host, whose one endpoint is the host name at the service port).
 */
import type { ServiceEntry, ServiceEntrySpec, WorkloadEntrySpec } from '../api/serviceentry.js';
import type { WorkloadEntry } from '../api/workloadentry.js';
import type { ClusterType } from '../proxyconfig/types.js';

export type Resolution = NonNullable<ServiceEntrySpec['resolution']>;

/** What the registry keeps of a ServiceEntry's resolution (absent: a Kubernetes Service, endpoints as given). */
export interface ResolutionFields {
  resolution?: Resolution;
  endpoints: { address: string }[];
  /** The entry selects its endpoints (workloadSelector): never ORIGINAL_DST. */
  selected?: boolean;
}

/**
 * The cluster type of a service's clusters; undefined = STATIC (the default, left out of the
 * config). NONE with endpoints is invalid in Istio ("no endpoints should be provided for
 * resolution type none"): if such an entry gets through anyway, its endpoints are used as given.
 * DYNAMIC_DNS (Envoy's dynamic forward proxy, resolving each request's Host) is treated as NONE:
 * in a sidecar the original destination is the address the app resolved the same Host to.
 */
export function clusterTypeFor(svc: ResolutionFields): ClusterType | undefined {
  switch (svc.resolution) {
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    case 'NONE':
    case 'DYNAMIC_DNS':
      return svc.endpoints.length === 0 && svc.selected !== true ? 'ORIGINAL_DST' : undefined;
    default:
      return undefined;
  }
}

/**
 * Is the service's destination a name resolved elsewhere than in the workload (DNS,
 * DNS_ROUND_ROBIN; DYNAMIC_DNS resolves per request in Istio)? Without addresses, such an entry
 * is reached by TLS naming its host on the port's catch-all, not by an address.
 */
export function resolvedByName(svc: Pick<ResolutionFields, 'resolution'>): boolean {
  return svc.resolution === 'DNS' || svc.resolution === 'DNS_ROUND_ROBIN' || svc.resolution === 'DYNAMIC_DNS';
}

/**
 * The endpoints of one host of an entry: DNS / DNS_ROUND_ROBIN without endpoints (and without a
 * workloadSelector) resolve the host itself; a wildcard host has nothing to resolve (Istio's
 * validation rejects it; such a host gets no endpoint, 503 UH). Otherwise the listed endpoints.
 */
export function endpointsForHost<E extends { address: string; labels: Record<string, string> }>(
  spec: Pick<ServiceEntrySpec, 'resolution' | 'workloadSelector'>,
  host: string,
  listed: E[],
): (E | { address: string; labels: Record<string, string> })[] {
  const dns = spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN';
  if (!dns || listed.length > 0 || spec.workloadSelector !== undefined) return listed;
  return host.includes('*') ? [] : [{ address: host, labels: {} }];
}

/**
 * Whether a proxy in `namespace` sees the entry (Istio's exportTo): `*` every namespace, `.` the
 * entry's own, a name that namespace, `~` none; empty or absent = the mesh default, `*`.
 */
export function exportedTo(
  se: { metadata: { namespace?: string }; spec: Pick<ServiceEntrySpec, 'exportTo'> },
  namespace: string,
): boolean {
  const to = se.spec.exportTo ?? [];
  if (to.length === 0) return true;
  const own = se.metadata.namespace ?? 'default';
  return to.some((e) => e === '*' || e === namespace || (e === '.' && own === namespace));
}

/** The entries a proxy in `namespace` sees; all of them when the namespace is unknown (standalone). */
export function visibleEntries<
  T extends { metadata: { namespace?: string }; spec: Pick<ServiceEntrySpec, 'exportTo'> },
>(entries: T[], namespace: string | undefined): T[] {
  return namespace === undefined ? entries : entries.filter((se) => exportedTo(se, namespace));
}

/**
 * What distinguishes the service-entry view of one namespace from another's: the entries it
 * does not see ('' when it sees them all), so namespaces with the same view share a translation.
 */
export function hiddenEntriesKey(
  entries: { metadata: { namespace?: string; name?: string }; spec: Pick<ServiceEntrySpec, 'exportTo'> }[],
  namespace: string,
): string {
  const hidden: string[] = [];
  for (const se of entries)
    if (!exportedTo(se, namespace))
      hidden.push(`${se.metadata.namespace ?? 'default'}/${se.metadata.name ?? ''}`);
  return hidden.join('\n');
}

/** A pod as a workloadSelector sees it (weftd's PodInfo). */
export interface SelectablePod {
  namespace: string;
  labels: Record<string, string>;
  ip?: string;
  serviceAccount?: string;
}

const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * Entries with a workloadSelector get as endpoints the WorkloadEntries and pods of their own
 * namespace whose labels match (Istio's serviceentry controller): a WorkloadEntry brings its
 * address, port mapping, labels, weight and service account; a pod its IP, labels and service
 * account (pods without an IP yet are skipped). An empty selector selects nothing, as
 * Kubernetes' "no selector" does for a Service. Entries without a selector are returned as is.
 */
export function withSelectedEndpoints<T extends ServiceEntry>(
  entries: T[],
  workloadEntries: readonly WorkloadEntry[],
  pods: readonly SelectablePod[],
): T[] {
  if (!entries.some((se) => se.spec.workloadSelector)) return entries;
  return entries.map((se) => {
    const selector = se.spec.workloadSelector?.labels;
    if (selector === undefined) return se;
    const ns = se.metadata.namespace ?? 'default';
    const endpoints: WorkloadEntrySpec[] = [];
    if (Object.keys(selector).length > 0) {
      for (const we of workloadEntries) {
        if ((we.metadata.namespace ?? 'default') !== ns || !we.spec.address) continue;
        const labels = { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) };
        if (selects(selector, labels)) endpoints.push({ ...we.spec, labels });
      }
      for (const p of pods) {
        if (p.namespace !== ns || !p.ip || !selects(selector, p.labels)) continue;
        endpoints.push({
          address: p.ip,
          labels: p.labels,
          ...(p.serviceAccount ? { serviceAccount: p.serviceAccount } : {}),
        });
      }
    }
    return { ...se, spec: { ...se.spec, endpoints } };
  });
}
