/**
 * The tables of weftctl proxy-status / proxy-config: every column's text from tables of cases,
 * and the column layout.
 */
import { expect } from 'chai';
import type { ProxyConfig, Route, RouteMatch } from '../../../pkg/proxyconfig/types.js';
import {
  hostReason,
  clusterTable,
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

const sent = (version: string, nonce: string) => ({ version, nonce, at: '2026-01-01T00:00:01.000Z' });

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
  acks: true,
  sent: sent('aaa', 'n1'),
  acked: sent('aaa', 'n1'),
  nacked: null,
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

  it('sync state from what the proxy answered (istioctl proxy-status states)', () => {
    const nack = { ...sent('b', 'n2'), error: 'listen EADDRINUSE 0.0.0.0:8080' };
    const cases: [string, Partial<ProxyConnection>, string][] = [
      ['acked == sent, current', {}, 'SYNCED'],
      ['sent, no answer yet', { sent: sent('b', 'n2'), version: 'b', currentVersion: 'b' }, 'STALE'],
      [
        'an ACK of an older push',
        { sent: sent('b', 'n2'), acked: sent('aaa', 'n1'), version: 'b', currentVersion: 'b' },
        'STALE',
      ],
      ['the same version resent on a new push, not yet ACKed', { sent: sent('aaa', 'n9') }, 'STALE'],
      ['acked, but weftd has a newer version to send', { currentVersion: 'bbb' }, 'STALE'],
      ['acked, the pod is gone (weftd would send nothing now)', { currentVersion: null }, 'STALE'],
      [
        'the newest push NACKed',
        { sent: sent('b', 'n2'), nacked: nack, version: 'b', currentVersion: 'b' },
        'NACKED',
      ],
      [
        'NACKed an older push, newest ACKed',
        { sent: sent('c', 'n3'), acked: sent('c', 'n3'), nacked: nack, version: 'c', currentVersion: 'c' },
        'SYNCED',
      ],
      [
        'NACKed an older push, newest unanswered',
        { sent: sent('c', 'n3'), nacked: nack, version: 'c', currentVersion: 'c' },
        'STALE',
      ],
      ['nothing sent', { version: null, sent: null, acked: null, state: 'pod-unknown' }, 'NOT SENT'],
      ['an older proxy (no acks=1)', { acks: false, acked: null }, 'UNKNOWN'],
      ['an older proxy, nothing sent', { acks: false, version: null, sent: null, acked: null }, 'NOT SENT'],
    ];
    for (const [what, over, want] of cases) expect(syncState(conn(over)), what).to.equal(want);
    // an older weftd's /debug/connections records no answers
    const { acks, sent: s, acked, nacked, ...older } = conn({});
    expect([acks, s?.version, acked?.version, nacked, syncState(older)]).to.deep.equal([
      true,
      'aaa',
      'aaa',
      null,
      'UNKNOWN',
    ]);
  });

  it('proxy-status rows: pod.namespace, sorted, with ACKED, the connection age and the state (NACK reason last)', () => {
    const now = Date.parse('2026-01-01T00:02:05.000Z');
    const entries = statusEntries(
      [
        conn({
          id: 2,
          pod: 'reviews-v1',
          version: 'new',
          sent: sent('new', 'n2'),
          pushes: 3,
          currentVersion: 'new',
        }),
        conn({ id: 1, kind: 'gateway', namespace: 'weft-system', pod: 'gw-0' }),
        conn({ id: 3, pod: 'late', version: null, sent: null, acked: null, state: 'pod-unknown', pushes: 0 }),
        conn({
          id: 4,
          pod: 'ratings-v1',
          version: 'bad',
          currentVersion: 'bad',
          sent: sent('bad', 'n4'),
          nacked: {
            ...sent('bad', 'n4'),
            error: `listen EADDRINUSE: address already in use\n${'x'.repeat(50)}`,
          },
          pushes: 2,
        }),
        conn({ id: 5, pod: 'old-proxy', acks: false, acked: null }),
      ],
      now,
    );
    expect(statusTable(entries)).to.equal(
      [
        'NAME                  KIND      VERSION   ACKED   PUSHES   CONNECTED   STATE',
        'late.bookinfo         sidecar   -         -       0        2m5s        NOT SENT (pod-unknown)',
        'old-proxy.bookinfo    sidecar   aaa       -       1        2m5s        UNKNOWN',
        'ratings-v1.bookinfo   sidecar   bad       aaa     2        2m5s        NACKED: listen EADDRINUSE: address already in use',
        'reviews-v1.bookinfo   sidecar   new       aaa     3        2m5s        STALE',
        'gw-0.weft-system      gateway   aaa       aaa     1        2m5s        SYNCED',
        '',
      ].join('\n'),
    );
    expect(entries.find((e) => e.state === 'NACKED')!.reason).to.have.length(92);
    expect(entries.map((e) => e.serviceAccount)).to.deep.equal(Array(5).fill('default'));
  });

  it('a long NACK reason is cut in the table', () => {
    const [e] = statusEntries(
      [
        conn({
          sent: sent('b', 'n2'),
          version: 'b',
          currentVersion: 'b',
          nacked: { ...sent('b', 'n2'), error: 'e'.repeat(300) },
        }),
      ],
      0,
    );
    const last = statusTable([e!]).split('\n')[1]!;
    expect(last.endsWith(`NACKED: ${'e'.repeat(99)}…`)).to.equal(true);
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

  it('TCP listeners with L4 routes and the sidecar outbound TCP services show their routes', () => {
    const routed = { destinations: [{ cluster: 'pg', weight: 100 }] };
    const cfg: ProxyConfig = {
      ...CFG,
      listeners: [
        {
          name: 'gw-443',
          protocol: 'TCP',
          address: '0.0.0.0',
          port: 443,
          tcpRoutes: [],
          tlsRoutes: [{ ...routed, match: [{ sniHosts: ['a.example.com'] }] }],
        },
      ],
      outboundTcp: [
        { name: 'db:5432', addresses: ['10.96.0.11'], port: 5432, tcpRoutes: [routed] },
        {
          name: '0.0.0.0:443',
          addresses: ['0.0.0.0/0', '::/0'],
          port: 443,
          tlsRoutes: [{ ...routed, match: [{ sniHosts: ['api.example.com'] }] }],
          catchAll: true,
        },
      ],
    };
    expect(listenerTable(cfg)).to.equal(
      [
        'NAME          ADDRESS          PORT   PROTOCOL   DESTINATION',
        'gw-443        0.0.0.0          443    TCP        1 tls route(s), 0 tcp route(s)',
        'db:5432       10.96.0.11       5432   TCP        0 tls route(s), 1 tcp route(s)',
        '0.0.0.0:443   0.0.0.0/0,::/0   443    TCP        1 tls route(s), 0 tcp route(s), SNI catch-all',
        '',
      ].join('\n'),
    );
  });

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

describe('proxy-config on an on-demand sidecar: why each host is there (ADR 0023)', () => {
  const cluster = (service: string) => ({
    name: `outbound|80||${service}`,
    service,
    port: 80,
    endpoints: [],
  });
  const cfg = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v',
    listeners: [],
    clusters: [
      cluster('web.shop.svc.cluster.local'),
      cluster('reviews.prod.svc.cluster.local'),
      cluster('api.example.com'),
      cluster('ratings.prod.svc.cluster.local'),
    ],
    onDemand: {
      namespace: 'shop',
      subscribed: ['egress/*.example.com', 'prod/reviews.prod.svc.cluster.local'],
    },
  } as ProxyConfig;
  const table: [string, string | null][] = [
    ['web.shop.svc.cluster.local', 'namespace'],
    ['reviews.prod.svc.cluster.local:80', 'on demand (prod/reviews.prod.svc.cluster.local)'],
    ['api.example.com', 'on demand (egress/*.example.com)'],
    ['ratings.prod.svc.cluster.local', 'VirtualService destination'],
  ];
  for (const [host, want] of table)
    it(`${host} → ${want}`, () => expect(hostReason(cfg, host)).to.equal(want));
  it('a Sidecar names the rest exactly', () =>
    expect(
      hostReason({ ...cfg, scope: { sidecar: 'shop/default', via: 'namespace' } }, 'x.y.svc.cluster.local'),
    ).to.equal('Sidecar shop/default'));
  it('off: no reason and no WHY column', () => {
    const { onDemand: _, ...off } = cfg;
    expect(hostReason(off, 'web.shop.svc.cluster.local')).to.equal(null);
    expect(clusterTable(off)).to.not.contain('WHY');
  });
  it('the clusters table gets a WHY column and the listeners footer the subscriptions', () => {
    const t = clusterTable(cfg);
    expect(t.split('\n')[0]).to.match(/ENDPOINTS\s+WHY$/);
    expect(t).to.match(/outbound\|80\|\|reviews\.prod\.svc\.cluster\.local .* on demand \(prod\/reviews/);
    expect(scopeText(cfg)).to.contain(
      'on-demand hosts: namespace shop from the start, 2 subscribed (egress/*.example.com, prod/reviews.prod.svc.cluster.local)',
    );
  });
});
