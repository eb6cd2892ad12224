/**
 * Rules that apply to some traffic only, through a real weftd and real discovery streams (issue
 * #15): two sidecars with different labels get different routes from one VirtualService
 * (sourceLabels), and a DestinationRule in the client's namespace beats the one in the service's
 * namespace for that client only.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { HttpListener, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { FakeProxy, createReviews, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';

describe('weftd: routes and DestinationRules per client (sourceLabels, DR precedence)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let client: string;
  let svc: string;
  const proxies: FakeProxy[] = [];
  const host = (): string => `reviews.${svc}.svc.cluster.local`;

  const routeNames = (c: ProxyConfig): string[] =>
    (
      (c.listeners[0] as HttpListener).virtualHosts.find((v) => v.name === `${host()}:9080`)?.routes ?? []
    ).map((r) => r.name ?? '');
  const lbOf = (c: ProxyConfig): unknown =>
    c.clusters.find((x) => x.name === `outbound|9080|v1|${host()}`)?.loadBalancer;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    client = await freshNamespace('route-client');
    svc = await freshNamespace('route-svc');
    const root = await freshNamespace('route-root');
    dir = weftdServingDir('weftd-routing');
    for (const n of [client, svc])
      await kube.create({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'app', namespace: n },
      });
    await kube.create(pod(client, 'web-1', { app: 'web' }, 'app'));
    await kube.create(pod(client, 'api-1', { app: 'api' }, 'app'));
    await kube.create(pod(svc, 'web-2', { app: 'web' }, 'app'));
    // reviews in `svc` with its DestinationRule (subsets v1/v2), plus a policy there
    await createReviews(kube, svc);
    await kube.create({
      apiVersion: NET,
      kind: 'DestinationRule',
      metadata: { name: 'reviews-lb', namespace: svc },
      spec: { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } },
    });
    // the client namespace's own rule for the same host: its clients use it whole
    await kube.create({
      apiVersion: NET,
      kind: 'DestinationRule',
      metadata: { name: 'reviews-from-client', namespace: client },
      spec: {
        host: `reviews.${svc}.svc.cluster.local`,
        trafficPolicy: { loadBalancer: { simple: 'RANDOM' } },
        subsets: [{ name: 'v1', labels: { version: 'v1' } }],
      },
    });
    // a root-namespace rule: used by nobody here (both namespaces above have one)
    await kube.create({
      apiVersion: NET,
      kind: 'DestinationRule',
      metadata: { name: 'reviews-root', namespace: root },
      spec: {
        host: `reviews.${svc}.svc.cluster.local`,
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: svc },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            name: 'web',
            match: [{ sourceLabels: { app: 'web' } }],
            route: [{ destination: { host: 'reviews', subset: 'v2' } }],
          },
          {
            name: 'client-ns',
            match: [{ sourceNamespace: client }],
            route: [{ destination: { host: 'reviews', subset: 'v1' } }],
          },
          { name: 'rest', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
        ],
      },
    });
    weftd = await startTestWeftd(
      { kube, ns: svc, tlsDir: dir, log },
      { mesh: { ...structuredClone(WHOLE_SCOPE_MESH), rootNamespace: root }, pingIntervalMs: 300 },
    );
  });

  after(async () => {
    for (const p of proxies) p.client.stop();
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (ns: string, name: string): Promise<ProxyConfig> => {
    const token = await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] });
    const p = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, name);
    proxies.push(p);
    return p.until(`${ns}/${name} config with the reviews routes`, (c) => routeNames(c).length > 0);
  };

  it('two sidecars with different labels get different routes from one VirtualService', async () => {
    const web = await connect(client, 'web-1');
    const api = await connect(client, 'api-1');
    const web2 = await connect(svc, 'web-2');
    expect(routeNames(web)).to.deep.equal(['web', 'client-ns', 'rest']);
    expect(routeNames(api)).to.deep.equal(['client-ns', 'rest']);
    expect(routeNames(web2)).to.deep.equal(['web', 'rest']);
    expect(web.version).to.not.equal(api.version);
  });

  it("a DestinationRule in the client's namespace beats the service namespace's, for that client only", async () => {
    const api = await connect(client, 'api-1');
    const web2 = await connect(svc, 'web-2');
    expect(lbOf(api)).to.deep.equal({ simple: 'RANDOM' });
    // the client rule defines v1 only: its clients have no v2 cluster (Istio uses one namespace's rule whole)
    expect(api.clusters.map((c) => c.name)).to.not.include(`outbound|9080|v2|${host()}`);
    expect(lbOf(web2)).to.deep.equal({ simple: 'LEAST_REQUEST' });
    expect(web2.clusters.map((c) => c.name)).to.include(`outbound|9080|v2|${host()}`);
  });
});
