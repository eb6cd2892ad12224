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
import { explainRequest, explainText } from '../../../cli/explainer.js';
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
      scope: 'local',
      requests: 1,
      intervalMs: 1000,
      burst: 1,
      bucket: REVIEWS,
      key: `mTLS principal ${REVIEWS}`,
    });
    expect(e.outcome).to.match(/rate limit RateLimit bookinfo\/ratings reviews applies: 1 per 1000 ms/);
  });

  it('a plaintext caller: the default budget, shared; no request given: nothing said', () => {
    const e = explainInbound(cfg, { port: 9080, request: { method: 'GET', url: '/' } });
    expect(e.rateLimit).to.include({ override: 'default', requests: 100, bucket: 'shared' });
    expect(explainInbound(cfg, { port: 9080 }).rateLimit).to.equal(undefined);
  });

  it("a memquota's shared bucket is named by its destination (sharedKey), the limit by the quota", () => {
    const mqCfg: ProxyConfig = {
      ...cfg,
      rateLimits: {
        limits: [
          {
            name: 'memquota istio-system/handler q',
            scope: 'global',
            sharedKey: 'ratings',
            budget: { requests: 100, intervalMs: 1000 },
          },
        ],
      },
    };
    const e = explainInbound(mqCfg, { port: 9080, peer: REVIEWS, request: { method: 'GET', url: '/' } });
    expect(e.rateLimit).to.include({ limit: 'memquota istio-system/handler q', bucket: 'ratings' });
    expect(e.outcome).to.match(/from one bucket shared by these callers, keyed ratings;/);
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

const run = async (argv: string[]): Promise<{ code: number; out: string }> => {
  let out = '';
  const code = await main(argv, { stdout: (t) => void (out += t), stderr: (t) => void (out += t) });
  return { code, out };
};
const writeConfig = (c: ProxyConfig): string => {
  const file = join(mkdtempSync(join(tmpdir(), 'weft-rl-')), 'config.yaml');
  writeFileSync(file, stringify(c));
  return file;
};

describe('ratelimit: explain a global limit and a gateway listener limit', () => {
  const globalCfg: ProxyConfig = {
    ...cfg,
    rateLimits: {
      limits: [
        {
          name: 'RateLimit bookinfo/ratings',
          scope: 'global',
          failureMode: 'deny',
          budget: { requests: 100, intervalMs: 1000 },
        },
      ],
    },
  };

  it("scope global: where the budget is kept (weftd's Redis, its address when weftd says) and the failure mode", () => {
    const e = explainInbound(globalCfg, {
      port: 9080,
      request: { method: 'GET', url: '/' },
      rateLimitRedis: 'redis.weft-system:6379',
    });
    expect(e.rateLimit).to.include({ scope: 'global', failureMode: 'deny' });
    expect(e.rateLimit!.backend).to.include('redis.weft-system:6379');
    expect(e.outcome).to.match(
      /one budget across every pod, kept in weftd's Redis at redis\.weft-system:6379.*429 \(failureMode deny\)/,
    );
  });

  it('weftctl explain --inbound prints scope global and the failure mode', async () => {
    const r = await run([
      'explain',
      '--config',
      writeConfig(globalCfg),
      '--inbound',
      '9080',
      'GET',
      '/ratings/0',
    ]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(
      /ratelimit\s+RateLimit bookinfo\/ratings, override default: 100 per 1000 ms, burst 100, bucket shared, scope global\n/,
    );
    expect(r.out).to.match(
      /\s+global: one budget in weftd's Redis \(weftd --ratelimit-redis\).*; failureMode deny\n/,
    );
  });

  const gateway = (numTrustedProxies: number): ProxyConfig => ({
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'gw',
    listeners: [
      {
        name: 'http-8080',
        protocol: 'HTTP',
        address: '0.0.0.0',
        port: 8080,
        virtualHosts: [
          {
            name: 'shop',
            domains: ['shop.example.com'],
            routes: [{ action: { type: 'route', destinations: [{ cluster: 'shop', weight: 100 }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: 'shop', endpoints: [{ address: '10.0.0.9', port: 80 }] }],
    rateLimits: {
      ...(numTrustedProxies > 0 ? { numTrustedProxies } : {}),
      limits: [
        {
          name: 'RateLimit istio-system/ingress',
          ports: [8080],
          sourceKey: { kind: 'clientIP' },
          budget: { requests: 10, intervalMs: 1000, per: 'source' },
        },
      ],
    },
  });

  it('a gateway: the client address key, and that x-forwarded-for is ignored without trusted proxies', () => {
    const input = {
      method: 'GET',
      url: 'http://shop.example.com:8080/',
      headers: [['x-forwarded-for', '1.2.3.4']] as [string, string][],
      listenerRateLimits: true,
      from: '198.51.100.7',
    };
    const r = explainRequest(gateway(0), input);
    expect(r.rateLimit).to.include({ bucket: '198.51.100.7', scope: 'local' });
    expect(r.rateLimit!.key).to.match(/peer \(x-forwarded-for is ignored: no trusted proxies in front\)/);
    const behind = explainRequest(gateway(1), input);
    expect(behind.rateLimit).to.include({ bucket: '1.2.3.4' });
    expect(explainText(behind)).to.match(
      /key: client address 1\.2\.3\.4: entry 1 from the right of x-forwarded-for/,
    );
    // a sidecar's block is its inbound side's: an outbound routing explain names no limit
    expect(explainRequest(gateway(0), { ...input, listenerRateLimits: false }).rateLimit).to.equal(undefined);
  });

  it("weftctl explain --config --from prints the gateway's ratelimit lines", async () => {
    const r = await run([
      'explain',
      '--config',
      writeConfig(gateway(0)),
      '--from',
      '198.51.100.7',
      'http://shop.example.com:8080/',
    ]);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.include('bucket 198.51.100.7, scope local');
    expect(r.out).to.include("key: client address 198.51.100.7: the connection's peer");
  });
});
