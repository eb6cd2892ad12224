/**
 * Istio semantics of rules that apply to some traffic only (issue #15):
 *  - sourceLabels / sourceNamespace in VirtualService match blocks (route.go sourceMatchHTTP):
 *    a block is in a proxy's config only when the proxy's labels are a superset and its
 *    namespace equals; a rule with every block removed is gone; a VirtualService with no rule
 *    left does not claim its hosts (the host gets the implicit default route);
 *  - DestinationRule precedence (push_context.go destinationRule): client namespace, service
 *    namespace, root namespace; same-namespace rules merge oldest first;
 *  - VirtualService conflicts for sidecars: the oldest wins (creationTimestamp, name, namespace).
 */
import { expect } from 'chai';
import { parse } from 'yaml';
import { translate, translateGateway } from '../../../pkg/translate/index.js';
import { labelsSubsetOf, sourceMatches, type ProxyIdentity } from '../../../pkg/translate/sourcematch.js';
import { compareByCreation, translationScopeKeyer } from '../../../pkg/translate/precedence.js';
import type {
  DestinationRule,
  Gateway,
  HTTPMatchRequest,
  ServiceEntry,
  VirtualService,
} from '../../../pkg/api/index.js';
import type { HttpListener, Route } from '../../../pkg/proxyconfig/types.js';

import { SE, routesOf } from './reviews-fixture.js';
/** route name, or `default` for the implicit route; subset of the first destination */
const summary = (routes: Route[]): string[] =>
  routes.map((r) => {
    const d = r.action.type === 'route' ? r.action.destinations[0]!.cluster.split('|')[2] : '';
    return `${r.name ?? '?'}:${d || '-'}${r.match ? `[${r.match.length}]` : ''}`;
  });

const vs = (
  name: string,
  http: unknown[],
  extra: Record<string, unknown> = {},
  ts?: string,
): VirtualService =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'default', ...(ts ? { creationTimestamp: ts } : {}) },
    spec: { hosts: ['reviews'], http, ...extra },
  }) as VirtualService;

const DR_SUBSETS = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'default' },
  spec: {
    host: 'reviews',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
} as DestinationRule;

describe('sourceMatches: one match block against a proxy (Istio sourceMatchHTTP)', () => {
  const CASES: [string, HTTPMatchRequest, ProxyIdentity, boolean][] = [
    ['no source fields', {}, { labels: {} }, true],
    ['empty sourceLabels, proxy without labels', { sourceLabels: {} }, { labels: {} }, true],
    ['labels equal', { sourceLabels: { app: 'a' } }, { labels: { app: 'a' } }, true],
    ['proxy labels a superset', { sourceLabels: { app: 'a' } }, { labels: { app: 'a', v: '1' } }, true],
    [
      'two labels, both on the proxy',
      { sourceLabels: { app: 'a', v: '1' } },
      { labels: { app: 'a', v: '1', x: 'y' } },
      true,
    ],
    ['two labels, one missing', { sourceLabels: { app: 'a', v: '1' } }, { labels: { app: 'a' } }, false],
    ['value differs', { sourceLabels: { app: 'a' } }, { labels: { app: 'b' } }, false],
    ['values are case-sensitive', { sourceLabels: { app: 'a' } }, { labels: { app: 'A' } }, false],
    ['keys are case-sensitive', { sourceLabels: { app: 'a' } }, { labels: { App: 'a' } }, false],
    ['proxy without labels', { sourceLabels: { app: 'a' } }, { labels: {} }, false],
    ['empty value needs the label', { sourceLabels: { app: '' } }, { labels: {} }, false],
    ['empty value, label present and empty', { sourceLabels: { app: '' } }, { labels: { app: '' } }, true],
    ['inherited property is not a label', { sourceLabels: { constructor: 'x' } }, { labels: {} }, false],
    ['__proto__ as a label key', JSON.parse('{"sourceLabels":{"__proto__":"x"}}'), { labels: {} }, false],
    ['sourceNamespace equal', { sourceNamespace: 'shop' }, { namespace: 'shop', labels: {} }, true],
    ['sourceNamespace differs', { sourceNamespace: 'shop' }, { namespace: 'default', labels: {} }, false],
    ['sourceNamespace, proxy in no namespace', { sourceNamespace: 'shop' }, { labels: {} }, false],
    ['empty sourceNamespace = any', { sourceNamespace: '' }, { namespace: 'x', labels: {} }, true],
    [
      'both fields match',
      { sourceLabels: { app: 'a' }, sourceNamespace: 'shop' },
      { namespace: 'shop', labels: { app: 'a' } },
      true,
    ],
    [
      'labels match, namespace not',
      { sourceLabels: { app: 'a' }, sourceNamespace: 'shop' },
      { namespace: 'x', labels: { app: 'a' } },
      false,
    ],
    [
      'namespace matches, labels not',
      { sourceLabels: { app: 'a' }, sourceNamespace: 'shop' },
      { namespace: 'shop', labels: {} },
      false,
    ],
    // Istio checks a gateway-scoped block by its gateways alone
    [
      'gateways set: source fields not checked',
      { gateways: ['mesh'], sourceLabels: { app: 'a' } },
      { labels: {} },
      true,
    ],
  ];
  for (const [name, m, proxy, want] of CASES)
    it(`${name} → ${want}`, () => expect(sourceMatches(m, proxy)).to.equal(want));
  it('labelsSubsetOf: undefined is the empty set', () => {
    expect(labelsSubsetOf(undefined, {})).to.equal(true);
  });
});

describe('sourceLabels / sourceNamespace: the routes each sidecar gets', () => {
  const SCOPED = vs('reviews', [
    {
      name: 'canary',
      match: [{ sourceLabels: { app: 'web', track: 'canary' } }],
      route: [{ destination: { host: 'reviews', subset: 'v2' } }],
    },
    {
      name: 'shop',
      match: [{ sourceNamespace: 'shop' }],
      route: [{ destination: { host: 'reviews', subset: 'v2' } }],
    },
    {
      name: 'mixed',
      match: [
        { sourceLabels: { app: 'web' }, uri: { prefix: '/a' } },
        { uri: { prefix: '/b' } },
        { sourceNamespace: 'other', uri: { prefix: '/c' } },
      ],
      route: [{ destination: { host: 'reviews', subset: 'v1' } }],
    },
    { name: 'rest', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
  ]);
  const CASES: [string, ProxyIdentity | undefined, string[]][] = [
    [
      'labels a superset of canary',
      { namespace: 'default', labels: { app: 'web', track: 'canary', v: '3' } },
      ['canary:v2[1]', 'mixed:v1[2]', 'rest:v1'],
    ],
    [
      'app=web only: canary removed',
      { namespace: 'default', labels: { app: 'web' } },
      ['mixed:v1[2]', 'rest:v1'],
    ],
    ['no labels', { namespace: 'default', labels: {} }, ['mixed:v1[1]', 'rest:v1']],
    ['namespace shop', { namespace: 'shop', labels: {} }, ['shop:v2[1]', 'mixed:v1[1]', 'rest:v1']],
    [
      'namespace other: the /c block stays',
      { namespace: 'other', labels: { app: 'web' } },
      ['mixed:v1[3]', 'rest:v1'],
    ],
    ['standalone (no proxy): only unscoped blocks', undefined, ['mixed:v1[1]', 'rest:v1']],
  ];
  for (const [name, proxy, want] of CASES)
    it(name, () => {
      const routes = routesOf({
        virtualServices: [SCOPED],
        destinationRules: [DR_SUBSETS],
        ...(proxy ? { proxy } : {}),
      });
      expect(summary(routes)).to.deep.equal(want);
    });
  it('the kept blocks are the matching ones, in order', () => {
    const routes = routesOf({
      virtualServices: [SCOPED],
      proxy: { namespace: 'default', labels: { app: 'web' } },
    });
    expect(routes.find((r) => r.name === 'mixed')!.match!.map((m) => m.uri)).to.deep.equal([
      { prefix: '/a' },
      { prefix: '/b' },
    ]);
  });
  it('every block of every rule removed: the VirtualService does not apply, the host gets the default route', () => {
    const only = vs('reviews', [
      {
        name: 'web',
        match: [{ sourceLabels: { app: 'web' } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
    ]);
    expect(
      summary(routesOf({ virtualServices: [only], proxy: { namespace: 'default', labels: { app: 'api' } } })),
    ).to.deep.equal(['default:-']);
    expect(
      summary(routesOf({ virtualServices: [only], proxy: { namespace: 'default', labels: { app: 'web' } } })),
    ).to.deep.equal(['web:v2[1]']);
  });
  it('the oldest VirtualService with nothing for this proxy leaves the host to the next one', () => {
    const old = vs(
      'a-old',
      [
        {
          name: 'web',
          match: [{ sourceLabels: { app: 'web' } }],
          route: [{ destination: { host: 'reviews', subset: 'v2' } }],
        },
      ],
      {},
      '2026-01-01T00:00:00Z',
    );
    const young = vs(
      'b-young',
      [{ name: 'all', route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
      {},
      '2026-02-01T00:00:00Z',
    );
    expect(
      summary(
        routesOf({ virtualServices: [young, old], proxy: { namespace: 'default', labels: { app: 'api' } } }),
      ),
    ).to.deep.equal(['all:v1']);
    expect(
      summary(
        routesOf({ virtualServices: [young, old], proxy: { namespace: 'default', labels: { app: 'web' } } }),
      ),
    ).to.deep.equal(['web:v2[1]']);
  });
  it('a block scoped to the mesh gateway is not checked against the proxy labels (Istio)', () => {
    const g = vs('reviews', [
      {
        name: 'g',
        match: [{ gateways: ['mesh'], sourceLabels: { app: 'web' } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
    ]);
    expect(
      summary(routesOf({ virtualServices: [g], proxy: { namespace: 'default', labels: {} } })),
    ).to.deep.equal(['g:v2[1]']);
  });
});

describe('sourceLabels on a gateway: the gateway pod is the source', () => {
  const gw = parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]
`) as Gateway;
  const v = vs(
    'reviews',
    [
      {
        name: 'blue',
        match: [{ sourceLabels: { color: 'blue' } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
      {
        name: 'edge',
        match: [{ sourceNamespace: 'edge' }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
      { name: 'rest', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    ],
    { gateways: ['gw'] },
  );
  const CASES: [string, { namespace: string; labels: Record<string, string> }, string[]][] = [
    [
      'blue pod',
      { namespace: 'default', labels: { istio: 'ingressgateway', color: 'blue' } },
      ['blue', 'rest'],
    ],
    ['green pod', { namespace: 'default', labels: { istio: 'ingressgateway', color: 'green' } }, ['rest']],
    ['pod in namespace edge', { namespace: 'edge', labels: { istio: 'ingressgateway' } }, ['edge', 'rest']],
  ];
  for (const [name, pod, want] of CASES)
    it(name, () => {
      const l = translateGateway({ serviceEntries: [SE], gateways: [gw], virtualServices: [v], pod }).config
        .listeners[0] as HttpListener;
      expect(l.virtualHosts[0]!.routes.map((r) => r.name)).to.deep.equal(want);
    });
});

describe('DestinationRule precedence: client namespace, service namespace, root namespace', () => {
  const dr = (
    namespace: string,
    lb: string,
    host = 'reviews.default.svc.cluster.local',
    extra: Record<string, unknown> = {},
  ): DestinationRule =>
    ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `r-${lb.toLowerCase()}`, namespace, ...extra },
      spec: { host, trafficPolicy: { loadBalancer: { simple: lb } } },
    }) as DestinationRule;
  const lbFor = (drs: DestinationRule[], proxyNs?: string, rootNamespace?: string): string | undefined => {
    const c = translate({
      serviceEntries: [SE],
      destinationRules: drs,
      ...(proxyNs !== undefined ? { proxy: { namespace: proxyNs, labels: {} } } : {}),
      ...(rootNamespace ? { rootNamespace } : {}),
    }).config.clusters.find((x) => x.name === 'outbound|9080||reviews.default.svc.cluster.local');
    const lb = c?.loadBalancer;
    return lb && 'simple' in lb ? lb.simple : undefined;
  };
  const CLIENT = dr('frontend', 'RANDOM');
  const SERVICE = dr('default', 'LEAST_REQUEST');
  const ROOT = dr('weft-system', 'ROUND_ROBIN');
  const OTHER = dr('elsewhere', 'PASSTHROUGH');
  const CASES: [string, DestinationRule[], string | undefined, string | undefined][] = [
    [
      'client namespace beats service namespace (input order service first)',
      [SERVICE, CLIENT],
      'frontend',
      'RANDOM',
    ],
    ['client namespace beats root', [ROOT, CLIENT], 'frontend', 'RANDOM'],
    ['service namespace beats root', [ROOT, SERVICE], 'frontend', 'LEAST_REQUEST'],
    ['another client namespace: the service namespace rule', [CLIENT, SERVICE], 'billing', 'LEAST_REQUEST'],
    ['root only', [ROOT], 'frontend', 'ROUND_ROBIN'],
    ['a rule in an unrelated namespace is not used', [OTHER], 'frontend', undefined],
    ['unrelated namespace before root: root used', [OTHER, ROOT], 'frontend', 'ROUND_ROBIN'],
    [
      'its own namespace: the unrelated rule is the client one there',
      [ROOT, OTHER],
      'elsewhere',
      'PASSTHROUGH',
    ],
    [
      'proxy in the root namespace: the service namespace first',
      [ROOT, SERVICE],
      'weft-system',
      'LEAST_REQUEST',
    ],
    ['proxy in the root namespace, root rule only', [ROOT], 'weft-system', 'ROUND_ROBIN'],
    ['no proxy (standalone): service namespace, then root', [CLIENT, ROOT], undefined, 'ROUND_ROBIN'],
    [
      'client namespace wildcard beats service namespace exact',
      [SERVICE, dr('frontend', 'RANDOM', '*.svc.cluster.local')],
      'frontend',
      'RANDOM',
    ],
    [
      'in one namespace the exact host beats a wildcard',
      [dr('default', 'RANDOM', '*.cluster.local'), SERVICE],
      'frontend',
      'LEAST_REQUEST',
    ],
    [
      'in one namespace the longest wildcard wins',
      [
        dr('default', 'RANDOM', '*.cluster.local'),
        dr('default', 'ROUND_ROBIN', '*.default.svc.cluster.local'),
      ],
      'frontend',
      'ROUND_ROBIN',
    ],
    [
      'a wildcard that does not cover the host',
      [dr('default', 'RANDOM', '*.example.com')],
      'frontend',
      undefined,
    ],
  ];
  for (const [name, drs, ns, want] of CASES)
    it(`${name} → ${want ?? 'none'}`, () => expect(lbFor(drs, ns)).to.equal(want));
  it('the root namespace is the mesh setting', () => {
    expect(lbFor([dr('mesh-root', 'RANDOM')], 'frontend', 'mesh-root')).to.equal('RANDOM');
    expect(lbFor([dr('mesh-root', 'RANDOM')], 'frontend')).to.equal(undefined);
  });
  it('same namespace: merged oldest first (its trafficPolicy, subsets by new name)', () => {
    const older = {
      ...dr('default', 'RANDOM', 'reviews', { creationTimestamp: '2026-01-01T00:00:00Z' }),
      metadata: { name: 'z-older', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
    } as DestinationRule;
    older.spec.subsets = [{ name: 'v1', labels: { version: 'v1' } }];
    const newer = {
      ...dr('default', 'ROUND_ROBIN', 'reviews'),
      metadata: { name: 'a-newer', namespace: 'default', creationTimestamp: '2026-02-01T00:00:00Z' },
    } as DestinationRule;
    newer.spec = {
      ...newer.spec,
      subsets: [
        { name: 'v1', labels: { version: 'v2' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    };
    const r = translate({
      serviceEntries: [SE],
      destinationRules: [newer, older],
      virtualServices: [
        vs('reviews', [
          {
            route: [
              { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
              { destination: { host: 'reviews', subset: 'v2' }, weight: 50 },
            ],
          },
        ]),
      ],
      proxy: { namespace: 'default', labels: {} },
    });
    const c = (s: string) =>
      r.config.clusters.find((x) => x.name === `outbound|9080|${s}|reviews.default.svc.cluster.local`);
    expect(c('v1')!.endpoints.map((e) => e.address)).to.deep.equal(['10.0.0.1']);
    expect(c('v2')!.endpoints.map((e) => e.address)).to.deep.equal(['10.0.0.2']);
    expect(c('v1')!.loadBalancer).to.deep.equal({ simple: 'RANDOM' });
    expect(r.warnings.join('\n'))
      .to.include('DestinationRule default/a-newer: subset v1')
      .and.include('trafficPolicy for reviews.default.svc.cluster.local is ignored: default/z-older');
  });
  it('same namespace: a newer rule gives its policy when the older has none', () => {
    const older = {
      ...SERVICE,
      metadata: { name: 'old', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { host: 'reviews' },
    } as DestinationRule;
    const newer = {
      ...dr('default', 'RANDOM', 'reviews'),
      metadata: { name: 'new', namespace: 'default', creationTimestamp: '2026-03-01T00:00:00Z' },
    } as DestinationRule;
    expect(lbFor([newer, older], 'frontend')).to.equal('RANDOM');
  });
});

describe('VirtualService conflicts for sidecars: the oldest wins', () => {
  const a = vs(
    'zz',
    [{ name: 'old', route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
    {},
    '2026-01-01T00:00:00Z',
  );
  const b = vs(
    'aa',
    [{ name: 'new', route: [{ destination: { host: 'reviews', subset: 'v2' } }] }],
    {},
    '2026-01-02T00:00:00Z',
  );
  const CASES: [string, VirtualService[], string][] = [
    ['oldest listed second', [b, a], 'old'],
    ['oldest listed first', [a, b], 'old'],
    [
      'same time: first by name',
      [{ ...a, metadata: { ...a.metadata, creationTimestamp: '2026-01-02T00:00:00Z' } }, b],
      'new',
    ],
  ];
  for (const [name, vss, want] of CASES)
    it(`${name} → ${want}`, () =>
      expect(routesOf({ virtualServices: vss }).map((r) => r.name)).to.deep.equal([want]));
  it('compareByCreation: time, then name, then namespace', () => {
    const m = (name: string, namespace: string, creationTimestamp?: string) => ({
      metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) },
    });
    expect(
      compareByCreation(m('b', 'x', '2026-01-01T00:00:00Z'), m('a', 'x', '2026-01-02T00:00:00Z')),
    ).to.be.lessThan(0);
    expect(compareByCreation(m('a', 'y'), m('b', 'x'))).to.be.lessThan(0);
    expect(compareByCreation(m('a', 'x'), m('a', 'y'))).to.be.lessThan(0);
    expect(compareByCreation(m('a', 'x'), m('a', 'x'))).to.equal(0);
  });
});

describe('translationScopeKeyer: proxies that get the same translation share a key', () => {
  const keyOf = translationScopeKeyer({
    virtualServices: [
      vs('r', [{ match: [{ sourceLabels: { app: 'web' } }, { sourceNamespace: 'shop' }], route: [] }]),
    ],
    destinationRules: [
      { ...DR_SUBSETS, metadata: { name: 'x', namespace: 'frontend' } },
      { ...DR_SUBSETS, metadata: { name: 'y', namespace: 'weft-system' } },
    ],
  });
  const k = (namespace: string, labels: Record<string, string>) => keyOf({ namespace, labels });
  it('labels no sourceLabels reads do not matter', () =>
    expect(k('a', { app: 'web', pod: '1' })).to.equal(k('a', { app: 'web', pod: '2' })));
  it('a label some sourceLabels reads does', () =>
    expect(k('a', { app: 'web' })).to.not.equal(k('a', { app: 'api' })));
  it('namespaces with no DestinationRule and no sourceNamespace share one', () =>
    expect(k('a', {})).to.equal(k('b', {})));
  it('a namespace with a DestinationRule has its own', () =>
    expect(k('frontend', {})).to.not.equal(k('a', {})));
  it('a sourceNamespace has its own', () => expect(k('shop', {})).to.not.equal(k('a', {})));
  it('the root namespace translates like any namespace without rules', () =>
    expect(k('weft-system', {})).to.equal(k('a', {})));
  describe('with the registry: a rule for a service of its own namespace does not tell it apart', () => {
    const own = (name: string, ns: string, host: string) =>
      ({ ...DR_SUBSETS, metadata: { name, namespace: ns }, spec: { host } }) as DestinationRule;
    const keyer = (drs: DestinationRule[], ses: ServiceEntry[] = []) =>
      translationScopeKeyer({
        destinationRules: drs,
        services: [{ host: 'reviews.default.svc.cluster.local', namespace: 'default' }],
        serviceEntries: ses,
        fqdnOf: (h, ns) => (h.includes('.') ? h : `${h}.${ns}.svc.cluster.local`),
      });
    const CASES: [string, DestinationRule[], ServiceEntry[], boolean][] = [
      ['own service, short host', [own('r', 'default', 'reviews')], [], false],
      ['own service, FQDN', [own('r', 'default', 'reviews.default.svc.cluster.local')], [], false],
      ["another namespace's service", [own('r', 'frontend', 'reviews.default.svc.cluster.local')], [], true],
      ['a wildcard', [own('r', 'default', '*.svc.cluster.local')], [], true],
      ['a host no service has', [own('r', 'default', 'nothing')], [], true],
      [
        'a ServiceEntry host (it may win the registry)',
        [own('r', 'default', 'reviews')],
        [{ ...SE, metadata: { name: 'x', namespace: 'other' } }],
        true,
      ],
    ];
    for (const [name, drs, ses, tells] of CASES)
      it(`${name} → ${tells ? 'own key' : 'shared key'}`, () => {
        const kf = keyer(drs, ses);
        const ns = drs[0]!.metadata.namespace!;
        expect(kf({ namespace: ns, labels: {} }) !== kf({ namespace: 'unrelated', labels: {} })).to.equal(
          tells,
        );
      });
  });
});
