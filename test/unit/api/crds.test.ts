/**
 * The checked-in CRDs are exactly what pkg/api renders, they are structural (the API server
 * rejects anything else), small enough for client-side apply, and carry Istio's names.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import {
  crdFileName,
  crdSpecSchema,
  renderCRD,
  renderCRDYaml,
  WEBHOOK_ONLY_KEYWORDS,
} from '../../../pkg/api/crd.js';
import { findKind, kindDefinitions, meshKinds } from '../../../pkg/api/registry.js';
import type { JSONSchema } from '../../../pkg/api/kind.js';

const CRDS = join(import.meta.dirname, '../../../crds');

/** Every place a structural schema needs a type, and where junctors may not carry one. */
function structuralProblems(schema: JSONSchema, path: string, inJunctor = false): string[] {
  const out: string[] = [];
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  if (
    !inJunctor &&
    schema.type === undefined &&
    !intOrString &&
    schema['x-kubernetes-preserve-unknown-fields'] !== true
  )
    out.push(`${path}: no type`);
  if (
    inJunctor &&
    (schema.type !== undefined || schema.properties !== undefined || schema.items !== undefined)
  )
    out.push(`${path}: junctor carries a type/properties`);
  if (schema.properties !== undefined && schema.additionalProperties !== undefined)
    out.push(`${path}: both properties and additionalProperties`);
  for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, JSONSchema>))
    out.push(...structuralProblems(v, `${path}.${k}`, inJunctor));
  if (schema.items && typeof schema.items === 'object')
    out.push(...structuralProblems(schema.items as JSONSchema, `${path}[]`, inJunctor));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object')
    out.push(...structuralProblems(schema.additionalProperties as JSONSchema, `${path}{}`, inJunctor));
  for (const j of ['oneOf', 'anyOf', 'allOf'] as const) {
    const list = schema[j];
    if (Array.isArray(list) && !intOrString)
      list.forEach((b: JSONSchema, i) => out.push(...structuralProblems(b, `${path}.${j}[${i}]`, true)));
  }
  if (schema.not) out.push(...structuralProblems(schema.not as JSONSchema, `${path}.not`, true));
  return out;
}

describe('crds/', () => {
  for (const def of kindDefinitions) {
    describe(crdFileName(def), () => {
      const file = join(CRDS, crdFileName(def));

      it('matches what pkg/api renders (run `npm run gen:crds` after changing pkg/api)', () => {
        expect(readFileSync(file, 'utf8')).to.equal(renderCRDYaml(def));
      });

      it('is under the 256 KiB client-side apply limit, also as last-applied JSON', () => {
        const text = readFileSync(file, 'utf8');
        expect(Buffer.byteLength(text)).to.be.lessThan(256 * 1024);
        expect(Buffer.byteLength(JSON.stringify(parse(text)))).to.be.lessThan(256 * 1024);
      });

      it('parses back to the rendered object (no YAML aliases or flow-style surprises)', () => {
        expect(parse(readFileSync(file, 'utf8'), { maxAliasCount: 0 })).to.deep.equal(
          JSON.parse(JSON.stringify(renderCRD(def))),
        );
      });

      it('has a structural schema in every version', () => {
        const crd = renderCRD(def) as { spec: { versions: { schema: { openAPIV3Schema: JSONSchema } }[] } };
        for (const v of crd.spec.versions)
          expect(structuralProblems(v.schema.openAPIV3Schema, def.kind)).to.deep.equal([]);
      });

      it('serves each version with the status subresource and exactly one storage version', () => {
        const crd = renderCRD(def) as {
          spec: { versions: { name: string; storage: boolean; served: boolean; subresources: unknown }[] };
        };
        expect(crd.spec.versions.map((v) => v.name)).to.deep.equal(def.versions);
        expect(crd.spec.versions.filter((v) => v.storage).map((v) => v.name)).to.deep.equal([
          def.storageVersion,
        ]);
        for (const v of crd.spec.versions) {
          expect(v.served).to.equal(true);
          expect(v.subresources).to.deep.equal({ status: {} });
        }
      });
    });
  }

  it('has no stray generated files', () => {
    const expected = kindDefinitions.map(crdFileName).sort();
    expect(
      readdirSync(CRDS)
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    ).to.deep.equal(expected);
  });
});

describe('kind registry', () => {
  const table: [string, string, string[], string[]][] = [
    ['VirtualService', 'networking.istio.io', ['vs'], ['v1', 'v1beta1', 'v1alpha3']],
    ['DestinationRule', 'networking.istio.io', ['dr'], ['v1', 'v1beta1', 'v1alpha3']],
    ['Gateway', 'networking.istio.io', ['gw'], ['v1', 'v1beta1', 'v1alpha3']],
    ['ServiceEntry', 'networking.istio.io', ['se'], ['v1', 'v1beta1', 'v1alpha3']],
    ['Sidecar', 'networking.istio.io', [], ['v1', 'v1beta1', 'v1alpha3']],
    ['PeerAuthentication', 'security.istio.io', ['pa'], ['v1', 'v1beta1']],
    ['AuthorizationPolicy', 'security.istio.io', ['ap'], ['v1', 'v1beta1']],
    ['RequestAuthentication', 'security.istio.io', ['ra'], ['v1', 'v1beta1']],
    ['Mesh', 'mesh.weft.dev', ['mesh'], ['v1alpha1']],
  ];
  for (const [kind, group, shortNames, versions] of table) {
    it(`${kind}: ${group}, short names [${shortNames.join(',')}], versions ${versions.join(',')}`, () => {
      for (const v of versions) {
        const def = findKind(`${group}/${v}`, kind);
        expect(def, `${group}/${v}`).to.not.equal(undefined);
        expect(def?.shortNames).to.deep.equal(shortNames);
        expect(def?.versions).to.deep.equal(versions);
      }
    });
  }

  it('finds nothing for unserved versions, unknown kinds or malformed apiVersions', () => {
    expect(findKind('security.istio.io/v1alpha3', 'PeerAuthentication')).to.equal(undefined);
    expect(findKind('networking.istio.io/v1', 'EnvoyFilter')).to.equal(undefined);
    expect(findKind('v1', 'VirtualService')).to.equal(undefined);
    expect(findKind('', '')).to.equal(undefined);
    expect(findKind('/v1', 'VirtualService')).to.equal(undefined);
  });

  it('meshKinds are the eight Istio kinds; Mesh is cluster-scoped with READY/REASON/AGE columns', () => {
    expect(meshKinds.map((d) => d.kind)).to.have.length(8);
    const mesh = findKind('mesh.weft.dev/v1alpha1', 'Mesh');
    expect(mesh?.scope).to.equal('Cluster');
    expect(mesh?.printerColumns.map((c) => c.name.toUpperCase())).to.deep.equal(['READY', 'REASON', 'AGE']);
    expect(mesh?.printerColumns[0]?.jsonPath).to.equal('.status.conditions[?(@.type=="Ready")].status');
  });

  it('VirtualService prints GATEWAYS, HOSTS, AGE like Istio', () => {
    expect(
      findKind('networking.istio.io/v1', 'VirtualService')?.printerColumns.map((c) => c.name.toUpperCase()),
    ).to.deep.equal(['GATEWAYS', 'HOSTS', 'AGE']);
  });
});

describe('CRD schemas leave value checks to the webhook (docs/adr/0012)', () => {
  /** Every keyword of a schema node, walking properties, items and additionalProperties. */
  const keywords = (s: JSONSchema, out = new Set<string>()): Set<string> => {
    for (const [k, v] of Object.entries(s)) {
      out.add(k);
      if (k === 'properties' && v && typeof v === 'object')
        for (const sub of Object.values(v as Record<string, JSONSchema>)) keywords(sub, out);
      else if ((k === 'items' || k === 'additionalProperties') && v && typeof v === 'object')
        keywords(v as JSONSchema, out);
    }
    return out;
  };
  /** `required` lists that name more than the keys of the enclosing `x-kubernetes-list-type: map`. */
  const requiredOutsideMapKeys = (s: JSONSchema, mapKeys: unknown[] = [], path = 'spec'): string[] => {
    const out: string[] = [];
    if (Array.isArray(s.required) && s.required.some((f) => !mapKeys.includes(f))) out.push(path);
    for (const [name, sub] of Object.entries((s.properties ?? {}) as Record<string, JSONSchema>))
      out.push(...requiredOutsideMapKeys(sub, [], `${path}.${name}`));
    if (s.items && typeof s.items === 'object') {
      const keys = s['x-kubernetes-list-map-keys'];
      out.push(
        ...requiredOutsideMapKeys(s.items as JSONSchema, Array.isArray(keys) ? keys : [], `${path}[*]`),
      );
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object')
      out.push(...requiredOutsideMapKeys(s.additionalProperties as JSONSchema, [], `${path}.*`));
    return out;
  };
  const specIn = (def: (typeof kindDefinitions)[number]): JSONSchema[] =>
    (
      renderCRD(def) as {
        spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: JSONSchema } } } }[] };
      }
    ).spec.versions.map((v) => v.schema.openAPIV3Schema.properties.spec);

  for (const def of kindDefinitions) {
    it(`${def.kind}: no pattern, bound, enum, required or oneOf in the CRD's spec (but list-map keys)`, () => {
      for (const spec of specIn(def)) {
        const left = [...keywords(spec)].filter((k) => WEBHOOK_ONLY_KEYWORDS.has(k) && k !== 'required');
        expect(left).to.deep.equal([]);
        expect(requiredOutsideMapKeys(spec)).to.deep.equal([]);
      }
    });
  }

  it('the webhook still has them: the kind schemas carry the duration pattern and the weight bounds', () => {
    const all = kindDefinitions.flatMap((d) => [...keywords(d.specSchema)]);
    for (const k of ['pattern', 'minimum', 'maximum', 'enum', 'required', 'oneOf'])
      expect(all, k).to.include(k);
  });

  it('keeps the structure: types, formats, nullable, defaults, maps, int-or-string, list-map keys', () => {
    const schema: JSONSchema = {
      type: 'object',
      required: ['a'],
      oneOf: [{ required: ['a'] }],
      properties: {
        required: { type: 'string', pattern: '^x$', maxLength: 3 },
        enum: { type: 'integer', format: 'int32', minimum: 0, nullable: true, default: 1 },
        m: { type: 'object', additionalProperties: { type: 'string', enum: ['A'] } },
        l: { type: 'array', maxItems: 2, items: { type: 'number', maximum: 100 } },
        p: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
        o: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        lm: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', required: ['name', 'value'], properties: { name: { type: 'string' } } },
        },
      },
    };
    expect(crdSpecSchema(schema)).to.deep.equal({
      type: 'object',
      properties: {
        required: { type: 'string' },
        enum: { type: 'integer', format: 'int32', nullable: true, default: 1 },
        m: { type: 'object', additionalProperties: { type: 'string' } },
        l: { type: 'array', items: { type: 'number' } },
        p: { 'x-kubernetes-int-or-string': true },
        o: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        lm: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        },
      },
    });
  });
});
