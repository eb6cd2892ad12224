/**
 * Reconciles one Mesh, level-based: whatever event woke us, compare the whole desired state
 * (render + certificates) with the world and converge. Every step is idempotent, so a crash or
 * an API error at any point is repaired by the next pass.
 *
 * Steps: finalizer → first status (Reconciling=True at once) → one-active-Mesh check →
 * semantic validation → certificates → server-side apply of every desired object → prune what
 * the inventory label says we applied before but no longer want → child readiness → status.
 */
import { createHash } from 'node:crypto';
import type { Mesh, MeshComponentStatus, MeshStatus } from '../pkg/api/mesh.js';
import { errorMessage } from '../pkg/errors/index.js';
import type { EventRecorder } from '../pkg/kube/events.js';
import { isApiError, type KubeClient } from '../pkg/kube/client.js';
import type { Informer } from '../pkg/kube/informer.js';
import { describeKey, idOf, keyOf, type KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import {
  effectiveSpec,
  FIELD_MANAGER,
  FINALIZER,
  ADMISSION_POD_LABEL,
  COMPONENT_LABEL,
  INVENTORY_LABEL,
  render,
  semanticFindings,
  type EffectiveSpec,
} from '../pkg/render/index.js';
import { MUTATING_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME, WEBHOOK_SERVICE } from '../pkg/render/cluster.js';
import { formatFinding } from '../pkg/validation/types.js';
import { certificatesReadiness, planCertificates, type CertPlan } from './certificates.js';
import {
  desiredConditions,
  findCondition,
  mergeConditions,
  startingConditions,
  type ComponentReadiness,
  type Outcome,
} from './conditions.js';
import { deploymentStatus, webhookConfigStatus } from './readiness.js';

/**
 * A Deployment whose pods answer admission: the webhook's own (component webhook, as every weft
 * version rendered it), or one whose pod template carries the admission label (Combined: weftd).
 */
function servesAdmission(obj: KubeObject): boolean {
  if (obj.kind !== 'Deployment') return false;
  if (obj.metadata.labels?.[COMPONENT_LABEL] === 'webhook') return true;
  const labels = (obj as { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } }).spec
    ?.template?.metadata?.labels;
  return labels?.[ADMISSION_POD_LABEL] === 'true';
}

export const MESH_API_VERSION = 'mesh.weft.dev/v1alpha1';
/** A Mesh being deleted gets this long to clean up before its finalizer is dropped anyway. */
export const FINALIZE_TIMEOUT_MS = 60_000;
const STALLED_RETRY_MS = 60_000;

export interface ReconcileOutcome {
  /** Visit again after this long even if nothing changes (renewal, cleanup polling). */
  requeueAfterMs?: number;
  /** A terminal error (Stalled): counted apart from transient ones. */
  stalled?: boolean;
  /** Waiting on something in progress (cleanup), not a scheduled resync. */
  poll?: boolean;
}

/** Thrown for transient failures: the queue retries with backoff. */
export class TransientError extends Error {}

export interface ReconcilerDeps {
  client: KubeClient;
  meshes: Informer<Mesh & KubeObject>;
  /** Informers of owned kinds, keyed by kind. */
  children: Map<string, Informer>;
  events: EventRecorder;
  log: Logger;
  webhookImage?: string;
  /** Base URL of a webhook running outside the cluster (see RenderOptions.webhookUrl). */
  webhookUrl?: string;
  /** The webhook's CA when it is not served with our certificate (a local webhook with its own). */
  webhookCaBundle?: () => string | undefined;
  now?: () => Date;
  resyncMs: number;
}

interface AppliedRecord {
  hash: string;
  resourceVersion: string;
}

/** JSON with sorted keys: the API server returns custom resources with keys sorted. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

const rvNum = (o: { metadata: { resourceVersion?: string } } | undefined): number =>
  Number(o?.metadata.resourceVersion ?? 0) || 0;

/** The active Mesh: the oldest (then by name). Deleting Meshes still count until they are gone. */
export function activeMeshName(
  meshes: { metadata: { name?: string; creationTimestamp?: string } }[],
): string | undefined {
  const sorted = [...meshes].sort(
    (a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
      (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  );
  return sorted[0]?.metadata.name;
}

export class MeshReconciler {
  /** What we applied last, per object, to skip no-op applies and to recognise drift. */
  private readonly applied = new Map<string, AppliedRecord>();
  /** The Mesh as our own last status write returned it (the cache may lag behind it). */
  private readonly written = new Map<string, Mesh & KubeObject>();
  private readonly now: () => Date;
  /** Per Mesh, the generation the current reconcile read. */
  private readonly generations = new Map<string, number>();

  constructor(private readonly d: ReconcilerDeps) {
    this.now = d.now ?? (() => new Date());
  }

  async reconcile(name: string): Promise<ReconcileOutcome> {
    const log = this.d.log.child({ mesh: name });
    const mesh = this.current(name);
    if (!mesh) {
      this.written.delete(name);
      this.generations.delete(name);
      return {};
    }
    if (mesh.metadata.deletionTimestamp) return this.finalize(mesh, log);
    await this.ensureFinalizer(mesh);
    const generation = mesh.metadata.generation ?? 1;
    this.generations.set(name, generation);
    if (mesh.status?.observedGeneration !== generation) {
      await this.writeStatus(
        mesh,
        {
          ...mesh.status,
          observedGeneration: generation,
          conditions: startingConditions(mesh.status?.conditions, generation, this.now()),
        },
        log,
      );
    }
    const active = activeMeshName(this.d.meshes.list());
    if (active !== undefined && active !== name) {
      return this.stall(
        name,
        'AnotherMeshActive',
        `Mesh ${active} is already active; a cluster runs one Mesh, so this one is not reconciled`,
        log,
      );
    }
    const findings = semanticFindings(mesh.spec);
    if (findings.length > 0) {
      const ref = { apiVersion: MESH_API_VERSION, kind: 'Mesh', name };
      return this.stall(name, 'InvalidSpec', findings.map((f) => formatFinding(ref, f)).join('; '), log);
    }
    return this.converge(mesh, effectiveSpec(mesh.spec), log);
  }

  /** The freshest view of the Mesh: the informer's, or our own last write if that is newer. */
  private current(name: string): (Mesh & KubeObject) | undefined {
    const cached = this.d.meshes.get(name);
    const mine = this.written.get(name);
    if (!cached) return undefined;
    return mine && mine.metadata.uid === cached.metadata.uid && rvNum(mine) > rvNum(cached) ? mine : cached;
  }

  private async converge(
    mesh: Mesh & KubeObject,
    spec: EffectiveSpec,
    log: Logger,
  ): Promise<ReconcileOutcome> {
    const name = mesh.metadata.name!;
    const read = (ns: string, n: string): Promise<KubeObject | null> =>
      this.d.client.get({ apiVersion: 'v1', kind: 'Secret', namespace: ns, name: n });
    const extraSans = this.d.webhookUrl ? [new URL(this.d.webhookUrl).hostname.replace(/^\[|\]$/g, '')] : [];
    const certs = await planCertificates(name, spec, read, this.now(), extraSans);
    if (!certs.ok)
      return this.stall(name, certs.reason, certs.message, log, STALLED_RETRY_MS / 4, {
        ready: false,
        reason: certs.reason,
        message: certs.message,
      });
    for (const i of certs.plan.issued) {
      log.info('Issued certificate', { secret: i.secret, reason: i.reason });
      void this.d.events.record(mesh, 'Normal', 'CertificateIssued', `Issued ${i.secret} (${i.reason})`);
    }
    const override = this.d.webhookCaBundle?.();
    if (override) certs.plan.caBundle = override;
    const desired = this.desiredObjects(mesh, certs.plan);
    // The Secrets go first: once they are in, the planned certificates are the ones in force.
    let certsInForce = certs.plan.found;
    try {
      const nSecrets = certs.plan.secrets.length;
      await this.applyAll(mesh, desired.slice(0, nSecrets), log);
      certsInForce = certs.plan.planned;
      const handover = this.admissionHandover(desired.slice(nSecrets), log);
      await this.applyAll(mesh, handover.apply, log);
      await this.prune(mesh, desired, log, handover.pending);
    } catch (err) {
      const certificates = (reason: string, message: string) =>
        certificatesReadiness(certsInForce, this.now(), { reason, message });
      if (isApiError(err) && !err.retryable) {
        const message = `the API server refused an object: ${err.message}`;
        return this.stall(
          name,
          'ApplyRejected',
          message,
          log,
          STALLED_RETRY_MS,
          certificates('ApplyRejected', message),
        );
      }
      await this.setOutcome(
        name,
        {
          kind: 'error',
          reason: 'ApplyFailed',
          message: errorMessage(err),
          certificates: certificates('ApplyFailed', errorMessage(err)),
        },
        log,
      ).catch(() => undefined);
      throw new TransientError(errorMessage(err), { cause: err });
    }
    const readiness = this.readiness(spec, certs.plan);
    await this.setOutcome(name, { kind: 'applied', readiness }, log, {
      components: [...readiness.controlPlane, ...readiness.webhook, ...readiness.gateways],
      certificates: certs.plan.status,
    });
    const untilRenewal = certs.plan.nextRenewal.getTime() - this.now().getTime();
    return { requeueAfterMs: Math.max(1000, Math.min(untilRenewal, this.d.resyncMs)) };
  }

  private desiredObjects(mesh: Mesh & KubeObject, certs: CertPlan): KubeObject[] {
    const opts = {
      caBundle: certs.caBundle,
      ...(this.d.webhookImage ? { webhookImage: this.d.webhookImage } : {}),
      ...(this.d.webhookUrl ? { webhookUrl: this.d.webhookUrl } : {}),
    };
    const owner = {
      apiVersion: MESH_API_VERSION,
      kind: 'Mesh',
      name: mesh.metadata.name!,
      uid: mesh.metadata.uid!,
      controller: true,
      blockOwnerDeletion: true,
    };
    const secrets = certs.secrets.map((s) => ({
      ...s,
      metadata: { ...s.metadata, ownerReferences: [owner] },
    }));
    return [...secrets, ...render(mesh, opts)];
  }

  /** Server-side apply of each object, skipping those unchanged since our last apply. */
  private async applyAll(mesh: Mesh & KubeObject, desired: KubeObject[], log: Logger): Promise<void> {
    for (const obj of desired) {
      const id = idOf(keyOf(obj));
      const hash = createHash('sha256').update(JSON.stringify(obj)).digest('hex');
      const live = this.d.children.get(obj.kind)?.get(obj.metadata.name, obj.metadata.namespace);
      const last = this.applied.get(id);
      if (live && last && last.hash === hash && rvNum(live) <= Number(last.resourceVersion)) continue;
      const result = await this.d.client.apply(obj, FIELD_MANAGER, true);
      const rv = result.metadata.resourceVersion ?? '';
      this.applied.set(id, { hash, resourceVersion: rv });
      this.reportApply(mesh, obj, { live, last, hash, rv }, log);
    }
  }

  /** Events for what an apply changed: a restored child, corrected drift, a first creation. */
  private reportApply(
    mesh: KubeObject,
    obj: KubeObject,
    a: { live: KubeObject | undefined; last: AppliedRecord | undefined; hash: string; rv: string },
    log: Logger,
  ): void {
    const what = describeKey(keyOf(obj));
    if (!a.live && a.last) {
      log.info('Restored deleted child', { object: what });
      void this.d.events.record(mesh, 'Normal', 'Restored', `${what} was deleted; recreated it`);
    } else if (a.live && a.last?.hash === a.hash && a.rv !== a.live.metadata.resourceVersion) {
      log.info('Corrected drift', { object: what });
      void this.d.events.record(
        mesh,
        'Normal',
        'DriftCorrected',
        `${what} was changed outside the operator; restored the desired fields`,
      );
    } else if (!a.live && !a.last) {
      log.debug('Applied child', { object: what });
    }
  }

  /** Deletes children this Mesh applied earlier (inventory label) that are no longer desired. */
  private async prune(
    mesh: Mesh & KubeObject,
    desired: KubeObject[],
    log: Logger,
    admissionPending = false,
  ): Promise<void> {
    const want = new Set(desired.map((o) => idOf(keyOf(o))));
    for (const obj of this.inventory(mesh.metadata.name!)) {
      const id = idOf(keyOf(obj));
      if (want.has(id)) continue;
      const what = describeKey(keyOf(obj));
      if (
        admissionPending &&
        (servesAdmission(obj) || obj.metadata.labels?.[COMPONENT_LABEL] === 'webhook')
      ) {
        log.info('Keeping the old admission webhook until its successor is available', { object: what });
        continue;
      }
      if (await this.d.client.delete(keyOf(obj))) {
        log.info('Pruned child', { object: what });
        void this.d.events.record(
          mesh,
          'Normal',
          'Pruned',
          `${what} is no longer in the Mesh spec; deleted it`,
        );
      }
      this.applied.delete(id);
    }
  }

  /**
   * A switch of control-plane mode (ADR 0024) without a moment in which admission has no pod to
   * call (both webhook configurations fail closed). Until the desired Deployment whose pods serve
   * admission (weftd's in Combined, the webhook's in Separate) is available and some other one
   * still serves it (the one being replaced): the webhook Service keeps its live selector, a
   * Deployment that serves admission now but will not is left as it is (Combined → Separate:
   * weftd keeps its webhook port), the webhook's ClusterRoleBinding names both ServiceAccounts,
   * and prune keeps the old webhook's Deployment, ServiceAccount and PDB. The next reconcile
   * after the rollout (a child's status change wakes it) finishes the switch.
   */
  private admissionHandover(desired: KubeObject[], log: Logger): { apply: KubeObject[]; pending: boolean } {
    const deployments = this.d.children.get('Deployment');
    const live = (o: KubeObject): KubeObject | undefined =>
      deployments?.get(o.metadata.name, o.metadata.namespace);
    // ready only once the cache shows the new template (our own apply may not be in it yet) rolled out
    const successor = desired.find((o) => {
      if (o.kind !== 'Deployment' || !servesAdmission(o)) return false;
      const l = live(o);
      return !(l && servesAdmission(l) && deploymentStatus(o.metadata.name, l).ready);
    });
    const current = (deployments?.list() ?? []).filter(
      (d) =>
        d.metadata.namespace === WEBHOOK_SERVICE.namespace &&
        servesAdmission(d) &&
        !d.metadata.deletionTimestamp,
    );
    if (successor === undefined || current.every((d) => d.metadata.name === successor.metadata.name))
      return { apply: desired, pending: false };
    log.info('Switching the admission webhook: waiting for its new pods before moving traffic', {
      successor: successor.metadata.name,
      serving: current.map((d) => d.metadata.name),
    });
    const liveService = this.d.children.get('Service')?.get(WEBHOOK_SERVICE.name, WEBHOOK_SERVICE.namespace);
    const liveBinding = this.d.children.get('ClusterRoleBinding')?.get(WEBHOOK_SERVICE.name);
    const apply = desired.flatMap((o): KubeObject[] => {
      if (o.kind === 'ClusterRoleBinding' && o.metadata.name === WEBHOOK_SERVICE.name && liveBinding) {
        // both ServiceAccounts keep the webhook's reads while both serve
        const subjects = (b: KubeObject): { name: string; namespace?: string }[] =>
          (b as unknown as { subjects?: { name: string; namespace?: string }[] }).subjects ?? [];
        const all = [...subjects(liveBinding), ...subjects(o)];
        const unique = all.filter(
          (x, i) => all.findIndex((y) => y.name === x.name && y.namespace === x.namespace) === i,
        );
        return [{ ...o, subjects: unique } as KubeObject];
      }
      if (o.kind === 'Service' && o.metadata.name === WEBHOOK_SERVICE.name && liveService) {
        const selector = (liveService as { spec?: { selector?: unknown } }).spec?.selector;
        return [{ ...o, spec: { ...(o as unknown as { spec: object }).spec, selector } } as KubeObject];
      }
      const l = o.kind === 'Deployment' ? live(o) : undefined;
      if (l && servesAdmission(l) && !servesAdmission(o)) return [];
      return [o];
    });
    return { apply, pending: true };
  }

  /** Every cached child carrying this Mesh's inventory label. */
  private inventory(meshName: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.d.children.values()) {
      for (const o of inf.list())
        if (o.metadata.labels?.[INVENTORY_LABEL] === meshName && !o.metadata.deletionTimestamp) out.push(o);
    }
    return out;
  }

  private readiness(spec: EffectiveSpec, certs: CertPlan): ComponentReadiness {
    const dep = (ns: string, n: string): KubeObject | undefined =>
      this.d.children.get('Deployment')?.get(n, ns);
    const cfg = (kind: string, n: string): KubeObject | undefined => this.d.children.get(kind)?.get(n);
    // Combined (ADR 0024): weftd's pods serve admission too
    const webhookDeployment = spec.controlPlane.mode === 'Combined' ? 'weftd' : WEBHOOK_SERVICE.name;
    const webhook: MeshComponentStatus[] = [
      deploymentStatus('webhook', dep(WEBHOOK_SERVICE.namespace, webhookDeployment)),
      webhookConfigStatus(
        'validating-webhook',
        cfg('ValidatingWebhookConfiguration', VALIDATING_WEBHOOK_NAME),
        certs.caBundle,
      ),
      webhookConfigStatus(
        'mutating-webhook',
        cfg('MutatingWebhookConfiguration', MUTATING_WEBHOOK_NAME),
        certs.caBundle,
      ),
    ];
    return {
      controlPlane: [deploymentStatus('weftd', dep(WEBHOOK_SERVICE.namespace, 'weftd'))],
      gateways: spec.gateways.map((g) => deploymentStatus(`gateway/${g.name}`, dep(g.namespace, g.name))),
      webhook,
      certificates: certificatesReadiness(certs.planned, this.now()),
    };
  }

  private async stall(
    name: string,
    reason: string,
    message: string,
    log: Logger,
    retryMs = STALLED_RETRY_MS,
    certificates?: ComponentReadiness['certificates'],
  ): Promise<ReconcileOutcome> {
    log.warn('Mesh stalled', { reason, message });
    await this.setOutcome(
      name,
      { kind: 'stalled', reason, message, ...(certificates ? { certificates } : {}) },
      log,
    );
    return { stalled: true, requeueAfterMs: retryMs };
  }

  /** Writes conditions (and extra status fields) for an outcome, with an Event on transitions. */
  private async setOutcome(
    name: string,
    outcome: Outcome,
    log: Logger,
    extra: Partial<MeshStatus> = {},
  ): Promise<void> {
    const mesh = this.current(name);
    if (!mesh) return;
    // The generation this reconcile worked from, not a newer one that arrived meanwhile: the
    // status write tests it, so conditions about generation N never land on generation N+1.
    const generation = this.generations.get(name) ?? mesh.metadata.generation ?? 1;
    const before = mesh.status?.conditions;
    const conditions = mergeConditions(before, desiredConditions(outcome), generation, this.now());
    await this.writeStatus(
      mesh,
      { ...mesh.status, ...extra, observedGeneration: generation, conditions },
      log,
      generation,
    );
    this.transitionEvents(mesh, before, conditions);
  }

  private transitionEvents(
    mesh: Mesh & KubeObject,
    before: MeshStatus['conditions'],
    after: MeshStatus['conditions'],
  ): void {
    for (const type of ['Ready', 'Stalled']) {
      const was = findCondition(before, type);
      const now = findCondition(after, type);
      if (!now || (was?.status === now.status && was.reason === now.reason)) continue;
      const warning =
        (type === 'Ready' && now.status === 'False' && was?.status === 'True') ||
        (type === 'Stalled' && now.status === 'True');
      if (type === 'Stalled' && now.status !== 'True' && was?.status !== 'True') continue;
      void this.d.events.record(
        mesh,
        warning ? 'Warning' : 'Normal',
        now.reason,
        `${type}=${now.status}: ${now.message}`.slice(0, 1000),
      );
    }
  }

  /**
   * Status through the status subresource, only when it differs from what is stored. A JSON
   * patch that first tests metadata.generation: if the spec changed since we read it, the write
   * fails (and the reconcile is retried) instead of storing conditions about an old generation
   * next to the new one — so Ready=True is never written for a stale generation.
   */
  private async writeStatus(
    mesh: Mesh & KubeObject,
    status: MeshStatus,
    log: Logger,
    generation = mesh.metadata.generation ?? 1,
  ): Promise<void> {
    if (stableStringify(status) === stableStringify(mesh.status ?? {})) return;
    const ops = [
      { op: 'test', path: '/metadata/generation', value: generation },
      { op: 'add', path: '/status', value: status },
    ];
    try {
      const result = await this.d.client.jsonPatch<Mesh & KubeObject>(
        { apiVersion: MESH_API_VERSION, kind: 'Mesh', name: mesh.metadata.name! },
        ops,
        'status',
        FIELD_MANAGER,
      );
      this.written.set(mesh.metadata.name!, result);
    } catch (err) {
      if (isApiError(err, 404)) return;
      log.warn('Status write failed', { error: errorMessage(err) });
      throw new TransientError(`status write failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async ensureFinalizer(mesh: Mesh & KubeObject): Promise<void> {
    const finalizers = mesh.metadata.finalizers ?? [];
    if (finalizers.includes(FINALIZER)) return;
    const ops = [
      { op: 'test', path: '/metadata/resourceVersion', value: mesh.metadata.resourceVersion },
      finalizers.length === 0
        ? { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }
        : { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER },
    ];
    const result = await this.d.client.jsonPatch<Mesh & KubeObject>(
      { apiVersion: MESH_API_VERSION, kind: 'Mesh', name: mesh.metadata.name! },
      ops,
    );
    this.written.set(mesh.metadata.name!, result);
  }

  /**
   * Deletion: delete every child (cluster-scoped ones have no namespace to vanish with), wait
   * until they are gone, then drop the finalizer. Bounded: after FINALIZE_TIMEOUT_MS the
   * finalizer goes regardless, with a Warning naming what was left, so deleting a Mesh (or an
   * Argo CD app) never hangs on us.
   */
  private async finalize(mesh: Mesh & KubeObject, log: Logger): Promise<ReconcileOutcome> {
    const name = mesh.metadata.name!;
    if (!(mesh.metadata.finalizers ?? []).includes(FINALIZER)) return {};
    const left = this.inventory(name);
    const errors: string[] = [];
    for (const obj of left) {
      await this.d.client
        .delete(keyOf(obj))
        .catch((err: unknown) => errors.push(`${describeKey(keyOf(obj))}: ${errorMessage(err)}`));
      this.applied.delete(idOf(keyOf(obj)));
    }
    const deadline = Date.parse(mesh.metadata.deletionTimestamp!) + FINALIZE_TIMEOUT_MS;
    if (left.length > 0 && this.now().getTime() < deadline) {
      log.info('Cleaning up children', { remaining: left.length });
      return { requeueAfterMs: 1000, poll: true };
    }
    if (left.length > 0) {
      const names = left.map((o) => describeKey(keyOf(o))).join(', ');
      log.warn('Cleanup timed out; removing the finalizer anyway', { remaining: names, errors });
      void this.d.events.record(mesh, 'Warning', 'CleanupTimedOut', `gave up waiting for: ${names}`);
    }
    await this.removeFinalizer(mesh);
    log.info('Mesh deleted; children removed');
    return {};
  }

  private async removeFinalizer(mesh: Mesh & KubeObject): Promise<void> {
    const finalizers = mesh.metadata.finalizers ?? [];
    const idx = finalizers.indexOf(FINALIZER);
    if (idx < 0) return;
    const key = { apiVersion: MESH_API_VERSION, kind: 'Mesh', name: mesh.metadata.name! };
    try {
      await this.d.client.jsonPatch(key, [
        { op: 'test', path: `/metadata/finalizers/${idx}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
  }
}
