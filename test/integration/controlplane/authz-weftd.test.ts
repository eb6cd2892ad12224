/**
 * AuthorizationPolicy end to end on the control-plane side: weftd (in-process) on a real API
 * server watches AuthorizationPolicies (v1 and v1beta1) and pushes each proxy the ones that
 * select it; the proxy side is the real discovery client, and every pushed `authz` block is
 * compiled by the proxy engine and asked for a decision, as the proxy would.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { authorize, compileAuthz, guardsListener } from '../../../proxy/authz/engine.js';
import type { AuthzAttributes } from '../../../proxy/authz/attributes.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { FakeProxy, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const SEC = 'security.istio.io';

const attrs = (path: string): AuthzAttributes => ({
  method: 'GET',
  host: 'x',
  path,
  headers: {},
  port: 8080,
  destinationIp: '10.0.0.1',
  sourceIp: '10.0.0.2',
  remoteIp: '10.0.0.2',
});

const names = (c: ProxyConfig): string[] => (c.authz?.policies ?? []).map((p) => p.name);

describe('weftd pushes AuthorizationPolicies (real API server, real discovery client)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let root: string;
  let gw: FakeProxy;
  let app: FakeProxy;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('authz');
    root = await freshNamespace('authz-root');
    dir = weftdServingDir('weftd-authz');
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    await kube.create(
      pod(ns, 'gw-1', { app: 'gw', 'gateway.networking.k8s.io/gateway-name': 'public' }, 'app'),
    );
    await kube.create(pod(ns, 'app-1', { app: 'reviews' }, 'app'));
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { mesh: { ...structuredClone(DEFAULT_MESH), rootNamespace: root }, pingIntervalMs: 300 },
    );
    const token = await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] });
    const address = `127.0.0.1:${weftd.discoveryPort}`;
    gw = new FakeProxy(address, dir, token, 'gateway', ns, 'gw-1');
    app = new FakeProxy(address, dir, token, 'sidecar', ns, 'app-1');
  });

  after(async () => {
    gw?.client.stop();
    app?.client.stop();
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without policies, no authz block is pushed', async () => {
    expect((await gw.until('gateway config', () => true)).authz).to.equal(undefined);
    expect((await app.until('sidecar config', () => true)).authz).to.equal(undefined);
  });

  it('a v1beta1 DENY with a Gateway targetRef reaches the gateway only, and denies /admin there', async () => {
    await kube.create({
      apiVersion: `${SEC}/v1beta1`,
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-admin', namespace: ns },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }],
      },
    });
    const c = await gw.until('the gateway gets no-admin', (x) => names(x).includes(`${ns}/no-admin`));
    const compiled = compileAuthz(c.authz!);
    expect(guardsListener(compiled, 'any-gateway-listener')).to.equal(true);
    expect(authorize(compiled, attrs('/admin/x'))).to.deep.include({
      decision: 'deny',
      policy: `${ns}/no-admin`,
      rule: 0,
    });
    expect(authorize(compiled, attrs('/public')).decision).to.equal('allow');
    expect(names(app.latest!)).to.not.include(`${ns}/no-admin`);
  });

  it('a root-namespace ALLOW with a selector is mesh-wide for the pods it selects; sidecars get it for inbound only', async () => {
    await kube.create({
      apiVersion: `${SEC}/v1`,
      kind: 'AuthorizationPolicy',
      metadata: { name: 'reviews-get', namespace: root },
      spec: {
        selector: { matchLabels: { app: 'reviews' } },
        rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
      },
    });
    const c = await app.until('the sidecar gets reviews-get', (x) =>
      names(x).includes(`${root}/reviews-get`),
    );
    expect(c.authz!.listeners).to.deep.equal([]); // the outbound listener is never guarded
    const compiled = compileAuthz(c.authz!);
    expect(guardsListener(compiled, 'outbound')).to.equal(false);
    expect(authorize(compiled, attrs('/')).decision).to.equal('allow');
    expect(authorize(compiled, { ...attrs('/'), method: 'DELETE' })).to.deep.include({
      decision: 'deny',
      reason: 'no ALLOW policy matched',
    });
    expect(names(gw.latest!)).to.not.include(`${root}/reviews-get`);
  });

  it('an edit is pushed, a delete removes the block', async () => {
    await kube.mergePatch(
      { apiVersion: `${SEC}/v1`, kind: 'AuthorizationPolicy', name: 'no-admin', namespace: ns },
      { spec: { rules: [{}] } },
    );
    const c = await gw.until('deny-all after the edit', (x) => {
      const p = x.authz?.policies.find((q) => q.name === `${ns}/no-admin`);
      return p !== undefined && JSON.stringify(p.rules) === '[{}]';
    });
    expect(authorize(compileAuthz(c.authz!), attrs('/public')).decision).to.equal('deny');
    await kube.delete({
      apiVersion: `${SEC}/v1`,
      kind: 'AuthorizationPolicy',
      name: 'no-admin',
      namespace: ns,
    });
    await gw.until('no block after the delete', (x) => x.authz === undefined);
  });
});
