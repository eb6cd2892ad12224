/**
 * VirtualService `tcp:` and `tls:` rules in the translation (pkg/translate/tcproutes.ts), from
 * Istio's documented semantics (virtual-service.proto TCPRoute, TLSRoute, L4MatchAttributes,
 * TLSMatchAttributes; gateway.proto PASSTHROUGH): match by port, destinationSubnets,
 * sourceLabels/sourceNamespace and gateways; weighted destinations; first rule wins; the sidecar
 * falls back to the service, a gateway does not; a PASSTHROUGH server only takes its own hosts.
 */
import { expect } from 'chai';
import type { DestinationRule, Gateway, VirtualService } from '../../../pkg/api/index.js';
import type { L4Route } from '../../../pkg/proxyconfig/l4.js';
import type { TcpListener } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { translate, translateGateway, type ServiceRecord } from '../../../pkg/translate/index.js';
import { sourceScopeOf } from '../../../pkg/translate/sourcematch.js';

const DB = 'db.data.svc.cluster.local';
const db: ServiceRecord = {
  host: DB,
  namespace: 'data',
  addresses: ['10.96.0.11'],
  ports: [
    { number: 5432, name: 'tcp-pg', protocol: 'TCP' },
    { number: 8080, name: 'http-admin', protocol: 'HTTP' },
  ],
  endpoints: [
    { address: '10.0.1.1', labels: { version: 'v1' } },
    { address: '10.0.1.2', labels: { version: 'v2' } },
  ],
};
const secure: ServiceRecord = {
  host: 'secure.example.com',
  namespace: 'web',
  addresses: ['10.96.0.12'],
  ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
  endpoints: [{ address: '10.0.2.1', labels: {} }],
};
const headless: ServiceRecord = {
  host: 'cache.data.svc.cluster.local',
  namespace: 'data',
  addresses: [],
  ports: [{ number: 6379, name: 'redis', protocol: 'REDIS' }],
  endpoints: [{ address: '10.0.3.1', labels: {} }],
};
const subsets: DestinationRule = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'db', namespace: 'data' },
  spec: {
    host: DB,
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
};

const vs = (
  name: string,
  spec: VirtualService['spec'],
  created = '2026-01-01T00:00:00Z',
): VirtualService => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'data', creationTimestamp: created },
  spec,
});

const c = (port: number, subset = '', host = DB): string => `outbound|${port}|${subset}|${host}`;
const DEFAULT: L4Route = { name: 'default', destinations: [{ cluster: c(5432), weight: 100 }] };

function sidecar(
  vss: VirtualService[],
  proxy: { namespace: string; labels: Record<string, string> } = {
    namespace: 'data',
    labels: { app: 'api' },
  },
) {
  const r = translate({
    services: [db, secure, headless],
    virtualServices: vss,
    destinationRules: [subsets],
    proxy,
  });
  expect(validateProxyConfig(r.config)).to.deep.equal([]);
  return r;
}
const dbRoutes = (vss: VirtualService[], proxy?: { namespace: string; labels: Record<string, string> }) =>
  (sidecar(vss, proxy).config.outboundTcp ?? []).find((s) => s.name === `${DB}:5432`)?.tcpRoutes;
/** The routes without their `source` (kept short in the tables). */
const bare = (rs: L4Route[] | undefined) => (rs ?? []).map(({ source: _s, name: _n, ...r }) => r);

describe('translate: sidecar outbound TCP services (VirtualService tcp:)', () => {
  it('a declared TCP port with an address goes to the service, never sniffed; HTTP ports and headless services do not', () => {
    const out = sidecar([]).config.outboundTcp ?? [];
    expect(out.map((s) => s.name)).to.deep.equal([`${DB}:5432`, 'secure.example.com:443']);
    expect(out[0]).to.deep.equal({
      name: `${DB}:5432`,
      addresses: ['10.96.0.11'],
      port: 5432,
      tcpRoutes: [DEFAULT],
    });
  });

  const weighted = {
    route: [
      { destination: { host: 'db', subset: 'v1' }, weight: 80 },
      { destination: { host: 'db', subset: 'v2' }, weight: 20 },
    ],
  };
  const split = [
    { cluster: c(5432, 'v1'), weight: 80 },
    { cluster: c(5432, 'v2'), weight: 20 },
  ];
  const table: [string, NonNullable<VirtualService['spec']['tcp']>, Omit<L4Route, 'name' | 'source'>[]][] = [
    ['no match: every connection, weighted by subset', [weighted], [{ destinations: split }]],
    [
      'match on this port',
      [{ match: [{ port: 5432 }], ...weighted }],
      [{ match: [{}], destinations: split }],
    ],
    ['match on another port: not here', [{ match: [{ port: 3306 }], ...weighted }], []],
    [
      'destinationSubnets kept for the proxy',
      [{ match: [{ destinationSubnets: ['10.96.0.0/16', '10.96.0.11'] }], ...weighted }],
      [{ match: [{ destinationSubnets: ['10.96.0.0/16', '10.96.0.11'] }], destinations: split }],
    ],
    [
      'sourceLabels this proxy has',
      [{ match: [{ sourceLabels: { app: 'api' } }], ...weighted }],
      [{ match: [{}], destinations: split }],
    ],
    ['sourceLabels it has not', [{ match: [{ sourceLabels: { app: 'web' } }], ...weighted }], []],
    ['sourceNamespace of another namespace', [{ match: [{ sourceNamespace: 'other' }], ...weighted }], []],
    ['gateways without mesh: a gateway rule', [{ match: [{ gateways: ['edge'] }], ...weighted }], []],
    [
      'gateways with mesh',
      [{ match: [{ gateways: ['mesh'] }], ...weighted }],
      [{ match: [{}], destinations: split }],
    ],
    [
      'first rule wins: both kept in order',
      [{ match: [{ port: 5432 }], route: [{ destination: { host: 'db', subset: 'v2' } }] }, weighted],
      [{ match: [{}], destinations: [{ cluster: c(5432, 'v2'), weight: 100 }] }, { destinations: split }],
    ],
    [
      'only the blocks that apply stay',
      [
        {
          match: [{ port: 3306 }, { sourceLabels: { app: 'api' }, destinationSubnets: ['10.96.0.0/12'] }],
          ...weighted,
        },
      ],
      [{ match: [{ destinationSubnets: ['10.96.0.0/12'] }], destinations: split }],
    ],
    [
      'destination.port picks the cluster port',
      [{ route: [{ destination: { host: 'db', port: { number: 8080 } } }] }],
      [{ destinations: [{ cluster: c(8080), weight: 100 }] }],
    ],
  ];
  for (const [what, tcp, want] of table)
    it(what, () => {
      const routes = dbRoutes([vs('db', { hosts: ['db'], tcp })]);
      expect(bare(routes)).to.deep.equal([...want, { destinations: DEFAULT.destinations }]);
    });

  it("a VirtualService bound to gateways only is not the sidecar's", () => {
    expect(bare(dbRoutes([vs('db', { hosts: ['db'], gateways: ['edge'], tcp: [weighted] })]))).to.deep.equal([
      { destinations: DEFAULT.destinations },
    ]);
  });

  it('the oldest VirtualService with rules for the port routes it', () => {
    const older = vs(
      'a',
      { hosts: ['db'], tcp: [{ route: [{ destination: { host: 'db', subset: 'v1' } }] }] },
      '2026-01-01T00:00:00Z',
    );
    const newer = vs(
      'b',
      { hosts: ['db'], tcp: [{ route: [{ destination: { host: 'db', subset: 'v2' } }] }] },
      '2026-02-01T00:00:00Z',
    );
    expect(bare(dbRoutes([newer, older]))[0]!.destinations[0]!.cluster).to.equal(c(5432, 'v1'));
  });

  it('a destinationSubnets entry that is not an IP or CIDR is dropped with a warning', () => {
    const r = sidecar([
      vs('db', {
        hosts: ['db'],
        tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/33', 'db'] }], ...weighted }],
      }),
    ]);
    expect(r.warnings.join('\n')).to.match(/10\.0\.0\.0\/33 is not an IP or CIDR/);
  });

  it('sourceLabels in tcp rules are part of the translation scope key (weftd translates per key)', () => {
    const scope = sourceScopeOf([
      vs('db', { hosts: ['db'], tcp: [{ match: [{ sourceLabels: { tier: 'x' } }], ...weighted }] }),
    ]);
    expect(scope.labelKeys).to.deep.equal(['tier']);
  });
});

describe('translate: sidecar outbound TLS services (VirtualService tls:)', () => {
  const tlsVs = vs('secure', {
    hosts: ['secure.example.com'],
    tls: [
      {
        match: [{ sniHosts: ['Secure.Example.com'], port: 443 }],
        route: [{ destination: { host: 'secure.example.com', port: { number: 443 } } }],
      },
      { match: [{ sniHosts: ['other.example.com'], port: 8443 }], route: [{ destination: { host: 'db' } }] },
    ],
  });
  it('SNI routes for the port, then the service for anything else (no SNI, plaintext)', () => {
    const out = sidecar([tlsVs]).config.outboundTcp!.find((s) => s.port === 443)!;
    expect(bare(out.tlsRoutes)).to.deep.equal([
      {
        match: [{ sniHosts: ['secure.example.com'] }],
        destinations: [{ cluster: c(443, '', 'secure.example.com'), weight: 100 }],
      },
    ]);
    expect(bare(out.tcpRoutes)).to.deep.equal([
      { destinations: [{ cluster: c(443, '', 'secure.example.com'), weight: 100 }] },
    ]);
  });
});

const gw = (servers: NonNullable<Gateway['spec']['servers']>, name = 'edge'): Gateway => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: 'data' },
  spec: { selector: { istio: 'ingressgateway' }, servers },
});
const pod = { namespace: 'istio-system', labels: { istio: 'ingressgateway' } };

function gateway(gws: Gateway[], vss: VirtualService[], servicePorts?: Record<number, number[]>) {
  const r = translateGateway({
    pod,
    services: [db, secure],
    gateways: gws,
    virtualServices: vss,
    destinationRules: [subsets],
    ...(servicePorts ? { servicePorts } : {}),
  });
  expect(validateProxyConfig(r.config)).to.deep.equal([]);
  return r;
}
const tcpListener = (r: ReturnType<typeof gateway>, port: number) =>
  r.config.listeners.find((l) => l.port === port) as TcpListener | undefined;

describe('translate: gateway TCP servers and TLS PASSTHROUGH', () => {
  const tcpServer = { port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] };
  const passthrough = (hosts: string[], port = 443) => ({
    port: { number: port, name: 'tls', protocol: 'TLS' },
    hosts,
    tls: { mode: 'PASSTHROUGH' as const },
  });

  it('a TCP server listens and routes by the tcp rules bound to the gateway (no fallback)', () => {
    const r = gateway(
      [gw([tcpServer])],
      [
        vs('db', {
          hosts: ['*'],
          gateways: ['edge'],
          tcp: [
            {
              match: [{ port: 31400 }],
              route: [{ destination: { host: 'db', port: { number: 5432 }, subset: 'v1' } }],
            },
            { match: [{ port: 9999 }], route: [{ destination: { host: 'db', port: { number: 5432 } } }] },
          ],
        }),
      ],
      { 31400: [8400] },
    );
    const l = tcpListener(r, 8400)!;
    expect(l).to.include({ protocol: 'TCP', address: '0.0.0.0', name: 'gateway-8400' });
    expect(bare(l.tcpRoutes)).to.deep.equal([
      { match: [{}], destinations: [{ cluster: c(5432, 'v1'), weight: 100 }] },
    ]);
    expect(l.tlsRoutes).to.equal(undefined);
  });

  it('MONGO, MYSQL and REDIS servers are TCP servers', () => {
    for (const protocol of ['MONGO', 'MYSQL', 'REDIS']) {
      const r = gateway(
        [gw([{ port: { number: 7000, name: 'x', protocol }, hosts: ['*'] }])],
        [
          vs('db', {
            hosts: ['*'],
            gateways: ['edge'],
            tcp: [{ route: [{ destination: { host: 'db', port: { number: 5432 } } }] }],
          }),
        ],
      );
      expect(tcpListener(r, 7000)?.tcpRoutes?.length, protocol).to.equal(1);
    }
  });

  it('PASSTHROUGH: tls rules by SNI, narrowed to the server hosts; plaintext is not routed', () => {
    const r = gateway(
      [gw([passthrough(['a.example.com', '*.wild.example.com'])])],
      [
        vs('sni', {
          hosts: ['a.example.com', 'b.example.com', 'x.wild.example.com'],
          gateways: ['edge'],
          tls: [
            {
              match: [{ sniHosts: ['a.example.com', 'b.example.com', 'x.wild.example.com'] }],
              route: [{ destination: { host: 'secure.example.com', port: { number: 443 } } }],
            },
            { match: [{ sniHosts: ['b.example.com'] }], route: [{ destination: { host: 'db' } }] },
          ],
        }),
      ],
    );
    const l = tcpListener(r, 443)!;
    expect(bare(l.tlsRoutes)).to.deep.equal([
      {
        match: [{ sniHosts: ['a.example.com', 'x.wild.example.com'] }],
        destinations: [{ cluster: c(443, '', 'secure.example.com'), weight: 100 }],
      },
    ]);
    expect(l.tcpRoutes).to.deep.equal([]);
  });

  it("HTTPS with tls.mode PASSTHROUGH is a passthrough server too (Istio's SNI passthrough example)", () => {
    const r = gateway(
      [
        gw([
          {
            port: { number: 443, name: 'https', protocol: 'HTTPS' },
            hosts: ['a.example.com'],
            tls: { mode: 'PASSTHROUGH' },
          },
        ]),
      ],
      [
        vs('sni', {
          hosts: ['a.example.com'],
          gateways: ['edge'],
          tls: [
            {
              match: [{ sniHosts: ['a.example.com'] }],
              route: [{ destination: { host: 'secure.example.com' } }],
            },
          ],
        }),
      ],
    );
    expect(tcpListener(r, 443)?.tlsRoutes?.length).to.equal(1);
  });

  const refused: [string, NonNullable<Gateway['spec']['servers']>, RegExp][] = [
    [
      'AUTO_PASSTHROUGH',
      [{ ...passthrough(['*']), tls: { mode: 'AUTO_PASSTHROUGH' } }],
      /AUTO_PASSTHROUGH .* is not served/,
    ],
    [
      'TLS SIMPLE (terminate then TCP)',
      [{ ...passthrough(['*']), tls: { mode: 'SIMPLE', credentialName: 'x' } }],
      /tls\.mode SIMPLE .* not served yet/,
    ],
    [
      'HTTP then TCP on one port',
      [
        { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
        { ...tcpServer, port: { ...tcpServer.port, number: 80 } },
      ],
      /conflicts with the port's earlier HTTP or terminated HTTPS server/,
    ],
    [
      'TCP then HTTP on one port',
      [tcpServer, { port: { number: 31400, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
      /conflicts with the port's earlier TCP\/TLS passthrough server/,
    ],
  ];
  for (const [what, servers, want] of refused)
    it(`refused with a warning: ${what}`, () => {
      const r = gateway([gw(servers)], []);
      expect(r.warnings.join('\n')).to.match(want);
    });

  it('a TCP server no rule is bound to is warned about (its connections are closed)', () => {
    const r = gateway(
      [gw([tcpServer])],
      [vs('db', { hosts: ['*'], gateways: ['other'], tcp: [{ route: [{ destination: { host: 'db' } }] }] })],
    );
    expect(tcpListener(r, 31400)?.tcpRoutes).to.deep.equal([]);
    expect(r.warnings.join('\n')).to.match(/no VirtualService tcp rule is bound/);
  });
});
