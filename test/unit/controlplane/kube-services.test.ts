/**
 * Kubernetes Service + EndpointSlices → ServiceRecord (pkg/translate/kube.ts), and that the
 * translator routes subsets by the pod labels those records carry.
 */
import { expect } from 'chai';
import type { DestinationRule, VirtualService } from '../../../pkg/api/index.js';
import { translate } from '../../../pkg/translate/index.js';
import { domainsOf } from '../../../pkg/proxyconfig/domains.js';
import {
  gatewayTargetPorts,
  portProtocol,
  servicesFromKube,
  type KubeEndpointSlice,
  type KubePod,
  type KubeService,
} from '../../../pkg/translate/kube.js';

const svc = (name: string, ns: string, spec: NonNullable<KubeService['spec']>): KubeService => ({
  metadata: { name, namespace: ns },
  spec,
});

function slice(
  name: string,
  ns: string,
  service: string,
  endpoints: { ip: string; pod?: string; ready?: boolean | null }[],
  ports: { name?: string; port: number }[],
): KubeEndpointSlice {
  return {
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod, namespace: ns } } : {}),
    })),
    ports,
  };
}

const pod = (name: string, ns: string, labels: Record<string, string>): KubePod => ({
  metadata: { name, namespace: ns, labels },
});

describe('pkg/translate/kube: port protocol selection', () => {
  const cases: [string, Parameters<typeof portProtocol>[0], string][] = [
    ['name http', { name: 'http' }, 'HTTP'],
    ['name prefix http-', { name: 'http-web' }, 'HTTP'],
    ['name grpc', { name: 'grpc' }, 'GRPC'],
    ['name grpc-web is its own protocol', { name: 'grpc-web' }, 'GRPC-WEB'],
    ['name tcp-db', { name: 'tcp-db' }, 'TCP'],
    ['name tls', { name: 'tls' }, 'TLS'],
    ['name mongo', { name: 'mongo' }, 'MONGO'],
    ['name https', { name: 'https' }, 'HTTPS'],
    ['appProtocol wins over the name', { name: 'http', appProtocol: 'tcp' }, 'TCP'],
    ['appProtocol kubernetes.io/h2c', { name: 'x', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    ['unknown appProtocol falls back to the name', { name: 'grpc', appProtocol: 'example.com/x' }, 'GRPC'],
    ['unnamed: HTTP (weft has no sniffing)', {}, 'HTTP'],
    ['a name that is not a protocol: HTTP', { name: 'web' }, 'HTTP'],
    ['UDP is never HTTP', { name: 'http', protocol: 'UDP' }, 'UDP'],
    ['case-insensitive', { name: 'HTTP-Web' }, 'HTTP'],
  ];
  for (const [title, port, want] of cases) it(title, () => expect(portProtocol(port)).to.equal(want));
});

describe('pkg/translate/kube: servicesFromKube', () => {
  it('builds host, cluster IP, ports with target ports, and ready endpoints with pod labels', () => {
    const [rec, ...rest] = servicesFromKube(
      [
        svc('reviews', 'shop', {
          clusterIP: '10.0.0.7',
          clusterIPs: ['10.0.0.7'],
          ports: [
            { name: 'http', port: 9080, targetPort: 8080 },
            { name: 'grpc-api', port: 9090, targetPort: 'api' },
          ],
        }),
      ],
      [
        slice(
          'reviews-abc',
          'shop',
          'reviews',
          [
            { ip: '10.1.0.1', pod: 'reviews-v1' },
            { ip: '10.1.0.2', pod: 'reviews-v2', ready: true },
            { ip: '10.1.0.3', pod: 'reviews-v3', ready: false },
          ],
          [
            { name: 'http', port: 8080 },
            { name: 'grpc-api', port: 7070 },
          ],
        ),
      ],
      [
        pod('reviews-v1', 'shop', { app: 'reviews', version: 'v1' }),
        {
          ...pod('reviews-v2', 'shop', { app: 'reviews', version: 'v2' }),
          spec: { serviceAccountName: 'reviews' },
        },
      ],
      'example.internal',
    );
    expect(rest).to.deep.equal([]);
    expect(rec).to.deep.equal({
      host: 'reviews.shop.svc.example.internal',
      namespace: 'shop',
      addresses: ['10.0.0.7'],
      ports: [
        { number: 9080, name: 'http', protocol: 'HTTP', targetPort: 8080 },
        { number: 9090, name: 'grpc-api', protocol: 'GRPC' },
      ],
      endpoints: [
        {
          address: '10.1.0.1',
          ports: { http: 8080, 'grpc-api': 7070 },
          labels: { app: 'reviews', version: 'v1' },
          serviceAccount: 'default', // no serviceAccountName: Kubernetes' default
        },
        {
          address: '10.1.0.2',
          ports: { http: 8080, 'grpc-api': 7070 },
          labels: { app: 'reviews', version: 'v2' },
          serviceAccount: 'reviews',
        },
      ],
    });
  });

  const table: [string, KubeService[], KubeEndpointSlice[], string[]][] = [
    [
      'ExternalName services are skipped',
      [svc('ext', 'a', { type: 'ExternalName', externalName: 'x.com', ports: [{ port: 80 }] })],
      [],
      [],
    ],
    ['services without ports are skipped', [svc('np', 'a', { clusterIP: '10.0.0.1' })], [], []],
    [
      'headless: no address, endpoints kept',
      [svc('hl', 'a', { clusterIP: 'None', ports: [{ port: 80 }] })],
      [slice('hl-1', 'a', 'hl', [{ ip: '10.1.1.1' }], [{ name: '', port: 80 }])],
      ['hl.a.svc.cluster.local []#10.1.1.1'],
    ],
    [
      'slices of another namespace do not leak',
      [svc('s', 'a', { clusterIP: '10.0.0.2', ports: [{ port: 80 }] })],
      [slice('s-1', 'b', 's', [{ ip: '10.1.1.2' }], [{ port: 80 }])],
      ['s.a.svc.cluster.local [10.0.0.2]#'],
    ],
    [
      'an address in two slices counts once',
      [svc('d', 'a', { clusterIP: '10.0.0.3', ports: [{ port: 80 }] })],
      [
        slice('d-1', 'a', 'd', [{ ip: '10.1.1.3' }], [{ port: 80 }]),
        slice('d-2', 'a', 'd', [{ ip: '10.1.1.3' }], [{ port: 80 }]),
      ],
      ['d.a.svc.cluster.local [10.0.0.3]#10.1.1.3'],
    ],
    [
      'endpoints of not-ready pods are dropped',
      [svc('n', 'a', { clusterIP: '10.0.0.4', ports: [{ port: 80 }] })],
      [slice('n-1', 'a', 'n', [{ ip: '10.1.1.4', ready: false }], [{ port: 80 }])],
      ['n.a.svc.cluster.local [10.0.0.4]#'],
    ],
  ];
  for (const [title, services, slices, want] of table) {
    it(title, () => {
      const got = servicesFromKube(services, slices, []).map(
        (r) => `${r.host} [${r.addresses.join(',')}]#${r.endpoints.map((e) => e.address).join(',')}`,
      );
      expect(got).to.deep.equal(want);
    });
  }

  it('feeds the translator: subsets select endpoints by pod labels, named target ports resolve', () => {
    const services = servicesFromKube(
      [
        svc('reviews', 'shop', {
          clusterIP: '10.0.0.7',
          ports: [{ name: 'http', port: 9080, targetPort: 'web' }],
        }),
      ],
      [
        slice(
          'r-1',
          'shop',
          'reviews',
          [
            { ip: '10.1.0.1', pod: 'r1' },
            { ip: '10.1.0.2', pod: 'r2' },
          ],
          [{ name: 'http', port: 8080 }],
        ),
      ],
      [pod('r1', 'shop', { version: 'v1' }), pod('r2', 'shop', { version: 'v2' })],
    );
    const dr = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] },
    } as DestinationRule;
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
    } as VirtualService;
    const { config } = translate({ services, destinationRules: [dr], virtualServices: [vs] });
    const cluster = config.clusters.find((c) => c.name === 'outbound|9080|v2|reviews.shop.svc.cluster.local');
    expect(cluster?.endpoints).to.deep.equal([
      { address: '10.1.0.2', port: 8080, labels: { version: 'v2' } },
    ]);
    const vh = config.listeners[0]!.protocol === 'HTTP' ? config.listeners[0]!.virtualHosts[0] : undefined;
    expect(domainsOf(vh!)).to.include.members([
      'reviews',
      'reviews.shop',
      '10.0.0.7',
      'reviews.shop.svc.cluster.local:9080',
    ]);
  });
});

describe('pkg/translate/kube: gatewayTargetPorts (Istio resolvePorts input)', () => {
  const gwPod = { namespace: 'edge', labels: { istio: 'ingressgateway', app: 'gw' } };
  const cases: [string, KubeService[], Record<number, number[]>][] = [
    [
      'a Service selecting the pod maps its ports to target ports',
      [
        svc('ingress', 'edge', {
          selector: { istio: 'ingressgateway' },
          ports: [
            { name: 'http2', port: 80, targetPort: 8080 },
            { name: 'https', port: 443, targetPort: 8443 },
            { name: 'status', port: 15021 },
          ],
        }),
      ],
      { 80: [8080], 443: [8443], 15021: [15021] },
    ],
    [
      'a Service in another namespace does not count',
      [
        svc('ingress', 'other', {
          selector: { istio: 'ingressgateway' },
          ports: [{ port: 80, targetPort: 8080 }],
        }),
      ],
      {},
    ],
    [
      'a selector that does not match does not count',
      [svc('ingress', 'edge', { selector: { istio: 'egress' }, ports: [{ port: 80, targetPort: 8080 }] })],
      {},
    ],
    [
      'a Service without selector does not count',
      [svc('manual', 'edge', { ports: [{ port: 80, targetPort: 8080 }] })],
      {},
    ],
    [
      'a named target port is skipped',
      [svc('ingress', 'edge', { selector: { app: 'gw' }, ports: [{ port: 80, targetPort: 'http' }] })],
      {},
    ],
    [
      'two Services on one port: both target ports',
      [
        svc('a', 'edge', { selector: { app: 'gw' }, ports: [{ port: 80, targetPort: 8081 }] }),
        svc('b', 'edge', { selector: { app: 'gw' }, ports: [{ port: 80, targetPort: 8080 }] }),
      ],
      { 80: [8080, 8081] },
    ],
  ];
  for (const [title, services, want] of cases)
    it(title, () => expect(gatewayTargetPorts(services, gwPod)).to.deep.equal(want));
});
