/**
 * RequestAuthentication in the proxy: Envoy's jwt_authn filter as Istio configures it, with
 * node:crypto only (ADR 0009).
 *
 * Istio gives every workload one requirement: `requires_any` of each provider (one per jwtRule)
 * plus `allow_missing`. In effect:
 * - no token in any configured location: the request passes with no request principal
 *   (AuthorizationPolicy decides what that means);
 * - a provider whose locations hold tokens that are all its issuer's and all valid: the request
 *   passes with that token's principal (`<iss>/<sub>`), the first such provider in rule order;
 * - otherwise every token found must be valid for an issuer configured at its location, else the
 *   request is refused: 401 with Envoy's message and `www-authenticate`, or 403 when only the
 *   audience is wrong (Envoy's JwtAudienceNotAllowed). Envoy's allow_missing pass reports only
 *   the status of the last token it checks; here any invalid token refuses (fail closed).
 *
 * Verification follows jwt_verify_lib: JWS compact form with strict base64url (no padding, no
 * non-canonical trailing bits), alg RS/PS/ES 256/384/512 and EdDSA (Ed25519) — `none` and HMAC
 * are refused, so a public key can never be used as an HMAC secret; a key is tried when its `kid`
 * and `alg` (where both sides have one) and its type/curve fit the token's alg; exp/nbf with 60 s
 * of clock skew; `iss` must be the provider's; `aud` must meet `audiences` when set (scheme and
 * trailing `/` ignored, as CheckAudience does). CORS preflights bypass it (Istio sets
 * bypass_cors_preflight). Keys are imported once per config (compileJwt), never per request.
 *
 * Cost limits: a token above MAX_TOKEN_BYTES is refused before any decoding; a request yields at
 * most one token per configured location; a token is parsed once per request; at most
 * MAX_JWKS_KEYS keys per issuer are imported, so one token costs at most that many signature
 * checks (a token with a `kid` usually one). Like Envoy's jwt_cache, the last 100 tokens whose
 * signature verified are remembered per provider (per config version) with their parse, so a
 * cached token is neither decoded nor verified again (the parse is shared: read-only); exp, nbf
 * and aud are still checked on every request.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { MAX_JWKS_KEYS, type JwtAuthn, type JwtProvider } from '../../pkg/proxyconfig/jwt.js';

/** What AuthorizationPolicy reads as `request.auth.*` (its engine takes it as `attrs.auth`). */
export interface RequestAuth {
  /** `<iss>/<sub>`, Istio's request principal. */
  principal: string;
  audiences: string[];
  /** The `azp` claim. */
  presenter?: string;
  claims: Record<string, unknown>;
}

/** Envoy's header size limit is 60 KiB; a JWT above 16 KiB is refused unparsed (docs/limits.md). */
export const MAX_TOKEN_BYTES = 16 * 1024;
/** jwt_verify_lib's default clock skew. */
export const CLOCK_SKEW_SECONDS = 60;

/** jwt_verify_lib's status strings (what Envoy puts in the 401 body). */
export const JWT_STATUS = {
  JwtMissed: 'Jwt is missing',
  JwtTooLarge: `Jwt is larger than ${MAX_TOKEN_BYTES} bytes`,
  JwtExpired: 'Jwt is expired',
  JwtNotYetValid: 'Jwt not yet valid',
  JwtBadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  JwtHeaderParseErrorBadBase64: 'Jwt header is an invalid Base64url encoded',
  JwtHeaderParseErrorBadJson: 'Jwt header is an invalid JSON',
  JwtHeaderBadAlg: 'Jwt header [alg] field is required and must be a string',
  JwtHeaderNotImplementedAlg: 'Jwt header [alg] is not supported',
  JwtHeaderBadKid: 'Jwt header [kid] field is not a string',
  JwtPayloadParseErrorBadBase64: 'Jwt payload is an invalid Base64url encoded',
  JwtPayloadParseErrorBadJson: 'Jwt payload is an invalid JSON',
  JwtPayloadParseErrorIssNotString: 'Jwt payload [iss] field is not a string',
  JwtPayloadParseErrorSubNotString: 'Jwt payload [sub] field is not a string',
  JwtPayloadParseErrorIatNotInteger: 'Jwt payload [iat] field is not an integer',
  JwtPayloadParseErrorNbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  JwtPayloadParseErrorExpNotInteger: 'Jwt payload [exp] field is not an integer',
  JwtPayloadParseErrorJtiNotString: 'Jwt payload [jti] field is not a string',
  JwtPayloadParseErrorAudNotString: 'Jwt payload [aud] field is not a string or string list',
  JwtSignatureParseErrorBadBase64: 'Jwt signature is an invalid Base64url encoded',
  JwtUnknownIssuer: 'Jwt issuer is not configured',
  JwtAudienceNotAllowed: 'Audiences in Jwt are not allowed',
  JwtVerificationFail: 'Jwt verification fails',
  JwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksNoValidKeys: "Jwks doesn't have valid keys",
  JwksFetchFail: 'Jwks remote fetch is failed',
} as const;
export type JwtStatus = keyof typeof JWT_STATUS | 'Ok';

export type AuthnResult =
  | {
      ok: true;
      /** Absent: no token (the request has no request principal). */
      auth?: RequestAuth;
      /** Lowercase names of headers to remove before routing and forwarding. */
      stripHeaders: string[];
      /** Headers to add (after stripping): payload and claim outputs. */
      addHeaders: [string, string][];
      /** The issuer that authenticated the request (metrics). */
      issuer?: string;
    }
  | {
      ok: false;
      status: 401 | 403;
      /** Envoy's status text, e.g. `Jwt is expired`. */
      message: string;
      code: Exclude<JwtStatus, 'Ok'>;
      /** `Bearer realm="…", error="invalid_token"`, as Envoy sends. */
      wwwAuthenticate: string;
      /** The configured issuer the failing token claimed, if any (metrics). */
      issuer?: string;
    };

type Alg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';
const ALGS: Readonly<
  Record<
    string,
    { kty: 'RSA' | 'EC' | 'OKP'; hash: string | null; pss?: true; crv?: string; sigLen?: number }
  >
> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256', sigLen: 64 },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384', sigLen: 96 },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521', sigLen: 132 },
  EdDSA: { kty: 'OKP', hash: null, crv: 'Ed25519', sigLen: 64 },
};

interface CompiledKey {
  kid: string | null;
  alg: string | null;
  kty: 'RSA' | 'EC' | 'OKP';
  crv: string | null;
  key: KeyObject;
}

interface Location {
  kind: 'header' | 'param' | 'cookie';
  name: string;
  prefix: string;
  /** Issuers of the providers that declared this location. */
  issuers: Set<string>;
}

interface CompiledProvider {
  issuer: string;
  audiences: Set<string> | null;
  keys: CompiledKey[];
  jwksError: string | null;
  forward: boolean;
  payloadHeader: string | null;
  claimHeaders: { header: string; path: string[] }[];
  /** Top-level claims whose string value AuthorizationPolicy sees as its space-separated words. */
  spaceDelimited: string[];
  /** Indexes into CompiledJwt.locations. */
  locations: number[];
  source: string;
  /**
   * Tokens whose signature verified and their parse (Envoy's jwt_cache: 100 per provider); time
   * and aud are re-checked.
   */
  verified: Map<string, ParsedJwt>;
}

/** Envoy's default jwt_cache size per provider. */
export const JWT_CACHE_SIZE = 100;

export interface CompiledJwt {
  providers: CompiledProvider[];
  locations: Location[];
  /** Output headers a client must not be able to forge: removed from every request. */
  sanitize: string[];
  /** Listeners the routing hook checks; null: all. */
  listeners: Set<string> | null;
  /** Problems found while importing keys (logged by the caller). */
  warnings: string[];
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url (RFC 7515 §2): no padding, no other alphabet, canonical last character. */
export function decodeBase64Url(s: string): Buffer | null {
  if (!B64URL.test(s) || s.length % 4 === 1) return null;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : null;
}

/** jwt_verify_lib's CheckAudience: `http(s)://` and one trailing `/` do not count. */
export function normalizeAudience(a: string): string {
  let s = a;
  if (s.startsWith('http://')) s = s.slice(7);
  else if (s.startsWith('https://')) s = s.slice(8);
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

function importKeys(jwks: string, source: string, warnings: string[]): CompiledKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(jwks);
  } catch {
    warnings.push(`${source}: jwks is not JSON; every token of this issuer will be refused`);
    return [];
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) {
    warnings.push(`${source}: jwks has no "keys" list; every token of this issuer will be refused`);
    return [];
  }
  const out: CompiledKey[] = [];
  list.forEach((k: unknown, i) => {
    if (out.length >= MAX_JWKS_KEYS) {
      if (out.length === MAX_JWKS_KEYS && i === MAX_JWKS_KEYS)
        warnings.push(`${source}: only the first ${MAX_JWKS_KEYS} usable keys of the JWKS are used`);
      return;
    }
    const key = importKey(k);
    if (typeof key === 'string') warnings.push(`${source}: jwks key ${i} skipped: ${key}`);
    else out.push(key);
  });
  if (out.length === 0)
    warnings.push(`${source}: jwks has no usable key; every token of this issuer will be refused`);
  return out;
}

const str = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** One JWK → an imported public key, or why not. Private members are never passed on. */
function importKey(k: unknown): CompiledKey | string {
  if (typeof k !== 'object' || k === null) return 'not an object';
  const j = k as Record<string, unknown>;
  if (j.kid !== undefined && typeof j.kid !== 'string') return 'kid is not a string';
  if (j.alg !== undefined && typeof j.alg !== 'string') return 'alg is not a string';
  let pub: Record<string, string>;
  if (j.kty === 'RSA') {
    if (!str(j.n) || !str(j.e)) return 'RSA key without n and e';
    pub = { kty: 'RSA', n: j.n, e: j.e };
  } else if (j.kty === 'EC') {
    if (j.crv !== 'P-256' && j.crv !== 'P-384' && j.crv !== 'P-521')
      return `unsupported EC curve ${String(j.crv)}`;
    if (!str(j.x) || !str(j.y)) return 'EC key without x and y';
    pub = { kty: 'EC', crv: j.crv, x: j.x, y: j.y };
  } else if (j.kty === 'OKP') {
    if (j.crv !== 'Ed25519') return `unsupported OKP curve ${String(j.crv)}`;
    if (!str(j.x)) return 'OKP key without x';
    pub = { kty: 'OKP', crv: j.crv, x: j.x };
  } else if (j.kty === 'oct') {
    return 'symmetric (oct) keys are not accepted';
  } else return `unsupported kty ${JSON.stringify(j.kty)}`;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub, format: 'jwk' });
  } catch (err) {
    return `not a valid ${pub.kty} key (${(err as Error).message})`;
  }
  return {
    kid: typeof j.kid === 'string' ? j.kid : null,
    alg: typeof j.alg === 'string' ? j.alg : null,
    kty: pub.kty as CompiledKey['kty'],
    crv: pub.crv ?? null,
    key,
  };
}

/** Compiles the config block once per config version: keys imported, locations deduplicated. */
export function compileJwt(block: JwtAuthn): CompiledJwt {
  const warnings: string[] = [];
  const locations: Location[] = [];
  const byKey = new Map<string, number>();
  const sanitize = new Set<string>();
  const locate = (kind: Location['kind'], name: string, prefix: string, issuer: string): number => {
    const n = kind === 'header' ? name.toLowerCase() : name;
    const key = `${kind}\n${n}\n${prefix}`;
    let i = byKey.get(key);
    if (i === undefined) {
      i = locations.length;
      byKey.set(key, i);
      locations.push({ kind, name: n, prefix, issuers: new Set() });
    }
    locations[i]!.issuers.add(issuer);
    return i;
  };
  const providers = block.providers.map((p: JwtProvider, i): CompiledProvider => {
    const source = p.source ?? `jwt.providers[${i}]`;
    const locs = new Set<number>();
    const none = !p.fromHeaders?.length && !p.fromParams?.length && !p.fromCookies?.length;
    if (none) {
      locs.add(locate('header', 'authorization', 'Bearer ', p.issuer));
      locs.add(locate('param', 'access_token', '', p.issuer));
    }
    for (const h of p.fromHeaders ?? []) locs.add(locate('header', h.name, h.prefix ?? '', p.issuer));
    for (const q of p.fromParams ?? []) locs.add(locate('param', q, '', p.issuer));
    for (const c of p.fromCookies ?? []) locs.add(locate('cookie', c, '', p.issuer));
    const payloadHeader = p.outputPayloadToHeader ? p.outputPayloadToHeader.toLowerCase() : null;
    if (payloadHeader !== null) sanitize.add(payloadHeader);
    const claimHeaders = (p.outputClaimToHeaders ?? []).map((o) => {
      const header = o.header.toLowerCase();
      sanitize.add(header);
      return { header, path: o.claim.split('.') };
    });
    const aud = (p.audiences ?? []).map(normalizeAudience);
    return {
      issuer: p.issuer,
      audiences: aud.length > 0 ? new Set(aud) : null,
      keys: importKeys(p.jwks, source, warnings),
      jwksError: p.jwksError ?? null,
      forward: p.forwardOriginalToken === true,
      payloadHeader,
      claimHeaders,
      spaceDelimited: [...new Set([...SPACE_DELIMITED_CLAIMS, ...(p.spaceDelimitedClaims ?? [])])],
      locations: [...locs],
      source,
      verified: new Map(),
    };
  });
  return {
    providers,
    locations,
    sanitize: [...sanitize],
    listeners: block.listeners ? new Set(block.listeners) : null,
    warnings,
  };
}

// ---- parsing ----------------------------------------------------------------------------------

interface ParsedJwt {
  alg: Alg;
  kid: string | null;
  payload: Record<string, unknown>;
  payloadB64: string;
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  nbf: number;
  signed: Buffer;
  signature: Buffer;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

const isNumericDate = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);

/** A compact JWS → its parts, or the jwt_verify_lib status saying what is wrong. */
export function parseJwt(token: string): ParsedJwt | Exclude<JwtStatus, 'Ok'> {
  if (token.length > MAX_TOKEN_BYTES) return 'JwtTooLarge';
  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d1 < 0 || d2 < 0 || token.indexOf('.', d2 + 1) >= 0) return 'JwtBadFormat';
  const h64 = token.slice(0, d1);
  const p64 = token.slice(d1 + 1, d2);
  const s64 = token.slice(d2 + 1);
  const hb = decodeBase64Url(h64);
  if (hb === null) return 'JwtHeaderParseErrorBadBase64';
  const header = parseJson(hb);
  if (!isPlainObject(header)) return 'JwtHeaderParseErrorBadJson';
  if (typeof header.alg !== 'string') return 'JwtHeaderBadAlg';
  if (!Object.hasOwn(ALGS, header.alg)) return 'JwtHeaderNotImplementedAlg';
  if (header.kid !== undefined && typeof header.kid !== 'string') return 'JwtHeaderBadKid';
  const pb = decodeBase64Url(p64);
  if (pb === null) return 'JwtPayloadParseErrorBadBase64';
  const payload = parseJson(pb);
  if (!isPlainObject(payload)) return 'JwtPayloadParseErrorBadJson';
  const { iss, sub, iat, nbf, exp, jti, aud } = payload;
  if (iss !== undefined && typeof iss !== 'string') return 'JwtPayloadParseErrorIssNotString';
  if (sub !== undefined && typeof sub !== 'string') return 'JwtPayloadParseErrorSubNotString';
  if (iat !== undefined && !isNumericDate(iat)) return 'JwtPayloadParseErrorIatNotInteger';
  if (nbf !== undefined && !isNumericDate(nbf)) return 'JwtPayloadParseErrorNbfNotInteger';
  if (exp !== undefined && !isNumericDate(exp)) return 'JwtPayloadParseErrorExpNotInteger';
  if (jti !== undefined && typeof jti !== 'string') return 'JwtPayloadParseErrorJtiNotString';
  let audiences: string[] = [];
  if (typeof aud === 'string') audiences = [aud];
  else if (Array.isArray(aud)) {
    if (!aud.every((a) => typeof a === 'string')) return 'JwtPayloadParseErrorAudNotString';
    audiences = aud as string[];
  } else if (aud !== undefined) return 'JwtPayloadParseErrorAudNotString';
  const signature = decodeBase64Url(s64);
  if (signature === null) return 'JwtSignatureParseErrorBadBase64';
  return {
    alg: header.alg as Alg,
    kid: (header.kid as string | undefined) ?? null,
    payload,
    payloadB64: p64,
    iss: (iss as string | undefined) ?? '',
    sub: (sub as string | undefined) ?? '',
    aud: audiences,
    exp: (exp as number | undefined) ?? 0,
    nbf: (nbf as number | undefined) ?? 0,
    signed: Buffer.from(token.slice(0, d2), 'latin1'),
    signature,
  };
}

// ---- verification -----------------------------------------------------------------------------

function keyFits(k: CompiledKey, alg: Alg): boolean {
  const a = ALGS[alg]!;
  if (k.kty !== a.kty) return false;
  return a.crv === undefined || k.crv === a.crv;
}

function checkSignature(jwt: ParsedJwt, k: CompiledKey): boolean {
  const a = ALGS[jwt.alg]!;
  if (a.sigLen !== undefined && jwt.signature.length !== a.sigLen) return false;
  try {
    if (a.kty === 'OKP') return verify(null, jwt.signed, k.key, jwt.signature);
    if (a.kty === 'EC')
      return verify(a.hash, jwt.signed, { key: k.key, dsaEncoding: 'ieee-p1363' }, jwt.signature);
    if (a.pss)
      return verify(
        a.hash,
        jwt.signed,
        {
          key: k.key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        },
        jwt.signature,
      );
    return verify(a.hash, jwt.signed, k.key, jwt.signature);
  } catch {
    return false;
  }
}

/** Time, audience and signature of a parsed token against one provider (jwt_verify_lib's order). */
export function verifyWith(jwt: ParsedJwt, p: CompiledProvider, nowSec: number, token?: string): JwtStatus {
  if (jwt.nbf !== 0 && nowSec + CLOCK_SKEW_SECONDS < jwt.nbf) return 'JwtNotYetValid';
  if (jwt.exp !== 0 && nowSec > jwt.exp + CLOCK_SKEW_SECONDS) return 'JwtExpired';
  if (p.audiences !== null && !jwt.aud.some((a) => p.audiences!.has(normalizeAudience(a))))
    return 'JwtAudienceNotAllowed';
  if (p.keys.length === 0) return p.jwksError !== null ? 'JwksFetchFail' : 'JwksNoValidKeys';
  if (token !== undefined && p.verified.has(token)) return 'Ok';
  let tried = 0;
  for (const k of p.keys) {
    if (jwt.kid !== null && k.kid !== null && k.kid !== jwt.kid) continue;
    if (k.alg !== null && k.alg !== jwt.alg) continue;
    if (!keyFits(k, jwt.alg)) continue;
    tried++;
    if (checkSignature(jwt, k)) {
      if (token !== undefined) {
        if (p.verified.size >= JWT_CACHE_SIZE) p.verified.delete(p.verified.keys().next().value!);
        p.verified.set(token, jwt);
      }
      return 'Ok';
    }
  }
  return tried === 0 ? 'JwksKidAlgMismatch' : 'JwtVerificationFail';
}

// ---- extraction -------------------------------------------------------------------------------

type Headers = Record<string, string | string[] | undefined>;

const headerText = (v: string | string[] | undefined): string | undefined =>
  v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;

/** Envoy's extractJWT: from `start`, the run of characters a JWT can have. */
function jwtRun(value: string, start: number): string {
  let end = start;
  while (end < value.length) {
    const c = value.charCodeAt(end);
    const ok =
      (c >= 48 && c <= 57) ||
      (c >= 65 && c <= 90) ||
      (c >= 97 && c <= 122) ||
      c === 45 ||
      c === 95 ||
      c === 46 ||
      c === 61;
    if (!ok) break;
    end++;
  }
  return value.slice(start, end);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

interface Found {
  loc: number;
  token: string;
}

function extract(c: CompiledJwt, headers: Headers, url: string): Found[] {
  const out: Found[] = [];
  let query: URLSearchParams | null | undefined;
  let cookies: string | undefined;
  for (let i = 0; i < c.locations.length; i++) {
    const l = c.locations[i]!;
    let token: string | undefined;
    if (l.kind === 'header') {
      const v = headerText(headers[l.name]);
      if (v === undefined) continue;
      if (l.prefix === '') token = v;
      else {
        const at = v.indexOf(l.prefix);
        if (at < 0) continue;
        token = jwtRun(v, at + l.prefix.length);
      }
    } else if (l.kind === 'param') {
      if (query === undefined) {
        const q = url.indexOf('?');
        query = q < 0 ? null : new URLSearchParams(url.slice(q + 1).split('#', 1)[0]);
      }
      const v = query?.get(l.name);
      if (v === null || v === undefined) continue;
      token = v;
    } else {
      cookies ??= headerText(headers.cookie) ?? '';
      token = cookieValue(cookies, l.name);
      if (token === undefined) continue;
    }
    out.push({ loc: i, token });
  }
  return out;
}

// ---- the decision -----------------------------------------------------------------------------

function claimText(v: unknown): string | undefined {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else if (typeof v === 'boolean') s = v ? 'true' : 'false';
  else return undefined;
  // a value node:http would refuse to send (CR, LF, NUL, non-latin1) is left out, never sent half
  return s === '' || /[^\t\x20-\x7e\x80-\xff]/.test(s) ? undefined : s;
}

function claimAt(payload: Record<string, unknown>, path: string[]): unknown {
  let v: unknown = payload;
  for (const seg of path) {
    if (!isPlainObject(v) || !Object.hasOwn(v, seg)) return undefined;
    v = v[seg];
  }
  return v;
}

/**
 * Claims Istio always treats as space-delimited (RFC 8693 `scope`, and `permission`): a policy on
 * `request.auth.claims[scope]` matches each word of `"scope": "read admin"`, so a DENY on
 * `admin` must not miss it. RequestAuthentication `spaceDelimitedClaims` adds others.
 */
export const SPACE_DELIMITED_CLAIMS = ['scope', 'permission'] as const;

/** The payload as policies see it: space-delimited claims split into lists (Envoy's normalize_payload). */
function normalizedClaims(
  payload: Record<string, unknown>,
  names: readonly string[],
): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const name of names) {
    const v = Object.hasOwn(payload, name) ? payload[name] : undefined;
    if (typeof v !== 'string') continue;
    out ??= { ...payload };
    out[name] = v.split(' ').filter((w) => w !== '');
  }
  return out ?? payload;
}

function requestAuth(jwt: ParsedJwt, p: CompiledProvider): RequestAuth {
  const azp = jwt.payload.azp;
  return {
    principal: `${jwt.iss}/${jwt.sub}`,
    audiences: jwt.aud,
    ...(typeof azp === 'string' ? { presenter: azp } : {}),
    claims: normalizedClaims(jwt.payload, p.spaceDelimited),
  };
}

export interface AuthenticateOptions {
  method?: string;
  /** Seconds since the epoch (tests); default now. */
  nowSec?: number;
  scheme?: string;
}

/**
 * Decides one request. `headers` are node's lowercase request headers, `url` the request target
 * (path and query). Nothing is modified: on success the caller removes `stripHeaders` and adds
 * `addHeaders`.
 */
/** The parse of a token whose signature a provider verified (the same text parses the same). */
function cachedParse(c: CompiledJwt, token: string): ParsedJwt | undefined {
  for (const p of c.providers) {
    const jwt = p.verified.get(token);
    if (jwt !== undefined) return jwt;
  }
  return undefined;
}

export function authenticate(
  c: CompiledJwt,
  headers: Headers,
  url: string,
  opts: AuthenticateOptions = {},
): AuthnResult {
  const strip = c.sanitize.slice();
  // Envoy's bypass_cors_preflight (Istio turns it on)
  if (
    opts.method === 'OPTIONS' &&
    headers.origin !== undefined &&
    headers['access-control-request-method'] !== undefined
  )
    return { ok: true, stripHeaders: strip, addHeaders: [] };
  const found = extract(c, headers, url);
  if (found.length === 0) return { ok: true, stripHeaders: strip, addHeaders: [] };
  const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
  const parsed = new Map<string, ReturnType<typeof parseJwt>>();
  const parse = (t: string): ReturnType<typeof parseJwt> => {
    let p = parsed.get(t);
    if (p === undefined) parsed.set(t, (p = cachedParse(c, t) ?? parseJwt(t)));
    return p;
  };
  const verified = new Map<string, JwtStatus>();
  const check = (f: Found, p: CompiledProvider): JwtStatus => {
    const jwt = parse(f.token);
    if (typeof jwt === 'string') return jwt;
    if (jwt.iss !== p.issuer) return 'JwtUnknownIssuer';
    const key = `${c.providers.indexOf(p)}\n${f.token}`;
    let s = verified.get(key);
    if (s === undefined) verified.set(key, (s = verifyWith(jwt, p, now, f.token)));
    return s;
  };
  const success = (pairs: { f: Found; p: CompiledProvider }[]): AuthnResult => {
    const add: [string, string][] = [];
    for (const { f, p } of pairs) {
      const jwt = parse(f.token) as ParsedJwt;
      const loc = c.locations[f.loc]!;
      if (!p.forward && loc.kind === 'header' && !strip.includes(loc.name)) strip.push(loc.name);
      if (p.payloadHeader !== null) add.push([p.payloadHeader, jwt.payloadB64]);
      for (const o of p.claimHeaders) {
        const v = claimText(claimAt(jwt.payload, o.path));
        if (v !== undefined) add.push([o.header, v]);
      }
    }
    const first = pairs[0]!;
    return {
      ok: true,
      auth: requestAuth(parse(first.f.token) as ParsedJwt, first.p),
      stripHeaders: strip,
      addHeaders: add,
      issuer: first.p.issuer,
    };
  };

  // 1. requires_any over the providers: one whose tokens are all present, its own and valid
  for (const p of c.providers) {
    const mine = found.filter((f) => p.locations.includes(f.loc));
    if (mine.length === 0) continue;
    if (mine.every((f) => check(f, p) === 'Ok')) return success(mine.map((f) => ({ f, p })));
  }
  // 2. allow_missing: every token must be valid for an issuer configured at its location
  const pairs: { f: Found; p: CompiledProvider }[] = [];
  for (const f of found) {
    const jwt = parse(f.token);
    let status: Exclude<JwtStatus, 'Ok'>;
    let issuer: string | undefined;
    if (typeof jwt === 'string') status = jwt;
    else {
      const p = c.locations[f.loc]!.issuers.has(jwt.iss)
        ? c.providers.find((q) => q.issuer === jwt.iss && q.locations.includes(f.loc))
        : undefined;
      if (p === undefined) status = 'JwtUnknownIssuer';
      else {
        issuer = p.issuer;
        const s = check(f, p);
        if (s === 'Ok') {
          pairs.push({ f, p });
          continue;
        }
        status = s;
      }
    }
    return refuse(status, headers, url, opts.scheme, issuer);
  }
  return success(pairs);
}

function refuse(
  code: Exclude<JwtStatus, 'Ok'>,
  headers: Headers,
  url: string,
  scheme = 'http',
  issuer?: string,
): AuthnResult {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const host = headerText(headers.host) ?? '';
  const realm = `${scheme}://${host}${path}`.replace(/["\\]/g, '');
  return {
    ok: false,
    status: code === 'JwtAudienceNotAllowed' ? 403 : 401,
    message: JWT_STATUS[code],
    code,
    wwwAuthenticate: `Bearer realm="${realm}", error="invalid_token"`,
    ...(issuer !== undefined ? { issuer } : {}),
  };
}

/** Applies a successful result to a request's headers (removals first, then additions). */
export function applyAuthnHeaders(headers: Headers, r: Extract<AuthnResult, { ok: true }>): void {
  for (const h of r.stripHeaders) delete headers[h];
  for (const [k, v] of r.addHeaders) {
    const cur = headers[k];
    headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
}
