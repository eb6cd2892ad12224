/**
 * memquota (config.istio.io/v1alpha2): Istio's Mixer in-memory quota adapter, served so the
 * Istio-era rate-limit YAML applies as written. Each quota is a budget of `maxAmount` per
 * `validDuration`; each override gives another budget to the requests whose dimensions match
 * (all the dimensions it names; the first matching override applies). weft understands the two
 * dimensions of Istio's samples, `source` and `destination`, each naming a workload by its `app`
 * label or a Service by name (as Istio's quota instances mapped them), and enforces the result as
 * local limits in each destination sidecar (pkg/translate/memquota.ts, ADR 0013).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, duration, int64, obj, str, strMap } from './schema.js';

export interface MemQuotaOverride {
  dimensions?: Record<string, string>;
  maxAmount: number;
  validDuration?: Duration;
}

export interface MemQuotaQuota {
  /** The quota instance's name, e.g. `requestcount.instance.istio-system`. */
  name: string;
  maxAmount: number;
  validDuration?: Duration;
  overrides?: MemQuotaOverride[];
}

export interface MemQuotaSpec {
  quotas?: MemQuotaQuota[];
  /** Mixer's deduplication window for retried quota calls: nothing to deduplicate in a sidecar. */
  minDeduplicationDuration?: Duration;
}

export type MemQuota = KubeObject<MemQuotaSpec>;

/** The dimensions weft understands (Istio's samples use exactly these). */
export const MEMQUOTA_DIMENSIONS = ['source', 'destination'] as const;

export const memQuotaSpecSchema = (): JSONSchema =>
  obj({
    quotas: arr(
      obj(
        {
          name: str(),
          maxAmount: int64(),
          validDuration: duration(),
          overrides: arr(
            obj(
              { dimensions: strMap(), maxAmount: int64(), validDuration: duration() },
              { required: ['maxAmount'] },
            ),
          ),
        },
        { required: ['name', 'maxAmount'] },
      ),
    ),
    minDeduplicationDuration: duration(),
  });

export const memQuotaKind: KindDefinition = {
  group: 'config.istio.io',
  kind: 'memquota',
  plural: 'memquotas',
  singular: 'memquota',
  listKind: 'memquotaList',
  shortNames: [],
  categories: ['istio-io', 'policy-istio-io'],
  scope: 'Namespaced',
  versions: ['v1alpha2'],
  storageVersion: 'v1alpha2',
  printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  specSchema: memQuotaSpecSchema(),
  statusSchema: istioStatusSchema(),
};
