/**
 * What an AuthorizationPolicy sees of a request. The proxy builds one per request (gateway:
 * proxy/authz/gate.ts; sidecar inbound: the L7 inbound listener) and hands it to `authorize`.
 */

export interface AuthzAttributes {
  method: string;
  /** The authority as received (`Host` / `:authority`), port included if the client sent one. */
  host: string;
  /** Normalized (proxy/router/path.ts, the mode in force), without query or fragment. */
  path: string;
  /** Lower-case names, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The destination port of the connection. */
  port: number;
  destinationIp: string;
  /** The peer address of the downstream connection. */
  sourceIp: string;
  /**
   * Istio's `remote.ip`: the trusted client address, from x-forwarded-for when numTrustedProxies
   * is configured (remoteAddress in gate.ts), else the peer address.
   */
  remoteIp: string;
  sni?: string;
  /** From mTLS; absent on plaintext. `principal` is `<trust domain>/ns/<ns>/sa/<sa>` (no spiffe://). */
  peer?: { principal: string; namespace: string; serviceAccount: string };
  /** From a validated JWT (RequestAuthentication); `principal` is `iss/sub`. */
  auth?: {
    principal: string /* iss/sub */;
    audiences: string[];
    presenter?: string;
    claims: Record<string, unknown>;
  };
}
