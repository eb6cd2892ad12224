/**
 * The config a proxy gets, from a registry snapshot. Sidecars share a translation per registry
 * generation, ServiceEntry view (the entries whose exportTo hides them from the pod's namespace)
 * translation scope (pkg/translate/precedence.ts translationScopeKeyer: the pod's namespace
 * where a DestinationRule or sourceNamespace tells it apart, its labels that some sourceLabels
 * reads), exportTo view (what VirtualServices, DestinationRules and Services hide from the pod's
 * namespace) and Sidecar scope (pkg/translate/scope.ts: the Sidecar in force, and the namespace
 * when its hosts say `./`), so proxies sharing a scope share the rendered config; to which
 * each pod adds its own telemetry block (its workload labels); gateways get a translation of the
 * Gateways that select their pod, cached per label set. Versions are content hashes, so an
 * event that changes nothing a proxy sees gives it the same version and no push.
 *
 * Each sidecar also gets its `inbound` block (pkg/translate/inbound.ts): the mTLS mode per port
 * from the PeerAuthentications that select it (the Mesh's mtls.mode below them), and the
 * protocols of the Services in front of it.
 *
 * Clusters with locality load balancing (pkg/translate/locality.ts) get their endpoints'
 * priorities for the proxy's locality: the shared translation is localized once per locality key
 * (locality, and the labels a failoverPriority names) and shared by the proxies with that key.
 *
 * Gateways also get the credentials of their clusters' `tls.credentialName` (credentials.ts).
 *
 * Translation warnings describe the mesh config, not a proxy: they are logged once per version.
 */
import {
  resolvePeerAuthentication,
  type EffectivePeerAuthentication,
  type PeerMode,
} from '../pkg/translate/peerauth.js';
import { createHash } from 'node:crypto';
import { encodeMessage, type ProxyKind } from '../pkg/discovery/protocol.js';
import { withExplicitDomains } from '../pkg/proxyconfig/domains.js';
import type { Logger } from '../pkg/log/index.js';
import type { AuthzBlock, Inbound, OnDemandBlock, ProxyConfig, Telemetry } from '../pkg/proxyconfig/types.js';
import {
  configVersion,
  fqdn,
  translate,
  translateGateway,
  type ServiceRecord,
  type TranslateResult,
} from '../pkg/translate/index.js';
import { inboundFor } from '../pkg/translate/inbound.js';
import { hiddenEntriesKey } from '../pkg/translate/serviceentry.js';
import { localityKey, localizeClusters } from '../pkg/translate/locality.js';
import { translationScopeKeyer } from '../pkg/translate/precedence.js';
import {
  egressRef,
  exportedTo,
  onDemandScope,
  proxyScope,
  indexOnDemandCatalog,
  resolveOnDemand,
  ruleExportedTo,
  scopeImports,
  scopeKey,
  selectSidecar,
  type EgressHost,
  type OnDemandIndex,
  type ProxyScope,
} from '../pkg/translate/scope.js';
import type { ProxyIdentity } from '../pkg/translate/sourcematch.js';
import { gatewayTargetPorts, type KubeService } from '../pkg/translate/kube.js';
import { podServiceNames, translateAuthz } from '../pkg/translate/authz.js';
import {
  configChanges,
  dependenciesHold,
  dependenciesOf,
  ServiceFingerprints,
  type RuleChanges,
  type TranslationDeps,
} from './carryover.js';
import { credentialNames, type CredentialSource } from './credentials.js';
import type { MeshSettings } from './flags.js';
import type { PodInfo, Snapshot } from './registry.js';
import type { JwksSource } from '../pkg/translate/requestauthn.js';
import { withJwt } from './jwtpush.js';
import { withRateLimits } from './ratelimitpush.js';

/** The sidecar's outbound listener: all ports, the proxy's iptables redirect lands here. */
export const SIDECAR_OUTBOUND = { name: 'outbound', address: '0.0.0.0', port: 15001 } as const;

/**
 * Subscribed entries as one set: deduplicated and sorted by `namespace/host`, so the same
 * entries asked for in another order (or twice) key one translation and render one config.
 */
function canonical(entries: readonly EgressHost[]): EgressHost[] {
  const byRef = new Map(entries.map((e) => [egressRef(e), e]));
  return [...byRef.keys()].sort().map((k) => byRef.get(k)!);
}

/** The workload a pod belongs to: its Deployment's name for ReplicaSet pods, else the generateName stem. */
export function workloadName(pod: Pick<PodInfo, 'name' | 'labels' | 'generateName'>): string {
  const gen = pod.generateName;
  if (!gen) return pod.name;
  const hash = pod.labels['pod-template-hash'];
  if (hash && gen.endsWith(`-${hash}-`)) return gen.slice(0, -(hash.length + 2));
  return gen.replace(/-$/, '');
}

export function telemetryFor(pod: PodInfo, mesh: MeshSettings): Telemetry {
  const app = pod.labels['app.kubernetes.io/name'] ?? pod.labels.app;
  const version = pod.labels['app.kubernetes.io/version'] ?? pod.labels.version;
  return {
    accessLog: mesh.telemetry.accessLog,
    workload: {
      name: workloadName(pod),
      namespace: pod.namespace,
      ...(app !== undefined ? { app } : {}),
      ...(version !== undefined ? { version } : {}),
    },
  };
}

const MAX_LOCALIZED = 1024;

/**
 * Shared sidecar translations kept per registry generation (least recently used dropped past
 * it; docs/limits.md). On demand the subscriptions are part of the key and the app behind a
 * sidecar chooses them (Host headers), so without a bound one generation's cache would grow with
 * every distinct subscription set asked for.
 */
export const MAX_SHARED_TRANSLATIONS = 1024;

/** One ServiceEntry view's translation (namespaces that see the same entries share it). */
interface SharedView {
  result: TranslateResult;
  /** What it read, when it may be carried into a later generation (carryover.ts). */
  deps?: TranslationDeps;
  /** Its listeners + clusters already serialized (the bulk of every line). */
  body: string;
  /** The base localized per locality key (only when some cluster has locality LB). */
  localized: Map<string, { config: ProxyConfig; body: string }>;
}

/** The shared part of a sidecar's config line (listeners, clusters, ...), serialized once. */
function sharedBody(config: ProxyConfig): string {
  // everything but the head and what each pod adds, so a field the translation gains reaches the
  // line without a list to keep here (one such list left `outboundTcp` out)
  const { apiVersion: _a, kind: _k, version: _v, telemetry: _t, inbound: _i, authz: _z, ...shared } = config;
  return JSON.stringify(shared).slice(1, -1);
}

/** The translation with its on-demand block; the version covers the subscriptions (a VirtualService-only one adds no host). */
function withOnDemand(result: TranslateResult, onDemand: OnDemandBlock): TranslateResult {
  const version = createHash('sha256')
    .update(`${result.config.version}\n${JSON.stringify(onDemand)}`)
    .digest('hex')
    .slice(0, 12);
  return { ...result, config: { ...result.config, onDemand, version } };
}

/** A config whose locality-LB clusters are resolved for `proxy`, with its own version. */
function localizeConfig(
  config: ProxyConfig,
  policies: NonNullable<TranslateResult['localityLb']>,
  proxy: { locality?: string; labels: Record<string, string> },
): ProxyConfig {
  const out = { ...config, clusters: localizeClusters(config.clusters, policies, proxy) };
  out.version = configVersion(out);
  return out;
}

export interface GeneratedConfig {
  config: ProxyConfig;
  version: string;
  /** The `config` discovery message as one NDJSON line (encodeMessage's output, built cheaply). */
  encode(): string;
}

/**
 * `g` with its short service domains spelled out, for a proxy that did not ask for them (an older
 * build; issue #19). Same version: it is the same config. `g` itself when it has none (gateways).
 */
export function spelledOut(g: GeneratedConfig): GeneratedConfig {
  const config = withExplicitDomains(g.config);
  if (config === g.config) return g;
  return {
    config,
    version: g.version,
    encode: () => encodeMessage({ type: 'config', version: g.version, config }),
  };
}

export class ConfigGenerator {
  /**
   * The shared translations of this generation by ServiceEntry view and scope key, each with its
   * listeners + clusters already serialized (the bulk of every line).
   */
  private sidecarBases:
    | {
        generation: number;
        /** What the next generation compares its config objects with (carryover.ts). */
        snapshot: Snapshot;
        keyOf: (proxy: ProxyIdentity) => string;
        byScope: Map<string, SharedView>;
        services: ServiceFingerprints;
        /** The previous generation's translations, and what changed since (carryover.ts). */
        carried: { byScope: Map<string, SharedView>; changes: RuleChanges } | undefined;
      }
    | undefined;
  /** Per generation: Services by namespace and records by host, for every pod's inbound block. */
  private inboundIndex:
    | { generation: number; byNamespace: Map<string, KubeService[]>; byHost: Map<string, ServiceRecord> }
    | undefined;
  /** Per generation and namespace: what exportTo hides from it (exportViewKey). */
  private exportViews: { generation: number; byNamespace: Map<string, string> } | undefined;
  /** Per generation: what on-demand names resolve against, indexed by host and address. */
  private onDemandCatalog: { generation: number; index: OnDemandIndex } | undefined;
  private gatewayCache = new Map<string, TranslateResult>();
  private gatewayCacheGeneration = -1;
  private readonly loggedVersions = new Set<string>();
  private authzCache = new Map<string, AuthzBlock | undefined>();
  private authzGeneration = -1;

  constructor(
    private readonly opts: {
      domainSuffix: string;
      mesh: MeshSettings;
      log: Logger;
      /** weftd runs the global rate-limit backend (--ratelimit-redis). */
      globalRateLimits?: boolean;
      jwks?: JwksSource;
      shadowHostSuffix?: boolean;
      /** Where gateways' `tls.credentialName` Secrets are read (absent: none delivered; those clusters fail). */
      credentials?: CredentialSource;
      /** Bound on the shared sidecar translations of a generation (default MAX_SHARED_TRANSLATIONS). */
      maxSharedTranslations?: number;
      /** Each sidecar translation a generation needed: made anew or carried from the previous one. */
      onTranslation?: (result: 'translated' | 'carried') => void;
    },
  ) {}

  /** A reloaded mesh.yaml: the telemetry block and the path normalization of configs depend on it. */
  setMesh(mesh: MeshSettings): void {
    this.opts.mesh = mesh;
    this.gatewayCache = new Map();
    this.sidecarBases = undefined; // the trust domain and mTLS mode reach the translation too
    this.authzCache = new Map();
  }

  /**
   * `subscribed`: the on-demand entries the proxy's stream holds (ADR 0023); only read for
   * sidecars when the mesh has `onDemandHosts` (gateways always get their whole config).
   * `proxy.onDemand: false`: the proxy does not ask for hosts (an older build): its whole scope.
   */
  forProxy(
    snapshot: Snapshot,
    kind: ProxyKind,
    pod: PodInfo,
    subscribed: readonly EgressHost[] = [],
    proxy: { onDemand?: boolean } = {},
  ): GeneratedConfig {
    const g =
      kind === 'gateway'
        ? this.gateway(snapshot, pod)
        : this.sidecar(snapshot, pod, subscribed, proxy.onDemand !== false);
    const { jwks, mesh, log } = this.opts;
    const withTokens = jwks ? withJwt(g, kind, snapshot, pod, mesh.rootNamespace, jwks, log) : g;
    return withRateLimits(withTokens, kind, snapshot, pod, this.opts.domainSuffix, log, {
      rootNamespace: mesh.rootNamespace,
      globalRateLimits: this.opts.globalRateLimits === true,
      gatewayNumTrustedProxies: mesh.gatewayNumTrustedProxies,
    });
  }

  /** The mesh's `defaultConfig.onDemandHosts`: sidecars start narrow and ask for hosts. */
  get onDemandHosts(): boolean {
    return this.opts.mesh.onDemandHosts;
  }

  /**
   * The entries that bring `name` to this sidecar, checked against its full scope (exportTo and
   * its Sidecar); [] when unknown or not visible to it (pkg/translate/scope.ts resolveOnDemand).
   */
  resolveOnDemand(
    snapshot: Snapshot,
    pod: Pick<PodInfo, 'namespace' | 'labels'>,
    name: string,
  ): EgressHost[] {
    return resolveOnDemand(name, pod.namespace, this.scopeOf(snapshot, pod), this.onDemandIndex(snapshot));
  }

  /** Shared sidecar translations held for the current generation (tests, debug). */
  get sharedTranslations(): number {
    return this.sidecarBases?.byScope.size ?? 0;
  }

  /**
   * The catalogue on-demand names resolve against, built once per registry generation: the
   * registry's services and every ServiceEntry host with the entry's addresses (VIPs and CIDRs,
   * so a TCP connection to an entry's address finds it), and the VirtualServices.
   */
  private onDemandIndex(snapshot: Snapshot): OnDemandIndex {
    if (this.onDemandCatalog?.generation === snapshot.generation) return this.onDemandCatalog.index;
    const services: { host: string; namespace: string; exportTo?: string[]; addresses?: string[] }[] = [
      ...snapshot.services,
    ];
    for (const se of snapshot.serviceEntries) {
      const namespace = se.metadata.namespace ?? 'default';
      const { exportTo, addresses } = se.spec;
      for (const host of se.spec.hosts ?? [])
        services.push({
          host,
          namespace,
          ...(exportTo ? { exportTo } : {}),
          ...(addresses ? { addresses } : {}),
        });
    }
    const index = indexOnDemandCatalog({
      services,
      virtualServices: snapshot.virtualServices,
      suffix: `svc.${this.opts.domainSuffix}`,
    });
    this.onDemandCatalog = { generation: snapshot.generation, index };
    return index;
  }

  private sidecar(
    snapshot: Snapshot,
    pod: PodInfo,
    subscribed: readonly EgressHost[],
    asksOnDemand: boolean,
  ): GeneratedConfig {
    if (this.sidecarBases?.generation !== snapshot.generation) {
      const before = this.sidecarBases;
      const fqdnOf = (h: string, ns: string): string => fqdn(h, ns, `svc.${this.opts.domainSuffix}`);
      const changes =
        before !== undefined && before.generation < snapshot.generation
          ? configChanges(before.snapshot, snapshot, { fqdnOf, rootNamespace: this.opts.mesh.rootNamespace })
          : null;
      this.sidecarBases = {
        generation: snapshot.generation,
        snapshot,
        keyOf: translationScopeKeyer({ ...snapshot, rootNamespace: this.opts.mesh.rootNamespace, fqdnOf }),
        byScope: new Map(),
        services: new ServiceFingerprints(snapshot.services),
        carried: changes !== null ? { byScope: before!.byScope, changes } : undefined,
      };
    }
    const proxy: ProxyIdentity = { namespace: pod.namespace, labels: pod.labels };
    // pods that see the same ServiceEntries (exportTo), the same rules and the same Sidecar
    // scope share one translation
    const view = hiddenEntriesKey(snapshot.serviceEntries, pod.namespace);
    const fullScope = this.scopeOf(snapshot, pod);
    // a subscription the proxy's Sidecar no longer imports (it changed since) is not honoured
    const visible = canonical(subscribed.filter((e) => scopeImports(fullScope, e.namespace, e.host)));
    // a proxy that never asks (an older build) keeps its whole scope
    const onDemand =
      this.opts.mesh.onDemandHosts && asksOnDemand
        ? { namespace: pod.namespace, subscribed: visible.map(egressRef) }
        : undefined;
    const sidecarScope = onDemand ? onDemandScope(fullScope, pod.namespace, visible) : fullScope;
    const scope = [
      view,
      this.sidecarBases.keyOf(proxy),
      this.exportViewKey(snapshot, pod.namespace),
      scopeKey(fullScope, pod.namespace),
      // on demand, the subscriptions tell proxies apart (the own namespace is always in the scope)
      ...(onDemand ? [`ondemand:${pod.namespace}:${onDemand.subscribed.join(',')}`] : []),
    ].join('\n');
    const { byScope } = this.sidecarBases;
    let shared = byScope.get(scope);
    if (shared !== undefined) {
      // least recently used first: a hit moves to the end
      byScope.delete(scope);
      byScope.set(scope, shared);
    } else if ((shared = this.carriedOver(scope)) !== undefined) {
      this.keepShared(scope, shared);
      this.opts.onTranslation?.('carried');
    } else {
      let result = translate({
        ...this.inputs(snapshot),
        ...(view !== '' ? { proxyNamespace: pod.namespace } : {}),
        listener: { ...SIDECAR_OUTBOUND },
        proxy,
        ...(onDemand !== undefined ||
        sidecarScope.sidecar !== undefined ||
        sidecarScope.outboundMode !== 'ALLOW_ANY'
          ? { scope: sidecarScope }
          : {}),
      });
      if (onDemand) result = withOnDemand(result, onDemand);
      const deps = dependenciesOf(sidecarScope, result.scopeReads, this.sidecarBases.services);
      shared = { result, body: sharedBody(result.config), localized: new Map(), ...(deps ? { deps } : {}) };
      this.keepShared(scope, shared);
      this.opts.onTranslation?.('translated');
      this.logWarnings('sidecar', result);
    }
    const { config: base, body } = this.localizedBase(shared, pod);
    const telemetry = telemetryFor(pod, this.opts.mesh);
    const inbound = this.inbound(snapshot, pod);
    // a sidecar's policies guard its inbound side only: no outbound listener is checked
    const podAuthz = this.authzFor(snapshot, pod);
    const authz = podAuthz === undefined ? undefined : { ...podAuthz, listeners: [] };
    const perPod =
      `"telemetry":${JSON.stringify(telemetry)},"inbound":${JSON.stringify(inbound)}` +
      (authz === undefined ? '' : `,"authz":${JSON.stringify(authz)}`);
    const version = createHash('sha256').update(`${base.version}\n${perPod}`).digest('hex').slice(0, 12);
    // Serializing a config is most of a push's cost (3 ms for 1000 services); the shared part is
    // serialized once per generation and only the pod's version, telemetry and inbound are spliced in.
    const encode = (): string => {
      const v = JSON.stringify(version);
      const head = `{"apiVersion":${JSON.stringify(base.apiVersion)},"kind":"ProxyConfig","version":${v},`;
      return `{"type":"config","version":${v},"config":${head}${body},${perPod}}}\n`;
    };
    const config = { ...base, version, telemetry, inbound, ...(authz !== undefined ? { authz } : {}) };
    return { config, version, encode };
  }

  /** Adds a translation to this generation's, the least recently used dropped past the bound. */
  private keepShared(scope: string, shared: SharedView): void {
    const { byScope } = this.sidecarBases!;
    const cap = this.opts.maxSharedTranslations ?? MAX_SHARED_TRANSLATIONS;
    if (byScope.size >= cap) byScope.delete(byScope.keys().next().value!);
    byScope.set(scope, shared);
  }

  /** The previous generation's translation of `scope`, if nothing it read has changed since. */
  private carriedOver(scope: string): SharedView | undefined {
    const { carried, services } = this.sidecarBases!;
    const before = carried?.byScope.get(scope);
    if (before?.deps === undefined) return undefined;
    carried!.byScope.delete(scope); // taken once: this generation keeps it from now on
    return dependenciesHold(before.deps, services, carried!.changes) ? before : undefined;
  }

  /** The Sidecar resource scoping a pod, and what it lets the pod see (pkg/translate/scope.ts). */
  scopeOf(snapshot: Snapshot, pod: Pick<PodInfo, 'namespace' | 'labels'>): ProxyScope {
    const selected = selectSidecar(snapshot.sidecars ?? [], pod, this.opts.mesh.rootNamespace);
    // weft's Mesh has no outboundTrafficPolicy yet: Istio's default, ALLOW_ANY
    return proxyScope(selected, pod.namespace, 'ALLOW_ANY');
  }

  /**
   * What exportTo hides from a namespace: the VirtualServices, DestinationRules and Services
   * (`networking.istio.io/exportTo`) it does not see; '' when it sees them all. Namespaces with
   * the same view share translations.
   */
  private exportViewKey(snapshot: Snapshot, namespace: string): string {
    if (this.exportViews?.generation !== snapshot.generation)
      this.exportViews = { generation: snapshot.generation, byNamespace: new Map() };
    let key = this.exportViews.byNamespace.get(namespace);
    if (key === undefined) {
      const hidden: string[] = [];
      const ref = (kind: string, o: { metadata: { namespace?: string; name?: string } }): string =>
        `${kind}:${o.metadata.namespace ?? 'default'}/${o.metadata.name ?? ''}`;
      for (const vs of snapshot.virtualServices)
        if (!exportedTo(vs.spec.exportTo, vs.metadata.namespace ?? 'default', namespace))
          hidden.push(ref('vs', vs));
      for (const dr of snapshot.destinationRules)
        if (!ruleExportedTo(dr, namespace)) hidden.push(ref('dr', dr));
      for (const svc of snapshot.services)
        if (!exportedTo(svc.exportTo, svc.namespace, namespace)) hidden.push(`svc:${svc.host}`);
      key = hidden.join(',');
      this.exportViews.byNamespace.set(namespace, key);
    }
    return key;
  }

  /** The shared sidecar translation with locality LB resolved for the pod's locality (cached per key). */
  private localizedBase(shared: SharedView, pod: PodInfo): { config: ProxyConfig; body: string } {
    const policies = shared.result.localityLb;
    if (policies === undefined) return { config: shared.result.config, body: shared.body };
    const proxy = { ...(pod.locality ? { locality: pod.locality } : {}), labels: pod.labels };
    const key = localityKey(policies, proxy);
    let hit = shared.localized.get(key);
    if (!hit) {
      const config = localizeConfig(shared.result.config, policies, proxy);
      hit = { config, body: sharedBody(config) };
      // keys are localities × failoverPriority label values: few, but bounded all the same
      if (shared.localized.size >= MAX_LOCALIZED) shared.localized.clear();
      shared.localized.set(key, hit);
    }
    return hit;
  }

  private inbound(snapshot: Snapshot, pod: PodInfo): Inbound {
    if (this.inboundIndex?.generation !== snapshot.generation) {
      const byNamespace = new Map<string, KubeService[]>();
      for (const svc of snapshot.kubeServices) {
        const ns = svc.metadata.namespace ?? 'default';
        byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), svc]);
      }
      const byHost = new Map(snapshot.services.map((s) => [s.host, s]));
      this.inboundIndex = { generation: snapshot.generation, byNamespace, byHost };
    }
    const { byNamespace, byHost } = this.inboundIndex;
    return inboundFor({
      pod: { namespace: pod.namespace, labels: pod.labels, ...(pod.ip ? { ip: pod.ip } : {}) },
      kubeServices: byNamespace.get(pod.namespace) ?? [],
      peerAuthentications: snapshot.peerAuthentications,
      rootNamespace: this.opts.mesh.rootNamespace,
      meshMode: this.opts.mesh.mtlsMode,
      domainSuffix: this.opts.domainSuffix,
      serviceByHost: (host) => byHost.get(host),
    });
  }

  private gateway(snapshot: Snapshot, pod: PodInfo): GeneratedConfig {
    if (this.gatewayCacheGeneration !== snapshot.generation) {
      this.gatewayCache = new Map();
      this.gatewayCacheGeneration = snapshot.generation;
    }
    const telemetry = telemetryFor(pod, this.opts.mesh);
    const servicePorts = gatewayTargetPorts(snapshot.kubeServices, pod);
    const key = [pod.namespace, pod.labels, telemetry, servicePorts, pod.locality ?? '']
      .map((x) => JSON.stringify(x))
      .join('\n');
    let result = this.gatewayCache.get(key);
    if (!result) {
      const translated = translateGateway({
        ...this.inputs(snapshot),
        gateways: snapshot.gateways,
        proxyNamespace: pod.namespace,
        pod: { namespace: pod.namespace, labels: pod.labels },
        servicePorts,
        telemetry,
      });
      const policies = translated.localityLb;
      const proxy = { ...(pod.locality ? { locality: pod.locality } : {}), labels: pod.labels };
      result =
        policies === undefined
          ? translated
          : { ...translated, config: localizeConfig(translated.config, policies, proxy) };
      this.gatewayCache.set(key, result);
      this.logWarnings('gateway', result);
    }
    const authz = this.authzFor(snapshot, pod, this.opts.mesh.gatewayNumTrustedProxies);
    const withAuthz =
      authz === undefined
        ? result.config
        : {
            ...result.config,
            authz,
            version: createHash('sha256')
              .update(`${result.config.version}\n${JSON.stringify(authz)}`)
              .digest('hex')
              .slice(0, 12),
          };
    const config = this.withCredentials(withAuthz, pod.namespace);
    return {
      config,
      version: config.version,
      encode: () => encodeMessage({ type: 'config', version: config.version, config }),
    };
  }

  /**
   * The AuthorizationPolicies that select `pod`, compiled (pkg/translate/authz.ts); cached per
   * generation by what selection depends on (namespace, labels, Services), so the pods of one
   * Deployment share one compilation.
   */
  private authzFor(snapshot: Snapshot, pod: PodInfo, numTrustedProxies = 0): AuthzBlock | undefined {
    const policies = snapshot.authorizationPolicies ?? [];
    if (policies.length === 0) return undefined;
    if (this.authzGeneration !== snapshot.generation) {
      this.authzCache = new Map();
      this.authzGeneration = snapshot.generation;
    }
    const podServices = podServiceNames(snapshot.kubeServices, pod);
    const key = JSON.stringify([pod.namespace, pod.labels, podServices, numTrustedProxies]);
    if (this.authzCache.has(key)) return this.authzCache.get(key);
    const block = this.compileAuthzFor(snapshot, pod, podServices, numTrustedProxies);
    this.authzCache.set(key, block);
    return block;
  }

  private compileAuthzFor(
    snapshot: Snapshot,
    pod: PodInfo,
    podServices: string[],
    numTrustedProxies: number,
  ): AuthzBlock | undefined {
    const mesh = this.opts.mesh;
    const { block, warnings } = translateAuthz({
      policies: snapshot.authorizationPolicies ?? [],
      pod: { namespace: pod.namespace, labels: pod.labels },
      podServices,
      rootNamespace: mesh.rootNamespace,
      providers: mesh.extensionProviders,
      services: snapshot.services,
      domainSuffix: `svc.${this.opts.domainSuffix}`,
      numTrustedProxies,
    });
    for (const w of warnings) this.warnOnce(`authz ${w}`);
    return block;
  }

  private warnOnce(message: string): void {
    if (this.loggedVersions.has(message)) return;
    if (this.loggedVersions.size > 1000) this.loggedVersions.clear();
    this.loggedVersions.add(message);
    this.opts.log.warn('Authorization policy warning', { warning: message });
  }

  /**
   * The gateway's config with the credentials its clusters name (read from Secrets in its own
   * namespace, per call: the translation is cached, the Secrets change on their own); the version
   * covers them, so a rotated Secret is pushed.
   */
  private withCredentials(config: ProxyConfig, namespace: string): ProxyConfig {
    const source = this.opts.credentials;
    const names = credentialNames(config);
    if (source === undefined || names.length === 0) return config;
    const credentials = Object.fromEntries(names.map((n) => [n, source.get(namespace, n)]));
    const version = createHash('sha256')
      .update(`${config.version}\n${JSON.stringify(credentials)}`)
      .digest('hex')
      .slice(0, 12);
    return { ...config, version, credentials };
  }

  private inputs(snapshot: Snapshot) {
    // one resolution per workload label set per translation: the endpoints of a Deployment share it
    const resolved = new Map<string, EffectivePeerAuthentication>();
    const scope = { rootNamespace: this.opts.mesh.rootNamespace, meshMode: this.opts.mesh.mtlsMode };
    const peerModeOf = (namespace: string, labels: Record<string, string>, port: number): PeerMode => {
      const key = `${namespace}\n${JSON.stringify(labels)}`;
      let pa = resolved.get(key);
      if (pa === undefined)
        resolved.set(
          key,
          (pa = resolvePeerAuthentication(snapshot.peerAuthentications, { namespace, labels }, scope)),
        );
      return (pa.ports[port] ?? pa).mode;
    };
    return {
      peerModeOf,
      services: snapshot.services,
      virtualServices: snapshot.virtualServices,
      destinationRules: snapshot.destinationRules,
      serviceEntries: snapshot.serviceEntries,
      workloadEntries: snapshot.workloadEntries ?? [],
      workloadPods: snapshot.pods ?? [],
      rootNamespace: this.opts.mesh.rootNamespace,
      domainSuffix: `svc.${this.opts.domainSuffix}`,
      pathNormalization: this.opts.mesh.pathNormalization,
      trustDomain: this.opts.mesh.trustDomain,
      // a mesh-wide DISABLE means no sidecar terminates mTLS: auto-mTLS would only break traffic
      autoMtls: this.opts.mesh.mtlsMode !== 'DISABLE',
      proxyHeaders: this.opts.mesh.proxyHeaders,
      ...(this.opts.shadowHostSuffix === true ? { shadowHostSuffix: true } : {}),
    };
  }

  private logWarnings(kind: ProxyKind, result: TranslateResult): void {
    const version = result.config.version;
    if (result.warnings.length === 0 || this.loggedVersions.has(version)) return;
    if (this.loggedVersions.size > 1000) this.loggedVersions.clear();
    this.loggedVersions.add(version);
    for (const w of result.warnings) this.opts.log.warn('Translation warning', { kind, version, warning: w });
  }
}
