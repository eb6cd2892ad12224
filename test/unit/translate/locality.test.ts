import { expect } from 'chai';
import {
  applyLocality,
  localityKey,
  localityLbPolicy,
  localityMatch,
  localityOf,
  parseLocality,
  type LocalityLbPolicy,
  type LocalityProxy,
} from '../../../pkg/translate/locality.js';
import type { Endpoint } from '../../../pkg/proxyconfig/types.js';

const ep = (address: string, locality?: string, labels?: Record<string, string>): Endpoint => ({
  address,
  port: 80,
  ...(labels ? { labels } : {}),
  ...(locality !== undefined ? { locality } : {}),
});

/** address → priority (0 when absent) of the result. */
const priorities = (eps: Endpoint[]): Record<string, number> =>
  Object.fromEntries(eps.map((e) => [e.address, e.priority ?? 0]));

describe("locality: where a pod's locality comes from", () => {
  const node = {
    'topology.kubernetes.io/region': 'us-east',
    'topology.kubernetes.io/zone': 'us-east-1a',
  };
  const TABLE: [
    string,
    Record<string, string> | undefined,
    Record<string, string> | undefined,
    string | undefined,
  ][] = [
    ['node region and zone', {}, node, 'us-east/us-east-1a'],
    [
      'node subzone label (topology.istio.io/subzone)',
      {},
      { ...node, 'topology.istio.io/subzone': 'rack7' },
      'us-east/us-east-1a/rack7',
    ],
    [
      'istio-locality pod label (dots) wins over the node',
      { 'istio-locality': 'eu.eu-1.r2' },
      node,
      'eu/eu-1/r2',
    ],
    ['istio-locality with region only', { 'istio-locality': 'eu' }, undefined, 'eu'],
    ['empty istio-locality is ignored', { 'istio-locality': '' }, node, 'us-east/us-east-1a'],
    ['node with no topology labels', {}, { 'kubernetes.io/hostname': 'n1' }, undefined],
    ['no node known', {}, undefined, undefined],
    ['zone without region keeps its place', {}, { 'topology.kubernetes.io/zone': 'z' }, '/z'],
  ];
  for (const [name, pod, nodeLabels, want] of TABLE)
    it(name, () => expect(localityOf(pod, nodeLabels)).to.equal(want));
});

describe('locality: rule matching (Istio LocalityMatch)', () => {
  const l = parseLocality('region1/zone1/subzone1');
  const TABLE: [string, boolean][] = [
    ['*', true],
    ['region1', true],
    ['region1/*', true],
    ['region1/zone1', true],
    ['region1/zone1/*', true],
    ['region1/zone1/subzone1', true],
    ['region1/zone1/subzone2', false],
    ['region1/zone2', false],
    ['region2', false],
    ['region2/*', false],
    ['region1/zone2/*', false],
  ];
  for (const [rule, want] of TABLE)
    it(`${rule} → ${want}`, () => expect(localityMatch(l, rule)).to.equal(want));
});

describe('locality: which setting applies (GetLocalityLbSetting + outlier detection)', () => {
  const dist = [{ from: 'r1/*', to: { 'r1/*': 80, 'r2/*': 20 } }];
  const TABLE: [string, Parameters<typeof localityLbPolicy>[0], boolean, LocalityLbPolicy | undefined][] = [
    ['no setting, no outlier detection: every endpoint alike', undefined, false, undefined],
    ['no setting, outlier detection: mesh default failover', undefined, true, {}],
    ['enabled: false turns it off', { enabled: false }, true, undefined],
    ['enabled: false wins over distribute', { enabled: false, distribute: dist }, false, undefined],
    ['enabled: true with outlier detection', { enabled: true }, true, {}],
    ['distribute needs no outlier detection', { distribute: dist }, false, { distribute: dist }],
    [
      'failover without outlier detection: off (Envoy would never fail over)',
      { failover: [{ from: 'r1', to: 'r2' }] },
      false,
      undefined,
    ],
    [
      'failover with outlier detection',
      { failover: [{ from: 'r1', to: 'r2' }] },
      true,
      { failover: [{ from: 'r1', to: 'r2' }] },
    ],
    [
      'failoverPriority with outlier detection',
      { failoverPriority: ['version'] },
      true,
      { failoverPriority: ['version'] },
    ],
    ['failoverPriority without outlier detection: off', { failoverPriority: ['version'] }, false, undefined],
  ];
  for (const [name, setting, od, want] of TABLE)
    it(name, () => expect(localityLbPolicy(setting, od)).to.deep.equal(want));
});

describe('locality: failover priorities (Istio applyLocalityFailover / applyFailoverPriorities)', () => {
  const me = { locality: 'region1/zone1/subzone1', labels: { app: 'client' } };
  const all = [
    ep('same', 'region1/zone1/subzone1'),
    ep('subzone', 'region1/zone1/subzone2'),
    ep('zone', 'region1/zone2/subzone1'),
    ep('r2', 'region2/zone1/subzone1'),
    ep('r3', 'region3/zone1/subzone1'),
  ];
  const TABLE: [string, Endpoint[], LocalityLbPolicy, LocalityProxy, Record<string, number>][] = [
    [
      'own locality 0, subzone 1, zone 2, other regions 3',
      all,
      {},
      me,
      { same: 0, subzone: 1, zone: 2, r2: 3, r3: 3 },
    ],
    [
      'failover region1→region2: region2 3, the rest 4',
      all,
      { failover: [{ from: 'region1', to: 'region2' }] },
      me,
      { same: 0, subzone: 1, zone: 2, r2: 3, r3: 4 },
    ],
    [
      'a failover rule for another region changes nothing',
      all,
      { failover: [{ from: 'region9', to: 'region3' }] },
      me,
      { same: 0, subzone: 1, zone: 2, r2: 3, r3: 3 },
    ],
    [
      'gaps are closed: own locality and another region → 0, 1',
      [all[0]!, all[3]!],
      {},
      me,
      { same: 0, r2: 1 },
    ],
    [
      'no local endpoint: the nearest is 0',
      [all[2]!, all[3]!, all[4]!],
      { failover: [{ from: 'region1', to: 'region3' }] },
      me,
      { zone: 0, r3: 1, r2: 2 },
    ],
    ['endpoint without locality is another region', [all[0]!, ep('none')], {}, me, { same: 0, none: 1 }],
    [
      'proxy without locality: endpoints without one first',
      [all[0]!, ep('none')],
      {},
      { locality: '', labels: {} },
      { none: 0, same: 1 },
    ],
  ];
  for (const [name, eps, policy, proxy, want] of TABLE)
    it(name, () => expect(priorities(applyLocality(eps, policy, proxy))).to.deep.equal(want));

  const byLabels = [
    ep('ab', 'region2/z/s', { a: 'a', b: 'b' }),
    ep('a-', 'region2/z/s', { a: 'a', b: 'x' }),
    ep('--', 'region2/z/s', { a: 'x', b: 'b' }),
    ep('none', 'region2/z/s', {}),
  ];
  const proxy = { locality: 'region1/zone1/subzone1', labels: { a: 'a', b: 'b' } };
  const FP: [string, Endpoint[], LocalityLbPolicy, LocalityProxy, Record<string, number>][] = [
    [
      'labels in order: all match 0, first matches 1, none 2',
      byLabels,
      { failoverPriority: ['a', 'b'] },
      proxy,
      { ab: 0, 'a-': 1, '--': 2, none: 2 },
    ],
    [
      'failoverPriority alone ignores regions',
      [ep('far', 'region9', { a: 'a', b: 'b' }), ep('near', 'region1/zone1/subzone1', { a: 'x' })],
      { failoverPriority: ['a'] },
      proxy,
      { far: 0, near: 1 },
    ],
    [
      "label=value overrides the proxy's value",
      byLabels,
      { failoverPriority: ['a=x'] },
      proxy,
      { '--': 0, ab: 1, 'a-': 1, none: 1 },
    ],
    [
      'proxy without labels: failoverPriority does nothing',
      byLabels,
      { failoverPriority: ['a'] },
      { locality: 'region1/zone1/subzone1', labels: {} },
      { ab: 0, 'a-': 0, '--': 0, none: 0 },
    ],
    [
      'topology labels come from the locality',
      [ep('z1', 'region1/zone1/s9'), ep('z2', 'region1/zone2/subzone1')],
      { failoverPriority: ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone'] },
      proxy,
      { z1: 0, z2: 1 },
    ],
    [
      'failoverPriority then failover: labels first, locality within',
      [
        ep('l-far', 'region2/z', { a: 'a' }),
        ep('l-near', 'region1/zone1/subzone1', { a: 'a' }),
        ep('x-near', 'region1/zone1/subzone1', { a: 'x' }),
      ],
      { failoverPriority: ['a'], failover: [{ from: 'region1', to: 'region2' }] },
      proxy,
      { 'l-near': 0, 'l-far': 1, 'x-near': 2 },
    ],
  ];
  for (const [name, eps, policy, px, want] of FP)
    it(name, () => expect(priorities(applyLocality(eps, policy, px))).to.deep.equal(want));

  it('leaves the input untouched and drops a stale priority', () => {
    const input = [ep('a', 'region1/zone1/subzone1'), { ...ep('b', 'region1/zone1/subzone1'), priority: 3 }];
    const out = applyLocality(input, {}, me);
    expect(out.map((e) => e.priority)).to.deep.equal([undefined, undefined]);
    expect(input[1]!.priority).to.equal(3);
  });
});

describe('locality: distribute (Istio applyLocalityWeights)', () => {
  const eps = [
    ep('a1', 'region1/zone1/subzone1'),
    ep('a2', 'region1/zone1/subzone1'),
    ep('b', 'region1/zone2/subzone1'),
    ep('c', 'region2/zone1/subzone1'),
    ep('d', 'region3/zone1/subzone1'),
  ];
  const me = { locality: 'region1/zone1/subzone1', labels: {} };
  const weights = (out: Endpoint[]): Record<string, number | undefined> =>
    Object.fromEntries(out.map((e) => [e.address, e.localityWeight]));
  const TABLE: [string, LocalityLbPolicy['distribute'], Record<string, number | undefined>][] = [
    [
      'weights per named locality; unnamed localities get nothing',
      [{ from: 'region1/zone1/*', to: { 'region1/zone1/*': 80, 'region2/zone1/*': 20 } }],
      { a1: 80, a2: 80, c: 20 },
    ],
    [
      'a wildcard over several localities splits by their size (ceil)',
      [{ from: 'region1/*', to: { 'region1/*': 100 } }],
      { a1: 67, a2: 67, b: 34 },
    ],
    [
      'the first `to` that matches a locality claims it',
      [{ from: '*', to: { 'region1/zone1/*': 50, 'region1/*': 50 } }],
      { a1: 50, a2: 50, b: 50 },
    ],
    [
      'a rule for another `from` does not apply',
      [{ from: 'region2/*', to: { 'region2/*': 100 } }],
      { a1: undefined, a2: undefined, b: undefined, c: undefined, d: undefined },
    ],
    [
      'the first matching `from` wins',
      [
        { from: 'region1/zone1/subzone1', to: { 'region3/*': 100 } },
        { from: 'region1/*', to: { 'region2/*': 100 } },
      ],
      { d: 100 },
    ],
  ];
  for (const [name, distribute, want] of TABLE)
    it(name, () => expect(weights(applyLocality(eps, { distribute: distribute! }, me))).to.deep.equal(want));

  it('distributed endpoints all stay at priority 0', () => {
    const out = applyLocality(eps, { distribute: [{ from: '*', to: { '*': 100 } }] }, me);
    expect(out.every((e) => e.priority === undefined)).to.equal(true);
  });
});

describe('locality: the cache key of a localized config', () => {
  it('is the locality alone unless some failoverPriority names labels', () => {
    const a = { locality: 'r/z', labels: { app: 'x', pod: '1' } };
    const b = { locality: 'r/z', labels: { app: 'y', pod: '2' } };
    expect(localityKey({ c: {} }, a)).to.equal(localityKey({ c: {} }, b));
    expect(localityKey({ c: {} }, a)).to.not.equal(localityKey({ c: {} }, { ...a, locality: 'r/z2' }));
    expect(localityKey({ c: { failoverPriority: ['app'] } }, a)).to.not.equal(
      localityKey({ c: { failoverPriority: ['app'] } }, b),
    );
    expect(localityKey({ c: { failoverPriority: ['app=x'] } }, a)).to.not.equal(
      localityKey({ c: { failoverPriority: ['app=x'] } }, { locality: 'r/z', labels: {} }),
    );
  });
});
