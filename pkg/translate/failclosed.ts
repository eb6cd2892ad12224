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
 *   does for an issuer whose JWKS it cannot fetch (see `requestAuthentication` below);
 * - Sidecar → `outboundTrafficPolicy: REGISTRY_ONLY` with the egress hosts that can be read (see
 *   `sidecar` below): left out, its workloads would see the whole mesh and, worse, a REGISTRY_ONLY
 *   lockdown would silently become ALLOW_ANY.
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
import type { SidecarSpec } from '../api/sidecar.js';
import type { KubeObject } from '../kube/types.js';
import type { Finding } from '../validation/index.js';
import { DEFAULT_ROOT_NAMESPACE, DRY_RUN_ANNOTATION, dryRunOn } from './authz.js';
import { parseEgressHost } from './scope.js';

/** What a stand-in enforces, in the words a status and `weftctl explain` use. */
export type FailClosedEffect =
  'allow-nothing' | 'deny-all' | 'strict-mtls' | 'reject-tokens' | 'registry-only';

export interface FailClosed {
  standIn: KubeObject;
  effect: FailClosedEffect;
  /** False: the object's selector/targetRefs could not be read; the stand-in is namespace-wide. */
  scoped: boolean;
  /**
   * A Sidecar's stand-in: the egress hosts it imports (absent: every host, the Sidecar had no
   * egress listener) and whether they are the fallback because its own could not be read.
   */
  egress?: { hosts?: string[]; fallback: boolean };
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

/** A Sidecar's workloadSelector when it can be read; undefined when absent, null when it cannot. */
function readableWorkloadSelector(
  spec: Record<string, unknown>,
  errors: readonly Finding[],
): SidecarSpec['workloadSelector'] | null | undefined {
  if (errors.some((e) => touches(e.path, 'spec.workloadSelector'))) return null;
  const ws = spec.workloadSelector;
  if (ws === undefined) return undefined;
  if (!isRecord(ws) || (ws.labels !== undefined && !stringMap(ws.labels))) return null;
  return ws.labels === undefined ? {} : { labels: ws.labels };
}

/**
 * A Sidecar's egress hosts that can be read: strings of the `namespace/dnsName` form no error
 * touches (an error on the listener, the egress list or the whole spec touches them all). Ports,
 * binds and captureModes are dropped: weft imports the union of the listeners' hosts on every
 * port anyway (not-enforced `sidecar.egress.port`). Undefined when the Sidecar has no egress
 * listener and none was meant (Istio's default egress, every host).
 */
function readableEgressHosts(
  spec: Record<string, unknown>,
  errors: readonly Finding[],
): string[] | undefined {
  if (spec.egress === undefined && !errors.some((e) => touches(e.path, 'spec.egress'))) return undefined;
  const listeners = Array.isArray(spec.egress) ? spec.egress : [];
  const out: string[] = [];
  listeners.forEach((l, i) => {
    const hosts = isRecord(l) && Array.isArray(l.hosts) ? l.hosts : [];
    hosts.forEach((h, j) => {
      if (typeof h !== 'string' || parseEgressHost(h, 'x') === null) return;
      if (!errors.some((e) => touches(e.path, `spec.egress[${i}].hosts[${j}]`))) out.push(h);
    });
  });
  return out;
}

/**
 * Sidecar → a Sidecar that keeps what can be read of its scope and locks egress down:
 *
 * - its workloadSelector when it can be read, else none (the namespace's default Sidecar; in the
 *   root namespace, the mesh's), as the security kinds widen an unreadable selector;
 * - `outboundTrafficPolicy: REGISTRY_ONLY` whatever it said: traffic to a host outside the
 *   registry is refused (502 / connection closed), never passed through. A readable ALLOW_ANY is
 *   tightened too: which of its fields are wrong cannot tell whether the lockdown was meant;
 * - the egress hosts that can be read; when none can, `./*` and `<root namespace>/*` (the
 *   workload's own namespace and the mesh-wide ServiceEntries of the root namespace), the default
 *   Sidecar Istio recommends; no egress listener written and none in error → every registry host;
 * - nothing of `ingress`, `inboundConnectionPool` or `egressProxy` (weft enforces none of them).
 */
function sidecar(obj: KubeObject, errors: readonly Finding[], rootNamespace: string): FailClosed {
  const spec = isRecord(obj.spec) ? obj.spec : {};
  const selector = isRecord(obj.spec) ? readableWorkloadSelector(spec, errors) : null;
  const readable = isRecord(obj.spec) ? readableEgressHosts(spec, errors) : [];
  const fallback = readable !== undefined && readable.length === 0;
  const hosts = fallback ? ['./*', `${rootNamespace}/*`] : readable;
  const standInSpec: SidecarSpec = {
    ...(selector ? { workloadSelector: selector } : {}),
    ...(hosts !== undefined ? { egress: [{ hosts }] } : {}),
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
  };
  const standIn: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: standInMetadata(obj),
    spec: standInSpec,
  };
  return {
    standIn,
    effect: 'registry-only',
    scoped: selector !== null,
    egress: { ...(hosts !== undefined ? { hosts } : {}), fallback },
  };
}

/**
 * The stand-in weftd enforces for `obj`, an object whose validation found `errors`; null when
 * the object is simply left out (not a kind weft fails closed for, or an AUDIT policy).
 * `rootNamespace` is the mesh's (a Sidecar's fallback egress imports its hosts).
 */
export function failClosed(
  obj: KubeObject,
  errors: readonly Finding[],
  rootNamespace: string = DEFAULT_ROOT_NAMESPACE,
): FailClosed | null {
  if (errors.length === 0) return null;
  if (obj.kind === 'AuthorizationPolicy') return authorizationPolicy(obj, errors);
  if (obj.kind === 'PeerAuthentication') return peerAuthentication(obj, errors);
  if (obj.kind === 'RequestAuthentication') return requestAuthentication(obj, errors);
  if (obj.kind === 'Sidecar') return sidecar(obj, errors, rootNamespace);
  return null;
}

/**
 * What weft enforces instead, as a status and `weftctl explain` say it: "weft denies every
 * request to the workloads it selects (fail closed)".
 */
export function failClosedText(obj: KubeObject, fc: FailClosed, rootNamespace: string): string {
  const ns = obj.metadata.namespace ?? 'default';
  const root = ns === rootNamespace;
  const sidecar = fc.effect === 'registry-only';
  // a Sidecar without a selector is a default: a workload's own (selecting) Sidecar comes first
  const unlessOwn = !sidecar
    ? ''
    : root
      ? ' that no Sidecar of its own namespace scopes'
      : ' that no Sidecar with a workloadSelector selects';
  const where = fc.scoped
    ? `the workloads it ${sidecar ? 'scopes' : 'selects'}`
    : root
      ? `every workload in the mesh${unlessOwn}`
      : `every workload in namespace ${ns}${unlessOwn}`;
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
    case 'registry-only':
      return `weft applies outboundTrafficPolicy REGISTRY_ONLY to ${where}, importing ${importedText(fc)}: traffic to any other host is refused ${closed}`;
  }
}

/** Egress hosts named in a status (the rest counted): a message stays short. */
const HOSTS_LISTED = 5;

/** What a Sidecar stand-in imports, in words. */
function importedText(fc: FailClosed): string {
  const hosts = fc.egress?.hosts;
  if (hosts === undefined) return 'every host in the registry';
  const listed = hosts.slice(0, HOSTS_LISTED).join(', ');
  const more = hosts.length > HOSTS_LISTED ? ` and ${hosts.length - HOSTS_LISTED} more` : '';
  return fc.egress?.fallback
    ? `only ${listed} (its own namespace and the root namespace: its egress hosts cannot be read)`
    : `only the egress hosts that can be read (${listed}${more})`;
}
