/**
 * What the proxy process loads (ADR 0009): following the static, non-type imports from
 * proxy/main.ts, no npm package is reached but winston (the project's one logger; ~2-4 MB in a
 * sidecar). A heavy package pulled in
 * through a shared module (pkg/kube/client.ts brought @kubernetes/client-node, ~60 MB RSS per
 * sidecar) fails here. Lazy loads (the config child's yaml/ajv/translator, re2js on the first
 * regex) are not static imports and are allowed.
 */
import { expect } from 'chai';
import { reachable, runtimeImports } from '../../support/imports.js';

describe('proxy process imports', () => {
  it('runtimeImports: type-only imports are skipped', () => {
    const src = [
      "import a from 'a';",
      "import type { B } from 'b';",
      "import { type C, type D } from 'c';",
      "import { type E, f } from 'e';",
      "export { g } from 'g';",
      "export type { H } from 'h';",
      "import 'side-effect';",
      "import {\n  x,\n  y,\n} from 'multi';",
    ].join('\n');
    expect(runtimeImports(src)).to.deep.equal(['a', 'e', 'g', 'side-effect', 'multi']);
  });

  // proxy/main.ts imports each mode's modules only when that mode runs (sidecar-imports.test.ts):
  // the walk starts from every mode's entry as well, or it would stop at main.ts's few files
  for (const entry of ['proxy/main.ts', 'proxy/sidecar/agent.ts', 'proxy/server.ts', 'proxy/init/run.ts']) {
    it(`${entry} reaches no npm package but the logger`, () => {
      const { files, packages } = reachable(entry);
      expect(files.size).to.be.greaterThan(1); // the walk did follow the imports
      for (const [pkg, importer] of packages) expect(pkg, `imported by ${importer}`).to.equal('winston');
    });
  }

  it('the sidecar agent reaches the router, the upstream pool and the discovery client', () => {
    const files = [...reachable('proxy/sidecar/agent.ts').files].map((f) => f.replace(/\\/g, '/'));
    for (const want of [
      'proxy/router/exchange.ts',
      'proxy/upstream/h1client.ts',
      'proxy/discovery/client.ts',
    ])
      expect(
        files.some((f) => f.endsWith(want)),
        want,
      ).to.equal(true);
  });
});
