import { expect } from 'chai';
import {
  compileConfig,
  pickDest,
  findVHost,
  type CompiledHttpListener,
} from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import type { ProxyConfig, WeightedDestination } from '../../../pkg/proxyconfig/types.js';
import { createBalancer, fnv1a, type LbEndpoint } from '../../../proxy/upstream/lb.js';

/** Deterministic PRNG (mulberry32) so statistical tests are reproducible. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cfg(dests: WeightedDestination[]): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 't',
    listeners: [
      {
        name: 'l',
        protocol: 'HTTP',
        port: 0,
        virtualHosts: [
          { name: 'vh', domains: ['*'], routes: [{ action: { type: 'route', destinations: dests } }] },
        ],
      },
    ],
    clusters: dests.map((d) => ({ name: d.cluster, endpoints: [] })),
  };
}

function shares(dests: WeightedDestination[], n: number, seed: number): Record<string, number> {
  const { config } = compileConfig(cfg(dests), {
    metrics: new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }),
  });
  const route = findVHost(config.listeners[0] as CompiledHttpListener, 'x')!.routes[0]!;
  const rand = seeded(seed);
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = pickDest(route, rand()).clusterName;
    counts[d] = (counts[d] ?? 0) + 1;
  }
  for (const k of Object.keys(counts)) counts[k] = counts[k]! / n;
  return counts;
}

describe('proxy weighted destinations (fixed seeds)', () => {
  const CASES: [string, WeightedDestination[], Record<string, number>][] = [
    [
      '90/10',
      [
        { cluster: 'a', weight: 90 },
        { cluster: 'b', weight: 10 },
      ],
      { a: 0.9, b: 0.1 },
    ],
    [
      '50/50',
      [
        { cluster: 'a', weight: 50 },
        { cluster: 'b', weight: 50 },
      ],
      { a: 0.5, b: 0.5 },
    ],
    [
      'relative weights 1:3',
      [
        { cluster: 'a', weight: 1 },
        { cluster: 'b', weight: 3 },
      ],
      { a: 0.25, b: 0.75 },
    ],
    [
      'zero weight gets nothing',
      [
        { cluster: 'a', weight: 0 },
        { cluster: 'b', weight: 5 },
      ],
      { b: 1 },
    ],
    ['single destination ignores its weight', [{ cluster: 'a', weight: 0 }], { a: 1 }],
    [
      'three-way 20/30/50',
      [
        { cluster: 'a', weight: 20 },
        { cluster: 'b', weight: 30 },
        { cluster: 'c', weight: 50 },
      ],
      { a: 0.2, b: 0.3, c: 0.5 },
    ],
  ];
  for (const [name, dests, want] of CASES) {
    for (const seed of [1, 42, 2026]) {
      it(`${name} (seed ${seed}) within ±2% over 20,000 picks`, () => {
        const got = shares(dests, 20_000, seed);
        expect(Object.keys(got).sort()).to.deep.equal(Object.keys(want).sort());
        for (const [k, v] of Object.entries(want)) expect(got[k]).to.be.closeTo(v, 0.02);
      });
    }
  }
  it('weights summing to 0 with several destinations are rejected at compile time', () => {
    expect(() =>
      compileConfig(
        cfg([
          { cluster: 'a', weight: 0 },
          { cluster: 'b', weight: 0 },
        ]),
        { metrics: new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }) },
      ),
    ).to.throw(/weights sum to 0/);
  });
});

describe('proxy load balancers', () => {
  const hosts = (n: number): LbEndpoint[] =>
    Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i}:80`, active: 0 }));
  it('ROUND_ROBIN cycles', () => {
    const b = createBalancer({ simple: 'ROUND_ROBIN' }, Math.random);
    const h = hosts(3);
    b.rebuild(h);
    expect([0, 1, 2, 3].map(() => b.pick(null, null)!.key)).to.deep.equal([
      h[0]!.key,
      h[1]!.key,
      h[2]!.key,
      h[0]!.key,
    ]);
  });
  it('LEAST_REQUEST (P2C) prefers the less loaded of two', () => {
    const b = createBalancer(undefined, seeded(7));
    const h = hosts(2);
    h[0]!.active = 10;
    b.rebuild(h);
    for (let i = 0; i < 50; i++) expect(b.pick(null, null)).to.equal(h[1]);
  });
  it('RANDOM spreads evenly (seeded)', () => {
    const b = createBalancer({ simple: 'RANDOM' }, seeded(3));
    const h = hosts(4);
    b.rebuild(h);
    const c = new Map<LbEndpoint, number>();
    for (let i = 0; i < 8000; i++) {
      const p = b.pick(null, null)!;
      c.set(p, (c.get(p) ?? 0) + 1);
    }
    for (const v of c.values()) expect(v / 8000).to.be.closeTo(0.25, 0.03);
  });
  it('retries avoid the previous host', () => {
    const b = createBalancer({ simple: 'ROUND_ROBIN' }, Math.random);
    const h = hosts(2);
    b.rebuild(h);
    for (let i = 0; i < 4; i++) expect(b.pick(null, h[0]!)).to.equal(h[1]);
  });
  it('consistent hash on a header is sticky and spreads keys', () => {
    const b = createBalancer({ consistentHash: { httpHeaderName: 'x-user' } }, seeded(1));
    const h = hosts(4);
    b.rebuild(h);
    const input = (u: string) => ({
      view: {
        method: 'GET',
        path: '/',
        query: '',
        target: '/',
        authority: '',
        scheme: 'http',
        port: 80,
        headers: { 'x-user': u },
      },
      sourceIp: '',
    });
    const first = b.pick(input('alice'), null);
    for (let i = 0; i < 10; i++) expect(b.pick(input('alice'), null)).to.equal(first);
    const used = new Set(Array.from({ length: 200 }, (_, i) => b.pick(input(`u${i}`), null)));
    expect(used.size).to.equal(4);
    expect(fnv1a('a')).to.equal(fnv1a('a')).and.not.equal(fnv1a('b'));
  });
  it('consistent hash on a cookie and on the source IP', () => {
    const byCookie = createBalancer({ consistentHash: { httpCookie: { name: 'sid' } } }, seeded(1));
    const h = hosts(8);
    byCookie.rebuild(h);
    const v = (cookie: string) => ({
      view: {
        method: 'GET',
        path: '/',
        query: '',
        target: '/',
        authority: '',
        scheme: 'http',
        port: 80,
        headers: { cookie },
      },
      sourceIp: '',
    });
    expect(byCookie.pick(v('a=1; sid=xyz'), null)).to.equal(byCookie.pick(v('sid=xyz'), null));
    const byIp = createBalancer({ consistentHash: { useSourceIp: true } }, seeded(1));
    byIp.rebuild(h);
    const ip = (sourceIp: string) => ({
      view: {
        method: 'GET',
        path: '/',
        query: '',
        target: '/',
        authority: '',
        scheme: 'http',
        port: 80,
        headers: {},
      },
      sourceIp,
    });
    expect(byIp.pick(ip('10.9.9.9'), null)).to.equal(byIp.pick(ip('10.9.9.9'), null));
  });
});
