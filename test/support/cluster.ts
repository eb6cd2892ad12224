/**
 * The cluster a test run talks to: `testCluster()` gives a ready KubeConfig, the kubeconfig
 * path and a `kubectl` runner; `freshNamespace()` gives each test a namespace of its own.
 * The cluster itself is started once per run by cluster-hooks.ts (or is the one named by
 * WEFT_TEST_KUBECONFIG), which hands it over through the environment so that mocha's
 * parallel workers find it too.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { WeftError } from '../../pkg/errors/index.js';
import { hooksLoaded, onCleanup } from './scope.js';

export const ENV = {
  kubeconfig: 'WEFT_TEST_KUBECONFIG',
  binDir: 'WEFT_TEST_BIN_DIR',
  runId: 'WEFT_TEST_RUN_ID',
  kubectlCache: 'WEFT_TEST_KUBECTL_CACHE',
} as const;

/** Label on every namespace the helpers create; `weft.dev/test-run` tells runs apart. */
export const TEST_LABEL = 'weft.dev/test';
export const TEST_RUN_LABEL = 'weft.dev/test-run';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Kills kubectl after this long (default 60 s); the result then has code 124. */
  timeoutMs?: number;
}

export interface TestCluster {
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  binDir: string;
  /** Runs the built kubectl (v1.36.3) against the test cluster; never throws on exit codes. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
}

let cached: TestCluster | undefined;

export function testCluster(): TestCluster {
  const kubeconfigPath = process.env[ENV.kubeconfig];
  const binDir = process.env[ENV.binDir];
  if (kubeconfigPath === undefined || kubeconfigPath === '' || binDir === undefined || binDir === '') {
    throw new WeftError(
      'WEFT_CLUSTER_NOT_RUNNING',
      'no test cluster: run integration tests with `--require test/support/cluster-hooks.ts` ' +
        '(npm run test:integration does), optionally with WEFT_TEST_KUBECONFIG=<kubeconfig> to reuse a running cluster',
    );
  }
  if (cached?.kubeconfigPath === kubeconfigPath) return cached;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  cached = {
    kubeConfig,
    kubeconfigPath,
    binDir,
    kubectl: (args, opts) => runKubectl(join(binDir, 'kubectl'), kubeconfigPath, args, opts ?? {}),
  };
  return cached;
}

function runKubectl(
  bin: string,
  kubeconfig: string,
  args: string[],
  opts: KubectlOptions,
): Promise<KubectlResult> {
  const cacheDir = process.env[ENV.kubectlCache];
  const argv = ['--kubeconfig', kubeconfig, ...(cacheDir ? ['--cache-dir', cacheDir] : []), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new WeftError('WEFT_BINARY_MISSING', `cannot run ${bin}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) stderr += `\nkubectl killed after ${opts.timeoutMs ?? 60_000} ms`;
      resolve({ code: timedOut ? 124 : (code ?? 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** The message of a client-node ApiException (a Status body), else the error's own message. */
export function apiErrorMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body = e.body;
  if (typeof body === 'string') {
    const raw = body;
    try {
      body = JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  const msg = (body as { message?: unknown } | undefined)?.message;
  return typeof msg === 'string' ? msg : (e.message ?? String(err));
}

export function apiErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** RFC 1123 label: lower-case alphanumerics and '-', at most 63 characters. */
export function namespaceName(prefix: string, suffix = randomBytes(3).toString('hex')): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const head = (clean === '' ? 'test' : clean).slice(0, 63 - suffix.length - 1).replace(/-+$/, '');
  return `${head}-${suffix}`;
}

export interface FreshNamespaceOptions {
  labels?: Record<string, string>;
  /**
   * Wait until kube-controller-manager has created the `default` ServiceAccount (Pods cannot be
   * created before it exists). Default true.
   */
  waitForServiceAccount?: boolean;
}

/**
 * Creates a uniquely named, labelled namespace and deletes it when the current test ends (or,
 * called from a `before` hook, when the run ends). Deletion is not awaited to the end:
 * names never repeat, so nothing waits on a Terminating namespace.
 */
export async function freshNamespace(prefix: string, opts: FreshNamespaceOptions = {}): Promise<string> {
  if (!hooksLoaded()) {
    throw new WeftError(
      'WEFT_CLUSTER_USAGE',
      'freshNamespace needs the root hooks: run mocha with --require test/support/cluster-hooks.ts',
    );
  }
  const core = testCluster().kubeConfig.makeApiClient(CoreV1Api);
  const name = namespaceName(prefix);
  const labels = {
    ...opts.labels,
    [TEST_LABEL]: 'true',
    [TEST_RUN_LABEL]: process.env[ENV.runId] ?? String(process.pid),
  };
  await core.createNamespace({ body: { metadata: { name, labels } } });
  onCleanup(async () => {
    try {
      await core.deleteNamespace({ name });
    } catch (err) {
      if (apiErrorCode(err) !== 404) throw err;
    }
  });
  if (opts.waitForServiceAccount ?? true) await waitForDefaultServiceAccount(core, name);
  return name;
}

async function waitForDefaultServiceAccount(
  core: CoreV1Api,
  namespace: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace });
      return;
    } catch (err) {
      if (apiErrorCode(err) !== 404) throw err;
    }
    if (Date.now() > deadline) {
      throw new WeftError(
        'WEFT_CLUSTER_TIMEOUT',
        `no "default" ServiceAccount in ${namespace} after ${timeoutMs / 1000} s: is kube-controller-manager running? ` +
          '(pass { waitForServiceAccount: false } against a cluster without one)',
      );
    }
    await sleep(100);
  }
}
