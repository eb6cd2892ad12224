/**
 * What a sidecar loads before it serves (ADR 0009, issue #19): each proxy mode's modules are
 * imported only when that mode runs; node:http and node:fs come through pkg/builtins (an ESM
 * import of node:http runs its lazy WebSocket getters, which load undici: +15 MB RSS); node:http2
 * is loaded on the first HTTP/2 connection or upstream session (+5 MB).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { reachable } from '../../support/imports.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

describe('sidecar imports', () => {
  it('proxy/main.ts loads no mode before it knows which one runs', () => {
    const { files, builtins } = reachable('proxy/main.ts');
    const rel = [...files].map((f) => path.relative(ROOT, f));
    for (const lazy of [
      'proxy/sidecar/agent.ts',
      'proxy/server.ts',
      'proxy/config/child.ts',
      'proxy/config/watch.ts',
      'proxy/init/run.ts',
      'proxy/wait.ts',
    ])
      expect(rel, lazy).not.to.include(lazy);
    expect(builtins.get('node:child_process'), 'imported by').to.equal(undefined);
  });

  it('the sidecar agent imports neither node:http, node:fs, node:http2 nor node:child_process as modules', () => {
    const { files, builtins } = reachable('proxy/sidecar/agent.ts');
    expect(files.size).to.be.greaterThan(40);
    for (const b of ['node:http', 'node:fs', 'node:http2', 'node:child_process'])
      expect(builtins.get(b), `${b} imported by`).to.equal(undefined);
    const rel = [...files].map((f) => path.relative(ROOT, f));
    for (const other of ['proxy/config/child.ts', 'proxy/init/run.ts', 'proxy/wait.ts'])
      expect(rel, other).not.to.include(other);
  });

  it('loading the sidecar agent loads neither undici nor node:http2 (Node internal modules)', function () {
    this.timeout(60_000);
    const script = `await import(${JSON.stringify(path.join(ROOT, 'proxy/sidecar/agent.ts'))}); console.log(JSON.stringify(process.moduleLoadList));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    const loaded = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    expect(loaded).to.include('NativeModule http'); // the probe sees real loads
    expect(loaded.filter((m) => /undici|http2/.test(m))).to.deep.equal([]);
  });
});
