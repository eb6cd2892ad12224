/**
 * render(mesh) → the full list of objects a Mesh stands for. Pure: the same Mesh (and options)
 * always gives the same objects in the same order, with no I/O and no clock. The operator
 * applies the result with server-side apply; `weftctl render` prints it so a GitOps user can
 * commit it instead of running the operator.
 *
 * Containers run the one weft image (ADR 0004) whose entry point is `weft COMPONENT ARGS`, so
 * every container's args start with the component name (`weftd`, `webhook`, `proxy`).
 *
 * Certificates are not rendered (they are state, not a function of the spec): the operator
 * issues them into Secrets and passes the CA in as `caBundle`.
 */
import { stringify } from 'yaml';
import type { Mesh } from '../api/mesh.js';
import { WeftError } from '../errors/index.js';
import { settingsFromMesh, DEFAULT_INJECTION_SETTINGS, type InjectionSettings } from '../inject/settings.js';
import {
  caRootVolume,
  discoveryEnv,
  identityEnv,
  meshIdentityMounts,
  tokenVolume,
} from '../inject/templates.js';
import type { KubeObject, OwnerReference } from '../kube/types.js';
import { formatFinding } from '../validation/types.js';
import {
  gatewayCredentialReaders,
  mutatingWebhook,
  validatingWebhook,
  webhookRbac,
  weftdRbac,
  WEBHOOK_SERVICE,
  type CaSecretRef,
} from './cluster.js';
import { ADMISSION_POD_LABEL, CA_SECRET, SERVING_SECRET, selectorLabels, standardLabels } from './labels.js';
import {
  DEPLOYED_REDIS,
  effectiveSpec,
  MESH_NAMESPACE,
  semanticFindings,
  type EffectiveGateway,
  type EffectiveSpec,
} from './spec.js';
import {
  deployment,
  podDisruptionBudget,
  service,
  serviceAccount,
  type WorkloadParams,
} from './workloads.js';
import { WEFT_IMAGES } from '../api/images.js';

export * from './labels.js';
export { effectiveSpec, semanticFindings, parseDuration, MESH_NAMESPACE } from './spec.js';
export type { EffectiveSpec } from './spec.js';

export interface RenderOptions {
  /** Base64 of the CA certificate PEM for the webhook configurations (operator only). */
  caBundle?: string;
  /** Emit the weft-system Namespace too (`weftctl render`; the operator's install owns it). */
  includeNamespace?: boolean;
  /** Image of the admission webhook in Separate mode (not part of the Mesh spec; Combined runs weftd's). */
  webhookImage?: string;
  /** Call the webhook at this base URL instead of its Service (a webhook run outside the cluster). */
  webhookUrl?: string;
}

export const DEFAULT_WEBHOOK_IMAGE = WEFT_IMAGES.webhook;
export const MESH_CONFIGMAP = 'weft-mesh-config';

/** Apply order: what others depend on first (kubectl's and Argo CD's ordering, roughly). */
const KIND_ORDER = [
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ConfigMap',
  'Secret',
  'Service',
  'Deployment',
  'PodDisruptionBudget',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
];

export function render(mesh: Mesh, opts: RenderOptions = {}): KubeObject[] {
  const name = mesh.metadata.name;
  if (!name) throw new WeftError('WEFT_MESH_INVALID', 'metadata.name: a Mesh needs a name');
  const findings = semanticFindings(mesh.spec);
  if (findings.length > 0) {
    const ref = { apiVersion: mesh.apiVersion, kind: 'Mesh', name };
    throw new WeftError('WEFT_MESH_INVALID', findings.map((f) => formatFinding(ref, f)).join('; '), {
      details: { findings },
    });
  }
  const spec = effectiveSpec(mesh.spec);
  const objects = [
    ...(opts.includeNamespace ? [namespaceObject(name)] : []),
    ...controlPlane(name, spec),
    ...webhook(name, spec, opts),
    ...spec.gateways.flatMap((gw) => gateway(name, spec, gw)),
  ];
  const owner = ownerRef(mesh);
  if (owner) for (const o of objects) o.metadata.ownerReferences = [owner];
  return sortObjects(objects);
}

export function sortObjects(objects: KubeObject[]): KubeObject[] {
  const rank = (k: string): number => (KIND_ORDER.includes(k) ? KIND_ORDER.indexOf(k) : KIND_ORDER.length);
  return [...objects].sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
}

/** A controller reference to the Mesh, only when it has a uid (i.e. came from the API server). */
function ownerRef(mesh: Mesh): OwnerReference | null {
  if (!mesh.metadata.uid) return null;
  return {
    apiVersion: mesh.apiVersion,
    kind: 'Mesh',
    name: mesh.metadata.name!,
    uid: mesh.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function namespaceObject(mesh: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: MESH_NAMESPACE, labels: standardLabels(mesh, MESH_NAMESPACE, 'namespace') },
  };
}

/** What the injector uses for this Mesh; gateways take the same proxy image and weftd address. */
function injectionSettings(spec: EffectiveSpec): InjectionSettings {
  return settingsFromMesh(spec.injection as Parameters<typeof settingsFromMesh>[0], {
    ...DEFAULT_INJECTION_SETTINGS,
    meshNamespace: MESH_NAMESPACE,
    discoveryAddress: `weftd.${MESH_NAMESPACE}.svc:15012`,
  });
}

/** The Secret weftd signs workload certificates with (the operator's root, or the user's CA). */
export function caSecretOf(spec: EffectiveSpec): CaSecretRef {
  return spec.certificates.caSecretRef ?? { namespace: MESH_NAMESPACE, name: CA_SECRET };
}

function meshConfig(mesh: string, spec: EffectiveSpec): KubeObject {
  const injection = injectionSettings(spec);
  const meshYaml = {
    trustDomain: spec.trustDomain,
    mtls: { mode: spec.mtlsMode },
    workloadCertTTL: spec.certificates.workloadCertTTL,
    telemetry: spec.telemetry,
    pathNormalization: spec.pathNormalization,
    // Istio's meshConfig shape; written only when not weftd's default, so meshes without it
    // render as before (on-demand hosts are on unless the Mesh turns them off, ADR 0023)
    ...(Object.keys(spec.proxyHeaders).length > 0 || !spec.onDemandHosts
      ? {
          defaultConfig: {
            ...(Object.keys(spec.proxyHeaders).length > 0 ? { proxyHeaders: spec.proxyHeaders } : {}),
            ...(spec.onDemandHosts ? {} : { onDemandHosts: false }),
          },
        }
      : {}),
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: MESH_CONFIGMAP,
      namespace: MESH_NAMESPACE,
      labels: standardLabels(mesh, MESH_CONFIGMAP, 'control-plane'),
    },
    data: { 'mesh.yaml': stringify(meshYaml), 'injection.yaml': stringify(injection) },
  };
}

/** Where the combined process reads the webhook's serving certificate (Secret weft-webhook-tls). */
const WEBHOOK_TLS_DIR = '/etc/weft/webhook-tls';
const WEBHOOK_PORT = 9443;
/**
 * weftd and the webhook serve on through the first seconds of their deletion (a preStop sleep):
 * the API server calls the webhook through its Service, and a rolling update must not fail an
 * apply; Istio's proxies drain 5 s (terminationDrainDuration) for the same reason.
 */
const SERVER_DRAIN_SECONDS = 5;

/**
 * weftd, and in Combined mode (ADR 0024) the webhook in the same pods: one more port, the
 * webhook's own serving Secret mounted beside weftd's, the webhook's ClusterRole bound to weftd's
 * ServiceAccount, and at least one replica (admission must answer even when a Mesh scales weftd
 * to zero, as the separate webhook Deployment always keeps one).
 */
function controlPlane(mesh: string, spec: EffectiveSpec): KubeObject[] {
  const cp = spec.controlPlane;
  const combined = cp.mode === 'Combined';
  const replicas = combined ? Math.max(1, cp.replicas) : cp.replicas;
  const redisVolume = redisAuthVolume(spec);
  return [
    serviceAccount(mesh, 'weftd', MESH_NAMESPACE, 'control-plane'),
    ...weftdRbac(mesh, caSecretOf(spec)),
    ...gatewayCredentialReaders(
      mesh,
      spec.gateways.map((gw) => gw.namespace),
    ),
    ...(combined ? webhookRbac(mesh, 'weftd') : []),
    meshConfig(mesh, spec),
    deployment({
      mesh,
      name: 'weftd',
      namespace: MESH_NAMESPACE,
      component: 'control-plane',
      image: cp.image,
      replicas,
      args: [
        'weftd',
        '--config=/etc/weft/config/mesh.yaml',
        '--tls-dir=/etc/weft/tls',
        // Where the workload CA reads its signing key; the Role weftd-ca grants exactly this Secret.
        `--ca-secret=${caSecretOf(spec).namespace}/${caSecretOf(spec).name}`,
        ...(spec.rateLimitRedis ? [`--ratelimit-redis=${spec.rateLimitRedis}`] : []),
        ...redisAuthArgs(spec),
        ...(combined ? [`--webhook-port=${WEBHOOK_PORT}`, `--webhook-tls-dir=${WEBHOOK_TLS_DIR}`] : []),
      ],
      extraVolumes: [
        ...(redisVolume.extraVolumes ?? []),
        ...(combined
          ? [{ name: 'webhook-tls', secret: { secretName: SERVING_SECRET.webhook, defaultMode: 0o440 } }]
          : []),
      ],
      extraMounts: [
        ...(redisVolume.extraMounts ?? []),
        ...(combined ? [{ name: 'webhook-tls', mountPath: WEBHOOK_TLS_DIR, readOnly: true }] : []),
      ],
      ports: [
        { name: 'grpc-xds', containerPort: 15012 },
        { name: 'http-monitoring', containerPort: 15014 },
        ...(combined ? [{ name: 'https-webhook', containerPort: WEBHOOK_PORT }] : []),
      ],
      resources: cp.resources,
      // Combined: /ready is weftd's and the webhook's readiness together (the pod backs both Services)
      readiness: { path: '/ready', port: 15014 },
      ...(combined ? { extraPodLabels: { [ADMISSION_POD_LABEL]: 'true' } } : {}),
      secretName: SERVING_SECRET.weftd,
      configMapName: MESH_CONFIGMAP,
      drainSeconds: SERVER_DRAIN_SECONDS,
    }),
    service(mesh, 'weftd', MESH_NAMESPACE, 'control-plane', [
      { name: 'grpc-xds', port: 15012, targetPort: 15012, protocol: 'TCP' },
      { name: 'http-monitoring', port: 15014, targetPort: 15014, protocol: 'TCP' },
    ]),
    ...podDisruptionBudget(mesh, 'weftd', MESH_NAMESPACE, 'control-plane', replicas),
    ...deployedRedis(mesh, spec),
  ];
}

/**
 * spec.rateLimits.redis.deploy: one Redis for global rate-limit buckets, without persistence
 * (buckets refill: a restart forgets at most one window's spending), password from the same
 * Secret weftd authenticates with (busybox sh reads the file: the password is in no manifest).
 */
function deployedRedis(mesh: string, spec: EffectiveSpec): KubeObject[] {
  const d = spec.rateLimitRedisDeploy;
  const auth = spec.rateLimitRedisAuth;
  if (d === undefined || auth === undefined) return [];
  const { name, port } = DEPLOYED_REDIS;
  // An empty `--requirepass` turns AUTH off: with the password file empty, only a newline or
  // unreadable, Redis must not start at all (it would serve every pod without a password).
  const serve = [
    `pw="$(cat ${REDIS_AUTH_DIR}/password)" && [ -n "$pw" ] ||`,
    `{ echo 'weft-redis: the password file is empty or unreadable; not starting Redis without AUTH' >&2; exit 1; };`,
    `exec /usr/bin/redis-server --port ${port} --bind 0.0.0.0 --protected-mode no`,
    `--save '' --appendonly no --maxmemory 256mb --maxmemory-policy volatile-ttl`,
    `--requirepass "$pw"`,
  ].join(' ');
  return [
    serviceAccount(mesh, name, MESH_NAMESPACE, 'ratelimit-redis'),
    deployment({
      mesh,
      name,
      namespace: MESH_NAMESPACE,
      component: 'ratelimit-redis',
      image: d.image,
      replicas: 1,
      args: ['/bin/sh', '-c', serve],
      ports: [{ name: 'tcp-redis', containerPort: port }],
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '320Mi' } },
      readiness: { tcpPort: port },
      ...redisAuthVolume(spec),
    }),
    service(mesh, name, MESH_NAMESPACE, 'ratelimit-redis', [
      { name: 'tcp-redis', port, targetPort: port, protocol: 'TCP' },
    ]),
  ];
}

const REDIS_AUTH_DIR = '/etc/weft/ratelimit-redis';

/** weftd's Redis AUTH: the password file from the mounted Secret, and the ACL user. */
function redisAuthArgs(spec: EffectiveSpec): string[] {
  const a = spec.rateLimitRedisAuth;
  if (a === undefined || spec.rateLimitRedis === undefined) return [];
  return [
    `--ratelimit-redis-password-file=${REDIS_AUTH_DIR}/password`,
    ...(a.username !== undefined ? [`--ratelimit-redis-username=${a.username}`] : []),
  ];
}

/**
 * The Secret's `password` key as a file (a whole-volume mount, not subPath: the kubelet updates
 * it when the Secret rotates, and weftd re-reads it per connection).
 */
function redisAuthVolume(spec: EffectiveSpec): Pick<WorkloadParams, 'extraVolumes' | 'extraMounts'> {
  const a = spec.rateLimitRedisAuth;
  if (a === undefined || spec.rateLimitRedis === undefined) return {};
  return {
    extraVolumes: [
      {
        name: 'ratelimit-redis-auth',
        secret: { secretName: a.secret, items: [{ key: 'password', path: 'password' }], defaultMode: 0o440 },
      },
    ],
    extraMounts: [{ name: 'ratelimit-redis-auth', mountPath: REDIS_AUTH_DIR, readOnly: true }],
  };
}

/**
 * The webhook's Service and configurations, and in Separate mode its own Deployment. The Service
 * keeps its name and port in both modes (Combined: it selects weftd's pods), so the webhook
 * configurations, their caBundle and the serving certificate's names do not change with the mode.
 */
function webhook(mesh: string, spec: EffectiveSpec, opts: RenderOptions): KubeObject[] {
  const combined = spec.controlPlane.mode === 'Combined';
  return [
    ...(combined ? [] : webhookDeployment(mesh, spec, opts)),
    service(
      mesh,
      WEBHOOK_SERVICE.name,
      MESH_NAMESPACE,
      'webhook',
      [{ name: 'https-webhook', port: WEBHOOK_SERVICE.port, targetPort: WEBHOOK_PORT, protocol: 'TCP' }],
      'ClusterIP',
      // Separate: as before (an upgrade changes no endpoints); Combined: whoever serves admission
      combined ? { [ADMISSION_POD_LABEL]: 'true' } : selectorLabels(WEBHOOK_SERVICE.name),
    ),
    validatingWebhook(mesh, { caBundle: opts.caBundle, url: opts.webhookUrl }),
    mutatingWebhook(mesh, { caBundle: opts.caBundle, url: opts.webhookUrl }),
  ];
}

function webhookDeployment(mesh: string, spec: EffectiveSpec, opts: RenderOptions): KubeObject[] {
  // Admission must stay up through a rolling update once the mesh runs more than one weftd.
  const replicas = Math.max(1, Math.min(spec.controlPlane.replicas, 3));
  return [
    serviceAccount(mesh, WEBHOOK_SERVICE.name, MESH_NAMESPACE, 'webhook'),
    ...webhookRbac(mesh),
    deployment({
      mesh,
      name: WEBHOOK_SERVICE.name,
      namespace: MESH_NAMESPACE,
      component: 'webhook',
      image: opts.webhookImage ?? DEFAULT_WEBHOOK_IMAGE,
      replicas,
      args: [
        'webhook',
        `--port=${WEBHOOK_PORT}`,
        '--tls-dir=/etc/weft/tls',
        `--mesh-namespace=${MESH_NAMESPACE}`,
        // the webhook admits RateLimit scope global only when weftd runs the global backend
        ...(spec.rateLimitRedis ? ['--global-ratelimits'] : []),
      ],
      ports: [{ name: 'https-webhook', containerPort: WEBHOOK_PORT }],
      resources: { requests: { cpu: '50m', memory: '64Mi' } },
      readiness: { path: '/readyz', port: WEBHOOK_PORT, scheme: 'HTTPS' },
      secretName: SERVING_SECRET.webhook,
      configMapName: MESH_CONFIGMAP,
      drainSeconds: SERVER_DRAIN_SECONDS,
    }),
    ...podDisruptionBudget(mesh, WEBHOOK_SERVICE.name, MESH_NAMESPACE, 'webhook', replicas),
  ];
}

/**
 * A gateway is a proxy that is not a sidecar: the same image and uid (1337), and the same way to
 * reach weftd as an injected proxy, from the injector's own builders (downward-API identity,
 * WEFT_* variables, the projected token with audience weft-ca, the mesh root ConfigMap).
 */
function gateway(mesh: string, spec: EffectiveSpec, gw: EffectiveGateway): KubeObject[] {
  const settings = injectionSettings(spec);
  return [
    serviceAccount(mesh, gw.name, gw.namespace, 'gateway'),
    deployment({
      mesh,
      name: gw.name,
      namespace: gw.namespace,
      component: 'gateway',
      image: settings.proxyImage,
      replicas: gw.replicas,
      args: ['proxy', 'gateway'],
      ports: gw.ports.map((p) => ({ name: p.name, containerPort: p.targetPort, protocol: p.protocol })),
      resources: { requests: { cpu: '100m', memory: '128Mi' } },
      readiness: { path: '/healthz/ready', port: 15021 },
      extraPodLabels: { ...gw.labels, 'weft.dev/gateway': gw.name },
      bindLowPorts: true,
      identityEnv: identityEnv(),
      env: discoveryEnv(settings),
      extraVolumes: [tokenVolume(settings.tokenAudience), caRootVolume()],
      extraMounts: meshIdentityMounts(),
    }),
    service(mesh, gw.name, gw.namespace, 'gateway', gw.ports, gw.serviceType),
    ...podDisruptionBudget(mesh, gw.name, gw.namespace, 'gateway', gw.replicas),
  ];
}
