/**
 * Istio semantics the translator follows where several objects or settings meet: the mirror Host
 * (Istio ≥ 1.28), sourceLabels/sourceNamespace scoping per proxy, and precedence of several
 * DestinationRules / VirtualServices for one host.
 */
import { expect } from 'chai';
import { parse } from 'yaml';
import { translate, translateGateway } from '../../../pkg/translate/index.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { shadowHost } from '../../../proxy/router/exchange.js';
import type { Gateway, VirtualService } from '../../../pkg/api/index.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';

import { SE, routesOf } from './reviews-fixture.js';

describe('mirrors: Host of the mirrored request', () => {
  const vs = parse(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    mirror: {host: reviews}
    mirrors: [{destination: {host: reviews}, percentage: {value: 5}}]
`) as VirtualService;
  it('default: no suffix (Istio ≥ 1.28, DISABLE_SHADOW_HOST_SUFFIX=true)', () => {
    const m = routesOf({ virtualServices: [vs] })[0]!.mirrors!;
    expect(m).to.have.length(2);
    for (const x of m) expect(x).to.not.have.property('shadowHostSuffix');
  });
  it('shadowHostSuffix: every mirror of the route gets it', () => {
    const m = routesOf({ virtualServices: [vs], shadowHostSuffix: true })[0]!.mirrors!;
    expect(m.map((x) => x.shadowHostSuffix)).to.deep.equal([true, true]);
  });
  const HOSTS: [string, string][] = [
    ['reviews', 'reviews-shadow'],
    ['reviews:9080', 'reviews-shadow:9080'],
    ['reviews.default.svc.cluster.local:9080', 'reviews.default.svc.cluster.local-shadow:9080'],
    ['10.0.0.1:80', '10.0.0.1-shadow:80'],
    ['[::1]:8080', '[::1]-shadow:8080'],
    ['[::1]', '[::1]-shadow'],
    ['', '-shadow'],
  ];
  for (const [host, want] of HOSTS)
    it(`shadow Host of ${JSON.stringify(host)} is ${want}`, () => expect(shadowHost(host)).to.equal(want));
});

describe('proxyHeaders and edge listeners in the proxy config', () => {
  it('translate carries a non-empty proxyHeaders; an empty one is left out (same version as none)', () => {
    const on = translate({
      serviceEntries: [SE],
      proxyHeaders: { envoyDebugHeaders: { disabled: true } },
    }).config;
    expect(on.proxyHeaders).to.deep.equal({ envoyDebugHeaders: { disabled: true } });
    const empty = translate({ serviceEntries: [SE], proxyHeaders: {} }).config;
    expect(empty).to.not.have.property('proxyHeaders');
    expect(empty.version).to.equal(translate({ serviceEntries: [SE] }).config.version);
    expect(on.version).to.not.equal(empty.version);
  });
  it('gateway listeners are edge listeners; the sidecar outbound listener is not', () => {
    const gw = parse(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]
`) as Gateway;
    const g = translateGateway({
      serviceEntries: [SE],
      gateways: [gw],
      pod: { namespace: 'default', labels: { istio: 'ingressgateway' } },
    }).config;
    expect(g.listeners.map((l) => (l as HttpListener).edge)).to.deep.equal([true]);
    expect((translate({ serviceEntries: [SE] }).config.listeners[0] as HttpListener).edge).to.equal(
      undefined,
    );
  });
  const base = translate({ serviceEntries: [SE] }).config;
  const CASES: [string, unknown, string | null][] = [
    ['both disabled', { attemptCount: { disabled: true }, envoyDebugHeaders: { disabled: true } }, null],
    ['empty field', { attemptCount: {} }, null],
    ['not an object', 'off', 'proxyHeaders'],
    ['unknown field', { server: { disabled: true } }, 'proxyHeaders.server'],
    ['field not an object', { attemptCount: true }, 'proxyHeaders.attemptCount'],
    [
      'disabled not a bool',
      { envoyDebugHeaders: { disabled: 'yes' } },
      'proxyHeaders.envoyDebugHeaders.disabled',
    ],
    [
      'unknown inner key',
      { envoyDebugHeaders: { enabled: false } },
      'proxyHeaders.envoyDebugHeaders.enabled',
    ],
  ];
  for (const [name, ph, badPath] of CASES)
    it(`validateProxyConfig proxyHeaders ${name} → ${badPath ?? 'ok'}`, () => {
      const problems = validateProxyConfig({ ...base, proxyHeaders: ph });
      expect(problems.map((x) => x.path)).to.deep.equal(badPath === null ? [] : [badPath]);
    });
  it('validateProxyConfig: listener edge must be a boolean', () => {
    const l = { ...(base.listeners[0] as HttpListener), edge: 'yes' };
    expect(validateProxyConfig({ ...base, listeners: [l] }).map((x) => x.path)).to.deep.equal([
      'listeners[0].edge',
    ]);
  });
});
