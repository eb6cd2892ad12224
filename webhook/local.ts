/**
 * `npm start` / `npm stop` step for the webhook on the local cluster: the API server there has
 * no pods network, so the webhook runs as a local process on 127.0.0.1, registered by URL with
 * its caBundle (as envtest does), and a `demo` namespace is labelled for injection.
 *
 *   tsx webhook/local.ts up     idempotent: reuses a running webhook and a valid certificate
 *   tsx webhook/local.ts down   stops the process it started (by PID) and removes its configurations
 *
 * State lives in .local/webhook/ (git-ignored): tls.crt/tls.key/ca.crt, webhook.pid, webhook.log.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildWebhookConfigurations } from '../pkg/admission/index.js';
import { certInfo, createCA, issueServing } from '../pkg/certs/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import type { KubeObject } from '../pkg/kube/types.js';

const ROOT = resolve(import.meta.dirname, '..');
const STATE = join(ROOT, '.local/webhook');
const KUBECONFIG = join(ROOT, '.local/kubeconfig');
const PORT = Number(process.env.WEFT_WEBHOOK_PORT ?? 9443);
/**
 * The operator's names (pkg/render): when `npm start` also runs the operator, it server-side
 * applies the same configurations (same builder, URL and CA) and takes them over, instead of a
 * second set calling the webhook twice (and printing every warning twice).
 */
const NAMES = { validatingName: 'weft-validator', mutatingName: 'weft-sidecar-injector' };
const DAY = 24 * 3600 * 1000;
const file = (name: string): string => join(STATE, name);

/** A CA and a serving cert for 127.0.0.1, reused until a week before expiry. */
function ensureCert(): string {
  mkdirSync(STATE, { recursive: true });
  if (existsSync(file('tls.crt')) && existsSync(file('ca.crt'))) {
    const { notAfter } = certInfo(readFileSync(file('tls.crt'), 'utf8'));
    if (notAfter.getTime() - Date.now() > 7 * DAY) return readFileSync(file('ca.crt'), 'utf8');
  }
  const now = new Date();
  const ca = createCA({ commonName: 'weft-local-webhook-ca', ttlMs: 365 * DAY, now });
  const leaf = issueServing(ca, {
    commonName: '127.0.0.1',
    dnsNames: ['127.0.0.1', 'localhost'],
    ttlMs: 90 * DAY,
    now,
  });
  writeFileSync(file('ca.crt'), ca.certPem);
  writeFileSync(file('tls.key'), leaf.keyPem, { mode: 0o600 });
  writeFileSync(file('tls.crt'), leaf.certPem);
  return ca.certPem;
}

function readyz(ca: string): Promise<boolean> {
  return new Promise((ok) => {
    const req = request({ host: '127.0.0.1', port: PORT, path: '/readyz', ca, timeout: 1000 }, (res) => {
      res.resume();
      ok(res.statusCode === 200);
    });
    req.on('error', () => ok(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function runningPid(): number | undefined {
  if (!existsSync(file('webhook.pid'))) return undefined;
  const pid = Number(readFileSync(file('webhook.pid'), 'utf8'));
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function ensureProcess(ca: string): Promise<void> {
  if (runningPid() !== undefined && (await readyz(ca))) return;
  const log = openSync(file('webhook.log'), 'a');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'webhook/main.ts'),
      `--port=${PORT}`,
      '--host=127.0.0.1',
      `--kubeconfig=${KUBECONFIG}`,
      `--tls-dir=${STATE}`,
      '--mesh-namespace=weft-system',
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'ignore', log],
      env: { ...process.env, WEFT_LOG_FORMAT: 'text' },
    },
  );
  child.unref();
  writeFileSync(file('webhook.pid'), String(child.pid));
  for (let i = 0; i < 120; i++) {
    if (await readyz(ca)) return;
    if (runningPid() === undefined) break;
    await sleep(250);
  }
  throw new Error(`webhook did not become ready on 127.0.0.1:${PORT}; see ${file('webhook.log')}`);
}

async function up(): Promise<void> {
  const ca = ensureCert();
  await ensureProcess(ca);
  const client = KubeClient.fromFile(KUBECONFIG);
  const configs = buildWebhookConfigurations({
    target: { url: `https://127.0.0.1:${PORT}` },
    caBundle: Buffer.from(ca).toString('base64'),
    meshNamespace: 'weft-system',
    ...NAMES,
  });
  for (const cfg of configs) await client.apply(cfg as unknown as KubeObject, 'weft-start');
  const demo = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio-injection': 'enabled' } },
  };
  await client.apply(demo as KubeObject, 'weft-start');
  console.log(
    `webhook: serving on https://127.0.0.1:${PORT} (pid ${runningPid()}, log ${file('webhook.log')}); namespace demo is labelled istio-injection=enabled`,
  );
}

async function down(): Promise<void> {
  const pid = runningPid();
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 40 && runningPid() !== undefined; i++) await sleep(100);
  }
  rmSync(file('webhook.pid'), { force: true });
  if (!existsSync(KUBECONFIG)) return;
  try {
    const client = KubeClient.fromFile(KUBECONFIG);
    await client.delete({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      name: NAMES.validatingName,
    });
    await client.delete({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      name: NAMES.mutatingName,
    });
  } catch (err) {
    // The cluster may already be gone; its configurations went with it.
    console.log(`webhook: configurations not removed (${errorMessage(err)})`);
  }
  console.log('webhook: stopped');
}

const cmd = process.argv[2];
const run = cmd === 'up' ? up : cmd === 'down' ? down : undefined;
if (!run) {
  console.error('usage: tsx webhook/local.ts up|down');
  process.exit(2);
}
run().catch((err: unknown) => {
  console.error(`webhook: ${errorMessage(err)}`);
  process.exit(1);
});
