/**
 * The webhook's verdicts on VirtualService `tcp:` and `tls:` rules (Istio's validation of
 * TCPRoute / TLSRoute: a TLS rule needs a match with sniHosts, its names within the
 * VirtualService's hosts; destinationSubnets are IPs or CIDRs; every rule needs a route), and
 * that an enforced tcp/tls rule no longer warns as "accepted but not enforced".
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';

const vs = (spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'v', namespace: 'data' },
  spec,
});
const to = [{ destination: { host: 'db' } }];

describe('validation: VirtualService tcp/tls rules (webhook verdicts)', () => {
  const cases: [string, Record<string, unknown>, string | null][] = [
    [
      'a tcp rule with a port, subnets and source labels',
      {
        hosts: ['db'],
        tcp: [
          {
            match: [
              { port: 5432, destinationSubnets: ['10.0.0.0/8', 'fd00::1'], sourceLabels: { app: 'a' } },
            ],
            route: to,
          },
        ],
      },
      null,
    ],
    [
      'a tls rule for one of the hosts',
      { hosts: ['a.example.com'], tls: [{ match: [{ sniHosts: ['a.example.com'] }], route: to }] },
      null,
    ],
    // the CRD schema requires tls[].match and match[].sniHosts (as Istio's does): refused before the rules
    ['a tls rule without match', { hosts: ['a.example.com'], tls: [{ route: to }] }, 'schema.required'],
    [
      'a tls match without sniHosts',
      { hosts: ['a.example.com'], tls: [{ match: [{ port: 443 }], route: to }] },
      'schema.required',
    ],
    [
      'a tls match with no SNI host',
      { hosts: ['a.example.com'], tls: [{ match: [{ sniHosts: [] }], route: to }] },
      'vs.tls.sniRequired',
    ],
    [
      'an SNI outside the hosts',
      { hosts: ['a.example.com'], tls: [{ match: [{ sniHosts: ['b.example.com'] }], route: to }] },
      'vs.tls.sniNotInHosts',
    ],
    [
      'a tls rule without route',
      { hosts: ['a.example.com'], tls: [{ match: [{ sniHosts: ['a.example.com'] }] }] },
      'vs.tls.routeRequired',
    ],
    [
      'a tcp rule without route',
      { hosts: ['db'], tcp: [{ match: [{ port: 5432 }] }] },
      'vs.tcp.routeRequired',
    ],
    [
      'a subnet that is not a CIDR',
      { hosts: ['db'], tcp: [{ match: [{ destinationSubnets: ['10.0.0.0/33'] }], route: to }] },
      'vs.l4.destinationSubnets',
    ],
  ];
  for (const [what, spec, rule] of cases)
    it(`${what}: ${rule ?? 'admitted'}`, () => {
      const r = validateObject(vs(spec));
      if (rule === null) expect(r.errors).to.deep.equal([]);
      else expect(r.errors.map((f) => f.rule)).to.include(rule);
    });

  it('admitted tcp/tls rules no longer warn as accepted but not enforced', () => {
    const r = validateObject(
      vs({
        hosts: ['a.example.com'],
        tcp: [{ route: to }],
        tls: [{ match: [{ sniHosts: ['a.example.com'] }], route: to }],
      }),
    );
    expect(r.warnings.map((w) => w.rule).filter((x) => x?.startsWith('notEnforced'))).to.deep.equal([]);
  });

  it('sourceSubnet (not enforced) warns', () => {
    const r = validateObject(
      vs({ hosts: ['db'], tcp: [{ match: [{ sourceSubnet: '10.0.0.0/8' }], route: to }] }),
    );
    expect(r.warnings.map((w) => w.rule)).to.include('notEnforced.vs.tcp.sourceSubnet');
  });
});
