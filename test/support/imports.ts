/**
 * What a process loads, read from the source: the static, non-type imports reachable from an
 * entry module (type-only imports are erased by tsc; dynamic `import()` is lazy and not
 * followed). Used by the proxy's and the daemons' import budgets.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

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

/**
 * Files reached from `entry` (relative to the repo), the npm packages and the `node:` built-ins
 * they import (each with its first importer).
 */
export function reachable(entry: string): {
  files: Set<string>;
  packages: Map<string, string>;
  builtins: Map<string, string>;
} {
  const files = new Set<string>();
  const packages = new Map<string, string>(); // package -> first importer
  const builtins = new Map<string, string>(); // node:x -> first importer
  const todo = [path.join(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('node:')) {
        if (!builtins.has(spec)) builtins.set(spec, path.relative(ROOT, file));
        continue;
      }
      if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!packages.has(spec)) packages.set(spec, path.relative(ROOT, file));
    }
  }
  return { files, packages, builtins };
}
