/**
 * DNS ServiceEntries without `addresses` on TLS/HTTPS ports (pkg/translate/tcproutes.ts
 * sniCatchAll): Istio builds a `0.0.0.0:<port>` listener with one SNI filter chain per such
 * host whose tcp_proxy goes to the host's cluster (STRICT_DNS), a VirtualService's `tls:` rules
 * for the host instead when it has some, and a default chain (PassthroughCluster / BlackHole).
 * Here: one catch-all outbound TCP service per port, consulted after every service's own
 * addresses, with only those SNI routes; the registry no longer lists anything for such entries.
 */
import { expect } from 'chai';
import type { ServiceEntry, VirtualService } from '../../../pkg/api/index.js';
import type { Sidecar } from '../../../pkg/api/sidecar.js';
import type { OutboundTcpService, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { translate, type TranslateInput } from '../../../pkg/translate/index.js';
import { proxyScope } from '../../../pkg/translate/scope.js';

const entry = (name: string, spec: ServiceEntry['spec'], ns = 'ext'): ServiceEntry => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: ns },
  spec,
});

const api = entry('api', {
  hosts: ['api.example.test'],
  ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
  resolution: 'DNS',
});

const vs = (name: string, spec: VirtualService['spec'], created: string): VirtualService => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'ext', creationTimestamp: created },
  spec,
});

const sidecarIn = (ns: string, spec: Sidecar['spec']): Sidecar => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: { name: 's', namespace: ns, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec,
});

function build(input: Partial<TranslateInput>): { config: ProxyConfig; warnings: string[] } {
  const r = translate({ proxy: { namespace: 'app', labels: { app: 'client' } }, ...input });
  expect(validateProxyConfig(r.config), 'the config validates').to.deep.equal([]);
  return r;
}

const catchAlls = (cfg: ProxyConfig): OutboundTcpService[] =>
  (cfg.outboundTcp ?? []).filter((s) => s.catchAll === true);

const sniRoute = (host: string, port = 443) => ({
  name: `${host}:${port}`,
  match: [{ sniHosts: [host] }],
  destinations: [{ cluster: `outbound|${port}||${host}`, weight: 100 }],
});

describe('translate: DNS ServiceEntries without addresses → the port’s SNI catch-all', () => {
  it('a TLS port: any address on :443, SNI = the host → its STRICT_DNS cluster', () => {
    const { config } = build({ serviceEntries: [api] });
    expect(catchAlls(config)).to.deep.equal([
      {
        name: '0.0.0.0:443',
        addresses: ['0.0.0.0/0', '::/0'],
        port: 443,
        tlsRoutes: [sniRoute('api.example.test')],
        catchAll: true,
      },
    ]);
    const cluster = config.clusters.find((c) => c.name === 'outbound|443||api.example.test');
    expect(cluster?.type).to.equal('STRICT_DNS');
    expect(cluster?.endpoints.map((e) => `${e.address}:${e.port}`)).to.deep.equal(['api.example.test:443']);
  });

  it('an entry with endpoints routes to them; HTTPS ports and DNS_ROUND_ROBIN count too', () => {
    const eps = entry('eps', {
      hosts: ['*.cdn.example.test'],
      ports: [{ number: 8443, name: 'https', protocol: 'HTTPS' }],
      resolution: 'DNS_ROUND_ROBIN',
      endpoints: [{ address: 'edge.example.test' }],
    });
    const { config } = build({ serviceEntries: [api, eps] });
    expect(catchAlls(config).map((s) => [s.port, s.tlsRoutes])).to.deep.equal([
      [443, [sniRoute('api.example.test')]],
      [8443, [sniRoute('*.cdn.example.test', 8443)]],
    ]);
    const cluster = config.clusters.find((c) => c.name === 'outbound|8443||*.cdn.example.test');
    expect(cluster?.type).to.equal('LOGICAL_DNS');
    expect(cluster?.endpoints.map((e) => e.address)).to.deep.equal(['edge.example.test']);
  });

  it('exact names before wildcards, longer wildcards before shorter (Envoy’s most specific server_name)', () => {
    const wide = entry('wide', {
      hosts: ['*.example.test'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      resolution: 'DNS',
      endpoints: [{ address: 'wide.example.net' }],
    });
    const narrow = entry('narrow', {
      hosts: ['*.eu.example.test'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      resolution: 'DNS',
      endpoints: [{ address: 'eu.example.net' }],
    });
    const { config } = build({ serviceEntries: [wide, narrow, api] });
    expect(catchAlls(config)[0]!.tlsRoutes!.map((r) => r.match![0]!.sniHosts![0])).to.deep.equal([
      'api.example.test',
      '*.eu.example.test',
      '*.example.test',
    ]);
  });

  it('DYNAMIC_DNS (no dynamic forward proxy): SNI routes to its ORIGINAL_DST cluster, the address dialled', () => {
    const dyn = entry('dyn', {
      hosts: ['*.dyn.example.test'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      resolution: 'DYNAMIC_DNS',
    });
    const { config } = build({ serviceEntries: [dyn] });
    expect(catchAlls(config)[0]!.tlsRoutes).to.deep.equal([sniRoute('*.dyn.example.test')]);
    expect(config.clusters.find((c) => c.name === 'outbound|443||*.dyn.example.test')?.type).to.equal(
      'ORIGINAL_DST',
    );
  });

  const unchanged: [string, ServiceEntry][] = [
    ['with addresses (its VIP service)', entry('vip', { ...api.spec, addresses: ['240.0.0.10'] })],
    ['on a TCP port', entry('tcp', { ...api.spec, ports: [{ number: 443, name: 'tcp', protocol: 'TCP' }] })],
    [
      'on an HTTP port',
      entry('http', { ...api.spec, ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] }),
    ],
    ['resolved by the original destination (NONE)', entry('none', { ...api.spec, resolution: 'NONE' })],
    [
      'STATIC (its endpoints are addresses)',
      entry('static', { ...api.spec, resolution: 'STATIC', endpoints: [{ address: '203.0.113.7' }] }),
    ],
  ];
  for (const [what, se] of unchanged)
    it(`no catch-all for a ServiceEntry ${what}`, () =>
      expect(catchAlls(build({ serviceEntries: [se] }).config)).to.deep.equal([]));

  it('with addresses: the VIP service is what it was (its own address and routes)', () => {
    const { config } = build({ serviceEntries: [entry('vip', { ...api.spec, addresses: ['240.0.0.10'] })] });
    expect(config.outboundTcp).to.deep.equal([
      {
        name: 'api.example.test:443',
        addresses: ['240.0.0.10'],
        port: 443,
        tcpRoutes: [
          { name: 'default', destinations: [{ cluster: 'outbound|443||api.example.test', weight: 100 }] },
        ],
      },
    ]);
  });

  it('a VirtualService’s tls: rules for the host replace its default route, narrowed to the host', () => {
    const other = entry('other', {
      hosts: ['mirror.example.test'],
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
      resolution: 'DNS',
    });
    const rules = vs(
      'api',
      {
        hosts: ['api.example.test'],
        tls: [
          {
            // evil.example.net is not the VirtualService's host: never taken by the catch-all
            match: [{ sniHosts: ['api.example.test', 'evil.example.net'], port: 443 }],
            route: [{ destination: { host: 'mirror.example.test', port: { number: 443 } } }],
          },
        ],
      },
      '2026-01-01T00:00:00Z',
    );
    const { config } = build({ serviceEntries: [api, other], virtualServices: [rules] });
    expect(catchAlls(config)[0]!.tlsRoutes).to.deep.equal([
      {
        name: 'ext/api.tls[0]',
        source: { kind: 'VirtualService', namespace: 'ext', name: 'api', rule: 0 },
        match: [{ sniHosts: ['api.example.test'] }],
        destinations: [{ cluster: 'outbound|443||mirror.example.test', weight: 100 }],
      },
      sniRoute('mirror.example.test'),
    ]);
  });

  it('a VirtualService bound to gateways only, or with rules for another port, leaves the default', () => {
    const gwOnly = vs(
      'gw',
      {
        hosts: ['api.example.test'],
        gateways: ['ext/egress'],
        tls: [{ match: [{ sniHosts: ['api.example.test'] }], route: [{ destination: { host: 'x' } }] }],
      },
      '2026-01-01T00:00:00Z',
    );
    const otherPort = vs(
      'port',
      {
        hosts: ['api.example.test'],
        tls: [
          {
            match: [{ sniHosts: ['api.example.test'], port: 8443 }],
            route: [{ destination: { host: 'x' } }],
          },
        ],
      },
      '2026-01-02T00:00:00Z',
    );
    const { config } = build({ serviceEntries: [api], virtualServices: [gwOnly, otherPort] });
    expect(catchAlls(config)[0]!.tlsRoutes).to.deep.equal([sniRoute('api.example.test')]);
  });

  it('ALLOW_ANY and REGISTRY_ONLY build the same routes; REGISTRY_ONLY lists no address for the entry', () => {
    const allowAny = build({ serviceEntries: [api] }).config;
    const registryOnly = build({
      serviceEntries: [api],
      scope: proxyScope(
        { sidecar: sidecarIn('app', { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }), via: 'namespace' },
        'app',
      ),
    }).config;
    expect(catchAlls(registryOnly)).to.deep.equal(catchAlls(allowAny));
    expect(allowAny.outboundTrafficPolicy, 'ALLOW_ANY: unmatched SNI passes through').to.equal(undefined);
    // unmatched SNI to an unknown address: nothing lets it pass (BlackHoleCluster)
    expect(registryOnly.outboundTrafficPolicy).to.deep.equal({ mode: 'REGISTRY_ONLY', destinations: [] });
  });

  it('exportTo: an entry not exported to the proxy’s namespace has no route', () => {
    const hidden = entry('hidden', { ...api.spec, exportTo: ['.'] });
    expect(catchAlls(build({ serviceEntries: [hidden] }).config)).to.deep.equal([]);
    const own = translate({ serviceEntries: [hidden], proxy: { namespace: 'ext', labels: {} } });
    expect(catchAlls(own.config)).to.have.length(1);
  });

  it('Sidecar egress: only the hosts the proxy imports get routes', () => {
    const other = entry('other', { ...api.spec, hosts: ['other.example.test'] }, 'elsewhere');
    const scope = proxyScope(
      { sidecar: sidecarIn('app', { egress: [{ hosts: ['ext/*'] }] }), via: 'namespace' },
      'app',
    );
    const { config } = build({ serviceEntries: [api, other], scope });
    expect(catchAlls(config)[0]!.tlsRoutes).to.deep.equal([sniRoute('api.example.test')]);
  });
});

describe('proxy config validation: catch-all outbound TCP services', () => {
  const cfg = (s: unknown): unknown => ({
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'v',
    listeners: [],
    clusters: [],
    outboundTcp: [s],
  });
  const base = { name: '0.0.0.0:443', addresses: ['0.0.0.0/0', '::/0'], port: 443, catchAll: true };
  const tls = [{ match: [{ sniHosts: ['a.example.test'] }], destinations: [{ cluster: 'c', weight: 1 }] }];
  const paths = (s: unknown): string[] => validateProxyConfig(cfg(s)).map((e) => e.path);

  it('takes SNI routes only', () => expect(paths({ ...base, tlsRoutes: tls })).to.deep.equal([]));
  it('refuses TCP routes on a catch-all (they would take every connection to the port)', () =>
    expect(
      paths({ ...base, tlsRoutes: tls, tcpRoutes: [{ destinations: [{ cluster: 'c', weight: 1 }] }] }),
    ).to.deep.equal(['outboundTcp[0].tcpRoutes']));
  it('refuses a catch-all without routes, and a catchAll that is not true', () => {
    expect(paths({ ...base })).to.include('outboundTcp[0].tlsRoutes');
    expect(paths({ ...base, catchAll: 'yes', tlsRoutes: tls })).to.deep.equal(['outboundTcp[0].catchAll']);
  });
});
