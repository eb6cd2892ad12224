/**
 * The webhook's Prometheus metrics. One registry per server instance (tests start several in
 * one process). prom-client's cost is fine here: a few hundred admissions a second at most.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  requests: Counter<'webhook' | 'kind' | 'operation' | 'result'>;
  duration: Histogram<'webhook'>;
  denials: Counter<'kind'>;
  injections: Counter<'result' | 'reason'>;
  validations: Counter<'placement'>;
}

/**
 * `registry`: weftd's, in the combined control plane (one /metrics and one set of process
 * metrics per process; the names do not collide: weft_webhook_* vs pilot_*, weft_weftd_*).
 */
export function createMetrics(defaultMetrics = true, registry = new Registry()): WebhookMetrics {
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'weft_webhook_requests_total',
      help: 'Admission requests handled, by webhook (validate|inject), object kind, operation and result (allowed|denied|patched|error).',
      labelNames: ['webhook', 'kind', 'operation', 'result'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'weft_webhook_request_duration_seconds',
      help: 'Time from body parsed to response written, by webhook.',
      labelNames: ['webhook'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    denials: new Counter({
      name: 'weft_webhook_denials_total',
      help: 'Objects the validating webhook denied, by kind.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    validations: new Counter({
      name: 'weft_webhook_validations_total',
      help: 'Objects validated, by placement: inline (main thread), worker (estimated expensive or large), refused (over the cost limit, denied unvalidated).',
      labelNames: ['placement'],
      registers: [registry],
    }),
    injections: new Counter({
      name: 'weft_webhook_injections_total',
      help: 'Pods seen by the injector, by result (injected|skipped|failed) and reason.',
      labelNames: ['result', 'reason'],
      registers: [registry],
    }),
  };
}

/**
 * `weft_webhook_validation_workers`: the validation worker threads running now, read at scrape
 * time. 0 at idle: the pool starts one for the first costly object and stops it after 5 min
 * without one (ADR 0025).
 */
export function observeValidationWorkers(registry: Registry, workers: () => number): void {
  new Gauge({
    name: 'weft_webhook_validation_workers',
    help: 'Validation worker threads running (started by the first costly object, stopped after 5 min without one).',
    registers: [registry],
    collect() {
      this.set(workers());
    },
  });
}
