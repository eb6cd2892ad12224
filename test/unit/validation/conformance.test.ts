/**
 * Istio's verdict for every object of the shared conformance corpus, replayed under each API
 * version Istio serves (Istio ignores the version, so the verdict must not change).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { validateObject } from '../../../pkg/validation/index.js';

const CORPUS = process.env.WEFT_CONFORMANCE_DIR ?? join(import.meta.dirname, '../../data/istio-validation');
const VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];

interface Row {
  file: string;
  kind: string;
  expected: 'valid' | 'invalid';
  reason: string;
}

function manifest(): Row[] {
  const lines = readFileSync(join(CORPUS, 'MANIFEST.tsv'), 'utf8').split('\n').slice(1);
  return lines
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [file = '', kind = '', , expected = '', , reason = ''] = l.split('\t');
      return { file, kind, expected: expected as Row['expected'], reason };
    });
}

function load(file: string): Record<string, unknown> {
  const text = readFileSync(join(CORPUS, file), 'utf8');
  return parse(text) as Record<string, unknown>;
}

describe('conformance: Istio validation corpus', () => {
  const rows = manifest();

  it('has a manifest with both verdicts', () => {
    expect(rows.length).to.be.greaterThan(200);
    expect(rows.some((r) => r.expected === 'invalid')).to.equal(true);
  });

  it('lists every file of valid/ and invalid/ exactly once, in the directory of its verdict', () => {
    const onDisk = ['valid', 'invalid']
      .flatMap((d) => readdirSync(join(CORPUS, d)).map((f) => `${d}/${f}`))
      .sort();
    expect(rows.map((r) => r.file).sort()).to.deep.equal(onDisk);
    for (const r of rows) expect(r.file.startsWith(`${r.expected}/`), r.file).to.equal(true);
  });

  for (const row of rows) {
    for (const version of VERSIONS) {
      it(`${row.expected}: ${row.file} as ${version}`, () => {
        const obj = structuredClone(load(row.file));
        const group = String(obj.apiVersion).split('/')[0];
        obj.apiVersion = `${group}/${version}`;
        const result = validateObject(obj, { defaultNamespace: 'default' });
        const detail = `${row.reason}\n  errors: ${JSON.stringify(result.errors)}`;
        if (row.expected === 'valid') expect(result.errors, detail).to.deep.equal([]);
        else expect(result.errors.length, detail).to.be.greaterThan(0);
      });
    }
  }
});
