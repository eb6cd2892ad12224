/**
 * On-demand hosts end to end on loopback (ADR 0023), no cluster: weftd's real DiscoveryService
 * and ConfigGenerator (mesh `onDemandHosts: true`) on a real HTTPS server over a hand-built
 * registry, and a real `proxy sidecar` process connected to it. Its outbound capture is reached
 * directly (routing by Host; no original destination, so an unknown host is the router's 404 NR).
 *
 *  - a host of the proxy's own namespace is there from the start (no ask);
 *  - the first request to another namespace's host is held, weftd subscribes the proxy and pushes,
 *    and the request is routed (200 from that service); so is a new Host on a keep-alive
 *    connection the proxy already serves;
 *  - a host exportTo hides from the proxy's namespace, or one its Sidecar does not import, is
 *    answered 404 NR and never reaches its config; an unknown one too;
 *  - a flood of random Host headers is answered (404 NR, or 503 NC past the proxy's bounds)
 *    without weftd resolving more names than the proxy's ask bucket lets through, and the proxy
 *    keeps routing what it holds;
 *  - a cut stream: the proxy reconnects and re-declares its subscription, so the host stays.
 */
import { expect } from 'chai';
import type { DiscoveryService } from '../../../controlplane/discovery.js';
import type { WeftdMetrics } from '../../../controlplane/metrics.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startDiscoveryServer, type DiscoveryServer } from '../../support/discovery-server.js';
import { startProxyProcess, type ProxyProcess } from '../../support/proxy-process.js';
import { SnapshotRegistry } from '../../support/snapshot-registry.js';
import { waitFor } from '../../support/wait.js';
import { raw, request, sleep, upstream, type Upstream } from './helpers.js';

const log = createLogger('test', { silent: true });

const service = (name: string, namespace: string, port: number, exportTo?: string[]) => ({
  host: `${name}.${namespace}.svc.cluster.local`,
  namespace,
  addresses: [],
  ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
  endpoints: [{ address: '127.0.0.1', labels: {}, ports: { http: port } }],
  ...(exportTo ? { exportTo } : {}),
});

async function counter(metrics: WeftdMetrics, result: string): Promise<number> {
  const m = await metrics.onDemand.get();
  return m.values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('on-demand hosts: real weftd push server and a real proxy sidecar process', function () {
  this.timeout(90_000);
  let weftd: DiscoveryServer;
  let discovery: DiscoveryService;
  let metrics: WeftdMetrics;
  let proxy: ProxyProcess | undefined;
  let ports: Record<string, number> = {};
  const ups: Upstream[] = [];

  before(async () => {
    const [web, reviews, secret, ratings] = await Promise.all([
      upstream('web'),
      upstream('reviews'),
      upstream('secret'),
      upstream('ratings'),
    ]);
    ups.push(web, reviews, secret, ratings);
    const registry = new SnapshotRegistry(() => ({
      services: [
        service('web', 'shop', web.port),
        service('reviews', 'prod', reviews.port),
        service('ratings', 'prod', ratings.port),
        service('secret', 'vault', secret.port, ['.']),
        service('billing', 'pay', secret.port),
      ],
      // the proxy's Sidecar lets it see its namespace and prod only: billing.pay is not its to ask for
      sidecars: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Sidecar',
          metadata: { name: 'default', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
          spec: { egress: [{ hosts: ['./*', 'prod/*'] }] },
        },
      ],
    }));
    weftd = await startDiscoveryServer({
      registry,
      onDemandHosts: true,
      identity: { namespace: 'shop', serviceAccount: 'sa', podName: 'web-1' },
      log,
    });
    ({ discovery, metrics } = weftd);
    proxy = await startProxyProcess('sidecar', weftd, { POD_NAME: 'web-1', POD_NAMESPACE: 'shop' }, [
      '--sniff-timeout-ms',
      '300',
    ]);
    ports = proxy.ports;
    await waitFor('the first config', () => discovery.list().some((c) => c.version !== null), 30_000);
  });

  after(async () => {
    proxy?.child.kill('SIGKILL');
    await weftd?.close();
    for (const u of ups) await u.close();
  });

  const outbound = (host: string) =>
    request(ports.outbound!, { host, agent: false, headers: { connection: 'close' } });
  const configDump = async (): Promise<ProxyConfig> =>
    (
      JSON.parse((await request(ports.admin!, { path: '/config_dump', agent: false })).body) as {
        config: ProxyConfig;
      }
    ).config;
  const hosts = (c: ProxyConfig): string[] =>
    c.listeners.flatMap((l) => (l.protocol === 'HTTP' ? l.virtualHosts.map((v) => v.name) : []));

  it('starts with its own namespace only, routed without asking', async () => {
    const cfg = await configDump();
    expect(hosts(cfg)).to.deep.equal(['web.shop.svc.cluster.local:80']);
    expect(cfg.onDemand).to.deep.equal({ namespace: 'shop', subscribed: [] });
    const r = await outbound('web.shop.svc.cluster.local');
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('web');
    expect(await counter(metrics, 'found')).to.equal(0);
  });

  it('holds the first request to another namespace’s host, then routes it', async () => {
    const r = await outbound('reviews.prod');
    expect(r.status, r.body).to.equal(200);
    expect(r.body).to.equal('reviews');
    expect(await counter(metrics, 'found')).to.equal(1);
    const cfg = await configDump();
    expect(cfg.onDemand!.subscribed).to.deep.equal(['prod/reviews.prod.svc.cluster.local']);
    expect(hosts(cfg)).to.include('reviews.prod.svc.cluster.local:80');
    // the next one needs no ask
    expect((await outbound('reviews.prod.svc.cluster.local')).body).to.equal('reviews');
    expect(await counter(metrics, 'found')).to.equal(1);
  });

  it('a new Host on a keep-alive connection it already serves is held and routed too', async () => {
    // the capture asks for a connection's first Host; the second one here comes to the router
    const reply = await raw(
      ports.outbound!,
      'GET / HTTP/1.1\r\nHost: web.shop.svc.cluster.local\r\n\r\n' +
        'GET / HTTP/1.1\r\nHost: ratings.prod\r\nConnection: close\r\n\r\n',
      10_000,
    );
    const statuses = reply.match(/^HTTP\/1\.1 \d{3}/gm);
    expect(statuses, reply).to.deep.equal(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(reply).to.contain('ratings');
    expect(discovery.list()[0]!.onDemand).to.include('prod/ratings.prod.svc.cluster.local');
  });

  it('never reveals a host exportTo or its Sidecar hides, and answers unknown ones alike', async () => {
    for (const host of ['secret.vault', 'secret.vault.svc.cluster.local', 'billing.pay', 'nothing.prod']) {
      const r = await outbound(host);
      expect(r.status, host).to.equal(404);
      expect(String(r.headers['x-weft-response-flags']).toLowerCase()).to.equal('nr');
    }
    expect(ups[2]!.seen).to.have.length(0);
    const cfg = await configDump();
    expect(JSON.stringify(cfg)).to.not.contain('secret.vault');
    expect(JSON.stringify(cfg)).to.not.contain('billing.pay');
    expect(discovery.list()[0]!.onDemand).to.have.members([
      'prod/ratings.prod.svc.cluster.local',
      'prod/reviews.prod.svc.cluster.local',
    ]);
    expect(await counter(metrics, 'not_found')).to.equal(4);
  });

  it('a flood of random Host headers stays bounded and the proxy keeps routing', async () => {
    const before = await Promise.all(
      ['found', 'held', 'not_found', 'negative', 'rate_limited', 'too_many'].map((r) => counter(metrics, r)),
    );
    const started = Date.now();
    const flood = Array.from({ length: 300 }, (_, i) =>
      raw(
        ports.outbound!,
        `GET / HTTP/1.1\r\nHost: r${i}-${Math.random().toString(36).slice(2)}.example.com\r\nConnection: close\r\n\r\n`,
        5000,
      ),
    );
    const answers = await Promise.all(flood);
    const seconds = (Date.now() - started) / 1000;
    // weftd does not know them: 404 NR; past the proxy's bounds nobody could say: 503 NC (never passed on)
    const bad = answers.find(
      (a) =>
        !/^HTTP\/1\.1 404 /.test(a) && !(/^HTTP\/1\.1 503 /.test(a) && /x-weft-response-flags: NC/i.test(a)),
    );
    expect(bad, bad).to.equal(undefined);
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 503')).length).to.be.greaterThan(0);
    const after = await Promise.all(
      ['found', 'held', 'not_found', 'negative', 'rate_limited', 'too_many'].map((r) => counter(metrics, r)),
    );
    const asked = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
    // the proxy's bucket: 20 at once, then 10 per second
    expect(asked).to.be.at.most(20 + Math.ceil(seconds * 10) + 1);
    expect(discovery.list()[0]!.onDemand).to.have.length(2);
    expect((await outbound('reviews.prod')).body).to.equal('reviews');
    const stats = (await request(ports.admin!, { path: '/stats/prometheus', agent: false })).body;
    expect(stats).to.match(/weft_proxy_ondemand_requests_total\{result="(rate_limited|overflow)"\} \d+/);
  });

  it('a cut stream: the proxy reconnects and re-declares its subscription', async () => {
    const first = discovery.list()[0]!.id;
    weftd.cutConnections();
    await waitFor(
      'a new stream holding the subscription again',
      () => discovery.list().some((c) => c.id !== first && (c.onDemand ?? []).length === 2),
      30_000,
    );
    await sleep(200);
    expect((await outbound('reviews.prod')).body).to.equal('reviews');
  });
});
