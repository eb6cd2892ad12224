/**
 * Locality load balancing on the control-plane side, against a real API server: Node objects in
 * two zones of one region and a third in another region, pods bound to them, a Service whose
 * EndpointSlice names the pods and nodes, and a DestinationRule with outlier detection. weftd
 * (in-process) pushes each proxy, over the real discovery client, the endpoints' priorities for
 * the proxy's own locality (its pod's node); relabelling a node's zone re-ranks them; `distribute`
 * weights the localities; the proxy's cluster runtime groups the pushed endpoints by priority.
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { Cluster, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { ClusterRuntime } from '../../../proxy/upstream/cluster.js';
import { freshNamespace, installCRDs, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const REGION = 'topology.kubernetes.io/region';
const ZONE = 'topology.kubernetes.io/zone';

describe('weftd: locality-aware endpoints per proxy (real API server, Node objects)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  const node: Record<'a' | 'b' | 'w', string> = { a: '', b: '', w: '' };
  const latest = new Map<string, ProxyConfig>();
  const clients: DiscoveryClient[] = [];

  /** A sidecar's discovery stream for pod `name`, keeping the last config it was pushed. */
  function connect(name: string, token: string): void {
    const tokenPath = join(dir, `${name}.token`);
    writeFileSync(tokenPath, token);
    const client = new DiscoveryClient({
      address: `127.0.0.1:${weftd.discoveryPort}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath,
      request: { kind: 'sidecar', namespace: ns, pod: name },
      log,
      onConfig: (config) => {
        latest.set(name, config);
        return Promise.resolve();
      },
      pingIntervalMs: 300,
    });
    clients.push(client);
    void client.run();
    onCleanup(async () => client.stop());
  }

  const reviews = (c: ProxyConfig | undefined): Cluster | undefined =>
    c?.clusters.find((x) => x.name === `outbound|9080||reviews.${ns}.svc.cluster.local`);
  /** pod name (by endpoint IP) → priority, once the cluster exists. */
  const ips: Record<string, string> = {
    '10.244.1.1': 'reviews-a',
    '10.244.2.1': 'reviews-b',
    '10.244.3.1': 'reviews-w',
  };
  const priorities = (c: Cluster): Record<string, number> =>
    Object.fromEntries(c.endpoints.map((e) => [ips[e.address] ?? e.address, e.priority ?? 0]));
  const until = (proxy: string, what: string, want: Record<string, number>): Promise<Cluster> =>
    waitFor(`${proxy}: ${what}`, () => {
      const c = reviews(latest.get(proxy));
      return c && JSON.stringify(priorities(c)) === JSON.stringify(want) ? c : null;
    });

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('locality');
    dir = weftdServingDir('weftd-locality');

    // Nodes are cluster-scoped: named after the namespace so parallel suites never share one
    const zones = {
      a: ['us-east', 'us-east-1a'],
      b: ['us-east', 'us-east-1b'],
      w: ['us-west', 'us-west-1a'],
    };
    for (const [k, [region, zone]] of Object.entries(zones) as [keyof typeof node, string[]][]) {
      node[k] = `${ns}-${k}`;
      await kube.create({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node[k], labels: { [REGION]: region!, [ZONE]: zone! } },
      });
      const name = node[k];
      onCleanup(async () => void (await kube.delete({ apiVersion: 'v1', kind: 'Node', name })));
    }
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    const onNode = (o: KubeObject, n: string): KubeObject => ({
      ...o,
      spec: { ...(o.spec as object), nodeName: n },
    });
    const created: Record<string, KubeObject> = {};
    for (const [name, n, app] of [
      ['reviews-a', node.a, 'reviews'],
      ['reviews-b', node.b, 'reviews'],
      ['reviews-w', node.w, 'reviews'],
      ['client-a', node.a, 'client'],
      ['client-b', node.b, 'client'],
    ] as const)
      created[name] = await kube.create(onNode(pod(ns, name, { app }, 'app'), n));
    // no selector: the test's EndpointSlice is the only one (no controller writes another)
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'reviews', namespace: ns },
      spec: { ports: [{ name: 'http', port: 9080, targetPort: 8080 }] },
    });
    await kube.create({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'reviews-zones',
        namespace: ns,
        labels: {
          'kubernetes.io/service-name': 'reviews',
          'endpointslice.kubernetes.io/managed-by': 'weft-test',
        },
      },
      addressType: 'IPv4',
      endpoints: Object.entries(ips).map(([ip, name]) => ({
        addresses: [ip],
        conditions: { ready: true },
        nodeName: (created[name]!.spec as { nodeName: string }).nodeName,
        targetRef: { kind: 'Pod', name, namespace: ns },
      })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    await kube.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: ns },
      spec: {
        host: 'reviews',
        trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, interval: '1s' } },
      },
    });
    weftd = await startTestWeftd({ kube, ns, tlsDir: dir, log }, { pingIntervalMs: 300 });
    const token = await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] });
    connect('client-a', token);
    connect('client-b', token);
  });

  after(async () => {
    for (const c of clients) c.stop();
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each proxy gets priority 0 for its own zone, 1 for the region's other zone, 2 for the other region", async () => {
    const a = await until('client-a', 'us-east-1a first', { 'reviews-a': 0, 'reviews-b': 1, 'reviews-w': 2 });
    await until('client-b', 'us-east-1b first', { 'reviews-a': 1, 'reviews-b': 0, 'reviews-w': 2 });
    expect(a.endpoints.map((e) => e.locality).sort()).to.deep.equal([
      'us-east/us-east-1a',
      'us-east/us-east-1b',
      'us-west/us-west-1a',
    ]);
    // what the proxy makes of it: three levels, all load on its own zone while it is healthy
    const rt = new ClusterRuntime(a, 'k');
    onCleanup(() => rt.destroy());
    expect(rt.priorityLoad()).to.deep.equal([100, 0, 0]);
    expect(latest.get('client-a')!.version).to.not.equal(latest.get('client-b')!.version);
  });

  it("relabelling a node's zone re-ranks the endpoints on it and the proxies on it", async () => {
    const n = (await kube.get({ apiVersion: 'v1', kind: 'Node', name: node.b }))!;
    await kube.replace({
      ...n,
      metadata: { ...n.metadata, labels: { ...n.metadata.labels, [ZONE]: 'us-east-1a' } },
    });
    // client-b (on the relabelled node) and reviews-b are now in us-east-1a with client-a and reviews-a
    await until('client-a', 'reviews-b joined its zone', { 'reviews-a': 0, 'reviews-b': 0, 'reviews-w': 1 });
    await until('client-b', 'its node moved zone', { 'reviews-a': 0, 'reviews-b': 0, 'reviews-w': 1 });
  });

  it('distribute weights localities (and drops the ones it does not name) instead of priorities', async () => {
    const dr = (await kube.get({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      namespace: ns,
      name: 'reviews',
    }))!;
    await kube.replace({
      ...dr,
      spec: {
        host: 'reviews',
        trafficPolicy: {
          loadBalancer: {
            localityLbSetting: { distribute: [{ from: 'us-east/*', to: { 'us-west/*': 100 } }] },
          },
        },
      },
    });
    const c = await waitFor('client-a: only us-west, weighted', () => {
      const x = reviews(latest.get('client-a'));
      return x && x.endpoints.length === 1 ? x : null;
    });
    // (the API server may copy the node's topology labels onto the pod: labels are not compared)
    expect(c.endpoints[0]).to.deep.include({
      address: '10.244.3.1',
      port: 8080,
      locality: 'us-west/us-west-1a',
      localityWeight: 100,
    });
    expect(c.endpoints[0]!.priority).to.equal(undefined);
  });
});
