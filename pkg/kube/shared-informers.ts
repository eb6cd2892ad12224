/**
 * One informer per watched kind for every consumer in a process. weftd and the admission
 * webhook run in one process in the combined control plane (ADR 0024); both watch Namespaces
 * and the Istio kinds, and sharing the informer means one LIST/WATCH and one cached copy of
 * each object instead of two. An informer is keyed by everything that decides what it lists
 * (kind, namespace, selectors), so two consumers asking for different slices get two.
 *
 * Lifecycle: `start()` on a shared informer is idempotent; `stop()` stops it for every consumer,
 * which is what the combined process wants (its halves stop together).
 */
import type { Logger } from '../log/index.js';
import type { KubeClient } from './client.js';
import { Informer, type InformerOptions } from './informer.js';
import type { KubeObject } from './types.js';

/** Where a consumer gets its informers: `ownInformers` (one each) or a `SharedInformers`. */
export type InformerSource = <T extends KubeObject = KubeObject>(
  opts: InformerOptions,
  log: Logger,
) => Informer<T>;

/** Every call a new informer: the standalone daemons. */
export function ownInformers(client: KubeClient): InformerSource {
  return <T extends KubeObject>(opts: InformerOptions, log: Logger) => new Informer<T>(client, opts, log);
}

const keyOf = (o: InformerOptions): string =>
  JSON.stringify([o.apiVersion, o.kind, o.namespace ?? '', o.labelSelector ?? '', o.fieldSelector ?? '']);

export class SharedInformers {
  private readonly informers = new Map<string, Informer>();
  /** Informers asked for more than once (tests, the combined process's startup log). */
  shared = 0;

  constructor(private readonly client: KubeClient) {}

  /** The first consumer's logger names the informer's log lines. */
  readonly source: InformerSource = <T extends KubeObject>(opts: InformerOptions, log: Logger) => {
    const key = keyOf(opts);
    const existing = this.informers.get(key);
    if (existing) {
      this.shared++;
      return existing as unknown as Informer<T>;
    }
    const inf = new Informer<KubeObject>(this.client, opts, log);
    this.informers.set(key, inf);
    return inf as unknown as Informer<T>;
  };

  get size(): number {
    return this.informers.size;
  }

  stop(): void {
    for (const inf of this.informers.values()) inf.stop();
  }
}
