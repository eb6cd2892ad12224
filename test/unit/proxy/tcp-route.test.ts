/**
 * proxy/tcp-route.ts matching (Envoy's filter chain match as Istio builds it for tcp/tls routes):
 * destination port, destination subnets (IP or CIDR, IPv4-mapped IPv6 as IPv4), SNI exact or
 * `*.suffix` (case-insensitive, never the bare domain), first route wins; weighted picks; and
 * the config check's verdicts on malformed L4 routes.
 */
import { expect } from 'chai';
import type { L4Route } from '../../../pkg/proxyconfig/l4.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { TcpGroup } from '../../../proxy/telemetry/metrics.js';
import { compileL4, firstL4Route, pickL4Target, type L4Connection } from '../../../proxy/tcp-route.js';

const to = (cluster: string): L4Route['destinations'] => [{ cluster, weight: 100 }];
const compile = (tcp: L4Route[], tls: L4Route[] = []) =>
  compileL4({ tcpRoutes: tcp, tlsRoutes: tls }, () => new TcpGroup(''))!;

describe('proxy/tcp-route: first matching L4 route', () => {
  const l4 = compile(
    [
      { name: 'pg', match: [{ port: 5432 }], destinations: to('pg') },
      {
        name: 'subnet',
        match: [{ destinationSubnets: ['10.96.0.0/16', 'fd00::/8'] }],
        destinations: to('subnet'),
      },
      { name: 'both', match: [{ port: 3306, destinationSubnets: ['10.0.0.7'] }], destinations: to('both') },
    ],
    [
      { name: 'exact', match: [{ sniHosts: ['a.example.com'] }], destinations: to('exact') },
      { name: 'wild', match: [{ sniHosts: ['*.example.com'], port: 443 }], destinations: to('wild') },
      { name: 'any', match: [{ sniHosts: ['*'] }], destinations: to('any') },
    ],
  );
  const tcp: [Omit<L4Connection, 'sni'>, string | null][] = [
    [{ port: 5432, address: '1.2.3.4' }, 'pg'],
    [{ port: 5432, address: '10.96.1.1' }, 'pg'], // first route wins
    [{ port: 1, address: '10.96.1.1' }, 'subnet'],
    [{ port: 1, address: '::ffff:10.96.1.1' }, 'subnet'], // dual-stack socket view
    [{ port: 1, address: 'fd00::1' }, 'subnet'],
    [{ port: 1, address: '10.97.0.1' }, null],
    [{ port: 3306, address: '10.0.0.7' }, 'both'],
    [{ port: 3306, address: '10.0.0.8' }, null], // fields of one block are ANDed
    [{ port: 1, address: 'not-an-ip' }, null],
  ];
  for (const [conn, want] of tcp)
    it(`tcp ${conn.address}:${conn.port} → ${want ?? 'no route'}`, () =>
      expect(firstL4Route(l4.tcp, { ...conn, sni: null })?.name ?? null).to.equal(want));

  const tls: [string | null, number, string | null][] = [
    ['a.example.com', 443, 'exact'],
    ['b.example.com', 443, 'wild'],
    ['x.y.example.com', 443, 'wild'],
    ['b.example.com', 8443, 'any'], // the wildcard rule is for :443 only
    ['example.com', 443, 'any'], // `*.example.com` does not cover the bare domain
    ['evil-example.com', 443, 'any'],
    [null, 443, null], // no SNI: no TLS route (`*` needs a name)
  ];
  for (const [sni, port, want] of tls)
    it(`tls SNI ${JSON.stringify(sni)} on :${port} → ${want ?? 'no route'}`, () =>
      expect(firstL4Route(l4.tls, { port, address: '10.0.0.1', sni })?.name ?? null).to.equal(want));

  it('a route without match blocks takes every connection', () =>
    expect(
      firstL4Route(compile([{ destinations: to('x') }]).tcp, { port: 1, address: '::1', sni: null }),
    ).to.not.equal(null));
});

describe('proxy/tcp-route: weighted destinations', () => {
  const route = compile([
    {
      destinations: [
        { cluster: 'a', weight: 80 },
        { cluster: 'b', weight: 20 },
        { cluster: 'z', weight: 0 },
      ],
    },
  ]).tcp[0]!;
  const cases: [number, string][] = [
    [0, 'a'],
    [0.79, 'a'],
    [0.8, 'b'],
    [0.9999, 'b'],
  ];
  for (const [r, want] of cases)
    it(`rand ${r} → ${want}`, () => expect(pickL4Target(route, () => r).clusterName).to.equal(want));

  it('all weights 0: the first destination', () => {
    const zero = compile([
      {
        destinations: [
          { cluster: 'a', weight: 0 },
          { cluster: 'b', weight: 0 },
        ],
      },
    ]).tcp[0]!;
    expect(pickL4Target(zero, () => 0.7).clusterName).to.equal('a');
  });
});

describe('proxy config check: L4 routes', () => {
  const base = (l: Record<string, unknown>) => ({
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v',
    clusters: [],
    listeners: [{ name: 't', protocol: 'TCP', port: 9000, ...l }],
  });
  const cases: [string, Record<string, unknown>, RegExp | null][] = [
    ['one cluster', { cluster: 'c' }, null],
    ['routes instead of a cluster', { tcpRoutes: [{ destinations: [{ cluster: 'c', weight: 1 }] }] }, null],
    ['neither', {}, /must name a cluster/],
    ['a route with no destination', { tcpRoutes: [{ destinations: [] }] }, /at least one cluster/],
    ['a negative weight', { tcpRoutes: [{ destinations: [{ cluster: 'c', weight: -1 }] }] }, /non-negative/],
    [
      'a bad subnet',
      {
        tcpRoutes: [
          { match: [{ destinationSubnets: ['10.0.0.0/40'] }], destinations: [{ cluster: 'c', weight: 1 }] },
        ],
      },
      /IP address or a CIDR/,
    ],
    [
      'a bad port',
      { tcpRoutes: [{ match: [{ port: 70000 }], destinations: [{ cluster: 'c', weight: 1 }] }] },
      /port number/,
    ],
    [
      'a TLS route without sniHosts',
      { tlsRoutes: [{ match: [{ port: 443 }], destinations: [{ cluster: 'c', weight: 1 }] }] },
      /must match sniHosts/,
    ],
    [
      'a TLS route without match',
      { tlsRoutes: [{ destinations: [{ cluster: 'c', weight: 1 }] }] },
      /must match sniHosts/,
    ],
  ];
  for (const [what, l, want] of cases)
    it(what, () => {
      const problems = validateProxyConfig(base(l))
        .map((p) => `${p.path}: ${p.message}`)
        .join('\n');
      if (want === null) expect(problems).to.equal('');
      else expect(problems).to.match(want);
    });

  it('outboundTcp entries: addresses must be IPs or CIDRs', () => {
    const cfg = {
      ...base({ cluster: 'c' }),
      outboundTcp: [
        {
          name: 'db:5432',
          addresses: ['db.example.com'],
          port: 5432,
          tcpRoutes: [{ destinations: [{ cluster: 'c', weight: 1 }] }],
        },
      ],
    };
    expect(validateProxyConfig(cfg).map((p) => p.path)).to.deep.equal(['outboundTcp[0].addresses[0]']);
  });
});
