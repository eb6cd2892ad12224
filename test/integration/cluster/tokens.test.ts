/**
 * Service-account tokens as weft's workload CA will use them: a TokenRequest with an
 * audience, checked by TokenReview — accepted for that audience, rejected for another.
 */
import { expect } from 'chai';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { freshNamespace, testCluster } from '../../support/index.js';

describe('local cluster: TokenRequest and TokenReview', function () {
  this.timeout(30_000);

  async function tokenFor(ns: string, sa: string, audience: string): Promise<string> {
    const core = testCluster().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: ns,
      body: { spec: { audiences: [audience], expirationSeconds: 600 } },
    });
    const token = tr.status?.token ?? '';
    expect(token.split('.')).to.have.length(3, 'a JWT');
    return token;
  }

  async function review(token: string, audiences: string[]) {
    const authn = testCluster().kubeConfig.makeApiClient(AuthenticationV1Api);
    const r = await authn.createTokenReview({ body: { spec: { token, audiences } } });
    return r.status ?? {};
  }

  it('accepts the token for its audience and says who it is', async () => {
    const ns = await freshNamespace('tokens');
    const token = await tokenFor(ns, 'workload', 'weft-ca');
    const status = await review(token, ['weft-ca']);
    expect(status.authenticated).to.equal(true);
    expect(status.user?.username).to.equal(`system:serviceaccount:${ns}:workload`);
    expect(status.user?.groups).to.include('system:serviceaccounts');
    expect(status.audiences).to.deep.equal(['weft-ca']);
  });

  it('rejects the same token for another audience', async () => {
    const ns = await freshNamespace('tokens');
    const token = await tokenFor(ns, 'workload', 'weft-ca');
    const status = await review(token, ['someone-else']);
    expect(status.authenticated).to.not.equal(true);
    expect(status.error).to.match(/audience/i);
  });

  it('rejects a token that is not one the API server issued', async () => {
    const status = await review('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl', ['weft-ca']);
    expect(status.authenticated).to.not.equal(true);
  });
});
