import { expect } from 'chai';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { V1Pod } from '@kubernetes/client-node';
import { reviewOf, startTestServer, type TestServer } from './helpers.js';

function pod(
  ns: string,
  meta: Partial<NonNullable<V1Pod['metadata']>> = {},
  spec: Partial<NonNullable<V1Pod['spec']>> = {},
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: ns, ...meta },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...spec },
  };
}

function decodePatch(b64: string): Operation[] {
  return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as Operation[];
}

describe('webhook POST /inject', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      settings: { nativeSidecar: false, holdApplicationUntilProxyStarts: false },
    });
    srv.namespaces.set('meshed', { 'istio-injection': 'enabled' });
    srv.namespaces.set('off', { 'istio-injection': 'disabled' });
  });
  after(async () => srv.close());

  it('patches a pod of an enabled namespace; the patch yields the injected pod', async () => {
    const p = pod('meshed');
    const r = await srv.post('/inject', reviewOf(p));
    expect(r.json.response).to.include({ allowed: true, patchType: 'JSONPatch' });
    const out = fastJsonPatch.applyPatch(structuredClone(p), decodePatch(r.json.response.patch)).newDocument;
    expect(out.spec!.containers.map((c) => c.name)).to.deep.equal(['web', 'weft-proxy']);
    expect(out.spec!.initContainers!.map((c) => c.name)).to.deep.equal(['weft-init']);
    expect(out.metadata!.annotations!['sidecar.istio.io/status']).to.be.a('string');
  });

  it('uses the request namespace when the pod has none (kubectl create)', async () => {
    const p = pod('meshed');
    delete p.metadata!.namespace;
    const r = await srv.post('/inject', reviewOf(p, { namespace: 'meshed' }));
    expect(r.json.response.patchType).to.equal('JSONPatch');
  });

  const untouched: [string, unknown][] = [
    [
      'a pod of a disabled namespace',
      reviewOf(pod('off', { labels: { 'sidecar.istio.io/inject': 'true' } })),
    ],
    ['a pod of an unlabelled namespace', reviewOf(pod('plain'))],
    ['an opted-out pod', reviewOf(pod('meshed', { labels: { 'sidecar.istio.io/inject': 'false' } }))],
    ['a hostNetwork pod', reviewOf(pod('meshed', {}, { hostNetwork: true }))],
    ['a kube-system pod', reviewOf(pod('kube-system', { labels: { 'sidecar.istio.io/inject': 'true' } }))],
    [
      'an already injected pod',
      reviewOf(pod('meshed', { annotations: { 'sidecar.istio.io/status': '{}' } })),
    ],
    ['an UPDATE', reviewOf(pod('meshed'), { operation: 'UPDATE' })],
    [
      'a non-pod',
      reviewOf({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'meshed' } }),
    ],
  ];
  for (const [title, body] of untouched) {
    it(`allows ${title} without a patch`, async () => {
      const r = await srv.post('/inject', body);
      expect(r.status).to.equal(200);
      expect(r.json.response.allowed).to.equal(true);
      expect(r.json.response.patch).to.equal(undefined);
    });
  }

  it('denies a pod with an invalid annotation, naming it', async () => {
    const r = await srv.post(
      '/inject',
      reviewOf(pod('meshed', { annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': 'http' } })),
    );
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status).to.deep.equal({
      code: 400,
      reason: 'BadRequest',
      message:
        'sidecar injection failed: metadata.annotations[traffic.sidecar.istio.io/excludeInboundPorts]: "http" has "http", which is not a port number 1-65535',
    });
  });

  it('injects but warns about Istio annotations weft ignores', async () => {
    const r = await srv.post(
      '/inject',
      reviewOf(pod('meshed', { annotations: { 'sidecar.istio.io/bootstrapOverride': 'cm' } })),
    );
    expect(r.json.response.patchType).to.equal('JSONPatch');
    expect(r.json.response.warnings).to.deep.equal([
      "metadata.annotations[sidecar.istio.io/bootstrapOverride]: not supported by weft's injector; ignored",
    ]);
  });

  it('answers 400 to a pod without containers', async () => {
    const r = await srv.post(
      '/inject',
      reviewOf({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'meshed' }, spec: {} }),
    );
    expect(r.status).to.equal(400);
    expect(r.json.message).to.match(/request.object: a Pod with spec.containers is required/);
  });

  it('counts injections by result and reason', async () => {
    const m = await srv.get('/metrics');
    expect(m.text).to.match(
      /weft_webhook_injections_total\{result="injected",reason="namespace enabled"\} \d+/,
    );
    expect(m.text).to.match(/weft_webhook_injections_total\{result="skipped",reason="hostNetwork"\} 1/);
    expect(m.text).to.match(/weft_webhook_injections_total\{result="failed",reason="invalid annotation"\} 1/);
  });
});
