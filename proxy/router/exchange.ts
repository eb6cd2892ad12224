/**
 * One HTTP request through the proxy: the terminal "router" stage in Envoy's terms. It picks the
 * virtual host and route (precompiled), applies fault injection, picks a weighted destination,
 * checks the circuit breaker, load-balances to an endpoint and dispatches on that endpoint's
 * keep-alive pool (h1client.ts). It alone owns timeouts, retries (with Istio's defaults) and the stale
 * pooled-connection retry, and it writes every local reply with its response flag.
 *
 * Lifecycle: run() → [fault delay] → forward() → attempt()… → finish() exactly once. Every exit
 * path goes through finish(), which releases the circuit-breaker slot and records telemetry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Controller, ResponseHandler, UpstreamError } from '../upstream/h1client.js';
import { sendableFieldValue } from '../../pkg/http/fields.js';
import {
  ActionType,
  findVHost,
  metricsOf,
  pickDest,
  resolveCluster,
  type CompiledConfig,
  type CompiledDest,
  type CompiledHttpListener,
  type CompiledRoute,
  type CompiledVHost,
} from '../compile/compile.js';
import type { RequestView } from '../compile/match.js';
import type { EndpointRuntime } from '../upstream/cluster.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/accesslog.js';
import { propagate } from '../telemetry/trace.js';
import {
  forwardableHeaders,
  forwardableTrailers,
  sanitizeExternal,
  dropNominatedFields,
  withoutHopByHop,
  type HeaderMap,
} from './headers.js';
import { requestOriginalDst } from '../upstream/origdst.js';
import { unresolvedDetail } from './unresolved.js';
import { authorityPort, hostValues, isRejection, parseRequestHead, type HeadRejection } from './target.js';
import type { PathNormalization } from './path.js';
import { addFlag, FLAG_TEXT, Flags, type Flag } from './flags.js';
import { backoffMs, isRetriable, type AttemptOutcome } from './retry.js';
import { buildExplain } from './explain.js';
import type { UpgradeHook } from '../upgrade.js';
import { WeftError } from '../../pkg/errors/index.js';
import { authzGate, authzLogFields, countAuthz, type AuthzOutcome } from '../authz/gate.js';
import { guardsListener, type AuthzDecision } from '../authz/engine.js';
import { jwtHook, type RequestAuth } from '../authn/hook.js';
import { hostAllowed, tlsServerOf } from '../gateway-tls.js';
import type { RateLimiter, RateLimitVerdict } from '../ratelimit/limiter.js';
import { checkRateLimit, gatewayRateLimitRequest } from '../ratelimit/gateway.js';
import { limitedReply, rateLimitHeaders, rateLimitLogFields } from '../ratelimit/headers.js';
import { connectionOf, endWithHead, hasUndeclaredBody, isH2 } from '../h2/downstream.js';
import { ReplayableBody } from '../h2/body.js';
import { H2Pool } from '../h2/pool.js';
import { grpcReply, grpcStatusLabel, grpcTimeoutMs, sendGrpcError, type GrpcReply } from '../h2/router.js';
import { encodeGrpcMessage, grpcStatusOfHttp } from '../h2/grpc.js';
import {
  GrpcWebTextDecoder,
  grpcWebMode,
  grpcWebResponseType,
  isGrpcResponse,
  MAX_GRPC_WEB_REQUEST_BYTES,
  TextFrameEncoder,
  toGrpcRequestHeaders,
  trailersFrame,
  type GrpcWebMode,
} from '../h2/grpc-web.js';

type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface RouterEnv {
  /** Called once per request when its downstream response is closed (drain accounting). */
  onClosed: () => void;
  metrics: MetricsRegistry;
  accessLog: AccessLog | null;
  rand: () => number;
  /** A gateway's listener rate limits (ADR 0021); absent: none (a sidecar limits inbound only). */
  rateLimiter?: RateLimiter | null;
}

/** Bodies up to this size are buffered so the request can be retried; larger ones stream, unretried. */
export const MAX_REPLAYABLE_BODY = 64 * 1024;
const IDEMPOTENT: Readonly<Record<string, true>> = {
  GET: true,
  HEAD: true,
  OPTIONS: true,
  PUT: true,
  DELETE: true,
  TRACE: true,
};
const CONNECT_FAILURE_CODES: Readonly<Record<string, true>> = {
  ECONNREFUSED: true,
  ETIMEDOUT_CONNECT: true,
  EHOSTUNREACH: true,
  ENETUNREACH: true,
  ENOTFOUND: true,
  EAI_AGAIN: true,
  EADDRNOTAVAIL: true,
  ETLS_HANDSHAKE: true, // mesh mTLS / TLS origination failed (proxy/upstream/tls.ts): Envoy's UF
};
/**
 * Builds the view every later step uses, from the request head parsed once (router/target.ts):
 * the authority (Host, or the absolute-form target's), the normalized path and the target to
 * forward; or why the head is refused. For an absolute-form request the `host` header is set
 * to the target's authority, so header matches and logs see what routing saw.
 */
export function requestView(
  req: IncomingMessage,
  listenerPort: number,
  mode: PathNormalization,
): RequestView | HeadRejection {
  const head = parseRequestHead(req.method ?? 'GET', req.url ?? '/', hostValues(req.rawHeaders), mode);
  if (isRejection(head)) return head;
  if (head.form === 'absolute') req.headers.host = head.authority;
  return {
    method: req.method ?? 'GET',
    path: head.path,
    query: head.query,
    target: head.target,
    authority: head.authority,
    scheme: 'http',
    port: authorityPort(head.authority, listenerPort),
    headers: req.headers,
  };
}

/** First matching route (list order) and which match block matched; null = 404 NR. */
export function selectRoute(
  vh: CompiledVHost,
  v: RequestView,
): { route: CompiledRoute; block: number } | null {
  const routes = vh.routes;
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    const blocks = r.blocks;
    if (blocks.length === 0) return { route: r, block: -1 };
    for (let b = 0; b < blocks.length; b++) if (blocks[b]!(v)) return { route: r, block: b };
  }
  return null;
}

/** One dispatch to one endpoint; callbacks of a superseded attempt are ignored. */
class Attempt implements ResponseHandler {
  controller: Controller | null = null;
  constructor(
    private readonly ex: Exchange,
    readonly n: number,
    readonly endpoint: EndpointRuntime,
  ) {}
  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.ex.current !== this) controller.abort(new Error('superseded'));
  }
  onResponseStart(controller: Controller, status: number, headers: UpstreamHeaders): void {
    if (this.ex.current === this) this.ex.onResponseStart(controller, status, headers);
  }
  onResponseData(_c: Controller, chunk: Buffer): void {
    if (this.ex.current === this) this.ex.onData(chunk);
  }
  onResponseTrailers(_c: Controller, trailers: UpstreamHeaders): void {
    if (this.ex.current === this) this.ex.onTrailers(trailers);
  }
  onResponseEnd(): void {
    if (this.ex.current === this) this.ex.onEnd();
  }
  onResponseError(_c: Controller, err: Error): void {
    if (this.ex.current === this) this.ex.onError(err);
  }
}

export class Exchange {
  flags = '-';
  status = 0;
  reqBytes = 0;
  respBytes = 0;
  route: CompiledRoute | null = null;
  block = -1;
  vhost: CompiledVHost | null = null;
  dest: CompiledDest | null = null;
  current: Attempt | null = null;
  /** Endpoint of the latest attempt (retries avoid it: Envoy's previous_hosts predicate). */
  lastEndpoint: EndpointRuntime | null = null;
  attempts = 0;
  requestId = '';
  /** The AuthorizationPolicy decision, when the config has policies. */
  authz: AuthzDecision | null = null;
  /** The client's SPIFFE ID when an ISTIO_MUTUAL gateway server terminated the connection. */
  peer: string | null = null;
  /** `x-forwarded-client-cert` for a gateway connection with a verified client certificate. */
  private clientCert: string | null = null;
  /** The verified JWT (RequestAuthentication); null: none. AuthorizationPolicy reads it. */
  auth: RequestAuth | null = null;
  /** Envoy's response code details for local replies that have them (jwt_authn_access_denied{…}). */
  details: string | undefined;
  /** The listener rate limit that applied (allowed or limited); null: none. */
  rateLimit: RateLimitVerdict | null = null;
  /** gRPC requests (content-type application/grpc): the status for metrics and the log. */
  grpc: GrpcReply | null = null;
  /** A gRPC-Web request (h2/grpc-web.ts): its local replies are gRPC-Web errors. */
  private web: GrpcWebMode | null = null;
  /** The request is bridged to gRPC over HTTP/2 (an HTTP/2 cluster); the response is re-encoded. */
  private webBridged = false;
  /** Base64 of the response, frame by frame (`-text` clients). */
  private webText: TextFrameEncoder | null = null;
  /** The upstream is paused until the client drains what was written (writeBody). */
  private awaitingDrain = false;
  /** The bridged upstream answered without gRPC: its body is dropped, its status mapped. */
  private webNotGrpc = false;
  private readonly start = performance.now();
  /** When the downstream request was complete (body read or streaming): service time starts here. */
  private requestComplete = 0;
  /** Unset only when the head was refused (rejectHead). */
  private view!: RequestView;
  private out: HeaderMap | null = null;
  private path = '/';
  private body: Buffer | IncomingMessage | null = null;
  /** A body of unknown length (HTTP/2): streamed, and kept for retries while small. */
  private tee: ReplayableBody | null = null;
  /** A gRPC trailers-only response head, held to be sent as one frame with the end of stream. */
  private heldHead: { status: number; headers: Record<string, string | string[]> } | null = null;
  private replayable = true;
  private staleRetryUsed = false;
  private discard = false;
  private done = false;
  private holdsSlot = false;
  private lastOutcome: AttemptOutcome | null = null;
  private tryTimer: NodeJS.Timeout | null = null;
  private routeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly env: RouterEnv,
    readonly cfg: CompiledConfig,
    private readonly listener: CompiledHttpListener,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    /** An upgrade the listener allows (upgrade.ts): offered upstream, a 101 becomes a tunnel. */
    private readonly upgrade: UpgradeHook | null = null,
  ) {}

  run(): void {
    // 'close' comes once: on() spares once()'s wrapper objects on every request
    this.res.on('close', () => {
      this.env.onClosed();
      this.onDownstreamClose();
    });
    const v = requestView(this.req, this.listener.port, this.cfg.pathNormalization);
    if (isRejection(v)) return this.rejectHead(v);
    // gateway TLS: the scheme is the connection's, and the Host must be one the SNI's server has
    const served = tlsServerOf(connectionOf(this.req));
    this.grpc = grpcReply(this.req.headers);
    this.web = grpcWebMode(this.req.headers);
    if (this.web !== null) this.grpc = { status: '' };
    const tlsServer = served?.server;
    if (served !== undefined) v.scheme = 'https';
    this.peer = served?.peer ?? null;
    this.clientCert = served?.xfcc ?? null;
    this.view = v;
    if (
      served !== undefined &&
      tlsServer !== undefined &&
      !hostAllowed(served.servers, tlsServer, v.authority)
    )
      return this.localReply(
        404,
        Flags.NoRoute,
        `authority "${v.authority}" is not a host of the TLS server the SNI selected (${tlsServer.name})`,
      );
    this.sanitizeDownstreamHeaders();
    if (
      this.cfg.jwt !== null &&
      !jwtHook(this, this.cfg.jwt, this.req.headers, v, this.env.metrics, this.listener.name)
    )
      return;
    // AuthorizationPolicy before routing (CUSTOM → DENY → ALLOW); sync unless ext-authz is called
    const az = this.cfg.authz;
    if (guardsListener(az, this.listener.name))
      return authzGate(az, this.req, v, this.auth, (o) => this.afterAuthz(o), this.peer);
    this.limitThenRoute();
  }

  /**
   * What the proxy vouches for is settled before any filter reads the headers, as in Envoy's
   * connection manager: the fields the client's Connection header nominates are dropped (a
   * policy decides on what the app gets; the proxy's own headers added later cannot be named
   * away), on an edge listener the client's x-envoy-* controls and its own
   * x-forwarded-client-cert are dropped and the gateway's XFCC set, so RequestAuthentication,
   * AuthorizationPolicy (`request.headers[…]`), ext-authz and the app all see the same headers.
   */
  private sanitizeDownstreamHeaders(): void {
    const h = this.req.headers;
    dropNominatedFields(h);
    if (this.listener.edge) sanitizeExternal(h);
    if (this.clientCert !== null) h['x-forwarded-client-cert'] = this.clientCert;
  }

  /** Listener rate limits, after authn and authz (a refused request spends no token): 429 past them. */
  private limitThenRoute(): void {
    const rl = this.env.rateLimiter;
    if (rl === undefined || rl === null || !rl.active) return this.routeRequest();
    const r = gatewayRateLimitRequest(
      this.req,
      this.view,
      this.listener.port,
      this.auth?.claims ?? null,
      this.peer,
    );
    checkRateLimit(rl, r, (v) => {
      if (this.done) return; // the client left while weftd was asked
      this.rateLimit = v;
      if (v === null || v.allowed) return this.routeRequest();
      const { detail, body, headers } = limitedReply(v);
      this.localReply(429, Flags.RateLimited, detail, { body, headers });
    });
  }

  /** The AuthorizationPolicy outcome: a denial answers here, an allow goes on to routing. */
  private afterAuthz(o: AuthzOutcome): void {
    this.authz = o.decision;
    countAuthz(this.env.metrics, o);
    if (this.done) return;
    if (o.denial === undefined) return this.limitThenRoute();
    const d = o.denial;
    this.flags = addFlag(this.flags, d.flag === 'RBAC' ? Flags.RbacDenied : Flags.ExtAuthzDenied);
    this.status = d.status;
    if (this.grpc !== null) return this.grpcLocalReply(d.status, d.body.toString().trim());
    if (!this.res.headersSent && !this.res.destroyed) {
      const h: Record<string, string> = {
        ...d.headers,
        'content-length': String(d.body.length),
        'x-weft-response-flags': this.flags,
      };
      this.explainHeader(h);
      this.respBytes = d.body.length;
      this.res.writeHead(d.status, h);
      this.res.end(d.body);
    }
    this.finish();
  }

  private routeRequest(): void {
    const v = this.view;
    const vh = (this.vhost = findVHost(this.listener, v.authority));
    const sel = vh === null ? null : selectRoute(vh, v);
    const unresolved = vh === null ? unresolvedDetail(connectionOf(this.req), v.authority) : null;
    if (unresolved !== null) return this.localReply(503, Flags.NoCluster, unresolved);
    if (sel === null)
      return this.localReply(
        404,
        Flags.NoRoute,
        vh === null ? `no virtual host for authority "${v.authority}"` : `no rule of ${vh.name} matched`,
      );
    const route = (this.route = sel.route);
    this.block = sel.block;
    if (route.type === ActionType.Direct) return this.directResponse(route);
    if (route.type === ActionType.Redirect) return this.redirect(route);
    const fault = route.fault;
    if (fault !== null) {
      if (fault.delayMs > 0 && this.env.rand() < fault.delayFraction) {
        this.flags = addFlag(this.flags, Flags.FaultDelay);
        setTimeout(() => this.afterDelay(), fault.delayMs);
        return;
      }
      return this.afterDelay();
    }
    this.forward();
  }

  /** A request head routing cannot use: 400 DPE (connection closed after it) or 404 NR. */
  private rejectHead(r: HeadRejection): void {
    if (r.flag === Flags.DownstreamProtocolError) {
      // the rest of what this client sent cannot be trusted to be framed as it meant
      this.res.shouldKeepAlive = false;
      this.env.metrics.inc('weft_proxy_downstream_protocol_errors_total');
    }
    this.localReply(r.status, r.flag, r.detail);
  }

  private afterDelay(): void {
    if (this.done) return;
    const fault = this.route!.fault!;
    if ((fault.abortStatus > 0 || fault.abortGrpc !== undefined) && this.env.rand() < fault.abortFraction) {
      // a gRPC status abort answers every client with that status (HTTP 200), as Envoy does
      if (fault.abortGrpc !== undefined) (this.grpc ??= { status: '' }).forced = String(fault.abortGrpc);
      return this.localReply(fault.abortStatus || 200, Flags.FaultAbort, 'fault injection abort');
    }
    this.forward();
  }

  private forward(): void {
    const route = this.route!;
    const dest = (this.dest = pickDest(route, route.dests.length === 1 ? 0 : this.env.rand()));
    const cluster = dest.cluster !== undefined ? dest.cluster : resolveCluster(dest);
    if (cluster === null)
      return this.localReply(503, Flags.NoCluster, `cluster ${dest.clusterName} is not defined`);
    if (cluster.overflow())
      return this.localReply(
        503,
        Flags.Overflow,
        `cluster ${dest.clusterName}: ${cluster.stats.rqActive} requests active, limits ${cluster.limits.maxConnections} connections + ${cluster.limits.maxPending} pending`,
        undefined,
        this.cfg.debugHeaders ? OVERLOADED : undefined,
      );
    cluster.stats.rqActive++;
    cluster.stats.rqTotal++;
    this.holdsSlot = true;
    this.chooseGrpcWebBridge(cluster.speaksH2(isH2(this.req)));
    this.prepareRequest(route, dest);
    if (this.upgrade !== null) this.upgrade.offer(this.out!);
    const timeoutMs = grpcTimeoutMs(this.grpc, this.req.headers, route.timeoutMs);
    if (timeoutMs > 0) this.routeTimer = setTimeout(() => this.onRouteTimeout(), timeoutMs);
    this.readBodyThen(() => {
      this.requestComplete = performance.now();
      // a mirror cannot take part in a tunnel: upgrade handshakes are not shadowed
      if (route.mirrors !== null && this.upgrade === null) this.mirror(route);
      this.attempt();
    });
  }

  /**
   * gRPC-Web is bridged towards an HTTP/2 cluster (a gRPC server: Istio's `grpc-web` ports are
   * HTTP/2 upstream). Towards an HTTP/1.1 cluster it passes unchanged (an app that serves
   * gRPC-Web itself), and is then plain HTTP in the metrics: its status is in the body.
   */
  private chooseGrpcWebBridge(http2Cluster: boolean): void {
    if (this.web === null) return;
    if (http2Cluster && this.upgrade === null) this.webBridged = true;
    else this.grpc = null;
  }

  private prepareRequest(route: CompiledRoute, dest: CompiledDest): void {
    const h = (this.out = forwardableHeaders(this.req.headers));
    if (this.webBridged) toGrpcRequestHeaders(h);
    if (this.listener.edge) sanitizeExternal(h);
    if (this.clientCert !== null) h['x-forwarded-client-cert'] = this.clientCert;
    h.host = route.rewriteAuthority ?? this.view.authority;
    h['x-forwarded-proto'] = this.view.scheme; // the real scheme (Envoy sets it from the connection)
    this.requestId = propagate(h);
    if (route.reqOps !== null) route.reqOps(h);
    if (dest.reqOps !== null) dest.reqOps(h);
    this.path = this.rewritePath(route);
  }

  /**
   * Rewrites act on the normalized path (the one that matched); the query is kept as received.
   * Like Envoy, the pre-rewrite target goes upstream in `x-envoy-original-path` (a debug header:
   * off with proxyHeaders.envoyDebugHeaders.disabled, and then a client's own value passes).
   */
  private rewritePath(route: CompiledRoute): string {
    const v = this.view;
    if (route.rewriteUri === null && route.rewriteRegex === null) return v.target;
    let p = v.path;
    if (route.rewriteRegex !== null) p = route.rewriteRegex(p);
    else {
      const plen = this.block >= 0 ? route.prefixLens[this.block]! : -1;
      // a prefix match replaces only the matched prefix; exact/regex/no match replace the whole path
      p = plen >= 0 ? route.rewriteUri! + p.slice(plen) : route.rewriteUri!;
      if (p === '') p = '/';
    }
    if (this.cfg.debugHeaders) this.out!['x-envoy-original-path'] = v.target;
    return p + v.target.slice(v.path.length);
  }

  /** Small bodies are buffered (retriable); big or chunked ones stream and disable retries. */
  private readBodyThen(next: () => void): void {
    if (this.webBridged) return this.readGrpcWebBody(next);
    const h = this.req.headers;
    const cl = h['content-length'];
    if (cl === undefined && h['transfer-encoding'] === undefined) {
      if (hasUndeclaredBody(this.req)) {
        this.tee = new ReplayableBody(this.req, MAX_REPLAYABLE_BODY);
        return next();
      }
      this.req.resume();
      return next();
    }
    const len = cl === undefined ? -1 : Number(cl);
    if (len === 0) return next();
    if (len < 0 || len > MAX_REPLAYABLE_BODY) {
      this.body = this.req;
      this.replayable = false;
      this.reqBytes = len > 0 ? len : 0;
      return next();
    }
    const chunks: Buffer[] = [];
    this.req.on('data', (c: Buffer) => chunks.push(c));
    this.req.once('end', () => {
      this.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.reqBytes = this.body.length;
      if (!this.done) next();
    });
  }

  /**
   * A gRPC-Web request body is one message (no client streaming): read whole, bounded, and
   * base64-decoded for `-text` as it streams in (GrpcWebTextDecoder: linear, the bound applies
   * to the decoded bytes). Too big: RESOURCE_EXHAUSTED; bad base64: 400, so INTERNAL (as
   * Envoy's "Bad gRPC-web request, invalid base64 data."), refused at the first bad byte.
   */
  private readGrpcWebBody(next: () => void): void {
    const chunks: Buffer[] = [];
    const text = this.web!.textRequest ? new GrpcWebTextDecoder() : null;
    let size = 0;
    const stopReading = (): void => {
      this.req.removeListener('data', onData);
      this.req.removeListener('end', onEnd);
      chunks.length = 0;
      this.res.shouldKeepAlive = false; // the rest of the body is not read for a next request
      this.req.resume();
    };
    const onData = (c: Buffer): void => {
      this.reqBytes += c.length;
      if (text !== null && !text.push(c)) {
        stopReading();
        return this.refuseBase64();
      }
      size = text !== null ? text.size : size + c.length;
      if (size > MAX_GRPC_WEB_REQUEST_BYTES) {
        stopReading();
        this.grpc!.forced = '8'; // RESOURCE_EXHAUSTED, as a gRPC server refuses a message too large
        return this.localReply(
          413,
          Flags.DownstreamProtocolError,
          `gRPC-Web request body over ${MAX_GRPC_WEB_REQUEST_BYTES} bytes`,
        );
      }
      if (text === null) chunks.push(c);
    };
    const onEnd = (): void => {
      const body = text !== null ? text.end() : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (body === null) return this.refuseBase64();
      this.body = body.length === 0 ? null : body;
      if (!this.done) next();
    };
    this.req.on('data', onData);
    this.req.once('end', onEnd);
  }

  private refuseBase64(): void {
    this.localReply(400, Flags.DownstreamProtocolError, 'Bad gRPC-web request, invalid base64 data.');
  }

  private attempt(): void {
    const dest = this.dest!;
    const cluster = dest.cluster!;
    const ep = cluster.pick(
      {
        view: this.view,
        sourceIp: connectionOf(this.req).remoteAddress ?? '',
        originalDst:
          cluster.def.type === 'ORIGINAL_DST'
            ? requestOriginalDst(
                connectionOf(this.req),
                this.view.authority,
                cluster.def.port,
                !this.listener.edge,
              )
            : null,
      },
      this.lastEndpoint,
    );
    if (ep === null) return this.localReply(503, Flags.NoHealthyUpstream, cluster.noEndpointReason());
    this.attempts++;
    this.lastEndpoint = ep;
    const a = new Attempt(this, this.attempts, ep);
    this.current = a;
    this.discard = false;
    ep.active++;
    const perTry = this.route!.retry.perTryTimeoutMs;
    if (perTry > 0) this.tryTimer = setTimeout(() => this.onTryTimeout(a), perTry);
    // each attempt says which it is (Envoy's include_request_attempt_count, on in Istio)
    if (this.cfg.attemptCount) this.out!['x-envoy-attempt-count'] = String(this.attempts);
    const pool = this.upgrade === null ? cluster.poolFor(ep, isH2(this.req)) : null;
    if (pool instanceof H2Pool) {
      // an HTTP/2 stream takes a replayable body as it is (written directly, no PassThrough)
      const body = this.tee ?? this.body;
      return pool.dispatch({ path: this.path, method: this.view.method, headers: this.out!, body }, a);
    }
    const body = this.tee !== null ? this.tee.forAttempt() : this.body;
    const spec = { path: this.path, method: this.view.method, headers: this.out!, body };
    if (pool !== null) pool.dispatch(spec, a);
    else this.upgrade!.dispatch(ep, cluster.limits.connectTimeoutMs, spec, a, cluster.connectorFor(ep));
  }

  /** Ends the current attempt's bookkeeping (endpoint in-flight count, per-try timer). */
  private endAttempt(): void {
    const a = this.current;
    if (a !== null && a.endpoint.active > 0) a.endpoint.active--;
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
  }

  onResponseStart(controller: Controller, status: number, headers: UpstreamHeaders): void {
    const dest = this.dest!;
    dest.cluster!.record(this.current!.endpoint, status);
    if (status === 101 && this.upgrade !== null) return this.switchProtocols(controller, headers);
    const grpc = headers['grpc-status'];
    const outcome: AttemptOutcome = {
      kind: 'response',
      status,
      grpcStatus: typeof grpc === 'string' ? grpc : undefined,
    } as AttemptOutcome;
    if (this.canRetry(outcome)) {
      // drain this response (keeps the pooled connection) and retry when it ends
      this.discard = true;
      this.lastOutcome = outcome;
      return;
    }
    if (this.lastOutcome !== null && isRetriable(this.route!.retry, outcome))
      this.flags = addFlag(this.flags, Flags.RetryLimitExceeded);
    this.status = status;
    const out = this.responseHeaders(headers);
    if (this.webBridged && this.toGrpcWebHead(status, headers, out)) return;
    if (this.grpc !== null && typeof grpc === 'string') {
      this.grpc.status = grpc;
      // grpc-status in the head: trailers-only, whose head must end the stream (endWithHead)
      this.heldHead = { status, headers: out };
      return;
    }
    try {
      this.res.writeHead(status, out);
    } catch (err) {
      controller.abort(err as Error);
    }
  }

  /**
   * A bridged response head for the gRPC-Web client (in place): its content type, no length
   * (the trailers join the body). An upstream that did not answer gRPC gets Envoy's treatment:
   * the status mapped into `grpc-status`, the body dropped, the head held until the end (true).
   */
  private toGrpcWebHead(
    status: number,
    upstream: UpstreamHeaders,
    out: Record<string, string | string[]>,
  ): boolean {
    const web = this.web!;
    delete out['content-length'];
    out['content-type'] = grpcWebResponseType(web);
    if (web.textResponse) this.webText = new TextFrameEncoder();
    if (isGrpcResponse(status, upstream) || typeof upstream['grpc-status'] === 'string') return false;
    this.webNotGrpc = true;
    this.grpc!.status = String(grpcStatusOfHttp(status));
    out['grpc-status'] = this.grpc!.status;
    out['grpc-message'] = encodeGrpcMessage(`upstream answered HTTP ${status}, not gRPC`);
    this.heldHead = { status, headers: out };
    return true;
  }

  /** The upstream's headers as the client gets them: hop-by-hop removed, header ops applied. */
  private responseHeaders(headers: UpstreamHeaders): Record<string, string | string[]> {
    const out = withoutHopByHop(headers);
    // Envoy's upstream service time: from the complete request to the upstream's response head
    if (this.cfg.debugHeaders)
      out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - this.requestComplete));
    if (this.route!.respOps !== null) this.route!.respOps(out);
    if (this.dest!.respOps !== null) this.dest!.respOps(out);
    if (this.rateLimit !== null) Object.assign(out, rateLimitHeaders(this.rateLimit));
    this.explainHeader(out);
    return out;
  }

  /**
   * The upstream accepted the upgrade: the connection is a tunnel until either side closes. The
   * route and per-try timeouts bound the handshake only; the tunnel is one request in the
   * metrics and the access log (status 101), recorded when it closes.
   */
  private switchProtocols(controller: Controller, headers: UpstreamHeaders): void {
    if (this.tryTimer !== null) clearTimeout(this.tryTimer);
    if (this.routeTimer !== null) clearTimeout(this.routeTimer);
    this.tryTimer = this.routeTimer = null;
    this.status = 101;
    try {
      this.upgrade!.tunnel(controller, this.responseHeaders(headers), (tally) => {
        this.reqBytes += tally.sent;
        this.respBytes += tally.received;
        this.endAttempt();
        this.finish();
      });
    } catch (err) {
      controller.abort(err as Error);
    }
  }

  onData(data: Buffer): void {
    if (this.discard || this.webNotGrpc) return;
    if (this.webText === null) return this.writeBody(data);
    const text = this.webText.push(data);
    if (text !== '') this.writeBody(Buffer.from(text, 'latin1'));
    if (this.webText.oversized) this.refuseOversizedFrame();
  }

  private writeBody(chunk: Buffer): void {
    if (this.heldHead !== null) this.releaseHead();
    this.respBytes += chunk.length;
    if (!this.res.write(chunk) && !this.awaitingDrain) {
      // back-pressure from a slow client: stop reading the upstream until the client drains
      // (once: chunks already on their way when it paused add no listener of their own)
      const c = this.current?.controller;
      if (c) {
        this.awaitingDrain = true;
        c.pause();
        this.res.once('drain', () => {
          this.awaitingDrain = false;
          c.resume();
        });
      }
    }
  }

  /**
   * A response frame over the gRPC-Web bound (TextFrameEncoder): the call ends here with
   * RESOURCE_EXHAUSTED in a trailers frame (the frames before it were delivered whole), and
   * the upstream stream is cancelled rather than read further.
   */
  private refuseOversizedFrame(): void {
    const a = this.current;
    this.endAttempt();
    this.current = null; // what the upstream still delivers is ignored
    this.grpc!.status = '8';
    this.flags = addFlag(this.flags, Flags.UpstreamProtocolError);
    const message = `gRPC-Web response frame over ${MAX_GRPC_WEB_REQUEST_BYTES} bytes`;
    const frame = trailersFrame({ 'grpc-status': '8', 'grpc-message': encodeGrpcMessage(message) });
    const out = Buffer.from(frame.toString('base64'), 'latin1');
    if (this.heldHead !== null) this.releaseHead();
    this.respBytes += out.length;
    this.res.end(out);
    this.finish();
    a?.controller?.abort(new Error(message));
  }

  /** The upstream's trailers (gRPC's status lives there): passed on, read for metrics. */
  onTrailers(trailers: UpstreamHeaders): void {
    if (this.discard || this.webNotGrpc) return;
    if (this.heldHead !== null) this.releaseHead();
    const grpc = trailers['grpc-status'];
    if (this.grpc !== null && typeof grpc === 'string') this.grpc.status = grpc;
    if (this.webBridged) {
      // gRPC-Web: the trailers are the body's last frame
      const frame = trailersFrame(forwardableTrailers(trailers));
      const out = this.webText !== null ? Buffer.from(frame.toString('base64'), 'latin1') : frame;
      this.respBytes += out.length;
      this.res.write(out);
      return;
    }
    try {
      this.res.addTrailers(forwardableTrailers(trailers));
    } catch {
      // a trailer this downstream cannot carry: the body still ends
    }
  }

  /** Writes a held head the usual way (a body or trailers followed it after all). */
  private releaseHead(): void {
    const h = this.heldHead!;
    this.heldHead = null;
    try {
      this.res.writeHead(h.status, h.headers);
    } catch (err) {
      this.current?.controller?.abort(err as Error);
    }
  }

  onEnd(): void {
    this.endAttempt();
    if (this.discard) return this.retryLater();
    const held = this.heldHead;
    if (held !== null) {
      this.heldHead = null;
      if (!endWithHead(this.res, held.status, held.headers)) {
        this.res.writeHead(held.status, held.headers);
        this.res.end();
      }
      return this.finish();
    }
    this.res.end();
    this.finish();
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    const cluster = this.dest!.cluster!;
    const ep = this.current!.endpoint;
    this.endAttempt();
    if (this.done) return;
    if (this.res.headersSent && !this.discard) {
      // the response already started: nothing to retry, cut the downstream connection
      this.flags = addFlag(this.flags, Flags.UpstreamReset);
      cluster.record(ep, 0);
      this.res.destroy();
      return this.finish();
    }
    if (code === 'ETIMEDOUT_STREAM') {
      cluster.record(ep, 0);
      return this.timeoutReply();
    }
    if (code === 'EINVALIDHEADER') return this.unsendableReply(err.message);
    const connectFailure = CONNECT_FAILURE_CODES[code] === true;
    if (connectFailure) cluster.stats.cxConnectFail++;
    cluster.record(ep, 0);
    const outcome: AttemptOutcome = connectFailure ? { kind: 'connect-failure' } : { kind: 'reset' };
    // a pooled keep-alive connection the upstream closed as we reused it, before any response
    // byte: the request may not have been processed; one free retry on a fresh connection
    const ue = err as Partial<UpstreamError>;
    if (
      ue.reused === true &&
      ue.beforeResponse === true &&
      !this.staleRetryUsed &&
      this.isReplayable() &&
      IDEMPOTENT[this.view.method] === true
    ) {
      this.staleRetryUsed = true;
      this.attempts--; // not counted against the route's retry policy
      return this.attempt();
    }
    if (this.canRetry(outcome)) {
      this.lastOutcome = outcome;
      return this.retryLater();
    }
    const protocol = code === 'EPROTO_UPSTREAM';
    const flag = connectFailure
      ? Flags.ConnectFailure
      : protocol
        ? Flags.UpstreamProtocolError
        : Flags.ConnectionTermination;
    this.flags = addFlag(this.flags, flag); // Envoy order: the cause, then URX
    if (this.lastOutcome !== null) this.flags = addFlag(this.flags, Flags.RetryLimitExceeded);
    this.localReply(
      protocol ? 502 : 503,
      flag,
      `${FLAG_TEXT[flag]!} (${protocol ? err.message : code || err.message}) from ${ep.key}`,
    );
  }

  /**
   * The upstream client refused to write the request (`unsendable()`: CR, LF, NUL or a character
   * above U+00FF in a header, a Host that is no authority, a method or target HTTP/1.1 cannot
   * carry; the HTTP/2 pool's `unsendableOverH2` adds connection-specific fields). No byte left the proxy
   * and every endpoint would be refused the same way, so this is not the endpoint's failure:
   * Envoy's upstream codec answers it locally (503, DPE,
   * `filter_removed_required_request_headers{...}`), with no retry and no outlier-detection
   * record. The reason names the header, never its value (which may be a credential).
   */
  private unsendableReply(reason: string): void {
    const refused = new WeftError('WEFT_PROXY_REQUEST_UNSENDABLE', reason).toString();
    this.details = `filter_removed_required_request_headers{${refused.replace(/\s+/g, '_')}}`;
    this.localReply(503, Flags.DownstreamProtocolError, refused);
  }

  private canRetry(o: AttemptOutcome): boolean {
    const r = this.route!.retry;
    if (this.attempts > r.attempts || !this.isReplayable() || !isRetriable(r, o)) return false;
    const cluster = this.dest!.cluster!;
    if (cluster.activeRetries >= cluster.limits.maxRetries) {
      cluster.stats.rqRetryOverflow++;
      return false;
    }
    return true;
  }

  private isReplayable(): boolean {
    return this.tee !== null ? this.tee.complete : this.replayable;
  }

  private retryLater(): void {
    const cluster = this.dest!.cluster!;
    cluster.stats.rqRetry++;
    cluster.activeRetries++;
    const wait = backoffMs(this.route!.retry, this.attempts, this.env.rand);
    setTimeout(() => {
      cluster.activeRetries--;
      if (!this.done) this.attempt();
    }, wait);
  }

  private onTryTimeout(a: Attempt): void {
    this.tryTimer = null;
    if (this.current !== a || this.done) return;
    const cluster = this.dest!.cluster!;
    cluster.record(a.endpoint, 0);
    if (a.endpoint.active > 0) a.endpoint.active--;
    this.current = null;
    a.controller?.abort(new Error('per-try timeout'));
    if (!this.res.headersSent && this.canRetry({ kind: 'per-try-timeout' })) {
      this.lastOutcome = { kind: 'per-try-timeout' };
      return this.retryLater();
    }
    this.timeoutReply();
  }

  private onRouteTimeout(): void {
    this.routeTimer = null;
    if (this.done) return;
    const a = this.current;
    this.endAttempt();
    this.current = null;
    a?.controller?.abort(new Error('route timeout'));
    this.timeoutReply();
  }

  private timeoutReply(): void {
    if (this.res.headersSent) {
      this.flags = addFlag(this.flags, Flags.UpstreamTimeout);
      this.res.destroy();
      return this.finish();
    }
    this.localReply(504, Flags.UpstreamTimeout, FLAG_TEXT.UT!);
  }

  private onDownstreamClose(): void {
    if (this.done) return;
    if (this.res.writableFinished) return;
    this.flags = addFlag(this.flags, Flags.DownstreamDisconnect);
    const a = this.current;
    this.endAttempt();
    this.current = null;
    // propagate the client's disconnect, or the pooled connection stays busy with a dead request
    a?.controller?.abort(new Error('downstream disconnected'));
    this.finish();
  }

  private mirror(route: CompiledRoute): void {
    for (const m of route.mirrors!) {
      if (m.fraction < 1 && this.env.rand() >= m.fraction) continue;
      const cl = resolveCluster(m.dest);
      const ep = cl?.pick(null, null);
      if (!cl || !ep) continue;
      const h = { ...this.out };
      if (m.shadowSuffix) h.host = shadowHost(String(h.host ?? ''));
      cl.poolFor(ep, isH2(this.req)).dispatch(
        { path: this.path, method: this.view.method, headers: h, body: this.replayable ? this.body : null },
        DISCARD,
      );
    }
  }

  private directResponse(route: CompiledRoute): void {
    this.status = route.directStatus;
    const body = route.directBody;
    const h: Record<string, string | string[]> = { 'content-length': String(body?.length ?? 0) };
    if (body !== null) h['content-type'] = 'text/plain';
    if (route.respOps !== null) route.respOps(h);
    this.explainHeader(h);
    this.respBytes = body?.length ?? 0;
    this.res.writeHead(route.directStatus, h);
    this.res.end(body);
    this.finish();
  }

  private redirect(route: CompiledRoute): void {
    const r = route.redirect!;
    const v = this.view;
    const scheme = r.scheme ?? v.scheme;
    const colon = v.authority.lastIndexOf(':');
    let host = r.authority ?? (colon > 0 ? v.authority.slice(0, colon) : v.authority);
    let port: number | undefined = r.port;
    if (port === undefined && r.derivePort === 'FROM_REQUEST_PORT') port = v.port;
    else if (port === undefined && r.authority === undefined && r.derivePort === undefined && colon > 0)
      port = v.port;
    if (port !== undefined && !((scheme === 'http' && port === 80) || (scheme === 'https' && port === 443)))
      host += `:${port}`;
    const path = r.uri ?? v.path;
    const location = `${scheme}://${host}${path}${v.query === '' ? '' : `?${v.query}`}`;
    if (!sendableFieldValue(location)) return this.unsendableRedirect();
    this.status = r.code ?? 301;
    const h: Record<string, string | string[]> = { location, 'content-length': '0' };
    this.explainHeader(h);
    this.res.writeHead(this.status, h);
    this.res.end();
    this.finish();
  }

  /**
   * A redirect whose Location node would refuse to write (CR, LF, NUL or a character above U+00FF
   * in `redirect.authority` / `redirect.uri`, which Istio does not check; Envoy refuses such a
   * route table): writing it would throw out of the request handler, taking the proxy down with
   * every request that matches. A local 503 DPE instead; the body names the field, not the value.
   */
  private unsendableRedirect(): void {
    const refused = new WeftError(
      'WEFT_PROXY_REDIRECT_UNSENDABLE',
      "the route's redirect makes a Location header HTTP cannot carry",
    ).toString();
    this.details = `redirect_location_unsendable{${refused.replace(/\s+/g, '_')}}`;
    this.localReply(503, Flags.DownstreamProtocolError, refused);
  }

  /**
   * A response the proxy makes itself: status, flag, and a body saying what happened. `custom`:
   * Envoy's own body and headers instead (a JWT refusal); `extra`: headers added last
   * (`x-envoy-overloaded`).
   */
  localReply(
    status: number,
    flag: Flag,
    detail: string,
    custom?: { body: string; headers: Record<string, string> },
    extra?: Readonly<Record<string, string>>,
  ): void {
    if (this.done) return;
    this.flags = addFlag(this.flags, flag);
    this.status = status;
    const text = custom?.body ?? `${FLAG_TEXT[flag] ?? 'local reply'}: ${detail} [flag ${this.flags}]\n`;
    // a gRPC client: a gRPC error, with a refusal's own headers (rate-limit budget, JWT challenge)
    if (this.grpc !== null)
      return this.grpcLocalReply(status, text.trimEnd(), { ...custom?.headers, ...extra });
    if (!this.res.headersSent && !this.res.destroyed) {
      const h: Record<string, string> = {
        ...custom?.headers,
        'content-type': 'text/plain; charset=utf-8',
        'content-length': String(Buffer.byteLength(text)),
        'x-weft-response-flags': this.flags,
        ...extra,
      };
      this.explainHeader(h);
      this.respBytes = Buffer.byteLength(text);
      try {
        this.res.writeHead(status, h);
        this.res.end(text);
      } catch {
        // the downstream refused this head (a field its protocol cannot carry): the last answer
        // this request can get is a cut connection, not a throw that takes the whole proxy down
        this.flags = addFlag(this.flags, Flags.DownstreamProtocolError);
        this.res.destroy();
      }
    }
    this.finish();
  }

  /**
   * A local reply to a gRPC client is a gRPC error (Envoy's): HTTP 200, no body, and the status
   * in a trailers-only response: the HTTP status mapped (503 → 14 UNAVAILABLE...) unless a
   * fault named the gRPC status itself. The metric and log keep response_code 200, as Envoy's.
   */
  private grpcLocalReply(status: number, text: string, extra?: Readonly<Record<string, string>>): void {
    const g = this.grpc!;
    g.status = g.forced ?? String(grpcStatusOfHttp(status));
    this.status = 200;
    const h: Record<string, string | string[]> = { 'x-weft-response-flags': this.flags, ...extra };
    this.explainHeader(h);
    sendGrpcError(this.res, g.status, text, h, this.web !== null ? grpcWebResponseType(this.web) : undefined);
    this.finish();
  }

  private explainHeader(h: Record<string, string | string[]>): void {
    if (this.cfg.explainHeader && this.req.headers['x-weft-explain'] !== undefined) {
      h['x-weft-explain'] = JSON.stringify(buildExplain(this));
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.tryTimer !== null) clearTimeout(this.tryTimer);
    if (this.routeTimer !== null) clearTimeout(this.routeTimer);
    const cluster = this.dest?.cluster;
    if (this.holdsSlot && cluster) cluster.stats.rqActive--;
    const ms = performance.now() - this.start;
    const group =
      this.dest === null
        ? this.cfg.unknownMetrics
        : (this.dest.metrics ?? metricsOf(this.dest, this.env.metrics));
    if (this.tee !== null) this.reqBytes = this.tee.bytes;
    const grpc = this.grpc === null ? undefined : grpcStatusLabel(this.grpc.status);
    group.record(this.status, this.flags, ms, this.reqBytes, this.respBytes, grpc);
    if (this.env.accessLog !== null && this.cfg.accessLog) this.env.accessLog.write(this.logEntry(ms));
  }

  private logEntry(ms: number): Record<string, unknown> {
    const h = this.req.headers;
    return {
      start_time: new Date(Date.now() - ms).toISOString(),
      method: this.req.method,
      // Istio's %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%: the normalized target before any rewrite
      path: this.view?.target ?? this.req.url,
      protocol: isH2(this.req) ? 'HTTP/2' : `HTTP/${this.req.httpVersion}`, // Envoy's %PROTOCOL%
      response_code: this.status,
      response_flags: this.flags,
      bytes_received: this.reqBytes,
      bytes_sent: this.respBytes,
      duration: Math.round(ms),
      authority: h.host,
      user_agent: h['user-agent'],
      request_id: this.requestId || h['x-request-id'],
      upstream_host: this.lastEndpoint?.key,
      upstream_cluster: this.dest?.clusterName,
      route_name: this.route?.name,
      ...(this.authz !== null ? authzLogFields(this.authz) : {}),
      ...(this.rateLimit !== null ? rateLimitLogFields(this.rateLimit) : {}),
      ...(this.details !== undefined ? { response_code_details: this.details } : {}),
      ...(this.grpc !== null ? { grpc_status: grpcStatusLabel(this.grpc.status) } : {}),
      ...(this.auth !== null ? { request_principal: this.auth.principal } : {}),
      // Istio's %DOWNSTREAM_PEER_URI_SAN% (the sidecar inbound's source_principal)
      ...(this.peer !== null ? { source_principal: this.peer } : {}),
      explain: buildExplain(this),
    };
  }

  /** The endpoint of the last attempt, for Explain. */
  get endpointKey(): string | undefined {
    return this.lastEndpoint?.key;
  }
}

const OVERLOADED: Readonly<Record<string, string>> = { 'x-envoy-overloaded': 'true' };

/** Envoy's shadow Host: `-shadow` after the host name, before any port (`a:80` → `a-shadow:80`). */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  // an IPv6 literal's colons are inside brackets: only a colon after `]` starts a port
  const hasPort = colon > 0 && colon > host.lastIndexOf(']');
  return hasPort ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
}

const DISCARD: ResponseHandler = {
  onRequestStart() {},
  onResponseStart() {},
  onResponseData() {},
  onResponseEnd() {},
  onResponseError() {},
};
