/**
 * weftctl start-up time, whole process as a user sees it (issue #15: ≤ 300 ms for `version` and
 * `validate -f` of one file; istioctl answers in about 0.1 s). Each command runs RUNS times
 * (default 15, after one warm-up), interleaved with the baseline `node -e 0` on the same pinned
 * Node so drift on a shared machine hits both; the report is the median wall time of each and
 * its ratio to the baseline's median. Measured:
 *   - built: `npx tsc -p tsconfig.build.json` into a temporary outDir, run by bin/weftctl.js
 *     (dist/ on the pinned Node runs in the launcher's process) — what users run after a build;
 *   - compiled entry alone: `node dist/cli/main.js` (no launcher);
 *   - sources: bin/weftctl.js with no dist/, i.e. through tsx (fewer runs: it is slower).
 * `validate` uses weftctl's validator cache as users get it (the warm-up run fills it; a run
 * with WEFTCTL_CACHE=off shows the cold cost).
 * Writes bench/cli/last-run.json.
 *
 *   npm run bench -- cli          RUNS=15 (default) bash bench/cli/run.sh
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const RUNS = Math.max(3, Math.min(200, Number(process.env.RUNS ?? 15)));
const TSX_RUNS = Math.max(3, Math.min(RUNS, 5));
const TARGET_MS = 300;

const ONE_FILE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`;

interface Case {
  name: string;
  argv: string[];
  runs: number;
  env?: Record<string, string>;
}

function once(argv: string[], expectCode: number, env: Record<string, string> = {}): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(NODE, argv, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== expectCode)
    throw new Error(`${argv.join(' ')} exited ${r.status} (${r.signal ?? ''}): ${r.stderr.slice(0, 500)}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// A throwaway checkout: bin/ and a fresh build, node_modules linked. Sources are not copied, so
// the launcher takes dist/ (the "built" case); a second tree with sources and no dist/ takes tsx.
const work = mkdtempSync(join(tmpdir(), 'weft-bench-cli-'));
// weftctl's validator cache in the throwaway tree, not the user's ~/.cache
process.env.XDG_CACHE_HOME = join(work, 'cache');
try {
  const built = join(work, 'built');
  mkdirSync(built);
  cpSync(join(ROOT, 'bin'), join(built, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(built, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(built, 'node_modules'));
  process.stderr.write('bench/cli: building dist/ into a temporary directory...\n');
  const tsc = spawnSync(
    NODE,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      join(built, 'dist'),
    ],
    { encoding: 'utf8' },
  );
  if (tsc.status !== 0) throw new Error(`tsc failed: ${tsc.stdout}${tsc.stderr}`);
  const file = join(work, 'reviews.yaml');
  writeFileSync(file, ONE_FILE);

  // sources only (no dist/): the launcher takes tsx whatever the repository's dist/ holds
  const sources = join(work, 'sources');
  mkdirSync(sources);
  cpSync(join(ROOT, 'bin'), join(sources, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(sources, 'package.json'));
  for (const d of [
    'node_modules',
    'tsconfig.json',
    'pkg',
    'cli',
    'operator',
    'webhook',
    'proxy',
    'controlplane',
  ])
    symlinkSync(join(ROOT, d), join(sources, d));
  const bin = join(built, 'bin', 'weftctl.js');
  const entry = join(built, 'dist', 'cli', 'main.js');
  const cases: Case[] = [
    { name: 'node -e 0 (baseline)', argv: ['-e', '0'], runs: RUNS },
    { name: 'weftctl version (built)', argv: [bin, 'version'], runs: RUNS },
    { name: 'weftctl validate -f one file (built)', argv: [bin, 'validate', '-f', file], runs: RUNS },
    {
      name: 'weftctl validate -f one file (built, WEFTCTL_CACHE=off)',
      argv: [bin, 'validate', '-f', file],
      runs: RUNS,
      env: { WEFTCTL_CACHE: 'off' },
    },
    { name: 'node dist/cli/main.js version', argv: [entry, 'version'], runs: RUNS },
    { name: 'node dist/cli/main.js validate -f one file', argv: [entry, 'validate', '-f', file], runs: RUNS },
    {
      name: 'weftctl version (sources, tsx)',
      argv: [join(sources, 'bin', 'weftctl.js'), 'version'],
      runs: TSX_RUNS,
    },
    {
      name: 'weftctl validate -f one file (sources, tsx)',
      argv: [join(sources, 'bin', 'weftctl.js'), 'validate', '-f', file],
      runs: TSX_RUNS,
    },
  ];
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (const c of cases) once(c.argv, 0, c.env); // warm-up (page cache, tsx cache)
  for (let i = 0; i < RUNS; i++) {
    for (const c of cases) if (i < c.runs) samples.get(c.name)!.push(once(c.argv, 0, c.env));
  }
  const base = median(samples.get(cases[0]!.name)!);
  const rows = cases.map((c) => {
    const xs = samples.get(c.name)!;
    const m = median(xs);
    return {
      name: c.name,
      runs: xs.length,
      medianMs: Math.round(m),
      minMs: Math.round(Math.min(...xs)),
      maxMs: Math.round(Math.max(...xs)),
      overBaselineMs: Math.round(m - base),
      xBaseline: Number((m / base).toFixed(2)),
    };
  });
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(
    `weftctl start-up, wall ms, median of ${RUNS} (tsx: ${TSX_RUNS}); target ≤ ${TARGET_MS} ms built`,
  );
  console.log(`${'command'.padEnd(width)}  median    min    max  −baseline  ×baseline`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(width)}  ${String(r.medianMs).padStart(6)} ${String(r.minMs).padStart(6)} ${String(r.maxMs).padStart(6)} ${String(r.overBaselineMs).padStart(10)} ${String(r.xBaseline).padStart(10)}`,
    );
  writeFileSync(
    join(import.meta.dirname, 'last-run.json'),
    `${JSON.stringify({ at: new Date().toISOString(), runs: RUNS, targetMs: TARGET_MS, results: rows }, null, 2)}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
