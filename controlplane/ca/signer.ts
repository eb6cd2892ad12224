/**
 * The workload CA's signing material, read from the root CA Secret (type kubernetes.io/tls):
 * `tls.crt` is the signing certificate (optionally followed by intermediates up to the root),
 * `tls.key` its key, `ca.crt` the root(s) proxies trust. With a self-signed mesh root all three
 * name the same certificate; with a user's intermediate CA (`caSecretRef`) the intermediates go
 * into every issued chain so a peer that trusts only the root still verifies the leaf.
 *
 * Pure: no I/O, the clock is a parameter. Never puts key material into a message.
 */
import { X509Certificate } from 'node:crypto';
import { checkCA, type KeyPairPem } from '../../pkg/certs/index.js';
import type { KubeObject } from '../../pkg/kube/types.js';

export interface Signer {
  pair: KeyPairPem;
  /** Certificates between the leaf and the root, leaf-side first (empty for a root signer). */
  intermediates: string[];
  /** What proxies trust: ca.crt, or the signing certificate itself when ca.crt is absent. */
  rootPem: string;
  /** SHA-256 fingerprint of the signing certificate: tells rotations apart in logs. */
  fingerprint: string;
  notAfter: Date;
}

export type SignerResult = { ok: true; signer: Signer } | { ok: false; problem: string };

/** One PEM certificate with its own line ending kept, so a single-cert bundle splits into itself. */
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----(?:\r?\n)?/g;

export function splitPemCerts(bundle: string): string[] {
  return bundle.match(PEM_CERT) ?? [];
}

export function field(secret: KubeObject, key: string): string | undefined {
  const v = (secret as { data?: Record<string, string> }).data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function sameCert(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
  } catch {
    return false;
  }
}

/** Builds the signer from a Secret, or says (without key material) what is wrong with it. */
export function signerFromSecret(secret: KubeObject, now: Date): SignerResult {
  const crt = field(secret, 'tls.crt');
  const keyPem = field(secret, 'tls.key');
  if (!crt || !keyPem) return { ok: false, problem: 'the Secret lacks tls.crt or tls.key' };
  const chain = splitPemCerts(crt);
  const signing = chain[0];
  if (!signing) return { ok: false, problem: 'tls.crt holds no PEM certificate' };
  const pair = { certPem: signing, keyPem };
  const problem = checkCA(pair, now);
  if (problem) return { ok: false, problem };
  const caCrt = field(secret, 'ca.crt');
  const roots = caCrt ? splitPemCerts(caCrt) : [];
  // ca.crt verbatim: proxies get exactly what the Secret says (it may hold more than one root).
  const rootPem = roots.length > 0 ? roots.join('') : (chain[chain.length - 1] ?? signing);
  // Everything in tls.crt that is not a trusted root travels with the leaf.
  const rootList = roots.length > 0 ? roots : [chain[chain.length - 1] ?? signing];
  const intermediates = chain.filter((c) => !rootList.some((r) => sameCert(c, r)));
  const x509 = new X509Certificate(signing);
  return {
    ok: true,
    signer: {
      pair,
      intermediates,
      rootPem,
      fingerprint: x509.fingerprint256,
      notAfter: new Date(x509.validTo),
    },
  };
}
