/**
 * Finds the regexes that backtrack catastrophically: a repeated group that itself contains
 * unbounded repetition (`(a+)+`, `(.*,)*`, `(\w+\s?){2,}`), the classic ReDoS shape. RE2 (Go,
 * Envoy, re2js) runs them in linear time, so Istio admits them; weft rejects them anyway because
 * the nesting never changes what matches (`(a+)+` matches what `a+` does) and the same pattern
 * copied into an application, a log pipeline or a WAF can take exponential time.
 *
 * Input must already be valid RE2 syntax (`checkRegex` first); this is a structural scan, it
 * never runs the pattern.
 */

/**
 * An outer quantifier allowing more repetitions than this makes the nesting dangerous:
 * `(a+){2}` costs a backtracking engine n², `(a+){2,}` or `(a+){1,50}` explodes.
 */
const REPEAT_THRESHOLD = 10;

interface Frame {
  /** An unbounded quantifier (`*`, `+`, `{n,}`) occurs somewhere inside this group. */
  unbounded: boolean;
}

export interface Quantifier {
  /** Characters the quantifier takes, including a lazy `?` suffix. */
  length: number;
  min: number;
  max: number;
}

/** The quantifier at `i`, if any. */
export function quantifierAt(re: string, i: number): Quantifier | undefined {
  const c = re[i];
  let q: Quantifier | undefined;
  if (c === '*') q = { length: 1, min: 0, max: Infinity };
  else if (c === '+') q = { length: 1, min: 1, max: Infinity };
  else if (c === '?') q = { length: 1, min: 0, max: 1 };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(re.slice(i));
    if (m)
      q = {
        length: m[0].length,
        min: Number(m[1]),
        max: m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]),
      };
  }
  if (q && re[i + q.length] === '?') q.length++;
  return q;
}

/** Index just past a character class starting at `i` (`[`), honouring escapes and `[:alpha:]`. */
export function skipClass(re: string, i: number): number {
  let j = i + 1;
  if (re[j] === '^') j++;
  if (re[j] === ']') j++; // a leading ] is a literal
  while (j < re.length && re[j] !== ']') {
    if (re[j] === '\\') j += 2;
    else if (re.startsWith('[:', j)) j = re.indexOf(':]', j + 2) + 2 || re.length;
    else j++;
  }
  return j + 1;
}

/** Index just past an escape starting at `i` (`\`): `\pN`, `\p{Greek}`, `\Q...\E`, `\x{10FFFF}`. */
export function skipEscape(re: string, i: number): number {
  const c = re[i + 1];
  if ((c === 'p' || c === 'P' || c === 'x') && re[i + 2] === '{')
    return re.indexOf('}', i + 2) + 1 || re.length;
  if (c === 'x') return i + 4;
  if (c === 'p' || c === 'P') return i + 3;
  if (c === 'Q') {
    const end = re.indexOf('\\E', i + 2);
    return end < 0 ? re.length : end + 2;
  }
  return i + 2;
}

/** Index just past a group opener at `i` (`(`, `(?:`, `(?P<name>`, `(?<name>`, `(?i)`, `(?i:`). */
export function skipGroupOpen(re: string, i: number): { next: number; isFlagsOnly: boolean } {
  if (re[i + 1] !== '?') return { next: i + 1, isFlagsOnly: false };
  const named = /^\(\?P?<[^>]*>/.exec(re.slice(i));
  if (named) return { next: i + named[0].length, isFlagsOnly: false };
  const flags = /^\(\?[a-zA-Z-]*([:)])/.exec(re.slice(i));
  if (flags) return { next: i + flags[0].length, isFlagsOnly: flags[1] === ')' };
  return { next: i + 2, isFlagsOnly: false };
}

/**
 * The offending group (e.g. `(a+)+`) when `re` nests unbounded repetition inside a repeated
 * group; undefined otherwise.
 */
export function nestedRepetition(re: string): string | undefined {
  const stack: { frame: Frame; start: number }[] = [];
  let frame: Frame = { unbounded: false };
  let i = 0;
  while (i < re.length) {
    const c = re[i];
    let atomEnd: number;
    let closed: { frame: Frame; start: number } | undefined;
    if (c === '\\') atomEnd = skipEscape(re, i);
    else if (c === '[') atomEnd = skipClass(re, i);
    else if (c === '(') {
      const open = skipGroupOpen(re, i);
      if (!open.isFlagsOnly) {
        stack.push({ frame, start: i });
        frame = { unbounded: false };
      }
      i = open.next;
      continue;
    } else if (c === ')') {
      const parent = stack.pop();
      if (!parent) return undefined; // not valid RE2; checkRegex reports it
      closed = { frame, start: parent.start };
      frame = parent.frame;
      atomEnd = i + 1;
    } else atomEnd = i + 1;

    const q = quantifierAt(re, atomEnd);
    if (closed) {
      if (q && q.max > REPEAT_THRESHOLD && closed.frame.unbounded)
        return re.slice(closed.start, atomEnd + q.length);
      if (closed.frame.unbounded) frame.unbounded = true;
    }
    if (q && q.max === Infinity) frame.unbounded = true;
    i = atomEnd + (q?.length ?? 0);
  }
  return undefined;
}
