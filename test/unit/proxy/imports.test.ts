/**
 * What the proxy process loads (ADR 0009): following the static, non-type imports from
 * proxy/main.ts, no npm package is reached but winston (the project's one logger; ~2-4 MB in a
 * sidecar). A heavy package pulled in
 * through a shared module (pkg/kube/client.ts brought @kubernetes/client-node, ~60 MB RSS per
 * sidecar) fails here. Lazy loads (the config child's yaml/ajv/translator, re2js on the first
 * regex) are not static imports and are allowed.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

/** Specifiers of `import … from` / `export … from` / `import '…'` that are not type-only. */
export function runtimeImports(source: string): string[] {
  const out: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*(?:from\s*)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    if (m[2] !== undefined) continue; // import type / export type
    const clause = m[3] ?? '';
    if (m[1] === 'export' && !/^(\*|\{)/.test(clause)) continue;
    // `import { type A, type B } from` is erased too
    const names = /^\{([^}]*)\}$/.exec(clause.trim())?.[1];
    if (names !== undefined && names.split(',').every((n) => n.trim() === '' || n.trim().startsWith('type ')))
      continue;
    out.push(m[4]!);
  }
  return out;
}

function reachable(entry: string): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>(); // package -> first importer
  const todo = [path.join(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!packages.has(spec)) packages.set(spec, path.relative(ROOT, file));
    }
  }
  return { files, packages };
}

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
