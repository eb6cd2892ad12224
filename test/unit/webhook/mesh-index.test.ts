/**
 * The index narrows cross-object analysis to the objects that share a host or gateway with the
 * candidate. That is only sound if it never drops a finding: checked here against a full
 * analysis of a generated mesh, for every object as the candidate.
 */
import { expect } from 'chai';
import { analyzeObjects, type ObjectFinding } from '../../../pkg/validation/index.js';
import { MeshIndex, referenceTokens } from '../../../webhook/mesh-index.js';

type Obj = Record<string, unknown>;

function vs(
  name: string,
  ns: string,
  hosts: string[],
  dest: string,
  subset?: string,
  gateways?: string[],
): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: ns },
    spec: {
      hosts,
      ...(gateways ? { gateways } : {}),
      http: [{ route: [{ destination: { host: dest, ...(subset ? { subset } : {}) } }] }],
    },
  };
}
function dr(name: string, ns: string, host: string, subsets: string[]): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace: ns },
    spec: { host, subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) },
  };
}

/** A deterministic mesh with conflicts, cross-namespace FQDNs, wildcards and missing subsets. */
function mesh(): Obj[] {
  const objs: Obj[] = [];
  const nss = ['shop', 'pay', 'web'];
  const svcs = ['reviews', 'ratings', 'details', 'cart'];
  let n = 0;
  for (const ns of nss) {
    for (const [i, svc] of svcs.entries()) {
      const fq = `${svc}.${nss[(i + 1) % 3]}.svc.cluster.local`;
      objs.push(vs(`vs-${n++}`, ns, [svc], i % 2 ? fq : svc, ['v1', 'v2', undefined][i % 3]));
      objs.push(dr(`dr-${n++}`, ns, i % 3 ? svc : fq, i % 2 ? ['v1'] : ['v1', 'v2']));
    }
    objs.push(vs(`vs-dup-${n++}`, ns, ['reviews'], 'reviews')); // host conflict with vs for reviews
    objs.push(vs(`vs-wild-${n++}`, ns, [`*.${ns}.svc.cluster.local`], 'cart', 'v9'));
    objs.push(dr(`dr-dup-${n++}`, ns, 'ratings', ['v3']));
  }
  return objs;
}

const key = (f: ObjectFinding) => `${f.rule}|${f.object.namespace}/${f.object.name}|${f.path}|${f.message}`;

function involving(findings: ObjectFinding[], obj: Obj): string[] {
  const id = MeshIndex.key(obj);
  const k = (r: ObjectFinding['object']) =>
    MeshIndex.key({
      apiVersion: r.apiVersion,
      kind: r.kind,
      metadata: { name: r.name, namespace: r.namespace },
    });
  return findings
    .filter((f) => k(f.object) === id || (f.related ?? []).some((r) => k(r) === id))
    .map(key)
    .sort();
}

describe('mesh index', () => {
  const objs = mesh();
  const index = new MeshIndex();
  for (const o of objs) index.upsert(o);

  it('narrowing never drops a finding about the candidate (every object as candidate)', () => {
    let compared = 0;
    for (const candidate of objs) {
      const others = objs.filter((o) => MeshIndex.key(o) !== MeshIndex.key(candidate));
      const withCandidate = index.withCandidate(candidate);
      // the candidate as the index hands it over (stamped with a creationTimestamp when it has none)
      const stored = withCandidate[withCandidate.length - 1];
      const full = involving(analyzeObjects([...others, stored]), candidate);
      const narrowed = involving(analyzeObjects(withCandidate), candidate);
      expect(narrowed, String(MeshIndex.key(candidate))).to.deep.equal(full);
      compared += full.length;
    }
    expect(compared, 'the generated mesh must actually produce findings').to.be.greaterThan(10);
  });

  it('hands analysis a small slice, not the whole mesh', () => {
    const slice = index.withCandidate(vs('new', 'shop', ['details'], 'details'));
    expect(slice.length).to.be.lessThan(objs.length / 2);
  });

  const tokenTable: [string, Obj, string[]][] = [
    ['short host', vs('a', 'n', ['reviews'], 'reviews'), ['reviews']],
    [
      'FQDN and ns/host forms',
      vs('a', 'n', ['reviews.shop.svc.cluster.local'], 'shop/ratings'),
      ['ratings', 'reviews'],
    ],
    ['wildcards', vs('a', 'n', ['*', '*.example.com'], 'x'), ['*', 'x']],
    [
      'gateways by name',
      vs('a', 'n', ['h'], 'h', undefined, ['istio-system/ingress', 'mesh']),
      ['gateway:ingress', 'gateway:mesh', 'h'],
    ],
    [
      'a Gateway names itself',
      { kind: 'Gateway', metadata: { name: 'ingress' }, spec: { servers: [{ hosts: ['shop/*'] }] } },
      ['*', 'gateway:ingress'],
    ],
    ['DestinationRule host', dr('d', 'n', 'cart.pay.svc.cluster.local', ['v1']), ['cart']],
    ['no spec', { kind: 'VirtualService', metadata: { name: 'x' } }, []],
  ];
  for (const [title, obj, tokens] of tokenTable) {
    it(`reference tokens: ${title}`, () => expect([...referenceTokens(obj)].sort()).to.deep.equal(tokens));
  }

  it('forgets removed objects and re-indexes updated ones', () => {
    const idx = new MeshIndex();
    const a = vs('a', 'n', ['reviews'], 'reviews');
    idx.upsert(a);
    idx.upsert(vs('a', 'n', ['ratings'], 'ratings'));
    expect(idx.withCandidate(vs('b', 'n', ['reviews'], 'reviews'))).to.have.length(1);
    expect(idx.withCandidate(vs('b', 'n', ['ratings'], 'ratings'))).to.have.length(2);
    idx.remove(a);
    expect(idx.size).to.equal(0);
    expect(idx.withCandidate(vs('b', 'n', ['ratings'], 'ratings'))).to.have.length(1);
  });
});
