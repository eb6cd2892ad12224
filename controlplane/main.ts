/**
 * weftd's entry point: `weftd --config=/etc/weft/config/mesh.yaml --tls-dir=/etc/weft/tls`
 * (the operator's Deployment), `node dist/controlplane/main.js ...`, or `npx tsx
 * controlplane/main.ts ...`. `--help` lists the flags (controlplane/flags.ts). Exits 1 with a
 * coded message on bad flags or unreadable files; SIGTERM ends the proxies' streams and exits 0.
 * With `--webhook-port` the admission webhook runs in this process too (controlplane/combined.ts,
 * ADR 0024); `weft webhook` still runs it alone.
 */
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import { loadAccess } from '../pkg/kube/kubeconfig.js';
import { createLogger, type Logger } from '../pkg/log/index.js';
import { CertReloader } from '../pkg/tls/index.js';
import { HELP, loadMeshSettings, parseFlags } from './flags.js';
import { startWeftd } from './weftd.js';

/** --kubeconfig, else $KUBECONFIG, else the service account in a pod, else ~/.kube/config. */
function kubeClient(kubeconfig: string | undefined): KubeClient {
  return new KubeClient(loadAccess(kubeconfig ? { kubeconfig } : {}));
}

/** DIR/tls.crt and DIR/tls.key, read now (a missing file stops start-up) and reloaded on change. */
function loadedCert(dir: string, log: Logger): CertReloader {
  const tls = new CertReloader(`${dir}/tls.crt`, `${dir}/tls.key`, log);
  tls.load();
  return tls;
}

export async function main(argv: string[]): Promise<void> {
  const flags = parseFlags(argv);
  if (flags.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const log = createLogger('weftd');
  const mesh = loadMeshSettings(flags.configFile);
  const tls = loadedCert(flags.tlsDir, log);
  const kube = kubeClient(flags.kubeconfig);
  log.info('Starting weftd', {
    apiServer: kube.server,
    trustDomain: mesh.trustDomain,
    caSecret: `${flags.caSecret.namespace}/${flags.caSecret.name}`,
    pushDebounceMs: flags.pushDebounceMs,
    webhookPort: flags.webhook?.port,
  });
  const startOptions = {
    flags,
    mesh,
    kube,
    tls,
    log,
    ...(flags.configFile !== undefined ? { configFile: flags.configFile } : {}),
    // the pod's name is its hostname: the Lease says which replica writes status
    ...(flags.statusLease ? { status: { lease: { ...flags.statusLease, identity: hostname() } } } : {}),
  };
  // Loaded only when asked for: weftd alone does not pay for the webhook's modules and schemas.
  const startCombined = flags.webhook ? (await import('./combined.js')).startCombined : undefined;
  const running =
    flags.webhook && startCombined
      ? await startCombined({
          ...startOptions,
          webhook: {
            host: flags.host,
            port: flags.webhook.port,
            tls: loadedCert(flags.webhook.tlsDir, log),
            meshNamespace: mesh.rootNamespace,
          },
          onHalfDown: (half, why) => {
            // never a pod that answers for one half only: the kubelet restarts it whole
            log.error('A half of the combined control plane stopped; exiting', { half, why });
            process.exit(1);
          },
        })
      : undefined;
  const weftd = running?.weftd ?? (await startWeftd(startOptions));
  // Machine-readable line for scripts and tests that start weftd with --port 0 (the webhook's
  // port third, in the combined control plane).
  process.stdout.write(
    `listening ${weftd.discoveryPort} ${weftd.monitoringPort}${running ? ` ${running.webhook.port}` : ''}\n`,
  );
  const shutdown = (signal: string): void => {
    log.info('Shutting down', { signal });
    setTimeout(() => process.exit(0), 5000).unref();
    void (running ?? weftd).stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/** Run when started as the main module (node, tsx, or the image entry point, which sets argv[1]). */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(resolve(entry));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`weftd: ${errorMessage(err)}\n`);
    process.exit(1);
  });
}
