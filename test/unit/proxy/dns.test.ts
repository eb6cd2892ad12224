/**
 * The proxy's DNS clusters (proxy/upstream/dns.ts) against a DNS responder the test starts on
 * 127.0.0.1 (test/support/dns-server.ts; nothing leaves the machine), the refresh timings
 * (Envoy's respect_dns_ttl with dns_min_refresh_rate, Istio's dnsRefreshRate), ORIGINAL_DST
 * clusters and the original destination of a request.
 */
import { expect } from 'chai';
import net from 'node:net';
import {
  DnsRefresher,
  failureDelayMs,
  refreshDelayMs,
  resolverLookup,
  type DnsEnv,
  type DnsLookup,
} from '../../../proxy/upstream/dns.js';
import {
  checkDnsServer,
  isDnsHostName,
  resolveDnsSettings,
  MAX_ADDRESSES_PER_HOST,
} from '../../../pkg/proxyconfig/dns.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { ClusterRuntime, MAX_ORIGINAL_DST_HOSTS } from '../../../proxy/upstream/cluster.js';
import { rememberOriginalDst, requestOriginalDst } from '../../../proxy/upstream/origdst.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import type { Cluster, Endpoint } from '../../../pkg/proxyconfig/types.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { waitFor } from '../../support/wait.js';

const defaults = resolveDnsSettings(undefined);
/** Fast timings for refresh tests: a 1 s TTL is capped at 40 ms. */
const fast = resolveDnsSettings({ minRefreshMs: 10, maxRefreshMs: 40, refreshRateMs: 40, timeoutMs: 300 });

describe('proxy DNS clusters: refresh timings', () => {
  it('defaults: Istio dnsRefreshRate 60 s, Envoy dns_min_refresh_rate 5 s, weft cap 300 s, 5 s timeout', () => {
    expect(defaults).to.deep.equal({
      servers: null,
      refreshRateMs: 60_000,
      minRefreshMs: 5_000,
      maxRefreshMs: 300_000,
      timeoutMs: 5_000,
    });
  });

  const REFRESH: [string, number, number][] = [
    ['TTL 30 s is honoured', 30, 30_000],
    ['TTL 1 s is raised to the 5 s minimum', 1, 5_000],
    ['TTL 5 s exactly', 5, 5_000],
    ['TTL 0 (do not cache) waits the refresh rate', 0, 60_000],
    ['a day-long TTL is capped at 300 s', 86_400, 300_000],
    ['TTL 299 s', 299, 299_000],
    ['no TTL at all (Infinity) waits the refresh rate', Infinity, 60_000],
  ];
  for (const [name, ttl, ms] of REFRESH) it(name, () => expect(refreshDelayMs(ttl, defaults)).to.equal(ms));

  const FAILURE: [number, number][] = [
    [1, 5_000],
    [2, 10_000],
    [3, 20_000],
    [4, 40_000],
    [5, 60_000],
    [100, 60_000],
  ];
  for (const [n, ms] of FAILURE)
    it(`failure ${n} in a row retries after ${ms} ms (backoff to the refresh rate)`, () =>
      expect(failureDelayMs(n, defaults)).to.equal(ms));

  it('a refresh rate below the 5 s minimum lowers the minimum', () => {
    expect(resolveDnsSettings({ refreshRateMs: 1000 }).minRefreshMs).to.equal(1000);
    expect(resolveDnsSettings({ minRefreshMs: 50, maxRefreshMs: 10 }).maxRefreshMs).to.equal(50);
  });
});

describe('proxy DNS clusters: config checks', () => {
  const SERVERS: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.0.0.1:5353', true],
    ['::1', true],
    ['[::1]:53', true],
    ['[::1]', true],
    ['127.0.0.1:0', false],
    ['127.0.0.1:70000', false],
    ['dns.example.com', false],
    ['dns.example.com:53', false],
    ['', false],
    ['1.2.3', false],
  ];
  for (const [v, ok] of SERVERS)
    it(`server ${JSON.stringify(v)} ${ok ? 'ok' : 'refused'}`, () =>
      expect(checkDnsServer(v) === null).to.equal(ok));

  const NAMES: [string, boolean][] = [
    ['api.example.com', true],
    ['api.example.com.', true],
    ['localhost', true],
    ['_sip._tcp.example.com', true],
    ['a'.repeat(63) + '.com', true],
    ['a'.repeat(64) + '.com', false],
    [`${'a.'.repeat(127)}ab`, false],
    ['*.example.com', false],
    ['-bad.example.com', false],
    ['bad..example.com', false],
    ['', false],
    ['.', false],
    ['exa mple.com', false],
  ];
  for (const [v, ok] of NAMES)
    it(`host name ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)} ${ok ? 'ok' : 'refused'}`, () =>
      expect(isDnsHostName(v)).to.equal(ok));

  const cfg = (cluster: Record<string, unknown>, dns?: unknown): unknown => ({
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: '1',
    listeners: [],
    clusters: [{ name: 'c', ...cluster }],
    ...(dns !== undefined ? { dns } : {}),
  });
  const CONFIGS: [string, unknown, string[]][] = [
    [
      'STRICT_DNS with host names and IPs',
      cfg({
        type: 'STRICT_DNS',
        endpoints: [
          { address: 'a.example.com', port: 80 },
          { address: '10.0.0.1', port: 80 },
        ],
      }),
      [],
    ],
    [
      'STRICT_DNS with a wildcard address',
      cfg({ type: 'STRICT_DNS', endpoints: [{ address: '*.example.com', port: 80 }] }),
      ['clusters[0].endpoints[0].address'],
    ],
    [
      'LOGICAL_DNS with two endpoints',
      cfg({
        type: 'LOGICAL_DNS',
        endpoints: [
          { address: 'a.example.com', port: 80 },
          { address: 'b.example.com', port: 80 },
        ],
      }),
      ['clusters[0].endpoints'],
    ],
    ['ORIGINAL_DST with no endpoint', cfg({ type: 'ORIGINAL_DST', endpoints: [] }), []],
    [
      'ORIGINAL_DST with an endpoint',
      cfg({ type: 'ORIGINAL_DST', endpoints: [{ address: '10.0.0.1', port: 80 }] }),
      ['clusters[0].endpoints'],
    ],
    ['unknown type', cfg({ type: 'EDS', endpoints: [] }), ['clusters[0].type']],
    [
      'dns servers and timings',
      cfg(
        { endpoints: [] },
        {
          servers: ['127.0.0.1:5353'],
          refreshRateMs: 1000,
          minRefreshMs: 10,
          maxRefreshMs: 5000,
          timeoutMs: 100,
        },
      ),
      [],
    ],
    ['dns server by name', cfg({ endpoints: [] }, { servers: ['dns.google'] }), ['dns.servers[0]']],
    ['dns zero refresh', cfg({ endpoints: [] }, { refreshRateMs: 0 }), ['dns.refreshRateMs']],
    ['dns unknown field', cfg({ endpoints: [] }, { search: ['svc.cluster.local'] }), ['dns.search']],
    ['dns not an object', cfg({ endpoints: [] }, 'udp'), ['dns']],
  ];
  for (const [name, c, paths] of CONFIGS)
    it(`proxy config: ${name}`, () => expect(validateProxyConfig(c).map((p) => p.path)).to.deep.equal(paths));
});

describe('proxy DNS clusters: resolution against a loopback DNS server', function () {
  this.timeout(20_000);
  let dns: TestDnsServer;
  let env: DnsEnv;
  let metrics: MetricsRegistry;
  const refreshers: DnsRefresher[] = [];
  const make = (
    targets: Endpoint[],
    logical = false,
    e: DnsEnv = env,
  ): { r: DnsRefresher; updates: Endpoint[][] } => {
    const updates: Endpoint[][] = [];
    const r = new DnsRefresher('outbound|80||api.test', targets, logical, e, (eps) => updates.push(eps));
    refreshers.push(r);
    return { r, updates };
  };

  beforeEach(async () => {
    dns = await startDnsServer({
      'api.test': { a: ['127.0.0.2', '127.0.0.3'], ttl: 1 },
      'v6only.test': { aaaa: ['::1'], ttl: 30 },
      'other.test': { a: ['127.0.0.4'], ttl: 1 },
    });
    metrics = new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });
    const settings = resolveDnsSettings({ ...fast, servers: [dns.address] });
    env = { lookup: resolverLookup(settings), settings, metrics };
  });
  afterEach(async () => {
    for (const r of refreshers.splice(0)) r.stop();
    await dns.close();
  });

  it('the lookup reads A records with their TTL', async () => {
    expect(await env.lookup('api.test')).to.deep.equal({
      addresses: ['127.0.0.2', '127.0.0.3'],
      ttlSeconds: 1,
    });
  });
  it('a name with no A record falls back to AAAA', async () => {
    expect(await env.lookup('v6only.test')).to.deep.equal({ addresses: ['::1'], ttlSeconds: 30 });
    expect(dns.queries.get('v6only.test/AAAA')).to.equal(1);
  });
  it('an unknown name (NXDOMAIN) is an error, with no AAAA question', async () => {
    const err = await env.lookup('nope.test').then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).to.equal('ENOTFOUND');
    expect(dns.queries.get('nope.test/AAAA')).to.equal(undefined);
  });

  it('STRICT_DNS: every address of every host is an endpoint, with the endpoint port and labels', async () => {
    const { r, updates } = make([
      { address: 'api.test', port: 8080, labels: { v: '1' } },
      { address: 'other.test', port: 9090, labels: {}, weight: 3 },
    ]);
    await r.ready;
    expect(r.endpoints()).to.deep.equal([
      { address: '127.0.0.2', port: 8080, labels: { v: '1' } },
      { address: '127.0.0.3', port: 8080, labels: { v: '1' } },
      { address: '127.0.0.4', port: 9090, labels: {}, weight: 3 },
    ]);
    expect(updates.length).to.be.greaterThan(0);
  });

  it('LOGICAL_DNS: the first address of the answer only', async () => {
    const { r } = make([{ address: 'api.test', port: 80 }], true);
    await r.ready;
    expect(r.endpoints()).to.deep.equal([{ address: '127.0.0.2', port: 80 }]);
  });

  it('an IP address is used as is, never asked for', async () => {
    const { r, updates } = make([{ address: '127.0.0.9', port: 80 }]);
    await r.ready;
    expect(updates).to.deep.equal([[{ address: '127.0.0.9', port: 80 }]]);
    expect(dns.queries.size).to.equal(0);
  });

  it('the answer is asked again when its TTL runs out, and a new address replaces the old', async () => {
    const { r } = make([{ address: 'api.test', port: 80 }]);
    await r.ready;
    dns.records.set('api.test', { a: ['127.0.0.5'], ttl: 1 });
    await waitFor('the new address', () => r.endpoints()[0]?.address === '127.0.0.5', 5000, 5);
    expect(r.endpoints()).to.deep.equal([{ address: '127.0.0.5', port: 80 }]);
    expect(metrics.counters.get('weft_proxy_dns_resolutions_total')).to.be.at.least(2);
  });

  it('a failed refresh keeps the last good addresses, counts and explains the failure', async () => {
    const { r } = make([{ address: 'api.test', port: 80 }]);
    await r.ready;
    dns.fail = 'servfail';
    const failures = (): number =>
      metrics.labelledCounters
        .get('weft_proxy_dns_resolution_failures_total')
        ?.get('cluster="outbound|80||api.test"') ?? 0;
    await waitFor('two failed refreshes', () => failures() >= 2, 5000, 5);
    expect(r.endpoints().map((e) => e.address)).to.deep.equal(['127.0.0.2', '127.0.0.3']);
    const d = r.describe()[0]!;
    expect(d.lastError).to.match(/ESERVFAIL/);
    expect(d.consecutiveFailures).to.be.at.least(2);
    expect(r.emptyReason()).to.equal(null);
    dns.fail = null;
    await waitFor('recovery', () => r.describe()[0]!.lastError === undefined, 5000, 5);
  });

  it('a host never resolved has no endpoint and says why', async () => {
    const { r } = make([{ address: 'nope.test', port: 80 }]);
    await r.ready;
    expect(r.endpoints()).to.deep.equal([]);
    expect(r.emptyReason()).to.match(/^DNS resolution of nope\.test failed: .*ENOTFOUND/);
  });

  it('a timeout (server silent) is a failure like any other', async () => {
    dns.fail = 'drop';
    const { r } = make([{ address: 'api.test', port: 80 }]);
    await r.ready;
    expect(r.emptyReason()).to.match(/ETIMEOUT/);
  });

  it('stop() ends the refreshes: no question after it', async () => {
    const { r } = make([{ address: 'api.test', port: 80 }]);
    await r.ready;
    r.stop();
    const asked = dns.queries.get('api.test/A');
    await new Promise((res) => setTimeout(res, 100));
    expect(dns.queries.get('api.test/A')).to.equal(asked);
  });

  it(`an answer with many addresses keeps ${MAX_ADDRESSES_PER_HOST}`, async () => {
    const many = Array.from({ length: 500 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    const lookup: DnsLookup = async () => ({ addresses: many, ttlSeconds: 30 });
    const { r } = make([{ address: 'many.test', port: 80 }], false, { ...env, lookup });
    await r.ready;
    expect(r.endpoints()).to.have.length(MAX_ADDRESSES_PER_HOST);
  });

  it('a DNS ClusterRuntime picks the resolved endpoints; its reason names the DNS error', async () => {
    const def: Cluster = { name: 'dns', type: 'STRICT_DNS', endpoints: [{ address: 'api.test', port: 80 }] };
    const rt = new ClusterRuntime(def, 'k', Date.now, () => 0, undefined, undefined, env);
    await rt.dns!.ready;
    expect(rt.pick(null, null)?.key).to.equal('127.0.0.2:80');
    expect((rt.describe().dns as { addresses: string[] }[])[0]!.addresses).to.deep.equal([
      '127.0.0.2',
      '127.0.0.3',
    ]);
    await rt.destroy();
    const bad = new ClusterRuntime(
      { ...def, endpoints: [{ address: 'nope.test', port: 80 }] },
      'k',
      Date.now,
      Math.random,
      undefined,
      undefined,
      env,
    );
    await bad.dns!.ready;
    expect(bad.pick(null, null)).to.equal(null);
    expect(bad.noEndpointReason()).to.match(
      /cluster dns has no endpoint: DNS resolution of nope\.test failed/,
    );
    expect(bad.describe().noEndpointReason).to.equal(bad.noEndpointReason());
    await bad.destroy();
  });
});

describe('proxy cluster endpoints replaced by a DNS answer', () => {
  it('kept endpoints keep their runtime (pool, health, in-flight); new ones are added, gone ones dropped', () => {
    const rt = new ClusterRuntime(
      {
        name: 'c',
        endpoints: [
          { address: '10.0.0.1', port: 80 },
          { address: '10.0.0.2', port: 80 },
        ],
      },
      'k',
    );
    const kept = rt.endpoints[1]!;
    kept.active = 3;
    rt.setEndpoints([
      { address: '10.0.0.2', port: 80 },
      { address: '10.0.0.3', port: 80 },
    ]);
    expect(rt.endpoints.map((e) => e.key)).to.deep.equal(['10.0.0.2:80', '10.0.0.3:80']);
    expect(rt.endpoints[0]).to.equal(kept);
    expect(rt.endpoints[0]!.active).to.equal(3);
    expect(rt.healthyCount()).to.equal(2);
    rt.setEndpoints([]);
    expect(rt.pick(null, null)).to.equal(null);
  });
});

describe('proxy ORIGINAL_DST clusters', () => {
  const view = {
    method: 'GET',
    path: '/',
    query: '',
    target: '/',
    authority: 'x',
    scheme: 'http',
    port: 80,
    headers: {},
  };
  const def: Cluster = { name: 'outbound|80||*.example.com', type: 'ORIGINAL_DST', port: 80, endpoints: [] };
  it('one endpoint per original destination, reused; none without one', () => {
    const rt = new ClusterRuntime(def, 'k');
    const a = rt.pick({ view, sourceIp: '', originalDst: { address: '10.1.0.1', port: 8080 } }, null);
    expect(a?.key).to.equal('10.1.0.1:8080');
    expect(rt.pick({ view, sourceIp: '', originalDst: { address: '10.1.0.1', port: 8080 } }, null)).to.equal(
      a,
    );
    expect(rt.pick({ view, sourceIp: '', originalDst: null }, null)).to.equal(null);
    expect(rt.pick(null, null)).to.equal(null);
    expect(rt.noEndpointReason()).to.match(/original destination is unknown/);
  });
  it(`keeps at most ${MAX_ORIGINAL_DST_HOSTS} destinations, dropping the least recently used idle one`, () => {
    const rt = new ClusterRuntime(def, 'k');
    const first = rt.pick({ view, sourceIp: '', originalDst: { address: '10.2.0.0', port: 1 } }, null)!;
    first.active = 1; // busy: never dropped
    for (let i = 1; i <= MAX_ORIGINAL_DST_HOSTS + 10; i++)
      rt.pick({ view, sourceIp: '', originalDst: { address: `10.2.${i >> 8}.${i & 255}`, port: 1 } }, null);
    const eps = rt.describe().endpoints as { address: string }[];
    expect(eps).to.have.length(MAX_ORIGINAL_DST_HOSTS);
    expect(eps.map((e) => e.address)).to.include('10.2.0.0:1');
    expect(eps.map((e) => e.address)).not.to.include('10.2.0.1:1');
  });

  const HOSTS: [string, string, number | undefined, { address: string; port: number } | null][] = [
    ['an IPv4 Host with its port', '10.0.0.7:8080', 80, { address: '10.0.0.7', port: 8080 }],
    ['an IPv4 Host without port: the service port', '10.0.0.7', 80, { address: '10.0.0.7', port: 80 }],
    ['an IPv6 Host', '[fd00::7]:9090', 80, { address: 'fd00::7', port: 9090 }],
    ['an IPv6 Host without port', '[fd00::7]', 443, { address: 'fd00::7', port: 443 }],
    ['a host name is never resolved', 'api.example.com:80', 80, null],
    ['a port out of range', '10.0.0.7:70000', 80, null],
    ['a port 0', '10.0.0.7:0', 80, null],
    ['no service port and none in Host', '10.0.0.7', undefined, null],
    ['a decimal-encoded IP is a name, not an address', '167772167:80', 80, null],
  ];
  for (const [name, host, port, want] of HOSTS)
    it(`without a captured destination: ${name}`, () =>
      expect(requestOriginalDst(new net.Socket(), host, port)).to.deep.equal(want));

  it('at a gateway (edge listener) the Host is never used: an outside client cannot pick an inside address', () =>
    expect(requestOriginalDst(new net.Socket(), '10.0.0.7:8080', 80, false)).to.equal(null));

  it('the captured original destination wins over the Host', () => {
    const s = new net.Socket();
    rememberOriginalDst(s, { address: '10.9.9.9', port: 7000 });
    expect(requestOriginalDst(s, '10.0.0.7:8080', 80)).to.deep.equal({ address: '10.9.9.9', port: 7000 });
  });
});
