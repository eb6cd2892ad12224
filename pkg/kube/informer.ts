/**
 * List-then-watch with a local cache, the informer pattern: one LIST, then a WATCH from the
 * list's resourceVersion; a 410 Gone (resourceVersion too old, e.g. after etcd compaction or an
 * API server restart) triggers a fresh LIST, and objects that vanished in between are reported
 * as deleted. Any other failure retries with capped exponential backoff, forever, so the
 * operator survives the API server going away and coming back.
 */
import type { Logger } from '../log/index.js';
import { backoffDelay, sleep } from './backoff.js';
import { isApiError, type KubeClient } from './client.js';
import type { KubeObject } from './types.js';

export type InformerEventType = 'add' | 'update' | 'delete';
export type InformerHandler<T extends KubeObject> = (type: InformerEventType, obj: T, old?: T) => void;

export interface InformerOptions {
  apiVersion: string;
  kind: string;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side watch timeout; the stream is re-opened after it. */
  watchTimeoutSeconds?: number;
}

const cacheKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private synced = false;
  private resolveSynced!: () => void;
  /** Resolves after the first successful LIST has filled the cache. */
  readonly hasSynced: Promise<void> = new Promise((r) => (this.resolveSynced = r));
  /** How many times the informer had to relist after 410 Gone (tests and metrics read it). */
  relists = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: InformerOptions,
    private readonly log: Logger,
  ) {}

  /**
   * A handler added after the informer has listed first hears the cached objects as adds (as
   * client-go's AddEventHandler does), so a second consumer of a shared informer
   * (pkg/kube/shared-informers.ts) starts from the same state as the first.
   */
  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
    for (const obj of this.cache.values()) this.deliver(handler, 'add', obj);
  }

  get isSynced(): boolean {
    return this.synced;
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  private started = false;

  /** Idempotent: a shared informer is started by each of its consumers and runs once. */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.run();
  }

  stop(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (resourceVersion === undefined) resourceVersion = await this.relist();
        failures = 0;
        resourceVersion = await this.watchOnce(resourceVersion);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (isApiError(err, 410)) {
          this.log.info('Watch expired, relisting', { kind: this.opts.kind });
          this.relists++;
          resourceVersion = undefined;
          continue;
        }
        failures++;
        const delay = backoffDelay(failures, { baseMs: 200, maxMs: 30_000, jitter: 0.5 });
        this.log.warn('List/watch failed, retrying', {
          kind: this.opts.kind,
          error: (err as Error).message,
          retryInMs: delay,
        });
        resourceVersion = undefined;
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /** LIST, replace the cache, and emit the differences as events. */
  private async relist(): Promise<string> {
    const listOpts = {
      ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
      ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
      ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
    };
    const { items, resourceVersion } = await this.client.list<T>(
      this.opts.apiVersion,
      this.opts.kind,
      listOpts,
    );
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(cacheKey(item));
      this.upsert(item);
    }
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    if (!this.synced) {
      this.synced = true;
      this.resolveSynced();
    }
    return resourceVersion;
  }

  /** One watch stream; returns the last resourceVersion seen so the next one resumes there. */
  private async watchOnce(fromVersion: string): Promise<string> {
    let version = fromVersion;
    await this.client.watch<T>(
      this.opts.apiVersion,
      this.opts.kind,
      {
        resourceVersion: version,
        signal: this.abort.signal,
        timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
        ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
        ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}),
        ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}),
      },
      (event) => {
        version = event.object.metadata.resourceVersion ?? version;
        if (event.type === 'BOOKMARK') return;
        if (event.type === 'DELETED') {
          this.cache.delete(cacheKey(event.object));
          this.emit('delete', event.object);
        } else {
          this.upsert(event.object);
        }
      },
    );
    return version;
  }

  private upsert(obj: T): void {
    const key = cacheKey(obj);
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    if (!old) this.emit('add', obj);
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', obj, old);
  }

  private emit(type: InformerEventType, obj: T, old?: T): void {
    for (const h of this.handlers) this.deliver(h, type, obj, old);
  }

  private deliver(h: InformerHandler<T>, type: InformerEventType, obj: T, old?: T): void {
    try {
      h(type, obj, old);
    } catch (err) {
      this.log.error('Informer handler threw', { kind: this.opts.kind, error: (err as Error).message });
    }
  }
}
