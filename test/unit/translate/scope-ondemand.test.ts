/**
 * On-demand hosts' scope decisions (ADR 0023, pkg/translate/scope.ts): what an on-demand sidecar
 * starts with (never more than its full scope), and which entries a requested name resolves to:
 * only hosts exported to the proxy's namespace and imported by its Sidecar, so asking never
 * reveals a host the proxy's scope forbids.
 */
import { expect } from 'chai';
import type { Sidecar, VirtualService } from '../../../pkg/api/index.js';
import {
  egressRef,
  onDemandCandidates,
  onDemandScope,
  proxyScope,
  resolveOnDemand,
  scopeImports,
  type ProxyScope,
} from '../../../pkg/translate/scope.js';

const SUFFIX = 'svc.cluster.local';
const sidecar = (hosts: string[], ns = 'shop'): Sidecar =>
  ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    metadata: { name: 'default', namespace: ns },
    spec: { egress: [{ hosts }] },
  }) as Sidecar;
const scoped = (hosts: string[] | null, ns = 'shop'): ProxyScope =>
  proxyScope(hosts === null ? undefined : { sidecar: sidecar(hosts, ns), via: 'namespace' }, ns);
const svc = (name: string, namespace: string, exportTo?: string[]) => ({
  host: `${name}.${namespace}.${SUFFIX}`,
  namespace,
  ...(exportTo ? { exportTo } : {}),
});
const SERVICES = [
  svc('web', 'shop'),
  { ...svc('reviews', 'prod'), addresses: ['10.96.0.7'] },
  svc('ratings', 'prod'),
  svc('secret', 'vault', ['.']),
  svc('billing', 'pay', ['shop', 'pay']),
  { host: '*.example.com', namespace: 'egress' },
  { host: 'api.partner.io', namespace: 'egress', exportTo: ['other'] },
];
const VS = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'front', namespace: 'edge' },
  spec: {
    hosts: ['front.example.org'],
    http: [{ route: [{ destination: { host: `reviews.prod.${SUFFIX}` } }] }],
  },
} as VirtualService;
const catalog = { services: SERVICES, virtualServices: [VS], suffix: SUFFIX };

describe('on-demand hosts: scope decisions', () => {
  describe('onDemandCandidates (Kubernetes DNS search from the proxy namespace)', () => {
    const table: [string, string[]][] = [
      ['reviews', ['reviews', `reviews.shop.${SUFFIX}`]],
      ['reviews.prod', ['reviews.prod', `reviews.prod.${SUFFIX}`]],
      ['reviews.prod.svc', ['reviews.prod.svc', `reviews.prod.svc.cluster.local`]],
      [`reviews.prod.${SUFFIX}`, [`reviews.prod.${SUFFIX}`]],
      ['api.example.com', ['api.example.com']],
    ];
    for (const [name, want] of table)
      it(`${name} → ${want.join(', ')}`, () =>
        expect(onDemandCandidates(name, 'shop', SUFFIX)).to.deep.equal(want));
  });

  describe('resolveOnDemand: visible names resolve, forbidden and unknown ones do not', () => {
    const table: [string, ProxyScope, string[]][] = [
      ['reviews.prod', scoped(null), [`prod/reviews.prod.${SUFFIX}`]],
      [`reviews.prod.${SUFFIX}`, scoped(null), [`prod/reviews.prod.${SUFFIX}`]],
      ['reviews.prod.svc', scoped(null), [`prod/reviews.prod.${SUFFIX}`]],
      ['web', scoped(null), [`shop/web.shop.${SUFFIX}`]],
      // exportTo `.` in vault: never seen from shop
      ['secret.vault', scoped(null), []],
      // exportTo lists shop
      ['billing.pay', scoped(null), [`pay/billing.pay.${SUFFIX}`]],
      // exported to `other` only
      ['api.partner.io', scoped(null), []],
      // a wildcard ServiceEntry host covers the name
      ['api.example.com', scoped(null), ['egress/*.example.com']],
      // a VirtualService host
      ['front.example.org', scoped(null), ['edge/front.example.org']],
      ['nothing.prod', scoped(null), []],
      // a cluster IP as the Host
      ['10.96.0.7', scoped(null), [`prod/reviews.prod.${SUFFIX}`]],
      ['10.96.0.8', scoped(null), []],
      // the Sidecar imports prod/* only: ratings yes, billing no
      ['ratings.prod', scoped(['prod/*']), [`prod/ratings.prod.${SUFFIX}`]],
      ['billing.pay', scoped(['prod/*']), []],
      ['front.example.org', scoped(['prod/*']), []],
      // `~/*` imports nothing
      ['reviews.prod', scoped(['~/*']), []],
      // an exact import
      ['reviews.prod', scoped([`prod/reviews.prod.${SUFFIX}`]), [`prod/reviews.prod.${SUFFIX}`]],
      ['ratings.prod', scoped([`prod/reviews.prod.${SUFFIX}`]), []],
    ];
    for (const [name, scope, want] of table)
      it(`${name} under ${JSON.stringify(scope.egress?.map(egressRef) ?? '*/*')} → ${JSON.stringify(want)}`, () =>
        expect(resolveOnDemand(name, 'shop', scope, catalog).map(egressRef)).to.deep.equal(want));
  });

  describe('onDemandScope: the starting scope', () => {
    const table: [string, ProxyScope, string[]][] = [
      ['no Sidecar: the own namespace', scoped(null), ['shop/*']],
      ['`./*` stays', scoped(['./*']), ['shop/*']],
      ['`*/*` narrows to the own namespace', scoped(['*/*']), ['shop/*']],
      ['another namespace wildcard comes on demand', scoped(['prod/*', './*']), ['shop/*']],
      [
        'exact hosts stay',
        scoped([`prod/reviews.prod.${SUFFIX}`, './*']),
        [`prod/reviews.prod.${SUFFIX}`, 'shop/*'],
      ],
      ['`~/*` brings nothing', scoped(['~/*']), []],
      ['a wildcard domain narrows to the own namespace', scoped(['*/*.example.com']), ['shop/*.example.com']],
    ];
    for (const [title, full, want] of table)
      it(title, () => expect(onDemandScope(full, 'shop', []).egress!.map(egressRef)).to.deep.equal(want));

    it('never imports what the full scope does not (every service, every table scope)', () => {
      for (const [, full] of table)
        for (const s of SERVICES) {
          const narrowed = onDemandScope(full, 'shop', []);
          if (scopeImports(narrowed, s.namespace, s.host))
            expect(
              scopeImports(full, s.namespace, s.host),
              `${s.host} under ${JSON.stringify(full.egress)}`,
            ).to.equal(true);
        }
    });

    it('adds the subscribed entries', () => {
      const sub = resolveOnDemand('reviews.prod', 'shop', scoped(null), catalog);
      expect(onDemandScope(scoped(null), 'shop', sub).egress!.map(egressRef)).to.deep.equal([
        'shop/*',
        `prod/reviews.prod.${SUFFIX}`,
      ]);
    });
  });
});
