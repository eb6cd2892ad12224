/**
 * A tiny vocabulary for writing structural OpenAPI v3 schemas (the subset Kubernetes accepts in
 * CRDs). Every kind's schema is written with these helpers so the CRD generator and the ajv
 * validator read exactly the same object, and so the schemas stay short enough to review.
 *
 * Rules the helpers enforce by construction (the API server rejects non-structural schemas):
 * every node has a `type`; `oneOf`/`not`/`anyOf` only carry `required` lists, never types.
 */
import type { JSONSchema } from './kind.js';

export const str = (extra: JSONSchema = {}): JSONSchema => ({ type: 'string', ...extra });
export const bool = (): JSONSchema => ({ type: 'boolean' });
export const int32 = (extra: JSONSchema = {}): JSONSchema => ({ type: 'integer', format: 'int32', ...extra });
export const int64 = (): JSONSchema => ({ type: 'integer', format: 'int64' });
/** protobuf uint32: Istio's CRDs bound it like this rather than with a format. */
export const uint32 = (): JSONSchema => ({ type: 'integer', minimum: 0, maximum: 4294967295 });
export const double = (extra: JSONSchema = {}): JSONSchema => ({
  type: 'number',
  format: 'double',
  ...extra,
});

/**
 * A Go `time.ParseDuration` string (`10s`, `1.5s`, `500ms`, `1h2m`). The pattern is only the
 * syntax; the ">= 1ms / ms precision" rules are semantic and live in the validator. Only the
 * webhook checks it (the CRD drops patterns, ADR 0012), and says so in its own words. The
 * pattern is linear-time in both RE2 and JS engines.
 */
export const duration = (): JSONSchema => ({
  type: 'string',
  pattern: '^([-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$',
});

export const enumOf = (...values: string[]): JSONSchema => ({ type: 'string', enum: values });
export const arr = (items: JSONSchema, extra: JSONSchema = {}): JSONSchema => ({
  type: 'array',
  items,
  ...extra,
});
export const strArr = (): JSONSchema => arr(str());
export const map = (values: JSONSchema): JSONSchema => ({ type: 'object', additionalProperties: values });
export const strMap = (): JSONSchema => map(str());

export interface ObjOptions {
  required?: string[];
  /** Groups of mutually exclusive fields (protobuf `oneof`): at most one of each group may be set. */
  oneOf?: string[][];
  extra?: JSONSchema;
}

export function obj(properties: Record<string, JSONSchema>, options: ObjOptions = {}): JSONSchema {
  const schema: JSONSchema = { type: 'object', properties };
  if (options.required && options.required.length > 0) schema.required = options.required;
  const groups = options.oneOf ?? [];
  if (groups.length === 1 && groups[0]) schema.oneOf = exclusive(groups[0]);
  else if (groups.length > 1) schema.allOf = groups.map((g) => ({ oneOf: exclusive(g) }));
  return { ...schema, ...(options.extra ?? {}) };
}

/**
 * "none or exactly one of these fields", the shape Istio's own CRDs use for a protobuf oneof:
 * the first branch matches when none is set, each other branch when exactly that one is.
 */
function exclusive(fields: string[]): JSONSchema[] {
  return [
    { not: { anyOf: fields.map((f) => ({ required: [f] })) } },
    ...fields.map((f) => ({ required: [f] })),
  ];
}

/** Open object: kept as-is by the API server (used for `status`, as Istio does). */
export const openObject = (): JSONSchema => ({
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
});

/** metav1.Condition, the standard condition shape. */
export const conditionSchema = (): JSONSchema =>
  obj(
    {
      type: str({ maxLength: 316 }),
      status: enumOf('True', 'False', 'Unknown'),
      observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
      lastTransitionTime: str({ format: 'date-time' }),
      reason: str({ maxLength: 1024 }),
      message: str({ maxLength: 32768 }),
    },
    { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
  );

/** `{ matchLabels: {...} }` as used by Istio's security kinds and DestinationRule. */
export const workloadSelector = (): JSONSchema => obj({ matchLabels: strMap() });

/** Gateway API PolicyTargetReference (security kinds' `targetRef`). */
export const policyTargetRef = (): JSONSchema =>
  obj(
    {
      group: str({ maxLength: 253 }),
      kind: str({ maxLength: 63 }),
      name: str({ maxLength: 253 }),
      namespace: str(),
    },
    {
      required: ['kind', 'name'],
    },
  );
