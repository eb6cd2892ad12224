/**
 * weftd's config generator with AuthorizationPolicies: each pod gets the block that selects it
 * (sidecars with `listeners: []`, gateways guarding every listener), the version moves with
 * it, the spliced sidecar line carries it, and a mesh reload (rootNamespace) is honoured.
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { encodeMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';

const policy = (ns: string, name: string, app?: string): AuthorizationPolicy =>
  ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: ns },
    spec: { ...(app ? { selector: { matchLabels: { app } } } : {}), action: 'DENY', rules: [{}] },
  }) as AuthorizationPolicy;

const snapshot = (generation: number, authorizationPolicies: AuthorizationPolicy[]): Snapshot => ({
  generation,
  services: [],
  peerAuthentications: [],
  kubeServices: [
    { metadata: { name: 'reviews', namespace: 'shop' }, spec: { selector: { app: 'reviews' } } },
  ],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  authorizationPolicies,
});
const pod = (labels: Record<string, string>): PodInfo => ({ name: 'p-1', namespace: 'shop', labels });
const gen = (mesh = DEFAULT_MESH): ConfigGenerator =>
  new ConfigGenerator({ domainSuffix: 'cluster.local', mesh, log: createLogger('t', { silent: true }) });

describe('weftd config generation: AuthorizationPolicy', () => {
  it('a sidecar gets the policies that select it, for inbound only, in the spliced line too', () => {
    const g = gen().forProxy(
      snapshot(1, [policy('shop', 'deny-reviews', 'reviews'), policy('shop', 'deny-other', 'x')]),
      'sidecar',
      pod({ app: 'reviews' }),
    );
    expect(g.config.authz).to.deep.equal({
      policies: [{ name: 'shop/deny-reviews', action: 'DENY', rules: [{}] }],
      listeners: [],
    });
    expect(JSON.parse(g.encode())).to.deep.equal(
      JSON.parse(encodeMessage({ type: 'config', version: g.version, config: g.config })),
    );
  });
  it('the version moves with the policies; no policy, no block', () => {
    const g = gen();
    const none = g.forProxy(snapshot(1, []), 'sidecar', pod({ app: 'reviews' }));
    const some = g.forProxy(snapshot(2, [policy('shop', 'd')]), 'sidecar', pod({ app: 'reviews' }));
    expect(none.config.authz).to.equal(undefined);
    expect(some.version).to.not.equal(none.version);
    const other = g.forProxy(snapshot(3, [policy('elsewhere', 'd')]), 'sidecar', pod({ app: 'reviews' }));
    expect(other.version).to.equal(none.version);
  });
  it('a gateway gets its block guarding every listener', () => {
    const g = gen().forProxy(snapshot(1, [policy('shop', 'gw-deny', 'gw')]), 'gateway', pod({ app: 'gw' }));
    expect(g.config.authz).to.deep.equal({
      policies: [{ name: 'shop/gw-deny', action: 'DENY', rules: [{}] }],
    });
    expect(JSON.parse(g.encode()).config.authz).to.deep.equal(g.config.authz);
  });
  it('a Service targetRef reaches the pods the Service selects', () => {
    const p = {
      ...policy('shop', 'svc'),
      spec: { targetRef: { kind: 'Service', name: 'reviews' }, action: 'DENY', rules: [{}] },
    } as AuthorizationPolicy;
    expect(
      gen()
        .forProxy(snapshot(1, [p]), 'sidecar', pod({ app: 'reviews' }))
        .config.authz?.policies.map((x) => x.name),
    ).to.deep.equal(['shop/svc']);
    expect(gen().forProxy(snapshot(1, [p]), 'sidecar', pod({ app: 'ratings' })).config.authz).to.equal(
      undefined,
    );
  });
  it('the root namespace comes from the mesh config and a reload applies', () => {
    const g = gen();
    const snap = snapshot(1, [policy('mesh-root', 'mesh-wide')]);
    expect(g.forProxy(snap, 'sidecar', pod({ app: 'a' })).config.authz).to.equal(undefined);
    g.setMesh({ ...DEFAULT_MESH, rootNamespace: 'mesh-root' });
    expect(
      g.forProxy(snap, 'sidecar', pod({ app: 'a' })).config.authz?.policies.map((x) => x.name),
    ).to.deep.equal(['mesh-root/mesh-wide']);
  });
  it('gateways carry the mesh numTrustedProxies, sidecars never', () => {
    const g = gen({ ...DEFAULT_MESH, gatewayNumTrustedProxies: 2 });
    const snap = snapshot(1, [policy('shop', 'd')]);
    expect(g.forProxy(snap, 'gateway', pod({ app: 'gw' })).config.authz?.numTrustedProxies).to.equal(2);
    expect(g.forProxy(snap, 'sidecar', pod({ app: 'a' })).config.authz?.numTrustedProxies).to.equal(
      undefined,
    );
  });
});
