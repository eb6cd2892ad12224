/**
 * The generated parts of config/ (CRD copies under config/crd/bases, the control-plane
 * overlay, the argocd-cm health entry) must match what hack/gen-config.ts produces from their
 * sources, so `kubectl apply -k config/default` never installs stale CRDs.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { generatedConfig } from '../../../hack/gen-config.js';

describe('config/ tree', () => {
  const files = generatedConfig();
  it('generates a copy of every CRD in crds/', () => {
    expect([...files.keys()].filter((f) => f.startsWith('config/crd/bases/')).length).to.be.at.least(9);
  });
  for (const [path, content] of files) {
    it(`${path} is up to date (npx tsx hack/gen-config.ts)`, () => {
      expect(existsSync(path), `${path} missing`).to.equal(true);
      expect(
        readFileSync(path, 'utf8') === content,
        `${path} is stale: run npx tsx hack/gen-config.ts`,
      ).to.equal(true);
    });
  }
  it('the operator Deployment runs one replica with leader election and kubebuilder probe flags (ADR 0025)', () => {
    const dep = parse(readFileSync('config/operator/deployment.yaml', 'utf8')) as {
      spec: { replicas: number; template: { spec: { containers: { args: string[] }[] } } };
    };
    expect(dep.spec.replicas).to.equal(1);
    expect(dep.spec.template.spec.containers[0]!.args).to.include.members([
      '--leader-elect',
      '--health-probe-bind-address=:8081',
    ]);
  });
  it('config/operator-ha adds a standby replica and a PodDisruptionBudget to the default install', () => {
    const kustomization = parse(readFileSync('config/operator-ha/kustomization.yaml', 'utf8')) as {
      resources: string[];
      patches: { target: { kind: string; name: string }; patch: string }[];
    };
    expect(kustomization.resources).to.deep.equal(['../default', 'pdb.yaml']);
    const [replicas] = kustomization.patches;
    expect(replicas!.target).to.include({ kind: 'Deployment', name: 'weft-operator' });
    expect(parse(replicas!.patch)).to.deep.equal([{ op: 'replace', path: '/spec/replicas', value: 2 }]);
    const pdb = parse(readFileSync('config/operator-ha/pdb.yaml', 'utf8')) as {
      kind: string;
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    expect(pdb.kind).to.equal('PodDisruptionBudget');
    expect(pdb.spec.minAvailable).to.equal(1);
    expect(pdb.spec.selector.matchLabels).to.deep.equal({ 'app.kubernetes.io/name': 'weft-operator' });
  });
  it('the Argo CD Application uses server-side apply', () => {
    const app = parse(readFileSync('config/argocd/application.yaml', 'utf8')) as {
      spec: { syncPolicy: { syncOptions: string[] } };
    };
    expect(app.spec.syncPolicy.syncOptions).to.include('ServerSideApply=true');
  });
  it('every document under config/ parses as YAML', () => {
    for (const path of [
      ...files.keys(),
      'config/default/kustomization.yaml',
      'config/argocd/kustomization.yaml',
      'config/rbac/role.yaml',
    ]) {
      for (const doc of parseAllDocuments(readFileSync(path, 'utf8')))
        expect(doc.errors, path).to.deep.equal([]);
    }
  });
});
