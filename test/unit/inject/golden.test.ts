/**
 * Golden files: each directory under test/golden/inject/ holds an input (a Namespace and a Pod,
 * or workload manifests for kube-inject), optional settings overrides, and the exact expected
 * output. Regenerate after an intended change with:
 *
 *   WEFT_UPDATE_GOLDEN=1 npx mocha test/unit/inject/golden.test.ts
 *
 * and review the diff like code.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fastJsonPatch from 'fast-json-patch';
import { parseAllDocuments, stringify } from 'yaml';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import {
  DEFAULT_INJECTION_SETTINGS,
  injectManifests,
  injectPod,
  type InjectionSettings,
} from '../../../pkg/inject/index.js';

const ROOT = join(import.meta.dirname, '../../golden/inject');
const UPDATE = process.env.WEFT_UPDATE_GOLDEN === '1';

function readDocs(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON() as unknown);
}

function settingsFor(dir: string): InjectionSettings {
  const file = join(dir, 'settings.json');
  const overrides = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<InjectionSettings>)
    : {};
  return { ...structuredClone(DEFAULT_INJECTION_SETTINGS), ...overrides };
}

function yamlDocs(docs: unknown[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/** Compares with the golden file, or writes it when regenerating. */
function golden(file: string, actual: string): void {
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) throw new Error(`${file} missing: run with WEFT_UPDATE_GOLDEN=1 to create it`);
    writeFileSync(file, actual);
    return;
  }
  expect(actual, `${file} differs (WEFT_UPDATE_GOLDEN=1 regenerates)`).to.equal(readFileSync(file, 'utf8'));
}

describe('injection golden files', () => {
  for (const name of readdirSync(ROOT).sort()) {
    const dir = join(ROOT, name);
    if (name === 'kube-inject') continue;
    it(name, () => {
      const [ns, pod] = readDocs(join(dir, 'input.yaml')) as [V1Namespace, V1Pod];
      const before = structuredClone(pod);
      const outcome = injectPod(pod, ns, settingsFor(dir));
      expect(pod, 'the injector must not modify its input').to.deep.equal(before);
      const output = outcome.injected ? outcome.pod : pod;
      const patch = outcome.injected ? outcome.patch : [];
      golden(join(dir, 'expected.yaml'), yamlDocs([output]));
      golden(join(dir, 'patch.json'), `${JSON.stringify(patch, null, 2)}\n`);
      // The patch the API server applies must produce exactly the object the golden file shows.
      const applied = fastJsonPatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
      expect(applied).to.deep.equal(output);
    });
  }

  it('kube-inject', () => {
    const dir = join(ROOT, 'kube-inject');
    const { objects, results } = injectManifests(readDocs(join(dir, 'input.yaml')), settingsFor(dir));
    golden(join(dir, 'expected.yaml'), yamlDocs(objects));
    golden(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  });
});
