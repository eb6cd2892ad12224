/**
 * SPIFFE IDs of Kubernetes service accounts (`spiffe://<trust domain>/ns/<ns>/sa/<sa>`, Istio's
 * form), built and read. Pure, no npm import: the proxy uses it to check peers.
 */
import { WeftError } from '../errors/index.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SA_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

/** The SPIFFE ID of a service account; refuses parts that are not Kubernetes names. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  if (!TRUST_DOMAIN.test(trustDomain) || trustDomain.length > 255)
    throw new WeftError(
      'WEFT_CSR_INVALID',
      `trust domain "${trustDomain}" is not a valid SPIFFE trust domain`,
    );
  if (!DNS_LABEL.test(namespace) || namespace.length > 63)
    throw new WeftError('WEFT_CSR_INVALID', `namespace "${namespace}" is not a Kubernetes namespace name`);
  if (!SA_NAME.test(serviceAccount) || serviceAccount.length > 253)
    throw new WeftError(
      'WEFT_CSR_INVALID',
      `service account "${serviceAccount}" is not a Kubernetes service account name`,
    );
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export interface SpiffeParts {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** The parts of a service-account SPIFFE ID, or null for anything else. */
export function parseSpiffeId(id: string): SpiffeParts | null {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (!m) return null;
  const [, trustDomain, namespace, serviceAccount] = m as unknown as [string, string, string, string];
  if (!TRUST_DOMAIN.test(trustDomain) || !DNS_LABEL.test(namespace) || !SA_NAME.test(serviceAccount))
    return null;
  return { trustDomain, namespace, serviceAccount };
}

/**
 * The URI SANs of a certificate as node:crypto's `X509Certificate.subjectAltName` prints them
 * (`URI:spiffe://..., DNS:x`). Node quotes a name holding a comma or quote
 * (`URI:"spiffe://a,b"`) so that one SAN cannot pose as two; such a name is never a valid SPIFFE
 * ID and is returned quoted, so it matches nothing.
 */
export function uriSansOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}
