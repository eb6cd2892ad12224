/**
 * The proxy's workload identity (the `IdentitySource` of types.ts): a private key made in memory
 * (ECDSA P-256 by default), a CSR sent to weftd's CA with the pod's projected token
 * (`POST /v1/certificates`, pkg/discovery/protocol.ts), and the answer kept as the current
 * credentials with a TLS context built once per change.
 *
 * - **Rotation** at half of the remaining life of the certificate as received (Istio's
 *   SECRET_GRACE_PERIOD_RATIO 0.5, ±1% jitter so a fleet does not renew in step), with a new key
 *   each time. Connections already open keep the context they were made with; new ones get the
 *   new one: nothing is dropped.
 * - **Trust bundle**: the roots in weftd's answer plus those in the mounted root ConfigMap
 *   (`WEFT_CA_ROOT_PATH`, polled): during a root rotation weftd publishes old and new together and
 *   both are trusted until the old one is removed.
 * - **weftd down**: the certificate held stays in use; signing is retried with capped
 *   exponential backoff and jitter (1 s → 30 s). Once the certificate is within
 *   `expiryWarningRatio` of its life from expiry, every failed attempt logs at error level and
 *   `weft_proxy_cert_renewal_overdue` is 1 (alert on it).
 * - An answer is checked before use: the leaf carries our public key and a SPIFFE URI SAN, is in
 *   its validity period, and chains to a root of the bundle; anything else is a failed attempt.
 *
 * Never logs or exports the key: summaries carry serials, SPIFFE IDs, dates and fingerprints.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { fs } from '../../pkg/builtins/index.js';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import {
  buildCsr,
  generateWorkloadKey,
  WORKLOAD_KEY_ALGORITHMS,
  type WorkloadKeyAlgorithm,
} from '../../pkg/certs/csr.js';
import { parseSpiffeId, uriSansOf } from '../../pkg/certs/spiffe.js';
import { CERTIFICATES_PATH, type CertificateResponse } from '../../pkg/discovery/protocol.js';
import { WeftError, errorMessage } from '../../pkg/errors/index.js';
import { backoffDelay, type BackoffPolicy } from '../../pkg/kube/backoff.js';
import type { Logger } from '../../pkg/log/index.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { parseAddress } from '../discovery/client.js';
import type { IdentitySource, WorkloadCredentials } from './types.js';

/** Retry delays for signing: 1 s doubling to 30 s, half of it random. */
export const SIGNING_BACKOFF: BackoffPolicy = { baseMs: 1000, maxMs: 30_000, jitter: 0.5 };
/** Renew at this fraction of the remaining life (Istio's SECRET_GRACE_PERIOD_RATIO). */
export const ROTATION_RATIO = 0.5;
/** ± this fraction of the remaining life (Istio's SECRET_GRACE_PERIOD_RATIO_JITTER). */
export const ROTATION_JITTER = 0.01;
/** Warn loudly when less than this fraction of the life is left and renewal keeps failing. */
export const EXPIRY_WARNING_RATIO = 0.2;
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Node's setTimeout ceiling (~24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkloadIdentityOptions {
  /** host:port of weftd (WEFT_DISCOVERY_ADDRESS). */
  address: string;
  /** The mounted mesh root (verifies weftd, and is part of the trust bundle). */
  caRootPath: string;
  tokenPath: string;
  log: Logger;
  metrics?: MetricsRegistry;
  keyAlgorithm?: WorkloadKeyAlgorithm;
  backoff?: BackoffPolicy;
  random?: () => number;
  now?: () => number;
  /** How often the root file is polled (default 2 s). */
  rootPollMs?: number;
}

export interface CertificateSummary {
  spiffeId: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  valid: boolean;
  keyAlgorithm: WorkloadKeyAlgorithm;
  fingerprint256: string;
  /** The leaf's issuers, leaf-side first (intermediates), as serial + subject. */
  chain: { serialNumber: string; subject: string; notAfter: string }[];
  /**
   * The trusted root the chain leads to (checked when the certificate was installed): during a
   * root rotation this says whether the proxy already holds a certificate from the new root.
   */
  root: { serialNumber: string; fingerprint256: string } | null;
}

export interface RootSummary {
  serialNumber: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  valid: boolean;
  fingerprint256: string;
}

/** What `/certs` shows and `weftctl proxy-config secret` prints: never key material. */
export interface IdentitySummary {
  state: 'no-certificate' | 'valid' | 'expired';
  certificate: CertificateSummary | null;
  roots: RootSummary[];
  lastRenewal: string | null;
  nextRotation: string | null;
  renewalFailures: number;
  lastError: string | null;
}

export function parseKeyAlgorithm(text: string | undefined): WorkloadKeyAlgorithm {
  if (text === undefined || text === '') return 'ECDSA_P256';
  const up = text.toUpperCase().replace(/-/g, '_');
  const alias: Record<string, WorkloadKeyAlgorithm> = { ECDSA: 'ECDSA_P256', RSA: 'RSA_2048' };
  const alg = alias[up] ?? (WORKLOAD_KEY_ALGORITHMS.includes(up as WorkloadKeyAlgorithm) ? up : undefined);
  if (alg === undefined)
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `key algorithm ${JSON.stringify(text)} is not one of ${WORKLOAD_KEY_ALGORITHMS.join(', ')} (or ECDSA, RSA)`,
    );
  return alg as WorkloadKeyAlgorithm;
}

/** When to renew a certificate received at `now`: half its remaining life, ±1%. */
export function rotationTime(now: number, notAfter: number, random: () => number): number {
  const remaining = Math.max(0, notAfter - now);
  const ratio = ROTATION_RATIO + (random() * 2 - 1) * ROTATION_JITTER;
  return now + remaining * ratio;
}

/** The certificates of a PEM bundle (any text around them is ignored). */
export function pemCerts(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Roots deduplicated by fingerprint, in first-seen order. */
function mergeRoots(...bundles: string[]): X509Certificate[] {
  const out = new Map<string, X509Certificate>();
  for (const pem of bundles.flatMap(pemCerts)) {
    try {
      const x = new X509Certificate(pem);
      if (!out.has(x.fingerprint256)) out.set(x.fingerprint256, x);
    } catch {
      // a broken certificate in a bundle is skipped; the others still count
    }
  }
  return [...out.values()];
}

/** Checks weftd's answer against our key and the bundle; returns the parsed chain. */
export function checkAnswer(
  answer: CertificateResponse,
  key: KeyObject,
  roots: X509Certificate[],
  now: number,
): { leaf: X509Certificate; chain: X509Certificate[]; spiffeId: string; root: X509Certificate } {
  if (
    !Array.isArray(answer?.certChain) ||
    answer.certChain.length === 0 ||
    typeof answer.rootCert !== 'string'
  )
    throw new WeftError('WEFT_CERT_INVALID', 'weftd answered without certChain and rootCert');
  const chain = answer.certChain.map((pem) => new X509Certificate(pem));
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key))
    throw new WeftError('WEFT_CERT_INVALID', 'the certificate weftd issued is not for our key');
  const ids = uriSansOf(leaf.subjectAltName).filter((u) => parseSpiffeId(u) !== null);
  if (ids.length !== 1)
    throw new WeftError('WEFT_CERT_INVALID', `the certificate carries ${ids.length} SPIFFE IDs, expected 1`);
  if (now < Date.parse(leaf.validFrom) || now >= Date.parse(leaf.validTo))
    throw new WeftError(
      'WEFT_CERT_INVALID',
      `the certificate is not valid now (${leaf.validFrom} – ${leaf.validTo})`,
    );
  for (let i = 0; i + 1 < chain.length; i++)
    if (!chain[i]!.verify(chain[i + 1]!.publicKey))
      throw new WeftError(
        'WEFT_CERT_INVALID',
        `certificate ${i} of the chain is not signed by certificate ${i + 1}`,
      );
  const top = chain[chain.length - 1]!;
  const root = roots.find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  if (root === undefined)
    throw new WeftError('WEFT_CERT_INVALID', 'the certificate chain does not lead to a trusted root');
  return { leaf, chain, spiffeId: ids[0]!, root };
}

export class WorkloadIdentity implements IdentitySource {
  private creds: WorkloadCredentials | null = null;
  private context: SecureContext | null = null;
  private leaf: X509Certificate | null = null;
  private chain: X509Certificate[] = [];
  private roots: X509Certificate[] = [];
  /** The root of `roots` the current chain leads to. */
  private chainRoot: X509Certificate | null = null;
  private answerRoots = '';
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private failures = 0;
  private inFlight: Promise<void> | null = null;
  private readonly alg: WorkloadKeyAlgorithm;
  private readonly now: () => number;
  private readonly random: () => number;
  private metrics: MetricsRegistry | undefined;
  lastRenewal: number | null = null;
  nextRotation: number | null = null;
  lastError: string | null = null;
  renewals = 0;

  constructor(private readonly o: WorkloadIdentityOptions) {
    this.alg = o.keyAlgorithm ?? 'ECDSA_P256';
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    parseAddress(o.address); // a bad address is a start-up error, not a retry loop
    if (o.metrics) this.exportMetrics(o.metrics);
  }

  // --- IdentitySource ------------------------------------------------------------------------
  current(): WorkloadCredentials | null {
    return this.creds;
  }

  secureContext(): SecureContext | null {
    return this.context;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Holds a certificate that is valid now (the readiness gate). */
  valid(): boolean {
    return this.creds !== null && this.now() < this.creds.notAfter.getTime();
  }

  /** Why the proxy is not ready for mesh traffic, or null. */
  notReadyReason(): string | null {
    if (this.creds === null)
      return `no workload certificate yet (${this.lastError ?? 'first request to weftd in progress'})`;
    if (!this.valid()) return `the workload certificate expired at ${this.creds.notAfter.toISOString()}`;
    return null;
  }

  /** Starts fetching (resolves after the first attempt, successful or not) and watching the root file. */
  async start(): Promise<void> {
    fs.watchFile(
      this.o.caRootPath,
      { interval: this.o.rootPollMs ?? 2000, persistent: false },
      this.onRootFile,
    );
    await this.renew();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    fs.unwatchFile(this.o.caRootPath, this.onRootFile);
  }

  /** Renews now (tests, and an operator's `POST /certs/rotate` if ever wanted); one at a time. */
  renew(): Promise<void> {
    this.inFlight ??= this.attempt().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.fetchAndInstall();
      this.failures = 0;
      this.lastError = null;
      this.schedule(this.nextRotation! - this.now());
    } catch (err) {
      this.failures++;
      this.lastError = errorMessage(err);
      this.metrics?.inc('weft_proxy_cert_renewal_failures_total');
      const delay = backoffDelay(this.failures, this.o.backoff ?? SIGNING_BACKOFF, this.random);
      this.logFailure(delay);
      this.schedule(delay);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(delayMs, MAX_TIMER_MS));
    this.timer = setTimeout(() => {
      this.timer = null;
      // a chained long wait: re-check against the real rotation time
      if (this.nextRotation !== null && this.failures === 0 && this.now() < this.nextRotation - 1)
        return this.schedule(this.nextRotation - this.now());
      void this.renew();
    }, wait);
    this.timer.unref();
  }

  private logFailure(retryInMs: number): void {
    const c = this.creds;
    const fields = { error: this.lastError, failures: this.failures, retryInMs, address: this.o.address };
    if (c === null) {
      this.o.log.log(
        this.failures > 3 ? 'error' : 'warn',
        'Workload certificate not issued yet; retrying',
        fields,
      );
      return;
    }
    const left = c.notAfter.getTime() - this.now();
    if (this.overdue())
      this.o.log.error(
        left > 0
          ? `Workload certificate expires in ${Math.round(left / 1000)} s and weftd cannot renew it`
          : 'Workload certificate has EXPIRED and weftd cannot renew it: mesh mTLS fails until it does',
        { ...fields, spiffeId: c.spiffeId, notAfter: c.notAfter.toISOString() },
      );
    else this.o.log.warn('Workload certificate renewal failed; the current one stays in use', fields);
  }

  /** Renewal is failing and less than EXPIRY_WARNING_RATIO of the life is left (or it expired). */
  overdue(): boolean {
    const c = this.creds;
    if (c === null || this.failures === 0) return false;
    // the life as received: weftd backdates notBefore by 5 minutes (clock skew), which would make
    // a short-lived certificate (workloadCertTTL of minutes) look overdue at its first failure
    const from = Math.max(c.notBefore.getTime(), this.lastRenewal ?? -Infinity);
    const life = c.notAfter.getTime() - from;
    return c.notAfter.getTime() - this.now() < life * EXPIRY_WARNING_RATIO;
  }

  private async fetchAndInstall(): Promise<void> {
    const key = generateWorkloadKey(this.alg);
    const answer = await this.post(buildCsr(key));
    const fileRoots = this.readRootFile();
    const roots = mergeRoots(answer.rootCert, fileRoots);
    const { leaf, chain, spiffeId, root } = checkAnswer(answer, key, roots, this.now());
    this.answerRoots = answer.rootCert;
    this.install(key, leaf, chain, spiffeId, roots);
    this.chainRoot = root;
    const now = this.now();
    this.lastRenewal = now;
    this.renewals++;
    this.nextRotation = rotationTime(now, this.creds!.notAfter.getTime(), this.random);
    this.metrics?.inc('weft_proxy_cert_renewals_total');
    this.o.log.info('Workload certificate issued', {
      spiffeId,
      serial: leaf.serialNumber,
      notAfter: this.creds!.notAfter.toISOString(),
      nextRotation: new Date(this.nextRotation).toISOString(),
      keyAlgorithm: this.alg,
      roots: roots.length,
      rootSerial: root.serialNumber,
    });
  }

  private install(
    key: KeyObject,
    leaf: X509Certificate,
    chain: X509Certificate[],
    spiffeId: string,
    roots: X509Certificate[],
  ): void {
    const trustDomain = parseSpiffeId(spiffeId)!.trustDomain;
    const creds: WorkloadCredentials = {
      spiffeId,
      trustDomain,
      certChainPem: chain.map((c) => c.toString()).join(''),
      keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      rootsPem: roots.map((r) => r.toString()).join(''),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
    this.setCredentials(creds, leaf, chain, roots);
  }

  private setCredentials(
    creds: WorkloadCredentials,
    leaf: X509Certificate,
    chain: X509Certificate[],
    roots: X509Certificate[],
  ): void {
    // built before anything is swapped: a context that cannot be made leaves the old one in force
    const context = createSecureContext({ key: creds.keyPem, cert: creds.certChainPem, ca: creds.rootsPem });
    this.creds = creds;
    this.leaf = leaf;
    this.chain = chain;
    this.roots = roots;
    this.context = context;
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.o.log.error('An identity change listener threw', { error: errorMessage(err) });
      }
    }
  }

  private readRootFile(): string {
    try {
      return fs.readFileSync(this.o.caRootPath, 'utf8');
    } catch {
      return '';
    }
  }

  /** The mounted root ConfigMap changed: new bundle = weftd's last answer + the file. */
  private readonly onRootFile = (): void => {
    if (this.creds === null || this.leaf === null) return;
    const roots = mergeRoots(this.answerRoots, this.readRootFile());
    const same =
      roots.length === this.roots.length &&
      roots.every((r, i) => r.fingerprint256 === this.roots[i]!.fingerprint256);
    if (same) return;
    try {
      this.setCredentials(
        { ...this.creds, rootsPem: roots.map((r) => r.toString()).join('') },
        this.leaf,
        this.chain,
        roots,
      );
      this.o.log.info('Trust bundle changed', { roots: roots.map((r) => r.fingerprint256.slice(0, 23)) });
    } catch (err) {
      this.o.log.warn('Trust bundle not updated; keeping the previous one', { error: errorMessage(err) });
    }
  };

  private async post(csr: string): Promise<CertificateResponse> {
    const { host, port } = parseAddress(this.o.address);
    const token = fs.readFileSync(this.o.tokenPath, 'utf8').trim();
    const ca = fs.readFileSync(this.o.caRootPath, 'utf8');
    const body = JSON.stringify({ csr });
    return new Promise((resolve, reject) => {
      const req = https.request({
        host,
        port,
        servername: /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host,
        ca,
        path: CERTIFICATES_PATH,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      });
      req.once('timeout', () => req.destroy(new Error(`no answer from weftd in ${REQUEST_TIMEOUT_MS} ms`)));
      req.once('error', reject);
      req.once('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) return req.destroy(new Error('weftd answer larger than 1 MiB'));
          chunks.push(c);
        });
        res.once('error', reject);
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200)
            return reject(
              new Error(`weftd answered HTTP ${res.statusCode ?? 0}: ${text.trim().slice(0, 500)}`),
            );
          try {
            resolve(JSON.parse(text) as CertificateResponse);
          } catch {
            reject(new Error('weftd answered with something that is not JSON'));
          }
        });
      });
      req.end(body);
    });
  }

  // --- observability -------------------------------------------------------------------------
  summary(): IdentitySummary {
    const now = this.now();
    const leaf = this.leaf;
    return {
      state: this.creds === null ? 'no-certificate' : this.valid() ? 'valid' : 'expired',
      certificate:
        leaf === null || this.creds === null
          ? null
          : {
              spiffeId: this.creds.spiffeId,
              serialNumber: leaf.serialNumber,
              notBefore: this.creds.notBefore.toISOString(),
              notAfter: this.creds.notAfter.toISOString(),
              valid: this.valid(),
              keyAlgorithm: this.alg,
              fingerprint256: leaf.fingerprint256,
              chain: this.chain.slice(1).map((c) => ({
                serialNumber: c.serialNumber,
                subject: c.subject,
                notAfter: new Date(c.validTo).toISOString(),
              })),
              root:
                this.chainRoot === null
                  ? null
                  : {
                      serialNumber: this.chainRoot.serialNumber,
                      fingerprint256: this.chainRoot.fingerprint256,
                    },
            },
      roots: this.roots.map((r) => ({
        serialNumber: r.serialNumber,
        subject: r.subject,
        notBefore: new Date(r.validFrom).toISOString(),
        notAfter: new Date(r.validTo).toISOString(),
        valid: now >= Date.parse(r.validFrom) && now < Date.parse(r.validTo),
        fingerprint256: r.fingerprint256,
      })),
      lastRenewal: this.lastRenewal === null ? null : new Date(this.lastRenewal).toISOString(),
      nextRotation: this.nextRotation === null ? null : new Date(this.nextRotation).toISOString(),
      renewalFailures: this.failures,
      lastError: this.lastError,
    };
  }

  /** Exports the expiry gauges and renewal counters through the proxy's registry. */
  exportMetrics(m: MetricsRegistry): void {
    this.metrics = m;
    m.gauge(
      'istio_agent_cert_expiry_seconds',
      'Seconds until the workload certificate (resource_name="default") and the first trusted root (ROOTCA) expire; negative once expired.',
      () => {
        const out: [string, number][] = [];
        const now = this.now();
        if (this.creds)
          out.push(['resource_name="default"', Math.round((this.creds.notAfter.getTime() - now) / 1000)]);
        if (this.roots.length > 0)
          out.push([
            'resource_name="ROOTCA"',
            Math.round((Math.min(...this.roots.map((r) => Date.parse(r.validTo))) - now) / 1000),
          ]);
        return out;
      },
    );
    m.gauge(
      'weft_proxy_cert_renewal_overdue',
      '1 while renewal fails and less than 20% of the workload certificate life is left (or it expired).',
      () => [['', this.overdue() ? 1 : 0]],
    );
  }
}
