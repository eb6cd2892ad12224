/**
 * weft's validation engine (no Kubernetes I/O): one entry point per object, one across objects.
 * The webhook, the control plane and `weftctl` all call exactly these.
 *
 * Order per object: envelope (is it an object of a kind weft serves) → size guards → schema
 * (ajv, the CRD's own schema) → Istio's semantic rules for the kind. Semantic rules only run on
 * objects that fit the schema, as Istio only runs them on objects that decode.
 */
import { findGroupKind, findKind, kindDefinitions } from '../api/registry.js';
import type { KindDefinition } from '../api/kind.js';
import { checkShape } from './limits.js';
import { Report } from './report.js';
import { checkSchema, describeValue, isObject, precompileSchemas, unknownFields } from './schema.js';
import { semanticRules, type RuleContext } from './rules.js';
import type { ObjectFinding, ObjectRef, ValidationResult } from './types.js';
import { analyze } from './analyze.js';
import { reportNotEnforced } from './not-enforced.js';

export * from './types.js';

/**
 * Compiles the schema validators of every kind up front (about a second on a busy 2-core
 * machine). Servers call this at start-up so the first admission request is not the slow one.
 */
export function warmUp(): void {
  precompileSchemas(kindDefinitions);
}
export { formatPath } from './report.js';

export interface ValidateOptions {
  /**
   * Namespace to assume when the object has none (admission always knows it; `weftctl` uses
   * `default`, as kubectl would). Affects `exportTo: ["."]` and `configmap://` credentials.
   */
  defaultNamespace?: string;
  /**
   * Keep at most this many errors, and as many warnings; the rest are counted in one closing
   * finding per list (`(document): 1234 more errors not listed`). The verdict is the same either
   * way. Default: keep all (weftctl); the webhook, whose answer shows a few hundred at most,
   * bounds the memory a broken 100,000-route object costs.
   */
  maxFindings?: number;
  /** The mesh runs the global rate-limit backend (ADR 0017): RateLimit `scope: global` is admitted. */
  globalRateLimits?: boolean;
}

const TOP_LEVEL_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
/** RFC 1123 subdomain, what the API server requires of custom resource names. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function validateObject(obj: unknown, options: ValidateOptions = {}): ValidationResult {
  const report = new Report(options.maxFindings);
  const def = checkEnvelope(obj, report);
  if (!def || !isObject(obj)) return result(report);
  if (!checkSchema(def, obj, report)) return result(report);
  unknownFields(def.specSchema, obj.spec, ['spec'], report);
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const ctx: RuleContext = {
    namespace:
      typeof meta.namespace === 'string' && meta.namespace !== ''
        ? meta.namespace
        : (options.defaultNamespace ?? 'default'),
    annotations: stringMap(meta.annotations),
    labels: stringMap(meta.labels),
    kind: def.kind,
    report,
    ...(options.globalRateLimits ? { globalRateLimits: true } : {}),
  };
  semanticRules[def.kind]?.(isObject(obj.spec) ? obj.spec : {}, ctx);
  // Fields and kinds weft accepts but does not act on: warned about, never refused.
  reportNotEnforced(def.kind, obj, report);
  // Istio checks the top-level keys after the spec, and reports them as errors.
  for (const key of Object.keys(obj)) {
    if (!TOP_LEVEL_KEYS.has(key)) {
      report.error(
        [key],
        `unknown field "${key}" on ${def.kind} resource (only apiVersion, kind, metadata, spec, status)`,
        'object.field.unknown',
      );
    }
  }
  return result(report);
}

/** Cross-object checks over a set of objects (what `weftctl analyze` and GitOps CI run). */
export function analyzeObjects(objs: unknown[], options: ValidateOptions = {}): ObjectFinding[] {
  return analyze(objs, options.defaultNamespace ?? 'default');
}

/** The reference used in findings for any object, however broken. */
export function objectRef(obj: unknown): ObjectRef {
  const o = isObject(obj) ? obj : {};
  const meta = isObject(o.metadata) ? o.metadata : {};
  const ref: ObjectRef = {
    apiVersion: typeof o.apiVersion === 'string' ? o.apiVersion : '',
    kind: typeof o.kind === 'string' && o.kind !== '' ? o.kind : '<no kind>',
    name: typeof meta.name === 'string' && meta.name !== '' ? meta.name : '<no name>',
  };
  if (typeof meta.namespace === 'string' && meta.namespace !== '') ref.namespace = meta.namespace;
  return ref;
}

function result(report: Report): ValidationResult {
  return report.result();
}

/** Is this a Kubernetes object of a kind weft serves, of a sane size, with a usable name? */
function checkEnvelope(obj: unknown, report: Report): KindDefinition | undefined {
  if (!isObject(obj)) {
    report.error(
      ['(document)'],
      `not a Kubernetes object: expected a mapping with apiVersion and kind, got ${describeValue(obj)}`,
      'object.notObject',
    );
    return undefined;
  }
  const shape = checkShape(obj);
  if (shape) {
    const what =
      shape.kind === 'depth'
        ? `nested deeper than ${shape.limit} levels`
        : `has more than ${shape.limit} values`;
    report.error(['(document)'], `object ${what}; refusing to validate it`, `object.limit.${shape.kind}`);
    return undefined;
  }
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || apiVersion === '')
    report.error(['apiVersion'], 'required', 'object.apiVersion.required');
  if (typeof kind !== 'string' || kind === '') report.error(['kind'], 'required', 'object.kind.required');
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || report.errors.length > 0)
    return undefined;
  const def = findKind(apiVersion, kind);
  if (!def) {
    reportUnknownKind(apiVersion, kind, report);
    return undefined;
  }
  checkMetadata(obj.metadata, def, report);
  return report.errors.length === 0 ? def : undefined;
}

function reportUnknownKind(apiVersion: string, kind: string, report: Report): void {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';
  const known = findGroupKind(group, kind);
  if (known) {
    report.error(
      ['apiVersion'],
      `${kind} is not served as ${apiVersion} (served versions: ${known.versions.map((v) => `${known.group}/${v}`).join(', ')})`,
      'object.version.unserved',
    );
  } else {
    report.error(
      ['kind'],
      `unknown kind ${kind} (${apiVersion}); weft validates ${kindDefinitions.map((d) => d.kind).join(', ')}`,
      'object.kind.unknown',
    );
  }
}

function checkMetadata(metadata: unknown, def: KindDefinition, report: Report): void {
  if (metadata === undefined) {
    report.error(['metadata', 'name'], 'required', 'object.name.required');
    return;
  }
  if (!isObject(metadata)) {
    report.error(['metadata'], `must be a mapping (got ${describeValue(metadata)})`, 'object.metadata.type');
    return;
  }
  const { name, generateName, namespace } = metadata;
  if (name === undefined || name === '') {
    if (typeof generateName !== 'string' || generateName === '')
      report.error(['metadata', 'name'], 'required', 'object.name.required');
  } else if (typeof name !== 'string') {
    report.error(
      ['metadata', 'name'],
      `must be a string (got ${describeValue(name)})`,
      'object.name.invalid',
    );
  } else if (name.length > 253 || !OBJECT_NAME.test(name)) {
    report.error(
      ['metadata', 'name'],
      `invalid name ${describeValue(name)}: must be lower case letters, digits, '-' and '.', starting and ending with a letter or digit (max 253)`,
      'object.name.invalid',
    );
  }
  if (namespace !== undefined && typeof namespace !== 'string') {
    report.error(
      ['metadata', 'namespace'],
      `must be a string (got ${describeValue(namespace)})`,
      'object.namespace.invalid',
    );
  } else if (def.scope === 'Cluster' && typeof namespace === 'string' && namespace !== '') {
    report.warn(
      ['metadata', 'namespace'],
      `${def.kind} is cluster-scoped; the namespace is ignored`,
      'object.namespace.ignored',
    );
  }
  for (const field of ['labels', 'annotations'] as const) {
    const m = metadata[field];
    if (m === undefined || m === null) continue;
    if (!isObject(m))
      report.error(
        ['metadata', field],
        `must be a mapping of strings (got ${describeValue(m)})`,
        `object.${field}.type`,
      );
    else
      for (const [k, v] of Object.entries(m))
        if (typeof v !== 'string')
          report.error(
            ['metadata', field, k],
            `must be a string (got ${describeValue(v)})`,
            `object.${field}.type`,
          );
  }
}

function stringMap(v: unknown): Record<string, string> {
  if (!isObject(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}
