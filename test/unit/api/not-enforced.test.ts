/**
 * The not-enforced table (pkg/api/not-enforced.ts) stays true:
 *  - drift: every path exists in its kind's schema (values in its enum), every kind is served;
 *  - every entry's probe objects are valid and warn with that entry;
 *  - implemented but still listed: through weftd's and the standalone proxy's real pipelines, the
 *    probe objects give the same proxy configs as the same objects without the field (or without
 *    the kind). Implementing a feature changes that, and this test names the entry to delete;
 *  - the probe can fail: fields weft does implement, run through the same machinery, differ;
 *  - docs/not-enforced.md is what hack/gen-not-enforced.ts generates.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NOT_ENFORCED, type NotEnforcedEntry } from '../../../pkg/api/not-enforced.js';
import { kindDefinitions } from '../../../pkg/api/registry.js';
import type { JSONSchema, KindDefinition } from '../../../pkg/api/kind.js';
import { findNotEnforced, pathSegments } from '../../../pkg/validation/not-enforced.js';
import { validateObject } from '../../../pkg/validation/index.js';
import { renderNotEnforcedDoc } from '../../../hack/gen-not-enforced.js';
import { comparable, observe } from './not-enforced-probe.js';

type Obj = Record<string, unknown>;

const defOf = (kind: string): KindDefinition | undefined => kindDefinitions.find((d) => d.kind === kind);

/** The schema node a table path leads to, or the segment where it stops existing. */
function schemaAt(def: KindDefinition, path: string): { node?: JSONSchema; missing?: string } {
  const segs = pathSegments(path);
  if (segs[0] !== 'spec') return { missing: segs[0] ?? '' };
  let node: JSONSchema | undefined = def.specSchema;
  for (const seg of segs.slice(1)) {
    const n: JSONSchema = node!;
    if (seg === '[*]') node = n.type === 'array' ? (n.items as JSONSchema) : undefined;
    else if (seg === '*') node = n.additionalProperties as JSONSchema | undefined;
    else node = (n.properties as Record<string, JSONSchema> | undefined)?.[seg];
    if (!node) return { missing: seg };
  }
  return { node };
}

/** The probe objects without the entry's field (at every place it occurs), or without the kind. */
function withoutEntry(e: NotEnforcedEntry): Obj[] {
  const out: Obj[] = [];
  for (const o of e.probe) {
    if (o.kind !== e.kind) {
      out.push(o);
      continue;
    }
    if (e.paths === undefined) continue; // the whole kind: drop the object
    const copy = structuredClone(o);
    for (const hit of findNotEnforced(e.kind, copy).filter((h) => h.entry.id === e.id)) {
      let parent: unknown = copy;
      for (const seg of hit.segments.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[seg];
      delete (parent as Record<string | number, unknown>)[hit.segments[hit.segments.length - 1]!];
    }
    out.push(copy);
  }
  return out;
}

describe('not-enforced table (pkg/api/not-enforced.ts)', () => {
  it('has unique ids, and at least the entries issue #15 names', () => {
    const ids = NOT_ENFORCED.map((e) => e.id);
    expect(new Set(ids).size, 'duplicate ids').to.equal(ids.length);
    // (entries the merging branches implement are removed by them, so only the rest are pinned here)
    for (const id of ['vs.corsPolicy', 'vs.delegate', 'envoyfilter']) expect(ids).to.include(id);
  });

  describe('drift: paths and values exist in the kind schema', () => {
    for (const e of NOT_ENFORCED) {
      it(`${e.id}: ${e.kind} ${(e.paths ?? ['(whole kind)']).length} path(s)`, () => {
        const def = defOf(e.kind);
        expect(def, `${e.kind} is not a kind weft serves`).to.not.equal(undefined);
        for (const p of e.paths ?? []) {
          const { node, missing } = schemaAt(def!, p);
          expect(missing, `${p}: "${missing}" is not in the ${e.kind} schema`).to.equal(undefined);
          const allowed = node!.enum as unknown[] | undefined;
          for (const v of [
            ...(e.values ?? []),
            ...(e.except ?? []),
            ...(e.absentMeans !== undefined ? [e.absentMeans] : []),
          ]) {
            if (allowed) expect(allowed, `${p}: value ${String(v)}`).to.include(v);
            else
              expect(typeof v, `${p}: value ${String(v)} vs schema type ${String(node!.type)}`).to.equal(
                node!.type === 'integer' || node!.type === 'number' ? 'number' : node!.type,
              );
          }
        }
      });
    }
    it('a path that is not in the schema is caught (the check itself can fail)', () => {
      expect(schemaAt(defOf('VirtualService')!, 'spec.http[*].corsPolicy.allowOrigin').missing).to.equal(
        undefined,
      );
      expect(schemaAt(defOf('VirtualService')!, 'spec.http[*].corsPolicies').missing).to.equal(
        'corsPolicies',
      );
      expect(schemaAt(defOf('VirtualService')!, 'spec.http.corsPolicy').missing).to.equal('corsPolicy');
    });
  });

  describe('every probe is valid and warns with its entry', () => {
    for (const e of NOT_ENFORCED) {
      it(e.id, () => {
        for (const o of e.probe) {
          const r = validateObject(o);
          expect(r.errors, `${String(o.kind)} ${JSON.stringify((o.metadata as Obj).name)}`).to.deep.equal([]);
        }
        const rules = e.probe.flatMap((o) => validateObject(o).warnings.map((w) => w.rule));
        expect(rules).to.include(`notEnforced.${e.id}`);
        // every field of the entry is exercised by the probe (in at least one of its places)
        const last = (p: string): string => p.slice(p.lastIndexOf('.') + 1);
        const hit = new Set(
          e.probe
            .filter((o) => o.kind === e.kind)
            .flatMap((o) => findNotEnforced(e.kind, o))
            .filter((h) => h.entry.id === e.id)
            .map((h) => last(h.path)),
        );
        for (const p of e.paths ?? []) expect([...hit], `probe does not use ${p}`).to.include(last(p));
      });
    }
  });

  describe('implemented but still listed: the proxies get the same config with and without the field', function () {
    this.timeout(20_000);
    for (const e of NOT_ENFORCED) {
      it(e.id, async () => {
        const [withField, without] = comparable(await observe([...e.probe]), await observe(withoutEntry(e)));
        expect(
          withField,
          `${e.id} changes what the proxies get: if weft implements it now, delete its entry from pkg/api/not-enforced.ts (and run npx tsx hack/gen-not-enforced.ts)`,
        ).to.deep.equal(without);
      });
    }
  });

  describe('each field probe reaches the proxies (its objects change what they get)', function () {
    this.timeout(20_000);
    /** Probes whose objects carry nothing a proxy sees today but the field itself. */
    const onlyTheField = new Set(['vs.tcp', 'vs.tls', 'gw.protocol']);
    for (const e of NOT_ENFORCED.filter((x) => x.paths !== undefined && !onlyTheField.has(x.id))) {
      it(e.id, async () => {
        const [a, b] = comparable(await observe([...e.probe]), await observe([]));
        expect(
          a,
          'the probe objects change nothing: the probe could not see an implementation',
        ).to.not.deep.equal(b);
      });
    }
  });

  describe('the probe can fail: features weft implements are seen as implemented', function () {
    this.timeout(20_000);
    const vs = (http: unknown[]): Obj => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'default' },
      spec: { hosts: ['reviews'], gateways: ['mesh', 'ingress'], http },
    });
    const dr = (trafficPolicy: unknown): Obj => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: 'default' },
      spec: { host: 'reviews', trafficPolicy },
    });
    const route = [{ destination: { host: 'reviews' } }];
    const mesh = (spec: unknown): Obj => ({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'Mesh',
      metadata: { name: 'default' },
      spec,
    });
    const controls: [string, Obj[], Obj[]][] = [
      [
        'VirtualService timeout (sidecar and gateway routes)',
        [vs([{ timeout: '3s', route }])],
        [vs([{ route }])],
      ],
      [
        'a whole kind weftd watches (VirtualService)',
        [vs([{ route: [{ destination: { host: 'reviews', port: { number: 9080 } } }] }])],
        [],
      ],
      [
        'DestinationRule ROUND_ROBIN (as the proxy builds it)',
        [dr({ loadBalancer: { simple: 'ROUND_ROBIN' } })],
        [dr({})],
      ],
      [
        'DestinationRule outlier detection',
        [dr({ outlierDetection: { consecutive5xxErrors: 3 } })],
        [dr({})],
      ],
      [
        'Mesh access log (through render and mesh.yaml)',
        [mesh({ telemetry: { accessLog: { enabled: false } } })],
        [mesh({})],
      ],
      ['Mesh path normalization', [mesh({ pathNormalization: { normalization: 'NONE' } })], [mesh({})]],
    ];
    for (const [title, withField, without] of controls) {
      it(title, async () => {
        const [a, b] = comparable(await observe(withField), await observe(without));
        expect(a).to.not.deep.equal(b);
      });
    }
  });

  it('docs/not-enforced.md is generated from the table (npx tsx hack/gen-not-enforced.ts)', () => {
    const file = readFileSync(join(import.meta.dirname, '../../../docs/not-enforced.md'), 'utf8');
    expect(
      file === renderNotEnforcedDoc(),
      'docs/not-enforced.md is stale: run npx tsx hack/gen-not-enforced.ts',
    ).to.equal(true);
  });
});
