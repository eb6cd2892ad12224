/**
 * weftd's side of delta pushes (ADR 0020; resources and hashes: pkg/discovery/delta.ts).
 *
 * Cost model: proxies that share a translation share its `listeners` and `clusters` arrays
 * (controlplane/configgen.ts), so the collections are split and hashed once per shared
 * translation (cached by that array, weakly: gone with the config), and the diff between two
 * shared indexes and its encoded resources are computed once for every proxy that moves from one
 * to the other. Per proxy only the singletons (config/*, secrets: a handful) are hashed and
 * diffed.
 *
 * Memory: what weftd keeps of a proxy is a HeldState: a reference to a shared CollectionIndex
 * (names and versions, never config values) plus its few singleton versions. A stream keeps at
 * most three (sent, acked, the base of a pending backlog); closed streams leave theirs in a
 * ResumeCache bounded in entries, age and distinct indexes pinned.
 */
import {
  diffIndexes,
  indexDigest,
  isCollectionResource,
  splitCollections,
  splitSingletons,
  stateHash,
  versionsOf,
  type CollectionIndex,
  type HeldState,
  type IndexDiff,
  type ResourceValues,
} from '../pkg/discovery/delta.js';
import type { Cluster, Listener, ProxyConfig } from '../pkg/proxyconfig/types.js';

interface SplitCollections {
  index: CollectionIndex;
  values: ResourceValues;
}

/** A config's state and the values to send from it. */
export interface Planned {
  held: HeldState;
  collections: SplitCollections;
  singletons: ResourceValues;
}

/** A delta larger than this share of the full config is sent as the full config instead. */
export const DELTA_MAX_SHARE = 0.5;

const splits = new WeakMap<Listener[], { clusters: Cluster[]; split: SplitCollections | null }>();

/** The collections of a config, split and hashed once per shared listeners/clusters pair. */
export function collectionsOf(config: ProxyConfig): SplitCollections | null {
  const hit = splits.get(config.listeners);
  if (hit !== undefined && hit.clusters === config.clusters) return hit.split;
  const values = splitCollections(config.listeners, config.clusters);
  let split: SplitCollections | null = null;
  if (values !== null) {
    const versions = versionsOf(values);
    split = { index: { versions, digest: indexDigest(versions) }, values };
  }
  splits.set(config.listeners, { clusters: config.clusters, split });
  return split;
}

/**
 * Plans of the configs built on one shared translation, by config version (a content hash of the
 * whole config: equal versions are equal configs), held weakly by the translation's listeners:
 * the pods of one workload get one plan (one hashing of their singletons, one delta line per
 * move), not one each.
 */
const plans = new WeakMap<Listener[], Map<string, Planned | null>>();

/** Distinct config versions whose plans are kept per shared translation (oldest dropped past it). */
export const MAX_PLANS_PER_TRANSLATION = 1024;

/** What a proxy holding `config` holds; null when the config cannot be split (duplicate names). */
export function planFor(config: ProxyConfig): Planned | null {
  let byVersion = plans.get(config.listeners);
  const hit = byVersion?.get(config.version);
  if (hit !== undefined && (hit === null || hit.collections === collectionsOf(config))) return hit;
  const planned = computePlan(config);
  if (byVersion === undefined) plans.set(config.listeners, (byVersion = new Map()));
  if (byVersion.size >= MAX_PLANS_PER_TRANSLATION) byVersion.delete(byVersion.keys().next().value!);
  byVersion.set(config.version, planned);
  return planned;
}

function computePlan(config: ProxyConfig): Planned | null {
  const collections = collectionsOf(config);
  const singletons = splitSingletons(config);
  if (collections === null || singletons === null) return null;
  for (const name of singletons.keys()) if (isCollectionResource(name)) return null;
  const versions = versionsOf(singletons);
  return {
    collections,
    singletons,
    held: {
      collections: collections.index,
      singletons: versions,
      state: stateHash(collections.index.digest, versions),
    },
  };
}

/** The `resources` and `removed` parts of a delta for the collections, shared by every proxy making the same move. */
interface CollectionDelta {
  /**
   * The index this delta leads to, weakly: a strong reference would chain every later index
   * (and its delta) behind the oldest one still held, so one proxy that stops ACKing would keep
   * every generation since in memory.
   */
  next: WeakRef<CollectionIndex>;
  diff: IndexDiff;
  /** The changed resources, each `{"name","version","value"}`, comma-joined. */
  resources: string;
}

const collectionDeltas = new WeakMap<CollectionIndex, CollectionDelta>();

function collectionDelta(from: CollectionIndex, to: SplitCollections): CollectionDelta {
  const hit = collectionDeltas.get(from);
  if (hit?.next.deref() === to.index) return hit;
  const diff = diffIndexes(from.versions, to.index.versions);
  const resources = diff.changed
    .map((n) => encodeResource(n, to.index.versions.get(n)!, to.values.get(n)))
    .join(',');
  const d: CollectionDelta = { next: new WeakRef(to.index), diff, resources };
  collectionDeltas.set(from, d);
  return d;
}

function encodeResource(name: string, version: string, value: unknown): string {
  return `{"name":${JSON.stringify(name)},"version":${JSON.stringify(version)},"value":${JSON.stringify(value)}}`;
}

/** What a delta changes, for logs and tests. */
export interface DeltaSummary {
  changed: string[];
  removed: string[];
}

/**
 * A delta line from one state to a plan, without its nonce (the only per-push part): every proxy
 * making the same move (the pods of a workload, after one change) gets it spliced, not built.
 */
interface EncodedMove {
  /** `{"type":"delta","version":…,"nonce":` */
  head: string;
  /** `,"base":…}\n` */
  tail: string;
  summary: DeltaSummary;
}

/** Moves to each plan by the state they start from and the version, weakly by the plan (bounded per plan). */
const moves = new WeakMap<Planned, Map<string, EncodedMove | null>>();
const MAX_MOVES_PER_PLAN = 16;

/**
 * The delta line from `from` to `to` (one NDJSON line), or null when it would not be worth it
 * (more than DELTA_MAX_SHARE of `fullLength`).
 */
export function encodeDelta(
  from: HeldState,
  to: Planned,
  version: string,
  nonce: string,
  fullLength: () => number,
): { line: string; summary: DeltaSummary } | null {
  // a state hash names its collections and singletons: with the version, the whole line but the nonce
  const key = `${from.state}\n${version}`;
  let byBase = moves.get(to);
  let move = byBase?.get(key);
  if (move === undefined) {
    move = encodeMove(from, to, version, fullLength);
    if (byBase === undefined) moves.set(to, (byBase = new Map()));
    if (byBase.size >= MAX_MOVES_PER_PLAN) byBase.delete(byBase.keys().next().value!);
    byBase.set(key, move);
  }
  if (move === null) return null;
  return { line: `${move.head}${JSON.stringify(nonce)}${move.tail}`, summary: move.summary };
}

function encodeMove(
  from: HeldState,
  to: Planned,
  version: string,
  fullLength: () => number,
): EncodedMove | null {
  const shared = collectionDelta(from.collections, to.collections);
  const own = diffIndexes(from.singletons, to.held.singletons);
  const ownResources = own.changed.map((n) =>
    encodeResource(n, to.held.singletons.get(n)!, to.singletons.get(n)),
  );
  const resources = [shared.resources, ...ownResources].filter((r) => r !== '').join(',');
  const removed = [...shared.diff.removed, ...own.removed];
  if (resources.length > 64 * 1024 && resources.length > DELTA_MAX_SHARE * fullLength()) return null;
  return {
    head: `{"type":"delta","version":${JSON.stringify(version)},"nonce":`,
    tail:
      `,"base":${JSON.stringify(from.state)},"state":${JSON.stringify(to.held.state)},` +
      `"removed":${JSON.stringify(removed)},"resources":[${resources}]}\n`,
    summary: { changed: [...shared.diff.changed, ...own.changed], removed },
  };
}

/** Entries of the resume cache, and how many distinct shared indexes they may pin. */
export const RESUME_MAX_ENTRIES = 4096;
export const RESUME_MAX_INDEXES = 32;
export const RESUME_TTL_MS = 10 * 60_000;

interface ResumeEntry {
  states: HeldState[];
  at: number;
}

/**
 * What the streams of recently disconnected proxies held, by proxy (`kind/namespace/pod`): a
 * reconnecting proxy is resumed only from a state weftd sent to that same proxy, found by one
 * lookup and a hash comparison (a forged or foreign state is a miss: a full config). Bounded in
 * entries, age, and the distinct shared indexes the entries keep alive (oldest evicted first).
 */
export class ResumeCache {
  private readonly entries = new Map<string, ResumeEntry>();
  private readonly pinned = new Map<CollectionIndex, number>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly limits = {
      entries: RESUME_MAX_ENTRIES,
      indexes: RESUME_MAX_INDEXES,
      ttlMs: RESUME_TTL_MS,
    },
  ) {}

  remember(key: string, states: (HeldState | null | undefined)[]): void {
    this.forget(key);
    const kept = [...new Set(states.filter((s): s is HeldState => s != null))];
    if (kept.length === 0) return;
    this.entries.set(key, { states: kept, at: this.now() });
    for (const s of kept) this.pinned.set(s.collections, (this.pinned.get(s.collections) ?? 0) + 1);
    this.evict();
  }

  /** The state `key` last held whose hash is `state`, once (a resumed entry is consumed). */
  take(key: string, state: string): HeldState | null {
    const e = this.entries.get(key);
    if (e === undefined) return null;
    this.forget(key);
    if (this.now() - e.at > this.limits.ttlMs) return null;
    return e.states.find((s) => s.state === state) ?? null;
  }

  get size(): { entries: number; indexes: number } {
    return { entries: this.entries.size, indexes: this.pinned.size };
  }

  private forget(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    for (const s of e.states) {
      const n = (this.pinned.get(s.collections) ?? 1) - 1;
      if (n <= 0) this.pinned.delete(s.collections);
      else this.pinned.set(s.collections, n);
    }
  }

  private evict(): void {
    const now = this.now();
    // Map iteration is insertion order: the oldest first
    for (const [key, e] of this.entries) {
      const over = this.entries.size > this.limits.entries || this.pinned.size > this.limits.indexes;
      if (!over && now - e.at <= this.limits.ttlMs) break;
      this.forget(key);
    }
  }
}
