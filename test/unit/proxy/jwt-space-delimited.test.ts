/**
 * Space-delimited JWT claims (Istio ≥ 1.21: `scope` and `permission` always; RequestAuthentication
 * `spaceDelimitedClaims` for others): AuthorizationPolicy sees each word of such a claim, so a
 * DENY on `request.auth.claims[scope]: admin` catches a token whose scope is "read admin".
 * Before, the claim was one whole string and that DENY let the token through.
 */
import { expect } from 'chai';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import type { JwtProvider } from '../../../pkg/proxyconfig/jwt.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { PROXY_CONFIG_API_VERSION } from '../../../pkg/proxyconfig/types.js';
import { compilePolicy } from '../../../pkg/translate/authz.js';
import { authenticate, compileJwt } from '../../../proxy/authn/jwt.js';
import type { AuthzAttributes } from '../../../proxy/authz/attributes.js';
import { authorize, compileAuthz } from '../../../proxy/authz/engine.js';
import { jwks, makeKey, signJwt } from '../../support/jwt.js';

const NOW = 1_800_000_000;
const ISS = 'https://issuer.example.com';
const k = makeKey('ed25519', 'k1');

function claimsSeen(
  payload: Record<string, unknown>,
  extra: Partial<JwtProvider> = {},
): Record<string, unknown> {
  const token = signJwt('EdDSA', k.privateKey, { iss: ISS, sub: 'alice', exp: NOW + 600, ...payload });
  const r = authenticate(
    compileJwt({ providers: [{ issuer: ISS, jwks: jwks(k), ...extra }] }),
    { host: 'app', authorization: `Bearer ${token}` },
    '/',
    { nowSec: NOW, method: 'GET' },
  );
  if (!r.ok || !r.auth) throw new Error(`not authenticated: ${JSON.stringify(r)}`);
  return r.auth.claims;
}

describe('JWT space-delimited claims', () => {
  const cases: {
    name: string;
    payload: Record<string, unknown>;
    extra?: Partial<JwtProvider>;
    claim: string;
    want: unknown;
  }[] = [
    {
      name: 'scope is split on spaces',
      payload: { scope: 'read admin' },
      claim: 'scope',
      want: ['read', 'admin'],
    },
    {
      name: 'permission is split on spaces',
      payload: { permission: 'a b c' },
      claim: 'permission',
      want: ['a', 'b', 'c'],
    },
    {
      name: 'repeated spaces make no empty words',
      payload: { scope: ' read   admin ' },
      claim: 'scope',
      want: ['read', 'admin'],
    },
    {
      name: 'a one-word scope is a one-item list',
      payload: { scope: 'read' },
      claim: 'scope',
      want: ['read'],
    },
    {
      name: 'a scope that is already a list is kept',
      payload: { scope: ['read write', 'x'] },
      claim: 'scope',
      want: ['read write', 'x'],
    },
    { name: 'a non-string scope is kept', payload: { scope: 7 }, claim: 'scope', want: 7 },
    {
      name: 'other claims stay whole strings',
      payload: { roles: 'editor admin' },
      claim: 'roles',
      want: 'editor admin',
    },
    {
      name: 'spaceDelimitedClaims adds a claim',
      payload: { roles: 'editor admin' },
      extra: { spaceDelimitedClaims: ['roles'] },
      claim: 'roles',
      want: ['editor', 'admin'],
    },
    {
      name: 'tabs are not separators (Envoy splits on spaces)',
      payload: { scope: 'a\tb' },
      claim: 'scope',
      want: ['a\tb'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      expect(claimsSeen(c.payload, c.extra)[c.claim]).to.deep.equal(c.want);
    });

  it('the token itself is not changed: other claims and the original payload are intact', () => {
    const seen = claimsSeen({ scope: 'read admin', email: 'a@b' });
    expect(seen.email).to.equal('a@b');
    expect(seen.sub).to.equal('alice');
  });

  describe('AuthorizationPolicy on a space-delimited scope', () => {
    const base: AuthzAttributes = {
      method: 'GET',
      host: 'app',
      path: '/',
      headers: {},
      port: 8080,
      destinationIp: '10.0.0.9',
      sourceIp: '10.0.0.5',
      remoteIp: '10.0.0.5',
    };
    function decide(action: 'ALLOW' | 'DENY', scope: string): boolean {
      const p = {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'p', namespace: 'foo' },
        spec: { action, rules: [{ when: [{ key: 'request.auth.claims[scope]', values: ['admin'] }] }] },
      } as AuthorizationPolicy;
      const authz = compileAuthz({ policies: [compilePolicy(p, new Set(), [])] });
      const claims = claimsSeen({ scope });
      const auth = { principal: `${ISS}/alice`, audiences: [], claims };
      return authorize(authz, { ...base, auth }).decision === 'allow';
    }
    const table: [string, 'ALLOW' | 'DENY', string, boolean][] = [
      ['DENY admin, token scope "read admin": denied', 'DENY', 'read admin', false],
      ['DENY admin, token scope "admin": denied', 'DENY', 'admin', false],
      ['DENY admin, token scope "read": allowed', 'DENY', 'read', true],
      ['DENY admin, token scope "administrator": allowed (whole words only)', 'DENY', 'administrator', true],
      ['ALLOW admin, token scope "read admin": allowed', 'ALLOW', 'read admin', true],
      ['ALLOW admin, token scope "read": denied', 'ALLOW', 'read', false],
    ];
    for (const [name, action, scope, allowed] of table)
      it(name, () => {
        expect(decide(action, scope)).to.equal(allowed);
      });
  });

  it('the proxy config refuses a bad spaceDelimitedClaims', () => {
    const cfg = (v: unknown) => ({
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: '1',
      listeners: [],
      clusters: [],
      jwt: { providers: [{ issuer: ISS, jwks: '{"keys":[]}', spaceDelimitedClaims: v }] },
    });
    expect(validateProxyConfig(cfg(['roles']))).to.deep.equal([]);
    for (const bad of ['roles', [''], [3], Array.from({ length: 65 }, (_, i) => `c${i}`)])
      expect(validateProxyConfig(cfg(bad)).length, JSON.stringify(bad)).to.be.greaterThan(0);
  });
});
