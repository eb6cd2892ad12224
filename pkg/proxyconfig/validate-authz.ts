/**
 * Structural check of a ProxyConfig's `authz` block (types.ts AuthzBlock): every problem with
 * its JSON path, like validate.ts. A block that passes compiles in the proxy (proxy/authz).
 */
import { isIP } from 'node:net';
import { AUTHZ_KEYS, type AuthzKey } from './types.js';

interface Problem {
  path: string;
  message: string;
}
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];
const STRING_KINDS = ['exact', 'prefix', 'suffix'];
const IP_KEYS = new Set<AuthzKey>(['source.ip', 'remote.ip', 'destination.ip']);
const STRING_KEYS = new Set<AuthzKey>([
  'source.principal',
  'source.namespace',
  'source.trustDomain',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims',
  'request.headers',
  'request.host',
  'request.method',
  'connection.sni',
]);

function isAuthzString(v: unknown): boolean {
  if (!isObj(v)) return false;
  const keys = Object.keys(v);
  if (keys.length !== 1) return false;
  if (keys[0] === 'present') return v.present === true;
  return STRING_KINDS.includes(keys[0]!) && typeof v[keys[0]!] === 'string';
}

function valueOk(key: AuthzKey, v: unknown): string | null {
  if (!isObj(v)) return 'must be an object';
  if (STRING_KEYS.has(key))
    return isAuthzString(v) ? null : 'must be one of {exact}, {prefix}, {suffix}, {present: true}';
  if (key === 'request.path') {
    if (isAuthzString(v)) return null;
    const t = v.template;
    // '' only last: the template's trailing slash
    if (
      !Array.isArray(t) ||
      t.length === 0 ||
      t.some((s, i) => typeof s !== 'string' || (s === '' && i !== t.length - 1))
    )
      return 'must be a string match or {template: [segments]}';
    if (t.slice(0, -1).includes('**')) return 'template: ** must be the last segment';
    return null;
  }
  if (IP_KEYS.has(key)) {
    const c = v.cidr;
    if (!isObj(c) || typeof c.address !== 'string' || isIP(c.address) === 0)
      return 'must be {cidr: {address, prefixLen}}';
    const max = isIP(c.address) === 4 ? 32 : 128;
    if (!Number.isInteger(c.prefixLen) || (c.prefixLen as number) < 0 || (c.prefixLen as number) > max)
      return `cidr.prefixLen must be 0-${max}`;
    return null;
  }
  if (key === 'destination.port')
    return Number.isInteger(v.port) && (v.port as number) >= 0 && (v.port as number) <= 65535
      ? null
      : 'must be {port: 0-65535}';
  if (key === 'request.auth.principal')
    return isAuthzString(v.iss) && isAuthzString(v.sub) ? null : 'must be {iss, sub} string matches';
  if (key === 'source.serviceAccount') {
    const sa = v.serviceAccount;
    return isObj(sa) && typeof sa.namespace === 'string' && typeof sa.name === 'string'
      ? null
      : 'must be {serviceAccount: {namespace, name}}';
  }
  return 'unknown key';
}

function checkClause(c: unknown, path: string, out: Problem[]): void {
  if (!isObj(c)) return void out.push({ path, message: 'must be an object' });
  const key = c.key as AuthzKey;
  if (!(AUTHZ_KEYS as readonly unknown[]).includes(key))
    return void out.push({ path: `${path}.key`, message: `must be one of ${AUTHZ_KEYS.join(', ')}` });
  if (
    key === 'request.headers' &&
    (typeof c.header !== 'string' || c.header === '' || c.header !== c.header.toLowerCase())
  )
    out.push({ path: `${path}.header`, message: 'must be a lower-case header name' });
  if (
    key === 'request.auth.claims' &&
    (!Array.isArray(c.claim) || c.claim.length === 0 || c.claim.some((x) => typeof x !== 'string'))
  )
    out.push({ path: `${path}.claim`, message: 'must be a non-empty list of claim names' });
  let n = 0;
  for (const f of ['values', 'notValues'] as const) {
    if (c[f] === undefined) continue;
    if (!Array.isArray(c[f])) {
      out.push({ path: `${path}.${f}`, message: 'must be a list' });
      continue;
    }
    n += c[f].length;
    c[f].forEach((v, i) => {
      const err = valueOk(key, v);
      if (err !== null) out.push({ path: `${path}.${f}[${i}]`, message: err });
    });
  }
  if (n === 0) out.push({ path, message: 'needs at least one of values, notValues' });
}

function checkAlternatives(v: unknown, path: string, out: Problem[]): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) return void out.push({ path, message: 'must be a list of clause lists' });
  v.forEach((alt, i) => {
    if (!Array.isArray(alt))
      return void out.push({ path: `${path}[${i}]`, message: 'must be a list of clauses' });
    alt.forEach((c, j) => checkClause(c, `${path}[${i}][${j}]`, out));
  });
}

export function validateAuthzBlock(b: unknown): Problem[] {
  const out: Problem[] = [];
  if (b === undefined) return out;
  if (!isObj(b)) return [{ path: 'authz', message: 'must be an object' }];
  const providers = isObj(b.providers) ? b.providers : {};
  if (b.providers !== undefined && !isObj(b.providers))
    out.push({ path: 'authz.providers', message: 'must be a map' });
  for (const [name, p] of Object.entries(providers)) {
    const at = `authz.providers.${name}`;
    if (!isObj(p)) {
      out.push({ path: at, message: 'must be an object' });
      continue;
    }
    if (!Array.isArray(p.endpoints)) out.push({ path: `${at}.endpoints`, message: 'must be a list' });
    else
      p.endpoints.forEach((e, i) => {
        if (
          !isObj(e) ||
          typeof e.address !== 'string' ||
          !Number.isInteger(e.port) ||
          (e.port as number) < 1 ||
          (e.port as number) > 65535
        )
          out.push({ path: `${at}.endpoints[${i}]`, message: 'must be {address, port}' });
      });
    if (p.timeoutMs !== undefined && (!Number.isInteger(p.timeoutMs) || (p.timeoutMs as number) <= 0))
      out.push({ path: `${at}.timeoutMs`, message: 'must be a positive integer' });
    if (
      p.statusOnError !== undefined &&
      (!Number.isInteger(p.statusOnError) ||
        (p.statusOnError as number) < 100 ||
        (p.statusOnError as number) > 599)
    )
      out.push({ path: `${at}.statusOnError`, message: 'must be an HTTP status' });
  }
  if (
    b.numTrustedProxies !== undefined &&
    (!Number.isInteger(b.numTrustedProxies) || (b.numTrustedProxies as number) < 0)
  )
    out.push({ path: 'authz.numTrustedProxies', message: 'must be a non-negative integer' });
  if (
    b.listeners !== undefined &&
    (!Array.isArray(b.listeners) || b.listeners.some((l) => typeof l !== 'string'))
  )
    out.push({ path: 'authz.listeners', message: 'must be a list of listener names' });
  if (!Array.isArray(b.policies)) return [...out, { path: 'authz.policies', message: 'must be a list' }];
  b.policies.forEach((p, i) => {
    const at = `authz.policies[${i}]`;
    if (!isObj(p)) return void out.push({ path: at, message: 'must be an object' });
    if (typeof p.name !== 'string' || p.name === '')
      out.push({ path: `${at}.name`, message: 'must be a non-empty string' });
    if (!ACTIONS.includes(p.action as string))
      out.push({ path: `${at}.action`, message: `must be one of ${ACTIONS.join(', ')}` });
    if (p.action === 'CUSTOM' && (typeof p.provider !== 'string' || !(p.provider in providers)))
      out.push({ path: `${at}.provider`, message: 'must name a key of authz.providers' });
    if (!Array.isArray(p.rules)) return void out.push({ path: `${at}.rules`, message: 'must be a list' });
    p.rules.forEach((r, j) => {
      const rp = `${at}.rules[${j}]`;
      if (!isObj(r)) return void out.push({ path: rp, message: 'must be an object' });
      checkAlternatives(r.from, `${rp}.from`, out);
      checkAlternatives(r.to, `${rp}.to`, out);
      if (r.when !== undefined) {
        if (!Array.isArray(r.when)) out.push({ path: `${rp}.when`, message: 'must be a list' });
        else r.when.forEach((c, k) => checkClause(c, `${rp}.when[${k}]`, out));
      }
    });
  });
  return out;
}
