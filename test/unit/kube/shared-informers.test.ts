/**
 * One informer per watched slice for every consumer in a process (the combined control plane,
 * ADR 0024): the same kind asked twice is listed and watched once; a consumer that subscribes
 * after the first LIST hears the cached objects as adds (client-go's AddEventHandler); start()
 * is idempotent; a different selector is a different informer.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../../../pkg/kube/client.js';
import { SharedInformers } from '../../../pkg/kube/shared-informers.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';

const log = createLogger('test', { silent: true });
const ns = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, resourceVersion: '1' },
});

/** LISTs answered from `items` and counted; watches stay open until the informer stops. */
function fakeKube(items: KubeObject[], calls: { lists: string[]; watches: number }): KubeClient {
  return {
    list: async (_v: string, kind: string, o: { labelSelector?: string }) => {
      calls.lists.push(`${kind}${o.labelSelector ? `?${o.labelSelector}` : ''}`);
      return { items, resourceVersion: '1' };
    },
    watch: (_v: string, _k: string, o: { signal: AbortSignal }) => {
      calls.watches++;
      return new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve()));
    },
  } as unknown as KubeClient;
}

describe('SharedInformers', () => {
  it('gives both consumers of a kind the same informer, listed and watched once', async () => {
    const calls = { lists: [] as string[], watches: 0 };
    const shared = new SharedInformers(fakeKube([ns('a'), ns('b')], calls));
    const first = shared.source({ apiVersion: 'v1', kind: 'Namespace' }, log);
    const second = shared.source({ apiVersion: 'v1', kind: 'Namespace' }, log);
    expect(second).to.equal(first);
    first.start();
    second.start(); // idempotent
    await first.hasSynced;
    await sleep(10);
    expect(calls.lists).to.deep.equal(['Namespace']);
    expect(calls.watches).to.equal(1);
    expect(shared.size).to.equal(1);
    expect(shared.shared).to.equal(1);
    shared.stop();
  });

  it('a consumer subscribing after the first LIST hears the cached objects as adds', async () => {
    const calls = { lists: [] as string[], watches: 0 };
    const shared = new SharedInformers(fakeKube([ns('a'), ns('b')], calls));
    const early: string[] = [];
    const inf = shared.source({ apiVersion: 'v1', kind: 'Namespace' }, log);
    inf.on((type, o) => early.push(`${type} ${o.metadata.name}`));
    inf.start();
    await inf.hasSynced;
    const late: string[] = [];
    shared
      .source({ apiVersion: 'v1', kind: 'Namespace' }, log)
      .on((type, o) => late.push(`${type} ${o.metadata.name}`));
    expect(late).to.deep.equal(early);
    expect(late).to.deep.equal(['add a', 'add b']);
    shared.stop();
  });

  it('a different selector or namespace is a different informer', () => {
    const shared = new SharedInformers(fakeKube([], { lists: [], watches: 0 }));
    const all = shared.source({ apiVersion: 'v1', kind: 'Pod' }, log);
    const labelled = shared.source({ apiVersion: 'v1', kind: 'Pod', labelSelector: 'app=x' }, log);
    const inNs = shared.source({ apiVersion: 'v1', kind: 'Pod', namespace: 'x' }, log);
    expect(new Set([all, labelled, inNs]).size).to.equal(3);
    expect(shared.shared).to.equal(0);
  });
});
