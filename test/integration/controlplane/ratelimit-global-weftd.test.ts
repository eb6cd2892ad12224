/**
 * Global rate limits on the control-plane side: weftd (in-process) started with
 * `--ratelimit-redis` pointing at a real `redis-server` (free loopback port, killed by PID), on a
 * real API server. A `scope: global` RateLimit is Enforced True Global and reaches the ratings
 * sidecar as a global limit with its failure mode; the seeds' memquota becomes global; and the
 * sidecar's GlobalClient, with the ratings pod's real projected token (TokenReview), gets its
 * tokens from weftd's discovery port: the budget is shared, not per client.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import type { MemQuota } from '../../../pkg/api/memquota.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { RedisClient } from '../../../pkg/ratelimit/redis.js';
import { GlobalClient } from '../../../proxy/ratelimit/global.js';
import { RateLimiter } from '../../../proxy/ratelimit/limiter.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { FakeProxy, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });

describe('weftd with --ratelimit-redis (real API server, real redis-server)', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let ratings: FakeProxy;
  let token: string;
  let redis: ChildProcess;

  before(async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    const probe = new RedisClient({
      host: '127.0.0.1',
      port,
      timeoutMs: 200,
      backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
    });
    for (let i = 0; i < 100 && (await probe.command(['PING']).catch(() => null)) !== 'PONG'; i++)
      await new Promise((r) => setTimeout(r, 50));
    probe.close();
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('rlglobal');
    dir = weftdServingDir('weftd-rlglobal');
    for (const sa of ['ratings', 'reviews'])
      await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } });
    await kube.create(pod(ns, 'ratings-1', { app: 'ratings' }, 'ratings'));
    await kube.create(pod(ns, 'reviews-1', { app: 'reviews' }, 'reviews'));
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ratings', namespace: ns },
      spec: { selector: { app: 'ratings' }, ports: [{ name: 'http', port: 9080 }] },
    });
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      {
        flags: { rateLimitRedis: { host: '127.0.0.1', port } },
        mesh: structuredClone(DEFAULT_MESH),
        pingIntervalMs: 300,
        status: {
          lease: { namespace: ns, identity: 'weftd-rlglobal' },
          debounce: { afterMs: 20, maxMs: 200 },
        },
      },
    );
    token = await requestToken(kube, ns, 'ratings', { audiences: [TOKEN_AUDIENCE] });
    ratings = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, 'ratings-1');
  });

  after(async () => {
    ratings?.client.stop();
    await weftd?.stop();
    if (redis?.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const enforced = async (
    kind: string,
    apiVersion: string,
    name: string,
  ): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 150; i++) {
      const o = await kube.get({ apiVersion, kind, name, namespace: ns });
      const c = (
        (o?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? []
      ).find((x) => x.type === 'Enforced');
      if (c) return c;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`no Enforced condition on ${kind} ${name}`);
  };

  it('scope global: Enforced True Global, pushed as a global limit with its failure mode, tokens from weftd', async () => {
    await kube.create({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'RateLimit',
      metadata: { name: 'global', namespace: ns },
      spec: {
        scope: 'global',
        failureMode: 'deny',
        targetHost: 'ratings',
        limit: { requests: 4, unit: 'hour' },
      },
    });
    expect(await enforced('RateLimit', 'mesh.weft.dev/v1alpha1', 'global')).to.include({
      status: 'True',
      reason: 'Global',
    });
    for (let i = 0; i < 100 && !(ratings.latest?.rateLimits?.limits ?? []).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    const limit = ratings.latest!.rateLimits!.limits.find((l) => l.name === `RateLimit ${ns}/global`)!;
    expect(limit).to.include({ scope: 'global', failureMode: 'deny' });
    // two sidecar limiters (two replicas) with the pod's real token share the 4 tokens
    const clients = [0, 1].map(
      () =>
        new GlobalClient({
          host: '127.0.0.1',
          port: weftd.discoveryPort,
          servername: undefined,
          ca: () => readFileSync(join(dir, 'ca.crt'), 'utf8'),
          token: () => token,
          timeoutMs: 2_000,
        }),
    );
    const limiters = clients.map((g) => {
      const l = new RateLimiter(null, { global: g });
      l.update(ratings.latest!.rateLimits);
      return l;
    });
    const req = { port: 9080, target: '/', method: 'GET', headers: {}, principal: null, claims: null };
    const results: boolean[] = [];
    for (let i = 0; i < 8; i++) results.push((await limiters[i % 2]!.checkAsync(req))!.allowed);
    expect(results.filter(Boolean)).to.have.length(4);
    expect(limiters.map((l) => l.backendErrors)).to.deep.equal([0, 0]);
    for (const g of clients) g.close();
  });

  it('memquota is global with the backend: Enforced True Global, its limits pushed as global', async () => {
    const seeds: MemQuota = {
      apiVersion: 'config.istio.io/v1alpha2',
      kind: 'memquota',
      metadata: { name: 'handler', namespace: ns },
      spec: {
        quotas: [
          {
            name: 'requestcount.instance.istio-system',
            maxAmount: 5000,
            validDuration: '1s',
            overrides: [{ dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' }],
          },
        ],
      },
    };
    await kube.create(seeds as never);
    expect(await enforced('memquota', 'config.istio.io/v1alpha2', 'handler')).to.include({
      status: 'True',
      reason: 'Global',
    });
    for (let i = 0; i < 100; i++) {
      if ((ratings.latest?.rateLimits?.limits ?? []).some((l) => l.name.startsWith('memquota'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const mq = ratings.latest!.rateLimits!.limits.filter((l) => l.name.startsWith('memquota'));
    expect(mq).to.have.length.greaterThan(0);
    expect(mq.every((l) => l.scope === 'global')).to.equal(true);
  });
});
