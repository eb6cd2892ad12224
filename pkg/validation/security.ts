/**
 * The main rules Istio enforces for PeerAuthentication, AuthorizationPolicy and
 * RequestAuthentication (rule ids `pa.*`, `ap.*`, `ra.*`).
 */
import type { PeerAuthenticationSpec } from '../api/peerauthentication.js';
import type { AuthorizationPolicySpec, Operation, Source } from '../api/authorizationpolicy.js';
import type { RequestAuthenticationSpec } from '../api/requestauthentication.js';
import type { WorkloadSelector } from '../api/common.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import { checkDuration, checkIPOrCIDR, checkPort, isToken } from './primitives.js';
import { checkSelector } from './destinationrule.js';

type Path = readonly PathSegment[];

function selector(sel: WorkloadSelector | undefined, r: Report): void {
  if (sel) checkSelector(sel.matchLabels ?? {}, ['spec', 'selector', 'matchLabels'], r);
}

// ---- PeerAuthentication -------------------------------------------------------------------

export function validatePeerAuthentication(spec: PeerAuthenticationSpec, ctx: RuleContext): void {
  const r = ctx.report;
  selector(spec.selector, r);
  const ports = Object.keys(spec.portLevelMtls ?? {});
  if (ports.length > 0 && Object.keys(spec.selector?.matchLabels ?? {}).length === 0) {
    r.error(
      ['spec', 'portLevelMtls'],
      'mesh/namespace-wide policy cannot have port level mTLS (add a workload selector)',
      'pa.portLevel.needsSelector',
    );
  }
  for (const p of ports) {
    const n = Number(p);
    const err = /^[0-9]+$/.test(p) ? checkPort(n) : `port ${JSON.stringify(p)} is not a number`;
    if (err) r.error(['spec', 'portLevelMtls', p], err, 'pa.portLevel.port');
  }
}

// ---- AuthorizationPolicy ------------------------------------------------------------------

/** Condition keys Istio understands (`request.headers[...]` and claims take a bracketed name). */
const CONDITION_KEYS = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);
const BRACKETED_KEYS = /^(request\.headers\[[^\]]+\]|request\.auth\.claims(\[[^\]]+\])+)$/;
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);
/** Keys Istio refuses with a message of its own (pkg/config/security ValidateAttribute). */
const RETIRED_KEYS: Record<string, string> = {
  'destination.namespace': 'is replaced by the metadata.namespace',
  'destination.name': 'is deprecated: only supported in v1alpha1',
  'destination.user': 'is deprecated: only supported in v1alpha1',
};
/** Source fields and condition keys Istio does not support with the CUSTOM action. */
const CUSTOM_UNSUPPORTED_SOURCE = [
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'trustDomains',
  'notTrustDomains',
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
] as const;

/** Why a condition key is refused, or undefined if Istio (and weft) enforce it. */
export function conditionKeyError(key: string): string | undefined {
  if (key.startsWith('experimental.envoy.filters.'))
    return `${JSON.stringify(key)}: experimental.envoy.filters.* matches Envoy filter metadata, which weft's proxy does not have; the condition could never be enforced, so it is refused (use request.headers[...] or request.auth.claims[...])`;
  const retired = RETIRED_KEYS[key];
  if (retired) return `attribute ${key} ${retired}`;
  if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
  if (CONDITION_KEYS.has(key) || BRACKETED_KEYS.test(key)) return undefined;
  if (key.startsWith('request.headers') || key.startsWith('request.auth.claims'))
    return `bad key ${JSON.stringify(key)}: should have format request.headers[name] or request.auth.claims[name][nested]`;
  return `unknown attribute ${JSON.stringify(key)}`;
}

export function validateAuthorizationPolicy(spec: AuthorizationPolicySpec, ctx: RuleContext): void {
  const r = ctx.report;
  selector(spec.selector, r);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' && !spec.provider?.name)
    r.error(
      ['spec', 'provider'],
      'authorization policy with CUSTOM action must specify a provider',
      'ap.custom.provider',
    );
  if (action !== 'CUSTOM' && spec.provider)
    r.error(['spec', 'provider'], 'provider must only be used with the CUSTOM action', 'ap.provider.action');
  if ((action === 'DENY' || action === 'CUSTOM') && spec.rules === undefined)
    r.error(
      ['spec', 'rules'],
      `${action} action without \`rules\` is meaningless as it will never be triggered, add an empty rule \`{}\` if you want it be triggered for every request`,
      'ap.rules.none',
    );
  if (action === 'AUDIT' && spec.rules === undefined)
    r.warn(['spec', 'rules'], 'AUDIT policy without rules matches nothing', 'ap.rules.none');
  (spec.rules ?? []).forEach((rule, i) => {
    const at = ['spec', 'rules', i];
    if (rule.from !== undefined && rule.from.length === 0)
      r.error([...at, 'from'], '`from` must not be empty', 'ap.rule.emptyFrom');
    if (rule.to !== undefined && rule.to.length === 0)
      r.error([...at, 'to'], '`to` must not be empty', 'ap.rule.emptyTo');
    (rule.from ?? []).forEach((f, j) => {
      checkSource(f.source, [...at, 'from', j, 'source'], r);
      if (action !== 'CUSTOM' || !f.source) return;
      for (const field of CUSTOM_UNSUPPORTED_SOURCE)
        if ((f.source[field] ?? []).length > 0)
          r.error(
            [...at, 'from', j, 'source', field],
            `${field} is currently not supported with CUSTOM action`,
            'ap.custom.field',
          );
    });
    (rule.to ?? []).forEach((t, j) => checkOperation(t.operation, [...at, 'to', j, 'operation'], r));
    (rule.when ?? []).forEach((c, j) => {
      const cat = [...at, 'when', j];
      const keyErr = conditionKeyError(c.key);
      if (keyErr) r.error([...cat, 'key'], keyErr, 'ap.when.key');
      if (
        action === 'CUSTOM' &&
        (['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(
          c.key,
        ) ||
          c.key.startsWith('request.auth.'))
      )
        r.error([...cat, 'key'], `${c.key} is currently not supported with CUSTOM action`, 'ap.custom.field');
      if ((c.values ?? []).length === 0 && (c.notValues ?? []).length === 0)
        r.error(cat, 'condition must have at least one value or notValue', 'ap.when.values');
      const all = [...(c.values ?? []), ...(c.notValues ?? [])];
      if (all.some((v) => v === ''))
        r.error([...cat, 'values'], `empty value not allowed, found in ${c.key}`, 'ap.when.emptyValue');
      if (IP_KEYS.has(c.key)) ipList(all, [...cat, 'values'], r);
      if (c.key === 'destination.port') portList(all, [...cat, 'values'], r);
      if (c.key === 'source.serviceAccount') serviceAccounts(all, [...cat, 'values'], r);
      if (c.key === 'source.trustDomain') trustDomains(all, [...cat, 'values'], r);
    });
  });
}

/** Istio's CheckServiceAccount: `sa` or `ns/sa`, no wildcard, at most 16 values. */
function serviceAccounts(values: string[], path: Path, r: Report): void {
  if (values.length > 16) r.error(path, 'may not have more than 16 values', 'ap.serviceAccount');
  for (const v of values) {
    if (v.includes('*'))
      r.error(path, `wildcard not allowed, found in ${JSON.stringify(v)}`, 'ap.serviceAccount');
    else if (v.length > 320) r.error(path, 'value cannot exceed 320 characters', 'ap.serviceAccount');
    else {
      const parts = v.split('/');
      if (parts.length > 2 || parts.some((p) => p === ''))
        r.error(
          path,
          `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`,
          'ap.serviceAccount',
        );
    }
  }
}

/** Istio's CheckTrustDomainValues: one wildcard at the start or end, no `/`. */
function trustDomains(values: string[], path: Path, r: Report): void {
  for (const v of values) {
    const stars = v.split('*').length - 1;
    if (stars > 1 || (stars === 1 && v !== '*' && !v.startsWith('*') && !v.endsWith('*')))
      r.error(
        path,
        `wildcard is only allowed at the start or end, found ${JSON.stringify(v)}`,
        'ap.trustDomain',
      );
    if (v.includes('/'))
      r.error(path, `trust domain must not contain '/', found ${JSON.stringify(v)}`, 'ap.trustDomain');
  }
}

function checkSource(s: Source | undefined, path: Path, r: Report): void {
  if (!s || Object.values(s).every((v) => v === undefined || (Array.isArray(v) && v.length === 0))) {
    r.error(path, '`from.source` must not be empty', 'ap.source.empty');
    return;
  }
  for (const [field, values] of Object.entries(s) as [keyof Source, string[] | undefined][]) {
    (values ?? []).forEach((v, i) => {
      if (v === '') r.error([...path, field, i], 'empty value is not allowed', 'ap.source.emptyValue');
    });
  }
  for (const f of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const)
    ipList(s[f] ?? [], [...path, f], r);
  for (const f of ['serviceAccounts', 'notServiceAccounts'] as const)
    serviceAccounts(s[f] ?? [], [...path, f], r);
  for (const f of ['trustDomains', 'notTrustDomains'] as const) trustDomains(s[f] ?? [], [...path, f], r);
  const identity = [s.principals, s.notPrincipals, s.namespaces, s.notNamespaces].some(
    (v) => (v ?? []).length > 0,
  );
  if (identity && [s.serviceAccounts, s.notServiceAccounts].some((v) => (v ?? []).length > 0))
    r.error(path, 'cannot set serviceAccounts with namespaces or principals', 'ap.source.serviceAccounts');
}

function checkOperation(o: Operation | undefined, path: Path, r: Report): void {
  if (!o || Object.values(o).every((v) => v === undefined || (Array.isArray(v) && v.length === 0))) {
    r.error(path, '`to.operation` must not be empty', 'ap.operation.empty');
    return;
  }
  for (const [field, values] of Object.entries(o) as [keyof Operation, string[] | undefined][]) {
    (values ?? []).forEach((v, i) => {
      if (v === '') r.error([...path, field, i], 'empty value is not allowed', 'ap.operation.emptyValue');
    });
  }
  portList([...(o.ports ?? []), ...(o.notPorts ?? [])], [...path, 'ports'], r);
  for (const f of ['methods', 'notMethods'] as const)
    (o[f] ?? []).forEach((m, i) => methodValue(m, f, [...path, f, i], r));
  for (const f of ['paths', 'notPaths'] as const) {
    (o[f] ?? []).forEach((p, i) => {
      if (!validPathPattern(p))
        r.error(
          [...path, f, i],
          `invalid path ${JSON.stringify(p)}: '*' is only allowed as a prefix, a suffix, alone, or in {*} / {**} path templates`,
          'ap.operation.path',
        );
    });
  }
}

/** RFC 9110 token characters: what a request method is made of (`*` among them). */
const METHOD_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]*$/;

/**
 * A `methods` / `notMethods` value no request can have ("GET\r\n", "GE T"): Istio checks only
 * that it is not empty, so it is accepted, with a warning. It matches as `*`, a `*` prefix or
 * suffix wildcard, or exactly (translate/authz.ts `stringForm`); what is left once the wildcard
 * is taken off must be token characters, as every request method is (RFC 9110 §9.1; HTTP/1.1
 * and HTTP/2 parsers refuse others). In `methods` the value matches nothing; in `notMethods` it
 * excludes nothing.
 */
function methodValue(m: string, field: 'methods' | 'notMethods', path: Path, r: Report): void {
  if (m === '' || m === '*') return;
  const core = m.startsWith('*') ? m.slice(1) : m.endsWith('*') ? m.slice(0, -1) : m;
  if (METHOD_CHARS.test(core)) return;
  r.warn(
    path,
    () =>
      `method ${JSON.stringify(m)} can never match: a request method is an HTTP token (no space, control or other separator character); ${field === 'methods' ? 'this value matches no request' : 'as a notMethods value it excludes no request'}`,
    'ap.operation.methodNeverMatches',
  );
}

/** `*` may be the whole value, a prefix or a suffix; `{*}` / `{**}` segments form a path template. */
function validPathPattern(p: string): boolean {
  if (p.includes('{') || p.includes('}')) {
    // Istio's CheckValidPathTemplate: {*} / {**} segments, {**} last, literals of RFC 3986 pchars
    const globs = p.replace(/^\/+|\/+$/g, '').split('/');
    const template = p.includes('{*}') || p.includes('{**}');
    return globs.every((g, i) => {
      if (g === '{*}') return true;
      if (g === '{**}') return i === globs.length - 1;
      if (/[{}]/.test(g)) return false;
      return !template || /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(g);
    });
  }
  const stars = p.split('*').length - 1;
  if (stars === 0 || p === '*') return true;
  return stars === 1 && (p.startsWith('*') || p.endsWith('*'));
}

function ipList(values: string[], path: Path, r: Report): void {
  values.forEach((v) => {
    const err = checkIPOrCIDR(v);
    if (err) r.error(path, err, 'ap.ip');
  });
}

function portList(values: string[], path: Path, r: Report): void {
  values.forEach((v) => {
    const err = /^[0-9]+$/.test(v) ? checkPort(Number(v)) : `port ${JSON.stringify(v)} is not a number`;
    if (err) r.error(path, err, 'ap.port');
  });
}

// ---- RequestAuthentication ----------------------------------------------------------------

export function validateRequestAuthentication(spec: RequestAuthenticationSpec, ctx: RuleContext): void {
  const r = ctx.report;
  selector(spec.selector, r);
  const issuers = new Set<string>();
  (spec.jwtRules ?? []).forEach((rule, i) => {
    const at = ['spec', 'jwtRules', i];
    if (rule.issuer === '') r.error([...at, 'issuer'], 'issuer must be set', 'ra.issuer');
    else if (issuers.has(rule.issuer))
      r.warn([...at, 'issuer'], `issuer ${rule.issuer} is used by more than one rule`, 'ra.issuerDuplicate');
    issuers.add(rule.issuer);
    if (rule.jwks && rule.jwksUri) r.error(at, 'only one of jwks or jwksUri can be set', 'ra.jwksAndUri');
    if (rule.jwksUri !== undefined && rule.jwksUri !== '') {
      const err = checkJwksUri(rule.jwksUri);
      if (err) r.error([...at, 'jwksUri'], err, 'ra.jwksUri');
    }
    if (rule.jwks !== undefined && rule.jwks !== '' && !isJson(rule.jwks))
      r.error([...at, 'jwks'], 'jwks is not valid JSON (a JSON Web Key Set)', 'ra.jwks');
    (rule.fromHeaders ?? []).forEach((h, j) => {
      if (h.name === '')
        r.error([...at, 'fromHeaders', j, 'name'], 'location header name must be set', 'ra.fromHeaders');
    });
    (rule.fromParams ?? []).forEach((p, j) => {
      if (p === '') r.error([...at, 'fromParams', j], 'location query must be set', 'ra.fromParams');
    });
    (rule.outputClaimToHeaders ?? []).forEach((o, j) => {
      const cat = [...at, 'outputClaimToHeaders', j];
      if (o.header === '' || !isToken(o.header))
        r.error(
          [...cat, 'header'],
          `outputClaimToHeaders header ${JSON.stringify(o.header)} is not a valid header name`,
          'ra.claimHeader',
        );
      if (o.claim === '')
        r.error([...cat, 'claim'], 'outputClaimToHeaders claim must be set', 'ra.claimHeader');
    });
    if (rule.timeout !== undefined) {
      const err = checkDuration(rule.timeout);
      if (err) r.error([...at, 'timeout'], err, 'ra.timeout');
    }
  });
}

function checkJwksUri(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `invalid jwksUri ${JSON.stringify(uri)}: not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `invalid jwksUri ${JSON.stringify(uri)}: scheme must be http or https`;
  if (u.port !== '' && checkPort(Number(u.port))) return `invalid jwksUri ${JSON.stringify(uri)}: bad port`;
  return undefined;
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
