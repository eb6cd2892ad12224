/**
 * `clientIP` keys (gateway listener limits, ADR 0021): which address a per-client bucket is
 * keyed by. Without trusted proxies x-forwarded-for is ignored (an attacker forging a new value
 * per request would otherwise get a fresh bucket each time); with N trusted proxies the Nth
 * entry from the right (Envoy's xff_num_trusted_hops), read without splitting the whole header.
 * Plus the bounds a gateway on the open internet needs: a flood of client addresses, huge
 * header keys, x-forwarded-for of 1,000 entries.
 */
import { expect } from 'chai';
import { clientAddress, RateLimiter, type RateLimitRequest } from '../../../proxy/ratelimit/limiter.js';
import { nthFromRight, remoteAddress } from '../../../proxy/authz/engine.js';
import { validateRateLimitBlock, type RateLimitBlock } from '../../../pkg/proxyconfig/ratelimit.js';

const req = (
  peerIp: string | undefined,
  xff?: string,
  extra: Partial<RateLimitRequest> = {},
): RateLimitRequest => ({
  port: 8080,
  target: '/',
  method: 'GET',
  headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
  principal: null,
  claims: null,
  peerIp,
  ...extra,
});

describe('ratelimit: clientIP key selection', () => {
  // [title, peer, x-forwarded-for, trusted hops, key]
  const table: [string, string | undefined, string | undefined, number, string][] = [
    ['no trusted proxy: the peer', '198.51.100.7', undefined, 0, '198.51.100.7'],
    ['no trusted proxy: a forged x-forwarded-for is ignored', '198.51.100.7', '10.9.9.9', 0, '198.51.100.7'],
    ['v4-mapped peer on a dual-stack socket', '::ffff:198.51.100.7', undefined, 0, '198.51.100.7'],
    ['IPv6 peer', '2001:db8::7', undefined, 0, '2001:db8::7'],
    ['one trusted LB: the address it appended', '10.0.0.2', '203.0.113.5', 1, '203.0.113.5'],
    [
      'one trusted LB: what the client prepended is not the key',
      '10.0.0.2',
      '1.2.3.4, 5.6.7.8, 203.0.113.5',
      1,
      '203.0.113.5',
    ],
    [
      'two trusted proxies: second from the right',
      '10.0.0.2',
      '1.2.3.4, 203.0.113.5, 10.0.0.9',
      2,
      '203.0.113.5',
    ],
    ['trusted proxies but no header (reached directly): the peer', '10.0.0.2', undefined, 1, '10.0.0.2'],
    ['too short a list: the peer', '10.0.0.2', '203.0.113.5', 2, '10.0.0.2'],
    ['not an address at the trusted position: the peer', '10.0.0.2', '1.2.3.4, garbage', 1, '10.0.0.2'],
    ['an empty entry at the trusted position: the peer', '10.0.0.2', '1.2.3.4,, ', 1, '10.0.0.2'],
    ['no peer address (a closed socket): one shared "unknown" key', undefined, '1.2.3.4', 1, 'unknown'],
  ];
  for (const [title, peer, xff, hops, want] of table)
    it(title, () => expect(clientAddress(req(peer, xff), hops)).to.equal(want));

  it('x-forwarded-for of 1,000 entries: only the last hops entries are read', () => {
    const xff = Array.from({ length: 1000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`).join(', ');
    expect(clientAddress(req('10.0.0.2', `${xff}, 203.0.113.5`), 1)).to.equal('203.0.113.5');
    expect(nthFromRight('a,b,c', 1)).to.equal('c');
    expect(nthFromRight('a,b,c', 3)).to.equal('a');
    expect(nthFromRight('a,b,c', 4)).to.equal(undefined);
    expect(nthFromRight(',', 1)).to.equal(undefined);
    expect(nthFromRight(',', 2)).to.equal(undefined);
    expect(nthFromRight(',,,', 3)).to.equal(undefined);
    // 100,000 commas: the walk stops after `hops` entries whatever the length
    expect(remoteAddress('10.0.0.2', ','.repeat(100_000), 3)).to.equal('10.0.0.2');
  });
});

describe('ratelimit: clientIP buckets', () => {
  let t = 0;
  const block = (hops: number, maxKeys = 10_000): RateLimitBlock => ({
    maxKeysPerLimit: maxKeys,
    ...(hops > 0 ? { numTrustedProxies: hops } : {}),
    limits: [
      {
        name: 'RateLimit gw/ingress',
        sourceKey: { kind: 'clientIP' },
        budget: { requests: 2, intervalMs: 60_000, per: 'source' },
      },
    ],
  });
  const limiter = (b: RateLimitBlock): RateLimiter => {
    const l = new RateLimiter(null, { now: () => t });
    l.update(b);
    return l;
  };
  beforeEach(() => (t = 0));

  it('an attacker rotating x-forwarded-for without trusted proxies stays in its own bucket', () => {
    const l = limiter(block(0));
    const results = Array.from({ length: 5 }, (_, i) => l.check(req('198.51.100.7', `10.0.0.${i}`))!);
    expect(results.map((r) => r.allowed)).to.deep.equal([true, true, false, false, false]);
    expect(results.every((r) => r.key === '198.51.100.7')).to.equal(true);
    // another client is not affected
    expect(l.check(req('198.51.100.8'))!.allowed).to.equal(true);
  });

  it('behind one trusted LB: clients are told apart by the address the LB appended', () => {
    const l = limiter(block(1));
    const lb = '10.0.0.2';
    expect(l.check(req(lb, '203.0.113.5'))!.allowed).to.equal(true);
    expect(l.check(req(lb, 'forged, 203.0.113.5'))!.allowed).to.equal(true);
    expect(l.check(req(lb, '9.9.9.9, 203.0.113.5'))!.allowed).to.equal(false);
    expect(l.check(req(lb, '203.0.113.6'))!.allowed).to.equal(true);
  });

  it('a changed numTrustedProxies is a new limit (buckets keyed by another address do not carry over)', () => {
    const l = new RateLimiter(null, { now: () => t });
    l.update(block(0));
    l.check(req('10.0.0.2', '203.0.113.5'));
    l.check(req('10.0.0.2', '203.0.113.5'));
    expect(l.check(req('10.0.0.2', '203.0.113.5'))!.allowed).to.equal(false);
    l.update(block(1));
    expect(l.check(req('10.0.0.2', '203.0.113.5'))!.key).to.equal('203.0.113.5');
  });

  it('a flood of distinct client addresses stays bounded by the LRU', () => {
    const l = limiter(block(1, 500));
    for (let i = 0; i < 20_000; i++)
      l.check(req('10.0.0.2', `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    const s = l.stats()[0]!;
    expect(s.buckets).to.equal(500);
    expect(s.evictions).to.equal(19_500);
  });

  it('an absurd header key is hashed to a bounded length', () => {
    const l = new RateLimiter(null, { now: () => t });
    l.update({
      limits: [
        {
          name: 'h',
          sourceKey: { kind: 'header', name: 'x-api-key' },
          budget: { requests: 1, intervalMs: 1000, per: 'source' },
        },
      ],
    });
    const v = l.check(req('10.0.0.2', undefined, { headers: { 'x-api-key': 'k'.repeat(60_000) } }))!;
    expect(v.key).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it('the block validator bounds numTrustedProxies and knows the clientIP key', () => {
    expect(validateRateLimitBlock(block(3))).to.deep.equal([]);
    expect(validateRateLimitBlock({ ...block(0), numTrustedProxies: -1 })[0]!.path).to.equal(
      'rateLimits.numTrustedProxies',
    );
    expect(validateRateLimitBlock({ ...block(0), numTrustedProxies: 1e9 })[0]!.path).to.equal(
      'rateLimits.numTrustedProxies',
    );
    const bad = {
      limits: [{ name: 'x', sourceKey: { kind: 'ip' }, budget: { requests: 1, intervalMs: 1 } }],
    };
    expect(validateRateLimitBlock(bad)[0]!.message).to.include('clientIP');
  });
});
