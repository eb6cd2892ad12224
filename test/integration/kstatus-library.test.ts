/**
 * The TypeScript kstatus port (test/unit/operator/kstatus.test.ts, which the unit tables use)
 * against the real library (sigs.k8s.io/cli-utils v0.37.2, hack/kstatus) on the same fixtures:
 * the Argo CD health fixtures of the Mesh and of the Istio kinds, and statuses weftd's status
 * writer computes (controlplane/status.ts). Here, not in the unit stage, because the helper is
 * a Go build (cached in ~/.cache/weft, like the Kubernetes binaries).
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { objectStatus, reconciliation, type Verdict } from '../../controlplane/status.js';
import type { KubeObject } from '../../pkg/kube/types.js';
import { kstatus } from '../support/kstatus.js';
import { kstatus as port, type Obj } from '../support/kstatus-port.js';

const dir = 'config/argocd/health/mesh.weft.dev/Mesh/testdata';
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => ({ name: f, obj: parse(readFileSync(join(dir, f), 'utf8')) as KubeObject }));

const vs: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'demo', generation: 4 },
  spec: { hosts: ['reviews'] },
};
const clean: Verdict = { validation: { errors: [], warnings: [] }, unresolved: [], notes: [] };
const computed: { name: string; obj: KubeObject }[] = [
  ['clean', clean],
  ['invalid', { ...clean, validation: { errors: [{ path: 'spec', message: 'bad' }], warnings: [] } }],
  ['unresolved', { ...clean, unresolved: [{ path: 'spec.http[0]', message: 'no subset' }] }],
  ['warnings', { ...clean, validation: { errors: [], warnings: [{ path: 'spec.x', message: 'w' }] } }],
  [
    'reconciled',
    {
      ...clean,
      reconciled: reconciliation(3, [{ name: 'demo/a', namespace: 'demo', acks: true, runningAt: 3 }]),
    },
  ],
  [
    'rollout pending',
    {
      ...clean,
      reconciled: reconciliation(3, [{ name: 'demo/a', namespace: 'demo', acks: true, runningAt: 2 }]),
    },
  ],
  [
    'a proxy NACKed it',
    {
      ...clean,
      reconciled: reconciliation(3, [
        { name: 'demo/a', namespace: 'demo', acks: true, runningAt: 2, nackError: 'x' },
      ]),
    },
  ],
].map(([name, v]) => ({
  name: `weftd status: ${name as string}`,
  obj: { ...vs, status: objectStatus(vs, v as Verdict, new Date(0)) },
}));
// the same statuses, judged for an older generation: kstatus must say InProgress
const stale = computed.map(({ name, obj }) => ({
  name: `${name}, older generation`,
  obj: { ...obj, metadata: { ...obj.metadata, generation: 5 } },
}));

describe('kstatus: the TypeScript port agrees with sigs.k8s.io/cli-utils', function () {
  this.timeout(600_000); // a cold build of the helper
  const all = [...fixtures, ...computed, ...stale];
  let verdicts: ReturnType<typeof kstatus>;
  before(() => {
    verdicts = kstatus(all.map((f) => f.obj));
  });

  it('has fixtures for every outcome', () =>
    expect(new Set(verdicts.map((v) => v.status))).to.include.members([
      'Current',
      'InProgress',
      'Failed',
      'Terminating',
    ]));

  all.forEach((f, i) => {
    it(f.name, () => {
      const lib = verdicts[i]!;
      expect(lib.error, 'the library evaluated it').to.equal(undefined);
      expect(port(f.obj as unknown as Obj), `library: ${lib.message ?? ''}`).to.equal(lib.status);
    });
  });
});
