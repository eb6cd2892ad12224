/**
 * A cluster at run time: its endpoints with keep-alive pools (h1client.ts), the load balancer, the
 * circuit breakers (connection-pool limits → 503 UO) and outlier detection.
 *
 * Endpoints with a `priority` or `localityWeight` (locality load balancing, set by weftd) are
 * grouped into priority levels, and within a level into weighted localities, each with its own
 * balancer: a request first draws its level from the priority load (priority.ts), then its
 * locality, then the balancer picks the endpoint. Without them there is one balancer, as before.
 *
 * A ClusterRuntime is kept across config versions while its definition is unchanged, so hot
 * reload neither drops idle upstream connections nor resets ejections.
 */
import { H1Pool } from './h1client.js';
import { H2Pool } from '../h2/pool.js';
import type { Cluster, ConnectionPool, Endpoint, UpstreamCredential } from '../../pkg/proxyconfig/types.js';
import { DnsRefresher, type DnsEnv } from './dns.js';
import {
  inPanic,
  newHostHealth,
  outlierSettings,
  recordOutcome,
  tick,
  type HostHealth,
  type OutlierSettings,
} from './outlier.js';
import { createBalancer, type Balancer, type HashInput } from './lb.js';
import { chooseWeighted, choosePriority, effectiveLocalityWeights, priorityLoad } from './priority.js';
import { endpointConnect, originationContext, type Connect, type TlsStats } from './tls.js';
import type { SecureContext } from 'node:tls';
import type { IdentitySource } from '../identity/types.js';

/** Istio's DestinationRule defaults (dr.proto): "unlimited" is 2^32-1. */
const UNLIMITED = 2 ** 32 - 1;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Upstream idle keep-alive: Istio's default (DestinationRule `connectionPool.http.idleTimeout`,
 * 1 h). It applies to upstreams that announce how long they keep an idle connection
 * (`Keep-Alive: timeout=N`, as weft's inbound side and Node servers do), within that window; an
 * upstream that announces nothing gets UNANNOUNCED_IDLE_MS (proxy/upstream/h1client.ts).
 */
export const DEFAULT_IDLE_MS = 3_600_000;

export interface EndpointRuntime {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  readonly labels: Record<string, string>;
  readonly weight: number;
  readonly locality: string;
  readonly priority: number;
  readonly localityWeight: number;
  readonly health: HostHealth;
  /** Requests in flight to this endpoint (LEAST_REQUEST reads it). */
  active: number;
  /** The endpoint's pool in the cluster's protocol (HTTP/1.1 or HTTP/2). */
  pool: H1Pool | H2Pool | null;
  /** useClientProtocol: the HTTP/2 pool for HTTP/2 clients (`pool` is then the HTTP/1.1 one). */
  h2pool: H2Pool | null;
}

export interface Limits {
  maxConnections: number;
  maxPending: number;
  maxRequests: number;
  maxRetries: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
}

export function resolveLimits(cp: ConnectionPool | undefined): Limits {
  return {
    maxConnections: cp?.maxConnections ?? UNLIMITED,
    maxPending: cp?.http1MaxPendingRequests ?? UNLIMITED,
    maxRequests: cp?.http2MaxRequests ?? UNLIMITED,
    maxRetries: cp?.maxRetries ?? UNLIMITED,
    connectTimeoutMs: cp?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: cp?.idleTimeoutMs ?? DEFAULT_IDLE_MS,
    maxRequestsPerConnection: cp?.maxRequestsPerConnection ?? 0,
  };
}

/**
 * ORIGINAL_DST endpoints kept per cluster (Envoy creates a host per destination and cleans up
 * unused ones): past this many, the oldest idle one is dropped with its pool.
 */
export const MAX_ORIGINAL_DST_HOSTS = 1024;

/** The HTTP/2 keepalive of a cluster's pool (DestinationRule http2KeepAlive), or none. */
function keepAliveOf(cp: ConnectionPool | undefined): { intervalMs: number; timeoutMs: number } | null {
  const intervalMs = cp?.http2KeepAliveIntervalMs;
  const timeoutMs = cp?.http2KeepAliveTimeoutMs;
  return intervalMs !== undefined && timeoutMs !== undefined && intervalMs > 0 && timeoutMs > 0
    ? { intervalMs, timeoutMs }
    : null;
}

/** Closes an endpoint's pools once their requests are done. */
function closePools(ep: EndpointRuntime): Promise<unknown> {
  return Promise.all([ep.pool, ep.h2pool].map((p) => p?.close().catch(() => undefined)));
}

function endpointRuntime(e: Endpoint): EndpointRuntime {
  return {
    address: e.address,
    port: e.port,
    key: `${e.address}:${e.port}`,
    labels: e.labels ?? {},
    weight: e.weight ?? 1,
    locality: e.locality ?? '',
    priority: e.priority ?? 0,
    localityWeight: e.localityWeight ?? 0,
    health: newHostHealth(),
    active: 0,
    pool: null,
    h2pool: null,
  };
}

export interface ClusterStats {
  rqTotal: number;
  rqActive: number;
  rqPendingOverflow: number;
  rqRetry: number;
  rqRetryOverflow: number;
  cxConnectFail: number;
  ejectionsTotal: number;
}

/** Endpoints of one locality (or of a whole level when no locality is weighted) with their balancer. */
interface LbGroup {
  readonly endpoints: EndpointRuntime[];
  readonly weight: number;
  readonly balancer: Balancer;
  healthy: EndpointRuntime[];
}

/** One priority level. */
interface Level {
  readonly priority: number;
  readonly groups: LbGroup[];
  readonly total: number;
  healthy: number;
}

export class ClusterRuntime {
  readonly name: string;
  readonly defKey: string;
  readonly endpoints: EndpointRuntime[];
  readonly limits: Limits;
  readonly outlier: OutlierSettings | null;
  readonly balancer: Balancer;
  readonly stats: ClusterStats = {
    rqTotal: 0,
    rqActive: 0,
    rqPendingOverflow: 0,
    rqRetry: 0,
    rqRetryOverflow: 0,
    cxConnectFail: 0,
    ejectionsTotal: 0,
  };
  /** Upstream TLS counters (Envoy's cluster.<name>.ssl.*). */
  readonly tlsStats: TlsStats = { sslConnectionError: 0, sslFailVerifySan: 0, sslHandshake: 0 };
  activeRetries = 0;
  private originationCtx: SecureContext | null = null;
  private ejected = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly healthy: EndpointRuntime[] = [];
  /** STRICT_DNS / LOGICAL_DNS: resolves the endpoints' host names and keeps them fresh. */
  readonly dns: DnsRefresher | null = null;
  /** ORIGINAL_DST: one endpoint per destination seen, least recently used first. */
  private readonly originalDst: Map<string, EndpointRuntime> | null = null;
  /** Priority levels, lowest first; null when every endpoint is priority 0 with no locality weight. */
  private readonly levels: Level[] | null;
  /** Percent of requests per level (priority.ts), recomputed when health changes. */
  private load: number[] = [];
  private readonly rand: () => number;

  constructor(
    readonly def: Cluster,
    defKey: string,
    private readonly now: () => number = Date.now,
    rand: () => number = Math.random,
    /** The workload identity for ISTIO_MUTUAL (absent: standalone proxy, mesh mTLS fails with UF). */
    private readonly identity?: IdentitySource,
    /** The delivered credential of `tls.credentialName` (absent: not delivered; connections fail). */
    private readonly credential?: UpstreamCredential,
    /** The resolver of STRICT_DNS / LOGICAL_DNS clusters (absent: their hosts never resolve, 503 UH). */
    dnsEnv?: DnsEnv,
  ) {
    this.name = def.name;
    this.defKey = defKey;
    this.limits = resolveLimits(def.connectionPool);
    this.outlier = outlierSettings(def.outlierDetection);
    this.rand = rand;
    const type = def.type ?? 'STATIC';
    this.endpoints = type === 'STATIC' ? def.endpoints.map(endpointRuntime) : [];
    this.healthy.push(...this.endpoints);
    this.balancer = createBalancer(def.loadBalancer, rand);
    // Priority levels come from the pushed endpoints; DNS answers carry no locality (one level).
    this.levels = this.buildLevels();
    this.refreshHealthy();
    if ((type === 'STRICT_DNS' || type === 'LOGICAL_DNS') && dnsEnv !== undefined)
      this.dns = new DnsRefresher(def.name, def.endpoints, type === 'LOGICAL_DNS', dnsEnv, (eps) =>
        this.setEndpoints(eps),
      );
    if (type === 'ORIGINAL_DST') this.originalDst = new Map();
    if (this.outlier) {
      this.timer = setInterval(() => this.onInterval(), this.outlier.intervalMs);
      this.timer.unref();
    }
  }

  /** Circuit breaker check before a request is queued: true = overflow (503 UO). */
  overflow(): boolean {
    const l = this.limits;
    const a = this.stats.rqActive;
    if (a >= l.maxRequests || a >= l.maxConnections + l.maxPending) {
      this.stats.rqPendingOverflow++;
      return true;
    }
    return false;
  }

  /** Picks an endpoint, skipping ejected ones (unless in panic), or null (503 UH). */
  pick(input: HashInput | null, exclude: EndpointRuntime | null): EndpointRuntime | null {
    if (this.originalDst !== null) return this.pickOriginal(input?.originalDst ?? null);
    if (this.healthy.length === 0) {
      if (this.outlier && this.endpoints.length > 0 && inPanic(this.outlier, 0, this.endpoints.length)) {
        return this.endpoints[Math.floor(Math.random() * this.endpoints.length)] ?? null;
      }
      return null;
    }
    if (this.levels === null) return this.balancer.pick(input, exclude);
    const first = this.levels[choosePriority(this.load, this.rand())]!;
    const got = this.pickIn(first, input, exclude);
    if (got !== null) return got;
    // the drawn level has nothing healthy (every level's health rounded to 0): any healthy one
    for (const level of this.levels) {
      const e = level === first ? null : this.pickIn(level, input, exclude);
      if (e !== null) return e;
    }
    return null;
  }

  private pickIn(
    level: Level,
    input: HashInput | null,
    exclude: EndpointRuntime | null,
  ): EndpointRuntime | null {
    const groups = level.groups;
    let g = groups[0]!;
    if (groups.length > 1) {
      const weights = effectiveLocalityWeights(
        groups.map((x) => ({ weight: x.weight, healthy: x.healthy.length, total: x.endpoints.length })),
      );
      const i = chooseWeighted(weights, this.rand());
      if (i < 0) return null;
      g = groups[i]!;
    }
    return g.healthy.length === 0 ? null : g.balancer.pick(input, exclude);
  }

  private buildLevels(): Level[] | null {
    if (this.endpoints.every((e) => e.priority === 0 && e.localityWeight === 0)) return null;
    const byPriority = new Map<number, EndpointRuntime[]>();
    for (const e of this.endpoints) byPriority.set(e.priority, [...(byPriority.get(e.priority) ?? []), e]);
    return [...byPriority.keys()]
      .sort((a, b) => a - b)
      .map((priority) => {
        const eps = byPriority.get(priority)!;
        const weighted = eps.some((e) => e.localityWeight > 0);
        const byLocality = new Map<string, EndpointRuntime[]>();
        for (const e of eps) {
          const k = weighted ? e.locality : '';
          byLocality.set(k, [...(byLocality.get(k) ?? []), e]);
        }
        const groups = [...byLocality.values()].map((members) => ({
          endpoints: members,
          weight: members[0]!.localityWeight,
          balancer: createBalancer(this.def.loadBalancer, this.rand),
          healthy: [],
        }));
        return { priority, groups, total: eps.length, healthy: 0 };
      });
  }

  /** Percent of requests per priority level (for /clusters); [100] without levels. */
  priorityLoad(): number[] {
    return this.levels === null ? [100] : [...this.load];
  }

  /** ORIGINAL_DST: the endpoint for the request's original destination (null: unknown, 503 UH). */
  private pickOriginal(dst: { address: string; port: number } | null): EndpointRuntime | null {
    const map = this.originalDst!;
    if (dst === null) return null;
    const key = `${dst.address}:${dst.port}`;
    let ep = map.get(key);
    if (ep !== undefined) {
      map.delete(key); // re-inserted: most recently used last
    } else {
      if (map.size >= MAX_ORIGINAL_DST_HOSTS) {
        for (const [k, old] of map)
          if (old.active === 0) {
            map.delete(k);
            void closePools(old);
            break;
          }
      }
      ep = endpointRuntime({ address: dst.address, port: dst.port });
    }
    map.set(key, ep);
    return ep;
  }

  /**
   * Replaces the endpoints (a DNS answer changed): endpoints still present keep their pool,
   * health and in-flight count; removed ones close their pools after their requests finish.
   */
  setEndpoints(eps: readonly Endpoint[]): void {
    const old = new Map(this.endpoints.map((e) => [e.key, e]));
    const next: EndpointRuntime[] = [];
    for (const e of eps) {
      const key = `${e.address}:${e.port}`;
      const kept = old.get(key);
      if (kept !== undefined) old.delete(key);
      next.push(kept ?? endpointRuntime(e));
    }
    for (const gone of old.values()) void closePools(gone);
    this.endpoints.length = 0;
    this.endpoints.push(...next);
    this.ejected = next.filter((e) => e.health.ejected).length;
    this.refreshHealthy();
  }

  /** Why pick() found nothing, for the 503 UH reply and /clusters. */
  noEndpointReason(): string {
    if (this.originalDst !== null)
      return `ORIGINAL_DST cluster ${this.name}: the request's original destination is unknown`;
    const dns = this.dns?.emptyReason() ?? null;
    if (this.endpoints.length === 0 && dns !== null) return `cluster ${this.name} has no endpoint: ${dns}`;
    return `cluster ${this.name} has no healthy endpoint (${this.endpoints.length} total)`;
  }

  /**
   * The pool a request to `ep` goes through: HTTP/2 for an HTTP/2 cluster, HTTP/1.1 otherwise;
   * with useClientProtocol (Envoy's use_downstream_protocol_config) the client's protocol
   * decides, `clientH2` (the other pool is kept alongside, in `h2pool`).
   */
  poolFor(ep: EndpointRuntime, clientH2 = false): H1Pool | H2Pool {
    if (this.def.useClientProtocol === true)
      return clientH2 ? (ep.h2pool ??= this.newH2Pool(ep)) : (ep.pool ??= this.newH1Pool(ep));
    if (ep.pool === null) ep.pool = this.def.http2 === true ? this.newH2Pool(ep) : this.newH1Pool(ep);
    return ep.pool;
  }

  /** Whether a request from a client speaking HTTP/2 (`clientH2`) or not goes upstream over HTTP/2. */
  speaksH2(clientH2: boolean): boolean {
    return this.def.useClientProtocol === true ? clientH2 : this.def.http2 === true;
  }

  private newH2Pool(ep: EndpointRuntime): H2Pool {
    const l = this.limits;
    return new H2Pool(ep.address, ep.port, {
      maxConnections: l.maxConnections >= UNLIMITED ? Infinity : l.maxConnections,
      connectTimeoutMs: l.connectTimeoutMs,
      idleTimeoutMs: l.idleTimeoutMs,
      // 0 or absent: as many as the server's SETTINGS allow (a limit of 0 would never send)
      maxConcurrentStreams: this.def.connectionPool?.maxConcurrentStreams || Infinity,
      connect: this.connectorFor(ep),
      keepAlive: keepAliveOf(this.def.connectionPool),
    });
  }

  private newH1Pool(ep: EndpointRuntime): H1Pool {
    const l = this.limits;
    return new H1Pool(ep.address, ep.port, {
      maxConnections: l.maxConnections >= UNLIMITED ? Infinity : l.maxConnections,
      connectTimeoutMs: l.connectTimeoutMs,
      idleTimeoutMs: l.idleTimeoutMs,
      maxRequestsPerConnection: l.maxRequestsPerConnection,
      connect: this.connectorFor(ep),
    });
  }

  /** How connections to `ep` are opened: TLS per the cluster's `tls` (tls.ts), or null for plain TCP. */
  connectorFor(ep: EndpointRuntime): Connect | null {
    return endpointConnect(this.def.tls, ep.labels, {
      identity: this.identity,
      stats: this.tlsStats,
      simpleContext: () => (this.originationCtx ??= originationContext(this.def.tls!, this.credential)),
    });
  }

  /** Feeds outlier detection; status 0 = local-origin failure. */
  record(ep: EndpointRuntime, status: number): void {
    if (this.outlier === null) return;
    if (status > 0 && status < 500 && ep.health.consecutive5xx === 0 && ep.health.consecutiveGateway === 0)
      return;
    const size = this.endpoints.length;
    if (recordOutcome(this.outlier, ep.health, status, { ejectedCount: this.ejected, size }, this.now())) {
      this.ejected++;
      this.stats.ejectionsTotal++;
      this.refreshHealthy();
    }
  }

  onInterval(): void {
    if (this.ejected === 0) return;
    const back = tick(
      this.endpoints.map((e) => e.health),
      this.now(),
    );
    if (back > 0) {
      this.ejected -= back;
      this.refreshHealthy();
    }
  }

  private refreshHealthy(): void {
    this.healthy.length = 0;
    for (const e of this.endpoints) if (!e.health.ejected) this.healthy.push(e);
    if (this.levels === null) {
      this.balancer.rebuild(this.healthy);
      return;
    }
    for (const level of this.levels) {
      level.healthy = 0;
      for (const g of level.groups) {
        g.healthy = g.endpoints.filter((e) => !e.health.ejected);
        g.balancer.rebuild(g.healthy);
        level.healthy += g.healthy.length;
      }
    }
    this.load = priorityLoad(
      this.levels.map((l) => l.healthy),
      this.levels.map((l) => l.total),
    );
  }

  healthyCount(): number {
    return this.healthy.length;
  }

  /** Closes pools after their in-flight requests finish (graceful). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.dns?.stop();
    await Promise.all(this.allEndpoints().map((e) => closePools(e)));
  }

  private allEndpoints(): EndpointRuntime[] {
    return this.originalDst === null ? this.endpoints : [...this.originalDst.values()];
  }

  /** Destroys pools immediately (shutdown after the drain period). */
  async destroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.dns?.stop();
    await Promise.all(
      this.allEndpoints().flatMap((e) => [e.pool, e.h2pool].map((p) => p?.destroy().catch(() => undefined))),
    );
  }

  /** For /clusters and /explain. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      type: this.def.type ?? 'STATIC',
      ...(this.dns !== null ? { dns: this.dns.describe() } : {}),
      ...(this.healthy.length === 0 && this.originalDst === null
        ? { noEndpointReason: this.noEndpointReason() }
        : {}),
      loadBalancer: this.balancer.kind,
      limits: this.limits,
      outlierDetection: this.outlier,
      ...(this.levels === null ? {} : { priorityLoad: this.priorityLoad() }),
      stats: { ...this.stats },
      ...(this.def.tls
        ? { tls: { mode: this.def.tls.mode, auto: this.def.tls.auto === true, ...this.tlsStats } }
        : {}),
      endpoints: this.allEndpoints().map((e) => ({
        address: e.key,
        labels: e.labels,
        ...(e.locality !== '' ? { locality: e.locality } : {}),
        ...(e.priority !== 0 ? { priority: e.priority } : {}),
        ...(e.localityWeight !== 0 ? { localityWeight: e.localityWeight } : {}),
        active: e.active,
        healthy: !e.health.ejected,
        ejectedUntil: e.health.ejected ? new Date(e.health.ejectedUntil).toISOString() : undefined,
        timesEjected: e.health.timesEjected,
        consecutive5xx: e.health.consecutive5xx,
      })),
    };
  }
}
