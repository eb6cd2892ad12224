/**
 * Structural check of an object against its kind's schema (the same schema the CRD carries),
 * with ajv errors turned into `path: message` findings a person can act on.
 */
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { JSONSchema, KindDefinition } from '../api/kind.js';
import { duration } from '../api/schema.js';
import { type PathSegment, Report } from './report.js';

const DURATION_PATTERN = duration().pattern as string;

/** ajv's options and the Kubernetes keywords it must accept (part of a compiled-validator cache key). */
export const AJV_SETUP = {
  options: { allErrors: true, strict: false, verbose: true, validateFormats: false },
  keywords: [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-validations',
  ],
} as const;

/** An ajv set up as weft checks objects; `code` options for one that keeps the generated source. */
export function newAjv(code?: Options['code']): Ajv {
  // loaded on first use: a weftctl run whose validators all come from its cache never loads ajv
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  const a = new Ajv({ ...AJV_SETUP.options, ...(code ? { code } : {}) });
  for (const keyword of AJV_SETUP.keywords)
    a.addKeyword({ keyword, schemaType: ['boolean', 'string', 'array'] });
  return a;
}

let ajv: Ajv | undefined;

/** How a kind's schema becomes its validator. weftctl sets one that caches across runs (cli/validator-cache.ts). */
export type SchemaCompiler = (schema: JSONSchema) => ValidateFunction;
let compileSchema: SchemaCompiler = (schema) => (ajv ??= newAjv()).compile(schema);
export function setSchemaCompiler(compiler: SchemaCompiler): void {
  compileSchema = compiler;
}

/** The whole-object schema ajv checks: spec and status from the kind, the envelope loosely. */
export function objectSchema(def: KindDefinition): JSONSchema {
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: def.specSchema,
      status: def.statusSchema,
    },
  };
}

const compiled = new Map<KindDefinition, ValidateFunction>();

function validatorFor(def: KindDefinition): ValidateFunction {
  let fn = compiled.get(def);
  if (!fn) {
    fn = compileSchema(shareRepeats(objectSchema(def)));
    compiled.set(def, fn);
  }
  return fn;
}

/** Compiles every kind's validator now (servers call it at start-up, so no request pays for it). */
export function precompileSchemas(defs: readonly KindDefinition[]): void {
  for (const def of defs) validatorFor(def);
}

/** Subschemas below this size are cheaper to inline than to reference. */
const SHARE_MIN_CHARS = 400;

/**
 * CRD schemas repeat whole subtrees (a DestinationRule carries the traffic policy four times,
 * per subset and per port). For ajv only, each repeated subtree becomes one `$defs` entry and
 * `$ref`s, so it is compiled once: DestinationRule compiles about 3x faster. Paths in errors
 * are instance paths, so findings do not change.
 */
export function shareRepeats(schema: JSONSchema): JSONSchema {
  const counts = new Map<string, number>();
  const count = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(count);
    else if (isObject(node)) {
      const key = JSON.stringify(node);
      if (key.length >= SHARE_MIN_CHARS && node.type === 'object')
        counts.set(key, (counts.get(key) ?? 0) + 1);
      Object.values(node).forEach(count);
    }
  };
  count(schema);
  const defs: Record<string, JSONSchema> = {};
  const names = new Map<string, string>();
  const rewrite = (node: unknown, top: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => rewrite(n, false));
    if (!isObject(node)) return node;
    const key = JSON.stringify(node);
    if (!top && (counts.get(key) ?? 0) > 1) {
      let name = names.get(key);
      if (name === undefined) {
        name = `s${names.size}`;
        names.set(key, name);
        defs[name] = rewrite(node, true) as JSONSchema;
      }
      return { $ref: `#/$defs/${name}` };
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, rewrite(v, false)]));
  };
  const out = rewrite(schema, true) as JSONSchema;
  return names.size === 0 ? out : { ...out, $defs: defs };
}

/**
 * List elements that Istio accepts as `null` though the schema says object: Istio's validation
 * skips a nil `http[].match` element and routing reads it as a match with no conditions (it
 * matches every request). `'*'` is any key or index; the last segment is always a list index.
 * Every other `null` element (a route, a TLS or TCP match, a mirror, a subset…) Istio refuses.
 */
const NULL_LIST_ELEMENTS: Record<string, readonly (readonly string[])[]> = {
  VirtualService: [['spec', 'http', '*', 'match', '*']],
};

function isToleratedNull(kind: string, err: ErrorObject, path: readonly PathSegment[]): boolean {
  if (err.keyword !== 'type' || err.data !== null || typeof path[path.length - 1] !== 'number') return false;
  return (NULL_LIST_ELEMENTS[kind] ?? []).some(
    (pattern) => pattern.length === path.length && pattern.every((seg, i) => seg === '*' || seg === path[i]),
  );
}

/** Runs the structural check; returns false when the object does not fit the schema. */
export function checkSchema(def: KindDefinition, obj: Record<string, unknown>, report: Report): boolean {
  const validate = validatorFor(def);
  if (validate(obj)) return true;
  const seen = new Set<string>();
  for (const err of validate.errors ?? []) {
    if (isToleratedNull(def.kind, err, pointerToPath(err.instancePath, obj))) continue;
    const finding = describe(err, obj);
    if (!finding) continue;
    const key = `${finding.path.join('\u0000')}|${finding.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    report.error(finding.path, finding.message, `schema.${err.keyword}`);
  }
  return report.errors.length === 0;
}

/** JSON pointer → path segments; a segment is an index when the value at that point is an array. */
export function pointerToPath(pointer: string, root: unknown): PathSegment[] {
  if (pointer === '') return [];
  const out: PathSegment[] = [];
  let cur: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const idx = Number(seg);
      out.push(idx);
      cur = cur[idx];
    } else {
      out.push(seg);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function describe(err: ErrorObject, root: unknown): { path: PathSegment[]; message: string } | undefined {
  // Errors from inside oneOf/not branches are how ajv explains a oneOf failure; the oneOf error
  // itself says it better.
  if (/\/(oneOf|not|anyOf)\/\d*/.test(err.schemaPath) && !err.schemaPath.endsWith('/anyOf')) {
    if (err.keyword !== 'oneOf' && err.keyword !== 'anyOf') return undefined;
  }
  const path = pointerToPath(err.instancePath, root);
  const got = describeValue(err.data);
  switch (err.keyword) {
    case 'required':
      return {
        path: [...path, String((err.params as { missingProperty: string }).missingProperty)],
        message: 'required',
      };
    case 'type': {
      const want = String((err.params as { type: string }).type);
      return { path, message: `must be ${article(want)} (got ${got})` };
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
      return { path, message: `must be one of ${allowed} (got ${got})` };
    }
    case 'pattern': {
      const pattern = String((err.params as { pattern: string }).pattern);
      if (pattern === DURATION_PATTERN) {
        return { path, message: `invalid duration ${got}: use Go syntax such as 10s, 1.5s, 500ms or 1h2m` };
      }
      if (pattern.includes('[KMGTPE]i'))
        return { path, message: `invalid quantity ${got} (examples: 100m, 128Mi, 2)` };
      return { path, message: `must match ${pattern} (got ${got})` };
    }
    case 'oneOf': {
      // On a non-object the type error already says it; "only one of" would be noise.
      if (!isObject(err.data)) return undefined;
      const fields = exclusiveFields(err.schema);
      const set = fields.filter((f) => isObject(err.data) && f in err.data);
      return { path, message: `only one of ${fields.join(', ')} may be set (found ${set.join(', ')})` };
    }
    case 'anyOf':
      return { path, message: `must be an integer or a string (got ${got})` };
    default:
      return {
        path,
        message: `${err.message ?? 'is invalid'}${err.data === undefined ? '' : ` (got ${got})`}`,
      };
  }
}

function exclusiveFields(schema: unknown): string[] {
  if (!Array.isArray(schema)) return [];
  return schema
    .slice(1)
    .map((b) => (isObject(b) && Array.isArray(b.required) ? String(b.required[0]) : ''))
    .filter((f) => f !== '');
}

function article(type: string): string {
  if (type === 'object') return 'an object (mapping)';
  if (type === 'array') return 'a list';
  if (type === 'integer') return 'an integer';
  return `a ${type}`;
}

/** A short, safe rendering of a user value for messages (never the whole 10 MB string). */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? `${v.slice(0, 61)}...` : v);
  return String(v);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Fields the schema does not know. Istio's webhook tolerates them and the API server drops
 * them (or rejects them under strict field validation), so they are warnings: they are almost
 * always a typo or a snake_case name, and the setting silently does nothing.
 */
export function unknownFields(schema: JSONSchema, value: unknown, path: PathSegment[], report: Report): void {
  if (schema['x-kubernetes-preserve-unknown-fields'] === true) return;
  if (Array.isArray(value)) {
    const items = schema.items;
    if (isObject(items)) value.forEach((v, i) => unknownFields(items, v, [...path, i], report));
    return;
  }
  if (!isObject(value)) return;
  const props = isObject(schema.properties) ? schema.properties : undefined;
  const additional = isObject(schema.additionalProperties) ? schema.additionalProperties : undefined;
  for (const [key, child] of Object.entries(value)) {
    const sub = props?.[key];
    if (isObject(sub)) unknownFields(sub, child, [...path, key], report);
    else if (additional) unknownFields(additional, child, [...path, key], report);
    else if (props) {
      const camel = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      const hint = camel !== key && camel in props ? `; did you mean "${camel}"?` : '';
      report.warn([...path, key], `unknown field, the API server will drop it${hint}`, 'schema.unknownField');
    }
  }
}
