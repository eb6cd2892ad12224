/**
 * Compiles a ProxyConfig once per version into what the request path runs: host lookup maps,
 * route arrays with precompiled predicates, cumulative weight tables, header-op functions,
 * retry policies and live cluster runtimes. Nothing here runs per request.
 *
 * Cluster runtimes (pools, balancers, outlier state) and metric groups are created lazily, on a
 * destination's first request: a sidecar told about 1,000 services pays memory only for the
 * ones its app calls (Istio's "memory grows with cluster size" complaint). A runtime whose
 * definition is byte-identical in the next version is carried over (pools, in-flight counts and
 * ejections survive a reload); the rest are returned as `retired` for a graceful close.
 */
import type {
  Cluster,
  GatewayTls,
  HeaderOperations,
  ProxyConfig,
  Redirect,
  Route,
  RouteMatch,
  RouteSource,
  UpstreamCredential,
  VirtualHost,
} from '../../pkg/proxyconfig/types.js';
import { VERSION_LABEL } from '../../pkg/proxyconfig/types.js';
import { domainsOf } from '../../pkg/proxyconfig/domains.js';
import { WeftError } from '../../pkg/errors/index.js';
import { ClusterRuntime } from '../upstream/cluster.js';
import type { DnsEnv } from '../upstream/dns.js';

const isDnsCluster = (def: Cluster): boolean => def.type === 'STRICT_DNS' || def.type === 'LOGICAL_DNS';
import type { IdentitySource } from '../identity/types.js';
import { compileRouteMatch, type Predicate } from './match.js';
import { compileRegexRewrite } from './regex.js';
import { compileHeaderOps, type HeaderOpFn } from '../router/headers.js';
import { compileRetry, NO_RETRY, type CompiledRetry } from '../router/retry.js';
import { resolvePathNormalization, type PathNormalization } from '../router/path.js';
import {
  TcpGroup,
  type MetricGroup,
  type MetricsRegistry,
  type DestinationLabels,
} from '../telemetry/metrics.js';
import { compileAuthz, type CompiledAuthz } from '../authz/engine.js';
import { compileJwt, type CompiledJwt } from '../authn/jwt.js';
import { compileRegistryOnly, type RegistryOnly } from '../sidecar/registry-only.js';
import { bindL4, compileL4, type CompiledL4 } from '../tcp-route.js';
import { compileOutboundTcp, type OutboundTcpTable } from '../sidecar/outbound-tcp.js';

/** Istio allows WebSocket upgrades on every HTTP route; nothing else unless configured. */
export const DEFAULT_UPGRADE_TYPES: readonly string[] = ['websocket'];

export interface CompiledDest {
  clusterName: string;
  /** undefined: not resolved yet (see resolveCluster); null: not defined → 503 NC. */
  cluster: ClusterRuntime | null | undefined;
  table: ClusterTable;
  weight: number;
  subset: string;
  /** Authority sent upstream unless a rewrite sets one. */
  host: string | null;
  reqOps: HeaderOpFn | null;
  respOps: HeaderOpFn | null;
  /** Created on first use (metricsOf). */
  metrics: MetricGroup | null;
}

/**
 * The clusters of one config version: definitions up front, runtimes on first use. `values()`
 * lists only live runtimes (what has pools and timers to close).
 */
export class ClusterTable {
  private readonly live = new Map<string, ClusterRuntime>();

  constructor(
    readonly defs: Map<string, Cluster>,
    private readonly rand: (() => number) | undefined,
    private readonly identity?: IdentitySource,
    /** The config's `credentials` (tls.credentialName); part of a cluster's key, so a new one means new pools. */
    private readonly credentials: Record<string, UpstreamCredential> = {},
    /** The resolver of the DNS clusters; its settings are part of their key. */
    private readonly dnsEnv?: DnsEnv,
  ) {}

  private credentialOf(def: Cluster): UpstreamCredential | undefined {
    const name = def.tls?.credentialName;
    return name === undefined ? undefined : this.credentials[name];
  }

  /** What makes a live runtime reusable by the next version: its definition and its credential. */
  private keyOf(def: Cluster): string {
    const cred = this.credentialOf(def);
    const dns = isDnsCluster(def) ? `\n${JSON.stringify(this.dnsEnv?.settings ?? null)}` : '';
    return (
      (cred === undefined ? JSON.stringify(def) : `${JSON.stringify(def)}\n${JSON.stringify(cred)}`) + dns
    );
  }

  /**
   * Starts the DNS clusters' first resolution and waits for it (Envoy warms a cluster before
   * using it), at most `maxMs`: a request right after a config push finds the addresses.
   */
  async warmDns(maxMs: number): Promise<void> {
    const ready: Promise<void>[] = [];
    for (const def of this.defs.values()) {
      if (!isDnsCluster(def)) continue;
      const rt = this.get(def.name);
      if (rt?.dns) ready.push(rt.dns.ready);
    }
    if (ready.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(ready),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, maxMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  get size(): number {
    return this.defs.size;
  }

  has(name: string): boolean {
    return this.defs.has(name);
  }

  /** The runtime for `name`, created on first call; null if no such cluster is defined. */
  get(name: string): ClusterRuntime | null {
    const rt = this.live.get(name);
    if (rt !== undefined) return rt;
    const def = this.defs.get(name);
    if (def === undefined) return null;
    const created = new ClusterRuntime(
      def,
      this.keyOf(def),
      Date.now,
      this.rand,
      this.identity,
      this.credentialOf(def),
      this.dnsEnv,
    );
    this.live.set(name, created);
    return created;
  }

  /** Live runtime without creating one. */
  peek(name: string): ClusterRuntime | undefined {
    return this.live.get(name);
  }

  values(): IterableIterator<ClusterRuntime> {
    return this.live.values();
  }

  /**
   * Takes over the previous version's live runtimes whose definition is unchanged; returns the
   * others, to be closed gracefully.
   */
  adopt(previous: ClusterTable | undefined): ClusterRuntime[] {
    const retired: ClusterRuntime[] = [];
    for (const rt of previous?.values() ?? []) {
      const def = this.defs.get(rt.name);
      if (def !== undefined && !this.live.has(rt.name) && this.keyOf(def) === rt.defKey)
        this.live.set(rt.name, rt);
      else if (this.live.get(rt.name) !== rt) retired.push(rt);
    }
    return retired;
  }
}

/** Resolves (once) the runtime behind a destination. */
export function resolveCluster(d: CompiledDest): ClusterRuntime | null {
  if (d.cluster === undefined) d.cluster = d.table.get(d.clusterName);
  return d.cluster;
}

/** The metric group of a destination, created on its first request. */
export function metricsOf(d: CompiledDest, registry: MetricsRegistry): MetricGroup {
  if (d.metrics === null)
    d.metrics = registry.group(destLabels(d.table.defs.get(d.clusterName), d.clusterName, d.subset));
  return d.metrics;
}

export interface CompiledMirror {
  dest: CompiledDest;
  /** 0–1. */
  fraction: number;
  /** Host gets `-shadow` appended (Mirror.shadowHostSuffix). */
  shadowSuffix: boolean;
}

export interface CompiledFault {
  delayMs: number;
  delayFraction: number;
  abortStatus: number;
  abortFraction: number;
  /** A gRPC status abort (VirtualService `abort.grpcStatus`), answered as a gRPC error. */
  abortGrpc: number | undefined;
}

export const enum ActionType {
  Route = 0,
  Redirect = 1,
  Direct = 2,
}

export interface CompiledRoute {
  index: number;
  name: string | undefined;
  source: RouteSource | undefined;
  /** Match blocks (ORed); empty = match everything. */
  blocks: Predicate[];
  matches: RouteMatch[];
  /** Per block: length of the uri prefix matched, for prefix rewrite; -1 if not a prefix match. */
  prefixLens: number[];
  type: ActionType;
  dests: CompiledDest[];
  cumWeights: number[];
  totalWeight: number;
  redirect: Redirect | null;
  directStatus: number;
  directBody: Buffer | null;
  rewriteUri: string | null;
  rewriteRegex: ((path: string) => string) | null;
  rewriteAuthority: string | null;
  reqOps: HeaderOpFn | null;
  respOps: HeaderOpFn | null;
  timeoutMs: number;
  retry: CompiledRetry;
  fault: CompiledFault | null;
  mirrors: CompiledMirror[] | null;
}

export interface CompiledVHost {
  name: string;
  domains: string[];
  routes: CompiledRoute[];
}

export interface CompiledHttpListener {
  protocol: 'HTTP';
  name: string;
  address: string;
  port: number;
  exact: Map<string, CompiledVHost>;
  suffixes: [string, CompiledVHost][];
  wildcard: CompiledVHost | null;
  /** Lowercased Upgrade tokens that may become tunnels (default websocket). */
  upgradeTypes: ReadonlySet<string>;
  /** Requests come from outside the mesh: Envoy's internal-only request headers are removed. */
  edge: boolean;
  /** Gateway TLS termination (proxy/gateway-tls.ts); null: plaintext. */
  tls: GatewayTls | null;
}

export interface CompiledTcpListener {
  protocol: 'TCP';
  name: string;
  address: string;
  port: number;
  clusterName: string;
  cluster: ClusterRuntime | null;
  metrics: TcpGroup;
  /** VirtualService tcp/tls routes (proxy/tcp-route.ts); null: every connection to `cluster`. */
  l4: CompiledL4 | null;
}

export type CompiledListener = CompiledHttpListener | CompiledTcpListener;

export interface CompiledConfig {
  version: string;
  source: ProxyConfig;
  listeners: CompiledListener[];
  clusters: ClusterTable;
  accessLog: boolean;
  explainHeader: boolean;
  /** `x-envoy-attempt-count` on each upstream attempt (proxyHeaders.attemptCount not disabled). */
  attemptCount: boolean;
  /** Envoy's debug headers: upstream-service-time, overloaded, original-path (not suppressed). */
  debugHeaders: boolean;
  /** How request paths are normalized before matching and forwarding (router/path.ts). */
  pathNormalization: PathNormalization;
  /** Metrics for requests that never reached a destination (NR). */
  unknownMetrics: MetricGroup;
  /** AuthorizationPolicy (proxy/authz); null = no policy, nothing checked. */
  authz: CompiledAuthz | null;
  /** RequestAuthentication, keys imported (authn/jwt.ts); null: no JWT checks. */
  jwt: CompiledJwt | null;
  /** outboundTrafficPolicy REGISTRY_ONLY's known destinations; null: ALLOW_ANY. */
  registryOnly: RegistryOnly | null;
  /** The sidecar's outbound TCP/TLS services (proxy/sidecar/outbound-tcp.ts); null: none. */
  outboundTcp: OutboundTcpTable | null;
}

export interface CompileResult {
  config: CompiledConfig;
  retired: ClusterRuntime[];
}

export interface CompileOptions {
  metrics: MetricsRegistry;
  previous?: ClusterTable | undefined;
  defaultAddress?: string;
  rand?: () => number;
  /** The workload identity clusters with ISTIO_MUTUAL originate mTLS with. */
  identity?: IdentitySource | undefined;
  /** The resolver of STRICT_DNS / LOGICAL_DNS clusters (proxy/upstream/dns.ts). */
  dns?: DnsEnv | undefined;
}

function fail(path: string, message: string): never {
  throw new WeftError('WEFT_PROXY_CONFIG_INVALID', `${path}: ${message}`);
}

function headerOps(
  ops: Parameters<typeof compileHeaderOps>[0],
  path: string,
): ReturnType<typeof compileHeaderOps> {
  try {
    return compileHeaderOps(ops);
  } catch (err) {
    return fail(path, (err as Error).message);
  }
}

function destLabels(cluster: Cluster | undefined, clusterName: string, subset: string): DestinationLabels {
  const service = cluster?.service ?? clusterName;
  const parts = service.split('.');
  const versions = new Set((cluster?.endpoints ?? []).map((e) => e.labels?.[VERSION_LABEL]));
  const only = versions.size === 1 ? [...versions][0] : undefined;
  return {
    destinationService: service,
    destinationServiceName: parts[0] ?? service,
    destinationServiceNamespace: parts.length > 2 && parts[2] === 'svc' ? parts[1]! : 'unknown',
    destinationVersion: only ?? (subset !== '' ? subset : 'unknown'),
  };
}

class Compiler {
  readonly table: ClusterTable;

  constructor(
    private readonly cfg: ProxyConfig,
    private readonly opts: CompileOptions,
  ) {
    const defs = new Map<string, Cluster>();
    for (const c of cfg.clusters) defs.set(c.name, c);
    this.table = new ClusterTable(defs, opts.rand, opts.identity, cfg.credentials, opts.dns);
  }

  dest(
    clusterName: string,
    weight: number,
    host: string | undefined,
    ops?: HeaderOperations | undefined,
  ): CompiledDest {
    const def = this.table.defs.get(clusterName);
    return {
      clusterName,
      cluster: undefined,
      table: this.table,
      weight,
      subset: def?.subset ?? clusterName.split('|')[2] ?? '',
      host: host ?? def?.service ?? null,
      reqOps: headerOps(ops?.request, `destination ${clusterName}.headers.request`),
      respOps: headerOps(ops?.response, `destination ${clusterName}.headers.response`),
      metrics: null,
    };
  }

  route(r: Route, index: number, path: string): CompiledRoute {
    const matches = r.match ?? [];
    const blocks = matches.map((m, i) => {
      try {
        return compileRouteMatch(m);
      } catch (err) {
        return fail(`${path}.match[${i}]`, (err as Error).message);
      }
    });
    const prefixLens = matches.map((m) => (m.uri && 'prefix' in m.uri ? m.uri.prefix.length : -1));
    const out: CompiledRoute = {
      index,
      name: r.name,
      source: r.source,
      blocks,
      matches,
      prefixLens,
      type: ActionType.Route,
      dests: [],
      cumWeights: [],
      totalWeight: 0,
      redirect: null,
      directStatus: 0,
      directBody: null,
      rewriteUri: r.rewrite?.uri ?? null,
      rewriteRegex: null,
      rewriteAuthority: r.rewrite?.authority ?? null,
      reqOps: headerOps(r.headers?.request, `${path}.headers.request`),
      respOps: headerOps(r.headers?.response, `${path}.headers.response`),
      timeoutMs: r.timeoutMs ?? 0,
      retry: compileRetry(r.retries, r.timeoutMs ?? 0),
      fault: null,
      mirrors: null,
    };
    if (r.rewrite?.uriRegex) {
      try {
        out.rewriteRegex = compileRegexRewrite(r.rewrite.uriRegex.match, r.rewrite.uriRegex.rewrite);
      } catch (err) {
        fail(`${path}.rewrite.uriRegex`, (err as Error).message);
      }
    }
    this.action(r, out, path);
    if (r.fault && (r.fault.delay || r.fault.abort)) {
      out.fault = {
        delayMs: r.fault.delay?.fixedDelayMs ?? 0,
        delayFraction: (r.fault.delay?.percentage ?? 0) / 100,
        abortStatus: r.fault.abort?.httpStatus ?? 0,
        abortFraction: (r.fault.abort?.percentage ?? 0) / 100,
        abortGrpc: r.fault.abort?.grpcStatus,
      };
      // Istio: a client-side fault turns off retries and timeouts on the route (vs.proto:458-462)
      out.retry = NO_RETRY;
      out.timeoutMs = 0;
    }
    if (r.mirrors && r.mirrors.length > 0) {
      out.mirrors = r.mirrors.map((m) => ({
        dest: this.dest(m.cluster, 0, m.host),
        fraction: Math.min(Math.max(m.percentage, 0), 100) / 100,
        shadowSuffix: m.shadowHostSuffix === true,
      }));
    }
    return out;
  }

  private action(r: Route, out: CompiledRoute, path: string): void {
    const a = r.action;
    if (a.type === 'redirect') {
      out.type = ActionType.Redirect;
      out.redirect = a.redirect;
    } else if (a.type === 'directResponse') {
      out.type = ActionType.Direct;
      out.directStatus = a.status;
      out.directBody =
        a.bodyBase64 !== undefined
          ? Buffer.from(a.bodyBase64, 'base64')
          : a.body !== undefined
            ? Buffer.from(a.body)
            : null;
    } else {
      if (a.destinations.length === 0) fail(`${path}.action.destinations`, 'must not be empty');
      const single = a.destinations.length === 1;
      let total = 0;
      a.destinations.forEach((d) => {
        // a single destination gets all traffic whatever its weight (Istio)
        const w = single ? 1 : d.weight;
        total += w;
        out.dests.push(this.dest(d.cluster, w, d.host, d.headers));
        out.cumWeights.push(total);
      });
      if (total <= 0) fail(`${path}.action.destinations`, 'weights sum to 0');
      out.totalWeight = total;
    }
  }

  vhost(vh: VirtualHost, path: string): CompiledVHost {
    return {
      name: vh.name,
      domains: domainsOf(vh),
      routes: vh.routes.map((r, i) => this.route(r, i, `${path}.routes[${i}]`)),
    };
  }
}

/** Compiles `cfg`; throws WEFT_PROXY_CONFIG_INVALID (with a path) if it cannot run. */
export function compileConfig(cfg: ProxyConfig, opts: CompileOptions): CompileResult {
  const c = new Compiler(cfg, opts);
  let authz: CompiledAuthz | null = null;
  try {
    authz = cfg.authz === undefined ? null : compileAuthz(cfg.authz);
  } catch (err) {
    fail('authz', (err as Error).message);
  }
  const listeners: CompiledListener[] = [];
  const tcpMetricsFor = (name: string): TcpGroup => {
    const def = c.table.defs.get(name);
    return opts.metrics.tcpGroup(destLabels(def, name, def?.subset ?? ''));
  };
  const outboundTcp = compileOutboundTcp(cfg.outboundTcp, tcpMetricsFor);
  cfg.listeners.forEach((l, li) => {
    const address = l.address ?? opts.defaultAddress ?? '127.0.0.1';
    const path = `listeners[${li}]`;
    if (l.protocol === 'TCP') {
      const def = l.cluster === undefined ? undefined : c.table.defs.get(l.cluster);
      listeners.push({
        protocol: 'TCP',
        name: l.name,
        address,
        port: l.port,
        clusterName: l.cluster ?? '',
        cluster: null, // bound after adoption below
        metrics:
          l.cluster === undefined
            ? new TcpGroup('') // routed: each destination counts for itself
            : opts.metrics.tcpGroup(destLabels(def, l.cluster, def?.subset ?? '')),
        l4: compileL4(l, tcpMetricsFor),
      });
      return;
    }
    const out: CompiledHttpListener = {
      protocol: 'HTTP',
      name: l.name,
      address,
      port: l.port,
      exact: new Map(),
      suffixes: [],
      wildcard: null,
      upgradeTypes: new Set((l.upgradeTypes ?? DEFAULT_UPGRADE_TYPES).map((t) => t.toLowerCase())),
      edge: l.edge === true,
      tls: l.tls ?? null,
    };
    l.virtualHosts.forEach((vh, vi) => {
      const cv = c.vhost(vh, `${path}.virtualHosts[${vi}]`);
      for (const d of cv.domains) {
        const dom = d.toLowerCase();
        if (dom === '*') out.wildcard ??= cv;
        else if (dom.startsWith('*')) out.suffixes.push([dom.slice(1), cv]);
        else if (!out.exact.has(dom)) out.exact.set(dom, cv);
      }
    });
    // longest suffix first, so *.ns.svc.cluster.local beats *.cluster.local
    out.suffixes.sort((a, b) => b[0].length - a[0].length);
    listeners.push(out);
  });
  // compilation succeeded: only now touch the previous version's runtimes
  const retired = c.table.adopt(opts.previous);
  for (const l of listeners)
    if (l.protocol === 'TCP') {
      l.cluster = l.clusterName === '' ? null : c.table.get(l.clusterName);
      bindL4(l.l4, (name) => c.table.get(name));
    }
  outboundTcp?.bind((name) => c.table.get(name));
  return {
    config: {
      version: cfg.version,
      source: cfg,
      listeners,
      clusters: c.table,
      accessLog: cfg.telemetry?.accessLog === true,
      explainHeader: cfg.telemetry?.explainHeader === true,
      attemptCount: cfg.proxyHeaders?.attemptCount?.disabled !== true,
      debugHeaders: cfg.proxyHeaders?.envoyDebugHeaders?.disabled !== true,
      pathNormalization: resolvePathNormalization(cfg.pathNormalization),
      jwt: cfg.jwt && cfg.jwt.providers.length > 0 ? compileJwt(cfg.jwt) : null,
      registryOnly: compileRegistryOnly(cfg.outboundTrafficPolicy),
      outboundTcp,
      unknownMetrics: opts.metrics.group({
        destinationService: 'unknown',
        destinationServiceName: 'unknown',
        destinationServiceNamespace: 'unknown',
        destinationVersion: 'unknown',
      }),
      authz,
    },
    retired,
  };
}

/** Host lookup: exact authority, then without port, then wildcard suffixes, then `*`. */
export function findVHost(l: CompiledHttpListener, authority: string): CompiledVHost | null {
  let vh = l.exact.get(authority);
  if (vh !== undefined) return vh;
  const lower = authority.toLowerCase();
  if (lower !== authority) {
    vh = l.exact.get(lower);
    if (vh !== undefined) return vh;
  }
  const colon = lower.lastIndexOf(':');
  const host = colon > 0 && !lower.endsWith(']') ? lower.slice(0, colon) : lower;
  if (host !== lower) {
    vh = l.exact.get(host);
    if (vh !== undefined) return vh;
  }
  for (const [suffix, v] of l.suffixes) if (host.endsWith(suffix)) return v;
  return l.wildcard;
}

/** Weighted pick over a route's cumulative weights; `r` in [0,1). */
export function pickDest(route: CompiledRoute, r: number): CompiledDest {
  const d = route.dests;
  if (d.length === 1) return d[0]!;
  const x = r * route.totalWeight;
  const cum = route.cumWeights;
  for (let i = 0; i < cum.length; i++) if (x < cum[i]!) return d[i]!;
  return d[d.length - 1]!;
}
