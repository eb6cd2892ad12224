/**
 * RE2 full-match regexes, as Istio specifies them (`\d+$` matches "123", not "a123").
 *
 * re2js is linear-time but costs ~0.3–0.8 µs per test against ~0.05 µs for V8's RegExp
 * (bench/proxy/micro.ts). V8 backtracks, so a pattern only goes to RegExp when a conservative
 * scanner proves (1) RE2 and JS agree on its meaning and (2) backtracking is bounded: anchored
 * at the start, no quantified group, a small product of bounded repeats and alternatives, and
 * every unbounded quantifier but the last one *guarded*: followed by a literal its atom cannot
 * match (e.g. a slash after `[0-9]+`), so only its maximal extent can continue and it is entered
 * once. The last one may be anything: entered once, it backtracks at most n steps. Worst case
 * O(n × product × quantifiers). Anything else (e.g. `.*x.*`) runs on re2js.
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import { WeftError } from '../../pkg/errors/index.js';

let re2js: typeof RE2JS | undefined;
/**
 * re2js, loaded on the first regex: ~3 MB RSS that a proxy whose routes have no regex never
 * needs (docs/proxy-modes.md#memory). Its CommonJS build, so compiling stays synchronous.
 */
function RE2(): typeof RE2JS {
  re2js ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return re2js;
}

export interface FullMatcher {
  test(input: string): boolean;
  readonly engine: 'js' | 're2';
}

const MAX_BOUNDED_PRODUCT = 1024;
/** Escapes whose meaning is the same in RE2 and JS (ASCII classes and escaped metacharacters). */
const SAFE_ESCAPES = new Set([...'dDwWbB.\\/-_^$*+?()[]{}|:=!#&~@%,;\'"<> '.split('')]);
/** RE2's `\s` is [\t\n\f\r ]; JS's includes \v and Unicode spaces. */
const ESCAPE_TRANSLATIONS: Record<string, string> = {
  s: '[\\t\\n\\f\\r ]',
  S: '[^\\t\\n\\f\\r ]',
  t: '\\t',
  n: '\\n',
  r: '\\r',
  f: '\\f',
};

interface Scan {
  out: string;
  /** Guard verdict of each unbounded quantifier, in order. */
  guards: boolean[];
  boundedProduct: number;
}

const META = new Set([...'\\[](){}|^$.*+?'.split('')]);

/** The literal character the token at `i` matches, or null if it is not a single literal. */
function literalAt(p: string, i: number): string | null {
  const ch = p[i]!;
  if (ch === '\\') {
    const e = p[i + 1];
    return e !== undefined && !/[a-zA-Z0-9]/.test(e) ? e : null;
  }
  return META.has(ch) ? null : ch;
}

/** Reads a `{n}`, `{n,}` or `{n,m}` at `i`; returns [maxOrInfinity, nextIndex] or null. */
function readBraces(p: string, i: number): [number, number] | null {
  const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(p.slice(i));
  if (!m) return null;
  const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
  return [max, i + m[0].length];
}

/** Copies a character class `[...]` if every member is safe; returns the next index or -1. */
function scanClass(p: string, i: number, s: Scan): number {
  let j = i + 1;
  let body = '[';
  if (p[j] === '^') body += p[j++];
  if (p[j] === ']') body += '\\' + p[j++];
  for (; j < p.length && p[j] !== ']'; j++) {
    const ch = p[j]!;
    if (ch === '[') return -1; // POSIX classes [[:alpha:]] differ
    if (ch === '\\') {
      const e = p[++j];
      if (e === undefined) return -1;
      if (ESCAPE_TRANSLATIONS[e] !== undefined && e !== 's' && e !== 'S') body += ESCAPE_TRANSLATIONS[e];
      else if (SAFE_ESCAPES.has(e) && e !== 'b' && e !== 'B') body += '\\' + e;
      else return -1;
    } else body += ch;
  }
  if (j >= p.length) return -1;
  s.out += body + ']';
  return j + 1;
}

/** Translates `p` into an equivalent, backtracking-bounded JS pattern, or returns null. */
export function toSafeJs(p: string, ignoreCase = false): string | null {
  if (/[^\x20-\x7e]/.test(p)) return null;
  const s: Scan = { out: '', guards: [], boundedProduct: 1 };
  let lastWasGroup = false;
  let haveAtom = false;
  let atomStart = 0;
  /** JS text of the atom of the last unbounded quantifier, until the next token decides its guard. */
  let pending: string | null = null;
  /** Alternatives per open group (index 0: top level); each is another way into what follows. */
  const alts: number[] = [1];
  for (let i = 0; i < p.length;) {
    const ch = p[i]!;
    if (ch === '*' || ch === '+' || ch === '?' || ch === '{') {
      let max: number;
      let next: number;
      if (ch === '{') {
        const b = readBraces(p, i);
        if (!b) return null;
        [max, next] = b;
      } else {
        max = ch === '?' ? 1 : Infinity;
        next = i + 1;
      }
      if (!haveAtom || lastWasGroup) return null;
      if (max === Infinity) pending = s.out.slice(atomStart);
      else s.boundedProduct *= max + 1;
      s.out += p.slice(i, next);
      if (p[next] === '?') s.out += p[next++]; // lazy form: same set of matches for full match
      if (p[next] === '*' || p[next] === '+' || p[next] === '{' || p[next] === '?') return null;
      haveAtom = false;
      i = next;
      continue;
    }
    if (pending !== null) {
      const lit = literalAt(p, i);
      s.guards.push(lit !== null && !new RegExp(`^${pending}$`, ignoreCase ? 'iu' : 'u').test(lit));
      pending = null;
    }
    lastWasGroup = false;
    haveAtom = true;
    atomStart = s.out.length;
    if (ch === '\\') {
      const e = p[i + 1];
      if (e === undefined) return null;
      if (ESCAPE_TRANSLATIONS[e] !== undefined) s.out += ESCAPE_TRANSLATIONS[e];
      else if (SAFE_ESCAPES.has(e)) s.out += '\\' + e;
      else return null;
      i += 2;
    } else if (ch === '[') {
      i = scanClass(p, i, s);
      if (i < 0) return null;
    } else if (ch === '(') {
      if (p[i + 1] === '?') {
        if (p[i + 2] !== ':') return null; // flags, named groups, lookaround
        s.out += '(?:';
        i += 3;
      } else {
        s.out += '(';
        i += 1;
      }
      alts.push(1);
      haveAtom = false;
    } else if (ch === ')') {
      if (alts.length < 2) return null;
      s.boundedProduct *= alts.pop()!;
      s.out += ')';
      lastWasGroup = true;
      i += 1;
    } else if (ch === '.') {
      s.out += '[^\\n]'; // RE2 `.` excludes only \n; JS `.` also excludes \r, \u2028, \u2029
      i += 1;
    } else if (ch === '|' || ch === '^' || ch === '$') {
      if (ch === '|') alts[alts.length - 1]!++;
      s.out += ch;
      haveAtom = ch !== '|';
      i += 1;
    } else if (ch === ']' || ch === '}') {
      return null;
    } else {
      s.out += ch;
      i += 1;
    }
  }
  if (pending !== null) s.guards.push(false); // the last quantifier: no guard needed
  if (s.guards.slice(0, -1).some((g) => !g)) return null;
  if (s.boundedProduct * alts[0]! > MAX_BOUNDED_PRODUCT) return null;
  return s.out;
}

class Re2Matcher implements FullMatcher {
  readonly engine = 're2' as const;
  constructor(private readonly re: RE2JS) {}
  test(input: string): boolean {
    return this.re.testExact(input);
  }
}

class JsMatcher implements FullMatcher {
  readonly engine = 'js' as const;
  constructor(private readonly re: RegExp) {}
  test(input: string): boolean {
    return this.re.test(input);
  }
}

/** Splits a leading `(?i)` (the only flag form we translate) from the pattern. */
function splitFlags(pattern: string): { body: string; ignoreCase: boolean } {
  return pattern.startsWith('(?i)')
    ? { body: pattern.slice(4), ignoreCase: true }
    : { body: pattern, ignoreCase: false };
}

/** Compiles an RE2 pattern for full-string matching; throws WEFT_PROXY_CONFIG_INVALID on bad syntax. */
export function compileFullMatch(
  pattern: string,
  opts: { ignoreCase?: boolean; forceEngine?: 'js' | 're2' } = {},
): FullMatcher {
  let re2: RE2JS;
  try {
    re2 = RE2().compile(pattern, opts.ignoreCase ? RE2().CASE_INSENSITIVE : 0);
  } catch (err) {
    throw new WeftError(
      'WEFT_PROXY_CONFIG_INVALID',
      `invalid RE2 regex ${JSON.stringify(pattern)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (opts.forceEngine === 're2') return new Re2Matcher(re2);
  const { body, ignoreCase } = splitFlags(pattern);
  const js = toSafeJs(body, ignoreCase || opts.ignoreCase === true);
  if (js !== null) {
    try {
      return new JsMatcher(new RegExp(`^(?:${js})$`, ignoreCase || opts.ignoreCase ? 'iu' : 'u'));
    } catch {
      // JS rejected a form RE2 accepts (e.g. an escape invalid under the u flag): use RE2.
    }
  }
  return new Re2Matcher(re2);
}

/**
 * RE2 regex substitution as Envoy's `regex_rewrite` does it: every match is replaced, `\1`..`\9`
 * refer to groups. Always re2js (rare path: only routes with uriRegexRewrite).
 */
export function compileRegexRewrite(match: string, rewrite: string): (input: string) => string {
  let re2: RE2JS;
  try {
    re2 = RE2().compile(match);
  } catch (err) {
    throw new WeftError(
      'WEFT_PROXY_CONFIG_INVALID',
      `invalid RE2 regex ${JSON.stringify(match)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const replacement = rewrite.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
  return (input: string) => re2.matcher(input).replaceAll(replacement);
}
