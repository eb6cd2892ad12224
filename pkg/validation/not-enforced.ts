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

const segmentCache = new Map<string, string[]>();

/** Splits `spec.http[*].match[*].sourceLabels` into `spec`, `http`, `[*]`, `match`, `[*]`, `sourceLabels`. */
export function pathSegments(path: string): string[] {
  let segs = segmentCache.get(path);
  if (!segs) {
    segs = splitPath(path);
    segmentCache.set(path, segs);
  }
  return segs;
}

function splitPath(path: string): string[] {
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

export interface NotEnforcedHit {
  entry: NotEnforcedEntry;
  /** Concrete path segments (`['spec', 'http', 0, 'corsPolicy']`); `['(document)']` for a whole kind. */
  segments: PathSegment[];
  /** The same, formatted: `spec.http[0].corsPolicy`, `(document)`. */
  path: string;
}

/** One kind's paths as a tree, so a shared prefix (`spec.trafficPolicy`) is walked once. */
interface PathNode {
  next: Map<string, PathNode>;
  /** Entries whose path ends here. */
  ends: NotEnforcedEntry[];
}

const trees = new Map<string, PathNode>();

function treeFor(kind: string): PathNode {
  let root = trees.get(kind);
  if (root) return root;
  root = { next: new Map(), ends: [] };
  for (const e of notEnforcedEntries(kind)) {
    for (const p of e.paths ?? []) {
      let node = root;
      for (const seg of pathSegments(p)) {
        let child = node.next.get(seg);
        if (!child) node.next.set(seg, (child = { next: new Map(), ends: [] }));
        node = child;
      }
      node.ends.push(e);
    }
  }
  trees.set(kind, root);
  return root;
}

/** Every entry present in `obj` (an object of `kind`), in table order then document order. */
export function findNotEnforced(kind: string, obj: unknown): NotEnforcedHit[] {
  const entries = notEnforcedEntries(kind);
  const hits: NotEnforcedHit[] = [];
  for (const entry of entries)
    if (entry.paths === undefined) hits.push({ entry, segments: ['(document)'], path: '(document)' });
  const found: { entry: NotEnforcedEntry; segments: PathSegment[] }[] = [];
  // Iterative depth-first walk of the object along the tree (children pushed in reverse, so
  // they are visited in order); a named child that is absent is still visited, for absentMeans.
  const stack: { node: PathNode; value: unknown; path: PathSegment[] }[] = [
    { node: treeFor(kind), value: obj, path: [] },
  ];
  while (stack.length > 0) {
    const { node, value, path } = stack.pop()!;
    for (const e of node.ends) {
      const v = value === undefined || value === null ? e.absentMeans : value;
      if (v === undefined || v === null) continue;
      if (e.values && !e.values.some((x) => sameValue(v, x))) continue;
      if (e.except?.some((x) => sameValue(v, x))) continue;
      found.push({ entry: e, segments: path });
    }
    if (value === undefined || value === null) continue;
    const children = [...node.next.entries()].reverse();
    for (const [seg, child] of children) {
      if (seg === '[*]') {
        if (!Array.isArray(value)) continue;
        for (let i = value.length - 1; i >= 0; i--)
          stack.push({ node: child, value: value[i], path: [...path, i] });
      } else if (seg === '*') {
        if (!isObj(value)) continue;
        for (const k of Object.keys(value).reverse())
          stack.push({ node: child, value: value[k], path: [...path, k] });
      } else if (isObj(value)) {
        stack.push({ node: child, value: value[seg], path: [...path, seg] });
      }
    }
  }
  const order = new Map(entries.map((e, i) => [e, i]));
  found.sort((a, b) => order.get(a.entry)! - order.get(b.entry)!); // stable: document order kept
  for (const f of found) hits.push({ entry: f.entry, segments: f.segments, path: formatPath(f.segments) });
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
