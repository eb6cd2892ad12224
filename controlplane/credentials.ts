/**
 * DestinationRule `tls.credentialName` (SIMPLE / MUTUAL), and Gateway servers' `tls.credentialName`
 * (the certificate a gateway's HTTPS server presents, with `ca.crt` for MUTUAL client verification):
 * weftd reads the Secret of that name in
 * the namespace of the proxy that uses it (Istio: "this secret must exist in the namespace of the
 * proxy using the certificates") and delivers its PEM in that proxy's config (`credentials`).
 *
 * Which proxies: gateways only. Istio applies credentialName at sidecars only for a
 * DestinationRule with a workloadSelector, which weft's translation does not support yet; a
 * sidecar's cluster naming one fails its connections with that reason (never plaintext).
 *
 * Keys, as Istio reads them: `cert` + `key` (+ `cacert`), else a TLS Secret's `tls.crt` +
 * `tls.key` (+ `ca.crt`); the CA may instead come from a Secret `<name>-cacert` (`cacert` or
 * `ca.crt`). A CRL (`crl`, `ca.crl`) is not supported: refused rather than ignored.
 *
 * Reading: one field-selected informer per Secret actually referenced (and its `-cacert`), so
 * weftd caches only those Secrets, never every Secret of the cluster, and RBAC may grant exactly
 * them (a Role with resourceNames, as for the CA Secret). A Secret weftd may not read, one that
 * is missing, lacks a key or holds bad PEM yields a credential with `error`: the proxy fails the
 * connections that need it (503 UF; the reason in its /clusters and `weftctl proxy-config
 * secret`, not in the client's body), weftd logs the reason once per change and counts unusable
 * credentials in `weft_weftd_credentials{state}`. At most MAX_WATCHED_SECRETS Secrets are
 * watched (one API watch each): a DestinationRule naming thousands of credentials cannot make
 * weftd open thousands of watches.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { errorMessage } from '../pkg/errors/index.js';
import { isApiError, type KubeClient } from '../pkg/kube/client.js';
import { Informer } from '../pkg/kube/informer.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import type { ProxyConfig, UpstreamCredential } from '../pkg/proxyconfig/types.js';
import { MANAGED_BY } from '../pkg/render/labels.js';
import { isDNS1123Subdomain } from '../pkg/validation/primitives.js';
import { field, splitPemCerts } from './ca/signer.js';

/** A credential source: what the config generator asks for each credentialName a proxy needs. */
export interface CredentialSource {
  get(namespace: string, name: string): UpstreamCredential;
}

/** The suffix of the Secret that may hold the CA of a credential (Istio's `-cacert`). */
export const CA_SECRET_SUFFIX = '-cacert';

/** Secrets watched at most (each is one API server watch); past it, new credentials are errors. */
export const MAX_WATCHED_SECRETS = 512;

/**
 * credentialName values a proxy's clusters use for SIMPLE/MUTUAL origination (a `configmap://`
 * one too: its credential then says it is not supported).
 */
export function credentialNames(
  config: Pick<ProxyConfig, 'clusters'> & Partial<Pick<ProxyConfig, 'listeners'>>,
): string[] {
  const names = new Set<string>();
  for (const c of config.clusters) {
    const n = c.tls?.credentialName;
    if (n !== undefined && n !== '' && (c.tls!.mode === 'SIMPLE' || c.tls!.mode === 'MUTUAL')) names.add(n);
  }
  // the server certificates of the gateway's own TLS listeners (Gateway SIMPLE/MUTUAL servers;
  // ISTIO_MUTUAL serves the workload certificate and names none)
  for (const l of config.listeners ?? [])
    if (l.protocol === 'HTTP')
      for (const s of l.tls?.servers ?? []) if (s.credentialName !== undefined) names.add(s.credentialName);
  return [...names].sort();
}

function hasCertAndKey(secret: KubeObject): boolean {
  return (
    (field(secret, 'cert') !== undefined && field(secret, 'key') !== undefined) ||
    (field(secret, 'tls.crt') !== undefined && field(secret, 'tls.key') !== undefined)
  );
}

function keysOf(secret: KubeObject): string[] {
  return Object.keys((secret as { data?: Record<string, string> }).data ?? {}).sort();
}

/**
 * The Secret a credentialName names: the name itself, or after Istio's `kubernetes://` prefix.
 * Anything that is not a Secret name (a `configmap://` CA, a name a field selector would read as
 * more than a name) is an error, never a watch.
 */
export function secretNameOf(credentialName: string): string | { error: string } {
  if (credentialName.startsWith('configmap://'))
    return {
      error: `credentialName ${credentialName}: a CA from a ConfigMap (configmap://) is not supported yet`,
    };
  const name = credentialName.startsWith('kubernetes://')
    ? credentialName.slice('kubernetes://'.length)
    : credentialName;
  if (!isDNS1123Subdomain(name) || name.length + CA_SECRET_SUFFIX.length > 253)
    return {
      error: `credentialName ${JSON.stringify(credentialName)} is not a Secret name (DNS-1123 subdomain)`,
    };
  return name;
}

/** Checks one PEM field; returns an error text or undefined. */
function checkCerts(pem: string, what: string): string | undefined {
  const blocks = splitPemCerts(pem);
  if (blocks.length === 0) return `${what} holds no PEM certificate`;
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      return `${what}: certificate ${i + 1} is not valid PEM/X.509 (${errorMessage(err)})`;
    }
  }
  return undefined;
}

/** The label the operator puts on everything it renders or issues. */
const WEFT_MANAGED = { label: 'app.kubernetes.io/managed-by', value: MANAGED_BY } as const;

/**
 * Why a Secret is never a credential, or undefined. weftd may read every Secret of a gateway's
 * namespace (the rendered Role, docs/controlplane.md), and a gateway may run in weft-system:
 * whoever writes a Gateway must not get weft's own keys served or pushed to a gateway that way
 * (the operator's root CA and serving certificates carry its managed-by label), nor a
 * service-account token (Istio's credentials controller skips that type too).
 */
export function notACredential(secret: KubeObject): string | undefined {
  const where = `Secret ${secret.metadata.namespace ?? ''}/${secret.metadata.name}`;
  if (secret.metadata.labels?.[WEFT_MANAGED.label] === WEFT_MANAGED.value)
    return `${where} is weft's own (${WEFT_MANAGED.label}=${WEFT_MANAGED.value}); weft never delivers it as a credential`;
  if ((secret as { type?: string }).type === 'kubernetes.io/service-account-token')
    return `${where} is a service-account token, never a credential`;
  return undefined;
}

/**
 * The credential in `secret` (and the CA in `caSecret`, `<name>-cacert`), or why it is unusable.
 * `undefined` Secrets are missing. Never includes key material in an error.
 */
export function credentialFromSecrets(
  namespace: string,
  name: string,
  secret: KubeObject | undefined,
  caSecret: KubeObject | undefined,
): UpstreamCredential {
  const source = `${namespace}/${name}`;
  if (secret === undefined && caSecret === undefined) return { source, error: `Secret ${source} not found` };
  const sources = [secret ? source : undefined, caSecret ? `${source}${CA_SECRET_SUFFIX}` : undefined]
    .filter((s) => s !== undefined)
    .join(', ');
  const fail = (error: string): UpstreamCredential => ({ source: sources, error });
  const refused = [secret, caSecret]
    .map((x) => (x === undefined ? undefined : notACredential(x)))
    .find(Boolean);
  if (refused !== undefined) return fail(refused);
  let certChain: string | undefined;
  let privateKey: string | undefined;
  let ca: string | undefined;
  let keyName = '';
  let certName = '';
  if (secret !== undefined) {
    const crl = ['crl', 'ca.crl'].find((k) => field(secret, k) !== undefined);
    if (crl !== undefined)
      return fail(
        `Secret ${source} has a CRL (${crl}); weft does not check CRLs yet, so it refuses the credential`,
      );
    if (field(secret, 'cert') !== undefined || field(secret, 'key') !== undefined) {
      [certName, keyName] = ['cert', 'key'];
    } else if (field(secret, 'tls.crt') !== undefined || field(secret, 'tls.key') !== undefined) {
      [certName, keyName] = ['tls.crt', 'tls.key'];
    }
    if (certName !== '') {
      certChain = field(secret, certName);
      privateKey = field(secret, keyName);
      if (certChain === undefined || privateKey === undefined)
        return fail(
          `Secret ${source} has ${certChain === undefined ? keyName : certName} but no ${certChain === undefined ? certName : keyName}`,
        );
    }
    ca = field(secret, 'cacert') ?? field(secret, 'ca.crt');
    if (certName === '' && ca === undefined)
      return fail(
        `Secret ${source} has none of the expected keys (cert and key, or tls.crt and tls.key, and cacert or ca.crt); it has: ${keysOf(secret).join(', ') || 'no data'}`,
      );
  }
  if (ca === undefined && caSecret !== undefined) {
    ca = field(caSecret, 'cacert') ?? field(caSecret, 'ca.crt');
    if (ca === undefined) return fail(`Secret ${source}${CA_SECRET_SUFFIX} has no cacert or ca.crt key`);
  }
  if (certChain !== undefined && privateKey !== undefined) {
    const bad = checkCerts(certChain, `${certName} of Secret ${source}`);
    if (bad !== undefined) return fail(bad);
    let key;
    try {
      key = createPrivateKey(privateKey);
    } catch {
      // the parser's message could quote the key: say only which field is wrong
      return fail(`${keyName} of Secret ${source} is not a PEM private key`);
    }
    if (!new X509Certificate(splitPemCerts(certChain)[0]!).checkPrivateKey(key))
      return fail(`${keyName} of Secret ${source} does not match the certificate in ${certName}`);
  }
  if (ca !== undefined) {
    const bad = checkCerts(ca, `the CA of credential ${source}`);
    if (bad !== undefined) return fail(bad);
  }
  return {
    source: sources,
    ...(certChain !== undefined ? { certChain } : {}),
    ...(privateKey !== undefined ? { privateKey } : {}),
    ...(ca !== undefined ? { caCertificates: ca } : {}),
  };
}

interface Watched {
  informer: Pick<Informer<KubeObject>, 'isSynced' | 'get'>;
  /** A LIST/GET refused with this (403 …): the informer retries, the credential says why meanwhile. */
  problem: string | undefined;
}

/** Stands in for an informer past MAX_WATCHED_SECRETS (its `problem` says why). */
const NOT_WATCHED: Watched['informer'] = { isSynced: false, get: () => undefined };

/**
 * Credentials read from Secrets on demand: the first `get` of namespace/name starts the watches
 * and answers "not read yet" (an error: fail closed); `onChange` fires when a watched Secret is
 * listed, changes or goes, so weftd recomputes and pushes.
 */
export class SecretCredentials implements CredentialSource {
  private readonly watched = new Map<string, Watched>();
  private readonly informers: Informer<KubeObject>[] = [];
  private readonly lastState = new Map<string, string>();
  private readonly parsed = new Map<string, { versions: string; cred: UpstreamCredential }>();
  private stopped = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly log: Logger,
    private readonly onChange: () => void,
    private readonly onState?: (counts: { usable: number; unusable: number }) => void,
    private readonly maxWatched = MAX_WATCHED_SECRETS,
    /** `namespace/name` of Secrets never read as credentials: weftd's CA (`--ca-secret`). */
    private readonly reserved: ReadonlySet<string> = new Set(),
  ) {}

  get(namespace: string, name: string): UpstreamCredential {
    const source = `${namespace}/${name}`;
    const cred = this.read(namespace, name);
    this.report(source, cred);
    return cred;
  }

  /**
   * The credential as `get` gives it, but only when a gateway's config already asked for it (its
   * Secret is watched), else undefined. The status writer judges what gateways use with this: it
   * starts no watch (a Gateway author cannot spend the watch budget) and answers nothing about
   * Secrets no gateway reads (no oracle for Secrets in other namespaces).
   */
  peek(namespace: string, credentialName: string): UpstreamCredential | undefined {
    const name = secretNameOf(credentialName);
    if (typeof name === 'object' || !this.watched.has(`${namespace}/${name}`)) return undefined;
    return this.read(namespace, credentialName);
  }

  private read(namespace: string, credentialName: string): UpstreamCredential {
    const source = `${namespace}/${credentialName}`;
    const name = secretNameOf(credentialName);
    if (typeof name === 'object') return { source, error: name.error };
    // weftd's CA (a user's caSecretRef has no weft label): refused before it is even watched
    if (this.reserved.has(`${namespace}/${name}`))
      return {
        source,
        error: `Secret ${namespace}/${name} is weftd's CA; weft never delivers it as a credential`,
      };
    const main = this.watch(namespace, name);
    if (main.problem !== undefined) return { source, error: main.problem };
    if (!main.informer.isSynced) return { source, error: `Secret ${source} not read yet` };
    const secret = main.informer.get(name, namespace);
    if (secret !== undefined && (field(secret, 'cacert') ?? field(secret, 'ca.crt')) !== undefined)
      return this.parse(namespace, name, secret, undefined);
    // no CA in the Secret (or no Secret): the CA may be in <name>-cacert, watched only then
    const caName = `${name}${CA_SECRET_SUFFIX}`;
    const ca = this.watch(namespace, caName);
    if (ca.problem !== undefined) {
      if (secret === undefined) return { source, error: `Secret ${source} not found` };
      // The CA is optional: a gateway's SIMPLE server needs only the certificate and key, and RBAC
      // may grant weftd exactly the named Secret. A -cacert it may not read leaves the credential
      // without a CA (MUTUAL serving and origination then refuse it for that reason: fail closed)
      // instead of taking the certificate and key down with it.
      return hasCertAndKey(secret)
        ? this.parse(namespace, name, secret, undefined)
        : { source, error: ca.problem };
    }
    if (!ca.informer.isSynced) return { source, error: `Secret ${namespace}/${caName} not read yet` };
    return this.parse(namespace, name, secret, ca.informer.get(caName, namespace));
  }

  /** credentialFromSecrets, once per pair of Secret versions (every gateway push asks again). */
  private parse(
    namespace: string,
    name: string,
    secret: KubeObject | undefined,
    caSecret: KubeObject | undefined,
  ): UpstreamCredential {
    const key = `${namespace}/${name}`;
    const versions = `${secret?.metadata.resourceVersion ?? '-'}|${caSecret?.metadata.resourceVersion ?? '-'}`;
    const hit = this.parsed.get(key);
    if (hit?.versions === versions && secret?.metadata.resourceVersion !== undefined) return hit.cred;
    const cred = credentialFromSecrets(namespace, name, secret, caSecret);
    this.parsed.set(key, { versions, cred });
    return cred;
  }

  /** Logs a credential's state when it changes (never its material). */
  private report(source: string, cred: UpstreamCredential): void {
    const state = cred.error ?? 'ok';
    if (this.lastState.get(source) === state) return;
    this.lastState.set(source, state);
    if (this.onState !== undefined) {
      const states = [...this.lastState.values()];
      const usable = states.filter((s) => s === 'ok').length;
      this.onState({ usable, unusable: states.length - usable });
    }
    if (cred.error === undefined) this.log.info('Credential loaded', { credential: source });
    else if (!cred.error.endsWith('not read yet'))
      this.log.warn('Credential unusable: connections that need it fail', {
        credential: source,
        error: cred.error,
      });
  }

  private watch(namespace: string, name: string): Watched {
    const key = `${namespace}/${name}`;
    const w = this.watched.get(key);
    if (w !== undefined) return w;
    if (this.watched.size >= this.maxWatched)
      return {
        informer: NOT_WATCHED,
        problem: `Secret ${key} is not watched: weftd already watches ${this.maxWatched} credential Secrets`,
      };
    const informer = new Informer<KubeObject>(
      this.kube,
      { apiVersion: 'v1', kind: 'Secret', namespace, fieldSelector: `metadata.name=${name}` },
      this.log.child({ secret: key }),
    );
    const watched: Watched = { informer, problem: undefined };
    this.watched.set(key, watched);
    this.informers.push(informer);
    informer.on(() => this.onChange());
    void informer.hasSynced.then(() => {
      watched.problem = undefined;
      if (!this.stopped) this.onChange();
    });
    // the informer retries a refused LIST forever without saying why: one GET tells
    void this.kube.get({ apiVersion: 'v1', kind: 'Secret', namespace, name }).catch((err: unknown) => {
      if (informer.isSynced || this.stopped) return;
      watched.problem = isApiError(err, 403)
        ? `weftd may not read Secret ${key} (403): grant its service account get/list/watch on it`
        : `reading Secret ${key} failed: ${errorMessage(err)}`;
      this.onChange();
    });
    if (!this.stopped) informer.start();
    return watched;
  }

  /** Secrets watched (tests, /debug). */
  watching(): string[] {
    return [...this.watched.keys()].sort();
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.informers) w.stop();
  }
}
