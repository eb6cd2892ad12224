/**
 * ServiceEntry resolution → cluster type and endpoints, as Istio's cluster_builder builds them:
 * DNS → STRICT_DNS (the endpoints' addresses, or the host itself without endpoints), DNS_ROUND_ROBIN
 * → LOGICAL_DNS, NONE → ORIGINAL_DST, STATIC → the endpoints as given.
 */
import { expect } from 'chai';
import { translate } from '../../../pkg/translate/index.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import type { ServiceEntry, ServiceEntrySpec } from '../../../pkg/api/index.js';
import type { WorkloadEntry } from '../../../pkg/api/workloadentry.js';
import type { Cluster } from '../../../pkg/proxyconfig/types.js';

const se = (spec: Partial<ServiceEntrySpec>, ns = 'default'): ServiceEntry => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'e', namespace: ns },
  spec: { hosts: ['api.example.com'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], ...spec },
});

function clusters(...ses: ServiceEntry[]): Cluster[] {
  const r = translate({ serviceEntries: ses });
  expect(validateProxyConfig(r.config)).to.deep.equal([]);
  return r.config.clusters;
}

type Want = { name: string; type?: Cluster['type']; endpoints: { address: string; port: number }[] };
const CASES: [string, Partial<ServiceEntrySpec>, Want[]][] = [
  [
    'DNS without endpoints resolves the host, at the service port',
    { resolution: 'DNS' },
    [
      {
        name: 'outbound|80||api.example.com',
        type: 'STRICT_DNS',
        endpoints: [{ address: 'api.example.com', port: 80 }],
      },
    ],
  ],
  [
    'DNS without endpoints, targetPort: the host at the target port',
    { resolution: 'DNS', ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }] },
    [
      {
        name: 'outbound|80||api.example.com',
        type: 'STRICT_DNS',
        endpoints: [{ address: 'api.example.com', port: 8080 }],
      },
    ],
  ],
  [
    'DNS with two hosts: one cluster per host, each resolving its own name',
    { resolution: 'DNS', hosts: ['a.example.com', 'b.example.com'] },
    [
      {
        name: 'outbound|80||a.example.com',
        type: 'STRICT_DNS',
        endpoints: [{ address: 'a.example.com', port: 80 }],
      },
      {
        name: 'outbound|80||b.example.com',
        type: 'STRICT_DNS',
        endpoints: [{ address: 'b.example.com', port: 80 }],
      },
    ],
  ],
  [
    'DNS with endpoints resolves the endpoints (names or IPs), with their port mapping',
    {
      resolution: 'DNS',
      endpoints: [{ address: 'us.api.example.com', ports: { http: 8080 } }, { address: '10.0.0.1' }],
    },
    [
      {
        name: 'outbound|80||api.example.com',
        type: 'STRICT_DNS',
        endpoints: [
          { address: 'us.api.example.com', port: 8080 },
          { address: '10.0.0.1', port: 80 },
        ],
      },
    ],
  ],
  [
    'DNS with endpoints and a wildcard host: the endpoints',
    { resolution: 'DNS', hosts: ['*.example.com'], endpoints: [{ address: 'gw.example.com' }] },
    [
      {
        name: 'outbound|80||*.example.com',
        type: 'STRICT_DNS',
        endpoints: [{ address: 'gw.example.com', port: 80 }],
      },
    ],
  ],
  [
    'DNS with a wildcard host and no endpoints (Istio rejects it): nothing to resolve',
    { resolution: 'DNS', hosts: ['*.example.com'] },
    [{ name: 'outbound|80||*.example.com', type: 'STRICT_DNS', endpoints: [] }],
  ],
  [
    'DNS_ROUND_ROBIN without endpoints: LOGICAL_DNS of the host',
    { resolution: 'DNS_ROUND_ROBIN' },
    [
      {
        name: 'outbound|80||api.example.com',
        type: 'LOGICAL_DNS',
        endpoints: [{ address: 'api.example.com', port: 80 }],
      },
    ],
  ],
  [
    'DNS_ROUND_ROBIN with one endpoint: LOGICAL_DNS of it',
    { resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'lb.example.com' }] },
    [
      {
        name: 'outbound|80||api.example.com',
        type: 'LOGICAL_DNS',
        endpoints: [{ address: 'lb.example.com', port: 80 }],
      },
    ],
  ],
  [
    'NONE: ORIGINAL_DST, no endpoints',
    { resolution: 'NONE' },
    [{ name: 'outbound|80||api.example.com', type: 'ORIGINAL_DST', endpoints: [] }],
  ],
  [
    'resolution absent is NONE',
    {},
    [{ name: 'outbound|80||api.example.com', type: 'ORIGINAL_DST', endpoints: [] }],
  ],
  [
    'NONE with a wildcard host: ORIGINAL_DST',
    { resolution: 'NONE', hosts: ['*.example.com'] },
    [{ name: 'outbound|80||*.example.com', type: 'ORIGINAL_DST', endpoints: [] }],
  ],
  [
    'NONE with endpoints (Istio rejects it): the endpoints as given',
    { resolution: 'NONE', endpoints: [{ address: '10.0.0.1' }] },
    [{ name: 'outbound|80||api.example.com', endpoints: [{ address: '10.0.0.1', port: 80 }] }],
  ],
  [
    'DYNAMIC_DNS is treated as NONE',
    { resolution: 'DYNAMIC_DNS', hosts: ['*.example.com'] },
    [{ name: 'outbound|80||*.example.com', type: 'ORIGINAL_DST', endpoints: [] }],
  ],
  [
    'STATIC: the endpoints as given, no type field',
    { resolution: 'STATIC', endpoints: [{ address: '10.0.0.1' }] },
    [{ name: 'outbound|80||api.example.com', endpoints: [{ address: '10.0.0.1', port: 80 }] }],
  ],
];

describe('translate: ServiceEntry resolution → cluster type', () => {
  for (const [name, spec, want] of CASES)
    it(name, () => {
      const got = clusters(se(spec)).map((c) => ({
        name: c.name,
        ...(c.type !== undefined ? { type: c.type } : {}),
        endpoints: c.endpoints.map((e) => ({ address: e.address, port: e.port })),
      }));
      expect(got).to.deep.equal(want);
    });

  it('a DNS entry with a subset: the subset cluster resolves the same host', () => {
    const r = translate({
      serviceEntries: [se({ resolution: 'DNS' })],
      destinationRules: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'DestinationRule',
          metadata: { name: 'd', namespace: 'default' },
          spec: { host: 'api.example.com', subsets: [{ name: 'all' }] },
        },
      ],
      virtualServices: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'v', namespace: 'default' },
          spec: {
            hosts: ['api.example.com'],
            http: [{ route: [{ destination: { host: 'api.example.com', subset: 'all' } }] }],
          },
        },
      ],
    });
    const c = r.config.clusters.find((x) => x.subset === 'all')!;
    expect(c.type).to.equal('STRICT_DNS');
    expect(c.endpoints.map((e) => e.address)).to.deep.equal(['api.example.com']);
  });
});

describe('translate: ServiceEntry workloadSelector (WorkloadEntries and pods as endpoints)', () => {
  const we = (
    name: string,
    ns: string,
    spec: Record<string, unknown>,
    labels?: Record<string, string>,
  ): WorkloadEntry => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name, namespace: ns, ...(labels ? { labels } : {}) },
    spec: spec as WorkloadEntry['spec'],
  });
  const selecting = (labels: Record<string, string>, extra: Partial<ServiceEntrySpec> = {}): ServiceEntry =>
    se({ resolution: 'STATIC', location: 'MESH_INTERNAL', workloadSelector: { labels }, ...extra });
  const workloadEntries = [
    we('vm-1', 'default', {
      address: '10.0.2.1',
      labels: { app: 'ratings', version: 'v1' },
      ports: { http: 8080 },
      serviceAccount: 'vm',
    }),
    we('vm-2', 'default', { address: '10.0.2.2', labels: { app: 'ratings', version: 'v2' }, weight: 3 }),
    we('vm-meta', 'default', { address: '10.0.2.3' }, { app: 'ratings' }), // labels in metadata count too
    we('vm-other-ns', 'other', { address: '10.0.9.1', labels: { app: 'ratings' } }),
    we('vm-other-app', 'default', { address: '10.0.2.9', labels: { app: 'reviews' } }),
  ];
  const workloadPods = [
    {
      namespace: 'default',
      labels: { app: 'ratings', version: 'v3' },
      ip: '10.1.0.7',
      serviceAccount: 'ratings',
    },
    { namespace: 'default', labels: { app: 'ratings' } }, // no IP yet
    { namespace: 'other', labels: { app: 'ratings' }, ip: '10.1.9.9' },
  ];
  const eps = (
    s: ServiceEntry,
    extra: Parameters<typeof translate>[0] = {},
  ): { address: string; port: number; weight?: number }[] =>
    translate({
      serviceEntries: [s],
      workloadEntries,
      workloadPods,
      ...extra,
    }).config.clusters[0]!.endpoints.map((e) => ({
      address: e.address,
      port: e.port,
      ...(e.weight !== undefined ? { weight: e.weight } : {}),
    }));

  const CASES: [string, ServiceEntry, { address: string; port: number; weight?: number }[]][] = [
    [
      'selects the matching WorkloadEntries and pods of its namespace, with port mapping and weight',
      selecting({ app: 'ratings' }),
      [
        { address: '10.0.2.1', port: 8080 },
        { address: '10.0.2.2', port: 80, weight: 3 },
        { address: '10.0.2.3', port: 80 },
        { address: '10.1.0.7', port: 80 },
      ],
    ],
    [
      'a narrower selector',
      selecting({ app: 'ratings', version: 'v2' }),
      [{ address: '10.0.2.2', port: 80, weight: 3 }],
    ],
    ['a selector matching nothing: no endpoint (503 UH)', selecting({ app: 'nothing' }), []],
    ['an empty selector selects nothing', selecting({}), []],
    [
      "only the entry's namespace",
      { ...selecting({ app: 'ratings' }), metadata: { name: 'e', namespace: 'other' } },
      [
        { address: '10.0.9.1', port: 80 },
        { address: '10.1.9.9', port: 80 },
      ],
    ],
    [
      'with DNS resolution: the selected addresses are resolved (IPs: as is)',
      selecting({ app: 'ratings', version: 'v1' }, { resolution: 'DNS' }),
      [{ address: '10.0.2.1', port: 8080 }],
    ],
    [
      'with NONE (Istio warns): the selected endpoints, not the original destination',
      selecting({ app: 'ratings', version: 'v1' }, { resolution: 'NONE' }),
      [{ address: '10.0.2.1', port: 8080 }],
    ],
  ];
  for (const [name, s, want] of CASES) it(name, () => expect(eps(s)).to.deep.equal(want));

  it('the selected endpoints carry their service account (auto-mTLS expects its SPIFFE ID)', () => {
    const r = translate({
      serviceEntries: [selecting({ app: 'ratings', version: 'v1' })],
      workloadEntries: [
        we('vm', 'default', {
          address: '10.0.2.1',
          labels: { app: 'ratings', version: 'v1', 'security.istio.io/tlsMode': 'istio' },
          serviceAccount: 'vm',
        }),
      ],
    });
    expect(r.config.clusters[0]!.tls?.subjectAltNames).to.deep.equal([
      'spiffe://cluster.local/ns/default/sa/vm',
    ]);
  });
});
