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
