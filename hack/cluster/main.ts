/**
 * `hack/local-cluster up|down|status`: the demo cluster (state in `.local/cluster`,
 * kubeconfig `.local/kubeconfig`, kubectl at `.local/bin/kubectl`).
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { WeftError, errorMessage } from '../../pkg/errors/index.js';
import { createLogger } from '../../pkg/log/index.js';
import { down, fmtMs, status, up, type ClusterOptions, type ComponentStatus } from './cluster.js';
import { demoKubeconfig, demoStateDir, localBinDir, repoRoot } from './paths.js';

const USAGE = `usage: hack/local-cluster up|down|status [--json]

  up      build or reuse the binaries, start etcd, kube-apiserver, kube-controller-manager
          (idempotent: what already runs healthy is left alone); writes .local/kubeconfig
  down    stop what up started (recorded PIDs only) and remove .local/cluster
  status  health, PID, ports and memory of each component; exit 0 healthy, 1 degraded, 3 down`;

const log = createLogger('local-cluster', process.env.WEFT_LOG_FORMAT === 'json' ? {} : { format: 'text' });

const options = (): ClusterOptions => ({
  stateDir: demoStateDir,
  profile: 'demo',
  log,
  kubeconfigOut: demoKubeconfig,
});

const rel = (p: string): string => relative(process.cwd(), p) || '.';

function linkKubectl(binDir: string): string {
  mkdirSync(localBinDir, { recursive: true });
  const link = join(localBinDir, 'kubectl');
  rmSync(link, { force: true });
  symlinkSync(join(binDir, 'kubectl'), link);
  return link;
}

async function cmdUp(): Promise<number> {
  const r = await up(options());
  const kubectl = linkKubectl(r.binDir);
  const steps = Object.entries(r.timings)
    .map(([k, v]) => `${k} ${fmtMs(v)}`)
    .join(', ');
  process.stdout.write(
    `${r.alreadyUp ? 'local cluster already up' : 'local cluster up'} in ${fmtMs(r.totalMs)} (${steps})\n` +
      `  API server:  ${r.apiserverUrl}\n` +
      `  kubeconfig:  ${rel(r.kubeconfigPath)}\n` +
      `  kubectl:     ${rel(kubectl)} (v1.36.3; /usr/bin/kubectl is older)\n\n` +
      `  export KUBECONFIG=${r.kubeconfigPath} PATH=${localBinDir}:$PATH\n  kubectl get ns\n`,
  );
  return 0;
}

async function cmdDown(): Promise<number> {
  const t0 = Date.now();
  const stopped = await down(options());
  rmSync(join(localBinDir, 'kubectl'), { force: true });
  const what = stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing was running';
  process.stdout.write(
    `local cluster down in ${fmtMs(Date.now() - t0)}: ${what}; removed ${rel(demoStateDir)}\n`,
  );
  return 0;
}

const mb = (b: number | undefined): string => (b === undefined ? '-' : `${Math.round(b / 1024 / 1024)} MB`);

function statusTable(rows: ComponentStatus[]): string {
  const lines = rows.map((r) => {
    const ports = Object.entries(r.ports)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const state = r.healthy ? 'healthy' : r.pid === undefined ? 'stopped' : 'UNHEALTHY';
    return `  ${r.name.padEnd(26)}${state.padEnd(11)}pid ${String(r.pid ?? '-').padEnd(8)}rss ${mb(r.rssBytes).padEnd(8)}peak ${mb(r.peakRssBytes).padEnd(8)}${ports}${r.healthy ? '' : `  (${r.detail})`}`;
  });
  return lines.join('\n');
}

async function cmdStatus(json: boolean): Promise<number> {
  const rows = await status(options());
  if (json)
    process.stdout.write(
      `${JSON.stringify({ running: rows !== undefined, components: rows ?? [] }, null, 2)}\n`,
    );
  if (rows === undefined) {
    if (!json) process.stdout.write('local cluster is not running (hack/local-cluster up starts it)\n');
    return 3;
  }
  const healthy = rows.every((r) => r.healthy);
  const anyUp = rows.some((r) => r.pid !== undefined);
  if (!json) {
    const head = healthy
      ? 'local cluster is up'
      : anyUp
        ? 'local cluster is DEGRADED'
        : 'local cluster is stopped';
    process.stdout.write(
      `${head} (state ${rel(demoStateDir)}, kubeconfig ${rel(demoKubeconfig)})\n${statusTable(rows)}\n`,
    );
  }
  return healthy ? 0 : anyUp ? 1 : 3;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const unknown = rest.filter((a) => a !== '--json');
  if (unknown.length > 0 || (rest.includes('--json') && cmd !== 'status')) {
    throw new WeftError('WEFT_CLUSTER_USAGE', `unexpected argument ${unknown[0] ?? '--json'}\n${USAGE}`);
  }
  switch (cmd) {
    case 'up':
      return cmdUp();
    case 'down':
      return cmdDown();
    case 'status':
      return cmdStatus(rest.includes('--json'));
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      throw new WeftError(
        'WEFT_CLUSTER_USAGE',
        `${cmd === undefined ? 'no command given' : `unknown command "${cmd}"`}\n${USAGE}`,
      );
  }
}

process.chdir(repoRoot);
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`local-cluster: ${errorMessage(err)}\n`);
    process.exit(err instanceof WeftError && err.code === 'WEFT_CLUSTER_USAGE' ? 2 : 1);
  },
);
