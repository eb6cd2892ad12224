/**
 * The shape every API kind is described in. One KindDefinition per kind is the single source
 * of truth: `hack/gen-crds.ts` renders the CRD manifests in `crds/` from it, and the validator
 * compiles the same `schema` with ajv. Never edit `crds/*.yaml` by hand.
 */
export type JSONSchema = Record<string, unknown>;

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  listKind: string;
  shortNames: string[];
  categories: string[];
  scope: 'Namespaced' | 'Cluster';
  /** Served versions, storage version first. */
  versions: string[];
  storageVersion: string;
  printerColumns: PrinterColumn[];
  /** Structural OpenAPI v3 schema of `spec` (what goes under properties.spec in the CRD). */
  specSchema: JSONSchema;
  /** Structural schema of `status`; mesh kinds keep it open with x-kubernetes-preserve-unknown-fields. */
  statusSchema: JSONSchema;
}

export function apiVersionsOf(def: KindDefinition): string[] {
  return def.versions.map((v) => `${def.group}/${v}`);
}
