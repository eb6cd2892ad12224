/**
 * `up`/`down`/`status` semantics of hack/cluster on a small cluster of its own (etcd alone,
 * so it costs ~1 s and 40 MB): up is idempotent, down stops exactly what up started, and a
 * component that cannot start fails `up` with a coded error that quotes its log.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../../pkg/errors/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { down, status, up, type ClusterOptions } from '../../../hack/cluster/cluster.js';
import { etcd } from '../../../hack/cluster/components/etcd.js';
import { readPid } from '../../../hack/cluster/proc.js';
import type { Component } from '../../../hack/cluster/types.js';

const log = createLogger('lifecycle-test', { silent: true });

function options(components: Component[]): ClusterOptions {
  return {
    stateDir: mkdtempSync(join(tmpdir(), 'weft-lifecycle-')),
    profile: 'test',
    log,
    components,
    ownerPid: process.pid,
  };
}

/** Alive and not a zombie (a process we spawned lingers as one until Node reaps it). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
};

describe('local cluster: up / status / down', function () {
  this.timeout(60_000);
  const made: ClusterOptions[] = [];
  after(async () => {
    for (const o of made) await down(o).catch(() => undefined);
  });

  it('starts, reports, is idempotent, and stops exactly what it started', async () => {
    const opts = options([etcd]);
    made.push(opts);
    const first = await up(opts);
    expect(first.alreadyUp).to.equal(false);
    const pid = readPid(opts.stateDir, 'etcd')?.pid ?? -1;
    expect(alive(pid)).to.equal(true);

    const second = await up(opts);
    expect(second.alreadyUp).to.equal(true);
    expect(readPid(opts.stateDir, 'etcd')?.pid).to.equal(pid, 'the same process, not a second one');

    const st = await status(opts);
    expect(st?.map((s) => [s.name, s.healthy, s.pid])).to.deep.equal([['etcd', true, pid]]);
    expect(st?.[0]?.rssBytes).to.be.above(1024 * 1024);

    expect(await down(opts)).to.deep.equal(['etcd']);
    expect(alive(pid)).to.equal(false);
    expect(existsSync(opts.stateDir)).to.equal(false);
    expect(await status(opts)).to.equal(undefined);
    expect(await down(opts)).to.deep.equal([], 'a second down is a no-op');
  });

  it('restarts a component that died, keeping its port', async () => {
    const opts = options([etcd]);
    made.push(opts);
    await up(opts);
    const before = await status(opts);
    process.kill(readPid(opts.stateDir, 'etcd')?.pid ?? -1, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    expect((await status(opts))?.[0]?.healthy).to.equal(false);
    const again = await up(opts);
    expect(again.alreadyUp).to.equal(false);
    const after = await status(opts);
    expect(after?.[0]?.healthy).to.equal(true);
    expect(after?.[0]?.ports).to.deep.equal(before?.[0]?.ports);
  });

  it('fails with WEFT_CLUSTER_START_FAILED and the log lines when a process exits at once', async () => {
    const broken: Component = {
      ...etcd,
      name: 'etcd-broken',
      command: (ctx) => ({
        bin: 'etcd',
        args: ['--no-such-flag-for-weft', `--data-dir=${ctx.dir('etcd-broken')}`],
      }),
    };
    const opts = options([broken]);
    made.push(opts);
    const err = await up(opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWeftError(err, 'WEFT_CLUSTER_START_FAILED'), String(err)).to.equal(true);
    expect(String(err)).to.match(/etcd-broken did not become healthy: the process exited/);
    expect(String(err)).to.match(/no-such-flag-for-weft/);
    expect(String(err)).to.not.match(/\n\s+at /, 'no stack trace');
  });

  it('refuses to restart on a recorded port another process now holds, saying which', async () => {
    const opts = options([etcd]);
    made.push(opts);
    await up(opts);
    const port = (await status(opts))?.[0]?.ports.client ?? 0;
    process.kill(readPid(opts.stateDir, 'etcd')?.pid ?? -1, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const squatter = await listenOn(port);
    try {
      const err = await up(opts).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isWeftError(err, 'WEFT_CLUSTER_START_FAILED'), String(err)).to.equal(true);
      expect(String(err)).to.include(`etcd: port ${port} (client) is already in use by another process`);
    } finally {
      squatter.close();
    }
  });

  it('a reaper tears the cluster down when its owner dies without calling down', async () => {
    const owner = spawn('sleep', ['600'], { stdio: 'ignore' });
    const opts: ClusterOptions = { ...options([etcd]), ownerPid: owner.pid ?? -1 };
    made.push(opts);
    await up(opts);
    const pid = readPid(opts.stateDir, 'etcd')?.pid ?? -1;
    expect(alive(pid)).to.equal(true);
    owner.kill('SIGKILL');
    const deadline = Date.now() + 30_000;
    while ((alive(pid) || existsSync(opts.stateDir)) && Date.now() < deadline) await sleep(250);
    expect(alive(pid), 'etcd stopped by the reaper').to.equal(false);
    expect(existsSync(opts.stateDir), 'state dir removed by the reaper').to.equal(false);
  });

  it('demo profile: takes the preferred port, or any free one when it is taken', async () => {
    const squatter = await listenOn(0);
    const taken = (squatter.address() as { port: number }).port;
    try {
      const pinned: Component = { ...etcd, ports: { client: taken, peer: 0 } };
      const opts: ClusterOptions = { ...options([pinned]), profile: 'demo' };
      made.push(opts);
      await up(opts);
      const port = (await status(opts))?.[0]?.ports.client;
      expect(port).to.be.a('number').and.not.equal(taken);
    } finally {
      squatter.close();
    }
  });
});

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}
