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

  it('proxy/main.ts reaches no npm package but the logger', () => {
    const { files, packages } = reachable('proxy/main.ts');
    expect(files.size).to.be.greaterThan(20); // the walk did follow the proxy's modules
    expect(Object.fromEntries(packages)).to.deep.equal({ winston: 'pkg/log/index.ts' });
  });
});
