/**
 * Size and cost guards applied before any rule runs, so hostile or broken input (a deeply nested
 * document, millions of nodes, thousands of regexes) gets a clear error instead of a stack
 * overflow or a long stall.
 */
import { regexCost } from './regex-cost.js';

/** Istio objects nest about 12 levels deep; 100 leaves room for any real config. */
export const MAX_DEPTH = 100;
/** Well above any real object (a 1 MiB direct-response body is one node). */
export const MAX_NODES = 200_000;

export type ShapeProblem = { kind: 'depth'; limit: number } | { kind: 'nodes'; limit: number };

/** Iterative walk (no recursion, so no stack overflow however deep the input is). */
export function checkShape(
  value: unknown,
  maxDepth = MAX_DEPTH,
  maxNodes = MAX_NODES,
): ShapeProblem | undefined {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  let nodes = 0;
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (++nodes > maxNodes) return { kind: 'nodes', limit: maxNodes };
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) return { kind: 'depth', limit: maxDepth };
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) stack.push({ v: c, depth: depth + 1 });
  }
  return undefined;
}

/**
 * Cost units (an upper-bound estimate, about a microsecond of a quiet core each; see
 * bench/admission/cost.ts) per piece of work validation does. Schema and rules per value; every
 * regex compiled (regex-cost.ts); Istio's overlapping-prefix check compares every pair of
 * `uri.prefix` matches; long strings go through the schema's patterns.
 */
const NODE_UNITS = 3;
const STRING_CHARS_PER_UNIT = 64;
/** A pair of prefix matches costs ~0.03 µs, plus comparing the prefixes (~100-600 characters a µs). */
const PREFIX_PAIR_UNITS = 0.1;
const PREFIX_CHARS_PER_UNIT = 100;

export interface CostEstimate {
  /** Total estimated cost. */
  units: number;
  /** JSON values walked (up to the node limit). */
  nodes: number;
  regexes: number;
  regexUnits: number;
  prefixMatches: number;
  /** Set when the object is over the depth or node limit: validation refuses it outright. */
  shape?: ShapeProblem;
}

interface Visit {
  v: unknown;
  depth: number;
  key: string | undefined;
  parentKey: string | undefined;
}

/**
 * What validating `value` will cost, in one iterative walk that stops at the same depth and node
 * limits as `checkShape` (so it is bounded itself, and never recurses). Regexes are the strings
 * the VirtualService rules compile: every `regex` field and `uriRegexRewrite.match`.
 */
export function estimateCost(value: unknown, maxDepth = MAX_DEPTH, maxNodes = MAX_NODES): CostEstimate {
  const est: CostEstimate = { units: 0, nodes: 0, regexes: 0, regexUnits: 0, prefixMatches: 0 };
  let stringChars = 0;
  let prefixChars = 0;
  const stack: Visit[] = [{ v: value, depth: 0, key: undefined, parentKey: undefined }];
  while (stack.length > 0) {
    const { v, depth, key, parentKey } = stack.pop()!;
    if (++est.nodes > maxNodes) {
      est.shape = { kind: 'nodes', limit: maxNodes };
      break;
    }
    if (typeof v === 'string') {
      stringChars += v.length;
      if (key === 'regex' || (key === 'match' && parentKey === 'uriRegexRewrite')) {
        est.regexes++;
        est.regexUnits += regexCost(v);
      } else if (key === 'prefix' && parentKey === 'uri') {
        est.prefixMatches++;
        prefixChars += v.length;
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) {
      est.shape = { kind: 'depth', limit: maxDepth };
      break;
    }
    if (Array.isArray(v)) {
      for (const c of v) stack.push({ v: c, depth: depth + 1, key, parentKey });
    } else {
      for (const [k, c] of Object.entries(v as Record<string, unknown>))
        stack.push({ v: c, depth: depth + 1, key: k, parentKey: key });
    }
  }
  const prefixPairs = (est.prefixMatches * (est.prefixMatches - 1)) / 2;
  const meanPrefix = est.prefixMatches === 0 ? 0 : prefixChars / est.prefixMatches;
  est.units = Math.ceil(
    est.nodes * NODE_UNITS +
      est.regexUnits +
      stringChars / STRING_CHARS_PER_UNIT +
      prefixPairs * (PREFIX_PAIR_UNITS + meanPrefix / PREFIX_CHARS_PER_UNIT),
  );
  return est;
}
