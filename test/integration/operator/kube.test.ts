/**
 * pkg/kube against the real API server: server-side apply ownership, the 410 Gone answer to a
 * too-old resourceVersion, and the informer's add/update/delete events.
 */
import { expect } from 'chai';
import { freshNamespace, testCluster } from '../../support/index.js';
import { isApiError, type KubeClient } from '../../../pkg/kube/client.js';
import { Informer } from '../../../pkg/kube/informer.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { clientFor, waitFor } from './harness.js';

describe('pkg/kube on a real API server', function () {
  this.timeout(60_000);
  let client: KubeClient;
  before(() => {
    client = clientFor(testCluster().kubeconfigPath);
  });

  it('server-side apply: a second manager conflicts (409) unless forced; our manager owns the fields', async () => {
    const ns = await freshNamespace('kube-ssa');
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', namespace: ns },
      data: { a: '1' },
    };
    await client.apply(cm, 'weft-operator');
    try {
      await client.apply({ ...cm, data: { a: '2' } }, 'someone-else', false);
      expect.fail('expected a conflict');
    } catch (err) {
      expect(isApiError(err, 409)).to.equal(true);
      expect(isApiError(err) && err.retryable).to.equal(true);
    }
    const forced = await client.apply({ ...cm, data: { a: '1' } }, 'weft-operator', true);
    const again = await client.apply({ ...cm, data: { a: '1' } }, 'weft-operator', true);
    expect(again.metadata.resourceVersion, 'a no-op apply does not write').to.equal(
      forced.metadata.resourceVersion,
    );
  });

  it('a watch from a too-old resourceVersion is answered 410 Gone (the informer relists on it)', async function () {
    const ns = await freshNamespace('kube-410');
    let err: unknown;
    let events = 0;
    try {
      await client.watch(
        'v1',
        'ConfigMap',
        { namespace: ns, resourceVersion: '1', timeoutSeconds: 2 },
        () => events++,
      );
    } catch (e) {
      err = e;
    }
    // A young API server still holds revision 1 in its watch cache and replays from it; only
    // once history has moved on (compaction, cache window) does it answer 410. Say which.
    if (err === undefined) this.skip();
    expect(isApiError(err, 410), String(err)).to.equal(true);
  });

  it('the informer lists, then reports add, update and delete from the watch', async () => {
    const ns = await freshNamespace('kube-inf');
    await client.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before', namespace: ns } });
    const inf = new Informer<KubeObject>(
      client,
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns },
      createLogger('test', { silent: true }),
    );
    const seen: string[] = [];
    inf.on((type, o) => seen.push(`${type}:${o.metadata.name}`));
    inf.start();
    try {
      await inf.hasSynced;
      expect(seen).to.include('add:before');
      await client.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'after', namespace: ns },
      });
      await client.mergePatch(
        { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'after' },
        { data: { x: 'y' } },
      );
      await client.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'before' });
      await waitFor(
        'events',
        () => ['add:after', 'update:after', 'delete:before'].every((e) => seen.includes(e)),
        20_000,
      );
      expect(inf.get('after', ns)).to.not.equal(undefined);
      expect(inf.get('before', ns)).to.equal(undefined);
    } finally {
      inf.stop();
    }
  });
});
