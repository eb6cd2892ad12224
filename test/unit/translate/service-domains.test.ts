/**
 * Issue #19: a service port's authorities travel in short (`serviceDomains`) and the proxy spells
 * them out (pkg/proxyconfig/domains.ts). The reference below is the translator's list as it was
 * sent before (Istio's sidecar domains as weft builds them: the host, the addresses, the short
 * forms of a Kubernetes-style host; each with the port, and bare on the default HTTP port): the
 * short form must say exactly that, and the compiled proxy must pick the same virtual host for
 * every authority. A proxy that did not ask for the short form gets the list (withExplicitDomains).
 */
import { expect } from 'chai';
import { domainsOf, withExplicitDomains } from '../../../pkg/proxyconfig/domains.js';
import type { HttpListener, ProxyConfig, VirtualHost } from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { translate, type ServiceRecord } from '../../../pkg/translate/index.js';
import { compileConfig, findVHost, type CompiledHttpListener } from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';

const SUFFIX = 'svc.cluster.local';

/** The translator's domains before issue #19, kept as the reference the short form must match. */
function referenceDomains(svc: ServiceRecord, port: number, bare: boolean): string[] {
  const names = new Set<string>([svc.host, ...svc.addresses]);
  const k8sSuffix = `.${svc.namespace}.${SUFFIX}`;
  if (svc.host.endsWith(k8sSuffix)) {
    const short = svc.host.slice(0, -k8sSuffix.length);
    names.add(short);
    names.add(`${short}.${svc.namespace}`);
    names.add(`${short}.${svc.namespace}.svc`);
  }
  const out: string[] = [];
  for (const n of names) {
    out.push(`${n}:${port}`);
    if (bare) out.push(n);
  }
  return out;
}

const svc = (host: string, namespace: string, addresses: string[], ports: number[]): ServiceRecord => ({
  host,
  namespace,
  addresses,
  ports: ports.map((number) => ({ number, name: `http-${number}`, protocol: 'HTTP' })),
  endpoints: [{ address: '10.0.0.1', labels: {} }],
});

const SERVICES: [string, ServiceRecord][] = [
  [
    'a Service with a VIP, ports 80 and 9090',
    svc(`reviews.shop.${SUFFIX}`, 'shop', ['10.96.0.10'], [80, 9090]),
  ],
  ['a headless Service, one port (bare on it)', svc(`db.shop.${SUFFIX}`, 'shop', [], [5000])],
  ['dual-stack addresses', svc(`api.shop.${SUFFIX}`, 'shop', ['10.96.0.11', 'fd00::11'], [8080])],
  ['a ServiceEntry host with dots before its namespace', svc(`a.b.shop.${SUFFIX}`, 'shop', [], [80])],
  [
    'a ServiceEntry naming another namespace’s host (no short forms)',
    svc(`x.other.${SUFFIX}`, 'shop', [], [80]),
  ],
  ['an external host', svc('api.example.com', 'shop', ['240.0.0.1'], [443, 80])],
  ['a wildcard host', svc('*.example.com', 'shop', [], [80])],
  ['an address equal to the host', svc('10.1.2.3', 'shop', ['10.1.2.3'], [80])],
];

function translated(services: ServiceRecord[]): ProxyConfig {
  const { config } = translate({ services, domainSuffix: SUFFIX });
  expect(validateProxyConfig(config)).to.deep.equal([]);
  return config;
}

const vhostsOf = (config: ProxyConfig): VirtualHost[] => (config.listeners[0] as HttpListener).virtualHosts;

function compiledListener(config: ProxyConfig): CompiledHttpListener {
  const metrics = new MetricsRegistry({ workload: 'w', namespace: 'shop', app: 'w', version: 'v' });
  return compileConfig(config, { metrics }).config.listeners[0] as CompiledHttpListener;
}

describe('translation: short service domains the proxy spells out (issue #19)', () => {
  for (const [what, s] of SERVICES)
    it(`${what}: the short form stands for the same list`, () => {
      const vhosts = vhostsOf(translated([s]));
      const bare = s.ports.find((p) => p.number === 80) ?? s.ports[0]!;
      expect(vhosts.map((vh) => [vh.name, domainsOf(vh)])).to.deep.equal(
        s.ports.map((p) => [`${s.host}:${p.number}`, referenceDomains(s, p.number, p === bare)]),
      );
      for (const vh of vhosts) expect(vh.domains, vh.name).to.equal(undefined);
    });

  it('is much shorter than the list', () => {
    const [, s] = SERVICES[0]!;
    const vh = vhostsOf(translated([s]))[0]!;
    expect(vh.serviceDomains).to.deep.equal({ addresses: ['10.96.0.10'], short: 'reviews', bare: true });
    const spelled = JSON.stringify(referenceDomains(s, 80, true)).length;
    expect(JSON.stringify(vh.serviceDomains).length).to.be.below(spelled / 3);
  });

  it('the compiled proxy picks the same virtual host for every authority, known or not', () => {
    const services = SERVICES.map(([, s]) => s);
    const short = translated(services);
    const spelled = withExplicitDomains(short);
    const a = compiledListener(short);
    const b = compiledListener(spelled);
    const authorities = [
      ...services.flatMap((s) => s.ports.flatMap((p) => referenceDomains(s, p.number, true))),
      'reviews.shop.svc.cluster',
      'reviews:1234',
      'REVIEWS.SHOP:9090',
      'reviews.other',
      'api.shop:8080',
      '[fd00::11]:8080',
      'foo.example.com',
      'b.shop',
      'a.b',
      'nothing',
    ];
    for (const authority of authorities)
      expect(findVHost(a, authority)?.name, authority).to.equal(findVHost(b, authority)?.name);
    // and they do route
    expect(findVHost(a, 'reviews')?.name).to.equal(`reviews.shop.${SUFFIX}:80`);
    expect(findVHost(a, 'reviews.shop:9090')?.name).to.equal(`reviews.shop.${SUFFIX}:9090`);
    expect(findVHost(a, 'a.b.shop.svc')?.name).to.equal(`a.b.shop.${SUFFIX}:80`);
  });

  it('spelled out for an older proxy: only domains, same version, and valid', () => {
    const short = translated(SERVICES.map(([, s]) => s));
    const spelled = withExplicitDomains(short);
    expect(spelled.version).to.equal(short.version);
    expect(validateProxyConfig(spelled)).to.deep.equal([]);
    const before = vhostsOf(short);
    vhostsOf(spelled).forEach((vh, i) => {
      expect(vh.serviceDomains, vh.name).to.equal(undefined);
      expect(vh.domains).to.deep.equal(domainsOf(before[i]!));
    });
    expect(JSON.stringify(spelled)).to.not.include('serviceDomains');
    // proxies of one translation share the spelled-out listeners
    expect(withExplicitDomains({ ...short }).listeners).to.equal(spelled.listeners);
  });

  const BAD: [string, Partial<VirtualHost>, string][] = [
    ['neither domains nor serviceDomains', { name: 'a.b.svc.cluster.local:80' }, 'domains'],
    ['a name without a port', { name: 'a.b.svc.cluster.local', serviceDomains: {} }, 'serviceDomains'],
    ['a port out of range', { name: 'a.b.svc.cluster.local:70000', serviceDomains: {} }, 'serviceDomains'],
    [
      'a short name the host does not start with',
      { name: 'a.b.svc.cluster.local:80', serviceDomains: { short: 'z' } },
      'serviceDomains.short',
    ],
    [
      'a short name with no namespace after it',
      { name: 'a.b:80', serviceDomains: { short: 'a' } },
      'serviceDomains.short',
    ],
    [
      'bare false',
      { name: 'a.b.svc.cluster.local:80', serviceDomains: { bare: false as never } },
      'serviceDomains.bare',
    ],
    [
      'an address that is not a string',
      { name: 'a.b.svc.cluster.local:80', serviceDomains: { addresses: [7 as never] } },
      'serviceDomains.addresses[0]',
    ],
    [
      'a field the proxy does not know',
      { name: 'a.b.svc.cluster.local:80', serviceDomains: { more: ['x'] } as never },
      'serviceDomains.more',
    ],
  ];
  for (const [what, vh, field] of BAD)
    it(`refuses ${what}`, () => {
      const config: ProxyConfig = {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: 'v',
        listeners: [
          { name: 'l', protocol: 'HTTP', port: 0, virtualHosts: [{ routes: [], ...vh } as VirtualHost] },
        ],
        clusters: [],
      };
      const paths = validateProxyConfig(config).map((e) => e.path);
      expect(paths).to.include(`listeners[0].virtualHosts[0].${field}`);
    });
});
