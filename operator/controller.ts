/**
 * The Mesh controller: informers (Mesh + every owned kind), the work queue, one worker, and the
 * wiring between them. Informers run on every replica so a standby has warm caches; the worker
 * runs only while this replica leads (see main.ts), so exactly one replica writes.
 */
import type { Mesh } from '../pkg/api/mesh.js';
import type { KubeClient } from '../pkg/kube/client.js';
import { EventRecorder } from '../pkg/kube/events.js';
import { Informer } from '../pkg/kube/informer.js';
import type { KubeObject } from '../pkg/kube/types.js';
import { errorMessage } from '../pkg/errors/index.js';
import type { Logger } from '../pkg/log/index.js';
import { INVENTORY_LABEL, MANAGED_BY } from '../pkg/render/index.js';
import { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { MeshReconciler, MESH_API_VERSION } from './reconciler.js';

/** The kinds the operator creates, so it watches them (a change or deletion requeues the Mesh). */
export const OWNED_KINDS: [string, string][] = [
  ['v1', 'ServiceAccount'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
  ['policy/v1', 'PodDisruptionBudget'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration'],
  ['admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'],
];

export interface ControllerOptions {
  client: KubeClient;
  log: Logger;
  metrics: OperatorMetrics;
  webhookImage?: string;
  webhookUrl?: string;
  webhookCaBundle?: () => string | undefined;
  /** Periodic resync of every Mesh (controller-runtime's SyncPeriod; default 10 h). */
  resyncMs?: number;
  /** Namespace for Events about the cluster-scoped Mesh. */
  eventsNamespace?: string;
  /** Backoff of failed reconciles (client-go: 5 ms → 1000 s). */
  backoff?: { baseMs: number; maxMs: number; jitter: number };
}

export class MeshController {
  readonly meshes: Informer<Mesh & KubeObject>;
  readonly children = new Map<string, Informer>();
  readonly queue: WorkQueue;
  private readonly reconciler: MeshReconciler;
  private readonly resyncMs: number;
  private running = false;
  /** Whether this replica currently holds the Lease; the worker idles while it does not. */
  private leading = false;
  private resume: (() => void) | undefined;
  private workerDone: Promise<void> = Promise.resolve();
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.resyncMs = o.resyncMs ?? 10 * 3600_000;
    this.queue = new WorkQueue(o.backoff ?? { baseMs: 5, maxMs: 1_000_000, jitter: 0.2 }, o.metrics.queue);
    this.meshes = new Informer<Mesh & KubeObject>(
      o.client,
      { apiVersion: MESH_API_VERSION, kind: 'Mesh' },
      o.log,
    );
    this.meshes.on((type, mesh) => this.onMesh(type, mesh));
    for (const [apiVersion, kind] of OWNED_KINDS) {
      const inf = new Informer(
        o.client,
        { apiVersion, kind, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}` },
        o.log,
      );
      inf.on((_type, obj) => this.onChild(obj));
      this.children.set(kind, inf);
    }
    this.reconciler = new MeshReconciler({
      client: o.client,
      meshes: this.meshes,
      children: this.children,
      events: new EventRecorder(o.client, 'weft-operator', o.log, o.eventsNamespace ?? 'default'),
      log: o.log,
      resyncMs: this.resyncMs,
      ...(o.webhookImage ? { webhookImage: o.webhookImage } : {}),
      ...(o.webhookUrl ? { webhookUrl: o.webhookUrl } : {}),
      ...(o.webhookCaBundle ? { webhookCaBundle: o.webhookCaBundle } : {}),
    });
  }

  /** Starts the informers (every replica). */
  startInformers(): void {
    this.meshes.start();
    for (const inf of this.children.values()) inf.start();
  }

  /** All caches filled once: what /readyz waits for. */
  get synced(): boolean {
    return this.meshes.isSynced && [...this.children.values()].every((i) => i.isSynced);
  }

  async waitForSync(): Promise<void> {
    await Promise.all([this.meshes.hasSynced, ...[...this.children.values()].map((i) => i.hasSynced)]);
  }

  /** Starts (or resumes) reconciling: the leader only. */
  async startWorker(): Promise<void> {
    this.leading = true;
    this.resume?.();
    this.resume = undefined;
    if (this.running) {
      // Regained leadership: the world may have moved while we were not writing.
      for (const m of this.meshes.list()) this.queue.add(m.metadata.name);
      return;
    }
    this.running = true;
    await this.waitForSync();
    for (const m of this.meshes.list()) this.queue.add(m.metadata.name);
    this.resyncTimer = setInterval(
      () => {
        for (const m of this.meshes.list()) this.queue.add(m.metadata.name);
      },
      this.resyncMs * (0.9 + Math.random() * 0.2),
    );
    this.resyncTimer.unref();
    this.workerDone = this.work();
  }

  /**
   * Pauses reconciling after losing the Lease (e.g. the API server was unreachable past the
   * renew deadline). Informers keep running, so when this replica wins the Lease again it
   * resumes with warm caches instead of restarting the process.
   */
  pauseWorker(): void {
    this.leading = false;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.leading = false;
    this.resume?.();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.queue.shutDown();
    await this.workerDone;
    this.meshes.stop();
    for (const inf of this.children.values()) inf.stop();
  }

  private onMesh(type: string, mesh: Mesh & KubeObject): void {
    this.queue.add(mesh.metadata.name);
    // Creating or deleting a Mesh can change which one is active: revisit them all.
    if (type !== 'update') for (const m of this.meshes.list()) this.queue.add(m.metadata.name);
  }

  private onChild(obj: KubeObject): void {
    const owner = obj.metadata.labels?.[INVENTORY_LABEL];
    if (owner) this.queue.add(owner);
  }

  private async work(): Promise<void> {
    for (;;) {
      if (!this.leading) await new Promise<void>((r) => (this.resume = r));
      if (!this.running) return;
      const key = await this.queue.get();
      if (key === null) return;
      if (!this.leading) {
        // Lost the Lease while waiting: hand the key back for whoever leads next (maybe us).
        this.queue.done(key, performance.now());
        this.queue.add(key);
        continue;
      }
      const started = performance.now();
      this.o.metrics.workers(1);
      try {
        await this.processOne(key, started);
      } finally {
        this.o.metrics.workers(0);
        this.queue.done(key, started);
      }
    }
  }

  private async processOne(key: string, started: number): Promise<void> {
    const log = this.o.log.child({ mesh: key });
    try {
      const out = await this.reconciler.reconcile(key);
      this.queue.forget(key);
      const seconds = (performance.now() - started) / 1000;
      if (out.requeueAfterMs !== undefined) this.queue.addAfter(key, out.requeueAfterMs);
      this.o.metrics.reconciled(
        out.stalled ? 'error' : out.poll ? 'requeue_after' : 'success',
        seconds,
        out.stalled,
      );
      log.debug('Reconciled', { seconds, requeueAfterMs: out.requeueAfterMs });
    } catch (err) {
      const delay = this.queue.addRateLimited(key);
      this.o.metrics.reconciled('error', (performance.now() - started) / 1000);
      log.warn('Reconcile failed; retrying', {
        error: errorMessage(err),
        retryInMs: delay,
        attempt: this.queue.numRequeues(key),
      });
    }
  }
}
