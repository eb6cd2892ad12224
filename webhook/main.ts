/**
 * weft-webhook: the validating webhook for mesh config and the sidecar injector, one HTTPS
 * server. `npm run webhook -- --help` lists the flags.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_INJECTION_SETTINGS, type InjectionSettings } from '../pkg/inject/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import { loadAccess } from '../pkg/kube/kubeconfig.js';
import { createLogger } from '../pkg/log/index.js';
import { ClusterState } from './cluster.js';
import { MeshIndex } from './mesh-index.js';
import { createMetrics } from './metrics.js';
import { createWebhookApp, listenHttps } from './server.js';
import { CertReloader } from '../pkg/tls/index.js';
import { warmUpValidation } from './warmup.js';
import { ValidationPool } from './validate-pool.js';

const HELP = `weft-webhook: validating webhook for mesh config, and sidecar injector

  --port N                 HTTPS port (default 9443; 0 picks a free one)
  --host ADDR              listen address (default 0.0.0.0)
  --tls-cert-file FILE     serving certificate (default /etc/weft/webhook-tls/tls.crt); reloaded on change
  --tls-key-file FILE      its key (default /etc/weft/webhook-tls/tls.key)
  --tls-dir DIR            shorthand for DIR/tls.crt and DIR/tls.key (a mounted kubernetes.io/tls Secret)
  --kubeconfig FILE        cluster to watch (default: $KUBECONFIG, ~/.kube/config or in-cluster)
  --no-cluster             watch nothing: validate objects alone, namespaces carry no labels (benchmarks)
  --preload FILE           with --no-cluster: cross-object checks against the mesh objects in FILE (YAML)
  --mesh-namespace NS      the mesh's own namespace, never injected (default weft-system, env WEFT_MESH_NAMESPACE)
  --cross-object MODE      deny (default): cross-object errors deny; warn: they only warn (migrations)
  --proxy-image IMAGE      proxy image when no Mesh sets one
  --global-ratelimits      the mesh's weftd runs the global rate-limit backend (--ratelimit-redis):
                           admit RateLimit scope: global (default off: refused, nothing would enforce it)
Logs: JSON on stderr; WEFT_LOG_FORMAT=text, WEFT_LOG_LEVEL=debug|info|warn.`;

function options() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '9443' },
      host: { type: 'string', default: '0.0.0.0' },
      'tls-cert-file': { type: 'string', default: '/etc/weft/webhook-tls/tls.crt' },
      'tls-key-file': { type: 'string', default: '/etc/weft/webhook-tls/tls.key' },
      'tls-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'no-cluster': { type: 'boolean', default: false },
      preload: { type: 'string' },
      'mesh-namespace': { type: 'string', default: process.env.WEFT_MESH_NAMESPACE ?? 'weft-system' },
      'cross-object': { type: 'string', default: 'deny' },
      'proxy-image': { type: 'string' },
      'global-ratelimits': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port: ${values.port} is not a port number`);
  if (values['cross-object'] !== 'warn' && values['cross-object'] !== 'deny')
    throw new Error('--cross-object: must be warn or deny');
  const dir = values['tls-dir'];
  const certFile = dir ? `${dir.replace(/\/+$/, '')}/tls.crt` : values['tls-cert-file'];
  const keyFile = dir ? `${dir.replace(/\/+$/, '')}/tls.key` : values['tls-key-file'];
  return { ...values, port, certFile, keyFile, crossObject: values['cross-object'] as 'warn' | 'deny' };
}

function baseSettings(meshNamespace: string, proxyImage: string | undefined): InjectionSettings {
  const s: InjectionSettings = structuredClone(DEFAULT_INJECTION_SETTINGS) as InjectionSettings;
  s.meshNamespace = meshNamespace;
  s.discoveryAddress = `weftd.${meshNamespace}.svc:15012`;
  if (proxyImage) s.proxyImage = proxyImage;
  return s;
}

/** Without a cluster the index is never "synced", unless seeded from a file (a fixed mesh). */
function offlineIndex(preload: string | undefined): MeshIndex {
  if (!preload) return new MeshIndex(1);
  const index = new MeshIndex(0);
  for (const doc of parseAllDocuments(readFileSync(preload, 'utf8'))) {
    const obj: unknown = doc.toJS({ maxAliasCount: 100 });
    if (obj !== null && typeof obj === 'object') index.upsert(obj);
  }
  return index;
}

/** --kubeconfig, else $KUBECONFIG, else the service account in a pod, else ~/.kube/config. */
function clusterClient(kubeconfig: string | undefined): KubeClient {
  return new KubeClient(loadAccess(kubeconfig ? { kubeconfig } : {}));
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.help) {
    console.log(HELP);
    return;
  }
  const log = createLogger('webhook');
  const base = baseSettings(opts['mesh-namespace'], opts['proxy-image']);
  const tls = new CertReloader(opts.certFile, opts.keyFile, log);
  tls.load();
  const cluster = opts['no-cluster']
    ? undefined
    : new ClusterState(clusterClient(opts.kubeconfig), base, log);
  cluster?.start();
  const index = cluster?.index ?? offlineIndex(opts.preload);
  const pool = new ValidationPool();
  const app = createWebhookApp({
    log,
    metrics: createMetrics(),
    validate: {
      index,
      crossObject: opts.crossObject,
      pool,
      ...(opts['global-ratelimits'] ? { globalRateLimits: true } : {}),
    },
    inject: {
      namespace: async (name) => (cluster ? cluster.namespace(name) : undefined),
      settings: () => cluster?.settings() ?? base,
    },
    readiness: () => {
      const synced = cluster?.synced ?? { namespaces: true, mesh: true, index: false };
      // Injection needs namespace labels; validation works without the index (objects alone).
      return {
        ready: tls.pair !== undefined && synced.namespaces,
        certificateNotAfter: tls.notAfter,
        ...synced,
      };
    },
  });
  log.info('Compiled validation schemas', { ms: warmUpValidation() });
  await pool.ready;
  const { server, port } = await listenHttps(app, { host: opts.host, port: opts.port, tls });
  log.info('Serving admission webhooks', {
    address: `https://${opts.host}:${port}`,
    meshNamespace: base.meshNamespace,
    cluster: cluster !== undefined,
  });
  // Machine-readable line for scripts and tests that start us with --port 0.
  process.stdout.write(`listening ${port}\n`);
  const shutdown = (signal: string): void => {
    log.info('Shutting down', { signal });
    cluster?.stop();
    tls.stop();
    void pool.close();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`weft-webhook: ${errorMessage(err)}\n`);
  process.exit(1);
});
