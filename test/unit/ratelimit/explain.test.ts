/**
 * `weftctl explain --inbound PORT METHOD URL` (and the admin's explain) names the rate limit and
 * the override a request falls under, from the proxy's own limiter, without taking a token.
 */
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../../cli/main.js';
import { explainInbound } from '../../../proxy/inbound/explain.js';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';

const REVIEWS = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews';
const cfg: ProxyConfig = {
  apiVersion: PROXY_CONFIG_API_VERSION,
  kind: 'ProxyConfig',
  version: 'rl',
  listeners: [],
  clusters: [],
  inbound: { mtls: { mode: 'PERMISSIVE' }, ports: [{ port: 9080, protocol: 'HTTP' }] },
  rateLimits: {
    limits: [
      {
        name: 'RateLimit bookinfo/ratings',
        budget: { requests: 100, intervalMs: 1000 },
        overrides: [
          {
            name: 'reviews',
            source: { principals: ['*/ns/bookinfo/sa/bookinfo-reviews'] },
            budget: { requests: 1, intervalMs: 1000, per: 'source' },
          },
        ],
      },
    ],
  },
};

describe('ratelimit: explain', () => {
  it('names the override a reviews request falls under, and its own bucket', () => {
    const e = explainInbound(cfg, {
      port: 9080,
      peer: REVIEWS,
      request: { method: 'GET', url: '/ratings/0' },
    });
    expect(e.rateLimit).to.deep.equal({
      limit: 'RateLimit bookinfo/ratings',
      override: 'reviews',
      requests: 1,
      intervalMs: 1000,
      burst: 1,
      bucket: REVIEWS,
    });
    expect(e.outcome).to.match(/rate limit RateLimit bookinfo\/ratings reviews applies: 1 per 1000 ms/);
  });

  it('a plaintext caller: the default budget, shared; no request given: nothing said', () => {
    const e = explainInbound(cfg, { port: 9080, request: { method: 'GET', url: '/' } });
    expect(e.rateLimit).to.include({ override: 'default', requests: 100, bucket: 'shared' });
    expect(explainInbound(cfg, { port: 9080 }).rateLimit).to.equal(undefined);
  });

  it('weftctl explain --config prints a ratelimit line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-rl-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, stringify(cfg));
    let out = '';
    const code = await main(
      ['explain', '--config', file, '--inbound', '9080', '--peer', REVIEWS, 'GET', '/ratings/0'],
      {
        stdout: (t) => void (out += t),
        stderr: (t) => void (out += t),
      },
    );
    expect(code, out).to.equal(0);
    expect(out).to.match(/ratelimit\s+RateLimit bookinfo\/ratings, override reviews: 1 per 1000 ms, burst 1/);
  });
});
