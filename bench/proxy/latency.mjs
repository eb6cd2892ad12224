/* global process, performance, setTimeout */
// What the open-loop load generators (loadgen.mjs, loadgen-h2.mjs) share: requests fired at their
// scheduled slots, latency counted from the slot (coordinated omission corrected, as wrk2 does),
// one percentile definition, and the one JSON line they print.

/** The p-th percentile (0-100) of ascending `sorted`: nearest rank, rounded down; NaN when empty. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Calls `fire(scheduled, n)` for each of rate × seconds slots 1000/rate ms apart, at its slot (a
 * late tick fires the slots it missed at once, each with its own time), then waits up to 2 s for
 * `answered()` to reach the total. Resolves with the total and the seconds since the first slot.
 */
export async function openLoop(rate, seconds, fire, answered) {
  const start = performance.now();
  const interval = 1000 / rate;
  const total = Math.floor(rate * seconds);
  let sent = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        fire(start + sent * interval, sent);
        sent++;
      }
      if (sent >= total) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  // let the last responses arrive
  const deadline = performance.now() + 2000;
  while (answered() < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return { total, elapsed: (performance.now() - start) / 1000 };
}

/** Writes the run's JSON line on stdout (latencies in ms; bench/proxy/harness.ts reads it) and exits. */
export function report({ sent, elapsed, latencies, errors, non2xx }) {
  const sorted = [...latencies].sort((a, b) => a - b);
  process.stdout.write(
    JSON.stringify({
      sent,
      completed: sorted.length,
      rps: sorted.length / elapsed,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      max: sorted.at(-1),
      errors,
      non2xx,
    }) + '\n',
  );
  process.exit(0);
}
