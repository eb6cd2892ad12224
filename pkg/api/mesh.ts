/**
 * Mesh (mesh.weft.dev/v1alpha1, cluster-scoped): the one resource a user writes to install and
 * run weft. The operator renders it into the control plane, gateways, certificates and webhook
 * configurations, and reports progress in `status`. Defaults live in the schema so that
 * `kubectl get mesh -o yaml` shows what is actually in effect.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject } from './common.js';
import { arr, bool, conditionSchema, duration, enumOf, int32, int64, map, obj, str } from './schema.js';
import { WEFT_IMAGES } from './images.js';
import {
  PATH_NORMALIZATION_TYPES,
  PROXY_HEADERS_FIELDS,
  type PathNormalizationType,
  type ProxyHeadersSetting,
} from '../proxyconfig/types.js';

/** A Kubernetes quantity (`100m`, `128Mi`, `2`). */
export type Quantity = string | number;

export interface ResourceRequirements {
  requests?: Record<string, Quantity>;
  limits?: Record<string, Quantity>;
}

/**
 * How the control plane runs (ADR 0024). Combined: weftd and the admission webhook in one
 * process (one Deployment `weftd` behind both Services `weftd` and `weft-webhook`), as istiod
 * does. Separate: two Deployments, `weftd` and `weft-webhook`.
 */
export type ControlPlaneMode = 'Combined' | 'Separate';
export const CONTROL_PLANE_MODES = ['Combined', 'Separate'] as const satisfies readonly ControlPlaneMode[];
/** See ADR 0024 for the measurement behind it. */
export const DEFAULT_CONTROL_PLANE_MODE: ControlPlaneMode = 'Combined';

export interface MeshControlPlane {
  /** Default Combined (ADR 0024). */
  mode?: ControlPlaneMode;
  /** Default 1. */
  replicas?: number;
  resources?: ResourceRequirements;
  /** Default `ghcr.io/weft-mesh/weftd:<weft version>`. */
  image?: string;
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

export interface MeshGatewayPort {
  name: string;
  port: number;
  targetPort?: number;
  /** Default TCP. */
  protocol?: 'TCP' | 'UDP';
  nodePort?: number;
}

export interface MeshGateway {
  name: string;
  /** Default `weft-system`. */
  namespace?: string;
  /** Default 1. */
  replicas?: number;
  /** Default LoadBalancer. */
  serviceType?: ServiceType;
  ports?: MeshGatewayPort[];
  /** Extra pod labels, e.g. `istio: ingressgateway` so Istio Gateway selectors match. */
  labels?: Record<string, string>;
}

export interface SecretReference {
  name: string;
  namespace?: string;
}

export interface MeshCertificates {
  /** Self-signed root generated and kept by the operator (the default when caSecretRef is unset). */
  selfSigned?: { rootCertTTL?: Duration };
  /** A Secret holding `ca.crt`, `tls.crt`, `tls.key` of an intermediate/root CA to sign with. */
  caSecretRef?: SecretReference;
  /** Lifetime of workload certificates. Default 24h. */
  workloadCertTTL?: Duration;
  /** Lifetime of the webhook/control-plane serving certificate. Default 8760h (1 year). */
  servingCertTTL?: Duration;
}

export interface MeshInjection {
  /** Default `ghcr.io/weft-mesh/weft-proxy:<weft version>`. */
  proxyImage?: string;
  resources?: ResourceRequirements;
  /** Inject the proxy as a native sidecar (init container with restartPolicy Always). Default true. */
  nativeSidecar?: boolean;
  /** Start the app container only after the proxy is ready. Default true. */
  holdApplicationUntilProxyStarts?: boolean;
}

export type MeshMTLSMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface MeshTelemetry {
  /** Default enabled. */
  metrics?: { enabled?: boolean };
  /** Percentage of requests traced, 0–100. Default 1. */
  tracing?: { samplingPercent?: number };
  /** Default enabled. */
  accessLog?: { enabled?: boolean };
}

/**
 * Istio's `meshConfig.pathNormalization`: how proxies normalize request paths before matching
 * and forwarding them. DEFAULT is BASE.
 */
export interface MeshPathNormalization {
  normalization?: PathNormalizationType;
}

export interface MeshSpec {
  /** SPIFFE trust domain. Default `cluster.local`. */
  trustDomain?: string;
  controlPlane?: MeshControlPlane;
  gateways?: MeshGateway[];
  certificates?: MeshCertificates;
  injection?: MeshInjection;
  /** Default mesh-wide mTLS mode. Default PERMISSIVE. */
  mtls?: { mode?: MeshMTLSMode };
  telemetry?: MeshTelemetry;
  /** Request path normalization in every proxy. Default BASE (RFC 3986, Envoy normalize_path). */
  pathNormalization?: MeshPathNormalization;
  /**
   * Istio's `meshConfig.defaultConfig`: the proxies' defaults (weft implements `proxyHeaders`).
   * `onDemandHosts` (weft's, ADR 0023): sidecars start with their own namespace and the hosts
   * their Sidecar names exactly, and get others from weftd when the app calls them. Default true
   * (false: every sidecar gets its whole scope, as Istio).
   */
  defaultConfig?: { proxyHeaders?: ProxyHeadersSetting; onDemandHosts?: boolean };
  /**
   * Global rate limits (ADR 0017): the Redis (`host:port`) weftd keeps their buckets in. Set:
   * weftd runs with `--ratelimit-redis`, the webhook with `--global-ratelimits` (RateLimit
   * `scope: global` admitted, memquota global). Absent: global limits are off.
   * `passwordSecret`: a Secret in the control-plane namespace whose `password` key weftd sends
   * in AUTH (mounted, re-read per connection); `username`: a Redis 6 ACL user for it.
   * `redis.deploy`: the operator runs the Redis itself (`weft-redis` in the control-plane
   * namespace, no persistence, `requirepass` from passwordSecret, which it then needs) and
   * weftd uses it; `redis.image` replaces the locally built `weft.local/redis:1`.
   */
  rateLimits?: {
    redisAddress?: string;
    passwordSecret?: string;
    username?: string;
    redis?: { deploy?: boolean; image?: string };
  };
}

/** metav1.Condition. */
export interface MeshCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface MeshComponentStatus {
  /** e.g. `weftd`, `gateway/ingress`, `webhook`, `certificates`. */
  name: string;
  kind?: string;
  namespace?: string;
  ready: boolean;
  replicas?: number;
  readyReplicas?: number;
  message?: string;
}

export interface MeshCertificateStatus {
  rootCertExpiresAt?: string;
  servingCertExpiresAt?: string;
  /** When the operator will rotate the serving certificate. */
  servingCertRenewAt?: string;
}

export interface MeshStatus {
  observedGeneration?: number;
  /** Ready, Reconciling, Stalled, plus per-component conditions. */
  conditions?: MeshCondition[];
  components?: MeshComponentStatus[];
  certificates?: MeshCertificateStatus;
}

export type Mesh = KubeObject<MeshSpec, MeshStatus>;

/** The condition types the operator sets (kstatus-compatible). */
export const MeshConditionTypes = ['Ready', 'Reconciling', 'Stalled'] as const;

// ---- schema -------------------------------------------------------------------------------

const quantity = (): JSONSchema => ({
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  pattern:
    '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
});

const resourcesSchema = (): JSONSchema => obj({ requests: map(quantity()), limits: map(quantity()) });

const gatewaySchema = (): JSONSchema =>
  obj(
    {
      name: str({ minLength: 1, maxLength: 63 }),
      namespace: str({ default: 'weft-system', maxLength: 63 }),
      replicas: int32({ default: 1, minimum: 0 }),
      serviceType: { ...enumOf('ClusterIP', 'NodePort', 'LoadBalancer'), default: 'LoadBalancer' },
      ports: arr(
        obj(
          {
            name: str({ minLength: 1, maxLength: 15 }),
            port: int32({ minimum: 1, maximum: 65535 }),
            targetPort: int32({ minimum: 1, maximum: 65535 }),
            protocol: { ...enumOf('TCP', 'UDP'), default: 'TCP' },
            nodePort: int32({ minimum: 1, maximum: 65535 }),
          },
          { required: ['name', 'port'] },
        ),
        { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], maxItems: 64 },
      ),
      labels: map(str()),
    },
    { required: ['name'] },
  );

export const meshSpecSchema = (): JSONSchema =>
  obj({
    trustDomain: str({ default: 'cluster.local', minLength: 1, maxLength: 255 }),
    controlPlane: obj(
      {
        mode: { ...enumOf(...CONTROL_PLANE_MODES), default: DEFAULT_CONTROL_PLANE_MODE },
        replicas: int32({ default: 1, minimum: 0 }),
        resources: resourcesSchema(),
        image: str({ default: WEFT_IMAGES.weftd, minLength: 1 }),
      },
      { extra: { default: {} } },
    ),
    gateways: arr(gatewaySchema(), {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      maxItems: 32,
    }),
    certificates: obj(
      {
        selfSigned: obj({ rootCertTTL: { ...duration(), default: '87600h' } }),
        caSecretRef: obj({ name: str({ minLength: 1 }), namespace: str() }, { required: ['name'] }),
        workloadCertTTL: { ...duration(), default: '24h' },
        servingCertTTL: { ...duration(), default: '8760h' },
      },
      { oneOf: [['selfSigned', 'caSecretRef']], extra: { default: {} } },
    ),
    injection: obj(
      {
        proxyImage: str({ default: WEFT_IMAGES.proxy, minLength: 1 }),
        resources: resourcesSchema(),
        nativeSidecar: { ...bool(), default: true },
        holdApplicationUntilProxyStarts: { ...bool(), default: true },
      },
      { extra: { default: {} } },
    ),
    mtls: obj(
      { mode: { ...enumOf('STRICT', 'PERMISSIVE', 'DISABLE'), default: 'PERMISSIVE' } },
      { extra: { default: {} } },
    ),
    telemetry: obj(
      {
        metrics: obj({ enabled: { ...bool(), default: true } }, { extra: { default: {} } }),
        tracing: obj(
          { samplingPercent: { type: 'number', minimum: 0, maximum: 100, default: 1 } },
          { extra: { default: {} } },
        ),
        accessLog: obj({ enabled: { ...bool(), default: true } }, { extra: { default: {} } }),
      },
      { extra: { default: {} } },
    ),
    pathNormalization: obj(
      { normalization: { ...enumOf(...PATH_NORMALIZATION_TYPES), default: 'BASE' } },
      { extra: { default: {} } },
    ),
    defaultConfig: obj({
      proxyHeaders: obj(Object.fromEntries(PROXY_HEADERS_FIELDS.map((f) => [f, obj({ disabled: bool() })]))),
      onDemandHosts: bool(),
    }),
    rateLimits: obj({
      redisAddress: str({ maxLength: 261 }),
      passwordSecret: str({ maxLength: 253 }),
      username: str({ maxLength: 256 }),
      redis: obj({ deploy: bool(), image: str({ maxLength: 512 }) }),
    }),
  });

export const meshStatusSchema = (): JSONSchema =>
  obj({
    observedGeneration: int64(),
    conditions: arr(conditionSchema(), {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
      maxItems: 32,
    }),
    components: arr(
      obj(
        {
          name: str(),
          kind: str(),
          namespace: str(),
          ready: bool(),
          replicas: int32(),
          readyReplicas: int32(),
          message: str({ maxLength: 4096 }),
        },
        { required: ['name', 'ready'] },
      ),
      { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], maxItems: 64 },
    ),
    certificates: obj({
      rootCertExpiresAt: str({ format: 'date-time' }),
      servingCertExpiresAt: str({ format: 'date-time' }),
      servingCertRenewAt: str({ format: 'date-time' }),
    }),
  });

export const meshKind: KindDefinition = {
  group: 'mesh.weft.dev',
  kind: 'Mesh',
  plural: 'meshes',
  singular: 'mesh',
  listKind: 'MeshList',
  shortNames: ['mesh'],
  categories: ['weft'],
  scope: 'Cluster',
  versions: ['v1alpha1'],
  storageVersion: 'v1alpha1',
  printerColumns: [
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: meshSpecSchema(),
  statusSchema: meshStatusSchema(),
};
