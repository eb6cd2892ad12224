/**
 * Sidecar (networking.istio.io): narrows what a workload's proxy listens on (ingress) and which
 * services it can reach (egress), which also bounds the config weft pushes to it.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject } from './common.js';
import type { Destination } from './virtualservice.js';
import type { ServerTLSSettings } from './gateway.js';
import type { ConnectionPoolSettings } from './destinationrule.js';
import { istioStatusSchema } from './common.js';
import { destinationSchema } from './virtualservice.js';
import { serverTLSSchema } from './gateway.js';
import { arr, duration, enumOf, int32, obj, str, strArr, strMap, uint32 } from './schema.js';

export interface SidecarPort {
  number?: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export type CaptureMode = 'DEFAULT' | 'IPTABLES' | 'NONE';

export interface IstioIngressListener {
  port: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  defaultEndpoint?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
}

export interface IstioEgressListener {
  port?: SidecarPort;
  bind?: string;
  captureMode?: CaptureMode;
  hosts: string[];
}

export interface OutboundTrafficPolicy {
  mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY';
  egressProxy?: Destination;
}

export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  inboundConnectionPool?: ConnectionPoolSettings;
  outboundTrafficPolicy?: OutboundTrafficPolicy;
}

export type Sidecar = KubeObject<SidecarSpec>;

const sidecarPortSchema = (): JSONSchema =>
  obj({ number: uint32(), protocol: str(), name: str(), targetPort: uint32() });
const captureMode = (): JSONSchema => enumOf('DEFAULT', 'IPTABLES', 'NONE');
/** Sidecar reuses DestinationRule's connection pool message; kept small (no keepalive detail needed here). */
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
      useClientProtocol: { type: 'boolean' },
      maxConcurrentStreams: int32(),
      http2KeepAlive: obj({ interval: duration(), timeout: duration() }),
    }),
  });

export const sidecarSpecSchema = (): JSONSchema =>
  obj({
    workloadSelector: obj({ labels: strMap() }),
    ingress: arr(
      obj(
        {
          port: sidecarPortSchema(),
          bind: str(),
          captureMode: captureMode(),
          defaultEndpoint: str(),
          tls: serverTLSSchema(),
          connectionPool: connectionPoolSchema(),
        },
        { required: ['port'] },
      ),
    ),
    egress: arr(
      obj(
        { port: sidecarPortSchema(), bind: str(), captureMode: captureMode(), hosts: strArr() },
        { required: ['hosts'] },
      ),
    ),
    inboundConnectionPool: connectionPoolSchema(),
    outboundTrafficPolicy: obj({
      mode: enumOf('REGISTRY_ONLY', 'ALLOW_ANY'),
      egressProxy: destinationSchema(),
    }),
  });

export const sidecarKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'Sidecar',
  plural: 'sidecars',
  singular: 'sidecar',
  listKind: 'SidecarList',
  shortNames: [],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  storageVersion: 'v1',
  printerColumns: [],
  specSchema: sidecarSpecSchema(),
  statusSchema: istioStatusSchema(),
};
