/**
 * weftd's view of the cluster: one informer per kind it translates from (Services,
 * EndpointSlices, Pods, Namespaces and the Istio networking kinds), and a `generation` that moves
 * on every change that can alter some proxy's config. Consumers read a `Snapshot` (plain arrays,
 * built once per generation) and subscribe with `onChange` to learn that they should recompute.
 *
 * Pods change all the time (status, conditions); only an add, a delete, or a change of labels or
 * IP matters to a config, so the rest is filtered out here rather than costing a push cycle.
 * Nodes matter only for their topology labels (the locality of the endpoints and proxies on
 * them, pkg/translate/locality.ts): other node changes (status, heartbeats) are filtered out too.
 * Every other kind is compared on what a config reads (`configRelevant`): the spec, plus the
 * labels of Services, EndpointSlices and WorkloadEntries, an EndpointSlice's endpoints and ports,
 * and AuthorizationPolicy's dry-run annotation. A label or annotation Argo CD or kubectl adds to
 * a VirtualService, a status write, managedFields or resourceVersion churn and informer resyncs
 * therefore give no new generation and no push; `events` / `ignoredEvents` count both outcomes
 * (weft_weftd_registry_events_total, /debug/connections).
 * Of the security kinds, PeerAuthentication (each sidecar's inbound mTLS modes) and
 * AuthorizationPolicy and RequestAuthentication (each proxy's jwt block) are watched, and so are
 * Sidecars (which hosts each sidecar is given, pkg/translate/scope.ts) and the rate limits
 * (RateLimit and Istio's memquota: each sidecar's rateLimits block).
 * A mesh object that fails validation (the webhook's `validateObject`, judged once per version
 * in validity.ts) is in no snapshot, so in no config; its status says why (statuswriter.ts).
 * AuthorizationPolicies, PeerAuthentications, RequestAuthentications and Sidecars fail closed
 * instead: the snapshot holds the stand-in pkg/translate/failclosed.ts builds (deny all, allow
 * nothing, STRICT, refuse tokens, REGISTRY_ONLY egress) in their place.
 */
import type {
  DestinationRule,
  Gateway,
  PeerAuthentication,
  ServiceEntry,
  VirtualService,
} from '../pkg/api/index.js';
import type { AuthorizationPolicy } from '../pkg/api/authorizationpolicy.js';
import type { RequestAuthentication } from '../pkg/api/requestauthentication.js';
import type { WorkloadEntry } from '../pkg/api/workloadentry.js';
import type { Sidecar } from '../pkg/api/sidecar.js';
import type { RateLimit } from '../pkg/api/ratelimit.js';
import type { MemQuota } from '../pkg/api/memquota.js';
import type { KubeClient } from '../pkg/kube/client.js';
import type { Informer, InformerEventType } from '../pkg/kube/informer.js';
import { ownInformers, type InformerSource } from '../pkg/kube/shared-informers.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import type { ServiceRecord } from '../pkg/translate/index.js';
import { DRY_RUN_ANNOTATION } from '../pkg/translate/authz.js';
import { EXPORT_TO_ANNOTATION } from '../pkg/translate/scope.js';
import { REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL, localityOf } from '../pkg/translate/locality.js';
import type { ValidationResult } from '../pkg/validation/index.js';
import { ObjectValidity } from './validity.js';
import { failClosed } from '../pkg/translate/failclosed.js';
import {
  servicesFromKube,
  type KubeEndpointSlice,
  type KubePod,
  type KubeService,
} from '../pkg/translate/kube.js';

const ISTIO_NETWORKING = 'networking.istio.io/v1';
const ISTIO_SECURITY = 'security.istio.io/v1';

/** What kind of change triggered a push (istiod's pilot_push_triggers types). */
export type TriggerType = 'service' | 'endpoint' | 'pod' | 'config';

export const WATCHED = [
  { apiVersion: 'v1', kind: 'Service', trigger: 'service' },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', trigger: 'endpoint' },
  { apiVersion: 'v1', kind: 'Pod', trigger: 'pod' },
  { apiVersion: 'v1', kind: 'Namespace', trigger: null },
  { apiVersion: 'v1', kind: 'Node', trigger: 'endpoint' },
  { apiVersion: ISTIO_NETWORKING, kind: 'VirtualService', trigger: 'config' },
  { apiVersion: ISTIO_NETWORKING, kind: 'DestinationRule', trigger: 'config' },
  { apiVersion: ISTIO_NETWORKING, kind: 'Gateway', trigger: 'config' },
  { apiVersion: ISTIO_NETWORKING, kind: 'ServiceEntry', trigger: 'config' },
  // endpoints of ServiceEntries with a workloadSelector
  { apiVersion: ISTIO_NETWORKING, kind: 'WorkloadEntry', trigger: 'endpoint' },
  // which hosts each sidecar sees (pkg/translate/scope.ts)
  { apiVersion: ISTIO_NETWORKING, kind: 'Sidecar', trigger: 'config' },
  { apiVersion: ISTIO_SECURITY, kind: 'PeerAuthentication', trigger: 'config' },
  // v1beta1 objects are the same objects (one stored version): watching v1 sees both
  { apiVersion: ISTIO_SECURITY, kind: 'AuthorizationPolicy', trigger: 'config' },
  { apiVersion: ISTIO_SECURITY, kind: 'RequestAuthentication', trigger: 'config' },
  // rate limits (ADR 0013): each sidecar's rateLimits block
  { apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'RateLimit', trigger: 'config' },
  { apiVersion: 'config.istio.io/v1alpha2', kind: 'memquota', trigger: 'config' },
] as const satisfies readonly { apiVersion: string; kind: string; trigger: TriggerType | null }[];

export type WatchedKind = (typeof WATCHED)[number]['kind'];

export interface PodInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ip?: string;
  serviceAccount?: string;
  generateName?: string;
  nodeName?: string;
  /** `region/zone/subzone` from its `istio-locality` label or its node's labels (locality.ts). */
  locality?: string;
}

export interface Snapshot {
  generation: number;
  services: ServiceRecord[];
  /** The Services as listed (gateway pods need their selectors and target ports). */
  kubeServices: KubeService[];
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  serviceEntries: ServiceEntry[];
  /** Absent in hand-built snapshots: none. ServiceEntry workloadSelector endpoints, with `pods`. */
  workloadEntries?: WorkloadEntry[];
  pods?: PodInfo[];
  gateways: Gateway[];
  peerAuthentications: PeerAuthentication[];
  /** Absent in snapshots built by hand (tests, benches): no policy. */
  authorizationPolicies?: AuthorizationPolicy[];
  /** Absent in hand-built snapshots (tests, bench): none. */
  requestAuthentications?: RequestAuthentication[];
  /** Absent in hand-built snapshots: none (every sidecar sees every exported host). */
  sidecars?: Sidecar[];
  /** Absent in hand-built snapshots: none (ADR 0013). */
  rateLimits?: RateLimit[];
  memquotas?: MemQuota[];
  /**
   * The generation at which an object of each kind last changed (added, updated in what a config
   * reads, deleted); absent in hand-built snapshots. Equal in two snapshots: that kind's objects
   * are the same in both (configgen carries translations across generations with it).
   */
  kindGenerations?: Partial<Record<WatchedKind, number>>;
}

export type RegistryEventResult = 'changed' | 'ignored' | 'invalid';

export interface KubeRegistry {
  readonly generation: number;
  synced(): boolean;
  /** Kinds whose first LIST has not completed (for /ready's reason). */
  unsynced(): WatchedKind[];
  snapshot(): Snapshot;
  pod(namespace: string, name: string): PodInfo | undefined;
  onChange(fn: (trigger: TriggerType) => void): void;
  /**
   * Every informer event of a kind that can trigger: `changed` moved the generation, `ignored`
   * did not, `invalid` carried a new version of a mesh object that fails validation (counted
   * once per version; the object is left out of every config).
   */
  onEvent(fn: (kind: WatchedKind, result: RegistryEventResult) => void): void;
  /**
   * weft's validation of this version of a mesh object (validity.ts, memoised per version):
   * an object with errors is in no snapshot; the status writer reports the same verdict.
   */
  validation(obj: KubeObject): ValidationResult;
  /** The objects of one kind as listed, status included (the status writer). */
  list(kind: WatchedKind): KubeObject[];
  /**
   * The generation at which this object's current config-relevant content was first seen
   * (its latest add or relevant update; 0 if seen before the first sync's generation).
   */
  changedAt(kind: WatchedKind, namespace: string | undefined, name: string): number;
  /** Informer events seen (of kinds that can trigger) and those of them that changed nothing. */
  readonly events: number;
  readonly ignoredEvents: number;
  /** Resolves once every informer has listed once. */
  readonly hasSynced: Promise<void>;
  stop(): void;
}

/** A pod event that can change some config: add, delete, or new labels / IP. */
export function podChangeMatters(type: InformerEventType, obj: KubeObject, old?: KubeObject): boolean {
  if (type !== 'update' || !old) return true;
  const ip = (o: KubeObject): unknown => (o.status as { podIP?: unknown } | undefined)?.podIP;
  return (
    JSON.stringify(obj.metadata.labels ?? {}) !== JSON.stringify(old.metadata.labels ?? {}) ||
    ip(obj) !== ip(old) ||
    nodeName(obj) !== nodeName(old)
  );
}

const nodeName = (o: KubeObject): string | undefined =>
  (o.spec as { nodeName?: string } | undefined)?.nodeName;

/** A node event that can change some config: add, delete, or new topology labels. */
export function nodeChangeMatters(type: InformerEventType, obj: KubeObject, old?: KubeObject): boolean {
  if (type !== 'update' || !old) return true;
  const topo = (o: KubeObject): string => JSON.stringify(TOPOLOGY_LABELS.map((k) => o.metadata.labels?.[k]));
  return topo(obj) !== topo(old);
}

const TOPOLOGY_LABELS = [REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL];

/** Kinds whose labels a config reads (selectors, EndpointSlice → Service, WorkloadEntry labels). */
const LABELS_MATTER = new Set<string>(['Service', 'EndpointSlice', 'WorkloadEntry']);
/** Annotations a config reads, by kind. */
const ANNOTATIONS_MATTER: Record<string, readonly string[]> = {
  AuthorizationPolicy: [DRY_RUN_ANNOTATION],
  // which namespaces see the Service (pkg/translate/scope.ts): a change must push
  Service: [EXPORT_TO_ANNOTATION],
};

/**
 * The parts of an object that proxy configs are built from, as a comparable string. Everything
 * else (status, resourceVersion, managedFields, generation, other labels and annotations) cannot
 * change a config. Name, namespace and creationTimestamp (precedence) never change on update.
 */
export function configRelevant(kind: string, o: KubeObject): string {
  const picked: Record<string, unknown> = { spec: o.spec };
  if (LABELS_MATTER.has(kind)) picked.labels = o.metadata.labels ?? {};
  const annotations = ANNOTATIONS_MATTER[kind];
  if (annotations) picked.annotations = annotations.map((a) => o.metadata.annotations?.[a] ?? null);
  if (kind === 'EndpointSlice') {
    const slice = o as KubeObject & { addressType?: unknown; endpoints?: unknown; ports?: unknown };
    picked.slice = [slice.addressType, slice.endpoints, slice.ports];
  }
  return JSON.stringify(picked);
}

/** Whether an informer event of `kind` can change some proxy's config. */
export function changeMatters(
  kind: WatchedKind,
  type: InformerEventType,
  obj: KubeObject,
  old?: KubeObject,
): boolean {
  if (kind === 'Pod') return podChangeMatters(type, obj, old);
  if (kind === 'Node') return nodeChangeMatters(type, obj, old);
  if (type !== 'update' || !old) return true;
  return configRelevant(kind, obj) !== configRelevant(kind, old);
}

export function podInfo(o: KubeObject): PodInfo {
  const node = nodeName(o);
  const spec = o.spec as { serviceAccountName?: string } | undefined;
  const ip = (o.status as { podIP?: string } | undefined)?.podIP;
  return {
    name: o.metadata.name,
    namespace: o.metadata.namespace ?? 'default',
    labels: o.metadata.labels ?? {},
    ...(ip ? { ip } : {}),
    ...(spec?.serviceAccountName ? { serviceAccount: spec.serviceAccountName } : {}),
    ...(typeof o.metadata.generateName === 'string' ? { generateName: o.metadata.generateName } : {}),
    ...(node ? { nodeName: node } : {}),
  };
}

export interface RegistryOptions {
  /** weftd runs the global rate-limit backend: RateLimit `scope: global` is valid (ADR 0017). */
  globalRateLimits?: boolean;
  /**
   * Keep objects that fail validation in snapshots. Never in weftd: only for the not-enforced
   * probe (test/unit/api/not-enforced-probe.ts), whose objects without a field can be invalid
   * (a DestinationRule `trafficPolicy: {}`) and must still be compared on their translation.
   */
  keepInvalid?: boolean;
  /** The mesh's root namespace: an invalid Sidecar's fail-closed egress imports its hosts. */
  rootNamespace?: string;
}

/**
 * What an informer event does: whether it can change some config, and the verdict on the new
 * version of a mesh object. An object that fails validation is in no config, so an event that
 * turns an applied object invalid (or back) changes configs even if `changeMatters` says not
 * (an annotation such as `istio.io/dry-run` makes a VirtualService invalid).
 */
export function judgeEvent(
  validity: ObjectValidity,
  kind: WatchedKind,
  type: InformerEventType,
  obj: KubeObject,
  old?: KubeObject,
): { matters: boolean; result: RegistryEventResult } {
  const matters = changeMatters(kind, type, obj, old);
  if (!ObjectValidity.judges(kind)) return { matters, result: matters ? 'changed' : 'ignored' };
  if (type === 'delete') {
    validity.forget(obj);
    return { matters, result: 'changed' };
  }
  const j = validity.judge(obj);
  const flipped = j.wasValid !== undefined && j.wasValid !== j.valid;
  const result = j.fresh && !j.valid ? 'invalid' : matters || flipped ? 'changed' : 'ignored';
  return { matters: matters || flipped, result };
}

export function createKubeRegistry(
  kube: KubeClient,
  log: Logger,
  domainSuffix: string,
  informerOf: InformerSource = ownInformers(kube),
  options: RegistryOptions = {},
): KubeRegistry {
  const informers = new Map<WatchedKind, Informer<KubeObject>>();
  const listeners: ((t: TriggerType) => void)[] = [];
  const eventListeners: ((kind: WatchedKind, result: RegistryEventResult) => void)[] = [];
  const validity = new ObjectValidity({
    log: log.child({ part: 'validation' }),
    ...(options.globalRateLimits ? { globalRateLimits: true } : {}),
  });
  let generation = 0;
  /** kind/namespace/name → the generation its current content was first seen at (changedAt). */
  const changed = new Map<string, number>();
  /** kind → the generation at which one of its objects last changed (Snapshot.kindGenerations). */
  const kindChanged: Partial<Record<WatchedKind, number>> = {};
  let events = 0;
  let ignoredEvents = 0;
  let cached: Snapshot | undefined;

  for (const w of WATCHED) {
    const inf = informerOf<KubeObject>(
      { apiVersion: w.apiVersion, kind: w.kind },
      log.child({ informer: w.kind }),
    );
    inf.on((type, obj, old) => {
      if (w.trigger === null) return;
      events++;
      const { matters, result } = judgeEvent(validity, w.kind, type, obj, old);
      if (!matters) ignoredEvents++;
      for (const fn of eventListeners) fn(w.kind, result);
      if (!matters) return;
      generation++;
      kindChanged[w.kind] = generation;
      const key = `${w.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
      if (type === 'delete') changed.delete(key);
      else changed.set(key, generation);
      for (const fn of listeners) fn(w.trigger);
    });
    informers.set(w.kind, inf);
  }
  const all = [...informers.values()];
  const hasSynced = Promise.all(all.map((i) => i.hasSynced)).then(() => {
    generation++;
    log.info('Registry synced', { generation });
    for (const fn of listeners) fn('config'); // proxies that connected early get their first config
  });
  for (const inf of all) inf.start();

  const listed = (kind: WatchedKind): KubeObject[] => informers.get(kind)!.list();
  /**
   * What configs are built from: the mesh objects weft applies, never one that fails validation;
   * a security object that fails it is replaced by its fail-closed stand-in (failclosed.ts).
   */
  const items = <T>(kind: WatchedKind): T[] =>
    (ObjectValidity.judges(kind) && options.keepInvalid !== true
      ? listed(kind).flatMap((o) => {
          if (validity.applies(o)) return [o];
          const closed = failClosed(o, validity.validation(o).errors, options.rootNamespace);
          return closed === null ? [] : [closed.standIn];
        })
      : listed(kind)) as unknown as T[];
  const nodeLabels = (): Map<string, Record<string, string>> =>
    new Map(
      informers
        .get('Node')!
        .list()
        .map((n) => [n.metadata.name, n.metadata.labels ?? {}]),
    );

  return {
    get generation() {
      return generation;
    },
    get events() {
      return events;
    },
    get ignoredEvents() {
      return ignoredEvents;
    },
    onEvent: (fn) => void eventListeners.push(fn),
    hasSynced,
    synced: () => all.every((i) => i.isSynced),
    unsynced: () => WATCHED.filter((w) => !informers.get(w.kind)!.isSynced).map((w) => w.kind),
    snapshot() {
      if (cached?.generation === generation) return cached;
      const serviceEntries = items<ServiceEntry>('ServiceEntry');
      // pods as workloadSelector endpoints: only listed when some entry selects
      const rateLimits = items<RateLimit>('RateLimit');
      const memquotas = items<MemQuota>('memquota');
      // and as rate-limit sources (workload labels → service accounts)
      const selecting =
        serviceEntries.some((se) => se.spec.workloadSelector !== undefined) ||
        rateLimits.length > 0 ||
        memquotas.length > 0;
      cached = {
        generation,
        kubeServices: items<KubeService>('Service'),
        services: servicesFromKube(
          items<KubeService>('Service'),
          items<KubeEndpointSlice>('EndpointSlice'),
          items<KubePod>('Pod'),
          domainSuffix,
          nodeLabels(),
        ),
        virtualServices: items<VirtualService>('VirtualService'),
        destinationRules: items<DestinationRule>('DestinationRule'),
        serviceEntries,
        workloadEntries: items<WorkloadEntry>('WorkloadEntry'),
        pods: selecting ? items<KubeObject>('Pod').map(podInfo) : [],
        gateways: items<Gateway>('Gateway'),
        peerAuthentications: items<PeerAuthentication>('PeerAuthentication'),
        authorizationPolicies: items<AuthorizationPolicy>('AuthorizationPolicy'),
        requestAuthentications: items<RequestAuthentication>('RequestAuthentication'),
        sidecars: items<Sidecar>('Sidecar'),
        rateLimits,
        memquotas,
        kindGenerations: { ...kindChanged },
      };
      return cached;
    },
    pod(namespace, name) {
      const o = informers.get('Pod')!.get(name, namespace);
      if (!o) return undefined;
      const info = podInfo(o);
      const node = info.nodeName === undefined ? undefined : informers.get('Node')!.get(info.nodeName);
      const locality = localityOf(info.labels, node?.metadata.labels);
      return locality === undefined ? info : { ...info, locality };
    },
    onChange: (fn) => void listeners.push(fn),
    list: listed,
    validation: (obj) => validity.validation(obj),
    changedAt: (kind, namespace, name) => changed.get(`${kind}/${namespace ?? ''}/${name}`) ?? 0,
    stop: () => all.forEach((i) => i.stop()),
  };
}
