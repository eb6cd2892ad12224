/**
 * What the inbound listener does with a connection, from the port's mTLS mode and what the client
 * sent first. Pure, shared by the listener and by `weftctl explain --inbound` (and the admin's
 * explain), so an explanation can never disagree with the proxy.
 */
import type { PeerMode } from '../../pkg/proxyconfig/types.js';

export type RefusalReason =
  /** Not TLS (or nothing in time) under STRICT. */
  | 'plaintext'
  /** Connected and closed without a byte (TCP health checks). */
  | 'empty'
  | 'tls_bad_client_hello'
  | 'tls_no_sni'
  | 'tls_unknown_alpn'
  /** The handshake failed (alerts, timeouts, protocol errors). */
  | 'tls_handshake'
  | 'peer_no_certificate'
  /** The certificate does not chain to the mesh roots, or is expired or not yet valid. */
  | 'peer_untrusted'
  | 'peer_bad_identity'
  /** This workload has no certificate yet: mesh mTLS cannot be terminated. */
  | 'no_identity'
  | 'no_destination'
  /** An AuthorizationPolicy refuses this TCP connection. */
  | 'authz_denied';

/** What arrived first on a connection (DISABLE never looks). */
export type Arrival =
  | { kind: 'plaintext'; detail?: string }
  | { kind: 'empty' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'tls'; meshAlpn: boolean; sni: boolean; alpn: string[] };

export type Decision =
  | { action: 'refuse'; reason: RefusalReason; detail: string }
  /** Mesh mTLS: terminate, then require a mesh client certificate. */
  | { action: 'terminate' }
  /** Plaintext to the app (HTTP parsed, or TCP piped). */
  | { action: 'plaintext' }
  /** The app's own TLS: piped untouched. */
  | { action: 'tls-passthrough' };

export function decide(mode: PeerMode, arrival: Arrival, hasIdentity: boolean): Decision {
  if (mode === 'DISABLE') return { action: 'plaintext' };
  const strict = mode === 'STRICT';
  switch (arrival.kind) {
    case 'empty':
      return { action: 'refuse', reason: 'empty', detail: 'closed without sending anything' };
    case 'plaintext':
      return strict
        ? { action: 'refuse', reason: 'plaintext', detail: arrival.detail ?? 'not TLS' }
        : { action: 'plaintext' };
    case 'malformed':
      return strict
        ? { action: 'refuse', reason: 'tls_bad_client_hello', detail: arrival.reason }
        : { action: 'plaintext' };
    case 'tls':
      if (!arrival.meshAlpn)
        return strict
          ? {
              action: 'refuse',
              reason: 'tls_unknown_alpn',
              detail: `TLS without Istio's ALPN (offered: ${arrival.alpn.join(',') || 'none'})`,
            }
          : { action: 'tls-passthrough' };
      if (!arrival.sni)
        return { action: 'refuse', reason: 'tls_no_sni', detail: 'mesh TLS without a server name' };
      if (!hasIdentity)
        return { action: 'refuse', reason: 'no_identity', detail: 'this workload has no certificate yet' };
      return { action: 'terminate' };
  }
}

/** "plaintext from 10.244.0.7 refused by PeerAuthentication demo/strict on port 9080: not TLS" */
export function refusalMessage(
  reason: RefusalReason,
  fromIp: string,
  policy: string,
  port: number | null,
  detail: string,
): string {
  const what =
    reason === 'plaintext'
      ? 'plaintext'
      : reason === 'empty'
        ? 'an empty connection'
        : `a connection (${reason})`;
  return `${what} from ${fromIp} refused by ${policy}${port !== null ? ` on port ${port}` : ''}: ${detail}`;
}
