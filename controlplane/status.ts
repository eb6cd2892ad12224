/**
 * What became of each mesh object, as status conditions (pure; the writer is statuswriter.ts).
 *
 *   Accepted      False (Invalid) when the object fails weft's validation (it got past the
 *                 webhook: created before it ran, or with the webhook off); True otherwise, with
 *                 the accepted-but-not-enforced warnings and cross-object findings in the message.
 *   ResolvedRefs  False (RefNotFound) when a host, subset or gateway it names does not exist.
 *   Ready         both of the above (what Flux and `kubectl wait --for=condition=Ready` read).
 *   Stalled       True when not Ready: kstatus reads it as Failed, Argo CD as Degraded.
 *
 * Every condition carries the object's generation; `status.observedGeneration` too, so kstatus
 * can tell a verdict about the current spec from a stale one. A condition keeps its
 * `lastTransitionTime` while its status stays the same (Kubernetes' convention).
 */
import type { Finding, ValidationResult } from '../pkg/validation/index.js';
import type { KubeObject } from '../pkg/kube/types.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

export interface ObjectStatus {
  observedGeneration: number;
  conditions: Condition[];
}

/** What is known about one object when its status is computed. */
export interface Verdict {
  validation: ValidationResult;
  /** Cross-object findings naming something that does not exist (REFERENCE_RULES). */
  unresolved: Finding[];
  /** Other cross-object findings (host conflicts, precedence): warnings in Accepted's message. */
  notes: Finding[];
  /** Kind-specific conditions (a RateLimit's `Enforced`); a False one also blocks Ready. */
  extra?: FreshCondition[];
}

/** Findings listed in one message; the rest are counted. Keeps a status small and readable. */
const LISTED = 5;
/** Bytes of one condition message at most (the API server's limit is 32 KiB). */
const MAX_MESSAGE = 1024;

function listFindings(findings: Finding[]): string {
  const shown = findings.slice(0, LISTED).map((f) => (f.path ? `${f.path}: ${f.message}` : f.message));
  const rest = findings.length - shown.length;
  const text = shown.join('; ') + (rest > 0 ? ` (and ${rest} more)` : '');
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

/** A condition as judged, before generation and transition time are stamped on it. */
export interface FreshCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}
type Fresh = FreshCondition;

function accepted(v: Verdict): Fresh {
  if (v.validation.errors.length > 0)
    return {
      type: 'Accepted',
      status: 'False',
      reason: 'Invalid',
      message: `weft does not apply this object: ${listFindings(v.validation.errors)}`,
    };
  const warnings = [...v.validation.warnings, ...v.notes];
  return {
    type: 'Accepted',
    status: 'True',
    reason: warnings.length > 0 ? 'AcceptedWithWarnings' : 'Accepted',
    message: warnings.length > 0 ? `accepted with warnings: ${listFindings(warnings)}` : 'accepted',
  };
}

function resolvedRefs(v: Verdict): Fresh {
  return v.unresolved.length > 0
    ? { type: 'ResolvedRefs', status: 'False', reason: 'RefNotFound', message: listFindings(v.unresolved) }
    : { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'every reference resolves' };
}

function readiness(judged: Fresh[]): Fresh[] {
  const blocking = judged.find((c) => c.status === 'False');
  if (!blocking)
    return [
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'accepted and every reference resolves' },
      { type: 'Stalled', status: 'False', reason: 'Ready', message: '' },
    ];
  const message = `${blocking.type}: ${blocking.message}`;
  return [
    { type: 'Ready', status: 'False', reason: blocking.reason, message },
    { type: 'Stalled', status: 'True', reason: blocking.reason, message },
  ];
}

function previousConditions(obj: KubeObject): Condition[] {
  const status = obj.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}

/** The status `obj` should have, given the verdict on it, at time `now`. */
export function objectStatus(obj: KubeObject, verdict: Verdict, now: Date): ObjectStatus {
  const generation = obj.metadata.generation ?? 0;
  const before = previousConditions(obj);
  const acc = accepted(verdict);
  const refs = resolvedRefs(verdict);
  const judged = [acc, refs, ...(verdict.extra ?? [])];
  const conditions = [...judged, ...readiness(judged)].map((c): Condition => {
    const old = before.find((b) => b?.type === c.type);
    const since =
      old && old.status === c.status && typeof old.lastTransitionTime === 'string'
        ? old.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...c, observedGeneration: generation, lastTransitionTime: since };
  });
  return { observedGeneration: generation, conditions };
}

/**
 * Does the live status already say what `desired` says? Only weft's own condition types are
 * compared, so a write happens only when weft's verdict changed (or someone edited it by hand).
 */
export function statusUpToDate(obj: KubeObject, desired: ObjectStatus): boolean {
  const live = obj.status as { observedGeneration?: unknown } | undefined;
  if (live?.observedGeneration !== desired.observedGeneration) return false;
  const before = previousConditions(obj);
  return desired.conditions.every((d) => {
    const l = before.find((b) => b?.type === d.type);
    return (
      l !== undefined &&
      l.status === d.status &&
      l.reason === d.reason &&
      l.message === d.message &&
      l.observedGeneration === d.observedGeneration &&
      l.lastTransitionTime === d.lastTransitionTime
    );
  });
}
