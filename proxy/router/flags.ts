/**
 * Envoy response flags, and the text of the local replies that carry them. Every response the
 * proxy makes itself has a flag (in metrics, the access log and the `x-weft-response-flags`
 * header) and a body that says what happened and what to look at.
 */
export const Flags = {
  NoRoute: 'NR',
  NoHealthyUpstream: 'UH',
  NoCluster: 'NC',
  Overflow: 'UO',
  ConnectFailure: 'UF',
  ConnectionTermination: 'UC',
  RetryLimitExceeded: 'URX',
  UpstreamTimeout: 'UT',
  FaultAbort: 'FI',
  FaultDelay: 'DI',
  RateLimited: 'RL',
  DownstreamDisconnect: 'DC',
  DownstreamProtocolError: 'DPE',
  /** Upstream reset after the response started (Envoy: UR). */
  UpstreamReset: 'UR',
  UpstreamProtocolError: 'UPE',
  /** Denied by AuthorizationPolicy (Envoy's RBAC filter). */
  RbacDenied: 'RBAC',
  /** Denied by the CUSTOM ext-authz provider (Envoy: unauthorized external service). */
  ExtAuthzDenied: 'UAEX',
  /** A JWT refused by RequestAuthentication (weft's; Envoy only sets jwt_authn_access_denied details). */
  JwtDenied: 'JWT',
} as const;

export type Flag = (typeof Flags)[keyof typeof Flags];

/** Appends a flag to a comma list ("-" = none), Envoy's display form. */
export function addFlag(flags: string, f: Flag): string {
  if (flags === '-') return f;
  return flags.split(',').includes(f) ? flags : `${flags},${f}`;
}

export const FLAG_TEXT: Record<string, string> = {
  NR: 'no route matched the request',
  UH: 'no healthy upstream',
  NC: 'the route points at a cluster that does not exist (is the subset defined in a DestinationRule?)',
  UO: 'upstream overflow: connection pool limits (circuit breaker) reached',
  UF: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  UC: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  UT: 'upstream request timeout',
  FI: 'fault filter abort',
  UPE: 'upstream protocol error: the upstream sent an invalid HTTP/1.1 response',
};
