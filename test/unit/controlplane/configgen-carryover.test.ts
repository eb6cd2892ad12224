/**
 * Scoped sidecar translations carried into the next registry generation (controlplane/carryover.ts,
 * ADR 0023 decision 8): reused while nothing they read changed, translated again otherwise, and
 * in every case the same config a generator with no history gives for that snapshot.
 */
import { expect } from 'chai';
import { configChanges, MAX_CHANGED_RULES } from '../../../controlplane/carryover.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type {
  DestinationRule,
  PeerAuthentication,
  ServiceEntry,
  Sidecar,
  VirtualService,
} from '../../../pkg/api/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ServiceRecord } from '../../../pkg/translate/index.js';
import type { EgressHost } from '../../../pkg/translate/scope.js';

const log = createLogger('test', { silent: true });
const NAMESPACES = ['ns0', 'ns1', 'ns2', 'ns3'];
const host = (name: string, ns: string): string => `${name}.${ns}.svc.cluster.local`;

function service(name: string, ns: string, tag = 0): ServiceRecord {
  return {
    host: host(name, ns),
    namespace: ns,
    addresses: [],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    endpoints: [
      {
        address: `10.${tag & 255}.0.1`,
        // a meshed pod: auto-mTLS reads its namespace's PeerAuthentications
        labels: { app: name, version: 'v1', 'security.istio.io/tlsMode': 'istio' },
        ports: { http: 8080 },
        serviceAccount: name,
      },
    ],
  };
}

/**
 * A registry the test edits. Like weftd's, each generation's services are new records, while a
 * config object keeps its identity until it is edited (the informer's cache).
 */
class Mesh {
  generation = 1;
  services = new Map<string, ServiceRecord>();
  virtualServices: VirtualService[] = [];
  destinationRules: DestinationRule[] = [];
  sidecars: Sidecar[] = [];
  serviceEntries: ServiceEntry[] = [];
  peerAuthentications: PeerAuthentication[] = [];

  constructor() {
    for (const ns of NAMESPACES) for (const n of ['a', 'b']) this.add(service(n, ns));
  }

  add(s: ServiceRecord): void {
    this.services.set(s.host, s);
  }

  snapshot(): Snapshot {
    return {
      generation: this.generation,
      services: [...this.services.values()].map((s) => structuredClone(s)),
      kubeServices: [],
      virtualServices: this.virtualServices,
      destinationRules: this.destinationRules,
      serviceEntries: this.serviceEntries,
      gateways: [],
      peerAuthentications: this.peerAuthentications,
      sidecars: this.sidecars,
    };
  }

  /** An edit, then the next generation. */
  change(edit: () => void): Snapshot {
    edit();
    this.generation++;
    return this.snapshot();
  }
}

const vs = (name: string, ns: string, hosts: string[], dest: string): VirtualService =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: ns },
    spec: { hosts, http: [{ route: [{ destination: { host: dest } }] }] },
  }) as VirtualService;

const sidecarOf = (ns: string, egress: string[]): Sidecar =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    metadata: { name: 'narrow', namespace: ns },
    spec: { workloadSelector: { labels: { app: 'narrow' } }, egress: [{ hosts: egress }] },
  }) as Sidecar;

const dr = (ns: string, h: string, simple = 'RANDOM'): DestinationRule =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'r', namespace: ns },
    spec: { host: h, trafficPolicy: { loadBalancer: { simple } } },
  }) as DestinationRule;

const peerAuth = (ns: string, mode: string): PeerAuthentication =>
  ({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'p', namespace: ns },
    spec: { mtls: { mode } },
  }) as PeerAuthentication;

const entry = (ns: string, h: string, address: string): ServiceEntry =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'e', namespace: ns },
    spec: {
      hosts: [h],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      endpoints: [{ address }],
    },
  }) as ServiceEntry;

interface Proxy {
  pod: PodInfo;
  subscribed: EgressHost[];
  onDemand: boolean;
}

const PROXIES: Proxy[] = [
  // on demand: its namespace and a service of ns1 and of ns2
  {
    pod: { namespace: 'ns0', name: 'p0', labels: { app: 'p0' } },
    subscribed: [
      { namespace: 'ns1', host: host('a', 'ns1') },
      { namespace: 'ns2', host: host('a', 'ns2') },
    ],
    onDemand: true,
  },
  // on demand, subscribed to a host that does not exist yet
  {
    pod: { namespace: 'ns0', name: 'p1', labels: { app: 'p1' } },
    subscribed: [{ namespace: 'ns1', host: host('late', 'ns1') }],
    onDemand: true,
  },
  // on demand with no subscription
  { pod: { namespace: 'ns1', name: 'p2', labels: { app: 'p2' } }, subscribed: [], onDemand: true },
  // a Sidecar's egress (not on demand): its namespace and ns3's b by FQDN from any namespace
  { pod: { namespace: 'ns2', name: 'p3', labels: { app: 'narrow' } }, subscribed: [], onDemand: false },
  // the whole mesh: never carried
  { pod: { namespace: 'ns3', name: 'p4', labels: { app: 'p4' } }, subscribed: [], onDemand: false },
];

function generator(onTranslation?: (r: 'translated' | 'carried') => void): ConfigGenerator {
  return new ConfigGenerator({
    domainSuffix: 'cluster.local',
    mesh: { ...structuredClone(DEFAULT_MESH), onDemandHosts: true },
    log,
    ...(onTranslation ? { onTranslation } : {}),
  });
}

const lines = (g: ConfigGenerator, snap: Snapshot): string[] =>
  PROXIES.map((p) => g.forProxy(snap, 'sidecar', p.pod, p.subscribed, { onDemand: p.onDemand }).encode());

function meshWithSidecar(): Mesh {
  const mesh = new Mesh();
  mesh.sidecars = [sidecarOf('ns2', ['./*', `*/${host('b', 'ns3')}`])];
  // ns0's VirtualService for ns1/a routes to ns2/b: p0 reads ns2/b without subscribing to it
  mesh.virtualServices = [vs('to-b', 'ns0', [host('a', 'ns1')], host('b', 'ns2'))];
  return mesh;
}

/** A generator that counts what it translated and what it carried over. */
const counted = () => {
  const n = { translated: 0, carried: 0 };
  return { n, g: generator((r) => n[r]++) };
};

/** [what, the edit, the proxies whose config changed, how many scoped translations were reused] */
type Edit = [string, (m: Mesh) => void, number[], number];

/** Each edit on a fresh mesh: which configs changed, what was reused, and the same lines as a generator with no history. */
function checkEdits(edits: Edit[]): void {
  for (const [what, edit, changed, carried] of edits) {
    const mesh = meshWithSidecar();
    const { n, g } = counted();
    const first = lines(g, mesh.snapshot());
    const snap = mesh.change(() => edit(mesh));
    const second = lines(g, snap);
    const differ = second.flatMap((l, i) => (l === first[i] ? [] : [i]));
    expect(differ, what).to.deep.equal(changed);
    expect(n.carried, what).to.equal(carried);
    expect(second, what).to.deep.equal(lines(generator(), snap));
  }
}

describe('weftd carries scoped sidecar translations across registry generations (ADR 0023 decision 8)', () => {
  it('an endpoint change reuses every scoped translation that did not read that service', () => {
    const mesh = meshWithSidecar();
    const { n, g } = counted();
    const first = lines(g, mesh.snapshot());
    expect(n).to.deep.equal({ translated: 5, carried: 0 });
    const snap = mesh.change(() => mesh.add(service('a', 'ns3', 1)));
    const second = lines(g, snap);
    // ns3/a is read by the whole-scope proxy only; the Sidecar proxy reads ns3/b, not a
    expect(n).to.deep.equal({ translated: 6, carried: 4 });
    expect(second.slice(0, 4)).to.deep.equal(first.slice(0, 4));
    expect(second[4]).to.not.equal(first[4]);
    expect(second).to.deep.equal(lines(generator(), snap));
  });

  it('a subscribed service, a VirtualService destination and an own-namespace service each make it translate again', () => {
    const cases: Edit[] = [
      ['subscribed ns2/a', (m) => m.add(service('a', 'ns2', 7)), [0, 3, 4], 2],
      // both ns0 proxies import ns0's VirtualService, which routes to ns2/b
      ['VirtualService destination ns2/b', (m) => m.add(service('b', 'ns2', 7)), [0, 1, 3, 4], 1],
      ['new service in ns0', (m) => m.add(service('c', 'ns0')), [0, 1, 4], 2],
      ['the subscribed host appears', (m) => m.add(service('late', 'ns1')), [1, 2, 4], 2],
      ['FQDN egress ns3/b', (m) => m.add(service('b', 'ns3', 7)), [3, 4], 3],
      ['a service removed from ns1', (m) => m.services.delete(host('b', 'ns1')), [2, 4], 3],
      // ns0's VirtualService sends a's traffic to ns2/b: no cluster of a, so ns0's proxies (which read it) and
      // the whole mesh translate again to the same config; only ns1's own proxy sees the change
      ['subscribed ns1/a', (m) => m.add(service('a', 'ns1', 7)), [2], 1],
    ];
    checkEdits(cases);
  });

  it('a host a VirtualService names, created after the translation, makes it translate again', () => {
    for (const created of [host('c', 'ns3'), host('ext', 'ns1')]) {
      const mesh = meshWithSidecar();
      // neither its host nor its destination exists yet
      mesh.virtualServices = [vs('to-c', 'ns0', [host('ext', 'ns1')], host('c', 'ns3'))];
      const { g } = counted();
      const first = lines(g, mesh.snapshot());
      const [name, ns] = created.split('.') as [string, string];
      const snap = mesh.change(() => mesh.add(service(name, ns, 9)));
      const second = lines(g, snap);
      // the destination gets its cluster; ext stays out of ns0's scope (its VirtualService only)
      if (created.startsWith('c.')) expect(second[0], created).to.not.equal(first[0]);
      expect(second, created).to.deep.equal(lines(generator(), snap));
    }
  });

  it('an edited VirtualService, DestinationRule, ServiceEntry, PeerAuthentication or Sidecar translates again only the scopes it concerns', () => {
    const cases: Edit[] = [
      // imported by ns0's proxies (ns0/*): both translate again
      [
        "ns0's VirtualService routes elsewhere",
        (m) => (m.virtualServices = [vs('to-b', 'ns0', [host('a', 'ns1')], host('a', 'ns2'))]),
        [0, 1, 4],
        2,
      ],
      // a VirtualService of ns3 for ns3/a: the whole mesh only (p3's egress names ns3/b alone)
      [
        'a VirtualService in ns3',
        (m) =>
          (m.virtualServices = [...m.virtualServices, vs('x', 'ns3', [host('a', 'ns3')], host('b', 'ns3'))]),
        [4],
        4,
      ],
      ['a DestinationRule for ns2/a', (m) => (m.destinationRules = [dr('ns2', 'a')]), [0, 3, 4], 2],
      ['a DestinationRule for ns3/b', (m) => (m.destinationRules = [dr('ns3', 'b')]), [3, 4], 3],
      // a wildcard host concerns every scope that read a host under it (ns0's read ns1/a, which
      // their VirtualService routes elsewhere: translated again, the same config)
      [
        'a DestinationRule for *.ns1',
        (m) => (m.destinationRules = [dr('ns1', '*.ns1.svc.cluster.local')]),
        [2, 4],
        1,
      ],
      // ns3's services are meshed: p3 (ns3/b) and the whole mesh stop originating mTLS there
      [
        'a PeerAuthentication of ns3',
        (m) => (m.peerAuthentications = [peerAuth('ns3', 'DISABLE')]),
        [3, 4],
        3,
      ],
      // p0 kept ns1/a (no cluster: its VirtualService routes elsewhere), p1 did not
      [
        'a PeerAuthentication of ns1',
        (m) => (m.peerAuthentications = [peerAuth('ns1', 'DISABLE')]),
        [2, 4],
        2,
      ],
      [
        'a ServiceEntry of ns0',
        (m) => (m.serviceEntries = [entry('ns0', 'ext.example.com', '192.0.2.1')]),
        [0, 1, 4],
        2,
      ],
      // its host is a registry host others read (ns0's VirtualService routes to it, ns2 owns it):
      // the entry, defined first, takes it over
      [
        'a ServiceEntry of ns3 for ns2/b',
        (m) => (m.serviceEntries = [entry('ns3', host('b', 'ns2'), '192.0.2.1')]),
        [0, 1, 3, 4],
        1,
      ],
      // the whole mesh is translated again too (not selected: the same config)
      ['the Sidecar edited', (m) => (m.sidecars = [sidecarOf('ns2', ['./*'])]), [3], 3],
    ];
    checkEdits(cases);
  });

  it('more edited rules than MAX_CHANGED_RULES, or a root-namespace PeerAuthentication, translates everything again', () => {
    for (const edit of [
      (m: Mesh) => (m.peerAuthentications = [peerAuth(DEFAULT_MESH.rootNamespace, 'PERMISSIVE')]),
      (m: Mesh) =>
        (m.virtualServices = [
          ...m.virtualServices,
          ...Array.from({ length: MAX_CHANGED_RULES + 1 }, (_, i) =>
            vs(`v${i}`, 'ns3', [host(`v${i}`, 'ns3')], host('a', 'ns3')),
          ),
        ]),
    ]) {
      const mesh = meshWithSidecar();
      const { n, g } = counted();
      lines(g, mesh.snapshot());
      const snap = mesh.change(() => edit(mesh));
      const second = lines(g, snap);
      expect(n.carried).to.equal(0);
      expect(second).to.deep.equal(lines(generator(), snap));
    }
  });

  it('a random run of edits always gives what a generator with no history gives', () => {
    let seed = 12345;
    const rand = (k: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % k;
    };
    const mesh = meshWithSidecar();
    const { n, g } = counted();
    lines(g, mesh.snapshot());
    const names = ['a', 'b', 'c', 'late'];
    for (let step = 0; step < 200; step++) {
      const ns = NAMESPACES[rand(NAMESPACES.length)]!;
      const name = names[rand(names.length)]!;
      const op = rand(14);
      const snap = mesh.change(() => {
        if (op < 5) mesh.add(service(name, ns, step));
        else if (op < 7) mesh.services.delete(host(name, ns));
        else if (op < 8) {
          const s = mesh.services.get(host(name, ns));
          if (s) mesh.add({ ...s, exportTo: rand(2) === 0 ? ['.'] : ['*'] });
        } else if (op < 9) mesh.virtualServices = [vs('to-b', 'ns0', [host('a', 'ns1')], host(name, ns))];
        else if (op < 10) mesh.destinationRules = [dr(ns, name, rand(2) ? 'RANDOM' : 'LEAST_REQUEST')];
        else if (op < 11)
          mesh.peerAuthentications = [peerAuth(ns, ['STRICT', 'PERMISSIVE', 'DISABLE'][rand(3)]!)];
        else if (op < 12)
          mesh.serviceEntries = [
            entry(ns, rand(2) ? 'ext.example.com' : host(name, ns), `192.0.2.${rand(9)}`),
          ];
        else if (op < 13)
          mesh.sidecars = [sidecarOf('ns2', rand(2) ? ['./*'] : ['./*', `*/${host(name, ns)}`])];
        // else: a generation in which nothing a sidecar reads changed (a pod's label, say)
      });
      expect(lines(g, snap), `step ${step}`).to.deep.equal(lines(generator(), snap));
    }
    // the run exercised both paths
    expect(n.carried).to.be.greaterThan(100);
    expect(n.translated).to.be.greaterThan(200);
  });

  it("finds the edited rules by the registry's per-kind generations, else by object identity", () => {
    const fqdnOf = (h: string, ns: string): string => (h.includes('.') ? h : host(h, ns));
    const opts = { fqdnOf, rootNamespace: 'istio-system' };
    const base = new Mesh().snapshot();
    const kept = vs('kept', 'ns0', ['k'], 'k');
    const before = { ...base, virtualServices: [kept, vs('v', 'ns0', ['x'], 'x')] };
    // one kept, one replaced by a new object: both versions of the edited one count
    const after = { ...before, virtualServices: [kept, vs('v', 'ns0', ['y'], 'y')] };
    expect(configChanges(before, after, opts)).to.deep.equal({
      virtualServices: [
        { namespace: 'ns0', hosts: [host('x', 'ns0')] },
        { namespace: 'ns0', hosts: [host('y', 'ns0')] },
      ],
      destinationRuleHosts: [],
      serviceEntries: [],
      peerAuthenticationNamespaces: new Set(),
      sidecars: new Set(),
    });
    expect(configChanges(before, { ...before }, opts)).to.deep.equal({
      virtualServices: [],
      destinationRuleHosts: [],
      serviceEntries: [],
      peerAuthenticationNamespaces: new Set(),
      sidecars: new Set(),
    });
    // the registry's record decides: new objects, same generation of the kind, nothing changed
    const at = (g: number, s: Snapshot): Snapshot => ({ ...s, kindGenerations: { VirtualService: g } });
    expect(configChanges(at(3, before), at(3, after), opts)?.virtualServices).to.deep.equal([]);
    expect(configChanges(at(3, before), at(4, after), opts)?.virtualServices).to.have.length(2);
    // pods are read as the endpoints of entries that select workloads, and only then
    const pods = (ip: string): PodInfo[] => [{ namespace: 'ns0', name: 'w', labels: { app: 'w' }, ip }];
    const podsBefore = { ...before, pods: pods('10.9.0.1') };
    expect(configChanges(podsBefore, { ...before, pods: pods('10.9.0.2') }, opts)).to.not.equal(null);
    const selecting = {
      ...entry('ns0', 'w.example.com', '192.0.2.1'),
      spec: { hosts: ['w.example.com'], workloadSelector: { labels: { app: 'w' } } },
    } as ServiceEntry;
    const withEntry = { ...podsBefore, serviceEntries: [selecting] };
    expect(configChanges(withEntry, { ...withEntry, pods: pods('10.9.0.2') }, opts)).to.equal(null);
    // a root-namespace PeerAuthentication: null, everything is translated again
    const root = { ...before, peerAuthentications: [peerAuth('istio-system', 'STRICT')] };
    expect(configChanges(before, root, opts)).to.equal(null);
    // a namespace's: the translations that read its services
    const nsPeer = configChanges(
      before,
      { ...before, peerAuthentications: [peerAuth('ns1', 'STRICT')] },
      opts,
    );
    expect([...nsPeer!.peerAuthenticationNamespaces]).to.deep.equal(['ns1']);
  });
});
