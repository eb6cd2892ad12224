/**
 * A small EventRecorder: core/v1 Events on an object, as `kubectl describe` shows them. Repeats
 * of the same (object, type, reason, message) within the series window bump `count` on the
 * existing Event instead of creating a new one, as client-go's correlator does, so a failing
 * reconcile retried with backoff does not flood etcd. Event failures are logged, never thrown:
 * events are advisory and must not fail a reconcile.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/index.js';
import type { KubeClient } from './client.js';
import type { KubeObject } from './types.js';

export type EventType = 'Normal' | 'Warning';

const SERIES_WINDOW_MS = 10 * 60 * 1000;
const MAX_MESSAGE = 1024;

interface Series {
  name: string;
  namespace: string;
  count: number;
  last: number;
}

export class EventRecorder {
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
    /** Where Events about cluster-scoped objects go (Events are namespaced). */
    private readonly clusterEventsNamespace = 'default',
  ) {}

  async record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? this.clusterEventsNamespace;
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const seriesKey = `${obj.metadata.uid ?? obj.metadata.name}|${type}|${reason}|${text}`;
    const now = Date.now();
    try {
      const existing = this.series.get(seriesKey);
      if (existing && now - existing.last < SERIES_WINDOW_MS) {
        existing.count++;
        existing.last = now;
        await this.client.mergePatch(
          { apiVersion: 'v1', kind: 'Event', name: existing.name, namespace: existing.namespace },
          { count: existing.count, lastTimestamp: new Date(now).toISOString() },
        );
        return;
      }
      const name = `${obj.metadata.name}.${randomBytes(8).toString('hex')}`;
      await this.client.create(this.build(obj, namespace, name, type, reason, text, now));
      this.series.set(seriesKey, { name, namespace, count: 1, last: now });
      this.prune(now);
    } catch (err) {
      this.series.delete(seriesKey);
      this.log.warn('Could not record Event', { reason, error: (err as Error).message });
    }
  }

  private build(
    obj: KubeObject,
    namespace: string,
    name: string,
    type: EventType,
    reason: string,
    message: string,
    now: number,
  ): KubeObject {
    const ts = new Date(now).toISOString();
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
        ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
        ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
      },
      type,
      reason,
      message,
      source: { component: this.component },
      reportingComponent: this.component,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    };
  }

  private prune(now: number): void {
    for (const [key, s] of this.series) if (now - s.last > SERIES_WINDOW_MS) this.series.delete(key);
  }
}
