/**
 * Route-match compilation: each `RouteMatch` becomes one predicate over a RequestView, built
 * once per config version. Semantics are Istio's: blocks ORed, fields ANDed, header names
 * lowercase, `{present: true}` for `{}`, `ignoreUriCase` only for uri exact/prefix, regex = RE2
 * full match, `withoutHeaders` negated.
 */
import type { HeaderMatch, RouteMatch, StringMatch } from '../../pkg/proxyconfig/types.js';
import { compileFullMatch } from './regex.js';

/** What matching may look at. Built lazily per request by the listener; fields are read-only here. */
export interface RequestView {
  method: string;
  /** Path without the query string, normalized per the mesh's pathNormalization (router/path.ts). */
  path: string;
  /** Raw query string without '?', '' when absent. */
  query: string;
  /** The origin-form target forwarded upstream: `path`, then the query exactly as received. */
  target: string;
  /** Host/authority (may include a port): Host, or the absolute-form target's authority. */
  authority: string;
  scheme: string;
  /** Port the request was addressed to. */
  port: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed query; filled on first use. */
  queryMap?: Map<string, string>;
}

export type Predicate = (v: RequestView) => boolean;
type StringTest = (s: string) => boolean;

export function compileStringMatch(m: StringMatch, ignoreCase = false): StringTest {
  if ('exact' in m) {
    const want = ignoreCase ? m.exact.toLowerCase() : m.exact;
    return ignoreCase ? (s) => s.toLowerCase() === want : (s) => s === want;
  }
  if ('prefix' in m) {
    const want = ignoreCase ? m.prefix.toLowerCase() : m.prefix;
    return ignoreCase ? (s) => s.toLowerCase().startsWith(want) : (s) => s.startsWith(want);
  }
  const re = compileFullMatch(m.regex);
  return (s) => re.test(s);
}

function headerValue(v: RequestView, name: string): string | undefined {
  const raw = v.headers[name];
  if (raw === undefined) return undefined;
  return typeof raw === 'string' ? raw : raw.join(',');
}

/** Parses the query once per request (first rule that needs it). */
export function queryParam(v: RequestView, name: string): string | undefined {
  if (v.queryMap === undefined) {
    const map = new Map<string, string>();
    if (v.query !== '') {
      for (const part of v.query.split('&')) {
        const eq = part.indexOf('=');
        const k = eq < 0 ? part : part.slice(0, eq);
        if (!map.has(k)) map.set(safeDecode(k), eq < 0 ? '' : safeDecode(part.slice(eq + 1)));
      }
    }
    v.queryMap = map;
  }
  return v.queryMap.get(name);
}

function safeDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s; // malformed escapes compare literally instead of failing the request
  }
}

function compileKeyed(
  entries: Record<string, HeaderMatch>,
  get: (v: RequestView, name: string) => string | undefined,
  negate: boolean,
): Predicate[] {
  const out: Predicate[] = [];
  for (const [rawName, m] of Object.entries(entries)) {
    const name = get === headerValue ? rawName.toLowerCase() : rawName;
    if ('present' in m) {
      out.push(negate ? (v) => get(v, name) === undefined : (v) => get(v, name) !== undefined);
      continue;
    }
    const test = compileStringMatch(m);
    out.push(
      negate
        ? (v) => {
            const s = get(v, name);
            return s === undefined || !test(s);
          }
        : (v) => {
            const s = get(v, name);
            return s !== undefined && test(s);
          },
    );
  }
  return out;
}

/** Header keys Istio ignores inside `headers` (they are separate match fields). */
const PSEUDO_HEADER_KEYS = new Set(['uri', 'scheme', 'method', 'authority']);

function withoutPseudo(h: Record<string, HeaderMatch>): Record<string, HeaderMatch> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !PSEUDO_HEADER_KEYS.has(k.toLowerCase())));
}

/** Strips the port from an authority, for matching and host lookup. */
export function hostOnly(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

export function compileRouteMatch(m: RouteMatch): Predicate {
  const preds: Predicate[] = [];
  if (m.uri) {
    const t = compileStringMatch(m.uri, m.ignoreUriCase === true && !('regex' in m.uri));
    preds.push((v) => t(v.path));
  }
  if (m.method) {
    const t = compileStringMatch(m.method);
    preds.push((v) => t(v.method));
  }
  if (m.scheme) {
    const t = compileStringMatch(m.scheme);
    preds.push((v) => t(v.scheme));
  }
  if (m.authority) {
    const t = compileStringMatch(m.authority);
    preds.push((v) => t(v.authority));
  }
  if (m.port !== undefined) {
    const port = m.port;
    preds.push((v) => v.port === port);
  }
  if (m.headers) preds.push(...compileKeyed(withoutPseudo(m.headers), headerValue, false));
  if (m.withoutHeaders) preds.push(...compileKeyed(withoutPseudo(m.withoutHeaders), headerValue, true));
  if (m.queryParams) preds.push(...compileKeyed(m.queryParams, queryParam, false));
  return all(preds);
}

function all(preds: Predicate[]): Predicate {
  if (preds.length === 0) return () => true;
  if (preds.length === 1) return preds[0]!;
  if (preds.length === 2) {
    const [a, b] = preds as [Predicate, Predicate];
    return (v) => a(v) && b(v);
  }
  return (v) => {
    for (let i = 0; i < preds.length; i++) if (!preds[i]!(v)) return false;
    return true;
  };
}

/** ORs match blocks; `null` means the route matches every request (no per-request call at all). */
export function compileMatches(matches: RouteMatch[] | undefined): {
  pred: Predicate | null;
  names: (string | undefined)[];
} {
  if (!matches || matches.length === 0) return { pred: null, names: [] };
  const preds = matches.map(compileRouteMatch);
  const names = matches.map((m) => m.name);
  if (preds.length === 1) return { pred: preds[0]!, names };
  return {
    pred: (v) => {
      for (let i = 0; i < preds.length; i++) if (preds[i]!(v)) return true;
      return false;
    },
    names,
  };
}

/** Index of the first match block that matches, for Explain (not on the hot path). */
export function whichMatch(matches: RouteMatch[] | undefined, v: RequestView): number {
  if (!matches || matches.length === 0) return -1;
  for (let i = 0; i < matches.length; i++) if (compileRouteMatch(matches[i]!)(v)) return i;
  return -1;
}
