import { expect } from 'chai';
import { reviewOf, startTestServer, type TestServer } from './helpers.js';

const vs = (name: string, host: string, subset?: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'shop' },
  spec: { hosts: [host], http: [{ route: [{ destination: { host, ...(subset ? { subset } : {}) } }] }] },
});
const dr = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
};

for (const mode of ['deny', 'warn'] as const) {
  describe(`cross-object checks against the index (--cross-object=${mode})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ crossObject: mode });
      srv.index.upsert(vs('reviews-main', 'reviews'));
      srv.index.upsert(dr);
    });
    after(async () => srv.close());

    it(`${mode === 'deny' ? 'denies' : 'warns about'} a second VirtualService claiming the same host, naming the first`, async () => {
      const r = await srv.post('/validate', reviewOf(vs('reviews-canary', 'reviews')));
      const text =
        'spec.hosts[0]: host reviews.shop.svc.cluster.local is also claimed for the mesh by VirtualService shop/reviews-main';
      if (mode === 'deny') {
        expect(r.json.response.allowed).to.equal(false);
        expect(r.json.response.status.message).to.include(`VirtualService shop/reviews-canary: ${text}`);
      } else {
        expect(r.json.response.allowed).to.equal(true);
        expect(r.json.response.warnings.join('\n')).to.include(text);
      }
    });

    it('re-applying the indexed object itself is no conflict with itself', async () => {
      const r = await srv.post(
        '/validate',
        reviewOf(vs('reviews-main', 'reviews'), {
          operation: 'UPDATE',
          oldObject: vs('reviews-main', 'reviews'),
        }),
      );
      expect(r.json.response).to.deep.include({ allowed: true });
      expect(r.json.response.warnings).to.equal(undefined);
    });

    it('an undefined subset only warns (its DestinationRule may simply come later)', async () => {
      const r = await srv.post('/validate', reviewOf(vs('ratings', 'ratings', 'v9')));
      expect(r.json.response.allowed).to.equal(true);
      expect(r.json.response.warnings.join('\n')).to.match(
        /subset "v9" of host ratings\.shop\.svc\.cluster\.local is not defined/,
      );
    });

    it('a subset the indexed DestinationRule defines is fine', async () => {
      const r = await srv.post(
        '/validate',
        reviewOf(vs('reviews-main', 'reviews', 'v1'), {
          operation: 'UPDATE',
          oldObject: vs('reviews-main', 'reviews'),
        }),
      );
      expect(r.json.response).to.deep.equal({ uid: r.json.response.uid, allowed: true });
    });
  });
}

describe('cross-object checks before the index has synced', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ indexSources: 1 });
    srv.index.upsert(vs('reviews-main', 'reviews'));
  });
  after(async () => srv.close());

  it('validate the object alone rather than against a partial picture', async () => {
    expect(srv.index.ready).to.equal(false);
    const r = await srv.post('/validate', reviewOf(vs('reviews-canary', 'reviews', 'v7')));
    expect(r.json.response).to.deep.equal({ uid: r.json.response.uid, allowed: true });
    srv.index.markSynced();
    const after = await srv.post('/validate', reviewOf(vs('reviews-canary', 'reviews', 'v7')));
    expect(after.json.response.allowed).to.equal(false);
  });
});

describe('cross-object checks for an object sent without a namespace', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    srv.index.upsert(vs('reviews-main', 'reviews'));
  });
  after(async () => srv.close());

  it('treats it as living in the request namespace (no conflict with its own stored version)', async () => {
    const bare = vs('reviews-main', 'reviews');
    delete (bare.metadata as { namespace?: string }).namespace;
    const r = await srv.post(
      '/validate',
      reviewOf(bare, { namespace: 'shop', operation: 'UPDATE', oldObject: vs('reviews-main', 'reviews') }),
    );
    expect(r.json.response).to.deep.equal({ uid: r.json.response.uid, allowed: true });
  });

  it('and a different one claiming the same host there is denied', async () => {
    const bare = vs('reviews-other', 'reviews');
    delete (bare.metadata as { namespace?: string }).namespace;
    const r = await srv.post('/validate', reviewOf(bare, { namespace: 'shop' }));
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status.message).to.include(
      'also claimed for the mesh by VirtualService shop/reviews-main',
    );
  });
});
