/**
 * Who is calling: a proxy's projected service-account token (audience TOKEN_AUDIENCE), checked
 * with a TokenReview. The API server does the cryptography, expiry and audience check and, for a
 * pod-bound token, tells us the pod; weftd only reads the answer. Both discovery and the
 * certificate endpoint use this, so a token that may ask for config may ask for a certificate of
 * the same identity and nothing else.
 *
 * Reviews are cached briefly (per token hash, never the token itself) so a proxy that reconnects
 * or renews does not cost an API call each time; refusals are not cached, so a token that just
 * became valid (clock skew, a new service account) works on the next try.
 */
import { createHash } from 'node:crypto';
import { TOKEN_AUDIENCE } from '../pkg/discovery/protocol.js';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import type { KubeClient } from '../pkg/kube/client.js';

export interface Identity {
  namespace: string;
  serviceAccount: string;
  /** Set when the token is bound to a pod (projected tokens are). */
  podName?: string;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; extra?: Record<string, string[]> };
}

const SA_PREFIX = 'system:serviceaccount:';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';

/** The identity in a TokenReview status; WEFT_UNAUTHENTICATED when it is not a service account of our audience. */
export function identityFromReview(status: TokenReviewStatus): Identity {
  if (status.authenticated !== true)
    throw new WeftError('WEFT_UNAUTHENTICATED', `token rejected: ${status.error ?? 'not authenticated'}`);
  if (status.audiences && !status.audiences.includes(TOKEN_AUDIENCE))
    throw new WeftError('WEFT_UNAUTHENTICATED', `token is not for audience ${TOKEN_AUDIENCE}`);
  const username = status.user?.username ?? '';
  const [namespace, serviceAccount, ...rest] = username.startsWith(SA_PREFIX)
    ? username.slice(SA_PREFIX.length).split(':')
    : [];
  if (!namespace || !serviceAccount || rest.length > 0)
    throw new WeftError(
      'WEFT_UNAUTHENTICATED',
      `token belongs to ${JSON.stringify(username)}, not a service account; use the pod's projected token (audience ${TOKEN_AUDIENCE})`,
    );
  const pod = status.user?.extra?.[POD_NAME_EXTRA]?.[0];
  return { namespace, serviceAccount, ...(pod ? { podName: pod } : {}) };
}

/** One TokenReview, no cache. WEFT_TOKEN_REVIEW_FAILED when the API server cannot answer. */
export async function authenticate(kube: KubeClient, token: string): Promise<Identity> {
  if (token === '')
    throw new WeftError('WEFT_UNAUTHENTICATED', 'no bearer token (Authorization: Bearer <token>)');
  let answer: { status?: TokenReviewStatus };
  try {
    answer = (await kube.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [TOKEN_AUDIENCE] },
      },
    })) as { status?: TokenReviewStatus };
  } catch (err) {
    throw new WeftError('WEFT_TOKEN_REVIEW_FAILED', `TokenReview failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return identityFromReview(answer.status ?? {});
}

/** `Authorization: Bearer X` → X; anything else → ''. */
export function bearerToken(header: string | undefined): string {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : '';
}

export type Authenticator = (token: string) => Promise<{ identity: Identity; cached: boolean }>;

/**
 * `authenticate` behind a small TTL cache keyed by the token's hash (successes only).
 *
 * Global rate-limit checks (ADR 0017) authenticate per request, with the sidecar's deadline of
 * 50 ms: callers must not wait for the API server once a token is known. So concurrent misses
 * for one token share one review (a burst of checks used to start a TokenReview each), and in
 * the last third of an entry's life it is served while one review renews it in the background.
 * A background review that fails changes nothing: the entry still ends at its TTL, as before.
 */
export function cachedAuthenticator(
  review: (token: string) => Promise<Identity>,
  opts: { ttlMs?: number; maxEntries?: number; now?: () => number } = {},
): Authenticator {
  const ttl = opts.ttlMs ?? 30_000;
  const max = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { identity: Identity; expires: number; refreshAt: number }>();
  const reviewing = new Map<string, Promise<Identity>>();
  const reviewOnce = (key: string, token: string): Promise<Identity> => {
    const running = reviewing.get(key);
    if (running) return running;
    const p = review(token)
      .then((identity) => {
        if (cache.size >= max && !cache.has(key)) cache.clear(); // crude but bounded; a refill costs one review per proxy
        const at = now();
        // never trust a cached review past the token's own expiry
        cache.set(key, {
          identity,
          expires: Math.min(at + ttl, tokenExpiryMs(token) ?? Infinity),
          refreshAt: at + Math.floor((ttl * 2) / 3),
        });
        return identity;
      })
      .finally(() => reviewing.delete(key));
    reviewing.set(key, p);
    return p;
  };
  return async (token) => {
    const key = createHash('sha256').update(token).digest('hex');
    const hit = cache.get(key);
    const at = now();
    if (hit && hit.expires > at) {
      if (hit.refreshAt <= at && hit.refreshAt < hit.expires) reviewOnce(key, token).catch(() => undefined);
      return { identity: hit.identity, cached: true };
    }
    cache.delete(key);
    return { identity: await reviewOnce(key, token), cached: false };
  };
}

/** The `exp` of a JWT in ms, or undefined when the token is not a readable JWT (the review decided anyway). */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
