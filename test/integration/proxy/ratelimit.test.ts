/**
 * Local rate limits in a real `proxy sidecar` process, configured over the real wire protocol by
 * a fake weftd, with callers on real mesh mTLS (certificates signed by the same root). The block
 * is what weftd makes of the seeds' memquota for a ratings pod (pkg/translate/memquota.ts):
 * ratings 100/s overall, reviews → ratings 1/s. Checks the 429s and their headers, the per-source
 * override, the metrics and the access log naming the limit and the override, and that a push of
 * the same limits keeps the buckets.
 */
import { expect } from 'chai';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import type { MemQuota } from '../../../pkg/api/memquota.js';
import { rateLimitsFor } from '../../../pkg/translate/ratelimit.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { meshRequest, startSidecar, type Proc, type Reply } from './ratelimit-sidecar.js';
import { waitFor } from '../../support/wait.js';

import { request, sleep, upstream, type Upstream } from './helpers.js';
import { workloadCert } from './mesh-identity.js';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';

const SEEDS: MemQuota = {
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'memquota',
  metadata: { name: 'handler', namespace: 'istio-system' },
  spec: {
    quotas: [
      {
        name: 'requestcount.instance.istio-system',
        maxAmount: 5000,
        validDuration: '1s',
        overrides: [
          { dimensions: { destination: 'ratings', source: 'reviews' }, maxAmount: 1, validDuration: '1s' },
          { dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' },
        ],
      },
    ],
  },
};

describe('proxy sidecar: local rate limits (real process, mesh mTLS)', function () {
  this.timeout(120_000);
  let app: Upstream;
  let weftd: FakeWeftd;
  let p: Proc;
  let reviews: KeyPairPem;
  let productpage: KeyPairPem;

  const config = (version: string): ProxyConfig => {
    const { block, warnings } = rateLimitsFor({
      pod: { namespace: 'bookinfo', labels: { app: 'ratings' }, serviceAccount: 'bookinfo-ratings' },
      rateLimits: [],
      memquotas: [SEEDS],
      kubeServices: [],
      pods: [
        {
          namespace: 'bookinfo',
          labels: { app: 'reviews', version: 'v2' },
          serviceAccount: 'bookinfo-reviews',
        },
        { namespace: 'bookinfo', labels: { app: 'productpage' }, serviceAccount: 'bookinfo-productpage' },
      ],
      domainSuffix: 'cluster.local',
    });
    expect(warnings).to.deep.equal([]);
    return {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version,
      listeners: [],
      clusters: [],
      telemetry: { accessLog: true, workload: { name: 'ratings-v1', namespace: 'bookinfo', app: 'ratings' } },
      inbound: {
        mtls: { mode: 'PERMISSIVE', policy: 'test' },
        ports: [{ port: app.port, protocol: 'HTTP' }],
      },
      ...(block ? { rateLimits: block } : {}),
    };
  };

  before(async () => {
    app = await upstream('ratings');
    weftd = await fakeWeftd(null);
    const td = weftd.trustDomain;
    reviews = workloadCert(weftd.ca, `spiffe://${td}/ns/bookinfo/sa/bookinfo-reviews`);
    productpage = workloadCert(weftd.ca, `spiffe://${td}/ns/bookinfo/sa/bookinfo-productpage`);
    p = await startSidecar(weftd);
    weftd.push(config('v1'));
    await waitFor(
      'ready',
      async () => (await request(p.ports.health!, { path: '/healthz/ready' })).status === 200,
    );
    // the workload certificate comes asynchronously after the config
    await waitFor('mesh mTLS terminates', async () =>
      meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem).then(
        (r) => r.status === 200,
        () => false,
      ),
    );
  });

  after(async () => {
    p?.child.kill('SIGKILL');
    await weftd?.close();
    await app?.close();
  });

  it('reviews → ratings: the first request passes, the next within the second is 429 RL with the headers', async () => {
    const ok = await meshRequest(p.ports.inbound!, app.port, reviews, weftd.ca.certPem);
    expect(ok.status).to.equal(200);
    // the app's answer carries the budget left too
    expect(ok.headers['ratelimit-policy']).to.match(/overrides\[0\]";q=1;w=1$/);
    const limited = await meshRequest(p.ports.inbound!, app.port, reviews, weftd.ca.certPem);
    expect(limited.status).to.equal(429);
    expect(limited.headers['x-weft-response-flags']).to.equal('RL');
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 1);
    const name = '"memquota istio-system/handler requestcount.instance.istio-system overrides[0]"';
    expect(limited.headers['ratelimit-policy']).to.equal(`${name};q=1;w=1`);
    expect(limited.headers.ratelimit).to.equal(`${name};r=0;t=1`);
    expect(limited.body).to.contain('local_rate_limited');
  });

  it('other callers have the destination budget (100/s), not the reviews one', async () => {
    for (let i = 0; i < 5; i++)
      expect((await meshRequest(p.ports.inbound!, app.port, productpage, weftd.ca.certPem)).status).to.equal(
        200,
      );
    // plaintext callers too (PERMISSIVE)
    expect(
      (await request(p.ports.inbound!, { headers: { host: `ratings:${app.port}` }, agent: false })).status,
    ).to.equal(200);
  });

  it('a concurrent burst of 300: the destination budget (100 + what refills meanwhile) passes, the rest is 429', async () => {
    await sleep(1100); // the shared bucket refills
    const send = (): Promise<number> =>
      request(p.ports.inbound!, { headers: { host: `ratings:${app.port}` }, agent: false }).then(
        (r) => r.status,
      );
    const start = performance.now();
    const statuses = await Promise.all(Array.from({ length: 300 }, send));
    const seconds = (performance.now() - start) / 1000;
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    expect(ok + limited).to.equal(300);
    expect(ok).to.be.at.least(100);
    // never more than the burst plus 100/s for the time the burst took (no timed assert: a bound)
    expect(ok).to.be.at.most(100 + Math.ceil(seconds * 100) + 1);
    if (100 + seconds * 100 < 299) expect(limited).to.be.at.least(1);
  });

  it('metrics and the access log name the limit and the override', async () => {
    const m = (await request(p.ports.metrics!, { path: '/stats/prometheus' })).body;
    expect(m).to.match(
      /weft_proxy_ratelimit_requests_total\{limit="memquota istio-system\/handler requestcount.instance.istio-system",override="overrides\[0\]",result="limited"\} [1-9]/,
    );
    expect(m).to.match(/override="overrides\[1\]",result="allowed"\} [1-9]/);
    const line = p
      .log()
      .split('\n')
      .find(
        (l) =>
          l.includes('"ratelimit_result":"limited"') && l.includes('"ratelimit_override":"overrides[0]"'),
      );
    expect(line, 'an access log line for the limited reviews request').to.be.a('string');
    expect(JSON.parse(line!)).to.include({ response_code: 429, response_flags: 'RL' });
  });

  it('a push of the same limits keeps the buckets (reviews stays limited)', async () => {
    await meshRequest(p.ports.inbound!, app.port, reviews, weftd.ca.certPem); // drain whatever refilled
    weftd.push(config('v2'));
    await waitFor('v2 applied', () => p.log().includes('v2'));
    expect((await meshRequest(p.ports.inbound!, app.port, reviews, weftd.ca.certPem)).status).to.equal(429);
  });

  it('a request AuthorizationPolicy denies spends no token (the limit is checked after authz)', async () => {
    const deny: AuthorizationPolicy = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-deny', namespace: 'bookinfo' },
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/deny'] } }] }] },
    } as AuthorizationPolicy;
    const { block } = translateAuthz({
      policies: [deny],
      pod: { namespace: 'bookinfo', labels: { app: 'ratings' } },
    });
    weftd.push({ ...config('v3'), authz: { ...block!, listeners: [] } });
    const req = (path: string): Promise<Reply> =>
      meshRequest(p.ports.inbound!, app.port, reviews, weftd.ca.certPem, path);
    await waitFor('the DENY policy applies', async () => (await req('/deny')).status === 403);
    await sleep(1100); // reviews' 1/s bucket is full again
    for (let i = 0; i < 3; i++) expect((await req('/deny')).status).to.equal(403);
    expect((await req('/ratings/0')).status, 'the token was not spent by the denied requests').to.equal(200);
    expect((await req('/ratings/0')).status).to.equal(429);
  });
});
