/**
 * Locality failover at the proxy, with loopback backends: two endpoints in the proxy's own
 * locality and one in another region, translated from a ServiceEntry (endpoint `locality`) and a
 * DestinationRule with outlier detection, then resolved for a proxy in `us-east/us-east-1a` as
 * weftd does (localizeClusters). Traffic stays local while the local endpoints are healthy, moves
 * to the other region once outlier detection has ejected them, and comes back when they return.
 */
import { expect } from 'chai';
import type http from 'node:http';
import type { DestinationRule, ServiceEntry, VirtualService } from '../../../pkg/api/index.js';
import { translate } from '../../../pkg/translate/index.js';
import { localizeClusters } from '../../../pkg/translate/locality.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { waitFor } from '../../support/index.js';
import { request, startProxy, upstream, type Started, type Upstream } from './helpers.js';

const CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';

function config(ups: { u: Upstream; locality: string }[], me: string): ProxyConfig {
  const se = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews.default.svc.cluster.local'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
      endpoints: ups.map(({ u, locality }) => ({
        address: '127.0.0.1',
        ports: { http: u.port },
        labels: { name: u.name },
        locality,
      })),
    },
  } as ServiceEntry;
  const dr = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      host: 'reviews',
      trafficPolicy: {
        loadBalancer: { simple: 'ROUND_ROBIN' },
        outlierDetection: {
          consecutive5xxErrors: 1,
          interval: '100ms',
          baseEjectionTime: '500ms',
          maxEjectionPercent: 100,
        },
      },
    },
  } as DestinationRule;
  // no retries: each request reaches exactly one endpoint, so what the client sees is the pick
  const vs = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews'],
      http: [{ retries: { attempts: 0 }, route: [{ destination: { host: 'reviews' } }] }],
    },
  } as VirtualService;
  const r = translate({
    serviceEntries: [se],
    destinationRules: [dr],
    virtualServices: [vs],
    listener: { address: '127.0.0.1', port: 0 },
  });
  expect(Object.keys(r.localityLb ?? {})).to.deep.equal([CLUSTER]);
  return {
    ...r.config,
    clusters: localizeClusters(r.config.clusters, r.localityLb!, { locality: me, labels: {} }),
  };
}

const status = (code: number, name: string) => (_q: http.IncomingMessage, res: http.ServerResponse) =>
  res.writeHead(code, { 'x-upstream': name }).end(name);

interface ClustersDump {
  clusters: {
    name: string;
    priorityLoad?: number[];
    endpoints: { address: string; healthy: boolean; priority?: number }[];
  }[];
}

describe('proxy: locality failover with outlier detection (loopback backends)', function () {
  this.timeout(60_000);
  let local1: Upstream;
  let local2: Upstream;
  let remote: Upstream;
  let p: Started;
  const dump = async (): Promise<ClustersDump['clusters'][number]> =>
    (JSON.parse((await request(p.admin, { path: '/clusters' })).body) as ClustersDump).clusters.find(
      (c) => c.name === CLUSTER,
    )!;

  before(async () => {
    local1 = await upstream('local1');
    local2 = await upstream('local2');
    remote = await upstream('remote');
    p = await startProxy(
      config(
        [
          { u: local1, locality: 'us-east/us-east-1a' },
          { u: remote, locality: 'us-west/us-west-1a' },
          { u: local2, locality: 'us-east/us-east-1a' },
        ],
        'us-east/us-east-1a',
      ),
    );
  });
  after(async () => {
    await p?.stop();
    for (const u of [local1, local2, remote]) await u?.close();
  });

  it("while the local endpoints are healthy, every request stays in the proxy's locality", async () => {
    const bodies = [];
    for (let i = 0; i < 40; i++) bodies.push((await request(p.port)).body);
    // (the cluster's runtime exists once a request used it)
    const c = await dump();
    expect(c.priorityLoad).to.deep.equal([100, 0]);
    expect(c.endpoints.map((e) => e.priority ?? 0)).to.deep.equal([0, 1, 0]);
    expect(bodies.filter((b) => b === 'remote')).to.deep.equal([]);
    expect(bodies.filter((b) => b === 'local1').length).to.equal(20);
    expect(bodies.filter((b) => b === 'local2').length).to.equal(20);
  });

  it('once outlier detection ejects the local endpoints, every request fails over to the other region', async () => {
    local1.handler = status(503, 'local1');
    local2.handler = status(503, 'local2');
    // each local endpoint is ejected by its first 503; until both are, some requests still reach one
    for (
      let i = 0;
      i < 200 && (await dump()).endpoints.some((e) => (e.priority ?? 0) === 0 && e.healthy);
      i++
    )
      await request(p.port);
    const c = await dump();
    expect(c.endpoints.filter((e) => (e.priority ?? 0) === 0).map((e) => e.healthy)).to.deep.equal([
      false,
      false,
    ]);
    expect(c.priorityLoad).to.deep.equal([0, 100]);
    const seenLocal = local1.seen.length + local2.seen.length;
    const replies = [];
    for (let i = 0; i < 20; i++) replies.push(await request(p.port));
    expect(replies.map((r) => `${r.status} ${r.body}`)).to.deep.equal(Array(20).fill('200 remote'));
    expect(local1.seen.length + local2.seen.length).to.equal(seenLocal);
  });

  it('when the ejections end, traffic returns to the local endpoints', async () => {
    local1.handler = status(200, 'local1');
    local2.handler = status(200, 'local2');
    await waitFor('the local endpoints are back', async () => {
      const c = await dump();
      return c.endpoints.every((e) => e.healthy) ? c : null;
    });
    const before = remote.seen.length;
    const bodies = [];
    for (let i = 0; i < 20; i++) bodies.push((await request(p.port)).body);
    expect(bodies.every((b) => b === 'local1' || b === 'local2')).to.equal(true);
    expect(remote.seen.length).to.equal(before);
  });
});
