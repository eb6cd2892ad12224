/**
 * The one call the HTTP request path makes before routing: builds the request's attributes,
 * runs the CUSTOM step (ext-authz, async, only when a CUSTOM policy matches) and then
 * DENY → ALLOW (sync), and reports the outcome. `authorizeRequest` is the same without the
 * node:http specifics, for the sidecar's inbound listener.
 */
import type { IncomingMessage } from 'node:http';
import type { AuthzAttributes } from './attributes.js';
import {
  authorize,
  matchCustom,
  plainIp,
  remoteAddress,
  type AuthzDecision,
  type CompiledAuthz,
} from './engine.js';
import { checkExtAuthz, type ExtAuthzRequest } from './extauthz.js';
import { normalizePath } from '../router/path.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { parseSpiffeId } from '../../pkg/certs/spiffe.js';

/** Envoy's body for an RBAC denial; weft's starts the same and goes on to name the decision. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

export interface AuthzDenial {
  status: number;
  /** RBAC (a DENY/ALLOW decision) or UAEX (the ext-authz provider said no). */
  flag: 'RBAC' | 'UAEX';
  body: Buffer;
  headers: Record<string, string>;
}

export interface AuthzOutcome {
  decision: AuthzDecision;
  /** Set when the request must be refused with this response. */
  denial?: AuthzDenial;
}

/**
 * `RBAC: access denied by DENY policy demo/deny-all rule 0` / `…: no ALLOW policy matched`:
 * Envoy's words first (clients and scripts that look for them still find them), then the
 * decision, so the caller knows which policy to read instead of debugging a bare 403.
 */
export function deniedBody(d: AuthzDecision): string {
  return d.policy !== undefined
    ? `${RBAC_DENIED_BODY} by ${d.action} policy ${d.policy}${d.rule !== undefined ? ` rule ${d.rule}` : ''}`
    : `${RBAC_DENIED_BODY}: ${d.reason}`;
}

const rbacDenial = (d: AuthzDecision): AuthzDenial => ({
  status: 403,
  flag: 'RBAC',
  body: Buffer.from(deniedBody(d)),
  headers: { 'content-type': 'text/plain' },
});

/**
 * DENY → ALLOW on the path as routed and, when it differs, on its strictest reading
 * (DECODE_AND_MERGE_SLASHES: `%2F` decoded, slashes merged, dot segments resolved): the
 * request is allowed only if both readings are. Under a lax pathNormalization (NONE, BASE,
 * MERGE_SLASHES) the upstream may decode `/%2Fadmin` or resolve `/admin/./` itself, so a DENY on
 * `/admin` must hold for every reading and an ALLOW on `/public/*` must not let
 * `/public/%2E%2E/admin` through. Stricter than Envoy's RBAC (which sees only the routed path).
 */
export function authorizeAllReadings(c: CompiledAuthz, attrs: AuthzAttributes): AuthzDecision {
  const decision = authorize(c, attrs);
  if (decision.decision === 'deny') return decision;
  const strict = normalizePath(attrs.path, 'DECODE_AND_MERGE_SLASHES');
  if (strict === attrs.path) return decision;
  if (strict === null)
    return {
      decision: 'deny',
      action: 'DENY',
      reason: `path ${JSON.stringify(attrs.path)} cannot be normalized safely`,
    };
  const other = authorize(c, { ...attrs, path: strict });
  if (other.decision === 'allow') return decision;
  return {
    ...other,
    reason: `${other.reason} (path ${JSON.stringify(attrs.path)} read as ${JSON.stringify(strict)})`,
  };
}

/** The outcome of a DENY/ALLOW (or CUSTOM-on-TCP) decision: a denial is Envoy's 403. */
function outcome(decision: AuthzDecision): AuthzOutcome {
  return decision.decision === 'deny' ? { decision, denial: rbacDenial(decision) } : { decision };
}

function finish(c: CompiledAuthz, attrs: AuthzAttributes): AuthzOutcome {
  return outcome(authorizeAllReadings(c, attrs));
}

/**
 * CUSTOM → DENY → ALLOW for one request. Synchronous (no promise) unless a CUSTOM policy
 * matches. Headers the provider allows upstream are set on `attrs.headers` (so DENY/ALLOW see
 * them, as Envoy's RBAC filter after ext_authz does) — pass the request's own header object to
 * have them forwarded.
 */
export function authorizeRequest(
  c: CompiledAuthz,
  attrs: AuthzAttributes,
  check: ExtAuthzRequest,
): AuthzOutcome | Promise<AuthzOutcome> {
  const custom = c.custom.length > 0 ? matchCustom(c, attrs) : null;
  if (custom === null) return finish(c, attrs);
  return checkExtAuthz(custom.provider, check).then((r) => {
    if (!r.ok) {
      return {
        decision: {
          decision: 'deny',
          action: 'CUSTOM',
          policy: custom.policy,
          rule: custom.rule,
          reason: `denied by CUSTOM policy ${custom.policy} (provider ${custom.providerName}: ${r.error ?? `status ${r.status}`})`,
        },
        denial: {
          status: r.status,
          flag: 'UAEX',
          body: r.body,
          headers: r.error !== undefined ? {} : r.headers,
        },
      };
    }
    for (const [k, v] of Object.entries(r.upstreamHeaders)) attrs.headers[k] = v;
    return finish(c, attrs);
  });
}

/**
 * Attributes of a request on a gateway listener: the JWT if verified, and the peer's SPIFFE ID
 * when an ISTIO_MUTUAL server terminated the connection (none on plaintext, SIMPLE and MUTUAL).
 */
export function gatewayAttributes(
  c: CompiledAuthz,
  req: IncomingMessage,
  view: { method: string; authority: string; path: string },
  auth: AuthzAttributes['auth'] | null = null,
  peer: string | null = null,
): AuthzAttributes {
  const sock = req.socket;
  const sourceIp = plainIp(sock.remoteAddress ?? '');
  return {
    method: view.method,
    host: view.authority,
    path: view.path,
    headers: req.headers,
    port: sock.localPort ?? 0,
    destinationIp: plainIp(sock.localAddress ?? ''),
    sourceIp,
    remoteIp: remoteAddress(sourceIp, req.headers['x-forwarded-for'], c.numTrustedProxies),
    ...(auth !== null ? { auth } : {}),
    ...(peer !== null ? { peer: peerAttributes(peer) } : {}),
  };
}

/**
 * The peer as a policy sees it (`source.principal`, `source.namespace`): the SPIFFE ID without
 * `spiffe://`. An ID not of the `/ns/<ns>/sa/<sa>` form keeps its principal and matches no
 * namespace.
 */
export function peerAttributes(spiffeId: string): NonNullable<AuthzAttributes['peer']> {
  const principal = spiffeId.startsWith('spiffe://') ? spiffeId.slice('spiffe://'.length) : spiffeId;
  const parts = parseSpiffeId(spiffeId);
  return { principal, namespace: parts?.namespace ?? '', serviceAccount: parts?.serviceAccount ?? '' };
}

/**
 * Attributes of a request on the sidecar's inbound side: the peer from the connection's mTLS
 * certificate (none on plaintext), `remote.ip` always the peer address (a sidecar never trusts
 * x-forwarded-for), the destination port the workload port the client dialled.
 */
export function inboundAttributes(
  req: IncomingMessage,
  view: { method: string; authority: string; path: string },
  conn: { port: number; headers: AuthzAttributes['headers']; sni: string | null; peer: string | null },
  auth: AuthzAttributes['auth'] | null = null,
): AuthzAttributes {
  return {
    ...connectionAttributes(req.socket, conn),
    method: view.method,
    host: view.authority,
    path: view.path,
    headers: conn.headers,
    ...(auth !== null ? { auth } : {}),
  };
}

/**
 * Attributes of a TCP connection on the sidecar's inbound side: no request, so only the source,
 * destination and SNI (the block it is checked against is `tcpBlock`'s reading).
 */
export function connectionAttributes(
  socket: { remoteAddress?: string | undefined; localAddress?: string | undefined },
  conn: { port: number; sni: string | null; peer: string | null },
): AuthzAttributes {
  const sourceIp = plainIp(socket.remoteAddress ?? '');
  return {
    method: '',
    host: '',
    path: '',
    headers: {},
    port: conn.port,
    destinationIp: plainIp(socket.localAddress ?? ''),
    sourceIp,
    remoteIp: sourceIp,
    ...(conn.sni !== null ? { sni: conn.sni } : {}),
    ...(conn.peer !== null ? { peer: peerAttributes(conn.peer) } : {}),
  };
}

/**
 * CUSTOM → DENY → ALLOW for a TCP connection. A CUSTOM policy that matches refuses it: its HTTP
 * ext-authz provider cannot be asked about a byte stream, and letting the connection through
 * would make the policy a silent no-op (Istio skips such a provider on TCP; weft fails closed).
 */
export function authorizeConnection(c: CompiledAuthz, attrs: AuthzAttributes): AuthzOutcome {
  const custom = c.custom.length > 0 ? matchCustom(c, attrs) : null;
  if (custom !== null)
    return outcome({
      decision: 'deny',
      action: 'CUSTOM',
      policy: custom.policy,
      rule: custom.rule,
      reason: `CUSTOM policy ${custom.policy} matches a TCP connection; its HTTP ext-authz provider ${custom.providerName} cannot check one`,
    });
  return outcome(authorize(c, attrs));
}

/** The counters a decision moves (audit, dry-run shadow, allowed or denied by policy), on any listener. */
export function countAuthz(metrics: MetricsRegistry, o: AuthzOutcome): void {
  const d = o.decision;
  if (d.audit !== undefined) metrics.incLabelled('weft_proxy_authz_audit_total', { policy: d.audit });
  if (d.shadow !== undefined)
    metrics.incLabelled('weft_proxy_authz_dry_run_total', {
      policy: d.shadow.policy ?? 'none',
      decision: d.shadow.decision,
    });
  if (o.denial !== undefined)
    metrics.incLabelled('weft_proxy_authz_denied_total', { policy: d.policy ?? 'none', action: d.action });
  else if (d.policy !== undefined)
    metrics.incLabelled('weft_proxy_authz_allowed_total', { policy: d.policy });
}

/** The hook: decides, then calls `done` once (synchronously when no ext-authz call is needed). */
export function authzGate(
  c: CompiledAuthz,
  req: IncomingMessage,
  view: { method: string; authority: string; path: string; target: string },
  auth: AuthzAttributes['auth'] | null,
  done: (o: AuthzOutcome) => void,
  peer: string | null = null,
): void {
  const attrs = gatewayAttributes(c, req, view, auth, peer);
  const r = authorizeRequest(c, attrs, { method: view.method, target: view.target, headers: req.headers });
  if (r instanceof Promise) void r.then(done);
  else done(r);
}

/**
 * Access log fields of an authorization decision. `response_code_details` follows Envoy:
 * `rbac_access_denied_matched_policy[ns/name]` for a DENY policy,
 * `rbac_access_denied_matched_policy[none]` when ALLOW policies exist and none matched, and
 * `ext_authz_denied[ns/name]` for a CUSTOM denial.
 */
export function authzLogFields(d: AuthzDecision): Record<string, unknown> {
  const out: Record<string, unknown> = { authz: d };
  if (d.decision === 'deny')
    out.response_code_details =
      d.action === 'CUSTOM'
        ? `ext_authz_denied[${d.policy ?? 'none'}]`
        : `rbac_access_denied_matched_policy[${d.policy ?? 'none'}]`;
  return out;
}
