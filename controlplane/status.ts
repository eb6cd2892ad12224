/**
 * What became of each mesh object, as status conditions (pure; the writer is statuswriter.ts).
 *
 *   Accepted      False (Invalid) when the object fails weft's validation (it got past the
 *                 webhook: created before it ran, or with the webhook off); True otherwise, with
 *                 the accepted-but-not-enforced warnings and cross-object findings in the message.
 *   ResolvedRefs  False (RefNotFound) when a host, subset or gateway it names does not exist;
 *                 False (InvalidCertificateRef) when a Gateway's TLS credential cannot be served
 *                 (Secret missing, key not matching its certificate, no CA for MUTUAL).
 *   Reconciled    True when every connected proxy that ACKs runs a config that includes the
 *                 object's current generation; False (Pending) until they ACK it, False (Nacked)
 *                 naming the proxies that rejected it; False (Invalid) when Accepted is False:
 *                 weftd leaves such an object out of every config (registry.ts, validity.ts),
 *                 or, for AuthorizationPolicy and PeerAuthentication, enforces a fail-closed
 *                 stand-in for it (pkg/translate/failclosed.ts; Accepted's message says what).
 *                 Reconciling mirrors Pending.
 *   Ready         all of the above (what Flux and `kubectl wait --for=condition=Ready` read).
 *   Stalled       True when not Ready for a reason waiting will not fix (Invalid, RefNotFound,
 *                 Nacked): kstatus reads it as Failed, Argo CD as Degraded. Pending is
 *                 Reconciling instead (kstatus InProgress, Argo CD Progressing).
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
  /** Why a Gateway's TLS credentials cannot be served (gatewaycredentials.ts); absent: none. */
  badCredentials?: string[];
  /** Kind-specific conditions (a RateLimit's `Enforced`); a False one also blocks Ready. */
  extra?: FreshCondition[];
  /** Whether the proxies run it (`reconciliation`); absent: no Reconciled condition. */
  reconciled?: FreshCondition;
  /**
   * An invalid security object: what weft enforces in its place (pkg/translate/failclosed.ts,
   * `failClosedText`); absent: an invalid object is simply left out.
   */
  failClosed?: string;
}

/** What the status writer needs to know of one proxy stream (discovery.ts ConnectionInfo). */
export interface ProxyProgress {
  /** `namespace/pod`. */
  name: string;
  namespace: string;
  /** It answers pushes (false: an older proxy; it is not counted). */
  acks: boolean;
  /** It runs every change up to this registry generation. */
  runningAt: number;
  /** The error of its newest config, when it NACKed it (it keeps running an older one). */
  nackError?: string;
  /** How long its newest push has waited for an answer (absent: answered). */
  unansweredMs?: number;
}

/**
 * A proxy that has not answered its newest push for this long is not counted: a pod that never
 * ACKs (broken, or hostile) must not hold every object's Reconciled and Ready back forever.
 */
export const UNANSWERED_LIMIT_MS = 60_000;

/**
 * The Reconciled condition of an object whose current content the registry first saw at
 * generation `changedAt`, over the proxies it can affect. The message names proxies only when
 * something is wrong (a count that moved with every proxy connecting would rewrite every
 * object's status each time), and quotes a NACK's error only for proxies of the object's own
 * namespace: another tenant's proxy must not write its text into this object's status.
 */
export function reconciliation(changedAt: number, proxies: ProxyProgress[], namespace = ''): FreshCondition {
  const acking = proxies.filter((p) => p.acks);
  const silent = acking.filter((p) => (p.unansweredMs ?? 0) > UNANSWERED_LIMIT_MS);
  const counted = acking.filter((p) => !silent.includes(p));
  const behind = counted.filter((p) => p.runningAt < changedAt);
  const nacking = behind.filter((p) => p.nackError !== undefined);
  if (nacking.length > 0) {
    const own = nacking.filter((p) => p.namespace === namespace);
    const others = nacking.length - own.length;
    const named = own.map((p) => ({ path: p.name, message: p.nackError! }));
    return {
      type: 'Reconciled',
      status: 'False',
      reason: 'Nacked',
      message: `${nacking.length} of ${counted.length} proxies rejected the config holding it and run an older one${
        named.length > 0 ? `: ${listFindings(named)}` : ''
      }${others > 0 ? `${named.length > 0 ? ';' : ':'} ${others} in other namespaces (weftctl proxy-status there says why)` : ''}`,
    };
  }
  if (behind.length > 0)
    return {
      type: 'Reconciled',
      status: 'False',
      reason: 'Pending',
      message: 'waiting for the proxies to ACK the config holding this generation',
    };
  return {
    type: 'Reconciled',
    status: 'True',
    reason: 'Reconciled',
    message:
      silent.length > 0
        ? `every answering proxy runs it (${silent.length} not answering for over ${UNANSWERED_LIMIT_MS / 1000} s, not counted)`
        : 'every connected proxy runs it',
  };
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
      message:
        v.failClosed === undefined
          ? `weft does not apply this object: ${listFindings(v.validation.errors)}`
          : `weft does not apply this object as written: it fails validation (${listFindings(v.validation.errors)}); until it is fixed, ${v.failClosed}`,
    };
  const warnings = [...v.validation.warnings, ...v.notes];
  return {
    type: 'Accepted',
    status: 'True',
    reason: warnings.length > 0 ? 'AcceptedWithWarnings' : 'Accepted',
    message: warnings.length > 0 ? `accepted with warnings: ${listFindings(warnings)}` : 'accepted',
  };
}

/** A condition of an object that fails validation: weftd leaves it out of every config. */
const notApplied = (type: string): Fresh => ({
  type,
  status: 'False',
  reason: 'Invalid',
  message: 'in no proxy config: weft leaves out objects that fail validation (Accepted says why)',
});
const NOT_APPLIED = notApplied('Reconciled');
/** The Reconciled condition of an invalid security object: proxies run its stand-in, not it. */
const STAND_IN: Fresh = {
  type: 'Reconciled',
  status: 'False',
  reason: 'Invalid',
  message: "not as written: proxies enforce weft's fail-closed stand-in for it (Accepted says what)",
};

function resolvedRefs(v: Verdict): Fresh {
  const credentials = (v.badCredentials ?? []).map((message): Finding => ({ path: '', message }));
  if (v.unresolved.length > 0)
    return {
      type: 'ResolvedRefs',
      status: 'False',
      reason: 'RefNotFound',
      message: listFindings([...v.unresolved, ...credentials]),
    };
  if (credentials.length > 0)
    return {
      type: 'ResolvedRefs',
      status: 'False',
      reason: 'InvalidCertificateRef',
      message: listFindings(credentials),
    };
  return {
    type: 'ResolvedRefs',
    status: 'True',
    reason: 'ResolvedRefs',
    message: 'every reference resolves',
  };
}

function readiness(judged: Fresh[], tracksProxies: boolean): Fresh[] {
  const blocking = judged.find((c) => c.status === 'False');
  const reconciling: Fresh[] = tracksProxies
    ? [
        blocking?.reason === 'Pending'
          ? { type: 'Reconciling', status: 'True', reason: 'Pending', message: blocking.message }
          : { type: 'Reconciling', status: 'False', reason: 'Done', message: '' },
      ]
    : [];
  if (!blocking)
    return [
      {
        type: 'Ready',
        status: 'True',
        reason: 'Ready',
        message: tracksProxies
          ? 'accepted, every reference resolves, every connected proxy runs it'
          : 'accepted and every reference resolves',
      },
      { type: 'Stalled', status: 'False', reason: 'Ready', message: '' },
      ...reconciling,
    ];
  const message = `${blocking.type}: ${blocking.message}`;
  const waiting = blocking.reason === 'Pending';
  return [
    { type: 'Ready', status: 'False', reason: blocking.reason, message },
    waiting
      ? { type: 'Stalled', status: 'False', reason: 'Pending', message: '' }
      : { type: 'Stalled', status: 'True', reason: blocking.reason, message },
    ...reconciling,
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
  // an object weftd leaves out is in no proxy's config, whatever the proxies ACKed, and a
  // kind's own condition (a RateLimit's Enforced) must not say otherwise
  const left = acc.reason === 'Invalid';
  const reconciled =
    verdict.reconciled && left
      ? verdict.failClosed === undefined
        ? NOT_APPLIED
        : STAND_IN
      : verdict.reconciled;
  const extra = (verdict.extra ?? []).map((c) => (left && c.status === 'True' ? notApplied(c.type) : c));
  const judged = [acc, refs, ...extra, ...(reconciled ? [reconciled] : [])];
  const conditions = [...judged, ...readiness(judged, verdict.reconciled !== undefined)].map(
    (c): Condition => {
      const old = before.find((b) => b?.type === c.type);
      const since =
        old && old.status === c.status && typeof old.lastTransitionTime === 'string'
          ? old.lastTransitionTime
          : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
      return { ...c, observedGeneration: generation, lastTransitionTime: since };
    },
  );
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
