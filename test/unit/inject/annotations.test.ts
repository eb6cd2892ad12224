import { expect } from 'chai';
import { readOverrides } from '../../../pkg/inject/annotations.js';
import { parseQuantity } from '../../../pkg/inject/quantity.js';
import { isWeftError } from '../../../pkg/errors/index.js';

describe('injection annotations', () => {
  const valid: [string, Record<string, string>, object][] = [
    [
      'cpu + memory requests',
      { 'sidecar.istio.io/proxyCPU': '200m', 'sidecar.istio.io/proxyMemory': '256Mi' },
      { requests: { cpu: '200m', memory: '256Mi' } },
    ],
    [
      'limits',
      { 'sidecar.istio.io/proxyCPULimit': '1', 'sidecar.istio.io/proxyMemoryLimit': '512Mi' },
      { limits: { cpu: '1', memory: '512Mi' } },
    ],
    [
      'image',
      { 'sidecar.istio.io/proxyImage': 'registry.local/weft/proxy:dev' },
      { proxyImage: 'registry.local/weft/proxy:dev' },
    ],
    [
      'include ranges',
      { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8, 172.16.0.0/12' },
      { includeOutboundIPRanges: '10.0.0.0/8,172.16.0.0/12' },
    ],
    [
      'include all',
      { 'traffic.sidecar.istio.io/includeOutboundIPRanges': '*' },
      { includeOutboundIPRanges: '*' },
    ],
    [
      'exclude ranges (ipv6)',
      { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': 'fd00::/8' },
      { excludeOutboundIPRanges: 'fd00::/8' },
    ],
    [
      'empty exclude',
      { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '' },
      { excludeOutboundIPRanges: '' },
    ],
    [
      'inbound ports',
      { 'traffic.sidecar.istio.io/includeInboundPorts': '8080,9090' },
      { includeInboundPorts: '8080,9090' },
    ],
    [
      'inbound ports *',
      { 'traffic.sidecar.istio.io/includeInboundPorts': '*' },
      { includeInboundPorts: '*' },
    ],
    [
      'exclude inbound',
      { 'traffic.sidecar.istio.io/excludeInboundPorts': '9000' },
      { excludeInboundPorts: '9000' },
    ],
    [
      'exclude outbound',
      { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432, 6379' },
      { excludeOutboundPorts: '5432,6379' },
    ],
    ['native on', { 'sidecar.istio.io/nativeSidecar': 'true' }, { nativeSidecar: true }],
    ['probe rewrite off', { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' }, { rewriteAppProbes: false }],
    [
      'hold via proxy config yaml',
      { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true\n' },
      { holdApplicationUntilProxyStarts: true },
    ],
    [
      'hold via proxy config json',
      { 'proxy.istio.io/config': '{ "holdApplicationUntilProxyStarts": false }' },
      { holdApplicationUntilProxyStarts: false },
    ],
    ['unrelated proxy config', { 'proxy.istio.io/config': 'concurrency: 2' }, {}],
    [
      'global rate-limit check deadline',
      { 'ratelimit.weft.dev/check-timeout': '2s' },
      { rateLimitCheckTimeoutMs: 2000 },
    ],
    [
      'check deadline in ms',
      { 'ratelimit.weft.dev/check-timeout': ' 150ms ' },
      { rateLimitCheckTimeoutMs: 150 },
    ],
  ];
  for (const [title, ann, expected] of valid) {
    it(`accepts ${title}`, () => {
      expect(readOverrides(ann)).to.deep.equal({ requests: {}, limits: {}, ...expected });
    });
  }

  const invalid: [Record<string, string>, RegExp][] = [
    [{ 'sidecar.istio.io/proxyCPU': 'lots' }, /proxyCPU\]: "lots" is not a Kubernetes quantity/],
    [{ 'sidecar.istio.io/proxyMemory': '128MB' }, /proxyMemory\]: "128MB" is not a Kubernetes quantity/],
    [{ 'sidecar.istio.io/proxyMemoryLimit': '-1Gi' }, /proxyMemoryLimit/],
    [{ 'sidecar.istio.io/proxyImage': 'has space' }, /proxyImage\]: "has space" is not an image reference/],
    [{ 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0' }, /"10.0.0.0", which is not a CIDR/],
    [{ 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/33' }, /not a CIDR/],
    [{ 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '256.0.0.0/8' }, /not a CIDR/],
    [{ 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '*,10.0.0.0/8' }, /"\*", which is not a CIDR/],
    [{ 'traffic.sidecar.istio.io/excludeInboundPorts': '80,http' }, /"http", which is not a port number/],
    [{ 'traffic.sidecar.istio.io/excludeInboundPorts': '*' }, /"\*", which is not a port number/],
    [{ 'traffic.sidecar.istio.io/excludeOutboundPorts': '0' }, /"0", which is not a port number/],
    [{ 'traffic.sidecar.istio.io/includeInboundPorts': '70000' }, /"70000", which is not a port number/],
    [{ 'sidecar.istio.io/nativeSidecar': 'maybe' }, /nativeSidecar\]: "maybe" is not a boolean/],
    [{ 'sidecar.istio.io/rewriteAppHTTPProbers': '' }, /rewriteAppHTTPProbers/],
    [{ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: sometimes' }, /non-boolean/],
    [
      { 'ratelimit.weft.dev/check-timeout': '2000' },
      /check-timeout\]: "2000" is not a duration from 1ms to 10s/,
    ],
    [{ 'ratelimit.weft.dev/check-timeout': '0s' }, /not a duration from 1ms to 10s/],
    [{ 'ratelimit.weft.dev/check-timeout': '11s' }, /not a duration from 1ms to 10s/],
    [{ 'ratelimit.weft.dev/check-timeout': '' }, /not a duration/],
  ];
  for (const [ann, message] of invalid) {
    it(`rejects ${JSON.stringify(ann)}`, () => {
      let caught: unknown;
      try {
        readOverrides(ann);
      } catch (err) {
        caught = err;
      }
      expect(isWeftError(caught, 'WEFT_INJECTION_ANNOTATION_INVALID'), String(caught)).to.equal(true);
      expect((caught as Error).message).to.match(/^metadata\.annotations\[/);
      expect((caught as Error).message).to.match(message);
    });
  }
});

describe('quantities', () => {
  const table: [string, number | undefined][] = [
    ['100m', 0.1],
    ['2', 2],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['1e3', 1000],
    ['5k', 5000],
    ['', undefined],
    ['1.2.3', undefined],
    ['10MB', undefined],
    ['-1', undefined],
    ['m', undefined],
  ];
  for (const [s, n] of table) {
    it(`${JSON.stringify(s)} → ${n}`, () => expect(parseQuantity(s)).to.equal(n));
  }
});

describe('unsupported Istio annotations', () => {
  it('lists Istio sidecar annotations weft ignores, and nothing else', async () => {
    const { unsupportedAnnotations } = await import('../../../pkg/inject/annotations.js');
    expect(
      unsupportedAnnotations({
        'sidecar.istio.io/userVolume': '[]',
        'sidecar.istio.io/proxyCPU': '100m',
        'traffic.sidecar.istio.io/kubevirtInterfaces': 'net1',
        'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true',
        'status.sidecar.istio.io/port': '0',
        'prometheus.io/scrape': 'true',
        'example.com/other': 'x',
      }),
    ).to.deep.equal([
      "metadata.annotations[sidecar.istio.io/userVolume]: not supported by weft's injector; ignored",
      "metadata.annotations[status.sidecar.istio.io/port]: not supported by weft's injector; ignored",
      "metadata.annotations[traffic.sidecar.istio.io/kubevirtInterfaces]: not supported by weft's injector; ignored",
    ]);
  });
});
