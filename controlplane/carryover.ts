/**
 * Scoped sidecar translations carried into the next registry generation (ADR 0023 decision 8).
 *
 * weftd caches sidecar translations per registry generation. Most generations are endpoint churn:
 * one Service's EndpointSlice or a pod of it changed. A translation whose scope is narrow (a
 * Sidecar's egress, or on demand: the proxy's namespace plus its subscriptions) read a handful of
 * services; if none of them changed, translating it again gives the same config. So a
 * translation is reused in the next generation when
 *
 * 1. none of the config objects a sidecar translation reads besides Services changed
 *    (`configObjectsUnchanged`: VirtualServices, DestinationRules, ServiceEntries, WorkloadEntries,
 *    PeerAuthentications, Sidecars, and the pods when ServiceEntries select them), and
 * 2. every registry host it read, or would have read had it existed, has the same records
 *    (`TranslationDeps.hosts`: the services its scope kept, its VirtualServices' hosts and
 *    destinations, its egress FQDNs), and every namespace its egress imports with a wildcard has
 *    the same members (`TranslationDeps.namespaces`: a Service created there joins the scope).
 *
 * Anything else (the mesh settings, a whole-scope or `*`/wildcard egress) is translated again,
 * as before. The check is on content, never on event bookkeeping, so a missed case costs a
 * translation and cannot serve a stale config.
 */
import type { ServiceRecord } from '../pkg/translate/index.js';
import type { ProxyScope } from '../pkg/translate/scope.js';
import type { Snapshot } from './registry.js';

/** What a scoped translation read of the registry's services, with what each looked like then. */
export interface TranslationDeps {
  /** host → its records (fingerprint; '' when there was none). */
  hosts: Map<string, string>;
  /** namespace → its services' hosts. */
  namespaces: Map<string, string>;
}

/** The snapshot parts a sidecar translation reads besides `services`, with their kinds. */
const CONFIG_PARTS = [
  ['VirtualService', 'virtualServices'],
  ['DestinationRule', 'destinationRules'],
  ['ServiceEntry', 'serviceEntries'],
  ['WorkloadEntry', 'workloadEntries'],
  ['PeerAuthentication', 'peerAuthentications'],
  ['Sidecar', 'sidecars'],
  ['Pod', 'pods'],
] as const satisfies readonly (readonly [string, keyof Snapshot])[];

const NONE: readonly unknown[] = [];

/**
 * Did no config object a sidecar translation reads change from `before` to `after`? The
 * registry says per kind at which generation one last changed (`kindGenerations`); a snapshot
 * built by hand has no such record and is compared by object identity (a rebuilt one differs).
 */
export function configObjectsUnchanged(before: Snapshot, after: Snapshot): boolean {
  for (const [kind, part] of CONFIG_PARTS) {
    const a = (before[part] as readonly unknown[] | undefined) ?? NONE;
    const b = (after[part] as readonly unknown[] | undefined) ?? NONE;
    if (a.length === 0 && b.length === 0) continue; // pods are only listed when something selects them
    const ga = before.kindGenerations?.[kind];
    const gb = after.kindGenerations?.[kind];
    if (ga !== undefined && gb !== undefined) {
      if (ga !== gb) return false;
    } else if (a.length !== b.length || a.some((o, i) => o !== b[i])) return false;
  }
  return true;
}

/** One generation's services, as the dependency checks read them (each computed once, on first use). */
export class ServiceFingerprints {
  private byHost: Map<string, ServiceRecord[]> | undefined;
  private byNamespace: Map<string, string[]> | undefined;
  private readonly fingerprints = new Map<string, string>();
  private readonly members = new Map<string, string>();

  constructor(private readonly services: readonly ServiceRecord[]) {}

  /** The records of `host` as one string ('' when there is none). */
  fingerprint(host: string): string {
    let fp = this.fingerprints.get(host);
    if (fp === undefined) {
      if (this.byHost === undefined) {
        this.byHost = new Map();
        for (const s of this.services) {
          const list = this.byHost.get(s.host);
          if (list) list.push(s);
          else this.byHost.set(s.host, [s]);
        }
      }
      const records = this.byHost.get(host);
      fp = records === undefined ? '' : JSON.stringify(records);
      this.fingerprints.set(host, fp);
    }
    return fp;
  }

  /** The hosts of a namespace's services, sorted, as one string. */
  membersOf(namespace: string): string {
    let m = this.members.get(namespace);
    if (m === undefined) {
      if (this.byNamespace === undefined) {
        this.byNamespace = new Map();
        for (const s of this.services) {
          const list = this.byNamespace.get(s.namespace);
          if (list) list.push(s.host);
          else this.byNamespace.set(s.namespace, [s.host]);
        }
      }
      m = [...(this.byNamespace.get(namespace) ?? [])].sort().join('\n');
      this.members.set(namespace, m);
    }
    return m;
  }
}

/**
 * What a translation with `scope` that read `scopeHosts` depends on; undefined when it cannot be
 * carried (no egress: the whole registry; an egress entry with a wildcard host in every namespace).
 */
export function dependenciesOf(
  scope: ProxyScope,
  scopeHosts: readonly string[] | undefined,
  services: ServiceFingerprints,
): TranslationDeps | undefined {
  if (scope.egress === undefined || scopeHosts === undefined) return undefined;
  const deps: TranslationDeps = { hosts: new Map(), namespaces: new Map() };
  const host = (h: string): void => void deps.hosts.set(h, services.fingerprint(h));
  for (const e of scope.egress) {
    if (e.namespace === '~') continue;
    if (!e.host.startsWith('*')) host(e.host);
    else if (e.namespace === '*') return undefined;
    else deps.namespaces.set(e.namespace, services.membersOf(e.namespace));
  }
  for (const h of scopeHosts) host(h);
  return deps;
}

/** Does everything `deps` recorded look the same in this generation's services? */
export function dependenciesHold(deps: TranslationDeps, services: ServiceFingerprints): boolean {
  for (const [ns, members] of deps.namespaces) if (services.membersOf(ns) !== members) return false;
  for (const [h, fp] of deps.hosts) if (services.fingerprint(h) !== fp) return false;
  return true;
}
