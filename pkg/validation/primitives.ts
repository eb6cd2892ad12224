/**
 * The small checks Istio applies in many places (durations, ports, domain names, label maps,
 * exportTo, regexes, header names and values). Each returns an error message or undefined, so
 * callers decide the path and the rule id. Messages keep Istio's wording where it is clear.
 */
import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import { nestedRepetition } from './regex-shape.js';

// ---- durations ----------------------------------------------------------------------------

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
const DURATION_TERM = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Go `time.ParseDuration`, in nanoseconds; undefined when the syntax is wrong. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  DURATION_TERM.lastIndex = 0;
  while (DURATION_TERM.lastIndex < s.length) {
    const m = DURATION_TERM.exec(s);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    total += Number(m[1]) * (UNIT_NS[m[2] ?? ''] ?? NaN);
  }
  return Number.isFinite(total) ? sign * total : undefined;
}

/** Istio's ValidateDuration: at least 1ms, whole milliseconds. */
export function checkDuration(text: string): string | undefined {
  const ns = parseGoDuration(text);
  if (ns === undefined) return `invalid duration ${JSON.stringify(text)}`;
  if (ns < 1e6) return 'duration must be greater than 1ms';
  if (Math.round(ns) % 1e6 !== 0) return 'only durations to ms precision are supported';
  return undefined;
}

// ---- ports and names ----------------------------------------------------------------------

export function checkPort(port: number): string | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? undefined
    : `port number ${port} must be in the range 1..65535`;
}

const DNS1123_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes object name (Secrets, ConfigMaps…): a DNS-1123 subdomain, lower case, ≤ 253. */
export function isDNS1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** Istio's DNS-1123 label (upper case allowed, as Istio allows it). */
export function isDNS1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

function isWildcardLabel(s: string): boolean {
  return s.length <= 63 && WILDCARD_LABEL.test(s);
}

function domainPreconditions(domain: string): string | undefined {
  if (domain.length > 255) return `domain name ${JSON.stringify(domain)} too long (max 255)`;
  if (domain.length === 0) return 'empty domain name not allowed';
  return undefined;
}

/** Go strconv.Atoi succeeds: optional sign, then decimal digits. */
const ALL_NUMERIC = /^[-+]?[0-9]+$/;

function checkLabels(domain: string, rest: string): string | undefined {
  const parts = rest.split('.');
  const tld = parts[parts.length - 1] ?? '';
  if (ALL_NUMERIC.test(tld)) {
    return `domain name ${JSON.stringify(domain)} invalid (top level domain ${JSON.stringify(tld)} cannot be all-numeric)`;
  }
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i] ?? '';
    if (i === parts.length - 1 && label === '') return undefined; // trailing dot: `istio.io.`
    if (!isDNS1123Label(label))
      return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(label)} invalid)`;
  }
  return undefined;
}

/** Istio's ValidateWildcardDomain: `*`, `*.foo.com`, `*foo.com`, `reviews`, `a.b.c.` ... */
export function checkWildcardDomain(domain: string): string | undefined {
  const pre = domainPreconditions(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (!isWildcardLabel(first))
    return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(first)} invalid)`;
  return dot < 0 ? undefined : checkLabels(domain, domain.slice(dot + 1));
}

/** Istio's ValidateFQDN: like a wildcard domain without the wildcard. */
export function checkFQDN(fqdn: string): string | undefined {
  return domainPreconditions(fqdn) ?? checkLabels(fqdn, fqdn);
}

/**
 * Gateway-bound VS hosts: with SNI matches, Istio also accepts the auto-passthrough form
 * `outbound_.<port>_.<subset>_.<hostname>`.
 */
export function checkGatewayHost(sni: boolean, domain: string): string | undefined {
  const pre = domainPreconditions(domain);
  if (pre) return pre;
  if (sni && domain.startsWith('outbound_')) {
    const parts = domain.split('_.');
    if (parts.length < 4)
      return `domain name ${JSON.stringify(domain)} invalid (expected outbound_.<port>_.<subset>_.<hostname>)`;
    const port = Number(parts[1]);
    if (!Number.isInteger(port) || port <= 0)
      return `domain name ${JSON.stringify(domain)} invalid (port is not a valid number)`;
    return checkWildcardDomain(parts.slice(3).join('_.'));
  }
  return checkWildcardDomain(domain);
}

export function isIPAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** Go net.ParseCIDR. */
export function isCIDR(s: string): boolean {
  return s.includes('/') && parseCIDR(s) !== null;
}

/**
 * The repo's CIDR parser: `10.0.0.0/8` or a bare IP (a /32 or /128, as Istio's
 * AddrStrToCidrRange); null if it is neither. The address is returned as written.
 */
export function parseCIDR(s: string): { address: string; prefixLen: number; family: 4 | 6 } | null {
  const slash = s.indexOf('/');
  const ip = slash < 0 ? s : s.slice(0, slash);
  const kind = isIP(ip);
  if (kind === 0) return null;
  const family = kind === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address: ip, prefixLen: max, family };
  const bits = s.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) return null;
  return { address: ip, prefixLen: Number(bits), family };
}

/** Istio: `destinationSubnets` and similar take an IP or a CIDR block. */
export function checkIPOrCIDR(s: string): string | undefined {
  if (s.includes('/')) return isCIDR(s) ? undefined : `${s} is not a valid CIDR block`;
  return isIPAddress(s) ? undefined : `${s} is not a valid IP`;
}

// ---- label maps ---------------------------------------------------------------------------

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function isLabelName(s: string): boolean {
  return s.length <= 63 && LABEL_NAME.test(s);
}

/** labels.Instance.Validate: every problem in a label map, as messages. */
export function checkLabelMap(labels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.indexOf('/');
    const prefix = slash < 0 ? undefined : k.slice(0, slash);
    const name = slash < 0 ? k : k.slice(slash + 1);
    const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix));
    if (!prefixOk || !isLabelName(name)) out.push(`invalid tag key: ${JSON.stringify(k)}`);
    // Istio puts no length limit on values (Kubernetes would, at 63).
    if (v !== '' && !LABEL_NAME.test(v)) out.push(`invalid tag value: ${JSON.stringify(v)}`);
  }
  return out;
}

// ---- exportTo -----------------------------------------------------------------------------

/** §0.7: `.`, `*` or namespace names; no `~`; no duplicates; `*` alone. */
export function checkExportTo(exportTo: string[], namespace: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let hasPublic = false;
  let hasOther = false;
  for (const entry of exportTo) {
    if (entry === '~') {
      out.push('exportTo ~ (none) is not allowed for Istio configuration objects');
      continue;
    }
    if (entry !== '.' && entry !== '*' && !isDNS1123Label(entry)) {
      out.push(
        `only .,*, or a valid DNS 1123 label is allowed as exportTo entry (got ${JSON.stringify(entry)})`,
      );
      continue;
    }
    const effective = entry === '.' ? namespace : entry;
    if (seen.has(effective)) out.push(`duplicate entries in exportTo: ${JSON.stringify(entry)}`);
    seen.add(effective);
    if (entry === '*') hasPublic = true;
    else hasOther = true;
  }
  if (hasPublic && hasOther)
    out.push('cannot have both public (*) and non-public exportTo values for a resource');
  return out;
}

// ---- regexes ------------------------------------------------------------------------------

export const MAX_REGEX_LENGTH = 1024;

/**
 * Istio's regex check: RE2 syntax (re2js parses exactly Go's/RE2's grammar, in linear time),
 * at most 1024 characters. A backtracking JS RegExp is never built from user input.
 */
export function checkRegex(regex: string): string | undefined {
  if (regex.length > MAX_REGEX_LENGTH) {
    return `${JSON.stringify(truncate(regex))}: regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  }
  try {
    RE2JS.compile(regex);
    return undefined;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return `${JSON.stringify(regex)}: ${why}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`;
  }
}

/** weft extra: nested unbounded repetition (ReDoS shape), see regex-shape.ts. Call after checkRegex. */
export function checkRegexBacktracking(regex: string): string | undefined {
  const group = nestedRepetition(regex);
  if (group === undefined) return undefined;
  return `${JSON.stringify(truncate(regex))}: ${JSON.stringify(truncate(group))} repeats a group that itself repeats without bound; it matches the same as the group without the outer repetition, and backtracking engines (where such patterns get copied) take exponential time on it. Remove the nesting`;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

// ---- headers ------------------------------------------------------------------------------

/** RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const JWT_CLAIM = /^@request\.auth\.claims(\.[^.[\]]+)+$|^@request\.auth\.claims(\[[^[\]]+\])+$/;

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

export function isJwtClaimKey(key: string): boolean {
  return JWT_CLAIM.test(key);
}

/** Header names usable in `match.headers` / `withoutHeaders`. */
export function checkMatchHeaderName(name: string): string | undefined {
  if (name !== '' && (isToken(name) || PSEUDO_HEADERS.has(name) || isJwtClaimKey(name))) return undefined;
  return `header name ${JSON.stringify(name)} is not a valid header name`;
}

/** Request remove and every response operation: no Host, no `:` headers. */
export function checkHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'invalid header "": header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header ${JSON.stringify(name)}: cannot set Host header`;
  if (name.startsWith(':')) return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
  if (!isToken(name)) return `invalid header ${JSON.stringify(name)}: not a valid header name`;
  return undefined;
}

export function isAuthorityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n === ':authority' || n === 'host';
}

/**
 * Header values: no control characters but TAB, and Envoy's `%VAR%` / `%VAR(args)%` syntax well
 * formed (a literal `%` is written `%%`). Same states as Envoy's header parser.
 */
export function checkHeaderValue(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f)
      return `header value configuration: invalid character 0x${c.toString(16).padStart(2, '0')} in header value`;
  }
  const problem = envoyFormatProblem(value);
  return problem ? `header value configuration: invalid header configuration. ${problem}` : undefined;
}

type ParseState =
  | 'literal'
  | 'name'
  | 'expectArray'
  | 'expectString'
  | 'string'
  | 'expectDelimOrEnd'
  | 'expectArgsEnd'
  | 'expectVarEnd';

function envoyFormatProblem(value: string): string | undefined {
  let state: ParseState = 'literal';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    const next = value[i + 1];
    switch (state) {
      case 'literal':
        if (ch !== '%') break;
        if (next === undefined) return 'Un-escaped %';
        if (next === '%') i++;
        else state = 'name';
        break;
      case 'name':
        if (ch === '%') state = 'literal';
        else if (ch === '(') state = 'expectArray';
        break;
      case 'expectArray':
        if (ch === '[') state = 'expectString';
        else if (ch !== ' ') state = 'string';
        break;
      case 'expectDelimOrEnd':
        if (ch === ',') state = 'expectString';
        else if (ch === ']') state = 'expectArgsEnd';
        else if (ch !== ' ') return "Expecting ',', ']', or whitespace";
        break;
      case 'expectString':
        if (ch === '"') state = 'string';
        else if (ch !== ' ') return "Expecting '\"'";
        break;
      case 'string':
        if (ch === '\\') {
          if (next === undefined) return 'Un-terminated backslash in JSON string';
          i++;
        } else if (ch === ')') state = 'expectVarEnd';
        else if (ch === '"') state = 'expectDelimOrEnd';
        break;
      case 'expectArgsEnd':
        if (ch === ')') state = 'expectVarEnd';
        else if (ch !== ' ') return "Expecting ')' or whitespace";
        break;
      case 'expectVarEnd':
        if (ch === '%') state = 'literal';
        else if (ch !== ' ') return "Expecting '%' or whitespace";
        break;
    }
  }
  return state === 'literal' ? undefined : `Un-terminated variable expression ${JSON.stringify(value)}`;
}

// ---- hosts --------------------------------------------------------------------------------

/** Istio host.Name.Matches: does one (possibly wildcard) host cover the other? */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw)
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Istio host.Name.SubsetOf: is `a` within `b` (b may be a wildcard)? */
export function hostSubsetOf(a: string, b: string): boolean {
  if (b.startsWith('*')) {
    if (a.startsWith('*')) return a.slice(1).endsWith(b.slice(1));
    return a.endsWith(b.slice(1));
  }
  return !a.startsWith('*') && a === b;
}

/** Is `n` prime? Used for maglev table sizes (< 5000011, so trial division is cheap). */
export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  if (n % 2 === 0) return n === 2;
  for (let i = 3; i * i <= n; i += 2) if (n % i === 0) return false;
  return true;
}
