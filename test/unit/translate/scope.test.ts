/**
 * Sidecar scoping and exportTo (pkg/translate/scope.ts), a table from Istio's documentation
 * (sidecar.proto, the exportTo fields of virtual_service.proto / destination_rule.proto /
 * service_entry.proto, the `networking.istio.io/exportTo` annotation, "Sidecar" reference examples),
 * then the translator with a scope: what a proxy is given and what REGISTRY_ONLY lists.
 */
import { expect } from 'chai';
import type { Sidecar, SidecarSpec } from '../../../pkg/api/sidecar.js';
import type { ServiceEntry, VirtualService } from '../../../pkg/api/index.js';
import {
  egressImports,
  exportToAnnotation,
  exportedTo,
  hostsOverlap,
  parseEgressHost,
  proxyScope,
  ruleExportedTo,
  scopeKey,
  selectSidecar,
  virtualServiceDestinations,
  type EgressHost,
} from '../../../pkg/translate/scope.js';
import { translate, type ServiceRecord } from '../../../pkg/translate/index.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';

const ROOT = 'weft-system';
let clock = 0;
const sidecar = (name: string, ns: string, spec: SidecarSpec, at = ++clock): Sidecar => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: {
    name,
    namespace: ns,
    creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, at)).toISOString(),
  },
  spec,
});

describe('scope: exportTo (VirtualService, ServiceEntry, Service annotation)', () => {
  // [exportTo, owner namespace, viewer namespace, visible]
  const table: [string[] | undefined, string, string, boolean][] = [
    [undefined, 'a', 'a', true],
    [undefined, 'a', 'b', true],
    [[], 'a', 'b', true],
    [['*'], 'a', 'a', true],
    [['*'], 'a', 'b', true],
    [['.'], 'a', 'a', true],
    [['.'], 'a', 'b', false],
    [['b'], 'a', 'b', true],
    [['b'], 'a', 'a', false],
    [['b'], 'a', 'c', false],
    [['.', 'b'], 'a', 'a', true],
    [['.', 'b'], 'a', 'b', true],
    [['.', 'b'], 'a', 'c', false],
    [['a'], 'a', 'a', true],
    [['~'], 'a', 'a', false],
    [['~'], 'a', 'b', false],
    [['b', 'c'], 'a', 'c', true],
    [['*', '.'], 'a', 'z', true],
  ];
  for (const [to, owner, viewer, visible] of table)
    it(`exportTo ${JSON.stringify(to)} of ${owner}, seen from ${viewer}: ${visible ? 'visible' : 'hidden'}`, () =>
      expect(exportedTo(to, owner, viewer)).to.equal(visible));

  it('an empty exportTo takes the mesh default (here `.`)', () => {
    expect(exportedTo([], 'a', 'b', ['.'])).to.equal(false);
    expect(exportedTo(undefined, 'a', 'a', ['.'])).to.equal(true);
    expect(exportedTo(['*'], 'a', 'b', ['.'])).to.equal(true);
  });
});

describe('scope: DestinationRule exportTo (namespace-local whatever the list)', () => {
  const dr = (ns: string, exportTo?: string[]) => ({
    metadata: { namespace: ns },
    spec: exportTo ? { exportTo } : {},
  });
  const table: [string[] | undefined, string, boolean][] = [
    [undefined, 'b', true],
    [['.'], 'a', true],
    [['.'], 'b', false],
    [['~'], 'a', true],
    [['~'], 'b', false],
    [['b'], 'b', true],
    [['b'], 'c', false],
  ];
  for (const [to, viewer, visible] of table)
    it(`DestinationRule of a, exportTo ${JSON.stringify(to)}, seen from ${viewer}: ${visible}`, () =>
      expect(ruleExportedTo(dr('a', to), viewer)).to.equal(visible));
});

describe('scope: the networking.istio.io/exportTo annotation', () => {
  const table: [string | undefined, string[] | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    [' , ', undefined],
    ['.', ['.']],
    ['*', ['*']],
    ['~', ['~']],
    ['.,b', ['.', 'b']],
    [' b , c ', ['b', 'c']],
  ];
  for (const [raw, want] of table)
    it(`${JSON.stringify(raw)} → ${JSON.stringify(want)}`, () =>
      expect(
        exportToAnnotation(raw === undefined ? {} : { 'networking.istio.io/exportTo': raw }),
      ).to.deep.equal(want));
});

describe('scope: egress hosts (namespace/dnsName)', () => {
  const parse: [string, EgressHost | null][] = [
    ['*/*', { namespace: '*', host: '*' }],
    ['./*', { namespace: 'prod', host: '*' }],
    ['~/*', { namespace: '~', host: '*' }],
    ['istio-system/*', { namespace: 'istio-system', host: '*' }],
    ['*/api.Example.com', { namespace: '*', host: 'api.example.com' }],
    ['./reviews.prod.svc.cluster.local', { namespace: 'prod', host: 'reviews.prod.svc.cluster.local' }],
    ['default/*.example.com', { namespace: 'default', host: '*.example.com' }],
    ['reviews', null],
    ['/reviews', null],
    ['ns/', null],
    ['a/b/c', null],
  ];
  for (const [entry, want] of parse)
    it(`parses ${JSON.stringify(entry)} from a proxy in prod`, () =>
      expect(parseEgressHost(entry, 'prod')).to.deep.equal(want));

  const overlap: [string, string, boolean][] = [
    ['*', 'anything.example.com', true],
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'web.example.com', false],
    ['*.example.com', 'api.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'api.example.org', false],
    ['api.example.com', '*.example.com', true],
    ['*.example.com', '*.api.example.com', true],
    ['*.api.example.com', '*.example.com', true],
    ['*.example.com', '*.example.org', false],
    ['*.svc.cluster.local', 'reviews.default.svc.cluster.local', true],
  ];
  for (const [a, b, want] of overlap)
    it(`${a} and ${b} ${want ? 'overlap' : 'do not overlap'}`, () => {
      expect(hostsOverlap(a, b)).to.equal(want);
      expect(hostsOverlap(b, a), 'symmetric').to.equal(want);
    });

  // [egress entry (from a proxy in prod), service namespace, host, imported]
  const imports: [string, string, string, boolean][] = [
    ['*/*', 'any', 'reviews.any.svc.cluster.local', true],
    ['./*', 'prod', 'reviews.prod.svc.cluster.local', true],
    ['./*', 'other', 'reviews.other.svc.cluster.local', false],
    ['~/*', 'prod', 'reviews.prod.svc.cluster.local', false],
    ['istio-system/*', 'istio-system', 'istiod.istio-system.svc.cluster.local', true],
    ['istio-system/*', 'prod', 'istiod.istio-system.svc.cluster.local', false],
    ['*/ratings.prod.svc.cluster.local', 'prod', 'ratings.prod.svc.cluster.local', true],
    ['*/ratings.prod.svc.cluster.local', 'prod', 'reviews.prod.svc.cluster.local', false],
    ['./ratings', 'prod', 'ratings.prod.svc.cluster.local', false], // dnsName must be the FQDN
    ['*/*.example.com', 'ext', 'api.example.com', true],
    ['*/*.example.com', 'ext', 'example.com', false],
    ['ext/*.example.com', 'other', 'api.example.com', false],
    ['*/api.example.com', 'ext', '*.example.com', true],
    ['*/API.example.com', 'ext', 'api.EXAMPLE.com', true],
  ];
  for (const [entry, ns, host, want] of imports)
    it(`${entry} ${want ? 'imports' : 'does not import'} ${ns}/${host}`, () =>
      expect(egressImports(parseEgressHost(entry, 'prod')!, ns, host)).to.equal(want));
});

describe('scope: which Sidecar applies (workload selector > namespace > root default)', () => {
  const rootDefault = sidecar('default', ROOT, { egress: [{ hosts: ['./*', `${ROOT}/*`] }] });
  const nsWide = sidecar('default', 'prod', { egress: [{ hosts: ['./*'] }] });
  const ratings = sidecar('ratings', 'prod', {
    workloadSelector: { labels: { app: 'ratings' } },
    egress: [{ hosts: ['*/*'] }],
  });
  const ratingsV2 = sidecar('ratings-v2', 'prod', {
    workloadSelector: { labels: { app: 'ratings', version: 'v2' } },
    egress: [{ hosts: ['./*'] }],
  });
  const all = [rootDefault, nsWide, ratings, ratingsV2];
  const pick = (ns: string, labels: Record<string, string>, sidecars = all) => {
    const s = selectSidecar(sidecars, { namespace: ns, labels }, ROOT);
    return s ? `${s.sidecar.metadata.namespace}/${s.sidecar.metadata.name} (${s.via})` : 'none';
  };
  const table: [string, string, Record<string, string>, Sidecar[], string][] = [
    [
      'selector match wins over the namespace default',
      'prod',
      { app: 'ratings' },
      all,
      'prod/ratings (workload)',
    ],
    [
      'two selectors match: the oldest wins',
      'prod',
      { app: 'ratings', version: 'v2' },
      all,
      'prod/ratings (workload)',
    ],
    [
      'no selector matches: the namespace default',
      'prod',
      { app: 'reviews' },
      all,
      'prod/default (namespace)',
    ],
    ['no label at all: the namespace default', 'prod', {}, all, 'prod/default (namespace)'],
    [
      'no Sidecar in the namespace: the root default',
      'dev',
      { app: 'ratings' },
      all,
      `${ROOT}/default (root)`,
    ],
    ['a selector of another namespace never applies', 'dev', { app: 'ratings' }, [ratings], 'none'],
    ['a namespace default of another namespace never applies', 'dev', {}, [nsWide], 'none'],
    ['no Sidecar anywhere', 'prod', {}, [], 'none'],
    ['only the root default', 'prod', { app: 'x' }, [rootDefault], `${ROOT}/default (root)`],
    [
      'a proxy in the root namespace takes its default as namespace-wide',
      ROOT,
      {},
      [rootDefault],
      `${ROOT}/default (namespace)`,
    ],
    [
      'a root Sidecar with a selector is not a mesh default',
      'dev',
      { app: 'ratings' },
      [
        sidecar('sel', ROOT, {
          workloadSelector: { labels: { app: 'ratings' } },
          egress: [{ hosts: ['*/*'] }],
        }),
      ],
      'none',
    ],
    [
      'two namespace defaults: the oldest wins',
      'qa',
      {},
      [
        sidecar('newer', 'qa', { egress: [{ hosts: ['./*'] }] }, 500),
        sidecar('older', 'qa', { egress: [{ hosts: ['./*'] }] }, 400),
      ],
      'qa/older (namespace)',
    ],
    ['a selector matching only some labels does not apply', 'prod', { version: 'v2' }, [ratingsV2], 'none'],
  ];
  for (const [title, ns, labels, sidecars, want] of table)
    it(title, () => expect(pick(ns, labels, sidecars)).to.equal(want));
});

describe('scope: outbound mode, key and VirtualService destinations', () => {
  const s = (spec: SidecarSpec) => ({ sidecar: sidecar('s', 'prod', spec), via: 'namespace' as const });
  it('no Sidecar: the mesh default (ALLOW_ANY), every host', () => {
    const scope = proxyScope(undefined, 'prod');
    expect(scope.outboundMode).to.equal('ALLOW_ANY');
    expect(scope.egress).to.equal(undefined);
  });
  it('a Sidecar without outboundTrafficPolicy keeps the mesh default', () =>
    expect(proxyScope(s({ egress: [{ hosts: ['./*'] }] }), 'prod', 'REGISTRY_ONLY').outboundMode).to.equal(
      'REGISTRY_ONLY',
    ));
  it("the Sidecar's REGISTRY_ONLY wins over the mesh default", () =>
    expect(proxyScope(s({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }), 'prod').outboundMode).to.equal(
      'REGISTRY_ONLY',
    ));
  it("the Sidecar's ALLOW_ANY wins over the mesh default", () =>
    expect(
      proxyScope(s({ outboundTrafficPolicy: { mode: 'ALLOW_ANY' } }), 'prod', 'REGISTRY_ONLY').outboundMode,
    ).to.equal('ALLOW_ANY'));
  it('a Sidecar without egress imports every host (Istio: */*)', () =>
    expect(proxyScope(s({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }), 'prod').egress).to.equal(
      undefined,
    ));
  it('malformed hosts are reported, the rest kept', () => {
    const scope = proxyScope(s({ egress: [{ hosts: ['reviews', './*'] }] }), 'prod');
    expect(scope.invalid).to.deep.equal(['reviews']);
    expect(scope.egress).to.deep.equal([{ namespace: 'prod', host: '*' }]);
  });
  it('the key names the Sidecar, and the namespace only when its hosts say ./', () => {
    expect(scopeKey(proxyScope(undefined, 'prod'), 'prod')).to.equal('');
    expect(scopeKey(proxyScope(s({ egress: [{ hosts: ['*/*'] }] }), 'prod'), 'prod')).to.equal('prod/s');
    expect(scopeKey(proxyScope(s({ egress: [{ hosts: ['./*'] }] }), 'a'), 'a')).to.equal('prod/s:a');
  });
  it('the destinations of a VirtualService: routes, mirrors, tcp and tls routes', () => {
    const vs = {
      metadata: { name: 'v', namespace: 'prod' },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            route: [{ destination: { host: 'reviews' } }, { destination: { host: 'b' } }],
            mirror: { host: 'm' },
            mirrors: [{ destination: { host: 'm2' } }],
          },
        ],
        tcp: [{ route: [{ destination: { host: 't' } }] }],
        tls: [{ match: [{ sniHosts: ['x'] }], route: [{ destination: { host: 's' } }] }],
      },
    } as unknown as VirtualService;
    expect(virtualServiceDestinations(vs).sort()).to.deep.equal(['b', 'm', 'm2', 'reviews', 's', 't']);
  });
});

describe('scope: what the translator gives a scoped proxy', () => {
  const svc = (name: string, ns: string, extra: Partial<ServiceRecord> = {}): ServiceRecord => ({
    host: `${name}.${ns}.svc.cluster.local`,
    namespace: ns,
    addresses: [`10.96.${ns.length}.${name.length}`],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    endpoints: [{ address: '10.1.0.1', labels: {} }],
    ...extra,
  });
  const services = [
    svc('reviews', 'prod'),
    svc('ratings', 'prod'),
    svc('web', 'other'),
    svc('db', 'other', { ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }] }),
  ];
  const hostsOf = (r: ReturnType<typeof translate>): string[] =>
    [
      ...new Set(
        (r.config.listeners[0] as HttpListener).virtualHosts.map((v) => v.name.replace(/:\d+$/, '')),
      ),
    ].sort();
  const scoped = (spec: SidecarSpec, extra: Parameters<typeof translate>[0] = {}) =>
    translate({
      services,
      proxy: { namespace: 'prod', labels: {} },
      scope: proxyScope({ sidecar: sidecar('s', 'prod', spec), via: 'namespace' }, 'prod'),
      ...extra,
    });

  it('./* gives the namespace only', () =>
    expect(hostsOf(scoped({ egress: [{ hosts: ['./*'] }] }))).to.deep.equal([
      'ratings.prod.svc.cluster.local',
      'reviews.prod.svc.cluster.local',
    ]));
  it('./* plus one FQDN elsewhere', () =>
    expect(
      hostsOf(scoped({ egress: [{ hosts: ['./*', 'other/web.other.svc.cluster.local'] }] })),
    ).to.deep.equal([
      'ratings.prod.svc.cluster.local',
      'reviews.prod.svc.cluster.local',
      'web.other.svc.cluster.local',
    ]));
  it('~/* gives nothing', () => expect(hostsOf(scoped({ egress: [{ hosts: ['~/*'] }] }))).to.deep.equal([]));
  it('no Sidecar: every host', () =>
    expect(hostsOf(translate({ services, proxy: { namespace: 'prod', labels: {} } }))).to.have.length(3));
  it('a Service exported only to its namespace (annotation) is not given to others, even under */*', () => {
    const hidden = [svc('reviews', 'prod'), svc('web', 'other', { exportTo: ['.'] })];
    expect(hostsOf(translate({ services: hidden, proxy: { namespace: 'prod', labels: {} } }))).to.deep.equal([
      'reviews.prod.svc.cluster.local',
    ]);
    expect(
      hostsOf(translate({ services: hidden, proxy: { namespace: 'other', labels: {} } })),
    ).to.have.length(2);
  });
  it('an imported VirtualService brings the services it routes to', () => {
    const vs: VirtualService = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'prod' },
      spec: {
        hosts: ['reviews'],
        http: [{ route: [{ destination: { host: 'web.other.svc.cluster.local' } }] }],
      },
    };
    const r = scoped(
      { egress: [{ hosts: ['./reviews.prod.svc.cluster.local'] }] },
      { virtualServices: [vs] },
    );
    expect(hostsOf(r)).to.deep.equal(['reviews.prod.svc.cluster.local', 'web.other.svc.cluster.local']);
    expect(r.config.clusters.map((c) => c.name)).to.include('outbound|80||web.other.svc.cluster.local');
  });
  it('a VirtualService not exported to the proxy is not used (the default route stays)', () => {
    const vs: VirtualService = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web', namespace: 'other' },
      spec: {
        hosts: ['web.other.svc.cluster.local'],
        exportTo: ['.'],
        http: [{ timeout: '3s', route: [{ destination: { host: 'web.other.svc.cluster.local' } }] }],
      },
    };
    const timeoutOf = (ns: string) => {
      const r = translate({ services, virtualServices: [vs], proxy: { namespace: ns, labels: {} } });
      return (r.config.listeners[0] as HttpListener).virtualHosts.find((v) => v.name.startsWith('web.'))!
        .routes[0]!.timeoutMs;
    };
    expect(timeoutOf('other')).to.equal(3000);
    expect(timeoutOf('prod')).to.not.equal(3000);
  });
  it('a ServiceEntry exported elsewhere is left out', () => {
    const se: ServiceEntry = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'x', namespace: 'other' },
      spec: {
        hosts: ['x.example.com'],
        exportTo: ['qa'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'STATIC',
        endpoints: [{ address: '10.0.0.9' }],
      },
    };
    expect(
      hostsOf(translate({ serviceEntries: [se], proxy: { namespace: 'prod', labels: {} } })),
    ).to.deep.equal([]);
    expect(
      hostsOf(translate({ serviceEntries: [se], proxy: { namespace: 'qa', labels: {} } })),
    ).to.deep.equal(['x.example.com']);
  });
  it('REGISTRY_ONLY lists the visible services’ addresses and ports, and names the Sidecar', () => {
    const r = scoped({
      egress: [{ hosts: ['./*', 'other/db.other.svc.cluster.local'] }],
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
    });
    expect(r.config.outboundTrafficPolicy).to.deep.equal({
      mode: 'REGISTRY_ONLY',
      // reviews and ratings share 10.96.4.7 here
      destinations: [
        { address: '10.96.4.7', ports: [80] },
        { address: '10.96.5.2', ports: [5432] },
      ],
    });
    expect(r.config.scope).to.deep.equal({ sidecar: 'prod/s', via: 'namespace' });
  });
  it('ALLOW_ANY puts no policy in the config', () =>
    expect(scoped({ egress: [{ hosts: ['./*'] }] }).config.outboundTrafficPolicy).to.equal(undefined));
  it('REGISTRY_ONLY: a headless service lists its endpoints; a DNS entry without addresses no address, its SNI routed to its cluster', () => {
    const headless = svc('hl', 'prod', {
      addresses: [],
      endpoints: [{ address: '10.1.2.3', labels: {}, ports: { http: 8080 } }],
    });
    const dns = svc('ext', 'prod', {
      host: 'ext.example.com',
      addresses: [],
      resolution: 'DNS',
      endpoints: [{ address: 'ext.example.com', labels: {} }],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    });
    const r = translate({
      services: [headless, dns],
      proxy: { namespace: 'prod', labels: {} },
      scope: proxyScope(
        {
          sidecar: sidecar('s', 'prod', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }),
          via: 'namespace',
        },
        'prod',
      ),
    });
    // not any address on :443: TLS naming the entry's host goes to its cluster (the catch-all)
    expect(r.config.outboundTrafficPolicy).to.deep.equal({
      mode: 'REGISTRY_ONLY',
      destinations: [{ address: '10.1.2.3', ports: [8080] }],
    });
    expect(r.config.outboundTcp?.find((s) => s.catchAll)?.tlsRoutes).to.deep.equal([
      {
        name: 'ext.example.com:443',
        match: [{ sniHosts: ['ext.example.com'] }],
        destinations: [{ cluster: 'outbound|443||ext.example.com', weight: 100 }],
      },
    ]);
  });
  it('a malformed egress host is a warning, not a crash', () =>
    expect(scoped({ egress: [{ hosts: ['reviews', './*'] }] }).warnings.join('\n')).to.contain(
      'egress host "reviews"',
    ));
});
