/**
 * The validating webhook's handler: a pure function of the request and the mesh index. No
 * express types here; the server only parses, times and writes.
 */
import { isDeepStrictEqual } from 'node:util';
import { findKind } from '../pkg/api/registry.js';
import { allowed, denied, type AdmissionRequest, type AdmissionResponse } from '../pkg/admission/index.js';
import { WeftError } from '../pkg/errors/index.js';
import {
  analyzeObjects,
  validateObject,
  type Finding,
  type ObjectFinding,
  type ObjectRef,
} from '../pkg/validation/index.js';
import { MeshIndex } from './mesh-index.js';
import type { ValidationPool } from './validate-pool.js';

export interface ValidateDeps {
  index: MeshIndex;
  /**
   * `deny`: cross-object findings the engine rates as errors (two VirtualServices claiming one
   * host) deny; order-dependent ones (a subset whose DestinationRule is not applied yet) are
   * warnings either way. `warn`: every cross-object finding only warns (migrating a repo).
   */
  crossObject: 'warn' | 'deny';
  /** Validates large objects on a worker thread; without it everything is validated inline. */
  pool?: ValidationPool;
  /** Bodies larger than this go to the pool (default 128 KiB; typical objects are 1-5 KiB). */
  poolThresholdBytes?: number;
}

export interface ValidateOutcome {
  response: AdmissionResponse;
  /** For logs and metrics. */
  verdict: 'allowed' | 'denied';
  reason: string;
}

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

/** Cross-object findings that concern this object; empty when the index is not synced yet. */
function crossObjectFindings(obj: Obj, deps: ValidateDeps): ObjectFinding[] {
  if (!deps.index.ready) return [];
  const key = MeshIndex.key(obj);
  return analyzeObjects(deps.index.withCandidate(obj)).filter((f) => involves(f, key));
}

/** The index keys objects by namespace; an object sent without one lives in the request's namespace. */
function withRequestNamespace(obj: Obj, namespace: string | undefined): Obj {
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  if (!namespace || (typeof meta.namespace === 'string' && meta.namespace !== '')) return obj;
  return { ...obj, metadata: { ...meta, namespace } };
}

function specUnchanged(req: AdmissionRequest, obj: Obj): boolean {
  return (
    req.operation === 'UPDATE' && isObj(req.oldObject) && isDeepStrictEqual(req.oldObject.spec, obj.spec)
  );
}

const DEFAULT_POOL_THRESHOLD = 128 * 1024;

/** `bodyBytes`: size of the AdmissionReview as received, which decides inline vs worker validation. */
export async function handleValidate(
  req: AdmissionRequest,
  deps: ValidateDeps,
  bodyBytes = 0,
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
  const options = req.namespace ? { defaultNamespace: req.namespace } : {};
  const candidate = withRequestNamespace(obj, req.namespace);
  const offload = deps.pool !== undefined && bodyBytes > (deps.poolThresholdBytes ?? DEFAULT_POOL_THRESHOLD);
  const result = offload ? await deps.pool!.validate(obj, options) : validateObject(obj, options);
  const cross = crossObjectFindings(candidate, deps);
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
