/**
 * Rate limits end to end on the control-plane side: the CRDs installed from crds/, weftd
 * (in-process) on a real API server watching RateLimit and memquota, and the real discovery
 * client as the proxy. A RateLimit and the seeds' memquota reach the ratings sidecar (reviews'
 * service account resolved from its pod), not other pods; every pushed block passes the proxy's
 * own config validation and is run through the proxy's limiter; an edit and a delete are pushed.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { RateLimiter } from '../../../proxy/ratelimit/limiter.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { FakeProxy, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const names = (c: ProxyConfig): string[] => (c.rateLimits?.limits ?? []).map((l) => l.name);

describe('weftd pushes RateLimits and memquotas (real API server, real discovery client)', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let ratings: FakeProxy;
  let reviews: FakeProxy;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    const crds = await installCRDs();
    expect(crds).to.include.members(['ratelimits.mesh.weft.dev', 'memquotas.config.istio.io']);
    ns = await freshNamespace('ratelimit');
    dir = weftdServingDir('weftd-ratelimit');
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
        mesh: structuredClone(DEFAULT_MESH),
        pingIntervalMs: 300,
        // the Enforced condition is written by weftd's status writer (statuswriter.ts)
        status: {
          lease: { namespace: ns, identity: 'weftd-ratelimit' },
          debounce: { afterMs: 20, maxMs: 200 },
        },
      },
    );
    const address = `127.0.0.1:${weftd.discoveryPort}`;
    ratings = new FakeProxy(
      address,
      dir,
      await requestToken(kube, ns, 'ratings', { audiences: [TOKEN_AUDIENCE] }),
      'sidecar',
      ns,
      'ratings-1',
    );
    reviews = new FakeProxy(
      address,
      dir,
      await requestToken(kube, ns, 'reviews', { audiences: [TOKEN_AUDIENCE] }),
      'sidecar',
      ns,
      'reviews-1',
    );
  });

  after(async () => {
    ratings?.client.stop();
    reviews?.client.stop();
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without limits, no rateLimits block is pushed', async () => {
    expect((await ratings.until('ratings config', () => true)).rateLimits).to.equal(undefined);
  });

  it('a RateLimit on the ratings Service reaches ratings only; reviews → ratings is 1/s through the proxy limiter', async () => {
    await kube.create({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'RateLimit',
      metadata: { name: 'ratings', namespace: ns },
      spec: {
        targetHost: 'ratings',
        limit: { requests: 100, unit: 'second' },
        overrides: [
          { name: 'reviews', source: { workloadLabels: { app: 'reviews' } }, limit: { requests: 1 } },
        ],
      },
    });
    const c = await ratings.until('ratings gets the RateLimit', (x) =>
      names(x).includes(`RateLimit ${ns}/ratings`),
    );
    expect(validateProxyConfig(c)).to.deep.equal([]);
    expect(c.rateLimits!.limits[0]!.overrides![0]!.source).to.deep.equal({
      principals: [`*/ns/${ns}/sa/reviews`],
    });
    let t = 0;
    const l = new RateLimiter(null, { now: () => t });
    l.update(c.rateLimits);
    const from = (sa: string) => ({
      port: 9080,
      target: '/ratings/0',
      method: 'GET',
      headers: {},
      principal: `spiffe://cluster.local/ns/${ns}/sa/${sa}`,
      claims: null,
    });
    expect(l.check(from('reviews'))!.allowed).to.equal(true);
    expect(l.check(from('reviews'))).to.deep.include({ allowed: false, override: 'reviews' });
    expect(l.check(from('productpage'))).to.deep.include({ allowed: true, override: null });
    t = 1000;
    expect(l.check(from('reviews'))!.allowed).to.equal(true);
    expect(names(reviews.latest ?? ({} as ProxyConfig))).to.deep.equal([]);
  });

  it('the seeds memquota applies as written: ratings gets 100/s and the reviews override after the RateLimit', async () => {
    await kube.create({
      apiVersion: 'config.istio.io/v1alpha2',
      kind: 'memquota',
      metadata: { name: 'handler', namespace: ns },
      spec: {
        quotas: [
          {
            name: 'requestcount.instance.istio-system',
            maxAmount: 5000,
            validDuration: '1s',
            overrides: [
              {
                dimensions: { destination: 'ratings', source: 'reviews' },
                maxAmount: 1,
                validDuration: '1s',
              },
              { dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' },
            ],
          },
        ],
      },
    });
    const mqName = `memquota ${ns}/handler requestcount.instance.istio-system`;
    const c = await ratings.until('ratings gets the memquota', (x) => names(x).includes(mqName));
    expect(names(c)).to.deep.equal([`RateLimit ${ns}/ratings`, mqName]);
    const limit = c.rateLimits!.limits[1]!;
    expect(limit.budget).to.deep.equal({ requests: 100, intervalMs: 1000 });
    // memquota's source is Mixer's source.labels[app], mesh-wide: other suites' reviews pods count too
    expect(limit.overrides![0]!.source.principals).to.include(`*/ns/${ns}/sa/reviews`);
    // every other pod gets the quota's own 5000/s
    const r = await reviews.until('reviews gets 5000/s', (x) => names(x).includes(mqName));
    expect(r.rateLimits!.limits[0]!.budget).to.deep.equal({ requests: 5000, intervalMs: 1000 });
  });

  it('status says what weft does with each: local, per pod; global is not enforced', async () => {
    await kube.create({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'RateLimit',
      metadata: { name: 'global', namespace: ns },
      // the webhook is not running here: this is an object that got in while it was down
      spec: { scope: 'global', targetHost: 'ratings', limit: { requests: 5 } },
    });
    const condition = async (
      kind: string,
      apiVersion: string,
      name: string,
    ): Promise<Record<string, unknown> | null> => {
      const o = await kube.get({ apiVersion, kind, name, namespace: ns });
      const conds = (o?.status as { conditions?: Record<string, unknown>[] } | undefined)?.conditions ?? [];
      return conds.find((c) => c.type === 'Enforced') ?? null;
    };
    const waitCondition = async (
      kind: string,
      apiVersion: string,
      name: string,
    ): Promise<Record<string, unknown>> => {
      for (let i = 0; i < 100; i++) {
        const c = await condition(kind, apiVersion, name);
        if (c !== null) return c;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`no Enforced condition on ${kind} ${name}`);
    };
    expect(await waitCondition('RateLimit', 'mesh.weft.dev/v1alpha1', 'ratings')).to.include({
      status: 'True',
      reason: 'Local',
      observedGeneration: 1,
    });
    expect(await waitCondition('RateLimit', 'mesh.weft.dev/v1alpha1', 'global')).to.include({
      status: 'False',
      reason: 'GlobalNotImplemented',
    });
    const mq = await waitCondition('memquota', 'config.istio.io/v1alpha2', 'handler');
    expect(mq).to.include({ status: 'True', reason: 'Local' });
    expect(String(mq.message)).to.contain('each destination pod');
    // the global one never reaches a proxy
    expect(names(ratings.latest!)).to.not.include(`RateLimit ${ns}/global`);
  });

  it('an edit is pushed; a delete removes the limit', async () => {
    await kube.mergePatch(
      { apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'RateLimit', name: 'ratings', namespace: ns },
      { spec: { limit: { requests: 7, unit: 'minute' } } },
    );
    await ratings.until(
      '7/min after the edit',
      (x) =>
        x.rateLimits?.limits.some((l) => l.budget.requests === 7 && l.budget.intervalMs === 60_000) === true,
    );
    await kube.delete({
      apiVersion: 'mesh.weft.dev/v1alpha1',
      kind: 'RateLimit',
      name: 'ratings',
      namespace: ns,
    });
    await ratings.until('the RateLimit is gone', (x) => !names(x).includes(`RateLimit ${ns}/ratings`));
  });
});
