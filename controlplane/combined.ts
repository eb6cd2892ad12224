/**
 * The combined control plane (ADR 0024): weftd and the admission webhook in one process, as
 * istiod runs its config server and webhooks. What the two halves share: the kube client and its
 * connections, the informers of the kinds both watch (Namespaces and the Istio kinds: one
 * LIST/WATCH and one cache each, pkg/kube/shared-informers.ts), the logger, and one metrics
 * registry with one set of process metrics (weftd's, served on both /metrics). What they do not:
 * their ports and serving certificates (weftd's is for proxies, the webhook's for the API server,
 * each Secret issued for its own Service name), so the webhook configurations, the Services and
 * the proxies see exactly what they see with two Deployments.
 *
 * One pod backs both Services, so readiness is the conjunction: weftd's /ready and the webhook's
 * /readyz both answer 503 until both halves are ready.
 *
 * Failure isolation: a half that stops serving (its server closes or errors while the process is
 * not shutting down) must not leave the other half answering as if the pod were healthy. The
 * process reports it (`onHalfDown`, default: log and exit 1) so the kubelet restarts the pod; an
 * uncaught exception in either half already ends the whole process (Node's default).
 */
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { SharedInformers } from '../pkg/kube/shared-informers.js';
import type { CertReloader } from '../pkg/tls/index.js';
import { createMetrics } from '../webhook/metrics.js';
import { startWebhook, type Webhook } from '../webhook/serve.js';
import { startWeftd, type StartOptions, type Weftd } from './weftd.js';

export interface CombinedOptions extends Omit<StartOptions, 'informers' | 'alsoReady'> {
  webhook: {
    host: string;
    port: number;
    tls: CertReloader;
    /** weft's namespace, never injected (weftd's rootNamespace). */
    meshNamespace: string;
    crossObject?: 'warn' | 'deny';
  };
  /** One half stopped serving while the process was not stopping. Default: the caller's to set (main exits 1). */
  onHalfDown: (half: 'weftd' | 'webhook', why: string) => void;
}

export interface Combined {
  weftd: Weftd;
  webhook: Webhook;
  informers: SharedInformers;
  stop(): Promise<void>;
}

/** Calls `down` once if `server` closes or errors before `stopping()` says we meant it. */
function watchServer(
  server: Server | HttpsServer,
  stopping: () => boolean,
  down: (why: string) => void,
): void {
  server.once('close', () => {
    if (!stopping()) down('its server closed');
  });
  server.on('error', (err: Error) => {
    if (!stopping()) down(`its server failed: ${err.message}`);
  });
}

export async function startCombined(opts: CombinedOptions): Promise<Combined> {
  const informers = new SharedInformers(opts.kube);
  let webhook: Webhook | undefined;
  const webhookReady = (): { ready: boolean; reason?: string } => {
    const r = webhook?.ownReadiness();
    if (r?.ready) return { ready: true };
    return {
      ready: false,
      reason: r
        ? 'admission webhook: namespaces not listed or certificate not loaded yet'
        : 'admission webhook not started',
    };
  };
  const weftd = await startWeftd({ ...opts, informers: informers.source, alsoReady: webhookReady });
  try {
    webhook = await startWebhook({
      log: opts.log.child({ part: 'webhook' }),
      tls: opts.webhook.tls,
      host: opts.webhook.host,
      port: opts.webhook.port,
      meshNamespace: opts.webhook.meshNamespace,
      kube: opts.kube,
      informers: informers.source,
      crossObject: opts.webhook.crossObject ?? 'deny',
      // the webhook admits RateLimit scope global only when this weftd runs the backend
      globalRateLimits: opts.flags.rateLimitRedis !== undefined,
      metrics: createMetrics(false, weftd.metrics.registry),
      alsoReady: () => {
        const r = weftd.readiness();
        return r.ready ? { ready: true } : { ready: false, reason: `weftd: ${r.reason ?? 'not ready'}` };
      },
    });
  } catch (err) {
    await weftd.stop();
    informers.stop();
    throw err;
  }
  let stopping = false;
  let reported = false;
  const down = (half: 'weftd' | 'webhook') => (why: string) => {
    if (reported) return;
    reported = true;
    opts.onHalfDown(half, why);
  };
  for (const s of weftd.servers) watchServer(s, () => stopping, down('weftd'));
  watchServer(webhook.server, () => stopping, down('webhook'));
  opts.log.info('Combined control plane serving', {
    discoveryPort: weftd.discoveryPort,
    webhookPort: webhook.port,
    informers: informers.size,
    sharedInformers: informers.shared,
  });
  const started = webhook;
  return {
    weftd,
    webhook: started,
    informers,
    async stop() {
      stopping = true;
      await Promise.all([started.stop(), weftd.stop()]);
      opts.webhook.tls.stop();
      informers.stop();
    },
  };
}
