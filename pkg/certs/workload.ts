/**
 * Workload certificates: weftd's CA signs a proxy's CSR into a short-lived leaf that carries the
 * proxy's SPIFFE identity and nothing else.
 *
 * The identity comes from the caller (weftd takes it from the proxy's TokenReview'd service
 * account), never from the CSR: every subject, SAN and extension the CSR asks for is ignored,
 * except that a CSR asking to be a CA is refused outright (it is either a bug or an attack, and
 * saying so beats quietly issuing something else). Only the CSR's public key and its
 * self-signature are used, the latter to prove the requester holds the private key.
 *
 * node-forge parses and verifies CSRs with RSA keys only, so proxies must generate RSA keys
 * (≥ 2048 bits); an ECDSA CSR is refused with a message that says so.
 */
import { constants, createPrivateKey, privateEncrypt, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { WeftError } from '../errors/index.js';
import { parseCert, serialNumber, type KeyPairPem } from './index.js';

const { pki, md } = forge;

/** Larger than any honest CSR (a 4096-bit RSA CSR is ~1.7 KB of PEM); caps parse work. */
export const MAX_CSR_BYTES = 16 * 1024;
export const MIN_RSA_BITS = 2048;
/** Clock skew allowance, as for serving certificates. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface WorkloadCsrOptions {
  /** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`; build it with `spiffeId`. */
  spiffeId: string;
  ttlMs: number;
  now: Date;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SA_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

/** The SPIFFE ID of a service account (Istio's form); refuses parts that are not Kubernetes names. */
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

function csrError(message: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_CSR_INVALID', message, cause === undefined ? undefined : { cause });
}

function parseCsr(csrPem: string): forge.pki.CertificateSigningRequest {
  if (Buffer.byteLength(csrPem, 'utf8') > MAX_CSR_BYTES)
    throw csrError(`the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  if (!csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----'))
    throw csrError('the CSR is not a PEM "CERTIFICATE REQUEST" block');
  try {
    return pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    const why = (err as Error).message;
    const hint = /not RSA/i.test(why)
      ? ' (weft signs CSRs with RSA keys only; generate an RSA-2048 key)'
      : '';
    throw csrError(`the CSR cannot be parsed: ${why}${hint}`, err);
  }
}

function checkProofOfPossession(csr: forge.pki.CertificateSigningRequest): void {
  const mismatch =
    'the CSR signature does not match its public key (the requester must sign it with the key it asks a certificate for)';
  let ok: boolean;
  try {
    ok = csr.verify();
  } catch (err) {
    // forge throws instead of returning false when the signature does not even decrypt.
    throw csrError(mismatch, err);
  }
  if (!ok) throw csrError(mismatch);
}

function checkKey(csr: forge.pki.CertificateSigningRequest): forge.pki.rsa.PublicKey {
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!key?.n) throw csrError('the CSR has no RSA public key');
  const bits = key.n.bitLength();
  if (bits < MIN_RSA_BITS)
    throw csrError(`the CSR's RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are needed`);
  return key;
}

interface RequestedExtension {
  name?: string;
  cA?: boolean;
  keyCertSign?: boolean;
}

/** A CSR that asks for basicConstraints CA:TRUE or keyCertSign is refused, not silently downgraded. */
function refuseCaRequest(csr: forge.pki.CertificateSigningRequest): void {
  const attr = csr.getAttribute({ name: 'extensionRequest' }) as { extensions?: RequestedExtension[] } | null;
  for (const ext of attr?.extensions ?? []) {
    if ((ext.name === 'basicConstraints' && ext.cA === true) || (ext.name === 'keyUsage' && ext.keyCertSign))
      throw csrError('the CSR asks for a CA certificate; workloads get leaf certificates only');
  }
}

function checkSpiffeId(id: string): void {
  if (!/^spiffe:\/\/[^/\s]+\/\S+$/.test(id)) throw csrError(`"${id}" is not a SPIFFE ID`);
}

/** DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017 §9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * The CA key as forge's signer interface, backed by node:crypto. forge builds the certificate and
 * hashes it; the RSA private-key operation is native: 20 ms per certificate in forge's pure JS
 * on this machine (blocking the event loop under a burst of CSRs), about 1-2 ms natively.
 */
function nativeRsaSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    // The message never includes the PEM itself.
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `not an RSA private key in PEM form (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
  if (key.asymmetricKeyType !== 'rsa')
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `not an RSA private key (${key.asymmetricKeyType ?? 'unknown'}); weft signs with RSA`,
    );
  const sign = (md: forge.md.MessageDigest): string => {
    const digest = Buffer.from(md.digest().getBytes(), 'binary');
    const signature = privateEncrypt(
      { key, padding: constants.RSA_PKCS1_PADDING },
      Buffer.concat([SHA256_DIGEST_INFO, digest]),
    );
    return signature.toString('binary');
  };
  return { sign } as unknown as forge.pki.rsa.PrivateKey;
}

/**
 * Signs `csrPem` with `ca` into a leaf PEM: the CSR's key, `opts.spiffeId` as the only (URI) SAN,
 * digitalSignature + keyEncipherment, serverAuth + clientAuth, not a CA, valid from five minutes
 * ago for `ttlMs` but never past the CA's own expiry. Throws WEFT_CSR_INVALID for a bad CSR and
 * WEFT_CERT_INVALID for a bad CA or TTL.
 */
export function signWorkloadCsr(ca: KeyPairPem, csrPem: string, opts: WorkloadCsrOptions): string {
  if (!Number.isFinite(opts.ttlMs) || opts.ttlMs <= 0)
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `workload certificate lifetime must be positive, got ${opts.ttlMs} ms`,
    );
  checkSpiffeId(opts.spiffeId);
  const csr = parseCsr(csrPem);
  checkProofOfPossession(csr);
  const publicKey = checkKey(csr);
  refuseCaRequest(csr);
  const caCert = parseCert(ca.certPem);
  const caKey = nativeRsaSigner(ca.keyPem);

  const cert = pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(opts.now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(opts.now.getTime() + opts.ttlMs);
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  // Empty subject, identity in the SAN only (SPIFFE X509-SVID); RFC 5280 then wants the SAN critical.
  cert.setSubject([]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 6, value: opts.spiffeId }], critical: true },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());
  return pki.certificateToPem(cert);
}
