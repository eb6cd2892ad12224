/**
 * Gateway translation (pkg/translate gateway.ts + translateGateway): which Gateways select a pod,
 * which VirtualServices bind, host intersection with wildcards and namespace-scoped server hosts.
 */
import { expect } from 'chai';
import type { Gateway, HTTPRoute, VirtualService } from '../../../pkg/api/index.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';
import { domainsOf } from '../../../pkg/proxyconfig/domains.js';
import {
  bindsTo,
  gatewaySelects,
  intersectHosts,
  parseServerHost,
  ruleForGateway,
  serverHostsFor,
} from '../../../pkg/translate/gateway.js';
import { translateGateway, type ServiceRecord } from '../../../pkg/translate/index.js';

function gateway(name: string, ns: string, spec: Gateway['spec'], created = '2026-01-01T00:00:00Z'): Gateway {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: ns, creationTimestamp: created },
    spec,
  } as Gateway;
}

function vs(
  name: string,
  ns: string,
  spec: VirtualService['spec'],
  created = '2026-01-01T00:00:00Z',
): VirtualService {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: ns, creationTimestamp: created },
    spec,
  } as VirtualService;
}

const httpServer = (port: number, hosts: string[]) => ({
  port: { number: port, name: `http-${port}`, protocol: 'HTTP' },
  hosts,
});
const to = (host: string): HTTPRoute => ({ route: [{ destination: { host } }] });

const productpage: ServiceRecord = {
  host: 'productpage.shop.svc.cluster.local',
  namespace: 'shop',
  addresses: ['10.0.0.9'],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [{ address: '10.1.0.9', labels: { app: 'productpage' } }],
};

describe('pkg/translate/gateway: helpers', () => {
  describe('intersectHosts', () => {
    const cases: [string, string, string | null][] = [
      ['a.example.com', 'a.example.com', 'a.example.com'],
      ['*', 'a.example.com', 'a.example.com'],
      ['a.example.com', '*', 'a.example.com'],
      ['*.example.com', 'a.example.com', 'a.example.com'],
      ['a.example.com', '*.example.com', 'a.example.com'],
      ['*.example.com', '*.a.example.com', '*.a.example.com'],
      ['*.example.com', 'example.com', null],
      ['*.example.com', 'a.example.org', null],
      ['a.example.com', 'b.example.com', null],
      ['*.a.example.com', '*.b.example.com', null],
      ['*', '*', '*'],
    ];
    for (const [a, b, want] of cases)
      it(`${a} ∩ ${b} = ${String(want)}`, () => expect(intersectHosts(a, b)).to.equal(want));
  });

  describe('parseServerHost', () => {
    const cases: [string, { namespace: string; host: string }][] = [
      ['example.com', { namespace: '*', host: 'example.com' }],
      ['*/example.com', { namespace: '*', host: 'example.com' }],
      ['./example.com', { namespace: 'gw-ns', host: 'example.com' }],
      ['shop/*.Example.com', { namespace: 'shop', host: '*.example.com' }],
    ];
    for (const [raw, want] of cases) it(raw, () => expect(parseServerHost(raw, 'gw-ns')).to.deep.equal(want));
  });

  describe('serverHostsFor', () => {
    const cases: [string, string[], string, string[], string[]][] = [
      ['any namespace, exact', ['example.com'], 'shop', ['example.com'], ['example.com']],
      [
        'server wildcard narrows to the VS host',
        ['*.example.com'],
        'shop',
        ['a.example.com', 'b.other.org'],
        ['a.example.com'],
      ],
      ['VS wildcard narrows to the server host', ['a.example.com'], 'shop', ['*'], ['a.example.com']],
      ['namespace-scoped host refuses other namespaces', ['shop/example.com'], 'blog', ['example.com'], []],
      [
        'namespace-scoped host admits its namespace',
        ['shop/example.com'],
        'shop',
        ['example.com'],
        ['example.com'],
      ],
      ['./ means the gateway namespace', ['./example.com'], 'gw-ns', ['example.com'], ['example.com']],
      ['./ refuses another namespace', ['./example.com'], 'shop', ['example.com'], []],
    ];
    for (const [title, serverHosts, vsNs, vsHosts, want] of cases)
      it(title, () =>
        expect(serverHostsFor(httpServer(80, serverHosts), 'gw-ns', vsNs, vsHosts)).to.deep.equal(want),
      );
  });

  describe('gatewaySelects and bindsTo', () => {
    const gw = gateway('public', 'edge', { selector: { istio: 'ingressgateway' }, servers: [] });
    const cases: [string, boolean, { namespace: string; labels: Record<string, string> }, boolean][] = [
      [
        'labels match, other namespace (Istio default: any)',
        false,
        { namespace: 'other', labels: { istio: 'ingressgateway', x: 'y' } },
        true,
      ],
      [
        'labels match, other namespace, scoped',
        true,
        { namespace: 'other', labels: { istio: 'ingressgateway' } },
        false,
      ],
      [
        'labels match, same namespace, scoped',
        true,
        { namespace: 'edge', labels: { istio: 'ingressgateway' } },
        true,
      ],
      ['label value differs', false, { namespace: 'edge', labels: { istio: 'egress' } }, false],
      ['label missing', false, { namespace: 'edge', labels: {} }, false],
    ];
    for (const [title, scoped, pod, want] of cases)
      it(title, () => expect(gatewaySelects(gw, pod, scoped)).to.equal(want));
    it('an empty selector selects every gateway pod', () =>
      expect(gatewaySelects(gateway('all', 'edge', {}), { namespace: 'x', labels: {} })).to.equal(true));

    const bind: [string, string[] | undefined, boolean][] = [
      ['short name in the same namespace', ['public'], false],
      ['ns/name', ['edge/public'], true],
      ['mesh only', ['mesh'], false],
      ['no gateways (mesh)', undefined, false],
      ['short name, VS in the gateway namespace', ['public'], true],
    ];
    for (const [title, gateways, want] of bind) {
      it(`bindsTo: ${title}`, () => {
        const ns = title.includes('VS in the gateway namespace') ? 'edge' : 'shop';
        expect(
          bindsTo(vs('v', ns, { hosts: ['x'], ...(gateways ? { gateways } : {}) }), 'edge/public'),
        ).to.equal(want);
      });
    }
  });

  describe('ruleForGateway', () => {
    const rule: HTTPRoute = {
      match: [
        { uri: { prefix: '/a' }, gateways: ['edge/public'] },
        { uri: { prefix: '/b' }, gateways: ['mesh'] },
        { uri: { prefix: '/c' } },
      ],
      route: [{ destination: { host: 'x' } }],
    };
    it('keeps matches for this gateway and unscoped ones', () =>
      expect(ruleForGateway(rule, 'shop', 'edge/public')?.match?.map((m) => m.uri)).to.deep.equal([
        { prefix: '/a' },
        { prefix: '/c' },
      ]));
    it('is null when every match is scoped elsewhere', () =>
      expect(ruleForGateway({ ...rule, match: [rule.match![1]!] }, 'shop', 'edge/public')).to.equal(null));
    it('leaves a rule without matches alone', () =>
      expect(ruleForGateway(to('x'), 'shop', 'edge/public')).to.deep.equal(to('x')));
  });
});

describe('pkg/translate: translateGateway', () => {
  const pod = { namespace: 'edge', labels: { istio: 'ingressgateway' } };
  const listeners = (r: ReturnType<typeof translateGateway>): HttpListener[] =>
    r.config.listeners as HttpListener[];

  it("exportTo: a VirtualService not exported to the gateway pod's namespace does not bind there (issue #19)", () => {
    const hostsFor = (exportTo: string[]): string[][] =>
      listeners(
        translateGateway({
          pod,
          services: [productpage],
          gateways: [
            gateway('public', 'edge', {
              selector: { istio: 'ingressgateway' },
              servers: [httpServer(8080, ['*.example.com'])],
            }),
          ],
          virtualServices: [
            vs('shop', 'shop', {
              hosts: ['www.example.com'],
              gateways: ['edge/public'],
              exportTo,
              http: [to('productpage')],
            }),
          ],
        }),
      )[0]!.virtualHosts.map((v) => domainsOf(v));
    expect(hostsFor(['edge'])).to.deep.equal([['www.example.com', 'www.example.com:8080']]);
    expect(hostsFor(['*'])).to.have.length(1);
    expect(hostsFor(['.'])).to.deep.equal([]);
  });

  it('one HTTP listener per server port on 0.0.0.0, virtual hosts from bound VirtualServices, their clusters only', () => {
    const r = translateGateway({
      pod,
      services: [productpage],
      gateways: [
        gateway('public', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [httpServer(8080, ['*.example.com']), httpServer(8081, ['admin.example.com'])],
        }),
        gateway('other', 'edge', { selector: { istio: 'egress' }, servers: [httpServer(9999, ['*'])] }),
      ],
      virtualServices: [
        vs('shop', 'shop', {
          hosts: ['www.example.com'],
          gateways: ['edge/public'],
          http: [to('productpage')],
        }),
        vs('mesh-only', 'shop', { hosts: ['www.example.com'], http: [to('productpage')] }),
      ],
    });
    const ls = listeners(r);
    expect(ls.map((l) => [l.name, l.address, l.port])).to.deep.equal([
      ['gateway-8080', '0.0.0.0', 8080],
      ['gateway-8081', '0.0.0.0', 8081],
    ]);
    expect(ls[0]!.virtualHosts.map((v) => v.domains)).to.deep.equal([
      ['www.example.com', 'www.example.com:8080'],
    ]);
    const dest = ls[0]!.virtualHosts[0]!.routes[0]!.action;
    expect(dest).to.deep.include({ type: 'route' });
    expect(ls[1]!.virtualHosts).to.deep.equal([]);
    expect(r.config.clusters.map((c) => c.name)).to.deep.equal([
      'outbound|9080||productpage.shop.svc.cluster.local',
    ]);
    expect(r.config.clusters[0]!.endpoints).to.have.length(1);
    expect(r.config.version).to.match(/^[0-9a-f]{12}$/);
  });

  it('merges VirtualServices on one host, oldest first; servers sharing a port share the listener', () => {
    const r = translateGateway({
      pod,
      services: [productpage],
      gateways: [
        gateway('a', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [httpServer(80, ['a.example.com'])],
        }),
        gateway('b', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [httpServer(80, ['b.example.com'])],
        }),
      ],
      virtualServices: [
        vs(
          'new',
          'shop',
          {
            hosts: ['a.example.com'],
            gateways: ['edge/a'],
            http: [{ name: 'second', ...to('productpage') }],
          },
          '2026-02-01T00:00:00Z',
        ),
        vs(
          'old',
          'shop',
          { hosts: ['a.example.com'], gateways: ['edge/a'], http: [{ name: 'first', ...to('productpage') }] },
          '2026-01-01T00:00:00Z',
        ),
        vs('b', 'shop', { hosts: ['b.example.com'], gateways: ['edge/b'], http: [to('productpage')] }),
      ],
    });
    const ls = listeners(r);
    expect(ls).to.have.length(1);
    expect(ls[0]!.virtualHosts.map((v) => v.name)).to.deep.equal(['a.example.com:80', 'b.example.com:80']);
    expect(ls[0]!.virtualHosts[0]!.routes.map((x) => x.name)).to.deep.equal(['first', 'second']);
  });

  it("listens on the target port of a Service port (Istio resolvePorts); clients' authority keeps the server port", () => {
    const r = translateGateway({
      pod,
      services: [productpage],
      servicePorts: { 80: [8080] },
      gateways: [
        gateway('g', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [httpServer(80, ['www.example.com']), httpServer(9000, ['admin.example.com'])],
        }),
      ],
      virtualServices: [
        vs('www', 'shop', {
          hosts: ['www.example.com', 'admin.example.com'],
          gateways: ['edge/g'],
          http: [to('productpage')],
        }),
      ],
    });
    const ls = listeners(r);
    expect(ls.map((l) => [l.name, l.port])).to.deep.equal([
      ['gateway-8080', 8080],
      ['gateway-9000', 9000],
    ]);
    expect(ls[0]!.virtualHosts[0]!.domains).to.deep.equal(['www.example.com', 'www.example.com:80']);
  });

  it('serves PASSTHROUGH and TCP servers as L4 listeners (warning when no rule is bound); httpsRedirect answers 301', () => {
    const r = translateGateway({
      pod,
      gateways: [
        gateway('g', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [
            {
              port: { number: 443, name: 'https', protocol: 'HTTPS' },
              hosts: ['*'],
              tls: { mode: 'PASSTHROUGH' },
            },
            { port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
            {
              port: { number: 80, name: 'http', protocol: 'HTTP' },
              hosts: ['secure.example.com'],
              tls: { httpsRedirect: true },
            },
          ],
        }),
      ],
    });
    expect(r.warnings).to.have.length(2);
    expect(r.warnings[0]).to.match(/Gateway edge\/g port 443: no VirtualService tls rule is bound/);
    expect(r.warnings[1]).to.match(/Gateway edge\/g port 31400: no VirtualService tcp rule is bound/);
    const ls = listeners(r);
    expect(ls.map((l) => [l.port, l.protocol])).to.deep.equal([
      [80, 'HTTP'],
      [443, 'TCP'],
      [31400, 'TCP'],
    ]);
    expect(ls[0]!.virtualHosts[0]!.routes[0]!.action).to.deep.equal({
      type: 'redirect',
      redirect: { scheme: 'https', code: 301 },
    });
  });

  it("never listens on the proxy's own ports: such servers are skipped with a warning, the rest served", () => {
    const r = translateGateway({
      pod,
      gateways: [
        gateway('g', 'edge', {
          selector: { istio: 'ingressgateway' },
          servers: [httpServer(15021, ['*']), httpServer(15090, ['*']), httpServer(8080, ['*'])],
        }),
      ],
      virtualServices: [vs('v', 'edge', { hosts: ['*'], gateways: ['g'], http: [to('productpage.shop')] })],
      services: [productpage],
    });
    expect(listeners(r).map((l) => l.port)).to.deep.equal([8080]);
    expect(r.warnings.filter((w) => /one the proxy itself uses/.test(w))).to.have.length(2);
  });

  it('a pod no Gateway selects gets no listeners, and the same input gives the same version', () => {
    const input = {
      pod: { namespace: 'x', labels: { app: 'y' } },
      gateways: [
        gateway('g', 'edge', { selector: { istio: 'ingressgateway' }, servers: [httpServer(80, ['*'])] }),
      ],
    };
    const a = translateGateway(input);
    expect(a.config.listeners).to.deep.equal([]);
    expect(translateGateway(input).config.version).to.equal(a.config.version);
  });
});
