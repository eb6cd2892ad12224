import { expect } from 'chai';
import { parse } from 'yaml';
import {
  translate,
  fqdn,
  convertPool,
  convertOutlier,
  convertLb,
  convertMatch,
  convertRetries,
} from '../../../pkg/translate/index.js';
import { compileRetry } from '../../../proxy/router/retry.js';
import { compileConfig, findVHost, type CompiledHttpListener } from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { parseDurationMs } from '../../../pkg/translate/duration.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { domainsOf } from '../../../pkg/proxyconfig/domains.js';
import type { DestinationRule, HTTPRoute, ServiceEntry, VirtualService } from '../../../pkg/api/index.js';
import { ruleForGateway, ruleForMesh } from '../../../pkg/translate/gateway.js';
import { compileRouteMatch, type RequestView } from '../../../proxy/compile/match.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';

const SE = parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}, {number: 5432, name: db, protocol: TCP}]
  endpoints:
  - {address: 10.0.0.1, ports: {http: 19080}, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
  - {address: 10.0.0.3, labels: {version: v3}}
`) as ServiceEntry;
const DR = parse(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 10, connectTimeout: 250ms}, http: {http1MaxPendingRequests: 5}}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {simple: RANDOM}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 2s}}
  - {name: v9, labels: {version: v9}}
`) as DestinationRule;
const VS = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}, x-canary: {}}}]
    route: [{destination: {host: reviews, subset: v2}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
  - match: [{uri: {prefix: /missing}}]
    route: [{destination: {host: reviews, subset: nope}}]
  - match: [{uri: {prefix: /empty}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
    timeout: 10s
    retries: {attempts: 2, perTryTimeout: 5s, retryOn: 5xx}
    mirror: {host: reviews, subset: v1}
`) as VirtualService;

describe('translate: Istio objects → proxy config', () => {
  const { config, warnings } = translate({
    serviceEntries: [SE],
    destinationRules: [DR],
    virtualServices: [VS],
  });
  const listener = config.listeners[0] as HttpListener;
  const vh = listener.virtualHosts.find((v) => v.name === 'reviews.default.svc.cluster.local:9080')!;
  const clusters = new Map(config.clusters.map((c) => [c.name, c]));

  it('produces a structurally valid, versioned config', () => {
    expect(validateProxyConfig(config)).to.deep.equal([]);
    expect(config.version).to.match(/^[0-9a-f]{12}$/);
    expect(warnings).to.deep.equal([]);
  });
  it('is deterministic (same input, same version)', () => {
    expect(
      translate({ serviceEntries: [SE], destinationRules: [DR], virtualServices: [VS] }).config.version,
    ).to.equal(config.version);
  });
  it('one virtual host per HTTP port (TCP ports get none)', () => {
    expect(listener.virtualHosts.map((v) => v.name).sort()).to.deep.equal([
      'reviews.default.svc.cluster.local:9080',
      'reviews.default.svc.cluster.local:9090',
    ]);
  });
  it('domains: FQDN, short name, name.namespace, with and without port on the default port', () => {
    expect(domainsOf(vh)).to.include.members([
      'reviews',
      'reviews:9080',
      'reviews.default',
      'reviews.default.svc.cluster.local',
      'reviews.default.svc.cluster.local:9080',
    ]);
    const other = listener.virtualHosts.find((v) => v.name.endsWith(':9090'))!;
    expect(domainsOf(other)).to.include('reviews:9090').and.not.include('reviews');
  });
  it('rules keep list order and their source for Explain', () => {
    expect(vh.routes.map((r) => r.source?.rule)).to.deep.equal([0, 1, 2, 3]);
    expect(vh.routes[0]!.name).to.equal('jason');
    expect(vh.routes[0]!.match![0]!.headers).to.deep.equal({
      'end-user': { exact: 'jason' },
      'x-canary': { present: true },
    });
  });
  it('subset clusters select endpoints by label and use the endpoint port mapping', () => {
    const v1 = clusters.get('outbound|9080|v1|reviews.default.svc.cluster.local')!;
    expect(v1.endpoints).to.deep.equal([{ address: '10.0.0.1', port: 19080, labels: { version: 'v1' } }]);
    const v2 = clusters.get('outbound|9080|v2|reviews.default.svc.cluster.local')!;
    expect(v2.endpoints[0]!.port).to.equal(9080);
  });
  it('undefined subset → no cluster (503 NC at run time); subset with no endpoints → empty cluster (503 UH)', () => {
    expect(clusters.has('outbound|9080|nope|reviews.default.svc.cluster.local')).to.equal(false);
    expect(clusters.get('outbound|9080|v9|reviews.default.svc.cluster.local')!.endpoints).to.deep.equal([]);
  });
  it('subset policy overrides the destination level field by field', () => {
    const v2 = clusters.get('outbound|9080|v2|reviews.default.svc.cluster.local')!;
    expect(v2.loadBalancer).to.deep.equal({ simple: 'ROUND_ROBIN' });
    expect(v2.connectionPool).to.deep.equal({
      maxConnections: 10,
      connectTimeoutMs: 250,
      http1MaxPendingRequests: 5,
    });
    expect(v2.outlierDetection).to.deep.equal({
      consecutive5xxErrors: 3,
      intervalMs: 1000,
      baseEjectionTimeMs: 2000,
    });
    expect(clusters.get('outbound|9080|v1|reviews.default.svc.cluster.local')!.outlierDetection).to.equal(
      undefined,
    );
  });
  it('port-level settings replace the top level whole (no inheritance)', () => {
    const r = translate({ serviceEntries: [SE], destinationRules: [DR], virtualServices: [] }).config;
    const grpc = r.clusters.find((c) => c.name === 'outbound|9090||reviews.default.svc.cluster.local')!;
    expect(grpc.loadBalancer).to.deep.equal({ simple: 'RANDOM' });
    expect(grpc.connectionPool).to.equal(undefined);
  });
  it('weights, timeout, retries, fault, mirror', () => {
    const last = vh.routes[3]!;
    expect(last.action).to.deep.include({ type: 'route' });
    expect(
      (last.action as { destinations: { weight: number }[] }).destinations.map((d) => d.weight),
    ).to.deep.equal([90, 10]);
    expect(last.timeoutMs).to.equal(10_000);
    expect(last.retries).to.deep.equal({
      attempts: 2,
      retryOn: ['5xx'],
      retriableStatusCodes: [],
      perTryTimeoutMs: 5000,
    });
    // host: the cluster's service, left to the proxy (see below)
    expect(last.mirrors).to.deep.equal([
      { cluster: 'outbound|9080|v1|reviews.default.svc.cluster.local', percentage: 100 },
    ]);
    expect(vh.routes[0]!.fault).to.deep.equal({ delay: { fixedDelayMs: 7000, percentage: 100 } });
  });
  it("a destination's host equal to its cluster's service is left out; the proxy compiles the same host (issue #19)", () => {
    const vs = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /gone}}]
    route: [{destination: {host: gone.default.svc.cluster.local}}]
  - route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews}, weight: 10}]
    mirror: {host: reviews}
`) as VirtualService;
    const cfg = translate({ serviceEntries: [SE], destinationRules: [DR], virtualServices: [vs] }).config;
    expect(validateProxyConfig(cfg)).to.deep.equal([]);
    const routes = (cfg.listeners[0] as HttpListener).virtualHosts.find(
      (v) => v.name === 'reviews.default.svc.cluster.local:9080',
    )!.routes;
    const dests = (i: number) => (routes[i]!.action as { destinations: { host?: string }[] }).destinations;
    // no cluster for an unknown host: kept (503 NC either way)
    expect(dests(0).map((d) => d.host)).to.deep.equal(['gone.default.svc.cluster.local']);
    expect(dests(1).map((d) => d.host)).to.deep.equal([undefined, undefined]);
    expect(routes[1]!.mirrors!.map((m) => m.host)).to.deep.equal([undefined]);
    const { config } = compileConfig(cfg, {
      metrics: new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }),
    });
    const compiled = findVHost(
      config.listeners[0] as CompiledHttpListener,
      'reviews.default.svc.cluster.local:9080',
    )!;
    expect(compiled.routes[1]!.dests.map((d) => d.host)).to.deep.equal([
      'reviews.default.svc.cluster.local',
      'reviews.default.svc.cluster.local',
    ]);
    expect(compiled.routes[1]!.mirrors!.map((m) => m.dest.host)).to.deep.equal([
      'reviews.default.svc.cluster.local',
    ]);
  });
  it('retries equal to the default policy are left out; the proxy compiles the same policy (issue #19)', () => {
    const retriesOf = (retries: Record<string, unknown>) => {
      const vs = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{route: [{destination: {host: reviews}}]}]
`) as VirtualService;
      Object.assign(vs.spec.http![0]!, { retries });
      const cfg = translate({ serviceEntries: [SE], destinationRules: [], virtualServices: [vs] }).config;
      const l = cfg.listeners[0] as HttpListener;
      return l.virtualHosts.find((v) => v.name === 'reviews.default.svc.cluster.local:9080')!.routes[0]!
        .retries;
    };
    const same = [
      { attempts: 2 },
      { attempts: 2, retryOn: 'cancelled,unavailable,refused-stream,connect-failure,retriable-status-codes' },
      { attempts: 2, backoff: '25ms' },
    ];
    for (const r of same) {
      expect(retriesOf(r), JSON.stringify(r)).to.equal(undefined);
      expect(compileRetry(convertRetries(r), 0)).to.deep.equal(compileRetry(undefined, 0));
    }
    const different = [
      { attempts: 3 },
      { attempts: 2, perTryTimeout: '1s' },
      { attempts: 2, backoff: '50ms' },
      { attempts: 2, retryOn: 'connect-failure' },
      { attempts: 2, retryOn: '503' },
      {
        attempts: 2,
        retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,reset',
      },
      { attempts: 0 },
    ];
    for (const r of different) expect(retriesOf(r), JSON.stringify(r)).to.deep.equal(convertRetries(r));
  });
  it('no VirtualService → Istio default route (all traffic, default retries)', () => {
    const r = translate({ serviceEntries: [SE] }).config;
    const v = (r.listeners[0] as HttpListener).virtualHosts[0]!;
    expect(v.routes).to.have.length(1);
    expect(v.routes[0]!.retries).to.equal(undefined);
    expect(v.routes[0]!.match).to.equal(undefined);
  });
  it('gateway-only VirtualServices do not apply to the sidecar', () => {
    const gw = { ...VS, spec: { ...VS.spec, gateways: ['istio-system/ingress'] } };
    const r = translate({ serviceEntries: [SE], virtualServices: [gw] }).config;
    const v = (r.listeners[0] as HttpListener).virtualHosts.find((x) => x.name.endsWith(':9080'))!;
    expect(v.routes[0]!.name).to.equal('default');
  });
  it('an empty gateways list means mesh, as in Istio', () => {
    const empty = { ...VS, spec: { ...VS.spec, gateways: [] } };
    const r = translate({ serviceEntries: [SE], virtualServices: [empty] }).config;
    const v = (r.listeners[0] as HttpListener).virtualHosts.find((x) => x.name.endsWith(':9080'))!;
    expect(v.routes[0]!.name).to.equal('jason');
  });
  it('matches scoped to gateways only (match[].gateways without mesh) do not apply to sidecars', () => {
    const scoped = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  gateways: [mesh, istio-system/ingress]
  http:
  - name: edge-only
    match: [{uri: {prefix: /edge}, gateways: [istio-system/ingress]}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: both
    match: [{uri: {prefix: /a}, gateways: [istio-system/ingress]}, {uri: {prefix: /b}, gateways: [mesh]}]
    route: [{destination: {host: reviews, subset: v1}}]
  - name: rest
    route: [{destination: {host: reviews, subset: v1}}]
`) as VirtualService;
    const r = translate({ serviceEntries: [SE], virtualServices: [scoped] }).config;
    const v = (r.listeners[0] as HttpListener).virtualHosts.find((x) => x.name.endsWith(':9080'))!;
    expect(v.routes.map((x) => x.name)).to.deep.equal(['both', 'rest']);
    expect(v.routes[0]!.match).to.have.length(1);
    expect(JSON.stringify(v.routes[0]!.match)).to.include('/b').and.not.include('/a');
  });
  it('a null match element routes as a match-all (Istio reads a nil match as no conditions)', () => {
    const nullMatch = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: all
    match: [null]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: rest
    route: [{destination: {host: reviews, subset: v1}}]
`) as VirtualService;
    const r = translate({ serviceEntries: [SE], virtualServices: [nullMatch] });
    const v = (r.config.listeners[0] as HttpListener).virtualHosts.find((x) => x.name.endsWith(':9080'))!;
    expect(v.routes.map((x) => x.name)).to.deep.equal(['all', 'rest']);
    expect(v.routes[0]!.match).to.deep.equal([{}]);
    const request: RequestView = {
      method: 'POST',
      path: '/any/path',
      query: 'q=1',
      target: '/any/path?q=1',
      authority: 'reviews:9080',
      scheme: 'http',
      port: 9080,
      headers: { 'x-any': 'y' },
    };
    expect(compileRouteMatch(v.routes[0]!.match![0]!)(request)).to.equal(true);
    expect(validateProxyConfig(r.config)).to.deep.equal([]);
  });
  it('a null match element survives the mesh and gateway scoping of matches as a match-all', () => {
    const rule = {
      match: [null, { uri: { prefix: '/a' }, gateways: ['istio-system/other'] }],
      route: [{ destination: { host: 'reviews' } }],
    } as unknown as HTTPRoute;
    expect(ruleForMesh(rule)?.match).to.deep.equal([{}]);
    expect(ruleForGateway(rule, 'default', 'istio-system/ingress')?.match).to.deep.equal([{}]);
    expect(ruleForGateway(rule, 'default', 'istio-system/other')?.match).to.deep.equal([
      {},
      { uri: { prefix: '/a' }, gateways: ['istio-system/other'] },
    ]);
  });
  it('a second VirtualService for the same host is reported, not merged', () => {
    const r = translate({
      serviceEntries: [SE],
      virtualServices: [VS, { ...VS, metadata: { name: 'dup', namespace: 'default' } }],
    });
    // no creationTimestamp on either: Istio orders them by name, so `dup` wins
    expect(r.warnings.join('\n')).to.match(
      /VirtualService default\/reviews: host reviews\.default\.svc\.cluster\.local is already routed by VirtualService default\/dup \(the oldest wins/,
    );
  });
  it('delegate and corsPolicy produce warnings, not crashes', () => {
    const vs = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: d, namespace: default}
spec:
  hosts: [reviews]
  http:
  - delegate: {name: x}
  - route: [{destination: {host: reviews}}]
    corsPolicy: {allowOrigins: [{exact: a}]}
`) as VirtualService;
    const r = translate({ serviceEntries: [SE], virtualServices: [vs] });
    expect(r.warnings.join('\n'))
      .to.match(/delegate is not supported/)
      .and.match(/corsPolicy/);
  });

  const DURATIONS: [string, number | null][] = [
    ['10s', 10_000],
    ['1.5s', 1500],
    ['300ms', 300],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['500us', 1],
    ['', null],
    ['10', null],
    ['5x', null],
    ['s', null],
  ];
  for (const [d, want] of DURATIONS)
    it(`duration ${JSON.stringify(d)} → ${want}`, () => expect(parseDurationMs(d)).to.equal(want));

  it('fqdn resolves short names in the object namespace', () => {
    expect(fqdn('reviews', 'ns1')).to.equal('reviews.ns1.svc.cluster.local');
    expect(fqdn('Reviews.ns2.svc.cluster.local', 'x')).to.equal('reviews.ns2.svc.cluster.local');
    expect(fqdn('*.example.com', 'x')).to.equal('*.example.com');
  });
  it('policy converters', () => {
    expect(convertLb({ simple: 'LEAST_CONN' })).to.deep.equal({ simple: 'LEAST_REQUEST' });
    expect(convertLb({ simple: 'UNSPECIFIED' })).to.equal(undefined);
    expect(convertLb({ consistentHash: { httpCookie: { name: 'u', ttl: '0s' } } })).to.deep.equal({
      consistentHash: { httpCookie: { name: 'u' } },
    });
    expect(convertPool({ http: { maxRetries: 3, idleTimeout: '30s' } })).to.deep.equal({
      maxRetries: 3,
      idleTimeoutMs: 30_000,
    });
    expect(convertPool({ http: { http2KeepAlive: { interval: '30s', timeout: '5s' } } })).to.deep.equal({
      http2KeepAliveIntervalMs: 30_000,
      http2KeepAliveTimeoutMs: 5_000,
    });
    // half-set (Istio's validation, and the webhook, refuse it): no PINGs
    expect(convertPool({ http: { http2KeepAlive: { interval: '30s' } } })).to.equal(undefined);
    expect(convertOutlier({ consecutiveErrors: 4 })).to.deep.equal({ consecutiveGatewayErrors: 4 });
    expect(convertOutlier({ consecutive5xxErrors: 0 })).to.deep.equal({ consecutive5xxErrors: 0 });
    expect(convertMatch({ uri: {}, queryParams: { a: {} } })).to.deep.equal({
      queryParams: { a: { present: true } },
    });
  });
});

describe('proxy config structural validation', () => {
  const TABLE: [string, unknown, RegExp][] = [
    ['not an object', 42, /must be an object/],
    [
      'wrong apiVersion',
      { apiVersion: 'x', kind: 'ProxyConfig', version: '1', listeners: [], clusters: [] },
      /apiVersion/,
    ],
    [
      'listener port out of range',
      {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: '1',
        listeners: [{ name: 'a', protocol: 'HTTP', port: 70000, virtualHosts: [] }],
        clusters: [],
      },
      /listeners\[0\]\.port/,
    ],
    [
      'duplicate cluster',
      {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: '1',
        listeners: [],
        clusters: [
          { name: 'c', endpoints: [] },
          { name: 'c', endpoints: [] },
        ],
      },
      /defined twice/,
    ],
    [
      'bad string match',
      {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: '1',
        listeners: [
          {
            name: 'a',
            protocol: 'HTTP',
            port: 1,
            virtualHosts: [
              {
                name: 'v',
                domains: ['*'],
                routes: [
                  {
                    match: [{ uri: { exact: '/', prefix: '/' } }],
                    action: { type: 'directResponse', status: 200 },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [],
      },
      /exactly one of/,
    ],
    [
      'zero-sum weights',
      {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: '1',
        listeners: [
          {
            name: 'a',
            protocol: 'HTTP',
            port: 1,
            virtualHosts: [
              {
                name: 'v',
                domains: ['*'],
                routes: [
                  {
                    action: {
                      type: 'route',
                      destinations: [
                        { cluster: 'a', weight: 0 },
                        { cluster: 'b', weight: 0 },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
        clusters: [],
      },
      /sum to 0/,
    ],
    [
      'unknown action',
      {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: '1',
        listeners: [
          {
            name: 'a',
            protocol: 'HTTP',
            port: 1,
            virtualHosts: [{ name: 'v', domains: ['*'], routes: [{ action: { type: 'teleport' } }] }],
          },
        ],
        clusters: [],
      },
      /must be one of route/,
    ],
  ];
  for (const [name, cfg, re] of TABLE) {
    it(name, () =>
      expect(
        validateProxyConfig(cfg)
          .map((p) => `${p.path}: ${p.message}`)
          .join('\n'),
      ).to.match(re),
    );
  }
  it('reports every problem, not the first', () => {
    expect(
      validateProxyConfig({ apiVersion: 'x', kind: 'y', version: '', listeners: 1, clusters: 2 }),
    ).to.have.length(5);
  });
  it('pathNormalization: Istio values only', () => {
    const base = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [],
      clusters: [],
    };
    for (const normalization of ['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'])
      expect(validateProxyConfig({ ...base, pathNormalization: { normalization } })).to.deep.equal([]);
    expect(validateProxyConfig({ ...base, pathNormalization: { normalization: 'base' } })).to.deep.equal([
      {
        path: 'pathNormalization.normalization',
        message: 'must be one of DEFAULT, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES',
      },
    ]);
    expect(validateProxyConfig({ ...base, pathNormalization: 'BASE' })[0]!.path).to.equal(
      'pathNormalization',
    );
  });
  it('translate carries the mesh path normalization into the config and its version', () => {
    const plain = translate({});
    const merged = translate({ pathNormalization: { normalization: 'MERGE_SLASHES' } });
    expect(plain.config.pathNormalization).to.equal(undefined);
    expect(merged.config.pathNormalization).to.deep.equal({ normalization: 'MERGE_SLASHES' });
    expect(merged.config.version).to.not.equal(plain.config.version);
  });
});
