/**
 * Helpers for the e2e tests: the real kubectl against the demo cluster (`hack/local-cluster
 * up`, which includes the node), a fresh namespace per suite, and bounded polling. Every wait
 * has a deadline and reports what it last saw, so a broken cluster fails a test, never hangs it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { demoKubeconfig, demoStateDir, localBinDir, repoRoot } from '../../../hack/cluster/paths.js';

export { repoRoot };
export const kubeconfig = process.env.WEFT_E2E_KUBECONFIG ?? demoKubeconfig;

function kubectlPath(): string {
  if (process.env.WEFT_E2E_KUBECTL !== undefined) return process.env.WEFT_E2E_KUBECTL;
  const link = join(localBinDir, 'kubectl');
  if (existsSync(link)) return readlinkSync(link);
  // The link is rewritten by every up/down; the cluster's state names the bin dir too.
  try {
    const state = JSON.parse(readFileSync(join(demoStateDir, 'state.json'), 'utf8')) as { binDir?: string };
    const bin = join(state.binDir ?? '', 'kubectl');
    if (state.binDir !== undefined && existsSync(bin)) return bin;
  } catch {
    // no state: fall through
  }
  throw new Error(`${link} is missing: run hack/local-cluster up (or hack/test-e2e.sh) first`);
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export function kubectlRun(args: string[], input?: string, timeoutMs = 60_000): Run {
  const r = spawnSync(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], {
    input,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return {
    status: r.status ?? -1,
    stdout: r.stdout ?? '',
    stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}`,
  };
}

/** kubectl that must succeed; returns stdout. */
export function kubectl(args: string[], input?: string, timeoutMs = 60_000): string {
  const r = kubectlRun(args, input, timeoutMs);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function kubectlJson<T = Record<string, unknown>>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json'])) as T;
}

export function apply(ns: string, objects: object[]): void {
  kubectl(['apply', '-n', ns, '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
}

/** Streams `kubectl args` in the background; returns its output so far and a stop function. */
export function kubectlStream(args: string[]): {
  output: () => string;
  stop: () => void;
  done: Promise<number>;
} {
  const child = spawn(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return { output: () => out, stop: () => child.kill('SIGTERM'), done };
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs / 1000} s waiting for ${what}${last === '' ? '' : ` (last error: ${last})`}`,
  );
}

/** Creates a uniquely named namespace; the returned function deletes it (without waiting). */
export function freshNamespace(prefix: string): { ns: string; cleanup: () => void } {
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
  kubectl(['create', 'namespace', ns]);
  // The default ServiceAccount is created asynchronously; pods are rejected until it exists.
  return {
    ns,
    cleanup: () => {
      kubectlRun(['delete', 'namespace', ns, '--wait=false']);
    },
  };
}

export async function waitForServiceAccount(ns: string): Promise<void> {
  await waitFor(`default ServiceAccount in ${ns}`, () =>
    kubectlRun(['get', 'serviceaccount', 'default', '-n', ns]).status === 0 ? true : undefined,
  );
}

/** weft's one image (ADR 0004), as hack/images/load.sh imports it into the node. */
export const WEFT_IMAGE = 'ghcr.io/weft-mesh/weft:0.1.0';

export function weftImageLoaded(): boolean {
  return imageLoaded(WEFT_IMAGE);
}

/** Whether the node's containerd holds IMAGE (hack/images/load.sh imported it). */
export function imageLoaded(image: string): boolean {
  const socket = join(demoStateDir, 'containerd', 'containerd.sock');
  const r = spawnSync('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'ls', '-q'], {
    encoding: 'utf8',
  });
  return (r.stdout ?? '').split('\n').includes(image);
}

/** Images the node imports locally (hack/images); tests use nothing else. */
export const IMAGES = { echo: 'weft.local/echo:1', toolbox: 'weft.local/toolbox:1' };

interface PodLike {
  metadata: { name: string };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: { state?: { terminated?: { exitCode?: number } } }[];
  };
}

export function podReady(p: PodLike): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export async function waitPodsReady(
  ns: string,
  selector: string,
  count: number,
  timeoutMs = 90_000,
): Promise<PodLike[]> {
  return waitFor(
    `${count} ready pod(s) ${selector} in ${ns}`,
    () => {
      const list = kubectlJson<{ items: PodLike[] }>(['get', 'pods', '-n', ns, '-l', selector]);
      const ready = list.items.filter(podReady);
      return ready.length === count ? ready : undefined;
    },
    timeoutMs,
  );
}

export async function waitPodReady(ns: string, name: string, timeoutMs = 90_000): Promise<PodLike> {
  return waitFor(
    `pod ${ns}/${name} ready`,
    () => {
      const p = kubectlJson<PodLike>(['get', 'pod', name, '-n', ns]);
      if (p.status?.phase === 'Failed') throw new Error(`pod ${name} failed`);
      return podReady(p) ? p : undefined;
    },
    timeoutMs,
  );
}

/** A long-running client pod (busybox tools + iptables) to run requests from inside the cluster. */
export function clientPod(name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'client',
          image: IMAGES.toolbox,
          imagePullPolicy: 'IfNotPresent',
          command: ['/bin/sleep', '3600'],
        },
      ],
    },
  };
}
