/**
 * What the proxies get from a set of objects, observed the way production computes it, for the
 * "implemented but still listed" test of pkg/api/not-enforced.ts:
 *
 *  - weftd: the real registry (controlplane/registry.ts createKubeRegistry) over a fake API client
 *    that lists the probe world, so whatever kinds weftd watches (today or after a branch adds
 *    PeerAuthentication, AuthorizationPolicy...) are fed to it; then the real ConfigGenerator for a
 *    sidecar pod and a gateway pod, with mesh settings from the Mesh through the operator's render
 *    (the weft-mesh-config ConfigMap) and weftd's parseMeshSettings;
 *  - standalone: proxy/config/load.ts configFromText over the Istio objects (only when both
 *    variants load; an object the standalone loader refuses is weftd's case alone);
 *  - what the proxy makes of a load-balancer setting (createBalancer's kind), since a field can be
 *    passed through to the proxy and ignored there (PASSTHROUGH).
 *
 * Nothing here knows a field: a probe passes when the observation with the field equals the one
 * without. Its limits (docs/not-enforced.md): a feature implemented outside these paths (the
 * injector, the operator's render of something other than mesh settings) is not seen.
 */
import { stringify } from 'yaml';
import { createKubeRegistry } from '../../../controlplane/registry.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { parseMeshSettings, type MeshSettings } from '../../../controlplane/flags.js';
import type { PodInfo } from '../../../controlplane/registry.js';
import { configFromText } from '../../../proxy/config/load.js';
import { createBalancer } from '../../../proxy/upstream/lb.js';
import type { KubeClient, ListResult, WatchOptions } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { MESH_CONFIGMAP, render } from '../../../pkg/render/index.js';
import type { Mesh } from '../../../pkg/api/mesh.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { EMPTY_JWKS, type JwksSource } from '../../../pkg/translate/requestauthn.js';

type Obj = Record<string, unknown>;

const log = createLogger('not-enforced-probe', { silent: true });

const se = (name: string, spec: unknown): Obj => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
  spec,
});

/**
 * weftd's JWKS fetcher, without the network: no keys, and an error naming where the keys were
 * asked for, so a RequestAuthentication field that changes the key source shows in the config.
 */
const PROBE_JWKS: JwksSource = {
  keys: (ref) => ({ jwks: EMPTY_JWKS, error: `probe: keys from ${ref.uri ?? `discovery of ${ref.issuer}`}` }),
};

/** The probe world (pkg/api/not-enforced.ts describes it to entry authors). */
export const PROBE_WORLD: Obj[] = [
  se('reviews', {
    hosts: ['reviews.default.svc.cluster.local'],
    ports: [
      { number: 80, name: 'http', protocol: 'HTTP' },
      { number: 9080, name: 'http-alt', protocol: 'HTTP' },
    ],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    endpoints: [
      { address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' } },
      { address: '10.0.0.2', labels: { app: 'reviews', version: 'v2' } },
    ],
  }),
  se('db', {
    hosts: ['db.default.svc.cluster.local'],
    addresses: ['10.96.0.10'],
    ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    endpoints: [{ address: '10.0.1.1' }],
  }),
  se('secure', {
    hosts: ['secure.example.com'],
    ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    resolution: 'STATIC',
    endpoints: [{ address: '10.0.1.2' }],
  }),
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'ingress', namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    },
  },
];

export const CLIENT_POD: PodInfo = {
  name: 'client-7d4b9-abcde',
  namespace: 'default',
  labels: { app: 'client', version: 'v1' },
  ip: '10.1.0.5',
  serviceAccount: 'client',
};
export const GATEWAY_POD: PodInfo = {
  name: 'ingress-5c6d7-fghij',
  namespace: 'default',
  labels: { istio: 'ingressgateway' },
  ip: '10.1.0.6',
  serviceAccount: 'ingress',
};

const podObject = (p: PodInfo): Obj => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
  spec: { serviceAccountName: p.serviceAccount, containers: [{ name: 'app', image: 'app' }] },
  status: { podIP: p.ip, phase: 'Running' },
});

const groupOf = (apiVersion: string): string =>
  apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';

/** An API client serving `objects` to informers: LIST by group and kind (any version), WATCH idles until stopped. */
function fakeClient(objects: Obj[]): KubeClient {
  const client = {
    list(apiVersion: string, kind: string): Promise<ListResult<KubeObject>> {
      const items = objects
        .filter((o) => o.kind === kind && groupOf(String(o.apiVersion)) === groupOf(apiVersion))
        .map((o) => ({ ...structuredClone(o), apiVersion }) as unknown as KubeObject);
      return Promise.resolve({ items, resourceVersion: '1' });
    },
    watch(_apiVersion: string, _kind: string, opts: WatchOptions): Promise<void> {
      return new Promise((resolve) => {
        if (opts.signal?.aborted) resolve();
        else opts.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  };
  return client as unknown as KubeClient;
}

/** Mesh → the operator's weft-mesh-config ConfigMap → weftd's settings (defaults when there is no Mesh). */
export function meshSettingsOf(objects: Obj[]): MeshSettings {
  const mesh = (objects.find((o) => o.kind === 'Mesh') ?? {
    apiVersion: 'mesh.weft.dev/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'default' },
    spec: {},
  }) as unknown as Mesh;
  const cm = render(mesh).find((o) => o.kind === 'ConfigMap' && o.metadata.name === MESH_CONFIGMAP);
  const text = (cm as unknown as { data: Record<string, string> }).data['mesh.yaml']!;
  return parseMeshSettings(text, 'probe mesh.yaml');
}

/** Configs without their content hashes, load balancers as the proxy builds them. */
function normalize(config: ProxyConfig): unknown {
  const copy = structuredClone(config) as Partial<ProxyConfig>;
  delete copy.version;
  for (const c of copy.clusters ?? []) {
    const lb = c.loadBalancer;
    if (lb === undefined || 'simple' in lb)
      (c as unknown as Obj).loadBalancer = { proxyBuilds: createBalancer(lb, () => 0.5).kind };
  }
  return copy;
}

const ISTIO_GROUPS = /\.istio\.io\/|^mesh\.weft\.dev\//;

async function weftd(objects: Obj[]): Promise<unknown> {
  const world = [...PROBE_WORLD, ...objects, podObject(CLIENT_POD), podObject(GATEWAY_POD)];
  // a probe object without its field can be invalid (trafficPolicy: {}), which weftd would leave
  // out: the probe compares what translation makes of the field, so both variants are kept
  const registry = createKubeRegistry(fakeClient(world), log, 'cluster.local', undefined, {
    keepInvalid: true,
  });
  try {
    await registry.hasSynced;
    const snapshot = registry.snapshot();
    const gen = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: meshSettingsOf(objects),
      log,
      jwks: PROBE_JWKS,
    });
    return {
      sidecar: normalize(gen.forProxy(snapshot, 'sidecar', CLIENT_POD).config),
      gateway: normalize(gen.forProxy(snapshot, 'gateway', GATEWAY_POD).config),
    };
  } finally {
    registry.stop();
  }
}

function standalone(objects: Obj[]): unknown {
  const docs = [...PROBE_WORLD, ...objects].filter((o) => ISTIO_GROUPS.test(String(o.apiVersion)));
  try {
    return normalize(configFromText(docs.map((d) => stringify(d)).join('---\n'), 'probe').config);
  } catch {
    return undefined; // refused by the standalone loader (validation): weftd's case alone
  }
}

export interface Observation {
  weftd: unknown;
  /** undefined when the standalone loader refuses the objects. */
  standalone: unknown;
}

export async function observe(objects: Obj[]): Promise<Observation> {
  return { weftd: await weftd(objects), standalone: standalone(objects) };
}

/** The differences between two observations that count: standalone only when both loaded. */
export function comparable(a: Observation, b: Observation): [unknown, unknown] {
  const both = a.standalone !== undefined && b.standalone !== undefined;
  return [
    { weftd: a.weftd, ...(both ? { standalone: a.standalone } : {}) },
    { weftd: b.weftd, ...(both ? { standalone: b.standalone } : {}) },
  ];
}
