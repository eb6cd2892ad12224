/**
 * WorkloadEntry, WorkloadGroup, Telemetry, ProxyConfig, EnvoyFilter and WasmPlugin are validated
 * as Istio validates them: cases from istio/istio pkg/config/validation (validation.go,
 * envoyfilter/envoyfilter.go) and its CRD testdata (testdata/crds/*-invalid.yaml, *-valid.yaml),
 * where the CRD's CEL rules are weft's webhook rules.
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';

type Obj = Record<string, unknown>;
const o = (apiVersion: string, kind: string, spec: unknown): Obj => ({
  apiVersion,
  kind,
  metadata: { name: 'x', namespace: 'default' },
  spec,
});
const we = (spec: unknown): Obj => o('networking.istio.io/v1alpha3', 'WorkloadEntry', spec);
const wg = (spec: unknown): Obj => o('networking.istio.io/v1alpha3', 'WorkloadGroup', spec);
const tel = (spec: unknown): Obj => o('telemetry.istio.io/v1alpha1', 'Telemetry', spec);
const pc = (spec: unknown): Obj => o('networking.istio.io/v1beta1', 'ProxyConfig', spec);
const ef = (spec: unknown): Obj => o('networking.istio.io/v1alpha3', 'EnvoyFilter', spec);
const wasm = (spec: unknown): Obj => o('extensions.istio.io/v1alpha1', 'WasmPlugin', spec);
const patch = (applyTo: string, match: unknown, p: unknown = { operation: 'MERGE', value: {} }): Obj =>
  ef({ configPatches: [{ applyTo, match, patch: p }] });
const HCM = 'envoy.filters.network.http_connection_manager';

/** [title, object, expected error fragment ("" = valid)] */
const cases: [string, Obj, string][] = [
  // WorkloadEntry
  ['WE with an IP', we({ address: '10.0.0.1', ports: { http: 8080 }, labels: { app: 'vm' } }), ''],
  ['WE with an FQDN', we({ address: 'vm.example.com' }), ''],
  ['WE with a network and no address (warning only)', we({ network: 'net-2' }), ''],
  ['WE with an abstract socket', we({ address: 'unix://@foo' }), ''],
  ['WE with an absolute socket path', we({ address: 'unix:///var/run/app.sock' }), ''],
  ['WE without address or network', we({}), 'spec.address: address is required'],
  [
    'WE socket that is a directory',
    we({ address: 'unix:///dir/' }),
    'spec.address: /dir/ is not an absolute path to a file',
  ],
  [
    'WE relative socket',
    we({ address: 'unix://relative' }),
    'spec.address: relative is not an absolute path to a file',
  ],
  [
    'WE socket with ports',
    we({ address: 'unix://@foo', ports: { http: 80 } }),
    'spec.ports: unix endpoint unix://@foo must not include ports',
  ],
  [
    'WE port too high',
    we({ address: '1.1.1.1', ports: { http: 99999 } }),
    'spec.ports.http: port number 99999 must be in the range 1..65535',
  ],
  ['WE bad port name', we({ address: '1.1.1.1', ports: { '@': 80 } }), 'invalid port name: @'],
  ['WE address neither IP nor FQDN', we({ address: 'not_a host!' }), 'is not a valid FQDN or an IP address'],
  ['WE bad label', we({ address: '1.1.1.1', labels: { 'bad key!': 'v' } }), 'spec.labels: invalid tag key'],
  // WorkloadGroup
  ['WG minimal', wg({ template: {} }), ''],
  [
    'WG with an http probe',
    wg({
      template: { serviceAccount: 'sa' },
      probe: {
        periodSeconds: 5,
        httpGet: {
          port: 8080,
          path: '/ready',
          scheme: 'HTTPS',
          httpHeaders: [{ name: 'x-probe', value: '1' }],
        },
      },
    }),
    '',
  ],
  ['WG with an exec probe', wg({ template: {}, probe: { exec: { command: ['cat', '/ready'] } } }), ''],
  [
    'WG tcp probe port too high',
    wg({ template: { serviceAccount: 'sa', network: 'net' }, probe: { tcpSocket: { port: 65536 } } }),
    'spec.probe.tcpSocket.port: port number 65536',
  ],
  [
    'WG header name with stars',
    wg({ template: {}, probe: { httpGet: { port: 80, httpHeaders: [{ name: '**' }] } } }),
    'spec.probe.httpGet.httpHeaders[0].name',
  ],
  [
    'WG header name with underscore (Istio: letters, digits, -)',
    wg({ template: {}, probe: { httpGet: { port: 80, httpHeaders: [{ name: 'x_probe' }] } } }),
    'header name x_probe is not a valid header name',
  ],
  [
    'WG bad scheme',
    wg({ template: {}, probe: { httpGet: { port: 80, scheme: 'FTP' } } }),
    'httpGet.scheme must be one of "HTTPS", "HTTP"',
  ],
  [
    'WG exec without command',
    wg({ template: {}, probe: { exec: { command: [] } } }),
    'exec.command is required',
  ],
  [
    'WG probe without a method',
    wg({ template: {}, probe: { periodSeconds: 3 } }),
    'probe needs a health check method',
  ],
  [
    'WG grpc probe (istiod refuses it)',
    wg({ template: {}, probe: { grpc: { port: 9000 } } }),
    'grpc health checks are not supported',
  ],
  [
    'WG negative period',
    wg({ template: {}, probe: { periodSeconds: -1, exec: { command: ['true'] } } }),
    'spec.probe.periodSeconds',
  ],
  ['WG without template', wg({}), 'spec.template'],
  [
    'WG bad metadata label',
    wg({ template: {}, metadata: { labels: { 'a b': 'c' } } }),
    'spec.metadata.labels: invalid labels',
  ],
  [
    'WG template socket with ports',
    wg({ template: { address: 'unix:///a.sock', ports: { http: 80 } } }),
    'must not include ports',
  ],
  // Telemetry
  [
    'Telemetry with everything',
    tel({
      selector: { matchLabels: { app: 'a' } },
      tracing: [{ randomSamplingPercentage: 10, customTags: { env: { environment: { name: 'ENV' } } } }],
      metrics: [
        {
          providers: [{ name: 'prometheus' }],
          overrides: [{ match: { metric: 'REQUEST_COUNT' }, tagOverrides: { foo: { value: 'bar' } } }],
          reportingInterval: '10s',
        },
      ],
      accessLogging: [{ providers: [{ name: 'envoy' }], filter: { expression: 'response.code >= 400' } }],
    }),
    '',
  ],
  [
    'Telemetry empty provider name',
    tel({ metrics: [{ providers: [{ name: '' }] }] }),
    'spec.metrics[0].providers[0].name',
  ],
  [
    'Telemetry empty custom metric',
    tel({ metrics: [{ overrides: [{ match: { customMetric: '' } }] }] }),
    'customMetric',
  ],
  [
    'Telemetry UPSERT without value',
    tel({ metrics: [{ overrides: [{ tagOverrides: { foo: { operation: 'UPSERT' } } }] }] }),
    'value must be set when operation is UPSERT',
  ],
  [
    'Telemetry UPSERT is the default operation',
    tel({ metrics: [{ overrides: [{ tagOverrides: { foo: {} } }] }] }),
    'value must be set when operation is UPSERT',
  ],
  [
    'Telemetry REMOVE with value',
    tel({ metrics: [{ overrides: [{ tagOverrides: { foo: { operation: 'REMOVE', value: 'oops' } } }] }] }),
    'value must not be set when operation is REMOVE',
  ],
  [
    'Telemetry sampling over 100',
    tel({ tracing: [{ randomSamplingPercentage: 101 }] }),
    'spec.tracing[0].randomSamplingPercentage',
  ],
  [
    'Telemetry reporting interval not a duration',
    tel({ metrics: [{ reportingInterval: 'soon' }] }),
    'must be a valid duration greater than 1ms',
  ],
  [
    'Telemetry selector and targetRef',
    tel({ selector: { matchLabels: { a: 'b' } }, targetRef: { kind: 'Service', name: 's' } }),
    'spec',
  ],
  ['Telemetry targetRef to a Service', tel({ targetRef: { kind: 'Service', group: '', name: 's' } }), ''],
  [
    'Telemetry targetRef to a Deployment',
    tel({ targetRef: { kind: 'Deployment', group: 'apps', name: 'd' } }),
    'targetRef must be to one of',
  ],
  [
    'Telemetry cross-namespace targetRef',
    tel({
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g', namespace: 'other' }],
    }),
    'cross namespace referencing is not supported',
  ],
  [
    'Telemetry wildcard selector',
    tel({ selector: { matchLabels: { app: '*' } } }),
    'wildcard is not supported in selector',
  ],
  [
    'Telemetry custom tag with two kinds',
    tel({ tracing: [{ customTags: { t: { literal: { value: 'a' }, header: { name: 'h' } } } }] }),
    'spec.tracing[0].customTags.t',
  ],
  // ProxyConfig
  [
    'ProxyConfig',
    pc({
      selector: { matchLabels: { app: 'a' } },
      concurrency: 2,
      environmentVariables: { A: 'b' },
      image: { imageType: 'distroless' },
    }),
    '',
  ],
  ['ProxyConfig negative concurrency', pc({ concurrency: -1 }), 'spec.concurrency'],
  [
    'ProxyConfig empty selector key',
    pc({ selector: { matchLabels: { '': 'bar' } } }),
    'empty key is not supported in selector',
  ],
  // EnvoyFilter
  ['EF minimal', ef({}), ''],
  [
    'EF listener patch',
    patch(
      'HTTP_FILTER',
      {
        context: 'SIDECAR_INBOUND',
        listener: {
          filterChain: { filter: { name: HCM, subFilter: { name: 'envoy.filters.http.router' } } },
        },
      },
      { operation: 'INSERT_BEFORE', value: { name: 'lua' } },
    ),
    '',
  ],
  [
    'EF remove needs no value',
    patch('CLUSTER', { cluster: { service: 'a.example.com' } }, { operation: 'REMOVE' }),
    '',
  ],
  [
    'EF waypoint with the wrong context',
    patch('HTTP_FILTER', { context: 'SIDECAR_INBOUND', waypoint: { filter: { name: HCM } } }),
    'only support waypointMatch when context is WAYPOINT',
  ],
  [
    'EF WAYPOINT context with a listener match',
    patch('HTTP_FILTER', { context: 'WAYPOINT', listener: { filterChain: { filter: { name: HCM } } } }),
    'only support waypointMatch when context is WAYPOINT',
  ],
  [
    'EF waypoint port too high',
    patch('HTTP_FILTER', { context: 'WAYPOINT', waypoint: { portNumber: 65536 } }),
    'port number 65536',
  ],
  [
    'EF missing applyTo',
    ef({ configPatches: [{ patch: { operation: 'MERGE', value: {} } }] }),
    'Envoy filter: missing applyTo',
  ],
  ['EF missing patch', ef({ configPatches: [{ applyTo: 'LISTENER' }] }), 'Envoy filter: missing patch'],
  [
    'EF missing operation',
    ef({ configPatches: [{ applyTo: 'LISTENER', patch: { value: {} } }] }),
    'Envoy filter: missing patch operation',
  ],
  [
    'EF missing value',
    ef({ configPatches: [{ applyTo: 'LISTENER', patch: { operation: 'ADD' } }] }),
    'missing patch value for non-remove operation',
  ],
  [
    'EF bad proxyVersion regex',
    patch('LISTENER', { proxy: { proxyVersion: '(' } }),
    'invalid regex for proxy version',
  ],
  [
    'EF listener class with a cluster match',
    patch('NETWORK_FILTER', { cluster: { service: 'a' } }),
    'applyTo for listener class objects cannot have non listener match',
  ],
  [
    'EF route class with a listener match',
    patch('HTTP_ROUTE', { listener: { portNumber: 80 } }),
    'applyTo for http route class objects cannot have non route configuration match',
  ],
  [
    'EF cluster with a route match',
    patch('CLUSTER', { routeConfiguration: { portNumber: 80 } }),
    'applyTo for cluster class objects cannot have non cluster match',
  ],
  [
    'EF filter match without a name',
    patch('NETWORK_FILTER', { listener: { filterChain: { filter: {} } } }),
    'filter match has no name to match on',
  ],
  [
    'EF subfilter outside HTTP_FILTER',
    patch('NETWORK_FILTER', {
      listener: { filterChain: { filter: { name: HCM, subFilter: { name: 'x' } } } },
    }),
    'subfilter match can be used with applyTo HTTP_FILTER only',
  ],
  [
    'EF subfilter without HCM',
    patch('HTTP_FILTER', {
      listener: { filterChain: { filter: { name: 'envoy.tcp_proxy', subFilter: { name: 'x' } } } },
    }),
    'subfilter match requires filter match with envoy.filters.network.http_connection_manager',
  ],
  [
    'EF subfilter without a name',
    patch('HTTP_FILTER', { listener: { filterChain: { filter: { name: HCM, subFilter: {} } } } }),
    'subfilter match has no name to match on',
  ],
  ['EF two object types', patch('CLUSTER', { cluster: {}, listener: {} }), 'spec.configPatches[0].match'],
  ['EF unknown applyTo', patch('SECRET', {}), 'spec.configPatches[0].applyTo'],
  // WasmPlugin
  [
    'Wasm oci',
    wasm({
      url: 'oci://ghcr.io/a/b:1',
      sha256: 'a'.repeat(64),
      vmConfig: {
        env: [
          { name: 'A', value: 'b' },
          { name: 'POD', valueFrom: 'HOST' },
        ],
      },
      match: [{ mode: 'SERVER', ports: [{ number: 8080 }] }],
    }),
    '',
  ],
  ['Wasm without scheme (taken as http)', wasm({ url: 'ghcr.io/a/b:1' }), ''],
  ['Wasm file', wasm({ url: 'file:///opt/plugin.wasm' }), ''],
  [
    'Wasm unset port',
    wasm({ url: 'http://test', match: [{ ports: [{}] }] }),
    'spec.match[0].ports[0].number',
  ],
  ['Wasm empty url', wasm({ url: '' }), 'spec.url'],
  [
    'Wasm url with an unsupported scheme',
    wasm({ url: 'fake://example.com' }),
    'url contains unsupported scheme: fake',
  ],
  ['Wasm unparsable url', wasm({ url: '#%blah$#@' }), 'spec.url'],
  ['Wasm bad sha256', wasm({ url: 'http://test', sha256: 'foo' }), 'spec.sha256'],
  ['Wasm empty imagePullSecret', wasm({ url: 'http://test', imagePullSecret: '' }), 'spec.imagePullSecret'],
  ['Wasm empty pluginName', wasm({ url: 'http://test', pluginName: '' }), 'spec.pluginName'],
  [
    'Wasm duplicate env',
    wasm({ url: 'http://test', vmConfig: { env: [{ name: 'a' }, { name: 'a' }] } }),
    'duplicate env "a"',
  ],
  [
    'Wasm env value from HOST',
    wasm({ url: 'http://test', vmConfig: { env: [{ name: 'a', valueFrom: 'HOST', value: 'x' }] } }),
    'value may only be set when valueFrom is INLINE',
  ],
  [
    'Wasm selector and targetRefs',
    wasm({
      url: 'http://test',
      selector: { matchLabels: { a: 'b' } },
      targetRefs: [{ kind: 'Service', name: 's' }],
    }),
    'spec',
  ],
];

describe('served-only Istio kinds: Istio validation rules', () => {
  for (const [title, obj, fragment] of cases) {
    it(`${title} → ${fragment === '' ? 'valid' : fragment}`, () => {
      const r = validateObject(obj);
      const lines = r.errors.map((e) => `${e.path}: ${e.message}`);
      if (fragment === '') expect(lines).to.deep.equal([]);
      else
        expect(
          lines.some((l) => l.includes(fragment)),
          `no "${fragment}" in ${JSON.stringify(lines)}`,
        ).to.equal(true);
    });
  }

  it('WorkloadEntry with only a network warns that the address is unset', () => {
    const r = validateObject(we({ network: 'net-2' }));
    expect(r.warnings.map((w) => w.message)).to.include('address is unset with network "net-2"');
  });

  it('EnvoyFilter with an empty workload selector warns it applies to the whole namespace', () => {
    const r = validateObject(ef({ workloadSelector: {} }));
    expect(r.warnings.map((w) => w.rule)).to.include('ef.selector.empty');
  });

  it('Telemetry with two tracing entries or providers warns, as Istio does', () => {
    const r = validateObject(tel({ tracing: [{ providers: [{ name: 'a' }, { name: 'b' }] }, {}] }));
    expect(r.warnings.map((w) => w.rule)).to.include.members([
      'telemetry.tracing.multiple',
      'telemetry.providers.multiple',
    ]);
  });

  it('serves Istio versions: Telemetry v1 and v1alpha1, WorkloadEntry v1/v1beta1/v1alpha3; not EnvoyFilter v1', () => {
    for (const av of ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1'])
      expect(validateObject({ ...tel({}), apiVersion: av }).errors).to.deep.equal([]);
    for (const av of [
      'networking.istio.io/v1',
      'networking.istio.io/v1beta1',
      'networking.istio.io/v1alpha3',
    ])
      expect(validateObject({ ...we({ address: '10.0.0.1' }), apiVersion: av }).errors).to.deep.equal([]);
    const r = validateObject({ ...ef({}), apiVersion: 'networking.istio.io/v1' });
    expect(r.errors[0]!.message).to.match(
      /EnvoyFilter is not served as networking\.istio\.io\/v1 \(served versions: networking\.istio\.io\/v1alpha3\)/,
    );
  });
});
