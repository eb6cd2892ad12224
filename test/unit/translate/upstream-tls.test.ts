/**
 * Client TLS in the translation (Istio's buildUpstreamTLSSettings + auto-mTLS): which clusters
 * get ISTIO_MUTUAL / SIMPLE / MUTUAL / plaintext, the SNI, and the SPIFFE IDs expected of the
 * peers, from tables of Istio's documented behaviour.
 */
import { expect } from 'chai';
import type { ClientTLSSettings, DestinationRule, Gateway, VirtualService } from '../../../pkg/api/index.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import type { Cluster } from '../../../pkg/proxyconfig/types.js';
import {
  translate,
  translateGateway,
  type ServiceRecord,
  type TranslateInput,
} from '../../../pkg/translate/index.js';

const HOST = 'reviews.shop.svc.cluster.local';
const MESHED = { 'security.istio.io/tlsMode': 'istio' };
const reviews: ServiceRecord = {
  host: HOST,
  namespace: 'shop',
  addresses: [],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [
    { address: '10.0.0.1', labels: { ...MESHED, version: 'v1' }, serviceAccount: 'reviews' },
    { address: '10.0.0.2', labels: { ...MESHED, version: 'v2' }, serviceAccount: 'reviews-v2' },
    { address: '10.0.0.3', labels: { version: 'legacy' }, serviceAccount: 'legacy' },
  ],
};
const plain: ServiceRecord = {
  ...reviews,
  host: 'db.shop.svc.cluster.local',
  endpoints: [reviews.endpoints[2]!],
};
const external: ServiceRecord = {
  host: 'api.example.com',
  namespace: 'shop',
  addresses: [],
  ports: [{ number: 443, name: 'https', protocol: 'HTTP' }],
  endpoints: [{ address: '192.0.2.10', labels: {} }],
};

function dr(host: string, tls: ClientTLSSettings | undefined, subsets = true): DestinationRule {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'r', namespace: 'shop' },
    spec: {
      host,
      ...(tls ? { trafficPolicy: { tls } } : {}),
      ...(subsets
        ? {
            subsets: [
              { name: 'v1', labels: { version: 'v1' } },
              { name: 'legacy', labels: { version: 'legacy' } },
            ],
          }
        : {}),
    },
  } as DestinationRule;
}

function clusterTls(input: Partial<TranslateInput>, name: string): Cluster['tls'] {
  const { config } = translate({
    services: [reviews, plain, external],
    domainSuffix: 'svc.cluster.local',
    ...input,
  });
  expect(validateProxyConfig(config)).to.deep.equal([]);
  const c = config.clusters.find((x) => x.name === name);
  expect(c, `cluster ${name}`).to.not.equal(undefined);
  return c!.tls;
}

const vsTo = (subset: string): never =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'r', namespace: 'shop' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset } }] }] },
  }) as never;
const ids = (...sas: string[]): string[] => sas.map((sa) => `spiffe://cluster.local/ns/shop/sa/${sa}`);
const main = `outbound|9080||${HOST}`;

describe('translate: upstream TLS (DestinationRule tls, auto-mTLS)', () => {
  const cases: [string, Partial<TranslateInput>, string, Cluster['tls']][] = [
    [
      'auto-mTLS: ISTIO_MUTUAL to the sidecar endpoints, expecting their service accounts',
      {},
      main,
      {
        mode: 'ISTIO_MUTUAL',
        auto: true,
        sni: `outbound_.9080_._.${HOST}`,
        subjectAltNames: ids('reviews', 'reviews-v2'),
      },
    ],
    [
      'auto-mTLS: no endpoint has a sidecar → plaintext',
      {},
      'outbound|9080||db.shop.svc.cluster.local',
      undefined,
    ],
    ['auto-mTLS off (mesh mtls DISABLE) → plaintext', { autoMtls: false }, main, undefined],
    [
      'a subset of unmeshed pods → plaintext',
      { destinationRules: [dr('reviews', undefined)], virtualServices: [vsTo('legacy')] },
      `outbound|9080|legacy|${HOST}`,
      undefined,
    ],
    [
      'DR tls DISABLE → plaintext even to sidecars',
      { destinationRules: [dr('reviews', { mode: 'DISABLE' })] },
      main,
      undefined,
    ],
    [
      'DR tls {} (mode unset = DISABLE) → plaintext',
      { destinationRules: [dr('reviews', {})] },
      main,
      undefined,
    ],
    [
      'DR ISTIO_MUTUAL: to every endpoint (no auto), all service accounts',
      { destinationRules: [dr('reviews', { mode: 'ISTIO_MUTUAL' })] },
      main,
      {
        mode: 'ISTIO_MUTUAL',
        sni: `outbound_.9080_._.${HOST}`,
        subjectAltNames: ids('legacy', 'reviews', 'reviews-v2'),
      },
    ],
    [
      'DR ISTIO_MUTUAL with sni and subjectAltNames: the DR wins',
      {
        destinationRules: [
          dr('reviews', {
            mode: 'ISTIO_MUTUAL',
            sni: 'x.example',
            subjectAltNames: ['spiffe://td/ns/a/sa/b'],
          }),
        ],
      },
      main,
      { mode: 'ISTIO_MUTUAL', sni: 'x.example', subjectAltNames: ['spiffe://td/ns/a/sa/b'] },
    ],
    [
      'SIMPLE towards a ServiceEntry host: TLS origination with the host as SNI',
      { destinationRules: [dr('api.example.com', { mode: 'SIMPLE' }, false)] },
      'outbound|443||api.example.com',
      { mode: 'SIMPLE', sni: 'api.example.com' },
    ],
    [
      'MUTUAL with files and SANs',
      {
        destinationRules: [
          dr(
            'api.example.com',
            {
              mode: 'MUTUAL',
              clientCertificate: '/c.pem',
              privateKey: '/k.pem',
              caCertificates: '/ca.pem',
              subjectAltNames: ['api.example.com'],
              sni: 'api',
            },
            false,
          ),
        ],
      },
      'outbound|443||api.example.com',
      {
        mode: 'MUTUAL',
        sni: 'api',
        subjectAltNames: ['api.example.com'],
        caCertificates: '/ca.pem',
        clientCertificate: '/c.pem',
        privateKey: '/k.pem',
      },
    ],
    [
      'trust domain from the mesh',
      { trustDomain: 'example.org' },
      main,
      {
        mode: 'ISTIO_MUTUAL',
        auto: true,
        sni: `outbound_.9080_._.${HOST}`,
        subjectAltNames: [
          'spiffe://example.org/ns/shop/sa/reviews',
          'spiffe://example.org/ns/shop/sa/reviews-v2',
        ],
      },
    ],
  ];
  for (const [name, input, cluster, want] of cases)
    it(name, () => expect(clusterTls(input, cluster)).to.deep.equal(want));

  it('subset v1 under auto-mTLS: its own SNI and only its service account', () => {
    const { config } = translate({
      services: [reviews],
      destinationRules: [dr('reviews', undefined)],
      virtualServices: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'r', namespace: 'shop' },
          spec: {
            hosts: ['reviews'],
            http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
          },
        } as never,
      ],
      domainSuffix: 'svc.cluster.local',
    });
    const c = config.clusters.find((x) => x.subset === 'v1')!;
    expect(c.tls).to.deep.equal({
      mode: 'ISTIO_MUTUAL',
      auto: true,
      sni: `outbound_.9080_.v1_.${HOST}`,
      subjectAltNames: ids('reviews'),
    });
  });

  it('credentialName is passed on; sidecars are warned that it applies at gateways only', () => {
    const r = translate({
      services: [external],
      destinationRules: [dr('api.example.com', { mode: 'MUTUAL', credentialName: 'client-cert' }, false)],
      domainSuffix: 'svc.cluster.local',
    });
    expect(r.config.clusters[0]!.tls).to.deep.equal({
      mode: 'MUTUAL',
      sni: 'api.example.com',
      credentialName: 'client-cert',
    });
    expect(r.warnings.join('\n')).to.match(
      /tls\.credentialName client-cert applies at gateways only; sidecars' connections to it fail \(503 UF\), never in plaintext/,
    );
    const gw = translateGateway({
      services: [external],
      destinationRules: [dr('api.example.com', { mode: 'MUTUAL', credentialName: 'client-cert' }, false)],
      domainSuffix: 'svc.cluster.local',
      gateways: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Gateway',
          metadata: { name: 'g', namespace: 'edge' },
          spec: { servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
        } as Gateway,
      ],
      virtualServices: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'api', namespace: 'edge' },
          spec: {
            hosts: ['api.example.com'],
            gateways: ['edge/g'],
            http: [{ route: [{ destination: { host: 'api.example.com' } }] }],
          },
        } as VirtualService,
      ],
      pod: { namespace: 'edge', labels: {} },
    });
    expect(gw.config.clusters.map((c) => c.tls?.credentialName)).to.deep.equal(['client-cert']);
    expect(gw.warnings.join('\n'), 'gateways get it delivered: no warning').to.not.match(/credentialName/);
  });

  it('the validator refuses a broken tls block', () => {
    const { config } = translate({ services: [reviews], domainSuffix: 'svc.cluster.local' });
    const bad = {
      ...config,
      clusters: [{ ...config.clusters[0]!, tls: { mode: 'MUTUAL', auto: true, alpn: [''] } }],
    };
    expect(validateProxyConfig(bad).map((p) => p.path)).to.have.members([
      'clusters[0].tls.alpn',
      'clusters[0].tls.auto',
      'clusters[0].tls',
    ]);
  });
});

describe("auto-mTLS follows the destination's PeerAuthentication (Istio's clients send plaintext to DISABLE)", () => {
  /** The cluster for reviews:9080, translated with `peerModeOf` answering from `modes` (by version label). */
  function cluster(
    modes: Record<string, 'STRICT' | 'PERMISSIVE' | 'DISABLE'>,
    tls?: ClientTLSSettings,
  ): Cluster {
    const asked: [string, number][] = [];
    const { config } = translate({
      services: [reviews],
      domainSuffix: 'svc.cluster.local',
      ...(tls ? { destinationRules: [dr(HOST, tls)] } : {}),
      peerModeOf: (ns, labels, port) => {
        asked.push([ns, port]);
        return modes[labels.version ?? ''] ?? 'PERMISSIVE';
      },
    });
    expect(validateProxyConfig(config)).to.deep.equal([]);
    if (!tls) for (const [ns, port] of asked) expect([ns, port]).to.deep.equal(['shop', 9080]);
    return config.clusters.find((c) => c.name === `outbound|9080||${HOST}`)!;
  }
  const modeLabels = (c: Cluster): (string | undefined)[] =>
    c.endpoints.map((e) => e.labels?.['security.istio.io/tlsMode']);

  const cases: [
    string,
    Record<string, 'STRICT' | 'PERMISSIVE' | 'DISABLE'>,
    (string | undefined)[],
    boolean,
  ][] = [
    ['PERMISSIVE everywhere: both meshed endpoints get mTLS', {}, ['istio', 'istio', undefined], true],
    ['STRICT: mTLS', { v1: 'STRICT', v2: 'STRICT' }, ['istio', 'istio', undefined], true],
    [
      'one endpoint DISABLE: that one is plaintext',
      { v1: 'DISABLE' },
      ['disabled', 'istio', undefined],
      true,
    ],
    [
      'every meshed endpoint DISABLE: no TLS on the cluster',
      { v1: 'DISABLE', v2: 'DISABLE' },
      ['disabled', 'disabled', undefined],
      false,
    ],
  ];
  for (const [name, modes, labels, hasTls] of cases)
    it(name, () => {
      const c = cluster(modes);
      expect(modeLabels(c)).to.deep.equal(labels);
      expect(c.tls !== undefined, JSON.stringify(c.tls)).to.equal(hasTls);
      if (hasTls) expect(c.tls).to.include({ mode: 'ISTIO_MUTUAL', auto: true });
    });

  it('a DestinationRule tls mode is the user decision: labels untouched, ISTIO_MUTUAL kept', () => {
    const c = cluster({ v1: 'DISABLE', v2: 'DISABLE' }, { mode: 'ISTIO_MUTUAL' });
    expect(modeLabels(c)).to.deep.equal(['istio', 'istio', undefined]);
    expect(c.tls).to.include({ mode: 'ISTIO_MUTUAL' });
  });
});
