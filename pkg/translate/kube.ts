/**
 * Kubernetes Services and their EndpointSlices → the translator's `ServiceRecord`s, the way
 * istiod's Kubernetes registry sees them: host `name.namespace.svc.<suffix>`, the cluster IPs as
 * extra authorities, each port's protocol from `appProtocol` first and then the port name
 * (`http-web`, `grpc`, `tcp-db`...; reference §2, Istio "protocol selection"), and only the
 * endpoints that are ready, each carrying its pod's labels so DestinationRule subsets select them.
 *
 * Pure functions over plain objects (no client types): the control plane feeds them from its
 * informers, tests from tables.
 */
import type { ServiceRecord } from './index.js';
import { localityOf } from './locality.js';
import { exportToAnnotation } from './scope.js';

export interface KubeServicePort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  /** A number, or the name of a container port (resolved through the EndpointSlice's ports). */
  targetPort?: number | string;
}

export interface KubeService {
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    type?: string;
    selector?: Record<string, string>;
    clusterIP?: string;
    clusterIPs?: string[];
    ports?: KubeServicePort[];
    externalName?: string;
  };
}

export interface KubeEndpointSlice {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  addressType?: string;
  endpoints?: {
    addresses?: string[];
    conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
    targetRef?: { kind?: string; name?: string; namespace?: string };
    nodeName?: string;
    zone?: string;
  }[];
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
}

export interface KubePod {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { serviceAccountName?: string; nodeName?: string };
}

/** The label EndpointSlices carry to name their Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** Istio's names for protocols (protocol selection: appProtocol, then the port-name prefix). */
const PROTOCOLS: Record<string, string> = {
  http: 'HTTP',
  http2: 'HTTP2',
  http_proxy: 'HTTP_PROXY',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  h2c: 'HTTP2',
  tcp: 'TCP',
  tls: 'TLS',
  mongo: 'MONGO',
  mysql: 'MYSQL',
  redis: 'REDIS',
  udp: 'UDP',
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/**
 * The protocol of a Service port. `appProtocol` wins; else the name before the first `-`
 * (`http-web` → HTTP, `grpc` → GRPC); a UDP/SCTP port is never HTTP. Anything else is
 * unknown to Istio (it would sniff); weft's outbound listener is HTTP, so unknown is HTTP too.
 */
export function portProtocol(p: Pick<KubeServicePort, 'name' | 'protocol' | 'appProtocol'>): string {
  return declaredProtocol(p) ?? 'HTTP';
}

/** The protocol a Service port declares (as portProtocol), or undefined when it declares none. */
export function declaredProtocol(
  p: Pick<KubeServicePort, 'name' | 'protocol' | 'appProtocol'>,
): string | undefined {
  const l4 = (p.protocol ?? 'TCP').toUpperCase();
  if (l4 === 'UDP' || l4 === 'SCTP') return l4;
  const fromApp = p.appProtocol ? PROTOCOLS[p.appProtocol.toLowerCase()] : undefined;
  if (fromApp) return fromApp;
  const prefix = (p.name ?? '').toLowerCase().split('-')[0] ?? '';
  // `grpc-web` is a name of its own, not `grpc` + suffix
  if ((p.name ?? '').toLowerCase().startsWith('grpc-web')) return 'GRPC-WEB';
  return PROTOCOLS[prefix];
}

function clusterAddresses(svc: KubeService): string[] {
  const ips = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []);
  return ips.filter((ip) => ip !== '' && ip !== 'None');
}

/** Ready per EndpointSlice semantics: an absent `ready` condition means ready. */
function isReady(e: NonNullable<KubeEndpointSlice['endpoints']>[number]): boolean {
  return e.conditions?.ready !== false;
}

function slicePorts(slice: KubeEndpointSlice): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of slice.ports ?? []) if (typeof p.port === 'number') out[p.name ?? ''] = p.port;
  return out;
}

/** Records for the Services of the cluster; ExternalName and port-less Services are skipped. */
export function servicesFromKube(
  services: KubeService[],
  slices: KubeEndpointSlice[],
  pods: KubePod[],
  domainSuffix = 'cluster.local',
  /** Node name → its labels (the topology ones suffice): where endpoints' localities come from. */
  nodeLabels: ReadonlyMap<string, Record<string, string>> = new Map(),
): ServiceRecord[] {
  const podLabels = new Map<string, PodFacts>();
  for (const p of pods)
    podLabels.set(`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`, {
      labels: p.metadata.labels ?? {},
      serviceAccount: p.spec?.serviceAccountName ?? 'default',
      ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}),
    });
  const slicesBySvc = new Map<string, KubeEndpointSlice[]>();
  for (const s of slices) {
    const svcName = s.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svcName || s.addressType === 'FQDN') continue;
    const key = `${s.metadata.namespace ?? 'default'}/${svcName}`;
    slicesBySvc.set(key, [...(slicesBySvc.get(key) ?? []), s]);
  }
  const out: ServiceRecord[] = [];
  for (const svc of services) {
    if (svc.spec?.type === 'ExternalName' || (svc.spec?.ports ?? []).length === 0) continue;
    const ns = svc.metadata.namespace ?? 'default';
    out.push({
      host: `${svc.metadata.name}.${ns}.svc.${domainSuffix}`,
      namespace: ns,
      addresses: clusterAddresses(svc),
      ports: (svc.spec?.ports ?? []).map((p) => ({
        number: p.port,
        name: p.name ?? '',
        protocol: portProtocol(p),
        ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
      })),
      endpoints: endpointsOf(slicesBySvc.get(`${ns}/${svc.metadata.name}`) ?? [], ns, podLabels, nodeLabels),
      ...exportToOf(svc),
    });
  }
  return out.sort((a, b) => a.host.localeCompare(b.host));
}

/** The Service's `networking.istio.io/exportTo` annotation (scope.ts), when it has one. */
function exportToOf(svc: KubeService): { exportTo?: string[] } {
  const exportTo = exportToAnnotation(svc.metadata.annotations);
  return exportTo ? { exportTo } : {};
}

/** What an endpoint takes from its pod: labels (subsets, auto-mTLS) and service account (expected SPIFFE ID). */
interface PodFacts {
  labels: Record<string, string>;
  serviceAccount: string;
  nodeName?: string;
}

function endpointsOf(
  slices: KubeEndpointSlice[],
  ns: string,
  podLabels: Map<string, PodFacts>,
  nodeLabels: ReadonlyMap<string, Record<string, string>>,
): ServiceRecord['endpoints'] {
  const out: ServiceRecord['endpoints'] = [];
  const seen = new Set<string>();
  for (const slice of [...slices].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const ports = slicePorts(slice);
    for (const e of slice.endpoints ?? []) {
      if (!isReady(e)) continue;
      const ref = e.targetRef?.kind === 'Pod' && e.targetRef.name ? e.targetRef : undefined;
      const pod = ref ? podLabels.get(`${ref.namespace ?? ns}/${ref.name}`) : undefined;
      const labels = pod?.labels ?? {};
      const node = e.nodeName ?? pod?.nodeName;
      const locality = localityOf(labels, node === undefined ? undefined : nodeLabels.get(node));
      for (const address of e.addresses ?? []) {
        // one address can sit in two slices while the controller moves it; keep the first
        if (seen.has(address)) continue;
        seen.add(address);
        out.push({
          address,
          ports,
          labels,
          ...(pod ? { serviceAccount: pod.serviceAccount } : {}),
          ...(locality !== undefined ? { locality } : {}),
        });
      }
    }
  }
  return out;
}

/**
 * For a gateway pod: each port of the Services in its namespace whose selector matches its labels
 * → the numeric target ports behind it (Istio's resolvePorts input). A named targetPort cannot be
 * resolved without the pod's container ports and is skipped (the server port is used as is).
 */
export function gatewayTargetPorts(
  services: KubeService[],
  pod: { namespace: string; labels: Record<string, string> },
): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  for (const svc of services) {
    const selector = svc.spec?.selector ?? {};
    if ((svc.metadata.namespace ?? 'default') !== pod.namespace || Object.keys(selector).length === 0)
      continue;
    if (!Object.entries(selector).every(([k, v]) => pod.labels[k] === v)) continue;
    for (const p of svc.spec?.ports ?? []) {
      const target = p.targetPort === undefined ? p.port : p.targetPort;
      if (typeof target !== 'number') continue;
      const list = (out[p.port] ??= []);
      if (!list.includes(target)) list.push(target);
    }
  }
  for (const list of Object.values(out)) list.sort((a, b) => a - b);
  return out;
}
