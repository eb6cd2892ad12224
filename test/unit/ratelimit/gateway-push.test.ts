/**
 * weftd's side of gateway listener limits (ADR 0021): a RateLimit whose selector picks gateway
 * pods reaches the gateway's config, with the mesh's gatewayTopology.numTrustedProxies (and only
 * on gateways: a sidecar's peer is the caller itself); memquota stays a destination-side quota.
 */
import { expect } from 'chai';
import { withRateLimits } from '../../../controlplane/ratelimitpush.js';
import type { GeneratedConfig } from '../../../controlplane/configgen.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { RateLimit } from '../../../pkg/api/ratelimit.js';
import type { MemQuota } from '../../../pkg/api/memquota.js';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';

const log = createLogger('test', { silent: true });
const base: ProxyConfig = {
  apiVersion: PROXY_CONFIG_API_VERSION,
  kind: 'ProxyConfig',
  version: 'v0',
  listeners: [],
  clusters: [],
};
const generated: GeneratedConfig = { config: base, version: 'v0', encode: () => '' };
const gatewayPod: PodInfo = { name: 'gw-1', namespace: 'istio-system', labels: { istio: 'ingressgateway' } };
const perClient: RateLimit = {
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'RateLimit',
  metadata: { name: 'ingress', namespace: 'istio-system' },
  spec: {
    selector: { matchLabels: { istio: 'ingressgateway' } },
    ports: [8080],
    limit: { requests: 10, unit: 'second', per: 'source' },
    sourceKey: { by: 'clientIP' },
  },
};
const memquota = {
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'memquota',
  metadata: { name: 'handler', namespace: 'istio-system' },
  spec: { quotas: [{ name: 'requestcount.instance.istio-system', maxAmount: 5000, validDuration: '1s' }] },
} as unknown as MemQuota;
const snapshot = (rateLimits: RateLimit[], memquotas: MemQuota[] = []): Snapshot => ({
  generation: 1,
  services: [],
  kubeServices: [],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  peerAuthentications: [],
  rateLimits,
  memquotas,
});

describe('weftd: rate limits for gateway pods', () => {
  it('a RateLimit selecting the gateway pods is in its config, keyed by client address', () => {
    const g = withRateLimits(generated, 'gateway', snapshot([perClient]), gatewayPod, 'cluster.local', log);
    const block = g.config.rateLimits!;
    expect(block.limits.map((l) => [l.name, l.ports, l.sourceKey])).to.deep.equal([
      ['RateLimit istio-system/ingress', [8080], { kind: 'clientIP' }],
    ]);
    expect(block.numTrustedProxies).to.equal(undefined);
    expect(g.version).to.not.equal('v0');
  });

  it('the mesh numTrustedProxies reaches gateways only', () => {
    const opts = { gatewayNumTrustedProxies: 2 };
    const gw = withRateLimits(
      generated,
      'gateway',
      snapshot([perClient]),
      gatewayPod,
      'cluster.local',
      log,
      opts,
    );
    expect(gw.config.rateLimits!.numTrustedProxies).to.equal(2);
    const sc = withRateLimits(
      generated,
      'sidecar',
      snapshot([perClient]),
      gatewayPod,
      'cluster.local',
      log,
      opts,
    );
    expect(sc.config.rateLimits!.numTrustedProxies).to.equal(undefined);
  });

  it('a gateway no RateLimit selects keeps its config and version; memquota does not limit gateways', () => {
    const other = { ...perClient, spec: { ...perClient.spec, selector: { matchLabels: { app: 'x' } } } };
    const g = withRateLimits(
      generated,
      'gateway',
      snapshot([other], [memquota]),
      gatewayPod,
      'cluster.local',
      log,
    );
    expect(g).to.equal(generated);
    const sc = withRateLimits(
      generated,
      'sidecar',
      snapshot([], [memquota]),
      gatewayPod,
      'cluster.local',
      log,
    );
    expect(sc.config.rateLimits!.limits).to.have.length(1);
  });

  it("weftd's generator: a gateway pod's config carries the RateLimit and the mesh's trusted proxies", () => {
    const gen = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: { ...DEFAULT_MESH, gatewayNumTrustedProxies: 1 },
      log,
    });
    const g = gen.forProxy(snapshot([perClient]), 'gateway', gatewayPod);
    expect(g.config.rateLimits?.numTrustedProxies).to.equal(1);
    expect(g.config.rateLimits?.limits[0]?.sourceKey).to.deep.equal({ kind: 'clientIP' });
    expect(JSON.parse(g.encode()).config.rateLimits.numTrustedProxies).to.equal(1);
  });
});
