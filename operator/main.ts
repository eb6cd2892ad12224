/**
 * weft-operator: reconciles the cluster-scoped Mesh into a running mesh.
 *
 *   npm run operator -- [--kubeconfig FILE] [--leader-elect=false] [--health-probe-bind-address :8081]
 *                       [--metrics-bind-address :8080] [--webhook-image IMG] [--resync-period 10h]
 *                       [--webhook-url https://127.0.0.1:9443]   (a webhook run outside the cluster)
 *                       [--webhook-ca-file FILE]   (its CA, when it does not serve the operator's certificate)
 *   npm run operator -- certs [--kubeconfig FILE]   (the certificates alone, once: operator/certs-once.ts)
 *
 * Every replica watches (warm caches, probes, metrics); only the Lease holder reconciles.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { errorMessage, WeftError } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import { loadAccess } from '../pkg/kube/kubeconfig.js';
import { LeaderElector } from '../pkg/kube/leader.js';
import { createLogger } from '../pkg/log/index.js';
import { parseDuration } from '../pkg/render/index.js';
import { issueCertificatesOnce } from './certs-once.js';
import { MeshController } from './controller.js';
import { OperatorMetrics } from './metrics.js';
import { parseBindAddress, startServers } from './server.js';

export interface OperatorFlags {
  kubeconfig?: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  probeAddr: { host: string; port: number };
  metricsAddr: { host: string; port: number };
  webhookImage?: string;
  webhookUrl?: string;
  webhookCaFile?: string;
  resyncMs: number;
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  eventsNamespace: string;
}

const USAGE = 'see operator/main.ts for the flags';

function durationFlag(name: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === null || ms <= 0)
    throw new WeftError('WEFT_OPERATOR_CONFIG', `${name}: "${v}" is not a positive duration like 10s`);
  return ms;
}

function urlFlag(name: string, v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new WeftError('WEFT_OPERATOR_CONFIG', `${name}: "${v}" is not a URL like https://127.0.0.1:9443`);
  }
  if (u.protocol !== 'https:')
    throw new WeftError('WEFT_OPERATOR_CONFIG', `${name}: the API server only calls webhooks over https`);
  return v.replace(/\/$/, '');
}

function bindFlag(name: string, v: string): { host: string; port: number } {
  const a = parseBindAddress(v);
  if (!a)
    throw new WeftError(
      'WEFT_OPERATOR_CONFIG',
      `${name}: "${v}" is not an address like :8081 or 127.0.0.1:8081`,
    );
  return a;
}

/** Parses argv (and env defaults); bad flags are a coded error naming the flag. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorFlags {
  const f: OperatorFlags = {
    leaderElect: true,
    leaseNamespace: env.POD_NAMESPACE ?? 'weft-system',
    leaseName: 'weft-operator',
    identity: `${hostname()}_${process.pid}`,
    probeAddr: { host: '0.0.0.0', port: 8081 },
    metricsAddr: { host: '0.0.0.0', port: 8080 },
    resyncMs: 10 * 3600_000,
    leaseDurationSeconds: 15,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    eventsNamespace: 'default',
  };
  if (env.KUBECONFIG) f.kubeconfig = env.KUBECONFIG;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const take = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new WeftError('WEFT_OPERATOR_CONFIG', `${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--kubeconfig':
        f.kubeconfig = take();
        break;
      case '--leader-elect':
        f.leaderElect = eq > 0 ? arg.slice(eq + 1) !== 'false' : true;
        break;
      case '--leader-election-namespace':
        f.leaseNamespace = take();
        break;
      case '--leader-election-id':
        f.leaseName = take();
        break;
      case '--identity':
        f.identity = take();
        break;
      case '--health-probe-bind-address':
        f.probeAddr = bindFlag(flag, take());
        break;
      case '--metrics-bind-address':
        f.metricsAddr = bindFlag(flag, take());
        break;
      case '--webhook-image':
        f.webhookImage = take();
        break;
      case '--webhook-url':
        f.webhookUrl = urlFlag(flag, take());
        break;
      case '--webhook-ca-file':
        f.webhookCaFile = take();
        break;
      case '--resync-period':
        f.resyncMs = durationFlag(flag, take());
        break;
      case '--lease-duration':
        f.leaseDurationSeconds = Math.ceil(durationFlag(flag, take()) / 1000);
        break;
      case '--renew-deadline':
        f.renewDeadlineMs = durationFlag(flag, take());
        break;
      case '--retry-period':
        f.retryPeriodMs = durationFlag(flag, take());
        break;
      case '--events-namespace':
        f.eventsNamespace = take();
        break;
      default:
        throw new WeftError('WEFT_OPERATOR_CONFIG', `unknown flag ${arg} (${USAGE})`);
    }
  }
  return f;
}

function kubeClient(flags: OperatorFlags): KubeClient {
  try {
    // parseFlags copies $KUBECONFIG into flags.kubeconfig; the loader reads it as kubectl does
    // (a list, merged), so only a --kubeconfig that differs is passed as one file
    const explicit = flags.kubeconfig !== process.env.KUBECONFIG ? flags.kubeconfig : undefined;
    return new KubeClient(loadAccess(explicit ? { kubeconfig: explicit } : {}));
  } catch (err) {
    throw new WeftError(
      'WEFT_OPERATOR_CONFIG',
      `cannot load kubeconfig${flags.kubeconfig ? ` ${flags.kubeconfig}` : ''}: ${errorMessage(err)}`,
    );
  }
}

/** Reads the CA file on every reconcile (it may rotate); an unreadable file is logged, not fatal. */
function caFileReader(path: string, log: ReturnType<typeof createLogger>): () => string | undefined {
  return () => {
    try {
      return Buffer.from(readFileSync(path, 'utf8'), 'utf8').toString('base64');
    } catch (err) {
      log.warn('Cannot read --webhook-ca-file; using the operator CA', { path, error: errorMessage(err) });
      return undefined;
    }
  };
}

export async function runOperator(flags: OperatorFlags): Promise<() => Promise<void>> {
  const log = createLogger('operator');
  const client = kubeClient(flags);
  const metrics = new OperatorMetrics('mesh', 'mesh');
  const controller = new MeshController({
    client,
    log,
    metrics,
    resyncMs: flags.resyncMs,
    eventsNamespace: flags.eventsNamespace,
    ...(flags.webhookImage ? { webhookImage: flags.webhookImage } : {}),
    ...(flags.webhookUrl ? { webhookUrl: flags.webhookUrl } : {}),
    ...(flags.webhookCaFile ? { webhookCaBundle: caFileReader(flags.webhookCaFile, log) } : {}),
  });
  controller.startInformers();
  const servers = await startServers(
    flags.probeAddr,
    flags.metricsAddr,
    { ready: () => controller.synced, healthy: () => true },
    metrics.registry,
  );
  log.info('Operator started', {
    identity: flags.identity,
    probes: flags.probeAddr.port,
    metrics: flags.metricsAddr.port,
    leaderElect: flags.leaderElect,
  });
  let elector: LeaderElector | undefined;
  if (flags.leaderElect) {
    elector = new LeaderElector(
      client,
      {
        namespace: flags.leaseNamespace,
        name: flags.leaseName,
        identity: flags.identity,
        leaseDurationSeconds: flags.leaseDurationSeconds,
        renewDeadlineMs: flags.renewDeadlineMs,
        retryPeriodMs: flags.retryPeriodMs,
        onStartedLeading: () => {
          metrics.leader.set({ name: flags.leaseName }, 1);
          void controller.startWorker();
        },
        // Losing the Lease means another replica may be writing: stop writing at once. Unlike
        // client-go we do not exit: when the API server itself was away (the usual cause on a
        // small cluster), nobody else could lead either, and we resume with warm caches.
        onStoppedLeading: () => {
          metrics.leader.set({ name: flags.leaseName }, 0);
          if (stopping) return;
          log.warn('Leadership lost; reconciling paused until the Lease is won again');
          controller.pauseWorker();
        },
      },
      log,
    );
    elector.start();
  } else {
    void controller.startWorker();
  }
  let stopping = false;
  async function shutdown(): Promise<void> {
    if (stopping) return;
    stopping = true;
    await elector?.stop();
    await controller.stop();
    for (const s of servers) s.close();
  }
  return shutdown;
}

/** `weft operator certs [--kubeconfig FILE]`: issue the standalone overlays' certificates once. */
async function certsMain(argv: string[]): Promise<void> {
  const log = createLogger('operator-certs');
  try {
    const flags = parseFlags(argv);
    const done = await issueCertificatesOnce(kubeClient(flags), log);
    log.info('Certificates in place', { issued: done.issued.length, patched: done.patched });
  } catch (err) {
    log.error('Cannot issue the certificates', { error: errorMessage(err) });
    process.exit(1);
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'certs') return certsMain(process.argv.slice(3));
  let flags: OperatorFlags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    process.exit(2);
  }
  try {
    const shutdown = await runOperator(flags);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => {
        void shutdown().then(() => process.exit(process.exitCode ?? 0));
      });
    }
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
