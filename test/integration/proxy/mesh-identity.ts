/**
 * Mesh identities for tests: a root made with pkg/certs, workload certificates signed by the
 * CA's own CSR path (pkg/certs/workload.ts: the SPIFFE ID as the only URI SAN, clientAuth and
 * serverAuth), and a small IdentitySource (proxy/identity/types.ts) over them, so listeners are
 * tested against the contract without the real certificate client.
 */
import { generateKeyPairSync } from 'node:crypto';
import tls from 'node:tls';
import forge from 'node-forge';
import { createCA, type KeyPairPem } from '../../../pkg/certs/index.js';
import { buildCsr, generateWorkloadKey } from '../../../pkg/certs/csr.js';
import { signWorkloadCsr } from '../../../pkg/certs/workload.js';
import type { IdentitySource, WorkloadCredentials } from '../../../proxy/identity/types.js';

const HOUR = 3600_000;

export function meshRoot(name = 'weft test mesh'): KeyPairPem {
  return createCA({ commonName: name, ttlMs: 24 * HOUR, now: new Date() });
}

/** A workload key and certificate for `spiffeId`, valid from `now` (minus 5 min) for `ttlMs`. */
export function workloadCert(
  ca: KeyPairPem,
  spiffeId: string,
  opts: { ttlMs?: number; now?: Date } = {},
): KeyPairPem {
  // the CSR the proxy sends (pkg/certs/csr.ts): ECDSA P-256, empty subject, the SPIFFE ID as SAN
  const key = generateWorkloadKey('ECDSA_P256');
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const csrPem = buildCsr(key, spiffeId);
  const certPem = signWorkloadCsr(ca, csrPem, {
    spiffeId,
    ttlMs: opts.ttlMs ?? HOUR,
    now: opts.now ?? new Date(),
  });
  return { certPem, keyPem };
}

/** IdentitySource over fixed credentials; `set` rotates them (listeners are told). */
export class TestIdentity implements IdentitySource {
  private creds: WorkloadCredentials | null = null;
  private ctx: tls.SecureContext | null = null;
  private readonly listeners = new Set<() => void>();
  contextsBuilt = 0;

  constructor(spiffeId: string | null, ca: KeyPairPem, leaf?: KeyPairPem) {
    if (spiffeId !== null) this.set(spiffeId, ca, leaf ?? workloadCert(ca, spiffeId));
  }

  set(spiffeId: string, ca: KeyPairPem, leaf: KeyPairPem): void {
    const now = Date.now();
    this.creds = {
      spiffeId,
      trustDomain: new URL(spiffeId).host,
      certChainPem: leaf.certPem,
      keyPem: leaf.keyPem,
      rootsPem: ca.certPem,
      notBefore: new Date(now - 300_000),
      notAfter: new Date(now + HOUR),
    };
    this.ctx = tls.createSecureContext({
      key: leaf.keyPem,
      cert: leaf.certPem,
      ca: ca.certPem,
      minVersion: 'TLSv1.2',
    });
    this.contextsBuilt++;
    for (const l of this.listeners) l();
  }

  current(): WorkloadCredentials | null {
    return this.creds;
  }

  secureContext(): tls.SecureContext | null {
    return this.ctx;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** A client certificate signed by `ca` with arbitrary SANs (for identities the CA would never issue). */
export function leafWithSans(
  ca: KeyPairPem,
  altNames: { type: number; value: string }[],
  /** A subject CN, encoded as a UTF8String (any Unicode, as a user CA may issue it). */
  commonName?: string,
): KeyPairPem {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 300_000);
  cert.validity.notAfter = new Date(Date.now() + HOUR);
  cert.setSubject(
    commonName === undefined
      ? []
      : [
          {
            shortName: 'CN',
            value: forge.util.encodeUtf8(commonName),
            valueTagClass: forge.asn1.Type.UTF8 as never,
          },
        ],
  );
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames, critical: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}
