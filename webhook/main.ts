/**
 * weft-webhook: the validating webhook for mesh config and the sidecar injector, one HTTPS
 * server. `npm run webhook -- --help` lists the flags.
 */
import { parseArgs } from 'node:util';
import { errorMessage } from '../pkg/errors/index.js';
import { KubeClient } from '../pkg/kube/client.js';
import { loadAccess } from '../pkg/kube/kubeconfig.js';
import { createLogger } from '../pkg/log/index.js';
import { CertReloader } from '../pkg/tls/index.js';
import { startWebhook } from './serve.js';

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
  const tls = new CertReloader(opts.certFile, opts.keyFile, log);
  tls.load();
  const webhook = await startWebhook({
    log,
    tls,
    host: opts.host,
    port: opts.port,
    meshNamespace: opts['mesh-namespace'],
    ...(opts['no-cluster'] ? {} : { kube: clusterClient(opts.kubeconfig) }),
    ...(opts.preload !== undefined ? { preload: opts.preload } : {}),
    crossObject: opts.crossObject,
    ...(opts['proxy-image'] !== undefined ? { proxyImage: opts['proxy-image'] } : {}),
    globalRateLimits: opts['global-ratelimits'],
  });
  const port = webhook.port;
  // Machine-readable line for scripts and tests that start us with --port 0.
  process.stdout.write(`listening ${port}\n`);
  const shutdown = (signal: string): void => {
    log.info('Shutting down', { signal });
    tls.stop();
    setTimeout(() => process.exit(0), 5000).unref();
    void webhook.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`weft-webhook: ${errorMessage(err)}\n`);
  process.exit(1);
});
