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
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);
const BRACKETED_KEYS = /^(request\.headers|request\.auth\.claims)(\[[^\]]+\])+$/;
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);

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
  if (action === 'AUDIT' || action === 'DENY' || action === 'CUSTOM') {
    if (spec.rules === undefined)
      r.warn(['spec', 'rules'], `${action} policy without rules matches nothing`, 'ap.rules.none');
  }
  (spec.rules ?? []).forEach((rule, i) => {
    const at = ['spec', 'rules', i];
    if (rule.from !== undefined && rule.from.length === 0)
      r.error([...at, 'from'], '`from` must not be empty', 'ap.rule.emptyFrom');
    if (rule.to !== undefined && rule.to.length === 0)
      r.error([...at, 'to'], '`to` must not be empty', 'ap.rule.emptyTo');
    (rule.from ?? []).forEach((f, j) => checkSource(f.source, [...at, 'from', j, 'source'], r));
    (rule.to ?? []).forEach((t, j) => checkOperation(t.operation, [...at, 'to', j, 'operation'], r));
    (rule.when ?? []).forEach((c, j) => {
      const cat = [...at, 'when', j];
      if (
        !CONDITION_KEYS.has(c.key) &&
        !BRACKETED_KEYS.test(c.key) &&
        !c.key.startsWith('experimental.envoy.filters.')
      ) {
        r.error([...cat, 'key'], `unknown attribute ${JSON.stringify(c.key)}`, 'ap.when.key');
      }
      if ((c.values ?? []).length === 0 && (c.notValues ?? []).length === 0)
        r.error(cat, 'condition must have at least one value or notValue', 'ap.when.values');
      if (IP_KEYS.has(c.key)) ipList([...(c.values ?? []), ...(c.notValues ?? [])], [...cat, 'values'], r);
      if (c.key === 'destination.port')
        portList([...(c.values ?? []), ...(c.notValues ?? [])], [...cat, 'values'], r);
    });
  });
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

/** `*` may be the whole value, a prefix or a suffix; `{*}` / `{**}` segments form a path template. */
function validPathPattern(p: string): boolean {
  if (p.includes('{')) return /^(\/([^/{}*]+|\{\*\}|\{\*\*\}))+\/?$/.test(p);
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
