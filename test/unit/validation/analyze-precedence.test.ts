/**
 * weftctl analyze names the object that wins a host and why (issue #15): sidecars use the oldest
 * VirtualService; DestinationRules in one namespace merge oldest first; across namespaces a
 * client uses its own namespace's rule, else the service's, else the root namespace's.
 */
import { expect } from 'chai';
import { analyzeObjects } from '../../../pkg/validation/index.js';

type Obj = Record<string, unknown>;
const NET = 'networking.istio.io/v1';
const meta = (name: string, namespace: string, ts?: string): Obj => ({
  name,
  namespace,
  ...(ts ? { creationTimestamp: ts } : {}),
});
const vs = (name: string, ts?: string, ns = 'default'): Obj => ({
  apiVersion: NET,
  kind: 'VirtualService',
  metadata: meta(name, ns, ts),
  spec: {
    hosts: ['reviews.default.svc.cluster.local'],
    http: [{ route: [{ destination: { host: 'reviews' } }] }],
  },
});
const dr = (name: string, ns: string, spec: Obj = {}, ts?: string): Obj => ({
  apiVersion: NET,
  kind: 'DestinationRule',
  metadata: meta(name, ns, ts),
  spec: { host: 'reviews.default.svc.cluster.local', ...spec },
});
const LB = { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } };

describe('analyze: which VirtualService wins a host, and why', () => {
  const CASES: [string, Obj[], string, string, RegExp][] = [
    [
      'older by creationTimestamp, listed second',
      [vs('a', '2026-02-01T00:00:00Z'), vs('b', '2026-01-01T00:00:00Z')],
      'a',
      'b',
      /VirtualService default\/b wins \(older: created 2026-01-01T00:00:00Z, this one 2026-02-01T00:00:00Z\)/,
    ],
    [
      'same time: first by name',
      [vs('b', '2026-01-01T00:00:00Z'), vs('a', '2026-01-01T00:00:00Z')],
      'b',
      'a',
      /default\/a wins \(same creationTimestamp: the first by name\)/,
    ],
    [
      'same name: first by namespace',
      [vs('r', undefined, 'zz'), vs('r', undefined, 'aa')],
      'r',
      'r',
      /VirtualService aa\/r wins \(same creationTimestamp and name: the first by namespace\)/,
    ],
    [
      'no timestamp on the winner',
      [vs('b', '2026-01-01T00:00:00Z'), vs('a')],
      'b',
      'a',
      /default\/a wins \(in a cluster the older wins; here it has no creationTimestamp\)/,
    ],
  ];
  for (const [name, objs, loser, winner, message] of CASES)
    it(name, () => {
      const f = analyzeObjects(objs).filter((x) => x.rule === 'analyze.vs.hostConflict');
      expect(f).to.have.length(1);
      expect(f[0]!.object.name).to.equal(loser);
      expect(f[0]!.related![0]!.name).to.equal(winner);
      expect(f[0]!.message).to.match(message);
    });
});

describe('analyze: DestinationRules for one host', () => {
  it('same namespace: the older comes first and the newer trafficPolicy is ignored', () => {
    const f = analyzeObjects([
      dr('new', 'default', LB, '2026-02-01T00:00:00Z'),
      dr('old', 'default', LB, '2026-01-01T00:00:00Z'),
    ]);
    expect(f.map((x) => [x.rule, x.object.name])).to.deep.equal([['analyze.dr.hostConflict', 'new']]);
    expect(f[0]!.message).to.match(
      /DestinationRule default\/old comes first \(older: .*\), so this one's trafficPolicy is ignored/,
    );
  });
  it('same namespace, the newer without policy: its subsets are added', () => {
    const f = analyzeObjects([
      dr('old', 'default', LB, '2026-01-01T00:00:00Z'),
      dr('new', 'default', {}, '2026-02-01T00:00:00Z'),
    ]);
    expect(f[0]!.message).to.match(/its trafficPolicy, if any, is kept/);
  });
  const CASES: [string, Obj[], [string, RegExp][]][] = [
    [
      "client namespace and the service's",
      [dr('svc', 'default', LB), dr('mine', 'frontend', LB)],
      [
        [
          'mine',
          /clients in frontend use this one whole .*clients elsewhere never use it and get DestinationRule default\/svc \(the service's namespace\)/,
        ],
      ],
    ],
    [
      'client namespace and root',
      [dr('root', 'weft-system', LB), dr('mine', 'frontend', LB)],
      [
        ['root', /this root-namespace rule applies only to clients whose namespace has none$/],
        ['mine', /get DestinationRule weft-system\/root \(the root namespace weft-system\)/],
      ],
    ],
    [
      'service namespace and root: root is never used',
      [dr('root', 'weft-system', LB), dr('svc', 'default', LB)],
      [['root', /\(none do: default, the service's namespace, has one\)/]],
    ],
  ];
  for (const [name, objs, want] of CASES)
    it(name, () => {
      const f = analyzeObjects(objs).filter((x) => x.rule === 'analyze.dr.precedence');
      expect(f.map((x) => x.object.name)).to.deep.equal(want.map(([n]) => n));
      want.forEach(([, re], i) => expect(f[i]!.message).to.match(re));
    });
  it('one rule, or rules in one namespace only: no precedence finding', () => {
    expect(
      analyzeObjects([dr('mine', 'frontend', LB)]).filter((x) => x.rule === 'analyze.dr.precedence'),
    ).to.deep.equal([]);
  });
});
