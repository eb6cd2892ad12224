/**
 * `npm start` / `npm stop` step for the operator on the local cluster: until pods can run
 * there, the operator runs as a local process (leader election on, as in a cluster), pointed
 * at the local webhook (webhook/local.ts, https://127.0.0.1:9443, its own CA), and the sample
 * Mesh is applied so `kubectl get mesh` shows its conditions.
 *
 *   tsx operator/local.ts up     idempotent: reuses a running operator
 *   tsx operator/local.ts down   deletes the Mesh (so its children go), then stops the process it started (by PID)
 *
 * State in .local/operator/ (git-ignored): operator.pid, operator.log.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { errorMessage } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import type { KubeObject } from '../pkg/kube/types.js';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = process.env.WEFT_OPERATOR_STATE_DIR ?? join(ROOT, '.local/operator');
const KUBECONFIG = process.env.WEFT_LOCAL_KUBECONFIG ?? join(ROOT, '.local/kubeconfig');
const WEBHOOK_URL =
  process.env.WEFT_WEBHOOK_URL ?? `https://127.0.0.1:${process.env.WEFT_WEBHOOK_PORT ?? 9443}`;
const WEBHOOK_CA = join(ROOT, '.local/webhook/ca.crt');
const PROBE_PORT = Number(process.env.WEFT_OPERATOR_PROBE_PORT ?? 18081);
const METRICS_PORT = Number(process.env.WEFT_OPERATOR_METRICS_PORT ?? 18080);
const file = (name: string): string => join(STATE, name);

function runningPid(): number | undefined {
  if (!existsSync(file('operator.pid'))) return undefined;
  const pid = Number(readFileSync(file('operator.pid'), 'utf8'));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function ready(): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${PROBE_PORT}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

async function ensureProcess(): Promise<void> {
  if (runningPid() !== undefined && (await ready())) return;
  mkdirSync(STATE, { recursive: true });
  const log = openSync(file('operator.log'), 'a');
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'operator/main.ts'),
    `--kubeconfig=${KUBECONFIG}`,
    `--webhook-url=${WEBHOOK_URL}`,
    ...(existsSync(WEBHOOK_CA) ? [`--webhook-ca-file=${WEBHOOK_CA}`] : []),
    `--health-probe-bind-address=127.0.0.1:${PROBE_PORT}`,
    `--metrics-bind-address=127.0.0.1:${METRICS_PORT}`,
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'ignore', log],
    env: { ...process.env, WEFT_LOG_FORMAT: 'text' },
  });
  child.unref();
  writeFileSync(file('operator.pid'), String(child.pid));
  for (let i = 0; i < 120; i++) {
    if (await ready()) return;
    if (runningPid() === undefined) break;
    await sleep(250);
  }
  throw new Error(`operator did not become ready on 127.0.0.1:${PROBE_PORT}; see ${file('operator.log')}`);
}

async function up(): Promise<void> {
  const client = KubeClient.fromFile(KUBECONFIG);
  await client.apply(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'weft-system' } },
    'weft-start',
  );
  await ensureProcess();
  const mesh = parse(readFileSync(join(ROOT, 'config/samples/mesh.yaml'), 'utf8')) as KubeObject;
  await client.apply(mesh, 'weft-start');
  console.log(
    `operator: running (pid ${runningPid()}, log ${file('operator.log')}, metrics http://127.0.0.1:${METRICS_PORT}/metrics); ` +
      'applied config/samples/mesh.yaml — kubectl get mesh (pods stay Pending until the node runs them)',
  );
}

async function down(): Promise<void> {
  if (existsSync(KUBECONFIG) && runningPid() !== undefined) {
    try {
      const client = KubeClient.fromFile(KUBECONFIG);
      await client.delete({ apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh', name: 'default' });
      // The running operator removes the children and then the finalizer (bounded: 60 s).
      for (let i = 0; i < 120; i++) {
        if (!(await client.get({ apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh', name: 'default' })))
          break;
        await sleep(500);
      }
    } catch (err) {
      console.log(`operator: Mesh not removed (${errorMessage(err)})`);
    }
  }
  const pid = runningPid();
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && runningPid() !== undefined; i++) await sleep(100);
  }
  rmSync(file('operator.pid'), { force: true });
  console.log('operator: stopped');
}

const cmd = process.argv[2];
const run = cmd === 'up' ? up : cmd === 'down' ? down : undefined;
if (!run) {
  console.error('usage: tsx operator/local.ts up|down');
  process.exit(2);
}
run().catch((err: unknown) => {
  console.error(`operator: ${errorMessage(err)}`);
  process.exit(1);
});
