/**
 * A running weftd's idle RSS against a real API server (issue #19, ADR 0022), and how many TCP
 * connections it holds to the API server once its informers are up. Starts the compiled
 * `DIST/controlplane/main.js` (and, with BASELINE_DIST, the same file of another build: the
 * baseline) with the image's NODE_OPTIONS, waits IDLE_S seconds, reads VmRSS from /proc and the
 * established connections to the API server's port from `ss`. Interleaved, medians of REPS.
 *   KUBECONFIG=.local/kubeconfig BASELINE_DIST=/tmp/before/dist npx tsx bench/controlplane/idle.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { loadAccess } from '../../pkg/kube/kubeconfig.js';

const ROOT = resolve(import.meta.dirname, '../..');
const REPS = Number(process.env.REPS ?? 3);
const IDLE_S = Number(process.env.IDLE_S ?? 20);
const kubeconfig = process.env.KUBECONFIG ?? '';

interface Sample {
  rssMB: number;
  apiConnections: number;
}

async function runOnce(dist: string, tlsDir: string, apiPort: string): Promise<Sample> {
  const child = spawn(
    process.execPath,
    [
      join(dist, 'controlplane/main.js'),
      `--kubeconfig=${kubeconfig}`,
      `--tls-dir=${tlsDir}`,
      '--port=0',
      '--monitoring-port=0',
      '--host=127.0.0.1',
    ],
    {
      env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1', WEFT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  try {
    await new Promise<void>((ok, fail) => {
      child.stdout.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
      child.on('exit', (code) => fail(new Error(`weftd exited ${code}`)));
    });
    await sleep(IDLE_S * 1000);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const ss = spawnSync('ss', ['-tnpH', 'state', 'established', `dport = :${apiPort}`], {
      encoding: 'utf8',
    });
    const apiConnections = ss.stdout.split('\n').filter((l) => l.includes(`pid=${child.pid},`)).length;
    return { rssMB: rssKB / 1024, apiConnections };
  } finally {
    child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  if (kubeconfig === '')
    throw new Error('set KUBECONFIG to a running cluster (npm run cluster:up: .local/kubeconfig)');
  const apiPort = new URL(loadAccess({ kubeconfig }).server).port || '443';
  const tlsDir = mkdtempSync(join(tmpdir(), 'weftd-idle-'));
  const now = new Date();
  const ca = createCA({ commonName: 'idle-ca', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  writeFileSync(join(tlsDir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(tlsDir, 'tls.key'), leaf.keyPem);
  const builds: [string, string][] = [['weft', process.env.DIST ?? join(ROOT, 'dist')]];
  if (process.env.BASELINE_DIST) builds.push(['baseline', process.env.BASELINE_DIST]);
  const samples = new Map<string, Sample[]>(builds.map(([n]) => [n, []]));
  try {
    for (let rep = 0; rep < REPS; rep++)
      for (const [name, dist] of builds) samples.get(name)!.push(await runOnce(dist, tlsDir, apiPort));
  } finally {
    rmSync(tlsDir, { recursive: true, force: true });
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`weftd idle ${IDLE_S} s against ${kubeconfig}, median of ${REPS} (node ${process.version})`);
  for (const [name, s] of samples)
    console.log(
      `  ${name.padEnd(9)} RSS ${median(s.map((x) => x.rssMB)).toFixed(1)} MB   API server connections ${median(s.map((x) => x.apiConnections))}   (RSS samples ${s.map((x) => x.rssMB.toFixed(0)).join(', ')})`,
    );
}

await main();
