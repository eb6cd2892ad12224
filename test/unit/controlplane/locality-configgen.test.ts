/**
 * Locality from Kubernetes objects to each proxy's config: endpoints take their locality from
 * their node (or `istio-locality`), the translator keeps the clusters whose DestinationRule makes
 * locality LB apply, and weftd resolves priorities per proxy locality (shared by proxies in one
 * locality, versioned apart from the others).
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import {
  nodeChangeMatters,
  podChangeMatters,
  type PodInfo,
  type Snapshot,
} from '../../../controlplane/registry.js';
import type { DestinationRule, ServiceEntry } from '../../../pkg/api/index.js';
import { encodeMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { translate, type ServiceRecord } from '../../../pkg/translate/index.js';
import { servicesFromKube, type KubeEndpointSlice, type KubePod } from '../../../pkg/translate/kube.js';

const ZONE = 'topology.kubernetes.io/zone';
const REGION = 'topology.kubernetes.io/region';
const nodes = new Map([
  ['node-a', { [REGION]: 'us-east', [ZONE]: 'us-east-1a' }],
  ['node-b', { [REGION]: 'us-east', [ZONE]: 'us-east-1b' }],
  ['node-w', { [REGION]: 'us-west', [ZONE]: 'us-west-1a' }],
]);

describe('locality: endpoints from EndpointSlices and nodes', () => {
  const podOn = (name: string, node?: string, labels: Record<string, string> = { app: 'r' }): KubePod => ({
    metadata: { name, namespace: 'shop', labels },
    spec: { ...(node ? { nodeName: node } : {}) },
  });
  const slice: KubeEndpointSlice = {
    metadata: { name: 'r-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'r' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.0.0.1'], nodeName: 'node-a', targetRef: { kind: 'Pod', name: 'p1' } },
      { addresses: ['10.0.0.2'], targetRef: { kind: 'Pod', name: 'p2' } },
      { addresses: ['10.0.0.3'], nodeName: 'node-a', targetRef: { kind: 'Pod', name: 'p3' } },
      { addresses: ['10.0.0.4'], nodeName: 'node-gone', targetRef: { kind: 'Pod', name: 'p4' } },
      { addresses: ['10.0.0.5'], zone: 'us-east-1a' },
    ],
    ports: [{ name: 'http', port: 8080 }],
  };
  const pods = [
    podOn('p1', 'node-a'),
    podOn('p2', 'node-w'), // the slice has no nodeName: the pod's spec.nodeName
    podOn('p3', 'node-a', { app: 'r', 'istio-locality': 'eu.eu-1.rack2' }),
    podOn('p4', 'node-gone'),
  ];
  const TABLE: [string, string, string | undefined][] = [
    ["the slice endpoint's nodeName → that node's region/zone", '10.0.0.1', 'us-east/us-east-1a'],
    ["no nodeName in the slice: the pod's node", '10.0.0.2', 'us-west/us-west-1a'],
    ['istio-locality on the pod wins over the node', '10.0.0.3', 'eu/eu-1/rack2'],
    ['a node weftd does not know: no locality', '10.0.0.4', undefined],
    ['no pod and no node: no locality (the slice zone alone is not a locality)', '10.0.0.5', undefined],
  ];
  const [rec] = servicesFromKube(
    [{ metadata: { name: 'r', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } }],
    [slice],
    pods,
    'cluster.local',
    nodes,
  );
  for (const [name, address, want] of TABLE)
    it(name, () => expect(rec!.endpoints.find((e) => e.address === address)?.locality).to.equal(want));

  it('node events: only topology label changes (and adds/deletes) matter', () => {
    const node = (labels: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject =>
      ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n', labels }, ...extra }) as KubeObject;
    const a = node({ [ZONE]: 'z1' });
    expect(nodeChangeMatters('add', a)).to.equal(true);
    expect(nodeChangeMatters('delete', a)).to.equal(true);
    expect(nodeChangeMatters('update', node({ [ZONE]: 'z1' }, { status: { x: 1 } }), a)).to.equal(false);
    expect(nodeChangeMatters('update', node({ [ZONE]: 'z1', other: 'x' }), a)).to.equal(false);
    expect(nodeChangeMatters('update', node({ [ZONE]: 'z2' }), a)).to.equal(true);
    expect(nodeChangeMatters('update', node({ [ZONE]: 'z1', 'topology.istio.io/subzone': 's' }), a)).to.equal(
      true,
    );
  });
  it('pod events: being scheduled onto a node matters', () => {
    const p = (nodeName?: string): KubeObject =>
      ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p' },
        spec: nodeName ? { nodeName } : {},
      }) as KubeObject;
    expect(podChangeMatters('update', p('node-a'), p())).to.equal(true);
    expect(podChangeMatters('update', p('node-a'), p('node-a'))).to.equal(false);
  });
});

const svc: ServiceRecord = {
  host: 'reviews.shop.svc.cluster.local',
  namespace: 'shop',
  addresses: [],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [
    { address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' }, locality: 'us-east/us-east-1a' },
    { address: '10.0.0.2', labels: { app: 'reviews', version: 'v2' }, locality: 'us-east/us-east-1b' },
    { address: '10.0.0.3', labels: { app: 'reviews', version: 'v1' }, locality: 'us-west/us-west-1a' },
  ],
};
const dr = (trafficPolicy: Record<string, unknown>, subsets?: unknown[]): DestinationRule =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { host: 'reviews', trafficPolicy, ...(subsets ? { subsets } : {}) },
  }) as DestinationRule;
const OD = { outlierDetection: { consecutive5xxErrors: 3 } };
const CLUSTER = 'outbound|9080||reviews.shop.svc.cluster.local';

describe('locality: which clusters the translator marks', () => {
  const TABLE: [string, DestinationRule[], string[]][] = [
    ['no DestinationRule: none (no outlier detection)', [], []],
    ['outlier detection: the mesh default (failover) applies', [dr(OD)], [CLUSTER]],
    [
      'localityLbSetting.enabled false: none',
      [dr({ ...OD, loadBalancer: { localityLbSetting: { enabled: false } } })],
      [],
    ],
    [
      'distribute without outlier detection',
      [dr({ loadBalancer: { localityLbSetting: { distribute: [{ from: '*', to: { '*': 100 } }] } } })],
      [CLUSTER],
    ],
    [
      'failover without outlier detection: none',
      [dr({ loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'us-west' }] } } })],
      [],
    ],
    [
      'a subset with its own outlier detection',
      [dr({}, [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: OD }])],
      ['outbound|9080|v1|reviews.shop.svc.cluster.local'],
    ],
  ];
  for (const [name, drs, want] of TABLE)
    it(name, () => {
      const r = translate({
        services: [svc],
        destinationRules: drs,
        virtualServices: [
          {
            apiVersion: 'networking.istio.io/v1',
            kind: 'VirtualService',
            metadata: { name: 'reviews', namespace: 'shop' },
            spec: {
              hosts: ['reviews'],
              http: [
                {
                  match: [{ headers: { x: { exact: 'v1' } } }],
                  route: [{ destination: { host: 'reviews', subset: 'v1' } }],
                },
                { route: [{ destination: { host: 'reviews' } }] },
              ],
            },
          },
        ],
      });
      expect(Object.keys(r.localityLb ?? {}).sort()).to.deep.equal(want);
      const c = r.config.clusters.find((x) => x.name === CLUSTER)!;
      expect(c.endpoints.map((e) => e.locality)).to.deep.equal([
        'us-east/us-east-1a',
        'us-east/us-east-1b',
        'us-west/us-west-1a',
      ]);
    });

  it('ServiceEntry endpoints keep their `locality`', () => {
    const se = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ext', namespace: 'shop' },
      spec: {
        hosts: ['api.example.com'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'STATIC',
        endpoints: [{ address: '10.9.0.1', locality: 'us-east/a' }, { address: '10.9.0.2' }],
      },
    } as ServiceEntry;
    const r = translate({ serviceEntries: [se] });
    expect(r.config.clusters[0]!.endpoints.map((e) => e.locality)).to.deep.equal(['us-east/a', undefined]);
  });
});

describe('locality: weftd resolves priorities per proxy', () => {
  const snapshot = (generation: number, drs: DestinationRule[]): Snapshot => ({
    generation,
    services: [svc],
    peerAuthentications: [],
    kubeServices: [],
    virtualServices: [],
    destinationRules: drs,
    serviceEntries: [],
    gateways: [],
  });
  const pod = (name: string, locality?: string): PodInfo => ({
    name,
    namespace: 'shop',
    labels: { app: 'productpage' },
    ...(locality ? { locality } : {}),
  });
  const gen = (): ConfigGenerator =>
    new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: DEFAULT_MESH,
      log: createLogger('t', { silent: true }),
    });
  const prio = (g: ReturnType<ConfigGenerator['forProxy']>): Record<string, number> =>
    Object.fromEntries(
      g.config.clusters.find((c) => c.name === CLUSTER)!.endpoints.map((e) => [e.address, e.priority ?? 0]),
    );

  it('each proxy gets priorities from its own locality; the spliced line says the same', () => {
    const g = gen();
    const snap = snapshot(1, [dr(OD)]);
    const a = g.forProxy(snap, 'sidecar', pod('a', 'us-east/us-east-1a'));
    const b = g.forProxy(snap, 'sidecar', pod('b', 'us-east/us-east-1b'));
    const w = g.forProxy(snap, 'sidecar', pod('w', 'us-west/us-west-1a'));
    expect(prio(a)).to.deep.equal({ '10.0.0.1': 0, '10.0.0.2': 1, '10.0.0.3': 2 });
    expect(prio(b)).to.deep.equal({ '10.0.0.1': 1, '10.0.0.2': 0, '10.0.0.3': 2 });
    expect(prio(w)).to.deep.equal({ '10.0.0.1': 1, '10.0.0.2': 1, '10.0.0.3': 0 });
    for (const x of [a, b, w])
      expect(JSON.parse(x.encode())).to.deep.equal(
        JSON.parse(encodeMessage({ type: 'config', version: x.version, config: x.config })),
      );
    expect(new Set([a.version, b.version, w.version]).size).to.equal(3);
  });
  it("failover rules apply for the proxy's region", () => {
    const g = gen();
    const snap = snapshot(1, [
      dr({ ...OD, loadBalancer: { localityLbSetting: { failover: [{ from: 'us-west', to: 'eu' }] } } }),
    ]);
    // us-west's failover goes to eu: the us-east endpoints drop below it (4), renumbered to 1
    expect(prio(g.forProxy(snap, 'sidecar', pod('w', 'us-west/us-west-1a')))).to.deep.equal({
      '10.0.0.1': 1,
      '10.0.0.2': 1,
      '10.0.0.3': 0,
    });
  });
  it('without outlier detection every proxy gets the shared config, with no priorities', () => {
    const g = gen();
    const snap = snapshot(1, []);
    const a = g.forProxy(snap, 'sidecar', pod('a', 'us-east/us-east-1a'));
    expect(prio(a)).to.deep.equal({ '10.0.0.1': 0, '10.0.0.2': 0, '10.0.0.3': 0 });
    const w = g.forProxy(snap, 'sidecar', pod('w', 'us-west/us-west-1a'));
    expect(w.config.clusters).to.equal(a.config.clusters); // the very same shared array
  });
  it('a gateway pod gets priorities for its own locality too', () => {
    const g = gen();
    const snap: Snapshot = {
      ...snapshot(1, [dr(OD)]),
      gateways: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Gateway',
          metadata: { name: 'public', namespace: 'shop' },
          spec: {
            selector: { istio: 'gw' },
            servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
          },
        },
      ],
      virtualServices: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'front', namespace: 'shop' },
          spec: {
            hosts: ['*'],
            gateways: ['public'],
            http: [{ route: [{ destination: { host: 'reviews', port: { number: 9080 } } }] }],
          },
        },
      ],
    };
    const gw = (name: string, locality: string): PodInfo => ({
      name,
      namespace: 'shop',
      labels: { istio: 'gw' },
      locality,
    });
    expect(prio(g.forProxy(snap, 'gateway', gw('g1', 'us-west/us-west-1a')))).to.deep.equal({
      '10.0.0.1': 1,
      '10.0.0.2': 1,
      '10.0.0.3': 0,
    });
    expect(prio(g.forProxy(snap, 'gateway', gw('g2', 'us-east/us-east-1b')))).to.deep.equal({
      '10.0.0.1': 1,
      '10.0.0.2': 0,
      '10.0.0.3': 2,
    });
  });
  it('proxies in one locality share one localized config', () => {
    const g = gen();
    const snap = snapshot(1, [dr(OD)]);
    const a1 = g.forProxy(snap, 'sidecar', pod('a1', 'us-east/us-east-1a'));
    const a2 = g.forProxy(snap, 'sidecar', pod('a2', 'us-east/us-east-1a'));
    expect(a2.config.clusters).to.equal(a1.config.clusters);
  });
  it('a proxy whose locality is unknown: every located endpoint is equally far (all at 0)', () => {
    const g = gen();
    expect(prio(g.forProxy(snapshot(1, [dr(OD)]), 'sidecar', pod('x')))).to.deep.equal({
      '10.0.0.1': 0,
      '10.0.0.2': 0,
      '10.0.0.3': 0,
    });
  });
});
