import { expect } from 'chai';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relevantLogLines } from '../../../hack/cluster/proc.js';
import { namespaceName } from '../../support/cluster.js';
import { crdNames } from '../../support/crds.js';
import { renderKubeconfig } from '../../../hack/cluster/kubeconfig.js';
import { parse } from 'yaml';

describe('test support: pure helpers', () => {
  describe('namespaceName', () => {
    const cases: Array<[string, string]> = [
      ['webhook', 'webhook-abc123'],
      ['Webhook Tests', 'webhook-tests-abc123'],
      ['a_b.c', 'a-b-c-abc123'],
      ['--x--', 'x-abc123'],
      ['', 'test-abc123'],
      ['!!!', 'test-abc123'],
      ['x'.repeat(80), `${'x'.repeat(56)}-abc123`],
      [`${'y'.repeat(55)}-zzz`, `${'y'.repeat(55)}-abc123`],
    ];
    for (const [prefix, want] of cases) {
      it(`${JSON.stringify(prefix.length > 20 ? `${prefix.slice(0, 12)}…(${prefix.length})` : prefix)} → ${want.length > 30 ? `${want.slice(0, 12)}…` : want}`, () => {
        const got = namespaceName(prefix, 'abc123');
        expect(got).to.equal(want);
        expect(got).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        expect(got.length).to.be.at.most(63);
      });
    }
    it('is unique per call', () => {
      expect(new Set(Array.from({ length: 50 }, () => namespaceName('t'))).size).to.equal(50);
    });
  });

  describe('relevantLogLines', () => {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'weft-unit-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const cases: Array<[string, string, string[]]> = [
      ['klog errors win over info lines', 'I1123 a\nE1123 bad thing\nI1123 b\n', ['E1123 bad thing']],
      ['fatal klog lines count', 'I1 x\nF1123 fatal: dead\n', ['F1123 fatal: dead']],
      [
        'etcd JSON error level',
        '{"level":"info","msg":"a"}\n{"level":"error","msg":"b"}\n',
        ['{"level":"error","msg":"b"}'],
      ],
      ['no errors: the tail', 'one\ntwo\n\nthree\n', ['one', 'two', 'three']],
      [
        '"failed" counts as an error word',
        'ok\nlisten failed: address already in use\n',
        ['listen failed: address already in use'],
      ],
    ];
    for (const [name, text, want] of cases) {
      it(name, () => {
        const f = join(dir, `${name.replace(/\W+/g, '_')}.log`);
        writeFileSync(f, text);
        expect(relevantLogLines(f)).to.deep.equal(want);
      });
    }
    it('keeps only the last `max` lines and truncates very long ones', () => {
      const f = join(dir, 'long.log');
      writeFileSync(
        f,
        `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n${'z'.repeat(1000)}\n`,
      );
      const got = relevantLogLines(f, 3);
      expect(got.slice(0, 2)).to.deep.equal(['line 28', 'line 29']);
      expect(got[2]).to.have.length(401);
    });
    it('returns nothing for a missing log', () => {
      expect(relevantLogLines(join(dir, 'missing.log'))).to.deep.equal([]);
    });
  });

  describe('crdNames', () => {
    it('reads the CRD names from multi-document YAML and ignores other kinds', () => {
      const dir = mkdtempSync(join(tmpdir(), 'weft-unit-'));
      const f = join(dir, 'x.yaml');
      writeFileSync(
        f,
        '---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: virtualservices.networking.istio.io\n' +
          '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\n' +
          'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: meshes.mesh.weft.dev\n',
      );
      expect(crdNames([f])).to.deep.equal(['virtualservices.networking.istio.io', 'meshes.mesh.weft.dev']);
      rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('renderKubeconfig', () => {
    it('embeds the CA and client cert so the file works anywhere', () => {
      const dir = mkdtempSync(join(tmpdir(), 'weft-unit-'));
      for (const n of ['ca.crt', 'c.crt', 'c.key']) writeFileSync(join(dir, n), `pem of ${n}`);
      const kc = parse(
        renderKubeconfig({
          server: 'https://127.0.0.1:6443',
          caFile: join(dir, 'ca.crt'),
          certFile: join(dir, 'c.crt'),
          keyFile: join(dir, 'c.key'),
          user: 'weft-admin',
        }),
      ) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      expect(kc['current-context']).to.equal('weft-admin@weft-local');
      expect(kc.clusters[0].cluster.server).to.equal('https://127.0.0.1:6443');
      expect(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).to.equal(
        'pem of ca.crt',
      );
      expect(Buffer.from(kc.users[0].user['client-key-data'], 'base64').toString()).to.equal('pem of c.key');
      rmSync(dir, { recursive: true, force: true });
    });
  });
});
