/**
 * The accepted-but-not-enforced warnings (pkg/validation/not-enforced.ts) as validateObject, and
 * so the webhook and weftctl, report them: concrete indices, one warning per place, values that
 * matter only (PASSTHROUGH, STRICT...), whole kinds, and the cap.
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';
import { MAX_NOT_ENFORCED_WARNINGS } from '../../../pkg/validation/not-enforced.js';
import { NOT_ENFORCED } from '../../../pkg/api/not-enforced.js';

type Obj = Record<string, unknown>;

const o = (apiVersion: string, kind: string, spec: unknown, name = 'x'): Obj => ({
  apiVersion,
  kind,
  metadata: { name, namespace: 'default' },
  spec,
});
const vs = (spec: Obj): Obj => o('networking.istio.io/v1', 'VirtualService', { hosts: ['reviews'], ...spec });
const dr = (spec: Obj): Obj => o('networking.istio.io/v1', 'DestinationRule', { host: 'reviews', ...spec });
const se = (spec: Obj): Obj =>
  o('networking.istio.io/v1', 'ServiceEntry', {
    hosts: ['api.example.com'],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    ...spec,
  });
const gw = (servers: unknown[]): Obj =>
  o('networking.istio.io/v1', 'Gateway', { selector: { istio: 'ingress' }, servers });
const mesh = (spec: unknown): Obj => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'Mesh',
  metadata: { name: 'default' },
  spec,
});
const route = [{ destination: { host: 'reviews' } }];
const cors = { allowOrigins: [{ exact: 'https://example.com' }] };

/** `path (rule)` of each not-enforced warning. */
function notEnforced(obj: Obj): string[] {
  const r = validateObject(obj);
  expect(r.errors, 'the object must be valid').to.deep.equal([]);
  return r.warnings
    .filter((w) => w.rule?.startsWith('notEnforced.'))
    .map((w) => `${w.path} (${w.rule!.slice(12)})`);
}

const cases: [string, Obj, string[]][] = [
  // VirtualService
  ['VS without unenforced fields', vs({ http: [{ timeout: '1s', route }] }), []],
  [
    'VS corsPolicy on the second and third rules',
    vs({
      http: [
        { match: [{ uri: { prefix: '/a' } }], route },
        { match: [{ uri: { prefix: '/b' } }], corsPolicy: cors, route },
        { corsPolicy: cors, route },
      ],
    }),
    ['spec.http[1].corsPolicy (vs.corsPolicy)', 'spec.http[2].corsPolicy (vs.corsPolicy)'],
  ],
  [
    'VS sourceLabels and sourceNamespace in several matches',
    vs({
      http: [
        {
          match: [
            { uri: { prefix: '/' } },
            { sourceLabels: { app: 'a' } },
            { sourceNamespace: 'b', sourceLabels: { app: 'c' } },
          ],
          route,
        },
      ],
    }),
    [
      'spec.http[0].match[1].sourceLabels (vs.sourceLabels)',
      'spec.http[0].match[2].sourceLabels (vs.sourceLabels)',
      'spec.http[0].match[2].sourceNamespace (vs.sourceNamespace)',
    ],
  ],
  [
    'VS tcp and tls routes, delegate, exportTo',
    o('networking.istio.io/v1', 'VirtualService', {
      hosts: ['db.example.com'],
      exportTo: ['.'],
      tcp: [{ route: [{ destination: { host: 'db.example.com' } }] }],
      tls: [
        { match: [{ sniHosts: ['db.example.com'] }], route: [{ destination: { host: 'db.example.com' } }] },
      ],
    }),
    ['spec.tcp (vs.tcp)', 'spec.tls (vs.tls)', 'spec.exportTo (vs.exportTo)'],
  ],
  ['VS delegate', vs({ http: [{ delegate: { name: 'other' } }] }), ['spec.http[0].delegate (vs.delegate)']],
  [
    'VS redirect prefixRewrite and gRPC abort',
    vs({
      http: [
        { match: [{ uri: { prefix: '/old' } }], redirect: { prefixRewrite: '/new' } },
        { fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 10 } } }, route },
      ],
    }),
    [
      'spec.http[0].redirect.prefixRewrite (vs.redirect.prefixRewrite)',
      'spec.http[1].fault.abort.grpcStatus (vs.fault.abort.grpcStatus)',
    ],
  ],
  // DestinationRule
  [
    'DR ROUND_ROBIN, outlier detection, connection pool: all implemented',
    dr({
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN' },
        outlierDetection: { consecutive5xxErrors: 3 },
        connectionPool: { tcp: { maxConnections: 10 } },
      },
    }),
    [],
  ],
  [
    'DR tls in all four places, with concrete indices',
    dr({
      trafficPolicy: {
        tls: { mode: 'SIMPLE' },
        portLevelSettings: [
          { port: { number: 80 }, connectionPool: { tcp: { maxConnections: 5 } } },
          { port: { number: 81 }, tls: { mode: 'DISABLE' } },
        ],
      },
      subsets: [
        { name: 'v1', labels: { v: '1' } },
        {
          name: 'v2',
          labels: { v: '2' },
          trafficPolicy: {
            tls: { mode: 'ISTIO_MUTUAL' },
            portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'DISABLE' } }],
          },
        },
      ],
    }),
    [
      'spec.trafficPolicy.tls (dr.tls)',
      'spec.trafficPolicy.portLevelSettings[1].tls (dr.tls)',
      'spec.subsets[1].trafficPolicy.tls (dr.tls)',
      'spec.subsets[1].trafficPolicy.portLevelSettings[0].tls (dr.tls)',
    ],
  ],
  [
    'DR PASSTHROUGH',
    dr({ trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } }),
    ['spec.trafficPolicy.loadBalancer.simple (dr.loadBalancer.passthrough)'],
  ],
  [
    'DR LEAST_CONN is implemented (least-request)',
    dr({ trafficPolicy: { loadBalancer: { simple: 'LEAST_CONN' } } }),
    [],
  ],
  [
    'DR ring size and cookie ttl (the hash key itself is implemented)',
    dr({
      trafficPolicy: {
        loadBalancer: {
          consistentHash: { httpCookie: { name: 'c', ttl: '10s' }, ringHash: { minimumRingSize: 1024 } },
        },
      },
    }),
    [
      'spec.trafficPolicy.loadBalancer.consistentHash.ringHash (dr.consistentHash.tableSize)',
      'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl (dr.consistentHash.httpCookie.ttl)',
    ],
  ],
  [
    'DR consistent hash by header alone: implemented',
    dr({ trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } }),
    [],
  ],
  [
    'DR localityLbSetting in a subset',
    dr({
      subsets: [
        {
          name: 'v1',
          labels: { v: '1' },
          trafficPolicy: {
            loadBalancer: { localityLbSetting: { enabled: true } },
            outlierDetection: { consecutive5xxErrors: 1 },
          },
        },
      ],
    }),
    ['spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting (dr.localityLbSetting)'],
  ],
  // ServiceEntry
  [
    'SE STATIC with endpoints: implemented',
    se({ resolution: 'STATIC', endpoints: [{ address: '10.0.0.1' }] }),
    [],
  ],
  ['SE without resolution is NONE: implemented (original destination)', se({}), []],
  ['SE DNS and DNS_ROUND_ROBIN: implemented', se({ resolution: 'DNS' }), []],
  [
    'SE DYNAMIC_DNS',
    se({ resolution: 'DYNAMIC_DNS', hosts: ['*.example.com'] }),
    ['spec.resolution (se.resolution)'],
  ],
  [
    'SE exportTo (implemented), endpoint locality (second endpoint)',
    se({
      resolution: 'STATIC',
      exportTo: ['.'],
      endpoints: [{ address: '10.0.0.1' }, { address: '10.0.0.2', locality: 'r/z' }],
    }),
    ['spec.endpoints[1].locality (se.endpoints.locality)'],
  ],
  // Gateway
  [
    'Gateway HTTP server: implemented',
    gw([{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }]),
    [],
  ],
  [
    'Gateway HTTPS SIMPLE, HTTPS PASSTHROUGH and tcp (lower case) served; udp and AUTO_PASSTHROUGH not',
    gw([
      { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
      {
        port: { number: 443, name: 'https', protocol: 'HTTPS' },
        hosts: ['*'],
        tls: { mode: 'SIMPLE', credentialName: 'c' },
      },
      { port: { number: 9000, name: 'tcp', protocol: 'tcp' }, hosts: ['*'] },
      {
        port: { number: 8443, name: 'https-pt', protocol: 'HTTPS' },
        hosts: ['*'],
        tls: { mode: 'PASSTHROUGH' },
      },
      { port: { number: 5353, name: 'dns', protocol: 'udp' }, hosts: ['*'] },
      {
        port: { number: 15443, name: 'tls-auto', protocol: 'TLS' },
        hosts: ['*'],
        tls: { mode: 'AUTO_PASSTHROUGH' },
      },
    ]),
    ['spec.servers[4].port.protocol (gw.protocol)', 'spec.servers[5].tls.mode (gw.tls.mode)'],
  ],
  // whole kinds
  [
    'AuthorizationPolicy',
    o('security.istio.io/v1', 'AuthorizationPolicy', {}),
    ['(document) (authorizationpolicy)'],
  ],
  [
    'PeerAuthentication',
    o('security.istio.io/v1beta1', 'PeerAuthentication', { mtls: { mode: 'STRICT' } }),
    ['(document) (peerauthentication)'],
  ],
  [
    'RequestAuthentication',
    o('security.istio.io/v1', 'RequestAuthentication', { jwtRules: [{ issuer: 'i' }] }),
    ['(document) (requestauthentication)'],
  ],
  [
    'Sidecar',
    o('networking.istio.io/v1', 'Sidecar', { egress: [{ hosts: ['./*'] }] }),
    ['(document) (sidecar)'],
  ],
  [
    'WorkloadEntry: implemented (ServiceEntry workloadSelector endpoints)',
    o('networking.istio.io/v1', 'WorkloadEntry', { address: '10.0.0.1' }),
    [],
  ],
  [
    'WorkloadGroup',
    o('networking.istio.io/v1beta1', 'WorkloadGroup', { template: {} }),
    ['(document) (workloadgroup)'],
  ],
  [
    'Telemetry v1',
    o('telemetry.istio.io/v1', 'Telemetry', { accessLogging: [{ disabled: true }] }),
    ['(document) (telemetry)'],
  ],
  ['Telemetry v1alpha1', o('telemetry.istio.io/v1alpha1', 'Telemetry', {}), ['(document) (telemetry)']],
  [
    'ProxyConfig',
    o('networking.istio.io/v1beta1', 'ProxyConfig', { concurrency: 0 }),
    ['(document) (proxyconfig)'],
  ],
  ['EnvoyFilter', o('networking.istio.io/v1alpha3', 'EnvoyFilter', {}), ['(document) (envoyfilter)']],
  [
    'WasmPlugin',
    o('extensions.istio.io/v1alpha1', 'WasmPlugin', { url: 'oci://r/p:1' }),
    ['(document) (wasmplugin)'],
  ],
  // Mesh: only values weft does not honour
  [
    'Mesh as the API server defaults it',
    mesh({
      mtls: { mode: 'PERMISSIVE' },
      telemetry: { metrics: { enabled: true }, tracing: { samplingPercent: 1 } },
    }),
    [],
  ],
  [
    'Mesh STRICT, metrics off, 100 % tracing',
    mesh({
      mtls: { mode: 'STRICT' },
      telemetry: { metrics: { enabled: false }, tracing: { samplingPercent: 100 } },
    }),
    [
      'spec.mtls.mode (mesh.mtls.strict)',
      'spec.telemetry.metrics.enabled (mesh.telemetry.metrics)',
      'spec.telemetry.tracing.samplingPercent (mesh.telemetry.tracing)',
    ],
  ],
];

/**
 * Branches that implement a feature delete its entry; the rows here then expect no warning for
 * it (an entry that is gone must not warn), so merging never needs this table edited.
 */
const listed = new Set(NOT_ENFORCED.map((e) => e.id));
const stillListed = (expected: string[]): string[] =>
  expected.filter((line) => listed.has(/\(([^)]+)\)$/.exec(line)![1]!));

describe('accepted-but-not-enforced warnings', () => {
  for (const [title, obj, expected] of cases) {
    it(`${title} → ${expected.length} warning(s)`, () =>
      expect(notEnforced(obj)).to.deep.equal(stillListed(expected)));
  }

  it('reads: path, "accepted but not enforced by weft yet (issue #N)", what happens instead', () => {
    const [w] = validateObject(vs({ http: [{ corsPolicy: cors, route }] })).warnings.filter(
      (x) => x.rule === 'notEnforced.vs.corsPolicy',
    );
    expect(w!.path).to.equal('spec.http[0].corsPolicy');
    expect(w!.message).to.match(/^accepted but not enforced by weft yet \(issue #15\): CORS /);
    const [ef] = validateObject(o('networking.istio.io/v1alpha3', 'EnvoyFilter', {})).warnings;
    expect(ef!.message).to.match(
      /^EnvoyFilter is accepted but never enforced by weft: weft has no Envoy: use VirtualService/,
    );
  });

  it(`keeps ${MAX_NOT_ENFORCED_WARNINGS} per object and counts the rest`, () => {
    const http = Array.from({ length: 25 }, (_, i) => ({
      match: [{ uri: { prefix: `/${i}` } }],
      corsPolicy: cors,
      route,
    }));
    const w = validateObject(vs({ http })).warnings.filter((x) => x.rule?.startsWith('notEnforced.'));
    expect(w).to.have.length(MAX_NOT_ENFORCED_WARNINGS + 1);
    expect(w[9]!.path).to.equal('spec.http[9].corsPolicy');
    expect(w[10]).to.deep.include({ path: '(document)', rule: 'notEnforced.more' });
    expect(w[10]!.message).to.match(/^and 15 more accepted but not enforced fields/);
  });

  it('a huge object costs one walk of the paths: 20,000 routes answer in one pass', () => {
    const http = Array.from({ length: 20_000 }, () => ({ corsPolicy: cors, route }));
    const w = validateObject(vs({ http })).warnings.filter((x) => x.rule?.startsWith('notEnforced.'));
    expect(w).to.have.length(MAX_NOT_ENFORCED_WARNINGS + 1);
    expect(w[10]!.message).to.match(/^and 19990 more/);
  });

  it('an object the schema refuses gets its errors, not these warnings', () => {
    const r = validateObject(vs({ http: [{ corsPolicy: { maxAge: 'ten seconds' }, route }] }));
    expect(r.errors).to.not.deep.equal([]);
    expect(r.warnings.filter((x) => x.rule?.startsWith('notEnforced.'))).to.deep.equal([]);
  });
});
