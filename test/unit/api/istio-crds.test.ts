/**
 * weft's CRDs follow Istio's published ones (test/data/istio-crds, see ORIGIN.md there): for
 * every kind weft serves that Istio publishes, in every version Istio serves, each field Istio's
 * schema accepts exists in weft's CRD with the same type, so the API server never refuses a
 * valid Istio object ("unknown field", "must be of type") before the webhook sees it; and every
 * enum value Istio accepts is one weft's webhook accepts too. Fields weft accepts but does not
 * act on are listed in pkg/api/not-enforced.ts (their own test checks that they warn).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { renderCRD } from '../../../pkg/api/crd.js';
import type { JSONSchema, KindDefinition } from '../../../pkg/api/kind.js';
import { kindDefinitions } from '../../../pkg/api/registry.js';

const ISTIO_CRDS = join(import.meta.dirname, '../../data/istio-crds/crd-all.gen.yaml');

/** The Istio kinds weft serves (issue #15); Mesh is weft's own. */
const KINDS = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'Sidecar',
  'WorkloadEntry',
  'WorkloadGroup',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'Telemetry',
  'ProxyConfig',
  'EnvoyFilter',
  'WasmPlugin',
];

interface CrdVersion {
  name: string;
  served?: boolean;
  schema: { openAPIV3Schema: JSONSchema };
}
interface Crd {
  kind: string;
  spec: { group: string; names: { kind: string }; versions: CrdVersion[] };
}

function istioCrds(): Crd[] {
  return parseAllDocuments(readFileSync(ISTIO_CRDS, 'utf8'))
    .map((d) => d.toJS() as Crd | null)
    .filter((d): d is Crd => d?.kind === 'CustomResourceDefinition');
}

const isSchema = (v: unknown): v is JSONSchema => v !== null && typeof v === 'object' && !Array.isArray(v);
const child = (s: JSONSchema, key: string): JSONSchema | undefined => {
  const v = s[key];
  return isSchema(v) ? v : undefined;
};
const specOf = (v: CrdVersion): JSONSchema => {
  const props = child(v.schema.openAPIV3Schema, 'properties');
  return (props && child(props, 'spec')) ?? {};
};

/**
 * Where weft's structure refuses what Istio's accepts, one line per place: a missing field, a
 * different type, a map or free-form object Istio keeps and weft prunes or types.
 */
export function structuralGaps(istio: JSONSchema, weft: JSONSchema, path = 'spec'): string[] {
  if (weft['x-kubernetes-preserve-unknown-fields'] === true) return [];
  const out: string[] = [];
  if (istio['x-kubernetes-preserve-unknown-fields'] === true)
    out.push(`${path}: Istio keeps unknown fields here, weft does not`);
  if (istio['x-kubernetes-int-or-string'] === true) {
    if (weft['x-kubernetes-int-or-string'] !== true) out.push(`${path}: Istio takes an integer or a string`);
  } else if (istio.type !== undefined && istio.type !== weft.type) {
    out.push(`${path}: type ${String(istio.type)} in Istio, ${String(weft.type)} in weft`);
  }
  const iProps = child(istio, 'properties') ?? {};
  const wProps = child(weft, 'properties') ?? {};
  const wAdditional = child(weft, 'additionalProperties');
  for (const [name, sub] of Object.entries(iProps)) {
    const w = isSchema(wProps[name]) ? wProps[name] : wAdditional;
    if (w === undefined) out.push(`${path}.${name}: unknown to weft`);
    else if (isSchema(sub)) out.push(...structuralGaps(sub, w, `${path}.${name}`));
  }
  const iItems = child(istio, 'items');
  if (iItems) out.push(...structuralGaps(iItems, child(weft, 'items') ?? {}, `${path}[*]`));
  const iAdditional = child(istio, 'additionalProperties');
  if (iAdditional) {
    if (wAdditional) out.push(...structuralGaps(iAdditional, wAdditional, `${path}.*`));
    else out.push(`${path}.*: Istio takes a map here, weft does not`);
  }
  return out;
}

/** Enum values Istio accepts that weft's schema (which the webhook checks) refuses. */
export function enumGaps(istio: JSONSchema, weft: JSONSchema | undefined, path = 'spec'): string[] {
  if (!weft || weft['x-kubernetes-preserve-unknown-fields'] === true) return [];
  const out: string[] = [];
  if (Array.isArray(istio.enum) && Array.isArray(weft.enum)) {
    const missing = istio.enum.filter((v: unknown) => !(weft.enum as unknown[]).includes(v));
    if (missing.length > 0) out.push(`${path}: ${missing.map(String).join(', ')} refused by weft`);
  }
  const wProps = child(weft, 'properties') ?? {};
  for (const [name, sub] of Object.entries(child(istio, 'properties') ?? {})) {
    const w = wProps[name];
    if (isSchema(sub))
      out.push(...enumGaps(sub, isSchema(w) ? w : child(weft, 'additionalProperties'), `${path}.${name}`));
  }
  const iItems = child(istio, 'items');
  if (iItems) out.push(...enumGaps(iItems, child(weft, 'items'), `${path}[*]`));
  const iAdditional = child(istio, 'additionalProperties');
  if (iAdditional) out.push(...enumGaps(iAdditional, child(weft, 'additionalProperties'), `${path}.*`));
  return out;
}

function weftVersionSpec(def: KindDefinition, version: string): JSONSchema | undefined {
  const crd = renderCRD(def) as unknown as Crd;
  const v = crd.spec.versions.find((x) => x.name === version);
  return v ? specOf(v) : undefined;
}

describe("weft's CRDs follow Istio's published CRDs (test/data/istio-crds)", () => {
  const istio = istioCrds();
  const istioKind = (def: KindDefinition): Crd | undefined =>
    istio.find((c) => c.spec.group === def.group && c.spec.names.kind === def.kind);

  it("the carried file is Istio's, with every kind weft serves", () => {
    const header = readFileSync(ISTIO_CRDS, 'utf8').split('\n', 1)[0];
    expect(header).to.match(/Generated by Cue OpenAPI generator based on Istio APIs/);
    const served = kindDefinitions.filter((d) => istioKind(d) !== undefined).map((d) => d.kind);
    expect(served.sort()).to.deep.equal([...KINDS].sort());
  });

  for (const kind of KINDS) {
    const def = kindDefinitions.find((d) => d.kind === kind)!;
    describe(kind, () => {
      it('serves every version Istio serves', () => {
        const versions = istioKind(def)!
          .spec.versions.filter((v) => v.served !== false)
          .map((v) => v.name);
        expect(def.versions).to.include.members(versions);
      });

      for (const version of istioKind(def)?.spec.versions.map((v) => v.name) ?? []) {
        it(`${version}: every field Istio accepts is in weft's CRD, with Istio's type`, () => {
          const iv = istioKind(def)!.spec.versions.find((v) => v.name === version)!;
          const weft = weftVersionSpec(def, version);
          expect(weft, `weft does not serve ${version}`).to.not.equal(undefined);
          expect(structuralGaps(specOf(iv), weft!)).to.deep.equal([]);
        });

        it(`${version}: every enum value Istio accepts, the webhook accepts`, () => {
          const iv = istioKind(def)!.spec.versions.find((v) => v.name === version)!;
          expect(enumGaps(specOf(iv), def.specSchema)).to.deep.equal([]);
        });
      }
    });
  }

  describe('the walk can fail', () => {
    const istioVs = (): JSONSchema => {
      const vs = istio.find((c) => c.spec.names.kind === 'VirtualService')!;
      return specOf(vs.spec.versions.find((v) => v.name === 'v1')!);
    };
    const vsDef = kindDefinitions.find((d) => d.kind === 'VirtualService')!;
    /** weft's v1 VirtualService CRD spec with `edit` applied to a deep copy. */
    const edited = (edit: (s: JSONSchema) => void): JSONSchema => {
      const copy = structuredClone(weftVersionSpec(vsDef, 'v1')!);
      edit(copy);
      return copy;
    };
    const httpRoute = (s: JSONSchema): Record<string, JSONSchema> =>
      ((s.properties as Record<string, JSONSchema>).http!.items as JSONSchema).properties as Record<
        string,
        JSONSchema
      >;

    it('a field Istio has and weft lacks', () => {
      const weft = edited((s) => delete httpRoute(s).timeout);
      expect(structuralGaps(istioVs(), weft)).to.deep.equal(['spec.http[*].timeout: unknown to weft']);
    });

    it('a field with another type (DestinationRule retryBudget.percent, an object in weft, was one)', () => {
      const weft = edited((s) => (httpRoute(s).timeout = { type: 'object' }));
      expect(structuralGaps(istioVs(), weft)).to.deep.equal([
        'spec.http[*].timeout: type string in Istio, object in weft',
      ]);
    });

    it('an enum value the webhook would refuse', () => {
      const se = kindDefinitions.find((d) => d.kind === 'ServiceEntry')!;
      const seIstio = specOf(istio.find((c) => c.spec.names.kind === 'ServiceEntry')!.spec.versions[0]!);
      const seWeft = structuredClone(se.specSchema);
      const resolution = (seWeft.properties as Record<string, JSONSchema>).resolution!;
      resolution.enum = (resolution.enum as string[]).filter((v) => v !== 'DNS_ROUND_ROBIN');
      expect(enumGaps(seIstio, seWeft)).to.deep.equal(['spec.resolution: DNS_ROUND_ROBIN refused by weft']);
    });
  });
});
