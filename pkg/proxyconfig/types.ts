/**
 * The proxy's own configuration model (`proxy.weft.dev/v1`). It is what the translator produces
 * from Istio objects, what `weft-proxy run --config` accepts directly, and what the control plane
 * will push over the wire: plain JSON (no Maps, no functions, no Dates), versioned, with every
 * duration in milliseconds and every default already resolved by the translator where Istio
 * defines one. The proxy compiles it once per `version` into matchers and pools.
 *
 * Shape: listeners → virtual hosts (by Host/authority) → ordered routes → weighted clusters →
 * endpoints. Documented field by field in docs/proxy-config.md.
 */

export const PROXY_CONFIG_API_VERSION = 'proxy.weft.dev/v1';

export interface ProxyConfig {
  apiVersion: typeof PROXY_CONFIG_API_VERSION;
  kind: 'ProxyConfig';
  /** Opaque version label; a change of version means "recompile". */
  version: string;
  listeners: Listener[];
  clusters: Cluster[];
  telemetry?: Telemetry;
  /** How request paths are normalized before matching and forwarding; absent = BASE. */
  pathNormalization?: PathNormalizationSetting;
  /** Which headers the proxy adds (Istio's `meshConfig.defaultConfig.proxyHeaders`); absent = all. */
  proxyHeaders?: ProxyHeadersSetting;
}

/**
 * The part of Istio's `meshConfig.defaultConfig.proxyHeaders` weft implements, in Istio's shape.
 * By default the proxy sets, as Istio's sidecars and gateways do: `x-envoy-attempt-count` on each
 * upstream attempt (1, 2, ...); and the debug headers `x-envoy-upstream-service-time` on proxied
 * responses, `x-envoy-overloaded: true` on circuit-breaker 503s, `x-envoy-original-path` on
 * rewritten requests. `attemptCount.disabled` drops the first, `envoyDebugHeaders.disabled` the
 * debug headers (Envoy's router `suppress_envoy_headers`). Istio's other proxyHeaders fields
 * (server, requestId, forwardedClientCert, xForwardedPort/Host, metadataExchangeHeaders...) are
 * not accepted here.
 */
export interface ProxyHeadersSetting {
  attemptCount?: { disabled?: boolean };
  envoyDebugHeaders?: { disabled?: boolean };
}

/** The fields of ProxyHeadersSetting, each `{disabled: bool}` (one list for every schema and check). */
export const PROXY_HEADERS_FIELDS = ['attemptCount', 'envoyDebugHeaders'] as const;

/**
 * Istio's `meshConfig.pathNormalization.normalization` values. DEFAULT is BASE; BASE is Envoy's
 * RFC 3986 normalize_path; MERGE_SLASHES adds merge_slashes; DECODE_AND_MERGE_SLASHES also
 * decodes %2F and %5C first; NONE forwards paths as received.
 */
export const PATH_NORMALIZATION_TYPES = [
  'DEFAULT',
  'NONE',
  'BASE',
  'MERGE_SLASHES',
  'DECODE_AND_MERGE_SLASHES',
] as const;
export type PathNormalizationType = (typeof PATH_NORMALIZATION_TYPES)[number];

/** The shape of Istio's `meshConfig.pathNormalization`. */
export interface PathNormalizationSetting {
  normalization?: PathNormalizationType;
}

export interface Telemetry {
  /** JSON access log lines on stdout (default false: off for performance, like Linkerd). */
  accessLog?: boolean;
  /** Honour `x-weft-explain: 1` request headers by returning the decision in a response header. */
  explainHeader?: boolean;
  /** `source_workload` etc. labels for the metrics this proxy reports. */
  workload?: { name?: string; namespace?: string; app?: string; version?: string };
}

export type Listener = HttpListener | TcpListener;

export interface HttpListener {
  name: string;
  protocol: 'HTTP';
  /** Bind address; default 127.0.0.1 in standalone mode. */
  address?: string;
  port: number;
  virtualHosts: VirtualHost[];
  /**
   * Requests come from outside the mesh (a gateway): the x-envoy-* request headers Envoy strips
   * from external requests (retry, timeout and tracing controls) are removed, not forwarded.
   */
  edge?: boolean;
  /**
   * HTTP/1.1 `Upgrade` tokens this listener may tunnel (Envoy's `upgrade_configs`), matched
   * case-insensitively against the request's whole Upgrade value; default `["websocket"]`, as
   * Istio allows on every HTTP route. Others are forwarded as plain HTTP without the upgrade.
   */
  upgradeTypes?: string[];
}

export interface TcpListener {
  name: string;
  protocol: 'TCP';
  address?: string;
  port: number;
  /** Every connection is piped to one endpoint of this cluster. */
  cluster: string;
}

export interface VirtualHost {
  name: string;
  /** Lowercase authorities this host answers to: `reviews`, `reviews.default.svc.cluster.local:9080`, `*`. */
  domains: string[];
  routes: Route[];
}

/** Where a route came from, for Explain records and access logs. */
export interface RouteSource {
  kind: string;
  namespace?: string;
  name: string;
  /** Index of the rule in the source's `http[]` list. */
  rule?: number;
}

export interface Route {
  name?: string;
  source?: RouteSource;
  /** ORed; fields in one block are ANDed. Empty or absent: matches everything. */
  match?: RouteMatch[];
  action: RouteAction;
  /** Rewrite applied before forwarding (only with a `route` action). */
  rewrite?: Rewrite;
  headers?: HeaderOperations;
  /** Whole-request timeout; absent or 0 = none (Istio default). */
  timeoutMs?: number;
  /** Absent = Istio's default retry policy; `attempts: 0` disables. */
  retries?: RetryPolicy;
  fault?: Fault;
  mirrors?: Mirror[];
}

export type StringMatch = { exact: string } | { prefix: string } | { regex: string };
/** `{}` in Istio = header present. */
export type HeaderMatch = StringMatch | { present: true };

export interface RouteMatch {
  name?: string;
  uri?: StringMatch;
  /** Applies to uri exact and prefix only (Istio semantics). */
  ignoreUriCase?: boolean;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  /** Lowercase header names. */
  headers?: Record<string, HeaderMatch>;
  withoutHeaders?: Record<string, HeaderMatch>;
  queryParams?: Record<string, HeaderMatch>;
  /** Port the request was addressed to (from the authority, or the listener port). */
  port?: number;
}

export type RouteAction =
  | { type: 'route'; destinations: WeightedDestination[] }
  | { type: 'redirect'; redirect: Redirect }
  | { type: 'directResponse'; status: number; body?: string; bodyBase64?: string };

export interface WeightedDestination {
  /** Cluster name; a name with no cluster in `clusters` answers 503 NC. */
  cluster: string;
  /** Relative weight; a single destination gets everything whatever its weight. */
  weight: number;
  /** Authority sent upstream when no rewrite sets one (the service host). */
  host?: string;
  headers?: HeaderOperations;
}

export interface Redirect {
  uri?: string;
  authority?: string;
  scheme?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  /** Default 301. */
  code?: number;
}

export interface Rewrite {
  /** Replaces the matched prefix (or the whole path for exact/regex matches). */
  uri?: string;
  uriRegex?: { match: string; rewrite: string };
  authority?: string;
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HeaderOperations {
  request?: HeaderOps;
  response?: HeaderOps;
}

/**
 * Istio's default `retryOn` (pilot route/retry): the starting point of every route's policy, the
 * whole policy when a route has no `retries`. No status code goes with it since Istio 1.24.
 */
export const DEFAULT_RETRY_ON: readonly string[] = [
  'connect-failure',
  'refused-stream',
  'unavailable',
  'cancelled',
  'retriable-status-codes',
];

export interface RetryPolicy {
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy tokens (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, ...). */
  retryOn: string[];
  retriableStatusCodes: number[];
  /** Base backoff interval; Envoy default 25 ms, capped at 10×. */
  backoffBaseMs?: number;
}

export interface Fault {
  delay?: { fixedDelayMs: number; percentage: number };
  abort?: { httpStatus: number; percentage: number };
}

export interface Mirror {
  cluster: string;
  host?: string;
  /** 0–100; absent in Istio means 100. */
  percentage: number;
  /**
   * Append `-shadow` to the mirrored request's Host (`reviews:9080` → `reviews-shadow:9080`), as
   * Envoy does unless told not to. Absent or false: the original Host, Istio's default since 1.28
   * (istiod's DISABLE_SHADOW_HOST_SUFFIX=true).
   */
  shadowHostSuffix?: boolean;
}

export type LoadBalancer =
  { simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' } | { consistentHash: ConsistentHash };

export type ConsistentHash =
  | { httpHeaderName: string }
  | { httpCookie: { name: string } }
  | { useSourceIp: true }
  | { httpQueryParameterName: string };

export interface ConnectionPool {
  maxConnections?: number;
  connectTimeoutMs?: number;
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeoutMs?: number;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface Cluster {
  /** Envoy-style `outbound|9080|v1|reviews.default.svc.cluster.local`. */
  name: string;
  service?: string;
  port?: number;
  subset?: string;
  endpoints: Endpoint[];
  loadBalancer?: LoadBalancer;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
}

export interface Endpoint {
  address: string;
  port: number;
  labels?: Record<string, string>;
  /** Relative weight for load balancing; default 1. */
  weight?: number;
}
