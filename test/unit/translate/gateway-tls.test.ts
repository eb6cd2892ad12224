/**
 * Gateway TLS in the translation (HTTPS servers → listener `tls`, ADR 0014) and the proxy's SNI
 * and Host matching (proxy/gateway-tls.ts), from tables of Istio's and Envoy's documented
 * behaviour: Envoy's server_names match (exact, then the longest wildcard suffix, then a chain
 * without names), Istio's getSNIHostsForServer (`*` host = no names), the TLSmode enum default
 * (PASSTHROUGH) and its duplicate-host rule (the first server keeps a name).
 */
import { expect } from 'chai';
import type { Gateway, Server } from '../../../pkg/api/index.js';
import type { GatewayTlsServer, HttpListener } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { addTlsServer, gatewayTlsServer, sniHostsOf } from '../../../pkg/translate/gateway.js';
import { translateGateway, type ServiceRecord } from '../../../pkg/translate/index.js';
import { credentialNames } from '../../../controlplane/credentials.js';
import {
  hostAllowed,
  ISTIO_MUTUAL_ALPN,
  sanValues,
  secureOptions,
  selectServer,
  workloadCredential,
} from '../../../proxy/gateway-tls.js';
import { MESH_ALPN_HTTP11, MESH_ALPN_TCP } from '../../../proxy/upstream/tls.js';
import { MESH_ALPN_H2 } from '../../../proxy/h2/pool.js';
import { MESH_ALPN } from '../../../proxy/inbound/peer.js';

const srv = (name: string, sniHosts: string[]): GatewayTlsServer => ({
  name,
  sniHosts,
  mode: 'SIMPLE',
  credentialName: name,
});

describe('proxy/gateway-tls: SNI selection (Envoy server_names, Istio gateway filter chains)', () => {
  const servers = [
    srv('exact', ['a.example.com']),
    srv('wild', ['*.example.com']),
    srv('deeper', ['*.b.example.com']),
    srv('other', ['x.other.com', '*.other.com']),
  ];
  const cases: [string | null, string | null][] = [
    ['a.example.com', 'exact'], // exact beats a covering wildcard
    ['A.Example.COM', 'exact'], // SNI is case-insensitive
    ['a.example.com.', 'exact'], // a trailing dot is the same name
    ['c.example.com', 'wild'],
    ['x.b.example.com', 'deeper'], // the longest wildcard suffix wins
    ['y.x.b.example.com', 'deeper'], // a wildcard covers deeper names (Envoy)
    ['q.c.example.com', 'wild'],
    ['example.com', null], // `*.example.com` does not cover the bare domain
    ['x.other.com', 'other'],
    ['evil-example.com', null], // a suffix without the dot boundary is no match
    ['nobody.test', null],
    [null, null], // no SNI and no catch-all server
    ['', null],
  ];
  for (const [sni, want] of cases)
    it(`${JSON.stringify(sni)} → ${want ?? 'refused'}`, () =>
      expect(selectServer(servers, sni)?.name ?? null).to.equal(want));

  it('a `*` server (no names) takes every other SNI, and clients without SNI', () => {
    const withAll = [...servers, srv('all', [])];
    expect(selectServer(withAll, 'nobody.test')?.name).to.equal('all');
    expect(selectServer(withAll, null)?.name).to.equal('all');
    expect(selectServer(withAll, 'a.example.com')?.name).to.equal('exact');
  });
});

describe('proxy/gateway-tls: Host against the SNI-selected server', () => {
  const cases: [string[], string, boolean][] = [
    [['a.example.com'], 'a.example.com', true],
    [['a.example.com'], 'A.EXAMPLE.COM:443', true],
    [['a.example.com'], 'a.example.com.', true],
    [['a.example.com'], 'b.example.com', false],
    [['*.example.com'], 'b.example.com:8443', true],
    [['*.example.com'], 'example.com', false],
    [[], 'anything.test', true],
    [['a.example.com'], '[::1]:443', false],
  ];
  for (const [hosts, authority, want] of cases)
    it(`${JSON.stringify(hosts)} ∋ ${authority}: ${want}`, () => {
      const server = { name: 's', sniHosts: hosts };
      expect(hostAllowed([server], server, authority)).to.equal(want);
    });

  it('a Host that selects another server is refused even if the SNI server covers it (MUTUAL bypass)', () => {
    const admin = { name: 'admin', sniHosts: ['admin.example.com'] }; // MUTUAL
    const wild = { name: 'wild', sniHosts: ['*.example.com'] }; // SIMPLE
    const any = { name: 'any', sniHosts: [] }; // `*`
    const servers = [admin, wild, any];
    expect(hostAllowed(servers, wild, 'admin.example.com')).to.equal(false);
    expect(hostAllowed(servers, any, 'admin.example.com')).to.equal(false);
    expect(hostAllowed(servers, wild, 'shop.example.com')).to.equal(true);
    expect(hostAllowed(servers, any, 'other.test')).to.equal(true);
    expect(hostAllowed(servers, admin, 'ADMIN.example.com:443')).to.equal(true);
  });

  it('reads the SAN values of a certificate', () =>
    expect(sanValues('DNS:a.example.com, URI:spiffe://td/ns/x/sa/y, IP Address:10.0.0.1')).to.deep.equal([
      'a.example.com',
      'spiffe://td/ns/x/sa/y',
      '10.0.0.1',
    ]));
});

function gateway(spec: Gateway['spec']): Gateway {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'gw', namespace: 'edge', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec,
  } as Gateway;
}

const https = (hosts: string[], tls: Server['tls'], port = 443): Server => ({
  port: { number: port, name: `https-${port}`, protocol: 'HTTPS' },
  hosts,
  ...(tls ? { tls } : {}),
});

const productpage: ServiceRecord = {
  host: 'productpage.shop.svc.cluster.local',
  namespace: 'shop',
  addresses: [],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [{ address: '10.1.0.9', labels: {} }],
};

describe('pkg/translate: Gateway HTTPS servers', () => {
  const pod = { namespace: 'edge', labels: { istio: 'ingressgateway' } };

  /** The gateway edge/gw with `servers` on the ingress pod, and a VirtualService for `hosts` bound to it. */
  const translateHttps = (servers: Server[], hosts: string[]) =>
    translateGateway({
      pod,
      services: [productpage],
      gateways: [gateway({ selector: { istio: 'ingressgateway' }, servers })],
      virtualServices: [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'pp', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
          spec: {
            hosts,
            gateways: ['edge/gw'],
            http: [{ route: [{ destination: { host: 'productpage' } }] }],
          },
        },
      ],
    } as never);

  it('sniHostsOf: namespace part dropped, lowercased; a `*` host is a catch-all', () => {
    expect(sniHostsOf(https(['shop/A.example.com', './b.example.com'], undefined), 'edge')).to.deep.equal([
      'a.example.com',
      'b.example.com',
    ]);
    expect(sniHostsOf(https(['a.example.com', '*/*'], undefined), 'edge')).to.deep.equal([]);
  });

  const modes: [Server['tls'], string | Partial<GatewayTlsServer>][] = [
    [
      { mode: 'SIMPLE', credentialName: 'c' },
      { mode: 'SIMPLE', credentialName: 'c' },
    ],
    [
      { mode: 'MUTUAL', credentialName: 'c', subjectAltNames: ['client.example.com'] },
      { mode: 'MUTUAL', subjectAltNames: ['client.example.com'] },
    ],
    [
      { mode: 'SIMPLE', credentialName: 'c', minProtocolVersion: 'TLSV1_3', maxProtocolVersion: 'TLS_AUTO' },
      { minProtocolVersion: 'TLSv1.3' },
    ],
    [
      { mode: 'SIMPLE', credentialName: 'c', cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'] },
      { cipherSuites: ['ECDHE-RSA-AES128-GCM-SHA256'] },
    ],
    [{ mode: 'PASSTHROUGH' }, /tls.mode PASSTHROUGH is not served yet/.source],
    [{ credentialName: 'c' }, /tls.mode PASSTHROUGH/.source], // the enum's default
    [{ mode: 'AUTO_PASSTHROUGH' }, /AUTO_PASSTHROUGH is not served/.source],
    // the gateway's workload certificate: no credential, every client with a mesh certificate
    [{ mode: 'ISTIO_MUTUAL' }, { mode: 'ISTIO_MUTUAL' }],
    // subjectAltNames restrict the client identities (Istio's validation context, as for MUTUAL)
    [
      { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/web'] },
      { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/web'] },
    ],
    [
      { mode: 'ISTIO_MUTUAL', minProtocolVersion: 'TLSV1_3' },
      { mode: 'ISTIO_MUTUAL', minProtocolVersion: 'TLSv1.3' },
    ],
    // SIMPLE asks for no client certificate: subjectAltNames have nothing to check
    [{ mode: 'SIMPLE', credentialName: 'c', subjectAltNames: ['x'] }, { mode: 'SIMPLE' }],
    [{ mode: 'OPTIONAL_MUTUAL', credentialName: 'c' }, /OPTIONAL_MUTUAL is not served/.source],
    [
      { mode: 'SIMPLE', serverCertificate: '/etc/cert.pem', privateKey: '/etc/key.pem' },
      /credentialName is required/.source,
    ],
    [undefined, /HTTPS without tls/.source],
  ];
  for (const [tls, want] of modes)
    it(`tls ${JSON.stringify(tls)}`, () => {
      const got = gatewayTlsServer(https(['a.example.com'], tls), 'edge/gw[0]', 'edge');
      if (typeof want === 'string') expect(got).to.be.a('string').and.match(new RegExp(want));
      else expect(got).to.deep.include({ name: 'edge/gw[0]', sniHosts: ['a.example.com'], ...want });
      if (typeof got !== 'string') {
        if (got.mode === 'ISTIO_MUTUAL') expect(got).not.to.have.property('credentialName');
        if (got.mode === 'SIMPLE') expect(got).not.to.have.property('subjectAltNames');
      }
    });

  it('a duplicate SNI name stays with the first server; a server with none left is skipped', () => {
    const a = gatewayTlsServer(
      https(['a.example.com', 'b.example.com'], { mode: 'SIMPLE', credentialName: 'x' }),
      's0',
      'e',
    ) as GatewayTlsServer;
    const b = gatewayTlsServer(
      https(['b.example.com', 'c.example.com'], { mode: 'SIMPLE', credentialName: 'y' }),
      's1',
      'e',
    ) as GatewayTlsServer;
    const dup = gatewayTlsServer(
      https(['a.example.com'], { mode: 'SIMPLE', credentialName: 'z' }),
      's2',
      'e',
    ) as GatewayTlsServer;
    const two = addTlsServer([a], b) as GatewayTlsServer[];
    expect(two.map((s) => s.sniHosts)).to.deep.equal([['a.example.com', 'b.example.com'], ['c.example.com']]);
    expect(addTlsServer(two, dup))
      .to.be.a('string')
      .and.match(/already served/);
  });

  it('translates SIMPLE and MUTUAL servers into one TLS listener; weftd delivers their credentials', () => {
    const r = translateHttps(
      [
        https(['a.example.com'], { mode: 'SIMPLE', credentialName: 'a-cert' }),
        https(['m.example.com'], { mode: 'MUTUAL', credentialName: 'm-cert' }),
        https(['p.example.com'], { mode: 'PASSTHROUGH' }),
        {
          port: { number: 443, name: 'plain', protocol: 'HTTP' },
          hosts: ['z.example.com'],
        },
        {
          port: { number: 80, name: 'http', protocol: 'HTTP' },
          hosts: ['a.example.com'],
          tls: { httpsRedirect: true },
        },
      ],
      ['a.example.com', 'm.example.com'],
    );
    const ls = r.config.listeners as HttpListener[];
    expect(ls.map((l) => [l.port, l.tls === undefined])).to.deep.equal([
      [80, true],
      [443, false],
    ]);
    expect(ls[1]!.tls!.servers.map((s) => [s.name, s.mode, s.sniHosts, s.credentialName])).to.deep.equal([
      ['edge/gw[0]', 'SIMPLE', ['a.example.com'], 'a-cert'],
      ['edge/gw[1]', 'MUTUAL', ['m.example.com'], 'm-cert'],
    ]);
    expect(ls[1]!.virtualHosts.map((v) => v.name)).to.deep.equal(['a.example.com:443', 'm.example.com:443']);
    // passthrough is served (tcproutes.ts), but not on a port that terminates TLS
    expect(r.warnings.join('\n')).to.match(
      /port 443: HTTPS PASSTHROUGH conflicts with the port's earlier HTTP or terminated HTTPS server/,
    );
    expect(r.warnings.join('\n')).to.match(/port 443: HTTP conflicts with the port's earlier HTTPS server/);
    expect(validateProxyConfig(r.config)).to.deep.equal([]);
    expect(credentialNames(r.config)).to.deep.equal(['a-cert', 'm-cert']);
  });

  it('ISTIO_MUTUAL among SIMPLE servers by SNI: one listener, no credential asked for the mesh server', () => {
    const r = translateHttps(
      [
        https(['a.example.com'], { mode: 'SIMPLE', credentialName: 'a-cert' }),
        https(['mesh.example.com'], {
          mode: 'ISTIO_MUTUAL',
          subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/web'],
        }),
        // a duplicate name stays with the first server, whatever its mode
        https(['a.example.com', '*.internal'], { mode: 'ISTIO_MUTUAL' }),
        https(['*'], { mode: 'SIMPLE', credentialName: 'fallback' }),
      ],
      ['a.example.com', 'mesh.example.com', 'x.internal'],
    );
    const [l] = r.config.listeners as HttpListener[];
    expect(
      l!.tls!.servers.map((s) => [s.mode, s.sniHosts, s.credentialName, s.subjectAltNames]),
    ).to.deep.equal([
      ['SIMPLE', ['a.example.com'], 'a-cert', undefined],
      ['ISTIO_MUTUAL', ['mesh.example.com'], undefined, ['spiffe://cluster.local/ns/shop/sa/web']],
      ['ISTIO_MUTUAL', ['*.internal'], undefined, undefined],
      ['SIMPLE', [], 'fallback', undefined],
    ]);
    expect(r.warnings.join('\n')).not.to.match(/ISTIO_MUTUAL/);
    expect(validateProxyConfig(r.config)).to.deep.equal([]);
    expect(credentialNames(r.config)).to.deep.equal(['a-cert', 'fallback']);
    const servers = l!.tls!.servers;
    expect(selectServer(servers, 'mesh.example.com')?.mode).to.equal('ISTIO_MUTUAL');
    expect(selectServer(servers, 'a.internal')?.mode).to.equal('ISTIO_MUTUAL');
    expect(selectServer(servers, 'a.example.com')?.credentialName).to.equal('a-cert');
    expect(selectServer(servers, null)?.credentialName).to.equal('fallback');
  });

  it('the proxy config check: ISTIO_MUTUAL takes no credentialName, SIMPLE/MUTUAL need one', () => {
    const cfg = (servers: unknown[]) => ({
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [{ name: 'l', protocol: 'HTTP', port: 443, virtualHosts: [], tls: { servers } }],
      clusters: [],
    });
    expect(validateProxyConfig(cfg([{ name: 's', sniHosts: [], mode: 'ISTIO_MUTUAL' }]))).to.deep.equal([]);
    expect(
      validateProxyConfig(cfg([{ name: 's', sniHosts: [], mode: 'ISTIO_MUTUAL', credentialName: 'c' }])).map(
        (p) => p.path,
      ),
    ).to.deep.equal(['listeners[0].tls.servers[0].credentialName']);
    expect(
      validateProxyConfig(cfg([{ name: 's', sniHosts: [], mode: 'MUTUAL' }])).map((p) => p.path),
    ).to.deep.equal(['listeners[0].tls.servers[0].credentialName']);
  });

  it('the proxy config check refuses a malformed tls block', () => {
    const bad = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [
        {
          name: 'l',
          protocol: 'HTTP',
          port: 443,
          virtualHosts: [],
          tls: {
            servers: [
              {
                name: 's',
                sniHosts: [],
                mode: 'PASSTHROUGH',
                credentialName: '',
                minProtocolVersion: 'TLSv9',
              },
            ],
          },
        },
      ],
      clusters: [],
    };
    expect(validateProxyConfig(bad).map((p) => p.path)).to.deep.equal([
      'listeners[0].tls.servers[0].mode',
      'listeners[0].tls.servers[0].credentialName',
      'listeners[0].tls.servers[0].minProtocolVersion',
    ]);
  });
});

describe('proxy/gateway-tls: ISTIO_MUTUAL material', () => {
  const none = { current: () => null, secureContext: () => null, onChange: () => () => {} };

  it('no identity, or none issued yet: an unusable credential with the reason', () => {
    expect(workloadCredential(undefined).error).to.match(/no workload identity/);
    expect(workloadCredential(none).error).to.match(/no workload certificate yet/);
    const s: GatewayTlsServer = { name: 'm', sniHosts: [], mode: 'ISTIO_MUTUAL' };
    expect(() => secureOptions(s, workloadCredential(none))).to.throw(/no workload certificate yet/);
    expect(() =>
      secureOptions(s, { source: 'workload certificate', certChain: 'x', privateKey: 'y' }),
    ).to.throw(/no mesh roots: ISTIO_MUTUAL cannot verify client certificates/);
  });

  it('offers every ALPN value a weft sidecar sends, and every mesh value the inbound accepts', () => {
    for (const p of [...MESH_ALPN_HTTP11, ...MESH_ALPN_TCP, ...MESH_ALPN_H2, ...MESH_ALPN, 'h2', 'http/1.1'])
      expect(ISTIO_MUTUAL_ALPN).to.include(p);
    // OpenSSL picks in the server's order: the protocol-specific values before plain `istio`
    expect(ISTIO_MUTUAL_ALPN.indexOf('istio-h2')).to.be.lessThan(ISTIO_MUTUAL_ALPN.indexOf('istio'));
    expect(ISTIO_MUTUAL_ALPN.indexOf('istio-http/1.1')).to.be.lessThan(ISTIO_MUTUAL_ALPN.indexOf('istio'));
  });
});
