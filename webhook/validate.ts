/**
 * The validating webhook's handler: a pure function of the request and the mesh index. No
 * express types here; the server only parses, times and writes.
 *
 * Before anything walks the object recursively, one iterative pass estimates what validating it
 * costs (pkg/validation/limits.ts `estimateCost`: values, regexes, prefix pairs; plus the
 * related objects of the cross-object checks). That decides where it is validated: cheap objects
 * inline, expensive ones on the worker pool, and objects over the hard limit not at all (a
 * denial naming the limit). An object over the depth or node limit is denied by the validator's
 * first check, and never reaches the worker or the cross-object index.
 */
import { findKind } from '../pkg/api/registry.js';
import { allowed, denied, type AdmissionRequest, type AdmissionResponse } from '../pkg/admission/index.js';
import { WeftError } from '../pkg/errors/index.js';
import {
  analyzeObjects,
  validateObject,
  type Finding,
  type ObjectFinding,
  type ObjectRef,
  type ValidateOptions,
  type ValidationResult,
} from '../pkg/validation/index.js';
import { estimateCost, type CostEstimate } from '../pkg/validation/limits.js';
import { MeshIndex } from './mesh-index.js';
import type { JobLimits, JobResult, ValidationPool } from './validate-pool.js';

export interface ValidateDeps {
  index: MeshIndex;
  /**
   * `deny`: cross-object findings the engine rates as errors (two VirtualServices claiming one
   * host) deny; order-dependent ones (a subset whose DestinationRule is not applied yet) are
   * warnings either way. `warn`: every cross-object finding only warns (migrating a repo).
   */
  crossObject: 'warn' | 'deny';
  /** RateLimit scope global is admitted (weftd runs the global backend, webhook --global-ratelimits). */
  globalRateLimits?: boolean;
  /** Validates expensive objects on a worker thread; without it everything is validated inline. */
  pool?: ValidationPool;
  /** Bodies larger than this go to the pool whatever their cost (default 128 KiB; typical objects are 1-5 KiB). */
  poolThresholdBytes?: number;
  /** Objects estimated above this many cost units go to the pool (default 2,000, about 2 ms). */
  inlineMaxUnits?: number;
  /** Objects estimated above this many cost units are denied unvalidated (default 5,000,000). */
  maxUnits?: number;
}

/** Per request: the body's size (a large one goes to the pool) and how long the caller waits. */
export type ValidateRequestInfo = JobLimits;

export interface ValidateOutcome {
  response: AdmissionResponse;
  /** For logs and metrics. */
  verdict: 'allowed' | 'denied';
  reason: string;
  /** Where the object was validated: on the main thread, on the pool, or refused by its cost. */
  placement?: 'inline' | 'worker' | 'refused';
  costUnits?: number;
}

export const DEFAULT_POOL_THRESHOLD_BYTES = 128 * 1024;
export const DEFAULT_INLINE_MAX_UNITS = 2_000;
export const DEFAULT_MAX_UNITS = 5_000_000;
/** Analysing one related object in the cross-object checks (~0.1 ms: 190 ms for 2,000). */
const CROSS_OBJECT_UNITS = 100;
/** Findings kept per list: the answer shows a few hundred at most (32 KiB message, 4 KiB warnings). */
const MAX_FINDINGS = 500;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A denial message stays readable in a terminal and well inside what the API server relays. */
const MAX_MESSAGE = 32 * 1024;

function refOf(obj: Obj, req: AdmissionRequest): ObjectRef {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const ref: ObjectRef = {
    apiVersion: typeof obj.apiVersion === 'string' ? obj.apiVersion : '',
    kind: typeof obj.kind === 'string' ? obj.kind : req.kind.kind,
    name: typeof meta.name === 'string' && meta.name !== '' ? meta.name : (req.name ?? '<generated>'),
  };
  const ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : req.namespace;
  if (ns) ref.namespace = ns;
  return ref;
}

/** `VirtualService default/reviews: spec.http[0].weight: must not be negative; spec.hosts: required` */
export function denialMessage(ref: ObjectRef, errors: readonly Finding[]): string {
  const where = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
  const msg = `${ref.kind} ${where}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`;
  return msg.length <= MAX_MESSAGE
    ? msg
    : `${msg.slice(0, MAX_MESSAGE)}... (truncated; run weftctl validate for the full list)`;
}

const warningText = (f: Finding): string => `${f.path}: ${f.message}`;

function involves(f: ObjectFinding, key: string | undefined): boolean {
  const k = (r: ObjectRef): string | undefined =>
    MeshIndex.key({
      apiVersion: r.apiVersion,
      kind: r.kind,
      metadata: { name: r.name, namespace: r.namespace },
    });
  return k(f.object) === key || (f.related ?? []).some((r) => k(r) === key);
}

/** Cross-object findings that concern the candidate, the last of `related` (`MeshIndex.withCandidate`). */
export function crossObjectFindings(related: unknown[]): ObjectFinding[] {
  const key = MeshIndex.key(related[related.length - 1]);
  return analyzeObjects(related).filter((f) => involves(f, key));
}

/** The index keys objects by namespace; an object sent without one lives in the request's namespace. */
function withRequestNamespace(obj: Obj, namespace: string | undefined): Obj {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  if (!namespace || (typeof meta.namespace === 'string' && meta.namespace !== '')) return obj;
  return { ...obj, metadata: { ...meta, namespace } };
}

function specUnchanged(req: AdmissionRequest, obj: Obj): boolean {
  return req.operation === 'UPDATE' && isObj(req.oldObject) && sameJson(req.oldObject.spec, obj.spec);
}

/**
 * Structural equality of two parsed JSON values, key order ignored (what isDeepStrictEqual says
 * for them), without recursion: an object stored before the webhook existed may nest thousands
 * of levels (the API server allows 10,000), and comparing it must not overflow the stack.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const pairs: [unknown, unknown][] = [[a, b]];
  while (pairs.length > 0) {
    const [x, y] = pairs.pop()!;
    if (x === y) continue;
    if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const xs = x as Record<string, unknown>;
    const ys = y as Record<string, unknown>;
    const keys = Object.keys(xs);
    if (keys.length !== Object.keys(ys).length) return false;
    for (const k of keys) {
      if (!Object.hasOwn(ys, k)) return false;
      pairs.push([xs[k], ys[k]]);
    }
  }
  return true;
}

const formatUnits = (n: number): string => n.toLocaleString('en-US');

/** The denial for an object whose validation would cost more than the limit: what costs, and the limit. */
function refusedForCost(
  req: AdmissionRequest,
  obj: Obj,
  cost: CostEstimate,
  units: number,
  related: number,
  max: number,
): ValidateOutcome {
  const parts = [
    `${formatUnits(cost.regexes)} regexes: ${formatUnits(cost.regexUnits)} units`,
    `${formatUnits(cost.prefixMatches)} uri prefix matches`,
    `${formatUnits(cost.nodes)} values`,
    ...(related > 0 ? [`${formatUnits(related)} related objects`] : []),
  ];
  const finding: Finding = {
    path: '(document)',
    message: `validating this object would cost an estimated ${formatUnits(units)} units (${parts.join('; ')}), over the webhook's limit of ${formatUnits(max)}; split it into smaller objects or simplify its regexes`,
    rule: 'object.limit.cost',
  };
  return {
    response: denied(req.uid, denialMessage(refOf(obj, req), [finding])),
    verdict: 'denied',
    reason: 'cost limit',
    placement: 'refused',
    costUnits: units,
  };
}

/** Allowed, allowed with the stored problems as warnings (spec unchanged), or denied. */
function verdict(
  req: AdmissionRequest,
  obj: Obj,
  { result, cross }: JobResult,
  deps: ValidateDeps,
): Pick<ValidateOutcome, 'response' | 'verdict' | 'reason'> {
  const crossErrors = deps.crossObject === 'deny' ? cross.filter((f) => f.severity === 'error') : [];
  const crossWarnings = cross.filter((f) => !crossErrors.includes(f));
  const errors: Finding[] = [...result.errors, ...crossErrors];
  const warnings = [...result.warnings, ...crossWarnings].map(warningText);
  if (errors.length === 0)
    return { response: allowed(req.uid, warnings), verdict: 'allowed', reason: 'valid' };
  if (specUnchanged(req, obj)) {
    // An object stored before the webhook existed must stay deletable: metadata-only updates
    // (finalizers, labels) pass, and the problems come back as warnings.
    const stale = errors.map((e) => `existing spec is invalid: ${warningText(e)}`);
    return {
      response: allowed(req.uid, [...stale, ...warnings]),
      verdict: 'allowed',
      reason: 'spec unchanged',
    };
  }
  const response = denied(req.uid, denialMessage(refOf(obj, req), errors), warnings);
  return { response, verdict: 'denied', reason: `${errors.length} error(s)` };
}

function inline(obj: Obj, options: ValidateOptions, related: unknown[] | undefined): JobResult {
  const result: ValidationResult = validateObject(obj, options);
  return { result, cross: related ? crossObjectFindings(related) : [] };
}

export async function handleValidate(
  req: AdmissionRequest,
  deps: ValidateDeps,
  info: ValidateRequestInfo = {},
): Promise<ValidateOutcome> {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') {
    return { response: allowed(req.uid), verdict: 'allowed', reason: `${req.operation} not validated` };
  }
  const obj = req.object;
  if (!isObj(obj))
    throw new WeftError('WEFT_ADMISSION_MALFORMED', `request.object: required for ${req.operation}`);
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  if (!findKind(typeof obj.apiVersion === 'string' ? obj.apiVersion : '', kind)) {
    // The webhook configuration only sends weft's kinds; anything else is a misconfiguration, and
    // blocking unrelated objects would be worse than letting them through with a note.
    const warning = `weft does not validate ${kind || 'objects without a kind'} (${String(obj.apiVersion)}); allowed unchecked`;
    return { response: allowed(req.uid, [warning]), verdict: 'allowed', reason: 'unknown kind' };
  }
  const options: ValidateOptions = {
    ...(req.namespace ? { defaultNamespace: req.namespace } : {}),
    maxFindings: MAX_FINDINGS,
    ...(deps.globalRateLimits ? { globalRateLimits: true } : {}),
  };
  const cost = estimateCost(obj);
  if (cost.shape) {
    // Over the depth or node limit: the validator's first check denies it, cheaply, and nothing
    // else walks it (not the worker's structured clone, not the cross-object index).
    const out = verdict(req, obj, inline(obj, options, undefined), deps);
    return { ...out, placement: 'inline', costUnits: cost.units };
  }
  const related = deps.index.ready
    ? deps.index.withCandidate(withRequestNamespace(obj, req.namespace))
    : undefined;
  // withCandidate lists the candidate last; the others are what the cross-object checks add.
  const others = related ? related.length - 1 : 0;
  const units = cost.units + others * CROSS_OBJECT_UNITS;
  const maxUnits = deps.maxUnits ?? DEFAULT_MAX_UNITS;
  if (units > maxUnits) return refusedForCost(req, obj, cost, units, others, maxUnits);
  const offload =
    deps.pool !== undefined &&
    (units > (deps.inlineMaxUnits ?? DEFAULT_INLINE_MAX_UNITS) ||
      (info.bodyBytes ?? 0) > (deps.poolThresholdBytes ?? DEFAULT_POOL_THRESHOLD_BYTES));
  const job = offload
    ? await deps.pool!.validate({ obj, options, ...(related ? { related } : {}) }, info)
    : inline(obj, options, related);
  return { ...verdict(req, obj, job, deps), placement: offload ? 'worker' : 'inline', costUnits: units };
}
