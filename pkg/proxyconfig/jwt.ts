/**
 * The proxy config's `jwt` block: the RequestAuthentications that select a proxy, merged and
 * compiled by weftd (pkg/translate/requestauthn.ts), one provider per `jwtRules[]` entry in
 * Istio's order. JWKS always arrive inline: a `jwksUri` is fetched by weftd (as istiod does) and
 * its keys pushed here; when weftd has no good keys for it, `jwks` has no keys and `jwksError`
 * says why, and the proxy refuses every token of that issuer (Istio pushes a fake JWKS for the
 * same effect: fail closed, never accept).
 */

export interface JwtAuthn {
  providers: JwtProvider[];
  /**
   * HTTP listeners whose requests are checked before routing; absent: all (gateways). weftd gives
   * sidecars `[]`: their outbound listener carries the app's own requests, and the inbound side
   * calls the verifier itself.
   */
  listeners?: string[];
}

export interface JwtTokenHeader {
  /** Header name (any case; the proxy lowercases it). */
  name: string;
  /** Text before the token in the header value, e.g. `Bearer ` (case-sensitive, as Envoy). */
  prefix?: string;
}

export interface JwtProvider {
  issuer: string;
  /** Accepted `aud` values; absent or empty: the audience is not checked. */
  audiences?: string[];
  /** A JSON Web Key Set (RFC 7517) as JSON text. */
  jwks: string;
  /** Why `jwks` has no keys (weftd could not fetch `jwksUri`): tokens of this issuer get 401. */
  jwksError?: string;
  /** Where the token is; all three absent: `Authorization: Bearer <token>` and `?access_token=`. */
  fromHeaders?: JwtTokenHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  /** Default false: the header the token came in is removed before forwarding. */
  forwardOriginalToken?: boolean;
  /** Header that carries the verified payload (base64url) upstream. */
  outputPayloadToHeader?: string;
  /** Claims (a `.` path for nested ones) copied to headers; string, number and boolean claims only. */
  outputClaimToHeaders?: { header: string; claim: string }[];
  /** Top-level claims split on spaces for policies, besides `scope` and `permission` (always). */
  spaceDelimitedClaims?: string[];
  /** What produced it, e.g. `RequestAuthentication demo/jwt jwtRules[0]`. */
  source?: string;
}

export interface JwtConfigProblem {
  path: string;
  message: string;
}

/** A limit per proxy: more providers than this is a translation mistake, not a real mesh. */
export const MAX_JWT_PROVIDERS = 256;
/** Keys per provider the proxy imports; a token without `kid` may be tried against each. */
export const MAX_JWKS_KEYS = 64;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

/** Structural checks of the block (validate.ts calls it); JWKS contents are judged by the proxy. */
export function validateJwtBlock(v: unknown): JwtConfigProblem[] {
  const out: JwtConfigProblem[] = [];
  if (v === undefined) return out;
  const fail = (path: string, message: string): void => void out.push({ path, message });
  if (!isObj(v)) return [{ path: 'jwt', message: 'must be an object with providers' }];
  if (!Array.isArray(v.providers)) return [{ path: 'jwt.providers', message: 'must be a list' }];
  if (v.listeners !== undefined && (!Array.isArray(v.listeners) || !v.listeners.every(isStr)))
    fail('jwt.listeners', 'must be a list of listener names');
  if (v.providers.length > MAX_JWT_PROVIDERS)
    fail('jwt.providers', `at most ${MAX_JWT_PROVIDERS} providers, got ${v.providers.length}`);
  v.providers.forEach((p: unknown, i) => {
    const at = `jwt.providers[${i}]`;
    if (!isObj(p)) return fail(at, 'must be an object');
    if (!isStr(p.issuer) || p.issuer === '') fail(`${at}.issuer`, 'must be a non-empty string');
    if (!isStr(p.jwks)) fail(`${at}.jwks`, 'must be a JWKS as JSON text');
    if (p.jwksError !== undefined && !isStr(p.jwksError)) fail(`${at}.jwksError`, 'must be a string');
    const strList = (key: string): void => {
      const l = p[key];
      if (l === undefined) return;
      if (!Array.isArray(l) || !l.every((s) => isStr(s) && s !== ''))
        fail(`${at}.${key}`, 'must be a list of non-empty strings');
    };
    strList('audiences');
    strList('fromParams');
    strList('fromCookies');
    if (p.fromHeaders !== undefined) {
      if (!Array.isArray(p.fromHeaders)) fail(`${at}.fromHeaders`, 'must be a list');
      else
        p.fromHeaders.forEach((h: unknown, j) => {
          if (!isObj(h) || !isStr(h.name) || !HEADER_NAME.test(h.name))
            fail(`${at}.fromHeaders[${j}].name`, 'must be a header name');
          else if (h.prefix !== undefined && !isStr(h.prefix))
            fail(`${at}.fromHeaders[${j}].prefix`, 'must be a string');
        });
    }
    if (p.forwardOriginalToken !== undefined && typeof p.forwardOriginalToken !== 'boolean')
      fail(`${at}.forwardOriginalToken`, 'must be a boolean');
    if (
      p.outputPayloadToHeader !== undefined &&
      (!isStr(p.outputPayloadToHeader) || !HEADER_NAME.test(p.outputPayloadToHeader))
    )
      fail(`${at}.outputPayloadToHeader`, 'must be a header name');
    if (p.outputClaimToHeaders !== undefined) {
      if (!Array.isArray(p.outputClaimToHeaders)) fail(`${at}.outputClaimToHeaders`, 'must be a list');
      else
        p.outputClaimToHeaders.forEach((o: unknown, j) => {
          const q = `${at}.outputClaimToHeaders[${j}]`;
          if (!isObj(o) || !isStr(o.header) || !HEADER_NAME.test(o.header))
            fail(`${q}.header`, 'must be a header name');
          else if (!isStr(o.claim) || o.claim === '') fail(`${q}.claim`, 'must be a non-empty string');
        });
    }
    if (p.spaceDelimitedClaims !== undefined) {
      if (!Array.isArray(p.spaceDelimitedClaims) || p.spaceDelimitedClaims.length > 64)
        fail(`${at}.spaceDelimitedClaims`, 'must be a list of at most 64 claim names');
      else
        p.spaceDelimitedClaims.forEach((c: unknown, j) => {
          if (!isStr(c) || c === '') fail(`${at}.spaceDelimitedClaims[${j}]`, 'must be a non-empty string');
        });
    }
  });
  return out;
}
