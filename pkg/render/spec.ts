/**
 * The Mesh spec with every default filled in, and the checks the CRD schema cannot express.
 *
 * The API server applies the schema's defaults when a Mesh is stored, but `weftctl render -f`
 * reads a file that never went through it, so render applies the same defaults itself (the
 * values mirror `pkg/api/mesh.ts`; a unit test pins them to the schema's `default`s).
 */
import type { Finding } from '../validation/types.js';
import { parseRedisAddress } from '../ratelimit/global.js';
import { isDNS1123Subdomain } from '../validation/primitives.js';
import { CONTROL_PLANE_MODES, DEFAULT_CONTROL_PLANE_MODE, type ControlPlaneMode } from '../api/mesh.js';
import type {
  MeshGateway,
  MeshGatewayPort,
  MeshSpec,
  ResourceRequirements,
  ServiceType,
} from '../api/mesh.js';
import { WEFT_IMAGES } from '../api/images.js';
import type { PathNormalizationType, ProxyHeadersSetting } from '../proxyconfig/types.js';

export const MESH_NAMESPACE = 'weft-system';

export interface EffectiveGateway {
  name: string;
  namespace: string;
  replicas: number;
  serviceType: ServiceType;
  ports: { name: string; port: number; targetPort: number; protocol: 'TCP' | 'UDP'; nodePort?: number }[];
  labels: Record<string, string>;
}

export interface EffectiveSpec {
  trustDomain: string;
  controlPlane: {
    mode: ControlPlaneMode;
    replicas: number;
    image: string;
    resources: ResourceRequirements;
  };
  gateways: EffectiveGateway[];
  certificates: {
    mode: 'selfSigned' | 'caSecret';
    rootCertTTLms: number;
    caSecretRef?: { name: string; namespace: string };
    workloadCertTTL: string;
    servingCertTTLms: number;
  };
  injection: NonNullable<MeshSpec['injection']>;
  mtlsMode: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  telemetry: { metrics: boolean; tracingSamplingPercent: number; accessLog: boolean };
  /** Istio's meshConfig.pathNormalization, DEFAULT resolved to BASE. */
  pathNormalization: { normalization: Exclude<PathNormalizationType, 'DEFAULT'> };
  /** Istio's meshConfig.defaultConfig.proxyHeaders as given ({} = every header on). */
  proxyHeaders: ProxyHeadersSetting;
  /** defaultConfig.onDemandHosts (ADR 0023); default true. */
  onDemandHosts: boolean;
  /** spec.rateLimits.redisAddress: global rate limits on (weftd --ratelimit-redis, webhook --global-ratelimits). */
  rateLimitRedis?: string;
  /** spec.rateLimits.passwordSecret / username: weftd's Redis AUTH. */
  rateLimitRedisAuth?: { secret: string; username?: string };
  /** spec.rateLimits.redis.deploy: the operator renders `weft-redis` and weftd uses it. */
  rateLimitRedisDeploy?: { image: string };
}

/** The operator-deployed Redis: its name (Deployment, Service, ServiceAccount), port and image. */
export const DEPLOYED_REDIS = { name: 'weft-redis', port: 6379, image: 'weft.local/redis:1' } as const;
export const DEPLOYED_REDIS_ADDRESS = `${DEPLOYED_REDIS.name}.${MESH_NAMESPACE}:${DEPLOYED_REDIS.port}`;

/** Default ports of a gateway that names none: Istio's ingress gateway ports. */
export const DEFAULT_GATEWAY_PORTS: MeshGatewayPort[] = [
  { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' },
  { name: 'http2', port: 80, targetPort: 8080, protocol: 'TCP' },
  { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
];

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`8760h`, `1h30m`, `90s`) in milliseconds, or null if it is not one. */
export function parseDuration(text: string): number | null {
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return null;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
  return total;
}

/**
 * Requests when the Mesh names none: weftd's, and in Combined mode what weftd and the webhook
 * asked for apart (100m + 50m CPU, 128Mi + 64Mi): the one process does both jobs, and the
 * measured saving (ADR 0024) is memory the node keeps free, not a smaller reservation.
 */
export const DEFAULT_CONTROL_PLANE_REQUESTS: Record<ControlPlaneMode, ResourceRequirements> = {
  Separate: { requests: { cpu: '100m', memory: '128Mi' } },
  Combined: { requests: { cpu: '150m', memory: '192Mi' } },
};

function controlPlaneDefaults(cp: MeshSpec['controlPlane']): EffectiveSpec['controlPlane'] {
  const mode = cp?.mode ?? DEFAULT_CONTROL_PLANE_MODE;
  return {
    mode,
    replicas: cp?.replicas ?? 1,
    image: cp?.image ?? WEFT_IMAGES.weftd,
    resources: cp?.resources ?? DEFAULT_CONTROL_PLANE_REQUESTS[mode],
  };
}

function gatewayDefaults(gw: MeshGateway): EffectiveGateway {
  const ports = (gw.ports && gw.ports.length > 0 ? gw.ports : DEFAULT_GATEWAY_PORTS).map((p) => ({
    name: p.name,
    port: p.port,
    targetPort: p.targetPort ?? p.port,
    protocol: p.protocol ?? 'TCP',
    ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
  }));
  return {
    name: gw.name,
    namespace: gw.namespace ?? MESH_NAMESPACE,
    replicas: gw.replicas ?? 1,
    serviceType: gw.serviceType ?? 'LoadBalancer',
    ports,
    labels: gw.labels ?? {},
  };
}

/** Fills every default. Never throws: invalid values are reported by `semanticFindings`. */
export function effectiveSpec(spec: MeshSpec | undefined): EffectiveSpec {
  const s = spec ?? {};
  const certs = s.certificates ?? {};
  const caRef = certs.caSecretRef;
  return {
    trustDomain: s.trustDomain ?? 'cluster.local',
    controlPlane: controlPlaneDefaults(s.controlPlane),
    gateways: (s.gateways ?? []).map(gatewayDefaults),
    certificates: {
      mode: caRef ? 'caSecret' : 'selfSigned',
      rootCertTTLms: parseDuration(certs.selfSigned?.rootCertTTL ?? '87600h') ?? 0,
      ...(caRef ? { caSecretRef: { name: caRef.name, namespace: caRef.namespace ?? MESH_NAMESPACE } } : {}),
      workloadCertTTL: certs.workloadCertTTL ?? '24h',
      servingCertTTLms: parseDuration(certs.servingCertTTL ?? '8760h') ?? 0,
    },
    injection: s.injection ?? {},
    mtlsMode: s.mtls?.mode ?? 'PERMISSIVE',
    telemetry: {
      metrics: s.telemetry?.metrics?.enabled ?? true,
      tracingSamplingPercent: s.telemetry?.tracing?.samplingPercent ?? 1,
      accessLog: s.telemetry?.accessLog?.enabled ?? true,
    },
    pathNormalization: { normalization: pathNormalizationOf(s.pathNormalization?.normalization) },
    proxyHeaders: s.defaultConfig?.proxyHeaders ?? {},
    onDemandHosts: s.defaultConfig?.onDemandHosts ?? true,
    ...(s.rateLimits?.redisAddress ? { rateLimitRedis: s.rateLimits.redisAddress } : {}),
    ...(s.rateLimits?.redis?.deploy === true
      ? {
          rateLimitRedis: DEPLOYED_REDIS_ADDRESS,
          rateLimitRedisDeploy: { image: s.rateLimits.redis.image ?? DEPLOYED_REDIS.image },
        }
      : {}),
    ...(s.rateLimits?.passwordSecret
      ? {
          rateLimitRedisAuth: {
            secret: s.rateLimits.passwordSecret,
            ...(s.rateLimits.username ? { username: s.rateLimits.username } : {}),
          },
        }
      : {}),
  };
}

function pathNormalizationOf(
  n: PathNormalizationType | undefined,
): Exclude<PathNormalizationType, 'DEFAULT'> {
  return n === undefined || n === 'DEFAULT' ? 'BASE' : n;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MIN_SERVING_TTL_MS = 60 * 60 * 1000;

/**
 * What the CRD schema cannot say: names that must be DNS labels, (namespace, name) pairs that
 * must be unique across gateways, durations that must parse and be long enough, a gateway that
 * would collide with the control plane's own objects. Each finding names the field.
 */
export function semanticFindings(spec: MeshSpec | undefined): Finding[] {
  const s = spec ?? {};
  const out: Finding[] = [];
  const seen = new Map<string, number>();
  const reserved = new Set(['weftd', 'weft-webhook', 'weft-operator']);
  const redis = s.rateLimits?.redisAddress;
  if (redis !== undefined && parseRedisAddress(redis) === null)
    out.push({
      path: 'spec.rateLimits.redisAddress',
      message: `${JSON.stringify(redis)} is not HOST:PORT (e.g. redis.weft-system:6379)`,
    });
  out.push(...redisAuthFindings(s.rateLimits));
  // Checked here too, not only by the webhook's schema: the Mesh that deploys the webhook is applied
  // before it runs, and `weftctl render -f` reads files; a misspelt mode must not pick one silently.
  const mode: unknown = s.controlPlane?.mode;
  if (mode !== undefined && !(CONTROL_PLANE_MODES as readonly unknown[]).includes(mode))
    out.push({
      path: 'spec.controlPlane.mode',
      message: `${JSON.stringify(mode)} is not ${CONTROL_PLANE_MODES.join(' or ')}`,
    });
  (s.gateways ?? []).forEach((gw, i) => {
    const ns = gw.namespace ?? MESH_NAMESPACE;
    if (!DNS_LABEL.test(gw.name) || gw.name.length > 63) {
      out.push({
        path: `spec.gateways[${i}].name`,
        message: `"${gw.name}" is not a DNS label (lowercase letters, digits, '-')`,
      });
    }
    if (!DNS_LABEL.test(ns))
      out.push({ path: `spec.gateways[${i}].namespace`, message: `"${ns}" is not a namespace name` });
    if (ns === MESH_NAMESPACE && reserved.has(gw.name)) {
      out.push({
        path: `spec.gateways[${i}].name`,
        message: `"${gw.name}" is reserved for weft's own components in ${MESH_NAMESPACE}`,
      });
    }
    const prev = seen.get(`${ns}/${gw.name}`);
    if (prev !== undefined)
      out.push({
        path: `spec.gateways[${i}]`,
        message: `duplicates spec.gateways[${prev}] (${ns}/${gw.name})`,
      });
    seen.set(`${ns}/${gw.name}`, i);
    const ports = new Map<number, number>();
    (gw.ports ?? []).forEach((p, j) => {
      const other = ports.get(p.port);
      if (other !== undefined)
        out.push({
          path: `spec.gateways[${i}].ports[${j}].port`,
          message: `port ${p.port} is also used by ports[${other}]`,
        });
      ports.set(p.port, j);
      if (p.nodePort !== undefined && (gw.serviceType ?? 'LoadBalancer') === 'ClusterIP') {
        out.push({
          path: `spec.gateways[${i}].ports[${j}].nodePort`,
          message: 'nodePort needs serviceType NodePort or LoadBalancer',
        });
      }
    });
  });
  const certs = s.certificates ?? {};
  for (const field of ['workloadCertTTL', 'servingCertTTL'] as const) {
    const v = certs[field];
    if (v !== undefined && parseDuration(v) === null)
      out.push({ path: `spec.certificates.${field}`, message: `"${v}" is not a duration like 24h` });
  }
  const root = certs.selfSigned?.rootCertTTL;
  if (root !== undefined && parseDuration(root) === null) {
    out.push({
      path: 'spec.certificates.selfSigned.rootCertTTL',
      message: `"${root}" is not a duration like 87600h`,
    });
  }
  const serving = parseDuration(certs.servingCertTTL ?? '8760h');
  if (serving !== null && serving < MIN_SERVING_TTL_MS) {
    out.push({
      path: 'spec.certificates.servingCertTTL',
      message: 'must be at least 1h (renewal happens at 2/3 of the lifetime)',
    });
  }
  const rootMs = parseDuration(root ?? '87600h');
  if (serving !== null && rootMs !== null && !certs.caSecretRef && rootMs < serving) {
    out.push({
      path: 'spec.certificates.selfSigned.rootCertTTL',
      message: 'must not be shorter than servingCertTTL',
    });
  }
  if (certs.selfSigned && certs.caSecretRef) {
    out.push({ path: 'spec.certificates', message: 'set either selfSigned or caSecretRef, not both' });
  }
  return out;
}

/** AUTH settings need the Redis they are for, a Secret name, and a username only with a password. */
function redisAuthFindings(rl: MeshSpec['rateLimits']): Finding[] {
  const out: Finding[] = [];
  if (rl === undefined) return out;
  const deploy = rl.redis?.deploy === true;
  if (deploy && rl.redisAddress !== undefined)
    out.push({
      path: 'spec.rateLimits.redisAddress',
      message: `redis.deploy runs the Redis at ${DEPLOYED_REDIS_ADDRESS}: leave redisAddress unset (or deploy false to use your own)`,
    });
  if (deploy && rl.passwordSecret === undefined)
    out.push({
      path: 'spec.rateLimits.passwordSecret',
      message:
        'redis.deploy needs passwordSecret (a Secret with a password key): without a password any pod that reaches the Redis could change every rate-limit bucket',
    });
  for (const f of ['passwordSecret', 'username'] as const)
    if (rl[f] !== undefined && rl.redisAddress === undefined && !deploy)
      out.push({
        path: `spec.rateLimits.${f}`,
        message: 'applies to the global rate-limit Redis: set redisAddress too',
      });
  if (rl.passwordSecret !== undefined && !isDNS1123Subdomain(rl.passwordSecret))
    out.push({
      path: 'spec.rateLimits.passwordSecret',
      message: `${JSON.stringify(rl.passwordSecret)} is not a Secret name`,
    });
  if (rl.username !== undefined && rl.passwordSecret === undefined)
    out.push({ path: 'spec.rateLimits.username', message: 'AUTH with a username needs passwordSecret' });
  if (rl.username !== undefined && !/^[\x21-\x7e]{1,256}$/.test(rl.username))
    out.push({ path: 'spec.rateLimits.username', message: 'must be printable characters without spaces' });
  return out;
}
