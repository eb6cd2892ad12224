/**
 * Global rate limits end to end: THREE real `proxy sidecar` processes (three replicas of
 * ratings), configured by a fake weftd over the real wire protocol with what weftd makes of a
 * `scope: global` RateLimit when it runs the global backend (rateLimitsFor with
 * globalRateLimits), and weftd's real check handler (controlplane/globalratelimit.ts) on the fake
 * weftd's HTTPS port, backed by a real `redis-server` on a free loopback port (killed by PID).
 * Callers on mesh mTLS. Checks that the three share one budget under concurrent load, the 429
 * headers, that two destinations under one memquota (a fourth sidecar, for productpage, behind a
 * second fake weftd on the same Redis) keep their own budgets, and the failure mode when Redis is
 * killed (fail open counts backend errors).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import type http from 'node:http';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import type { RateLimit } from '../../../pkg/api/ratelimit.js';
import type { MemQuota } from '../../../pkg/api/memquota.js';
import type { RateLimitBlock } from '../../../pkg/proxyconfig/ratelimit.js';
import { rateLimitsFor } from '../../../pkg/translate/ratelimit.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { meshRequest, startSidecar, type Proc } from './ratelimit-sidecar.js';
import { waitFor } from '../../support/wait.js';
import { freePort } from '../../support/ports.js';

import { request, sleep, upstream, type Upstream } from './helpers.js';
import { workloadCert } from './mesh-identity.js';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import { RedisClient } from '../../../pkg/ratelimit/redis.js';
import { GlobalBucketStore, RATELIMIT_CHECK_PATH } from '../../../pkg/ratelimit/global.js';
import { GlobalRateLimitService } from '../../../controlplane/globalratelimit.js';
import { sendError } from '../../../controlplane/discovery.js';
import { createLogger } from '../../../pkg/log/index.js';

// the budget test measures sharing, not latency: a loaded 2-core CI node misses 50 ms and fail-open
// would count timeouts as allowed (the failure-mode test below keeps it)
const SIDECAR_ARGS = ['--ratelimit-timeout-ms', '2000'];

const rl = (name: string, failureMode: 'allow' | 'deny'): RateLimit => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'RateLimit',
  metadata: { name, namespace: 'bookinfo' },
  spec: {
    scope: 'global',
    failureMode,
    selector: { matchLabels: { app: 'ratings' } },
    // a long interval: what refills during the test is negligible, so the bound is tight
    limit: { requests: 60, unit: 'hour' },
  },
});

describe('proxy sidecar: global rate limits across three replicas (real processes, real redis-server)', function () {
  this.timeout(180_000);
  let app: Upstream;
  let weftd: FakeWeftd;
  let redis: ChildProcess;
  let redisClient: RedisClient;
  const procs: Proc[] = [];
  let productpage: KeyPairPem;

  const globalBlock = (app: string, rest: { rateLimits?: RateLimit[]; memquotas?: MemQuota[] }) => {
    const { block, warnings } = rateLimitsFor({
      pod: { namespace: 'bookinfo', labels: { app }, serviceAccount: `bookinfo-${app}` },
      rateLimits: rest.rateLimits ?? [],
      memquotas: rest.memquotas ?? [],
      kubeServices: [],
      domainSuffix: 'cluster.local',
      globalRateLimits: true,
    });
    expect(warnings).to.deep.equal([]);
    expect(block!.limits[0]!.scope).to.equal('global');
    return block!;
  };
  const config = (version: string, rateLimit: RateLimit): ProxyConfig =>
    configWith(version, globalBlock('ratings', { rateLimits: [rateLimit] }));
  const configWith = (version: string, block: RateLimitBlock, workload = 'ratings'): ProxyConfig => ({
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: [],
    clusters: [],
    telemetry: {
      accessLog: true,
      workload: { name: `${workload}-v1`, namespace: 'bookinfo', app: workload },
    },
    inbound: {
      mtls: { mode: 'PERMISSIVE', policy: 'test' },
      ports: [{ port: app.port, protocol: 'HTTP' }],
    },
    rateLimits: block,
  });

  before(async () => {
    const port = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    redisClient = new RedisClient({
      host: '127.0.0.1',
      port,
      timeoutMs: 300,
      backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
    });
    await waitFor(
      'redis answers',
      async () => (await redisClient.command(['PING']).catch(() => null)) === 'PONG',
    );
    app = await upstream('ratings');
    weftd = await fakeWeftd(null);
    const svc = new GlobalRateLimitService(
      new GlobalBucketStore(redisClient),
      createLogger('test', { silent: true }),
    );
    weftd.routes.set(RATELIMIT_CHECK_PATH, (req, res) => {
      const id = weftd.identities.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      void svc
        .handle(req, res, () => (id ? Promise.resolve(id) : Promise.reject(new Error('bad token'))))
        .catch((err: unknown) => sendError(res, err));
    });
    productpage = workloadCert(weftd.ca, `spiffe://${weftd.trustDomain}/ns/bookinfo/sa/bookinfo-productpage`);
    weftd.push(config('v1', rl('ratings', 'allow')));
    for (let i = 0; i < 3; i++) procs.push(await startSidecar(weftd, SIDECAR_ARGS));
    for (const p of procs) {
      await waitFor(
        'ready',
        async () => (await request(p.ports.health!, { path: '/healthz/ready' })).status === 200,
      );
      await waitFor('mesh mTLS terminates', async () =>
        meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem).then(
          (r) => r.status === 200 || r.status === 429,
          () => false,
        ),
      );
    }
  });

  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    redisClient?.close();
    if (redis?.exitCode === null && redis.signalCode === null) redis.kill('SIGKILL');
    await weftd?.close();
    await app?.close();
  });

  it('one budget across the three replicas under concurrent load (within ±10 % of the limit), 429 with the headers', async () => {
    // a fresh limit (a new name is a new bucket): 60 per hour for the whole destination
    weftd.push(config('v2', rl('ratings-fresh', 'allow')));
    await sleep(1000);
    const statuses: { status: number; headers: http.IncomingHttpHeaders }[] = [];
    // 180 requests (three times the budget), 12 in flight, spread round-robin over the replicas
    let n = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (n < 180) {
          const p = procs[n++ % 3]!;
          statuses.push(await meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem));
        }
      }),
    );
    const ok = statuses.filter((s) => s.status === 200).length;
    const limited = statuses.filter((s) => s.status === 429);
    expect(ok + limited.length).to.equal(180);
    expect(
      ok,
      procs[0]!
        .log()
        .split('\n')
        .filter((l) => l.includes('Global rate-limit'))
        .slice(0, 2)
        .join('\n'),
    ).to.be.within(54, 66);
    const r = limited[0]!;
    expect(r.headers['x-weft-response-flags']).to.equal('RL');
    expect(Number(r.headers['retry-after'])).to.be.greaterThan(0);
    expect(r.headers['ratelimit-policy']).to.equal('"RateLimit bookinfo/ratings-fresh";q=60;w=3600');
    expect(r.headers.ratelimit).to.match(/^"RateLimit bookinfo\/ratings-fresh";r=0;t=\d+$/);
    // each replica served some of the allowed ones: the budget is shared, not per pod
    for (const p of procs) {
      const m = await request(p.ports.metrics!, { path: '/stats/prometheus' });
      expect(m.body).to.match(/weft_proxy_ratelimit_requests_total\{[^}]*result="limited"[^}]*\} \d+/);
    }
  });

  it('two destinations under one memquota keep their own budgets (Mixer counted per destination)', async () => {
    // the seeds' shape: one quota for every service, 5 per hour (nothing refills during the test)
    const quota: MemQuota = {
      apiVersion: 'config.istio.io/v1alpha2',
      kind: 'memquota',
      metadata: { name: 'handler', namespace: 'istio-system' },
      spec: { quotas: [{ name: 'requestcount', maxAmount: 5, validDuration: '1h' }] },
    };
    // productpage's sidecar, from a second fake weftd answering checks with the same Redis; both
    // tokens are namespace default, as two pods of one namespace share weftd's key namespace
    const weftd2 = await fakeWeftd(null);
    weftd2.routes.set(RATELIMIT_CHECK_PATH, weftd.routes.get(RATELIMIT_CHECK_PATH)!);
    weftd2.push(configWith('pp1', globalBlock('productpage', { memquotas: [quota] }), 'productpage'));
    weftd.push(configWith('mq1', globalBlock('ratings', { memquotas: [quota] })));
    const pp = await startSidecar(weftd2, SIDECAR_ARGS);
    try {
      await waitFor(
        'ready',
        async () => (await request(pp.ports.health!, { path: '/healthz/ready' })).status === 200,
      );
      await sleep(1000);
      const send = async (p: Proc, n: number): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++)
          out.push((await meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem)).status);
        return out;
      };
      // ratings spends its 5 (across its replicas) and is limited ...
      expect(await send(procs[0]!, 3)).to.deep.equal([200, 200, 200]);
      expect(await send(procs[1]!, 3)).to.deep.equal([200, 200, 429]);
      // ... productpage, under the same quota name, still has all of its own
      expect(await send(pp, 6)).to.deep.equal([200, 200, 200, 200, 200, 429]);
      const m = await request(pp.ports.metrics!, { path: '/stats/prometheus' });
      expect(m.body, 'the metric label is the quota, not the key').to.match(
        /weft_proxy_ratelimit_requests_total\{[^}]*limit="memquota istio-system\/handler requestcount"[^}]*result="limited"[^}]*\} 1/,
      );
    } finally {
      pp.child.kill('SIGKILL');
      await weftd2.close();
    }
  });

  it('Redis killed: failureMode allow lets requests through and counts backend errors; deny answers 429', async () => {
    process.kill(redis.pid!, 'SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    weftd.push(config('v3', rl('ratings-open', 'allow')));
    await sleep(1000);
    const p = procs[0]!;
    for (let i = 0; i < 3; i++)
      expect((await meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem)).status).to.equal(
        200,
      );
    const m = await request(p.ports.metrics!, { path: '/stats/prometheus' });
    const errors = /weft_proxy_ratelimit_backend_errors_total (\d+)/.exec(m.body);
    expect(Number(errors?.[1])).to.be.at.least(3);
    expect(p.log()).to.contain('Global rate-limit check failed; applying the failure mode');
    weftd.push(config('v4', rl('ratings-closed', 'deny')));
    await sleep(1000);
    const denied = await meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem);
    expect(denied.status).to.equal(429);
    expect(denied.headers['x-weft-response-flags']).to.equal('RL');
  });
});
