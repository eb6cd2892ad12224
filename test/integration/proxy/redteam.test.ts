/**
 * Adversarial requests against a gateway listener on loopback: every case is an attack from the
 * Istio/Envoy security bulletins' checklist that got through (or let the app see something the
 * policy did not) before its fix. The policy and the app must see the same request.
 */
import { expect } from 'chai';
import type { AuthzPolicy, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import type { JWTRule, RequestAuthentication } from '../../../pkg/api/requestauthentication.js';
import { requestAuthnFor } from '../../../pkg/translate/requestauthn.js';
import { jwks, makeKey, signJwt } from '../../support/jwt.js';
import { request, startProxy, upstream, type Started, type Upstream } from './helpers.js';

const ISS = 'https://idp.example.com';
const key = makeKey('rsa', 'k1');

function jwtBlock(extra: Partial<JWTRule>): NonNullable<ProxyConfig['jwt']> {
  const ra: RequestAuthentication = {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name: 'jwt', namespace: 'istio-ingress' },
    spec: {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      jwtRules: [{ issuer: ISS, jwks: jwks(key), ...extra }],
    },
  };
  const { jwt } = requestAuthnFor({
    policies: [ra],
    workload: { namespace: 'istio-ingress', labels: { istio: 'ingressgateway' } },
    rootNamespace: 'weft-system',
    jwks: { keys: () => ({ jwks: '{"keys":[]}', error: 'unused' }) },
  });
  return jwt!;
}

function gateway(
  up: Upstream,
  opts: { policies?: AuthzPolicy[]; jwt?: Partial<JWTRule>; edge?: boolean },
): ProxyConfig {
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'redteam-1',
    listeners: [
      {
        name: 'gateway-8080',
        protocol: 'HTTP',
        port: 0,
        edge: opts.edge ?? true,
        virtualHosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [{ action: { type: 'route', destinations: [{ cluster: 'app', weight: 1 }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: up.port }] }],
    ...(opts.policies ? { authz: { policies: opts.policies } } : {}),
    ...(opts.jwt ? { jwt: jwtBlock(opts.jwt) } : {}),
  };
}

describe('proxy: adversarial requests on a gateway listener', function () {
  this.timeout(20_000);
  let up: Upstream;
  let p: Started | null = null;

  before(async () => {
    up = await upstream('app');
  });
  after(async () => {
    await up.close();
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
    up.seen.length = 0;
  });

  it('a client-forged x-forwarded-client-cert does not satisfy an ALLOW policy on it (edge sanitizes first)', async () => {
    // Envoy sanitizes XFCC (SANITIZE_SET) in the connection manager, before RBAC runs: a policy
    // reading the header sees the gateway's word, never the client's
    const allowMeshClients: AuthzPolicy = {
      name: 'istio-ingress/mtls-clients-only',
      action: 'ALLOW',
      rules: [
        {
          when: [
            {
              key: 'request.headers',
              header: 'x-forwarded-client-cert',
              values: [{ prefix: 'By=spiffe://' }],
            },
          ],
        },
      ],
    };
    p = await startProxy(gateway(up, { policies: [allowMeshClients] }));
    const forged = 'By=spiffe://cluster.local/ns/x/sa/gw;URI=spiffe://cluster.local/ns/admin/sa/root';
    const r = await request(p.port, { headers: { 'x-forwarded-client-cert': forged } });
    expect(r.status).to.equal(403);
    expect(up.seen).to.have.length(0);
  });

  it('a client-forged x-envoy-* control header does not satisfy a DENY notValues either', async () => {
    const denyUnlessInternal: AuthzPolicy = {
      name: 'istio-ingress/internal-only',
      action: 'DENY',
      rules: [
        {
          when: [
            { key: 'request.headers', header: 'x-envoy-decorator-operation', notValues: [{ present: true }] },
          ],
        },
      ],
    };
    p = await startProxy(gateway(up, { policies: [denyUnlessInternal] }));
    const r = await request(p.port, { headers: { 'x-envoy-decorator-operation': 'internal' } });
    expect(r.status).to.equal(403);
    expect(up.seen).to.have.length(0);
  });

  it('Connection: <name> cannot strip a header the proxy set (JWT claim output)', async () => {
    // RFC 9110 §7.6.1 options are the client's own fields on this hop; the claim header is the
    // proxy's word about the caller and must reach the app whatever the client nominates
    p = await startProxy(
      gateway(up, { jwt: { outputClaimToHeaders: [{ header: 'x-user', claim: 'sub' }] } }),
    );
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt('RS256', key.privateKey, { iss: ISS, sub: 'alice', exp: now + 600 }, { kid: 'k1' });
    const r = await request(p.port, {
      headers: { authorization: `Bearer ${token}`, connection: 'keep-alive, x-user', 'x-user': 'mallory' },
    });
    expect(r.status).to.equal(200);
    expect(up.seen[0]!.headers['x-user']).to.equal('alice');
  });

  it('a field the Connection header nominates is gone for the policy too, as for the app', async () => {
    // an ALLOW on a header the proxy then drops would authorize on something the app never sees
    const allowTenant: AuthzPolicy = {
      name: 'istio-ingress/tenant-a',
      action: 'ALLOW',
      rules: [{ when: [{ key: 'request.headers', header: 'x-tenant', values: [{ exact: 'a' }] }] }],
    };
    p = await startProxy(gateway(up, { policies: [allowTenant] }));
    expect((await request(p.port, { headers: { 'x-tenant': 'a' } })).status).to.equal(200);
    const r = await request(p.port, { headers: { 'x-tenant': 'a', connection: 'x-tenant' } });
    expect(r.status).to.equal(403);
    expect(up.seen).to.have.length(1);
  });
});
