/**
 * Issue #19: weftd sends an endpoint only the pod labels a proxy reads (the auto-mTLS mark,
 * `version`, and the labels a failoverPriority names), not all of them. Each case below goes
 * through the consumer of one label and fails if that label is trimmed: subset selection (done
 * on the full labels before the trim), auto-mTLS per endpoint, the destination_version of the
 * metrics, and failoverPriority's ranking.
 */
import { expect } from 'chai';
import type { DestinationRule, VirtualService } from '../../../pkg/api/index.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { TLS_MODE_LABEL, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { translate, type ServiceRecord, type TranslateResult } from '../../../pkg/translate/index.js';
import { localizeClusters } from '../../../pkg/translate/locality.js';
import {
  compileConfig,
  findVHost,
  metricsOf,
  pickDest,
  type CompiledHttpListener,
} from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { endpointConnect } from '../../../proxy/upstream/tls.js';

const HOST = 'reviews.shop.svc.cluster.local';
/** What a Deployment's pod carries: most of it no proxy reads. */
const podLabels = (version: string, track: string, tier: string, meshed = true): Record<string, string> => ({
  app: 'reviews',
  version,
  track,
  tier,
  'pod-template-hash': `7c9f8d${version}`,
  'app.kubernetes.io/name': 'reviews',
  'app.kubernetes.io/part-of': 'bookinfo',
  'topology.kubernetes.io/zone': 'z1',
  ...(meshed ? { [TLS_MODE_LABEL]: 'istio', 'service.istio.io/canonical-name': 'reviews' } : {}),
});
const reviews: ServiceRecord = {
  host: HOST,
  namespace: 'shop',
  addresses: ['10.96.0.10'],
  ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
  endpoints: [
    { address: '10.0.0.1', labels: podLabels('v1', 'stable', 'gold'), serviceAccount: 'reviews' },
    { address: '10.0.0.2', labels: podLabels('v1', 'canary', 'bronze'), serviceAccount: 'reviews' },
    { address: '10.0.0.3', labels: podLabels('v2', 'stable', 'gold', false) },
  ],
};

function rule(spec: DestinationRule['spec']): DestinationRule {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec,
  } as DestinationRule;
}

const toSubset = (subset: string): VirtualService =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset } }] }] },
  }) as VirtualService;

function translated(dr: DestinationRule, vs?: VirtualService): TranslateResult {
  const result = translate({
    services: [reviews],
    destinationRules: [dr],
    virtualServices: vs ? [vs] : [],
    domainSuffix: 'svc.cluster.local',
    proxy: { namespace: 'shop', labels: { app: 'web', tier: 'gold' } },
  });
  expect(validateProxyConfig(result.config)).to.deep.equal([]);
  return result;
}

/** The cluster and its endpoints the compiled proxy sends a request for `authority` to. */
function routedTo(config: ProxyConfig, authority: string): { cluster: string; addresses: string[] } {
  const metrics = new MetricsRegistry({ workload: 'web', namespace: 'shop', app: 'web', version: 'v' });
  const { config: compiled } = compileConfig(config, { metrics });
  const vh = findVHost(compiled.listeners[0] as CompiledHttpListener, authority);
  expect(vh, authority).to.not.equal(null);
  const dest = pickDest(vh!.routes[0]!, 0);
  const def = compiled.clusters.defs.get(dest.clusterName);
  return { cluster: dest.clusterName, addresses: (def?.endpoints ?? []).map((e) => e.address) };
}

const subsets = rule({
  host: 'reviews',
  subsets: [
    { name: 'canary', labels: { track: 'canary' } },
    { name: 'gold-v1', labels: { tier: 'gold', version: 'v1' } },
  ],
});

describe('translation: endpoint labels cut to what the proxy reads (issue #19)', () => {
  it('keeps the auto-mTLS mark and version, drops the rest', () => {
    const { config } = translated(subsets);
    const c = config.clusters.find((x) => x.name === `outbound|9080||${HOST}`)!;
    expect(c.endpoints.map((e) => e.labels)).to.deep.equal([
      { version: 'v1', [TLS_MODE_LABEL]: 'istio' },
      { version: 'v1', [TLS_MODE_LABEL]: 'istio' },
      { version: 'v2' },
    ]);
  });

  it('an endpoint with none of those labels carries no labels at all', () => {
    const bare: ServiceRecord = { ...reviews, endpoints: [{ address: '10.0.0.9', labels: { app: 'x' } }] };
    const { config } = translate({ services: [bare], domainSuffix: 'svc.cluster.local' });
    expect(config.clusters[0]!.endpoints[0]).to.deep.equal({ address: '10.0.0.9', port: 9080 });
  });

  const SUBSETS: [string, string, string[]][] = [
    ['a subset on a trimmed label (track)', 'canary', ['10.0.0.2']],
    ['a subset on two labels, one trimmed (tier)', 'gold-v1', ['10.0.0.1']],
  ];
  for (const [what, subset, addresses] of SUBSETS)
    it(`${what}: the compiled proxy routes to the same endpoints`, () => {
      const { config } = translated(subsets, toSubset(subset));
      expect(routedTo(config, `reviews:9080`)).to.deep.equal({
        cluster: `outbound|9080|${subset}|${HOST}`,
        addresses,
      });
    });

  it('auto-mTLS: TLS to the meshed endpoints, plaintext to the other', () => {
    const { config } = translated(subsets);
    const c = config.clusters.find((x) => x.name === `outbound|9080||${HOST}`)!;
    expect(c.tls?.auto).to.equal(true);
    const env = {
      identity: undefined,
      stats: {} as never,
      simpleContext: () => {
        throw new Error('not SIMPLE');
      },
    };
    expect(c.endpoints.map((e) => endpointConnect(c.tls, e.labels ?? {}, env) !== null)).to.deep.equal([
      true,
      true,
      false,
    ]);
  });

  it('version: a subset whose endpoints agree reports it as destination_version', () => {
    const { config } = translated(subsets, toSubset('canary'));
    const metrics = new MetricsRegistry({ workload: 'web', namespace: 'shop', app: 'web', version: 'v' });
    const { config: compiled } = compileConfig(config, { metrics });
    const vh = findVHost(compiled.listeners[0] as CompiledHttpListener, 'reviews:9080')!;
    metricsOf(pickDest(vh.routes[0]!, 0), metrics).record(200, '-', 1, 0, 0);
    // the subset is named canary; only the label says v1
    expect(metrics.render()).to.include('destination_version="v1"');
  });

  it('failoverPriority: the labels it names are kept and rank the endpoints as before', () => {
    const dr = rule({
      host: 'reviews',
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 5 },
        loadBalancer: { localityLbSetting: { enabled: true, failoverPriority: ['tier'] } },
      },
    });
    const { config, localityLb } = translated(dr);
    const name = `outbound|9080||${HOST}`;
    const c = config.clusters.find((x) => x.name === name)!;
    expect(c.endpoints.map((e) => e.labels?.tier)).to.deep.equal(['gold', 'bronze', 'gold']);
    const [localized] = localizeClusters([c], localityLb!, { labels: { app: 'web', tier: 'gold' } });
    expect(localized!.endpoints.map((e) => e.priority ?? 0)).to.deep.equal([0, 1, 0]);
  });
});
