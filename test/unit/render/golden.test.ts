/**
 * Golden tests: `weftctl render` of every sample Mesh in config/samples/ must equal the pinned
 * output in test/golden/render/. Regenerate after an intended change with
 * `WEFT_UPDATE_GOLDEN=1 npx mocha test/unit/render/golden.test.ts` and review the diff.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRender } from '../../../cli/commands/render.js';

const samples = 'config/samples';
const golden = 'test/golden/render';

function renderFile(path: string, extra: string[] = []): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runRender(['-f', path, ...extra], { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('render golden files (config/samples → test/golden/render)', () => {
  const files = readdirSync(samples).filter((f) => f.startsWith('mesh') && f.endsWith('.yaml'));
  it('has samples to check', () => expect(files.length).to.be.at.least(3));
  for (const file of files) {
    it(`${file} renders exactly as pinned`, () => {
      const { code, out, err } = renderFile(join(samples, file));
      expect(err).to.equal('');
      expect(code).to.equal(0);
      const pinned = join(golden, file);
      if (process.env.WEFT_UPDATE_GOLDEN === '1') writeFileSync(pinned, out);
      expect(out).to.equal(readFileSync(pinned, 'utf8'));
    });
  }
});
