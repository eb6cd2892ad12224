/**
 * Sidecar scoping and exportTo through weftd's config generator (controlplane/configgen.ts): each
 * sidecar gets only the hosts its Sidecar and exportTo let it see, in its config and in the
 * spliced line it is sent; proxies with the same scope share one translation; a REGISTRY_ONLY
 * Sidecar's policy reaches the line; the Service annotation is read from the Kubernetes object.
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { DestinationRule, Sidecar, SidecarSpec, VirtualService } from '../../../pkg/api/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { servicesFromKube, type KubeService } from '../../../pkg/translate/kube.js';

const kubeSvc = (name: string, ns: string, annotations?: Record<string, string>): KubeService => ({
  metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
  spec: { clusterIP: `10.96.${ns.length}.${name.length}`, ports: [{ name: 'http', port: 80 }] },
});
let clock = 0;
const sidecar = (name: string, ns: string, spec: SidecarSpec): Sidecar => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: {
    name,
    namespace: ns,
    creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, ++clock)).toISOString(),
  },
  spec,
});
const KUBE = [
  kubeSvc('reviews', 'prod'),
  kubeSvc('ratings', 'prod'),
  kubeSvc('web', 'dev'),
  kubeSvc('db', 'dev'),
  kubeSvc('secret', 'dev', { 'networking.istio.io/exportTo': '.' }),
  ...Array.from({ length: 5 }, (_, i) => kubeSvc(`s${i}`, 'other')),
];
let generation = 0;
const snapshot = (extra: Partial<Snapshot> = {}): Snapshot => ({
  generation: ++generation,
  services: servicesFromKube(KUBE, [], []),
  kubeServices: KUBE,
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  peerAuthentications: [],
  ...extra,
});
const pod = (namespace: string, name: string, labels: Record<string, string> = { app: name }): PodInfo => ({
  name: `${name}-1`,
  namespace,
  labels,
});
const gen = () =>
  new ConfigGenerator({
    domainSuffix: 'cluster.local',
    mesh: WHOLE_SCOPE_MESH,
    log: createLogger('t', { silent: true }),
  });

/** The services of the line the proxy is sent (checked against the config object). */
function linedHosts(g: ConfigGenerator, snap: Snapshot, p: PodInfo): string[] {
  const gc = g.forProxy(snap, 'sidecar', p);
  const line = JSON.parse(gc.encode()) as { config: ProxyConfig };
  const hosts = (c: ProxyConfig) =>
    [
      ...new Set(
        c.listeners.flatMap((l) =>
          l.protocol === 'HTTP' ? l.virtualHosts.map((v) => v.name.replace(/:\d+$/, '')) : [],
        ),
      ),
    ].sort();
  expect(hosts(line.config)).to.deep.equal(hosts(gc.config));
  return hosts(line.config).map((h) => h.replace('.svc.cluster.local', ''));
}
const sharedCount = (g: ConfigGenerator): number =>
  (g as unknown as { sidecarBases: { byScope: Map<string, unknown> } }).sidecarBases.byScope.size;

describe('weftd: Sidecar scoping', () => {
  it('no Sidecar: every host exported to the namespace (the annotated Service only in its own)', () => {
    const g = gen();
    const snap = snapshot();
    expect(linedHosts(g, snap, pod('prod', 'a'))).to.have.length(9);
    expect(linedHosts(g, snap, pod('prod', 'a'))).to.not.include('secret.dev');
    expect(linedHosts(g, snap, pod('dev', 'a'))).to.include('secret.dev');
  });

  it('a namespace Sidecar `./*` + 5 hosts: the proxy gets its namespace and those, nothing else', () => {
    const g = gen();
    const hosts = ['./*', ...Array.from({ length: 5 }, (_, i) => `other/s${i}.other.svc.cluster.local`)];
    const snap = snapshot({ sidecars: [sidecar('default', 'prod', { egress: [{ hosts }] })] });
    expect(linedHosts(g, snap, pod('prod', 'a'))).to.deep.equal([
      'ratings.prod',
      'reviews.prod',
      's0.other',
      's1.other',
      's2.other',
      's3.other',
      's4.other',
    ]);
    expect(linedHosts(g, snap, pod('dev', 'a')), 'another namespace is not scoped').to.have.length(10);
  });

  it('the workload Sidecar wins over the namespace default; pods with the same scope share one translation', () => {
    const g = gen();
    const snap = snapshot({
      sidecars: [
        sidecar('default', 'prod', { egress: [{ hosts: ['./*'] }] }),
        sidecar('web-only', 'prod', {
          workloadSelector: { labels: { app: 'web-client' } },
          egress: [{ hosts: ['dev/web.dev.svc.cluster.local'] }],
        }),
      ],
    });
    expect(linedHosts(g, snap, pod('prod', 'web-client'))).to.deep.equal(['web.dev']);
    expect(linedHosts(g, snap, pod('prod', 'a'))).to.deep.equal(['ratings.prod', 'reviews.prod']);
    expect(linedHosts(g, snap, pod('prod', 'b'))).to.deep.equal(['ratings.prod', 'reviews.prod']);
    expect(sharedCount(g), 'a, b share; web-client has its own').to.equal(2);
    expect(g.forProxy(snap, 'sidecar', pod('prod', 'a')).config.scope).to.deep.equal({
      sidecar: 'prod/default',
      via: 'namespace',
    });
  });

  it('the root default `./*` scopes each namespace to itself (one translation per namespace)', () => {
    const g = gen();
    const snap = snapshot({
      sidecars: [sidecar('default', DEFAULT_MESH.rootNamespace, { egress: [{ hosts: ['./*'] }] })],
    });
    expect(linedHosts(g, snap, pod('prod', 'a'))).to.deep.equal(['ratings.prod', 'reviews.prod']);
    expect(linedHosts(g, snap, pod('dev', 'a'))).to.deep.equal(['db.dev', 'secret.dev', 'web.dev']);
    expect(linedHosts(g, snap, pod('dev', 'b'))).to.deep.equal(['db.dev', 'secret.dev', 'web.dev']);
    expect(sharedCount(g)).to.equal(2);
    expect(g.forProxy(snap, 'sidecar', pod('dev', 'a')).config.scope).to.deep.equal({
      sidecar: `${DEFAULT_MESH.rootNamespace}/default`,
      via: 'root',
    });
  });

  it('REGISTRY_ONLY reaches the line the proxy is sent; a Sidecar change is a new version', () => {
    const g = gen();
    const allow = snapshot({ sidecars: [sidecar('default', 'prod', { egress: [{ hosts: ['./*'] }] })] });
    const only = snapshot({
      sidecars: [
        sidecar('default', 'prod', {
          egress: [{ hosts: ['./*'] }],
          outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
        }),
      ],
    });
    const a = g.forProxy(allow, 'sidecar', pod('prod', 'a'));
    const b = g.forProxy(only, 'sidecar', pod('prod', 'a'));
    expect(a.version).to.not.equal(b.version);
    const line = JSON.parse(b.encode()) as { config: ProxyConfig };
    expect(line.config.outboundTrafficPolicy).to.deep.equal({
      mode: 'REGISTRY_ONLY',
      destinations: [{ address: '10.96.4.7', ports: [80] }],
    });
    expect((JSON.parse(a.encode()) as { config: ProxyConfig }).config.outboundTrafficPolicy).to.equal(
      undefined,
    );
  });

  it('the line a sidecar is sent is its whole config, field for field (a TCP port, REGISTRY_ONLY, on demand)', () => {
    const db: KubeService = {
      metadata: { name: 'pg', namespace: 'prod' },
      spec: { clusterIP: '10.96.9.9', ports: [{ name: 'tcp-pg', port: 5432 }] },
    };
    const snap = snapshot({
      kubeServices: [...KUBE, db],
      services: servicesFromKube([...KUBE, db], [], []),
      sidecars: [
        sidecar('default', 'prod', {
          egress: [{ hosts: ['./*'] }],
          outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
        }),
      ],
    });
    for (const onDemandHosts of [false, true]) {
      const g = new ConfigGenerator({
        domainSuffix: 'cluster.local',
        mesh: { ...WHOLE_SCOPE_MESH, onDemandHosts },
        log: createLogger('t', { silent: true }),
      });
      const gc = g.forProxy(snap, 'sidecar', pod('prod', 'a'));
      // the declared TCP port is routed at L4 (ProxyConfig.outboundTcp): it must reach the proxy
      expect(
        gc.config.outboundTcp?.map((t) => t.name),
        `onDemand ${onDemandHosts}`,
      ).to.have.length(1);
      const line = JSON.parse(gc.encode()) as { version: string; config: ProxyConfig };
      expect(line.version).to.equal(gc.version);
      expect(line.config, `onDemand ${onDemandHosts}`).to.deep.equal(JSON.parse(JSON.stringify(gc.config)));
    }
  });

  it('VirtualService exportTo: only namespaces it is exported to get its routes', () => {
    const g = gen();
    const vs: VirtualService = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web', namespace: 'dev' },
      spec: {
        hosts: ['web'],
        exportTo: ['.'],
        http: [{ timeout: '7s', route: [{ destination: { host: 'web' } }] }],
      },
    };
    const snap = snapshot({ virtualServices: [vs] });
    const timeout = (ns: string) => {
      const c = g.forProxy(snap, 'sidecar', pod(ns, 'a')).config;
      const l = c.listeners[0]!;
      return l.protocol === 'HTTP'
        ? l.virtualHosts.find((v) => v.name.startsWith('web.'))!.routes[0]!.timeoutMs
        : -1;
    };
    expect(timeout('dev')).to.equal(7000);
    expect(timeout('prod')).to.not.equal(7000);
  });

  it('DestinationRule exportTo: a rule not exported to the client is not used', () => {
    const g = gen();
    const dr: DestinationRule = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'web', namespace: 'dev' },
      spec: { host: 'web', exportTo: ['.'], trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
    };
    const snap = snapshot({ destinationRules: [dr] });
    const lb = (ns: string) =>
      g
        .forProxy(snap, 'sidecar', pod(ns, 'a'))
        .config.clusters.find((c) => c.service === 'web.dev.svc.cluster.local')!.loadBalancer;
    expect(lb('dev')).to.deep.equal({ simple: 'RANDOM' });
    expect(lb('prod')).to.equal(undefined);
  });
});
