/** Global rate limits' pure parts: the check body, the RESP reply parser, the proxy config fields. */
import { expect } from 'chai';
import { parseCheck, bucketKey } from '../../../pkg/ratelimit/global.js';
import { parseReply, encodeCommand } from '../../../pkg/ratelimit/redis.js';
import { validateRateLimitBlock } from '../../../pkg/proxyconfig/ratelimit.js';
import { redisAddress } from '../../../controlplane/flags.js';

const ok = {
  limit: 'RateLimit demo/r',
  override: null,
  key: 'shared',
  hits: 1,
  budget: { requests: 5, intervalMs: 1000, burst: 5 },
};

describe('global rate limits: check body', () => {
  it('accepts a well-formed check', () => expect(parseCheck(ok)).to.deep.equal(ok));
  for (const [name, body] of [
    ['not an object', []],
    ['empty limit', { ...ok, limit: '' }],
    ['huge key', { ...ok, key: 'k'.repeat(200) }],
    ['zero hits', { ...ok, hits: 0 }],
    ['too many hits', { ...ok, hits: 1001 }],
    ['zero requests', { ...ok, budget: { ...ok.budget, requests: 0 } }],
    ['interval over a day', { ...ok, budget: { ...ok.budget, intervalMs: 86_400_001 } }],
    ['fractional burst', { ...ok, budget: { ...ok.budget, burst: 1.5 } }],
  ] as const)
    it(`refuses ${name} with WEFT_RATELIMIT_REQUEST_INVALID`, () =>
      expect(() => parseCheck(body)).to.throw(/WEFT_RATELIMIT_REQUEST_INVALID|must be|not an object/));
  it('bucket keys are fixed-length and separate namespaces', () => {
    const a = bucketKey('demo', ok);
    expect(a).to.match(/^weft:rl:1:[A-Za-z0-9_-]{43}$/);
    expect(bucketKey('other', ok)).to.not.equal(a);
    expect(bucketKey('demo', { ...ok, limit: 'x'.repeat(320) }).length).to.equal(a.length);
  });
});

describe('global rate limits: RESP parser', () => {
  const p = (s: string) => parseReply(Buffer.from(s), 0);
  it('parses the replies the script gives', () => {
    expect(p('*4\r\n:1\r\n:4\r\n:0\r\n:200\r\n')).to.deep.equal({ value: [1, 4, 0, 200], end: 22 });
    expect(p('+PONG\r\n')).to.deep.equal({ value: 'PONG', end: 7 });
    expect(p('$-1\r\n')).to.deep.equal({ value: null, end: 5 });
  });
  it('waits for more on a partial reply', () => expect(typeof p('*2\r\n:1\r\n')).to.equal('symbol'));
  it('throws on garbage, oversize bulk and arrays', () => {
    expect(() => p('HTTP/1.1 200 OK\r\n')).to.throw(/not a RESP reply/);
    expect(() => p('$999999999\r\n')).to.throw(/bulk length/);
    expect(() => p('*100000\r\n')).to.throw(/array length/);
    expect(() => p(':12x\r\n')).to.throw(/integer/);
  });
  it('encodes commands as RESP arrays of bulk strings', () =>
    expect(encodeCommand(['GET', 'é']).toString()).to.equal('*2\r\n$3\r\nGET\r\n$2\r\né\r\n'));
});

describe('global rate limits: proxy config and weftd flag', () => {
  const limit = { name: 'l', budget: { requests: 1, intervalMs: 1000 } };
  it('accepts scope global with a failure mode', () =>
    expect(
      validateRateLimitBlock({ limits: [{ ...limit, scope: 'global', failureMode: 'deny' }] }),
    ).to.deep.equal([]));
  it('refuses other scopes and modes', () =>
    expect(
      validateRateLimitBlock({ limits: [{ ...limit, scope: 'mesh', failureMode: 'maybe' }] }).map(
        (x) => x.path,
      ),
    ).to.deep.equal(['rateLimits.limits[0].scope', 'rateLimits.limits[0].failureMode']));
  it('--ratelimit-redis takes HOST:PORT', () => {
    expect(redisAddress('redis.weft-system:6379')).to.deep.equal({ host: 'redis.weft-system', port: 6379 });
    expect(redisAddress('[::1]:6380')).to.deep.equal({ host: '::1', port: 6380 });
    expect(() => redisAddress('redis')).to.throw(/HOST:PORT/);
    expect(() => redisAddress('r:0')).to.throw(/HOST:PORT/);
  });
});

describe('global rate limits: the sidecar side without weftd', () => {
  it('a long per-source key is hashed before it is sent (weftd takes 160 characters)', async () => {
    const { RateLimiter } = await import('../../../proxy/ratelimit/limiter.js');
    const sent: string[] = [];
    const l = new RateLimiter(null, {
      global: {
        check: (r) => {
          sent.push(r.key);
          return Promise.resolve({ allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 });
        },
      },
    });
    l.update({
      limits: [{ name: 'g', scope: 'global', budget: { requests: 1, intervalMs: 1000, per: 'source' } }],
    });
    const principal = `spiffe://cluster.local/ns/demo/sa/${'a'.repeat(200)}`;
    const req = { port: 1, target: '/', method: 'GET', headers: {}, principal, claims: null };
    expect((await l.checkAsync(req))!.allowed).to.equal(true);
    expect(sent[0]).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it("a limit's shared buckets are asked for by its sharedKey (a memquota's destination), else 'shared'", async () => {
    const { RateLimiter } = await import('../../../proxy/ratelimit/limiter.js');
    const sent: [string, string | null][] = [];
    const backend = {
      check: (r: { key: string; override: string | null }) => {
        sent.push([r.key, r.override]);
        return Promise.resolve({ allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 });
      },
    };
    const REVIEWS = 'spiffe://cluster.local/ns/demo/sa/reviews';
    const limiterFor = (sharedKey?: string) => {
      const l = new RateLimiter(null, { global: backend });
      l.update({
        limits: [
          {
            name: 'memquota istio-system/handler q',
            scope: 'global',
            budget: { requests: 100, intervalMs: 1000 },
            overrides: [
              {
                name: 'overrides[0]',
                source: { principals: [REVIEWS] },
                budget: { requests: 1, intervalMs: 1000 },
              },
            ],
            ...(sharedKey !== undefined ? { sharedKey } : {}),
          },
        ],
      });
      return l;
    };
    const req = (principal: string | null) => ({
      port: 1,
      target: '/',
      method: 'GET',
      headers: {},
      principal,
      claims: null,
    });
    for (const l of [limiterFor('ratings'), limiterFor('productpage'), limiterFor()]) {
      const v = (await l.checkAsync(req(null)))!;
      await l.checkAsync(req(REVIEWS));
      expect(v.limit).to.equal('memquota istio-system/handler q'); // metrics and the log keep the name
    }
    expect(sent).to.deep.equal([
      ['ratings', null],
      ['ratings', 'overrides[0]'],
      ['productpage', null],
      ['productpage', 'overrides[0]'],
      ['shared', null],
      ['shared', 'overrides[0]'],
    ]);
  });

  it('sharedKey is bounded: empty or longer than 128 characters is refused', () =>
    expect(
      validateRateLimitBlock({
        limits: [
          { name: 'a', sharedKey: '', budget: { requests: 1, intervalMs: 1000 } },
          { name: 'b', sharedKey: 'k'.repeat(129), budget: { requests: 1, intervalMs: 1000 } },
          { name: 'c', sharedKey: 7, budget: { requests: 1, intervalMs: 1000 } },
          { name: 'd', sharedKey: 'k'.repeat(128), budget: { requests: 1, intervalMs: 1000 } },
        ],
      }).map((x) => x.path),
    ).to.deep.equal([
      'rateLimits.limits[0].sharedKey',
      'rateLimits.limits[1].sharedKey',
      'rateLimits.limits[2].sharedKey',
    ]));

  it('no backend configured: the failure mode applies and the error is counted', async () => {
    const { RateLimiter } = await import('../../../proxy/ratelimit/limiter.js');
    const l = new RateLimiter(null);
    l.update({
      limits: [
        { name: 'g', scope: 'global', failureMode: 'deny', budget: { requests: 1, intervalMs: 1000 } },
      ],
    });
    const v = await l.checkAsync({
      port: 1,
      target: '/',
      method: 'GET',
      headers: {},
      principal: null,
      claims: null,
    });
    expect(v!.allowed).to.equal(false);
    expect(v!.take.retryAfterMs).to.equal(1000);
    expect(l.backendErrors).to.equal(1);
  });

  it("a 429 from a global limit says so (Envoy's request_rate_limited), a local one local_rate_limited", async () => {
    const { RateLimiter } = await import('../../../proxy/ratelimit/limiter.js');
    const { limitedReply } = await import('../../../proxy/ratelimit/headers.js');
    const l = new RateLimiter(null);
    const budget = { requests: 1, intervalMs: 1000 };
    const r = { port: 1, target: '/', method: 'GET', headers: {}, principal: null, claims: null };
    l.update({ limits: [{ name: 'g', scope: 'global', failureMode: 'deny', budget }] });
    expect(limitedReply((await l.checkAsync(r))!).body).to.equal('request_rate_limited: g [flag RL]\n');
    l.update({ limits: [{ name: 'l', budget }] });
    l.check(r);
    expect(limitedReply(l.check(r)!).body).to.equal('local_rate_limited: l [flag RL]\n');
  });
});
