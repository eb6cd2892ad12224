/**
 * Real parts for the operator's integration tests: the operator as a real child process (the
 * pinned Node running operator/main.ts), an HTTPS admission server serving with the
 * certificate the operator issued (so the API server's TLS verification against the
 * operator-managed caBundle is exercised for real), a stand-in kubelet that marks pods Ready
 * through the pods/status subresource, and an API server restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { status as clusterStatus, up as clusterUp } from '../../../hack/cluster/cluster.js';
import { waitFor } from '../../support/wait.js';
import { freePort } from '../../support/ports.js';

/** Suites import the one polling helper from here along with the rest of the harness. */
export { waitFor, freePort };

export interface OperatorOptions {
  kubeconfig: string;
  webhookUrl: string;
  identity: string;
  extraArgs?: string[];
}

export class OperatorProcess {
  private output = '';
  private exited: Promise<number | null>;

  private constructor(
    readonly proc: ChildProcess,
    readonly probePort: number,
    readonly metricsPort: number,
  ) {
    proc.stdout?.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    proc.stderr?.setEncoding('utf8').on('data', (c: string) => (this.output += c));
    this.exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  }

  static async start(o: OperatorOptions): Promise<OperatorProcess> {
    const probePort = await freePort();
    const metricsPort = await freePort();
    const args = [
      '--import',
      'tsx',
      'operator/main.ts',
      '--kubeconfig',
      o.kubeconfig,
      '--identity',
      o.identity,
      '--webhook-url',
      o.webhookUrl,
      '--health-probe-bind-address',
      `127.0.0.1:${probePort}`,
      '--metrics-bind-address',
      `127.0.0.1:${metricsPort}`,
      // Shorter than the 15/10/2 s defaults so the failover test stays short.
      '--lease-duration',
      '6s',
      '--renew-deadline',
      '4s',
      '--retry-period',
      '1s',
      ...(o.extraArgs ?? []),
    ];
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WEFT_LOG_LEVEL: 'debug' },
    });
    const op = new OperatorProcess(proc, probePort, metricsPort);
    try {
      await waitFor(
        'operator /readyz',
        async () => (await fetch(`http://127.0.0.1:${probePort}/readyz`)).status === 200,
        90_000,
        250,
      );
    } catch (err) {
      await op.stop('SIGKILL');
      throw new Error(`${(err as Error).message}\noperator output:\n${op.logs().slice(-3000)}`, {
        cause: err,
      });
    }
    return op;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  logs(): string {
    return this.output;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  async isLeader(): Promise<boolean> {
    return /leader_election_master_status\{name="weft-operator"\} 1/.test(
      await this.metrics().catch(() => ''),
    );
  }

  /** Resident set size in bytes, from /proc (Linux). */
  rssBytes(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** SIGTERM (graceful: releases the Lease) or SIGKILL (a crash: the Lease must expire). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/**
 * An allow-all admission webhook on loopback that serves the operator-issued certificate from
 * Secret weft-system/weft-webhook-tls, reloaded every second (so rotation is followed). Until
 * the Secret exists it serves a throwaway certificate, which the API server rejects.
 */
export class TestWebhook {
  requests = 0;
  servingSerial = '';
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(client: KubeClient): Promise<TestWebhook> {
    const now = new Date();
    const throwaway = issueServing(createCA({ commonName: 'throwaway', ttlMs: 3600_000, now }), {
      commonName: 'x',
      dnsNames: ['127.0.0.1'],
      ttlMs: 3600_000,
      now,
    });
    const server = createHttpsServer({ cert: throwaway.certPem, key: throwaway.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hook.requests++;
        const review = JSON.parse(body || '{}') as { request?: { uid?: string } };
        res.setHeader('Content-Type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request?.uid ?? '', allowed: true },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const hook = new TestWebhook(server, (server.address() as { port: number }).port);
    hook.timer = setInterval(() => void hook.reload(client), 1000);
    await hook.reload(client);
    return hook;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  private async reload(client: KubeClient): Promise<void> {
    const secret = await client
      .get({ apiVersion: 'v1', kind: 'Secret', namespace: 'weft-system', name: 'weft-webhook-tls' })
      .catch(() => null);
    const data = (secret as { data?: Record<string, string> } | null)?.data;
    if (!data?.['tls.crt'] || !data['tls.key']) return;
    const cert = Buffer.from(data['tls.crt'], 'base64').toString();
    if (cert === this.servingSerial) return;
    this.server.setSecureContext({ cert, key: Buffer.from(data['tls.key'], 'base64').toString() });
    this.servingSerial = cert;
  }

  get loaded(): boolean {
    return this.servingSerial !== '';
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.server.close();
  }
}

/** Plays kubelet: marks every pod of a Deployment Running and Ready via pods/status. */
export async function makePodsReady(client: KubeClient, namespace: string, app: string): Promise<number> {
  const { items } = await client.list('v1', 'Pod', { namespace, labelSelector: `app=${app}` });
  let patched = 0;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  for (const pod of items) {
    const st = (pod as { status?: { phase?: string } }).status;
    if (st?.phase === 'Running' || pod.metadata.deletionTimestamp) continue;
    await client.mergePatch(
      { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.metadata.name },
      {
        status: {
          phase: 'Running',
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            { type: 'Initialized', status: 'True', lastTransitionTime: now },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
            { type: 'Ready', status: 'True', lastTransitionTime: now },
          ],
        },
      },
      'status',
    );
    patched++;
  }
  return patched;
}

/** Marks the pods of every Deployment the Mesh owns Ready (repeat while rollouts create pods). */
export async function makeMeshReady(client: KubeClient, meshName: string): Promise<void> {
  const { items } = await client.list('apps/v1', 'Deployment', {
    labelSelector: `mesh.weft.dev/mesh=${meshName}`,
  });
  for (const d of items) await makePodsReady(client, d.metadata.namespace!, d.metadata.name);
}

export function condition(
  mesh: KubeObject | null,
  type: string,
): { status: string; reason: string; message: string; observedGeneration?: number } | undefined {
  const conds = (
    mesh as {
      status?: {
        conditions?: {
          type: string;
          status: string;
          reason: string;
          message: string;
          observedGeneration?: number;
        }[];
      };
    } | null
  )?.status?.conditions;
  return conds?.find((c) => c.type === type);
}

/**
 * Stops kube-apiserver of the test cluster and starts it again on the same port with the
 * same state (hack/cluster's `up` restarts what is not running). Returns the downtime in ms.
 */
export async function restartApiServer(kubeconfigPath: string, downMs = 2000): Promise<number> {
  const stateDir = dirname(kubeconfigPath);
  const log = createLogger('test-cluster', { silent: true });
  const comps = await clusterStatus({ stateDir, profile: 'test', log });
  const api = comps?.find((c) => c.name === 'kube-apiserver');
  if (!api?.pid) throw new Error(`no running kube-apiserver recorded in ${stateDir}`);
  const t0 = Date.now();
  process.kill(api.pid, 'SIGTERM');
  // kube-apiserver drains for a while on SIGTERM; after 10 s treat it as a crash (SIGKILL).
  await waitFor('kube-apiserver to exit', () => !isRunning(api.pid!), 10_000).catch(() =>
    process.kill(api.pid!, 'SIGKILL'),
  );
  await waitFor('kube-apiserver to die', () => !isRunning(api.pid!), 10_000);
  await sleep(downMs);
  await clusterUp({ stateDir, profile: 'test', log });
  return Date.now() - t0;
}

/** Alive and not a zombie (an exited child of a process that is gone may never be reaped here). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function clientFor(kubeconfig: string): KubeClient {
  return KubeClient.fromFile(kubeconfig);
}
