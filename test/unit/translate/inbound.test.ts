/**
 * A sidecar's inbound block: declared protocols of the Services in front of the pod (Istio's
 * protocol selection), named target ports through the pod's EndpointSlice ports, conflicts left
 * to sniffing, and port-level mTLS from the workload's PeerAuthentication.
 */
import { expect } from 'chai';
import type { PeerAuthentication } from '../../../pkg/api/index.js';
import { inboundFor, type InboundInput } from '../../../pkg/translate/inbound.js';
import type { KubeService, KubeServicePort } from '../../../pkg/translate/kube.js';
import type { ServiceRecord } from '../../../pkg/translate/index.js';

const POD = { namespace: 'shop', labels: { app: 'reviews' }, ip: '10.1.0.5' };

function svc(
  name: string,
  ports: KubeServicePort[],
  selector = { app: 'reviews' },
  namespace = 'shop',
): KubeService {
  return { metadata: { name, namespace }, spec: { selector, ports } };
}

function input(kubeServices: KubeService[], extra: Partial<InboundInput> = {}): InboundInput {
  return {
    pod: POD,
    kubeServices,
    peerAuthentications: [],
    rootNamespace: 'weft-system',
    meshMode: 'PERMISSIVE',
    domainSuffix: 'cluster.local',
    ...extra,
  };
}

const HOST = 'reviews.shop.svc.cluster.local';

describe('inbound block (protocols and port-level mTLS)', () => {
  const cases: [string, KubeServicePort, { protocol?: string; http2?: boolean }][] = [
    ['port name http', { name: 'http', port: 80, targetPort: 9080 }, { protocol: 'HTTP' }],
    ['port name http-web', { name: 'http-web', port: 80, targetPort: 9080 }, { protocol: 'HTTP' }],
    [
      'appProtocol http beats a tcp name',
      { name: 'tcp', appProtocol: 'http', port: 80, targetPort: 9080 },
      { protocol: 'HTTP' },
    ],
    [
      'grpc-web is HTTP, HTTP/2 to the app (a gRPC server behind the bridge)',
      { name: 'grpc-web', port: 80, targetPort: 9080 },
      { protocol: 'HTTP', http2: true },
    ],
    [
      'grpc is HTTP, HTTP/2 to the app',
      { name: 'grpc', port: 80, targetPort: 9080 },
      { protocol: 'HTTP', http2: true },
    ],
    [
      'http2 is HTTP, HTTP/2 to the app',
      { name: 'http2', port: 80, targetPort: 9080 },
      { protocol: 'HTTP', http2: true },
    ],
    [
      'appProtocol kubernetes.io/h2c too',
      { name: 'web', appProtocol: 'kubernetes.io/h2c', port: 80, targetPort: 9080 },
      { protocol: 'HTTP', http2: true },
    ],
    [
      'mysql is piped (server-first: no sniffing wait)',
      { name: 'mysql', port: 3306, targetPort: 9080 },
      { protocol: 'TCP' },
    ],
    ['tls is piped', { name: 'tls-x', port: 443, targetPort: 9080 }, { protocol: 'TCP' }],
    ['an unnamed port is sniffed', { port: 80, targetPort: 9080 }, {}],
    ['an unknown name is sniffed', { name: 'web', port: 80, targetPort: 9080 }, {}],
  ];
  for (const [title, port, want] of cases)
    it(title, () => {
      expect(inboundFor(input([svc('reviews', [port])])).ports).to.deep.equal([
        { port: 9080, service: HOST, ...want },
      ]);
    });

  it('no targetPort means the service port', () => {
    expect(inboundFor(input([svc('reviews', [{ name: 'http', port: 9080 }])])).ports).to.deep.equal([
      { port: 9080, protocol: 'HTTP', service: HOST },
    ]);
  });

  it('UDP ports are not inbound TCP ports', () => {
    expect(inboundFor(input([svc('dns', [{ name: 'dns', port: 53, protocol: 'UDP' }])])).ports).to.equal(
      undefined,
    );
  });

  it('Services that do not select the pod, or live elsewhere, are ignored', () => {
    const got = inboundFor(
      input([
        svc('other', [{ name: 'http', port: 80 }], { app: 'other' }),
        svc('far', [{ name: 'http', port: 81 }], { app: 'reviews' }, 'elsewhere'),
        {
          metadata: { name: 'noselector', namespace: 'shop' },
          spec: { ports: [{ name: 'http', port: 82 }] },
        },
      ]),
    );
    expect(got).to.deep.equal({ mtls: { mode: 'PERMISSIVE', policy: 'Mesh spec.mtls.mode' } });
  });

  it('two Services that disagree about a target port leave it sniffed; the first by name names it', () => {
    const got = inboundFor(
      input([
        svc('b-tcp', [{ name: 'tcp', port: 1, targetPort: 9080 }]),
        svc('a-http', [{ name: 'http', port: 2, targetPort: 9080 }]),
      ]),
    );
    expect(got.ports).to.deep.equal([{ port: 9080, service: 'a-http.shop.svc.cluster.local' }]);
  });

  it('an undeclared Service does not make a declared one ambiguous', () => {
    const got = inboundFor(
      input([
        svc('a', [{ port: 1, targetPort: 9080 }]),
        svc('b', [{ name: 'http', port: 2, targetPort: 9080 }]),
      ]),
    );
    expect(got.ports).to.deep.equal([{ port: 9080, protocol: 'HTTP', service: 'a.shop.svc.cluster.local' }]);
  });

  it("a named targetPort is the pod's port of that name in the Service's EndpointSlice", () => {
    const record: ServiceRecord = {
      host: HOST,
      namespace: 'shop',
      addresses: [],
      ports: [],
      endpoints: [
        { address: '10.1.0.4', ports: { web: 7000 }, labels: {} },
        { address: '10.1.0.5', ports: { web: 8000 }, labels: {} },
      ],
    };
    const got = inboundFor(
      input([svc('reviews', [{ name: 'web', appProtocol: 'http', port: 80, targetPort: 'http-app' }])], {
        serviceByHost: (h) => (h === HOST ? record : undefined),
      }),
    );
    expect(got.ports).to.deep.equal([{ port: 8000, protocol: 'HTTP', service: HOST }]);
    expect(
      inboundFor(input([svc('reviews', [{ name: 'web', port: 80, targetPort: 'x' }])])).ports,
      'unresolvable',
    ).to.equal(undefined);
  });

  it('portLevelMtls joins the port entries, also for ports no Service targets', () => {
    const pa: PeerAuthentication = {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'reviews' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '9080': { mode: 'PERMISSIVE' }, '15999': { mode: 'DISABLE' } },
      },
    };
    const got = inboundFor(
      input([svc('reviews', [{ name: 'http', port: 80, targetPort: 9080 }])], { peerAuthentications: [pa] }),
    );
    expect(got).to.deep.equal({
      mtls: { mode: 'STRICT', policy: 'PeerAuthentication shop/reviews' },
      ports: [
        {
          port: 9080,
          protocol: 'HTTP',
          service: HOST,
          mtls: { mode: 'PERMISSIVE', policy: 'PeerAuthentication shop/reviews portLevelMtls[9080]' },
        },
        {
          port: 15999,
          mtls: { mode: 'DISABLE', policy: 'PeerAuthentication shop/reviews portLevelMtls[15999]' },
        },
      ],
    });
  });
});
