/**
 * Delta pushes without sockets (ADR 0020): a config as named resources, weftd's delta between two
 * configs (controlplane/delta.ts), the proxy applying it (proxy/discovery/held.ts): added, updated
 * and removed resources, order kept, hash mismatches, a removed resource another still names, and
 * the resume cache's bounds.
 */
import { expect } from 'chai';
import { encodeDelta, planFor, ResumeCache, collectionsOf } from '../../../controlplane/delta.js';
import {
  diffIndexes,
  heldStateOf,
  indexDigest,
  joinConfig,
  stateHash,
  resourceVersion,
  splitCollections,
  type HeldState,
} from '../../../pkg/discovery/delta.js';
import {
  MessageDecoder,
  discoveryQuery,
  parseAck,
  parseDiscoveryQuery,
  type DiscoveryMessage,
} from '../../../pkg/discovery/protocol.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import type { Cluster, HttpListener, ProxyConfig, VirtualHost } from '../../../pkg/proxyconfig/types.js';
import { ResourceHolder } from '../../../proxy/discovery/held.js';

const NONCE = '0'.repeat(32);

function vhost(name: string, cluster = `c-${name}`): VirtualHost {
  return {
    name,
    domains: [name],
    routes: [{ action: { type: 'route', destinations: [{ cluster, weight: 100 }] } }],
  };
}

function cluster(name: string, ip = '10.0.0.1'): Cluster {
  return { name, endpoints: [{ address: ip, port: 8080 }] };
}

function config(hosts: VirtualHost[], clusters: Cluster[], extra: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v',
    listeners: [{ name: 'outbound', protocol: 'HTTP', port: 15001, virtualHosts: hosts }],
    clusters,
    telemetry: { workload: { name: 'w', namespace: 'ns' } },
    ...extra,
  };
}

const base = config([vhost('a'), vhost('b'), vhost('c')], [cluster('c-a'), cluster('c-b'), cluster('c-c')]);

/** weftd's delta from `from` to `to`, decoded as the proxy's decoder does. */
function delta(
  from: ProxyConfig,
  to: ProxyConfig,
  version = 'v2',
): Extract<DiscoveryMessage, { type: 'delta' }> {
  const f = planFor(from)!;
  const t = planFor(to)!;
  const d = encodeDelta(f.held, t, version, NONCE, () => Infinity)!;
  const [m] = new MessageDecoder().push(d.line);
  if (m?.type !== 'delta') throw new Error('not a delta');
  return m;
}

/** A proxy holding `c`. */
function holding(c: ProxyConfig): ResourceHolder {
  const h = new ResourceHolder();
  h.commit(h.fromFull(c, c.version));
  return h;
}

/** JSON round trip: what a proxy has after the wire. */
const wire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('delta pushes: resources and diffs', () => {
  const cases: {
    title: string;
    to: ProxyConfig;
    changed: string[];
    removed: string[];
  }[] = [
    { title: 'nothing changed', to: base, changed: [], removed: [] },
    {
      title: 'one virtual host updated (a VirtualService change)',
      to: config(
        [
          vhost('a'),
          { ...vhost('b'), routes: [{ action: { type: 'directResponse', status: 418 } }] },
          vhost('c'),
        ],
        base.clusters,
      ),
      changed: ['vhost/outbound/b'],
      removed: [],
    },
    {
      title: "one cluster's endpoints (an endpoint change)",
      to: config(
        base.listeners.flatMap((l) => (l as HttpListener).virtualHosts),
        [cluster('c-a'), cluster('c-b', '10.0.0.9'), cluster('c-c')],
      ),
      changed: ['endpoints/c-b'],
      removed: [],
    },
    {
      title: 'a host and its cluster added: the resources and the two indexes',
      to: config([vhost('a'), vhost('b'), vhost('c'), vhost('d')], [...base.clusters, cluster('c-d')]),
      changed: ['cluster/c-d', 'clusters', 'endpoints/c-d', 'listener/outbound', 'vhost/outbound/d'],
      removed: [],
    },
    {
      title: 'a host and its cluster removed',
      to: config([vhost('a'), vhost('c')], [cluster('c-a'), cluster('c-c')]),
      changed: ['clusters', 'listener/outbound'],
      removed: ['cluster/c-b', 'endpoints/c-b', 'vhost/outbound/b'],
    },
    {
      title: 'hosts reordered: only the listener (its index), no host resent',
      to: config([vhost('c'), vhost('a'), vhost('b')], base.clusters),
      changed: ['listener/outbound'],
      removed: [],
    },
    {
      title: 'a per-proxy field added and one removed',
      to: {
        ...config(
          base.listeners.flatMap((l) => (l as HttpListener).virtualHosts),
          base.clusters,
        ),
        telemetry: undefined,
        authz: { policies: [] },
      } as unknown as ProxyConfig,
      changed: ['config/authz'],
      removed: ['config/telemetry'],
    },
    {
      title:
        'a cluster removed that a route still names: the route is not touched (503 NC, as a full config)',
      to: config(
        base.listeners.flatMap((l) => (l as HttpListener).virtualHosts),
        [cluster('c-a'), cluster('c-c')],
      ),
      changed: ['clusters'],
      removed: ['cluster/c-b', 'endpoints/c-b'],
    },
    {
      title: 'gateway credentials: one secret rotated',
      to: config(
        base.listeners.flatMap((l) => (l as HttpListener).virtualHosts),
        base.clusters,
        {
          credentials: { s1: { source: 'ns/s1', certChain: 'new' } },
        },
      ),
      changed: ['secret/s1'],
      removed: [],
    },
  ];
  const withSecret = config(
    base.listeners.flatMap((l) => (l as HttpListener).virtualHosts),
    base.clusters,
    {
      credentials: { s1: { source: 'ns/s1', certChain: 'old' } },
    },
  );

  for (const c of cases)
    it(`${c.title}: sends ${c.changed.length} resource(s), removes ${c.removed.length}, and the proxy's result equals the full config`, () => {
      const from = c.title.startsWith('gateway') ? withSecret : base;
      const m = delta(from, c.to);
      expect(m.resources.map((r) => r.name)).to.deep.equal(c.changed);
      expect(m.removed).to.deep.equal(c.removed);
      const proxy = holding(wire(from));
      const { next, config: got } = proxy.applyDelta(m);
      expect(got).to.deep.equal(wire({ ...c.to, version: 'v2' }));
      expect(next.held.state).to.equal(planFor(c.to)!.held.state);
      // the proxy's state from the delta equals the one it computes from a whole config
      expect(next.held.state).to.equal(heldStateOf(wire(c.to))!.held.state);
    });

  it('keeps the order of hosts, listeners and clusters exactly (JSON identical to the full config)', () => {
    const to = config([vhost('c'), vhost('a'), vhost('b')], [cluster('c-c'), cluster('c-a'), cluster('c-b')]);
    const proxy = holding(wire(base));
    const { config: got } = proxy.applyDelta(delta(base, to));
    expect(got.listeners.flatMap((l) => (l as HttpListener).virtualHosts.map((v) => v.name))).to.deep.equal([
      'c',
      'a',
      'b',
    ]);
    expect(got.clusters.map((c) => c.name)).to.deep.equal(['c-c', 'c-a', 'c-b']);
  });

  it('diffs are sorted by name whatever the order of the configs', () => {
    const d = diffIndexes(
      new Map([
        ['z', '1'],
        ['a', '1'],
        ['m', '1'],
      ]),
      new Map([
        ['y', '1'],
        ['m', '2'],
        ['b', '1'],
      ]),
    );
    expect(d).to.deep.equal({ changed: ['b', 'm', 'y'], removed: ['a', 'z'] });
  });

  it('a config with two clusters of one name cannot be split (pushed whole)', () => {
    expect(splitCollections(base.listeners, [cluster('x'), cluster('x')])).to.equal(null);
    expect(planFor(config([vhost('a'), vhost('a')], []))).to.equal(null);
  });

  it('weftd splits a shared translation once (cached by its listeners array)', () => {
    const shared = config([vhost('a')], [cluster('c-a')]);
    // versions are content hashes (ConfigGenerator): pods with other telemetry have other versions
    const podA = { ...shared, version: 'va', telemetry: { workload: { name: 'a' } } };
    const podB = { ...shared, version: 'vb', telemetry: { workload: { name: 'b' } } };
    expect(collectionsOf(podA)).to.equal(collectionsOf(podB));
    expect(planFor(podA)!.held.state).not.to.equal(planFor(podB)!.held.state);
  });

  it('pods with one config version share one plan, and one delta line per move (only the nonce differs)', () => {
    const from = config([vhost('a')], [cluster('c-a')], { version: 'v1' });
    const shared = config([vhost('a', 'c-b')], [cluster('c-b')]);
    // two pods of one workload: their configs are built apart, equal, of one version
    const podA = { ...shared, version: 'v2', telemetry: { workload: { name: 'w', namespace: 'ns' } } };
    const podB = { ...shared, version: 'v2', telemetry: { workload: { name: 'w', namespace: 'ns' } } };
    const plan = planFor(podA)!;
    expect(planFor(podB)).to.equal(plan);
    const f = planFor(from)!.held;
    const one = encodeDelta(f, plan, 'v2', '1'.repeat(32), () => Infinity)!;
    const two = encodeDelta(f, planFor(podB)!, 'v2', '2'.repeat(32), () => Infinity)!;
    expect(two.line).to.equal(one.line.replace('1'.repeat(32), '2'.repeat(32)));
    expect(two.summary).to.equal(one.summary);
    // the line is the one built from scratch: what the proxy applies to reach podB
    const [m] = new MessageDecoder().push(two.line);
    if (m?.type !== 'delta') throw new Error('not a delta');
    expect(m.nonce).to.equal('2'.repeat(32));
    expect(wire(holding(from).applyDelta(m).config)).to.deep.equal(wire(podB));
  });

  it('a plan is per version: another version on the same translation is planned anew', () => {
    const shared = config([vhost('a')], [cluster('c-a')]);
    const v1 = { ...shared, version: 'x1', telemetry: { workload: { name: 'one' } } };
    const v2 = { ...shared, version: 'x2', telemetry: { workload: { name: 'two' } } };
    expect(planFor(v1)!.held.state).to.equal(heldStateOf(wire(v1))!.held.state);
    expect(planFor(v2)!.held.state).to.equal(heldStateOf(wire(v2))!.held.state);
  });

  it('a delta over half the config is not worth sending (null: push whole)', () => {
    const big = config(
      Array.from({ length: 400 }, (_, i) => vhost(`h${i}`)),
      [],
    );
    const other = config(
      Array.from({ length: 400 }, (_, i) => ({ ...vhost(`h${i}`), domains: [`x${i}`] })),
      [],
    );
    const f = planFor(big)!;
    const line = JSON.stringify(big);
    expect(encodeDelta(f.held, planFor(other)!, 'v2', NONCE, () => line.length)).to.equal(null);
  });
});

describe('delta pushes: the proxy refuses what does not apply (resync), keeping its state', () => {
  const to = config([vhost('a'), vhost('b', 'elsewhere'), vhost('c')], base.clusters);
  const mismatch = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      expect(isWeftError(err, 'WEFT_DISCOVERY_DELTA_MISMATCH'), String(err)).to.equal(true);
      return (err as Error).message;
    }
    throw new Error('no error');
  };
  const cases: {
    title: string;
    mutate: (m: Extract<DiscoveryMessage, { type: 'delta' }>) => void;
    why: RegExp;
  }[] = [
    { title: 'another base', mutate: (m) => (m.base = 'f'.repeat(32)), why: /applies to state/ },
    {
      title: 'a value that does not hash to its version',
      mutate: (m) => ((m.resources[0]!.value as VirtualHost).domains = ['evil']),
      why: /hashes to .* not its version/,
    },
    {
      title: 'a resource dropped from the delta (the result hashes otherwise)',
      mutate: (m) => m.resources.pop(),
      why: /after the delta hashes to/,
    },
    {
      title: 'a removal of a name not held',
      mutate: (m) => m.removed.push('cluster/nope'),
      why: /does not hold/,
    },
    {
      title: 'a wrong state hash',
      mutate: (m) => (m.state = '0'.repeat(32)),
      why: /after the delta hashes to/,
    },
  ];
  for (const c of cases)
    it(`${c.title}: WEFT_DISCOVERY_DELTA_MISMATCH, held state unchanged`, () => {
      const proxy = holding(wire(base));
      const before = proxy.state;
      const m = delta(base, to);
      c.mutate(m);
      expect(mismatch(() => proxy.applyDelta(m))).to.match(c.why);
      expect(proxy.state).to.equal(before);
      // the untouched delta still applies afterwards
      expect(proxy.applyDelta(delta(base, to)).next.held.state).to.equal(planFor(to)!.held.state);
    });

  it('a removal of a resource another still references (a host the listener lists) is refused when joined', () => {
    const proxy = holding(wire(base));
    // a delta whose hashes all agree, but which removes a host the listener still names
    const held = heldStateOf(wire(base))!.held;
    const collections = new Map(held.collections.versions);
    collections.delete('vhost/outbound/b');
    const m: Extract<DiscoveryMessage, { type: 'delta' }> = {
      type: 'delta',
      version: 'v2',
      nonce: NONCE,
      base: held.state,
      state: stateHash(indexDigest(collections), held.singletons),
      resources: [],
      removed: ['vhost/outbound/b'],
    };
    expect(mismatch(() => proxy.applyDelta(m))).to.match(/vhost\/outbound\/b is referenced but not held/);
    expect(proxy.state).to.equal(held.state);
    expect(mismatch(() => joinConfig(new Map(), 'v'))).to.match(/listeners is referenced/);
  });

  it('a delta to a proxy that holds nothing asks for the whole config', () => {
    expect(mismatch(() => new ResourceHolder().applyDelta(delta(base, to)))).to.match(/holds no resources/);
  });

  it('resource versions are the hash of the JSON the proxy receives', () => {
    const v = vhost('a');
    expect(resourceVersion(wire(v))).to.equal(resourceVersion(v));
  });
});

describe('delta pushes: the resume cache', () => {
  const state = (c: ProxyConfig): HeldState => planFor(c)!.held;
  it('resumes a proxy only from a state it was sent, once', () => {
    const cache = new ResumeCache();
    const s = state(base);
    cache.remember('sidecar/ns/a', [s]);
    expect(cache.take('sidecar/ns/b', s.state), "another proxy's key").to.equal(null);
    expect(cache.take('sidecar/ns/a', 'f'.repeat(32)), 'a forged state').to.equal(null);
    // the miss consumed the entry: a proxy cannot probe states one by one
    expect(cache.take('sidecar/ns/a', s.state)).to.equal(null);
    cache.remember('sidecar/ns/a', [s]);
    expect(cache.take('sidecar/ns/a', s.state)).to.equal(s);
  });

  it('is bounded in entries, age and distinct indexes pinned', () => {
    let now = 0;
    const cache = new ResumeCache(() => now, { entries: 3, indexes: 2, ttlMs: 1000 });
    const states = [0, 1, 2, 3].map((i) => state(config([vhost(`h${i}`)], [])));
    cache.remember('p0', [states[0]]);
    cache.remember('p1', [states[0]]);
    expect(cache.size).to.deep.equal({ entries: 2, indexes: 1 });
    cache.remember('p2', [states[1]]);
    cache.remember('p3', [states[2]]); // a third index: the oldest entries go until two are pinned
    expect(cache.size.indexes).to.be.at.most(2);
    expect(cache.size.entries).to.be.at.most(3);
    now = 5000;
    expect(cache.take('p3', states[2]!.state), 'expired').to.equal(null);
  });
});

describe('delta pushes: negotiation on the wire', () => {
  const query = (q: string) => parseDiscoveryQuery(new URL(`https://w${q}`).searchParams);
  it('delta=1 counts only with acks=1; state= rides along', () => {
    const state = 'ab'.repeat(16);
    const path = discoveryQuery({
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p',
      acks: true,
      delta: true,
      state,
    });
    expect(query(path)).to.deep.equal({
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p',
      acks: true,
      delta: true,
      state,
    });
    expect(query('/v1/discovery?kind=sidecar&namespace=ns&pod=p&delta=1').delta).to.equal(undefined);
    expect(discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: 'p', delta: true })).not.to.include(
      'delta',
    );
  });
  for (const bad of ['', 'ABCD'.repeat(8), 'a'.repeat(31), 'a'.repeat(33), 'g'.repeat(32)])
    it(`refuses state=${JSON.stringify(bad)} (400)`, () => {
      try {
        query(`/v1/discovery?kind=sidecar&namespace=ns&pod=p&acks=1&delta=1&state=${bad}`);
      } catch (err) {
        return expect(isWeftError(err, 'WEFT_DISCOVERY_REQUEST_INVALID')).to.equal(true);
      }
      throw new Error('accepted');
    });
  it('an ACK carries resync only with an error (a NACK)', () => {
    const ack = { kind: 'sidecar', namespace: 'ns', pod: 'p', version: 'v', nonce: NONCE };
    expect(parseAck({ ...ack, resync: true }).resync).to.equal(undefined);
    expect(parseAck({ ...ack, error: 'x', resync: true }).resync).to.equal(true);
    expect(parseAck({ ...ack, error: 'x', resync: 'yes' }).resync).to.equal(undefined);
  });
  it('the decoder refuses a delta whose resources are not {name, version, value}', () => {
    const line = (resources: unknown): string =>
      `${JSON.stringify({ type: 'delta', version: 'v', nonce: NONCE, base: 'b', state: 's', removed: [], resources })}\n`;
    expect(new MessageDecoder().push(line([{ name: 'a', version: '1', value: 1 }]))).to.have.length(1);
    for (const bad of [[{ name: 'a', version: '1' }], [{ name: 1, version: '1', value: 1 }], 'x', [null]])
      expect(() => new MessageDecoder().push(line(bad)), JSON.stringify(bad)).to.throw(
        /not a discovery message/,
      );
  });
});
