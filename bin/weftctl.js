#!/usr/bin/env node
// weftctl launcher. Runs the CLI on the project's pinned Node (the npm `node` package), not
// whatever Node the machine has: from dist/ when built (`npm run build`), else from the
// TypeScript sources through tsx. Exit status and signals pass through unchanged.
import { spawnSync } from 'node:child_process';
import process from 'node:process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinnedNode = join(root, 'node_modules', 'node', 'bin', 'node');
const node = existsSync(pinnedNode) ? pinnedNode : process.execPath;
const source = join(root, 'cli', 'main.ts');
const compiled = join(root, 'dist', 'cli', 'main.js');
// Sources win when present, so a stale dist/ never answers for newer code. tsx is resolved
// from this file, not from the working directory, so weftctl runs from anywhere.
const tsx = resolveTsx();
const useSource = existsSync(source) && tsx !== undefined;
const args = useSource ? ['--import', tsx, source] : [compiled];
if (!useSource && !existsSync(compiled)) {
  process.stderr.write('weftctl: not built; run `npm ci` (and `npm run build` for dist/)\n');
  process.exit(2);
}
const result = spawnSync(node, [...args, ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: process.cwd(),
  env: { ...process.env, NODE_NO_WARNINGS: '1' },
});
if (result.error) {
  process.stderr.write(`weftctl: cannot start ${node}: ${result.error.message}\n`);
  process.exit(2);
}
if (result.signal) process.kill(process.pid, result.signal);
process.exit(result.status ?? 2);

function resolveTsx() {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return undefined;
  }
}
