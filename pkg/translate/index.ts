/**
 * Translator: Istio VirtualService / DestinationRule / ServiceEntry objects plus a service
 * registry → the proxy's config model (pkg/proxyconfig). Shared by standalone `weft-proxy run`
 * and the control plane, so both produce byte-identical config for the same input.
 *
 * Semantics (reference §2): one virtual host per service port, answering to the FQDN, short
 * name, `name.namespace` and each with `:port`; without a VirtualService a host gets Istio's
 * implicit default route (one destination, default retries); with one, its `http[]` rules in
 * order and no implicit catch-all (404 NR). Destinations become Envoy-style clusters
 * `outbound|port|subset|host`; a subset named by a route but defined in no DestinationRule has
 * no cluster (503 NC at run time), one selecting no endpoint has an empty cluster (503 UH).
 * Inputs are expected to be validated (pkg/validation); the translator still never throws on
 * odd input, it skips and reports in `warnings`.
 */
import { createHash } from 'node:crypto';
import { spiffeId } from '../certs/spiffe.js';
import type { PeerMode } from './peerauth.js';
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  Destination,
  DestinationRule,
  Gateway,
  HTTPMatchRequest,
  HTTPRoute,
  HTTPRetry,
  LoadBalancerSettings,
  OutlierDetection as IstioOutlier,
  Percent,
  ServiceEntry,
  StringMatch as IstioStringMatch,
  TrafficPolicy,
  VirtualService,
} from '../api/index.js';
import {
  DEFAULT_RETRY_ON,
  isDefaultRetryPolicy,
  PROXY_CONFIG_API_VERSION,
  TLS_MODE_LABEL,
  VERSION_LABEL,
  type UpstreamTls,
  type Cluster,
  type ConnectionPool,
  type Endpoint,
  type HeaderMatch,
  type Listener,
  type LoadBalancer,
  type Mirror,
  type OutlierDetection,
  type OutboundTrafficPolicy,
  type OutboundTcpService,
  type ProxyConfig,
  type RetryPolicy,
  type Route,
  type RouteAction,
  type RouteMatch,
  type StringMatch,
  type VirtualHost,
  type GatewayTlsServer,
  type ServiceDomains,
} from '../proxyconfig/types.js';
import { expandServiceDomains, hostPortOf, shortNamespaceOf } from '../proxyconfig/domains.js';
import { parseDurationMs } from './duration.js';
import { isIpOrCidr } from '../proxyconfig/validate.js';
import { localityLbPolicy, type LocalityLbPolicy } from './locality.js';
import {
  clusterTypeFor,
  endpointsForHost,
  resolvedByName,
  visibleEntries,
  withSelectedEndpoints,
  type Resolution,
  type SelectablePod,
} from './serviceentry.js';
import type { WorkloadEntry } from '../api/workloadentry.js';
import { GRPC_CODE_NAMES } from '../api/virtualservice.js';
import {
  GATEWAY_HTTP_PROTOCOLS,
  addTlsServer,
  gatewayTlsServer,
  bindsTo,
  boundGateways,
  gatewaySelects,
  ruleForGateway,
  ruleForMesh,
  serverHostsFor,
} from './gateway.js';
import { ruleForSource, type ProxyIdentity } from './sourcematch.js';
import {
  GatewayL4Ports,
  L4_TCP_PROTOCOLS,
  L4_TLS_PROTOCOLS,
  gatewayL4Kind,
  outboundTcpService,
  sniCatchAll,
  type L4Context,
  type L4SniService,
} from './tcproutes.js';
import { DestinationRuleIndex, byCreation, meshVirtualServicesByHost } from './precedence.js';
import {
  exportedTo,
  ruleExportedTo,
  scopeImports,
  scopeImportsVirtualService,
  sidecarRef,
  virtualServiceDestinations,
  visibleIn,
  type ProxyScope,
} from './scope.js';

/** A service as the registry knows it (from ServiceEntry here; from Kubernetes Services later). */
export interface ServiceRecord {
  /** Fully qualified host, e.g. `reviews.default.svc.cluster.local` or `api.example.com`. */
  host: string;
  namespace: string;
  /** Cluster IPs / ServiceEntry addresses: also accepted as authorities. */
  addresses: string[];
  ports: { number: number; name: string; protocol: string; targetPort?: number }[];
  endpoints: {
    address: string;
    ports?: Record<string, number>;
    labels: Record<string, string>;
    weight?: number;
    /** The pod's (or WorkloadEntry's) service account: its SPIFFE ID is what mTLS expects. */
    serviceAccount?: string;
    /** `region/zone/subzone` (pkg/translate/locality.ts). */
    locality?: string;
  }[];
  /** ServiceEntry resolution → cluster type (serviceentry.ts); absent: endpoints as given. */
  resolution?: Resolution;
  /** The endpoints come from a workloadSelector. */
  selected?: boolean;
  /** Namespaces that see it (ServiceEntry exportTo, a Service's exportTo annotation); absent: `*`. */
  exportTo?: string[];
}

export interface TranslateInput {
  virtualServices?: VirtualService[];
  destinationRules?: DestinationRule[];
  serviceEntries?: ServiceEntry[];
  /** The namespace of the proxy: ServiceEntries not exported to it are left out (absent: all). */
  proxyNamespace?: string;
  /** WorkloadEntries and pods a ServiceEntry workloadSelector may select as endpoints. */
  workloadEntries?: WorkloadEntry[];
  workloadPods?: SelectablePod[];
  /** Extra services (the control plane passes Kubernetes Services here). */
  services?: ServiceRecord[];
  listener?: { name?: string; address?: string; port?: number };
  telemetry?: ProxyConfig['telemetry'];
  /** The mesh's path normalization; absent = the proxy's default (BASE). */
  pathNormalization?: ProxyConfig['pathNormalization'];
  /** The mesh's `defaultConfig.proxyHeaders`; absent or empty = every header on (Istio's default). */
  proxyHeaders?: ProxyConfig['proxyHeaders'];
  domainSuffix?: string;
  /** SPIFFE trust domain of the expected peer identities (default cluster.local). */
  trustDomain?: string;
  /** Istio's enableAutoMtls: ISTIO_MUTUAL to endpoints that run a sidecar when no DR sets tls (default true). */
  autoMtls?: boolean;
  /**
   * The mTLS mode a meshed endpoint's inbound side enforces on a workload port (its
   * PeerAuthentications): auto-mTLS sends plaintext to a DISABLE port, as Istio's clients do,
   * instead of TLS the server would read as garbage. Absent: every sidecar terminates mTLS.
   */
  peerModeOf?: (namespace: string, labels: Record<string, string>, port: number) => PeerMode;
  /**
   * Mirrored requests get `-shadow` appended to their Host: istiod's DISABLE_SHADOW_HOST_SUFFIX
   * set to false. Default false: the original Host (Istio ≥ 1.28).
   */
  shadowHostSuffix?: boolean;
  /**
   * The client the config is for (its namespace and workload labels): match blocks with
   * sourceLabels/sourceNamespace that cannot match it are removed, and the DestinationRule of
   * its own namespace comes first (precedence.ts). Absent: a proxy with no labels and no
   * namespace. A gateway's is its `pod`.
   */
  proxy?: ProxyIdentity;
  /** The mesh's root namespace: its DestinationRules apply when neither the client's nor the service's namespace has one (default weft-system). */
  rootNamespace?: string;
  /**
   * What the proxy's Sidecar lets it see and do (scope.ts proxyScope): only the hosts its egress
   * imports, and REGISTRY_ONLY's list of known destinations. Absent: every exported host, ALLOW_ANY.
   */
  scope?: ProxyScope;
}

/** A gateway pod: the Gateways whose selector matches it become its listeners. */
export interface GatewayTranslateInput extends Omit<TranslateInput, 'listener'> {
  gateways: Gateway[];
  pod: { namespace: string; labels: Record<string, string> };
  /** Istio's PILOT_SCOPE_GATEWAY_TO_NAMESPACE: only Gateways in the pod's namespace (default false). */
  scopeGatewayToNamespace?: boolean;
  /**
   * Ports of the Services that select the pod: service port → target ports (`gatewayTargetPorts`).
   * A server port found here is listened on at the target port; others at the port itself.
   */
  servicePorts?: Record<number, number[]>;
}

export interface TranslateResult {
  config: ProxyConfig;
  warnings: string[];
  /** Clusters with locality load balancing, by name: weftd resolves them per proxy (locality.ts). */
  localityLb?: Record<string, LocalityLbPolicy>;
  /**
   * A scoped translation (a Sidecar's or on-demand egress) only: what it read of the registry.
   * `hosts`: every host it read or would have read had it existed (the services its scope kept,
   * the hosts its VirtualServices route to, and those VirtualServices' own hosts);
   * `serviceNamespaces`: the namespaces of the services it kept (their endpoints' mTLS modes come
   * from those namespaces' PeerAuthentications). weftd reuses the translation in a later registry
   * generation while none of these changed (controlplane/carryover.ts).
   */
  scopeReads?: { hosts: string[]; serviceNamespaces: string[] };
}

const DEFAULT_SUFFIX = 'svc.cluster.local';
/** Ports the proxy binds for itself (admin, capture, health, metrics): never a Gateway listener. */
const PROXY_OWN_PORTS = new Set([15000, 15001, 15006, 15021, 15090]);
const DEFAULT_OUTBOUND_PORT = 15001;

/** `reviews` in namespace `default` → `reviews.default.svc.cluster.local`; dotted hosts unchanged. */
export function fqdn(host: string, namespace: string, suffix = DEFAULT_SUFFIX): string {
  const h = host.toLowerCase();
  if (h.includes('.') || h.includes('*')) return h;
  return `${h}.${namespace}.${suffix}`;
}

export function clusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/** Registry from ServiceEntry objects: one ServiceRecord per host (resolution STATIC/NONE/DNS). */
export function servicesFromServiceEntries(ses: ServiceEntry[], suffix = DEFAULT_SUFFIX): ServiceRecord[] {
  const out: ServiceRecord[] = [];
  for (const se of ses) {
    const ns = nsOf(se);
    const ports = (se.spec.ports ?? []).map((p) => ({
      number: p.number,
      name: p.name,
      protocol: (p.protocol ?? 'HTTP').toUpperCase(),
      ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
    }));
    const endpoints = (se.spec.endpoints ?? [])
      .filter((e) => typeof e.address === 'string' && e.address !== '')
      .map((e) => ({
        address: e.address!,
        labels: e.labels ?? {},
        ...(e.ports ? { ports: e.ports } : {}),
        ...(e.weight !== undefined ? { weight: e.weight } : {}),
        ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
        ...(e.locality ? { locality: e.locality } : {}),
      }));
    for (const host of se.spec.hosts ?? []) {
      const h = fqdn(host, ns, suffix);
      out.push({
        host: h,
        namespace: ns,
        addresses: se.spec.addresses ?? [],
        ports,
        endpoints: endpointsForHost(se.spec, h, endpoints),
        resolution: se.spec.resolution ?? 'NONE',
        ...(se.spec.workloadSelector ? { selected: true } : {}),
        ...(se.spec.exportTo && se.spec.exportTo.length > 0 ? { exportTo: se.spec.exportTo } : {}),
      });
    }
  }
  return out;
}

/**
 * The endpoint labels a proxy reads (issue #19: a pod's labels were a fifth of an on-demand
 * sidecar's config, and most are never read): the auto-mTLS mark (proxy/upstream/tls.ts),
 * `version` (the destination_version of its metrics, proxy/compile destLabels) and the labels
 * the cluster's failoverPriority compares (weftd's localizeClusters, after translation). Subset
 * selection reads the full labels before this (ensureCluster); the topology labels are never
 * read (failoverPriority takes them from the endpoint's locality).
 */
function proxyReadLabelKeys(loc: LocalityLbPolicy | undefined): ReadonlySet<string> {
  const keys = new Set([TLS_MODE_LABEL, VERSION_LABEL]);
  for (const s of loc?.failoverPriority ?? []) keys.add(s.split('=')[0]!);
  return keys;
}

/** `labels` cut to `keys`; undefined when none is left (the proxy reads absent as `{}`). */
function readLabels(
  labels: Record<string, string>,
  keys: ReadonlySet<string>,
): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(labels)) if (keys.has(k)) (out ??= {})[k] = v;
  return out;
}

/**
 * What a service port answers to (its host and addresses; for a Kubernetes-style host its short
 * name, `name.ns` and `name.ns.svc`; each with the port, and without it on the default HTTP port),
 * in the short form the proxy spells out (pkg/proxyconfig/domains.ts, issue #19). A host the short
 * form cannot say exactly gets the list spelled out.
 */
function domainsFor(
  svc: ServiceRecord,
  port: number,
  bare: boolean,
  suffix: string,
): Pick<VirtualHost, 'domains' | 'serviceDomains'> {
  const sd: ServiceDomains = {};
  if (svc.addresses.length > 0) sd.addresses = [...svc.addresses];
  const k8sSuffix = `.${svc.namespace}.${suffix}`;
  if (svc.host.endsWith(k8sSuffix)) sd.short = svc.host.slice(0, -k8sSuffix.length);
  if (bare) sd.bare = true;
  const exact =
    hostPortOf(`${svc.host}:${port}`)?.host === svc.host &&
    (sd.short === undefined || shortNamespaceOf(svc.host, sd.short) === svc.namespace);
  return exact
    ? { serviceDomains: sd }
    : { domains: expandServiceDomains(svc.host, port, sd, svc.namespace) };
}

function percent(p: Percent | undefined, deprecatedInt: number | undefined, absent: number): number {
  if (p !== undefined) return p.value ?? 0;
  if (deprecatedInt !== undefined) return deprecatedInt;
  return absent;
}

class Translator {
  readonly warnings: string[] = [];
  readonly clusters = new Map<string, Cluster>();
  private readonly localityLb: Record<string, LocalityLbPolicy> = {};
  private readonly services = new Map<string, ServiceRecord>();
  private readonly drIndex: DestinationRuleIndex;
  private readonly drByHost = new Map<string, DestinationRule | undefined>();
  private readonly suffix: string;
  /** Whose config this is: a gateway's pod, a sidecar's workload (sourcematch.ts). */
  private readonly proxy: ProxyIdentity;
  /** The VirtualServices exported to the proxy's namespace (and imported by its Sidecar). */
  private virtualServices: VirtualService[];
  /** The sidecar's outbound TCP/TLS services (build() only). */
  private outboundTcp: OutboundTcpService[] = [];
  /** What applyScope kept and looked for (TranslateResult.scopeReads); absent: unscoped. */
  scopeReads: TranslateResult['scopeReads'];

  constructor(private readonly input: TranslateInput) {
    this.suffix = input.domainSuffix ?? DEFAULT_SUFFIX;
    const svcs = [
      ...servicesFromServiceEntries(
        withSelectedEndpoints(
          visibleEntries(input.serviceEntries ?? [], input.proxyNamespace),
          input.workloadEntries ?? [],
          input.workloadPods ?? [],
        ),
        this.suffix,
      ),
      ...(input.services ?? []),
    ];
    this.proxy = ('pod' in input ? (input as GatewayTranslateInput).pod : input.proxy) ?? { labels: {} };
    // exportTo: what the proxy's namespace is shown (unknown namespace, standalone: everything)
    const viewer = this.proxy.namespace ?? input.proxyNamespace;
    this.virtualServices = visibleIn(input.virtualServices ?? [], viewer);
    for (const s of svcs) {
      if (viewer !== undefined && !exportedTo(s.exportTo, s.namespace, viewer)) continue;
      if (this.services.has(s.host))
        this.warnings.push(`service ${s.host} is defined more than once; the first definition wins`);
      else this.services.set(s.host, s);
    }
    if (input.scope) this.applyScope(input.scope);
    const rules = input.destinationRules ?? [];
    this.drIndex = new DestinationRuleIndex(
      viewer === undefined ? rules : rules.filter((dr) => ruleExportedTo(dr, viewer)),
      (h, ns) => fqdn(h, ns, this.suffix),
      input.rootNamespace,
    );
    this.warnings.push(...this.drIndex.warnings);
  }

  /**
   * The Sidecar's egress (scope.ts): the services and VirtualServices it imports, plus the
   * services those VirtualServices route to, as Istio adds them; the rest is left out.
   */
  private applyScope(scope: ProxyScope): void {
    for (const h of scope.invalid)
      this.warnings.push(
        `Sidecar ${scope.sidecar ? sidecarRef(scope.sidecar.sidecar) : ''}: egress host ${JSON.stringify(h)} is not namespace/dnsName; skipped`,
      );
    if (scope.egress === undefined) return;
    const looked = new Set<string>();
    this.virtualServices = this.virtualServices.filter((vs) => {
      const hosts = (vs.spec.hosts ?? []).map((h) => fqdn(h, nsOf(vs), this.suffix));
      if (!scopeImportsVirtualService(scope, nsOf(vs), hosts)) return false;
      for (const h of hosts) looked.add(h);
      return true;
    });
    const wanted = new Set<string>();
    for (const vs of this.virtualServices)
      for (const d of virtualServiceDestinations(vs)) wanted.add(fqdn(d, nsOf(vs), this.suffix));
    for (const [host, svc] of this.services)
      if (!wanted.has(host) && !scopeImports(scope, svc.namespace, host)) this.services.delete(host);
    for (const h of wanted) looked.add(h);
    for (const h of this.services.keys()) looked.add(h);
    const namespaces = new Set([...this.services.values()].map((svc) => svc.namespace));
    this.scopeReads = { hosts: [...looked], serviceNamespaces: [...namespaces] };
  }

  /** The DestinationRule this proxy uses for a registry host (precedence.ts). */
  private drFor(host: string): DestinationRule | undefined {
    if (!this.drByHost.has(host)) {
      const svc = this.services.get(host);
      const hit = svc && this.drIndex.lookup(host, this.proxy.namespace, svc.namespace);
      this.drByHost.set(host, hit?.rule);
    }
    return this.drByHost.get(host);
  }

  /** DR policy for a port: port-level settings replace the top level whole (dr.proto:240-246). */
  private policyFor(tp: TrafficPolicy | undefined, port: number): TrafficPolicy | undefined {
    const pl = tp?.portLevelSettings?.find((p) => p.port?.number === port);
    return pl ? { ...pl } : tp;
  }

  /** Subset policy overrides the destination-level policy field by field. */
  private mergedPolicy(host: string, port: number, subset: string | undefined): TrafficPolicy | undefined {
    const dr = this.drFor(host);
    const base = this.policyFor(dr?.spec.trafficPolicy, port);
    if (subset === undefined) return base;
    const sub = dr?.spec.subsets?.find((s) => s.name === subset);
    const sp = this.policyFor(sub?.trafficPolicy, port);
    return sp ? { ...base, ...sp } : base;
  }

  /** Creates (once) the cluster for host/port/subset; returns its name, or the name of a missing one. */
  ensureCluster(host: string, port: number, subset: string | undefined): string {
    const name = clusterName(port, subset, host);
    if (this.clusters.has(name)) return name;
    const svc = this.services.get(host);
    if (!svc) return name; // unknown host: no cluster → 503 NC, explained at run time
    const sp = svc.ports.find((p) => p.number === port);
    let selector: Record<string, string> = {};
    if (subset !== undefined) {
      const def = this.drFor(host)?.spec.subsets?.find((s) => s.name === subset);
      if (!def) return name; // subset defined in no DestinationRule → NC
      selector = def.labels ?? {};
    }
    const selected = svc.endpoints.filter((e) =>
      Object.entries(selector).every(([k, v]) => e.labels[k] === v),
    );
    const policy = this.mergedPolicy(host, port, subset);
    const od = convertOutlier(policy?.outlierDetection);
    const loc = localityLbPolicy(policy?.loadBalancer?.localityLbSetting, od !== undefined);
    const readKeys = proxyReadLabelKeys(loc);
    const endpoints: Endpoint[] = selected.map((e) => {
      const epPort = (sp && e.ports?.[sp.name]) ?? sp?.targetPort ?? port;
      const labels = readLabels(this.autoMtlsLabels(policy?.tls, svc.namespace, e.labels, epPort), readKeys);
      return {
        address: e.address,
        port: epPort,
        ...(labels !== undefined ? { labels } : {}),
        ...(e.weight !== undefined ? { weight: e.weight } : {}),
        ...(e.locality ? { locality: e.locality } : {}),
      };
    });
    const type = clusterTypeFor(svc);
    const cluster: Cluster = type
      ? { name, service: host, port, type, endpoints: type === 'ORIGINAL_DST' ? [] : endpoints }
      : { name, service: host, port, endpoints };
    if (subset !== undefined) cluster.subset = subset;
    const lb = convertLb(policy?.loadBalancer);
    if (lb) cluster.loadBalancer = lb;
    const cp = convertPool(policy?.connectionPool);
    if (cp) cluster.connectionPool = cp;
    // useClientProtocol: the client's protocol, whatever the port or h2UpgradePolicy say (as Istio)
    if (policy?.connectionPool?.http?.useClientProtocol === true) cluster.useClientProtocol = true;
    else if (speaksH2(sp?.protocol, policy?.connectionPool?.http?.h2UpgradePolicy)) cluster.http2 = true;
    if (od) cluster.outlierDetection = od;
    if (loc && endpoints.length > 0) this.localityLb[name] = loc;
    const tls = this.upstreamTls(policy?.tls, svc, port, subset, selected);
    // auto-mTLS with every meshed endpoint's port DISABLE: nothing to originate
    if (tls && !(tls.auto === true && !endpoints.some((e) => e.labels?.[TLS_MODE_LABEL] === 'istio')))
      cluster.tls = tls;
    this.clusters.set(name, cluster);
    return name;
  }

  /**
   * An endpoint's labels as auto-mTLS reads them: a meshed pod whose PeerAuthentication turns mTLS
   * off on this port is marked `security.istio.io/tlsMode: disabled` (Istio's own value), so the
   * client sends it plaintext. Untouched when a DestinationRule sets tls (the user decided).
   */
  private autoMtlsLabels(
    tls: ClientTLSSettings | undefined,
    namespace: string,
    labels: Record<string, string>,
    port: number,
  ): Record<string, string> {
    const modeOf = this.input.peerModeOf;
    if (tls !== undefined || modeOf === undefined || labels[TLS_MODE_LABEL] !== 'istio') return labels;
    return modeOf(namespace, labels, port) === 'DISABLE'
      ? { ...labels, [TLS_MODE_LABEL]: 'disabled' }
      : labels;
  }

  /**
   * The cluster's client TLS (Istio's buildUpstreamTLSSettings): the DR's `tls` when it has one
   * (`{}` or DISABLE = plaintext), else auto-mTLS: ISTIO_MUTUAL to the endpoints whose pod runs a
   * sidecar. ISTIO_MUTUAL expects the SPIFFE IDs of the endpoints' service accounts.
   */
  private upstreamTls(
    tls: ClientTLSSettings | undefined,
    svc: ServiceRecord,
    port: number,
    subset: string | undefined,
    endpoints: ServiceRecord['endpoints'],
  ): UpstreamTls | undefined {
    const sni = `outbound_.${port}_.${subset ?? ''}_.${svc.host}`;
    const identities = (eps: ServiceRecord['endpoints']): string[] =>
      [
        ...new Set(
          eps.flatMap((e) => (e.serviceAccount ? this.spiffe(svc.namespace, e.serviceAccount) : [])),
        ),
      ].sort();
    if (tls === undefined) {
      if (this.input.autoMtls === false) return undefined;
      const meshed = endpoints.filter((e) => e.labels[TLS_MODE_LABEL] === 'istio');
      if (meshed.length === 0) return undefined;
      return { mode: 'ISTIO_MUTUAL', auto: true, sni, subjectAltNames: identities(meshed) };
    }
    const mode = tls.mode ?? 'DISABLE';
    if (mode === 'DISABLE') return undefined;
    if (mode === 'ISTIO_MUTUAL')
      return { mode, sni: tls.sni ?? sni, subjectAltNames: tls.subjectAltNames ?? identities(endpoints) };
    const out: UpstreamTls = { mode };
    // TLS origination names the service (an external host) unless the DR says otherwise
    const name = tls.sni ?? (svc.host.includes('*') ? undefined : svc.host);
    if (name !== undefined) out.sni = name;
    if (tls.subjectAltNames && tls.subjectAltNames.length > 0) out.subjectAltNames = [...tls.subjectAltNames];
    for (const k of ['caCertificates', 'clientCertificate', 'privateKey', 'credentialName'] as const) {
      const v = tls[k];
      if (v !== undefined && v !== '') out[k] = v;
    }
    if (tls.insecureSkipVerify === true) out.insecureSkipVerify = true;
    // weftd delivers credentialName to gateways (controlplane/credentials.ts); Istio applies it at
    // sidecars only for a DestinationRule with a workloadSelector, which weft does not support yet
    if (out.credentialName !== undefined && !('gateways' in this.input))
      this.warnings.push(
        `DestinationRule for ${svc.host}: tls.credentialName ${out.credentialName} applies at gateways only; sidecars' connections to it fail (503 UF), never in plaintext`,
      );
    return out;
  }

  /** The SPIFFE ID of a service account, or nothing (with a warning) when it is not a valid name. */
  private spiffe(namespace: string, serviceAccount: string): string[] {
    try {
      return [spiffeId(this.input.trustDomain ?? 'cluster.local', namespace, serviceAccount)];
    } catch (err) {
      this.warnings.push(`service account ${namespace}/${serviceAccount}: ${(err as Error).message}`);
      return [];
    }
  }

  destCluster(d: Destination, ns: string, vhostPort: number): { cluster: string; host: string } {
    const host = fqdn(d.host, ns, this.suffix);
    const svc = this.services.get(host);
    const port = d.port?.number ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.number : vhostPort);
    return { cluster: this.ensureCluster(host, port, d.subset), host };
  }

  /** Istio's implicit route for a service port with no VirtualService. */
  defaultRoute(svc: ServiceRecord, port: number): Route {
    return {
      name: 'default',
      action: {
        type: 'route',
        destinations: [
          { cluster: this.ensureCluster(svc.host, port, undefined), weight: 100, host: svc.host },
        ],
      },
    };
  }

  httpRoute(vs: VirtualService, rule: HTTPRoute, index: number, vhostPort: number): Route | null {
    const ns = nsOf(vs);
    const where = `VirtualService ${ns}/${vs.metadata.name ?? ''} http[${index}]`;
    if (rule.delegate) {
      this.warnings.push(`${where}: delegate is not supported yet; rule skipped`);
      return null;
    }
    const action = this.action(rule, ns, vhostPort, where);
    if (action === null) return null;
    const route: Route = {
      action,
      source: { kind: 'VirtualService', namespace: ns, name: vs.metadata.name ?? '', rule: index },
    };
    if (rule.name !== undefined) route.name = rule.name;
    if (rule.match && rule.match.length > 0) route.match = rule.match.map(convertMatch);
    if (rule.rewrite) {
      route.rewrite = {};
      if (rule.rewrite.uri !== undefined) route.rewrite.uri = rule.rewrite.uri;
      if (rule.rewrite.authority !== undefined) route.rewrite.authority = rule.rewrite.authority;
      const rr = rule.rewrite.uriRegexRewrite;
      if (rr?.match !== undefined) route.rewrite.uriRegex = { match: rr.match, rewrite: rr.rewrite ?? '' };
    }
    if (rule.headers) route.headers = rule.headers;
    if (rule.timeout !== undefined) {
      const t = parseDurationMs(rule.timeout);
      if (t === null) this.warnings.push(`${where}: timeout ${rule.timeout} is not a duration; ignored`);
      else route.timeoutMs = t;
    }
    const retries = convertRetries(rule.retries);
    // the proxy's default when absent: spelling it out costs ~130 bytes on every route
    if (retries && !isDefaultRetryPolicy(retries)) route.retries = retries;
    this.fault(rule, route);
    const mirrors = this.mirrors(rule, ns, vhostPort);
    if (mirrors.length > 0) route.mirrors = mirrors;
    if (rule.corsPolicy) this.warnings.push(`${where}: corsPolicy is not supported yet; ignored`);
    return route;
  }

  private action(rule: HTTPRoute, ns: string, vhostPort: number, where: string): RouteAction | null {
    if (rule.directResponse) {
      const b = rule.directResponse.body;
      return {
        type: 'directResponse',
        status: rule.directResponse.status,
        ...(b?.string !== undefined
          ? { body: b.string }
          : b?.bytes !== undefined
            ? { bodyBase64: b.bytes }
            : {}),
      };
    }
    if (rule.redirect) {
      const r = rule.redirect;
      const redirect: Record<string, unknown> = {};
      for (const k of ['uri', 'authority', 'scheme', 'port', 'derivePort'] as const)
        if (r[k] !== undefined) redirect[k] = r[k];
      if (r.redirectCode !== undefined) redirect.code = r.redirectCode;
      return { type: 'redirect', redirect };
    }
    const dests = rule.route ?? [];
    if (dests.length === 0) {
      this.warnings.push(`${where}: no route, redirect or directResponse; rule skipped`);
      return null;
    }
    return {
      type: 'route',
      destinations: dests.map((d) => {
        const { cluster, host } = this.destCluster(d.destination, ns, vhostPort);
        return {
          cluster,
          host,
          // a lone destination gets 100% whatever its weight; omitted weights among several are 0
          weight: d.weight ?? (dests.length === 1 ? 100 : 0),
          ...(d.headers ? { headers: d.headers } : {}),
        };
      }),
    };
  }

  private fault(rule: HTTPRoute, route: Route): void {
    const f = rule.fault;
    if (!f) return;
    route.fault = {};
    if (f.delay?.fixedDelay !== undefined) {
      route.fault.delay = {
        fixedDelayMs: parseDurationMs(f.delay.fixedDelay) ?? 0,
        percentage: percent(f.delay.percentage, f.delay.percent, 0),
      };
    }
    if (f.abort?.httpStatus !== undefined) {
      route.fault.abort = {
        httpStatus: f.abort.httpStatus,
        percentage: percent(f.abort.percentage, undefined, 0),
      };
    } else if (f.abort?.grpcStatus !== undefined && GRPC_CODE_NAMES.includes(f.abort.grpcStatus)) {
      route.fault.abort = {
        httpStatus: 0,
        grpcStatus: GRPC_CODE_NAMES.indexOf(f.abort.grpcStatus),
        percentage: percent(f.abort.percentage, undefined, 0),
      };
    }
  }

  private mirrors(rule: HTTPRoute, ns: string, vhostPort: number): Mirror[] {
    const out: Mirror[] = [];
    const suffix = this.input.shadowHostSuffix === true ? { shadowHostSuffix: true } : {};
    if (rule.mirror) {
      const { cluster, host } = this.destCluster(rule.mirror, ns, vhostPort);
      // mirrorPercentage absent = 100% (reference §2.6); the deprecated integer still counts
      out.push({
        cluster,
        host,
        percentage: percent(rule.mirrorPercentage, rule.mirrorPercent, 100),
        ...suffix,
      });
    }
    for (const m of rule.mirrors ?? []) {
      const { cluster, host } = this.destCluster(m.destination, ns, vhostPort);
      out.push({ cluster, host, percentage: percent(m.percentage, undefined, 100), ...suffix });
    }
    return out;
  }

  /** The rule as this sidecar sees it: scoped to the mesh, then to this proxy (sourcematch.ts). */
  private meshRule(rule: HTTPRoute): HTTPRoute | null {
    const scoped = ruleForMesh(rule);
    return scoped && ruleForSource(scoped, this.proxy);
  }

  /** The VirtualService's routes as sidecars see them; rule indexes stay the VirtualService's own. */
  private meshRoutes(vs: VirtualService, port: number): Route[] {
    return (vs.spec.http ?? [])
      .map((r, i) => {
        const scoped = this.meshRule(r);
        return scoped ? this.httpRoute(vs, scoped, i, port) : null;
      })
      .filter((r): r is Route => r !== null);
  }

  /** What tcproutes.ts borrows: this proxy, destination clusters, the warnings list. */
  private l4Context(): L4Context {
    return {
      proxy: this.proxy,
      clusterOf: (d, ns, port) => this.destCluster(d, ns, port).cluster,
      warn: (m) => this.warnings.push(m),
    };
  }

  /**
   * The sidecar's declared TCP and TLS service ports (tcproutes.ts outboundTcpService): routed
   * by their VirtualServices' tcp/tls rules, then to the service; never sniffed.
   */
  private outboundTcpServices(): OutboundTcpService[] {
    const ctx = this.l4Context();
    const out: OutboundTcpService[] = [];
    for (const svc of this.services.values())
      for (const p of svc.ports) {
        if (!L4_TCP_PROTOCOLS.has(p.protocol) && !L4_TLS_PROTOCOLS.has(p.protocol)) continue;
        if (!svc.addresses.some(isIpOrCidr)) continue;
        const vss = this.virtualServicesFor(svc.host);
        const cluster = this.ensureCluster(svc.host, p.number, undefined);
        const entry = outboundTcpService(
          ctx,
          { host: svc.host, addresses: svc.addresses, port: p.number, protocol: p.protocol, cluster },
          vss,
        );
        if (entry !== null) out.push(entry);
      }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return [...out, ...this.sniCatchAlls()];
  }

  /** The VirtualServices (visible here) with a host that is `host`. */
  private virtualServicesFor(host: string): VirtualService[] {
    return this.virtualServices.filter((vs) =>
      (vs.spec.hosts ?? []).some((h) => fqdn(h, nsOf(vs), this.suffix) === host),
    );
  }

  /**
   * One catch-all per TLS/HTTPS port of the DNS ServiceEntries without addresses this proxy sees
   * (exportTo, Sidecar egress: `this.services` is already that view): TLS naming one of their
   * hosts goes to the host's cluster, whatever address the workload dialled (tcproutes.ts
   * sniCatchAll). DYNAMIC_DNS (no dynamic forward proxy: an ORIGINAL_DST cluster) is routed the
   * same way, to the address dialled, as before.
   */
  private sniCatchAlls(): OutboundTcpService[] {
    const byPort = new Map<number, L4SniService[]>();
    for (const svc of this.services.values()) {
      if (!resolvedByName(svc) || svc.addresses.some(isIpOrCidr)) continue;
      for (const p of svc.ports) {
        if (!L4_TLS_PROTOCOLS.has(p.protocol)) continue;
        const list = byPort.get(p.number) ?? [];
        const cluster = this.ensureCluster(svc.host, p.number, undefined);
        list.push({ host: svc.host, cluster, vss: this.virtualServicesFor(svc.host) });
        byPort.set(p.number, list);
      }
    }
    return [...byPort.entries()]
      .sort(([a], [b]) => a - b)
      .map(([port, list]) => sniCatchAll(this.l4Context(), port, list))
      .filter((s): s is OutboundTcpService => s !== null);
  }

  build(): TranslateResult {
    // oldest first; a VirtualService with no rule for this proxy does not claim its hosts here
    const { byHost: vsByHost, warnings } = meshVirtualServicesByHost(
      this.virtualServices.filter((vs) => boundGateways(vs).includes('mesh')),
      (vs) => (vs.spec.hosts ?? []).map((h) => fqdn(h, nsOf(vs), this.suffix)),
      (vs) => (vs.spec.http ?? []).some((r) => this.meshRule(r) !== null),
    );
    this.warnings.push(...warnings);
    const vhosts: VirtualHost[] = [];
    for (const svc of this.services.values()) {
      const httpPorts = svc.ports.filter(
        (p) => !['TCP', 'TLS', 'MONGO', 'MYSQL', 'REDIS'].includes(p.protocol),
      );
      const bareDefault = httpPorts.find((p) => p.number === 80) ?? httpPorts[0];
      for (const p of httpPorts) {
        const vs = vsByHost.get(svc.host);
        const routes = vs ? this.meshRoutes(vs, p.number) : [this.defaultRoute(svc, p.number)];
        vhosts.push({
          name: `${svc.host}:${p.number}`,
          ...domainsFor(svc, p.number, p === bareDefault, this.suffix),
          routes,
        });
      }
    }
    // VirtualServices for hosts outside the registry (e.g. a wildcard or an external name)
    for (const [host, vs] of vsByHost) {
      if (this.services.has(host)) continue;
      vhosts.push({ name: host, domains: [host, `${host}:80`], routes: this.meshRoutes(vs, 80) });
    }
    const l = this.input.listener ?? {};
    this.outboundTcp = this.outboundTcpServices();
    return this.finish([
      {
        name: l.name ?? 'outbound',
        protocol: 'HTTP',
        ...(l.address !== undefined ? { address: l.address } : {}),
        port: l.port ?? DEFAULT_OUTBOUND_PORT,
        virtualHosts: vhosts,
      },
    ]);
  }

  /**
   * A gateway pod's config: one HTTP listener on 0.0.0.0 per server port of the Gateways that
   * select the pod (servers sharing a port share the listener; bound at the Service's target
   * port when the server port is a port of a Service in front of the pod), a virtual host per hostname a
   * bound VirtualService gets on the server (several VirtualServices on one host merge their
   * rules, oldest first, as Istio does for gateways), and only the clusters those routes use.
   */
  buildGateway(input: GatewayTranslateInput): TranslateResult {
    const gateways = byCreation(input.gateways).filter((g) =>
      gatewaySelects(g, input.pod, input.scopeGatewayToNamespace ?? false),
    );
    const vss = byCreation(this.virtualServices);
    const byPort = new Map<number, Map<string, VirtualHost>>();
    const tlsByPort = new Map<number, GatewayTlsServer[]>();
    const l4 = new GatewayL4Ports(this.l4Context());
    for (const gw of gateways) {
      const key = `${nsOf(gw)}/${gw.metadata.name ?? ''}`;
      (gw.spec.servers ?? []).forEach((server, index) => {
        const port = server.port?.number;
        const protocol = (server.port?.protocol ?? '').toUpperCase();
        const where = `Gateway ${key} port ${port}`;
        const l4Kind = gatewayL4Kind(server);
        if (l4Kind !== null || l4.byPort.has(port)) {
          // a port is either HTTP(S) or L4 (TCP, TLS passthrough), the first server's kind
          if (typeof l4Kind === 'object' && l4Kind !== null)
            return this.warnings.push(`${where}: ${l4Kind.refused}; server skipped`);
          if (l4Kind === null || byPort.has(port))
            return this.warnings.push(
              `${where}: ${protocol}${l4Kind === 'passthrough' ? ' PASSTHROUGH' : ''} conflicts with the port's earlier ${l4Kind === null ? 'TCP/TLS passthrough' : 'HTTP or terminated HTTPS'} server (one port is one or the other); server skipped`,
            );
          return l4.add(
            server,
            l4Kind,
            key,
            nsOf(gw),
            vss.filter((v) => bindsTo(v, key)),
          );
        }
        if (!GATEWAY_HTTP_PROTOCOLS.has(protocol) && protocol !== 'HTTPS')
          return this.warnings.push(
            `${where}: ${protocol || 'no'} protocol is not served (HTTP, HTTPS, TCP, MONGO, MYSQL, REDIS, TLS PASSTHROUGH only); server skipped`,
          );
        const tls = protocol === 'HTTPS' ? gatewayTlsServer(server, `${key}[${index}]`, nsOf(gw)) : null;
        if (typeof tls === 'string') return this.warnings.push(`${where}: ${tls}; server skipped`);
        // one port is either TLS or plaintext (Istio keeps the first server's protocol)
        if (byPort.has(port) && tlsByPort.has(port) !== (tls !== null))
          return this.warnings.push(
            `${where}: ${tls ? 'HTTPS' : protocol} conflicts with the port's earlier ${tls ? 'plaintext' : 'HTTPS'} server; server skipped`,
          );
        if (tls !== null) {
          const kept = addTlsServer(tlsByPort.get(port) ?? [], tls);
          if (typeof kept === 'string') return this.warnings.push(`${where}: ${kept}; server skipped`);
          tlsByPort.set(port, kept);
        }
        const vhosts = byPort.get(port) ?? new Map<string, VirtualHost>();
        byPort.set(port, vhosts);
        if (tls === null && server.tls?.httpsRedirect) {
          for (const h of server.hosts ?? []) this.httpsRedirect(vhosts, h.slice(h.indexOf('/') + 1), port);
          return;
        }
        for (const vs of vss.filter((v) => bindsTo(v, key))) {
          const vsHosts = (vs.spec.hosts ?? []).map((h) => fqdn(h, nsOf(vs), this.suffix));
          for (const host of serverHostsFor(server, nsOf(gw), nsOf(vs), vsHosts))
            this.addGatewayRoutes(vhosts, host, port, vs, key);
        }
      });
    }
    // Istio's resolvePorts: a server port that is a port of a Service in front of the pod is
    // listened on at that Service's targetPort (clients reach `:80`, the pod listens on 8080).
    const byBind = new Map<number, VirtualHost[]>();
    const tlsByBind = new Map<number, GatewayTlsServer[]>();
    for (const [port, vhosts] of byPort)
      for (const bind of input.servicePorts?.[port] ?? [port]) {
        byBind.set(bind, [...(byBind.get(bind) ?? []), ...vhosts.values()]);
        const tls = tlsByPort.get(port);
        if (tls !== undefined) tlsByBind.set(bind, [...(tlsByBind.get(bind) ?? []), ...tls]);
      }
    for (const port of [...byBind.keys()])
      if (PROXY_OWN_PORTS.has(port)) {
        byBind.delete(port);
        this.warnings.push(
          `gateway port ${port} is one the proxy itself uses (${[...PROXY_OWN_PORTS].join(', ')}); its servers are skipped`,
        );
      }
    const l4Listeners = l4
      .listeners((port) => input.servicePorts?.[port] ?? [port])
      .filter((t) => {
        if (PROXY_OWN_PORTS.has(t.port))
          this.warnings.push(
            `gateway port ${t.port} is one the proxy itself uses; its TCP/TLS servers are skipped`,
          );
        else if (byBind.has(t.port))
          this.warnings.push(
            `gateway port ${t.port} is bound by HTTP and TCP/TLS servers; the TCP/TLS ones are skipped`,
          );
        else return true;
        return false;
      });
    const httpListeners: Listener[] = [...byBind.entries()]
      .sort(([a], [b]) => a - b)
      .map(([port, virtualHosts]) => ({
        name: `gateway-${port}`,
        protocol: 'HTTP',
        // a gateway's clients are outside the mesh: Envoy's internal-only headers are stripped
        edge: true,
        address: '0.0.0.0',
        port,
        virtualHosts,
        ...(tlsByBind.has(port) ? { tls: { servers: tlsByBind.get(port)! } } : {}),
      }));
    const listeners = [...httpListeners, ...l4Listeners].sort((a, b) => a.port - b.port);
    return this.finish(listeners);
  }

  private vhost(vhosts: Map<string, VirtualHost>, host: string, port: number): VirtualHost {
    let vh = vhosts.get(host);
    if (!vh) {
      vh = { name: `${host}:${port}`, domains: [host, `${host}:${port}`], routes: [] };
      vhosts.set(host, vh);
    }
    return vh;
  }

  private addGatewayRoutes(
    vhosts: Map<string, VirtualHost>,
    host: string,
    port: number,
    vs: VirtualService,
    gatewayKey: string,
  ): void {
    const vh = this.vhost(vhosts, host, port);
    (vs.spec.http ?? []).forEach((rule, i) => {
      const forGateway = ruleForGateway(rule, nsOf(vs), gatewayKey);
      const scoped = forGateway && ruleForSource(forGateway, this.proxy);
      const route = scoped ? this.httpRoute(vs, scoped, i, port) : null;
      if (route) vh.routes.push(route);
    });
  }

  /** `tls.httpsRedirect` on an HTTP server: every request gets a 301 to https. */
  private httpsRedirect(vhosts: Map<string, VirtualHost>, host: string, port: number): void {
    const vh = this.vhost(vhosts, host.toLowerCase(), port);
    if (vh.routes.length === 0)
      vh.routes.push({
        name: 'https-redirect',
        action: { type: 'redirect', redirect: { scheme: 'https', code: 301 } },
      });
  }

  /**
   * REGISTRY_ONLY's known TCP destinations: each visible service's addresses (cluster IPs,
   * ServiceEntry addresses and CIDRs) on its ports, and for a service without addresses
   * (headless, or a ServiceEntry without `addresses`) its endpoints on their ports. A ServiceEntry
   * without addresses resolved by the original destination (NONE) allows any address on its ports
   * (Istio's 0.0.0.0:port passthrough). One resolved by name (DNS) adds nothing: TLS naming its
   * hosts is routed to its cluster by the port's catch-all (sniCatchAlls), never to the address
   * the workload chose, and anything else to an unknown address is Istio's BlackHoleCluster.
   */
  private registryDestinations(): Pick<OutboundTrafficPolicy, 'destinations'> {
    const byAddress = new Map<string, Set<number>>();
    const add = (address: string, port: number): void => {
      const set = byAddress.get(address) ?? new Set<number>();
      set.add(port);
      byAddress.set(address, set);
    };
    for (const svc of this.services.values()) {
      const noAddresses = svc.addresses.length === 0 && clusterTypeFor(svc) !== undefined;
      const passthrough = noAddresses && svc.resolution === 'NONE';
      for (const p of svc.ports) {
        for (const a of svc.addresses) if (isIpOrCidr(a)) add(a, p.number);
        if (passthrough) {
          add('0.0.0.0/0', p.number);
          add('::/0', p.number);
        } else if (svc.addresses.length === 0 && !noAddresses)
          for (const e of svc.endpoints)
            if (isIpOrCidr(e.address)) add(e.address, e.ports?.[p.name] ?? p.targetPort ?? p.number);
      }
    }
    const destinations = [...byAddress.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([address, ports]) => ({ address, ports: [...ports].sort((a, b) => a - b) }));
    return { destinations };
  }

  private finish(listeners: Listener[]): TranslateResult {
    omitDerivedHosts(listeners, this.clusters);
    const config: ProxyConfig = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: '',
      listeners,
      clusters: [...this.clusters.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
    if (this.input.telemetry) config.telemetry = this.input.telemetry;
    if (this.input.pathNormalization) config.pathNormalization = this.input.pathNormalization;
    const ph = this.input.proxyHeaders;
    if (ph && Object.keys(ph).length > 0) config.proxyHeaders = ph;
    const sc = this.input.scope?.sidecar;
    if (sc) config.scope = { sidecar: sidecarRef(sc.sidecar), via: sc.via };
    if (this.outboundTcp.length > 0) config.outboundTcp = this.outboundTcp;
    if (this.input.scope?.outboundMode === 'REGISTRY_ONLY')
      config.outboundTrafficPolicy = { mode: 'REGISTRY_ONLY', ...this.registryDestinations() };
    config.version = configVersion(config);
    const withLocality = Object.keys(this.localityLb).length > 0 ? { localityLb: this.localityLb } : {};
    return { config, warnings: this.warnings, ...withLocality };
  }
}

/**
 * Drops a destination's or mirror's `host` where it is its cluster's `service`, which the proxy
 * falls back to (compile.ts `dest`); without a cluster the route answers 503 NC either way. The
 * name repeated on every route of every virtual host (issue #19).
 */
function omitDerivedHosts(listeners: Listener[], clusters: Map<string, Cluster>): void {
  const omit = (d: { cluster: string; host?: string }): void => {
    if (d.host !== undefined && d.host === clusters.get(d.cluster)?.service) delete d.host;
  };
  for (const l of listeners) {
    if (l.protocol !== 'HTTP') continue;
    for (const vh of l.virtualHosts)
      for (const r of vh.routes) {
        if (r.action.type === 'route') r.action.destinations.forEach(omit);
        r.mirrors?.forEach(omit);
      }
  }
}

function convertStringMatch(m: IstioStringMatch): StringMatch | null {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  if (m.regex !== undefined) return { regex: m.regex };
  return null;
}

function convertMatchMap(m: Record<string, IstioStringMatch>): Record<string, HeaderMatch> {
  const out: Record<string, HeaderMatch> = {};
  // `{}` (no operator) means "present" (reference §2.5)
  for (const [k, v] of Object.entries(m)) out[k.toLowerCase()] = convertStringMatch(v) ?? { present: true };
  return out;
}

export function convertMatch(m: HTTPMatchRequest): RouteMatch {
  const out: RouteMatch = {};
  if (m.name !== undefined) out.name = m.name;
  for (const key of ['uri', 'scheme', 'method', 'authority'] as const) {
    const sm = m[key] ? convertStringMatch(m[key]) : null;
    if (sm) out[key] = sm;
  }
  if (m.ignoreUriCase) out.ignoreUriCase = true;
  if (m.headers) out.headers = convertMatchMap(m.headers);
  if (m.withoutHeaders) out.withoutHeaders = convertMatchMap(m.withoutHeaders);
  if (m.queryParams) {
    const q: Record<string, HeaderMatch> = {};
    for (const [k, v] of Object.entries(m.queryParams)) q[k] = convertStringMatch(v) ?? { present: true };
    out.queryParams = q;
  }
  if (m.port !== undefined) out.port = m.port;
  return out;
}

/** A retryOn token Istio reads as a status code: an integer in the HTTP range (parseRetryOn). */
function isStatusToken(t: string): boolean {
  return /^\d{3}$/.test(t) && Number(t) >= 100 && Number(t) <= 599;
}

/** Istio's ConvertPolicy (reference §2.3): nil → default (proxy side), attempts ≤ 0 → disabled. */
export function convertRetries(r: HTTPRetry | undefined): RetryPolicy | undefined {
  if (r === undefined) return undefined;
  if ((r.attempts ?? 0) <= 0) return { attempts: 0, retryOn: [], retriableStatusCodes: [] };
  // the default policy is the starting point: no status code since Istio 1.24
  const policy: RetryPolicy = {
    attempts: r.attempts!,
    retryOn: [...DEFAULT_RETRY_ON],
    retriableStatusCodes: [],
  };
  if (r.retryOn !== undefined && r.retryOn !== '') {
    const tokens = r.retryOn
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    policy.retriableStatusCodes = tokens.filter(isStatusToken).map(Number);
    policy.retryOn = tokens.filter((t) => !isStatusToken(t));
    if (policy.retriableStatusCodes.length > 0 && !policy.retryOn.includes('retriable-status-codes'))
      policy.retryOn.push('retriable-status-codes');
  }
  const ptt = r.perTryTimeout !== undefined ? parseDurationMs(r.perTryTimeout) : null;
  if (ptt !== null) policy.perTryTimeoutMs = ptt;
  const bo = r.backoff !== undefined ? parseDurationMs(r.backoff) : null;
  if (bo !== null) policy.backoffBaseMs = bo;
  return policy;
}

export function convertLb(lb: LoadBalancerSettings | undefined): LoadBalancer | undefined {
  if (!lb) return undefined;
  const ch = lb.consistentHash;
  if (ch) {
    if (ch.httpHeaderName) return { consistentHash: { httpHeaderName: ch.httpHeaderName } };
    if (ch.httpCookie) return { consistentHash: { httpCookie: { name: ch.httpCookie.name } } };
    if (ch.httpQueryParameterName)
      return { consistentHash: { httpQueryParameterName: ch.httpQueryParameterName } };
    if (ch.useSourceIp) return { consistentHash: { useSourceIp: true } };
  }
  switch (lb.simple) {
    case 'ROUND_ROBIN':
    case 'RANDOM':
    case 'PASSTHROUGH':
    case 'LEAST_REQUEST':
      return { simple: lb.simple };
    case 'LEAST_CONN':
      return { simple: 'LEAST_REQUEST' };
    default:
      return undefined;
  }
}

function ms(d: string | undefined): number | undefined {
  if (d === undefined) return undefined;
  return parseDurationMs(d) ?? undefined;
}

/**
 * Whether requests to a port go upstream over HTTP/2: a port that declares it (GRPC, HTTP2,
 * GRPC-WEB, as Istio's IsHTTP2: appProtocol `grpc`, `http2`, `grpc-web`, `kubernetes.io/h2c`, or
 * the port-name prefix), or an HTTP/1.1
 * port the DestinationRule upgrades (`h2UpgradePolicy: UPGRADE`; DO_NOT_UPGRADE keeps HTTP/1.1,
 * and never downgrades a declared HTTP/2 port, as in Istio).
 */
export function speaksH2(protocol: string | undefined, upgrade: string | undefined): boolean {
  const p = (protocol ?? '').toUpperCase();
  // GRPC-WEB too: the proxy bridges gRPC-Web to the gRPC server behind it (proxy/h2/grpc-web.ts)
  if (p === 'GRPC' || p === 'HTTP2' || p === 'GRPC-WEB') return true;
  return upgrade === 'UPGRADE' && (p === 'HTTP' || p === '');
}

export function convertPool(cp: ConnectionPoolSettings | undefined): ConnectionPool | undefined {
  if (!cp) return undefined;
  const out: ConnectionPool = {};
  const set = <K extends keyof ConnectionPool>(k: K, v: ConnectionPool[K] | undefined): void => {
    if (v !== undefined && v !== null) out[k] = v;
  };
  set('maxConnections', cp.tcp?.maxConnections);
  set('connectTimeoutMs', ms(cp.tcp?.connectTimeout));
  set('http1MaxPendingRequests', cp.http?.http1MaxPendingRequests);
  set('http2MaxRequests', cp.http?.http2MaxRequests);
  set('maxConcurrentStreams', cp.http?.maxConcurrentStreams);
  set('maxRequestsPerConnection', cp.http?.maxRequestsPerConnection);
  set('maxRetries', cp.http?.maxRetries);
  set('idleTimeoutMs', ms(cp.http?.idleTimeout) ?? ms(cp.tcp?.idleTimeout));
  const interval = ms(cp.http?.http2KeepAlive?.interval);
  const timeout = ms(cp.http?.http2KeepAlive?.timeout);
  // Istio's validation wants both (the webhook refuses a half-set one): otherwise no PINGs
  if (interval !== undefined && interval > 0 && timeout !== undefined && timeout > 0) {
    set('http2KeepAliveIntervalMs', interval);
    set('http2KeepAliveTimeoutMs', timeout);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

export function convertOutlier(od: IstioOutlier | undefined): OutlierDetection | undefined {
  if (!od) return undefined;
  const out: OutlierDetection = {};
  const c5 = od.consecutive5xxErrors;
  if (c5 !== undefined && c5 !== null) out.consecutive5xxErrors = c5;
  // the deprecated consecutiveErrors maps to gateway errors, as in Istio
  const gw = od.consecutiveGatewayErrors ?? od.consecutiveErrors;
  if (gw !== undefined && gw !== null) out.consecutiveGatewayErrors = gw;
  const i = ms(od.interval);
  if (i !== undefined) out.intervalMs = i;
  const b = ms(od.baseEjectionTime);
  if (b !== undefined) out.baseEjectionTimeMs = b;
  if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = od.maxEjectionPercent;
  if (od.minHealthPercent !== undefined) out.minHealthPercent = od.minHealthPercent;
  return out;
}

export function translate(input: TranslateInput): TranslateResult {
  const t = new Translator(input);
  const result = t.build();
  if (t.scopeReads !== undefined) result.scopeReads = t.scopeReads;
  return result;
}

/** The config of a gateway pod (see Translator.buildGateway). */
export function translateGateway(input: GatewayTranslateInput): TranslateResult {
  return new Translator(input).buildGateway(input);
}

/** The content hash a config's `version` carries (computed with `version` empty). */
export function configVersion(config: ProxyConfig): string {
  const body = JSON.stringify({ ...config, version: '' });
  return createHash('sha256').update(body).digest('hex').slice(0, 12);
}
