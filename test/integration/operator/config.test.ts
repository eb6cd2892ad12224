/**
 * The kustomize tree under config/ builds with the real kubectl (v1.36.3's kustomize) and the
 * API server accepts every object of the one-line install (server-side dry run).
 */
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { installCRDs, testCluster } from '../../support/index.js';

const dirs = ['default', 'crd', 'rbac', 'operator', 'samples', 'controlplane', 'argocd'];

describe('config/ kustomize tree (real kubectl)', function () {
  this.timeout(120_000);
  for (const d of dirs) {
    it(`kubectl kustomize config/${d} builds`, async () => {
      const r = await testCluster().kubectl(['kustomize', `config/${d}`]);
      expect(r.code, r.stderr).to.equal(0);
      const kinds = parseAllDocuments(r.stdout).map((doc) => (doc.toJS() as { kind?: string } | null)?.kind);
      expect(kinds.length).to.be.greaterThan(0);
      if (d === 'default')
        expect(kinds).to.include.members([
          'CustomResourceDefinition',
          'Deployment',
          'ClusterRole',
          'Namespace',
        ]);
    });
  }
  it('the API server accepts config/default (server-side dry run) and config/samples against the installed CRDs', async () => {
    await installCRDs();
    // A server-side dry run cannot create the namespace its namespaced objects go into.
    const ns = await testCluster().kubectl(['create', 'namespace', 'weft-system']);
    expect(ns.code === 0 || ns.stderr.includes('AlreadyExists'), ns.stderr).to.equal(true);
    const r = await testCluster().kubectl([
      'apply',
      '--server-side',
      '--dry-run=server',
      '--force-conflicts',
      '-k',
      'config/default',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/deployment.apps\/weft-operator serverside-applied \(server dry run\)/);
    const s = await testCluster().kubectl([
      'apply',
      '--dry-run=server',
      '-f',
      'config/samples/mesh.yaml',
      '-f',
      'config/samples/mesh-ha.yaml',
    ]);
    expect(s.code, s.stderr).to.equal(0);
  });
});
