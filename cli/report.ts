/**
 * Per-document validation shared by validate and analyze, and the two output forms: text lines
 * `file: Kind namespace/name: path: message` and one JSON document.
 */
import { findKind } from '../pkg/api/registry.js';
import {
  type Finding,
  formatFinding,
  objectRef,
  type ObjectRef,
  validateObject,
} from '../pkg/validation/index.js';
import type { InputDocument, InputProblem } from './input.js';

/** Exit codes: the contract of validate and analyze. */
export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_INPUT = 2;

export interface DocumentReport {
  source: string;
  document: number;
  line: number;
  object: ObjectRef;
  valid: boolean;
  skipped?: boolean;
  errors: Finding[];
  warnings: Finding[];
}

export function validateDocuments(
  docs: InputDocument[],
  namespace: string,
  ignoreUnknownKinds: boolean,
): DocumentReport[] {
  return docs.map((doc) => {
    const object = objectRef(doc.value);
    const base = { source: doc.source, document: doc.index, line: doc.line, object };
    if (ignoreUnknownKinds && !findKind(object.apiVersion, object.kind))
      return { ...base, valid: true, skipped: true, errors: [], warnings: [] };
    const result = validateObject(doc.value, { defaultNamespace: namespace });
    return { ...base, valid: result.errors.length === 0, errors: result.errors, warnings: result.warnings };
  });
}

export function problemLine(p: InputProblem): string {
  return `${p.source}: ${p.code}: ${p.message}`;
}

export function findingLines(r: DocumentReport): string[] {
  return [
    ...r.errors.map((f) => `${r.source}: ${formatFinding(r.object, f)}`),
    ...r.warnings.map(
      (f) => `${r.source}: ${formatFinding(r.object, { ...f, message: `warning: ${f.message}` })}`,
    ),
  ];
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
