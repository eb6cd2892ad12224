/**
 * RateLimit and memquota → each sidecar's rateLimits block: which pods a limit selects, override
 * order and resolution (service accounts, workload labels → principals), memquota's first
 * matching override per destination, and weftd's generator (version moves, gateways untouched,
 * global and invalid limits skipped with a warning, never enforced as something else).
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { RateLimit, RateLimitSpec } from '../../../pkg/api/ratelimit.js';
import type { MemQuota, MemQuotaQuota } from '../../../pkg/api/memquota.js';
import { rateLimitsFor, resolveBudget, type RateLimitInput } from '../../../pkg/translate/ratelimit.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { KubeService } from '../../../pkg/translate/kube.js';

const rl = (name: string, spec: RateLimitSpec, ns = 'bookinfo'): RateLimit => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'RateLimit',
  metadata: { name, namespace: ns },
  spec,
});
const mq = (quotas: MemQuotaQuota[]): MemQuota => ({
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'memquota',
  metadata: { name: 'handler', namespace: 'istio-system' },
  spec: { quotas },
});
const services: KubeService[] = [
  { metadata: { name: 'ratings', namespace: 'bookinfo' }, spec: { selector: { app: 'ratings' } } },
];
const pods = [
  { namespace: 'bookinfo', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'bookinfo-reviews' },
  { namespace: 'bookinfo', labels: { app: 'reviews', version: 'v3' }, serviceAccount: 'reviews-v3' },
  { namespace: 'bookinfo', labels: { app: 'productpage' }, serviceAccount: 'bookinfo-productpage' },
];
const ratingsPod = { namespace: 'bookinfo', labels: { app: 'ratings' }, serviceAccount: 'bookinfo-ratings' };
const input = (extra: Partial<RateLimitInput>): RateLimitInput => ({
  pod: ratingsPod,
  rateLimits: [],
  kubeServices: services,
  pods,
  domainSuffix: 'cluster.local',
  ...extra,
});

const SEEDS = mq([
  {
    name: 'requestcount.instance.istio-system',
    maxAmount: 5000,
    validDuration: '1s',
    overrides: [
      { dimensions: { destination: 'ratings', source: 'reviews' }, maxAmount: 1, validDuration: '1s' },
      { dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' },
    ],
  },
]);

describe('ratelimit: budgets', () => {
  const table: [string, Parameters<typeof resolveBudget>[0], unknown][] = [
    ['per second by default', { requests: 10 }, { requests: 10, intervalMs: 1000 }],
    ['per minute', { requests: 10, unit: 'minute' }, { requests: 10, intervalMs: 60_000 }],
    [
      'an interval, burst, per source',
      { requests: 3, interval: '1.5s', burst: 6, per: 'source' },
      { requests: 3, intervalMs: 1500, burst: 6, per: 'source' },
    ],
    ['0 requests', { requests: 0 }, /at least 1/],
    ['a negative interval', { requests: 1, interval: '-1s' }, /not a positive duration/],
    ['a sub-ms interval', { requests: 1, interval: '10us' }, /shorter than 1ms/],
    ['two days', { requests: 1, interval: '48h' }, /longer than 24h/],
  ];
  for (const [title, b, want] of table)
    it(title, () => {
      const got = resolveBudget(b);
      if (want instanceof RegExp) expect(got).to.be.a('string').that.matches(want);
      else expect(got).to.deep.equal(want);
    });
});

describe('ratelimit: memquota translation', () => {
  it("a memquota outside istio-system and the root namespace limits only its own namespace's pods", () => {
    const inNs = (namespace: string): MemQuota => ({ ...SEEDS, metadata: { name: 'handler', namespace } });
    const limitsOf = (m: MemQuota): number =>
      rateLimitsFor(input({ memquotas: [m] })).block?.limits.length ?? 0; // the pod is in bookinfo
    expect(limitsOf(inNs('tenant-a')), "another tenant's memquota").to.equal(0);
    expect(limitsOf(inNs('bookinfo')), 'its own namespace').to.be.greaterThan(0);
    expect(limitsOf(inNs('istio-system')), "Mixer's config namespace: mesh-wide").to.be.greaterThan(0);
    expect(limitsOf(inNs('weft-system')), 'the root namespace: mesh-wide').to.be.greaterThan(0);
  });

  it('the seeds: ratings pods get 100/s with reviews → 1/s; principals of every reviews pod', () => {
    expect(rateLimitsFor(input({ memquotas: [SEEDS] }))).to.deep.equal({
      block: {
        limits: [
          {
            name: 'memquota istio-system/handler requestcount.instance.istio-system',
            budget: { requests: 100, intervalMs: 1000 },
            defaultName: 'overrides[1]',
            overrides: [
              {
                name: 'overrides[0]',
                source: { principals: ['*/ns/bookinfo/sa/bookinfo-reviews', '*/ns/bookinfo/sa/reviews-v3'] },
                budget: { requests: 1, intervalMs: 1000 },
              },
            ],
            sharedKey: 'ratings',
          },
        ],
      },
      warnings: [],
    });
  });

  it('other pods get the quota itself (5000/s), no override', () => {
    const r = rateLimitsFor(input({ memquotas: [SEEDS], pod: pods[2]! }));
    expect(r.block!.limits[0]).to.deep.equal({
      name: 'memquota istio-system/handler requestcount.instance.istio-system',
      budget: { requests: 5000, intervalMs: 1000 },
      sharedKey: 'productpage',
    });
  });

  it('a destination named by its Service (not its app label) is found through the selector', () => {
    const r = rateLimitsFor(
      input({
        memquotas: [
          mq([
            {
              name: 'q',
              maxAmount: 10,
              validDuration: '1s',
              overrides: [{ dimensions: { destination: 'ratings' }, maxAmount: 2 }],
            },
          ]),
        ],
        pod: { namespace: 'istio-system', labels: { app: 'ratings' }, serviceAccount: 'x' },
        kubeServices: [
          {
            metadata: { name: 'ratings', namespace: 'istio-system' },
            spec: { selector: { app: 'ratings' } },
          },
        ],
      }),
    );
    expect(r.block!.limits[0]!.budget).to.deep.equal({ requests: 2, intervalMs: 1000 });
  });

  it('an override after a destination-only one for the same pod is unreachable (first match wins)', () => {
    const r = rateLimitsFor(
      input({
        memquotas: [
          mq([
            {
              name: 'q',
              maxAmount: 5000,
              validDuration: '1s',
              overrides: [
                { dimensions: { destination: 'ratings' }, maxAmount: 100 },
                { dimensions: { destination: 'ratings', source: 'reviews' }, maxAmount: 1 },
              ],
            },
          ]),
        ],
      }),
    );
    expect(r.block!.limits[0]).to.deep.equal({
      name: 'memquota istio-system/handler q',
      budget: { requests: 100, intervalMs: 1000 },
      defaultName: 'overrides[0]',
      sharedKey: 'ratings',
    });
  });

  it("two destinations under one memquota: same limit name, each its own shared key (Mixer's destination dimension)", () => {
    const global = (pod: RateLimitInput['pod']) =>
      rateLimitsFor({ ...input({ memquotas: [SEEDS], pod }), globalRateLimits: true }).block!.limits[0]!;
    const ratings = global(ratingsPod);
    const productpage = global(pods[2]!);
    expect(ratings.name).to.equal(productpage.name); // the metric label stays the quota's name
    expect([ratings.scope, productpage.scope]).to.deep.equal(['global', 'global']);
    expect([ratings.sharedKey, productpage.sharedKey]).to.deep.equal(['ratings', 'productpage']);
  });

  it("the destination value: app label, else a selecting Service's name (first by name), else unknown", () => {
    const keyOf = (pod: RateLimitInput['pod'], kubeServices: KubeService[]): string | undefined =>
      rateLimitsFor(input({ memquotas: [SEEDS], pod, kubeServices })).block!.limits[0]!.sharedKey;
    const unlabelled = { namespace: 'bookinfo', labels: { tier: 'db' }, serviceAccount: 'db' };
    const svc = (name: string, namespace = 'bookinfo'): KubeService => ({
      metadata: { name, namespace },
      spec: { selector: { tier: 'db' } },
    });
    expect(keyOf(ratingsPod, [svc('zzz')]), 'the app label first').to.equal('ratings');
    expect(keyOf(unlabelled, [svc('mysql-b'), svc('mysql-a')])).to.equal('mysql-a');
    expect(keyOf(unlabelled, [svc('mysql', 'other')]), "another namespace's Service").to.equal('unknown');
    expect(keyOf(unlabelled, [])).to.equal('unknown');
  });

  it('unknown dimensions or no validDuration: skipped with a warning, not enforced as something else', () => {
    const r = rateLimitsFor(
      input({
        memquotas: [
          mq([
            {
              name: 'a',
              maxAmount: 1,
              validDuration: '1s',
              overrides: [{ dimensions: { ip: '1.2.3.4' }, maxAmount: 1 }],
            },
            { name: 'b', maxAmount: 1 },
          ]),
        ],
      }),
    );
    expect(r.block).to.equal(undefined);
    expect(r.warnings).to.have.length(2);
    expect(r.warnings[0]).to.match(/unknown dimensions ip; not enforced/);
    expect(r.warnings[1]).to.match(/validDuration is required/);
  });
});

describe('ratelimit: RateLimit translation', () => {
  it('workload labels match pods of the RateLimit namespace only, or of the namespaces it names', () => {
    // a pod elsewhere labelled app=reviews must not label itself into the override
    const intruder = { namespace: 'attacker', labels: { app: 'reviews' }, serviceAccount: 'evil' };
    const principalsFor = (source: Record<string, unknown>): unknown =>
      rateLimitsFor(
        input({
          pods: [...pods, intruder],
          rateLimits: [
            rl('ratings', {
              targetHost: 'ratings',
              limit: { requests: 1 },
              overrides: [{ source, limit: { requests: 1000 } }],
            }),
          ],
        }),
      ).block!.limits[0]!.overrides![0]!.source.principals;
    expect(principalsFor({ workloadLabels: { app: 'reviews' } })).to.deep.equal([
      '*/ns/bookinfo/sa/bookinfo-reviews',
      '*/ns/bookinfo/sa/reviews-v3',
    ]);
    expect(principalsFor({ workloadLabels: { app: 'reviews' }, namespaces: ['attacker'] })).to.deep.equal([
      '*/ns/attacker/sa/evil',
    ]);
  });

  it('targetHost selects the Service pods; overrides resolve service accounts and workload labels', () => {
    const r = rateLimitsFor(
      input({
        rateLimits: [
          rl('ratings', {
            targetHost: 'ratings',
            limit: { requests: 100, unit: 'second' },
            overrides: [
              { name: 'reviews', source: { workloadLabels: { app: 'reviews' } }, limit: { requests: 1 } },
              { source: { serviceAccounts: ['bookinfo-productpage', 'other/sa'] }, limit: { requests: 50 } },
              {
                source: { header: { name: 'X-Tier', values: ['gold'] } },
                limit: { requests: 500, per: 'source' },
              },
            ],
            sourceKey: { by: 'header', name: 'X-User' },
          }),
        ],
      }),
    );
    expect(r.block!.limits).to.deep.equal([
      {
        name: 'RateLimit bookinfo/ratings',
        budget: { requests: 100, intervalMs: 1000 },
        overrides: [
          {
            name: 'reviews',
            source: { principals: ['*/ns/bookinfo/sa/bookinfo-reviews', '*/ns/bookinfo/sa/reviews-v3'] },
            budget: { requests: 1, intervalMs: 1000 },
          },
          {
            name: 'overrides[1]',
            source: { principals: ['*/ns/bookinfo/sa/bookinfo-productpage', '*/ns/other/sa/sa'] },
            budget: { requests: 50, intervalMs: 1000 },
          },
          {
            name: 'overrides[2]',
            source: { header: { name: 'x-tier', values: ['gold'] } },
            budget: { requests: 500, intervalMs: 1000, per: 'source' },
          },
        ],
        sourceKey: { kind: 'header', name: 'x-user' },
      },
    ]);
  });

  it('narrow limits (ports, paths, methods) come before broad ones; other namespaces and pods are not selected', () => {
    const r = rateLimitsFor(
      input({
        rateLimits: [
          rl('a-broad', { selector: { matchLabels: { app: 'ratings' } }, limit: { requests: 10 } }),
          rl('b-narrow', {
            selector: { matchLabels: { app: 'ratings' } },
            paths: ['/api/'],
            limit: { requests: 1 },
          }),
          rl('elsewhere', { selector: { matchLabels: { app: 'ratings' } }, limit: { requests: 1 } }, 'other'),
          rl('reviews', { selector: { matchLabels: { app: 'reviews' } }, limit: { requests: 1 } }),
        ],
      }),
    );
    expect(r.block!.limits.map((l) => l.name)).to.deep.equal([
      'RateLimit bookinfo/b-narrow',
      'RateLimit bookinfo/a-broad',
    ]);
  });

  it('scope global (admitted while the webhook was down) is skipped with a warning', () => {
    const r = rateLimitsFor(
      input({ rateLimits: [rl('g', { targetHost: 'ratings', scope: 'global', limit: { requests: 1 } })] }),
    );
    expect(r.block).to.equal(undefined);
    expect(r.warnings).to.deep.equal([
      'RateLimit bookinfo/g: scope global needs the global rate-limit backend (weftd --ratelimit-redis); not enforced',
    ]);
  });

  it('with the global backend, scope global is a limit the sidecar asks weftd about, with its failure mode', () => {
    const r = rateLimitsFor({
      ...input({
        rateLimits: [
          rl('g', { targetHost: 'ratings', scope: 'global', failureMode: 'deny', limit: { requests: 7 } }),
        ],
      }),
      globalRateLimits: true,
    });
    expect(r.warnings).to.deep.equal([]);
    expect(r.block!.limits).to.deep.equal([
      {
        name: 'RateLimit bookinfo/g',
        budget: { requests: 7, intervalMs: 1000 },
        scope: 'global',
        failureMode: 'deny',
      },
    ]);
  });

  it('with the global backend, memquota limits are global (Mixer enforced them mesh-wide); without, local', () => {
    const global = rateLimitsFor({ ...input({ memquotas: [SEEDS] }), globalRateLimits: true });
    expect(global.block!.limits.every((l) => l.scope === 'global' && l.failureMode === undefined)).to.equal(
      true,
    );
    const local = rateLimitsFor(input({ memquotas: [SEEDS] }));
    expect(local.block!.limits.every((l) => l.scope === undefined)).to.equal(true);
    expect(global.block!.limits.map((l) => ({ ...l, scope: undefined }))).to.deep.equal(
      local.block!.limits.map((l) => ({ ...l, scope: undefined })),
    );
  });
});

describe('ratelimit: weftd config generation', () => {
  const snapshot = (generation: number, memquotas: MemQuota[]): Snapshot => ({
    generation,
    services: [],
    peerAuthentications: [],
    kubeServices: services,
    virtualServices: [],
    destinationRules: [],
    serviceEntries: [],
    gateways: [],
    pods: pods.map((p, i) => ({ ...p, name: `p-${i}` })),
    memquotas,
  });
  const pod: PodInfo = { name: 'ratings-1', ...ratingsPod };
  const gen = (): ConfigGenerator =>
    new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: DEFAULT_MESH,
      log: createLogger('t', { silent: true }),
    });

  it('a selected sidecar gets the block (in the encoded message too) and a new version; gateways do not', () => {
    const g = gen();
    const none = g.forProxy(snapshot(1, []), 'sidecar', pod);
    const some = g.forProxy(snapshot(2, [SEEDS]), 'sidecar', pod);
    expect(none.config.rateLimits).to.equal(undefined);
    expect(some.config.rateLimits!.limits[0]!.budget.requests).to.equal(100);
    expect(some.version).to.not.equal(none.version);
    expect(
      (JSON.parse(some.encode()) as { config: { rateLimits: unknown } }).config.rateLimits,
    ).to.deep.equal(some.config.rateLimits);
    expect(g.forProxy(snapshot(3, [SEEDS]), 'gateway', pod).config.rateLimits).to.equal(undefined);
  });
});

describe('ratelimit: bounds in translation', () => {
  it('more limits than a proxy accepts: the first 256 are kept, the rest named in warnings', () => {
    const many = Array.from({ length: 260 }, (_, i) =>
      rl(`l${String(i).padStart(3, '0')}`, {
        selector: { matchLabels: { app: 'ratings' } },
        limit: { requests: 1 },
      }),
    );
    const r = rateLimitsFor(input({ rateLimits: many }));
    expect(r.block!.limits).to.have.length(256);
    expect(r.warnings).to.have.length(4);
    expect(r.warnings[0]).to.match(/l256: more than 256 limits select this pod; not enforced/);
  });
});

describe('ratelimit: status conditions', () => {
  it('local RateLimit: Enforced True Local; global: False GlobalNotImplemented; invalid: False Invalid', async () => {
    const { rateLimitCondition, memquotaCondition } =
      await import('../../../controlplane/ratelimitstatus.js');
    expect(rateLimitCondition(rl('a', { targetHost: 'ratings', limit: { requests: 1 } }))).to.include({
      status: 'True',
      reason: 'Local',
    });
    expect(
      rateLimitCondition(rl('g', { targetHost: 'ratings', scope: 'global', limit: { requests: 1 } })),
    ).to.include({
      status: 'False',
      reason: 'GlobalNotImplemented',
    });
    expect(rateLimitCondition(rl('z', { targetHost: 'ratings', limit: { requests: 0 } }))).to.include({
      status: 'False',
      reason: 'Invalid',
    });
    expect(memquotaCondition(SEEDS)).to.include({ status: 'True', reason: 'Local' });
    expect(memquotaCondition(mq([{ name: 'q', maxAmount: 1 }]))).to.include({
      status: 'False',
      reason: 'Invalid',
    });
  });

  it('no global backend: the message names the setting; with it: Enforced True Global (memquota too)', async () => {
    const { rateLimitCondition, memquotaCondition } =
      await import('../../../controlplane/ratelimitstatus.js');
    const g = rl('g', { targetHost: 'ratings', scope: 'global', limit: { requests: 1 } });
    expect(rateLimitCondition(g).message).to.match(/--ratelimit-redis/);
    expect(rateLimitCondition(g, true)).to.include({ status: 'True', reason: 'Global' });
    expect(rateLimitCondition(g, true).message).to.match(/failureMode allow/);
    expect(rateLimitCondition({ ...g, spec: { ...g.spec, failureMode: 'deny' } }, true).message).to.match(
      /failureMode deny/,
    );
    expect(rateLimitCondition(rl('a', { targetHost: 'ratings', limit: { requests: 1 } }), true)).to.include({
      reason: 'Local',
    });
    expect(memquotaCondition(SEEDS, true)).to.include({ status: 'True', reason: 'Global' });
    expect(memquotaCondition(SEEDS).message).to.match(/--ratelimit-redis/);
  });
});
