/**
 * The sidecar's inbound listener (15006, where iptables delivers connections to the pod): mesh
 * mTLS terminated per PeerAuthentication, then HTTP parsed or TCP piped to the app.
 *
 * Per connection, decided once:
 *  1. the workload port from the original destination (unknown: the workload's mode applies and
 *     HTTP goes to the Host header's port) → the port's plan (mode, policy, declared protocol);
 *  2. DISABLE: never TLS, straight to step 4. Otherwise the first bytes (tls_inspector):
 *     - a ClientHello offering Istio's ALPN is mesh mTLS: it needs an SNI and this workload's
 *       certificate; the handshake requires a client certificate chained to the mesh roots
 *       (the IdentitySource's context), whose single URI SAN is the peer's SPIFFE ID;
 *     - anything else under STRICT is refused: closed, counted in
 *       `weft_proxy_inbound_refused_total{reason}`, logged with the source address and the
 *       deciding policy ("plaintext from 10.244.0.7 refused by PeerAuthentication demo/strict");
 *     - under PERMISSIVE, plaintext goes on, and TLS without Istio's ALPN is the app's own TLS
 *       and is piped to it untouched (Istio's behaviour);
 *  3. (mTLS) the peer identity and the `x-forwarded-client-cert` value, once;
 *  4. HTTP (declared, hinted by ALPN, or sniffed) → proxy/inbound/http.ts; anything else → a
 *     TCP pipe to the app with istio_tcp_* metrics. Both connect from 127.0.0.6.
 *
 * A config change that makes a port STRICT closes the plaintext connections open on it.
 * Nothing a client sends can throw out of here: every socket has an error handler and every
 * refusal path destroys the socket.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../pkg/log/index.js';
import { errorMessage } from '../../pkg/errors/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import type { IdentitySource } from '../identity/types.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { AccessLog } from '../telemetry/accesslog.js';
import { originalDst, type OriginalDst } from '../native/original_dst.js';
import { INBOUND_PASSTHROUGH_SOURCE } from '../init/rules.js';
import { DETECTION_TIMEOUT_METRIC, readHead } from '../sidecar/capture.js';
import { splice } from '../tcp.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../upstream/cluster.js';
import { inspectClientHello, type HelloVerdict } from './clienthello.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import type { GlobalBackend } from '../ratelimit/global.js';
import { connectionFields, InboundHttp, type InboundConnection, type InboundPolicy } from './http.js';
import { compileAuthz, tcpBlock } from '../authz/engine.js';
import { authorizeConnection, connectionAttributes, countAuthz, type AuthzOutcome } from '../authz/gate.js';
import { compileJwt } from '../authn/jwt.js';
import { resolvePathNormalization } from '../router/path.js';
import { MESH_ALPN, MESH_HTTP1_ALPN, peerIdentity } from './peer.js';
import { InboundPlan, type PortPlan } from './plan.js';
import { decide, refusalMessage, type Arrival, type RefusalReason } from './decide.js';

export type { RefusalReason };

export const REFUSED_METRIC = 'weft_proxy_inbound_refused_total';
/** A mesh client has this long to send its ClientHello and finish the handshake (Envoy: 15 s listener filter timeout). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Refusals kept for `describe()` (admin, explain). */
const RECENT_REFUSALS = 32;
/** Refusal warnings per LOG_WINDOW_MS; the rest are counted and summarised (a flood of plaintext must not flood the log). */
const LOG_BURST = 20;
const LOG_WINDOW_MS = 10_000;

export interface Refusal {
  at: string;
  reason: RefusalReason;
  from: string;
  port: number | null;
  mode: string;
  policy: string;
  message: string;
}

export interface InboundOptions {
  log: Logger;
  metrics: MetricsRegistry;
  /** weftd's global rate-limit check (the sidecar agent sets it); absent: global limits fail per their mode. */
  globalRateLimit?: GlobalBackend;
  accessLog: AccessLog | null;
  /** Where the app listens (the pod IP); connections to it leave from 127.0.0.6 when IPv4. */
  appHost: string;
  identity: IdentitySource | null;
  /** PERMISSIVE: how long to wait for a client's first bytes, and for an HTTP request head. */
  sniffTimeoutMs: number;
  handshakeTimeoutMs?: number;
  /** The capture ports: a connection "originally" to one of them has no useful destination. */
  capturePorts: () => number[];
  dst?: (s: net.Socket) => OriginalDst | null;
}

interface Accepted {
  plan: PortPlan;
  port: number | null;
  remote: string;
  remoteIp: string;
  sni: string | null;
  alpn: string[];
}

/** Reads until the ClientHello inspector can answer, the client stops, or `timeoutMs` passes. */
export function readFirstBytes(
  socket: net.Socket,
  timeoutMs: number,
): Promise<{ head: Buffer; verdict: HelloVerdict; ended: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let need = 1;
    let last: HelloVerdict = { kind: 'more', need: 1 };
    const head = (): Buffer => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    const done = (ended: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve({ head: head(), verdict: last, ended });
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      // a client trickling bytes costs one inspection per record, not one per byte
      if (size < need) return;
      const all = head();
      chunks.length = 0;
      chunks.push(all);
      last = inspectClientHello(all);
      if (last.kind === 'more') need = last.need;
      else done(false);
    };
    const onEnd = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/** What the first bytes were, for decide(). */
function arrivalOf(head: Buffer, verdict: HelloVerdict, ended: boolean, timeoutMs: number): Arrival {
  if (head.length === 0 && ended) return { kind: 'empty' };
  switch (verdict.kind) {
    case 'hello':
      return {
        kind: 'tls',
        meshAlpn: verdict.alpn.some((p) => MESH_ALPN.includes(p)),
        sni: verdict.sni !== null,
        alpn: verdict.alpn,
      };
    case 'malformed':
      return { kind: 'malformed', reason: verdict.reason };
    case 'plaintext':
      return { kind: 'plaintext', detail: 'not TLS' };
    default:
      // no decision in time: a server-first protocol, a silent client, a stalled ClientHello
      return {
        kind: 'plaintext',
        detail: head.length === 0 ? `sent nothing within ${timeoutMs} ms` : 'an incomplete ClientHello',
      };
  }
}

export class InboundListener {
  readonly http: InboundHttp;
  readonly recent: Refusal[] = [];
  private plan: InboundPlan;
  private accessLogOn = false;
  private policy: InboundPolicy = {
    pathNormalization: resolvePathNormalization(undefined),
    authz: null,
    authzTcp: null,
    jwt: null,
    rateLimit: null,
  };
  /** Kept across configs: a push that does not change a limit keeps its buckets. */
  private readonly rateLimiter: RateLimiter;
  private readonly tlsServer: tls.Server;
  /** Raw sockets handed to the TLS server, until their handshake ends either way. */
  private readonly handshaking = new Map<net.Socket, Accepted>();
  /** Plaintext connections by port, closed when their port becomes STRICT. */
  private readonly plaintext = new Map<net.Socket, Accepted>();
  /** Open TCP pipes and their peer: checked again when the policies change. */
  private readonly tcpPipes = new Map<net.Socket, { a: Accepted; peer: string | null }>();
  private logWindow = { start: 0, logged: 0, suppressed: 0 };
  private readonly sourceAddress: string | undefined;

  constructor(private readonly opts: InboundOptions) {
    this.plan = new InboundPlan('', undefined, emptyConfig(), opts.metrics);
    this.rateLimiter = new RateLimiter(opts.metrics, {
      log: opts.log,
      ...(opts.globalRateLimit ? { global: opts.globalRateLimit } : {}),
    });
    this.sourceAddress = net.isIPv4(opts.appHost) ? INBOUND_PASSTHROUGH_SOURCE : undefined;
    this.http = new InboundHttp({
      log: opts.log,
      metrics: opts.metrics,
      accessLog: opts.accessLog,
      accessLogOn: () => this.accessLogOn,
      policy: () => this.policy,
      appHost: opts.appHost,
      sourceAddress: this.sourceAddress,
    });
    this.tlsServer = tls.createServer({
      // a mesh peer's FIN (its client half-closed) is passed on to the app, not taken for a close
      allowHalfOpen: true,
      requestCert: true,
      // verified below, so a refusal is counted with its reason (rejectUnauthorized closes silently)
      rejectUnauthorized: false,
      ALPNProtocols: [...MESH_ALPN],
      handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      minVersion: 'TLSv1.2',
      // the workload's current context (key, chain, mesh roots), built by the identity once per
      // rotation; mesh clients always send an SNI (checked before the handshake)
      SNICallback: (_name, cb) => {
        const ctx = this.opts.identity?.secureContext() ?? null;
        if (ctx === null) cb(new Error('no workload certificate'));
        else cb(null, ctx);
      },
    });
    this.tlsServer.on('secureConnection', (s: tls.TLSSocket) => this.onSecure(s));
    this.tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, s: tls.TLSSocket) =>
      this.onTlsError(err, s),
    );
  }

  /**
   * A new config: its inbound block, telemetry and policies, compiled once. `compiled`: what the
   * proxy already compiled of the same config (its AuthorizationPolicies), so they are not
   * compiled twice; without it (a listener on its own) they are compiled here.
   */
  apply(cfg: ProxyConfig, compiled?: Omit<InboundPolicy, 'authzTcp' | 'rateLimit'>): void {
    this.rateLimiter.update(cfg.rateLimits);
    this.policy = {
      ...(compiled ?? {
        pathNormalization: resolvePathNormalization(cfg.pathNormalization),
        authz: cfg.authz === undefined ? null : compileAuthz(cfg.authz),
        jwt: cfg.jwt !== undefined && cfg.jwt.providers.length > 0 ? compileJwt(cfg.jwt) : null,
      }),
      authzTcp: cfg.authz === undefined ? null : compileAuthz(tcpBlock(cfg.authz)),
      rateLimit: this.rateLimiter.active ? this.rateLimiter : null,
    };
    this.plan = new InboundPlan(cfg.version, cfg.inbound, cfg, this.opts.metrics);
    this.accessLogOn = cfg.telemetry?.accessLog === true;
    for (const [sock, a] of this.plaintext) {
      const now = this.plan.forPort(a.port);
      if (now.mode !== 'STRICT') continue;
      this.opts.log.warn('Closed a plaintext connection: its port is STRICT now', {
        from: a.remote,
        port: a.port,
        policy: now.policy,
      });
      this.opts.metrics.incLabelled(REFUSED_METRIC, { reason: 'plaintext' });
      sock.destroy();
    }
    // a policy that now denies an open TCP connection closes it (Envoy drains the old filter
    // chain's connections on such a change): a DENY for a database holds for its pooled connections
    for (const [sock, t] of this.tcpPipes) {
      const o = this.authorizeTcp(sock, t.a, t.peer);
      if (o?.denial === undefined) continue;
      this.opts.log.warn('Closed a TCP connection: an AuthorizationPolicy denies it now', {
        from: t.a.remote,
        port: t.a.port,
        policy: o.decision.policy,
        reason: o.decision.reason,
      });
      this.opts.metrics.incLabelled(REFUSED_METRIC, { reason: 'authz_denied' });
      sock.destroy();
    }
  }

  /** The TCP reading of the policies for a connection (counted); null when no policy applies. */
  private authorizeTcp(socket: net.Socket, a: Accepted, peer: string | null): AuthzOutcome | null {
    const az = this.policy.authzTcp;
    if (az === null || a.port === null) return null;
    const o = authorizeConnection(az, connectionAttributes(socket, { port: a.port, sni: a.sni, peer }));
    countAuthz(this.opts.metrics, o);
    return o;
  }

  get current(): InboundPlan {
    return this.plan;
  }

  handle(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    this.settle(socket, this.accept(socket));
  }

  private guard(socket: net.Socket, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error('Inbound connection failed', { error: errorMessage(err) });
      socket.destroy();
    }
  }

  /** A bug on one connection closes that connection, never the process. */
  private settle(socket: net.Socket, p: Promise<void>): void {
    p.catch((err: unknown) => {
      this.opts.log.error('Inbound connection failed', { error: errorMessage(err) });
      socket.destroy();
    });
  }

  private destination(socket: net.Socket): number | null {
    let dst: OriginalDst | null;
    try {
      dst = (this.opts.dst ?? originalDst)(socket);
    } catch {
      return null;
    }
    if (dst === null) return null;
    const self =
      this.opts.capturePorts().includes(dst.port) &&
      (dst.address === '127.0.0.1' || dst.address === this.opts.appHost);
    return self ? null : dst.port;
  }

  private async accept(socket: net.Socket): Promise<void> {
    const port = this.destination(socket);
    const plan = this.plan.forPort(port);
    const remoteIp = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    const a: Accepted = {
      plan,
      port,
      remote: `${remoteIp}:${socket.remotePort ?? 0}`,
      remoteIp,
      sni: null,
      alpn: [],
    };
    if (plan.mode === 'DISABLE') return this.plaintextConn(socket, Buffer.alloc(0), a);
    const timeout =
      plan.mode === 'STRICT'
        ? (this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS)
        : this.opts.sniffTimeoutMs;
    const { head, verdict, ended } = await readFirstBytes(socket, timeout);
    if (socket.destroyed) return;
    // PERMISSIVE waited the whole sniff timeout: a server-first client (see DETECTION_TIMEOUT_METRIC)
    if (verdict.kind === 'more' && !ended && plan.mode === 'PERMISSIVE')
      this.opts.metrics.incLabelled(DETECTION_TIMEOUT_METRIC, { side: 'inbound' });
    if (verdict.kind === 'hello') {
      a.sni = verdict.sni;
      a.alpn = verdict.alpn;
    }
    const d = decide(
      plan.mode,
      arrivalOf(head, verdict, ended, timeout),
      this.opts.identity?.secureContext() != null,
    );
    switch (d.action) {
      case 'refuse':
        return this.refuse(socket, a, d.reason, d.detail);
      case 'terminate':
        return this.terminate(socket, head, a);
      case 'tls-passthrough':
        this.trackPlaintext(socket, a);
        return this.pipe(socket, head, a, null); // the app's own TLS: not ours to terminate
      case 'plaintext':
        // a client silent for the whole wait is server-first: do not wait for it a second time
        return this.plaintextConn(
          socket,
          head,
          a,
          head.length === 0 && verdict.kind === 'more' ? 'TCP' : null,
        );
    }
  }

  private terminate(socket: net.Socket, head: Buffer, a: Accepted): void {
    this.handshaking.set(socket, a);
    socket.once('close', () => this.handshaking.delete(socket));
    socket.unshift(head);
    this.tlsServer.emit('connection', socket);
  }

  /** The raw socket under a TLSSocket the TLS server made (node keeps it as `_parent`). */
  private acceptedOf(s: tls.TLSSocket): [net.Socket, Accepted] | null {
    const raw = (s as unknown as { _parent?: net.Socket })._parent;
    const a = raw === undefined ? undefined : this.handshaking.get(raw);
    if (raw === undefined || a === undefined) return null;
    this.handshaking.delete(raw);
    return [raw, a];
  }

  private onTlsError(err: NodeJS.ErrnoException, s: tls.TLSSocket): void {
    const found = this.acceptedOf(s);
    s.destroy();
    if (found === null) return;
    this.refuse(found[0], found[1], 'tls_handshake', err.code ?? errorMessage(err));
  }

  private onSecure(s: tls.TLSSocket): void {
    s.on('error', () => s.destroy());
    const found = this.acceptedOf(s);
    if (found === null) return void s.destroy();
    const a = found[1];
    const cert = s.getPeerX509Certificate();
    if (cert === undefined) return this.refuse(s, a, 'peer_no_certificate', 'no client certificate');
    if (!s.authorized)
      return this.refuse(
        s,
        a,
        'peer_untrusted',
        `client certificate rejected: ${String(s.authorizationError)}`,
      );
    const local = this.opts.identity?.current()?.spiffeId ?? null;
    const peer = peerIdentity(cert, local ?? 'unknown');
    if (typeof peer === 'string') return this.refuse(s, a, 'peer_bad_identity', peer);
    const conn = this.connection(a, peer, local);
    const hinted = a.alpn.some((p) => MESH_HTTP1_ALPN.includes(p)) ? 'HTTP' : null;
    this.settle(s, this.dispatch(s, Buffer.alloc(0), a, conn, a.plan.protocol ?? hinted));
  }

  private connection(a: Accepted, peer: InboundConnection['peer'], local: string | null): InboundConnection {
    const sec = {
      principal: peer?.principal ?? null,
      peerNamespace: peer?.namespace ?? null,
      localPrincipal: local,
    };
    return {
      plan: a.plan,
      appPort: a.port,
      remote: a.remote,
      sni: a.sni,
      peer,
      localPrincipal: local,
      metrics: a.plan.httpGroup(sec),
    };
  }

  /** Not mesh mTLS: closed if its port becomes STRICT. */
  private trackPlaintext(socket: net.Socket, a: Accepted): void {
    this.plaintext.set(socket, a);
    socket.once('close', () => this.plaintext.delete(socket));
  }

  /** `undeclared`: what an undeclared port is, when the first bytes already told (null: sniff). */
  private plaintextConn(
    socket: net.Socket,
    head: Buffer,
    a: Accepted,
    undeclared: 'TCP' | null = null,
  ): void {
    this.trackPlaintext(socket, a);
    const protocol = a.plan.protocol ?? undeclared;
    this.settle(socket, this.dispatch(socket, head, a, this.connection(a, null, null), protocol));
  }

  /** HTTP or TCP, declared or sniffed. `head`: bytes already read from `socket`. */
  private async dispatch(
    socket: net.Socket,
    head: Buffer,
    a: Accepted,
    conn: InboundConnection,
    protocol: 'HTTP' | 'TCP' | null,
  ): Promise<void> {
    this.opts.metrics.inc('weft_proxy_inbound_connections_total');
    let kind = protocol;
    if (kind === null) {
      if (head.length > 0) socket.unshift(head);
      const reading = readHead(socket, this.opts.sniffTimeoutMs);
      socket.resume(); // paused after the first bytes: a 'data' listener alone does not restart it
      const sniffed = await reading;
      head = sniffed.head;
      // HTTP/1 or the HTTP/2 preface: the HTTP hop serves both (proxy/h2/downstream.ts)
      kind = sniffed.verdict.kind === 'http' || sniffed.verdict.kind === 'h2' ? 'HTTP' : 'TCP';
      if (socket.destroyed) return;
    }
    if (kind === 'TCP') return this.pipe(socket, head, a, conn);
    if (head.length > 0) socket.unshift(head);
    this.http.serve(socket, conn);
    socket.resume();
  }

  /** A TCP pipe to the app with istio_tcp_* metrics (received: from the client; sent: to it). */
  private pipe(socket: net.Socket, head: Buffer, a: Accepted, conn: InboundConnection | null): void {
    if (a.port === null) return this.refuse(socket, a, 'no_destination', 'TCP with no original destination');
    const c = conn ?? this.connection(a, null, null);
    const peer = c.peer?.principal ?? null;
    const o = this.authorizeTcp(socket, a, peer);
    if (o?.denial !== undefined)
      return this.refuse(
        socket,
        a,
        'authz_denied',
        o.decision.reason,
        `AuthorizationPolicy ${o.decision.policy ?? '(no ALLOW policy matched)'}`,
      );
    this.tcpPipes.set(socket, { a, peer });
    socket.once('close', () => this.tcpPipes.delete(socket));
    const m = a.plan.tcpGroup({
      principal: c.peer?.principal ?? null,
      peerNamespace: c.peer?.namespace ?? null,
      localPrincipal: c.localPrincipal,
    });
    const start = Date.now();
    let received = head.length;
    let sent = 0;
    m.opened++;
    m.received += head.length;
    const upstream = splice(
      socket,
      { host: this.opts.appHost, port: a.port, localAddress: this.sourceAddress },
      DEFAULT_CONNECT_TIMEOUT_MS,
      head,
      ({ connected, error }) => {
        m.closed++;
        if (!connected)
          this.opts.log.warn('Inbound connect to the app failed', {
            to: `${this.opts.appHost}:${a.port}`,
            error: error?.message,
          });
        if (this.opts.accessLog !== null && this.accessLogOn)
          this.opts.accessLog.write({
            start_time: new Date(start).toISOString(),
            direction: 'inbound',
            protocol: 'TCP',
            response_flags: connected ? '-' : 'UF',
            bytes_received: received,
            bytes_sent: sent,
            duration: Date.now() - start,
            upstream_host: `${this.opts.appHost}:${a.port}`,
            upstream_cluster: `inbound|${a.port}||`,
            downstream_remote_address: a.remote,
            ...connectionFields(c),
          });
      },
    );
    socket.on('data', (d: Buffer) => {
      received += d.length;
      m.received += d.length;
    });
    upstream.on('data', (d: Buffer) => {
      sent += d.length;
      m.sent += d.length;
    });
  }

  /** `by`: the policy that refused, when not the port's PeerAuthentication (an AuthorizationPolicy). */
  private refuse(
    socket: net.Socket,
    a: Accepted,
    reason: RefusalReason,
    detail: string,
    by: string = a.plan.policy,
  ): void {
    socket.destroy();
    this.opts.metrics.incLabelled(REFUSED_METRIC, { reason });
    const message = refusalMessage(reason, a.remoteIp, by, a.port, detail);
    const r: Refusal = {
      at: new Date().toISOString(),
      reason,
      from: a.remote,
      port: a.port,
      mode: a.plan.mode,
      policy: by,
      message,
    };
    this.recent.push(r);
    if (this.recent.length > RECENT_REFUSALS) this.recent.shift();
    if (reason !== 'empty') this.logRefusal(r);
    if (this.opts.accessLog !== null && this.accessLogOn)
      this.opts.accessLog.write({
        start_time: r.at,
        direction: 'inbound',
        refused: reason,
        message,
        downstream_remote_address: a.remote,
        requested_server_name: a.sni ?? undefined,
        mtls_mode: a.plan.mode,
        mtls_policy: a.plan.policy,
      });
  }

  private logRefusal(r: Refusal): void {
    const w = this.logWindow;
    const now = Date.now();
    if (now - w.start >= LOG_WINDOW_MS) {
      if (w.suppressed > 0)
        this.opts.log.warn('Inbound connections refused without a log line (rate limit)', {
          count: w.suppressed,
          windowMs: LOG_WINDOW_MS,
        });
      this.logWindow = { start: now, logged: 0, suppressed: 0 };
    }
    if (this.logWindow.logged >= LOG_BURST) {
      this.logWindow.suppressed++;
      return;
    }
    this.logWindow.logged++;
    this.opts.log.warn('Inbound connection refused', {
      reason: r.reason,
      from: r.from,
      port: r.port,
      mode: r.mode,
      policy: r.policy,
      message: r.message,
    });
  }

  /** What is enforced now and what was refused lately (admin `GET /inbound`). */
  describe(): Record<string, unknown> {
    const p = this.plan;
    const refused = this.opts.metrics.labelledCounters.get(REFUSED_METRIC);
    return {
      version: p.version,
      workload: { mode: p.workload.mode, policy: p.workload.policy },
      ports: p.listed().map(([port, x]) => ({
        port,
        mode: x.mode,
        policy: x.policy,
        protocol: x.protocol ?? 'sniffed',
        service: x.service ?? undefined,
      })),
      identity: this.opts.identity?.current()?.spiffeId ?? null,
      refused: Object.fromEntries([...(refused ?? [])].map(([k, v]) => [k.replace(/^reason="|"$/g, ''), v])),
      recentRefusals: [...this.recent],
    };
  }

  drain(): void {
    this.http.drain();
  }

  async close(): Promise<void> {
    for (const s of [...this.handshaking.keys(), ...this.plaintext.keys()]) s.destroy();
    await this.http.close();
  }
}

function emptyConfig(): ProxyConfig {
  return { apiVersion: 'proxy.weft.dev/v1', kind: 'ProxyConfig', version: '', listeners: [], clusters: [] };
}
