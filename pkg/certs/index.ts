/**
 * Certificates for the mesh's own servers: a root CA (self-signed, or the user's from a Secret)
 * and serving certificates for the webhook and weftd, signed by it.
 *
 * Keys are generated with node:crypto (native RSA-2048, 60–200 ms) and imported into
 * node-forge, which builds and signs the X.509 certificates. forge's pure-JS RSA keygen took
 * 2.2–4.1 s per key on this 2-core machine, blocking the event loop (leader renewals, watches)
 * for that long; calling node:crypto explicitly keeps us off that path even where forge would
 * fall back to it (measured in test/unit/operator/certs.test.ts). forge signs with RSA only.
 *
 * Everything here is pure apart from key generation and the clock, which is a parameter.
 * Private keys are returned as PEM strings for storing in Secrets; nothing here logs them.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { WeftError } from '../errors/index.js';

const { pki, md } = forge;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertInfo {
  subjectCN: string;
  issuerCN: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  isCA: boolean;
  serial: string;
}

export interface IssueOptions {
  commonName: string;
  dnsNames: string[];
  ttlMs: number;
  now: Date;
}

/** Clock skew allowance: certificates are valid from slightly in the past. */
const BACKDATE_MS = 5 * 60 * 1000;

function newRsaKey(): forge.pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

/**
 * A positive, minimally encoded serial number as RFC 5280 requires: the high bit of the first byte
 * clear (else the DER integer reads as negative) and the first byte non-zero (else the encoding is
 * not minimal and parsers strip it, so the serial a reader sees differs from the one we wrote).
 */
export function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: Date, ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new WeftError('WEFT_CERT_INVALID', `certificate lifetime must be positive, got ${ttlMs} ms`);
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + ttlMs);
}

/** A self-signed root CA. */
export function createCA(opts: { commonName: string; ttlMs: number; now: Date }): KeyPairPem {
  const keys = newRsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, opts.now, opts.ttlMs);
  const attrs = [
    { name: 'commonName', value: opts.commonName },
    { name: 'organizationName', value: 'weft' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey) };
}

/** A TLS serving certificate for `dnsNames`, signed by `ca`. */
export function issueServing(ca: KeyPairPem, opts: IssueOptions): KeyPairPem {
  const caCert = parseCert(ca.certPem);
  const caKey = parseKey(ca.keyPem);
  if (opts.dnsNames.length === 0)
    throw new WeftError('WEFT_CERT_INVALID', 'a serving certificate needs at least one DNS name');
  const keys = newRsaKey();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  validity(cert, opts.now, opts.ttlMs);
  // Never outlive the issuer: a leaf valid past its CA would fail verification anyway.
  if (cert.validity.notAfter > caCert.validity.notAfter) cert.validity.notAfter = caCert.validity.notAfter;
  cert.setSubject([{ name: 'commonName', value: opts.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: opts.dnsNames.map(altName) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey) };
}

/** IP literals become iPAddress SANs (type 7), everything else dNSName (type 2). */
function altName(value: string): { type: number; value?: string; ip?: string } {
  return isIP(value) ? { type: 7, ip: value } : { type: 2, value };
}

export function parseCert(pem: string): forge.pki.Certificate {
  try {
    return pki.certificateFromPem(pem);
  } catch (err) {
    throw new WeftError('WEFT_CERT_INVALID', `not a PEM certificate (${(err as Error).message})`, {
      cause: err,
    });
  }
}

export function parseKey(pem: string): forge.pki.rsa.PrivateKey {
  try {
    const key = pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey | null;
    if (!key) throw new Error('unsupported key type');
    return key;
  } catch (err) {
    // The message never includes the PEM itself.
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `not an RSA private key in PEM form (${(err as Error).message})`,
      { cause: err },
    );
  }
}

/** Reads what the operator needs from a certificate (node:crypto parses any key type). */
export function certInfo(pem: string): CertInfo {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch (err) {
    throw new WeftError('WEFT_CERT_INVALID', `not a PEM certificate (${(err as Error).message})`, {
      cause: err,
    });
  }
  const cn = (dn: string): string => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? '';
  const dnsNames = (x509.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:') || s.startsWith('IP Address:'))
    .map((s) => s.slice(s.indexOf(':') + 1));
  return {
    subjectCN: cn(x509.subject),
    issuerCN: cn(x509.issuer),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    dnsNames,
    isCA: x509.ca,
    serial: x509.serialNumber,
  };
}

/**
 * Checks a user-supplied CA: a CA certificate, currently valid, whose key matches. Returns a
 * problem description (for Stalled messages) or null.
 */
export function checkCA(ca: KeyPairPem, now: Date): string | null {
  let info: CertInfo;
  try {
    info = certInfo(ca.certPem);
  } catch {
    return 'tls.crt is not a PEM certificate';
  }
  if (!info.isCA) return 'tls.crt is not a CA certificate (basicConstraints CA:FALSE)';
  if (info.notAfter <= now) return `the CA certificate expired at ${info.notAfter.toISOString()}`;
  try {
    const cert = pki.certificateFromPem(ca.certPem);
    const key = parseKey(ca.keyPem);
    const pub = cert.publicKey as forge.pki.rsa.PublicKey;
    if (!pub.n || pub.n.compareTo(key.n) !== 0) return 'tls.key does not match tls.crt';
  } catch {
    return 'tls.key is not an RSA private key matching tls.crt (weft signs with RSA)';
  }
  return null;
}

/** Verifies that `leafPem` was signed by `caPem` (used by tests and by renewal checks). */
export function signedBy(leafPem: string, caPem: string): boolean {
  try {
    return new X509Certificate(leafPem).verify(new X509Certificate(caPem).publicKey);
  } catch {
    return false;
  }
}

export type RenewReason = 'Missing' | 'Expiring' | 'SANChanged' | 'IssuerChanged' | null;

/**
 * Whether a serving certificate must be (re)issued: none yet, past two thirds of its
 * lifetime, its DNS names differ from the wanted set, or it was not signed by the current CA.
 */
export function renewalReason(
  current: KeyPairPem | null,
  want: { dnsNames: string[]; caPem: string; now: Date },
): RenewReason {
  if (!current) return 'Missing';
  let info: CertInfo;
  try {
    info = certInfo(current.certPem);
  } catch {
    return 'Missing';
  }
  if (!signedBy(current.certPem, want.caPem)) return 'IssuerChanged';
  const wanted = [...new Set(want.dnsNames)].sort().join(',');
  if ([...new Set(info.dnsNames)].sort().join(',') !== wanted) return 'SANChanged';
  if (want.now >= renewAt(info)) return 'Expiring';
  return null;
}

/** Renewal time: two thirds of the way through the certificate's validity. */
export function renewAt(info: Pick<CertInfo, 'notBefore' | 'notAfter'>): Date {
  const start = info.notBefore.getTime();
  return new Date(start + ((info.notAfter.getTime() - start) * 2) / 3);
}

/** Whether a CA should be regenerated (self-signed only): missing, invalid, or past 2/3 of life. */
export function caNeedsRenewal(current: KeyPairPem | null, now: Date): boolean {
  if (!current) return true;
  if (checkCA(current, now) !== null) return true;
  return now >= renewAt(certInfo(current.certPem));
}
