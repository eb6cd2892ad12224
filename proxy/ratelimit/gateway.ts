/**
 * Rate limits on a gateway's listeners (ADR 0021): the same `rateLimits` block a sidecar
 * enforces on its inbound side, checked by the router after RequestAuthentication and
 * AuthorizationPolicy (a refused request spends no token) and before routing. The request is
 * described by what the gateway knows: the listener port, the normalized target, the headers,
 * the verified token's claims, the downstream peer's address, and its SPIFFE ID when an
 * ISTIO_MUTUAL server terminated the connection (other ingress clients have no mesh principal).
 */
import type { IncomingMessage } from 'node:http';
import type { RequestView } from '../compile/match.js';
import type { RateLimiter, RateLimitRequest, RateLimitVerdict } from './limiter.js';

export function gatewayRateLimitRequest(
  req: IncomingMessage,
  v: RequestView,
  listenerPort: number,
  claims: Record<string, unknown> | null,
  principal: string | null = null,
): RateLimitRequest {
  return {
    port: listenerPort,
    target: v.target,
    method: v.method,
    headers: req.headers,
    principal,
    claims,
    peerIp: req.socket.remoteAddress,
  };
}

/**
 * The verdict, synchronously for local limits, after weftd's answer for a global one (which
 * applies its failure mode itself and does not reject; a rejection anyway — a bug — admits
 * the request rather than leaving it hanging). null: no limit applies.
 */
export function checkRateLimit(
  limiter: RateLimiter,
  r: RateLimitRequest,
  done: (v: RateLimitVerdict | null) => void,
): void {
  if (!limiter.hasGlobal) return done(limiter.check(r));
  limiter.checkAsync(r).then(done, () => done(null));
}
