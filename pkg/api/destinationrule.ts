/**
 * DestinationRule (networking.istio.io): policies applied to traffic for a service after
 * routing (load balancing, connection pools, outlier detection, TLS), and its subsets.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject, PortSelector } from './common.js';
import { istioStatusSchema, portSelectorSchema } from './common.js';
import {
  arr,
  bool,
  double,
  duration,
  enumOf,
  int32,
  map,
  obj,
  str,
  strArr,
  strMap,
  uint32,
} from './schema.js';

export interface HTTPCookie {
  name: string;
  path?: string;
  ttl?: Duration;
  attributes?: { name: string; value?: string }[];
}

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: HTTPCookie;
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated: use ringHash.minimumRingSize. */
  minimumRingSize?: number;
}

export interface LocalityLoadBalancerSetting {
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
  enabled?: boolean | null;
}

export interface WarmupConfiguration {
  duration: Duration;
  minimumPercent?: number;
  aggression?: number;
}

export type SimpleLB =
  'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

/** Zone-aware routing settings (newer Istio); mutually exclusive with localityLbSetting. */
export interface ZoneAwareLoadBalancerSetting {
  failoverPriority?: string[];
  failover?: { from?: string; to?: string }[];
  enabled?: boolean | null;
  minClusterSize?: number;
  forceLocalZone?: boolean;
}

export interface LoadBalancerSettings {
  simple?: SimpleLB;
  consistentHash?: ConsistentHashLB;
  /** Weighted least-request by backend-reported utilisation (newer Istio); settings kept opaque. */
  backendUtilization?: Record<string, unknown>;
  localityLbSetting?: LocalityLoadBalancerSetting;
  zoneAwareLbSetting?: ZoneAwareLoadBalancerSetting;
  /** Deprecated: use warmup. */
  warmupDurationSecs?: Duration;
  warmup?: WarmupConfiguration;
}

export interface TCPSettings {
  maxConnections?: number;
  connectTimeout?: Duration;
  tcpKeepalive?: { probes?: number; time?: Duration; interval?: Duration };
  maxConnectionDuration?: Duration;
  idleTimeout?: Duration;
}

export interface HTTPSettings {
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeout?: Duration;
  h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
  useClientProtocol?: boolean;
  maxConcurrentStreams?: number;
  http2KeepAlive?: { interval?: Duration; timeout?: Duration };
}

export interface ConnectionPoolSettings {
  tcp?: TCPSettings;
  http?: HTTPSettings;
}

export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number | null;
  consecutiveGatewayErrors?: number | null;
  consecutive5xxErrors?: number | null;
  interval?: Duration;
  baseEjectionTime?: Duration;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
  /** Deprecated. */
  consecutiveErrors?: number;
}

export type ClientTLSMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

export interface ClientTLSSettings {
  mode?: ClientTLSMode;
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean | null;
  caCrl?: string;
}

export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface TunnelSettings {
  protocol?: string;
  targetHost: string;
  targetPort: number;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  tunnel?: TunnelSettings;
  proxyProtocol?: { version?: 'V1' | 'V2' };
  /** percent is a plain number (protobuf DoubleValue), not a Percent object. */
  retryBudget?: { percent?: number; minRetryConcurrency?: number };
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export type DestinationRule = KubeObject<DestinationRuleSpec>;

// ---- schema -------------------------------------------------------------------------------

const nullableUint32 = (): JSONSchema => ({ ...uint32(), nullable: true });

const loadBalancerSchema = (): JSONSchema =>
  obj(
    {
      simple: enumOf('UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'),
      consistentHash: obj(
        {
          httpHeaderName: str(),
          httpCookie: obj(
            {
              name: str(),
              path: str(),
              ttl: duration(),
              attributes: arr(obj({ name: str(), value: str() }, { required: ['name'] })),
            },
            { required: ['name'] },
          ),
          useSourceIp: bool(),
          httpQueryParameterName: str(),
          ringHash: obj({ minimumRingSize: { type: 'integer', minimum: 0 } }),
          maglev: obj({ tableSize: { type: 'integer', minimum: 0 } }),
          minimumRingSize: { type: 'integer', minimum: 0 },
        },
        {
          oneOf: [
            ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'],
            ['ringHash', 'maglev'],
          ],
        },
      ),
      localityLbSetting: obj({
        distribute: arr(obj({ from: str(), to: map(uint32()) })),
        failover: arr(obj({ from: str(), to: str() })),
        failoverPriority: strArr(),
        enabled: { type: 'boolean', nullable: true },
      }),
      zoneAwareLbSetting: obj({
        failoverPriority: strArr(),
        failover: arr(obj({ from: str(), to: str() })),
        enabled: { type: 'boolean', nullable: true },
        minClusterSize: uint32(),
        forceLocalZone: bool(),
      }),
      backendUtilization: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      warmupDurationSecs: duration(),
      warmup: obj(
        {
          duration: duration(),
          minimumPercent: double({ minimum: 0, maximum: 100, nullable: true }),
          aggression: double({ minimum: 0, nullable: true }),
        },
        { required: ['duration'] },
      ),
    },
    { oneOf: [['simple', 'consistentHash', 'backendUtilization']] },
  );

const connectionPoolSchema = (): JSONSchema =>
  obj({
    tcp: obj({
      maxConnections: int32(),
      connectTimeout: duration(),
      tcpKeepalive: obj({ probes: uint32(), time: duration(), interval: duration() }),
      maxConnectionDuration: duration(),
      idleTimeout: duration(),
    }),
    http: obj({
      http1MaxPendingRequests: int32(),
      http2MaxRequests: int32(),
      maxRequestsPerConnection: int32(),
      maxRetries: int32(),
      idleTimeout: duration(),
      h2UpgradePolicy: enumOf('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
      useClientProtocol: bool(),
      maxConcurrentStreams: int32(),
      http2KeepAlive: obj({ interval: duration(), timeout: duration() }),
    }),
  });

const outlierDetectionSchema = (): JSONSchema =>
  obj({
    splitExternalLocalOriginErrors: bool(),
    consecutiveLocalOriginFailures: nullableUint32(),
    consecutiveGatewayErrors: nullableUint32(),
    consecutive5xxErrors: nullableUint32(),
    interval: duration(),
    baseEjectionTime: duration(),
    maxEjectionPercent: int32(),
    minHealthPercent: int32(),
    consecutiveErrors: int32(),
  });

export const clientTLSSchema = (): JSONSchema =>
  obj({
    mode: enumOf('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'),
    clientCertificate: str(),
    privateKey: str(),
    caCertificates: str(),
    credentialName: str(),
    subjectAltNames: strArr(),
    sni: str(),
    insecureSkipVerify: { type: 'boolean', nullable: true },
    caCrl: str(),
  });

const trafficPolicySchema = (): JSONSchema =>
  obj({
    loadBalancer: loadBalancerSchema(),
    connectionPool: connectionPoolSchema(),
    outlierDetection: outlierDetectionSchema(),
    tls: clientTLSSchema(),
    portLevelSettings: arr(
      obj({
        port: portSelectorSchema(),
        loadBalancer: loadBalancerSchema(),
        connectionPool: connectionPoolSchema(),
        outlierDetection: outlierDetectionSchema(),
        tls: clientTLSSchema(),
      }),
      { maxItems: 4096 },
    ),
    tunnel: obj(
      { protocol: str(), targetHost: str(), targetPort: uint32() },
      { required: ['targetHost', 'targetPort'] },
    ),
    proxyProtocol: obj({ version: enumOf('V1', 'V2') }),
    retryBudget: obj({
      percent: double({ minimum: 0, maximum: 100, nullable: true }),
      minRetryConcurrency: uint32(),
    }),
  });

export const destinationRuleSpecSchema = (): JSONSchema =>
  obj(
    {
      host: str(),
      trafficPolicy: trafficPolicySchema(),
      subsets: arr(
        obj({ name: str(), labels: strMap(), trafficPolicy: trafficPolicySchema() }, { required: ['name'] }),
      ),
      exportTo: strArr(),
      workloadSelector: obj({ matchLabels: strMap() }),
    },
    { required: ['host'] },
  );

export const destinationRuleKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'DestinationRule',
  plural: 'destinationrules',
  singular: 'destinationrule',
  listKind: 'DestinationRuleList',
  shortNames: ['dr'],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  storageVersion: 'v1',
  printerColumns: [
    {
      name: 'Host',
      type: 'string',
      jsonPath: '.spec.host',
      description: 'The name of a service from the service registry',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: destinationRuleSpecSchema(),
  statusSchema: istioStatusSchema(),
};
