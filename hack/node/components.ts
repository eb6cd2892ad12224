/**
 * The local node as components of the local cluster (hack/cluster/types.ts): kube-scheduler,
 * containerd, kubelet, kube-proxy and CoreDNS, started in that order after the control plane
 * and stopped in reverse. Only the demo profile runs them (root, one node per machine).
 *
 * Host changes are made by the first component that needs them and undone by `afterStop`
 * hooks, in this order on `down`: kube-proxy removes its rules; the kubelet's hook kills every
 * pod process (containerd still runs and reaps the tasks) and unmounts the kubelet's dir; the
 * containerd hook then removes whatever is left: shims, mounts, netns, links, iptables chains,
 * cgroups, sysctls and hard-coded paths. Every step is idempotent, so `down` after a crashed
 * `up` cleans up as well.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { WeftError } from '../../pkg/errors/index.js';
import { repoRoot } from '../cluster/paths.js';
import type { ClusterContext, Component } from '../cluster/types.js';
import {
  CLUSTER_DOMAIN,
  NODE_IP,
  NODE_NAME,
  renderClusterDnsObjects,
  renderCniConflist,
  renderContainerdConfig,
  renderCorefile,
  renderKubeletConfig,
  renderKubeProxyConfig,
  renderNoRegistryHosts,
  type NodePaths,
} from './config.js';
import {
  checkPreconditions,
  claimNode,
  ensureBridge,
  ensureBridgeNetfilter,
  installGuard,
  killPodProcesses,
  killShims,
  otherOwner,
  readHostBefore,
  recordHostBefore,
  removeCgroups,
  removeCreatedNftTables,
  removeCreatedPaths,
  removeLinks,
  removeOwnedRules,
  releaseNode,
  restoreSysctls,
  run,
  unmountOwned,
} from './host.js';
import { buildImages, importImages, NODE_IMAGES } from './images.js';
import { apiGet, get, lookup4, nodeReady } from './probe.js';

export function nodePaths(ctx: ClusterContext): NodePaths {
  const c = ctx.dir('containerd');
  return {
    containerdSocket: join(c, 'containerd.sock'),
    containerdRoot: join(c, 'root'),
    containerdState: join(c, 'state'),
    cniConfDir: ctx.dir('cni', 'net.d'),
    cniIpamDir: ctx.dir('cni', 'ipam'),
    kubeletRoot: ctx.dir('kubelet', 'root'),
    podLogsDir: ctx.dir('kubelet', 'pod-logs'),
    podResolvConf: join(ctx.dir('kubelet'), 'resolv.conf'),
    kubeconfig: ctx.pki.ensureKubeconfig('kubelet', `system:node:${NODE_NAME}`, ['system:nodes']),
    caFile: ctx.pki.ca.cert,
  };
}

const hostBeforeFile = (ctx: ClusterContext): string => join(ctx.dir('node'), 'host-before.json');

/** Applies objects with the cluster's kubectl as admin (server-side, one field manager). */
export function kubectlApply(ctx: ClusterContext, objects: object[]): void {
  const yaml = objects.map((o) => stringify(o)).join('---\n');
  kubectl(
    ctx,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=weft-local-node', '-f', '-'],
    yaml,
  );
}

export function kubectl(ctx: ClusterContext, args: string[], input?: string): string {
  const r = spawnSync(ctx.bin('kubectl'), ['--kubeconfig', ctx.adminKubeconfig, ...args], {
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) {
    throw new WeftError(
      'WEFT_CLUSTER_START_FAILED',
      `kubectl ${args.join(' ')} failed: ${(r.stderr ?? r.error?.message ?? '').trim()}`,
    );
  }
  return r.stdout;
}

/**
 * True when another checkout's node owns the machine: its pods, bridge and chains are not
 * ours to remove (this cluster's node never started, or was already taken down).
 */
function skipHostCleanup(ctx: ClusterContext): boolean {
  const other = otherOwner(ctx.stateDir);
  if (other !== undefined) ctx.log.info(`the node on this machine belongs to ${other}; leaving it alone`);
  return other !== undefined;
}

// ---------------------------------------------------------------- kube-scheduler

export const kubeScheduler: Component = {
  name: 'kube-scheduler',
  profiles: ['demo'],
  binaries: ['kube-scheduler'],
  ports: { secure: 10259 },
  command: (ctx) => {
    const kc = ctx.pki.ensureKubeconfig('kube-scheduler', 'system:kube-scheduler');
    return {
      bin: 'kube-scheduler',
      args: [
        `--kubeconfig=${kc}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${ctx.port('kube-scheduler', 'secure')}`,
        `--cert-dir=${ctx.dir('kube-scheduler', 'certs')}`,
        '--v=1',
      ],
    };
  },
  health: async (ctx) => {
    const r = await get(`https://127.0.0.1:${ctx.port('kube-scheduler', 'secure')}/healthz`, {
      rejectUnauthorized: false,
    });
    return { ok: r.status === 200, detail: `GET /healthz: ${r.status} ${r.body.trim().slice(0, 200)}` };
  },
};

// ---------------------------------------------------------------- containerd

export const containerd: Component = {
  name: 'containerd',
  profiles: ['demo'],
  binaries: [],
  // The apiserver reaches kubelets by InternalIP (the bridge address), and needs it as a SAN
  // to be reachable from pods later (in-cluster clients) — harmless until then.
  apiserverSANs: () => [NODE_IP],
  // The `kubernetes` Service's endpoint: pods reach it through apiserver-forward below.
  apiserverFlags: () => [`--advertise-address=${NODE_IP}`],
  prepare: (ctx) => {
    checkPreconditions();
    claimNode(ctx.stateDir);
    recordHostBefore(hostBeforeFile(ctx));
    const p = nodePaths(ctx);
    // Firewall first: no pod may ever run without the guard.
    installGuard();
    ensureBridge();
    ensureBridgeNetfilter();
    writeFileSync(join(p.cniConfDir, '10-weft-pods.conflist'), renderCniConflist(p.cniIpamDir));
    writeFileSync(p.podResolvConf, '# weft local node: pods with dnsPolicy Default get no resolver.\n');
    mkdirSync(p.containerdRoot, { recursive: true });
    mkdirSync(p.containerdState, { recursive: true });
    rmSync(p.containerdSocket, { force: true });
    writeFileSync(join(ctx.dir('containerd', 'certs.d', '_default'), 'hosts.toml'), renderNoRegistryHosts());
    const cfg = renderContainerdConfig(p, ctx.dir('containerd', 'opt'), ctx.dir('containerd', 'certs.d'));
    writeFileSync(join(ctx.dir('containerd'), 'config.toml'), cfg);
  },
  command: (ctx) => ({
    bin: '/usr/bin/containerd',
    args: ['--config', join(ctx.dir('containerd'), 'config.toml'), '--log-level', 'warn'],
  }),
  health: (ctx) => {
    const sock = join(ctx.dir('containerd'), 'containerd.sock');
    const r = run('ctr', ['--address', sock, 'version'], { timeoutMs: 3000 });
    return Promise.resolve({
      ok: r.status === 0,
      detail: r.status === 0 ? 'ctr version ok' : r.stderr.trim().slice(-300),
    });
  },
  startTimeoutMs: 30_000,
  afterStop: async (ctx) => {
    const stateDir = ctx.stateDir;
    if (skipHostCleanup(ctx)) return;
    const sock = join(stateDir, 'containerd', 'containerd.sock');
    const left: string[] = [];
    const t0 = Date.now();
    left.push(...(await killPodProcesses()).map((pid) => `pod process ${pid}`));
    left.push(...(await killShims(sock)).map((pid) => `shim ${pid}`));
    left.push(...unmountOwned([stateDir], true));
    left.push(...removeLinks());
    left.push(...removeOwnedRules(ctx.log));
    const before = readHostBefore(join(stateDir, 'node', 'host-before.json'));
    left.push(...removeCgroups(before));
    if (before !== undefined) {
      left.push(...restoreSysctls(before));
      left.push(...removeCreatedNftTables(before));
      left.push(...removeCreatedPaths(before));
    }
    releaseNode(stateDir);
    ctx.log.info(`node host state restored in ${Date.now() - t0} ms`);
    if (left.length > 0) {
      // A mount left under the state dir would be descended into by the state dir's removal.
      const dangerous = left.filter((l) => l.startsWith(`mount ${stateDir}`));
      const msg = `node teardown left: ${left.join(', ')}`;
      if (dangerous.length > 0) throw new WeftError('WEFT_NODE_CLEANUP_INCOMPLETE', `${msg}; state dir kept`);
      ctx.log.warn(msg);
    }
  },
};

// ---------------------------------------------------------------- apiserver-forward

/** NODE_IP:<apiserver port> → 127.0.0.1:<apiserver port>, for in-cluster API clients. */
export const apiserverForward: Component = {
  name: 'apiserver-forward',
  profiles: ['demo'],
  binaries: [],
  command: (ctx) => {
    const port = ctx.port('kube-apiserver', 'secure');
    return {
      // The project's pinned Node runs `up`; the forwarder is plain JS for it.
      bin: process.execPath,
      args: [
        join(repoRoot, 'hack', 'node', 'apiserver-forward.mjs'),
        `${NODE_IP}:${port}`,
        `127.0.0.1:${port}`,
        ctx.stateDir,
      ],
    };
  },
  health: async (ctx) => {
    const r = await get(`https://${NODE_IP}:${ctx.port('kube-apiserver', 'secure')}/livez`, {
      rejectUnauthorized: false,
    });
    // 200, or 401/403 without credentials: either way kube-apiserver answered through us.
    return { ok: r.status > 0, detail: `GET https://${NODE_IP}/livez through the forward: ${r.status}` };
  },
  startTimeoutMs: 15_000,
};

// ---------------------------------------------------------------- kubelet

export const kubelet: Component = {
  name: 'kubelet',
  profiles: ['demo'],
  binaries: ['kubelet'],
  ports: { healthz: 10248 },
  prepare: (ctx) => {
    const p = nodePaths(ctx);
    // Images first: the kubelet starts static work at once and must never reach for a registry.
    const images = buildImages(['infra']).filter((i) =>
      NODE_IMAGES.some((n) => i.archive.includes(`/${n}-`)),
    );
    importImages(p.containerdSocket, images);
    const cfg = join(ctx.dir('kubelet'), 'config.yaml');
    writeFileSync(cfg, renderKubeletConfig(p, { healthz: ctx.port('kubelet', 'healthz') }));
  },
  command: (ctx) => {
    const p = nodePaths(ctx);
    return {
      bin: 'kubelet',
      args: [
        `--config=${join(ctx.dir('kubelet'), 'config.yaml')}`,
        `--kubeconfig=${p.kubeconfig}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        `--root-dir=${p.kubeletRoot}`,
        `--cert-dir=${ctx.dir('kubelet', 'pki')}`,
        '--v=1',
      ],
    };
  },
  health: async (ctx) => {
    const h = await get(`http://127.0.0.1:${ctx.port('kubelet', 'healthz')}/healthz`);
    if (h.status !== 200) return { ok: false, detail: `kubelet /healthz: ${h.status} ${h.body.trim()}` };
    return nodeReady(await apiGet(ctx, `/api/v1/nodes/${NODE_NAME}`));
  },
  startTimeoutMs: 120_000,
  afterStop: async (ctx) => {
    if (skipHostCleanup(ctx)) return;
    // containerd still runs: it sees the tasks exit and deletes them, so their shims go too.
    const left = await killPodProcesses();
    if (left.length > 0) ctx.log.warn('pod processes survived SIGKILL', { pids: left });
    const mounts = unmountOwned([join(ctx.stateDir, 'kubelet')]);
    if (mounts.length > 0) ctx.log.warn('kubelet mounts stay (containerd teardown retries)', { mounts });
  },
};

// ---------------------------------------------------------------- kube-proxy

export const kubeProxy: Component = {
  name: 'kube-proxy',
  profiles: ['demo'],
  binaries: ['kube-proxy'],
  ports: { healthz: 10256, metrics: 10249 },
  prepare: (ctx) => {
    const kc = ctx.pki.ensureKubeconfig('kube-proxy', 'system:kube-proxy');
    const cfg = renderKubeProxyConfig(kc, {
      healthz: ctx.port('kube-proxy', 'healthz'),
      metrics: ctx.port('kube-proxy', 'metrics'),
    });
    writeFileSync(join(ctx.dir('kube-proxy'), 'config.yaml'), cfg);
  },
  command: (ctx) => ({
    bin: 'kube-proxy',
    args: [`--config=${join(ctx.dir('kube-proxy'), 'config.yaml')}`, '--v=1'],
  }),
  health: async (ctx) => {
    const r = await get(`http://127.0.0.1:${ctx.port('kube-proxy', 'healthz')}/healthz`);
    return {
      ok: r.status === 200,
      detail: `kube-proxy /healthz: ${r.status} ${r.body.trim().slice(0, 200)}`,
    };
  },
  afterStop: (ctx) => {
    if (skipHostCleanup(ctx)) return;
    const bin = ctx.bin('kube-proxy');
    if (!existsSync(bin)) return;
    const r = run(bin, ['--cleanup', '--v=0'], { timeoutMs: 30_000 });
    if (r.status !== 0)
      ctx.log.warn('kube-proxy --cleanup failed; the node teardown removes its chains', {
        err: r.stderr.slice(-300),
      });
  },
};

// ---------------------------------------------------------------- CoreDNS

export const SMOKE_NAMESPACE = 'weft-local';
export const SMOKE_HOST = `smoke.${SMOKE_NAMESPACE}.svc.${CLUSTER_DOMAIN}`;

function corednsBinary(): string {
  const script = join(repoRoot, 'hack', 'node', 'build-coredns.sh');
  const r = spawnSync('bash', [script], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  const bin = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !existsSync(bin)) {
    throw new WeftError(
      'WEFT_BINARY_MISSING',
      `hack/node/build-coredns.sh failed (exit ${r.status ?? 'signal'}); see its output above`,
    );
  }
  return bin;
}

export const coredns: Component = {
  name: 'coredns',
  profiles: ['demo'],
  binaries: ['kubectl'],
  ports: { health: 9151, ready: 9181, metrics: 9153 },
  prepare: (ctx) => {
    writeFileSync(join(ctx.dir('coredns'), 'binary'), corednsBinary());
    const kc = ctx.pki.ensureKubeconfig('coredns', 'weft:coredns');
    const corefile = renderCorefile({
      kubeconfig: kc,
      healthPort: ctx.port('coredns', 'health'),
      readyPort: ctx.port('coredns', 'ready'),
      metricsPort: ctx.port('coredns', 'metrics'),
    });
    writeFileSync(join(ctx.dir('coredns'), 'Corefile'), corefile);
    kubectl(ctx, [
      'apply',
      '--server-side',
      '--field-manager=weft-local-node',
      '-f',
      join(repoRoot, 'hack', 'node', 'manifests'),
    ]);
    kubectlApply(ctx, renderClusterDnsObjects());
  },
  command: (ctx) => ({
    bin: corednsBinaryPath(ctx),
    args: ['-conf', join(ctx.dir('coredns'), 'Corefile')],
  }),
  // Ready means: CoreDNS answers for the cluster domain, and the smoke Service answers by its
  // DNS name through its ClusterIP (DNS + kube-proxy + pod networking, end to end).
  health: async (ctx) => {
    const ready = await get(`http://127.0.0.1:${ctx.port('coredns', 'ready')}/ready`);
    if (ready.status !== 200) return { ok: false, detail: `coredns /ready: ${ready.status}` };
    const api = await lookup4(NODE_IP, `kubernetes.default.svc.${CLUSTER_DOMAIN}`);
    if (!api.includes('10.0.0.1'))
      return { ok: false, detail: `kubernetes.default resolved to ${api.join(',')}` };
    const smoke = await lookup4(NODE_IP, SMOKE_HOST).catch((err: unknown) => {
      throw new Error(`${SMOKE_HOST}: ${err instanceof Error ? err.message : String(err)}`);
    });
    const r = await get(`http://${smoke[0] ?? ''}/`);
    const served = r.status === 200 && r.body.includes('"service":"smoke"');
    return {
      ok: served,
      detail: served ? `${SMOKE_HOST} -> ${smoke[0]} served` : `GET http://${SMOKE_HOST}/: ${r.status}`,
    };
  },
  startTimeoutMs: 120_000,
  // The first hook `down` runs, while the kubelet still runs: drain the node so every pod is
  // torn down the proper way (CRI StopPodSandbox: CNI DEL, netns and IPAM released) before
  // the kill-based fallback of the later hooks.
  afterStop: (ctx) => drainNode(ctx),
};

/** Cordons the node, deletes all pods, and waits (bounded) until no pod sandbox runs. */
async function drainNode(ctx: ClusterContext): Promise<void> {
  const sock = join(ctx.stateDir, 'containerd', 'containerd.sock');
  if (!existsSync(sock) || !existsSync(ctx.bin('kubectl'))) return;
  const k = (args: string[]): void => {
    const r = spawnSync(
      ctx.bin('kubectl'),
      ['--kubeconfig', ctx.adminKubeconfig, '--request-timeout=5s', ...args],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    if (r.status !== 0) ctx.log.debug('drain step failed', { args, err: (r.stderr ?? '').trim() });
  };
  k(['cordon', NODE_NAME]);
  k(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=1', '--wait=false']);
  const t0 = Date.now();
  const deadline = t0 + 20_000;
  while (Date.now() < deadline) {
    const tasks = run('ctr', ['--address', sock, '--namespace', 'k8s.io', 'tasks', 'ls'], {
      timeoutMs: 5000,
    });
    const running = tasks.stdout.split('\n').filter((l) => /\bRUNNING\b/.test(l)).length;
    const netns = existsSync('/run/netns')
      ? readdirSync('/run/netns').filter((f) => f.startsWith('cni-')).length
      : 0;
    if (tasks.status !== 0 || (running === 0 && netns === 0)) {
      ctx.log.info(`node drained in ${Date.now() - t0} ms`);
      return;
    }
    await sleep(250);
  }
  ctx.log.warn('pods still running 20 s after the drain; the node teardown kills them');
}

function corednsBinaryPath(ctx: ClusterContext): string {
  const recorded = join(ctx.dir('coredns'), 'binary');
  if (!existsSync(recorded))
    throw new WeftError('WEFT_BINARY_MISSING', 'CoreDNS binary path not recorded; prepare did not run');
  return readFileSync(recorded, 'utf8').trim();
}

/** The node's components, in start order (after the control plane). */
export const nodeComponents: Component[] = [
  kubeScheduler,
  containerd,
  apiserverForward,
  kubelet,
  kubeProxy,
  coredns,
];
