/**
 * Size guards applied before any rule runs, so hostile or broken input (a deeply nested
 * document, millions of nodes) gets a clear error instead of a stack overflow or a long stall.
 */

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
