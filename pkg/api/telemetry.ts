/**
 * Telemetry (telemetry.istio.io): per-workload metrics, tracing and access-logging settings.
 * Served and validated so Istio YAML applies; weft's proxies do not read it yet
 * (pkg/api/not-enforced.ts).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject, PolicyTargetReference, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, bool, double, enumOf, map, obj, policyTargetRef, str, workloadSelector } from './schema.js';

export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

export interface ProviderRef {
  name: string;
}

export interface TracingCustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
  formatter?: { value: string };
}

export interface Tracing {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  randomSamplingPercentage?: number | null;
  disableSpanReporting?: boolean | null;
  customTags?: Record<string, TracingCustomTag>;
  useRequestIdForTraceSampling?: boolean | null;
  enableIstioTags?: boolean | null;
  disableContextPropagation?: boolean | null;
}

export interface MetricsOverrides {
  match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
  disabled?: boolean | null;
  tagOverrides?: Record<string, { operation?: 'UPSERT' | 'REMOVE'; value?: string }>;
}

export interface Metrics {
  providers?: ProviderRef[];
  overrides?: MetricsOverrides[];
  reportingInterval?: Duration;
}

export interface AccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  disabled?: boolean | null;
  filter?: { expression?: string };
}

export interface TelemetrySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Tracing[];
  metrics?: Metrics[];
  accessLogging?: AccessLogging[];
}

export type Telemetry = KubeObject<TelemetrySpec>;

const mode = (): JSONSchema => enumOf('CLIENT_AND_SERVER', 'CLIENT', 'SERVER');
const nullableBool = (): JSONSchema => ({ ...bool(), nullable: true });
const providers = (): JSONSchema => arr(obj({ name: str({ minLength: 1 }) }, { required: ['name'] }));

export const METRIC_NAMES = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;

export const telemetrySpecSchema = (): JSONSchema =>
  obj(
    {
      selector: workloadSelector(),
      targetRef: policyTargetRef(),
      targetRefs: arr(policyTargetRef(), { maxItems: 16 }),
      tracing: arr(
        obj({
          match: obj({ mode: mode() }),
          providers: providers(),
          randomSamplingPercentage: double({ minimum: 0, maximum: 100, nullable: true }),
          disableSpanReporting: nullableBool(),
          customTags: map(
            obj(
              {
                literal: obj({ value: str({ minLength: 1 }) }, { required: ['value'] }),
                environment: obj(
                  { name: str({ minLength: 1 }), defaultValue: str() },
                  { required: ['name'] },
                ),
                header: obj({ name: str({ minLength: 1 }), defaultValue: str() }, { required: ['name'] }),
                formatter: obj({ value: str({ minLength: 1 }) }, { required: ['value'] }),
              },
              { oneOf: [['literal', 'environment', 'header', 'formatter']] },
            ),
          ),
          useRequestIdForTraceSampling: nullableBool(),
          enableIstioTags: nullableBool(),
          disableContextPropagation: nullableBool(),
        }),
      ),
      metrics: arr(
        obj({
          providers: providers(),
          overrides: arr(
            obj({
              match: obj(
                { metric: enumOf(...METRIC_NAMES), customMetric: str({ minLength: 1 }), mode: mode() },
                { oneOf: [['metric', 'customMetric']] },
              ),
              disabled: nullableBool(),
              tagOverrides: map(obj({ operation: enumOf('UPSERT', 'REMOVE'), value: str() })),
            }),
          ),
          reportingInterval: str(),
        }),
      ),
      accessLogging: arr(
        obj({
          match: obj({ mode: mode() }),
          providers: providers(),
          disabled: nullableBool(),
          filter: obj({ expression: str() }),
        }),
      ),
    },
    { oneOf: [['selector', 'targetRef', 'targetRefs']] },
  );

export const telemetryKind: KindDefinition = {
  group: 'telemetry.istio.io',
  kind: 'Telemetry',
  plural: 'telemetries',
  singular: 'telemetry',
  listKind: 'TelemetryList',
  shortNames: ['telemetry'],
  categories: ['istio-io', 'telemetry-istio-io'],
  scope: 'Namespaced',
  // Istio serves v1 and v1alpha1 and still stores v1alpha1.
  versions: ['v1alpha1', 'v1'],
  storageVersion: 'v1alpha1',
  printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  specSchema: telemetrySpecSchema(),
  statusSchema: istioStatusSchema(),
};
