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

/**
 * The SANs of one kind (`URI:`, `DNS:`) of a certificate, in order. Node lists them as
 * `URI:..., DNS:...` and gives a value with odd characters as a JSON string, decoded here.
 */
function sans(cert: X509Certificate, prefix: 'URI:' | 'DNS:'): string[] {
  const out: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', '))
    if (part.startsWith(prefix)) {
      const v = part.slice(prefix.length);
      out.push(v.startsWith('"') && v.endsWith('"') ? (JSON.parse(v) as string) : v);
    }
  return out;
}

function uriSans(cert: X509Certificate): string[] {
  return sans(cert, 'URI:');
}

/** RFC 2253 order (last RDN first), as Envoy prints the subject. */
function rfc2253(subject: string | undefined): string {
  // node gives undefined for the empty subject of a SPIFFE certificate
  return subject === undefined || subject === '' ? '' : subject.split('\n').reverse().join(',');
}

/**
 * Envoy quotes a value; `"` and `\` are escaped. A character outside printable ASCII (a CR or LF,
 * or a Unicode one from a UTF-8 subject or a JSON-decoded SAN) is written `\xNN` / `\uNNNN`: the
 * value goes into an HTTP header, where it must never end the line or change bytes.
 */
function quoted(v: string): string {
  return `"${v.replace(/[\\"]|[^\x20-\x7e]/g, (c) => {
    if (c === '\\' || c === '"') return `\\${c}`;
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  })}"`;
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
  return { principal, namespace: ns, xfcc: clientCertDetails(cert, localPrincipal) };
}

/** An XFCC value as it is, or quoted when it holds a character that would end or split the element. */
function xfccValue(v: string): string {
  return /[,;="\\\s]|[^\x20-\x7e]/.test(v) ? quoted(v) : v;
}

/**
 * Envoy's `x-forwarded-client-cert` element for a verified client certificate (what Istio sets:
 * By, Hash, Subject, URI, DNS). `By` is this proxy's own identity when it has one. A value that
 * could split the element (a user CA's DNS SAN `a;By=spiffe://...`) is quoted, never passed raw.
 */
export function clientCertDetails(cert: X509Certificate, by: string | undefined): string {
  const parts: string[] = [];
  if (by !== undefined) parts.push(`By=${xfccValue(by)}`);
  parts.push(`Hash=${createHash('sha256').update(cert.raw).digest('hex')}`);
  parts.push(`Subject=${quoted(rfc2253(cert.subject))}`);
  const uri = uriSans(cert)[0];
  if (uri !== undefined) parts.push(`URI=${xfccValue(uri)}`);
  for (const dns of sans(cert, 'DNS:')) parts.push(`DNS=${xfccValue(dns)}`);
  return parts.join(';');
}
