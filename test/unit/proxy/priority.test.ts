import { expect } from 'chai';
import {
  chooseWeighted,
  choosePriority,
  effectiveLocalityWeights,
  levelHealth,
  priorityLoad,
} from '../../../proxy/upstream/priority.js';
import { ClusterRuntime } from '../../../proxy/upstream/cluster.js';
import type { Cluster, Endpoint } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';

/** Healthy percentages (of 100 hosts per level) → priority load. */
const loadFor = (...healthyPct: number[]): number[] =>
  priorityLoad(
    healthyPct,
    healthyPct.map(() => 100),
  );

describe('proxy priority load (Envoy priority levels, overprovisioning factor 1.4)', () => {
  // Envoy's documented examples (arch_overview/upstream/load_balancing/priority)
  const TWO: [number, number[]][] = [
    [100, [100, 0]],
    [72, [100, 0]],
    [71, [99, 1]],
    [50, [70, 30]],
    [25, [35, 65]],
    [0, [0, 100]],
  ];
  for (const [p0, want] of TWO)
    it(`P0 ${p0}% healthy, P1 100% → ${want.join('/')}`, () => expect(loadFor(p0, 100)).to.deep.equal(want));

  const THREE: [number[], number[]][] = [
    [
      [100, 100, 100],
      [100, 0, 0],
    ],
    [
      [72, 72, 100],
      [100, 0, 0],
    ],
    [
      [71, 71, 100],
      [99, 1, 0],
    ],
    [
      [50, 50, 100],
      [70, 30, 0],
    ],
    [
      [25, 100, 100],
      [35, 65, 0],
    ],
    [
      [25, 25, 100],
      [35, 35, 30],
    ],
    // normalized total health 98: 35/35/28 scaled, the 2 % rounding remainder to the first healthy
    // level as Envoy's code does (its doc table rounds this row to 36/36/28)
    [
      [25, 25, 20],
      [37, 35, 28],
    ],
    // normalized: 20 % and 20 % → health 28 + 28 = 56 → half each (Envoy's aggregate-cluster example)
    [
      [20, 20],
      [50, 50],
    ],
    [
      [20, 0, 0],
      [100, 0, 0],
    ],
  ];
  for (const [healthy, want] of THREE)
    it(`${healthy.join('/')} % healthy → ${want.join('/')}`, () =>
      expect(loadFor(...healthy)).to.deep.equal(want));

  it('health is integer percent: 5 of 7 healthy is 100, 1 of 2 is 70, 1 of 200 is 0', () => {
    expect(levelHealth(5, 7)).to.equal(100);
    expect(levelHealth(1, 2)).to.equal(70);
    expect(levelHealth(1, 200)).to.equal(0);
    expect(levelHealth(0, 0)).to.equal(0);
  });
  it('an empty level takes no load; nothing healthy anywhere puts everything on P0', () => {
    expect(priorityLoad([0, 3], [0, 3])).to.deep.equal([0, 100]);
    expect(priorityLoad([0, 0], [2, 2])).to.deep.equal([100, 0]);
  });

  it('draws map onto the cumulative load', () => {
    expect(choosePriority([70, 30], 0)).to.equal(0);
    expect(choosePriority([70, 30], 0.699)).to.equal(0);
    expect(choosePriority([70, 30], 0.7)).to.equal(1);
    expect(choosePriority([70, 30], 0.9999)).to.equal(1);
    expect(choosePriority([100, 0], 0.9999)).to.equal(0);
    expect(choosePriority([0, 100, 0], 0)).to.equal(1);
  });

  it('locality weights scale by availability (min(1, 1.4 × healthy share))', () => {
    expect(
      effectiveLocalityWeights([
        { weight: 80, healthy: 10, total: 10 },
        { weight: 20, healthy: 1, total: 2 },
        { weight: 50, healthy: 0, total: 3 },
      ]),
    ).to.deep.equal([80, 14, 0]);
    expect(chooseWeighted([80, 20], 0.79)).to.equal(0);
    expect(chooseWeighted([80, 20], 0.8)).to.equal(1);
    expect(chooseWeighted([0, 0], 0.5)).to.equal(-1);
  });
});

describe('proxy cluster with priority levels (outlier ejection spills load)', () => {
  const ep = (n: number, priority?: number, extra: Partial<Endpoint> = {}): Endpoint => ({
    address: `10.0.0.${n}`,
    port: 80,
    ...(priority !== undefined ? { priority } : {}),
    ...extra,
  });
  /** Picks `n` times with draws spread evenly over [0, 1); counts by endpoint address. */
  function spread(rt: ClusterRuntime, n: number, draws: number[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      draws.push((i + 0.5) / n);
      const e = rt.pick(null, null);
      const k = e?.address ?? 'none';
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
  function runtime(def: Cluster): { rt: ClusterRuntime; draws: number[] } {
    const draws: number[] = [];
    // level draw first, then the balancer's (ROUND_ROBIN draws nothing)
    const rand = (): number => draws.shift() ?? 0;
    const rt = new ClusterRuntime(def, 'k', () => 0, rand);
    return { rt, draws };
  }
  const od = { consecutive5xxErrors: 1, maxEjectionPercent: 100, intervalMs: 3_600_000 };

  it('every request goes to priority 0 while it is healthy', () => {
    const { rt, draws } = runtime({
      name: 'c',
      endpoints: [ep(1), ep(2), ep(3, 1)],
      loadBalancer: { simple: 'ROUND_ROBIN' },
      outlierDetection: od,
    });
    expect(rt.priorityLoad()).to.deep.equal([100, 0]);
    expect(spread(rt, 100, draws)).to.deep.equal({ '10.0.0.1': 50, '10.0.0.2': 50 });
  });

  it('one of two local endpoints ejected: 70 % stay local, 30 % spill to priority 1', () => {
    const { rt, draws } = runtime({
      name: 'c',
      endpoints: [ep(1), ep(2), ep(3, 1)],
      loadBalancer: { simple: 'ROUND_ROBIN' },
      outlierDetection: od,
    });
    rt.record(rt.endpoints[0]!, 503);
    expect(rt.priorityLoad()).to.deep.equal([70, 30]);
    expect(spread(rt, 100, draws)).to.deep.equal({ '10.0.0.2': 70, '10.0.0.3': 30 });
  });

  it('every local endpoint ejected: everything fails over; back when the ejection ends', () => {
    let now = 0;
    const draws: number[] = [];
    const rt = new ClusterRuntime(
      {
        name: 'c',
        endpoints: [ep(1), ep(2, 1), ep(3, 2)],
        loadBalancer: { simple: 'ROUND_ROBIN' },
        outlierDetection: { ...od, baseEjectionTimeMs: 1000 },
      },
      'k',
      () => now,
      () => draws.shift() ?? 0,
    );
    rt.record(rt.endpoints[0]!, 500);
    expect(rt.priorityLoad()).to.deep.equal([0, 100, 0]);
    expect(spread(rt, 10, draws)).to.deep.equal({ '10.0.0.2': 10 });
    now = 1000;
    rt.onInterval();
    expect(rt.priorityLoad()).to.deep.equal([100, 0, 0]);
    expect(spread(rt, 10, draws)).to.deep.equal({ '10.0.0.1': 10 });
  });

  it('without priorities or locality weights the cluster keeps one balancer (no level draw)', () => {
    const { rt, draws } = runtime({
      name: 'c',
      endpoints: [ep(1), ep(2)],
      loadBalancer: { simple: 'ROUND_ROBIN' },
    });
    expect(rt.priorityLoad()).to.deep.equal([100]);
    draws.push(0.99);
    expect(rt.pick(null, null)?.address).to.equal('10.0.0.1');
    expect(draws).to.deep.equal([0.99]); // not consumed
  });

  it('locality weights split a level by weight (distribute)', () => {
    const { rt, draws } = runtime({
      name: 'c',
      endpoints: [
        ep(1, undefined, { locality: 'r1/a', localityWeight: 80 }),
        ep(2, undefined, { locality: 'r2/b', localityWeight: 20 }),
      ],
      loadBalancer: { simple: 'ROUND_ROBIN' },
    });
    // one draw for the level, one for the locality
    const out: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      draws.push(0, (i + 0.5) / 100);
      const k = rt.pick(null, null)!.address;
      out[k] = (out[k] ?? 0) + 1;
    }
    expect(out).to.deep.equal({ '10.0.0.1': 80, '10.0.0.2': 20 });
  });

  it("/clusters shows each endpoint's locality and priority and the priority load", () => {
    const { rt } = runtime({ name: 'c', endpoints: [ep(1, undefined, { locality: 'r/z' }), ep(2, 1)] });
    const d = rt.describe() as { priorityLoad: number[]; endpoints: Record<string, unknown>[] };
    expect(d.priorityLoad).to.deep.equal([100, 0]);
    expect(d.endpoints[0]).to.include({ locality: 'r/z' });
    expect(d.endpoints[1]).to.include({ priority: 1 });
  });
});

describe('proxy config validation: locality fields of an endpoint', () => {
  const cfg = (extra: Record<string, unknown>): unknown => ({
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: '1',
    listeners: [],
    clusters: [{ name: 'c', endpoints: [{ address: '10.0.0.1', port: 80, ...extra }] }],
  });
  const TABLE: [string, Record<string, unknown>, string[]][] = [
    [
      'priority, locality and weight as weftd writes them',
      { priority: 2, locality: 'r/z/s', localityWeight: 40 },
      [],
    ],
    ['a negative priority', { priority: -1 }, ['clusters[0].endpoints[0].priority']],
    ['a fractional priority', { priority: 1.5 }, ['clusters[0].endpoints[0].priority']],
    [
      'a priority past 1000 (a level per endpoint would be a cost bomb)',
      { priority: 1e9 },
      ['clusters[0].endpoints[0].priority'],
    ],
    ['a string priority', { priority: '1' }, ['clusters[0].endpoints[0].priority']],
    ['a zero locality weight', { localityWeight: 0 }, ['clusters[0].endpoints[0].localityWeight']],
    ['a locality that is not a string', { locality: 3 }, ['clusters[0].endpoints[0].locality']],
  ];
  for (const [name, extra, paths] of TABLE)
    it(name, () => expect(validateProxyConfig(cfg(extra)).map((p) => p.path)).to.deep.equal(paths));
});
