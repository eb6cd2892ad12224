/**
 * Rate limits on a gateway listener (ADR 0021) end to end: a real `proxy gateway` process,
 * configured by a fake weftd over the real wire protocol with what weftd makes of a RateLimit
 * selecting the gateway pods (controlplane/ratelimitpush.ts), in front of a real upstream.
 * Clients come from distinct loopback addresses (127.0.0.2, 127.0.0.3) so the peer address is
 * real. Checks per-client-address buckets, that a forged x-forwarded-for buys nothing without
 * trusted proxies and tells clients apart behind one, the 429 and its headers, and a global
 * limit through weftd's real check handler backed by a real `redis-server` (fail closed when it
 * is killed).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import type { RateLimit, RateLimitSpec } from '../../../pkg/api/ratelimit.js';
import { withRateLimits } from '../../../controlplane/ratelimitpush.js';
import type { Snapshot } from '../../../controlplane/registry.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { sleep, upstream, type Upstream } from './helpers.js';
import { waitFor } from '../../support/wait.js';
import { freePort } from '../../support/ports.js';
import { startGatewayProcess, type ProxyProcess } from '../../support/proxy-process.js';
import { RedisClient } from '../../../pkg/ratelimit/redis.js';
import { GlobalBucketStore, RATELIMIT_CHECK_PATH } from '../../../pkg/ratelimit/global.js';
import { GlobalRateLimitService } from '../../../controlplane/globalratelimit.js';
import { sendError } from '../../../controlplane/discovery.js';
import { createLogger } from '../../../pkg/log/index.js';

const log = createLogger('test', { silent: true });

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request from `localAddress` (a loopback address of its own: the gateway's peer address). */
function from(localAddress: string, port: number, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        path: '/',
        agent: false,
        headers: { host: 'shop.example.com', ...headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    r.on('error', reject);
    r.end();
  });
}

describe('proxy gateway: rate limits on a listener (real process, real redis-server)', function () {
  this.timeout(180_000);
  let app: Upstream;
  let weftd: FakeWeftd;
  let gateway: ProxyProcess;
  let redis: ChildProcess;
  let redisClient: RedisClient;
  let port: number;
  let version = 0;

  const rl = (name: string, spec: Partial<RateLimitSpec>): RateLimit => ({
    apiVersion: 'mesh.weft.dev/v1alpha1',
    kind: 'RateLimit',
    metadata: { name, namespace: 'istio-system' },
    spec: {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      ports: [port],
      // a long interval: nothing refills during the test
      limit: { requests: 2, unit: 'hour', per: 'source' },
      sourceKey: { by: 'clientIP' },
      ...spec,
    },
  });

  /** What weftd pushes to the gateway pod for these RateLimits (the gateway's own part by hand). */
  const push = async (rateLimits: RateLimit[], numTrustedProxies = 0): Promise<void> => {
    const v = `g${++version}`;
    const base: ProxyConfig = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: v,
      listeners: [
        {
          name: `0.0.0.0_${port}`,
          protocol: 'HTTP',
          address: '127.0.0.1',
          port,
          virtualHosts: [
            {
              name: 'shop',
              domains: ['shop.example.com'],
              routes: [{ action: { type: 'route', destinations: [{ cluster: 'shop', weight: 100 }] } }],
            },
          ],
        },
      ],
      clusters: [{ name: 'shop', endpoints: [{ address: '127.0.0.1', port: app.port }] }],
      telemetry: { accessLog: true, workload: { name: 'ingressgateway', namespace: 'istio-system' } },
    };
    const snapshot = {
      generation: version,
      services: [],
      kubeServices: [],
      virtualServices: [],
      destinationRules: [],
      serviceEntries: [],
      gateways: [],
      peerAuthentications: [],
      rateLimits,
    } as Snapshot;
    const pod = { name: 'gw-1', namespace: 'istio-system', labels: { istio: 'ingressgateway' } };
    const g = withRateLimits(
      { config: base, version: v, encode: () => '' },
      'gateway',
      snapshot,
      pod,
      'cluster.local',
      log,
      {
        globalRateLimits: true,
        gatewayNumTrustedProxies: numTrustedProxies,
      },
    );
    expect(g.config.rateLimits, 'weftd gave the gateway a block').to.not.equal(undefined);
    weftd.push(g.config);
    await waitFor('the gateway applied it', () => gateway.log().includes(`"version":"${g.version}"`));
  };

  before(async () => {
    const redisPort = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    redisClient = new RedisClient({
      host: '127.0.0.1',
      port: redisPort,
      timeoutMs: 300,
      backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
    });
    await waitFor(
      'redis answers',
      async () => (await redisClient.command(['PING']).catch(() => null)) === 'PONG',
    );
    app = await upstream('shop');
    port = await freePort();
    weftd = await fakeWeftd(null);
    const svc = new GlobalRateLimitService(new GlobalBucketStore(redisClient), log);
    weftd.routes.set(RATELIMIT_CHECK_PATH, (req, res) => {
      const id = weftd.identities.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      void svc
        .handle(req, res, () => (id ? Promise.resolve(id) : Promise.reject(new Error('bad token'))))
        .catch((err: unknown) => sendError(res, err));
    });
    gateway = await startGatewayProcess(weftd, {}, ['--ratelimit-timeout-ms', '2000']);
  });

  after(async () => {
    gateway?.child.kill('SIGKILL');
    redisClient?.close();
    if (redis?.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    await weftd?.close();
    await app?.close();
  });

  it('per client address: a third request from one address is 429 with the sidecar headers; another address is not limited', async () => {
    await push([rl('per-client', {})]);
    const a1 = await from('127.0.0.2', port);
    expect(a1.status).to.equal(200);
    expect(a1.headers['ratelimit-policy']).to.equal('"RateLimit istio-system/per-client";q=2;w=3600');
    expect(a1.headers.ratelimit).to.match(/^"RateLimit istio-system\/per-client";r=1;t=\d+$/);
    expect((await from('127.0.0.2', port)).status).to.equal(200);
    const limited = await from('127.0.0.2', port);
    expect(limited.status).to.equal(429);
    expect(limited.headers['x-weft-response-flags']).to.equal('RL');
    expect(Number(limited.headers['retry-after'])).to.be.greaterThan(0);
    expect(limited.headers.ratelimit).to.match(/;r=0;/);
    expect(limited.body).to.equal('local_rate_limited: RateLimit istio-system/per-client [flag RL]\n');
    expect((await from('127.0.0.3', port)).status).to.equal(200);
    await waitFor('access log names the limit', () =>
      gateway
        .log()
        .split('\n')
        .some((l) => l.includes('"ratelimit_result":"limited"') && l.includes('"response_code":429')),
    );
  });

  it('without trusted proxies a forged x-forwarded-for per request buys nothing', async () => {
    await push([rl('forged', {})]);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await from('127.0.0.4', port, { 'x-forwarded-for': `198.51.100.${i}` })).status);
    expect(statuses).to.deep.equal([200, 200, 429, 429]);
  });

  it('behind one trusted proxy the address it appended to x-forwarded-for is the key', async () => {
    await push([rl('behind-lb', {})], 1);
    const lb = '127.0.0.5';
    const viaLb = (client: string, forged = ''): Promise<Reply> =>
      from(lb, port, { 'x-forwarded-for': `${forged}${client}` });
    expect((await viaLb('203.0.113.1')).status).to.equal(200);
    expect((await viaLb('203.0.113.1', '1.1.1.1, ')).status).to.equal(200);
    expect((await viaLb('203.0.113.1', '2.2.2.2, ')).status).to.equal(429);
    expect((await viaLb('203.0.113.2')).status).to.equal(200);
    // 1,000 forged entries in front: still the LB's entry, at no cost
    const long = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(', ');
    expect((await viaLb('203.0.113.2', `${long}, `)).status).to.equal(200);
    expect((await viaLb('203.0.113.2', `${long}, `)).status).to.equal(429);
  });

  it('per header value, with an absurd value bounded', async () => {
    await push([rl('per-key', { sourceKey: { by: 'header', name: 'x-api-key' } })]);
    const huge = 'k'.repeat(8000);
    expect((await from('127.0.0.6', port, { 'x-api-key': huge })).status).to.equal(200);
    expect((await from('127.0.0.7', port, { 'x-api-key': huge })).status).to.equal(200);
    expect((await from('127.0.0.8', port, { 'x-api-key': huge })).status).to.equal(429);
    expect((await from('127.0.0.8', port, { 'x-api-key': 'other' })).status).to.equal(200);
  });

  it('scope global: the per-client budget is kept in Redis; killed Redis with failureMode deny is a 429', async () => {
    await push([rl('global-per-client', { scope: 'global', failureMode: 'deny' })]);
    expect((await from('127.0.0.9', port)).status).to.equal(200);
    expect((await from('127.0.0.9', port)).status).to.equal(200);
    const limited = await from('127.0.0.9', port);
    expect(limited.status).to.equal(429);
    expect(limited.headers['ratelimit-policy']).to.equal(
      '"RateLimit istio-system/global-per-client";q=2;w=3600',
    );
    const keys = (await redisClient.command(['KEYS', 'weft:rl:1:*'])) as string[];
    expect(keys.length).to.be.greaterThan(0);
    redis.kill('SIGKILL');
    await sleep(200);
    const down = await from('127.0.0.10', port);
    expect(down.status).to.equal(429);
    expect(down.headers['x-weft-response-flags']).to.equal('RL');
  });
});
