/**
 * On-demand hosts in weftd (ADR 0023): the per-stream subscriptions and their bounds
 * (controlplane/ondemand.ts, with a fake clock), and what the config generator gives an
 * on-demand sidecar: its own namespace plus what it subscribed to, never a host its scope hides;
 * and the endpoint on a real HTTPS server: answers per name, the push, and every refusal.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import { createMonitoringServer } from '../../../controlplane/monitoring.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { ONDEMAND_PATH, type OnDemandResult } from '../../../pkg/discovery/protocol.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { SnapshotRegistry } from '../../support/snapshot-registry.js';
import { waitFor } from '../../support/wait.js';
import { ConfigGenerator, MAX_SHARED_TRANSLATIONS } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import {
  answerOf,
  ONDEMAND_LIMITS,
  OnDemandBudget,
  OnDemandSubscriptions,
  type OnDemandLimits,
} from '../../../controlplane/ondemand.js';
import type { Identity } from '../../../controlplane/auth.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { ServiceEntry } from '../../../pkg/api/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { HttpListener, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import type { ServiceRecord } from '../../../pkg/translate/index.js';
import type { EgressHost } from '../../../pkg/translate/scope.js';

const LIMITS: OnDemandLimits = { ratePerSecond: 2, burst: 3, maxSubscriptions: 4, maxNegative: 2 };
const entry = (name: string): EgressHost[] => [{ namespace: 'prod', host: `${name}.prod.svc.cluster.local` }];

describe('weftd on-demand subscriptions (bounds, fake clock)', () => {
  const fresh = () => {
    let t = 0;
    const subs = new OnDemandSubscriptions(new OnDemandBudget(() => t, LIMITS), LIMITS);
    let resolved = 0;
    const resolve = (n: string): EgressHost[] => {
      resolved++;
      return n.startsWith('x') ? [] : entry(n);
    };
    return { subs, resolve, advance: (ms: number) => (t += ms), resolvedCount: () => resolved };
  };

  it('subscribes a visible name once, then answers it held', () => {
    const { subs, resolve } = fresh();
    expect(subs.ask('a', 1, resolve)).to.equal('found');
    expect(subs.ask('a', 1, resolve)).to.equal('held');
    expect(subs.list()).to.deep.equal(entry('a'));
  });

  it('remembers unknown names per generation without resolving them again', () => {
    const { subs, resolve, resolvedCount } = fresh();
    expect(subs.ask('x1', 1, resolve)).to.equal('not_found');
    expect(subs.ask('x1', 1, resolve)).to.equal('negative');
    expect(resolvedCount()).to.equal(1);
    // a new registry generation may know it
    expect(subs.ask('x1', 2, resolve)).to.equal('not_found');
    expect(resolvedCount()).to.equal(2);
  });

  it('rates names per second with a burst (a flood of random names stays bounded)', () => {
    const { subs, resolve, advance, resolvedCount } = fresh();
    const outcomes = Array.from({ length: 100 }, (_, i) => subs.ask(`x${i}`, 1, resolve));
    expect(outcomes.filter((o) => o === 'not_found')).to.have.length(3);
    expect(outcomes.filter((o) => o === 'rate_limited')).to.have.length(97);
    expect(resolvedCount()).to.equal(3);
    advance(1000);
    expect(subs.ask('x-late-1', 1, resolve)).to.equal('not_found');
    expect(subs.ask('x-late-2', 1, resolve)).to.equal('not_found');
    expect(subs.ask('x-late-3', 1, resolve)).to.equal('rate_limited');
  });

  it('bounds the negative cache', () => {
    const { subs, resolve, advance } = fresh();
    for (const n of ['x1', 'x2', 'x3']) {
      advance(1000);
      expect(subs.ask(n, 1, resolve)).to.equal('not_found');
    }
    // x1 and x2 filled it; x3 cleared it and stays
    expect(subs.ask('x3', 1, resolve)).to.equal('negative');
    advance(1000);
    expect(subs.ask('x1', 1, resolve)).to.equal('not_found');
  });

  it('caps the subscriptions of a stream', () => {
    const { subs, resolve, advance } = fresh();
    for (const n of ['a', 'b', 'c', 'd']) {
      advance(1000);
      expect(subs.ask(n, 1, resolve)).to.equal('found');
    }
    advance(1000);
    expect(subs.ask('e', 1, resolve)).to.equal('too_many');
    expect(subs.size).to.equal(4);
  });

  it('re-declared names skip the rate bucket', () => {
    const { subs, resolve } = fresh();
    const outcomes = ['a', 'b', 'c', 'd'].map((n) => subs.ask(n, 1, resolve, { skipRate: true }));
    expect(outcomes).to.deep.equal(['found', 'found', 'found', 'found']);
  });

  it('answers forbidden and unknown alike', () => {
    expect(answerOf('not_found')).to.equal(answerOf('negative'));
    expect(answerOf('found')).to.equal('found');
    expect(answerOf('rate_limited')).to.equal('limited');
    expect(answerOf('too_many')).to.equal('limited');
  });
});

const svc = (name: string, namespace: string, extra: Partial<ServiceRecord> = {}): ServiceRecord => ({
  host: `${name}.${namespace}.svc.cluster.local`,
  namespace,
  addresses: [],
  ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
  endpoints: [{ address: '10.0.0.1', labels: {} }],
  ...extra,
});
const SNAPSHOT: Snapshot = {
  generation: 1,
  services: [
    svc('web', 'shop'),
    svc('reviews', 'prod'),
    svc('ratings', 'prod'),
    svc('secret', 'vault', { exportTo: ['.'] }),
  ],
  peerAuthentications: [],
  kubeServices: [],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
};
const POD: PodInfo = { name: 'web-1', namespace: 'shop', labels: { app: 'web' } };
const hosts = (c: ProxyConfig): string[] =>
  (c.listeners[0] as HttpListener).virtualHosts.map((v) => v.name.replace(/:\d+$/, '')).sort();

describe('weftd config generation with on-demand hosts', () => {
  const gen = (onDemandHosts: boolean): ConfigGenerator =>
    new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: { ...DEFAULT_MESH, onDemandHosts },
      log: createLogger('t', { silent: true }),
    });

  it('off: every exported host, no onDemand block', () => {
    const c = gen(false).forProxy(SNAPSHOT, 'sidecar', POD).config;
    expect(hosts(c)).to.deep.equal([
      'ratings.prod.svc.cluster.local',
      'reviews.prod.svc.cluster.local',
      'web.shop.svc.cluster.local',
    ]);
    expect(c.onDemand).to.equal(undefined);
  });

  it('on: the own namespace, then each subscription, with a new version', () => {
    const g = gen(true);
    const first = g.forProxy(SNAPSHOT, 'sidecar', POD);
    expect(hosts(first.config)).to.deep.equal(['web.shop.svc.cluster.local']);
    expect(first.config.onDemand).to.deep.equal({ namespace: 'shop', subscribed: [] });
    const sub = g.resolveOnDemand(SNAPSHOT, POD, 'reviews.prod');
    const next = g.forProxy(SNAPSHOT, 'sidecar', POD, sub);
    expect(hosts(next.config)).to.deep.equal([
      'reviews.prod.svc.cluster.local',
      'web.shop.svc.cluster.local',
    ]);
    expect(next.config.onDemand!.subscribed).to.deep.equal(['prod/reviews.prod.svc.cluster.local']);
    expect(next.version).to.not.equal(first.version);
    expect(JSON.parse(next.encode()).config.onDemand.subscribed).to.deep.equal([
      'prod/reviews.prod.svc.cluster.local',
    ]);
  });

  it('a host exportTo hides never resolves, and a forged subscription to it adds nothing', () => {
    const g = gen(true);
    expect(g.resolveOnDemand(SNAPSHOT, POD, 'secret.vault')).to.deep.equal([]);
    const forged = [{ namespace: 'vault', host: 'secret.vault.svc.cluster.local' }];
    expect(hosts(g.forProxy(SNAPSHOT, 'sidecar', POD, forged).config)).to.deep.equal([
      'web.shop.svc.cluster.local',
    ]);
  });

  it('a ServiceEntry VIP or CIDR from another namespace resolves (TCP asks by address)', () => {
    const se = (name: string, addresses: string[], exportTo?: string[]): ServiceEntry => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name, namespace: 'ext' },
      spec: {
        hosts: [`${name}.example.com`],
        addresses,
        ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }],
        resolution: 'STATIC',
        endpoints: [{ address: '192.0.2.1' }],
        ...(exportTo ? { exportTo } : {}),
      },
    });
    const snapshot: Snapshot = {
      ...SNAPSHOT,
      serviceEntries: [
        se('db', ['240.240.0.10']),
        se('range', ['240.241.0.0/16']),
        se('hidden', ['240.242.0.10'], ['.']),
      ],
    };
    const g = gen(true);
    expect(g.resolveOnDemand(snapshot, POD, '240.240.0.10')).to.deep.equal([
      { namespace: 'ext', host: 'db.example.com' },
    ]);
    expect(g.resolveOnDemand(snapshot, POD, '240.241.7.9')).to.deep.equal([
      { namespace: 'ext', host: 'range.example.com' },
    ]);
    expect(g.resolveOnDemand(snapshot, POD, '240.242.0.10')).to.deep.equal([]); // exportTo hides it
    expect(g.resolveOnDemand(snapshot, POD, '240.240.0.11')).to.deep.equal([]);
  });

  it('bounds the translations of one generation however many subscription sets are asked for', () => {
    const g = gen(true);
    for (let i = 0; i < 2000; i++)
      g.forProxy(SNAPSHOT, 'sidecar', POD, [{ namespace: 'prod', host: `h${i}.prod.svc.cluster.local` }]);
    expect(g.sharedTranslations).to.be.at.most(MAX_SHARED_TRANSLATIONS);
    expect(g.sharedTranslations).to.be.greaterThan(0);
  });

  it('the same entries in another order (or twice) share one translation and one version', () => {
    const g = gen(true);
    const [a, b] = [...entry('reviews'), ...entry('ratings')];
    const first = g.forProxy(SNAPSHOT, 'sidecar', POD, [a!, b!]);
    const size = g.sharedTranslations;
    const again = g.forProxy(SNAPSHOT, 'sidecar', POD, [b!, a!, b!]);
    expect(g.sharedTranslations).to.equal(size);
    expect(again.version).to.equal(first.version);
    expect(again.config.onDemand!.subscribed).to.deep.equal([
      'prod/ratings.prod.svc.cluster.local',
      'prod/reviews.prod.svc.cluster.local',
    ]);
  });

  it('gateways are not on demand', () => {
    const c = gen(true).forProxy(SNAPSHOT, 'gateway', POD).config;
    expect(c.onDemand).to.equal(undefined);
  });
});

describe('weftd POST /v1/discovery/ondemand (real server on loopback)', function () {
  this.timeout(30_000);
  const log = createLogger('t', { silent: true });
  const now = new Date();
  const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  let dir: string;
  const servers: Server[] = [];
  const clients: DiscoveryClient[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ondemand-unit-'));
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'tok'), 'tok');
  });
  after(() => {
    for (const c of clients) c.stop();
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** A projected (pod-bound) token of web-1, as kubelet mounts it; UNBOUND: a legacy Secret token. */
  const BOUND: Identity = { namespace: 'shop', serviceAccount: 'sa', podName: 'web-1' };
  const UNBOUND: Identity = { namespace: 'shop', serviceAccount: 'sa' };

  async function weftd(
    onDemandHosts: boolean,
    identity: Identity = BOUND,
  ): Promise<{ port: number; discovery: DiscoveryService }> {
    const registry = new SnapshotRegistry(() => ({ services: SNAPSHOT.services }));
    const discovery = new DiscoveryService({
      registry,
      generator: new ConfigGenerator({
        domainSuffix: 'cluster.local',
        mesh: { ...DEFAULT_MESH, onDemandHosts },
        log,
      }),
      authenticate: () => Promise.resolve({ identity, cached: true }),
      metrics: createWeftdMetrics(false),
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
    });
    const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, discovery.handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, discovery };
  }

  function post(port: number, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: ONDEMAND_PATH,
          method: 'POST',
          ca: ca.certPem,
          headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
  const ask = (hosts: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ kind: 'sidecar', namespace: 'shop', pod: 'web-1', hosts, ...extra });

  it('answers per name on an open stream and pushes the subscription to it', async () => {
    const { port, discovery } = await weftd(true);
    const s = stream(port);
    await waitFor('a first config', s.latest);
    const r = await post(port, ask(['reviews.prod', 'secret.vault', 'nothing.prod']));
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.body)).to.deep.equal({
      hosts: { 'reviews.prod': 'found', 'secret.vault': 'not_found', 'nothing.prod': 'not_found' },
    });
    await waitFor(
      'the subscription pushed',
      () => s.latest() && hosts(s.latest()!).includes('reviews.prod.svc.cluster.local'),
    );
    expect(hosts(s.latest()!)).to.not.include('secret.vault.svc.cluster.local');
    expect(discovery.list()[0]!.onDemand).to.deep.equal(['prod/reviews.prod.svc.cluster.local']);
    // the same through the client's own call
    expect(await s.client.askHosts(['ratings.prod'])).to.deep.equal({ 'ratings.prod': 'found' });
  });

  it("weftd's debug port shows the stream's config with its subscriptions: proxy-status SYNCED, proxy-config the held host", async () => {
    const { port, discovery } = await weftd(true);
    const monitoring = createMonitoringServer({
      readiness: () => ({ ready: true }),
      metrics: createWeftdMetrics(false),
      discovery,
      registry: new SnapshotRegistry(() => ({ services: SNAPSHOT.services })),
      log,
    });
    servers.push(monitoring as unknown as Server);
    await new Promise<void>((r) => monitoring.listen(0, '127.0.0.1', r));
    const get = async (path: string): Promise<unknown> =>
      (await fetch(`http://127.0.0.1:${(monitoring.address() as AddressInfo).port}${path}`)).json();
    const s = stream(port);
    await waitFor('a first config', s.latest);
    await s.client.askHosts(['reviews.prod']);
    await waitFor('the subscription applied and ACKed', () => {
      const c = discovery.list()[0];
      return c?.acked?.version !== undefined && c.acked.version === s.latest()?.version
        ? hosts(s.latest()!).includes('reviews.prod.svc.cluster.local')
        : undefined;
    });
    const {
      connections: [conn],
    } = (await get('/debug/connections')) as { connections: { currentVersion: string }[] };
    expect(conn!.currentVersion).to.equal(s.latest()!.version);
    const dump = (await get('/debug/config?namespace=shop&pod=web-1')) as {
      version: string;
      config: ProxyConfig;
    };
    expect(dump.version).to.equal(s.latest()!.version);
    expect(hosts(dump.config)).to.include('reviews.prod.svc.cluster.local');
  });

  it('an older proxy (no onDemand=1) keeps its whole scope, and its ask is refused: 409', async () => {
    const { port, discovery } = await weftd(true);
    const s = stream(port, false); // as a proxy from before ADR 0023: it would never ask
    await waitFor('a first config', s.latest);
    const latest = s.latest();
    expect(latest!.onDemand).to.equal(undefined);
    expect(hosts(latest!)).to.deep.equal([
      'ratings.prod.svc.cluster.local',
      'reviews.prod.svc.cluster.local',
      'web.shop.svc.cluster.local',
    ]);
    const r = await post(port, ask(['reviews.prod']));
    expect(r.status, r.body).to.equal(409);
    expect(r.body).to.match(/did not ask for on-demand hosts/);
    // what weftctl proxy-status compares it with is that whole scope too (SYNCED, not STALE)
    expect(discovery.configFor('sidecar', 'shop', 'web-1', undefined, false)!.version).to.equal(
      latest!.version,
    );
  });

  /** A proxy's stream from shop/web-1; `onDemand: false` is a proxy from before ADR 0023. */
  function stream(
    port: number,
    onDemand = true,
  ): { client: DiscoveryClient; configs: () => number; latest: () => ProxyConfig | undefined } {
    let configs = 0;
    let latest: ProxyConfig | undefined;
    const client = new DiscoveryClient({
      address: `127.0.0.1:${port}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath: join(dir, 'tok'),
      request: { kind: 'sidecar', namespace: 'shop', pod: 'web-1' },
      log,
      onDemand,
      onConfig: (cfg) => {
        configs++;
        latest = cfg;
        return Promise.resolve();
      },
    });
    clients.push(client);
    void client.run();
    return { client, configs: () => configs, latest: () => latest };
  }
  const answers = async (port: number, body: string): Promise<OnDemandResult[]> => {
    const r = await post(port, body);
    expect(r.status, r.body).to.equal(200);
    return Object.values((JSON.parse(r.body) as { hosts: Record<string, OnDemandResult> }).hosts);
  };

  /** Asks in requests of 16 names (the most one request takes). */
  const askAll = async (port: number, names: string[], extra: Record<string, unknown> = {}) => {
    const out: OnDemandResult[] = [];
    for (let i = 0; i < names.length; i += 16)
      out.push(...(await answers(port, ask(names.slice(i, i + 16), extra))));
    return out;
  };

  it('a reconnect refills neither the rate bucket nor the free re-declares (they are the pod’s)', async () => {
    const { port, discovery } = await weftd(true);
    const first = stream(port);
    await waitFor('a first config', () => first.configs() > 0);
    const names = (tag: string) => Array.from({ length: 60 }, (_, i) => `${tag}${i}.prod`);
    const spent = await askAll(port, names('a'));
    expect(spent.filter((a) => a === 'limited')).to.have.length.greaterThan(0); // the bucket ran dry
    const dryAt = Date.now();
    first.client.stop();
    await waitFor('the stream closed', () => discovery.list().length === 0 || undefined);
    const second = stream(port);
    await waitFor('the new stream', () => second.configs() > 0);
    // unknown names each cost a token; a fresh bucket would resolve 40 of them, re-declared or not
    const after = await askAll(port, names('b'), { redeclare: true });
    const refilled = Math.ceil(((Date.now() - dryAt) / 1000) * ONDEMAND_LIMITS.ratePerSecond) + 1;
    const resolved = after.filter((a) => a !== 'limited').length;
    expect(resolved).to.be.at.most(Math.min(refilled, ONDEMAND_LIMITS.burst - 1));
  });

  it('finds of one window share one push, written before the answers', async () => {
    const { port, discovery } = await weftd(true);
    const s = stream(port);
    await waitFor('a first config', () => s.configs() > 0);
    const before = discovery.list()[0]!.pushes;
    const found = await Promise.all(['reviews.prod', 'ratings.prod'].map((n) => answers(port, ask([n]))));
    expect(found.flat()).to.deep.equal(['found', 'found']);
    expect(discovery.list()[0]!.pushes).to.equal(before + 1);
  });

  const refusals: [string, boolean, string, number, RegExp, Identity?][] = [
    [
      'a token bound to no pod (a legacy Secret token)',
      true,
      ask(['reviews.prod']),
      403,
      /WEFT_FORBIDDEN.*need a pod-bound token/,
      UNBOUND,
    ],
    [
      'a token bound to another pod',
      true,
      ask(['reviews.prod']),
      403,
      /bound to pod shop\/web-2/,
      { ...BOUND, podName: 'web-2' },
    ],
    ['a mesh with on-demand hosts off', false, ask(['reviews.prod']), 404, /on-demand hosts are off/],
    ['no open stream', true, ask(['reviews.prod']), 409, /no open discovery stream/],
    [
      'another namespace than the token’s',
      true,
      ask(['reviews.prod'], { namespace: 'prod' }),
      403,
      /WEFT_FORBIDDEN/,
    ],
    ['a body that is not JSON', true, '{', 400, /WEFT_DISCOVERY_ONDEMAND_INVALID/],
    ['a host that is no host name', true, ask(['Reviews:80']), 400, /WEFT_DISCOVERY_ONDEMAND_INVALID/],
    ['a body over 16 KiB', true, ask(['a'.repeat(20_000)]), 413, /WEFT_INPUT_TOO_LARGE/],
  ];
  for (const [title, on, body, status, message, identity] of refusals)
    it(`refuses ${title}: ${status}`, async () => {
      const { port } = await weftd(on, identity);
      const r = await post(port, body);
      expect(r.status, r.body).to.equal(status);
      expect(r.body).to.match(message);
    });
});
