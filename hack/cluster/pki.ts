/**
 * Certificates for the local cluster and for tests: a CA of its own, serving certificates with
 * IP SANs (Go's TLS ignores the CN, so 127.0.0.1 must be a SAN), and client certificates whose
 * CN/O become the Kubernetes user and groups.
 *
 * RSA keys come from node:crypto (native, ~50 ms) rather than node-forge's pure-JS generator
 * (seconds per key on this machine); node-forge builds and signs the X.509 certificates.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { serialNumber } from '../../pkg/certs/index.js';

export interface KeyPairPem {
  keyPem: string;
  publicKeyPem: string;
}

export interface CertPem {
  certPem: string;
  keyPem: string;
}

export interface CertSpec {
  commonName: string;
  /** Becomes the user's groups when the certificate authenticates to kube-apiserver. */
  organizations?: string[];
  /** DNS names and IP addresses; each goes into the right kind of SAN. */
  hosts?: string[];
  usage: 'server' | 'client' | 'both';
  validDays?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function generateRsaKeyPair(bits = 2048): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { keyPem: privateKey, publicKeyPem: publicKey };
}

function subjectOf(commonName: string, organizations: string[] = []): forge.pki.CertificateField[] {
  return [
    { name: 'commonName', value: commonName },
    ...organizations.map((o) => ({ name: 'organizationName', value: o })),
  ];
}

/** Splits hosts into SAN entries: type 7 = IP address, type 2 = DNS name (RFC 5280). */
export function subjectAltNames(hosts: string[]): Array<{ type: number; value?: string; ip?: string }> {
  return hosts.map((h) => (isIP(h) !== 0 ? { type: 7, ip: h } : { type: 2, value: h }));
}

function newCertificate(publicKeyPem: string, validDays: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serialNumber();
  // Backdate an hour so a clock a little behind does not reject a fresh certificate.
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + validDays * DAY_MS);
  return cert;
}

export function createCA(commonName: string, validDays = 3650): CertPem {
  const keys = generateRsaKeyPair();
  const cert = newCertificate(keys.publicKeyPem, validDays);
  const subject = subjectOf(commonName);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

function extendedKeyUsage(usage: CertSpec['usage']): Record<string, unknown> {
  return {
    name: 'extKeyUsage',
    serverAuth: usage !== 'client',
    clientAuth: usage !== 'server',
  };
}

export function issueCert(ca: CertPem, spec: CertSpec): CertPem {
  if (spec.usage !== 'client' && (spec.hosts ?? []).length === 0) {
    throw new Error(`serving certificate "${spec.commonName}" needs at least one host`);
  }
  const keys = generateRsaKeyPair();
  const cert = newCertificate(keys.publicKeyPem, spec.validDays ?? 365);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  cert.setSubject(subjectOf(spec.commonName, spec.organizations));
  cert.setIssuer(caCert.subject.attributes);
  const extensions: Array<Record<string, unknown>> = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    extendedKeyUsage(spec.usage),
  ];
  if ((spec.hosts ?? []).length > 0) {
    extensions.push({ name: 'subjectAltName', altNames: subjectAltNames(spec.hosts ?? []) });
  }
  cert.setExtensions(extensions);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

export interface ServingCert {
  /** PEM of the CA that signed the certificate (what a client trusts). */
  caPem: string;
  /** base64 of caPem: the form `caBundle` takes in webhook and APIService configs. */
  caBundle: string;
  certPem: string;
  keyPem: string;
}

/**
 * A fresh CA and a serving certificate for `hosts` (default 127.0.0.1 and localhost), for a
 * webhook or operator server that kube-apiserver or a test client must trust.
 */
export function makeServingCert(hosts: string[] = ['127.0.0.1', 'localhost']): ServingCert {
  if (hosts.length === 0) throw new Error('makeServingCert: give at least one host');
  const ca = createCA(`weft-test-ca-${randomBytes(4).toString('hex')}`, 30);
  const leaf = issueCert(ca, { commonName: hosts[0] ?? 'localhost', hosts, usage: 'server', validDays: 30 });
  return {
    caPem: ca.certPem,
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
  };
}
