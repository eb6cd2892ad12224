/**
 * AdmissionReview v1 handling shared by every webhook: parse and check what the API server
 * sent, and build the responses. Handlers work on `AdmissionRequest` and return an
 * `AdmissionResponse`; nothing here knows about HTTP.
 */
import type { Operation } from 'fast-json-patch';
import { WeftError } from '../errors/index.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: { username?: string; uid?: string; groups?: string[] };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function malformed(path: string, problem: string): WeftError {
  return new WeftError('WEFT_ADMISSION_MALFORMED', `${path}: ${problem}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optionalString(req: Record<string, unknown>, key: string): string | undefined {
  const v = req[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw malformed(`request.${key}`, 'must be a string');
  return v;
}

function parseKind(v: unknown): GroupVersionKind {
  if (!isObj(v)) throw malformed('request.kind', 'required (group, version, kind)');
  const { group, version, kind } = v;
  if (typeof group !== 'string' || typeof version !== 'string' || typeof kind !== 'string' || kind === '') {
    throw malformed('request.kind', 'must have string group, version and kind');
  }
  return { group, version, kind };
}

/**
 * Checks the envelope (apiVersion, kind, request.uid, request.kind, request.operation) and
 * returns the request. Throws WEFT_ADMISSION_MALFORMED naming the first bad field: the server
 * answers such bodies with HTTP 400, since without a uid there is no response to address.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObj(body)) throw malformed('body', 'must be a JSON AdmissionReview object');
  if (body.kind !== 'AdmissionReview') throw malformed('kind', 'must be AdmissionReview');
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw malformed('apiVersion', `must be ${ADMISSION_API_VERSION} (set admissionReviewVersions: [v1])`);
  }
  const req = body.request;
  if (!isObj(req)) throw malformed('request', 'required');
  if (typeof req.uid !== 'string' || req.uid === '') throw malformed('request.uid', 'required');
  if (typeof req.operation !== 'string' || !OPERATIONS.has(req.operation)) {
    throw malformed('request.operation', 'must be CREATE, UPDATE, DELETE or CONNECT');
  }
  if (req.dryRun !== undefined && typeof req.dryRun !== 'boolean')
    throw malformed('request.dryRun', 'must be a boolean');
  const out: AdmissionRequest = {
    uid: req.uid,
    kind: parseKind(req.kind),
    operation: req.operation as AdmissionRequest['operation'],
  };
  const name = optionalString(req, 'name');
  const namespace = optionalString(req, 'namespace');
  const subResource = optionalString(req, 'subResource');
  if (name !== undefined) out.name = name;
  if (namespace !== undefined) out.namespace = namespace;
  if (subResource !== undefined) out.subResource = subResource;
  if (req.object !== undefined && req.object !== null) out.object = req.object;
  if (req.oldObject !== undefined && req.oldObject !== null) out.oldObject = req.oldObject;
  if (req.dryRun === true) out.dryRun = true;
  if (isObj(req.userInfo)) out.userInfo = req.userInfo as NonNullable<AdmissionRequest['userInfo']>;
  return out;
}

/**
 * The API server turns each warning into an HTTP `Warning: 299` header: keep each within 256
 * characters (longer ones may be truncated) and the total within 4096 (further ones are dropped),
 * and say so rather than lose them silently.
 */
export function boundWarnings(warnings: readonly string[]): string[] {
  const out: string[] = [];
  let total = 0;
  for (const [i, w] of warnings.entries()) {
    const one = w.length > 256 ? `${w.slice(0, 253)}...` : w;
    if (total + one.length > 3900) {
      out.push(`${warnings.length - i} more warnings not shown`);
      break;
    }
    out.push(one);
    total += one.length;
  }
  return out;
}

function withWarnings(resp: AdmissionResponse, warnings: readonly string[] | undefined): AdmissionResponse {
  if (warnings && warnings.length > 0) resp.warnings = boundWarnings(warnings);
  return resp;
}

export function allowed(uid: string, warnings?: readonly string[]): AdmissionResponse {
  return withWarnings({ uid, allowed: true }, warnings);
}

/** 403 Forbidden: kubectl prints `Error from server (Forbidden): ... denied the request: <message>`. */
export function denied(
  uid: string,
  message: string,
  warnings?: readonly string[],
  code = 403,
): AdmissionResponse {
  const reason = code === 400 ? 'BadRequest' : 'Forbidden';
  return withWarnings({ uid, allowed: false, status: { code, message, reason } }, warnings);
}

export function patched(
  uid: string,
  patch: readonly Operation[],
  warnings?: readonly string[],
): AdmissionResponse {
  if (patch.length === 0) return allowed(uid, warnings);
  const resp: AdmissionResponse = {
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  };
  return withWarnings(resp, warnings);
}

export function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** `VirtualService default/reviews` (or `Mesh default` when cluster-scoped), for messages and logs. */
export function describeRequest(req: AdmissionRequest): string {
  const meta = isObj(req.object) && isObj(req.object.metadata) ? req.object.metadata : {};
  const name =
    req.name ??
    (typeof meta.name === 'string'
      ? meta.name
      : typeof meta.generateName === 'string'
        ? `${meta.generateName}*`
        : '');
  return `${req.kind.kind} ${req.namespace ? `${req.namespace}/` : ''}${name}`;
}
