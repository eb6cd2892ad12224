/**
 * What loading each daemon costs before it does anything (issue #19, ADR 0022): RSS and heap
 * after importing the compiled entry module (dist/, `npx tsc -p tsconfig.build.json`) and two
 * full GCs, in a fresh process with the image's NODE_OPTIONS (--max-semi-space-size=1). The
 * baseline in the same run is the same entry with `@kubernetes/client-node` loaded as well,
 * which is what every daemon carried before weft's own kubeconfig loader; bare node and
 * client-node alone are printed for scale. Medians of REPS interleaved runs.
 *   npx tsc -p tsconfig.build.json && npx tsx bench/controlplane/memory.ts      REPS=5
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = process.env.DIST ?? join(ROOT, 'dist');
const REPS = Number(process.env.REPS ?? 5);
const ENTRIES = ['controlplane/main.js', 'operator/main.js', 'webhook/main.js', 'proxy/main.js'];

interface Sample {
  rssMB: number;
  heapMB: number;
}

/** One fresh node that imports `modules` in order, GCs twice and reports its memory. */
function probe(modules: string[]): Sample {
  const imports = modules.map((m) => `await import(${JSON.stringify(m)});`).join('');
  // webhook/main.js runs on import: `--help` makes it print its usage and return
  const script = `process.argv = [process.argv[0], '--help']; ${imports} globalThis.gc(); globalThis.gc(); const m = process.memoryUsage(); console.log(JSON.stringify({ rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20 }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1' },
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`probe ${modules.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  for (const e of ENTRIES)
    if (!existsSync(join(DIST, e)))
      throw new Error(`${join(DIST, e)} missing: npx tsc -p tsconfig.build.json`);
  const clientNode = '@kubernetes/client-node';
  const cases: [string, string[]][] = [
    ['bare node', []],
    ['client-node alone', [clientNode]],
  ];
  for (const e of ENTRIES) {
    const url = pathToFileURL(join(DIST, e)).href;
    cases.push([e, [url]], [`${e} + client-node (baseline)`, [url, clientNode]]);
  }
  const samples = new Map<string, Sample[]>(cases.map(([name]) => [name, []]));
  for (let rep = 0; rep < REPS; rep++)
    for (const [name, modules] of cases) samples.get(name)!.push(probe(modules));
  const report: Record<string, { rssMB: number; heapMB: number }> = {};
  for (const [name, s] of samples)
    report[name] = { rssMB: median(s.map((x) => x.rssMB)), heapMB: median(s.map((x) => x.heapMB)) };
  console.log(`import cost, median of ${REPS} (node ${process.version}, --max-semi-space-size=1)`);
  for (const [name, r] of Object.entries(report))
    console.log(
      `  ${name.padEnd(44)} RSS ${r.rssMB.toFixed(1).padStart(6)} MB   heap ${r.heapMB.toFixed(1).padStart(5)} MB`,
    );
  for (const e of ENTRIES) {
    const now = report[e]!;
    const before = report[`${e} + client-node (baseline)`]!;
    console.log(
      `  ${e.padEnd(24)} ${(now.rssMB / before.rssMB).toFixed(2)}x baseline RSS (${(before.rssMB - now.rssMB).toFixed(1)} MB less)`,
    );
  }
  writeFileSync(join(import.meta.dirname, 'last-run-memory.json'), `${JSON.stringify(report, null, 2)}\n`);
}

main();
