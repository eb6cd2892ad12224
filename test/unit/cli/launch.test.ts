/**
 * The npm bins' shared launcher (bin/launch.js), run for real on a copy of bin/ in a throwaway
 * tree whose cli/main.ts and dist/cli/main.js say which of them ran and how: dist/ only when it
 * is at least as new as every source, in this process when already on the pinned Node, and the
 * exit status passes through either way.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';

const ROOT = join(import.meta.dirname, '../../..');
const PINNED_NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');

// Each fake entry point reports: which code ran, the script Node started, the main-switch env.
const REPORT = `JSON.stringify({ script: process.argv[1].split('/').pop(), env: process.env.WEFTCTL_MAIN ?? null, args: process.argv.slice(2) })`;
const SOURCE_MAIN = `const code: number = 3;\nconsole.log('source ' + ${REPORT});\nprocess.exitCode = code;\n`;
const DIST_MAIN = `console.log('dist ' + ${REPORT});\nprocess.exitCode = 4;\n`;

describe('bin/launch.js (weftctl, weft-proxy launchers)', function () {
  this.timeout(60_000); // tsx start-up on a loaded 2-core machine
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-launch-'));
    mkdirSync(join(dir, 'bin'));
    for (const f of ['launch.js', 'weftctl.js']) copyFileSync(join(ROOT, 'bin', f), join(dir, 'bin', f));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    mkdirSync(join(dir, 'cli'));
    mkdirSync(join(dir, 'pkg', 'deep'), { recursive: true });
    mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(dir, 'cli', 'main.ts'), SOURCE_MAIN);
    writeFileSync(join(dir, 'pkg', 'deep', 'lib.ts'), 'export const x = 1;\n');
    writeFileSync(join(dir, 'dist', 'cli', 'main.js'), DIST_MAIN);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Sets every source to `sourceAge` and the built entry to `distAge` seconds ago. */
  function ages(sourceAge: number, distAge: number, touched = join(dir, 'pkg', 'deep', 'lib.ts')): void {
    const at = (s: number): number => Date.now() / 1000 - s;
    utimesSync(join(dir, 'cli', 'main.ts'), at(sourceAge), at(sourceAge));
    utimesSync(join(dir, 'pkg', 'deep', 'lib.ts'), at(sourceAge), at(sourceAge));
    utimesSync(join(dir, 'dist', 'cli', 'main.js'), at(distAge), at(distAge));
    utimesSync(touched, at(sourceAge), at(sourceAge));
  }

  function run(node: string): { code: number | null; which: string; report: Record<string, unknown> } {
    const r = spawnSync(node, [join(dir, 'bin', 'weftctl.js'), 'a', '--b'], {
      encoding: 'utf8',
      timeout: 50_000,
    });
    const line = r.stdout.trim();
    const space = line.indexOf(' ');
    expect(space, `${r.stdout}${r.stderr}`).to.be.greaterThan(0);
    return {
      code: r.status,
      which: line.slice(0, space),
      report: JSON.parse(line.slice(space + 1)) as Record<string, unknown>,
    };
  }

  const cases: { name: string; sourceAge: number; distAge: number; touched?: string; want: string }[] = [
    { name: 'dist/ built after every source', sourceAge: 600, distAge: 60, want: 'dist' },
    {
      name: 'a nested source edited after the build',
      sourceAge: 600,
      distAge: 60,
      touched: 'pkg/deep/lib.ts',
      want: 'source',
    },
    {
      name: 'the entry source edited after the build',
      sourceAge: 600,
      distAge: 60,
      touched: 'cli/main.ts',
      want: 'source',
    },
    { name: 'dist/ older than the sources', sourceAge: 60, distAge: 600, want: 'source' },
  ];
  for (const c of cases) {
    it(`${c.name}: runs ${c.want}`, () => {
      ages(c.sourceAge, c.distAge);
      if (c.touched) utimesSync(join(dir, c.touched), new Date(), new Date());
      const r = run(process.execPath);
      expect(r.which).to.equal(c.want);
      expect(r.report.args).to.deep.equal(['a', '--b']);
      expect(r.code, 'exit status passes through').to.equal(c.want === 'dist' ? 4 : 3);
    });
  }

  it('dist/ on the pinned Node runs in the launcher process (one Node start-up), with the main switch set', () => {
    ages(600, 60);
    const r = run(PINNED_NODE);
    expect(r.which).to.equal('dist');
    expect(r.report).to.deep.include({ script: 'weftctl.js', env: '1' });
    expect(r.code).to.equal(4);
  });

  it('sources through tsx run in a child on the pinned Node, the entry point as its script', () => {
    ages(60, 600);
    const r = run(PINNED_NODE);
    expect(r.which).to.equal('source');
    expect(r.report).to.deep.include({ script: 'main.ts', env: null });
  });
});
