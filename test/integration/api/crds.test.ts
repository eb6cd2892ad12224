/**
 * weft's CRDs on a real kube-apiserver: they install and become Established (so they are
 * structural), `kubectl get vs` and friends work by short name and print Istio's columns, the
 * schema rejects type errors (`weight: "ten"`) and leaves value checks to the webhook (ADR
 * 0012: Istio's CRD-level cases pass the schema alone), and it is never
 * stricter than Istio: every valid object of the shared corpus is accepted in every served
 * version.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { kindDefinitions } from '../../../pkg/api/registry.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';

const CORPUS = process.env.WEFT_CONFORMANCE_DIR ?? join(import.meta.dirname, '../../data/istio-validation');

interface Row {
  file: string;
  expected: string;
  reason: string;
}

function corpus(): Row[] {
  return readFileSync(join(CORPUS, 'MANIFEST.tsv'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [file = '', , , expected = '', , reason = ''] = l.split('\t');
      return { file, expected, reason };
    });
}

/** The corpus object as it would be applied to `namespace` under `version`. */
function corpusObject(file: string, version: string, index: number): Record<string, unknown> {
  const obj = parse(readFileSync(join(CORPUS, file), 'utf8')) as {
    apiVersion: string;
    metadata: Record<string, unknown>;
  };
  const group = obj.apiVersion.split('/')[0];
  // Names repeat across the corpus; a dry-run batch needs them distinct.
  return { ...obj, apiVersion: `${group}/${version}`, metadata: { name: `c${index}-${version}` } };
}

/** Server-side dry-run create of many objects in one kubectl call; returns the rejected ones. */
async function dryRunCreate(
  namespace: string,
  objects: Record<string, unknown>[],
): Promise<{ created: number; rejected: string[] }> {
  const { kubectl } = testCluster();
  const input = objects.map((o) => JSON.stringify(o)).join('\n---\n');
  // --validate=false: unknown fields are pruned as the API server does by default for CRs,
  // instead of kubectl's strict field validation (Istio's own CRDs behave the same way).
  const r = await kubectl(
    ['create', '--dry-run=server', '--validate=false', '-n', namespace, '-o', 'name', '-f', '-'],
    { input, timeoutMs: 120_000 },
  );
  const created = r.stdout.split('\n').filter((l) => l.trim() !== '').length;
  const rejected = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return { created, rejected };
}

describe('CRDs on a real API server', function () {
  this.timeout(180_000);
  let ns: string;

  before(async () => {
    const names = await installCRDs();
    expect(names.sort()).to.deep.equal(kindDefinitions.map((d) => `${d.plural}.${d.group}`).sort());
    ns = await freshNamespace('crds');
  });

  it('serves every kind by its short names, in the istio-io category', async () => {
    const { kubectl } = testCluster();
    for (const short of ['vs', 'dr', 'gw', 'se', 'pa', 'ap', 'ra', 'mesh']) {
      const r = await kubectl(['get', short, ...(short === 'mesh' ? [] : ['-n', ns])]);
      expect(r.code, `${short}: ${r.stderr}`).to.equal(0);
    }
    const r = await kubectl(['api-resources', '--categories=istio-io', '-o', 'name']);
    expect(r.stdout.split('\n').filter(Boolean).sort()).to.deep.equal(
      kindDefinitions
        .filter((d) => d.group !== 'mesh.weft.dev')
        .map((d) => `${d.plural}.${d.group}`)
        .sort(),
    );
  });

  it('prints GATEWAYS, HOSTS, AGE for VirtualServices', async () => {
    const { kubectl } = testCluster();
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews' },
      spec: {
        hosts: ['reviews'],
        gateways: ['mesh'],
        http: [{ route: [{ destination: { host: 'reviews' } }] }],
      },
    };
    expect((await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(vs) })).code).to.equal(0);
    const r = await kubectl(['get', 'vs', '-n', ns]);
    expect(r.stdout.split('\n')[0]).to.match(/^NAME\s+GATEWAYS\s+HOSTS\s+AGE$/);
    expect(r.stdout).to.match(/reviews\s+\["mesh"\]\s+\["reviews"\]/);
    // The same object is served in the older versions too.
    for (const v of ['v1beta1', 'v1alpha3']) {
      const got = await kubectl([
        'get',
        `virtualservices.${v}.networking.istio.io`,
        'reviews',
        '-n',
        ns,
        '-o',
        'jsonpath={.apiVersion}',
      ]);
      expect(got.stdout).to.equal(`networking.istio.io/${v}`);
    }
  });

  it('rejects weight: "ten" and other type errors', async () => {
    const bad = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'ten' },
      spec: {
        hosts: ['r'],
        http: [{ route: [{ destination: { host: 'r' }, weight: 'ten' }], timeout: 10 }],
      },
    };
    const r = await dryRunCreate(ns, [bad]);
    expect(r.created).to.equal(0);
    expect(r.rejected.join('\n'))
      .to.contain('spec.http[0].route[0].weight')
      .and.to.contain('must be of type integer');
    expect(r.rejected.join('\n')).to.contain('spec.http[0].timeout').and.to.contain('must be of type string');
  });

  it('fills in Mesh defaults and keeps the status subresource separate', async () => {
    const { kubectl } = testCluster();
    const mesh = {
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'Mesh',
      metadata: { name: `crd-test-${ns}` },
      spec: {},
    };
    const r = await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], {
      input: JSON.stringify(mesh),
    });
    expect(r.code, r.stderr).to.equal(0);
    const spec = (JSON.parse(r.stdout) as { spec: Record<string, Record<string, unknown>> }).spec;
    expect(spec.trustDomain).to.equal('cluster.local');
    expect(spec.mtls).to.deep.equal({ mode: 'PERMISSIVE' });
    expect(spec.injection).to.include({ nativeSidecar: true, holdApplicationUntilProxyStarts: true });
    expect(spec.certificates).to.include({ workloadCertTTL: '24h' });
  });

  for (const version of ['v1', 'v1beta1', 'v1alpha3']) {
    it(`accepts every valid corpus object as ${version} (never stricter than Istio)`, async () => {
      const rows = corpus().filter((r) => r.expected === 'valid');
      const r = await dryRunCreate(
        ns,
        rows.map((row, i) => corpusObject(row.file, version, i)),
      );
      expect(r.rejected, r.rejected.slice(0, 5).join('\n')).to.deep.equal([]);
      expect(r.created).to.equal(rows.length);
    });
  }

  it("leaves the values of Istio's CRD-level cases to the webhook (ADR 0012): the schema alone admits them", async () => {
    // Without the webhook (this suite runs none), only types are the schema's; the webhook's
    // messages for these cases are pinned by test/integration/webhook/apply-golden.test.ts.
    const schemaCases = corpus().filter((r) => r.expected === 'invalid' && /CRD:|_err:/.test(r.reason));
    expect(schemaCases.length).to.be.greaterThan(2);
    const r = await dryRunCreate(
      ns,
      schemaCases.map((row, i) => corpusObject(row.file, 'v1', i)),
    );
    expect(r.rejected, r.rejected.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(r.created).to.equal(schemaCases.length);
  });
});
