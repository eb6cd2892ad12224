/**
 * Istio semantics the translator follows where several objects or settings meet: the mirror Host
 * (Istio ≥ 1.28), sourceLabels/sourceNamespace scoping per proxy, and precedence of several
 * DestinationRules / VirtualServices for one host.
 */
import { expect } from 'chai';
import { parse } from 'yaml';
import { translate, type TranslateInput } from '../../../pkg/translate/index.js';
import { shadowHost } from '../../../proxy/router/exchange.js';
import type { ServiceEntry, VirtualService } from '../../../pkg/api/index.js';
import type { HttpListener, Route } from '../../../pkg/proxyconfig/types.js';

const SE = parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
`) as ServiceEntry;

export const routesOf = (input: TranslateInput, host = 'reviews.default.svc.cluster.local:9080'): Route[] => {
  const l = translate({ serviceEntries: [SE], ...input }).config.listeners[0] as HttpListener;
  return l.virtualHosts.find((v) => v.name === host)?.routes ?? [];
};

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
