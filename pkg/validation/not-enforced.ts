/**
 * The "accepted but not enforced" warnings: each entry of pkg/api/not-enforced.ts present in an
 * object becomes one warning with the concrete path (`spec.http[2].corsPolicy`). validateObject
 * adds them, so the webhook (inline and on its worker pool), `weftctl validate` and
 * `weftctl analyze` print exactly the same lines.
 *
 * Bounded: at most MAX_NOT_ENFORCED_WARNINGS per object, then one line counting the rest (an
 * object with 5,000 routes using corsPolicy gets 10 lines, not 5,000). The walk only follows the
 * table's paths (no recursion, no allocation per visited node beyond the path), so its cost is
 * linear in the part of the object the paths reach.
 */
import { NOT_ENFORCED, type NotEnforcedEntry, type NotEnforcedValue } from '../api/not-enforced.js';
import { formatPath, type PathSegment, type Report } from './report.js';

export const MAX_NOT_ENFORCED_WARNINGS = 10;

const byKind = new Map<string, NotEnforcedEntry[]>();
for (const e of NOT_ENFORCED) byKind.set(e.kind, [...(byKind.get(e.kind) ?? []), e]);

export function notEnforcedEntries(kind: string): readonly NotEnforcedEntry[] {
  return byKind.get(kind) ?? [];
}

/** `(issue #15)`, `(not planned yet)`; EnvoyFilter's says never. */
function planText(e: NotEnforcedEntry): string {
  if (e.plan === 'never') return 'never enforced by weft';
  if (e.plan === 'unplanned') return 'not enforced by weft (not planned yet)';
  return `not enforced by weft yet (issue #${e.plan})`;
}

/** The warning's message (its path is the concrete field, or `(document)` for a whole kind). */
export function notEnforcedMessage(e: NotEnforcedEntry): string {
  return e.paths === undefined
    ? `${e.kind} is accepted but ${planText(e)}: ${e.reason}`
    : `accepted but ${planText(e)}: ${e.reason}`;
}

/** Splits `spec.http[*].match[*].sourceLabels` into `spec`, `http`, `[*]`, `match`, `[*]`, `sourceLabels`. */
export function pathSegments(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[]*)((\[\*\])*)$/.exec(part);
    if (!m) throw new Error(`bad not-enforced path ${path}`);
    if (m[1]) out.push(m[1]);
    for (let i = 0; i < m[2]!.length / 3; i++) out.push('[*]');
  }
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function sameValue(a: unknown, b: NotEnforcedValue): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a.toUpperCase() === b.toUpperCase();
  return a === b;
}

/** Every concrete path where `segments` leads to a value the entry warns about. */
function matches(
  root: unknown,
  segments: readonly string[],
  e: NotEnforcedEntry,
  out: PathSegment[][],
): void {
  const stack: { value: unknown; depth: number; path: PathSegment[] }[] = [
    { value: root, depth: 0, path: [] },
  ];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (depth === segments.length) {
      if (value === undefined || value === null) continue;
      if (e.values && !e.values.some((v) => sameValue(value, v))) continue;
      if (e.except?.some((v) => sameValue(value, v))) continue;
      out.push(path);
      continue;
    }
    const seg = segments[depth]!;
    if (seg === '[*]') {
      if (!Array.isArray(value)) continue;
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], depth: depth + 1, path: [...path, i] });
    } else if (seg === '*') {
      if (!isObj(value)) continue;
      for (const k of Object.keys(value).reverse())
        stack.push({ value: value[k], depth: depth + 1, path: [...path, k] });
    } else if (isObj(value)) {
      const child = value[seg];
      const last = depth === segments.length - 1;
      if ((child === undefined || child === null) && last && e.absentMeans !== undefined)
        stack.push({ value: e.absentMeans, depth: depth + 1, path: [...path, seg] });
      else stack.push({ value: child, depth: depth + 1, path: [...path, seg] });
    }
  }
}

export interface NotEnforcedHit {
  entry: NotEnforcedEntry;
  /** Concrete path segments (`['spec', 'http', 0, 'corsPolicy']`); `['(document)']` for a whole kind. */
  segments: PathSegment[];
  /** The same, formatted: `spec.http[0].corsPolicy`, `(document)`. */
  path: string;
}

/** Every entry present in `obj` (an object of `kind`), in table order then document order. */
export function findNotEnforced(kind: string, obj: unknown): NotEnforcedHit[] {
  const hits: NotEnforcedHit[] = [];
  for (const entry of notEnforcedEntries(kind)) {
    if (entry.paths === undefined) {
      hits.push({ entry, segments: ['(document)'], path: '(document)' });
      continue;
    }
    const found: PathSegment[][] = [];
    for (const p of entry.paths) matches(obj, pathSegments(p), entry, found);
    for (const segments of found) hits.push({ entry, segments, path: formatPath(segments) });
  }
  return hits;
}

/** Adds the warnings for `obj` to the report: the first MAX_NOT_ENFORCED_WARNINGS, then a count. */
export function reportNotEnforced(kind: string, obj: unknown, report: Report): void {
  const hits = findNotEnforced(kind, obj);
  for (const h of hits.slice(0, MAX_NOT_ENFORCED_WARNINGS))
    report.warn(h.segments, notEnforcedMessage(h.entry), `notEnforced.${h.entry.id}`);
  const more = hits.length - MAX_NOT_ENFORCED_WARNINGS;
  if (more > 0)
    report.warn(
      ['(document)'],
      `and ${more} more accepted but not enforced field${more === 1 ? '' : 's'} (docs/not-enforced.md lists them all)`,
      'notEnforced.more',
    );
}
