/**
 * The proxy process: traffic listeners (HTTP and TCP), the admin (15000), Prometheus (15090) and
 * health (15021) servers, config application (compile → atomic swap) and the lifecycle
 * (drain on SIGTERM / POST /drain, exit on /quitquitquit).
 *
 * Hot reload: a new config is compiled first; only if that succeeds is it swapped in. Requests in
 * flight keep the route and cluster objects they already hold; listeners whose address and port
 * did not change keep their sockets (and so their idle keep-alive connections); clusters whose
 * definition did not change keep their pools.
 */
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import { http } from '../pkg/builtins/index.js';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyConfig } from '../pkg/proxyconfig/types.js';
import { createLogger, type Logger } from '../pkg/log/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import {
  compileConfig,
  findVHost,
  type CompiledConfig,
  type CompiledHttpListener,
  type CompiledListener,
  type CompiledTcpListener,
} from './compile/compile.js';
import type { ClusterRuntime } from './upstream/cluster.js';
import { MetricsRegistry } from './telemetry/metrics.js';
import { AccessLog } from './telemetry/accesslog.js';
import { Exchange, type RouterEnv } from './router/exchange.js';
import { handleAdmin } from './admin.js';
import {
  allowedUpgrade,
  declinedUpgrade,
  DetachedUpgrade,
  takesUpgrade,
  type UpgradeHook,
} from './upgrade.js';
import { serveTcpListener, type L4Env } from './tcp-route.js';
import type { OutboundTcpTable } from './sidecar/outbound-tcp.js';
import { resolverLookup, type DnsEnv } from './upstream/dns.js';
import { resolveDnsSettings } from '../pkg/proxyconfig/dns.js';
import { createDownstreamServer, downstreamErrorStatus } from './http1-limits.js';
import { goAwayH2 } from './h2/downstream.js';
import { GatewayTlsTerminator } from './gateway-tls.js';
import type { IdentitySource } from './identity/types.js';
import type { RegistryOnly } from './sidecar/registry-only.js';
import type { OnDemandVerdict } from './sidecar/ondemand.js';
import { markUnresolved } from './router/unresolved.js';
import { onDemandHostName } from '../pkg/discovery/protocol.js';
import type { IdentitySummary } from './identity/workload.js';
import { RateLimiter } from './ratelimit/limiter.js';
import type { GlobalBackend } from './ratelimit/global.js';

/** What the proxy needs of its identity: the contract plus a key-free summary for `/certs`. */
export type ProxyIdentity = IdentitySource & { summary(): IdentitySummary };

export interface ProxyOptions {
  /** Overrides the address/port of the first HTTP listener (`--listen`). */
  listen?: { host: string; port: number };
  adminAddress?: string;
  /** 0 = ephemeral; null = do not start. Defaults 15000 / 15090 / 15021. */
  adminPort?: number | null;
  metricsPort?: number | null;
  healthPort?: number | null;
  /** How long SIGTERM / drain waits for in-flight requests (Istio terminationDrainDuration: 5 s). */
  drainMs?: number;
  /**
   * The drain ends early once nothing happened for this long: no request in flight, no client
   * connection open, none accepted or finished (default 1 s, the interval at which Istio's agent
   * checks for zero active connections).
   */
  drainQuietMs?: number;
  rand?: () => number;
  accessLogSink?: NodeJS.WritableStream;
  logger?: Logger;
  /** Downstream limits (bad-input protection). */
  maxHeaderBytes?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Called after /quitquitquit or a finished drain-and-exit; default process.exit(0). */
  onExit?: () => void;
  /** Bind address per aux server (default `adminAddress` for all); pods expose health and metrics. */
  auxAddresses?: Partial<Record<AuxRole, string>>;
  /**
   * Listeners the proxy compiles and serves but does not bind: their connections are handed in
   * by a capture listener (the sidecar's 15001) through `handOff`.
   */
  unbound?: (l: CompiledListener) => boolean;
  /**
   * On-demand hosts (ADR 0023) for requests on an unbound HTTP listener (a connection the capture
   * handed in): how to hold a Host the config in force does not route, or null when on demand is
   * off (checked first, so a proxy without it does no per-request work). The capture asks for a
   * connection's first request; this covers the next ones (a client that sends another Host on
   * the same keep-alive connection).
   */
  onDemandHost?: () => ((authority: string) => Promise<OnDemandVerdict>) | null;
  /** Extra readiness condition: a reason while not ready, null when ready. */
  readinessGate?: () => string | null;
  /**
   * The workload identity (proxy/identity): its summary is served at `/certs`, its TLS context
   * originates mesh mTLS on upstream connections.
   */
  identity?: ProxyIdentity;
  /** Extra health-port routes (the sidecar's /app-health/...); returns false when not its path. */
  healthRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Gateway TLS limits (proxy/gateway-tls.ts defaults: 5 s ClientHello, 10 s handshake, 1024 at once). */
  gatewayTls?: {
    helloTimeoutMs?: number;
    handshakeTimeoutMs?: number;
    maxHandshakes?: number;
    /** L4 TLS routes: ClientHellos read at once from one source (default 32). */
    maxPendingHellosPerSource?: number;
  };
  /** Extra admin-port routes (the sidecar's /inbound); returns false when not its path. */
  adminRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Enforce the config's `rateLimits` on the HTTP listeners (gateways, ADR 0021; a sidecar's
   * block is for its inbound side and must not also limit its outbound calls). `global`: weftd's
   * check endpoint for `scope: global` limits.
   */
  listenerRateLimits?: { global?: GlobalBackend };
}

export type AuxRole = 'admin' | 'metrics' | 'health';

interface LiveListener {
  key: string;
  name: string;
  /** The bound server: the HTTP server itself, or for gateway TLS a net.Server in front of it. */
  server: net.Server;
  /** The HTTP server (HTTP listeners): fed by `server`, or by `tls` once a handshake is done. */
  http: HttpServer | null;
  /** Gateway TLS termination (listeners with `tls`). */
  tls: GatewayTlsTerminator | null;
  compiled: CompiledListener;
  sockets: Set<net.Socket>;
  /** false: served through handOff only (ProxyOptions.unbound). */
  bound: boolean;
  /** Requests in progress per connection (HTTP listeners). */
  conns: ConnRequests;
}

/**
 * Requests in progress per client connection of one HTTP listener. The drain closes only
 * connections idle after a response, never one whose first request has not arrived yet
 * (node:http's closeIdleConnections counts those as idle too); and an upgrade request pipelined
 * behind others waits here until the responses ahead of it are written.
 */
class ConnRequests {
  private readonly busy = new Map<net.Socket, number>();
  private readonly served = new WeakSet<net.Socket>();
  private readonly waiting = new Map<net.Socket, (() => void)[]>();

  begin(socket: net.Socket, res: ServerResponse): void {
    this.busy.set(socket, (this.busy.get(socket) ?? 0) + 1);
    this.served.add(socket);
    res.on('close', () => this.end(socket)); // 'close' comes once: no once() wrapper per request
  }

  /** Runs `fn` once no request is in progress on `socket`. */
  whenIdle(socket: net.Socket, fn: () => void): void {
    if (!this.busy.has(socket)) return fn();
    const w = this.waiting.get(socket);
    if (w === undefined) this.waiting.set(socket, [fn]);
    else w.push(fn);
  }

  /** Served at least one request and has none in progress or waiting. */
  idleAfterResponse(socket: net.Socket): boolean {
    return this.served.has(socket) && !this.busy.has(socket) && !this.waiting.has(socket);
  }

  private end(socket: net.Socket): void {
    const n = (this.busy.get(socket) ?? 1) - 1;
    if (n > 0) return void this.busy.set(socket, n);
    this.busy.delete(socket);
    const w = this.waiting.get(socket);
    if (w === undefined) return;
    this.waiting.delete(socket);
    for (const fn of w) fn();
  }
}

const DEFAULT_DRAIN_MS = 5000;
const DEFAULT_DRAIN_QUIET_MS = 1000;
const DRAIN_LAST_ACCEPT_MS = 1000;

export class ProxyServer {
  current: CompiledConfig | null = null;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  readonly env: RouterEnv;
  draining = false;
  lastReload: { at: string; ok: boolean; version?: string; error?: string } | null = null;
  private readonly listeners = new Map<string, LiveListener>();
  private readonly aux: HttpServer[] = [];
  private dns: { key: string; env: DnsEnv } | undefined;
  private readonly auxPorts: Record<string, number> = {};
  private inflight = 0;
  /** When a connection was last accepted or a request last finished (the drain's quiet period). */
  private lastActivity = 0;

  constructor(readonly opts: ProxyOptions = {}) {
    this.metrics = new MetricsRegistry({
      workload: 'unknown',
      namespace: 'unknown',
      app: 'unknown',
      version: 'unknown',
    });
    this.log = opts.logger ?? createLogger('proxy');
    this.env = {
      onClosed: () => {
        this.inflight--;
        this.lastActivity = Date.now();
      },
      metrics: this.metrics,
      accessLog: new AccessLog((opts.accessLogSink ?? process.stdout) as never),
      rand: opts.rand ?? Math.random,
      rateLimiter: this.listenerRateLimiter(),
    };
  }

  private listenerRateLimiter(): RateLimiter | null {
    const o = this.opts.listenerRateLimits;
    if (o === undefined) return null;
    return new RateLimiter(this.metrics, { log: this.log, ...(o.global ? { global: o.global } : {}) });
  }

  /** Compiles and swaps in `cfg`; throws (leaving the current config in force) if it cannot. */
  async apply(cfg: ProxyConfig): Promise<void> {
    const withListen = this.applyListen(cfg);
    const dns = this.dnsEnvFor(cfg.dns);
    const { config, retired } = compileConfig(withListen, {
      metrics: this.metrics,
      previous: this.current?.clusters,
      rand: this.env.rand,
      identity: this.opts.identity,
      dns,
    });
    const w = cfg.telemetry?.workload;
    if (w)
      this.metrics.setSource({
        workload: w.name ?? 'unknown',
        namespace: w.namespace ?? 'unknown',
        app: w.app ?? 'unknown',
        version: w.version ?? 'unknown',
      });
    try {
      // the new DNS clusters' first answers, at most the resolver's two attempts
      await config.clusters.warmDns(2 * dns.settings.timeoutMs + 1000);
      await this.reconcileListeners(config);
    } catch (err) {
      // runtimes adopted from the current version stay; only ones created for `config` go
      for (const c of config.clusters.values())
        if (this.current?.clusters.peek(c.name) !== c) void c.destroy();
      throw err;
    }
    this.current = config;
    this.env.rateLimiter?.update(cfg.rateLimits);
    for (const w of config.jwt?.warnings ?? []) this.log.warn('RequestAuthentication keys', { warning: w });
    this.metrics.inc('weft_proxy_config_applied_total');
    this.lastReload = { at: new Date().toISOString(), ok: true, version: config.version };
    this.retire(retired);
    this.log.info('Applied proxy config', {
      version: config.version,
      listeners: config.listeners.length,
      clusters: config.clusters.size,
    });
  }

  /** One resolver per distinct `dns` block (a config push with the same settings reuses it). */
  private dnsEnvFor(settings: ProxyConfig['dns']): DnsEnv {
    const key = JSON.stringify(settings ?? null);
    if (this.dns?.key !== key) {
      const resolved = resolveDnsSettings(settings);
      this.dns = {
        key,
        env: { lookup: resolverLookup(resolved), settings: resolved, log: this.log, metrics: this.metrics },
      };
    }
    return this.dns.env;
  }

  /** Records a rejected config (the current one stays). */
  rejected(err: unknown): void {
    this.metrics.inc('weft_proxy_config_rejected_total');
    this.lastReload = { at: new Date().toISOString(), ok: false, error: errorMessage(err) };
    this.log.error('Rejected proxy config; last good config stays in force', {
      error: errorMessage(err),
      version: this.current?.version,
    });
  }

  private applyListen(cfg: ProxyConfig): ProxyConfig {
    const l = this.opts.listen;
    if (!l) return cfg;
    let done = false;
    const listeners = cfg.listeners.map((x) => {
      if (done || x.protocol !== 'HTTP') return x;
      done = true;
      return { ...x, address: l.host, port: l.port };
    });
    return { ...cfg, listeners };
  }

  private retire(clusters: ClusterRuntime[]): void {
    // close pools once in-flight requests on them are done (pool close() waits for them)
    for (const c of clusters) void c.close();
  }

  private async reconcileListeners(cfg: CompiledConfig): Promise<void> {
    const wanted = new Map<string, CompiledListener>();
    for (const l of cfg.listeners)
      wanted.set(`${l.protocol}|${l.address}|${l.port}${l.protocol === 'HTTP' && l.tls ? '|tls' : ''}`, l);
    const released = await this.releaseSwitchedPorts(wanted);
    const opened: LiveListener[] = [];
    try {
      for (const [key, l] of wanted) {
        const live = [...this.listeners.values()].find((x) => x.key === key);
        if (!live) opened.push(await this.open(key, l, cfg.source.credentials));
      }
    } catch (err) {
      for (const o of opened) {
        o.server.close();
        o.tls?.close();
      }
      await this.restore(released);
      throw err;
    }
    for (const [name, live] of this.listeners) {
      const next = wanted.get(live.key);
      if (next && !opened.some((o) => o.key === live.key)) live.compiled = next;
      else if (!next) {
        this.listeners.delete(name);
        this.closeListener(live);
      }
    }
    for (const o of opened) this.listeners.set(o.key, o);
    // new server certificates (a rotated Secret) and SNI servers, without touching open connections
    for (const live of this.listeners.values())
      if (live.tls !== null && live.compiled.protocol === 'HTTP' && live.compiled.tls !== null)
        live.tls.apply(live.compiled.tls, cfg.source.credentials);
  }

  /**
   * A port that changes kind (plaintext HTTP ↔ gateway TLS, HTTP ↔ TCP) keeps its address and
   * port but needs another server: the old one stops listening first, or the new one could not
   * bind (and the whole config would be refused). Its open connections finish as in a drain.
   */
  private async releaseSwitchedPorts(wanted: Map<string, CompiledListener>): Promise<LiveListener[]> {
    const bindOf = (key: string): string => key.split('|').slice(1, 3).join('|');
    const binds = new Set([...wanted.keys()].filter((k) => !this.listeners.has(k)).map(bindOf));
    const released: LiveListener[] = [];
    for (const [key, live] of this.listeners)
      if (!wanted.has(key) && live.bound && binds.has(bindOf(key)) && !bindOf(key).endsWith('|0')) {
        this.listeners.delete(key);
        this.closeListener(live);
        released.push(live);
      }
    if (released.length > 0) await new Promise((r) => setImmediate(r)); // the handle closes on the next turn
    return released;
  }

  /**
   * A refused config keeps the previous one, listeners included: the ports released for it are
   * opened again with what they served (best effort: one that cannot bind is logged).
   */
  private async restore(released: LiveListener[]): Promise<void> {
    for (const old of released) {
      try {
        const live = await this.open(old.key, old.compiled, this.current?.source.credentials);
        this.listeners.set(old.key, live);
      } catch (err) {
        this.log.error('A listener released for a refused config could not be opened again', {
          listener: old.name,
          error: errorMessage(err),
        });
      }
    }
  }

  private async open(
    key: string,
    l: CompiledListener,
    credentials: ProxyConfig['credentials'],
  ): Promise<LiveListener> {
    const live: LiveListener = {
      key,
      name: l.name,
      server: null as unknown as net.Server,
      http: null,
      tls: null,
      compiled: l,
      sockets: new Set(),
      bound: !(this.opts.unbound?.(l) ?? false),
      conns: new ConnRequests(),
    };
    if (l.protocol === 'HTTP') live.http = this.httpServer(live);
    if (l.protocol === 'HTTP' && l.tls !== null) {
      const terminator = (live.tls = this.gatewayTls(live));
      terminator.apply(l.tls, credentials); // before the first connection can arrive
      live.server = net.createServer((s) => terminator.handle(s));
    } else
      live.server =
        // allowHalfOpen: a TCP client that half-closes (request, then FIN) still gets the answer
        live.http ?? net.createServer({ allowHalfOpen: true }, (s) => this.onTcp(live, s));
    live.server.on('connection', (s: net.Socket) => {
      if (live.sockets.has(s)) return; // handed back after an upgrade request (upgrade.ts)
      this.lastActivity = Date.now();
      live.sockets.add(s);
      s.once('close', () => {
        live.sockets.delete(s);
        this.lastActivity = Date.now();
      });
    });
    if (!live.bound) {
      this.log.info('Serving listener through capture', { listener: l.name, protocol: l.protocol });
      return live;
    }
    await listen(live.server, l.port, l.address);
    this.log.info('Listening', {
      listener: l.name,
      protocol: l.protocol,
      address: l.address,
      port: (live.server.address() as net.AddressInfo).port,
    });
    return live;
  }

  /** The TLS front of a gateway listener: terminated connections go to its HTTP server. */
  private gatewayTls(live: LiveListener): GatewayTlsTerminator {
    return new GatewayTlsTerminator({
      ...this.opts.gatewayTls,
      log: this.log.child({ listener: live.name }),
      metrics: this.metrics,
      // ISTIO_MUTUAL servers present the workload certificate and trust the mesh roots
      identity: this.opts.identity ?? null,
      onSecure: (s) => {
        // tracked like raw connections: the drain closes it once idle after a response
        live.sockets.add(s);
        s.once('close', () => live.sockets.delete(s));
        live.http!.emit('connection', s);
      },
    });
  }

  private httpServer(live: LiveListener): HttpServer {
    const o = this.opts;
    const server = createDownstreamServer(
      o,
      {
        // the router checks Host itself: an absolute-form target may stand in for it (RFC 9112
        // §3.2.2), and a missing or bad Host is answered with a flag like every local reply
        requireHostHeader: false,
        // every upgrade request without a body comes to onUpgrade (why: upgrade.ts)
        shouldUpgradeCallback: takesUpgrade,
      },
      (req, res) => this.onRequest(live, req, res),
      (status) => this.countDownstreamError(status),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(live, req, socket, head),
    );
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    return server;
  }

  private onRequest(live: LiveListener, req: IncomingMessage, res: ServerResponse): void {
    if (this.draining || declinedUpgrade(req)) res.shouldKeepAlive = false;
    this.serve(live, req, res, null);
  }

  /**
   * An upgrade request node:http let go of (upgrade.ts): routed like any request once the
   * responses pipelined ahead of it are written; a tunnel only after a 101 to an allowed token.
   */
  private onUpgrade(live: LiveListener, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!(socket instanceof net.Socket)) return void socket.destroy(); // takesUpgrade: never
    live.conns.whenIdle(socket, () => {
      if (!socket.writable) return void socket.destroy(); // closed by the response ahead
      const server = live.http!;
      const token = allowedUpgrade(req, live.compiled as CompiledHttpListener);
      const d = new DetachedUpgrade(server, req, socket, head, token, this.draining);
      this.serve(live, req, d.res, token === null ? null : d);
    });
  }

  private serve(
    live: LiveListener,
    req: IncomingMessage,
    res: ServerResponse,
    upgrade: UpgradeHook | null,
  ): void {
    live.conns.begin(req.socket, res);
    this.inflight++; // decremented by the Exchange when the response closes
    const held = this.heldOnDemand(live, req);
    if (held === null) return this.route(live, req, res, upgrade);
    void held.then(() => {
      // the client left during the hold: no Exchange will see the response close
      if (res.destroyed) return this.env.onClosed();
      this.route(live, req, res, upgrade);
    });
  }

  private route(
    live: LiveListener,
    req: IncomingMessage,
    res: ServerResponse,
    upgrade: UpgradeHook | null,
  ): void {
    new Exchange(this.env, this.current!, live.compiled as CompiledHttpListener, req, res, upgrade).run();
  }

  /**
   * A request on a handed-in connection whose Host the config does not route, on demand: held
   * until weftd sent it (then routed with the new config) or nobody could say (then marked, and
   * the router answers 503 NC; router/unresolved.ts). Null: not held.
   */
  private heldOnDemand(live: LiveListener, req: IncomingMessage): Promise<void> | null {
    if (live.bound) return null;
    const wait = this.opts.onDemandHost?.() ?? null;
    if (wait === null) return null;
    const host = req.headers.host;
    if (host === undefined || findVHost(live.compiled as CompiledHttpListener, host) !== null) return null;
    return wait(host).then((verdict) => {
      if (verdict === 'unresolved') markUnresolved(req.socket, onDemandHostName(host) ?? host);
    });
  }

  /** Malformed request, oversized headers, CL/TE conflicts, header timeout: a status and a flag. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    const status = downstreamErrorStatus(code);
    if (code === 'ECONNRESET' || !socket.writable) {
      // the client went away mid-request (e.g. a load generator stopping): nothing to answer
      socket.destroy();
      return;
    }
    this.countDownstreamError(status);
    rawReply(socket, status, 'DPE', `downstream protocol error: ${code || err.message}`);
  }

  /** A request refused before routing (HTTP/1's clientError, HTTP/2's same limits). */
  private countDownstreamError(status: number): void {
    this.current?.unknownMetrics.record(status, 'DPE', 0, 0, 0);
    this.metrics.inc('weft_proxy_downstream_protocol_errors_total');
  }

  private onTcp(live: LiveListener, socket: net.Socket): void {
    // accepted during a drain too (docs/proxy.md): the drain period ends every connection
    serveTcpListener(socket, live.compiled as CompiledTcpListener, this.l4Env());
  }

  /** What L4 routing needs from the proxy (TCP listeners, the sidecar's outbound TCP services). */
  l4Env(): L4Env {
    return {
      log: this.log,
      metrics: this.metrics,
      accessLog: this.current?.accessLog === true ? this.env.accessLog : null,
      ...(this.opts.gatewayTls?.helloTimeoutMs !== undefined
        ? { helloTimeoutMs: this.opts.gatewayTls.helloTimeoutMs }
        : {}),
      ...(this.opts.gatewayTls?.maxPendingHellosPerSource !== undefined
        ? { maxPendingHellosPerSource: this.opts.gatewayTls.maxPendingHellosPerSource }
        : {}),
      ...(this.opts.rand !== undefined ? { rand: this.opts.rand } : {}),
    };
  }

  /**
   * Closes HTTP connections idle after a response (keep-alive). A connection that has not sent
   * its first request yet is left alone: it gets its answer, with `Connection: close`.
   */
  private closeIdle(live: LiveListener): void {
    if (live.compiled.protocol !== 'HTTP') return;
    for (const sock of live.sockets) if (live.conns.idleAfterResponse(sock)) sock.destroy();
    if (live.http !== null) goAwayH2(live.http); // HTTP/2: GOAWAY, streams in progress finish
  }

  /** The HTTP listener served through `handOff` (the sidecar's outbound), if the config has one. */
  unboundHttp(): CompiledHttpListener | null {
    for (const l of this.listeners.values())
      if (!l.bound && l.compiled.protocol === 'HTTP') return l.compiled;
    return null;
  }

  /** outboundTrafficPolicy REGISTRY_ONLY of the config in force; null: ALLOW_ANY (or no config yet). */
  registryOnly(): RegistryOnly | null {
    return this.current?.registryOnly ?? null;
  }

  /** The sidecar's outbound TCP/TLS services of the config in force (proxy/sidecar/outbound-tcp.ts). */
  outboundTcp(): OutboundTcpTable | null {
    return this.current?.outboundTcp ?? null;
  }

  /** Serves a connection accepted elsewhere on the unbound HTTP listener; false if there is none. */
  handOff(socket: net.Socket): boolean {
    for (const l of this.listeners.values())
      if (!l.bound && l.compiled.protocol === 'HTTP') {
        l.server.emit('connection', socket);
        return true;
      }
    return false;
  }

  private closeListener(live: LiveListener): void {
    if (live.bound) live.server.close();
    live.tls?.close();
    live.http?.closeIdleConnections();
  }

  /** Starts admin, Prometheus and health servers (each may be disabled with null). */
  async startAux(): Promise<void> {
    const o = this.opts;
    const addr = o.adminAddress ?? '127.0.0.1';
    const specs: [AuxRole, number | null | undefined, number][] = [
      ['admin', o.adminPort, 15000],
      ['metrics', o.metricsPort, 15090],
      ['health', o.healthPort, 15021],
    ];
    for (const [name, port, dflt] of specs) {
      if (port === null) continue;
      const s = http.createServer((req, res) => {
        handleAdmin(this, name, req, res).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${errorMessage(err)}\n`);
        });
      });
      await listen(s, port ?? dflt, o.auxAddresses?.[name] ?? addr);
      this.aux.push(s);
      this.auxPorts[name] = (s.address() as net.AddressInfo).port;
    }
  }

  ports(): Record<string, number> {
    const out: Record<string, number> = { ...this.auxPorts };
    for (const l of this.listeners.values())
      if (l.bound) out[l.name] = (l.server.address() as net.AddressInfo).port;
    return out;
  }

  inFlight(): number {
    return this.inflight;
  }

  /**
   * POST /drain: stops accepting new connections and closes keep-alive connections idle after a
   * response; the rest are answered with `Connection: close`. Readiness fails.
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.log.info('Draining', { inflight: this.inflight });
    for (const l of this.listeners.values()) {
      this.stopAccepting(l);
      this.closeIdle(l);
    }
  }

  /**
   * Closes the listening socket only: net's close, not http.Server's, which also closes
   * accepted connections whose request has not arrived yet (closeIdleConnections).
   */
  private stopAccepting(live: LiveListener): void {
    if (live.bound && live.server.listening) net.Server.prototype.close.call(live.server);
  }

  /**
   * SIGTERM / quitquitquit. Readiness fails at once and responses carry `Connection: close`,
   * but listeners keep accepting during the drain period: the app in this pod may still be
   * finishing its own work and making outbound calls (Istio's "proxy exits before the app"
   * complaint). The proxy stops once no request has been in flight and no client connection
   * open for drainQuietMs (a gap between two requests of a steady client is not the end of its
   * traffic), or when drainMs is over.
   */
  async shutdown(until?: number): Promise<void> {
    this.draining = true;
    this.log.info('Draining', { inflight: this.inflight, drainMs: this.opts.drainMs ?? DEFAULT_DRAIN_MS });
    // `until`: a drain deadline the caller already started (the sidecar drains its pipes first)
    const deadline = until ?? Date.now() + (this.opts.drainMs ?? DEFAULT_DRAIN_MS);
    const quietMs = this.opts.drainQuietMs ?? DEFAULT_DRAIN_QUIET_MS;
    this.lastActivity = Math.max(this.lastActivity, Date.now() - quietMs); // idle now: stop at once
    // the last second (a fifth of shorter periods) accepts nothing: a connection accepted then
    // would be reset at the deadline before its request is answered; a refused one is retried
    const acceptUntil = deadline - Math.min(DRAIN_LAST_ACCEPT_MS, (deadline - Date.now()) / 5);
    let accepting = true;
    while (Date.now() < deadline && !this.quietFor(quietMs)) {
      if (accepting && Date.now() >= acceptUntil) {
        accepting = false;
        for (const l of this.listeners.values()) this.stopAccepting(l);
      }
      for (const l of this.listeners.values()) this.closeIdle(l);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const l of this.listeners.values()) {
      if (l.bound) l.server.close();
      l.tls?.close();
      l.http?.closeAllConnections();
      for (const sock of l.sockets) sock.destroy();
    }
    this.listeners.clear();
    for (const a of this.aux) {
      a.close();
      a.closeAllConnections();
    }
    this.env.accessLog?.flush();
    await Promise.all([...(this.current?.clusters.values() ?? [])].map((c) => c.destroy()));
    this.log.info('Proxy stopped', { abandoned: this.inflight });
  }

  private quietFor(ms: number): boolean {
    return this.inflight === 0 && this.openConnections() === 0 && Date.now() - this.lastActivity >= ms;
  }

  private openConnections(): number {
    let n = 0;
    for (const l of this.listeners.values()) n += l.sockets.size;
    return n;
  }

  exit(): void {
    (this.opts.onExit ?? (() => process.exit(0)))();
  }
}

/** A local reply written straight to a socket node:http no longer serves; the connection closes. */
function rawReply(socket: Duplex, status: number, flag: string, detail: string): void {
  const body = `${detail} [flag ${flag}]\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: text/plain\r\nx-weft-response-flags: ${flag}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
