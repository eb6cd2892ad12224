/**
 * The one place a proxy's HTTP request path calls RequestAuthentication: before routing (Envoy's
 * jwt_authn filter sits before the router). On success the token header is removed (unless
 * `forwardOriginalToken`), output headers are set, and the principal is kept on the exchange for
 * AuthorizationPolicy; on failure the request ends with Envoy's 401 (or 403 for an audience not
 * allowed), `www-authenticate`, flag JWT and `response_code_details` in the access log.
 * Metrics: `weft_proxy_jwt_authn_total{issuer,result,reason}`.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestView } from '../compile/match.js';
import { esc, type MetricsRegistry } from '../telemetry/metrics.js';
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

/** Returns false when the request was answered (refused). */
export function jwtHook(
  ex: AuthnTarget,
  jwt: CompiledJwt,
  req: IncomingMessage,
  view: RequestView,
  metrics: MetricsRegistry,
  listener: string,
): boolean {
  if (jwt.listeners !== null && !jwt.listeners.has(listener)) return true;
  const r = authenticate(jwt, req.headers, view.target, { method: view.method });
  if (r.ok) {
    applyAuthnHeaders(req.headers, r);
    if (r.auth !== undefined) {
      ex.auth = r.auth;
      metrics.incLabelled(JWT_METRIC, `issuer="${esc(r.issuer ?? '')}",result="success",reason="ok"`);
    }
    return true;
  }
  metrics.incLabelled(
    JWT_METRIC,
    `issuer="${esc(r.issuer ?? 'unknown')}",result="failure",reason="${r.code}"`,
  );
  ex.details = `jwt_authn_access_denied{${r.message.replace(/[^A-Za-z0-9]+/g, '_')}}`;
  ex.localReply(r.status, Flags.JwtDenied, r.message, {
    body: r.message,
    headers: { 'www-authenticate': r.wwwAuthenticate },
  });
  return false;
}
