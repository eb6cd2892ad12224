/**
 * What weftd enforces in place of a security object that fails validation: it fails CLOSED.
 *
 * weftd leaves a mesh object with validation errors out of every config (controlplane/
 * validity.ts); for routing that is the honest choice, but for a security object it would fail
 * open: an invalid DENY policy would stop denying, an invalid ALLOW policy that was a workload's
 * only one would turn "allow only X" into "allow all", an invalid STRICT PeerAuthentication would
 * let plaintext in. A user who applied a policy must be able to rely on it, so the registry puts
 * a stand-in in the snapshot instead, built from what can still be read of the object:
 *
 * - AuthorizationPolicy `ALLOW` → an ALLOW policy with no rules: it matches nothing, so only
 *   other ALLOW policies can let a request in (Istio's builder drops an ALLOW rule it cannot
 *   build, and a policy left without rules matches never);
 * - `DENY`, `CUSTOM`, or an action that cannot be read → DENY every request (Istio's builder
 *   widens a DENY rule it cannot build, and turns a CUSTOM it cannot build into deny rules);
 * - `AUDIT` → nothing (it never decides a request): left out as before;
 * - PeerAuthentication → `STRICT` on every port of the scope it selects;
 * - RequestAuthentication → its issuers with no keys: their tokens are refused with 401, as Istio
 *   does for an issuer whose JWKS it cannot fetch (see `requestAuthentication` below).
 *
 * The stand-in keeps the object's name, namespace and creation time (access logs, `weftctl
 * explain` and PeerAuthentication precedence name and order it like the object) and its
 * selector or targetRefs when they can be read. When they cannot (an error under them, a spec
 * that is not an object, findings cut short), it has none: it applies to the whole namespace,
 * mesh-wide in the root namespace, as Istio scopes a policy without a selector. The
 * `istio.io/dry-run` annotation is kept: a policy the user only wanted to observe stays
 * observed (a value that is not a boolean is enforced, as compilePolicy reads it).
 */
import type { AuthorizationPolicySpec } from '../api/authorizationpolicy.js';
import type { PeerAuthenticationSpec } from '../api/peerauthentication.js';
import type { KubeObject } from '../kube/types.js';
import type { Finding } from '../validation/index.js';
import { DRY_RUN_ANNOTATION, dryRunOn } from './authz.js';

/** What a stand-in enforces, in the words a status and `weftctl explain` use. */
export type FailClosedEffect = 'allow-nothing' | 'deny-all' | 'strict-mtls' | 'reject-tokens';

export interface FailClosed {
  standIn: KubeObject;
  effect: FailClosedEffect;
  /** False: the object's selector/targetRefs could not be read; the stand-in is namespace-wide. */
  scoped: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether an error's path is `field`, lies under it, or above it (the whole spec, the document). */
function touches(errorPath: string, field: string): boolean {
  if (errorPath === '' || errorPath.startsWith('(')) return true; // `(document)`: findings cut short
  if (field === errorPath || field.startsWith(`${errorPath}.`) || field.startsWith(`${errorPath}[`))
    return true;
  return errorPath.startsWith(`${field}.`) || errorPath.startsWith(`${field}[`);
}

const SCOPE_FIELDS = ['spec.selector', 'spec.targetRef', 'spec.targetRefs'];

const stringMap = (v: unknown): v is Record<string, string> =>
  isRecord(v) && Object.values(v).every((x) => typeof x === 'string');

const refShape = (r: unknown): boolean =>
  isRecord(r) &&
  typeof r.kind === 'string' &&
  typeof r.name === 'string' &&
  ['group', 'namespace'].every((k) => r[k] === undefined || typeof r[k] === 'string');

/** The object's scope fields, when every one of them can be read; null when one cannot. */
function readableScope(
  spec: Record<string, unknown>,
  errors: readonly Finding[],
): Record<string, unknown> | null {
  if (errors.some((e) => SCOPE_FIELDS.some((f) => touches(e.path, f)))) return null;
  const { selector, targetRef, targetRefs } = spec;
  if (
    selector !== undefined &&
    !(isRecord(selector) && (selector.matchLabels === undefined || stringMap(selector.matchLabels)))
  )
    return null;
  if (targetRef !== undefined && !refShape(targetRef)) return null;
  if (targetRefs !== undefined && !(Array.isArray(targetRefs) && targetRefs.every(refShape))) return null;
  return {
    ...(selector !== undefined ? { selector } : {}),
    ...(targetRef !== undefined ? { targetRef } : {}),
    ...(targetRefs !== undefined ? { targetRefs } : {}),
  };
}

/** The metadata a stand-in keeps: identity, precedence, and the dry-run annotation. */
function standInMetadata(obj: KubeObject): KubeObject['metadata'] {
  const m = obj.metadata;
  const dryRun = m.annotations?.[DRY_RUN_ANNOTATION];
  return {
    name: m.name,
    ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
    ...(m.uid !== undefined ? { uid: m.uid } : {}),
    ...(m.generation !== undefined ? { generation: m.generation } : {}),
    ...(m.creationTimestamp !== undefined ? { creationTimestamp: m.creationTimestamp } : {}),
    ...(typeof dryRun === 'string' ? { annotations: { [DRY_RUN_ANNOTATION]: dryRun } } : {}),
  };
}

const ACTIONS = new Set(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);

/** An AuthorizationPolicy's action as far as it can be read; DENY when it cannot. */
function readableAction(spec: Record<string, unknown>, errors: readonly Finding[]): string {
  const action = spec.action ?? 'ALLOW';
  if (typeof action !== 'string' || !ACTIONS.has(action)) return 'DENY';
  if (errors.some((e) => e.path === 'spec.action' || e.path.startsWith('spec.action.'))) return 'DENY';
  return action;
}

function authorizationPolicy(obj: KubeObject, errors: readonly Finding[]): FailClosed | null {
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const action = readableAction(spec, errors);
  if (action === 'AUDIT') return null;
  const scope = isRecord(obj.spec) ? readableScope(spec, errors) : null;
  const allow = action === 'ALLOW';
  const standInSpec: AuthorizationPolicySpec = {
    ...(scope ?? {}),
    action: allow ? 'ALLOW' : 'DENY',
    // ALLOW without rules matches nothing; DENY with one empty rule matches every request
    rules: allow ? [] : [{}],
  };
  const standIn: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: standInMetadata(obj),
    spec: standInSpec,
  };
  return { standIn, effect: allow ? 'allow-nothing' : 'deny-all', scoped: scope !== null };
}

function peerAuthentication(obj: KubeObject, errors: readonly Finding[]): FailClosed {
  const scope = isRecord(obj.spec) ? readableScope(obj.spec, errors) : null;
  const selector = scope?.selector as PeerAuthenticationSpec['selector'] | undefined;
  const spec: PeerAuthenticationSpec = {
    ...(selector !== undefined ? { selector } : {}),
    mtls: { mode: 'STRICT' },
  };
  const standIn: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: standInMetadata(obj),
    spec,
  };
  return { standIn, effect: 'strict-mtls', scoped: scope !== null };
}

/** The issuer of a stand-in whose rules cannot be read: no token carries it (and none could verify). */
export const FAIL_CLOSED_ISSUER = 'weft.invalid/fails-validation';
const EMPTY_JWKS = '{"keys":[]}';

/** One jwtRule's issuer and token locations, as far as they can be read; null when the issuer cannot. */
function readableJwtRule(
  rule: unknown,
  at: string,
  errors: readonly Finding[],
): Record<string, unknown> | null {
  if (!isRecord(rule) || typeof rule.issuer !== 'string' || rule.issuer === '') return null;
  if (errors.some((e) => touches(e.path, `${at}.issuer`))) return null;
  const out: Record<string, unknown> = { issuer: rule.issuer, jwks: EMPTY_JWKS };
  const clean = (field: string): boolean => !errors.some((e) => touches(e.path, `${at}.${field}`));
  const { fromHeaders, fromParams, fromCookies } = rule;
  if (
    Array.isArray(fromHeaders) &&
    fromHeaders.every(
      (h) =>
        isRecord(h) && typeof h.name === 'string' && (h.prefix === undefined || typeof h.prefix === 'string'),
    ) &&
    clean('fromHeaders')
  )
    out.fromHeaders = fromHeaders;
  for (const [field, v] of [
    ['fromParams', fromParams],
    ['fromCookies', fromCookies],
  ] as const)
    if (Array.isArray(v) && v.every((x) => typeof x === 'string') && clean(field)) out[field] = v;
  return out;
}

/**
 * RequestAuthentication → the same providers with no keys, where its tokens are looked for: every
 * token of its issuers is refused with 401, as Istio does when it cannot fetch an issuer's JWKS.
 * Rules whose issuer cannot be read become one provider of an issuer no token has, so a token of
 * an issuer no valid policy names is refused (`Jwt issuer is not configured`) in the default
 * locations. Requests without a token still pass, as with a valid RequestAuthentication.
 */
function requestAuthentication(obj: KubeObject, errors: readonly Finding[]): FailClosed {
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const scope = isRecord(obj.spec) ? readableScope(spec, errors) : null;
  const rules = Array.isArray(spec.jwtRules) ? spec.jwtRules : [];
  const readable = rules.flatMap((r, i) => readableJwtRule(r, `spec.jwtRules[${i}]`, errors) ?? []);
  const jwtRules =
    readable.length === rules.length && readable.length > 0
      ? readable
      : [...readable, { issuer: FAIL_CLOSED_ISSUER, jwks: EMPTY_JWKS }];
  const standIn: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: standInMetadata(obj),
    spec: { ...(scope ?? {}), jwtRules },
  };
  return { standIn, effect: 'reject-tokens', scoped: scope !== null };
}

/**
 * The stand-in weftd enforces for `obj`, an object whose validation found `errors`; null when
 * the object is simply left out (not a security kind weft fails closed for, or an AUDIT policy).
 */
export function failClosed(obj: KubeObject, errors: readonly Finding[]): FailClosed | null {
  if (errors.length === 0) return null;
  if (obj.kind === 'AuthorizationPolicy') return authorizationPolicy(obj, errors);
  if (obj.kind === 'PeerAuthentication') return peerAuthentication(obj, errors);
  if (obj.kind === 'RequestAuthentication') return requestAuthentication(obj, errors);
  return null;
}

/**
 * What weft enforces instead, as a status and `weftctl explain` say it: "weft denies every
 * request to the workloads it selects (fail closed)".
 */
export function failClosedText(obj: KubeObject, fc: FailClosed, rootNamespace: string): string {
  const ns = obj.metadata.namespace ?? 'default';
  const root = ns === rootNamespace;
  const where = fc.scoped
    ? 'the workloads it selects'
    : root
      ? 'every workload in the mesh'
      : `every workload in namespace ${ns}`;
  const why = fc.scoped
    ? ''
    : `: its selector cannot be read${root ? `, and ${ns} is the root namespace` : ''}`;
  const closed = `(fail closed${why})`;
  // a dry-run policy's stand-in is dry-run too: the proxies log its decision, never enforce it
  const dry = dryRunOn(obj.metadata.annotations?.[DRY_RUN_ANNOTATION])
    ? `in dry run (${DRY_RUN_ANNOTATION}) only logged, not enforced: `
    : '';
  switch (fc.effect) {
    case 'deny-all':
      return `${dry}weft denies every request to ${where} ${closed}`;
    case 'allow-nothing':
      return `${dry}weft applies it as an ALLOW policy that matches nothing on ${where}: only other ALLOW policies let requests in ${closed}`;
    case 'strict-mtls':
      return `weft requires mutual TLS (STRICT) on every port of ${where} ${closed}`;
    case 'reject-tokens':
      return `weft refuses (401) every request to ${where} that carries a token of its issuers, or of an issuer no valid RequestAuthentication names ${closed}`;
  }
}
