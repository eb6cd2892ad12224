/**
 * weftd's delta cache must not chain generations: a proxy that stops ACKing keeps its own held
 * state alive, and with it at most the delta from there, never every generation since (a
 * security review found that a stuck or hostile proxy grew weftd's memory by one config per
 * mesh change, without limit).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./fixtures/delta-chain.ts', import.meta.url));

describe('delta cache memory (controlplane/delta.ts)', function () {
  this.timeout(60_000);

  it('a stuck held state does not keep the later generations alive', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT], {
      encoding: 'utf8',
      timeout: 50_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { alive: number; generations: number };
    // the newest may still be referenced by the last loop iteration's frame; the rest are gone
    expect(out.alive, r.stdout).to.be.at.most(2);
  });
});
