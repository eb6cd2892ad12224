/**
 * The envelope (what makes a document an object weft validates), bad input that must produce a
 * clear error rather than a crash or a stall, and the main rules for the other kinds.
 */
import { expect } from 'chai';
import { analyzeObjects, type Finding, validateObject } from '../../../pkg/validation/index.js';
import { checkShape } from '../../../pkg/validation/limits.js';
import {
  checkHeaderValue,
  checkWildcardDomain,
  hostsOverlap,
  hostSubsetOf,
  isCIDR,
  parseGoDuration,
} from '../../../pkg/validation/primitives.js';

type Obj = Record<string, unknown>;

function obj(apiVersion: string, kind: string, spec: Obj, metadata: Obj = {}): Obj {
  return { apiVersion, kind, metadata: { name: 'x', namespace: 'default', ...metadata }, spec };
}

const text = (fs: Finding[]): string[] => fs.map((f) => `${f.path}: ${f.message}`);

function errorsOf(o: unknown): string[] {
  return text(validateObject(o).errors);
}

function expectErrors(o: unknown, ...fragments: string[]): void {
  const errors = errorsOf(o);
  if (fragments.length === 0) {
    expect(errors).to.deep.equal([]);
    return;
  }
  for (const f of fragments)
    expect(
      errors.some((e) => e.includes(f)),
      `missing "${f}" in ${JSON.stringify(errors)}`,
    ).to.equal(true);
}

describe('envelope and bad input', () => {
  const cases: [string, unknown, string][] = [
    ['a string', 'hello', '(document): not a Kubernetes object'],
    ['a number', 42, '(document): not a Kubernetes object'],
    ['a list', [1, 2], '(document): not a Kubernetes object'],
    ['null', null, '(document): not a Kubernetes object'],
    ['no apiVersion', { kind: 'VirtualService', metadata: { name: 'x' } }, 'apiVersion: required'],
    ['no kind', { apiVersion: 'networking.istio.io/v1', metadata: { name: 'x' } }, 'kind: required'],
    ['kind not a string', { apiVersion: 'networking.istio.io/v1', kind: 7 }, 'kind: required'],
    [
      'unknown kind',
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } },
      'kind: unknown kind Deployment (apps/v1)',
    ],
    [
      'unknown Istio kind',
      { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'TrafficExtension', metadata: { name: 'x' } },
      'kind: unknown kind TrafficExtension',
    ],
    [
      'unserved version',
      { apiVersion: 'security.istio.io/v1alpha3', kind: 'PeerAuthentication', metadata: { name: 'x' } },
      'apiVersion: PeerAuthentication is not served as security.istio.io/v1alpha3 (served versions: security.istio.io/v1, security.istio.io/v1beta1)',
    ],
    [
      'no metadata',
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', spec: { host: 'a' } },
      'metadata.name: required',
    ],
    [
      'metadata not a mapping',
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: 'x', spec: { host: 'a' } },
      'metadata: must be a mapping',
    ],
    [
      'upper-case name',
      obj('networking.istio.io/v1', 'DestinationRule', { host: 'a' }, { name: 'Reviews' }),
      'metadata.name: invalid name "Reviews"',
    ],
    [
      'name not a string',
      obj('networking.istio.io/v1', 'DestinationRule', { host: 'a' }, { name: 5 }),
      'metadata.name: must be a string',
    ],
    [
      'label value not a string',
      obj('networking.istio.io/v1', 'DestinationRule', { host: 'a' }, { labels: { a: 1 } }),
      'metadata.labels.a: must be a string',
    ],
    [
      'spec not a mapping',
      { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'x' }, spec: [] },
      'spec: must be an object',
    ],
  ];
  for (const [name, input, fragment] of cases) {
    it(`${name} → ${fragment}`, () => expectErrors(input, fragment));
  }

  it('generateName stands in for a name', () => {
    expectErrors({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { generateName: 'r-' },
      spec: { host: 'a' },
    });
  });

  it('a deeply nested object is refused quickly, without recursion', () => {
    let deep: Obj = {};
    const root = obj('networking.istio.io/v1', 'DestinationRule', { host: 'a', trafficPolicy: deep });
    for (let i = 0; i < 100_000; i++) {
      const next: Obj = {};
      deep.x = next;
      deep = next;
    }
    const start = performance.now();
    expectErrors(root, '(document): object nested deeper than 100 levels');
    expect(performance.now() - start).to.be.lessThan(5000);
  });

  it('a cyclic object (YAML self-alias) is refused, not looped on', () => {
    const spec: Obj = { host: 'a' };
    spec.self = spec;
    expectErrors(obj('networking.istio.io/v1', 'DestinationRule', spec), 'nested deeper than');
  });

  it('an object with too many values is refused', () => {
    expect(checkShape({ list: new Array(300_000).fill(1) })).to.deep.equal({ kind: 'nodes', limit: 200_000 });
  });

  it('a catastrophic regex is refused with a clear error, in linear time (RE2 + shape scan, never run)', () => {
    const evil = `(${'a*'.repeat(200)})+$`;
    const start = performance.now();
    const vs = obj('networking.istio.io/v1', 'VirtualService', {
      hosts: ['r'],
      http: [{ match: [{ uri: { regex: evil } }], route: [{ destination: { host: 'r' } }] }],
    });
    const result = validateObject(vs);
    expect(performance.now() - start).to.be.lessThan(5000);
    expect(text(result.errors)).to.have.length(1);
    expect(text(result.errors)[0]).to.match(
      /^spec\.http\[0\]\.match\[0\]\.uri\.regex: .* repeats a group that itself repeats without bound/,
    );
    expect(result.errors[0]?.rule).to.equal('regex.nestedRepetition');
  });

  it('Mesh is cluster-scoped: a namespace only warns', () => {
    const r = validateObject({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'Mesh',
      metadata: { name: 'default', namespace: 'x' },
      spec: {},
    });
    expect(text(r.errors)).to.deep.equal([]);
    expect(text(r.warnings)).to.deep.equal([
      'metadata.namespace: Mesh is cluster-scoped; the namespace is ignored',
    ]);
  });
});

describe('primitives', () => {
  const durations: [string, number | undefined][] = [
    ['10s', 10e9],
    ['1.5s', 1.5e9],
    ['500ms', 500e6],
    ['1h2m', 3720e9],
    ['.5s', 0.5e9],
    ['1.s', 1e9],
    ['-1s', -1e9],
    ['0', 0],
    ['300µs', 300e3],
    ['', undefined],
    ['10', undefined],
    ['1d', undefined],
    ['s', undefined],
    ['.s', undefined],
    ['1s ', undefined],
  ];
  for (const [input, ns] of durations)
    it(`parseGoDuration(${JSON.stringify(input)}) = ${ns}`, () =>
      expect(parseGoDuration(input)).to.equal(ns));

  const domains: [string, boolean][] = [
    ['reviews', true],
    ['*', true],
    ['*.example.com', true],
    ['*example.com', true],
    ['*-example.com', true],
    ['Example.COM', true],
    ['example.com.', true],
    ['foo.*.com', false],
    ['foo..com', false],
    ['-foo.com', false],
    ['foo-.com', false],
    ['foo.123', false],
    ['foo.+1', false],
    ['', false],
    [`${'a'.repeat(64)}.com`, false],
  ];
  for (const [d, ok] of domains)
    it(`wildcard domain ${JSON.stringify(d)} is ${ok ? 'valid' : 'invalid'}`, () =>
      expect(checkWildcardDomain(d) === undefined).to.equal(ok));

  const cidrs: [string, boolean][] = [
    ['10.0.0.0/8', true],
    ['10.0.0.1/32', true],
    ['10.0.0.0/33', false],
    ['fd00::/64', true],
    ['fd00::/129', false],
    ['10.0.0.0', false],
    ['10.0.0.0/x', false],
  ];
  for (const [c, ok] of cidrs)
    it(`CIDR ${c} is ${ok ? 'valid' : 'invalid'}`, () => expect(isCIDR(c)).to.equal(ok));

  it('host overlap and subset follow Istio host.Name', () => {
    expect(hostsOverlap('*.foo.bar', '*.bar')).to.equal(true);
    expect(hostsOverlap('a.com', 'b.com')).to.equal(false);
    expect(hostsOverlap('*', 'a.com')).to.equal(true);
    expect(hostSubsetOf('a.b.com', '*.b.com')).to.equal(true);
    expect(hostSubsetOf('*.b.com', 'a.b.com')).to.equal(false);
    expect(hostSubsetOf('*.a.b.com', '*.b.com')).to.equal(true);
  });

  it('header values: Envoy variable syntax', () => {
    expect(checkHeaderValue('%REQ(x)%')).to.equal(undefined);
    expect(checkHeaderValue('%FILTER_STATE(["a","b"])%')).to.equal(undefined);
    expect(checkHeaderValue('%FILTER_STATE([a])%')).to.match(/Expecting '"'/);
    expect(checkHeaderValue('%REQ(x) y%')).to.match(/Expecting '%'/);
  });
});

const NET = 'networking.istio.io/v1';
const SEC = 'security.istio.io/v1';

describe('Gateway', () => {
  const gw = (servers: unknown[], selector: Obj = { istio: 'ingressgateway' }): Obj =>
    obj(NET, 'Gateway', { selector, servers });
  const server = (patch: Obj = {}): Obj => ({
    port: { number: 80, name: 'http', protocol: 'HTTP' },
    hosts: ['*.example.com'],
    ...patch,
  });
  it('a Bookinfo gateway is valid', () => expectErrors(gw([server()])));
  it('needs a server', () => expectErrors(gw([]), 'spec.servers: gateway must have at least one server'));
  it('server needs hosts', () =>
    expectErrors(
      gw([server({ hosts: [] })]),
      'spec.servers[0].hosts: server config must contain at least one host',
    ));
  it('server hosts: namespace/host form checked', () =>
    expectErrors(
      gw([server({ hosts: ['bad_ns/a.com', 'ns/foo.*.com'] })]),
      'spec.servers[0].hosts[0]: invalid namespace "bad_ns"',
      'spec.servers[0].hosts[1]: domain name "foo.*.com" invalid',
    ));
  it('server port checked', () =>
    expectErrors(
      gw([server({ port: { number: 0, name: 'x', protocol: 'HTTP' } })]),
      'spec.servers[0].port.number: port number 0',
    ));
  it('server protocol checked', () =>
    expectErrors(
      gw([server({ port: { number: 80, name: 'x', protocol: 'SMTP' } })]),
      'spec.servers[0].port.protocol: unrecognized protocol "SMTP"',
    ));
  it('port name required (schema)', () =>
    expectErrors(
      gw([server({ port: { number: 80, protocol: 'HTTP' } })]),
      'spec.servers[0].port.name: required',
    ));
  it('same port name on different numbers', () =>
    expectErrors(
      gw([server(), server({ port: { number: 8080, name: 'http', protocol: 'HTTP' } })]),
      'spec.servers[1].port.name: port names in servers must be unique',
    ));
  it('server host ~/name only on Gateways generated from Gateway API', () => {
    const tilde = [server({ hosts: ['~/a.example.com'] })];
    expectErrors(gw(tilde), 'spec.servers[0].hosts[0]: invalid namespace "~"');
    expectErrors(
      obj(
        NET,
        'Gateway',
        { servers: tilde },
        { annotations: { 'internal.istio.io/gateway-semantics': 'gateway' } },
      ),
    );
  });
  it('server bind unix://: absolute path or @name, port 0', () => {
    expectErrors(
      gw([server({ port: { number: 0, name: 'http', protocol: 'HTTP' }, bind: 'unix:///run/gw.sock' })]),
    );
    expectErrors(
      gw([server({ port: { number: 0, name: 'http', protocol: 'HTTP' }, bind: 'unix://run/gw.sock' })]),
      'spec.servers[0].bind: unix://run/gw.sock is not an absolute path',
    );
    expectErrors(
      gw([server({ bind: 'unix://@gw' })]),
      'spec.servers[0].port.number: port number must be 0 for unix domain socket',
    );
  });
  it('tlsCertificates: each entry needs a certificate and a key', () =>
    expectErrors(
      gw([
        server({
          port: { number: 443, name: 'https', protocol: 'HTTPS' },
          tls: {
            mode: 'SIMPLE',
            tlsCertificates: [{ serverCertificate: '/c', privateKey: '/k' }, { privateKey: '/k2' }],
          },
        }),
      ]),
      'spec.servers[0].tls.tlsCertificates[1].serverCertificate: SIMPLE TLS requires a server certificate',
    ));
  it('SIMPLE TLS needs a credential', () =>
    expectErrors(
      gw([server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls: { mode: 'SIMPLE' } })]),
      'spec.servers[0].tls.serverCertificate',
      'spec.servers[0].tls.privateKey',
    ));
  it('SIMPLE TLS with credentialName is fine', () =>
    expectErrors(
      gw([
        server({
          port: { number: 443, name: 'https', protocol: 'HTTPS' },
          tls: { mode: 'SIMPLE', credentialName: 'cert' },
        }),
      ]),
    ));
  it('MUTUAL TLS with files needs a CA', () =>
    expectErrors(
      gw([
        server({
          port: { number: 443, name: 'https', protocol: 'HTTPS' },
          tls: { mode: 'MUTUAL', serverCertificate: '/c', privateKey: '/k' },
        }),
      ]),
      'spec.servers[0].tls.caCertificates',
    ));
  it('selector labels checked', () =>
    expectErrors(gw([server()], { 'bad key': 'x' }), 'spec.selector: invalid tag key'));
});

describe('ServiceEntry', () => {
  const se = (spec: Obj): Obj =>
    obj(NET, 'ServiceEntry', {
      hosts: ['api.example.com'],
      ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
      resolution: 'DNS',
      location: 'MESH_EXTERNAL',
      ...spec,
    });
  it('an egress ServiceEntry is valid', () => expectErrors(se({})));
  it('hosts required (schema)', () => expectErrors(obj(NET, 'ServiceEntry', {}), 'spec.hosts: required'));
  it('host * is invalid', () => expectErrors(se({ hosts: ['*'] }), 'spec.hosts[0]: invalid host *'));
  it('addresses must be IPs or CIDRs', () =>
    expectErrors(se({ addresses: ['10.0.0.0/8', 'nope'] }), 'spec.addresses[1]: nope is not a valid IP'));
  it('duplicate port numbers', () =>
    expectErrors(
      se({
        ports: [
          { number: 443, name: 'a' },
          { number: 443, name: 'b' },
        ],
      }),
      'spec.ports[1].number: port number 443 is used more than once',
    ));
  it('STATIC without endpoints or selector only warns (Istio admits it)', () => {
    const o = se({ resolution: 'STATIC' });
    expectErrors(o);
    expect(text(validateObject(o).warnings)).to.include(
      'spec.endpoints: STATIC resolution with neither endpoints nor workloadSelector: the service has no endpoints (requests get 503)',
    );
  });
  it('NONE resolution takes no endpoints', () =>
    expectErrors(
      se({ resolution: 'NONE', endpoints: [{ address: '10.0.0.1' }] }),
      'spec.endpoints: no endpoints should be provided for resolution type NONE',
    ));
  it('DNS_ROUND_ROBIN takes at most one endpoint', () =>
    expectErrors(
      se({
        resolution: 'DNS_ROUND_ROBIN',
        endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }],
      }),
      'spec.endpoints: there must only be 0 or 1 endpoint',
    ));
  it('unix:// endpoints: STATIC only, absolute path, no ports, one service port', () => {
    expectErrors(se({ resolution: 'STATIC', endpoints: [{ address: 'unix:///run/db.sock' }] }));
    expectErrors(
      se({ resolution: 'DNS', endpoints: [{ address: 'unix:///run/db.sock' }] }),
      'spec.endpoints[0].address: endpoint address "unix:///run/db.sock" is not a valid FQDN or an IP address',
    );
    expectErrors(
      se({ resolution: 'STATIC', endpoints: [{ address: 'unix://run/db.sock', ports: { tcp: 5432 } }] }),
      'spec.endpoints[0].address: unix://run/db.sock is not an absolute path',
      'spec.endpoints[0].ports: unix endpoint unix://run/db.sock must not include ports',
    );
  });
  it('DYNAMIC_DNS: wildcard hosts, no addresses or endpoints, HTTP/TLS/GRPC/HTTP2 ports', () => {
    const dyn = (patch: Obj, metadata: Obj = {}): Obj =>
      obj(
        NET,
        'ServiceEntry',
        {
          hosts: ['*.example.com'],
          ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
          resolution: 'DYNAMIC_DNS',
          ...patch,
        },
        metadata,
      );
    expectErrors(dyn({}));
    expectErrors(dyn({ hosts: ['a.example.com'] }), 'spec.hosts[0]: host must be wildcarded');
    expectErrors(dyn({ addresses: ['10.0.0.1'] }), 'spec.addresses: addresses cannot be set');
    expectErrors(
      dyn({ ports: [{ number: 5432, name: 'db', protocol: 'TCP' }] }),
      'spec.ports[0].protocol: only HTTP, TLS',
    );
    expectErrors(
      dyn({ location: 'MESH_INTERNAL' }, { labels: { 'istio.io/use-waypoint': 'wp' } }),
      'spec.location: location MESH_INTERNAL with resolution type DYNAMIC_DNS is not supported when using waypoints',
    );
    expectErrors(dyn({ location: 'MESH_INTERNAL' }, { labels: { 'istio.io/use-waypoint': 'none' } }));
  });
  it('STATIC endpoints must be IPs', () =>
    expectErrors(
      se({ resolution: 'STATIC', endpoints: [{ address: 'db.local' }] }),
      'spec.endpoints[0].address: endpoint address "db.local" is not a valid IP',
    ));
  it('DNS with a wildcard host and no endpoints', () =>
    expectErrors(
      se({ hosts: ['*.example.com'] }),
      'spec.hosts[0]: DNS resolution cannot be used with wildcard host',
    ));
  it('endpoints and workloadSelector together', () =>
    expectErrors(
      se({
        resolution: 'STATIC',
        endpoints: [{ address: '10.0.0.1' }],
        workloadSelector: { labels: { app: 'a' } },
      }),
      'only one of WorkloadSelector or Endpoints',
    ));
  it('endpoint port names must be service ports', () =>
    expectErrors(
      se({ resolution: 'STATIC', endpoints: [{ address: '10.0.0.1', ports: { http: 8080 } }] }),
      'spec.endpoints[0].ports.http: endpoint port http is not defined',
    ));
  it('bad resolution (schema enum)', () =>
    expectErrors(se({ resolution: 'MAGIC' }), 'spec.resolution: must be one of'));

  // Istio's validateServiceEntry, per resolution (pkg/config/validation/validation.go)
  const http = [{ number: 80, name: 'http', protocol: 'HTTP' }];
  const RESOLUTION: [string, Obj, string[]][] = [
    [
      'NONE with endpoints',
      { resolution: 'NONE', endpoints: [{ address: '10.0.0.1' }] },
      ['spec.endpoints: no endpoints should be provided for resolution type NONE'],
    ],
    ['NONE without endpoints, wildcard host', { resolution: 'NONE', hosts: ['*.example.com'] }, []],
    [
      'resolution absent (NONE) with endpoints',
      { resolution: undefined, endpoints: [{ address: '10.0.0.1' }] },
      ['no endpoints should be provided for resolution type NONE'],
    ],
    [
      'DNS_ROUND_ROBIN with two endpoints',
      {
        resolution: 'DNS_ROUND_ROBIN',
        endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }],
      },
      ['spec.endpoints: there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN'],
    ],
    [
      'DNS_ROUND_ROBIN with one endpoint',
      { resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }] },
      [],
    ],
    [
      'DNS with endpoints of any number',
      { endpoints: [{ address: 'a.example.com' }, { address: '10.0.0.1' }] },
      [],
    ],
    [
      'DNS with a wildcard endpoint address',
      { endpoints: [{ address: '*.example.com' }] },
      ['spec.endpoints[0].address'],
    ],
    [
      'DNS with a wildcard host and endpoints',
      { hosts: ['*.example.com'], endpoints: [{ address: 'gw.example.com' }] },
      [],
    ],
    [
      'DNS with a CIDR address',
      { addresses: ['10.0.0.0/24'] },
      ['spec.addresses[0]: CIDR addresses are allowed only for NONE/STATIC resolution types'],
    ],
    ['DNS with a plain IP address', { addresses: ['10.0.0.1'] }, []],
    ['NONE with a CIDR address', { resolution: 'NONE', addresses: ['10.0.0.0/24'] }, []],
    [
      'STATIC with a CIDR address',
      { resolution: 'STATIC', addresses: ['10.0.0.0/24'], endpoints: [{ address: '10.0.0.1' }] },
      [],
    ],
    [
      'DNS, two hosts, a TCP port',
      { hosts: ['a.example.com', 'b.example.com'], ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }] },
      ['spec.ports[0]: multiple hosts provided with non-HTTP, non-TLS ports'],
    ],
    [
      'DNS, two hosts, a port without protocol',
      { hosts: ['a.example.com', 'b.example.com'], ports: [{ number: 5432, name: 'pg' }] },
      ['multiple hosts provided with non-HTTP, non-TLS ports'],
    ],
    [
      'DNS, two hosts, TLS and HTTP ports',
      {
        hosts: ['a.example.com', 'b.example.com'],
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }, ...http],
      },
      [],
    ],
    [
      'NONE, two hosts, a TCP port',
      {
        resolution: 'NONE',
        hosts: ['a.example.com', 'b.example.com'],
        ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }],
      },
      [],
    ],
    ['exportTo ~ (visible to no namespace) is allowed on a ServiceEntry', { exportTo: ['~'] }, []],
    ['exportTo ~ with .', { exportTo: ['~', '.'] }, []],
    [
      'exportTo ~ twice',
      { exportTo: ['~', '~'] },
      ['spec.exportTo: duplicate entries in exportTo for entry ~'],
    ],
    [
      'exportTo ~ with *',
      { exportTo: ['~', '*'] },
      ['spec.exportTo: cannot have both public (*) and non-public'],
    ],
    [
      'DYNAMIC_DNS with a wildcard host',
      { resolution: 'DYNAMIC_DNS', hosts: ['*.example.com'], ports: http },
      [],
    ],
    [
      'DYNAMIC_DNS with a plain host',
      { resolution: 'DYNAMIC_DNS', ports: http },
      ['spec.hosts[0]: host must be wildcarded'],
    ],
    [
      'DYNAMIC_DNS with endpoints and addresses',
      {
        resolution: 'DYNAMIC_DNS',
        hosts: ['*.example.com'],
        ports: http,
        addresses: ['10.0.0.1'],
        endpoints: [{ address: '10.0.0.1' }],
      },
      ['spec.addresses: addresses cannot be set', 'spec.endpoints: endpoints cannot be set'],
    ],
    [
      'DYNAMIC_DNS with a TCP port',
      {
        resolution: 'DYNAMIC_DNS',
        hosts: ['*.example.com'],
        ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }],
      },
      ['spec.ports[0].protocol: only HTTP, TLS, GRPC and HTTP2'],
    ],
  ];
  for (const [name, spec, errors] of RESOLUTION) it(name, () => expectErrors(se(spec), ...errors));

  it('NONE with a workloadSelector: a warning, as in Istio', () => {
    const r = validateObject(se({ resolution: 'NONE', workloadSelector: { labels: { app: 'a' } } }));
    expect(text(r.errors)).to.deep.equal([]);
    expect(text(r.warnings)).to.include(
      'spec.workloadSelector: workloadSelector should not be set when resolution mode is NONE',
    );
  });
});

describe('Sidecar', () => {
  const sc = (spec: Obj): Obj => obj(NET, 'Sidecar', spec);
  it('a namespace egress sidecar is valid', () =>
    expectErrors(sc({ egress: [{ hosts: ['./*', 'istio-system/*'] }] })));
  it('empty sidecar', () => expectErrors(sc({}), 'spec: sidecar: empty configuration provided'));
  it('egress hosts need namespace/', () =>
    expectErrors(
      sc({ egress: [{ hosts: ['reviews'] }] }),
      'spec.egress[0].hosts[0]: host "reviews" must be of form namespace/dnsName',
    ));
  it('egress listener without port must be last', () =>
    expectErrors(
      sc({
        egress: [{ hosts: ['./*'] }, { port: { number: 80, protocol: 'HTTP', name: 'h' }, hosts: ['./*'] }],
      }),
      'spec.egress: sidecar: the egress listener with empty port should be the last',
    ));
  it('ingress defaultEndpoint form', () =>
    expectErrors(
      sc({
        ingress: [{ port: { number: 80, protocol: 'HTTP', name: 'h' }, defaultEndpoint: 'localhost:8080' }],
      }),
      'spec.ingress[0].defaultEndpoint: sidecar: defaultEndpoint must be of form',
    ));
  it('ingress duplicate ports', () =>
    expectErrors(
      sc({ ingress: [{ port: { number: 80, name: 'a' } }, { port: { number: 80, name: 'b' } }] }),
      'spec.ingress[1].port: sidecar: ports on IP bound listeners must be unique',
    ));
  it('egressProxy needs ALLOW_ANY', () =>
    expectErrors(
      sc({ outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy' } } }),
      'egress_proxy must be set only with ALLOW_ANY',
    ));
});

describe('PeerAuthentication', () => {
  const pa = (spec: Obj): Obj => obj(SEC, 'PeerAuthentication', spec);
  it('namespace STRICT is valid', () => expectErrors(pa({ mtls: { mode: 'STRICT' } })));
  it('unknown mode (schema enum)', () =>
    expectErrors(
      pa({ mtls: { mode: 'MAYBE' } }),
      'spec.mtls.mode: must be one of UNSET, DISABLE, PERMISSIVE, STRICT (got "MAYBE")',
    ));
  it('portLevelMtls without a selector', () =>
    expectErrors(
      pa({ portLevelMtls: { '8080': { mode: 'DISABLE' } } }),
      'spec.portLevelMtls: mesh/namespace-wide policy cannot have port level mTLS',
    ));
  it('portLevelMtls port out of range', () =>
    expectErrors(
      pa({ selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '0': { mode: 'DISABLE' } } }),
      'spec.portLevelMtls["0"]: port number 0',
    ));
  it('is served as v1beta1 too', () =>
    expectErrors({ ...pa({ mtls: { mode: 'PERMISSIVE' } }), apiVersion: 'security.istio.io/v1beta1' }));
});

describe('AuthorizationPolicy', () => {
  const ap = (spec: Obj): Obj => obj(SEC, 'AuthorizationPolicy', spec);
  it('a typical ALLOW policy is valid', () =>
    expectErrors(
      ap({
        selector: { matchLabels: { app: 'reviews' } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/default/sa/productpage'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }],
            when: [{ key: 'request.headers[x-user]', values: ['admin'] }],
          },
        ],
      }),
    ));
  it('allow-nothing (empty spec) is valid', () => expectErrors(ap({})));
  it('CUSTOM needs a provider', () =>
    expectErrors(
      ap({ action: 'CUSTOM', rules: [{}] }),
      'spec.provider: authorization policy with CUSTOM action must specify a provider',
    ));
  it('provider only with CUSTOM', () =>
    expectErrors(
      ap({ action: 'DENY', provider: { name: 'ext' }, rules: [{}] }),
      'spec.provider: provider must only be used with the CUSTOM action',
    ));
  it('empty source', () =>
    expectErrors(
      ap({ rules: [{ from: [{ source: {} }] }] }),
      'spec.rules[0].from[0].source: `from.source` must not be empty',
    ));
  it('empty operation', () =>
    expectErrors(
      ap({ rules: [{ to: [{}] }] }),
      'spec.rules[0].to[0].operation: `to.operation` must not be empty',
    ));
  it('bad ipBlocks', () =>
    expectErrors(
      ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/40'] } }] }] }),
      'spec.rules[0].from[0].source.ipBlocks: 10.0.0.0/40 is not a valid CIDR block',
    ));
  it('bad ports', () =>
    expectErrors(
      ap({ rules: [{ to: [{ operation: { ports: ['http'] } }] }] }),
      'spec.rules[0].to[0].operation.ports: port "http" is not a number',
    ));
  it('bad path wildcard', () =>
    expectErrors(
      ap({ rules: [{ to: [{ operation: { paths: ['/a/*/b'] } }] }] }),
      'spec.rules[0].to[0].operation.paths[0]: invalid path',
    ));
  it('path templates are fine', () =>
    expectErrors(ap({ rules: [{ to: [{ operation: { paths: ['/foo/{*}/bar', '/x/{**}'] } }] }] })));
  it('unknown condition key', () =>
    expectErrors(
      ap({ rules: [{ when: [{ key: 'request.bogus', values: ['x'] }] }] }),
      'spec.rules[0].when[0].key: unknown attribute "request.bogus"',
    ));
  it('condition without values', () =>
    expectErrors(
      ap({ rules: [{ when: [{ key: 'source.namespace' }] }] }),
      'spec.rules[0].when[0]: condition must have at least one value',
    ));
  it('selector and targetRef together (schema oneof)', () =>
    expectErrors(
      ap({ selector: { matchLabels: { a: 'b' } }, targetRef: { kind: 'Gateway', name: 'gw' } }),
      'spec: only one of selector, targetRef, targetRefs may be set',
    ));
  it('dry-run annotation is allowed on AuthorizationPolicy', () =>
    expectErrors(obj(SEC, 'AuthorizationPolicy', {}, { annotations: { 'istio.io/dry-run': 'true' } })));
});

describe('RequestAuthentication', () => {
  const ra = (jwtRules: unknown[]): Obj =>
    obj(SEC, 'RequestAuthentication', { selector: { matchLabels: { app: 'a' } }, jwtRules });
  it('a JWKS-URI rule is valid', () =>
    expectErrors(
      ra([
        {
          issuer: 'https://issuer',
          jwksUri: 'https://issuer/jwks.json',
          fromHeaders: [{ name: 'Authorization', prefix: 'Bearer ' }],
        },
      ]),
    ));
  it('issuer required (schema)', () =>
    expectErrors(ra([{ jwksUri: 'https://x/jwks' }]), 'spec.jwtRules[0].issuer: required'));
  it('jwks and jwksUri together', () =>
    expectErrors(
      ra([{ issuer: 'i', jwks: '{}', jwksUri: 'https://x' }]),
      'spec.jwtRules[0]: only one of jwks or jwksUri',
    ));
  it('jwksUri must be http(s)', () =>
    expectErrors(
      ra([{ issuer: 'i', jwksUri: 'ftp://x/jwks' }]),
      'spec.jwtRules[0].jwksUri: invalid jwksUri "ftp://x/jwks": scheme must be http or https',
    ));
  it('jwks must be JSON', () =>
    expectErrors(ra([{ issuer: 'i', jwks: '{not json' }]), 'spec.jwtRules[0].jwks: jwks is not valid JSON'));
  it('outputClaimToHeaders header must be a token', () =>
    expectErrors(
      ra([{ issuer: 'i', outputClaimToHeaders: [{ header: 'x y', claim: 'sub' }] }]),
      'spec.jwtRules[0].outputClaimToHeaders[0].header',
    ));
  it('timeout duration checked', () =>
    expectErrors(
      ra([{ issuer: 'i', timeout: '0s' }]),
      'spec.jwtRules[0].timeout: duration must be greater than 1ms',
    ));
});

describe('Mesh', () => {
  const mesh = (spec: Obj): Obj => ({
    apiVersion: 'mesh.weft.dev/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'default' },
    spec,
  });
  it('an empty spec is valid (schema defaults fill it in)', () => expectErrors(mesh({})));
  it('a full spec is valid', () =>
    expectErrors(
      mesh({
        trustDomain: 'example.org',
        controlPlane: {
          replicas: 2,
          image: 'weft/weftd:1',
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
        },
        gateways: [
          {
            name: 'ingress',
            namespace: 'weft-system',
            replicas: 2,
            serviceType: 'NodePort',
            ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
          },
        ],
        certificates: {
          selfSigned: { rootCertTTL: '87600h' },
          workloadCertTTL: '24h',
          servingCertTTL: '8760h',
        },
        injection: {
          proxyImage: 'weft/proxy:1',
          nativeSidecar: true,
          holdApplicationUntilProxyStarts: false,
        },
        mtls: { mode: 'STRICT' },
        telemetry: {
          metrics: { enabled: true },
          tracing: { samplingPercent: 10 },
          accessLog: { enabled: false },
        },
      }),
    ));
  it('mtls mode enum', () =>
    expectErrors(
      mesh({ mtls: { mode: 'ON' } }),
      'spec.mtls.mode: must be one of STRICT, PERMISSIVE, DISABLE',
    ));
  it('selfSigned and caSecretRef together', () =>
    expectErrors(
      mesh({ certificates: { selfSigned: {}, caSecretRef: { name: 'ca' } } }),
      'spec.certificates: only one of selfSigned, caSecretRef may be set',
    ));
  it('sampling over 100%', () =>
    expectErrors(
      mesh({ telemetry: { tracing: { samplingPercent: 150 } } }),
      'spec.telemetry.tracing.samplingPercent: must be <= 100',
    ));
  it('bad quantity', () =>
    expectErrors(
      mesh({ injection: { resources: { limits: { cpu: 'lots' } } } }),
      'spec.injection.resources.limits.cpu: invalid quantity "lots"',
    ));
  it('workload TTL longer than root TTL', () =>
    expectErrors(
      mesh({ certificates: { selfSigned: { rootCertTTL: '24h' }, workloadCertTTL: '48h' } }),
      'spec.certificates.workloadCertTTL: workload certificates cannot outlive the root',
    ));
  it('certificate TTL too short', () =>
    expectErrors(
      mesh({ certificates: { workloadCertTTL: '10s' } }),
      'spec.certificates.workloadCertTTL: certificate lifetime must be at least 1m',
    ));
  it('certificate TTL of minutes: 1m is the floor (rotation tests run with it), 59s is below', () => {
    expectErrors(mesh({ certificates: { workloadCertTTL: '1m' } }));
    expectErrors(mesh({ certificates: { workloadCertTTL: '2m30s' } }));
    expectErrors(
      mesh({ certificates: { workloadCertTTL: '59s' } }),
      'spec.certificates.workloadCertTTL: certificate lifetime must be at least 1m',
    );
  });
  it('duplicate gateways', () =>
    expectErrors(
      mesh({ gateways: [{ name: 'in' }, { name: 'in' }] }),
      'spec.gateways[1].name: gateway weft-system/in is listed twice',
    ));
  it('gateway port out of range (schema)', () =>
    expectErrors(
      mesh({ gateways: [{ name: 'in', ports: [{ name: 'x', port: 70000 }] }] }),
      'spec.gateways[0].ports[0].port: must be <= 65535',
    ));
  it('bad trust domain', () =>
    expectErrors(mesh({ trustDomain: 'Bad Domain' }), 'spec.trustDomain: invalid trust domain'));
});

describe('analyzeObjects (cross-object)', () => {
  const vs = (name: string, spec: Obj, ns = 'default'): Obj =>
    obj(NET, 'VirtualService', spec, { name, namespace: ns });
  const dr = (name: string, spec: Obj, ns = 'default'): Obj =>
    obj(NET, 'DestinationRule', spec, { name, namespace: ns });
  const reviews = vs('reviews', {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 50 },
        ],
      },
    ],
  });

  it('no findings when every subset is defined', () => {
    expect(
      analyzeObjects([
        reviews,
        dr('reviews', { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v2' }] }),
      ]),
    ).to.deep.equal([]);
  });

  it('a subset no DestinationRule defines (warning, naming the DR)', () => {
    const findings = analyzeObjects([
      reviews,
      dr('reviews', { host: 'reviews.default.svc.cluster.local', subsets: [{ name: 'v1' }] }),
    ]);
    expect(findings).to.have.length(1);
    expect(findings[0]).to.include({
      severity: 'warning',
      path: 'spec.http[0].route[1].destination.subset',
      rule: 'analyze.subset.undefined',
    });
    expect(findings[0]?.message).to.contain(
      'subset "v2" of host reviews.default.svc.cluster.local is not defined by DestinationRule default/reviews',
    );
    expect(findings[0]?.related).to.deep.equal([
      { apiVersion: NET, kind: 'DestinationRule', namespace: 'default', name: 'reviews' },
    ]);
  });

  it('a subset with no DestinationRule for the host at all', () => {
    const findings = analyzeObjects([reviews]);
    expect(findings.map((f) => f.message)).to.deep.equal([
      'subset "v1" of host reviews.default.svc.cluster.local is not defined: no DestinationRule for that host (requests to it fail with 503 NR until one exists)',
      'subset "v2" of host reviews.default.svc.cluster.local is not defined: no DestinationRule for that host (requests to it fail with 503 NR until one exists)',
    ]);
  });

  it('a DR in another namespace counts only if exported there; short names resolve per namespace', () => {
    const other = dr(
      'reviews',
      {
        host: 'reviews.default.svc.cluster.local',
        subsets: [{ name: 'v1' }, { name: 'v2' }],
        exportTo: ['.'],
      },
      'other',
    );
    expect(analyzeObjects([reviews, other])).to.have.length(2);
    const exported = dr(
      'reviews',
      { host: 'reviews.default.svc.cluster.local', subsets: [{ name: 'v1' }, { name: 'v2' }] },
      'other',
    );
    expect(analyzeObjects([reviews, exported])).to.deep.equal([]);
    const shortElsewhere = dr(
      'reviews',
      { host: 'reviews', subsets: [{ name: 'v1' }, { name: 'v2' }] },
      'other',
    );
    expect(analyzeObjects([reviews, shortElsewhere])).to.have.length(2);
  });

  it('mirror destinations and wildcard DR hosts are considered', () => {
    const m = vs('m', {
      hosts: ['a'],
      http: [{ route: [{ destination: { host: 'a' } }], mirror: { host: 'b', subset: 'shadow' } }],
    });
    expect(analyzeObjects([m]).map((f) => f.path)).to.deep.equal(['spec.http[0].mirror.subset']);
    expect(
      analyzeObjects([m, dr('all', { host: '*.default.svc.cluster.local', subsets: [{ name: 'shadow' }] })]),
    ).to.deep.equal([]);
  });

  it('two mesh VirtualServices claiming one host (error, both named)', () => {
    const a = vs('a', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] });
    const b = vs('b', {
      hosts: ['reviews.default.svc.cluster.local'],
      http: [{ route: [{ destination: { host: 'reviews' } }] }],
    });
    const findings = analyzeObjects([a, b]);
    expect(findings).to.have.length(1);
    expect(findings[0]).to.include({
      severity: 'error',
      rule: 'analyze.vs.hostConflict',
      path: 'spec.hosts[0]',
    });
    expect(findings[0]?.object.name).to.equal('b');
    expect(findings[0]?.related?.[0]?.name).to.equal('a');
  });

  it('gateway-bound VirtualServices and disjoint exportTo do not conflict', () => {
    const a = vs('a', {
      hosts: ['a.com'],
      gateways: ['ns/gw'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    });
    const b = vs('b', {
      hosts: ['a.com'],
      gateways: ['ns/gw2'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    });
    expect(analyzeObjects([a, b])).to.deep.equal([]);
    const c = vs(
      'c',
      { hosts: ['x.com'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'r' } }] }] },
      'ns1',
    );
    const d = vs(
      'd',
      { hosts: ['x.com'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'r' } }] }] },
      'ns2',
    );
    expect(analyzeObjects([c, d])).to.deep.equal([]);
  });

  it('two DestinationRules for one host in one namespace (warning)', () => {
    const findings = analyzeObjects([
      dr('a', { host: 'reviews' }),
      dr('b', { host: 'reviews.default.svc.cluster.local' }),
    ]);
    expect(findings.map((f) => [f.severity, f.rule, f.object.name])).to.deep.equal([
      ['warning', 'analyze.dr.hostConflict', 'b'],
    ]);
  });

  it('one object defined twice: a duplicate warning, not a conflict with itself', () => {
    const a = vs('reviews', {
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'reviews' } }] }],
    });
    const findings = analyzeObjects([a, structuredClone(a), dr('r', { host: 'x' }), dr('r', { host: 'x' })]);
    expect(findings.map((f) => [f.severity, f.rule, f.object.kind])).to.deep.equal([
      ['warning', 'analyze.object.duplicate', 'VirtualService'],
      ['warning', 'analyze.object.duplicate', 'DestinationRule'],
    ]);
  });

  it('a gateway missing from a set that has gateways (warning); none at all means managed elsewhere', () => {
    const gw = obj(
      NET,
      'Gateway',
      { servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
      { name: 'public', namespace: 'edge' },
    );
    const bound = vs('web', {
      hosts: ['a.com'],
      gateways: ['edge/public', 'edge/private', 'mesh', 'public.edge'],
      http: [{ match: [{ gateways: ['internal'] }], route: [{ destination: { host: 'web' } }] }],
    });
    const findings = analyzeObjects([gw, bound]);
    expect(findings.map((f) => [f.rule, f.path, f.message.split(';')[0]])).to.deep.equal([
      ['analyze.gateway.undefined', 'spec.gateways[1]', 'gateway edge/private is not defined in this input'],
      [
        'analyze.gateway.undefined',
        'spec.http[0].match[0].gateways[0]',
        'gateway default/internal is not defined in this input',
      ],
    ]);
    expect(analyzeObjects([bound])).to.deep.equal([]);
  });

  it('ignores junk without crashing', () => {
    expect(
      analyzeObjects([
        null,
        1,
        'x',
        [],
        { kind: 'VirtualService' },
        { apiVersion: NET, kind: 'VirtualService', metadata: { name: 'x' }, spec: { http: 'nope' } },
      ]),
    ).to.deep.equal([]);
  });
});
