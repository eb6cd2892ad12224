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

import type { JwtAuthn } from './jwt.js';
import type { RateLimitBlock } from './ratelimit.js';
import type { L4Route } from './l4.js';

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
  /** The sidecar's inbound side (capture port 15006); absent: every port PERMISSIVE, sniffed. */
  inbound?: Inbound;
  /** AuthorizationPolicy for this proxy (see AuthzBlock); absent = allow everything. */
  authz?: AuthzBlock;
  /** RequestAuthentication (JWT) for requests this proxy receives (pkg/proxyconfig/jwt.ts). */
  jwt?: JwtAuthn;
  /** Local rate limits on the sidecar's inbound side (pkg/proxyconfig/ratelimit.ts); absent: none. */
  rateLimits?: RateLimitBlock;
  /** Which headers the proxy adds (Istio's `meshConfig.defaultConfig.proxyHeaders`); absent = all. */
  proxyHeaders?: ProxyHeadersSetting;
  /**
   * The credentials the clusters' `tls.credentialName` and the listeners' TLS servers name, by that
   * name: what weftd read from the Secret in the proxy's namespace (docs/proxy-config.md "Upstream
   * TLS", "Gateway TLS"). Gateways only.
   */
  credentials?: Record<string, UpstreamCredential>;
  /** How the proxy resolves the hosts of STRICT_DNS / LOGICAL_DNS clusters; absent = the system's resolver, Istio's timings. */
  dns?: DnsSettings;
  /**
   * Istio's outboundTrafficPolicy REGISTRY_ONLY (from the proxy's Sidecar): an HTTP request for a
   * host the outbound listener does not know gets 404 NR, a TCP connection to a destination not
   * listed here is closed. Absent = ALLOW_ANY: both pass through to the original destination.
   */
  outboundTrafficPolicy?: OutboundTrafficPolicy;
  /**
   * The sidecar's outbound TCP and TLS services (declared non-HTTP ports of services with
   * addresses): a captured connection to one of them is routed by its L4 routes, never sniffed
   * (docs/proxy-config.md "TCP and TLS routes"). Absent: every connection is sniffed.
   */
  outboundTcp?: OutboundTcpService[];
  /** The Sidecar resource that scoped this config and how it was chosen (weftctl proxy-config shows it); absent: none. */
  scope?: { sidecar: string; via: 'workload' | 'namespace' | 'root' };
  /**
   * On-demand hosts (ADR 0023, the Mesh's `defaultConfig.onDemandHosts`): this sidecar holds its
   * own namespace, what its Sidecar names exactly, and `subscribed`; for an HTTP Host it does not
   * hold it asks weftd (POST /v1/discovery/ondemand) and holds the request briefly. Absent: off.
   */
  onDemand?: OnDemandBlock;
}

export interface OnDemandBlock {
  /** The proxy's namespace (its hosts are present from the start). */
  namespace: string;
  /** Egress entries (`namespace/host`) the proxy is subscribed to, sorted. */
  subscribed: string[];
}

export interface OutboundTrafficPolicy {
  mode: 'REGISTRY_ONLY';
  /**
   * The registry's TCP destinations the sidecar may pass through to: an IP or CIDR and its ports.
   * DNS ServiceEntries without `addresses` are not here: TLS naming their hosts is routed to
   * their clusters by the port's catch-all (OutboundTcpService.catchAll), never passed through.
   */
  destinations: { address: string; ports: number[] }[];
}

/**
 * The resolver of DNS clusters (docs/proxy.md "DNS clusters"). A host is re-resolved when its
 * answer's TTL runs out (Envoy's respect_dns_ttl, which Istio sets), the TTL bounded to
 * [minRefreshMs, maxRefreshMs]; an answer without TTL waits refreshRateMs. A failed resolution
 * keeps the last good addresses and retries with backoff from minRefreshMs up to refreshRateMs.
 */
export interface DnsSettings {
  /** Name servers, `ip` or `ip:port` (`[ipv6]:port`); absent = the system's (/etc/resolv.conf). */
  servers?: string[];
  /** Istio's meshConfig.dnsRefreshRate: refresh without a TTL, and the failure backoff's cap (default 60000). */
  refreshRateMs?: number;
  /** Envoy's dns_min_refresh_rate: the shortest TTL honoured (default 5000). */
  minRefreshMs?: number;
  /** The longest TTL honoured (default 300000): a day-long TTL still refreshes every 5 minutes. */
  maxRefreshMs?: number;
  /** Per query attempt (default 5000; two attempts). */
  timeoutMs?: number;
}

/**
 * One `credentialName`, as weftd delivers it: PEM read from the Secret (Istio's keys: `tls.crt`,
 * `tls.key`, `ca.crt`, or `cert`, `key`, `cacert`; the CA may come from `<name>-cacert`), or why
 * it cannot be used. A cluster that needs an unusable credential fails its connections (503 UF);
 * it never falls back to plaintext. Dumps show `privateKey` as REDACTED (redactCredentials).
 */
export interface UpstreamCredential {
  /** The Secret(s) it came from: `<namespace>/<name>` [`, <namespace>/<name>-cacert`]. */
  source: string;
  certChain?: string;
  privateKey?: string;
  caCertificates?: string;
  /** Set when the credential is unusable (missing Secret, missing key, bad PEM, forbidden). */
  error?: string;
}

/** What a dump shows instead of a private key. */
export const REDACTED = '[redacted]';

/**
 * The config with every credential's private key replaced by REDACTED: what weftd's
 * /debug/config, `weftctl proxy-config` and the proxy's /config_dump show. Certificates stay
 * (they are public); the config itself is not changed.
 */
export function redactCredentials<T extends Pick<ProxyConfig, 'credentials'> | undefined | null>(cfg: T): T {
  if (cfg === undefined || cfg === null || cfg.credentials === undefined) return cfg;
  const credentials: Record<string, UpstreamCredential> = {};
  for (const [name, c] of Object.entries(cfg.credentials))
    credentials[name] = c.privateKey === undefined ? c : { ...c, privateKey: REDACTED };
  return { ...cfg, credentials };
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

export type PeerMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** An mTLS mode and what decided it (PeerAuthentication resolution, pkg/translate/peerauth.ts). */
export interface InboundMtls {
  mode: PeerMode;
  /** e.g. `PeerAuthentication demo/strict`, `... portLevelMtls[8080]`, `Mesh spec.mtls.mode`. */
  policy?: string;
}

/**
 * Inbound: mesh mTLS terminated per workload port (STRICT refuses plaintext, PERMISSIVE accepts
 * both, DISABLE never terminates), then HTTP/1.1 parsed and forwarded to the app, or TCP piped.
 */
export interface Inbound {
  /** The workload's mode: ports without an entry of their own (or without `mtls`) use it. */
  mtls: InboundMtls;
  ports?: InboundPort[];
}

export interface InboundPort {
  /** The workload (container) port, as the connection's original destination has it. */
  port: number;
  /** Declared by the Services in front of it: HTTP is parsed, TCP piped; absent: sniffed. */
  protocol?: 'HTTP' | 'TCP';
  /**
   * HTTP declared as HTTP/2 (GRPC, HTTP2): an HTTP/2 request goes to the app as HTTP/2. Without
   * it a declared HTTP port gets HTTP/1.1 whatever the client spoke (an h2UpgradePolicy between
   * sidecars must not reach an HTTP/1.1 app as HTTP/2); a sniffed port gets the client's protocol.
   */
  http2?: boolean;
  /** `portLevelMtls`; absent: `inbound.mtls`. */
  mtls?: InboundMtls;
  /** `destination_service` of this port's metrics (a Service host). */
  service?: string;
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
  /**
   * Gateway TLS termination (Gateway servers with `tls.mode` SIMPLE, MUTUAL or ISTIO_MUTUAL on this port): the
   * ClientHello's SNI picks one of `servers` (proxy/gateway-tls.ts); absent = plaintext HTTP.
   */
  tls?: GatewayTls;
}

/** The TLS servers of one gateway port (docs/proxy-config.md "Gateway TLS"). */
export interface GatewayTls {
  servers: GatewayTlsServer[];
}

/** Node's names for Istio's `minProtocolVersion` / `maxProtocolVersion`. */
export const GATEWAY_TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type GatewayTlsVersion = (typeof GATEWAY_TLS_VERSIONS)[number];

export const GATEWAY_TLS_MODES = ['SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;
export type GatewayTlsMode = (typeof GATEWAY_TLS_MODES)[number];

/**
 * One Gateway server that terminates TLS. `sniHosts`: lowercase SNI names it answers to (exact or
 * `*.suffix`); empty = every name, and connections without SNI (Istio's host `*`). Its Hosts
 * must match one of them too, or the request is answered 404 NR (no SNI/Host confusion).
 */
export interface GatewayTlsServer {
  /** `<namespace>/<gateway>[<server index>]`, for logs and metrics. */
  name: string;
  sniHosts: string[];
  /**
   * SIMPLE / MUTUAL: the certificate of `credentialName`. ISTIO_MUTUAL: the gateway's own workload
   * certificate, and a client certificate chained to the mesh roots (its SPIFFE ID is the
   * request's source principal).
   */
  mode: GatewayTlsMode;
  /**
   * SIMPLE / MUTUAL (required): names an entry of ProxyConfig.credentials, `tls.crt`/`tls.key`
   * (+ `ca.crt`, required for MUTUAL). ISTIO_MUTUAL: absent.
   */
  credentialName?: string;
  /** MUTUAL, ISTIO_MUTUAL: the client certificate must carry one of these SANs (DNS, URI, IP or email). */
  subjectAltNames?: string[];
  /** Default TLSv1.2 / TLSv1.3 (Envoy's server defaults). */
  minProtocolVersion?: GatewayTlsVersion;
  maxProtocolVersion?: GatewayTlsVersion;
  /** OpenSSL/BoringSSL cipher names for TLS ≤ 1.2 (TLS 1.3 suites are not configurable, as in Envoy). */
  cipherSuites?: string[];
}

export interface TcpListener {
  name: string;
  protocol: 'TCP';
  address?: string;
  port: number;
  /** Every connection is piped to one endpoint of this cluster (when `tcpRoutes`/`tlsRoutes` are absent). */
  cluster?: string;
  /** VirtualService `tcp:` rules, first match wins (pkg/proxyconfig/l4.ts). */
  tcpRoutes?: L4Route[];
  /**
   * VirtualService `tls:` rules: the ClientHello's SNI picks one (a gateway's PASSTHROUGH server);
   * TLS passes through unterminated. A connection no route takes is closed (flag NR).
   */
  tlsRoutes?: L4Route[];
}

/** One outbound service port a sidecar routes at L4 (ProxyConfig.outboundTcp). */
export interface OutboundTcpService {
  /** `<host>:<port>`, for logs. */
  name: string;
  /** Its addresses (IPs or CIDRs: cluster IPs, ServiceEntry addresses) compared with the original destination. */
  addresses: string[];
  port: number;
  /** As TcpListener: `tlsRoutes` first (by SNI; the ClientHello is read), then `tcpRoutes`. */
  tcpRoutes?: L4Route[];
  tlsRoutes?: L4Route[];
  /**
   * The port's catch-all (Istio's `0.0.0.0:<port>` listener of services without addresses: DNS
   * ServiceEntries on TLS/HTTPS ports): `addresses` are `0.0.0.0/0` and `::/0`, only
   * `tlsRoutes`, and it is consulted after every other service (a service's own address wins).
   * A connection none of its routes takes is not refused here: it goes on as any other captured
   * connection (sniffed; passed through under ALLOW_ANY; under REGISTRY_ONLY passed only to a
   * registry destination, else closed and counted as Istio's BlackHoleCluster).
   */
  catchAll?: true;
}

export interface VirtualHost {
  name: string;
  /** Lowercase authorities this host answers to: `reviews`, `reviews.default.svc.cluster.local:9080`, `*`. */
  domains?: string[];
  /**
   * A service port's authorities in short (issue #19), answered besides `domains`; the name is
   * then `<host>:<port>`. Spelled out by domainsOf (pkg/proxyconfig/domains.ts). weftd sends it
   * only to proxies that ask for it (discovery query `serviceDomains=1`), `domains` to others.
   */
  serviceDomains?: ServiceDomains;
  routes: Route[];
}

/**
 * What a service port answers to, on `<host>:<port>` (the virtual host's name): the host and
 * `addresses`, plus for `short` (the host is `<short>.<ns>.<more>`) `<short>`, `<short>.<ns>` and
 * `<short>.<ns>.svc`; each as `name:port`, and also `name` when `bare` (the service's default
 * HTTP port: 80, else its first).
 */
export interface ServiceDomains {
  addresses?: string[];
  short?: string;
  bare?: true;
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

/**
 * What a route without `retries` gets (the proxy's compileRetry): Istio's default policy, 2
 * retries on DEFAULT_RETRY_ON with a 25 ms backoff base and the route timeout per try.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 2,
  retryOn: [...DEFAULT_RETRY_ON],
  retriableStatusCodes: [],
  backoffBaseMs: 25,
};

/**
 * Whether `p` retries exactly as DEFAULT_RETRY_POLICY does, so a route can leave `retries` out
 * (issue #19: a VirtualService spelling out the default repeated it on every route it made).
 */
export function isDefaultRetryPolicy(p: RetryPolicy): boolean {
  const d = DEFAULT_RETRY_POLICY;
  const on = new Set(p.retryOn);
  return (
    p.attempts === d.attempts &&
    p.perTryTimeoutMs === undefined &&
    (p.backoffBaseMs ?? d.backoffBaseMs) === d.backoffBaseMs &&
    p.retriableStatusCodes.length === 0 &&
    on.size === d.retryOn.length &&
    d.retryOn.every((t) => on.has(t))
  );
}

export interface Fault {
  delay?: { fixedDelayMs: number; percentage: number };
  /** `httpStatus` 0 with `grpcStatus`: a gRPC status abort (HTTP 200, `grpc-status`: the code). */
  abort?: { httpStatus: number; percentage: number; grpcStatus?: number };
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
  /** Streams per upstream HTTP/2 connection at most (DestinationRule maxConcurrentStreams). */
  maxConcurrentStreams?: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeoutMs?: number;
  /**
   * `http2KeepAlive`: a PING on every upstream HTTP/2 session each interval; no answer within the
   * timeout closes the session (its streams fail). Both or neither.
   */
  http2KeepAliveIntervalMs?: number;
  http2KeepAliveTimeoutMs?: number;
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
  /**
   * How the endpoints are found (Envoy's cluster type; Istio's ServiceEntry `resolution`):
   * - `STATIC` (default): `endpoints` as given (IP addresses).
   * - `STRICT_DNS` (resolution DNS): every endpoint's `address` is a host name (or an IP), resolved
   *   and refreshed; every address of every answer is an endpoint.
   * - `LOGICAL_DNS` (DNS_ROUND_ROBIN): the first address of the latest answer only.
   * - `ORIGINAL_DST` (NONE): no endpoints; each request goes where its connection was going (the
   *   sidecar's captured original destination, or a Host that is an IP address).
   */
  type?: ClusterType;
  endpoints: Endpoint[];
  loadBalancer?: LoadBalancer;
  connectionPool?: ConnectionPool;
  outlierDetection?: OutlierDetection;
  /** How connections to the endpoints are secured; absent = plaintext. */
  tls?: UpstreamTls;
  /**
   * Requests go upstream over HTTP/2 (proxy/h2/pool.ts): the port speaks gRPC or HTTP/2
   * (Service port `grpc`/`http2`/`h2c` by appProtocol or name), or the DestinationRule's
   * `h2UpgradePolicy` is UPGRADE. Absent: HTTP/1.1.
   */
  http2?: boolean;
  /**
   * DestinationRule `connectionPool.http.useClientProtocol`: each request goes upstream in the
   * protocol its client spoke (HTTP/2 for an HTTP/2 client, HTTP/1.1 otherwise; Envoy's
   * use_downstream_protocol_config), whatever `http2` says.
   */
  useClientProtocol?: boolean;
}

export const CLUSTER_TYPES = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'ORIGINAL_DST'] as const;
export type ClusterType = (typeof CLUSTER_TYPES)[number];

/** The label an injected pod carries when it runs a weft (or Istio) sidecar: auto-mTLS targets it. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

/** The endpoint label a proxy's metrics report as `destination_version` (when all a cluster's endpoints agree). */
export const VERSION_LABEL = 'version';

/**
 * Client-side TLS towards a cluster (DestinationRule `trafficPolicy.tls`, or auto-mTLS).
 *
 * - `ISTIO_MUTUAL`: the proxy's workload certificate (proxy/identity) and the mesh roots; the
 *   peer must present a certificate whose URI SAN is one of `subjectAltNames` (the SPIFFE IDs of
 *   the destination's service accounts; empty = any certificate the mesh roots signed).
 * - `SIMPLE`: TLS origination; the server is verified against `caCertificates` (a file in the
 *   proxy, else the system roots) and `subjectAltNames` (DNS or URI), else the SNI host name.
 * - `MUTUAL`: SIMPLE plus the client certificate and key files, or `credentialName`.
 * - `credentialName` (SIMPLE or MUTUAL): certificate, key and CA from `ProxyConfig.credentials`
 *   under that name, replacing the files; absent or unusable there → the connection fails.
 */
export interface UpstreamTls {
  mode: 'ISTIO_MUTUAL' | 'SIMPLE' | 'MUTUAL';
  /**
   * Auto-mTLS: TLS only to endpoints labelled `security.istio.io/tlsMode: istio` (their pod runs
   * a sidecar); plaintext to the others.
   */
  auto?: boolean;
  sni?: string;
  subjectAltNames?: string[];
  /** ALPN offered; ISTIO_MUTUAL defaults to Istio's (`istio-http/1.1`, `istio`). */
  alpn?: string[];
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  credentialName?: string;
  insecureSkipVerify?: boolean;
}

export interface Endpoint {
  address: string;
  port: number;
  /**
   * The pod's labels that the proxy reads, not all of them (weftd trims the rest:
   * pkg/translate proxyReadLabelKeys): TLS_MODE_LABEL, VERSION_LABEL and the labels the
   * cluster's failoverPriority names. Absent = none.
   */
  labels?: Record<string, string>;
  /** Relative weight for load balancing; default 1. */
  weight?: number;
  /** `region/zone/subzone` (pkg/translate/locality.ts); absent = unknown. */
  locality?: string;
  /**
   * Envoy priority: 0 (absent) is tried first; load spills to the next priority as the healthy
   * share of the ones before it falls (overprovisioning factor 1.4, proxy/upstream/priority.ts).
   */
  priority?: number;
  /**
   * The weight of the endpoint's locality (DestinationRule `localityLbSetting.distribute`): within a
   * priority, a locality is picked by weight × its available share, then an endpoint in it.
   */
  localityWeight?: number;
}

/**
 * AuthorizationPolicy, pre-compiled by the translator (pkg/translate/authz.ts) for one proxy: the
 * policies that select it, in Istio's terms but already parsed (paths split by kind, CIDRs as
 * address + prefix length, ports as numbers), so the proxy never parses a policy per request.
 * Absent: no policy applies, every request is allowed. Documented in docs/authz.md.
 */
export interface AuthzBlock {
  policies: AuthzPolicy[];
  /** Ext-authz HTTP providers the CUSTOM policies name (the mesh's `extensionProviders`). */
  providers?: Record<string, ExtAuthzHttpProvider>;
  /** Envoy's xff_num_trusted_hops for `remote.ip` / `remoteIpBlocks`; absent or 0 = the peer address. */
  numTrustedProxies?: number;
  /**
   * Names of the HTTP listeners whose requests are checked before routing; absent = all (a
   * gateway). A sidecar's block lists none: policies guard its inbound side, whose listener
   * calls `authorize` itself, never the app's outbound calls.
   */
  listeners?: string[];
}

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthzPolicy {
  /** `namespace/name` of the AuthorizationPolicy. */
  name: string;
  action: AuthzAction;
  /** CUSTOM only: a key of `providers`. */
  provider?: string;
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  dryRun?: boolean;
  /** Istio's meaning: [] = matches nothing; a rule with no from/to/when matches everything. */
  rules: AuthzRule[];
}

export interface AuthzRule {
  /** Alternatives (ORed), each a list of clauses (ANDed); absent = any source. */
  from?: AuthzClause[][];
  /** Alternatives (ORed), each a list of clauses (ANDed); absent = any operation. */
  to?: AuthzClause[][];
  /** ANDed. */
  when?: AuthzClause[];
}

/** The request attribute a clause tests (Istio's condition keys; `request.*` ones for operations). */
export const AUTHZ_KEYS = [
  'source.principal',
  'source.namespace',
  'source.serviceAccount',
  'source.trustDomain',
  'source.ip',
  'remote.ip',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'request.auth.claims',
  'request.headers',
  'request.host',
  'request.method',
  'request.path',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const;
export type AuthzKey = (typeof AUTHZ_KEYS)[number];

/** Matches when (no `values` or one matches) and (no `notValues` or none matches). */
export interface AuthzClause {
  key: AuthzKey;
  /** `request.headers`: the lower-case header name. */
  header?: string;
  /** `request.auth.claims`: the claim path (`[a][b]` → ["a", "b"]). */
  claim?: string[];
  values?: AuthzValue[];
  notValues?: AuthzValue[];
}

/** Istio's string forms: `x` exact, `x*` prefix, `*x` suffix, `*` present. */
export type AuthzString = { exact: string } | { prefix: string } | { suffix: string } | { present: true };
export type AuthzValue =
  | AuthzString
  /** `{*}` / `{**}` path template: literal segments, `*` (one segment), `**` (the rest, last). */
  | { template: string[] }
  | { cidr: { address: string; prefixLen: number } }
  | { port: number }
  /** `requestPrincipals` / `request.auth.principal`: `iss/sub` split at the last `/`. */
  | { iss: AuthzString; sub: AuthzString }
  | { serviceAccount: { namespace: string; name: string } };

/** Istio's `envoyExtAuthzHttp` extension provider, resolved to endpoints by the translator. */
export interface ExtAuthzHttpProvider {
  /** The service as written (for messages). */
  service: string;
  port: number;
  /** Addresses of the service's endpoints (weftd resolves them), tried in turn. */
  endpoints: { address: string; port: number }[];
  pathPrefix?: string;
  timeoutMs?: number;
  failOpen?: boolean;
  statusOnError?: number;
  /** Request headers sent to the provider (besides Istio's defaults), Istio string forms. */
  includeRequestHeadersInCheck?: AuthzString[];
  headersToUpstreamOnAllow?: AuthzString[];
  headersToDownstreamOnDeny?: AuthzString[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
}
