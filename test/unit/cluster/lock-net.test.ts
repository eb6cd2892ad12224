import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLock } from '../../../hack/cluster/lock.js';
import { freePorts, portInUse, waitUntil } from '../../../hack/cluster/net.js';

describe('hack/cluster: lock and wait helpers', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'weft-unit-lock-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('withLock', () => {
    it('serialises two holders of the same lock', async () => {
      const path = join(dir, 'a.lock');
      const order: string[] = [];
      const job = (name: string) =>
        withLock(path, async () => {
          order.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 50));
          order.push(`${name}-`);
        });
      await Promise.all([job('one'), job('two')]);
      expect(order).to.deep.equal(['one+', 'one-', 'two+', 'two-']);
      expect(existsSync(path)).to.equal(false);
    });

    it("creates the lock's folder when it does not exist yet (a fresh clone has no .local/)", async () => {
      const path = join(dir, 'not-yet', 'deeper', 'c.lock');
      expect(await withLock(path, async () => existsSync(path))).to.equal(true);
      expect(existsSync(path)).to.equal(false);
    });

    it('takes over a lock whose owner is dead', async () => {
      const path = join(dir, 'stale.lock');
      writeFileSync(path, '999999999\n');
      expect(await withLock(path, async () => 'got it', 2000)).to.equal('got it');
    });

    it('takes over a lock file that holds no PID', async () => {
      const path = join(dir, 'empty.lock');
      writeFileSync(path, '');
      expect(await withLock(path, async () => 'got it', 2000)).to.equal('got it');
    });

    it('waits for a live owner and then gives up with a coded error', async () => {
      const path = join(dir, 'live.lock');
      writeFileSync(path, `${process.pid}\n`);
      const err = await withLock(path, async () => 'never', 600).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).to.match(
        /^WEFT_CLUSTER_TIMEOUT: another process holds .*live\.lock \(still held after 1 s\)/,
      );
      rmSync(path);
    });

    it('releases the lock when the body throws', async () => {
      const path = join(dir, 'throw.lock');
      await withLock(path, async () => {
        throw new Error('boom');
      }).catch(() => undefined);
      expect(existsSync(path)).to.equal(false);
    });
  });

  describe('freePorts', () => {
    it('hands out distinct ports, each free once chosen (several daemons started side by side)', async () => {
      for (let round = 0; round < 20; round++) {
        const ports = await freePorts(8);
        expect(new Set(ports).size, ports.join(',')).to.equal(8);
        for (const p of ports) expect(p).to.be.within(1, 65535);
      }
      const [p] = await freePorts(1);
      expect(await portInUse(p!)).to.equal(false);
    });
  });

  describe('waitUntil', () => {
    it('resolves once the check passes', async () => {
      let n = 0;
      const ms = await waitUntil(async () => ({ ok: ++n >= 3, detail: `n=${n}` }), {
        timeoutMs: 5000,
        intervalMs: 10,
      });
      expect(n).to.equal(3);
      expect(ms).to.be.a('number');
    });

    it('rejects with the last detail on timeout', async () => {
      const err = await waitUntil(async () => ({ ok: false, detail: 'still 503' }), {
        timeoutMs: 100,
        intervalMs: 10,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).to.match(/not healthy after 0 s: still 503/);
    });

    it('reports a thrown check as the detail', async () => {
      const err = await waitUntil(
        async () => {
          throw new Error('ECONNREFUSED');
        },
        { timeoutMs: 100, intervalMs: 10 },
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).to.match(/ECONNREFUSED/);
    });

    it('stops at once when abort() says so', async () => {
      const t = Date.now();
      const err = await waitUntil(async () => ({ ok: false, detail: 'x' }), {
        timeoutMs: 10_000,
        abort: () => 'the process exited',
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).to.equal('Error: the process exited');
      expect(Date.now() - t).to.be.below(1000);
    });
  });
});
