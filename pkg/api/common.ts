/**
 * Types and schema pieces shared by several Istio kinds. Field names are Istio's exactly
 * (lowerCamel JSON names of the protobuf messages), so Istio YAML maps onto them unchanged.
 */
import { map, obj, str, strMap, uint32 } from './schema.js';
import type { JSONSchema } from './kind.js';

/** A Go duration string as Istio accepts it, e.g. `10s`, `1.5s`, `500ms`. */
export type Duration = string;

/** Minimal ObjectMeta: what weft reads. Other metadata fields pass through untouched. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  [key: string]: unknown;
}

/** Any Kubernetes object of a given kind (spec and status typed by the kind). */
export interface KubeObject<Spec, Status = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** Istio's StringMatch: exactly one of exact, prefix or regex (RE2, full match). */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Percent {
  value?: number;
}

/** security.istio.io WorkloadSelector. */
export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

/** Gateway API PolicyTargetReference. */
export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export const stringMatchSchema = (): JSONSchema =>
  obj({ exact: str(), prefix: str(), regex: str() }, { oneOf: [['exact', 'prefix', 'regex']] });

export const portSelectorSchema = (): JSONSchema => obj({ number: uint32() });

export const percentSchema = (): JSONSchema => obj({ value: { type: 'number', format: 'double' } });

export const stringMatchMapSchema = (): JSONSchema => map(stringMatchSchema());

export const labelsSchema = strMap;

/** Istio's CRDs keep status open; weft writes conditions and validation messages into it. */
export const istioStatusSchema = (): JSONSchema => ({
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
});
