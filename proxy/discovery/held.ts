/**
 * The proxy's side of delta pushes (ADR 0020; resources and hashes: pkg/discovery/delta.ts):
 * the resources of the config the proxy runs, by name, with their versions and state hash.
 *
 * Nothing here changes what the proxy holds by itself: `fromFull` and `applyDelta` return the
 * next state and the config built from it; the caller compiles and swaps the config in, and only
 * then `commit`s. A delta that fails anywhere (another base, a removed name not held, a value
 * whose hash is not its version, a result that does not hash to `state`, an index naming a
 * resource that is not there) throws WEFT_DISCOVERY_DELTA_MISMATCH: the caller NACKs with
 * `resync` and keeps its last good state, and weftd sends the whole config.
 */
import {
  deltaError,
  heldStateOf,
  indexDigest,
  isCollectionResource,
  joinConfig,
  resourceVersion,
  stateHash,
  type HeldState,
} from '../../pkg/discovery/delta.js';
import type { DiscoveryMessage } from '../../pkg/discovery/protocol.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';

export interface HeldResources {
  held: HeldState;
  values: ReadonlyMap<string, unknown>;
  /** The config's version (not a resource: messages carry it). */
  version: string;
}

type DeltaMessage = Extract<DiscoveryMessage, { type: 'delta' }>;

export class ResourceHolder {
  private current: HeldResources | null = null;

  /** The state hash of what the proxy runs (announced when it reconnects); undefined before any. */
  get state(): string | undefined {
    return this.current?.held.state;
  }

  get version(): string | undefined {
    return this.current?.version;
  }

  /** The state a full config leaves the proxy in; null when it cannot be split (then no delta applies to it). */
  fromFull(config: ProxyConfig, version: string): HeldResources | null {
    const split = heldStateOf(config);
    return split === null ? null : { ...split, version };
  }

  /** The state and config a delta leads to from the one held; throws a delta mismatch when it does not apply. */
  applyDelta(m: DeltaMessage): { next: HeldResources; config: ProxyConfig } {
    const cur = this.current;
    if (cur === null)
      throw deltaError('a delta arrived but this proxy holds no resources (it needs a whole config)');
    if (m.base !== cur.held.state)
      throw deltaError(`the delta applies to state ${m.base}; this proxy holds ${cur.held.state}`);
    const values = new Map(cur.values);
    const collections = new Map(cur.held.collections.versions);
    const singletons = new Map(cur.held.singletons);
    const versionsOf = (name: string): Map<string, string> =>
      isCollectionResource(name) ? collections : singletons;
    for (const name of m.removed) {
      if (!values.delete(name)) throw deltaError(`the delta removes ${name}, which this proxy does not hold`);
      versionsOf(name).delete(name);
    }
    for (const r of m.resources) {
      const version = resourceVersion(r.value);
      if (version !== r.version)
        throw deltaError(`resource ${r.name} hashes to ${version}, not its version ${r.version}`);
      values.set(r.name, r.value);
      versionsOf(r.name).set(r.name, version);
    }
    const digest = indexDigest(collections);
    const state = stateHash(digest, singletons);
    if (state !== m.state)
      throw deltaError(`the config after the delta hashes to ${state}, weftd says ${m.state}`);
    const config = joinConfig(values, m.version);
    return {
      next: {
        held: { collections: { versions: collections, digest }, singletons, state },
        values,
        version: m.version,
      },
      config,
    };
  }

  /** The config is running: it is what the proxy holds now (null: a config that cannot be split). */
  commit(next: HeldResources | null): void {
    this.current = next;
  }
}
