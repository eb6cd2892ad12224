/**
 * The Mesh status state machine, pure and table-tested. kstatus semantics:
 *  - Ready (normal polarity) is always present after the first reconcile;
 *  - Reconciling and Stalled are abnormal-true, never both True;
 *  - Stalled=True only for errors retrying cannot fix (invalid spec, another Mesh active, a
 *    broken CA Secret, an apply the API server refuses as invalid);
 *  - every condition carries the generation it describes, and lastTransitionTime moves only
 *    when its status flips (so no-op reconciles leave status byte-identical → no writes).
 */
import type { MeshComponentStatus, MeshCondition } from '../pkg/api/mesh.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ComponentReadiness {
  controlPlane: MeshComponentStatus[];
  gateways: MeshComponentStatus[];
  webhook: MeshComponentStatus[];
  /** `reason` when not ready: why (CASecretNotFound, CertificateExpired, RenewalFailed...). */
  certificates: { ready: boolean; message: string; reason?: string };
}

/**
 * What one reconcile found; the conditions follow from it alone. A stalled or failed reconcile
 * that knows the certificates' state (`certificates`) sets CertificatesReady too; otherwise the
 * component conditions stay as they were.
 */
export type Outcome =
  | { kind: 'stalled'; reason: string; message: string; certificates?: ComponentReadiness['certificates'] }
  | { kind: 'error'; reason: string; message: string; certificates?: ComponentReadiness['certificates'] }
  | { kind: 'applied'; readiness: ComponentReadiness };

interface Desired {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

function summary(items: MeshComponentStatus[]): { ready: boolean; message: string } {
  const notReady = items.filter((c) => !c.ready);
  if (items.length === 0) return { ready: true, message: 'none configured' };
  if (notReady.length === 0) return { ready: true, message: items.map(describe).join(', ') };
  return { ready: false, message: notReady.map(describe).join(', ') };
}

function describe(c: MeshComponentStatus): string {
  const counts = c.replicas !== undefined ? ` ${c.readyReplicas ?? 0}/${c.replicas} ready` : '';
  return `${c.name}${counts}${c.message ? ` (${c.message})` : ''}`;
}

function componentConditions(r: ComponentReadiness): Desired[] {
  const cp = summary(r.controlPlane);
  const gw = summary(r.gateways);
  const wh = summary(r.webhook);
  const cond = (
    type: string,
    ok: boolean,
    okReason: string,
    badReason: string,
    message: string,
  ): Desired => ({
    type,
    status: ok ? 'True' : 'False',
    reason: ok ? okReason : badReason,
    message,
  });
  return [
    cond('ControlPlaneReady', cp.ready, 'Available', 'ControlPlaneNotAvailable', cp.message),
    cond('GatewaysReady', gw.ready, 'Available', 'GatewaysNotAvailable', gw.message),
    cond('WebhooksReady', wh.ready, 'Available', 'WebhookNotReady', wh.message),
    certificatesCondition(r.certificates),
  ];
}

function certificatesCondition(c: ComponentReadiness['certificates']): Desired {
  return {
    type: 'CertificatesReady',
    status: c.ready ? 'True' : 'False',
    reason: c.ready ? 'Issued' : (c.reason ?? 'CertificatesNotReady'),
    message: c.message,
  };
}

/** The conditions an outcome calls for (types in a fixed order). */
export function desiredConditions(outcome: Outcome): Desired[] {
  if (outcome.kind === 'stalled') {
    return [
      { type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message },
      {
        type: 'Reconciling',
        status: 'False',
        reason: outcome.reason,
        message: 'reconciling stopped until the problem is fixed',
      },
      { type: 'Stalled', status: 'True', reason: outcome.reason, message: outcome.message },
      ...(outcome.certificates ? [certificatesCondition(outcome.certificates)] : []),
    ];
  }
  if (outcome.kind === 'error') {
    return [
      { type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message },
      { type: 'Reconciling', status: 'True', reason: 'RetryingAfterError', message: outcome.message },
      { type: 'Stalled', status: 'False', reason: 'NoError', message: '' },
      ...(outcome.certificates ? [certificatesCondition(outcome.certificates)] : []),
    ];
  }
  const parts = componentConditions(outcome.readiness);
  const failing = parts.filter((p) => p.status !== 'True');
  const ready = failing.length === 0;
  const message = ready
    ? 'all components available'
    : failing.map((p) => `${p.type}: ${p.message}`).join('; ');
  return [
    {
      type: 'Ready',
      status: ready ? 'True' : 'False',
      reason: ready ? 'Available' : failing[0]!.reason,
      message,
    },
    {
      type: 'Reconciling',
      status: ready ? 'False' : 'True',
      reason: ready ? 'ReconcileComplete' : 'WaitingForComponents',
      message: ready ? '' : message,
    },
    { type: 'Stalled', status: 'False', reason: 'NoError', message: '' },
    ...parts,
  ];
}

/**
 * Merges desired conditions into the current ones: keeps lastTransitionTime when the status
 * did not change, stamps `now` when it did, and sets observedGeneration on each. Conditions of
 * types not in `desired` are kept (a stalled outcome leaves the component conditions as they
 * were, with their older observedGeneration telling readers they are stale).
 */
export function mergeConditions(
  current: MeshCondition[] | undefined,
  desired: Desired[],
  generation: number,
  now: Date,
): MeshCondition[] {
  const byType = new Map((current ?? []).map((c) => [c.type, c]));
  const out: MeshCondition[] = desired.map((d) => {
    const prev = byType.get(d.type);
    byType.delete(d.type);
    const lastTransitionTime = prev && prev.status === d.status ? prev.lastTransitionTime : rfc3339(now);
    return {
      type: d.type,
      status: d.status,
      observedGeneration: generation,
      lastTransitionTime,
      reason: d.reason,
      message: d.message,
    };
  });
  return [...out, ...byType.values()];
}

/** metav1.Time: RFC 3339 with second precision (the API server truncates anyway). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The first status of a newly seen generation: Reconciling=True at once (kstatus: InProgress). */
export function startingConditions(
  current: MeshCondition[] | undefined,
  generation: number,
  now: Date,
): MeshCondition[] {
  const ready = current?.find((c) => c.type === 'Ready');
  return mergeConditions(
    current,
    [
      {
        type: 'Ready',
        status: ready?.status === 'True' ? 'False' : (ready?.status ?? 'False'),
        reason: 'Reconciling',
        message: `applying generation ${generation}`,
      },
      {
        type: 'Reconciling',
        status: 'True',
        reason: 'NewGeneration',
        message: `applying generation ${generation}`,
      },
      { type: 'Stalled', status: 'False', reason: 'NoError', message: '' },
    ],
    generation,
    now,
  );
}

export function findCondition(conds: MeshCondition[] | undefined, type: string): MeshCondition | undefined {
  return conds?.find((c) => c.type === type);
}
