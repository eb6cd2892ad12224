/**
 * The local rate limiter's pure parts on fixed clocks: token bucket arithmetic (refill, burst,
 * clock jumps), override selection (first match wins), per-source keys in a bounded LRU with
 * idle expiry, the response headers, and the proxy config block's validation.
 */
import { expect } from 'chai';
import { TokenBucket } from '../../../proxy/ratelimit/bucket.js';
import { MAX_KEY_CHARS, RateLimiter, type RateLimitRequest } from '../../../proxy/ratelimit/limiter.js';
import { rateLimitHeaders } from '../../../proxy/ratelimit/headers.js';
import { validateRateLimitBlock, type RateLimitBlock } from '../../../pkg/proxyconfig/ratelimit.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';

const REVIEWS = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const PRODUCTPAGE = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';

describe('ratelimit: token bucket (fixed clock)', () => {
  // [title, params, steps of [time ms, expected allowed, expected remaining]]
  const table: [
    string,
    { requests: number; intervalMs: number; burst: number },
    [number, boolean, number][],
  ][] = [
    [
      '2/s, burst 2: two at once, third refused, one back after 500 ms',
      { requests: 2, intervalMs: 1000, burst: 2 },
      [
        [0, true, 1],
        [0, true, 0],
        [0, false, 0],
        [499, false, 0],
        [500, true, 0],
      ],
    ],
    [
      '1/s burst 5: a long idle refills to the burst, not beyond',
      { requests: 1, intervalMs: 1000, burst: 5 },
      [
        [0, true, 4],
        [1_000_000, true, 4],
        [1_000_000, true, 3],
      ],
    ],
    [
      '100/s: 10 ms per token',
      { requests: 100, intervalMs: 1000, burst: 1 },
      [
        [0, true, 0],
        [5, false, 0],
        [10, true, 0],
      ],
    ],
  ];
  for (const [title, p, steps] of table)
    it(title, () => {
      const b = new TokenBucket(p, 0);
      for (const [t, allowed, remaining] of steps) {
        const r = b.take(t);
        expect([t, r.allowed, r.remaining]).to.deep.equal([t, allowed, remaining]);
      }
    });

  it('says how long until the next token', () => {
    const b = new TokenBucket({ requests: 1, intervalMs: 1000, burst: 1 }, 0);
    b.take(0);
    expect(b.take(250).retryAfterMs).to.equal(750);
  });

  it('a clock that jumps backwards refills nothing and never goes negative', () => {
    const b = new TokenBucket({ requests: 1, intervalMs: 1000, burst: 1 }, 10_000);
    expect(b.take(10_000).allowed).to.equal(true);
    // back an hour: no refill, no negative level
    expect(b.take(10_000 - 3_600_000).allowed).to.equal(false);
    expect(b.level).to.be.at.least(0);
    // measured from the new anchor: one second later one token
    expect(b.take(10_000 - 3_600_000 + 999).allowed).to.equal(false);
    expect(b.take(10_000 - 3_600_000 + 1000).allowed).to.equal(true);
  });

  it('a NaN clock reading refills nothing', () => {
    const b = new TokenBucket({ requests: 1, intervalMs: 1000, burst: 1 }, 0);
    b.take(0);
    expect(b.take(Number.NaN).allowed).to.equal(false);
    expect(b.level).to.be.at.least(0);
    // and the next good reading refills as usual (the NaN did not become the anchor)
    expect(b.take(1000).allowed).to.equal(true);
  });
});

const req = (extra: Partial<RateLimitRequest> = {}): RateLimitRequest => ({
  port: 9080,
  target: '/ratings/1',
  method: 'GET',
  headers: {},
  principal: PRODUCTPAGE,
  claims: null,
  ...extra,
});

/** The seeds' scenario as a block: ratings 100/s overall, reviews → ratings 1/s. */
const seeds: RateLimitBlock = {
  limits: [
    {
      name: 'RateLimit default/ratings',
      budget: { requests: 100, intervalMs: 1000 },
      overrides: [
        {
          name: 'reviews',
          source: { principals: ['*/sa/bookinfo-reviews'] },
          budget: { requests: 1, intervalMs: 1000, per: 'source' },
        },
        {
          name: 'default-ns',
          source: { namespaces: ['default'] },
          budget: { requests: 50, intervalMs: 1000 },
        },
      ],
    },
  ],
};

describe('ratelimit: limiter (fixed clock)', () => {
  let t = 0;
  const limiter = (block: RateLimitBlock, metrics: MetricsRegistry | null = null): RateLimiter => {
    const l = new RateLimiter(metrics, { now: () => t });
    l.update(block);
    return l;
  };
  beforeEach(() => (t = 0));

  it('the first matching override wins (reviews matches both; the first applies)', () => {
    const l = limiter(seeds);
    const v = l.check(req({ principal: REVIEWS }))!;
    expect([v.override, v.budget.requests, v.key]).to.deep.equal(['reviews', 1, REVIEWS]);
    expect(l.check(req({ principal: REVIEWS }))!.allowed).to.equal(false);
    // productpage: the second override, its own budget
    const p = l.check(req())!;
    expect([p.override, p.allowed, p.key]).to.deep.equal(['default-ns', true, 'shared']);
    // plaintext caller: no override matches, the default
    expect(l.check(req({ principal: null }))!.override).to.equal(null);
  });

  it('overrides by header and JWT claim', () => {
    const l = limiter({
      limits: [
        {
          name: 'x',
          budget: { requests: 10, intervalMs: 1000 },
          overrides: [
            {
              name: 'gold',
              source: { claim: { name: 'tier', values: ['gold'] } },
              budget: { requests: 1000, intervalMs: 1000 },
            },
            {
              name: 'beta',
              source: { header: { name: 'X-Beta' } },
              budget: { requests: 1, intervalMs: 1000 },
            },
          ],
        },
      ],
    });
    expect(l.check(req({ claims: { tier: 'gold' }, headers: { 'x-beta': '1' } }))!.override).to.equal('gold');
    expect(l.check(req({ claims: { tier: 'free' }, headers: { 'x-beta': '1' } }))!.override).to.equal('beta');
    expect(l.check(req())!.override).to.equal(null);
  });

  it('ports, path prefixes and methods select which limit applies', () => {
    const l = limiter({
      limits: [
        {
          name: 'api',
          ports: [9080],
          pathPrefixes: ['/api/'],
          methods: ['POST'],
          budget: { requests: 1, intervalMs: 1000 },
        },
      ],
    });
    expect(l.check(req({ target: '/api/x', method: 'POST' }))?.limit).to.equal('api');
    expect(l.check(req({ target: '/api/x', method: 'GET' }))).to.equal(null);
    expect(l.check(req({ target: '/web?/api/', method: 'POST' }))).to.equal(null);
    expect(l.check(req({ target: '/api/x', method: 'POST', port: 8080 }))).to.equal(null);
  });

  it('per-source buckets: each caller has its own budget', () => {
    const l = limiter({ limits: [{ name: 'p', budget: { requests: 1, intervalMs: 1000, per: 'source' } }] });
    expect(l.check(req({ principal: REVIEWS }))!.allowed).to.equal(true);
    expect(l.check(req({ principal: REVIEWS }))!.allowed).to.equal(false);
    expect(l.check(req({ principal: PRODUCTPAGE }))!.allowed).to.equal(true);
  });

  it('a flood of distinct keys stays bounded, evictions are counted', () => {
    const m = new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });
    const l = limiter(
      {
        maxKeysPerLimit: 100,
        limits: [
          {
            name: 'h',
            sourceKey: { kind: 'header', name: 'x-user' },
            budget: { requests: 1, intervalMs: 60_000, per: 'source' },
          },
        ],
      },
      m,
    );
    for (let i = 0; i < 10_000; i++) l.check(req({ headers: { 'x-user': `u${i}` } }));
    const s = l.stats()[0]!;
    expect(s.buckets).to.equal(100);
    expect(s.evictions).to.equal(9_900);
    expect(m.counters.get('weft_proxy_ratelimit_evictions_total')).to.equal(9_900);
  });

  it('the key cap is per limit: per-source overrides and the default share it', () => {
    const l = limiter({
      maxKeysPerLimit: 10,
      limits: [
        {
          name: 'h',
          sourceKey: { kind: 'header', name: 'x-user' },
          overrides: [
            {
              name: 'gold',
              source: { header: { name: 'x-tier', values: ['gold'] } },
              budget: { requests: 1, intervalMs: 60_000, per: 'source' },
            },
          ],
          budget: { requests: 1, intervalMs: 60_000, per: 'source' },
        },
      ],
    });
    for (let i = 0; i < 30; i++) {
      l.check(req({ headers: { 'x-user': `u${i}`, 'x-tier': 'gold' } }));
      l.check(req({ headers: { 'x-user': `v${i}` } }));
    }
    expect(l.stats()[0]!.buckets).to.be.at.most(10);
  });

  it('the least recently used caller is evicted, not one just seen', () => {
    const l = limiter({
      maxKeysPerLimit: 2,
      limits: [{ name: 'p', budget: { requests: 1, intervalMs: 60_000, per: 'source' } }],
    });
    const as = (sa: string): RateLimitRequest => req({ principal: `spiffe://td/ns/a/sa/${sa}` });
    l.check(as('a'));
    l.check(as('b'));
    expect(l.check(as('a'))!.allowed, 'a is limited (its bucket is kept)').to.equal(false);
    l.check(as('c')); // evicts b, the least recently used
    expect(l.check(as('a'))!.allowed, 'a still limited: not evicted').to.equal(false);
    expect(l.check(as('b'))!.allowed, 'b was evicted: a new, full bucket').to.equal(true);
    expect(l.stats()[0]).to.include({ buckets: 2, evictions: 2 });
  });

  it('idle buckets (full again) expire without counting as evictions', () => {
    const l = limiter({
      maxKeysPerLimit: 1000,
      limits: [{ name: 'p', budget: { requests: 1, intervalMs: 1000, per: 'source' } }],
    });
    for (let i = 0; i < 4; i++) l.check(req({ principal: `spiffe://td/ns/a/sa/s${i}` }));
    t = 5000;
    l.check(req({ principal: 'spiffe://td/ns/a/sa/new' }));
    expect(l.stats()[0]).to.include({ buckets: 1, evictions: 0, expired: 4 });
  });

  it('huge header keys are hashed, not stored', () => {
    const l = limiter({
      limits: [
        {
          name: 'h',
          sourceKey: { kind: 'header', name: 'x-user' },
          budget: { requests: 1, intervalMs: 1000, per: 'source' },
        },
      ],
    });
    const v = l.check(req({ headers: { 'x-user': 'a'.repeat(60_000) } }))!;
    expect(v.key.length).to.be.at.most(MAX_KEY_CHARS);
  });

  it('buckets survive a push of the same limit, and reset when it changes', () => {
    const block: RateLimitBlock = { limits: [{ name: 'p', budget: { requests: 1, intervalMs: 1000 } }] };
    const l = limiter(block);
    l.check(req());
    l.update(JSON.parse(JSON.stringify(block)) as RateLimitBlock);
    expect(l.check(req())!.allowed).to.equal(false);
    l.update({ limits: [{ name: 'p', budget: { requests: 2, intervalMs: 1000 } }] });
    expect(l.check(req())!.allowed).to.equal(true);
  });

  it('counts allowed and limited per limit and override', () => {
    const m = new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });
    const l = limiter(seeds, m);
    l.check(req({ principal: REVIEWS }));
    l.check(req({ principal: REVIEWS }));
    const text = m.render();
    expect(text).to.include(
      'weft_proxy_ratelimit_requests_total{limit="RateLimit default/ratings",override="reviews",result="allowed"} 1',
    );
    expect(text).to.include(
      'weft_proxy_ratelimit_requests_total{limit="RateLimit default/ratings",override="reviews",result="limited"} 1',
    );
  });

  it('a limited request carries retry-after and the IETF RateLimit fields', () => {
    const l = limiter(seeds);
    l.check(req({ principal: REVIEWS }));
    t = 250;
    const h = rateLimitHeaders(l.check(req({ principal: REVIEWS }))!);
    expect(h).to.deep.equal({
      'ratelimit-policy': '"RateLimit default/ratings reviews";q=1;w=1',
      ratelimit: '"RateLimit default/ratings reviews";r=0;t=1',
      'retry-after': '1',
    });
  });
});

describe('ratelimit: proxy config block validation', () => {
  const table: [string, unknown, string | null][] = [
    ['the seeds block', seeds, null],
    [
      'zero requests',
      { limits: [{ name: 'a', budget: { requests: 0, intervalMs: 1000 } }] },
      'rateLimits.limits[0].budget.requests',
    ],
    [
      'interval over a day',
      { limits: [{ name: 'a', budget: { requests: 1, intervalMs: 86_400_001 } }] },
      'rateLimits.limits[0].budget.intervalMs',
    ],
    [
      'negative interval',
      { limits: [{ name: 'a', budget: { requests: 1, intervalMs: -5 } }] },
      'rateLimits.limits[0].budget.intervalMs',
    ],
    [
      'bad per',
      { limits: [{ name: 'a', budget: { requests: 1, intervalMs: 1, per: 'pod' } }] },
      'rateLimits.limits[0].budget.per',
    ],
    [
      'bad source key',
      { limits: [{ name: 'a', budget: { requests: 1, intervalMs: 1 }, sourceKey: { kind: 'ip' } }] },
      'rateLimits.limits[0].sourceKey.kind',
    ],
    ['maxKeys 0', { maxKeysPerLimit: 0, limits: [] }, 'rateLimits.maxKeysPerLimit'],
  ];
  for (const [title, block, path] of table)
    it(title, () => {
      const p = validateRateLimitBlock(block);
      if (path === null) expect(p).to.deep.equal([]);
      else expect(p.map((x) => x.path)).to.include(path);
    });
});
