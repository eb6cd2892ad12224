/**
 * The one place a proxy's HTTP request paths call RequestAuthentication: before routing on a
 * gateway's listeners (Envoy's jwt_authn filter sits before the router), and before forwarding to
 * the app on a sidecar's inbound side. On success the token header is removed (unless
 * `forwardOriginalToken`), output headers are set, and the principal is kept on the exchange for
 * AuthorizationPolicy; on failure the request ends with Envoy's 401 (or 403 for an audience not
 * allowed), `www-authenticate`, flag JWT and `response_code_details` in the access log.
 * Metrics: `weft_proxy_jwt_authn_total{issuer,result,reason}`.
 */
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { Flags, type Flag } from '../router/flags.js';
import { applyAuthnHeaders, authenticate, type CompiledJwt, type RequestAuth } from './jwt.js';

export type { RequestAuth };

/** What the hook needs of the exchange (proxy/router/exchange.ts). */
export interface AuthnTarget {
  auth: RequestAuth | null;
  details: string | undefined;
  localReply(
    status: number,
    flag: Flag,
    detail: string,
    custom?: { body: string; headers: Record<string, string> },
  ): void;
}

export const JWT_METRIC = 'weft_proxy_jwt_authn_total';

/**
 * Returns false when the request was answered (refused). `headers`: the request's headers as they
 * will be forwarded (the token is stripped and output headers are set there). `listener`: the
 * routing listener's name, checked against `jwt.listeners`; null on the sidecar's inbound side,
 * which always checks.
 */
export function jwtHook(
  ex: AuthnTarget,
  jwt: CompiledJwt,
  headers: Record<string, string | string[] | undefined>,
  view: { method: string; target: string },
  metrics: MetricsRegistry,
  listener: string | null,
): boolean {
  if (listener !== null && jwt.listeners !== null && !jwt.listeners.has(listener)) return true;
  const r = authenticate(jwt, headers, view.target, { method: view.method });
  if (r.ok) {
    applyAuthnHeaders(headers, r);
    if (r.auth !== undefined) {
      ex.auth = r.auth;
      metrics.incLabelled(JWT_METRIC, { issuer: r.issuer ?? '', result: 'success', reason: 'ok' });
    }
    return true;
  }
  metrics.incLabelled(JWT_METRIC, { issuer: r.issuer ?? 'unknown', result: 'failure', reason: r.code });
  ex.details = `jwt_authn_access_denied{${r.message.replace(/[^A-Za-z0-9]+/g, '_')}}`;
  ex.localReply(r.status, Flags.JwtDenied, r.message, {
    body: r.message,
    headers: { 'www-authenticate': r.wwwAuthenticate },
  });
  return false;
}
