/**
 * RequestAuthentication in the proxy (proxy/authn/jwt.ts), against Envoy's jwt_authn /
 * jwt_verify_lib behaviour as Istio configures it: every algorithm with keys made here, time
 * checks at the 60 s skew edges, issuer and audience, kid selection, malformed tokens (each of
 * jwt_verify_lib's statuses), the classic attacks (alg none, HMAC keyed with the RSA public key,
 * oversized tokens), token locations and what is forwarded upstream.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  authenticate,
  compileJwt,
  decodeBase64Url,
  JWT_STATUS,
  MAX_TOKEN_BYTES,
  normalizeAudience,
  type AuthnResult,
  type JwtStatus,
} from '../../../proxy/authn/jwt.js';
import type { JwtProvider } from '../../../pkg/proxyconfig/jwt.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { b64u, jwks, keyKindFor, makeKey, signJwt, type TestAlg, type TestKey } from '../../support/jwt.js';

const NOW = 1_800_000_000;
const ISS = 'https://issuer.example.com';
const ALGS: TestAlg[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

const keys: Record<string, TestKey> = {};
const key = (kind: Parameters<typeof makeKey>[0], kid: string): TestKey => (keys[kid] ??= makeKey(kind, kid));

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISS, sub: 'alice', exp: NOW + 3600, iat: NOW, ...extra };
}

function provider(p: Partial<JwtProvider> & { jwks: string }): JwtProvider {
  return { issuer: ISS, ...p };
}

function run(
  providers: JwtProvider[],
  headers: Record<string, string>,
  url = '/',
  method = 'GET',
): AuthnResult {
  return authenticate(compileJwt({ providers }), { host: 'app.example.com', ...headers }, url, {
    nowSec: NOW,
    method,
  });
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

/** ok → the principal; refused → the jwt_verify_lib status. */
function outcome(r: AuthnResult): string {
  if (!r.ok) return r.code;
  return r.auth ? `ok:${r.auth.principal}` : 'ok:none';
}

function expectStatus(r: AuthnResult, want: JwtStatus | 'none'): void {
  if (want === 'Ok') expect(outcome(r), JSON.stringify(r)).to.equal(`ok:${ISS}/alice`);
  else if (want === 'none') expect(outcome(r)).to.equal('ok:none');
  else {
    expect(outcome(r)).to.equal(want);
    if (!r.ok) {
      expect(r.message).to.equal(JWT_STATUS[want]);
      expect(r.status).to.equal(want === 'JwtAudienceNotAllowed' ? 403 : 401);
    }
  }
}

describe('proxy JWT verification (RequestAuthentication)', () => {
  describe('every supported algorithm, with keys made by node:crypto', () => {
    for (const alg of ALGS) {
      const kind = keyKindFor(alg);
      it(`${alg}: a token signed with the JWKS key is accepted`, () => {
        const k = key(kind, `${kind}-a`);
        expectStatus(
          run([provider({ jwks: jwks(k) })], bearer(signJwt(alg, k.privateKey, claims(), { kid: k.kid }))),
          'Ok',
        );
      });
      it(`${alg}: a token signed by another key of the same type fails verification`, () => {
        const k = key(kind, `${kind}-a`);
        const other = key(kind, `${kind}-b`);
        const t = signJwt(alg, other.privateKey, claims(), { kid: k.kid });
        expectStatus(run([provider({ jwks: jwks(k) })], bearer(t)), 'JwtVerificationFail');
      });
      it(`${alg}: a payload changed after signing fails verification`, () => {
        const k = key(kind, `${kind}-a`);
        const [h, , s] = signJwt(alg, k.privateKey, claims()).split('.');
        const forged = `${h}.${b64u(JSON.stringify(claims({ sub: 'admin' })))}.${s}`;
        expectStatus(run([provider({ jwks: jwks(k) })], bearer(forged)), 'JwtVerificationFail');
      });
      it(`${alg}: no kid in the token tries every key (the right one last)`, () => {
        const k = key(kind, `${kind}-a`);
        const o1 = key(kind, `${kind}-b`);
        const o2 = key(kind, `${kind}-c`);
        const t = signJwt(alg, k.privateKey, claims());
        expectStatus(run([provider({ jwks: jwks(o1, o2, k) })], bearer(t)), 'Ok');
      });
    }
    it('ES256 with a DER (not raw r||s) signature is refused', () => {
      const k = key('P-256', 'P-256-a');
      const input = `${b64u(JSON.stringify({ alg: 'ES256' }))}.${b64u(JSON.stringify(claims()))}`;
      const der = createHash('sha256').update('x').digest(); // 32 bytes: wrong length for raw form
      expectStatus(
        run([provider({ jwks: jwks(k) })], bearer(`${input}.${b64u(Buffer.concat([der, der, der]))}`)),
        'JwtVerificationFail',
      );
    });
    it('PS256 signature presented as RS256 fails', () => {
      const k = key('rsa', 'rsa-a');
      const ps = signJwt('PS256', k.privateKey, claims()).split('.')[2]!;
      const rsInput = signJwt('RS256', k.privateKey, claims()).split('.').slice(0, 2).join('.');
      expectStatus(run([provider({ jwks: jwks(k) })], bearer(`${rsInput}.${ps}`)), 'JwtVerificationFail');
    });
  });

  describe('refused algorithms and algorithm confusion', () => {
    const rsa = (): TestKey => key('rsa', 'rsa-a');
    const pem = (): Buffer => Buffer.from(rsa().publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const cases: [string, () => string, JwtStatus][] = [
      ['alg none, empty signature', () => signJwt('none', null, claims()), 'JwtHeaderNotImplementedAlg'],
      ['alg None (case)', () => signJwt('None', null, claims()), 'JwtHeaderNotImplementedAlg'],
      [
        'alg none with a signature',
        () => signJwt('none', null, claims()) + 'AAAA',
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'HS256 keyed with the RSA public key PEM (classic confusion)',
        () => signJwt('HS256', pem(), claims()),
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'HS384 keyed with the RSA public key PEM',
        () => signJwt('HS384', pem(), claims()),
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'HS512 keyed with the RSA public key PEM',
        () => signJwt('HS512', pem(), claims()),
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'HS256 keyed with the JWK n',
        () => signJwt('HS256', Buffer.from(String(rsa().jwk.n)), claims()),
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'ES256K (unsupported curve alg)',
        () => signJwt('ES256K', null, claims()),
        'JwtHeaderNotImplementedAlg',
      ],
      ['Ed25519 as alg name', () => signJwt('Ed25519', null, claims()), 'JwtHeaderNotImplementedAlg'],
      [
        'alg missing',
        () => `${b64u('{"typ":"JWT"}')}.${b64u(JSON.stringify(claims()))}.AAAA`,
        'JwtHeaderBadAlg',
      ],
      [
        'alg a number',
        () => `${b64u('{"alg":256}')}.${b64u(JSON.stringify(claims()))}.AAAA`,
        'JwtHeaderBadAlg',
      ],
      ['alg __proto__', () => signJwt('__proto__', null, claims()), 'JwtHeaderNotImplementedAlg'],
      ['alg toString', () => signJwt('toString', null, claims()), 'JwtHeaderNotImplementedAlg'],
    ];
    for (const [name, token, want] of cases)
      it(name, () => expectStatus(run([provider({ jwks: jwks(rsa()) })], bearer(token())), want));

    it('an oct (HMAC) key in the JWKS is never used, even for an HS256 token', () => {
      const secret = Buffer.from('shared-secret-shared-secret-1234');
      const set = JSON.stringify({ keys: [{ kty: 'oct', k: b64u(secret), kid: 'h' }] });
      const c = compileJwt({ providers: [provider({ jwks: set })] });
      expect(c.providers[0]!.keys).to.have.length(0);
      expect(c.warnings.join()).to.contain('symmetric');
      expectStatus(
        run([provider({ jwks: set })], bearer(signJwt('HS256', secret, claims(), { kid: 'h' }))),
        'JwtHeaderNotImplementedAlg',
      );
    });
    const mismatch: [string, TestAlg, Parameters<typeof makeKey>[0], string][] = [
      ['RS256 token, only an EC key', 'RS256', 'P-256', 'P-256-a'],
      ['ES256 token, only an RSA key', 'ES256', 'rsa', 'rsa-a'],
      ['ES256 token, only a P-384 key', 'ES256', 'P-384', 'P-384-a'],
      ['ES384 token, only a P-256 key', 'ES384', 'P-256', 'P-256-a'],
      ['ES512 token, only a P-384 key', 'ES512', 'P-384', 'P-384-a'],
      ['EdDSA token, only an RSA key', 'EdDSA', 'rsa', 'rsa-a'],
      ['PS256 token, only an Ed25519 key', 'PS256', 'ed25519', 'ed25519-a'],
    ];
    for (const [name, alg, kind, kid] of mismatch)
      it(`key type must fit the alg: ${name}`, () => {
        const signer = key(keyKindFor(alg), `${keyKindFor(alg)}-a`);
        const k = key(kind, kid);
        expectStatus(
          run([provider({ jwks: jwks(k) })], bearer(signJwt(alg, signer.privateKey, claims()))),
          'JwksKidAlgMismatch',
        );
      });
    it('a JWK alg other than the token alg is skipped (RS256 key, PS256 token)', () => {
      const k = key('rsa', 'rsa-a');
      const set = jwks({ ...k.jwk, alg: 'RS256' });
      expectStatus(
        run([provider({ jwks: set })], bearer(signJwt('PS256', k.privateKey, claims()))),
        'JwksKidAlgMismatch',
      );
    });
    it('a JWK alg equal to the token alg is used', () => {
      const k = key('rsa', 'rsa-a');
      const set = jwks({ ...k.jwk, alg: 'PS256' });
      expectStatus(run([provider({ jwks: set })], bearer(signJwt('PS256', k.privateKey, claims()))), 'Ok');
    });
  });

  describe('kid selection (jwt_verify_lib: a key is skipped only when both have a kid and they differ)', () => {
    const a = (): TestKey => key('rsa', 'rsa-a');
    const b = (): TestKey => key('rsa', 'rsa-b');
    const cases: [string, () => string, () => string, JwtStatus][] = [
      [
        'kid matches one key',
        () => jwks(b(), a()),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 'rsa-a' }),
        'Ok',
      ],
      [
        'kid matches no key',
        () => jwks(a(), b()),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 'nope' }),
        'JwksKidAlgMismatch',
      ],
      [
        'kid names the wrong key',
        () => jwks(a(), b()),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 'rsa-b' }),
        'JwtVerificationFail',
      ],
      [
        'token kid, key without kid: tried',
        () => jwks({ ...a().jwk, kid: undefined }),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 'x' }),
        'Ok',
      ],
      [
        'no token kid: all keys tried',
        () => jwks(b(), a()),
        () => signJwt('RS256', a().privateKey, claims()),
        'Ok',
      ],
      [
        'two keys share a kid, second is right',
        () => jwks({ ...b().jwk, kid: 'same' }, { ...a().jwk, kid: 'same' }),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 'same' }),
        'Ok',
      ],
      [
        'kid a number',
        () => jwks(a()),
        () => signJwt('RS256', a().privateKey, claims(), { kid: 7 }),
        'JwtHeaderBadKid',
      ],
      [
        'kid null',
        () => jwks(a()),
        () => signJwt('RS256', a().privateKey, claims(), { kid: null }),
        'JwtHeaderBadKid',
      ],
    ];
    for (const [name, set, token, want] of cases)
      it(name, () => expectStatus(run([provider({ jwks: set() })], bearer(token())), want));
  });

  describe('exp / nbf with the 60 s clock skew', () => {
    const cases: [string, Record<string, unknown>, JwtStatus][] = [
      ['exp in the future', { exp: NOW + 1 }, 'Ok'],
      ['exp now', { exp: NOW }, 'Ok'],
      ['exp 60 s ago (inside skew)', { exp: NOW - 60 }, 'Ok'],
      ['exp 61 s ago', { exp: NOW - 61 }, 'JwtExpired'],
      ['exp a day ago', { exp: NOW - 86400 }, 'JwtExpired'],
      ['no exp (Istio does not require one)', { exp: undefined }, 'Ok'],
      ['nbf now', { nbf: NOW }, 'Ok'],
      ['nbf 60 s ahead (inside skew)', { nbf: NOW + 60 }, 'Ok'],
      ['nbf 61 s ahead', { nbf: NOW + 61 }, 'JwtNotYetValid'],
      ['nbf an hour ahead', { nbf: NOW + 3600 }, 'JwtNotYetValid'],
      ['nbf in the past', { nbf: NOW - 3600 }, 'Ok'],
      ['exp a string', { exp: String(NOW + 10) }, 'JwtPayloadParseErrorExpNotInteger'],
      ['nbf a string', { nbf: 'soon' }, 'JwtPayloadParseErrorNbfNotInteger'],
      ['iat a string', { iat: 'now' }, 'JwtPayloadParseErrorIatNotInteger'],
      ['exp null', { exp: null }, 'JwtPayloadParseErrorExpNotInteger'],
      ['exp fractional', { exp: NOW + 0.5 }, 'Ok'],
      ['expired and not yet valid: nbf reported first', { nbf: NOW + 100, exp: NOW - 100 }, 'JwtNotYetValid'],
    ];
    for (const [name, extra, want] of cases)
      it(name, () => {
        const k = key('ed25519', 'ed25519-a');
        expectStatus(
          run([provider({ jwks: jwks(k) })], bearer(signJwt('EdDSA', k.privateKey, claims(extra)))),
          want,
        );
      });
  });

  describe('issuer and audiences', () => {
    const k = (): TestKey => key('P-256', 'P-256-a');
    const cases: [string, Record<string, unknown>, string[] | undefined, JwtStatus][] = [
      ['wrong issuer', { iss: 'https://evil.example.com' }, undefined, 'JwtUnknownIssuer'],
      ['issuer differing by a trailing slash', { iss: `${ISS}/` }, undefined, 'JwtUnknownIssuer'],
      ['issuer differing in case', { iss: ISS.toUpperCase() }, undefined, 'JwtUnknownIssuer'],
      ['no issuer', { iss: undefined }, undefined, 'JwtUnknownIssuer'],
      ['issuer a number', { iss: 5 }, undefined, 'JwtPayloadParseErrorIssNotString'],
      ['sub a number', { sub: 5 }, undefined, 'JwtPayloadParseErrorSubNotString'],
      ['jti a number', { jti: 5 }, undefined, 'JwtPayloadParseErrorJtiNotString'],
      ['audiences unset: any aud', { aud: 'whatever' }, undefined, 'Ok'],
      ['aud matches', { aud: 'api' }, ['api'], 'Ok'],
      ['one aud of a list matches', { aud: ['x', 'api'] }, ['api', 'other'], 'Ok'],
      ['aud does not match: 403', { aud: 'web' }, ['api'], 'JwtAudienceNotAllowed'],
      ['no aud with audiences set: 403', {}, ['api'], 'JwtAudienceNotAllowed'],
      ['empty aud list: 403', { aud: [] }, ['api'], 'JwtAudienceNotAllowed'],
      [
        'aud https:// and trailing slash ignored',
        { aud: 'https://api.example.com/' },
        ['api.example.com'],
        'Ok',
      ],
      ['configured http:// ignored', { aud: 'api.example.com' }, ['http://api.example.com'], 'Ok'],
      ['aud a number', { aud: 5 }, ['api'], 'JwtPayloadParseErrorAudNotString'],
      ['aud list with a number', { aud: ['api', 5] }, ['api'], 'JwtPayloadParseErrorAudNotString'],
      ['aud case matters', { aud: 'API' }, ['api'], 'JwtAudienceNotAllowed'],
    ];
    for (const [name, extra, audiences, want] of cases)
      it(name, () => {
        const p = provider({ jwks: jwks(k()), ...(audiences ? { audiences } : {}) });
        expectStatus(run([p], bearer(signJwt('ES256', k().privateKey, claims(extra)))), want);
      });
    it('an audience refusal is 403, every other refusal 401, with www-authenticate', () => {
      const p = provider({ jwks: jwks(k()), audiences: ['api'] });
      const r = run([p], bearer(signJwt('ES256', k().privateKey, claims({ aud: 'web' }))), '/a/b?x=1');
      expect(r).to.include({ ok: false, status: 403 });
      if (!r.ok)
        expect(r.wwwAuthenticate).to.equal(
          'Bearer realm="http://app.example.com/a/b", error="invalid_token"',
        );
    });
  });

  describe('malformed tokens (each refused with 401 and jwt_verify_lib status)', () => {
    const k = (): TestKey => key('rsa', 'rsa-a');
    const good = (): string[] => signJwt('RS256', k().privateKey, claims()).split('.');
    const cases: [string, () => string, JwtStatus][] = [
      ['not a JWT at all (deadbeef)', () => 'deadbeef', 'JwtBadFormat'],
      ['empty after Bearer', () => '', 'JwtBadFormat'],
      ['two sections', () => good().slice(0, 2).join('.'), 'JwtBadFormat'],
      ['four sections', () => [...good(), 'AAAA'].join('.'), 'JwtBadFormat'],
      ['only dots', () => '..', 'JwtHeaderParseErrorBadJson'],
      [
        'header padded with =',
        () => {
          const g = good();
          return `${g[0]}=.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadBase64',
      ],
      [
        'header in standard base64 (+ and /)',
        () => {
          const g = good();
          return `${Buffer.from('{"alg":"RS256","x":"\u00fb\u00ff"}').toString('base64')}.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadBase64',
      ],
      [
        'header length 4n+1',
        () => {
          const g = good();
          return `${g[0]}A.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadBase64',
      ],
      [
        'header not JSON',
        () => {
          const g = good();
          return `${b64u('{alg:RS256}')}.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadJson',
      ],
      [
        'header a JSON array',
        () => {
          const g = good();
          return `${b64u('["RS256"]')}.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadJson',
      ],
      [
        'header JSON null',
        () => {
          const g = good();
          return `${b64u('null')}.${g[1]}.${g[2]}`;
        },
        'JwtHeaderParseErrorBadJson',
      ],
      [
        'payload with a space',
        () => {
          const g = good();
          return `${g[0]}.${g[1]} .${g[2]}`;
        },
        'JwtPayloadParseErrorBadBase64',
      ],
      [
        'payload with %',
        () => {
          const g = good();
          return `${g[0]}.%${g[1]}.${g[2]}`;
        },
        'JwtPayloadParseErrorBadBase64',
      ],
      [
        'payload non-canonical last char',
        () => {
          const g = good();
          const p = b64u('{"a":1}');
          return `${g[0]}.${p.slice(0, -1)}${String.fromCharCode(p.charCodeAt(p.length - 1) + 1)}.${g[2]}`;
        },
        'JwtPayloadParseErrorBadBase64',
      ],
      [
        'payload not JSON',
        () => {
          const g = good();
          return `${g[0]}.${b64u('sub=alice')}.${g[2]}`;
        },
        'JwtPayloadParseErrorBadJson',
      ],
      [
        'payload a JSON string',
        () => {
          const g = good();
          return `${g[0]}.${b64u('"alice"')}.${g[2]}`;
        },
        'JwtPayloadParseErrorBadJson',
      ],
      [
        'payload empty',
        () => {
          const g = good();
          return `${g[0]}..${g[2]}`;
        },
        'JwtPayloadParseErrorBadJson',
      ],
      [
        'signature with =',
        () => {
          const g = good();
          return `${g[0]}.${g[1]}.${g[2]}==`;
        },
        'JwtSignatureParseErrorBadBase64',
      ],
      [
        'signature with /',
        () => {
          const g = good();
          return `${g[0]}.${g[1]}.${g[2]!.slice(1)}/`;
        },
        'JwtSignatureParseErrorBadBase64',
      ],
      [
        'signature empty',
        () => {
          const g = good();
          return `${g[0]}.${g[1]}.`;
        },
        'JwtVerificationFail',
      ],
      [
        'signature truncated',
        () => {
          const g = good();
          return `${g[0]}.${g[1]}.${g[2]!.slice(0, 40)}`;
        },
        'JwtVerificationFail',
      ],
      [`token of ${MAX_TOKEN_BYTES + 1} bytes`, () => 'a'.repeat(MAX_TOKEN_BYTES + 1), 'JwtTooLarge'],
      ['a 1 MB token', () => `${'a'.repeat(500_000)}.${'b'.repeat(500_000)}.c`, 'JwtTooLarge'],
    ];
    for (const [name, token, want] of cases)
      it(name, () => {
        // Authorization: Bearer takes the JWT characters after the prefix; use a raw header for exact bytes
        const p = provider({ jwks: jwks(k()), fromHeaders: [{ name: 'x-jwt' }] });
        expectStatus(run([p], { 'x-jwt': token() }), want);
      });
    it('a signed token just under the size limit is accepted', () => {
      const t = signJwt(
        'RS256',
        k().privateKey,
        claims({ pad: 'x'.repeat((MAX_TOKEN_BYTES * 3) / 4 - 600) }),
      );
      expect(t.length).to.be.below(MAX_TOKEN_BYTES);
      expectStatus(run([provider({ jwks: jwks(k()) })], bearer(t)), 'Ok');
    });
  });

  describe('token locations (Envoy extractor)', () => {
    const k = (): TestKey => key('ed25519', 'ed25519-a');
    const tok = (): string => signJwt('EdDSA', k().privateKey, claims());
    const bad = 'eyJhbGciOiJub25lIn0.e30.';
    type L = Pick<JwtProvider, 'fromHeaders' | 'fromParams' | 'fromCookies'>;
    const cases: [
      string,
      L,
      (t: string) => { headers: Record<string, string>; url?: string },
      JwtStatus | 'none',
    ][] = [
      ['default: Authorization Bearer', {}, (t) => ({ headers: bearer(t) }), 'Ok'],
      ['default: ?access_token=', {}, (t) => ({ headers: {}, url: `/p?a=1&access_token=${t}` }), 'Ok'],
      [
        'default: lowercase bearer is not the prefix: no token',
        {},
        (t) => ({ headers: { authorization: `bearer ${t}` } }),
        'none',
      ],
      [
        'default: Basic credentials: no token',
        {},
        () => ({ headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
        'none',
      ],
      [
        'default: prefix found later in the value (Envoy finds it anywhere)',
        {},
        (t) => ({ headers: { authorization: `Foo, Bearer ${t}` } }),
        'Ok',
      ],
      [
        'default: token ends at the first non-JWT character',
        {},
        (t) => ({ headers: { authorization: `Bearer ${t}, more` } }),
        'Ok',
      ],
      [
        'default: invalid token in Authorization: 401',
        {},
        () => ({ headers: bearer(bad) }),
        'JwtHeaderNotImplementedAlg',
      ],
      [
        'default: invalid access_token: 401',
        {},
        () => ({ headers: {}, url: `/?access_token=${bad}` }),
        'JwtHeaderNotImplementedAlg',
      ],
      ['default: no token anywhere', {}, () => ({ headers: {} }), 'none'],
      [
        'default: a token in a cookie is not looked at',
        {},
        () => ({ headers: { cookie: `access_token=${bad}` } }),
        'none',
      ],
      [
        'fromHeaders with prefix',
        { fromHeaders: [{ name: 'X-Auth', prefix: 'Token ' }] },
        (t) => ({ headers: { 'x-auth': `Token ${t}` } }),
        'Ok',
      ],
      [
        'fromHeaders with prefix: value without it is not a token',
        { fromHeaders: [{ name: 'x-auth', prefix: 'Token ' }] },
        (t) => ({ headers: { 'x-auth': t } }),
        'none',
      ],
      [
        'fromHeaders without prefix: whole value',
        { fromHeaders: [{ name: 'x-auth' }] },
        (t) => ({ headers: { 'x-auth': t } }),
        'Ok',
      ],
      [
        'fromHeaders without prefix: Bearer text makes it invalid',
        { fromHeaders: [{ name: 'x-auth' }] },
        (t) => ({ headers: { 'x-auth': `Bearer ${t}` } }),
        'JwtHeaderParseErrorBadBase64',
      ],
      [
        'fromHeaders set: Authorization is no longer looked at',
        { fromHeaders: [{ name: 'x-auth' }] },
        () => ({ headers: bearer(bad) }),
        'none',
      ],
      [
        'fromHeaders set: access_token is no longer looked at',
        { fromHeaders: [{ name: 'x-auth' }] },
        () => ({ headers: {}, url: `/?access_token=${bad}` }),
        'none',
      ],
      ['fromParams', { fromParams: ['token'] }, (t) => ({ headers: {}, url: `/x?token=${t}` }), 'Ok'],
      [
        'fromParams: first value of a repeated param',
        { fromParams: ['token'] },
        (t) => ({ headers: {}, url: `/x?token=${t}&token=${bad}` }),
        'Ok',
      ],
      [
        'fromParams: percent-encoded token is decoded',
        { fromParams: ['token'] },
        (t) => ({ headers: {}, url: `/x?token=${t.replace(/\./g, '%2E')}` }),
        'Ok',
      ],
      [
        'fromParams: another param name is ignored',
        { fromParams: ['token'] },
        () => ({ headers: {}, url: `/x?tok=${bad}` }),
        'none',
      ],
      [
        'fromCookies',
        { fromCookies: ['session'] },
        (t) => ({ headers: { cookie: `a=b; session=${t}; c=d` } }),
        'Ok',
      ],
      [
        'fromCookies: quoted value',
        { fromCookies: ['session'] },
        (t) => ({ headers: { cookie: `session="${t}"` } }),
        'Ok',
      ],
      [
        'fromCookies: name must match exactly',
        { fromCookies: ['session'] },
        () => ({ headers: { cookie: `xsession=${bad}` } }),
        'none',
      ],
      [
        'fromCookies: invalid cookie token: 401',
        { fromCookies: ['session'] },
        () => ({ headers: { cookie: `session=${bad}` } }),
        'JwtHeaderNotImplementedAlg',
      ],
    ];
    for (const [name, loc, req, want] of cases)
      it(name, () => {
        const { headers, url } = req(tok());
        expectStatus(run([provider({ jwks: jwks(k()), ...loc })], headers, url ?? '/'), want);
      });
  });

  describe('what goes upstream', () => {
    const k = (): TestKey => key('ed25519', 'ed25519-a');
    const ok = (r: AuthnResult): Extract<AuthnResult, { ok: true }> => {
      expect(r.ok, JSON.stringify(r)).to.equal(true);
      return r as Extract<AuthnResult, { ok: true }>;
    };
    it('forwardOriginalToken unset: the token header is removed', () => {
      const r = ok(run([provider({ jwks: jwks(k()) })], bearer(signJwt('EdDSA', k().privateKey, claims()))));
      expect(r.stripHeaders).to.include('authorization');
    });
    it('forwardOriginalToken true: the token header stays', () => {
      const r = ok(
        run(
          [provider({ jwks: jwks(k()), forwardOriginalToken: true })],
          bearer(signJwt('EdDSA', k().privateKey, claims())),
        ),
      );
      expect(r.stripHeaders).to.not.include('authorization');
    });
    it('no token: nothing removed but forged output headers', () => {
      const r = ok(
        run([provider({ jwks: jwks(k()), outputPayloadToHeader: 'X-Jwt-Payload' })], {
          'x-jwt-payload': 'forged',
        }),
      );
      expect(r.auth).to.equal(undefined);
      expect(r.stripHeaders).to.deep.equal(['x-jwt-payload']);
    });
    it('outputPayloadToHeader carries the base64url payload', () => {
      const t = signJwt('EdDSA', k().privateKey, claims());
      const r = ok(run([provider({ jwks: jwks(k()), outputPayloadToHeader: 'x-jwt-payload' })], bearer(t)));
      expect(r.addHeaders).to.deep.equal([['x-jwt-payload', t.split('.')[1]]]);
      expect(r.stripHeaders).to.include('x-jwt-payload');
    });
    it('outputClaimToHeaders: strings, numbers, booleans and nested claims; others skipped', () => {
      const t = signJwt(
        'EdDSA',
        k().privateKey,
        claims({
          group: 'dev',
          n: 42,
          f: 1.5,
          admin: true,
          org: { team: { name: 'core' } },
          list: ['a'],
          obj: { a: 1 },
          nl: 'a\r\nx-evil: 1',
          empty: '',
        }),
      );
      const out = [
        'group',
        'n',
        'f',
        'admin',
        'org.team.name',
        'list',
        'obj',
        'nl',
        'missing',
        'empty',
        'org.nope.x',
      ].map((claim, i) => ({ header: `x-c${i}`, claim }));
      const r = ok(run([provider({ jwks: jwks(k()), outputClaimToHeaders: out })], bearer(t)));
      expect(r.addHeaders).to.deep.equal([
        ['x-c0', 'dev'],
        ['x-c1', '42'],
        ['x-c2', '1.5'],
        ['x-c3', 'true'],
        ['x-c4', 'core'],
      ]);
      expect(r.stripHeaders).to.include.members(out.map((o) => o.header));
    });
    it('RequestAuth: principal iss/sub, audiences, presenter (azp), claims', () => {
      const t = signJwt(
        'EdDSA',
        k().privateKey,
        claims({ aud: ['a', 'b'], azp: 'web-client', groups: ['g'] }),
      );
      const r = ok(run([provider({ jwks: jwks(k()) })], bearer(t)));
      expect(r.auth).to.deep.include({
        principal: `${ISS}/alice`,
        audiences: ['a', 'b'],
        presenter: 'web-client',
      });
      expect(r.auth!.claims).to.deep.include({ groups: ['g'], sub: 'alice' });
    });
    it('RequestAuth: a single aud string becomes a list; no azp, no presenter', () => {
      const r = ok(
        run([provider({ jwks: jwks(k()) })], bearer(signJwt('EdDSA', k().privateKey, claims({ aud: 'a' })))),
      );
      expect(r.auth!.audiences).to.deep.equal(['a']);
      expect(r.auth).to.not.have.property('presenter');
    });
    it('CORS preflight bypasses JWT checks (Istio sets bypass_cors_preflight)', () => {
      const r = run(
        [provider({ jwks: jwks(k()) })],
        { ...bearer('garbage'), origin: 'https://x', 'access-control-request-method': 'GET' },
        '/',
        'OPTIONS',
      );
      expect(outcome(r)).to.equal('ok:none');
    });
    it('OPTIONS without CORS headers is checked', () => {
      expect(outcome(run([provider({ jwks: jwks(k()) })], bearer('garbage'), '/', 'OPTIONS'))).to.equal(
        'JwtBadFormat',
      );
    });
  });

  describe('several providers (several jwtRules, merged RequestAuthentications)', () => {
    const A = 'https://a.example.com';
    const B = 'https://b.example.com';
    const ka = (): TestKey => key('P-256', 'P-256-a');
    const kb = (): TestKey => key('P-384', 'P-384-a');
    const pa = (x: Partial<JwtProvider> = {}): JwtProvider => ({ issuer: A, jwks: jwks(ka()), ...x });
    const pb = (x: Partial<JwtProvider> = {}): JwtProvider => ({ issuer: B, jwks: jwks(kb()), ...x });
    const ta = (x = {}): string => signJwt('ES256', ka().privateKey, { ...claims(x), iss: A });
    const tb = (x = {}): string => signJwt('ES384', kb().privateKey, { ...claims(x), iss: B });
    it('a token of the second issuer', () =>
      expect(outcome(run([pa(), pb()], bearer(tb())))).to.equal(`ok:${B}/alice`));
    it('a token of the first issuer', () =>
      expect(outcome(run([pa(), pb()], bearer(ta())))).to.equal(`ok:${A}/alice`));
    it('a token of an issuer no rule has: 401 Jwt issuer is not configured', () => {
      const t = signJwt('ES256', ka().privateKey, { ...claims(), iss: 'https://c.example.com' });
      expect(outcome(run([pa(), pb()], bearer(t)))).to.equal('JwtUnknownIssuer');
    });
    it("a token of B in A's own header is not B's: 401", () => {
      expect(
        outcome(
          run([pa({ fromHeaders: [{ name: 'x-a' }] }), pb({ fromHeaders: [{ name: 'x-b' }] })], {
            'x-a': tb(),
          }),
        ),
      ).to.equal('JwtUnknownIssuer');
    });
    it("A valid in its header, garbage in B's header: A's requirement is met (Envoy requires_any)", () => {
      expect(
        outcome(
          run([pa({ fromHeaders: [{ name: 'x-a' }] }), pb({ fromHeaders: [{ name: 'x-b' }] })], {
            'x-a': ta(),
            'x-b': 'garbage',
          }),
        ),
      ).to.equal(`ok:${A}/alice`);
    });
    it('valid A in Authorization and garbage in access_token (both default locations): 401', () => {
      expect(outcome(run([pa(), pb()], bearer(ta()), '/?access_token=garbage'))).to.equal('JwtBadFormat');
    });
    it('valid A in Authorization and expired B in access_token: 401 Jwt is expired', () => {
      expect(outcome(run([pa(), pb()], bearer(ta()), `/?access_token=${tb({ exp: NOW - 1000 })}`))).to.equal(
        'JwtExpired',
      );
    });
    it('valid A and valid B in the shared default locations: passes, both stripped', () => {
      const r = run([pa(), pb()], bearer(ta()), `/?access_token=${tb()}`);
      expect(outcome(r)).to.equal(`ok:${A}/alice`);
    });
    it('two rules with the same issuer: either key set verifies', () => {
      const other = key('P-256', 'P-256-b');
      const t = signJwt('ES256', other.privateKey, { ...claims(), iss: A });
      expect(outcome(run([pa(), { issuer: A, jwks: jwks(other) }], bearer(t)))).to.equal(`ok:${A}/alice`);
    });
    it('the refusal names the issuer the token claimed (metrics label)', () => {
      const r = run([pa(), pb()], bearer(tb({ exp: NOW - 1000 })));
      expect(r).to.include({ ok: false, issuer: B, code: 'JwtExpired' });
    });
  });

  describe('JWKS handling (imported once per config)', () => {
    const k = (): TestKey => key('rsa', 'rsa-a');
    const t = (): string => signJwt('RS256', k().privateKey, claims());
    const cases: [string, () => Partial<JwtProvider> & { jwks: string }, JwtStatus][] = [
      ['JWKS not JSON: every token refused', () => ({ jwks: 'not json' }), 'JwksNoValidKeys'],
      ['JWKS without keys', () => ({ jwks: '{}' }), 'JwksNoValidKeys'],
      ['JWKS with an empty key list', () => ({ jwks: '{"keys":[]}' }), 'JwksNoValidKeys'],
      [
        'weftd could not fetch jwksUri: fails closed',
        () => ({ jwks: '{"keys":[]}', jwksError: 'connect ECONNREFUSED' }),
        'JwksFetchFail',
      ],
      [
        'a broken key next to a good one',
        () => ({
          jwks: jwks({ kty: 'RSA', n: 'AA', e: 'AQAB' }, { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, k()),
        }),
        'Ok',
      ],
      [
        'a JWK with its private part: only the public part is used',
        () => ({ jwks: jwks(k().privateKey.export({ format: 'jwk' }) as Record<string, unknown>) }),
        'Ok',
      ],
      ['unknown kty', () => ({ jwks: jwks({ kty: 'XYZ' }) }), 'JwksNoValidKeys'],
      ['Ed448 is not supported', () => ({ jwks: jwks(makeKeyEd448()) }), 'JwksNoValidKeys'],
    ];
    for (const [name, p, want] of cases)
      it(name, () => expectStatus(run([provider(p())], bearer(t())), want));
    it(`keys beyond the cap are dropped with a warning`, () => {
      const many = Array.from({ length: 70 }, () => k().jwk);
      const c = compileJwt({ providers: [provider({ jwks: jwks(...many) })] });
      expect(c.providers[0]!.keys).to.have.length(64);
      expect(c.warnings.join()).to.contain('first 64');
    });
    it('no token and broken keys: the request still passes (no token is not a failure)', () => {
      expectStatus(run([provider({ jwks: 'x' })], {}), 'none');
    });
  });

  describe('decodeBase64Url is strict', () => {
    const cases: [string, string | null][] = [
      ['', ''],
      ['YQ', 'a'],
      ['YWI', 'ab'],
      ['YWJj', 'abc'],
      ['YQ==', null],
      ['YR', null], // non-canonical trailing bits
      ['Y', null],
      ['Y+8', null],
      ['Y/8', null],
      ['_-8', '\u00ff\u00ef\u00bc'.length ? Buffer.from('_-8', 'base64url').toString('latin1') : null],
      ['YQ\n', null],
    ];
    for (const [input, want] of cases)
      it(JSON.stringify(input), () => {
        const got = decodeBase64Url(input);
        expect(got === null ? null : got.toString('latin1')).to.equal(want);
      });
  });

  describe('normalizeAudience (jwt_verify_lib CheckAudience)', () => {
    const cases: [string, string][] = [
      ['api', 'api'],
      ['https://api/', 'api'],
      ['http://api', 'api'],
      ['api/', 'api'],
      ['HTTPS://api', 'HTTPS://api'],
      ['https://api/v1/', 'api/v1'],
    ];
    for (const [a, want] of cases) it(`${a} → ${want}`, () => expect(normalizeAudience(a)).to.equal(want));
  });

  describe('the proxy config jwt block is validated', () => {
    const base = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: '1',
      listeners: [],
      clusters: [],
    };
    const cases: [string, unknown, string | null][] = [
      ['absent', undefined, null],
      ['valid', { providers: [{ issuer: 'i', jwks: '{}' }] }, null],
      ['not an object', 'x', 'jwt'],
      ['providers not a list', { providers: {} }, 'jwt.providers'],
      ['no issuer', { providers: [{ jwks: '{}' }] }, 'jwt.providers[0].issuer'],
      ['no jwks', { providers: [{ issuer: 'i' }] }, 'jwt.providers[0].jwks'],
      [
        'bad header name',
        { providers: [{ issuer: 'i', jwks: '{}', fromHeaders: [{ name: 'a b' }] }] },
        'jwt.providers[0].fromHeaders[0].name',
      ],
      [
        'bad output header',
        { providers: [{ issuer: 'i', jwks: '{}', outputPayloadToHeader: 'x\ny' }] },
        'jwt.providers[0].outputPayloadToHeader',
      ],
      [
        'bad claim header',
        { providers: [{ issuer: 'i', jwks: '{}', outputClaimToHeaders: [{ header: '', claim: 'a' }] }] },
        'jwt.providers[0].outputClaimToHeaders[0].header',
      ],
      [
        'empty param',
        { providers: [{ issuer: 'i', jwks: '{}', fromParams: [''] }] },
        'jwt.providers[0].fromParams',
      ],
      [
        'forward not boolean',
        { providers: [{ issuer: 'i', jwks: '{}', forwardOriginalToken: 'yes' }] },
        'jwt.providers[0].forwardOriginalToken',
      ],
    ];
    for (const [name, jwt, path] of cases)
      it(name, () => {
        const problems = validateProxyConfig({ ...base, ...(jwt !== undefined ? { jwt } : {}) });
        if (path === null) expect(problems).to.deep.equal([]);
        else expect(problems.map((p) => p.path)).to.include(path);
      });
  });
});

function makeKeyEd448(): Record<string, unknown> {
  return makeKeyRaw();
}
function makeKeyRaw(): Record<string, unknown> {
  // an Ed448 public key: a valid OKP JWK the proxy must not accept
  return { kty: 'OKP', crv: 'Ed448', x: b64u(Buffer.alloc(57, 1)) };
}

describe('verified-token cache (Envoy jwt_cache)', () => {
  it('a cached token is still refused once expired, and the cache is bounded', () => {
    const k = makeKey('ed25519', 'c');
    const c = compileJwt({ providers: [{ issuer: ISS, jwks: jwks(k) }] });
    const t = signJwt('EdDSA', k.privateKey, { iss: ISS, sub: 'alice', exp: NOW + 10 });
    const at = (nowSec: number): string => {
      const r = authenticate(c, { authorization: `Bearer ${t}` }, '/', { nowSec });
      return r.ok ? 'ok' : r.code;
    };
    expect(at(NOW)).to.equal('ok');
    expect(c.providers[0]!.verified.has(t)).to.equal(true);
    expect(at(NOW + 71)).to.equal('JwtExpired');
    for (let i = 0; i < 150; i++) {
      const ti = signJwt('EdDSA', k.privateKey, { iss: ISS, sub: `u${i}` });
      authenticate(c, { authorization: `Bearer ${ti}` }, '/', { nowSec: NOW });
    }
    expect(c.providers[0]!.verified.size).to.equal(100);
  });
  it('a cached token is not parsed again (its parse is reused), and its checks still run', () => {
    const k = makeKey('ed25519', 'c');
    const c = compileJwt({ providers: [{ issuer: ISS, audiences: ['api'], jwks: jwks(k) }] });
    const t = signJwt('EdDSA', k.privateKey, { iss: ISS, sub: 'alice', aud: 'api', exp: NOW + 10 });
    const auth = (nowSec: number) => authenticate(c, { authorization: `Bearer ${t}` }, '/', { nowSec });
    const first = auth(NOW);
    const second = auth(NOW);
    if (!first.ok || !second.ok) throw new Error('expected the token to verify');
    expect(second.auth!.claims).to.equal(first.auth!.claims); // the same object: no new parse
    expect(second.auth!.principal).to.equal(`${ISS}/alice`);
    expect(auth(NOW + 71)).to.include({ ok: false, code: 'JwtExpired' });
    // another config (a new compile) has its own cache: parsed afresh
    const other = compileJwt({ providers: [{ issuer: ISS, audiences: ['other'], jwks: jwks(k) }] });
    expect(authenticate(other, { authorization: `Bearer ${t}` }, '/', { nowSec: NOW })).to.include({
      ok: false,
      code: 'JwtAudienceNotAllowed',
    });
  });
  it('a forged token never enters the cache', () => {
    const k = makeKey('ed25519', 'c');
    const c = compileJwt({ providers: [{ issuer: ISS, jwks: jwks(k) }] });
    const forged = signJwt('EdDSA', makeKey('ed25519', 'x').privateKey, { iss: ISS, sub: 'a' });
    authenticate(c, { authorization: `Bearer ${forged}` }, '/', { nowSec: NOW });
    expect(c.providers[0]!.verified.size).to.equal(0);
  });
});
