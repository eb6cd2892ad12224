/**
 * The inbound HTTP/1.1 hop: requests the inbound listener accepted (plaintext, or decrypted mesh
 * mTLS) are parsed by a node:http server that listens nowhere (connections are handed in) and
 * forwarded to the app over loopback-local keep-alive pools (from 127.0.0.6, which the capture
 * rules never redirect). On the way:
 *
 * - `x-forwarded-client-cert`: whatever the client sent is dropped; an mTLS connection's peer is
 *   set (Envoy's SANITIZE_SET: weft's outbound side does not strip an app's XFCC, so appending to
 *   a client-supplied one, as Istio's APPEND_FORWARD does, would let an app forge identities);
 * - trace context (`x-request-id`, `traceparent`) and `x-forwarded-proto` when absent;
 * - the path normalized as the mesh says (Istio's inbound applies meshConfig.pathNormalization
 *   too), so the app is handed the path its AuthorizationPolicies were checked against;
 * - RequestAuthentication: a token present must verify (401/403 otherwise), its principal goes
 *   to the policies below;
 * - AuthorizationPolicy (CUSTOM → DENY → ALLOW, proxy/authz) with the peer's mTLS identity, read
 *   from the config in force when the request arrives (a new policy applies to open connections);
 *   a denial is Envoy's `403 RBAC: access denied`, flag RBAC (UAEX for ext-authz);
 * - reporter="destination" metrics with the peer's principal and the security policy, and an
 *   access log line saying whether the connection was mTLS and who the peer was.
 *
 * No retries (Istio's inbound has none by default) except one on a fresh connection when a pooled
 * keep-alive connection the app had closed fails before any response byte (a bodyless idempotent
 * request the app never saw: Istio 1.24's inbound retry policy).
 */
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import { http } from '../../pkg/builtins/index.js';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../pkg/log/index.js';
import { H1Pool, type Controller, type ResponseHandler, type UpstreamError } from '../upstream/h1client.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_IDLE_MS } from '../upstream/cluster.js';
import {
  forwardableHeaders,
  forwardableTrailers,
  withoutHopByHop,
  type HeaderMap,
} from '../router/headers.js';
import { addFlag, FLAG_TEXT, Flags, type Flag } from '../router/flags.js';
import { propagate } from '../telemetry/trace.js';
import type { AccessLog } from '../telemetry/accesslog.js';
import type { MetricGroup, MetricsRegistry } from '../telemetry/metrics.js';
import type { PortPlan } from './plan.js';
import type { PeerIdentity } from './peer.js';
import { hostPort } from '../sidecar/capture.js';
import { createDownstreamServer, downstreamErrorStatus } from '../http1-limits.js';
import type { PathNormalization } from '../router/path.js';
import type { AuthzDecision, CompiledAuthz } from '../authz/engine.js';
import { authzLogFields } from '../authz/gate.js';
import type { CompiledJwt } from '../authn/jwt.js';
import type { RequestAuth } from '../authn/hook.js';
import { admit, type Admission, type Refusal } from './admit.js';
import type { RateLimiter, RateLimitVerdict } from '../ratelimit/limiter.js';
import { rateLimitHeaders, rateLimitLogFields } from '../ratelimit/headers.js';
import { connectionOf, endWithHead, hasUndeclaredBody, isH2 } from '../h2/downstream.js';
import { H2Pool } from '../h2/pool.js';
import { grpcReply, grpcStatusLabel, sendGrpcError, type GrpcReply } from '../h2/router.js';
import { grpcStatusOfHttp } from '../h2/grpc.js';

export const XFCC = 'x-forwarded-client-cert';

/** One accepted inbound connection, as the HTTP hop and the access log see it. */
export interface InboundConnection {
  plan: PortPlan;
  /** The app port from the original destination; null: the Host header's port. */
  appPort: number | null;
  /** `ip:port` of the client. */
  remote: string;
  sni: string | null;
  /** null: plaintext. */
  peer: PeerIdentity | null;
  localPrincipal: string | null;
  /** Resolved once per connection (reporter="destination", this peer, this security). */
  metrics: MetricGroup;
}

export interface InboundHttpOptions {
  log: Logger;
  /** The proxy's registry: authorization counters (per-request metrics go to the connection's group). */
  metrics: MetricsRegistry;
  accessLog: AccessLog | null;
  /** Read per request: the config's access-log switch. */
  accessLogOn: () => boolean;
  /** Read per request: the policies and path normalization of the config in force. */
  policy: () => InboundPolicy;
  appHost: string;
  /** 127.0.0.6 for an IPv4 app host. */
  sourceAddress: string | undefined;
  maxHeaderBytes?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** What the config in force asks of each inbound request, compiled once per version. */
export interface InboundPolicy {
  pathNormalization: PathNormalization;
  /** null: no AuthorizationPolicy selects this workload, every request is allowed. */
  authz: CompiledAuthz | null;
  /** The same policies as read for TCP connections (engine.ts tcpBlock); null with `authz`. */
  authzTcp: CompiledAuthz | null;
  /** null: no RequestAuthentication selects this workload, tokens are not checked. */
  jwt: CompiledJwt | null;
  /** The local rate limits (state kept across configs by the listener); null: none. */
  rateLimit: RateLimiter | null;
}

/** App ports with a pool kept; past this, pools without connections are dropped before a new one opens. */
export const MAX_APP_POOLS = 256;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const CONNECT_FAILURE = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT_CONNECT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

export function securityPolicy(c: InboundConnection): 'mutual_tls' | 'none' {
  return c.peer === null ? 'none' : 'mutual_tls';
}

class InboundExchange implements ResponseHandler {
  /** The verified JWT (RequestAuthentication). */
  private auth: RequestAuth | null = null;
  /** Envoy's response code details of a JWT refusal. */
  private details: string | undefined;
  private flags = '-';
  private status = 0;
  private reqBytes = 0;
  private respBytes = 0;
  private controller: Controller | null = null;
  private done = false;
  private staleRetryUsed = false;
  private readonly start = performance.now();
  private readonly headers: HeaderMap;
  private readonly requestId: string;
  private readonly port: number;
  private readonly body: IncomingMessage | null;
  /** The origin-form target forwarded to the app (the normalized path and the query). */
  private target = '/';
  private authz: AuthzDecision | null = null;
  private rateLimit: RateLimitVerdict | undefined;
  /** gRPC requests: the status for metrics and the log. */
  private readonly grpc: GrpcReply | null;
  /** A gRPC trailers-only head, sent with the end of the stream (endWithHead). */
  private heldHead: { status: number; headers: Record<string, string | string[]> } | null = null;

  constructor(
    private readonly hop: InboundHttp,
    private readonly conn: InboundConnection,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.port = conn.appPort ?? hostPort(req.headers.host ?? '');
    this.grpc = grpcReply(req.headers);
    const h = (this.headers = forwardableHeaders(req.headers));
    h.host = req.headers.host;
    delete h[XFCC];
    if (conn.peer !== null) h[XFCC] = conn.peer.xfcc;
    h['x-forwarded-proto'] ??= conn.peer !== null ? 'https' : 'http';
    this.requestId = propagate(h);
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      Number(req.headers['content-length'] ?? 0) > 0 ||
      hasUndeclaredBody(req);
    this.body = hasBody ? req : null;
    if (hasBody) {
      req.on('data', (c: Buffer) => (this.reqBytes += c.length));
      // the counter alone would start the body flowing, with nobody sending it on: held until the
      // app connection streams it (its resume), which may be after a connect or an ext-authz call
      req.pause();
    } else req.resume();
  }

  run(): void {
    this.res.once('close', () => this.onDownstreamClose());
    admit(
      {
        req: this.req,
        headers: this.headers,
        port: this.port,
        sni: this.conn.sni,
        peer: this.conn.peer?.principal ?? null,
        policy: this.hop.opts.policy(),
        metrics: this.hop.opts.metrics,
      },
      (a) => this.admitted(a),
    );
  }

  private admitted(a: Admission): void {
    this.auth = a.auth;
    this.authz = a.authz;
    this.details = a.details;
    this.target = a.target;
    this.rateLimit = a.rateLimit;
    if (this.done) return;
    const r = a.refusal;
    if (r === undefined) return this.dispatch();
    // the rest of what this client sent cannot be trusted to be framed as it meant
    if (r.flag === Flags.DownstreamProtocolError) this.res.shouldKeepAlive = false;
    this.localReply(r.status, r.flag, r.detail, r.custom);
  }

  private dispatch(): void {
    const spec = {
      method: this.req.method ?? 'GET',
      path: this.target,
      headers: this.headers,
      body: this.body,
    };
    try {
      // the app gets the protocol the client spoke (Istio's inbound USE_DOWNSTREAM_PROTOCOL)
      (this.appSpeaksH2() ? this.hop.h2pool(this.port) : this.hop.pool(this.port)).dispatch(spec, this);
    } catch (err) {
      // e.g. a connect option node refuses synchronously: this request fails, not the process
      this.localReply(
        503,
        Flags.ConnectFailure,
        `${(err as Error).message} (${this.hop.appHost}:${this.port})`,
      );
    }
  }

  /**
   * HTTP/2 to the app: the client spoke it and the port is declared HTTP/2 (GRPC, HTTP2) or
   * sniffed (Istio's USE_DOWNSTREAM_PROTOCOL); a declared HTTP port is HTTP/1.1.
   */
  private appSpeaksH2(): boolean {
    const plan = this.conn.plan;
    return isH2(this.req) && (plan.protocol === null || plan.http2);
  }

  onRequestStart(c: Controller): void {
    this.controller = c;
  }

  onResponseStart(
    c: Controller,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.status = status;
    // the outbound side's filter: the app's Connection-named fields stay on the loopback hop
    const out = withoutHopByHop(headers);
    // the budget left, on the app's answers too (the IETF fields are meant for every response)
    if (this.rateLimit !== undefined) Object.assign(out, rateLimitHeaders(this.rateLimit));
    if (this.hop.draining) this.res.shouldKeepAlive = false;
    const grpc = headers['grpc-status'];
    if (this.grpc !== null && typeof grpc === 'string') {
      this.grpc.status = grpc;
      this.heldHead = { status, headers: out };
      return;
    }
    try {
      this.res.writeHead(status, out);
    } catch (err) {
      c.abort(err as Error);
    }
  }

  onResponseData(c: Controller, chunk: Buffer): void {
    this.releaseHead(c);
    this.respBytes += chunk.length;
    if (!this.res.write(chunk)) {
      // a slow client: stop reading the app until it drains
      c.pause();
      this.res.once('drain', () => c.resume());
    }
  }

  private releaseHead(c: Controller): void {
    const h = this.heldHead;
    if (h === null) return;
    this.heldHead = null;
    try {
      this.res.writeHead(h.status, h.headers);
    } catch (err) {
      c.abort(err as Error);
    }
  }

  /** The app's trailers (gRPC's status): passed on, read for metrics. */
  onResponseTrailers(c: Controller, trailers: Record<string, string | string[] | undefined>): void {
    this.releaseHead(c);
    const grpc = trailers['grpc-status'];
    if (this.grpc !== null && typeof grpc === 'string') this.grpc.status = grpc;
    try {
      this.res.addTrailers(forwardableTrailers(trailers));
    } catch {
      // a trailer this downstream cannot carry: the body still ends
    }
  }

  onResponseEnd(): void {
    const h = this.heldHead;
    this.heldHead = null;
    if (h === null || !endWithHead(this.res, h.status, h.headers)) {
      if (h !== null) this.res.writeHead(h.status, h.headers);
      this.res.end();
    }
    this.finish();
  }

  onResponseError(_c: Controller, err: Error): void {
    if (this.done) return;
    const e = err as Partial<UpstreamError> & Error;
    if (this.res.headersSent) {
      this.flags = addFlag(this.flags, Flags.UpstreamReset);
      this.res.destroy();
      return this.finish();
    }
    if (
      e.reused === true &&
      e.beforeResponse === true &&
      !this.staleRetryUsed &&
      this.body === null &&
      IDEMPOTENT.has(this.req.method ?? '')
    ) {
      // the app closed a pooled keep-alive connection as we reused it: it never saw the request
      this.staleRetryUsed = true;
      return this.dispatch();
    }
    const code = e.code ?? '';
    const flag: Flag = CONNECT_FAILURE.has(code)
      ? Flags.ConnectFailure
      : code === 'EPROTO_UPSTREAM'
        ? Flags.UpstreamProtocolError
        : Flags.ConnectionTermination;
    this.localReply(
      flag === Flags.UpstreamProtocolError ? 502 : 503,
      flag,
      `${code || err.message} from ${this.hop.appHost}:${this.port}`,
    );
  }

  /** A response the proxy makes itself; `custom`: Envoy's own body and headers (JWT, authorization). */
  private localReply(status: number, flag: Flag, detail: string, custom?: Refusal['custom']): void {
    this.flags = addFlag(this.flags, flag);
    this.status = status;
    const text = custom?.body ?? `${FLAG_TEXT[flag] ?? 'local reply'}: ${detail} [flag ${this.flags}]\n`;
    if (this.grpc !== null) {
      // a gRPC client gets a gRPC error (HTTP 200, the status mapped), as from the outbound side
      this.grpc.status = String(grpcStatusOfHttp(status));
      this.status = 200;
      sendGrpcError(this.res, this.grpc.status, text.toString().trim(), {
        ...custom?.headers,
        'x-weft-response-flags': this.flags,
      });
      return this.finish();
    }
    if (!this.res.headersSent && !this.res.destroyed) {
      this.respBytes = Buffer.byteLength(text);
      this.res.writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        ...custom?.headers,
        'content-length': String(this.respBytes),
        'x-weft-response-flags': this.flags,
      });
      this.res.end(text);
    }
    this.finish();
  }

  private onDownstreamClose(): void {
    if (this.done || this.res.writableFinished) return;
    this.flags = addFlag(this.flags, Flags.DownstreamDisconnect);
    // the client went away: free the app connection instead of letting it finish for nobody
    this.controller?.abort(new Error('downstream disconnected'));
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.hop.inflight--;
    const ms = performance.now() - this.start;
    const grpc = this.grpc === null ? undefined : grpcStatusLabel(this.grpc.status);
    this.conn.metrics.record(this.status, this.flags, ms, this.reqBytes, this.respBytes, grpc);
    if (this.hop.opts.accessLog !== null && this.hop.opts.accessLogOn())
      this.hop.opts.accessLog.write(this.logEntry(ms));
  }

  private logEntry(ms: number): Record<string, unknown> {
    const c = this.conn;
    const h = this.req.headers;
    return {
      start_time: new Date(Date.now() - ms).toISOString(),
      direction: 'inbound',
      method: this.req.method,
      path: this.req.url,
      protocol: isH2(this.req) ? 'HTTP/2' : `HTTP/${this.req.httpVersion}`,
      response_code: this.status,
      response_flags: this.flags,
      bytes_received: this.reqBytes,
      bytes_sent: this.respBytes,
      duration: Math.round(ms),
      authority: h.host,
      user_agent: h['user-agent'],
      request_id: this.requestId,
      upstream_host: `${this.hop.appHost}:${this.port}`,
      upstream_cluster: `inbound|${this.port}||`,
      downstream_remote_address: c.remote,
      ...(this.authz !== null ? authzLogFields(this.authz) : {}),
      ...(this.details !== undefined ? { response_code_details: this.details } : {}),
      ...(this.auth !== null ? { request_principal: this.auth.principal } : {}),
      ...(this.rateLimit !== undefined ? rateLimitLogFields(this.rateLimit) : {}),
      ...connectionFields(c),
    };
  }
}

/**
 * The head replayed to the app for an upgrade: the client's hop-by-hop fields and the ones its
 * Connection names stay on the client hop (RFC 9110 §7.6.1), as on every other path; put back is
 * what the tunnel needs: the upgrade itself (with h2c's settings) and the framing of the body
 * bytes that follow the head as they came.
 */
function upgradeHeaders(req: IncomingMessage): HeaderMap {
  const h = forwardableHeaders(req.headers);
  const settings = req.headers['http2-settings'];
  h.host = req.headers.host;
  h.connection = settings === undefined ? 'upgrade' : 'upgrade, http2-settings';
  h.upgrade = req.headers.upgrade;
  h['http2-settings'] = settings;
  h['content-length'] = req.headers['content-length'];
  h['transfer-encoding'] = req.headers['transfer-encoding'];
  return h;
}

/** What the access log says about a connection's security (HTTP and TCP lines alike). */
export function connectionFields(c: InboundConnection): Record<string, unknown> {
  return {
    connection_security_policy: securityPolicy(c),
    mtls: c.peer !== null,
    source_principal: c.peer?.principal,
    destination_principal: c.peer !== null ? (c.localPrincipal ?? undefined) : undefined,
    requested_server_name: c.sni ?? undefined,
    mtls_mode: c.plan.mode,
    mtls_policy: c.plan.policy,
  };
}

export class InboundHttp {
  readonly server: HttpServer;
  draining = false;
  inflight = 0;
  private readonly conns = new WeakMap<Duplex, InboundConnection>();
  private readonly pools = new Map<number, H1Pool>();
  /** HTTP/2 to the app, per port, for requests that came over HTTP/2. */
  private readonly h2pools = new Map<number, H2Pool>();
  /** Open connections and how many requests each has in progress (idle ones close on drain). */
  private readonly sockets = new Map<Duplex, number>();

  constructor(readonly opts: InboundHttpOptions) {
    // the outbound side's limits (60 KiB and 100 header fields, 10 s to send them), from one place
    this.server = createDownstreamServer(
      opts,
      {},
      (req, res) => this.onRequest(req, res),
      (status, _code, conn) =>
        this.conns.get(conn)?.metrics.record(status, Flags.DownstreamProtocolError, 0, 0, 0),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
  }

  get appHost(): string {
    return this.opts.appHost;
  }

  /** Serves `socket` (already past mTLS, if any) as HTTP/1.1. */
  serve(socket: net.Socket, conn: InboundConnection): void {
    this.conns.set(socket, conn);
    this.sockets.set(socket, 0);
    socket.once('close', () => this.sockets.delete(socket));
    this.server.emit('connection', socket);
  }

  pool(port: number): H1Pool {
    let p = this.pools.get(port);
    if (p === undefined) {
      // every captured port can be asked for: keep pools (each has a sweep timer) for the busy ones
      if (this.pools.size >= MAX_APP_POOLS)
        for (const [k, old] of this.pools)
          if (old.connections === 0) {
            void old.destroy();
            this.pools.delete(k);
          }
      p = new H1Pool(this.opts.appHost, port, {
        maxConnections: Infinity,
        connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
        idleTimeoutMs: DEFAULT_IDLE_MS,
        maxRequestsPerConnection: 0,
        localAddress: this.opts.sourceAddress,
      });
      this.pools.set(port, p);
    }
    return p;
  }

  /** The HTTP/2 pool of an app port (bounded like the HTTP/1 pools). */
  h2pool(port: number): H2Pool {
    let p = this.h2pools.get(port);
    if (p === undefined) {
      if (this.h2pools.size >= MAX_APP_POOLS)
        for (const [k, old] of this.h2pools)
          if (old.connections === 0) {
            void old.destroy();
            this.h2pools.delete(k);
          }
      p = new H2Pool(this.opts.appHost, port, {
        maxConnections: Infinity,
        connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
        idleTimeoutMs: DEFAULT_IDLE_MS,
        maxConcurrentStreams: Infinity,
        localAddress: this.opts.sourceAddress,
      });
      this.h2pools.set(port, p);
    }
    return p;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const sock = connectionOf(req);
    const conn = this.conns.get(sock);
    if (conn === undefined) return void res.destroy(); // not handed in by the listener: cannot happen
    this.sockets.set(sock, (this.sockets.get(sock) ?? 0) + 1);
    res.once('close', () => {
      const n = (this.sockets.get(sock) ?? 1) - 1;
      if (this.sockets.has(sock)) this.sockets.set(sock, n);
      if (this.draining && n === 0) sock.destroy();
    });
    this.inflight++;
    if (this.draining) res.shouldKeepAlive = false;
    new InboundExchange(this, conn, req, res).run();
  }

  /** Malformed requests, oversized headers, header timeouts: a status, a flag, a metric, a log line. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const status = downstreamErrorStatus(code);
    this.conns.get(socket)?.metrics.record(status, Flags.DownstreamProtocolError, 0, 0, 0);
    const body = `downstream protocol error: ${code || err.message} [flag DPE]\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: text/plain\r\nx-weft-response-flags: DPE\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  /**
   * WebSocket and other upgrades: admitted like any request (path, JWT, AuthorizationPolicy), then
   * the request head is replayed to the app with the admitted target and headers (XFCC replaced,
   * token stripped), and both sides are piped.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const conn = this.conns.get(socket);
    socket.on('error', () => socket.destroy());
    if (conn === undefined) return void socket.destroy();
    const port = conn.appPort ?? hostPort(req.headers.host ?? '');
    const headers = upgradeHeaders(req);
    delete headers[XFCC];
    if (conn.peer !== null) headers[XFCC] = conn.peer.xfcc;
    admit(
      {
        req,
        headers,
        port,
        sni: conn.sni,
        peer: conn.peer?.principal ?? null,
        policy: this.opts.policy(),
        metrics: this.opts.metrics,
      },
      (a) => {
        if (a.refusal !== undefined) return this.refuseUpgrade(socket, conn, a.refusal);
        let lines = `${req.method} ${a.target} HTTP/1.1\r\n`;
        for (const [k, v] of Object.entries(headers)) {
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) lines += `${k}: ${one}\r\n`;
        }
        this.pipeUpgrade(socket, conn, port, lines, head);
      },
    );
  }

  private refuseUpgrade(socket: Duplex, conn: InboundConnection, r: Refusal): void {
    conn.metrics.record(r.status, r.flag, 0, 0, 0);
    if (!socket.writable) return void socket.destroy();
    const body = r.custom?.body ?? `${FLAG_TEXT[r.flag] ?? 'local reply'}: ${r.detail} [flag ${r.flag}]\n`;
    let out = `HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? ''}\r\nconnection: close\r\n`;
    for (const [k, v] of Object.entries({ 'content-type': 'text/plain', ...r.custom?.headers }))
      out += `${k}: ${v}\r\n`;
    out += `x-weft-response-flags: ${r.flag}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
    socket.end(Buffer.concat([Buffer.from(out, 'latin1'), Buffer.from(body)]));
  }

  private pipeUpgrade(
    socket: Duplex,
    conn: InboundConnection,
    port: number,
    lines: string,
    head: Buffer,
  ): void {
    const upstream = this.connectApp(port);
    upstream.once('connect', () => {
      upstream.write(`${lines}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      conn.metrics.record(101, '-', 0, 0, 0);
    });
    upstream.once('error', (err) => {
      if (upstream.readyState !== 'opening' || !socket.writable) return void socket.destroy();
      conn.metrics.record(503, Flags.ConnectFailure, 0, 0, 0);
      const body = `${FLAG_TEXT.UF}: ${err.message} [flag UF]\n`;
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.destroy());
  }

  private connectApp(port: number): net.Socket {
    return net.connect({ host: this.opts.appHost, port, localAddress: this.opts.sourceAddress });
  }

  /** Drain: keep-alive responses say `Connection: close`, idle connections close now. */
  drain(): void {
    this.draining = true;
    for (const [sock, busy] of this.sockets) if (busy === 0) sock.destroy();
  }

  async close(): Promise<void> {
    for (const sock of this.sockets.keys()) sock.destroy();
    await Promise.all([...this.pools.values(), ...this.h2pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}
