/**
 * Sidecar scoping through a real weftd and real discovery streams (issue #19): a proxy in a
 * namespace with a Sidecar `./*` receives only its namespace's hosts; one selected by a
 * REGISTRY_ONLY Sidecar gets that policy, and a real proxy running that config on the sidecar's
 * capture path answers an unknown host 404 NR and closes TCP to an unknown destination; a
 * Service annotated `networking.istio.io/exportTo: .` stays in its namespace; deleting the
 * Sidecar pushes every host again.
 */
import { expect } from 'chai';
import net from 'node:net';
import { rmSync } from 'node:fs';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { raw, startProxy, type Started } from '../proxy/helpers.js';
import { FakeProxy, createReviews, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';

const hostsOf = (c: ProxyConfig): string[] =>
  [
    ...new Set(
      c.listeners.flatMap((l) =>
        l.protocol === 'HTTP' ? l.virtualHosts.map((v) => v.name.replace(/:\d+$/, '')) : [],
      ),
    ),
  ].sort();

describe('weftd: Sidecar scoping and REGISTRY_ONLY (real weftd)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let a: string;
  let b: string;
  const proxies: FakeProxy[] = [];
  let running: Started | undefined;
  let capture: net.Server | undefined;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    a = await freshNamespace('scope-a');
    b = await freshNamespace('scope-b');
    const root = await freshNamespace('scope-root');
    dir = weftdServingDir('weftd-scope');
    for (const n of [a, b])
      await kube.create({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'app', namespace: n },
      });
    await createReviews(kube, a);
    await createReviews(kube, b);
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'private', namespace: b, annotations: { 'networking.istio.io/exportTo': '.' } },
      spec: { ports: [{ name: 'http', port: 80 }], selector: { app: 'private' } },
    });
    await kube.create(pod(a, 'web-1', { app: 'web' }, 'app'));
    await kube.create(pod(a, 'locked-1', { app: 'locked' }, 'app'));
    await kube.create(pod(b, 'web-2', { app: 'web' }, 'app'));
    await kube.create({
      apiVersion: NET,
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: a },
      spec: { egress: [{ hosts: ['./*'] }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'Sidecar',
      metadata: { name: 'locked', namespace: a },
      spec: {
        workloadSelector: { labels: { app: 'locked' } },
        egress: [{ hosts: ['./*'] }],
        outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      },
    });
    weftd = await startTestWeftd(
      { kube, ns: a, tlsDir: dir, log },
      { mesh: { ...structuredClone(WHOLE_SCOPE_MESH), rootNamespace: root }, pingIntervalMs: 300 },
    );
  });

  after(async () => {
    capture?.close();
    await running?.stop();
    for (const p of proxies) p.client.stop();
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (
    ns: string,
    name: string,
    ready: (c: ProxyConfig) => boolean,
  ): Promise<FakeProxy> => {
    const token = await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] });
    const p = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, name);
    proxies.push(p);
    await p.until(`${ns}/${name} config`, ready);
    return p;
  };
  const reviews = (ns: string): string => `reviews.${ns}.svc.cluster.local`;

  it('a proxy under `./*` receives only its namespace; another namespace sees every exported host', async () => {
    const web = await connect(a, 'web-1', (c) => hostsOf(c).includes(reviews(a)));
    expect(hostsOf(web.latest!)).to.deep.equal([reviews(a)]);
    expect(web.latest!.scope).to.deep.equal({ sidecar: `${a}/default`, via: 'namespace' });
    expect(web.latest!.outboundTrafficPolicy).to.equal(undefined);
    const other = await connect(b, 'web-2', (c) => hostsOf(c).includes(reviews(b)));
    expect(hostsOf(other.latest!)).to.include.members([
      reviews(a),
      reviews(b),
      `private.${b}.svc.cluster.local`,
    ]);
    // the annotated Service stays in its namespace: `a` never gets it, even without a Sidecar there
    expect(hostsOf(web.latest!)).to.not.include(`private.${b}.svc.cluster.local`);
  });

  it('a REGISTRY_ONLY proxy refuses hosts outside the registry on the real capture path', async () => {
    const locked = await connect(a, 'locked-1', (c) => c.outboundTrafficPolicy !== undefined);
    const cfg = locked.latest!;
    expect(cfg.scope).to.deep.equal({ sidecar: `${a}/locked`, via: 'workload' });
    expect(hostsOf(cfg)).to.deep.equal([reviews(a)]);
    // the real proxy, its outbound listener unbound as in a sidecar, fed what weftd sent
    running = await startProxy(cfg, { unbound: () => true });
    const proxy = running.proxy;
    const echo = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`echo:${d.toString()}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const dst: OriginalDst = {
      address: '127.0.0.1',
      port: (echo.address() as net.AddressInfo).port,
      family: 4,
    };
    const env: CaptureEnv = {
      log,
      metrics: proxy.metrics,
      outboundHttp: () => proxy.unboundHttp(),
      handOff: (s) => proxy.handOff(s),
      registryOnly: () => proxy.registryOnly(),
      appHost: '127.0.0.1',
      capturePorts: [],
      sniffTimeoutMs: 200,
      dst: () => dst,
    };
    capture = net.createServer((s) => void onOutbound(env, s));
    await new Promise<void>((r) => capture!.listen(0, '127.0.0.1', r));
    const port = (capture.address() as net.AddressInfo).port;
    try {
      const http = await raw(
        port,
        'GET / HTTP/1.1\r\nHost: unknown.example.com\r\nConnection: close\r\n\r\n',
      );
      expect(http).to.match(/^HTTP\/1\.1 404/);
      expect(http.toLowerCase()).to.contain('x-weft-response-flags: nr');
      expect(await raw(port, 'hello'), 'TCP to an unknown destination is closed').to.equal('');
      expect(proxy.metrics.counters.get('weft_proxy_blackhole_connections_total')).to.equal(1);
      // the review service's cluster IP on its port is a registry destination
      const svc = await kube.get({ apiVersion: 'v1', kind: 'Service', name: 'reviews', namespace: a });
      expect(proxy.registryOnly()!.allows((svc!.spec as { clusterIP: string }).clusterIP, 9080)).to.equal(
        true,
      );
      expect(proxy.registryOnly()!.allows('127.0.0.1', 1)).to.equal(false);
    } finally {
      echo.close();
    }
  });

  it('deleting the Sidecar pushes every host to the proxy it scoped', async () => {
    // (each test's streams are stopped after it: this one connects again, scoped, then watches)
    const web = await connect(a, 'web-1', (c) => c.scope?.sidecar === `${a}/default`);
    expect(hostsOf(web.latest!)).to.deep.equal([reviews(a)]);
    await kube.delete({ apiVersion: NET, kind: 'Sidecar', name: 'default', namespace: a });
    const cfg = await web.until('every host after the Sidecar is gone', (c) =>
      hostsOf(c).includes(reviews(b)),
    );
    expect(cfg.scope).to.equal(undefined);
  });
});
