/**
 * A real Argo CD for the e2e suite (test/e2e/argocd.test.ts), out of cluster on loopback: the
 * application controller and repo server of argo-cd v3.6.2 built from the Go module
 * (hack/build-argocd.sh), Debian's redis-server as their cache, and the few objects Argo CD's
 * install manifests would create in namespace `argocd` (docs/argocd.md).
 *
 * Every process is ours: started here, killed here by PID. Every wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { kubeconfig, kubectl, repoRoot } from './kube.js';

export const ARGOCD_VERSION = 'v3.6.2';
const ARGOCD_MODULE = 'github.com/argoproj/argo-cd/v3';
/** argo-cd's go.mod needs go 1.27; the wrapper module (hack/argocd) builds with this toolchain. */
const GO_TOOLCHAIN = process.env.WEFT_ARGOCD_GOTOOLCHAIN ?? 'go1.27.3';
/** The label Argo CD looks its ConfigMaps and Secrets up by. */
export const PART_OF = { 'app.kubernetes.io/part-of': 'argocd' };

/**
 * The argocd binary (hack/build-argocd.sh: cached, else built — 8-15 min cold on two cores;
 * hack/test-e2e.sh builds it before mocha starts). The script takes its own lock.
 */
export function ensureArgoCd(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-argocd-build-'));
  // stdout to a file, not a pipe: the script's progress ticker must not hold our pipe open.
  const outFile = join(dir, 'stdout');
  const fd = openSync(outFile, 'w');
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, 'hack', 'build-argocd.sh')], {
      stdio: ['ignore', fd, 'pipe'],
    });
    child.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('error', reject);
    child.on('exit', (code) => {
      child.stderr?.destroy();
      const bin = readFileSync(outFile, 'utf8').trim().split('\n').pop() ?? '';
      if (code !== 0 || !existsSync(bin))
        reject(new Error(`hack/build-argocd.sh exited with ${code} (see its output above)`));
      else resolve(bin);
    });
  }).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
}

/** Where the Go module cache holds argo-cd's sources (CRDs, the GnuPG wrapper scripts). */
export function argoCdModuleDir(): string {
  const r = spawnSync('go', ['mod', 'download', '-json', `${ARGOCD_MODULE}@${ARGOCD_VERSION}`], {
    cwd: join(repoRoot, 'hack', 'argocd'),
    env: { ...process.env, GOTOOLCHAIN: GO_TOOLCHAIN },
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`go mod download ${ARGOCD_MODULE}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { Dir: string }).Dir;
}

/** A child process with its output in a log file (read back for diagnostics). */
export interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
}

export function startProc(
  name: string,
  cmd: string,
  args: string[],
  logDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Proc {
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env });
  child.on('error', () => undefined); // reported through exitCode/logs; never an unhandled event
  return { name, child, log };
}

/**
 * Waits until something accepts connections on 127.0.0.1:`port` (the repo-server's gRPC port:
 * the last of the daemons to bind). Resolves undefined then, or with the first of `procs` that
 * exited meanwhile (a daemon that could not bind exits at once); throws after `timeoutMs`.
 */
export async function untilListening(
  port: number,
  procs: Proc[],
  timeoutMs = 60_000,
): Promise<Proc | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead !== undefined) return dead;
    const open = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (open) return undefined;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** The last lines of a process's log. */
export function tail(p: Proc, lines = 15): string {
  try {
    return readFileSync(p.log, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProc(p: Proc, graceMs = 10_000): Promise<void> {
  const { child } = p;
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    process.kill(child.pid, 'SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }
}

/** Resident set size in MB (/proc), or undefined once the process is gone. */
export function rssMb(p: Proc): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** The repo server wants GnuPG paths and argo-cd's wrapper scripts even with GPG off. */
export function repoServerEnv(moduleDir: string, work: string): NodeJS.ProcessEnv {
  const gnupg = join(work, 'gnupg');
  const gpgData = join(work, 'gpg-data');
  const bin = join(work, 'bin');
  for (const d of [gnupg, gpgData, bin]) mkdirSync(d, { recursive: true });
  chmodSync(gnupg, 0o700);
  // Module-cache files are read-only and not executable: copy them and set the mode.
  for (const s of ['gpg-wrapper.sh', 'git-verify-wrapper.sh']) {
    copyFileSync(join(moduleDir, 'hack', s), join(bin, s));
    chmodSync(join(bin, s), 0o755);
  }
  return {
    ...process.env,
    ARGOCD_GPG_ENABLED: 'false',
    ARGOCD_GNUPGHOME: gnupg,
    ARGOCD_GPG_DATA_PATH: gpgData,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
  };
}

interface KubeconfigFile {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
}

/**
 * The cluster Secret that registers the local cluster with Argo CD. Out of cluster,
 * https://kubernetes.default.svc does not work (Argo CD wants in-cluster config for it), so the
 * kubeconfig's own URL and credentials are named; Applications use that URL as destination.
 */
export function clusterSecret(): { server: string; secret: object } {
  const kc = parse(readFileSync(kubeconfig, 'utf8')) as KubeconfigFile;
  const cluster = kc.clusters[0]?.cluster;
  const user = kc.users[0]?.user;
  if (cluster === undefined || user === undefined) throw new Error(`${kubeconfig}: no cluster or user`);
  const config = {
    tlsClientConfig: {
      caData: cluster['certificate-authority-data'],
      certData: user['client-certificate-data'],
      keyData: user['client-key-data'],
    },
  };
  return {
    server: cluster.server,
    secret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'cluster-local',
        namespace: 'argocd',
        labels: { ...PART_OF, 'argocd.argoproj.io/secret-type': 'cluster' },
      },
      stringData: { name: 'local', server: cluster.server, config: JSON.stringify(config) },
    },
  };
}

/** The objects Argo CD's install would create that the controller and repo server read. */
export function argoCdConfig(healthData: Record<string, string>): object[] {
  const cm = (name: string, data: Record<string, string> = {}): object => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'argocd', labels: PART_OF },
    data,
  });
  return [
    // weft's health Lua (config/argocd/argocd-cm.yaml) merged into argocd-cm, as docs/argocd.md says.
    cm('argocd-cm', healthData),
    cm('argocd-cmd-params-cm'),
    cm('argocd-rbac-cm'),
    cm('argocd-tls-certs-cm'),
    cm('argocd-ssh-known-hosts-cm'),
    cm('argocd-gpg-keys-cm'),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'argocd-secret', namespace: 'argocd', labels: PART_OF },
      stringData: { 'server.secretkey': 'weft-e2e-not-a-secret' },
    },
    // argocd-server creates the default project; without the server, we do.
    {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'AppProject',
      metadata: { name: 'default', namespace: 'argocd' },
      spec: {
        sourceRepos: ['*'],
        destinations: [{ server: '*', namespace: '*' }],
        clusterResourceWhitelist: [{ group: '*', kind: '*' }],
      },
    },
  ];
}

/** The `data` of config/argocd/argocd-cm.yaml: weft's health checks for Argo CD. */
export function weftHealthData(): Record<string, string> {
  const cm = parse(readFileSync(join(repoRoot, 'config', 'argocd', 'argocd-cm.yaml'), 'utf8')) as {
    data: Record<string, string>;
  };
  return cm.data;
}

/** A git repository in a temp dir that the repo server reads as file://. */
export class GitRepo {
  readonly dir: string;

  constructor(parent: string) {
    this.dir = join(parent, 'repo');
    mkdirSync(this.dir);
    this.git(['init', '-q', '-b', 'main']);
    this.git(['config', 'user.email', 'e2e@weft.invalid']);
    this.git(['config', 'user.name', 'weft e2e']);
  }

  get url(): string {
    return `file://${this.dir}`;
  }

  git(args: string[]): string {
    const r = spawnSync('git', args, { cwd: this.dir, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** Writes `files` (path → content) and commits them; returns the commit's SHA. */
  commit(message: string, files: Record<string, string>): string {
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.dir, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
    this.git(['add', '-A']);
    this.git(['commit', '-q', '-m', message]);
    return this.git(['rev-parse', 'HEAD']);
  }
}

/** Applies Argo CD's CRDs from the module (server-side: applicationset-crd.yaml is too big for client-side). */
export function applyCrds(moduleDir: string): void {
  for (const f of ['application-crd.yaml', 'applicationset-crd.yaml', 'appproject-crd.yaml'])
    kubectl(['apply', '--server-side', '-f', join(moduleDir, 'manifests', 'crds', f)], undefined, 120_000);
}

export const ARGOCD_CRDS = [
  'applications.argoproj.io',
  'applicationsets.argoproj.io',
  'appprojects.argoproj.io',
];
