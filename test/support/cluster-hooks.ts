/**
 * Mocha root hooks and global fixtures for integration tests; load with
 * `mocha --require test/support/cluster-hooks.ts`.
 *
 * - mochaGlobalSetup (once per run, in the main process even with --parallel): starts a
 *   throwaway cluster — etcd, kube-apiserver, kube-controller-manager — in its own temp state
 *   dir on random loopback ports, so it never collides with the demo cluster (`npm start`) or
 *   with another engineer's test run. With WEFT_TEST_KUBECONFIG set, that cluster is used
 *   instead and nothing is started. The cluster is handed to test files (and to parallel
 *   workers, which inherit the environment) through WEFT_TEST_* variables.
 * - mochaGlobalTeardown: stops it and removes its state. If the runner dies without teardown
 *   (SIGKILL, closed terminal), a reaper process started with the cluster cleans up.
 * - mochaHooks: run the helpers' cleanups (namespaces, webhook configurations) after each
 *   test and at the end of each file.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WeftError, errorMessage } from '../../pkg/errors/index.js';
import { createLogger } from '../../pkg/log/index.js';
import { ensureBinaries } from '../../hack/cluster/binaries.js';
import { down, fmtMs, status, up, type ClusterOptions } from '../../hack/cluster/cluster.js';
import { ENV } from './cluster.js';
import { enterTest, markHooksLoaded, runCleanups } from './scope.js';

markHooksLoaded();

let started: ClusterOptions | undefined;

function clusterOptions(): ClusterOptions {
  return {
    stateDir: mkdtempSync(join(tmpdir(), 'weft-test-cluster-')),
    profile: 'test',
    log: createLogger('test-cluster', { format: 'text', level: process.env.WEFT_LOG_LEVEL ?? 'warn' }),
    ownerPid: process.pid,
  };
}

/** mocha prints a global-setup error with its stack; ours carry the whole story in the message. */
function withoutStack(err: unknown): Error {
  const e =
    err instanceof WeftError
      ? err
      : new WeftError('WEFT_CLUSTER_START_FAILED', errorMessage(err), { cause: err });
  e.stack = `test cluster: ${e.toString()}`;
  return e;
}

async function stopOnSignal(signal: NodeJS.Signals): Promise<void> {
  const opts = started;
  started = undefined;
  if (opts !== undefined) await down(opts).catch(() => undefined);
  process.kill(process.pid, signal);
}

export async function mochaGlobalSetup(): Promise<void> {
  try {
    process.env[ENV.runId] ??= randomBytes(4).toString('hex');
    if ((process.env[ENV.kubeconfig] ?? '') !== '') {
      process.env[ENV.binDir] ??= await ensureBinaries(['kubectl']);
      process.stderr.write(`test cluster: reusing ${process.env[ENV.kubeconfig]} (WEFT_TEST_KUBECONFIG)\n`);
      return;
    }
    const opts = clusterOptions();
    started = opts;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, (s) => void stopOnSignal(s));
    const r = await up(opts);
    process.env[ENV.kubeconfig] = r.kubeconfigPath;
    process.env[ENV.binDir] = r.binDir;
    process.env[ENV.kubectlCache] = join(opts.stateDir, 'kubectl-cache');
    const steps = Object.entries(r.timings)
      .map(([k, v]) => `${k} ${fmtMs(v)}`)
      .join(', ');
    process.stderr.write(
      `test cluster: up in ${fmtMs(r.totalMs)} (${steps}) at ${r.apiserverUrl}, state ${opts.stateDir}\n`,
    );
  } catch (err) {
    if (started !== undefined) await down(started).catch(() => undefined);
    started = undefined;
    throw withoutStack(err);
  }
}

export async function mochaGlobalTeardown(): Promise<void> {
  const opts = started;
  started = undefined;
  if (opts === undefined) return;
  // Peak RSS per component over the whole run: the figure to watch on a 2-core, shared box.
  const peaks = ((await status(opts).catch(() => undefined)) ?? [])
    .map((c) => `${c.name} ${Math.round((c.peakRssBytes ?? 0) / 1024 / 1024)} MB`)
    .join(', ');
  const t0 = Date.now();
  await down(opts);
  process.stderr.write(`test cluster: down in ${fmtMs(Date.now() - t0)} (peak RSS: ${peaks})\n`);
}

async function cleanup(scope: 'test' | 'suite'): Promise<void> {
  const failures = await runCleanups(scope);
  if (failures.length > 0)
    throw new WeftError('WEFT_CLUSTER_USAGE', `cleanup failed: ${failures.join('; ')}`);
}

export const mochaHooks = {
  beforeEach(): void {
    enterTest();
  },
  async afterEach(): Promise<void> {
    await cleanup('test');
  },
  async afterAll(): Promise<void> {
    await cleanup('suite');
  },
};
