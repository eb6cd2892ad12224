/**
 * The admission webhook assembled: cluster caches (or a fixed offline index), the validation
 * worker pool, the Express app and its HTTPS server. `startWebhook` is what webhook/main.ts runs
 * as its own process, and what weftd runs in-process in the combined control plane
 * (controlplane/combined.ts, ADR 0024), there with weftd's kube client, informers, logger and
 * metrics registry instead of its own.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:https';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_INJECTION_SETTINGS, type InjectionSettings } from '../pkg/inject/index.js';
import type { KubeClient } from '../pkg/kube/client.js';
import type { InformerSource } from '../pkg/kube/shared-informers.js';
import type { Logger } from '../pkg/log/index.js';
import type { CertReloader } from '../pkg/tls/index.js';
import { ClusterState } from './cluster.js';
import { MeshIndex } from './mesh-index.js';
import { createMetrics, observeValidationWorkers, type WebhookMetrics } from './metrics.js';
import { createWebhookApp, listenHttps } from './server.js';
import { ValidationPool } from './validate-pool.js';
import { warmUpValidation } from './warmup.js';

export interface WebhookStartOptions {
  log: Logger;
  tls: CertReloader;
  host: string;
  port: number;
  meshNamespace: string;
  /** Absent: watch nothing (benchmarks, --no-cluster): validate objects alone. */
  kube?: KubeClient;
  /** Informers shared with weftd (combined control plane); default: the webhook's own. */
  informers?: InformerSource;
  /** With no cluster: cross-object checks against these mesh objects (YAML file). */
  preload?: string;
  crossObject: 'warn' | 'deny';
  proxyImage?: string;
  globalRateLimits: boolean;
  /** Default: the webhook's own registry with process metrics. */
  metrics?: WebhookMetrics;
  /** Also required for ready (combined: the pod backs weftd's Service as well). */
  alsoReady?: () => { ready: boolean; reason?: string };
}

export interface Webhook {
  port: number;
  server: Server;
  /** /readyz: its own readiness and `alsoReady`. */
  readiness(): { ready: boolean; [detail: string]: unknown };
  /** The webhook's alone (what weftd's /ready adds in the combined process). */
  ownReadiness(): { ready: boolean; [detail: string]: unknown };
  stop(): Promise<void>;
}

export function baseSettings(meshNamespace: string, proxyImage: string | undefined): InjectionSettings {
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

export async function startWebhook(opts: WebhookStartOptions): Promise<Webhook> {
  const { log, tls } = opts;
  const base = baseSettings(opts.meshNamespace, opts.proxyImage);
  const cluster = opts.kube ? new ClusterState(opts.kube, base, log, opts.informers) : undefined;
  cluster?.start();
  const index = cluster?.index ?? offlineIndex(opts.preload);
  const pool = new ValidationPool();
  const metrics = opts.metrics ?? createMetrics();
  observeValidationWorkers(metrics.registry, () => pool.workers);
  const ownReadiness = (): { ready: boolean; [detail: string]: unknown } => {
    const synced = cluster?.synced ?? { namespaces: true, mesh: true, index: false };
    // Injection needs namespace labels; validation works without the index (objects alone).
    return {
      ready: tls.pair !== undefined && synced.namespaces,
      certificateNotAfter: tls.notAfter,
      ...synced,
    };
  };
  const readiness = (): { ready: boolean; [detail: string]: unknown } => {
    const own = ownReadiness();
    const also = opts.alsoReady?.() ?? { ready: true };
    return { ...own, ready: own.ready && also.ready, ...(also.ready ? {} : { reason: also.reason }) };
  };
  const app = createWebhookApp({
    log,
    metrics,
    validate: {
      index,
      crossObject: opts.crossObject,
      pool,
      ...(opts.globalRateLimits ? { globalRateLimits: true } : {}),
    },
    inject: {
      namespace: async (name) => (cluster ? cluster.namespace(name) : undefined),
      settings: () => cluster?.settings() ?? base,
    },
    readiness,
  });
  log.info('Compiled validation schemas', { ms: warmUpValidation() });
  const stopCaches = async (): Promise<void> => {
    cluster?.stop();
    await pool.close();
  };
  try {
    // No worker waits here: the pool starts one for the first expensive object (ADR 0025).
    const { server, port } = await listenHttps(app, { host: opts.host, port: opts.port, tls });
    log.info('Serving admission webhooks', {
      address: `https://${opts.host}:${port}`,
      meshNamespace: base.meshNamespace,
      cluster: cluster !== undefined,
    });
    return {
      port,
      server,
      readiness,
      ownReadiness,
      async stop() {
        await stopCaches();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // in-flight admissions finish (each within its budget); idle keep-alives go now
          server.closeIdleConnections();
        });
      },
    };
  } catch (err) {
    await stopCaches();
    throw err;
  }
}
