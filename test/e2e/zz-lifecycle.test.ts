/**
 * Runs last (file order): `hack/local-cluster down` leaves the machine as it was before the
 * first `up` (also after a crash) — no node processes, mounts, links, iptables chains, cgroups, changed sysctls or
 * hard-coded paths — and a second `up` after `down` brings a working node back.
 *
 * Only when hack/test-e2e.sh brought the cluster up itself (WEFT_E2E_BASELINE names the host
 * snapshot it took before): a developer's own running cluster is never torn down by a test.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoStateDir } from '../../hack/cluster/paths.js';
import { diff, snapshot, type HostSnapshot } from './support/host.js';
import {
  apply,
  clientPod,
  freshNamespace,
  kubectl,
  repoRoot,
  waitForServiceAccount,
  waitPodReady,
} from './support/kube.js';

const baselineFile = process.env.WEFT_E2E_BASELINE;

function localCluster(cmd: 'up' | 'down' | 'status'): { status: number; out: string; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync(join(repoRoot, 'hack', 'local-cluster'), [cmd], {
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  return {
    status: r.status ?? -1,
    out: `${r.stdout ?? ''}${r.stderr ?? ''}`,
    seconds: (Date.now() - t0) / 1000,
  };
}

(baselineFile === undefined ? describe.skip : describe)(
  'e2e: down restores the machine, up again works',
  function () {
    this.timeout(15 * 60_000);
    let baseline: HostSnapshot;

    before(() => {
      baseline = JSON.parse(readFileSync(baselineFile ?? '', 'utf8')) as HostSnapshot;
    });

    it('down stops everything and reports the cluster gone', () => {
      const r = localCluster('down');
      expect(r.status, r.out).to.equal(0);
      process.stdout.write(`      down took ${r.seconds.toFixed(1)} s\n`);
      expect(localCluster('status').status).to.equal(3);
    });

    it('leaves no node process, mount, link, iptables rule, cgroup, sysctl or path behind', () => {
      const d = diff(baseline, snapshot(), demoStateDir);
      if (d.other.length > 0) process.stdout.write(`      (changes not the node's: ${d.other.length})\n`);
      expect(d.node, d.node.join('\n')).to.deep.equal([]);
    });

    it('a second up brings the node back Ready, with DNS and the smoke Service', () => {
      const r = localCluster('up');
      expect(r.status, r.out).to.equal(0);
      process.stdout.write(`      second up took ${r.seconds.toFixed(1)} s\n`);
      const nodes = kubectl([
        'get',
        'nodes',
        '-o',
        'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
      ]);
      expect(nodes.trim()).to.equal('True');
    });

    it('runs pods again after the second up', async () => {
      const { ns, cleanup } = freshNamespace('e2e-again');
      try {
        await waitForServiceAccount(ns);
        apply(ns, [clientPod('client')]);
        await waitPodReady(ns, 'client');
        const out = kubectl([
          'exec',
          '-n',
          ns,
          'client',
          '--',
          'wget',
          '-qO-',
          'http://smoke.weft-local.svc.cluster.local/version',
        ]);
        expect(out.trim()).to.equal('v1');
      } finally {
        cleanup();
      }
    });

    it('after a crash (every node daemon SIGKILLed, pods left running) down still restores the machine', () => {
      for (const c of ['kubelet', 'containerd', 'kube-proxy', 'coredns', 'apiserver-forward']) {
        const pid = Number.parseInt(
          readFileSync(join(demoStateDir, 'pids', `${c}.pid`), 'utf8').split('\n')[0] ?? '',
          10,
        );
        // Only a PID that is still our daemon (its command line names our state dir).
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        expect(cmdline, c).to.include(demoStateDir);
        process.kill(pid, 'SIGKILL');
      }
      const r = localCluster('down');
      expect(r.status, r.out).to.equal(0);
      const d = diff(baseline, snapshot(), demoStateDir);
      expect(d.node, d.node.join('\n')).to.deep.equal([]);
    });
  },
);
