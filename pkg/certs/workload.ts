/**
 * Workload certificates: weftd's CA signs a proxy's CSR into a short-lived leaf that carries the
 * proxy's SPIFFE identity and nothing else.
 *
 * The identity comes from the caller (weftd takes it from the proxy's TokenReview'd service
 * account). The CSR may ask for that identity (its one URI SAN, as istio-agent sends it) or for
 * nothing; a CSR asking for another identity, any other SAN, a subject, a CA certificate or an
 * extension outside the short list is refused, not silently narrowed (it is either a bug or an
 * attack, and saying so beats quietly issuing something else): pkg/certs/csr.ts lists the rules.
 * The CSR's public key (ECDSA P-256/P-384 or RSA 2048-4096) and its self-signature (proof of
 * possession) are checked by node:crypto.
 *
 * The certificate is laid out in DER here (pkg/certs/der.ts) and signed by node:crypto with the
 * CA's key (RSA or EC): node-forge cannot embed an EC public key (ADR 0010).
 */
import { createHash, createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { WeftError } from '../errors/index.js';
import { OID, csrRefused, parseCsr, signatureAlgorithm, uriSans } from './csr.js';
import {
  TAG,
  bitString,
  bitStringValue,
  bool,
  children,
  derToPem,
  explicit,
  octetString,
  oid,
  oidText,
  readDer,
  seq,
  time,
  tlv,
  uint,
  type DerNode,
} from './der.js';
import { serialNumber, type KeyPairPem } from './index.js';

export { MAX_CSR_BYTES, MIN_RSA_BITS } from './csr.js';
export { spiffeId } from './spiffe.js';

/** Clock skew allowance, as for serving certificates. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface WorkloadCsrOptions {
  /** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`; build it with `spiffeId`. */
  spiffeId: string;
  ttlMs: number;
  now: Date;
}

function checkSpiffeId(id: string): void {
  if (!/^spiffe:\/\/[^/\s]+\/\S+$/.test(id))
    throw new WeftError('WEFT_CSR_INVALID', `"${id}" is not a SPIFFE ID`);
}

/** What the leaf needs from the CA: its key, subject (the leaf's issuer) and key identifier. */
interface Issuer {
  key: KeyObject;
  subject: Buffer;
  keyId: Buffer;
  notAfter: Date;
}

function caError(message: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_CERT_INVALID', message, cause === undefined ? undefined : { cause });
}

function issuerOf(ca: KeyPairPem): Issuer {
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(ca.certPem);
  } catch (err) {
    throw caError(`the CA certificate is not a PEM certificate (${(err as Error).message})`, err);
  }
  try {
    key = createPrivateKey(ca.keyPem);
  } catch (err) {
    // The message never includes the PEM itself.
    throw caError(`the CA key is not a private key in PEM form (${(err as Error).message})`, err);
  }
  if (!cert.checkPrivateKey(key)) throw caError('the CA key does not match the CA certificate');
  const tbs = children(children(readDer(cert.raw))[0]!);
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ..., [3] extensions
  const v = tbs[0]!.tag === 0xa0 ? 1 : 0;
  const subject = tbs[v + 4]!.raw;
  const spki = tbs[v + 5]!;
  return { key, subject, keyId: subjectKeyId(tbs, spki), notAfter: new Date(cert.validTo) };
}

/** The CA's subjectKeyIdentifier, or RFC 5280 §4.2.1.2 method 1 (SHA-1 of the key bits). */
function subjectKeyId(tbs: DerNode[], spki: DerNode): Buffer {
  const exts = tbs.find((n) => n.tag === 0xa3);
  if (exts) {
    for (const ext of children(children(exts)[0]!)) {
      const parts = children(ext);
      if (oidText(parts[0]!) === OID.subjectKeyIdentifier)
        return readDer(parts[parts.length - 1]!.content).content;
    }
  }
  const { bytes } = bitStringValue(children(spki)[1]!);
  return createHash('sha1').update(bytes).digest();
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octetString(value)) : seq(oid(id), octetString(value));
}

/** KeyUsage: digitalSignature, plus keyEncipherment for RSA keys (RFC 5480 forbids it for EC). */
function keyUsage(keyType: 'rsa' | 'ec'): Buffer {
  return keyType === 'rsa'
    ? tlv(TAG.BIT_STRING, Buffer.from([5, 0xa0]))
    : tlv(TAG.BIT_STRING, Buffer.from([7, 0x80]));
}

/**
 * Signs `csrPem` with `ca` into a leaf PEM: the CSR's key, `opts.spiffeId` as the only (URI,
 * critical) SAN, an empty subject, digitalSignature (+ keyEncipherment for RSA), serverAuth +
 * clientAuth, not a CA, valid from five minutes ago for `ttlMs` but never past the CA's own
 * expiry. Throws WEFT_CSR_INVALID (with `details.reason`) for a CSR that is refused and
 * WEFT_CERT_INVALID for a bad CA or TTL.
 */
export function signWorkloadCsr(ca: KeyPairPem, csrPem: string, opts: WorkloadCsrOptions): string {
  if (!Number.isFinite(opts.ttlMs) || opts.ttlMs <= 0)
    throw caError(`workload certificate lifetime must be positive, got ${opts.ttlMs} ms`);
  checkSpiffeId(opts.spiffeId);
  const csr = parseCsr(csrPem);
  const other = csr.uris.find((u) => u !== opts.spiffeId);
  if (other !== undefined)
    throw csrRefused(
      'identity',
      `the CSR asks for ${JSON.stringify(other)}, but the token proves ${opts.spiffeId}`,
    );
  const issuer = issuerOf(ca);
  const notBefore = new Date(opts.now.getTime() - BACKDATE_MS);
  let notAfter = new Date(opts.now.getTime() + opts.ttlMs);
  if (notAfter > issuer.notAfter) notAfter = issuer.notAfter;
  const spki = csr.publicKey.export({ type: 'spki', format: 'der' });
  const sigAlg = signatureAlgorithm(issuer.key);
  const tbs = seq(
    explicit(0, uint(2)),
    uint(Buffer.from(serialNumber(), 'hex')),
    sigAlg,
    issuer.subject,
    seq(time(notBefore), time(notAfter)),
    seq(), // empty subject: the identity is in the SAN (SPIFFE X509-SVID), so the SAN is critical
    spki,
    explicit(
      3,
      seq(
        extension(OID.basicConstraints, true, seq()),
        extension(OID.keyUsage, true, keyUsage(csr.keyType)),
        extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
        extension(OID.subjectAltName, true, uriSans([opts.spiffeId])),
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyId))),
      ),
    ),
  );
  const signature = sign('sha256', tbs, issuer.key);
  return derToPem(seq(tbs, sigAlg, bitString(signature)), 'CERTIFICATE');
}
