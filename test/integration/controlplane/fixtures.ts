/**
 * What weftd's integration suites (and weftctl's, which drives a weftd) put on the API server:
 * pods that are never scheduled (the test cluster has no node), TokenRequest tokens, the
 * reviews service with two versions behind an EndpointSlice, and a proxy's CSR.
 */
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { buildCsr, generateWorkloadKey, type WorkloadKeyAlgorithm } from '../../../pkg/certs/csr.js';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { compileAuthz } from '../../../proxy/authz/engine.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { onCleanup, testCluster, waitFor } from '../../support/index.js';
import { createLogger } from '../../../pkg/log/index.js';

const proxyLog = createLogger('fake-proxy', { silent: true });
import type { Logger } from '../../../pkg/log/index.js';
import { CertReloader } from '../../../pkg/tls/index.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { startWeftd, type StartOptions, type Weftd } from '../../../controlplane/weftd.js';

const IMAGE = 'busybox:1.36'; // never scheduled: the test cluster has no node
const NET = 'networking.istio.io/v1';

export const pod = (
  ns: string,
  name: string,
  labels: Record<string, string>,
  sa = 'default',
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { serviceAccountName: sa, containers: [{ name: 'app', image: IMAGE }] },
});

/** A TokenRequest token for `sa`: for `audiences` (none: the API server's own), bound to `pod` if given. */
export async function requestToken(
  kube: KubeClient,
  ns: string,
  sa: string,
  opts: { audiences?: string[]; pod?: KubeObject } = {},
): Promise<string> {
  const { audiences, pod: bound } = opts;
  const tr = (await kube.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        ...(audiences ? { audiences } : {}),
        expirationSeconds: 600,
        ...(bound
          ? {
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: bound.metadata.name,
                uid: bound.metadata.uid,
              },
            }
          : {}),
      },
    },
  })) as { status?: { token?: string } };
  return tr.status?.token ?? '';
}

/**
 * reviews v1 and v2 (pods), their Service (9080 → 8080), an EndpointSlice naming the pods (no
 * controller fills it without a node) and a DestinationRule with the two subsets. The
 * VirtualService is the test's own.
 */
export async function createReviews(kube: KubeClient, ns: string): Promise<void> {
  const v1 = await kube.create(pod(ns, 'reviews-v1', { app: 'reviews', version: 'v1' }));
  const v2 = await kube.create(pod(ns, 'reviews-v2', { app: 'reviews', version: 'v2' }));
  await kube.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reviews', namespace: ns },
    spec: { ports: [{ name: 'http', port: 9080, targetPort: 8080 }], selector: { app: 'reviews' } },
  });
  await kube.create({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'reviews-test',
      namespace: ns,
      labels: {
        'kubernetes.io/service-name': 'reviews',
        'endpointslice.kubernetes.io/managed-by': 'weft-test',
      },
    },
    addressType: 'IPv4',
    endpoints: [
      {
        addresses: ['10.244.0.11'],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: v1.metadata.name, namespace: ns },
      },
      {
        addresses: ['10.244.0.12'],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: v2.metadata.name, namespace: ns },
      },
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  await kube.create({
    apiVersion: NET,
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: ns },
    spec: {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  });
}

/** A proxy's CSR as the proxy makes it (pkg/certs/csr.ts): a fresh key, empty subject, optionally the SPIFFE URI. */
export function csrPem(alg: WorkloadKeyAlgorithm = 'ECDSA_P256', spiffeId?: string): string {
  return buildCsr(generateWorkloadKey(alg), spiffeId);
}

/** A client that authenticates as `ns/name` with a fresh TokenRequest token. */
export async function clientAs(admin: KubeClient, ns: string, name: string): Promise<KubeClient> {
  const tr = (await admin.request('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } },
  })) as { status: { token: string } };
  const cluster = testCluster().kubeConfig.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name, token: tr.status.token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  return new KubeClient(kc);
}

/**
 * A fresh directory with weftd's serving certificate for loopback (`tls.crt`, `tls.key`, valid for
 * `weftd.weft-system.svc` and 127.0.0.1) and the CA that signed it (`ca.crt`, what proxies trust).
 */
export function weftdServingDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const now = new Date();
  const ca = createCA({ commonName: `${prefix}-ca`, ttlMs: 3600_000, now });
  const leaf = issueServing(ca, {
    commonName: 'weftd',
    dnsNames: ['weftd.weft-system.svc', '127.0.0.1'],
    ttlMs: 3600_000,
    now,
  });
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  return dir;
}

/**
 * weftd on loopback against the test API server, as the integration suites run it: kernel-chosen
 * ports, the namespace's `weft-root-ca` Secret, short push debounces, the built-in mesh settings
 * and no default process metrics; `extra` overrides any of it (flags are merged).
 */
export function startTestWeftd(
  base: { kube: KubeClient; ns: string; tlsDir: string; log: Logger },
  extra: Partial<Omit<StartOptions, 'flags'>> & { flags?: Partial<StartOptions['flags']> } = {},
): Promise<Weftd> {
  const { flags, ...rest } = extra;
  return startWeftd({
    flags: {
      host: '127.0.0.1',
      port: 0,
      monitoringPort: 0,
      domainSuffix: 'cluster.local',
      caSecret: { namespace: base.ns, name: 'weft-root-ca' },
      pushDebounceMs: 50,
      pushDebounceMaxMs: 1000,
      ...flags,
    },
    mesh: DEFAULT_MESH,
    kube: base.kube,
    tls: new CertReloader(join(base.tlsDir, 'tls.crt'), join(base.tlsDir, 'tls.key'), base.log),
    log: base.log,
    defaultMetrics: false,
    ...rest,
  });
}

/**
 * A proxy's stream to weftd (the proxy's own DiscoveryClient), keeping the latest config it was
 * pushed; the authz block is compiled as the proxy does at swap (must not throw).
 */
export class FakeProxy {
  latest: ProxyConfig | null = null;
  readonly client: DiscoveryClient;
  constructor(
    address: string,
    dir: string,
    token: string,
    kind: 'sidecar' | 'gateway',
    namespace: string,
    name: string,
    /** Refuse (NACK) a config with this message, as a proxy whose compile fails would. */
    reject?: (config: ProxyConfig) => string | undefined,
  ) {
    const tokenPath = join(dir, `${name}.token`);
    writeFileSync(tokenPath, token);
    this.client = new DiscoveryClient({
      address,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath,
      request: { kind, namespace, pod: name },
      log: proxyLog,
      onConfig: (config) => {
        if (config.authz) compileAuthz(config.authz); // what the proxy does at swap: must not throw
        const refusal = reject?.(config);
        if (refusal !== undefined) return Promise.reject(new Error(refusal));
        this.latest = config;
        return Promise.resolve();
      },
      pingIntervalMs: 300,
    });
    void this.client.run();
    onCleanup(async () => this.client.stop());
  }

  async until(what: string, fn: (c: ProxyConfig) => boolean): Promise<ProxyConfig> {
    return waitFor(what, () => (this.latest !== null && fn(this.latest) ? this.latest : null));
  }
}
