/**
 * Shared body of isolation-a/b.test.ts: two files that do the same thing with the same object
 * names at the same time (under `mocha --parallel` they run in two workers) must each see
 * only their own objects, because each works in its own fresh namespace.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { freshNamespace, testCluster } from '../../support/index.js';

const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];

export function isolationSuite(me: string): void {
  describe(`local cluster: isolation between test files (${me})`, function () {
    this.timeout(60_000);

    it('creates, updates and lists same-named objects without seeing the other file', async () => {
      const core = testCluster().kubeConfig.makeApiClient(CoreV1Api);
      const ns = await freshNamespace('isolation');
      // Interleave with whatever the other file is doing: small random pauses between writes.
      for (const name of NAMES) {
        await core.createNamespacedConfigMap({
          namespace: ns,
          body: { metadata: { name }, data: { owner: me } },
        });
        await sleep(Math.random() * 30);
      }
      await Promise.all(
        NAMES.map((name) =>
          core.patchNamespacedConfigMap({
            name,
            namespace: ns,
            body: [{ op: 'add', path: '/data/seen', value: me }],
          }),
        ),
      );
      const list = await core.listNamespacedConfigMap({ namespace: ns });
      const mine = list.items.filter((c) => c.metadata?.name !== 'kube-root-ca.crt');
      expect(mine.map((c) => c.metadata?.name).sort()).to.deep.equal([...NAMES].sort());
      expect(new Set(mine.map((c) => `${c.data?.owner}/${c.data?.seen}`))).to.deep.equal(
        new Set([`${me}/${me}`]),
      );
    });

    it('kubectl with -n sees only its own namespace', async () => {
      const { kubectl } = testCluster();
      const ns = await freshNamespace('isolation');
      const apply = await kubectl(['apply', '-n', ns, '-f', '-'], {
        input: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared-name\ndata:\n  owner: ${me}\n`,
      });
      expect(apply.code, apply.stderr).to.equal(0);
      const got = await kubectl([
        'get',
        'configmap',
        'shared-name',
        '-n',
        ns,
        '-o',
        'jsonpath={.data.owner}',
      ]);
      expect(got.code, got.stderr).to.equal(0);
      expect(got.stdout).to.equal(me);
    });
  });
}
