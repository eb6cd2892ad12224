/**
 * The contract between the proxy's workload identity (certificate from weftd's CA, rotated before
 * expiry, with the trust bundle) and its users: the inbound listener that terminates mesh mTLS
 * and the upstream side that originates it. Both read the identity through this interface only,
 * so neither depends on how certificates are obtained.
 */
import type { SecureContext } from 'node:tls';

/** The workload's current identity material. */
export interface WorkloadCredentials {
  /** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>` */
  spiffeId: string;
  trustDomain: string;
  /** PEM: the leaf, then any intermediates. */
  certChainPem: string;
  /** PEM: the private key (kept in memory only). */
  keyPem: string;
  /** PEM: every root trusted now (old and new overlap during a root rotation). */
  rootsPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IdentitySource {
  /** The current credentials, or null before the first certificate was issued. */
  current(): WorkloadCredentials | null;
  /**
   * A TLS context with the current key, chain and roots, built once per change (never per
   * connection); null before the first certificate.
   */
  secureContext(): SecureContext | null;
  /** Called after each certificate rotation or trust-bundle change; returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}
