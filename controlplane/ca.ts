/**
 * weftd's workload CA: signs proxies' CSRs into SPIFFE certificates for the identity weftd has
 * already established (the service account of the proxy's TokenReview'd token), and hands out
 * the mesh root they should trust.
 *
 * The signing key lives in the root CA Secret the operator keeps (`weft-system/weft-root-ca`, or
 * the user's `caSecretRef`). A field-selected informer watches just that Secret, so weftd needs
 * RBAC on that one name only and a rotated root is used for the very next CSR. A Secret that turns
 * up broken or vanishes keeps the last good signer in use (the operator rewrites it; failing every
 * proxy's renewal in the meantime would take the mesh down), and says so in the log.
 *
 * Never logs key material: log lines carry the SPIFFE ID, serial, expiry and fingerprints only.
 */
import { X509Certificate } from 'node:crypto';
import { signWorkloadCsr, spiffeId } from '../pkg/certs/workload.js';
import type { CertificateRequest, CertificateResponse } from '../pkg/discovery/protocol.js';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import type { KubeClient } from '../pkg/kube/client.js';
import { Informer } from '../pkg/kube/informer.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import { signerFromSecret, type Signer } from './ca/signer.js';

export interface CertificateAuthorityOptions {
  kube: KubeClient;
  caSecret: { namespace: string; name: string };
  trustDomain: string;
  /** The mesh's workload certificate lifetime (Mesh spec.certificates.workloadCertTTL); also the cap. */
  workloadTtlMs: number;
  log: Logger;
  /** The clock (tests pin it). */
  now?: () => Date;
}

export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

export interface CertificateAuthorityStatus {
  ready: boolean;
  /** SHA-256 fingerprint and expiry of the signing certificate in use. */
  fingerprint?: string;
  notAfter?: string;
  /** Why the Secret as last seen is not usable, or that it was deleted (null when it is fine). */
  problem: string | null;
}

export interface CertificateAuthority {
  /** A usable signer has been loaded from the Secret. */
  ready(): boolean;
  /** Signs `req.csr` for `id`. WEFT_CA_NOT_READY before the Secret is read; WEFT_CSR_INVALID for a bad CSR. */
  handle(req: CertificateRequest, id: WorkloadIdentity): Promise<CertificateResponse>;
  /** The root (bundle) proxies should trust, or null before the Secret is read. */
  rootCertPem(): string | null;
  /** For weftd's /debug and readiness: what is loaded, and what is wrong with the Secret if anything. */
  status(): CertificateAuthorityStatus;
  /** Calls `fn` with the new root whenever it changes (the root-cert publisher listens). Returns an unsubscribe. */
  onRootChange(fn: (rootPem: string) => void): () => void;
  /** A reloaded mesh.yaml's workloadCertTTL: used from the next CSR (proxies rotate at half-life). */
  setWorkloadTtl(ms: number): void;
  stop(): void;
}

export function createCertificateAuthority(opts: CertificateAuthorityOptions): CertificateAuthority {
  const checkTtl = (ms: number): number => {
    if (!Number.isFinite(ms) || ms <= 0)
      throw new WeftError('WEFT_CERT_INVALID', `workload certificate TTL must be positive, got ${ms} ms`);
    return ms;
  };
  let workloadTtlMs = checkTtl(opts.workloadTtlMs);
  const now = opts.now ?? ((): Date => new Date());
  const where = `Secret ${opts.caSecret.namespace}/${opts.caSecret.name}`;
  const log = opts.log.child({ caSecret: `${opts.caSecret.namespace}/${opts.caSecret.name}` });
  const listeners = new Set<(rootPem: string) => void>();
  let signer: Signer | null = null;
  let problem: string | null = null;

  function load(secret: KubeObject): void {
    const result = signerFromSecret(secret, now());
    problem = result.ok ? null : result.problem;
    if (!result.ok) {
      log.error(
        signer
          ? `${where} is not a usable CA (${result.problem}); still signing with the previous one`
          : `${where} is not a usable CA (${result.problem}); CSRs are refused until it is`,
        { code: 'WEFT_CERT_INVALID' },
      );
      return;
    }
    const previous = signer;
    if (previous?.fingerprint === result.signer.fingerprint && previous.rootPem === result.signer.rootPem)
      return;
    signer = result.signer;
    log.info(previous ? 'CA rotated: new certificates use the new signer' : 'CA loaded', {
      fingerprint: result.signer.fingerprint,
      notAfter: result.signer.notAfter.toISOString(),
      intermediates: result.signer.intermediates.length,
    });
    if (previous?.rootPem !== result.signer.rootPem) {
      for (const fn of listeners) {
        try {
          fn(result.signer.rootPem);
        } catch (err) {
          log.error('A root-change listener threw', { error: errorMessage(err) });
        }
      }
    }
  }

  const informer = new Informer<KubeObject>(
    opts.kube,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: opts.caSecret.namespace,
      fieldSelector: `metadata.name=${opts.caSecret.name}`,
    },
    log,
  );
  informer.on((type, secret) => {
    if (type !== 'delete') return load(secret);
    problem = `${where} was deleted`;
    log.warn(
      signer
        ? `${where} was deleted; still signing with the last CA read from it`
        : `${where} was deleted before it could be read`,
    );
  });
  informer.start();

  async function handle(req: CertificateRequest, id: WorkloadIdentity): Promise<CertificateResponse> {
    await Promise.resolve(); // callers always get a rejected promise, never a synchronous throw
    const current = signer;
    if (!current)
      throw new WeftError(
        'WEFT_CA_NOT_READY',
        `weftd has not read a usable CA from ${where} yet; retry shortly`,
      );
    const signingTime = now();
    // The last good CA is kept through a broken or deleted Secret, but never past its own
    // expiry: a leaf capped to an expired root's notAfter would be born expired.
    if (signingTime >= current.notAfter)
      throw new WeftError(
        'WEFT_CA_NOT_READY',
        `the CA from ${where} expired at ${current.notAfter.toISOString()}; rotate the root (the operator does it for a self-signed root)`,
      );
    if (typeof (req as { csr?: unknown } | null)?.csr !== 'string')
      throw new WeftError('WEFT_CSR_INVALID', 'the request body must be {"csr": "<PEM>"}');
    const identity = spiffeId(opts.trustDomain, id.namespace, id.serviceAccount);
    const leaf = signWorkloadCsr(current.pair, req.csr, {
      spiffeId: identity,
      ttlMs: workloadTtlMs,
      now: signingTime,
    });
    const x509 = new X509Certificate(leaf);
    log.info('Issued workload certificate', {
      spiffeId: identity,
      serial: x509.serialNumber,
      notAfter: new Date(x509.validTo).toISOString(),
    });
    return { certChain: [leaf, ...current.intermediates], rootCert: current.rootPem };
  }

  return {
    ready: () => signer !== null,
    handle,
    rootCertPem: () => signer?.rootPem ?? null,
    status: () => ({
      ready: signer !== null,
      ...(signer ? { fingerprint: signer.fingerprint, notAfter: signer.notAfter.toISOString() } : {}),
      problem,
    }),
    onRootChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    setWorkloadTtl(ms) {
      if (checkTtl(ms) === workloadTtlMs) return;
      workloadTtlMs = ms;
      log.info('Workload certificate TTL changed; used from the next CSR', { workloadTtlMs });
    },
    stop: () => informer.stop(),
  };
}
