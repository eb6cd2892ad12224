/**
 * Keeps the mesh's certificates: the root CA (self-signed and stored by the operator, or the
 * user's from `spec.certificates.caSecretRef`) and serving certificates for weftd and the
 * webhook. Given the Secrets as they are now, decides what to (re)issue — missing, past two
 * thirds of the lifetime, SANs changed, or signed by a CA that is no longer current — and
 * returns the Secrets to apply plus the caBundle for the webhook configurations.
 *
 * Private keys only ever travel inside Secret objects; nothing here logs or reports them.
 */
import type { MeshCertificateStatus } from '../pkg/api/mesh.js';
import {
  caNeedsRenewal,
  certInfo,
  checkCA,
  createCA,
  issueServing,
  renewAt,
  renewalReason,
  type KeyPairPem,
} from '../pkg/certs/index.js';
import type { KubeObject } from '../pkg/kube/types.js';
import { CA_SECRET, SERVING_SECRET, standardLabels, type EffectiveSpec } from '../pkg/render/index.js';
import { MESH_NAMESPACE } from '../pkg/render/index.js';

export type SecretReader = (namespace: string, name: string) => Promise<KubeObject | null>;

export interface IssuedCert {
  secret: string;
  reason: string;
}

export interface CertPlan {
  secrets: KubeObject[];
  caBundle: string;
  status: MeshCertificateStatus;
  /** When the earliest certificate is due for renewal (the reconciler requeues for it). */
  nextRenewal: Date;
  issued: IssuedCert[];
  /** The certificates as they were in the cluster before this plan (what stays if applying fails). */
  found: CertObservation[];
  /** The certificates in force once `secrets` are applied. */
  planned: CertObservation[];
}

export type CertResult = { ok: true; plan: CertPlan } | { ok: false; reason: string; message: string };

/** One certificate the mesh depends on, as a Secret holds it (`certPem` absent: no certificate). */
export interface CertObservation {
  /** `namespace/name` of the Secret. */
  secret: string;
  role: 'root CA' | 'serving certificate';
  certPem?: string;
}

/** The CertificatesReady condition's content; `reason` is the condition's reason either way. */
export interface CertReadiness {
  ready: boolean;
  reason: string;
  message: string;
}

/**
 * CertificatesReady from the certificates themselves: each present, parseable, already valid and
 * not expired. One past its renewal point is still ready while renewal works; when `failure` says
 * this reconcile could not put new certificates in place, such a certificate makes it False
 * (RenewalFailed), as does one never issued (NotIssued). Every problem is named with its Secret.
 */
export function certificatesReadiness(
  certs: readonly CertObservation[],
  now: Date,
  failure?: { reason: string; message: string },
): CertReadiness {
  const problems: { reason: string; message: string }[] = [];
  let rootUntil: Date | undefined;
  let servingUntil: Date | undefined;
  for (const c of certs) {
    const what = `${c.role} in Secret ${c.secret}`;
    if (c.certPem === undefined) {
      problems.push(
        failure
          ? { reason: 'NotIssued', message: `${what} not issued yet: ${failure.message}` }
          : { reason: 'NotIssued', message: `${what} not issued yet` },
      );
      continue;
    }
    let info: ReturnType<typeof certInfo>;
    try {
      info = certInfo(c.certPem);
    } catch {
      problems.push({ reason: 'InvalidCertificate', message: `${what}: tls.crt is not a PEM certificate` });
      continue;
    }
    if (info.notAfter <= now) {
      problems.push({ reason: 'CertificateExpired', message: `${what} expired at ${iso(info.notAfter)}` });
      continue;
    }
    if (info.notBefore > now) {
      problems.push({
        reason: 'CertificateNotYetValid',
        message: `${what} is not valid before ${iso(info.notBefore)}`,
      });
      continue;
    }
    if (failure && now >= renewAt(info)) {
      problems.push({
        reason: 'RenewalFailed',
        message: `${what} expires at ${iso(info.notAfter)} and was due for renewal at ${iso(renewAt(info))}; renewing failed: ${failure.message}`,
      });
      continue;
    }
    const earlier = (a: Date | undefined, b: Date): Date => (a && a < b ? a : b);
    if (c.role === 'root CA') rootUntil = earlier(rootUntil, info.notAfter);
    else servingUntil = earlier(servingUntil, info.notAfter);
  }
  if (problems.length > 0)
    return { ready: false, reason: problems[0]!.reason, message: problems.map((p) => p.message).join('; ') };
  const parts = [
    rootUntil && `root CA valid until ${iso(rootUntil)}`,
    servingUntil && `serving certificates valid until ${iso(servingUntil)}`,
  ].filter(Boolean);
  return { ready: true, reason: 'Issued', message: parts.join(', ') || 'no certificates' };
}

export function servingDnsNames(service: string, namespace = MESH_NAMESPACE): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function decode(secret: KubeObject | null, key: string): string | undefined {
  const data = (secret as { data?: Record<string, string> } | null)?.data;
  const v = data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function pairFrom(secret: KubeObject | null): KeyPairPem | null {
  const certPem = decode(secret, 'tls.crt');
  const keyPem = decode(secret, 'tls.key');
  return certPem && keyPem ? { certPem, keyPem } : null;
}

function tlsSecret(mesh: string, name: string, pair: KeyPairPem, caPem: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: MESH_NAMESPACE, labels: standardLabels(mesh, name, 'certificates') },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem), 'ca.crt': b64(caPem) },
  };
}

interface Signer {
  pair: KeyPairPem;
  /** The root as found before this plan, and as planned. */
  found: CertObservation;
  planned: CertObservation;
  /** What clients trust (the root): goes into caBundle and ca.crt. */
  bundlePem: string;
  secrets: KubeObject[];
  issued: IssuedCert[];
}

async function selfSignedSigner(
  mesh: string,
  spec: EffectiveSpec,
  read: SecretReader,
  now: Date,
): Promise<Signer> {
  const secret = await read(MESH_NAMESPACE, CA_SECRET);
  const existing = pairFrom(secret);
  const renew = caNeedsRenewal(existing, now);
  const pair =
    !renew && existing
      ? existing
      : createCA({
          commonName: `weft-root-ca.${spec.trustDomain}`,
          ttlMs: spec.certificates.rootCertTTLms,
          now,
        });
  const where = `${MESH_NAMESPACE}/${CA_SECRET}`;
  return {
    pair,
    found: observe(where, 'root CA', decode(secret, 'tls.crt')),
    planned: observe(where, 'root CA', pair.certPem),
    bundlePem: pair.certPem,
    secrets: [tlsSecret(mesh, CA_SECRET, pair, pair.certPem)],
    issued: renew ? [{ secret: CA_SECRET, reason: existing ? 'Expiring' : 'Missing' }] : [],
  };
}

async function userSigner(
  spec: EffectiveSpec,
  read: SecretReader,
  now: Date,
): Promise<Signer | { reason: string; message: string }> {
  const ref = spec.certificates.caSecretRef!;
  const where = `spec.certificates.caSecretRef: Secret ${ref.namespace}/${ref.name}`;
  const secret = await read(ref.namespace, ref.name);
  if (!secret) return { reason: 'CASecretNotFound', message: `${where} not found` };
  const pair = pairFrom(secret);
  if (!pair) return { reason: 'InvalidCASecret', message: `${where} lacks tls.crt or tls.key` };
  const problem = checkCA(pair, now);
  if (problem) return { reason: 'InvalidCASecret', message: `${where}: ${problem}` };
  const bundlePem = decode(secret, 'ca.crt') ?? pair.certPem;
  const root = observe(`${ref.namespace}/${ref.name}`, 'root CA', bundlePem);
  return { pair, found: root, planned: root, bundlePem, secrets: [], issued: [] };
}

function observe(
  secret: string,
  role: CertObservation['role'],
  certPem: string | undefined,
): CertObservation {
  return certPem === undefined ? { secret, role } : { secret, role, certPem };
}

/** Decides and issues; network reads go through `read` (the reconciler passes the API). */
export async function planCertificates(
  mesh: string,
  spec: EffectiveSpec,
  read: SecretReader,
  now: Date,
  /** Extra SANs for the webhook certificate (the host of --webhook-url). */
  webhookExtraSans: string[] = [],
): Promise<CertResult> {
  const signer =
    spec.certificates.mode === 'caSecret'
      ? await userSigner(spec, read, now)
      : await selfSignedSigner(mesh, spec, read, now);
  if (!('pair' in signer)) return { ok: false, ...signer };
  const secrets = [...signer.secrets];
  const issued = [...signer.issued];
  const expiries: Date[] = [];
  const renewals: Date[] = [renewAt(certInfo(signer.pair.certPem))];
  const found = [signer.found];
  const planned = [signer.planned];
  for (const [service, secretName] of [
    ['weftd', SERVING_SECRET.weftd],
    ['weft-webhook', SERVING_SECRET.webhook],
  ] as const) {
    const dnsNames =
      service === 'weft-webhook'
        ? [...servingDnsNames(service), ...webhookExtraSans]
        : servingDnsNames(service);
    const current = await read(MESH_NAMESPACE, secretName);
    let pair = pairFrom(current);
    found.push(observe(`${MESH_NAMESPACE}/${secretName}`, 'serving certificate', decode(current, 'tls.crt')));
    const reason = renewalReason(pair, { dnsNames, caPem: signer.pair.certPem, now });
    if (reason !== null || !pair) {
      const leaf = issueServing(signer.pair, {
        commonName: dnsNames[2]!,
        dnsNames,
        ttlMs: spec.certificates.servingCertTTLms,
        now,
      });
      // With an intermediate CA, serve the chain so clients trusting only the root verify it.
      pair =
        signer.bundlePem === signer.pair.certPem
          ? leaf
          : { certPem: leaf.certPem + signer.pair.certPem, keyPem: leaf.keyPem };
      issued.push({ secret: secretName, reason: reason ?? 'Missing' });
    }
    const info = certInfo(pair.certPem);
    expiries.push(info.notAfter);
    renewals.push(renewAt(info));
    secrets.push(tlsSecret(mesh, secretName, pair, signer.bundlePem));
    planned.push(observe(`${MESH_NAMESPACE}/${secretName}`, 'serving certificate', pair.certPem));
  }
  const earliest = (ds: Date[]): Date => new Date(Math.min(...ds.map((d) => d.getTime())));
  const rootInfo = certInfo(signer.bundlePem);
  return {
    ok: true,
    plan: {
      secrets,
      caBundle: b64(signer.bundlePem),
      issued,
      found,
      planned,
      nextRenewal: earliest(renewals),
      status: {
        rootCertExpiresAt: iso(rootInfo.notAfter),
        servingCertExpiresAt: iso(earliest(expiries)),
        servingCertRenewAt: iso(earliest(renewals.slice(1))),
      },
    },
  };
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
