/**
 * Running control-plane processes' idle RSS against a real API server (issue #19, ADR 0022 and
 * ADR 0024), and how many TCP connections they hold to the API server once their informers are
 * up. Two comparisons, interleaved, medians of REPS:
 *
 * - IDLE_BENCH=weftd (default): the compiled `DIST/controlplane/main.js` and, with BASELINE_DIST,
 *   the same file of another build (the baseline).
 * - IDLE_BENCH=combined: the combined control plane (`weftd --webhook-port`, the default install)
 *   of DIST and, with BASELINE_DIST, of another build (ADR 0025: the validation worker on demand).
 * - IDLE_BENCH=split: the control plane as two processes, weftd and the webhook
 *   (`DIST/webhook/main.js`), summed, against one combined process (`weftd --webhook-port`,
 *   ADR 0024). Same flags, same certificates, same cluster; each process is read after IDLE_S.
 *
 * Every process runs with the image's NODE_OPTIONS (--max-semi-space-size=1); RSS is VmRSS from
 * /proc, connections are the established ones to the API server's port (`ss`). Without KUBECONFIG
 * a throwaway cluster is started as the integration tests start theirs (hack/cluster, profile
 * test, weft's CRDs applied) and removed at the end.
 *   KUBECONFIG=.local/kubeconfig BASELINE_DIST=/tmp/before/dist npx tsx bench/controlplane/idle.ts
 *   npx tsc -p tsconfig.build.json && IDLE_BENCH=split REPS=5 npx tsx bench/controlplane/idle.ts
 *   IDLE_BENCH=combined BASELINE_DIST=/tmp/main/dist REPS=3 npx tsx bench/controlplane/idle.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { loadAccess } from '../../pkg/kube/kubeconfig.js';
import { createLogger } from '../../pkg/log/index.js';
import { down, up, type ClusterOptions } from '../../hack/cluster/cluster.js';

const ROOT = resolve(import.meta.dirname, '../..');
const REPS = Number(process.env.REPS ?? 3);
const IDLE_S = Number(process.env.IDLE_S ?? 20);
const BENCH = process.env.IDLE_BENCH ?? 'weftd';

interface Sample {
  rssMB: number;
  apiConnections: number;
  /** Each process's RSS, in the order the case starts them. */
  partsMB: number[];
}

/** A case: the processes it starts (argv after node) and whose samples it adds up. */
type Case = [name: string, processes: string[][]];

function start(args: string[]): { child: ChildProcess; listening: Promise<void> } {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1', WEFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const listening = new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
    child.on('exit', (code) => fail(new Error(`${args[0]} exited ${code}`)));
  });
  return { child, listening };
}

function measure(pid: number, apiPort: string): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const ss = spawnSync('ss', ['-tnpH', 'state', 'established', `dport = :${apiPort}`], { encoding: 'utf8' });
  const apiConnections = ss.stdout.split('\n').filter((l) => l.includes(`pid=${pid},`)).length;
  return { rssMB: rssKB / 1024, apiConnections, partsMB: [rssKB / 1024] };
}

/** Starts every process of a case together, lets them idle, and sums what they hold. */
async function runOnce(processes: string[][], apiPort: string): Promise<Sample> {
  const started = processes.map(start);
  try {
    await Promise.all(started.map((s) => s.listening));
    await sleep(IDLE_S * 1000);
    const each = started.map((s) => measure(s.child.pid!, apiPort));
    return {
      rssMB: each.reduce((a, s) => a + s.rssMB, 0),
      apiConnections: each.reduce((a, s) => a + s.apiConnections, 0),
      partsMB: each.map((s) => s.rssMB),
    };
  } finally {
    for (const s of started) s.child.kill('SIGKILL');
  }
}

function servingDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-idle-'));
  const now = new Date();
  const ca = createCA({ commonName: 'idle-ca', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  return dir;
}

function cases(kubeconfig: string, tlsDir: string): Case[] {
  const weftdArgs = (dist: string): string[] => [
    join(dist, 'controlplane/main.js'),
    `--kubeconfig=${kubeconfig}`,
    `--tls-dir=${tlsDir}`,
    '--port=0',
    '--monitoring-port=0',
    '--host=127.0.0.1',
  ];
  const dist = process.env.DIST ?? join(ROOT, 'dist');
  if (BENCH === 'weftd') {
    const out: Case[] = [['weft', [weftdArgs(dist)]]];
    if (process.env.BASELINE_DIST) out.push(['baseline', [weftdArgs(process.env.BASELINE_DIST)]]);
    return out;
  }
  const combined = (d: string): string[] => [
    ...weftdArgs(d),
    '--webhook-port=0',
    `--webhook-tls-dir=${tlsDir}`,
  ];
  if (BENCH === 'combined') {
    const out: Case[] = [['combined', [combined(dist)]]];
    if (process.env.BASELINE_DIST) out.push(['combined (baseline)', [combined(process.env.BASELINE_DIST)]]);
    return out;
  }
  if (BENCH !== 'split') throw new Error(`IDLE_BENCH must be weftd, combined or split, got ${BENCH}`);
  const webhook = [
    join(dist, 'webhook/main.js'),
    `--kubeconfig=${kubeconfig}`,
    `--tls-dir=${tlsDir}`,
    '--port=0',
    '--host=127.0.0.1',
  ];
  return [
    ['separate (weftd + webhook)', [weftdArgs(dist), webhook]],
    ['combined (weftd --webhook-port)', [combined(dist)]],
  ];
}

/** The cluster to idle against: $KUBECONFIG, else a throwaway one like the integration tests'. */
async function cluster(): Promise<{ kubeconfig: string; stop: () => Promise<void> }> {
  if (process.env.KUBECONFIG) return { kubeconfig: process.env.KUBECONFIG, stop: async () => undefined };
  const opts: ClusterOptions = {
    stateDir: mkdtempSync(join(tmpdir(), 'weft-idle-cluster-')),
    profile: 'test',
    log: createLogger('idle-cluster', { format: 'text', level: 'warn' }),
    ownerPid: process.pid,
  };
  const r = await up(opts);
  const stop = async (): Promise<void> => {
    await down(opts).catch(() => undefined);
    rmSync(opts.stateDir, { recursive: true, force: true });
  };
  const crds = spawnSync(
    join(r.binDir, 'kubectl'),
    ['--kubeconfig', r.kubeconfigPath, 'apply', '--server-side', '-f', join(ROOT, 'crds')],
    { encoding: 'utf8' },
  );
  if (crds.status !== 0) {
    await stop();
    throw new Error(`applying crds/: ${crds.stderr}`);
  }
  return { kubeconfig: r.kubeconfigPath, stop };
}

async function main(): Promise<void> {
  const { kubeconfig, stop } = await cluster();
  const apiPort = new URL(loadAccess({ kubeconfig }).server).port || '443';
  const tlsDir = servingDir();
  const all = cases(kubeconfig, tlsDir);
  const samples = new Map<string, Sample[]>(all.map(([n]) => [n, []]));
  try {
    for (let rep = 0; rep < REPS; rep++)
      for (const [name, processes] of all) samples.get(name)!.push(await runOnce(processes, apiPort));
  } finally {
    rmSync(tlsDir, { recursive: true, force: true });
    await stop();
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${BENCH} idle ${IDLE_S} s against ${kubeconfig}, median of ${REPS} (node ${process.version})`);
  const report: Record<string, Sample> = {};
  for (const [name, s] of samples) {
    const parts = s[0]!.partsMB.map((_, i) => median(s.map((x) => x.partsMB[i]!)));
    report[name] = {
      rssMB: median(s.map((x) => x.rssMB)),
      apiConnections: median(s.map((x) => x.apiConnections)),
      partsMB: parts,
    };
    const split = parts.length > 1 ? `   per process ${parts.map((p) => p.toFixed(1)).join(' + ')} MB` : '';
    console.log(
      `  ${name.padEnd(32)} RSS ${report[name].rssMB.toFixed(1)} MB   API server connections ${report[name].apiConnections}${split}   (RSS samples ${s.map((x) => x.rssMB.toFixed(0)).join(', ')})`,
    );
  }
  if (BENCH === 'combined' && all.length > 1) {
    const [now, base] = all.map(([n]) => report[n]!);
    console.log(
      `  combined / baseline RSS ${(now!.rssMB / base!.rssMB).toFixed(2)}x (${(base!.rssMB - now!.rssMB).toFixed(1)} MB less)`,
    );
  }
  if (BENCH === 'split') {
    const [sep, comb] = all.map(([n]) => report[n]!);
    console.log(
      `  combined / separate RSS ${(comb!.rssMB / sep!.rssMB).toFixed(2)}x (${(sep!.rssMB - comb!.rssMB).toFixed(1)} MB less)`,
    );
    writeFileSync(
      join(import.meta.dirname, 'last-run-idle-split.json'),
      `${JSON.stringify(report, null, 2)}\n`,
    );
  }
}

await main();
