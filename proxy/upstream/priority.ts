/**
 * Envoy's priority levels and locality weights (arch_overview/upstream/load_balancing/priority,
 * locality_weight), for endpoints the control plane gave a `priority` / `localityWeight`:
 *
 * - a priority's health is min(100, 1.4 × its healthy percentage) (overprovisioning factor 1.4,
 *   integer percent as Envoy computes it);
 * - priorities take load in order, each as much as its health allows, until 100 % is given; when
 *   the healths sum to less than 100 they are scaled up to 100 (normalized total health); when
 *   every priority is at 0 all load goes to priority 0;
 * - within a priority, a locality with a weight is chosen with probability weight × availability,
 *   availability being min(1, 1.4 × its healthy share).
 */

/** Envoy's default overprovisioning factor (140 %), which Istio keeps. */
export const OVERPROVISIONING_PERCENT = 140;

/** min(100, 1.4 × healthy/total), in whole percent; 0 for an empty level. */
export function levelHealth(healthy: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(100, Math.floor((OVERPROVISIONING_PERCENT * healthy) / total));
}

/** The percent of requests each priority gets (sums to 100), from per-priority healthy and total counts. */
export function priorityLoad(healthy: readonly number[], total: readonly number[]): number[] {
  const health = total.map((t, i) => levelHealth(healthy[i] ?? 0, t));
  const load = health.map(() => 0);
  if (load.length === 0) return load;
  const normalizedTotal = Math.min(
    100,
    health.reduce((a, b) => a + b, 0),
  );
  if (normalizedTotal === 0) {
    load[0] = 100;
    return load;
  }
  let remaining = 100;
  for (let i = 0; i < health.length; i++) {
    load[i] = Math.min(remaining, Math.floor((health[i]! * 100) / normalizedTotal));
    remaining -= load[i]!;
  }
  // rounding leftovers go to the first priority with any health, as in Envoy
  if (remaining > 0) load[health.findIndex((h) => h > 0)]! += remaining;
  return load;
}

/** Index into `load` for a draw in [0, 1): the priority a request goes to. */
export function choosePriority(load: readonly number[], draw: number): number {
  let acc = 0;
  const point = draw * 100;
  for (let i = 0; i < load.length; i++) {
    acc += load[i]!;
    if (point < acc) return i;
  }
  // draw rounding or trailing zero-load levels: the last level with load
  for (let i = load.length - 1; i >= 0; i--) if (load[i]! > 0) return i;
  return 0;
}

/** Effective locality weights: weight × min(1, 1.4 × healthy/total). */
export function effectiveLocalityWeights(
  localities: readonly { weight: number; healthy: number; total: number }[],
): number[] {
  return localities.map((l) => (l.weight * levelHealth(l.healthy, l.total)) / 100);
}

/** Index for a draw in [0, 1) over weights; -1 when every weight is 0. */
export function chooseWeighted(weights: readonly number[], draw: number): number {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum <= 0) return -1;
  let point = draw * sum;
  for (let i = 0; i < weights.length; i++) {
    if (point < weights[i]!) return i;
    point -= weights[i]!;
  }
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
  return -1;
}
