/**
 * Who is on the other end of a terminated mesh mTLS connection: the peer's SPIFFE ID from its
 * (verified) certificate, and the `x-forwarded-client-cert` value the app gets, in Envoy's format
 * as Istio configures it (`By` the local identity, `Hash` the SHA-256 of the peer certificate's
 * DER, `Subject`, `URI` the peer identity). Both are computed once per connection.
 */
import { createHash, type X509Certificate } from 'node:crypto';

/** Istio's ALPN values of mesh mTLS (a client that offers none of them is not a mesh sidecar). */
export const MESH_ALPN: readonly string[] = [
  'istio-peer-exchange',
  'istio',
  'istio-http/1.0',
  'istio-http/1.1',
  'istio-h2',
];

/** ALPN values that say the stream inside is HTTP/1.x. */
export const MESH_HTTP1_ALPN: readonly string[] = ['istio-http/1.0', 'istio-http/1.1'];

/** spiffe://<trust domain>/<path>, with nothing that would need quoting in XFCC. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~%!$&'()*+=:@-]+)+$/;

export interface PeerIdentity {
  principal: string;
  /** The peer's namespace from its SPIFFE ID (`/ns/<ns>/sa/<sa>`), or null. */
  namespace: string | null;
  xfcc: string;
}

/** The URI SANs of a certificate (Node lists SANs as `URI:..., DNS:...`; odd values come quoted). */
function uriSans(cert: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', '))
    if (part.startsWith('URI:')) out.push(part.slice(4));
  return out;
}

/** RFC 2253 order (last RDN first), as Envoy prints the subject. */
function rfc2253(subject: string | undefined): string {
  // node gives undefined for the empty subject of a SPIFFE certificate
  return subject === undefined || subject === '' ? '' : subject.split('\n').reverse().join(',');
}

/** Envoy quotes a value; `"` and `\` are escaped. */
function quoted(v: string): string {
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The identity of a verified peer certificate, or a reason to refuse it: SPIFFE X.509-SVIDs carry
 * exactly one URI SAN, the SPIFFE ID.
 */
export function peerIdentity(cert: X509Certificate, localPrincipal: string): PeerIdentity | string {
  const uris = uriSans(cert);
  if (uris.length !== 1) return `the certificate has ${uris.length} URI SANs (a SPIFFE ID is exactly one)`;
  const principal = uris[0]!;
  if (!SPIFFE_ID.test(principal) || principal.length > 2048)
    return `URI SAN ${JSON.stringify(principal.slice(0, 120))} is not a SPIFFE ID`;
  const ns = /\/ns\/([^/]+)\//.exec(principal)?.[1] ?? null;
  const hash = createHash('sha256').update(cert.raw).digest('hex');
  return {
    principal,
    namespace: ns,
    xfcc: `By=${localPrincipal};Hash=${hash};Subject=${quoted(rfc2253(cert.subject))};URI=${principal}`,
  };
}
