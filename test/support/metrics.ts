/** Reading one value of a weftd metric in tests (prom-client's text format). */
import type { WeftdMetrics } from '../../controlplane/metrics.js';

/** The value of `name{labels}` (labels as written, e.g. `result="ack"`); 0 while it has none. */
export async function metricValue(metrics: WeftdMetrics, name: string, labels: string): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
