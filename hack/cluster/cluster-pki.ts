/**
 * The cluster's PKI on disk (`<stateDir>/pki`). Files are created once and reused by later
 * `up`s, so a restarted kube-apiserver keeps trusting the tokens and certificates it issued.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCA, generateRsaKeyPair, issueCert, type CertPem, type CertSpec } from './pki.js';
import { writeKubeconfig } from './kubeconfig.js';
import type { CertFiles, ClusterPki } from './types.js';

function writePrivate(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
}

function ensureCA(dir: string): CertFiles {
  const files = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  if (!existsSync(files.cert) || !existsSync(files.key)) {
    const ca = createCA('weft-local-cluster-ca');
    writePrivate(files.key, ca.keyPem);
    writeFileSync(files.cert, ca.certPem);
  }
  return files;
}

function ensureServiceAccountKeys(dir: string): { key: string; pub: string } {
  const files = { key: join(dir, 'sa.key'), pub: join(dir, 'sa.pub') };
  if (!existsSync(files.key) || !existsSync(files.pub)) {
    const kp = generateRsaKeyPair();
    writePrivate(files.key, kp.keyPem);
    writeFileSync(files.pub, kp.publicKeyPem);
  }
  return files;
}

export function openClusterPki(dir: string, apiserverUrl: () => string): ClusterPki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = ensureCA(dir);
  const serviceAccount = ensureServiceAccountKeys(dir);
  let caPem: CertPem | undefined;
  const loadCA = (): CertPem =>
    (caPem ??= { certPem: readFileSync(ca.cert, 'utf8'), keyPem: readFileSync(ca.key, 'utf8') });

  const ensureCert = (name: string, spec: CertSpec): CertFiles => {
    const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    if (!existsSync(files.cert) || !existsSync(files.key)) {
      const issued = issueCert(loadCA(), spec);
      writePrivate(files.key, issued.keyPem);
      writeFileSync(files.cert, issued.certPem);
    }
    return files;
  };

  const ensureKubeconfig = (name: string, commonName: string, organizations: string[] = []): string => {
    const files = ensureCert(`${name}-client`, { commonName, organizations, usage: 'client' });
    const path = join(dir, '..', `${name}.kubeconfig`);
    // Rewritten every time: the server URL is the one thing that may change between `up`s.
    writeKubeconfig(path, {
      server: apiserverUrl(),
      caFile: ca.cert,
      certFile: files.cert,
      keyFile: files.key,
      user: commonName,
    });
    return path;
  };

  return { dir, ca, serviceAccount, ensureCert, ensureKubeconfig };
}
