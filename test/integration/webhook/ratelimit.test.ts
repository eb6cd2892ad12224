/**
 * Rate-limit YAML through kubectl on a real API server with the real webhook: the seeds' memquota
 * applies as written (and is stored as written); `scope: global` (no global backend) and a limit of 0 are refused with
 * weft's messages; a shadowed memquota override is applied with a kubectl warning.
 */
import { expect } from 'chai';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { SCOPE_LABEL, applyYaml, startWebhook, waitForValidation, type RunningWebhook } from './harness.js';

const seeds = (ns: string, overrides: string): string => `apiVersion: config.istio.io/v1alpha2
kind: memquota
metadata:
  name: handler
  namespace: ${ns}
spec:
  quotas:
  - name: requestcount.instance.istio-system
    maxAmount: 5000
    validDuration: 1s
    overrides:
${overrides}`;
const SOURCE = `    - dimensions:
        destination: ratings
        source: reviews
      maxAmount: 1
      validDuration: 1s
`;
const DESTINATION = `    - dimensions:
        destination: ratings
      maxAmount: 100
      validDuration: 1s
`;

describe('rate limits on a real API server (kubectl, real webhook)', function () {
  this.timeout(180_000);
  let hook: RunningWebhook;
  let ns: string;

  before(async () => {
    await installCRDs();
    hook = await startWebhook();
    ns = await freshNamespace('ratelimit', { labels: { [SCOPE_LABEL]: hook.scope } });
    await waitForValidation(ns);
  });
  after(async () => {
    await hook?.stop();
  });

  it('kubectl apply of the seeds memquota as written: created, no warning, stored as written', async () => {
    const r = await applyYaml(seeds(ns, SOURCE + DESTINATION));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/memquota\.config\.istio\.io\/handler created/);
    expect(r.stderr).to.equal('');
    const get = await testCluster().kubectl([
      'get',
      'memquotas.config.istio.io',
      'handler',
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.quotas[0].overrides[0].dimensions.source}',
    ]);
    expect(get.stdout).to.equal('reviews');
  });

  it('a shadowed override is applied with a warning saying it never applies', async () => {
    const r = await applyYaml(seeds(ns, DESTINATION + SOURCE).replace('name: handler', 'name: shadowed'));
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/Warning: spec\.quotas\[0\]\.overrides\[1\]: never applies: overrides\[0\]/);
  });

  it('scope global is refused without the global backend, naming the settings', async () => {
    const r = await applyYaml(`apiVersion: mesh.weft.dev/v1alpha1
kind: RateLimit
metadata: {name: ratings, namespace: ${ns}}
spec:
  scope: global
  targetHost: ratings
  limit: {requests: 100, unit: second}
`);
    expect(r.code).to.not.equal(0);
    expect(r.stderr)
      .to.contain('spec.scope: scope global')
      .and.contain('--ratelimit-redis')
      .and.contain('--global-ratelimits');
  });

  it('a limit of 0 is refused with weft message; a valid RateLimit is created', async () => {
    const zero = await applyYaml(`apiVersion: mesh.weft.dev/v1alpha1
kind: RateLimit
metadata: {name: zero, namespace: ${ns}}
spec:
  targetHost: ratings
  limit: {requests: 0}
`);
    expect(zero.code).to.not.equal(0);
    expect(zero.stderr).to.contain('requests must be at least 1');
    const ok = await applyYaml(`apiVersion: mesh.weft.dev/v1alpha1
kind: RateLimit
metadata: {name: ratings, namespace: ${ns}}
spec:
  targetHost: ratings
  limit: {requests: 100, unit: second}
  overrides:
  - name: reviews
    source: {workloadLabels: {app: reviews}}
    limit: {requests: 1}
`);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/ratelimit\.mesh\.weft\.dev\/ratings created/);
  });
});
