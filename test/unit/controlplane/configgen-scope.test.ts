/**
 * weftd translates a sidecar's routes per translation scope (pkg/translate/precedence.ts
 * translationScopeKeyer): pods that no sourceLabels, sourceNamespace or client-namespace
 * DestinationRule tells apart share one translation per generation; the others get their own,
 * and the spliced NDJSON line carries it.
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { DestinationRule, VirtualService } from '../../../pkg/api/index.js';
import { encodeMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';
import type { ServiceRecord } from '../../../pkg/translate/index.js';

const HOST = 'reviews.shop.svc.cluster.local';
const SERVICE: ServiceRecord = {
  host: HOST,
  namespace: 'shop',
  addresses: [],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [
    { address: '10.0.0.1', labels: { version: 'v1' } },
    { address: '10.0.0.2', labels: { version: 'v2' } },
  ],
};
const VS = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        name: 'web',
        match: [{ sourceLabels: { app: 'web' } }],
        route: [{ destination: { host: 'reviews' } }],
      },
      { name: 'rest', route: [{ destination: { host: 'reviews' } }] },
    ],
  },
} as VirtualService;
const dr = (ns: string, simple: string): DestinationRule =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: `r-${ns}`, namespace: ns },
    spec: { host: HOST, trafficPolicy: { loadBalancer: { simple } } },
  }) as DestinationRule;

const snapshot = (destinationRules: DestinationRule[]): Snapshot => ({
  generation: 1,
  services: [SERVICE],
  peerAuthentications: [],
  kubeServices: [],
  virtualServices: [VS],
  destinationRules,
  serviceEntries: [],
  gateways: [],
});
const pod = (namespace: string, labels: Record<string, string>, name = 'p-1'): PodInfo => ({
  name,
  namespace,
  labels,
});
const routes = (c: { listeners: unknown[] }): string[] =>
  ((c.listeners[0] as HttpListener).virtualHosts.find((v) => v.name === `${HOST}:9080`)?.routes ?? []).map(
    (r) => r.name ?? '',
  );

describe('weftd config generation: translation per client scope', () => {
  const gen = (): ConfigGenerator =>
    new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: createLogger('t', { silent: true }),
    });

  it('labels no sourceLabels reads and namespaces without rules share one translation', () => {
    const g = gen();
    const s = snapshot([dr('shop', 'RANDOM')]);
    const a = g.forProxy(s, 'sidecar', pod('a', { app: 'api', pod: '1' }));
    const b = g.forProxy(s, 'sidecar', pod('b', { app: 'api', pod: '2' }, 'p-2'));
    const c = g.forProxy(s, 'sidecar', pod('shop', { app: 'api' }, 'p-3'));
    expect(b.config.listeners).to.equal(a.config.listeners); // the same object: translated once
    expect(c.config.listeners).to.equal(a.config.listeners);
    expect(routes(a.config)).to.deep.equal(['rest']);
  });

  it('a label sourceLabels reads gives its own routes, in the spliced line too', () => {
    const g = gen();
    const s = snapshot([]);
    const api = g.forProxy(s, 'sidecar', pod('a', { app: 'api' }));
    const web = g.forProxy(s, 'sidecar', pod('a', { app: 'web' }, 'p-2'));
    expect(routes(api.config)).to.deep.equal(['rest']);
    expect(routes(web.config)).to.deep.equal(['web', 'rest']);
    expect(web.version).to.not.equal(api.version);
    for (const x of [api, web])
      expect(JSON.parse(x.encode())).to.deep.equal(
        JSON.parse(encodeMessage({ type: 'config', version: x.version, config: x.config })),
      );
  });

  it("a client namespace's DestinationRule is its clients' alone", () => {
    const g = gen();
    const s = snapshot([dr('shop', 'RANDOM'), dr('front', 'LEAST_REQUEST')]);
    const lb = (ns: string): unknown =>
      g.forProxy(s, 'sidecar', pod(ns, {})).config.clusters.find((c) => c.name === `outbound|9080||${HOST}`)
        ?.loadBalancer;
    expect(lb('front')).to.deep.equal({ simple: 'LEAST_REQUEST' });
    expect(lb('other')).to.deep.equal({ simple: 'RANDOM' });
    expect(lb('shop')).to.deep.equal({ simple: 'RANDOM' });
  });
});
