/**
 * Global rate limits against a real `redis-server` process (Debian's; hack/ensure-deps.sh),
 * started on a free loopback port and killed by PID: weftd's real check handler
 * (controlplane/globalratelimit.ts) behind an HTTP server, three sidecar limiters
 * (proxy/ratelimit/limiter.ts with their own GlobalClient) sharing one budget under concurrent
 * load; Redis killed (fail open counts errors, fail closed denies); a peer answering garbage or
 * never answering (bounded by the deadlines, no crash). Needs no cluster.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../support/ports.js';
import { RedisClient } from '../../../pkg/ratelimit/redis.js';
import { GlobalBucketStore, type GlobalCheckRequest } from '../../../pkg/ratelimit/global.js';
import { GlobalRateLimitService } from '../../../controlplane/globalratelimit.js';
import { sendError } from '../../../controlplane/discovery.js';
import { GlobalClient } from '../../../proxy/ratelimit/global.js';
import { RateLimiter, type RateLimitRequest } from '../../../proxy/ratelimit/limiter.js';
import type { LocalRateLimit } from '../../../pkg/proxyconfig/ratelimit.js';
import { createLogger } from '../../../pkg/log/index.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';

const log = createLogger('global-rl-test', { silent: true });

async function startRedis(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
    ],
    { stdio: 'ignore' },
  );
  const probe = new RedisClient({
    host: '127.0.0.1',
    port,
    timeoutMs: 200,
    backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
  });
  for (let i = 0; i < 100; i++) {
    if ((await probe.command(['PING']).catch(() => null)) === 'PONG') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  probe.close();
  return { child, port };
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(child.pid!, 'SIGKILL');
  });
}

/** weftd's handler behind plain HTTP, every caller authenticated as namespace `demo`. */
async function startWeftd(store: GlobalBucketStore): Promise<{ server: http.Server; port: number }> {
  const svc = new GlobalRateLimitService(store, log);
  const server = http.createServer((req, res) => {
    svc
      .handle(req, res, () => Promise.resolve({ namespace: 'demo', serviceAccount: 'ratings' }))
      .catch((err: unknown) => sendError(res, err));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

const rule = (over: Partial<LocalRateLimit> = {}): LocalRateLimit => ({
  name: `RateLimit demo/ratings-${Math.random().toString(36).slice(2)}`,
  scope: 'global',
  budget: { requests: 300, intervalMs: 3_600_000 },
  ...over,
});

const request: RateLimitRequest = {
  port: 9080,
  target: '/ratings/1',
  method: 'GET',
  headers: {},
  principal: 'spiffe://cluster.local/ns/demo/sa/reviews',
  claims: null,
};

describe('global rate limits with a real redis-server', function () {
  this.timeout(60_000);
  let redis: { child: ChildProcess; port: number };
  let client: RedisClient;
  let weftd: { server: http.Server; port: number };
  const sidecars: GlobalClient[] = [];

  before(async () => {
    redis = await startRedis();
    client = new RedisClient({ host: '127.0.0.1', port: redis.port, timeoutMs: 300 });
    weftd = await startWeftd(new GlobalBucketStore(client));
  });
  after(async () => {
    for (const s of sidecars) s.close();
    client.close();
    weftd.server.closeAllConnections();
    await new Promise<void>((r) => weftd.server.close(() => r()));
    await kill(redis.child);
  });

  const limiter = (
    limit: LocalRateLimit,
    timeoutMs = 1_000,
  ): { rl: RateLimiter; metrics: MetricsRegistry } => {
    const g = new GlobalClient({
      host: '127.0.0.1',
      port: weftd.port,
      plaintext: true,
      token: () => 't',
      timeoutMs,
    });
    sidecars.push(g);
    const metrics = new MetricsRegistry({ workload: 'w', namespace: 'demo', app: 'a', version: 'v' });
    const rl = new RateLimiter(metrics, { global: g, log });
    rl.update({ limits: [limit] });
    return { rl, metrics };
  };

  it('the token bucket arithmetic on a pinned clock (Redis Lua)', async () => {
    let now = 1_000_000;
    const store = new GlobalBucketStore(client, () => now);
    const req: GlobalCheckRequest = {
      limit: 'RateLimit demo/arith',
      override: null,
      key: 'shared',
      hits: 1,
      budget: { requests: 10, intervalMs: 1000, burst: 2 },
    };
    const takes = [];
    for (let i = 0; i < 3; i++) takes.push(await store.take('demo', req));
    expect(takes.map((t) => t.allowed)).to.deep.equal([true, true, false]);
    expect(takes[2]).to.include({ remaining: 0, retryAfterMs: 100, resetMs: 200 });
    now += 100; // one token (10/s)
    expect((await store.take('demo', req)).allowed).to.equal(true);
    expect((await store.take('demo', req)).allowed).to.equal(false);
    now -= 50_000; // a clock stepping back refills nothing
    expect((await store.take('demo', req)).allowed).to.equal(false);
    now += 1_000_000; // a big step forward refills only to burst
    expect((await store.take('demo', req)).remaining).to.equal(1);
    // another namespace's bucket of the same name is its own
    expect((await store.take('other', { ...req, hits: 2 })).allowed).to.equal(true);
  });

  it('one budget across three sidecar limiters under concurrent load (±10%)', async () => {
    const limit = rule();
    const three = [limiter(limit), limiter(limit), limiter(limit)];
    let allowed = 0;
    let limited = 0;
    // 3 × 300 requests, 16 in flight per sidecar: three times the budget
    await Promise.all(
      three.map(async ({ rl }) => {
        let left = 300;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (left-- > 0) {
              const v = await rl.checkAsync(request);
              if (v!.allowed) allowed++;
              else limited++;
            }
          }),
        );
      }),
    );
    const errors = three.reduce((n, { rl }) => n + rl.backendErrors, 0);
    expect(errors).to.equal(0);
    expect(allowed + limited).to.equal(900);
    expect(allowed).to.be.within(270, 330);
    expect(three.every(({ rl }) => rl.stats()[0]!.buckets === 0)).to.equal(true); // no local buckets
  });

  it('Redis killed: fail open allows and counts errors, fail closed denies; both within the deadline', async () => {
    const open = limiter(rule());
    const closed = limiter(rule({ failureMode: 'deny' }));
    expect((await open.rl.checkAsync(request))!.allowed).to.equal(true);
    await kill(redis.child);
    const t0 = performance.now();
    const a = await open.rl.checkAsync(request);
    const b = await closed.rl.checkAsync(request);
    expect(performance.now() - t0).to.be.below(5_000);
    expect(a!.allowed).to.equal(true);
    expect(b!.allowed).to.equal(false);
    expect(b!.take.retryAfterMs).to.be.greaterThan(0);
    expect(open.rl.backendErrors).to.equal(1);
    expect(closed.rl.backendErrors).to.equal(1);
    expect(open.metrics.counters.get('weft_proxy_ratelimit_backend_errors_total')).to.equal(1);
    // Redis back: checks work again after the reconnect backoff
    redis = await startRedis();
    const again = new RedisClient({ host: '127.0.0.1', port: redis.port, timeoutMs: 300 });
    const w2 = await startWeftd(new GlobalBucketStore(again));
    const g = new GlobalClient({ host: '127.0.0.1', port: w2.port, plaintext: true, token: () => 't' });
    const rl = new RateLimiter(null, { global: g });
    rl.update({ limits: [rule({ failureMode: 'deny' })] });
    expect((await rl.checkAsync(request))!.allowed).to.equal(true);
    g.close();
    again.close();
    w2.server.closeAllConnections();
    w2.server.close();
  });

  for (const [name, answer] of [
    ['garbage', (s: net.Socket) => s.on('data', () => s.write('HTTP/1.1 200 OK\r\n\r\n'))],
    [
      'an endless reply',
      (s: net.Socket) => s.on('data', () => s.write(`$999999999\r\n${'x'.repeat(70_000)}`)),
    ],
    ['nothing (hangs)', () => undefined],
  ] as const)
    it(`a "Redis" answering ${name}: bounded by the deadline, no crash`, async () => {
      const fake = net.createServer((s) => {
        answer(s);
        s.on('error', () => undefined);
      });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      const bad = new RedisClient({
        host: '127.0.0.1',
        port: (fake.address() as AddressInfo).port,
        timeoutMs: 200,
      });
      const store = new GlobalBucketStore(bad);
      const req: GlobalCheckRequest = {
        limit: 'x',
        override: null,
        key: 'shared',
        hits: 1,
        budget: { requests: 1, intervalMs: 1000, burst: 1 },
      };
      const t0 = performance.now();
      const err = await store.take('demo', req).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(Error);
      expect(performance.now() - t0).to.be.below(1_500);
      bad.close();
      fake.close();
    });

  it('a weftd that hangs: the sidecar gives up at its 50 ms deadline and applies the failure mode', async () => {
    const hang = http.createServer(() => undefined);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const g = new GlobalClient({
      host: '127.0.0.1',
      port: (hang.address() as AddressInfo).port,
      plaintext: true,
      token: () => 't',
    });
    const rl = new RateLimiter(null, { global: g });
    rl.update({ limits: [rule({ failureMode: 'deny' })] });
    const t0 = performance.now();
    const v = await rl.checkAsync(request);
    expect(performance.now() - t0).to.be.below(1_000);
    expect(v!.allowed).to.equal(false);
    expect(rl.backendErrors).to.equal(1);
    g.close();
    hang.closeAllConnections();
    hang.close();
  });
});
