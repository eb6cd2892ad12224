/**
 * The tables of weftctl proxy-status / proxy-config: every column's text from tables of cases,
 * and the column layout.
 */
import { expect } from 'chai';
import type { ProxyConfig, Route, RouteMatch } from '../../../pkg/proxyconfig/types.js';
import {
  actionSummary,
  age,
  configSection,
  domainsSummary,
  endpointTable,
  listenerTable,
  loadBalancerText,
  matchSummary,
  outlierText,
  poolText,
  routeTable,
  scopeText,
  sectionTable,
  secretTable,
  statusEntries,
  statusTable,
  syncState,
  table,
} from '../../../cli/proxyview.js';
import type { ProxyConnection } from '../../../cli/weftd.js';

const conn = (over: Partial<ProxyConnection>): ProxyConnection => ({
  id: 1,
  kind: 'sidecar',
  namespace: 'bookinfo',
  pod: 'productpage-1',
  serviceAccount: 'default',
  remote: '10.0.0.9:4000',
  connectedAt: '2026-01-01T00:00:00.000Z',
  version: 'aaa',
  currentVersion: 'aaa',
  pushes: 1,
  state: 'configured',
  ...over,
});

describe('weftctl proxy views', () => {
  it('table: columns padded to the widest cell, three spaces apart, no trailing blanks', () => {
    expect(
      table(
        ['A', 'LONGER'],
        [
          ['xxxx', 'y'],
          ['z', ''],
        ],
      ),
    ).to.equal('A      LONGER\nxxxx   y\nz\n');
  });

  it('age like kubectl', () => {
    const cases: [number, string][] = [
      [-5, '0s'],
      [999, '0s'],
      [59_000, '59s'],
      [60_000, '1m'],
      [192_000, '3m12s'],
      [3_600_000, '1h'],
      [7_500_000, '2h5m'],
      [86_400_000 * 3 + 3_600_000 * 4, '3d4h'],
    ];
    for (const [ms, want] of cases) expect(age(ms), String(ms)).to.equal(want);
  });

  it('sync state from the sent and current versions', () => {
    const cases: [Partial<ProxyConnection>, string][] = [
      [{ version: 'a', currentVersion: 'a' }, 'SYNCED'],
      [{ version: 'a', currentVersion: 'b' }, 'STALE'],
      [{ version: 'a', currentVersion: null }, 'STALE'], // the pod is gone: weftd would send nothing now
      [{ version: null, currentVersion: 'b', state: 'pod-unknown' }, 'NOT SENT'],
    ];
    for (const [over, want] of cases) expect(syncState(conn(over)), JSON.stringify(over)).to.equal(want);
    // an older weftd's /debug/connections has no currentVersion
    const { currentVersion, ...older } = conn({ version: 'a' });
    expect([currentVersion, syncState(older)]).to.deep.equal(['aaa', 'UNKNOWN']);
  });

  it('proxy-status rows: pod.namespace, sorted, with the state and the connection age', () => {
    const now = Date.parse('2026-01-01T00:02:05.000Z');
    const entries = statusEntries(
      [
        conn({ id: 2, pod: 'reviews-v1', version: 'old', currentVersion: 'new', pushes: 3 }),
        conn({ id: 1, kind: 'gateway', namespace: 'weft-system', pod: 'gw-0' }),
        conn({ id: 3, pod: 'late', version: null, state: 'pod-unknown', pushes: 0 }),
      ],
      now,
    );
    expect(statusTable(entries)).to.equal(
      [
        'NAME                  KIND      VERSION   STATE                    PUSHES   CONNECTED',
        'late.bookinfo         sidecar   -         NOT SENT (pod-unknown)   0        2m5s',
        'reviews-v1.bookinfo   sidecar   old       STALE                    3        2m5s',
        'gw-0.weft-system      gateway   aaa       SYNCED                   1        2m5s',
        '',
      ].join('\n'),
    );
    expect(entries.map((e) => e.serviceAccount)).to.deep.equal(['default', 'default', 'default']);
  });

  it('match summaries: AND inside a block, | between blocks, * for none', () => {
    const cases: [RouteMatch[] | undefined, string][] = [
      [undefined, '*'],
      [[], '*'],
      [[{}], '*'],
      [[{ uri: { prefix: '/api' } }], '/api*'],
      [[{ uri: { exact: '/a' }, ignoreUriCase: true }], '/a (any case)'],
      [[{ uri: { regex: '/v[0-9]+' }, method: { exact: 'POST' } }], 'POST ~/v[0-9]+'],
      [
        [{ headers: { 'end-user': { exact: 'jason' }, 'x-debug': { present: true } } }],
        'header end-user=jason header x-debug',
      ],
      [[{ withoutHeaders: { canary: { exact: 'no' } } }], '!header canary=no'],
      [[{ queryParams: { v: { prefix: '2' } } }, { port: 9080 }], '?v=2* | port 9080'],
      [[{ scheme: { exact: 'http' }, authority: { prefix: 'api.' } }], 'scheme http authority api.*'],
    ];
    for (const [m, want] of cases) expect(matchSummary(m), JSON.stringify(m)).to.equal(want);
  });

  it('destinations with weights as percentages of the total; redirects and direct responses', () => {
    const route = (action: Route['action']): Route => ({ action });
    const cases: [Route, string][] = [
      [route({ type: 'route', destinations: [{ cluster: 'c1', weight: 0 }] }), 'c1'],
      [
        route({
          type: 'route',
          destinations: [
            { cluster: 'v1', weight: 90 },
            { cluster: 'v3', weight: 10 },
          ],
        }),
        'v1 90%, v3 10%',
      ],
      [
        route({
          type: 'route',
          destinations: [
            { cluster: 'a', weight: 1 },
            { cluster: 'b', weight: 2 },
          ],
        }),
        'a 33.3%, b 66.7%',
      ],
      [
        route({ type: 'redirect', redirect: { uri: '/new', authority: 'x', scheme: 'https' } }),
        'redirect 301 https://x/new',
      ],
      [route({ type: 'directResponse', status: 418 }), 'direct response 418'],
    ];
    for (const [r, want] of cases) expect(actionSummary(r)).to.equal(want);
  });

  it('load balancer, pool and outlier columns', () => {
    expect(loadBalancerText(undefined)).to.equal('LEAST_REQUEST');
    expect(loadBalancerText({ simple: 'RANDOM' })).to.equal('RANDOM');
    expect(loadBalancerText({ consistentHash: { httpHeaderName: 'x-user' } })).to.equal('hash header x-user');
    expect(loadBalancerText({ consistentHash: { httpCookie: { name: 'c' } } })).to.equal('hash cookie c');
    expect(loadBalancerText({ consistentHash: { useSourceIp: true } })).to.equal('hash source IP');
    expect(loadBalancerText({ consistentHash: { httpQueryParameterName: 'q' } })).to.equal('hash query q');
    expect(poolText(undefined)).to.equal('-');
    expect(poolText({})).to.equal('-');
    expect(poolText({ maxConnections: 10, http1MaxPendingRequests: 1, connectTimeoutMs: 250 })).to.equal(
      'maxConn=10,pending=1,connect=250ms',
    );
    expect(outlierText(undefined)).to.equal('-');
    expect(outlierText({})).to.equal('on');
    expect(outlierText({ consecutive5xxErrors: 5, maxEjectionPercent: 50 })).to.equal('5xx=5,max=50%');
  });

  it('domains: the shortest, then how many more', () => {
    expect(domainsSummary([])).to.equal('-');
    expect(domainsSummary(['*'])).to.equal('*');
    expect(domainsSummary(['reviews.ns.svc.cluster.local:9080', 'reviews', 'reviews:9080'])).to.equal(
      'reviews +2 more',
    );
  });

  const CFG: ProxyConfig = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v1',
    listeners: [
      {
        name: 'http-8080',
        protocol: 'HTTP',
        address: '0.0.0.0',
        port: 8080,
        virtualHosts: [
          {
            name: 'shop',
            domains: ['shop.example.com'],
            routes: [
              {
                match: [{ uri: { prefix: '/cart' } }],
                action: { type: 'route', destinations: [{ cluster: 'cart', weight: 1 }] },
                source: { kind: 'VirtualService', namespace: 'shop', name: 'front', rule: 1 },
              },
            ],
          },
        ],
      },
      { name: 'db', protocol: 'TCP', port: 5432, cluster: 'pg' },
    ],
    clusters: [
      { name: 'cart', endpoints: [{ address: 'fd00::1', port: 80, weight: 3, labels: { app: 'cart' } }] },
      { name: 'pg', endpoints: [{ address: '10.1.1.1', port: 5432 }] },
    ],
  };

  it('listener, route and endpoint tables of a ProxyConfig (IPv6 endpoints in brackets)', () => {
    expect(listenerTable(CFG)).to.equal(
      [
        'NAME        ADDRESS     PORT   PROTOCOL   DESTINATION',
        'http-8080   0.0.0.0     8080   HTTP       1 virtual host(s)',
        'db          127.0.0.1   5432   TCP        cluster pg',
        '',
      ].join('\n'),
    );
    expect(routeTable(CFG)).to.equal(
      [
        'LISTENER    VIRTUAL HOST   DOMAINS            MATCH    DESTINATIONS   SOURCE',
        'http-8080   shop           shop.example.com   /cart*   cart           vs shop/front[1]',
        '',
      ].join('\n'),
    );
    expect(endpointTable(CFG)).to.equal(
      [
        'ENDPOINT        CLUSTER   WEIGHT   LABELS',
        '[fd00::1]:80    cart      3        app=cart',
        '10.1.1.1:5432   pg        1        -',
        '',
      ].join('\n'),
    );
  });

  it('-o json|yaml parts: listeners name their virtual hosts, routes carry their listener, clusters count endpoints', () => {
    expect(configSection(CFG, 'listeners')).to.deep.equal([
      { name: 'http-8080', protocol: 'HTTP', address: '0.0.0.0', port: 8080, virtualHosts: ['shop'] },
      { name: 'db', protocol: 'TCP', port: 5432, cluster: 'pg' },
    ]);
    const routes = configSection(CFG, 'routes') as { listener: string; name: string }[];
    expect(routes.map((r) => [r.listener, r.name])).to.deep.equal([['http-8080', 'shop']]);
    expect(configSection(CFG, 'clusters')).to.deep.equal([
      { name: 'cart', endpoints: 1 },
      { name: 'pg', endpoints: 1 },
    ]);
    expect(configSection(CFG, 'endpoints')).to.deep.equal([
      { cluster: 'cart', endpoints: CFG.clusters[0]!.endpoints },
      { cluster: 'pg', endpoints: CFG.clusters[1]!.endpoints },
    ]);
  });
});

describe('proxy-config secret table (istioctl columns)', () => {
  const root = {
    serialNumber: 'AB01',
    notBefore: '2026-12-01T00:00:00.000Z',
    notAfter: '2027-12-01T00:00:00.000Z',
    valid: true,
  };
  const cases: [string, Parameters<typeof secretTable>[0], string[]][] = [
    [
      'no certificate yet: WARMING',
      { state: 'no-certificate', certificate: null, roots: [] },
      ['default         Cert Chain   WARMING   false        -               -           -'],
    ],
    [
      'a valid chain and a root',
      {
        state: 'valid',
        certificate: {
          spiffeId: 'spiffe://x/ns/a/sa/b',
          serialNumber: '7F0A',
          notBefore: '2026-12-05T13:55:00.000Z',
          notAfter: '2026-12-06T14:00:00.000Z',
          valid: true,
        },
        roots: [root],
      },
      [
        'default         Cert Chain   ACTIVE   true         7f0a            2026-12-06T14:00:00Z   2026-12-05T13:55:00Z',
        'ROOTCA          CA           ACTIVE   true         ab01            2027-12-01T00:00:00Z   2026-12-01T00:00:00Z',
      ],
    ],
    [
      'an expired chain',
      {
        state: 'expired',
        certificate: {
          spiffeId: 'spiffe://x/ns/a/sa/b',
          serialNumber: '01',
          notBefore: '2026-12-05T13:55:00.000Z',
          notAfter: '2026-12-05T14:00:00.000Z',
          valid: false,
        },
        roots: [{ ...root, valid: false }],
      },
      [
        'default         Cert Chain   EXPIRED   false        01              2026-12-05T14:00:00Z   2026-12-05T13:55:00Z',
        'ROOTCA          CA           EXPIRED   false        ab01            2027-12-01T00:00:00Z   2026-12-01T00:00:00Z',
      ],
    ],
  ];
  const leafRow = {
    serialNumber: 'C1',
    notBefore: '2026-12-05T00:00:00.000Z',
    notAfter: '2026-12-20T00:00:00.000Z',
    valid: true,
  };
  cases.push(
    [
      'a gateway credential (credentialName): its chain and its CA under Istio SDS names',
      {
        state: 'no-certificate',
        certificate: null,
        roots: [],
        credentials: [
          { name: 'kubernetes://client-cred', state: 'valid', certificate: leafRow, roots: [root] },
        ],
      },
      [
        'default         Cert Chain   WARMING   false        -               -           -',
        'kubernetes://client-cred   Cert Chain   ACTIVE   true   c1   2026-12-20T00:00:00Z   2026-12-05T00:00:00Z',
        'kubernetes://client-cred-cacert   CA   ACTIVE   true   ab01   2027-12-01T00:00:00Z   2026-12-01T00:00:00Z',
      ],
    ],
    [
      'an unusable credential: ERROR, and why under the table',
      {
        state: 'no-certificate',
        certificate: null,
        roots: [],
        credentials: [
          {
            name: 'kubernetes://client-cred',
            state: 'error',
            error: 'Secret edge/client-cred not found',
            certificate: null,
            roots: [],
          },
        ],
      },
      [
        'default         Cert Chain   WARMING   false        -               -           -',
        'kubernetes://client-cred   Cert Chain   ERROR   false   -   -   -',
        '',
        'kubernetes://client-cred: Secret edge/client-cred not found',
      ],
    ],
  );
  for (const [name, answer, rows] of cases)
    it(name, () => {
      const lines = secretTable(answer).trimEnd().split('\n');
      expect(lines[0]).to.match(
        /^RESOURCE NAME +TYPE +STATUS +VALID CERT +SERIAL NUMBER +NOT AFTER +NOT BEFORE$/,
      );
      expect(lines.slice(1).map((l) => l.split(/ {2,}/))).to.deep.equal(rows.map((r) => r.split(/ {2,}/)));
    });
});

describe('proxy-config listeners: which Sidecar scoped the proxy', () => {
  const base: ProxyConfig = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v',
    listeners: [],
    clusters: [],
  };
  it('no Sidecar, ALLOW_ANY', () =>
    expect(scopeText(base)).to.equal(
      'no Sidecar: every host exported to the namespace; outbound ALLOW_ANY\n',
    ));
  it('a namespace default with REGISTRY_ONLY, printed under the listeners table', () => {
    const cfg: ProxyConfig = {
      ...base,
      scope: { sidecar: 'prod/default', via: 'namespace' },
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', destinations: [{ address: '10.96.0.1', ports: [80] }] },
    };
    expect(sectionTable(cfg, 'listeners')).to.match(
      /Sidecar prod\/default \(namespace default\) scoped this proxy's hosts; outbound REGISTRY_ONLY \(1 known/,
    );
  });
  it('a workload Sidecar and a root default say how they were chosen', () => {
    expect(scopeText({ ...base, scope: { sidecar: 'prod/ratings', via: 'workload' } })).to.contain(
      '(its workloadSelector)',
    );
    expect(scopeText({ ...base, scope: { sidecar: 'weft-system/default', via: 'root' } })).to.contain(
      '(root-namespace default)',
    );
  });
});
