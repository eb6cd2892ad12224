/**
 * JWT test helpers: real keys made with node:crypto, JWKS built from them, compact JWS signed with
 * any algorithm (including ones the proxy must refuse), and a loopback JWKS server.
 */
import { constants, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type TestAlg =
  'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

export interface TestKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public JWK with kid (no alg unless asked). */
  jwk: Record<string, unknown>;
}

export function makeKey(kind: 'rsa' | 'P-256' | 'P-384' | 'P-521' | 'ed25519', kid: string): TestKey {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: kind });
  return { kid, ...pair, jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid } };
}

export const keyKindFor = (alg: TestAlg): Parameters<typeof makeKey>[0] =>
  alg.startsWith('RS') || alg.startsWith('PS')
    ? 'rsa'
    : alg === 'ES256'
      ? 'P-256'
      : alg === 'ES384'
        ? 'P-384'
        : alg === 'ES512'
          ? 'P-521'
          : 'ed25519';

export const b64u = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

export function jwks(...keys: (TestKey | Record<string, unknown>)[]): string {
  return JSON.stringify({ keys: keys.map((k) => ('jwk' in k ? k.jwk : k)) });
}

/** Signs `payload` with `alg`; `header` entries override (alg, kid...). */
export function signJwt(
  alg: string,
  key: KeyObject | Buffer | null,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const input = `${b64u(JSON.stringify({ alg, typ: 'JWT', ...header }))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(signature(alg, key, input))}`;
}

export function signature(alg: string, key: KeyObject | Buffer | null, input: string): Buffer {
  const data = Buffer.from(input);
  const hash = `sha${alg.slice(2)}`;
  if (alg === 'none' || key === null) return Buffer.alloc(0);
  if (alg.startsWith('HS'))
    return createHmac(hash, key as Buffer)
      .update(data)
      .digest();
  if (alg === 'EdDSA') return sign(null, data, key as KeyObject);
  if (alg.startsWith('ES')) return sign(hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  if (alg.startsWith('PS'))
    return sign(hash, data, {
      key: key as KeyObject,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
  return sign(hash, data, key as KeyObject);
}

/** A loopback server answering GETs with whatever `body()` says (status 200 unless `status()`). */
export async function startJwksServer(initial: string): Promise<{
  url: string;
  set(body: string, status?: number): void;
  hang(on: boolean): void;
  hits: number;
  close(): Promise<void>;
}> {
  let body = initial;
  let status = 200;
  let hanging = false;
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    if (hanging) return; // never answers: the fetcher's timeout must end it
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    set(b, s = 200) {
      body = b;
      status = s;
    },
    hang(on) {
      hanging = on;
    },
    get hits() {
      return state.hits;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
