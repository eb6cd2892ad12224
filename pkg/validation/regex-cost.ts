/**
 * What compiling a regex with re2js costs, estimated from its text in one linear scan, without
 * compiling it: the webhook decides from this (pkg/validation/limits.ts `estimateCost`) whether
 * an object is validated inline, on the worker, or refused. One unit is meant as about one
 * microsecond of a quiet core; `bench/admission/regex-cost.ts` prints estimate against measured
 * time for typical and hostile families, and the estimate must stay above the measurement.
 *
 * Where re2js spends its time (measured, Node 26, re2js 2.10):
 *  - the compiled program: `x{1000}` is a thousand copies of x, nested counts multiply (RE2
 *    allows a product up to 1000): ~1-4 µs per instruction;
 *  - Unicode classes (`\pL`, `\PN`): each builds a table of hundreds of ranges, ~50-200 µs;
 *  - case folding (`(?i)`) of a class range rune by rune, ~0.07 µs per rune: one
 *    `(?i)[\x{100}-\x{10000}]` is ~5 ms.
 * Anything longer than the regex length limit is refused before compiling: it costs its scan.
 */
import { MAX_REGEX_LENGTH } from './primitives.js';
import { quantifierAt, skipClass, skipEscape, skipGroupOpen } from './regex-shape.js';

/** Fixed cost of one compile (parser, program, and the validator's shape scan). */
export const REGEX_BASE_UNITS = 100;
/** Per instruction of the expanded program. */
const INSTRUCTION_UNITS = 4;
/** Per `\p`/`\P` class. */
const UNICODE_CLASS_UNITS = 200;
/** Runes of a case-folded range per unit. */
const FOLDED_RUNES_PER_UNIT = 10;
/** RE2's own ceiling on nested repetition: a valid regex never expands a piece more than this. */
const MAX_REPEAT = 1000;

/** Estimated cost, in units, of checking one regex value. */
export function regexCost(re: string): number {
  if (re.length > MAX_REGEX_LENGTH) return re.length;
  const foldCase = /\(\?[a-zA-Z]*i/.test(re);
  let units = REGEX_BASE_UNITS + re.length;
  /** Program size of the enclosing groups' pieces so far, innermost last. */
  const groups: number[] = [];
  let size = 0;
  let i = 0;
  while (i < re.length) {
    const c = re[i];
    let pieceSize = 1;
    let next = i + 1;
    if (c === '\\') {
      next = skipEscape(re, i);
      if (re[i + 1] === 'p' || re[i + 1] === 'P') units += UNICODE_CLASS_UNITS;
    } else if (c === '[') {
      next = Math.min(skipClass(re, i), re.length);
      units += classUnits(re.slice(i + 1, next - 1), foldCase);
    } else if (c === '(') {
      const open = skipGroupOpen(re, i);
      if (!open.isFlagsOnly) {
        groups.push(size);
        size = 0;
      }
      i = open.next;
      continue;
    } else if (c === ')') {
      pieceSize = size + 1;
      size = groups.pop() ?? 0;
    } else if (c === '|') {
      size++;
      i++;
      continue;
    }
    const q = quantifierAt(re, next);
    size += q ? pieceSize * copies(q.min, q.max) + 1 : pieceSize;
    size = Math.min(size, MAX_REPEAT * re.length);
    i = next + (q?.length ?? 0);
  }
  for (const outer of groups) size += outer; // unbalanced: re2js refuses it, the estimate stays finite
  return units + INSTRUCTION_UNITS * Math.min(size, MAX_REPEAT * re.length);
}

/** How many copies of a piece a quantifier makes (`x*` is one copy and a loop). */
function copies(min: number, max: number): number {
  const n = max === Infinity ? Math.max(min, 1) : Math.max(max, 1);
  return Math.min(n, MAX_REPEAT);
}

/** Unicode classes inside `[...]`, and under case folding the width of every range. */
function classUnits(body: string, foldCase: boolean): number {
  let units = 0;
  let i = 0;
  let prev: number | undefined;
  while (i < body.length) {
    if (body[i] === '\\') {
      const end = skipEscape(body, i);
      if (body[i + 1] === 'p' || body[i + 1] === 'P') units += UNICODE_CLASS_UNITS;
      prev = escapedRune(body.slice(i, end));
      i = end;
      continue;
    }
    if (body[i] === '-' && prev !== undefined && i + 1 < body.length) {
      const hi =
        body[i + 1] === '\\'
          ? escapedRune(body.slice(i + 1, skipEscape(body, i + 1)))
          : body.codePointAt(i + 1);
      if (foldCase && hi !== undefined && hi > prev) units += Math.ceil((hi - prev) / FOLDED_RUNES_PER_UNIT);
      i += body[i + 1] === '\\' ? skipEscape(body, i + 1) - i : String.fromCodePoint(hi ?? 0).length + 1;
      prev = undefined;
      continue;
    }
    prev = body.codePointAt(i);
    i += prev !== undefined && prev > 0xffff ? 2 : 1;
  }
  return units;
}

/** The rune of a literal escape (`\x41`, `\x{1F600}`, `\-`, `\.`), undefined for class escapes. */
function escapedRune(esc: string): number | undefined {
  const hex = /^\\x(?:\{([0-9a-fA-F]{1,6})\}|([0-9a-fA-F]{2}))$/.exec(esc);
  if (hex) return parseInt(hex[1] ?? hex[2] ?? '0', 16);
  if (esc.length === 2 && /[^A-Za-z0-9]/.test(esc[1]!)) return esc.codePointAt(1);
  return undefined;
}
