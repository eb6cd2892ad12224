/**
 * The contract of weft's validation engine (no Kubernetes I/O). The webhook, the control plane
 * and `weftctl` all call it; it is implemented in `pkg/validation/`.
 *
 *   validateObject(obj)        → ValidationResult   per object: schema + semantic rules
 *   analyzeObjects(objs)       → ObjectFinding[]    cross-object checks over a set
 */

/** One problem with one field. `path` is a JSON path from the object root, e.g. `spec.http[1].route[0].destination.host`. */
export interface Finding {
  path: string;
  message: string;
  /** Stable rule identifier, e.g. `vs.route.weight.negative`; lets tests and docs refer to rules. */
  rule?: string;
}

export interface ValidationResult {
  /** Every error found (never first-only). Non-empty means the object must be rejected. */
  errors: Finding[];
  /** Findings that do not make the object invalid (kubectl prints them as `Warning: ...`). */
  warnings: Finding[];
}

/** Identifies an object in cross-object findings and in CLI output. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface ObjectFinding extends Finding {
  severity: 'error' | 'warning';
  object: ObjectRef;
  /** Other objects involved (e.g. the other VirtualService claiming the same host). */
  related?: ObjectRef[];
}

/** `VirtualService default/reviews: spec.http[0].route[0].weight: must not be negative` */
export function formatFinding(ref: ObjectRef, finding: Finding): string {
  const where = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
  return `${ref.kind} ${where}: ${finding.path}: ${finding.message}`;
}
