import { expect } from 'chai';
import { InitUsageError, parseInitFlags } from '../../../proxy/init/flags.js';
import { natRules, withoutExistingJumps } from '../../../proxy/init/rules.js';
import { proxyInitArgs } from '../../../pkg/inject/iptables.js';

const HEAD = [
  '*nat',
  ':ISTIO_INBOUND - [0:0]',
  ':ISTIO_IN_REDIRECT - [0:0]',
  ':ISTIO_OUTPUT - [0:0]',
  ':ISTIO_REDIRECT - [0:0]',
  '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
  '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
];
const OWNER_1337 = [
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
  '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
  '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
];
const INJECTOR = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT'];

describe('proxy init: flags → nat rules', () => {
  const TABLE: [string, string[], string[]][] = [
    [
      "the injector's defaults: everything captured but the proxy's own ports",
      [...INJECTOR, '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021'],
      [
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
        '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
        '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
        ...OWNER_1337,
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      ],
    ],
    [
      'include and exclude CIDRs, excluded and included outbound ports',
      [...INJECTOR, '-i', '10.0.0.0/8,172.16.0.1', '-x', '10.9.0.0/16', '-b', '', '-o', '5432', '-q', '3306'],
      [
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
        '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
        ...OWNER_1337,
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -p tcp --dport 3306 -j ISTIO_REDIRECT',
        '-A ISTIO_OUTPUT -d 10.9.0.0/16 -j RETURN',
        '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
        '-A ISTIO_OUTPUT -d 172.16.0.1/32 -j ISTIO_REDIRECT',
      ],
    ],
    [
      'listed inbound ports only, no outbound capture',
      [...INJECTOR, '-i', '', '-b', '9080,9443', '-d', '15021'],
      [
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_INBOUND -p tcp --dport 9443 -j ISTIO_IN_REDIRECT',
      ],
    ],
    ['nothing to capture: only the chains', [...INJECTOR, '-i', '', '-b', ''], []],
    [
      'other ports, uid and a separate gid (long flags)',
      [
        '--proxy-port=16001',
        '--inbound-capture-port',
        '16006',
        '-u',
        '1000',
        '-g',
        '2000',
        '-i',
        '*',
        '-b',
        '',
      ],
      [
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
        '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1000 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1000 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --uid-owner 1000 -j RETURN',
        '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner 2000 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 2000 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --gid-owner 2000 -j RETURN',
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      ],
    ],
  ];
  for (const [name, argv, body] of TABLE) {
    it(name, () => {
      let head = HEAD;
      if (argv.includes('--proxy-port=16001'))
        head = HEAD.map((l) => l.replace('15001', '16001').replace('15006', '16006'));
      expect(natRules(parseInitFlags(argv)).split('\n')).to.deep.equal([...head, ...body, 'COMMIT', '']);
    });
  }

  it('parses every argument list the injector can emit', () => {
    const args = proxyInitArgs({
      requests: {},
      limits: {},
      includeOutboundIPRanges: '10.0.0.0/8',
      excludeOutboundIPRanges: '10.96.0.1/32',
      includeInboundPorts: '8080',
      excludeInboundPorts: '9000',
      excludeOutboundPorts: '5432',
    });
    expect(args.slice(0, 2)).to.deep.equal(['proxy', 'init']);
    const c = parseInitFlags(args.slice(2));
    expect(c.includeOutboundCidrs).to.deep.equal(['10.0.0.0/8']);
    expect(c.excludeOutboundCidrs).to.deep.equal(['10.96.0.1/32']);
    expect(c.includeInboundPorts).to.deep.equal([8080]);
    expect(c.excludeInboundPorts).to.deep.equal([15090, 15021, 9000]);
    expect(c.excludeOutboundPorts).to.deep.equal([5432]);
  });

  const BAD: [string, string[], RegExp][] = [
    ['TPROXY mode', ['-m', 'TPROXY'], /only REDIRECT/],
    ['a port out of range', ['-p', '70000'], /port numbers/],
    ['an IPv6 range', ['-i', 'fd00::/8'], /IPv4 CIDRs/],
    ['a bad octet', ['-x', '10.0.0.256/32'], /IPv4 CIDRs/],
    ['a missing value', ['-u'], /needs a value/],
    ['an unknown flag', ['-k', 'x'], /unknown flag/],
    ['a non-numeric uid', ['-u', 'istio'], /numeric ids/],
  ];
  for (const [name, argv, re] of BAD) {
    it(`refuses ${name}`, () => {
      expect(() => parseInitFlags(argv))
        .to.throw(InitUsageError)
        .with.property('message')
        .that.matches(re);
    });
  }

  it('re-running in the same namespace does not add a second jump', () => {
    const rules = natRules(parseInitFlags([...INJECTOR, '-i', '*', '-b', '*']));
    const saved =
      '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\nCOMMIT\n';
    const again = withoutExistingJumps(rules, saved);
    expect(again).not.to.contain('-A PREROUTING');
    expect(again).not.to.contain('-A OUTPUT');
    expect(again).to.contain('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
    expect(withoutExistingJumps(rules, '*nat\nCOMMIT\n')).to.equal(rules);
  });
});
