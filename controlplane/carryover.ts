/**
 * Scoped sidecar translations carried into the next registry generation (ADR 0023 decision 8).
 *
 * weftd caches sidecar translations per registry generation. Most generations are endpoint churn
 * (one Service's EndpointSlice or a pod of it) or one edited mesh object. A translation whose
 * scope is narrow (a Sidecar's egress, or on demand: the proxy's namespace plus its
 * subscriptions) read a handful of services and rules; if none of them changed, translating it
 * again gives the same config. So a translation is reused in the next generation when
 *
 * 1. no edited config object concerns it (`configChanges`, at most `MAX_CHANGED_RULES` of each
 *    kind, both versions of an edited one): no VirtualService its scope imports, no
 *    DestinationRule whose host overlaps a host it read, no ServiceEntry with a host its scope
 *    imports or it read, no PeerAuthentication of a namespace whose services it read (of the root
 *    namespace: every one), not its own Sidecar. While a ServiceEntry selects workloads, an
 *    edited WorkloadEntry or pod translates everything again (otherwise none is read);
 * 2. every registry host it read, or would have read had it existed, has the same records
 *    (`TranslationDeps.hosts`: the services its scope kept, its VirtualServices' hosts and
 *    destinations, its egress FQDNs), and every namespace its egress imports with a wildcard has
 *    the same members (`TranslationDeps.namespaces`: a Service created there joins the scope).
 *
 * Whatever else a translation depends on is in its cache key (the ServiceEntry and exportTo
 * views, the translation scope, the Sidecar in force, the subscriptions), and the mesh settings
 * drop the cache. A whole-scope or `*`/wildcard egress is translated again, as before. The checks
 * are on content and object identity, never on event bookkeeping alone, so a missed case costs a
 * translation and cannot serve a stale config.
 */
import type {
  DestinationRule,
  PeerAuthentication,
  ServiceEntry,
  Sidecar,
  VirtualService,
} from '../pkg/api/index.js';
import type { ServiceRecord, TranslateResult } from '../pkg/translate/index.js';
import {
  hostsOverlap,
  scopeImports,
  scopeImportsVirtualService,
  sidecarRef,
  type ProxyScope,
} from '../pkg/translate/scope.js';
import type { Snapshot } from './registry.js';

/** What a scoped translation read of the registry, with what each service looked like then. */
export interface TranslationDeps {
  /** Its egress: which VirtualServices it imports. */
  scope: ProxyScope;
  /** host → its records (fingerprint; '' when there was none). */
  hosts: Map<string, string>;
  /** namespace → its services' hosts. */
  namespaces: Map<string, string>;
  /** The namespaces of the services it kept. */
  serviceNamespaces: Set<string>;
}

/**
 * The mesh objects that changed between two generations (both versions of an edited one), as far
 * as the checks read them: hosts as FQDNs, PeerAuthentications by namespace, Sidecars by
 * `namespace/name`.
 */
export interface RuleChanges {
  virtualServices: { namespace: string; hosts: string[] }[];
  destinationRuleHosts: string[];
  serviceEntries: { namespace: string; hosts: string[] }[];
  peerAuthenticationNamespaces: Set<string>;
  sidecars: Set<string>;
}

/** More changed rules than this in one generation: everything is translated again. */
export const MAX_CHANGED_RULES = 64;

/**
 * Kinds a sidecar translation reads only as the endpoints of ServiceEntries with a
 * workloadSelector; while there is such an entry, any change of theirs translates everything again.
 */
const SELECTED_ENDPOINTS = [
  ['WorkloadEntry', 'workloadEntries'],
  ['Pod', 'pods'],
] as const satisfies readonly (readonly [string, keyof Snapshot])[];

const selects = (s: Snapshot): boolean =>
  s.serviceEntries.some((se) => se.spec.workloadSelector !== undefined);

type Kind = keyof NonNullable<Snapshot['kindGenerations']>;

const partOf = <T>(s: Snapshot, part: keyof Snapshot): readonly T[] =>
  (s[part] as readonly T[] | undefined) ?? [];

/**
 * The objects of a kind in one snapshot and not the other (an edited object: both versions);
 * null past MAX_CHANGED_RULES. The registry records per kind the generation at which one last
 * changed (`kindGenerations`): equal, nothing changed. Otherwise objects are told apart by
 * identity: the informer's cache keeps an object until it is updated (a snapshot built by hand
 * and rebuilt differs wholly).
 */
function changedObjects<T>(before: Snapshot, after: Snapshot, kind: Kind, part: keyof Snapshot): T[] | null {
  const a = partOf<T>(before, part);
  const b = partOf<T>(after, part);
  const ga = before.kindGenerations?.[kind];
  if (ga !== undefined && ga === after.kindGenerations?.[kind]) return [];
  const inA = new Set(a);
  const inB = new Set(b);
  const out: T[] = [];
  for (const [list, other] of [
    [a, inB],
    [b, inA],
  ] as const)
    for (const o of list)
      if (!other.has(o)) {
        out.push(o);
        if (out.length > MAX_CHANGED_RULES) return null;
      }
  return out;
}

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

/**
 * What changed from `before` to `after` among the objects a translation reads; null when every
 * translation must be made again (a WorkloadEntry or pod while a ServiceEntry selects workloads,
 * a PeerAuthentication of the root namespace, too many edits). `fqdnOf` spells a rule's host as
 * the registry does.
 */
export function configChanges(
  before: Snapshot,
  after: Snapshot,
  opts: { fqdnOf: (host: string, namespace: string) => string; rootNamespace: string },
): RuleChanges | null {
  if (selects(before) || selects(after))
    for (const [kind, part] of SELECTED_ENDPOINTS) {
      const changed = changedObjects(before, after, kind, part);
      if (changed === null || changed.length > 0) return null;
    }
  const vss = changedObjects<VirtualService>(before, after, 'VirtualService', 'virtualServices');
  const drs = changedObjects<DestinationRule>(before, after, 'DestinationRule', 'destinationRules');
  const ses = changedObjects<ServiceEntry>(before, after, 'ServiceEntry', 'serviceEntries');
  const pas = changedObjects<PeerAuthentication>(before, after, 'PeerAuthentication', 'peerAuthentications');
  const scs = changedObjects<Sidecar>(before, after, 'Sidecar', 'sidecars');
  if (vss === null || drs === null || ses === null || pas === null || scs === null) return null;
  const peerNamespaces = new Set(pas.map(nsOf));
  if (peerNamespaces.has(opts.rootNamespace)) return null;
  const hostsOf = (o: VirtualService | ServiceEntry) => ({
    namespace: nsOf(o),
    hosts: (o.spec.hosts ?? []).map((h) => opts.fqdnOf(h, nsOf(o))),
  });
  return {
    virtualServices: vss.map(hostsOf),
    destinationRuleHosts: drs.map((dr) =>
      typeof dr.spec.host === 'string' ? opts.fqdnOf(dr.spec.host, nsOf(dr)) : '*',
    ),
    serviceEntries: ses.map(hostsOf),
    peerAuthenticationNamespaces: peerNamespaces,
    sidecars: new Set(scs.map(sidecarRef)),
  };
}

/** One generation's services, as the dependency checks read them (each computed once, on first use). */
export class ServiceFingerprints {
  private grouped: { byHost: Map<string, ServiceRecord[]>; byNamespace: Map<string, string[]> } | undefined;
  private readonly fingerprints = new Map<string, string>();
  private readonly members = new Map<string, string>();

  constructor(private readonly services: readonly ServiceRecord[]) {}

  /** The records of `host` as one string ('' when there is none). */
  fingerprint(host: string): string {
    let fp = this.fingerprints.get(host);
    if (fp === undefined) {
      const records = this.group().byHost.get(host);
      fp = records === undefined ? '' : JSON.stringify(records);
      this.fingerprints.set(host, fp);
    }
    return fp;
  }

  /** The hosts of a namespace's services, sorted, as one string. */
  membersOf(namespace: string): string {
    let m = this.members.get(namespace);
    if (m === undefined) {
      m = [...(this.group().byNamespace.get(namespace) ?? [])].sort().join('\n');
      this.members.set(namespace, m);
    }
    return m;
  }

  /** The services by host and the hosts by namespace, in one pass over the generation's services. */
  private group(): NonNullable<ServiceFingerprints['grouped']> {
    if (this.grouped === undefined) {
      const byHost = new Map<string, ServiceRecord[]>();
      const byNamespace = new Map<string, string[]>();
      for (const s of this.services) {
        const records = byHost.get(s.host);
        if (records) records.push(s);
        else byHost.set(s.host, [s]);
        const hosts = byNamespace.get(s.namespace);
        if (hosts) hosts.push(s.host);
        else byNamespace.set(s.namespace, [s.host]);
      }
      this.grouped = { byHost, byNamespace };
    }
    return this.grouped;
  }
}

/**
 * What a translation with `scope` that read `scopeHosts` depends on; undefined when it cannot be
 * carried (no egress: the whole registry; an egress entry with a wildcard host in every namespace).
 */
export function dependenciesOf(
  scope: ProxyScope,
  reads: TranslateResult['scopeReads'],
  services: ServiceFingerprints,
): TranslationDeps | undefined {
  if (scope.egress === undefined || reads === undefined) return undefined;
  const deps: TranslationDeps = {
    scope,
    hosts: new Map(),
    namespaces: new Map(),
    serviceNamespaces: new Set(reads.serviceNamespaces),
  };
  const host = (h: string): void => void deps.hosts.set(h, services.fingerprint(h));
  for (const e of scope.egress) {
    if (e.namespace === '~') continue;
    if (!e.host.startsWith('*')) host(e.host);
    else if (e.namespace === '*') return undefined;
    else deps.namespaces.set(e.namespace, services.membersOf(e.namespace));
  }
  for (const h of reads.hosts) host(h);
  return deps;
}

/**
 * Does everything `deps` recorded look the same in this generation: no changed rule concerns it,
 * and its services and namespaces are as they were?
 */
export function dependenciesHold(
  deps: TranslationDeps,
  services: ServiceFingerprints,
  changes: RuleChanges,
): boolean {
  const { scope } = deps;
  if (scope.sidecar !== undefined && changes.sidecars.has(sidecarRef(scope.sidecar.sidecar))) return false;
  for (const ns of changes.peerAuthenticationNamespaces) if (deps.serviceNamespaces.has(ns)) return false;
  for (const vs of changes.virtualServices)
    if (scopeImportsVirtualService(scope, vs.namespace, vs.hosts)) return false;
  const readOverlapping = (host: string): boolean => {
    for (const h of deps.hosts.keys()) if (hostsOverlap(host, h)) return true;
    return false;
  };
  for (const drHost of changes.destinationRuleHosts) if (readOverlapping(drHost)) return false;
  for (const se of changes.serviceEntries)
    for (const h of se.hosts) if (scopeImports(scope, se.namespace, h) || readOverlapping(h)) return false;
  for (const [ns, members] of deps.namespaces) if (services.membersOf(ns) !== members) return false;
  for (const [h, fp] of deps.hosts) if (services.fingerprint(h) !== fp) return false;
  return true;
}
