/**
 * The webhook helpers against the real API server: a local HTTPS admission server with a
 * makeServingCert() certificate, registered with registerWebhook() (URL + caBundle), is called
 * for its namespace only, and can deny and mutate.
 */
import { expect } from 'chai';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  apiErrorMessage,
  freshNamespace,
  makeServingCert,
  registerWebhook,
  testCluster,
} from '../../support/index.js';

interface Review {
  request?: { uid?: string; object?: { metadata?: { labels?: Record<string, string> } } };
}

/** Denies ConfigMaps labelled deny=yes; on /mutate adds label mutated=yes via JSON patch. */
async function admissionServer(): Promise<{
  url: string;
  caBundle: string;
  calls: () => number;
  close: () => void;
}> {
  const tls = makeServingCert(['127.0.0.1']);
  let calls = 0;
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls++;
      const review = JSON.parse(body) as Review;
      const labels = review.request?.object?.metadata?.labels ?? {};
      const response: Record<string, unknown> = {
        uid: review.request?.uid ?? '',
        allowed: labels.deny !== 'yes',
      };
      if (labels.deny === 'yes') response.status = { code: 403, message: 'denied by the test webhook' };
      // The API server appends ?timeout=10s to the configured URL.
      if (req.url?.startsWith('/mutate') === true && labels.deny !== 'yes') {
        // `add` on /metadata/labels replaces the map, and works when the object has none.
        const patch = [{ op: 'add', path: '/metadata/labels', value: { ...labels, mutated: 'yes' } }];
        response.patchType = 'JSONPatch';
        response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    caBundle: tls.caBundle,
    calls: () => calls,
    close: () => server.close(),
  };
}

const configMapRules = [
  { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE' as const], resources: ['configmaps'] },
];

describe('test support: registerWebhook', function () {
  this.timeout(60_000);
  let server: Awaited<ReturnType<typeof admissionServer>>;

  beforeEach(async () => {
    server = await admissionServer();
  });
  afterEach(() => server.close());

  it('registers a validating webhook that is in effect when it returns, for its namespace only', async () => {
    const core = testCluster().kubeConfig.makeApiClient(CoreV1Api);
    const ns = await freshNamespace('webhook-validate');
    const other = await freshNamespace('webhook-other');
    const hook = await registerWebhook({
      type: 'validating',
      url: `${server.url}/validate`,
      caBundle: server.caBundle,
      rules: configMapRules,
      namespaces: [ns],
    });

    const denied = await core
      .createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'no', labels: { deny: 'yes' } } },
      })
      .then(() => 'admitted', apiErrorMessage);
    expect(denied).to.equal(
      `admission webhook "${hook.webhookName}" denied the request: denied by the test webhook`,
    );

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'ok' } } });
    const callsBefore = server.calls();
    await core.createNamespacedConfigMap({
      namespace: other,
      body: { metadata: { name: 'no', labels: { deny: 'yes' } } },
    });
    expect(server.calls()).to.equal(callsBefore, 'not called for another namespace');

    await hook.unregister();
  });

  it('registers a mutating webhook whose patch lands on the stored object', async () => {
    const core = testCluster().kubeConfig.makeApiClient(CoreV1Api);
    const ns = await freshNamespace('webhook-mutate');
    await registerWebhook({
      type: 'mutating',
      url: `${server.url}/mutate`,
      caBundle: server.caBundle,
      rules: configMapRules,
      namespaces: [ns],
    });
    const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'm' } } });
    expect(cm.metadata?.labels).to.deep.equal({ mutated: 'yes' });
  });

  it('rejects a webhook URL that is not https', async () => {
    const err = await registerWebhook({
      type: 'validating',
      url: 'http://127.0.0.1:1/x',
      caBundle: server.caBundle,
      rules: configMapRules,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).to.match(/WEFT_CLUSTER_USAGE: registerWebhook: url must be https/);
  });
});
