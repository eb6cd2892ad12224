/**
 * `POST /v1/ratelimit/check` through weftd's real DiscoveryService on a real HTTPS server (no
 * cluster): off without --ratelimit-redis (503 WEFT_RATELIMIT_DISABLED naming the flag), token
 * first (401 before the body is read), body bounds (413, 400), and with a real redis-server the
 * answer, buckets namespaced by the token's namespace.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { GlobalRateLimitService } from '../../../controlplane/globalratelimit.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import type { KubeRegistry, Snapshot } from '../../../controlplane/registry.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { WeftError } from '../../../pkg/errors/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { GlobalBucketStore, RATELIMIT_CHECK_PATH } from '../../../pkg/ratelimit/global.js';
import { RedisClient } from '../../../pkg/ratelimit/redis.js';

const log = createLogger('test', { silent: true });

const registry = {
  generation: 1,
  events: 0,
  ignoredEvents: 0,
  hasSynced: Promise.resolve(),
  synced: () => true,
  unsynced: () => [],
  snapshot: () => ({ generation: 1, services: [], kubeServices: [] }) as unknown as Snapshot,
  pod: () => undefined,
  onChange: () => undefined,
  onEvent: () => undefined,
  list: () => [],
  changedAt: () => 0,
  validation: () => ({ errors: [], warnings: [] }),
  stop: () => undefined,
} as unknown as KubeRegistry;

const IDENTITIES: Record<string, Identity> = {
  'tok-a': { namespace: 'ns', serviceAccount: 'ratings' },
  'tok-other': { namespace: 'other', serviceAccount: 'ratings' },
};

async function serve(global?: GlobalRateLimitService): Promise<{ server: Server; d: DiscoveryService }> {
  const now = new Date();
  const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  const d = new DiscoveryService({
    registry,
    generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
    authenticate: (token) => {
      const identity = IDENTITIES[token];
      return identity
        ? Promise.resolve({ identity, cached: true })
        : Promise.reject(new WeftError('WEFT_UNAUTHENTICATED', 'token rejected'));
    },
    metrics: createWeftdMetrics(false),
    log,
    debounce: { afterMs: 0, maxMs: 0 },
    pingIntervalMs: 60_000,
    ...(global ? { globalRateLimit: global } : {}),
  });
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, d.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, d };
}

function post(server: Server, body: string, token = 'tok-a'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        path: RATELIMIT_CHECK_PATH,
        method: 'POST',
        rejectUnauthorized: false,
        agent: false,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const check = (over: Record<string, unknown> = {}): string =>
  JSON.stringify({
    limit: 'RateLimit ns/ratings',
    override: null,
    key: 'shared',
    hits: 1,
    budget: { requests: 2, intervalMs: 3_600_000, burst: 2 },
    ...over,
  });

async function stop(s: { server: Server; d: DiscoveryService }): Promise<void> {
  s.d.close();
  s.server.closeAllConnections();
  await new Promise((r) => s.server.close(r));
}

describe('weftd POST /v1/ratelimit/check (real DiscoveryService, real redis-server)', function () {
  this.timeout(60_000);

  it('without --ratelimit-redis: 503 WEFT_RATELIMIT_DISABLED naming the flag', async () => {
    const s = await serve();
    const r = await post(s.server, check());
    expect(r.status).to.equal(503);
    expect(r.body).to.contain('WEFT_RATELIMIT_DISABLED').and.contain('--ratelimit-redis');
    await stop(s);
  });

  describe('with a real redis-server', () => {
    let redis: ChildProcess;
    let client: RedisClient;
    let s: { server: Server; d: DiscoveryService };

    before(async () => {
      const port = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const p = (probe.address() as AddressInfo).port;
          probe.close(() => resolve(p));
        });
      });
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      client = new RedisClient({
        host: '127.0.0.1',
        port,
        timeoutMs: 300,
        backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
      });
      for (let i = 0; i < 100 && (await client.command(['PING']).catch(() => null)) !== 'PONG'; i++)
        await new Promise((r) => setTimeout(r, 50));
      s = await serve(new GlobalRateLimitService(new GlobalBucketStore(client), log));
    });
    after(async () => {
      await stop(s);
      client.close();
      if (redis.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    });

    it('answers the bucket; a second namespace has its own bucket of the same name', async () => {
      const answers = [];
      for (let i = 0; i < 3; i++)
        answers.push(JSON.parse((await post(s.server, check())).body) as { allowed: boolean });
      expect(answers.map((a) => a.allowed)).to.deep.equal([true, true, false]);
      const other = await post(s.server, check(), 'tok-other');
      expect(JSON.parse(other.body)).to.include({ allowed: true });
    });

    it('refuses a bad token (401), a bad body (400) and a body over 4 KiB (413)', async () => {
      expect((await post(s.server, check(), 'nope')).status).to.equal(401);
      const bad = await post(s.server, check({ hits: 0 }));
      expect(bad.status).to.equal(400);
      expect(bad.body).to.contain('WEFT_RATELIMIT_REQUEST_INVALID');
      expect((await post(s.server, '{not json')).status).to.equal(400);
      expect((await post(s.server, check({ key: 'k'.repeat(5000) }))).status).to.equal(413);
    });

    it('Redis killed: 503 WEFT_RATELIMIT_BACKEND within the deadline, weftd keeps serving', async () => {
      redis.kill('SIGKILL');
      await new Promise((r) => redis.once('exit', r));
      const t0 = performance.now();
      const r = await post(s.server, check());
      expect(performance.now() - t0).to.be.below(3000);
      expect(r.status).to.equal(503);
      expect(r.body).to.contain('WEFT_RATELIMIT_BACKEND');
      expect((await post(s.server, check())).status).to.equal(503);
    });
  });
});
