/**
 * `weftctl convert`: a memquota as the equivalent RateLimit objects, for users moving off the
 * Mixer-era YAML. Per quota: one RateLimit per destination its overrides name (selecting pods
 * `app: <destination>`, as Istio's quota instances read `destination.labels["app"]`), whose
 * default is the first destination-only override for it (else the quota) and whose overrides are
 * the source overrides before that one; and one namespace-wide RateLimit (empty selector: weft
 * ranks it after the selecting ones) with the quota's own budget and its source-only overrides.
 * The result enforces what weft enforces for the memquota itself (pkg/translate/memquota.ts).
 */
import type { MemQuota, MemQuotaOverride, MemQuotaQuota } from '../api/memquota.js';
import type { RateLimit, RateLimitBudgetSpec, RateLimitOverrideSpec } from '../api/ratelimit.js';
import { unknownDimensions } from './memquota.js';

export interface Converted {
  rateLimits: RateLimit[];
  /** Why some part could not be converted (the command exits non-zero). */
  errors: string[];
}

const budget = (maxAmount: number, validDuration: string | undefined): RateLimitBudgetSpec => ({
  requests: maxAmount,
  ...(validDuration !== undefined ? { interval: validDuration } : {}),
});

/** A DNS-1123 name from the memquota, quota and destination (quota names carry dots). */
function objectName(...parts: string[]): string {
  const s = parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return s.slice(0, 63).replace(/-$/, '');
}

function sourceOverride(o: MemQuotaOverride, i: number, q: MemQuotaQuota): RateLimitOverrideSpec {
  return {
    name: `overrides-${i}`,
    source: { workloadLabels: { app: o.dimensions!.source! } },
    limit: budget(o.maxAmount, o.validDuration ?? q.validDuration),
  };
}

function rateLimit(
  mq: MemQuota,
  name: string,
  namespace: string,
  selector: Record<string, string>,
  limit: RateLimitBudgetSpec,
  overrides: RateLimitOverrideSpec[],
): RateLimit {
  return {
    apiVersion: 'mesh.weft.dev/v1alpha1',
    kind: 'RateLimit',
    metadata: {
      name,
      namespace,
      annotations: {
        'weft.dev/converted-from': `memquota ${mq.metadata.namespace ?? 'default'}/${mq.metadata.name ?? ''}`,
      },
    },
    spec: {
      scope: 'local',
      selector: Object.keys(selector).length > 0 ? { matchLabels: selector } : {},
      limit,
      ...(overrides.length > 0 ? { overrides } : {}),
    },
  };
}

/** `namespace`: where the destinations' pods run (the memquota itself usually sits in istio-system). */
export function convertMemQuota(mq: MemQuota, namespace: string): Converted {
  const out: Converted = { rateLimits: [], errors: [] };
  const base = mq.metadata.name ?? 'memquota';
  for (const q of mq.spec.quotas ?? []) {
    const bad = (q.overrides ?? []).flatMap(unknownDimensions);
    if (bad.length > 0) {
      out.errors.push(
        `quota ${q.name}: unknown dimensions ${[...new Set(bad)].join(', ')} (weft converts source and destination)`,
      );
      continue;
    }
    const overrides = q.overrides ?? [];
    const destinations = [
      ...new Set(overrides.map((o) => o.dimensions?.destination).filter((d) => d !== undefined)),
    ];
    for (const d of destinations) {
      let limit = budget(q.maxAmount, q.validDuration);
      const list: RateLimitOverrideSpec[] = [];
      for (const [i, o] of overrides.entries()) {
        const dims = o.dimensions ?? {};
        if (dims.destination !== undefined && dims.destination !== d) continue;
        if (dims.source === undefined) {
          limit = budget(o.maxAmount, o.validDuration ?? q.validDuration);
          break;
        }
        list.push(sourceOverride(o, i, q));
      }
      out.rateLimits.push(rateLimit(mq, objectName(base, q.name, d), namespace, { app: d }, limit, list));
    }
    // every other destination: the quota itself and the overrides that name no destination
    const rest: RateLimitOverrideSpec[] = [];
    let limit = budget(q.maxAmount, q.validDuration);
    for (const [i, o] of overrides.entries()) {
      const dims = o.dimensions ?? {};
      if (dims.destination !== undefined) continue;
      if (dims.source === undefined) {
        limit = budget(o.maxAmount, o.validDuration ?? q.validDuration);
        break;
      }
      rest.push(sourceOverride(o, i, q));
    }
    out.rateLimits.push(rateLimit(mq, objectName(base, q.name), namespace, {}, limit, rest));
  }
  return out;
}
