/**
 * Delta pushes (ADR 0020): a ProxyConfig as a set of named resources, each versioned by the hash
 * of its JSON, so weftd can send a proxy only the resources that changed since the state it
 * holds, and the proxy can check that what it built is exactly what weftd meant.
 *
 * Resources (names are `<type>/<name>`; the natural units of the config):
 *   - `listeners`, `clusters`, `secrets`: the ordered names of each collection (order is kept, so
 *     a joined config equals the full one exactly; `secrets` exists iff `credentials` does);
 *   - `listener/<L>`: a listener, its virtual hosts replaced by their ordered names;
 *   - `vhost/<L>/<V>`: one virtual host (a VirtualService change touches only its hosts);
 *   - `cluster/<C>`: a cluster without its endpoints; `endpoints/<C>`: its endpoints (an endpoint
 *     change touches only this);
 *   - `secret/<S>`: one gateway credential;
 *   - `config/<field>`: every other top-level field (telemetry, inbound, authz, jwt, ...), so a
 *     field added to ProxyConfig later is carried without a protocol change. `version` is not a
 *     resource: the message carries it.
 *
 * The state hash covers every resource name and version. It is two-level so weftd can compute
 * it per proxy cheaply: the collections (listeners, vhosts, clusters, endpoints) are what many
 * proxies share, hashed once per shared translation; the singletons (config/*, secrets) are few
 * and per proxy. Both sides compute it with the functions below.
 */
import { createHash } from 'node:crypto';
import type {
  Cluster,
  Listener,
  ProxyConfig,
  UpstreamCredential,
  VirtualHost,
} from '../proxyconfig/types.js';
import { WeftError } from '../errors/index.js';

/**
 * A resource's version: the hash of its JSON. 128 bits: values carry tenant-written content
 * (VirtualService fields), and at 64 bits a birthday search could make two versions of one
 * resource share a version, so the change would never be pushed.
 */
export function resourceVersion(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}

/** Resource name → version. */
export type VersionIndex = ReadonlyMap<string, string>;

/** Resource name → value, of one config. */
export type ResourceValues = ReadonlyMap<string, unknown>;

/** The shared part of a config (listeners, vhosts, clusters, endpoints): versions and their digest. */
export interface CollectionIndex {
  versions: VersionIndex;
  digest: string;
}

/** What a proxy holds, as weftd and the proxy describe it: no config values, only versions. */
export interface HeldState {
  collections: CollectionIndex;
  /** config/*, secrets, secret/* (a handful per proxy). */
  singletons: VersionIndex;
  /** stateHash(collections.digest, singletons): what a delta's `base` and `state` name. */
  state: string;
}

/** Top-level fields that are collections of resources, not `config/<field>` singletons. */
const COLLECTION_FIELDS = new Set(['version', 'listeners', 'clusters', 'credentials']);

/** True for the resources that belong to the collections (shared) part of a config. */
export function isCollectionResource(name: string): boolean {
  return (
    name === 'listeners' ||
    name === 'clusters' ||
    name.startsWith('listener/') ||
    name.startsWith('vhost/') ||
    name.startsWith('cluster/') ||
    name.startsWith('endpoints/')
  );
}

/**
 * The collections of a config as resources; null when two resources would have one name (two
 * clusters or listeners of one name, or names that collide through `/`): such a config can only
 * be pushed whole.
 */
export function splitCollections(listeners: Listener[], clusters: Cluster[]): Map<string, unknown> | null {
  const out = new Map<string, unknown>();
  const put = (name: string, value: unknown): boolean => {
    if (out.has(name)) return false;
    out.set(name, value);
    return true;
  };
  if (
    !put(
      'listeners',
      listeners.map((l) => l.name),
    )
  )
    return null;
  for (const l of listeners) {
    if (l.protocol !== 'HTTP') {
      if (!put(`listener/${l.name}`, l)) return null;
      continue;
    }
    if (!put(`listener/${l.name}`, { ...l, virtualHosts: l.virtualHosts.map((v) => v.name) })) return null;
    for (const v of l.virtualHosts) if (!put(`vhost/${l.name}/${v.name}`, v)) return null;
  }
  if (
    !put(
      'clusters',
      clusters.map((c) => c.name),
    )
  )
    return null;
  for (const c of clusters) {
    const { endpoints, ...rest } = c;
    if (!put(`cluster/${c.name}`, rest) || !put(`endpoints/${c.name}`, endpoints)) return null;
  }
  return out;
}

/** The per-proxy resources of a config: every other top-level field and the credentials. */
export function splitSingletons(config: ProxyConfig): Map<string, unknown> | null {
  const out = new Map<string, unknown>();
  for (const [field, value] of Object.entries(config))
    if (!COLLECTION_FIELDS.has(field) && value !== undefined) out.set(`config/${field}`, value);
  if (config.credentials !== undefined) {
    const names = Object.keys(config.credentials);
    out.set('secrets', names);
    for (const n of names) out.set(`secret/${n}`, config.credentials[n]);
  }
  return out;
}

/** Versions of every resource (the hash of each value's JSON). */
export function versionsOf(values: ResourceValues): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of values) out.set(name, resourceVersion(value));
  return out;
}

/** The digest of a set of versions: order-independent (names sorted), any change of name or version changes it. */
export function indexDigest(versions: VersionIndex): string {
  const h = createHash('sha256');
  for (const name of [...versions.keys()].sort()) h.update(`${name}\n${versions.get(name)}\n`);
  return h.digest('hex').slice(0, 32);
}

/** The state hash of a config: its collections' digest and its singletons. */
export function stateHash(collectionsDigest: string, singletons: VersionIndex): string {
  return createHash('sha256')
    .update(`collections\n${collectionsDigest}\n${indexDigest(singletons)}\n`)
    .digest('hex')
    .slice(0, 32);
}

/** Added or updated (in `next` with another version than in `held`) and removed names, each sorted. */
export interface IndexDiff {
  changed: string[];
  removed: string[];
}

export function diffIndexes(held: VersionIndex, next: VersionIndex): IndexDiff {
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [name, version] of next) if (held.get(name) !== version) changed.push(name);
  for (const name of held.keys()) if (!next.has(name)) removed.push(name);
  return { changed: changed.sort(), removed: removed.sort() };
}

/** A delta the proxy cannot apply to what it holds: it NACKs with `resync` and weftd sends the whole config. */
export function deltaError(message: string): WeftError {
  return new WeftError('WEFT_DISCOVERY_DELTA_MISMATCH', message);
}

/**
 * Rebuilds a ProxyConfig from resources (the inverse of the two splits): every name an index
 * lists must be present. A listener naming a vhost that is not there (a delta removed a resource
 * another still references) is a delta error, never a config silently missing a host.
 */
export function joinConfig(resources: ResourceValues, version: string): ProxyConfig {
  const need = (name: string): unknown => {
    if (!resources.has(name)) throw deltaError(`resource ${name} is referenced but not held`);
    return resources.get(name);
  };
  const names = (name: string): string[] => {
    const v = need(name);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      throw deltaError(`resource ${name} must be a list of names`);
    return v as string[];
  };
  const config: Record<string, unknown> = {};
  for (const [name, value] of resources)
    if (name.startsWith('config/')) config[name.slice('config/'.length)] = value;
  config.version = version;
  config.listeners = names('listeners').map((l) => {
    const listener = object(need(`listener/${l}`), `listener/${l}`) as unknown as Listener;
    if (listener.protocol !== 'HTTP') return listener;
    if (!Array.isArray(listener.virtualHosts)) throw deltaError(`listener/${l} has no virtualHosts list`);
    const hosts = (listener.virtualHosts as unknown as string[]).map((v) =>
      object(need(`vhost/${l}/${v}`), `vhost/${l}/${v}`),
    );
    return { ...listener, virtualHosts: hosts as unknown as VirtualHost[] };
  });
  config.clusters = names('clusters').map((c) => ({
    ...object(need(`cluster/${c}`), `cluster/${c}`),
    endpoints: need(`endpoints/${c}`),
  }));
  if (resources.has('secrets')) {
    const credentials: Record<string, UpstreamCredential> = {};
    for (const s of names('secrets'))
      credentials[s] = object(need(`secret/${s}`), `secret/${s}`) as unknown as UpstreamCredential;
    config.credentials = credentials;
  }
  return config as unknown as ProxyConfig;
}

function object(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw deltaError(`resource ${name} must be an object`);
  return v as Record<string, unknown>;
}

/** A config's held state computed from scratch (the proxy, on a full config; tests). Null: not splittable. */
export function heldStateOf(config: ProxyConfig): { held: HeldState; values: Map<string, unknown> } | null {
  const collections = splitCollections(config.listeners, config.clusters);
  const singletons = splitSingletons(config);
  if (collections === null || singletons === null) return null;
  for (const name of singletons.keys()) if (collections.has(name)) return null;
  const cv = versionsOf(collections);
  const sv = versionsOf(singletons);
  const digest = indexDigest(cv);
  return {
    held: { collections: { versions: cv, digest }, singletons: sv, state: stateHash(digest, sv) },
    values: new Map([...collections, ...singletons]),
  };
}
