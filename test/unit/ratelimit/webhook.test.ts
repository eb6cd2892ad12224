/**
 * The webhook's /validate on the rate-limit kinds (the real server, in-process): the seeds'
 * memquota is admitted as written; `scope: global` is refused with its message; a shadowed
 * memquota override and a not-enforced field come back as kubectl warnings.
 */
import { expect } from 'chai';
import { reviewOf, startTestServer, type TestServer } from '../webhook/helpers.js';

const memquota = (spec: unknown): unknown => ({
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'memquota',
  metadata: { name: 'handler', namespace: 'istio-system' },
  spec,
});
const seeds = {
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
};

describe('webhook POST /validate: RateLimit and memquota', () => {
  let srv: TestServer;
  before(async () => (srv = await startTestServer()));
  after(async () => srv.close());

  it('admits the seeds memquota as written', async () => {
    const r = await srv.post('/validate', reviewOf(memquota(seeds)));
    expect(r.json.response.allowed).to.equal(true);
    expect(r.json.response.warnings).to.equal(undefined);
  });

  it('refuses scope global without the global backend, naming the settings and what to use', async () => {
    const r = await srv.post(
      '/validate',
      reviewOf({
        apiVersion: 'mesh.weft.dev/v1alpha1',
        kind: 'RateLimit',
        metadata: { name: 'ratings', namespace: 'bookinfo' },
        spec: { scope: 'global', targetHost: 'ratings', limit: { requests: 100 } },
      }),
    );
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status.message).to.match(
      /^RateLimit bookinfo\/ratings: spec\.scope: scope global .*--ratelimit-redis.*--global-ratelimits.*scope local/,
    );
  });

  it('refuses a limit of 0 and an unknown dimension in one answer each', async () => {
    const zero = await srv.post(
      '/validate',
      reviewOf({
        apiVersion: 'mesh.weft.dev/v1alpha1',
        kind: 'RateLimit',
        metadata: { name: 'zero', namespace: 'bookinfo' },
        spec: { targetHost: 'ratings', limit: { requests: 0 } },
      }),
    );
    expect(zero.json.response.status.message).to.contain('spec.limit: requests must be at least 1');
    const dims = await srv.post(
      '/validate',
      reviewOf(
        memquota({
          quotas: [
            {
              name: 'q',
              maxAmount: 1,
              validDuration: '1s',
              overrides: [{ dimensions: { ip: 'x' }, maxAmount: 1 }],
            },
          ],
        }),
      ),
    );
    expect(dims.json.response.allowed).to.equal(false);
    expect(dims.json.response.status.message).to.contain('unknown dimension "ip"');
  });

  it('warns about a shadowed override and a field weft does not act on', async () => {
    const shadowed = {
      ...seeds,
      minDeduplicationDuration: '1s',
      quotas: [{ ...seeds.quotas[0]!, overrides: [...seeds.quotas[0]!.overrides].reverse() }],
    };
    const r = await srv.post('/validate', reviewOf(memquota(shadowed)));
    expect(r.json.response.allowed).to.equal(true);
    const w = (r.json.response.warnings ?? []).join('\n');
    expect(w).to.contain('never applies');
    expect(w).to.contain('minDeduplicationDuration');
  });
});
