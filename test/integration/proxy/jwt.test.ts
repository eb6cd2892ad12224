/**
 * RequestAuthentication through a real proxy over real HTTP: the jwt block compiled from a
 * RequestAuthentication (pkg/translate/requestauthn.ts), a gateway-style listener, a recording
 * upstream. Valid token → 200 and the token header gone upstream; invalid → 401 with
 * www-authenticate, never reaching the upstream; no token → 200 with no principal; metrics per
 * issuer and the access log's flag for refusals.
 */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import type { JWTRule, RequestAuthentication } from '../../../pkg/api/requestauthentication.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { requestAuthnFor } from '../../../pkg/translate/requestauthn.js';
import { jwks, makeKey, signJwt, type TestKey } from '../../support/jwt.js';
import { request, startProxy, upstream, type Started, type Upstream } from './helpers.js';

const ISS = 'https://idp.example.com';

function config(up: Upstream, k: TestKey, extra: Partial<JWTRule> = {}): ProxyConfig {
  const ra: RequestAuthentication = {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name: 'jwt', namespace: 'istio-ingress' },
    spec: {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      jwtRules: [{ issuer: ISS, jwks: jwks(k), ...extra }],
    },
  };
  const { jwt } = requestAuthnFor({
    policies: [ra],
    workload: { namespace: 'istio-ingress', labels: { istio: 'ingressgateway' } },
    rootNamespace: 'weft-system',
    jwks: { keys: () => ({ jwks: '{"keys":[]}', error: 'unused' }) },
  });
  expect(jwt, 'the policy selects the gateway').to.not.equal(undefined);
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'jwt-1',
    telemetry: { accessLog: true },
    listeners: [
      {
        name: 'gateway-8080',
        protocol: 'HTTP',
        port: 0,
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
    jwt: jwt!,
  };
}

describe('proxy: RequestAuthentication over real HTTP (gateway listener)', function () {
  let up: Upstream;
  let p: Started | null = null;
  let log: string[];
  const k = makeKey('rsa', 'k1');
  const now = (): number => Math.floor(Date.now() / 1000);
  const token = (extra: Record<string, unknown> = {}): string =>
    signJwt('RS256', k.privateKey, { iss: ISS, sub: 'alice', exp: now() + 600, ...extra }, { kid: 'k1' });

  before(async () => {
    up = await upstream('app');
  });
  after(async () => {
    await up.close();
  });
  async function start(extra: Partial<JWTRule> = {}): Promise<Started> {
    log = [];
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
    p = await startProxy(config(up, k, extra), { accessLogSink: sink });
    return p;
  }
  afterEach(async () => {
    await p?.stop();
    p = null;
    up.seen.length = 0;
  });

  it('valid token → 200, Authorization removed upstream, output headers set, forged ones dropped', async () => {
    const s = await start({
      outputClaimToHeaders: [{ header: 'x-user', claim: 'sub' }],
      outputPayloadToHeader: 'x-jwt',
    });
    const t = token();
    const r = await request(s.port, { headers: { authorization: `Bearer ${t}`, 'x-user': 'mallory' } });
    expect(r.status).to.equal(200);
    expect(up.seen).to.have.length(1);
    const h = up.seen[0]!.headers;
    expect(h.authorization).to.equal(undefined);
    expect(h['x-user']).to.equal('alice');
    expect(h['x-jwt']).to.equal(t.split('.')[1]);
  });

  it('forwardOriginalToken: the token goes upstream', async () => {
    const s = await start({ forwardOriginalToken: true });
    const t = token();
    expect((await request(s.port, { headers: { authorization: `Bearer ${t}` } })).status).to.equal(200);
    expect(up.seen[0]!.headers.authorization).to.equal(`Bearer ${t}`);
  });

  it('no token → 200 (no principal; AuthorizationPolicy decides), forged claim header dropped', async () => {
    const s = await start({ outputClaimToHeaders: [{ header: 'x-user', claim: 'sub' }] });
    const r = await request(s.port, { headers: { 'x-user': 'admin' } });
    expect(r.status).to.equal(200);
    expect(up.seen[0]!.headers['x-user']).to.equal(undefined);
  });

  const refusals: [string, () => Record<string, string>, string, number][] = [
    [
      'garbage',
      () => ({ authorization: 'Bearer deadbeef' }),
      'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
      401,
    ],
    ['expired', () => ({ authorization: `Bearer ${token({ exp: now() - 3600 })}` }), 'Jwt is expired', 401],
    [
      'alg none',
      () => ({ authorization: `Bearer ${signJwt('none', null, { iss: ISS, sub: 'x' })}` }),
      'Jwt header [alg] is not supported',
      401,
    ],
    [
      'unknown issuer',
      () => ({ authorization: `Bearer ${token({ iss: 'https://evil' })}` }),
      'Jwt issuer is not configured',
      401,
    ],
    [
      'signed by another key',
      () => ({
        authorization: `Bearer ${signJwt('RS256', makeKey('rsa', 'k1').privateKey, { iss: ISS, sub: 'x' }, { kid: 'k1' })}`,
      }),
      'Jwt verification fails',
      401,
    ],
  ];
  for (const [name, headers, message, status] of refusals)
    it(`${name} → ${status} "${message}", nothing reaches the upstream`, async () => {
      const s = await start();
      const r = await request(s.port, { host: 'shop.example.com', path: '/cart?x=1', headers: headers() });
      expect(r.status).to.equal(status);
      expect(r.body).to.equal(message);
      expect(r.headers['www-authenticate']).to.equal(
        'Bearer realm="http://shop.example.com/cart", error="invalid_token"',
      );
      expect(r.headers['x-weft-response-flags']).to.equal('JWT');
      expect(up.seen).to.have.length(0);
    });

  it('listeners not named in jwt.listeners are not checked (a sidecar outbound listener)', async () => {
    const cfg = config(up, k);
    cfg.jwt!.listeners = ['inbound-only'];
    p = await startProxy(cfg);
    const r = await request(p.port, { headers: { authorization: 'Bearer deadbeef' } });
    expect(r.status).to.equal(200);
    expect(up.seen[0]!.headers.authorization).to.equal('Bearer deadbeef');
  });

  it('audience not allowed → 403', async () => {
    const s = await start({ audiences: ['shop'] });
    const r = await request(s.port, { headers: { authorization: `Bearer ${token({ aud: 'bank' })}` } });
    expect(r.status).to.equal(403);
    expect(r.body).to.equal('Audiences in Jwt are not allowed');
  });

  it('a 20 KiB token is refused unparsed (JWT size limit), never reaching the upstream', async () => {
    const s = await start({ fromHeaders: [{ name: 'x-token' }] });
    const r = await request(s.port, {
      headers: { 'x-token': `${'a'.repeat(10_000)}.${'b'.repeat(10_000)}.c` },
    });
    expect(r.status).to.equal(401);
    expect(r.body).to.equal('Jwt is larger than 16384 bytes');
    expect(up.seen).to.have.length(0);
  });

  it('metrics count success and failure per issuer; the access log flags refusals', async () => {
    const s = await start();
    await request(s.port, { headers: { authorization: `Bearer ${token()}` } });
    await request(s.port, { headers: { authorization: `Bearer ${token({ exp: now() - 3600 })}` } });
    const m = await request(s.metrics, { path: '/stats/prometheus' });
    expect(m.body).to.contain(`weft_proxy_jwt_authn_total{issuer="${ISS}",result="success",reason="ok"} 1`);
    expect(m.body).to.contain(
      `weft_proxy_jwt_authn_total{issuer="${ISS}",result="failure",reason="JwtExpired"} 1`,
    );
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const lines = log.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.response_code === 200)).to.include({ request_principal: `${ISS}/alice` });
    expect(lines.find((l) => l.response_code === 401)).to.include({
      response_flags: 'JWT',
      response_code_details: 'jwt_authn_access_denied{Jwt_is_expired}',
    });
  });
});
