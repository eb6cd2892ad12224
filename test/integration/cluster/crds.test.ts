/**
 * The project's CRDs on the real API server: every manifest in crds/ installs and becomes
 * Established; a valid VirtualService applies with real kubectl and `kubectl get vs` shows
 * the CRD's printer columns; a type error is rejected by the structural schema with the API
 * server's own message. Skipped (not failed) only while crds/ is still empty.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { crdFiles, freshNamespace, installCRDs, testCluster } from '../../support/index.js';

interface Crd {
  kind?: string;
  metadata?: { name?: string };
  spec?: {
    group?: string;
    names?: { kind?: string; shortNames?: string[] };
    versions?: Array<{ name: string; storage?: boolean; additionalPrinterColumns?: Array<{ name: string }> }>;
  };
}

function crdsInRepo(): Crd[] {
  return crdFiles().flatMap((f) =>
    parseAllDocuments(readFileSync(f, 'utf8'))
      .map((d) => d.toJS() as Crd | null)
      .filter((o): o is Crd => o?.kind === 'CustomResourceDefinition'),
  );
}

const virtualService = (name: string, weight: unknown): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${JSON.stringify(weight)}
    - destination: {host: reviews, subset: v2}
      weight: 25
`;

describe('local cluster: the CRDs in crds/', function () {
  this.timeout(120_000);
  let crds: Crd[];

  before(async function () {
    crds = crdsInRepo();
    if (crds.length === 0) this.skip();
    await installCRDs();
  });

  it('installs every CRD and each is Established', async () => {
    const { kubectl } = testCluster();
    const names = crds.map((c) => c.metadata?.name ?? '');
    const r = await kubectl([
      'get',
      'crd',
      ...names,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim().split('\n').sort()).to.deep.equal(names.map((n) => `${n}=True`).sort());
  });

  describe('VirtualService', () => {
    let vs: Crd | undefined;
    before(function () {
      vs = crds.find((c) => c.metadata?.name === 'virtualservices.networking.istio.io');
      if (vs === undefined) this.skip();
    });

    it('applies with kubectl and `kubectl get vs` shows the printer columns', async () => {
      const { kubectl } = testCluster();
      const ns = await freshNamespace('crd-vs');
      const apply = await kubectl(['apply', '-n', ns, '-f', '-'], { input: virtualService('reviews', 75) });
      expect(apply.code, apply.stderr).to.equal(0);
      expect(apply.stdout).to.match(/virtualservice\.networking\.istio\.io\/reviews created/);

      const get = await kubectl(['get', 'vs', '-n', ns]);
      expect(get.code, get.stderr).to.equal(0);
      const [header = '', row = ''] = get.stdout.trim().split('\n');
      const storage = vs?.spec?.versions?.find((v) => v.storage === true);
      const columns = (storage?.additionalPrinterColumns ?? []).map((c) => c.name.toUpperCase());
      expect(columns.length, 'the CRD declares printer columns').to.be.above(0);
      expect(header.split(/\s{2,}/)).to.deep.equal(['NAME', ...columns]);
      expect(row).to.match(/^reviews\s+\["mesh"\]\s+\["reviews"\]\s+\d+s$/);
    });

    it('rejects `weight: "ten"` with the API server schema message', async () => {
      const { kubectl } = testCluster();
      const ns = await freshNamespace('crd-vs');
      const apply = await kubectl(['apply', '-n', ns, '-f', '-'], { input: virtualService('bad', 'ten') });
      expect(apply.code).to.equal(1);
      expect(apply.stderr).to.match(/The VirtualService "bad" is invalid: /);
      expect(apply.stderr).to.match(
        /spec\.http\[0\]\.route\[0\]\.weight: Invalid value: "string": .*must be of type integer/,
      );
      const get = await kubectl(['get', 'vs', 'bad', '-n', ns]);
      expect(get.code).to.equal(1, 'nothing was stored');
    });
  });
});
