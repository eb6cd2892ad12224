/**
 * The AuthorizationPolicy engine: `compileAuthz` turns the config's `authz` block into closures
 * once per config version; `authorize` evaluates them per request, pure and synchronous.
 *
 * Istio's order and defaults: CUSTOM (the ext-authz step, async, see extauthz.ts; `matchCustom`
 * says whether a request needs it) → DENY (any matching rule denies) → ALLOW (no ALLOW policy:
 * allowed; ALLOW policies and none matches: denied). AUDIT only marks. A policy with `rules: []`
 * matches nothing; a rule with no from/to/when matches everything. Dry-run policies
 * (`istio.io/dry-run`) are evaluated on their own into `shadow`, never enforced.
 *
 * Within a rule: from-alternatives ORed, to-alternatives ORed, conditions ANDed; in a clause the
 * values are ORed and notValues negated (`values` AND NOT `notValues`). An attribute that is
 * absent (plaintext: no peer; no JWT) matches no value, so `notPrincipals` holds for a plaintext
 * request, as in Istio.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type {
  AuthzAction,
  AuthzBlock,
  AuthzClause,
  AuthzRule,
  AuthzString,
  AuthzValue,
} from '../../pkg/proxyconfig/types.js';
import type { AuthzAttributes } from './attributes.js';
import { prepareProvider, type PreparedProvider } from './extauthz.js';

type Pred = (a: AuthzAttributes) => boolean;

interface CompiledRule {
  from: Pred[][] | null;
  to: Pred[][] | null;
  when: Pred[];
}

export interface CompiledPolicy {
  name: string;
  action: AuthzAction;
  provider: string | undefined;
  rules: CompiledRule[];
}

export interface CompiledAuthz {
  custom: CompiledPolicy[];
  deny: CompiledPolicy[];
  allow: CompiledPolicy[];
  audit: CompiledPolicy[];
  dryRun: CompiledPolicy[];
  providers: ReadonlyMap<string, PreparedProvider>;
  numTrustedProxies: number;
  /** HTTP listeners the before-routing hook checks; null = all. */
  listeners: ReadonlySet<string> | null;
}

/** Whether the before-routing hook checks requests of `listener` (see AuthzBlock.listeners). */
export function guardsListener(c: CompiledAuthz | null, listener: string): c is CompiledAuthz {
  return c !== null && (c.listeners === null || c.listeners.has(listener));
}

export type AuthzDecisionKind = 'allow' | 'deny';

export interface AuthzDecision {
  decision: AuthzDecisionKind;
  /** `namespace/name` of the deciding policy (absent for the defaults). */
  policy?: string;
  /** Index of the matching rule in that policy's `rules`. */
  rule?: number;
  /** The stage that decided: a DENY or ALLOW policy, CUSTOM (ext-authz), or NONE (no ALLOW policy at all). */
  action: 'CUSTOM' | 'DENY' | 'ALLOW' | 'NONE';
  /** The AUDIT policy that matched, if any. */
  audit?: string;
  /** Human text: "denied by DENY policy ns/name rule 0", "no ALLOW policy matched". */
  reason: string;
  /** What the dry-run policies would have decided (present only when some exist). */
  shadow?: { decision: AuthzDecisionKind; policy?: string; rule?: number; reason: string };
}

export const NO_ALLOW_MATCHED = 'no ALLOW policy matched';

// ---- matchers -------------------------------------------------------------------------------

type StrFn = (s: string | undefined) => boolean;

function strMatcher(m: AuthzString, lower = false): StrFn {
  if ('present' in m) return (s) => s !== undefined && s !== '';
  if ('exact' in m) {
    const x = lower ? m.exact.toLowerCase() : m.exact;
    return (s) => s === x;
  }
  if ('prefix' in m) {
    const x = lower ? m.prefix.toLowerCase() : m.prefix;
    return (s) => s !== undefined && s.startsWith(x);
  }
  const x = lower ? m.suffix.toLowerCase() : m.suffix;
  return (s) => s !== undefined && s.endsWith(x);
}

/** Envoy uri_template: `*` one segment of pchars, `**` the rest (zero or more chars, `/` included). */
const PCHAR = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";
function templateRegex(segments: string[]): RegExp {
  const body = segments
    .map((s) =>
      s === '*' ? `${PCHAR}+` : s === '**' ? `(?:${PCHAR}|/)*` : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/');
  return new RegExp(`^/${body}$`);
}

/** `::ffff:10.0.0.1` (a v4 peer on a dual-stack socket) is 10.0.0.1. */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** IPv4 text → uint32, or -1 (not dotted-quad IPv4). */
function v4(ip: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 255) return -1;
      n = n * 256 + part;
      part = digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      part = part * 10 + (c - 0x30);
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return n * 256 + part;
}

/** One-entry memo: a request's address is tested by many clauses; parse it once. */
let memoIp = '';
let memoV4 = -1;
let memoPlain = '';
function parsedIp(raw: string): { plain: string; v4: number } {
  if (raw !== memoIp) {
    memoIp = raw;
    memoPlain = plainIp(raw);
    memoV4 = v4(memoPlain);
  }
  return { plain: memoPlain, v4: memoV4 };
}

/**
 * CIDR membership: IPv4 by integer mask (BlockList.check costs ~130 ns per call, this ~10),
 * IPv6 through node's BlockList.
 */
function ipChecker(values: AuthzValue[]): (ip: string) => boolean {
  const nets: [number, number][] = [];
  const list6 = new BlockList();
  let any6 = false;
  for (const v of values) {
    if (!('cidr' in v)) throw new Error('expected a CIDR value');
    const base = v4(v.cidr.address);
    if (base >= 0) {
      const bits = v.cidr.prefixLen;
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      nets.push([(base & mask) >>> 0, mask]);
    } else if (isIPv6(v.cidr.address)) {
      list6.addSubnet(v.cidr.address, v.cidr.prefixLen, 'ipv6');
      any6 = true;
    } else throw new Error(`${v.cidr.address} is not an IP address`);
  }
  return (raw) => {
    const { plain, v4: n } = parsedIp(raw);
    if (n >= 0) {
      for (const [net, mask] of nets) if ((n & mask) >>> 0 === net) return true;
      return false;
    }
    return any6 && isIPv6(plain) && list6.check(plain, 'ipv6');
  };
}

/** Host without port (`a.com:80` → `a.com`, `[::1]:80` → `[::1]`) and without a trailing dot. */
export function hostOnly(authority: string): string {
  let h = authority.toLowerCase();
  const colon = h.lastIndexOf(':');
  if (colon > 0 && !h.endsWith(']') && (h.startsWith('[') || h.indexOf(':') === colon)) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** The claim at `path`, as the strings a matcher may see: a string, or a list's string items. */
export function claimStrings(claims: Record<string, unknown> | undefined, path: string[]): string[] {
  let cur: unknown = claims;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return [];
    cur = (cur as Record<string, unknown>)[p];
  }
  if (typeof cur === 'string') return [cur];
  if (Array.isArray(cur)) return cur.filter((x): x is string => typeof x === 'string');
  return [];
}

/** Istio's trust domain of a principal `td/ns/x/sa/y`. */
function trustDomainOf(principal: string): string {
  const i = principal.indexOf('/');
  return i < 0 ? principal : principal.slice(0, i);
}

function principalOf(a: AuthzAttributes): string | undefined {
  const p = a.peer?.principal;
  return p !== undefined && p.startsWith('spiffe://') ? p.slice(9) : p;
}

/** iss and sub of the JWT: from the claims when they are strings, else split at the last `/`. */
function issSub(a: AuthzAttributes): [string, string] | undefined {
  const auth = a.auth;
  if (auth === undefined) return undefined;
  const iss = auth.claims?.iss;
  const sub = auth.claims?.sub;
  if (typeof iss === 'string' && typeof sub === 'string') return [iss, sub];
  if (typeof auth.principal !== 'string') return undefined;
  const i = auth.principal.lastIndexOf('/');
  return i < 0 ? [auth.principal, ''] : [auth.principal.slice(0, i), auth.principal.slice(i + 1)];
}

/** One value of a clause → a predicate. */
function valuePred(c: AuthzClause, v: AuthzValue): Pred {
  switch (c.key) {
    case 'source.principal': {
      const m = strMatcher(v as AuthzString);
      return (a) => m(principalOf(a));
    }
    case 'source.namespace': {
      const m = strMatcher(v as AuthzString);
      return (a) => m(a.peer?.namespace);
    }
    case 'source.trustDomain': {
      const m = strMatcher(v as AuthzString);
      return (a) => {
        const p = principalOf(a);
        return p !== undefined && p !== '' && m(trustDomainOf(p));
      };
    }
    case 'source.serviceAccount': {
      const sa = (v as { serviceAccount: { namespace: string; name: string } }).serviceAccount;
      return (a) =>
        a.peer !== undefined && a.peer.namespace === sa.namespace && a.peer.serviceAccount === sa.name;
    }
    case 'request.auth.principal': {
      const rp = v as { iss: AuthzString; sub: AuthzString };
      const mi = strMatcher(rp.iss);
      const ms = strMatcher(rp.sub);
      return (a) => {
        const is = issSub(a);
        return is !== undefined && mi(is[0]) && ms(is[1]);
      };
    }
    case 'request.auth.audiences': {
      const m = strMatcher(v as AuthzString);
      // defensive: the JWT side may hand over a non-list; nothing in it then matches
      return (a) =>
        a.auth !== undefined && Array.isArray(a.auth.audiences) && a.auth.audiences.some((x) => m(x));
    }
    case 'request.auth.presenter': {
      const m = strMatcher(v as AuthzString);
      return (a) => a.auth !== undefined && typeof a.auth.presenter === 'string' && m(a.auth.presenter);
    }
    case 'request.auth.claims': {
      const m = strMatcher(v as AuthzString);
      const path = c.claim ?? [];
      return (a) => a.auth !== undefined && claimStrings(a.auth.claims, path).some((x) => m(x));
    }
    case 'request.headers': {
      const name = c.header ?? '';
      if ('present' in v) return (a) => a.headers[name] !== undefined;
      const m = strMatcher(v as AuthzString);
      return (a) => m(headerValue(a.headers[name]));
    }
    case 'request.host': {
      // case-insensitive; a pattern matches the authority with or without its port
      const m = strMatcher(v as AuthzString, true);
      return (a) => {
        const full = a.host.toLowerCase();
        return m(full) || m(hostOnly(full));
      };
    }
    case 'request.method': {
      const m = strMatcher(v as AuthzString);
      return (a) => m(a.method);
    }
    case 'request.path': {
      if ('template' in v) {
        const re = templateRegex(v.template);
        return (a) => re.test(a.path);
      }
      const m = strMatcher(v as AuthzString);
      return (a) => m(a.path);
    }
    case 'destination.port': {
      const p = (v as { port: number }).port;
      return (a) => a.port === p;
    }
    case 'connection.sni': {
      const m = strMatcher(v as AuthzString);
      return (a) => m(a.sni);
    }
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      throw new Error('IP clauses are compiled as a whole');
  }
}

function anyOf(c: AuthzClause, values: AuthzValue[]): Pred {
  if (c.key === 'source.ip' || c.key === 'remote.ip' || c.key === 'destination.ip') {
    const check = ipChecker(values);
    if (c.key === 'source.ip') return (a) => check(a.sourceIp);
    if (c.key === 'remote.ip') return (a) => check(a.remoteIp);
    return (a) => check(a.destinationIp);
  }
  const preds = values.map((v) => valuePred(c, v));
  if (preds.length === 1) return preds[0]!;
  return (a) => {
    for (const p of preds) if (p(a)) return true;
    return false;
  };
}

export function compileClause(c: AuthzClause): Pred {
  const yes = c.values && c.values.length > 0 ? anyOf(c, c.values) : null;
  const no = c.notValues && c.notValues.length > 0 ? anyOf(c, c.notValues) : null;
  if (yes !== null && no !== null) return (a) => yes(a) && !no(a);
  if (yes !== null) return yes;
  if (no !== null) return (a) => !no(a);
  return () => true;
}

const allOf = (preds: Pred[], a: AuthzAttributes): boolean => {
  for (const p of preds) if (!p(a)) return false;
  return true;
};

const someAlt = (alts: Pred[][] | null, a: AuthzAttributes): boolean => {
  if (alts === null) return true;
  for (const alt of alts) if (allOf(alt, a)) return true;
  return false;
};

/** Index of the first rule of `p` that matches, or -1. */
export function matchPolicy(p: CompiledPolicy, a: AuthzAttributes): number {
  const rules = p.rules;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (someAlt(r.from, a) && someAlt(r.to, a) && allOf(r.when, a)) return i;
  }
  return -1;
}

const httpOnly = (c: AuthzClause): boolean => c.key.startsWith('request.');

/**
 * The block as Istio reads it for TCP traffic, which has no method, path, host, headers or JWT:
 * in ALLOW and AUDIT policies a rule that names an HTTP-only attribute matches nothing (so an
 * ALLOW policy of only such rules allows no TCP connection); in DENY and CUSTOM policies the
 * HTTP-only clauses are dropped and the rule applies on what TCP has (denying more, never less).
 */
export function tcpBlock(block: AuthzBlock): AuthzBlock {
  const strip = (alts: AuthzClause[][] | undefined): AuthzClause[][] | undefined =>
    alts?.map((alt) => alt.filter((c) => !httpOnly(c)));
  return {
    ...block,
    policies: block.policies.map((p) => ({
      ...p,
      rules: p.rules.flatMap((r) => {
        const all = [...(r.from ?? []).flat(), ...(r.to ?? []).flat(), ...(r.when ?? [])];
        if (!all.some(httpOnly)) return [r];
        if (p.action === 'ALLOW' || p.action === 'AUDIT') return [];
        const out: AuthzRule = {};
        const from = strip(r.from);
        const to = strip(r.to);
        if (from !== undefined) out.from = from;
        if (to !== undefined) out.to = to;
        if (r.when !== undefined) out.when = r.when.filter((c) => !httpOnly(c));
        return [out];
      }),
    })),
  };
}

/** Compiles the config's authz block (at config swap); throws on a value the engine cannot use. */
export function compileAuthz(block: AuthzBlock): CompiledAuthz {
  const out: CompiledAuthz = {
    custom: [],
    deny: [],
    allow: [],
    audit: [],
    dryRun: [],
    providers: new Map(Object.entries(block.providers ?? {}).map(([k, v]) => [k, prepareProvider(v)])),
    numTrustedProxies: block.numTrustedProxies ?? 0,
    listeners: block.listeners === undefined ? null : new Set(block.listeners),
  };
  for (const p of block.policies) {
    const cp: CompiledPolicy = {
      name: p.name,
      action: p.action,
      provider: p.provider,
      rules: p.rules.map((r) => ({
        from: r.from ? r.from.map((alt) => alt.map(compileClause)) : null,
        to: r.to ? r.to.map((alt) => alt.map(compileClause)) : null,
        when: (r.when ?? []).map(compileClause),
      })),
    };
    if (p.dryRun === true) out.dryRun.push(cp);
    else if (p.action === 'CUSTOM') {
      if (p.provider === undefined || !out.providers.has(p.provider))
        throw new Error(
          `policy ${p.name}: CUSTOM provider ${JSON.stringify(p.provider)} is not in authz.providers`,
        );
      out.custom.push(cp);
    } else if (p.action === 'DENY') out.deny.push(cp);
    else if (p.action === 'ALLOW') out.allow.push(cp);
    else out.audit.push(cp);
  }
  return out;
}

/** The first CUSTOM policy whose rules match: the request must pass its provider first. */
export function matchCustom(
  c: CompiledAuthz,
  a: AuthzAttributes,
): { policy: string; rule: number; provider: PreparedProvider; providerName: string } | null {
  for (const p of c.custom) {
    const rule = matchPolicy(p, a);
    if (rule >= 0)
      return { policy: p.name, rule, provider: c.providers.get(p.provider!)!, providerName: p.provider! };
  }
  return null;
}

function decideDenyAllow(
  deny: CompiledPolicy[],
  allow: CompiledPolicy[],
  a: AuthzAttributes,
): Omit<AuthzDecision, 'shadow' | 'audit'> {
  for (const p of deny) {
    const rule = matchPolicy(p, a);
    if (rule >= 0)
      return {
        decision: 'deny',
        policy: p.name,
        rule,
        action: 'DENY',
        reason: `denied by DENY policy ${p.name} rule ${rule}`,
      };
  }
  if (allow.length === 0) return { decision: 'allow', action: 'NONE', reason: 'no ALLOW policy applies' };
  for (const p of allow) {
    const rule = matchPolicy(p, a);
    if (rule >= 0)
      return {
        decision: 'allow',
        policy: p.name,
        rule,
        action: 'ALLOW',
        reason: `allowed by ALLOW policy ${p.name} rule ${rule}`,
      };
  }
  return { decision: 'deny', action: 'ALLOW', reason: NO_ALLOW_MATCHED };
}

/** DENY → ALLOW (+ AUDIT marks, dry-run shadow); CUSTOM is the caller's async step before this. */
export function authorize(c: CompiledAuthz, a: AuthzAttributes): AuthzDecision {
  const d: AuthzDecision = decideDenyAllow(c.deny, c.allow, a);
  for (const p of c.audit) {
    if (matchPolicy(p, a) >= 0) {
      d.audit = p.name;
      break;
    }
  }
  if (c.dryRun.some((p) => p.action === 'DENY' || p.action === 'ALLOW')) {
    // dry-run CUSTOM/AUDIT policies decide nothing even when enforced: only DENY/ALLOW shadow
    const deny = c.dryRun.filter((p) => p.action === 'DENY');
    const allow = c.dryRun.filter((p) => p.action === 'ALLOW');
    const s = decideDenyAllow(deny, allow, a);
    d.shadow = {
      decision: s.decision,
      reason: s.reason,
      ...(s.policy !== undefined ? { policy: s.policy } : {}),
      ...(s.rule !== undefined ? { rule: s.rule } : {}),
    };
  }
  return d;
}

/**
 * Istio's `remote.ip`: with N trusted proxies in front, the Nth address from the right of
 * x-forwarded-for (Envoy xff_num_trusted_hops); with none, or too short a list, the peer.
 * The list is the client's to fill: only its last N entries are looked at, so a header of
 * thousands of entries costs no more than one of N.
 */
export function remoteAddress(
  sourceIp: string,
  xff: string | string[] | undefined,
  numTrustedProxies: number,
): string {
  if (numTrustedProxies <= 0 || xff === undefined) return plainIp(sourceIp);
  const candidate = nthFromRight(Array.isArray(xff) ? xff.join(',') : xff, numTrustedProxies);
  return candidate !== undefined && (isIPv4(candidate) || isIPv6(candidate)) ? candidate : plainIp(sourceIp);
}

/** The nth comma-separated entry from the right (empty: undefined), walking back over at most n entries. */
export function nthFromRight(list: string, n: number): string | undefined {
  let end = list.length;
  let seen = 0;
  // an empty entry (`a,,b`) counts as an entry: skipping it would make the walk unbounded
  while (end >= 0 && seen < n) {
    const comma = list.lastIndexOf(',', end - 1);
    seen++;
    if (seen === n) return list.slice(comma + 1, end).trim() || undefined;
    if (comma < 0) return undefined;
    end = comma;
  }
  return undefined;
}
