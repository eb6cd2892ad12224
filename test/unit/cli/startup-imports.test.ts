/**
 * What `weftctl <command>` loads before it answers (issue #15: start-up): each command's module
 * is imported only on dispatch, so `version`/`--help` load no npm package at all and `validate`
 * does not load the Kubernetes client (or the servers' packages); with weftctl's validator cache
 * warm, `validate` does not load ajv either. Checked by recording every module resolved in a
 * child process (module.registerHooks), not by timing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';

const ROOT = join(import.meta.dirname, '../../..');
const RECORDER = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.push(r.url); return r; } });
const { main } = await import(process.argv[2]);
let out = '';
const code = await main(process.argv.slice(3), { stdout: (t) => (out += t), stderr: (t) => (out += t) });
console.log(JSON.stringify({ code, out, seen }));
`;
const VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
`;

/** npm packages whose code was loaded (by name; reading a package.json for its version is not). */
const packages = (urls: string[]): string[] => [
  ...new Set(
    urls
      .filter((u) => !u.endsWith('/package.json'))
      .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1])
      .filter((p): p is string => p !== undefined && p !== 'tsx' && p !== 'esbuild' && p !== 'get-tsconfig'),
  ),
];

describe('weftctl start-up: modules loaded per command', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-startup-'));
    writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
    file = join(dir, 'vs.yaml');
    writeFileSync(file, VS);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function loaded(args: string[]): { code: number; out: string; pkgs: string[]; urls: string[] } {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(dir, 'recorder.mjs'), join(ROOT, 'cli', 'main.ts'), ...args],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: join(dir, 'cache') } },
    );
    expect(r.status, r.stderr).to.equal(0);
    const rep = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      code: number;
      out: string;
      seen: string[];
    };
    return { code: rep.code, out: rep.out, pkgs: packages(rep.seen), urls: rep.seen };
  }

  for (const args of [['version'], ['--version'], ['--help']]) {
    it(`weftctl ${args.join(' ')} loads no npm package and no command module`, () => {
      const r = loaded(args);
      expect(r.code).to.equal(0);
      expect(r.pkgs).to.deep.equal([]);
      expect(r.urls.filter((u) => u.includes('/cli/commands/') && !u.endsWith('/index.ts'))).to.deep.equal(
        [],
      );
    });
  }

  it('weftctl validate -f FILE: no Kubernetes client or server packages; with the cache warm, no ajv', () => {
    const cold = loaded(['validate', '-f', file]);
    expect(cold.code, cold.out).to.equal(0);
    const servers = ['@kubernetes/client-node', 'express', 'prom-client', 'winston', 'node-forge', 'jose'];
    for (const p of servers) expect(cold.pkgs, p).to.not.include(p);
    expect(cold.pkgs).to.include('ajv');
    const warm = loaded(['validate', '-f', file]);
    expect(warm.code, warm.out).to.equal(0);
    expect(warm.pkgs).to.not.include('ajv');
    expect(warm.pkgs).to.include('yaml');
    expect(warm.urls.some((u) => u.endsWith('/cli/commands/validate.ts'))).to.equal(true);
  });
});
