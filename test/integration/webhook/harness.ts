/**
 * Runs the real webhook (`webhook/main.ts`, its own process, real TLS) against the test
 * cluster and registers it by URL + caBundle with the configurations from pkg/admission, scoped
 * by an extra namespace label to this file's namespaces so other suites in the same run are
 * never admitted by it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildWebhookConfigurations } from '../../../pkg/admission/index.js';
import { makeServingCert, testCluster, type KubectlResult } from '../../support/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
export const SCOPE_LABEL = 'weft.dev/webhook-test';

export interface RunningWebhook {
  port: number;
  /** PEM of the CA that signed the webhook's serving certificate. */
  ca: string;
  scope: string;
  logs(): string;
  names: { validating: string; mutating: string };
  stop(): Promise<void>;
}

async function startProcess(
  dir: string,
  kubeconfig: string,
): Promise<{ child: ChildProcess; port: number; logs: () => string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'webhook/main.ts'),
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--kubeconfig',
      kubeconfig,
      '--tls-cert-file',
      join(dir, 'tls.crt'),
      '--tls-key-file',
      join(dir, 'tls.key'),
      '--mesh-namespace',
      'weft-system',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_LOG_LEVEL: 'info', WEFT_LOG_FORMAT: 'json', WEFT_LOG_SILENT: '' },
    },
  );
  // Whatever happens to the test run (a failed hook, mocha --exit), the server dies with it.
  const killChild = (): void => void child.kill('SIGKILL');
  process.once('exit', killChild);
  child.once('exit', () => process.removeListener('exit', killChild));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-200_000)));
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`webhook did not start within 30 s:\n${stderr.slice(-3000)}`)),
      30_000,
    );
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`webhook exited with ${code}:\n${stderr.slice(-3000)}`));
    });
  });
  return { child, port, logs: () => stderr };
}

/** Polls until `probe` returns true (the API server reloads webhook configurations asynchronously). */
async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startWebhook(): Promise<RunningWebhook> {
  const { kubeconfigPath, kubectl } = testCluster();
  const dir = mkdtempSync(join(tmpdir(), 'weft-webhook-it-'));
  const cert = makeServingCert(['127.0.0.1']);
  writeFileSync(join(dir, 'tls.crt'), cert.certPem);
  writeFileSync(join(dir, 'tls.key'), cert.keyPem);
  const proc = await startProcess(dir, kubeconfigPath);
  const scope = randomBytes(4).toString('hex');
  const names = { validating: `weft-validator-${scope}`, mutating: `weft-sidecar-injector-${scope}` };
  const configs = buildWebhookConfigurations({
    target: { url: `https://127.0.0.1:${proc.port}` },
    caBundle: cert.caBundle,
    meshNamespace: 'weft-system',
    validatingName: names.validating,
    mutatingName: names.mutating,
  });
  for (const cfg of configs) {
    for (const wh of cfg.webhooks ?? []) {
      wh.namespaceSelector?.matchExpressions?.push({ key: SCOPE_LABEL, operator: 'In', values: [scope] });
    }
  }
  const applied = await kubectl(['apply', '-f', '-'], {
    input: configs.map((c) => JSON.stringify(c)).join('\n'),
  });
  if (applied.code !== 0) {
    // The caller never gets a handle to stop it, so stop it here: a live child would keep mocha
    // (and CI) waiting forever.
    proc.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`registering webhooks failed: ${applied.stderr}`);
  }
  return {
    port: proc.port,
    ca: cert.caPem,
    scope,
    names,
    logs: proc.logs,
    async stop() {
      await kubectl(['delete', 'validatingwebhookconfiguration', names.validating, '--ignore-not-found']);
      await kubectl(['delete', 'mutatingwebhookconfiguration', names.mutating, '--ignore-not-found']);
      proc.child.kill('SIGTERM');
      await new Promise((r) => proc.child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitForValidation(ns: string): Promise<void> {
  const { kubectl } = testCluster();
  const probe = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: probe, namespace: ${ns}}
spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: []}]}
`;
  await until('the validating webhook to take effect', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: probe });
    return r.stderr.includes('validation.mesh.weft.dev');
  });
}

export async function waitForInjection(ns: string): Promise<void> {
  const { kubectl } = testCluster();
  const probe = `apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: ${ns}}
spec: {containers: [{name: c, image: busybox}]}
`;
  await until('the injection webhook to take effect', async () => {
    const r = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: probe });
    return r.stdout.includes('weft-proxy');
  });
}

export function applyYaml(yaml: string, extra: string[] = []): Promise<KubectlResult> {
  return testCluster().kubectl(['apply', ...extra, '-f', '-'], { input: yaml });
}
