/**
 * memquota (config.istio.io/v1alpha2) semantic rules, rule ids `memquota.*`: budgets through the
 * translator's own `memquotaBudget` (what is admitted is what is enforced), only the `source` and
 * `destination` dimensions, and overrides an earlier one hides (first match wins) as warnings.
 */
import type { MemQuotaSpec } from '../api/memquota.js';
import { MEMQUOTA_DIMENSIONS } from '../api/memquota.js';
import { memquotaBudget, unknownDimensions } from '../translate/memquota.js';
import { RATE_LIMIT_BOUNDS } from '../proxyconfig/ratelimit.js';
import type { RuleContext } from './rules.js';
import { isDNS1123Label } from './primitives.js';

export function validateMemQuota(spec: MemQuotaSpec, ctx: RuleContext): void {
  const r = ctx.report;
  const seen = new Set<string>();
  (spec.quotas ?? []).forEach((q, i) => {
    const path = ['spec', 'quotas', i];
    if (q.name === '') r.error([...path, 'name'], 'quota name must not be empty', 'memquota.name');
    if (seen.has(q.name))
      r.warn(
        [...path, 'name'],
        `quota ${q.name} is listed twice; both apply in order, the first decides`,
        'memquota.name.duplicate',
      );
    seen.add(q.name);
    const b = memquotaBudget(q.maxAmount, q.validDuration);
    if (typeof b === 'string') r.error(path, b, 'memquota.budget');
    if ((q.overrides ?? []).length > RATE_LIMIT_BOUNDS.maxOverrides)
      r.error(
        [...path, 'overrides'],
        `at most ${RATE_LIMIT_BOUNDS.maxOverrides} overrides per quota`,
        'memquota.overrides.tooMany',
      );
    const earlier: Record<string, string>[] = [];
    (q.overrides ?? []).forEach((o, j) => {
      const op = [...path, 'overrides', j];
      const unknown = unknownDimensions(o);
      for (const d of unknown)
        r.error(
          [...op, 'dimensions', d],
          `unknown dimension ${JSON.stringify(d)}: weft enforces memquota with the dimensions ${MEMQUOTA_DIMENSIONS.join(' and ')} (workload or Service names), as Istio's samples map them`,
          'memquota.dimension.unknown',
        );
      const dims = o.dimensions ?? {};
      for (const [k, v] of Object.entries(dims))
        if (!isDNS1123Label(v))
          r.error(
            [...op, 'dimensions', k],
            `${JSON.stringify(v)} is not a workload or Service name`,
            'memquota.dimension.value',
          );
      const ob = memquotaBudget(o.maxAmount, o.validDuration ?? q.validDuration);
      if (typeof ob === 'string') r.error(op, ob, 'memquota.budget');
      // an earlier override whose dimensions are a subset of these matches every request this one does
      const k = earlier.findIndex((e) => Object.entries(e).every(([d, v]) => dims[d] === v));
      if (k >= 0)
        r.warn(
          op,
          `never applies: overrides[${k}] matches every request this one matches (the first matching override applies)`,
          'memquota.override.shadowed',
        );
      earlier.push(dims);
    });
  });
}
