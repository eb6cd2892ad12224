/**
 * The semantic rules per kind (what Istio's webhook checks beyond the schema). Each kind's rules
 * live in their own module; this table is how `validateObject` finds them.
 */
import type { Report } from './report.js';

export interface RuleContext {
  /** The object's namespace (or the assumed default). */
  namespace: string;
  annotations: Record<string, string>;
  kind: string;
  report: Report;
}

/** `spec` has already passed the schema, so field types are as declared. */
export type SpecRules = (spec: Record<string, unknown>, ctx: RuleContext) => void;

export const semanticRules: Record<string, SpecRules> = {};
