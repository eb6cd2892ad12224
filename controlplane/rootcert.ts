/**
 * Publishes the mesh root certificate as ConfigMap `weft-ca-root-cert` (key `root-cert.pem`) in
 * every namespace that is not terminating, the way istiod keeps `istio-ca-root-cert`: proxies
 * mount it to verify weftd's serving certificate and their peers.
 *
 * Two informers drive it: namespaces (a new namespace gets the ConfigMap at once) and the
 * ConfigMaps of that name in all namespaces (field-selected, so a deletion or an edit of ours is
 * seen and undone). A root rotation re-publishes everywhere. Writes are server-side apply under
 * field manager `weftd`, forced: the two fields we own (the key and our labels) are ours, and
 * other fields or keys someone adds are left alone.
 *
 * The ConfigMaps deliberately do not carry the operator's inventory label or managed-by value:
 * the operator prunes every object carrying those that `render()` does not list.
 *
 * Work goes through a small de-duplicating queue per namespace; a failed namespace retries with
 * capped exponential backoff (pkg/kube/backoff) without holding up the others.
 */
import { errorMessage } from '../pkg/errors/index.js';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY } from '../pkg/discovery/protocol.js';
import { backoffDelay, type BackoffPolicy } from '../pkg/kube/backoff.js';
import { isApiError, type KubeClient } from '../pkg/kube/client.js';
import { Informer } from '../pkg/kube/informer.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import type { CertificateAuthority } from './ca.js';

export const ROOT_CERT_FIELD_MANAGER = 'weftd';

/** Labels on every published ConfigMap (app.kubernetes.io/*, but managed by weftd, not the operator). */
export const ROOT_CERT_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'app.kubernetes.io/name': ROOT_CERT_CONFIGMAP,
  'app.kubernetes.io/component': 'control-plane',
  'app.kubernetes.io/part-of': 'weft',
  'app.kubernetes.io/managed-by': 'weftd',
});

export interface RootCertPublisherOptions {
  kube: KubeClient;
  ca: Pick<CertificateAuthority, 'rootCertPem' | 'onRootChange'>;
  log: Logger;
  /** How many namespaces are written at once (default 4). */
  concurrency?: number;
  backoff?: BackoffPolicy;
}

export interface RootCertPublisher {
  /** Resolves once both informers have listed (tests and readiness). */
  readonly synced: Promise<void>;
  stop(): void;
}

export function rootCertConfigMap(namespace: string, rootPem: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: ROOT_CERT_CONFIGMAP, namespace, labels: { ...ROOT_CERT_LABELS } },
    data: { [ROOT_CERT_KEY]: rootPem },
  };
}

/** Whether the live ConfigMap already says what we would apply (then applying is a wasted request). */
export function isUpToDate(live: KubeObject | undefined, rootPem: string): boolean {
  if (!live) return false;
  const data = (live as { data?: Record<string, string> }).data;
  if (data?.[ROOT_CERT_KEY] !== rootPem) return false;
  const labels = live.metadata.labels ?? {};
  return Object.entries(ROOT_CERT_LABELS).every(([k, v]) => labels[k] === v);
}

export function isTerminating(ns: KubeObject | undefined): boolean {
  if (!ns) return true;
  const phase = (ns as { status?: { phase?: string } }).status?.phase;
  return ns.metadata.deletionTimestamp !== undefined || phase === 'Terminating';
}

/** "unable to create new content in namespace X because it is being terminated" is not worth retrying. */
function isTerminatingRefusal(err: unknown): boolean {
  return (isApiError(err, 403) || isApiError(err, 404)) && /being terminated|not found/i.test(err.message);
}

export function startRootCertPublisher(opts: RootCertPublisherOptions): RootCertPublisher {
  const log = opts.log.child({ publisher: ROOT_CERT_CONFIGMAP });
  const policy = opts.backoff ?? { baseMs: 200, maxMs: 60_000, jitter: 0.5 };
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const namespaces = new Informer<KubeObject>(opts.kube, { apiVersion: 'v1', kind: 'Namespace' }, log);
  const configMaps = new Informer<KubeObject>(
    opts.kube,
    { apiVersion: 'v1', kind: 'ConfigMap', fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` },
    log,
  );
  const pending = new Set<string>();
  const inFlight = new Set<string>();
  const failures = new Map<string, number>();
  const retryTimers = new Map<string, NodeJS.Timeout>();
  let stopped = false;
  /** Work waits until both caches are full, so a restart does not rewrite up-to-date ConfigMaps. */
  let cachesSynced = false;

  function enqueue(ns: string): void {
    if (stopped || retryTimers.has(ns)) return; // a scheduled retry will pick it up
    pending.add(ns);
    pump();
  }

  function enqueueAll(): void {
    for (const ns of namespaces.list()) enqueue(ns.metadata.name);
  }

  function pump(): void {
    while (!stopped && cachesSynced && inFlight.size < concurrency) {
      const ns = [...pending].find((n) => !inFlight.has(n));
      if (ns === undefined) return;
      pending.delete(ns);
      inFlight.add(ns);
      void publish(ns).finally(() => {
        inFlight.delete(ns);
        pump();
      });
    }
  }

  async function publish(ns: string): Promise<void> {
    const root = opts.ca.rootCertPem();
    if (root === null || isTerminating(namespaces.get(ns))) return;
    if (isUpToDate(configMaps.get(ROOT_CERT_CONFIGMAP, ns), root)) {
      failures.delete(ns);
      return;
    }
    try {
      await opts.kube.apply(rootCertConfigMap(ns, root), ROOT_CERT_FIELD_MANAGER, true);
      failures.delete(ns);
      log.debug('Published root certificate', { namespace: ns });
    } catch (err) {
      if (stopped || isTerminatingRefusal(err)) return;
      const n = (failures.get(ns) ?? 0) + 1;
      failures.set(ns, n);
      const delay = backoffDelay(n, policy);
      log.warn('Publishing the root certificate failed; retrying', {
        namespace: ns,
        error: errorMessage(err),
        retryInMs: delay,
      });
      retryTimers.set(
        ns,
        setTimeout(() => {
          retryTimers.delete(ns);
          enqueue(ns);
        }, delay),
      );
    }
  }

  namespaces.on((type, ns) => {
    if (type !== 'delete' && !isTerminating(ns)) enqueue(ns.metadata.name);
  });
  configMaps.on((type, cm) => {
    const ns = cm.metadata.namespace;
    if (ns === undefined) return;
    const root = opts.ca.rootCertPem();
    if (type === 'delete' || (root !== null && !isUpToDate(cm, root))) enqueue(ns);
  });
  const unsubscribe = opts.ca.onRootChange(() => enqueueAll());
  namespaces.start();
  configMaps.start();
  const synced = Promise.all([namespaces.hasSynced, configMaps.hasSynced]).then(() => {
    cachesSynced = true;
    enqueueAll();
  });

  return {
    synced,
    stop(): void {
      stopped = true;
      unsubscribe();
      namespaces.stop();
      configMaps.stop();
      for (const t of retryTimers.values()) clearTimeout(t);
      retryTimers.clear();
      pending.clear();
    },
  };
}
