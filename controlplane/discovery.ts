/**
 * The discovery and certificate endpoints on weftd's HTTPS port (the wire contract is
 * pkg/discovery/protocol.ts).
 *
 * `GET /v1/discovery`: authenticate, then hold the response open as an NDJSON stream: the proxy's
 * config at once, a new full config whenever a (debounced) registry change gives it a new
 * version, and a ping every PING_INTERVAL_MS. A pod weftd does not know yet (it can connect
 * before the informer sees it) gets one `error` message and its config as soon as the pod shows
 * up. A slow reader never makes weftd buffer a queue of configs: while its socket is backed up
 * only the newest pending config is kept (state of the world: older ones are worthless). A large
 * line (a whole config) is written in slices under a global byte budget (controlplane/pushwrite.ts):
 * weftd's memory does not grow with how many proxies connect at once, nor stay behind per
 * connection; a stream waiting its turn keeps only its newest line, as a backed-up one does.
 *
 * `POST /v1/discovery/ack`: a proxy's ACK or NACK of one push, named by its nonce. It must come
 * with a token of the same identity as the stream the nonce was sent on (one proxy cannot ACK
 * for another, and a nonce is 128 random bits); anything else, or a nonce older than the newest
 * sent on that stream, is counted as stale and changes nothing. weftd keeps per stream what it
 * sent last, what was ACKed last and the last NACK with its error (/debug/connections,
 * `weftctl proxy-status`).
 *
 * Delta streams (`acks=1&delta=1`, ADR 0020, controlplane/delta.ts): after the first full config,
 * a push carries only the resources that changed since the state weftd believes the proxy holds
 * (the newest push it sent; a NACK brings it back to the newest ACKed). A NACK with `resync` (the
 * delta did not apply to what the proxy holds) is answered with the whole config; after
 * MAX_RESYNCS of them in a row the stream gets full configs only. A reconnecting proxy that names
 * a state this weftd sent to that same proxy, or the state of its current config, resumes with a
 * delta; anything else gets the whole config.
 *
 * `POST /v1/discovery/ondemand` (ADR 0023, controlplane/ondemand.ts): a sidecar of a mesh with
 * on-demand hosts asks for names (or addresses) it does not hold; weftd subscribes its newest
 * stream to what its scope can see and pushes (pod-bound tokens only; a pod's rate budget
 * outlives its streams; a stream's finds are coalesced into one push).
 *
 * `POST /v1/certificates`: authenticate the same way, then hand the CSR to the workload CA for
 * the token's identity.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_SERVER_TIMEOUTS } from '../pkg/http/timeouts.js';
import {
  ACK_PATH,
  CERTIFICATES_PATH,
  MAX_ACK_BYTES,
  ONDEMAND_PATH,
  TOKEN_AUDIENCE,
  parseOnDemand,
  type OnDemandRequest,
  type OnDemandResult,
  newNonce,
  parseAck,
  type AckRequest,
  type AckResult,
  DISCOVERY_CONTENT_TYPE,
  DISCOVERY_PATH,
  DISCOVERY_UPGRADE,
  ProxyMessageDecoder,
  type ProxyMessage,
  PING_INTERVAL_MS,
  encodeMessage,
  parseDiscoveryQuery,
  type CertificateRequest,
  type CertificateResponse,
  type DiscoveryMessage,
  type DiscoveryRequest,
  type ProxyKind,
} from '../pkg/discovery/protocol.js';
import { WeftError, errorMessage, isWeftError, type ErrorCode } from '../pkg/errors/index.js';
import type { Logger } from '../pkg/log/index.js';
import type { Authenticator, Identity } from './auth.js';
import { bearerToken } from './auth.js';
import { spelledOut, type ConfigGenerator, type GeneratedConfig } from './configgen.js';
import { Debouncer } from './debounce.js';
import { encodeDelta, planFor, ResumeCache, type DeltaSummary, type Planned } from './delta.js';
import type { HeldState } from '../pkg/discovery/delta.js';
import { egressRef, type EgressHost } from '../pkg/translate/scope.js';
import { answerOf, OnDemandBudget, OnDemandSubscriptions } from './ondemand.js';
import type { WeftdMetrics } from './metrics.js';
import type { KubeRegistry } from './registry.js';
import type { GlobalRateLimitService } from './globalratelimit.js';
import { RATELIMIT_CHECK_PATH } from '../pkg/ratelimit/global.js';
import {
  DEFAULT_WRITE_BUDGET_BYTES,
  SLICED_LINE_CHARS,
  WRITE_STALL_MS,
  WriteBudget,
  sliceWrite,
  type LineSink,
} from './pushwrite.js';

/** A CSR is a few KiB; anything much larger is not one. */
const MAX_CERT_REQUEST_BYTES = 64 * 1024;

export interface CertificateSigner {
  handle(
    req: CertificateRequest,
    id: { namespace: string; serviceAccount: string },
  ): Promise<CertificateResponse>;
}

export interface DiscoveryOptions {
  registry: KubeRegistry;
  generator: ConfigGenerator;
  authenticate: Authenticator;
  ca?: CertificateSigner;
  metrics: WeftdMetrics;
  log: Logger;
  debounce: { afterMs: number; maxMs: number };
  pingIntervalMs?: number;
  /** The global rate-limit service (weftd --ratelimit-redis); absent: checks answer 503 disabled. */
  globalRateLimit?: GlobalRateLimitService;
  /**
   * How long a proxy's ACK connection is kept open while idle (default ACK_KEEPALIVE_MS; 0: the
   * server's keep-alive timeout, as before ADR 0020's amendment), and that server timeout, which
   * the connection returns to when its stream closes (default 30 s, pkg/http/timeouts.ts).
   */
  ackKeepAliveMs?: number;
  keepAliveMs?: number;
  /**
   * Bytes of large lines (whole configs) written but not yet flushed, across every stream
   * (default DEFAULT_WRITE_BUDGET_BYTES); a stream past it waits its turn (controlplane/pushwrite.ts).
   */
  writeBudgetBytes?: number;
  /** A whole config none of whose slices flushed for this long leaves the budget (default WRITE_STALL_MS). */
  writeStallMs?: number;
  /** An upgrade request's stream must open within this (default UPGRADE_OPEN_MS). */
  upgradeOpenMs?: number;
}

export interface ConnectionInfo {
  id: number;
  kind: ProxyKind;
  namespace: string;
  pod: string;
  serviceAccount: string;
  remote: string;
  connectedAt: string;
  version: string | null;
  pushes: number;
  state: 'waiting-for-sync' | 'pod-unknown' | 'configured';
  /** The proxy asked with `acks=1`: it answers every push (false: an older proxy, status unknown). */
  acks: boolean;
  /**
   * The stream was upgraded (DISCOVERY_UPGRADE): the proxy's answers come on its own connection;
   * false: they are POSTed on another connection (a proxy from before, or a plain stream).
   */
  acksOnStream: boolean;
  /** The proxy reads short service domains (`serviceDomains=1`); false: weftd spells them out. */
  serviceDomains: boolean;
  /**
   * The proxy holds and asks for hosts (`onDemand=1`, ADR 0023); false: an older proxy, given its
   * whole scope whatever the mesh's onDemandHosts says (it would never ask for the rest).
   */
  asksOnDemand: boolean;
  /** The newest push on this stream. */
  sent: PushRecord | null;
  /** The newest push the proxy ACKed (compiled and swapped in). */
  acked: PushRecord | null;
  /** The newest push the proxy NACKed, with its reason (it kept its previous config). */
  nacked: (PushRecord & { error: string }) | null;
  /**
   * Delta pushes negotiated (`delta=1`; false: full configs, an older proxy or after repeated
   * resyncs); `held`: the version and state hash of the newest config the proxy ACKed, which
   * weftd can diff against; `deltas`/`fulls`: pushes of each kind on this stream.
   */
  delta: {
    enabled: boolean;
    held: { version: string; state: string } | null;
    deltas: number;
    fulls: number;
    resyncs: number;
  };
  /** The registry generation this stream's config (`version`) was last computed at. */
  evaluatedAt: number;
  /** On-demand hosts (ADR 0023): the entries this stream subscribed to (absent: it asked for none). */
  onDemand?: string[];
  /**
   * The proxy runs every change up to this registry generation: it ACKed a config that was
   * still what weftd computed for it then (the status writer's Reconciled reads it).
   */
  runningAt: number;
}

export interface PushRecord {
  version: string;
  nonce: string;
  /** Delta streams: whether this push was a delta, and the state hash it leaves the proxy in. */
  delta?: boolean;
  state?: string;
  /** A delta's resources added or updated, and removed, by name (the first DEBUG_NAMES of each). */
  changed?: string[];
  removed?: string[];
  /** ISO time weftd wrote it (sent) or heard the answer (acked, nacked). */
  at: string;
}

interface Connection {
  info: ConnectionInfo;
  /** The response of a plain stream, or the socket of an upgraded one. */
  out: LineSink;
  log: Logger;
  /** The socket is backed up, a large line is being written, or one waits for the write budget. */
  blocked: boolean;
  /** The newest config line not yet written because the stream is blocked (a whole config: made at its turn). */
  backlog: Line | undefined;
  /** While the backlog waits for the write budget: gives up its place (the stream closed). */
  budgetTurn?: { cancel: () => void } | undefined;
  /** Delta streams only: what weftd believes the proxy holds (no config values: versions). */
  held?: DeltaHeld | undefined;
  /** On-demand hosts (ADR 0023): what this stream asked for and got; created on its first ask. */
  onDemand?: OnDemandSubscriptions;
  /** The coalesced push of this stream's new subscriptions, while it waits (ONDEMAND_PUSH_MS). */
  onDemandPush?: { timer: NodeJS.Timeout; written: Promise<void>; fire: () => void } | undefined;
  /** The connection this stream's proxy ACKs on, kept open for ACK_KEEPALIVE_MS (one per stream). */
  ackSocket?: Socket | undefined;
}

/** How a stream reaches its proxy: a plain HTTP response, or an upgraded socket and the bytes read past the request. */
type StreamVia = { res: ServerResponse } | { socket: Duplex; head: Buffer; opened: () => void };

/**
 * An idle ACK connection of a proxy with an open stream stays open this long (the server's
 * keep-alive timeout, 30 s, is far shorter than the time between pushes in a quiet mesh): the
 * next push's ACKs then reuse it instead of a fleet reconnecting, and weftd doing a TLS handshake
 * per proxy, at once. The proxy's agent reads it from the `Keep-Alive: timeout=` header.
 */
export const ACK_KEEPALIVE_MS = 3600_000;

/** weftd's side outlives the proxy's (which closes at the header's timeout): no reuse races a close. */
const ACK_KEEPALIVE_SLACK_MS = 5_000;

/**
 * An upgrade request must have its stream open (token reviewed, 101 written) within this long, as
 * a plain request must arrive within the server's request timeout: the HTTP server let go of the
 * socket, so its timeouts no longer guard it.
 */
export const UPGRADE_OPEN_MS = DEFAULT_SERVER_TIMEOUTS.requestMs;

/** A refused upgrade's connection is closed this long after its error answer, whatever the client does. */
const REFUSED_LINGER_MS = 1_000;

/**
 * On-demand finds of one stream within this window share one push (and one translation): an app
 * asking for names one by one does not make a config, and a cache entry, per name.
 */
export const ONDEMAND_PUSH_MS = 50;

/** Pods whose on-demand budgets are kept (least recently asking dropped past it; docs/limits.md). */
export const MAX_ONDEMAND_BUDGETS = 16_384;

/**
 * A line to write: a string, or a whole config made when its turn comes (WholeLine). A stream
 * waiting for the write budget then holds a closure over its config, which shares its bulk with
 * the other proxies of its translation, not a 1.5 MB string of its own: 2,000 proxies connecting
 * at once held 2.8 GB of waiting lines.
 */
type Line = string | WholeLine;
interface WholeLine {
  /** The line, made on the first call and kept. */
  make(): string;
}

interface DeltaHeld {
  /** After the newest push (null: unknown, the next push is the whole config). */
  sent: HeldState | null;
  /** After the newest ACKed push. */
  acked: HeldState | null;
  /** While a backlog line waits: the state it was computed from (a newer one replaces it, from the same base). */
  backlogBase: HeldState | null;
  /** The state the proxy announced when it connected, until the first push. */
  announced: string | undefined;
}

/** Resync NACKs in a row after which a stream gets full configs only (a proxy whose hashes never agree). */
export const MAX_RESYNCS = 3;

/** Resource names a push record lists (/debug/connections), per list. */
const DEBUG_NAMES = 20;

const STATUS: Partial<Record<ErrorCode, number>> = {
  WEFT_DISCOVERY_REQUEST_INVALID: 400,
  WEFT_DISCOVERY_ACK_INVALID: 400,
  WEFT_DISCOVERY_ONDEMAND_INVALID: 400,
  WEFT_CSR_INVALID: 400,
  WEFT_INPUT_TOO_LARGE: 413,
  WEFT_UNAUTHENTICATED: 401,
  WEFT_FORBIDDEN: 403,
  WEFT_TOKEN_REVIEW_FAILED: 503,
  WEFT_CA_NOT_READY: 503,
  WEFT_RATELIMIT_REQUEST_INVALID: 400,
  WEFT_RATELIMIT_BACKEND: 503,
  WEFT_RATELIMIT_DISABLED: 503,
};

/** Failures logged where they happen, throttled (a Redis outage would be a line per request here). */
const LOGGED_ELSEWHERE = new Set<ErrorCode>(['WEFT_RATELIMIT_BACKEND', 'WEFT_RATELIMIT_DISABLED']);

/** An error's HTTP answer: status, headers and the coded JSON body. */
function errorAnswer(err: unknown): { status: number; headers: Record<string, string>; body: string } {
  const code: ErrorCode = isWeftError(err) ? err.code : 'WEFT_DISCOVERY_REQUEST_INVALID';
  const explicit = isWeftError(err) ? err.details?.status : undefined;
  const status = typeof explicit === 'number' ? explicit : isWeftError(err) ? (STATUS[err.code] ?? 500) : 500;
  const message = isWeftError(err) ? err.message : errorMessage(err);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  return { status, headers, body: `${JSON.stringify({ code, message: `${code}: ${message}` })}\n` };
}

export function sendError(res: ServerResponse, err: unknown): void {
  const { status, headers, body } = errorAnswer(err);
  res.writeHead(status, headers).end(body);
}

/**
 * The same answer on a socket the HTTP server let go of (an upgrade request weftd refuses), then
 * the connection closed: a client that asked to upgrade reads an ordinary HTTP error.
 */
function sendErrorOnSocket(socket: Duplex, err: unknown): void {
  if (socket.destroyed || socket.writableEnded) return;
  const { status, headers, body } = errorAnswer(err);
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`];
  for (const [k, v] of Object.entries({
    ...headers,
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  }))
    head.push(`${k}: ${v}`);
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  // unread bytes would hold back 'end', and a client that never closes would hold the socket
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
}

/**
 * The request's URL, or null when its request target does not parse (`GET //[`): `new URL`
 * throws on it, and a throw in a request handler would take weftd down for everyone.
 */
export function requestUrl(req: IncomingMessage, base: string): URL | null {
  try {
    return new URL(req.url ?? '/', base);
  } catch {
    return null;
  }
}

export function badRequestTarget(req: IncomingMessage): WeftError {
  return new WeftError(
    'WEFT_DISCOVERY_REQUEST_INVALID',
    `the request target ${JSON.stringify((req.url ?? '').slice(0, 200))} is not a valid URL path`,
    { details: { status: 400 } },
  );
}

/** The token's identity may ask for this proxy: same namespace, and the same pod when the token names one. */
export function authorize(id: Identity, r: Pick<DiscoveryRequest, 'namespace' | 'pod'>): void {
  if (id.namespace !== r.namespace)
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `service account ${id.namespace}/${id.serviceAccount} may not ask for config of namespace ${r.namespace}; a proxy asks for its own pod's namespace`,
    );
  if (id.podName !== undefined && id.podName !== r.pod)
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `the token is bound to pod ${id.namespace}/${id.podName}, not ${r.namespace}/${r.pod}`,
    );
}

/**
 * On-demand asks need a pod-bound token (TokenReview's pod-name extra, as projected tokens have):
 * with a legacy Secret token any pod of the service account could subscribe hosts for another
 * pod's stream, and spend that pod's budget.
 */
export function requirePodBound(id: Identity, r: Pick<DiscoveryRequest, 'namespace' | 'pod'>): void {
  if (id.podName === undefined)
    throw new WeftError(
      'WEFT_FORBIDDEN',
      `on-demand hosts need a pod-bound token: service account ${id.namespace}/${id.serviceAccount}'s token names no pod, so it may not ask for ${r.namespace}/${r.pod}; mount the projected service account token (audience ${TOKEN_AUDIENCE})`,
    );
}

export class DiscoveryService {
  private readonly connections = new Map<number, Connection>();
  /** The newest nonce of each stream → its connection id (bounded by the connections). */
  private readonly nonces = new Map<string, number>();
  /** On-demand rate buckets and re-declare allowances by pod (bounded: MAX_ONDEMAND_BUDGETS). */
  private readonly onDemandBudgets = new Map<string, OnDemandBudget>();
  /** The stream each kept ACK connection answers for, newest (weak: gone with the socket). */
  private readonly ackSocketOwners = new WeakMap<Socket, Connection>();
  /** Every upgraded socket not yet closed, streams or not yet (close() ends them: the HTTP server does not). */
  private readonly upgraded = new Set<Duplex>();
  private closed = false;
  /** What the delta streams of disconnected proxies held (bounded; controlplane/delta.ts). */
  readonly resume = new ResumeCache();
  private nextId = 1;
  /** Debounced push cycles run so far (tests wait on it; /debug/connections shows it). */
  pushCycles = 0;
  private readonly debouncer: Debouncer;
  private readonly pinger: NodeJS.Timeout;
  /** Whole configs being written at once, across streams (issue #19: weftd's RSS with a fleet connecting). */
  readonly writeBudget: WriteBudget;

  constructor(private readonly opts: DiscoveryOptions) {
    this.writeBudget = new WriteBudget(opts.writeBudgetBytes ?? DEFAULT_WRITE_BUDGET_BYTES, {
      changed: (inFlight, waiting) => {
        opts.metrics.writeInFlightBytes.set(inFlight);
        opts.metrics.writeWaitingStreams.set(waiting);
      },
    });
    this.debouncer = new Debouncer((first) => this.pushAll(first), opts.debounce);
    opts.registry.onChange((trigger) => {
      opts.metrics.triggers.inc({ type: trigger });
      this.debouncer.trigger();
    });
    opts.registry.onEvent((kind, result) => opts.metrics.registryEvents.inc({ kind, result }));
    this.pinger = setInterval(() => this.pingAll(), opts.pingIntervalMs ?? PING_INTERVAL_MS);
    this.pinger.unref();
  }

  /** The request handler for the HTTPS server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = requestUrl(req, 'https://weftd');
    if (url === null) return sendError(res, badRequestTarget(req));
    const route =
      url.pathname === DISCOVERY_PATH && req.method === 'GET'
        ? this.discovery(req, { res }, url)
        : url.pathname === ACK_PATH && req.method === 'POST'
          ? this.ack(req, res)
          : url.pathname === ONDEMAND_PATH && req.method === 'POST'
            ? this.onDemand(req, res)
            : url.pathname === CERTIFICATES_PATH && req.method === 'POST'
              ? this.certificates(req, res)
              : url.pathname === RATELIMIT_CHECK_PATH && req.method === 'POST'
                ? this.rateLimitCheck(req, res)
                : Promise.reject(
                    new WeftError(
                      'WEFT_DISCOVERY_REQUEST_INVALID',
                      `no such endpoint: ${req.method} ${url.pathname} (GET ${DISCOVERY_PATH}, POST ${ACK_PATH}, POST ${ONDEMAND_PATH}, POST ${CERTIFICATES_PATH})`,
                      { details: { status: 404 } },
                    ),
                  );
    route.catch((err: unknown) => {
      if (!isWeftError(err) || ((STATUS[err.code] ?? 500) >= 500 && !LOGGED_ELSEWHERE.has(err.code)))
        this.opts.log.warn('Request failed', { path: url.pathname, error: errorMessage(err) });
      // a body past its limit is not read to its end: the connection must not be reused for it
      if (isWeftError(err, 'WEFT_INPUT_TOO_LARGE') && !res.headersSent) res.setHeader('connection', 'close');
      if (!res.headersSent) sendError(res, err);
      else res.end();
    });
  };

  /**
   * The HTTPS server's `upgrade` listener: a discovery stream whose proxy answers on the same
   * connection (DISCOVERY_UPGRADE; one TLS connection per proxy instead of two). Anything else
   * that asks to upgrade gets the HTTP error the request handler would give, and the connection
   * closed.
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // the HTTP server let go of the socket: its errors, its timeouts and closing it are ours now
    socket.on('error', (err) =>
      this.opts.log.debug('Upgraded connection failed', { error: errorMessage(err) }),
    );
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.upgraded.add(socket);
    const opening = setTimeout(() => socket.destroy(), this.opts.upgradeOpenMs ?? UPGRADE_OPEN_MS);
    opening.unref();
    let opened = false; // the 101 is written: past it, a failure closes the stream, no HTTP answer
    socket.once('close', () => {
      clearTimeout(opening);
      this.upgraded.delete(socket);
    });
    const url = requestUrl(req, 'https://weftd');
    const upgrade = String(req.headers.upgrade ?? '').trim();
    const route =
      url === null
        ? Promise.reject(badRequestTarget(req))
        : url.pathname === DISCOVERY_PATH &&
            req.method === 'GET' &&
            upgrade.toLowerCase() === DISCOVERY_UPGRADE
          ? this.discovery(
              req,
              {
                socket,
                head,
                opened: () => {
                  opened = true;
                  clearTimeout(opening);
                },
              },
              url,
            )
          : Promise.reject(
              new WeftError(
                'WEFT_DISCOVERY_REQUEST_INVALID',
                `only GET ${DISCOVERY_PATH} upgrades, to ${DISCOVERY_UPGRADE}; got ${req.method} ${url.pathname} to ${JSON.stringify(upgrade.slice(0, 60))}`,
                { details: { status: 400 } },
              ),
            );
    route.catch((err: unknown) => {
      if (!isWeftError(err) || (STATUS[err.code] ?? 500) >= 500)
        this.opts.log.warn('Request failed', { path: url?.pathname, error: errorMessage(err) });
      if (opened) socket.destroy();
      else sendErrorOnSocket(socket, err);
    });
  };

  private rateLimitCheck(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const svc = this.opts.globalRateLimit;
    if (svc === undefined)
      return Promise.reject(
        new WeftError(
          'WEFT_RATELIMIT_DISABLED',
          'this weftd has no global rate-limit backend (start it with --ratelimit-redis HOST:PORT)',
          { details: { status: 503 } },
        ),
      );
    return svc.handle(req, res, (r) => this.identify(r));
  }

  private async identify(req: IncomingMessage): Promise<Identity> {
    const { metrics } = this.opts;
    try {
      const { identity, cached } = await this.opts.authenticate(bearerToken(req.headers.authorization));
      metrics.tokenReviews.inc({ result: cached ? 'cached' : 'ok' });
      return identity;
    } catch (err) {
      metrics.tokenReviews.inc({ result: isWeftError(err, 'WEFT_UNAUTHENTICATED') ? 'denied' : 'error' });
      throw err;
    }
  }

  private async discovery(req: IncomingMessage, via: StreamVia, url: URL): Promise<void> {
    const request = parseDiscoveryQuery(url.searchParams);
    const identity = await this.identify(req);
    authorize(identity, request);
    const out: LineSink = 'res' in via ? via.res : via.socket;
    if (out.destroyed) return; // the proxy gave up while the review ran
    if (this.closed) {
      out.destroy(); // weftd stopped while the review ran
      return;
    }
    const info: ConnectionInfo = {
      id: this.nextId++,
      kind: request.kind,
      namespace: request.namespace,
      pod: request.pod,
      serviceAccount: identity.serviceAccount,
      remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
      connectedAt: new Date().toISOString(),
      version: null,
      pushes: 0,
      state: 'waiting-for-sync',
      acks: request.acks === true,
      acksOnStream: 'socket' in via,
      serviceDomains: request.serviceDomains === true,
      asksOnDemand: request.onDemand === true,
      delta: { enabled: request.delta === true, held: null, deltas: 0, fulls: 0, resyncs: 0 },
      sent: null,
      acked: null,
      nacked: null,
      evaluatedAt: 0,
      runningAt: 0,
    };
    const conn: Connection = {
      info,
      out,
      log: this.opts.log.child({ conn: info.id, proxy: `${info.kind}/${info.namespace}/${info.pod}` }),
      blocked: false,
      backlog: undefined,
    };
    if (request.delta === true) {
      const resumed = request.state === undefined ? null : this.resume.take(proxyKey(info), request.state);
      conn.held = { sent: resumed, acked: resumed, backlogBase: null, announced: request.state };
    }
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true, 30_000);
    if ('res' in via) {
      via.res.writeHead(200, { 'content-type': DISCOVERY_CONTENT_TYPE, 'cache-control': 'no-store' });
      via.res.flushHeaders();
    } else {
      via.socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${DISCOVERY_UPGRADE}\r\ncontent-type: ${DISCOVERY_CONTENT_TYPE}\r\n\r\n`,
      );
      via.opened();
      this.readAnswers(conn, identity, via.socket, via.head);
    }
    this.connections.set(info.id, conn);
    this.opts.metrics.xds.inc({ type: info.kind });
    conn.log.info('Proxy connected', {
      remote: info.remote,
      serviceAccount: info.serviceAccount,
      acksOnStream: info.acksOnStream,
    });
    out.on('close', () => {
      this.connections.delete(info.id);
      conn.budgetTurn?.cancel();
      conn.budgetTurn = undefined;
      conn.backlog = undefined;
      conn.onDemandPush?.fire();
      if (conn.onDemand) conn.onDemand.budget.streamClosed(conn.onDemand.size);
      if (info.sent) this.nonces.delete(info.sent.nonce);
      if (conn.held) this.resume.remember(proxyKey(info), [conn.held.acked, conn.held.sent]);
      this.releaseAckSocket(conn);
      this.opts.metrics.xds.dec({ type: info.kind });
      conn.log.info('Proxy disconnected', { pushes: info.pushes, version: info.version });
      this.emitProgress();
    });
    this.update(conn);
  }

  /**
   * An upgraded stream's answers: lines of ProxyMessage, each for this stream's proxy, recorded as
   * a POSTed answer would be (the stream's token stands for them). A line weftd cannot read is
   * counted (`result="invalid"`), answered with an `error` message, and ends the stream: the
   * proxy reconnects, and its resume makes up for what the line said.
   */
  private readAnswers(conn: Connection, identity: Identity, socket: Duplex, head: Buffer): void {
    const decoder = new ProxyMessageDecoder();
    const onData = (chunk: Buffer): void => {
      let answers: ProxyMessage[];
      try {
        answers = decoder.push(chunk);
        for (const m of answers) ownAnswer(conn.info, m);
      } catch (err) {
        socket.off('data', onData);
        return this.refuseAnswer(conn, err);
      }
      for (const m of answers) this.streamAnswer(conn, identity, m);
    };
    socket.on('data', onData);
    if (head.length > 0) onData(head);
  }

  /**
   * Records one answer of an upgraded stream. Only the first answer to this stream's newest push
   * counts: anything else is stale (an answer on the stream costs the proxy nothing, so a repeated
   * NACK must not be a warn line and a progress event each).
   */
  private streamAnswer(conn: Connection, identity: Identity, m: ProxyMessage): void {
    const { info } = conn;
    const answered = info.acked?.nonce === m.nonce || info.nacked?.nonce === m.nonce;
    let result: AckResult = 'stale';
    try {
      if (this.nonces.get(m.nonce) === info.id && !answered) result = this.recordAck(m, identity);
    } catch (err) {
      // weftd's own failure (recording, the resync push): logged, never blamed on the proxy
      conn.log.error('Could not record an answer', { error: errorMessage(err) });
      return;
    }
    this.opts.metrics.acks.inc({ result });
    if (result === 'nack') this.opts.metrics.rejects.inc({ type: 'config' });
  }

  private refuseAnswer(conn: Connection, err: unknown): void {
    this.opts.metrics.acks.inc({ result: 'invalid' });
    const code: ErrorCode = isWeftError(err) ? err.code : 'WEFT_DISCOVERY_ACK_INVALID';
    const message = errorMessage(err);
    conn.log.warn('Proxy sent a line weftd cannot read; closing its stream', { code, error: message });
    // a line being sliced out would be cut mid-way by another: close without a word then
    if (conn.blocked) conn.out.destroy();
    else conn.out.end(encodeMessage({ type: 'error', code, message }));
  }

  /**
   * An ACK or NACK. Authenticated like the stream; the body is read only after that, and only up
   * to MAX_ACK_BYTES (413 past it). Answers 200 `{result}` for stale answers too: the proxy did
   * nothing wrong by answering late, and retrying would not help.
   */
  private async ack(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_ACK_BYTES)
      throw new WeftError('WEFT_INPUT_TOO_LARGE', `an ACK body is at most ${MAX_ACK_BYTES} bytes`);
    const identity = await this.identify(req);
    const body = parseAck(await readJson(req, MAX_ACK_BYTES, 'WEFT_DISCOVERY_ACK_INVALID'));
    authorize(identity, body);
    const stream = this.answeredStream(body, identity); // before recording: a resync NACK pushes anew
    const result = this.recordAck(body, identity);
    this.opts.metrics.acks.inc({ result });
    if (result === 'nack') this.opts.metrics.rejects.inc({ type: 'config' });
    if (stream !== undefined) this.keepAckSocket(stream, req, res);
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ result })}\n`);
  }

  /**
   * Keeps the connection an answer came on open for ACK_KEEPALIVE_MS while idle, for as long as
   * the stream it answered is open: only a connection that carried an authenticated answer to a
   * stream's newest push, one per stream (a newer one takes over, the older goes back to the
   * server's timeout), so the open connections stay bounded by the streams.
   */
  private keepAckSocket(conn: Connection, req: IncomingMessage, res: ServerResponse): void {
    const ms = this.opts.ackKeepAliveMs ?? ACK_KEEPALIVE_MS;
    if (ms <= 0) return;
    const socket = req.socket;
    if (conn.ackSocket !== socket) {
      this.releaseAckSocket(conn);
      conn.ackSocket = socket;
      // a proxy that vanished without a FIN is found by TCP, as on the stream
      socket.setKeepAlive(true, 30_000);
      // one 'close' listener per socket, however often streams take it over
      if (!this.ackSocketOwners.has(socket))
        socket.once('close', () => {
          const owner = this.ackSocketOwners.get(socket);
          if (owner?.ackSocket === socket) owner.ackSocket = undefined;
        });
      this.ackSocketOwners.set(socket, conn);
    }
    res.setHeader('keep-alive', `timeout=${Math.floor(ms / 1000)}`);
    // Node sets the server's keep-alive timeout on the socket when a response finishes, in a
    // 'finish' listener added before this handler ran: this one runs after it and wins
    res.once('finish', () => {
      if (conn.ackSocket === socket && !socket.destroyed) socket.setTimeout(ms + ACK_KEEPALIVE_SLACK_MS);
    });
  }

  /** The stream is gone (or another connection took over): its ACK connection gets the server's timeout back. */
  private releaseAckSocket(conn: Connection): void {
    const socket = conn.ackSocket;
    conn.ackSocket = undefined;
    if (socket !== undefined && !socket.destroyed)
      socket.setTimeout(this.opts.keepAliveMs ?? DEFAULT_SERVER_TIMEOUTS.keepAliveMs);
  }

  /**
   * On-demand hosts (ADR 0023): authenticated like an ACK, for the caller's own newest stream.
   * Every name is decided by the stream's OnDemandSubscriptions (bounded: rate, cap, negative
   * cache); when one was added, the stream's push is written before the answer, so a proxy that
   * reads `found` has the config on its way. A mesh without onDemandHosts answers 404.
   */
  private async onDemand(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_ACK_BYTES)
      throw new WeftError('WEFT_INPUT_TOO_LARGE', `an on-demand request is at most ${MAX_ACK_BYTES} bytes`);
    const identity = await this.identify(req);
    const body = parseOnDemand(await readJson(req, MAX_ACK_BYTES, 'WEFT_DISCOVERY_ONDEMAND_INVALID'));
    authorize(identity, body);
    requirePodBound(identity, body);
    if (!this.opts.generator.onDemandHosts || body.kind !== 'sidecar')
      throw new WeftError(
        'WEFT_DISCOVERY_ONDEMAND_INVALID',
        'on-demand hosts are off in this mesh (sidecars only)',
        {
          details: { status: 404 },
        },
      );
    const conn = this.newestStream(body, identity.serviceAccount);
    if (conn === undefined)
      throw new WeftError('WEFT_DISCOVERY_ONDEMAND_INVALID', 'no open discovery stream for this proxy', {
        details: { status: 409 },
      });
    if (!conn.info.asksOnDemand)
      throw new WeftError(
        'WEFT_DISCOVERY_ONDEMAND_INVALID',
        'the open discovery stream did not ask for on-demand hosts (onDemand=1): it holds its whole scope',
        { details: { status: 409 } },
      );
    const { hosts, added } = this.decideOnDemand(conn, body.hosts, body.redeclare === true);
    // the push is written before the answer, so a proxy that reads `found` has it on its way
    if (added) await this.pushOnDemand(conn);
    res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify({ hosts })}\n`);
  }

  /** Decides the names of one request for a stream; `added`: a subscription was added (push it). */
  private decideOnDemand(
    conn: Connection,
    names: string[],
    redeclare = false,
  ): { hosts: Record<string, OnDemandResult>; added: boolean } {
    const { registry, generator, metrics } = this.opts;
    const subs = (conn.onDemand ??= new OnDemandSubscriptions(this.onDemandBudget(conn.info)));
    const pod = registry.pod(conn.info.namespace, conn.info.pod);
    const snapshot = registry.snapshot();
    const hosts: Record<string, OnDemandResult> = {};
    let added = false;
    for (const name of names) {
      const outcome =
        pod === undefined || pod === null
          ? 'not_found'
          : subs.ask(name, snapshot.generation, (n) => generator.resolveOnDemand(snapshot, pod, n), {
              skipRate: redeclare && subs.budget.takeRedeclare(),
            });
      metrics.onDemand.inc({ result: outcome });
      if (outcome === 'found') added = true;
      hosts[name] = answerOf(outcome);
    }
    return { hosts, added };
  }

  /**
   * The pod's on-demand budget, shared by its streams so a reconnect does not refill the rate
   * bucket (the token is pod-bound: the pod name is the caller's own).
   */
  private onDemandBudget(info: Pick<ConnectionInfo, 'namespace' | 'pod'>): OnDemandBudget {
    const key = `${info.namespace}/${info.pod}`;
    let budget = this.onDemandBudgets.get(key);
    if (budget !== undefined) this.onDemandBudgets.delete(key);
    else {
      budget = new OnDemandBudget();
      if (this.onDemandBudgets.size >= MAX_ONDEMAND_BUDGETS)
        this.onDemandBudgets.delete(this.onDemandBudgets.keys().next().value!);
    }
    this.onDemandBudgets.set(key, budget); // most recent last
    return budget;
  }

  /**
   * Pushes a stream's new subscriptions, coalescing the finds of ONDEMAND_PUSH_MS into one push;
   * resolves once it is written (or the stream closed). One timer per stream at most.
   */
  private pushOnDemand(conn: Connection): Promise<void> {
    if (conn.onDemandPush) return conn.onDemandPush.written;
    let done!: () => void;
    const written = new Promise<void>((resolve) => (done = resolve));
    const fire = (): void => {
      if (conn.onDemandPush?.written !== written) return;
      clearTimeout(conn.onDemandPush.timer);
      conn.onDemandPush = undefined;
      if (this.connections.get(conn.info.id) === conn) this.update(conn);
      done();
    };
    const timer = setTimeout(fire, ONDEMAND_PUSH_MS);
    timer.unref();
    conn.onDemandPush = { timer, written, fire };
    return written;
  }

  /** The newest stream of this proxy (opened with this service account, when one is given). */
  private newestStream(
    r: Pick<OnDemandRequest, 'kind' | 'namespace' | 'pod'>,
    serviceAccount?: string,
  ): Connection | undefined {
    let newest: Connection | undefined;
    for (const c of this.connections.values())
      if (
        c.info.kind === r.kind &&
        c.info.namespace === r.namespace &&
        c.info.pod === r.pod &&
        (serviceAccount === undefined || c.info.serviceAccount === serviceAccount) &&
        (newest === undefined || c.info.id > newest.info.id)
      )
        newest = c;
    return newest;
  }

  /** Records an authenticated answer on the stream its nonce was sent on; `stale` when it names no current push. */
  recordAck(ack: AckRequest, identity: Pick<Identity, 'serviceAccount'>): AckResult {
    const conn = this.answeredStream(ack, identity);
    // a late answer for a push the stream has moved past, for a stream that is gone, or a
    // nonce of another proxy's stream: changes nothing (weft_weftd_xds_acks_total{result="stale"})
    if (conn === undefined) return 'stale';
    const info = conn.info;
    if (!info.sent) return 'stale';
    const at = new Date().toISOString();
    this.emitProgress();
    if (ack.error === undefined) {
      info.acked = { ...info.sent, at };
      if (conn.held) {
        conn.held.acked = conn.held.sent;
        // only an applied delta shows the hashes agree (an ACKed full config says nothing of them)
        if (info.sent.delta === true) info.delta.resyncs = 0;
        info.delta.held = conn.held.acked ? { version: ack.version, state: conn.held.acked.state } : null;
      }
      info.runningAt = info.evaluatedAt; // the ACKed version is the stream's newest (checked above)
      // checked first: a filtered-out debug line still costs winston's stream pipeline, per proxy per push
      if (conn.log.isDebugEnabled()) conn.log.debug('Proxy ACKed', { version: ack.version });
      return 'ack';
    }
    info.nacked = { ...info.sent, at, error: ack.error };
    conn.log.warn('Proxy NACKed a config; it keeps its previous one', {
      version: ack.version,
      error: ack.error,
      ...(ack.resync === true ? { resync: true } : {}),
    });
    // resync asks for the whole config because a delta did not apply: a NACK of a whole config
    // saying so is no reason to send it again (each would be an immediate full re-push)
    if (conn.held) this.deltaNacked(conn, ack.resync === true && info.sent.delta === true);
    return 'nack';
  }

  /** The open stream whose newest push `ack` answers, from that stream's identity; undefined: stale. */
  private answeredStream(
    ack: AckRequest,
    identity: Pick<Identity, 'serviceAccount'>,
  ): Connection | undefined {
    const id = this.nonces.get(ack.nonce);
    const conn = id === undefined ? undefined : this.connections.get(id);
    const info = conn?.info;
    const matches =
      info?.sent?.nonce === ack.nonce &&
      info.sent.version === ack.version &&
      info.kind === ack.kind &&
      info.namespace === ack.namespace &&
      info.pod === ack.pod &&
      info.serviceAccount === identity.serviceAccount;
    return matches ? conn : undefined;
  }

  /**
   * A delta stream's NACK: the proxy kept what it last ACKed. A resync NACK (the delta did not
   * apply to what it holds) is answered at once with the whole config, at most MAX_RESYNCS times
   * in a row; a refused config (it did not compile) is not resent, as on full streams.
   */
  private deltaNacked(conn: Connection, resync: boolean): void {
    const held = conn.held!;
    const { info } = conn;
    if (!resync) {
      held.sent = held.acked;
      return;
    }
    held.sent = null;
    held.acked = null;
    info.delta.held = null;
    this.opts.metrics.deltaFallbacks.inc({ reason: 'resync' });
    if (++info.delta.resyncs >= MAX_RESYNCS) {
      info.delta.enabled = false;
      conn.held = undefined;
      conn.log.warn('Proxy could not apply deltas repeatedly; it gets whole configs from now on', {
        resyncs: info.delta.resyncs,
      });
    }
    this.update(conn, undefined, true);
  }

  private async certificates(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { metrics } = this.opts;
    metrics.csrs.inc();
    let identity: Identity;
    try {
      identity = await this.identify(req);
    } catch (err) {
      if (isWeftError(err, 'WEFT_UNAUTHENTICATED')) metrics.certAuthFailures.inc();
      throw err;
    }
    try {
      const ca = this.opts.ca;
      if (!ca) throw new WeftError('WEFT_CA_NOT_READY', 'this weftd runs without a workload CA');
      const body = await readJson(req, MAX_CERT_REQUEST_BYTES, 'WEFT_CSR_INVALID');
      const answer = await ca.handle(body as CertificateRequest, identity);
      metrics.certsIssued.inc();
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(answer)}\n`);
    } catch (err) {
      metrics.csrRefused.inc({ error_type: refusalType(err) });
      if (isWeftError(err, 'WEFT_CSR_INVALID'))
        this.opts.log.warn('Refused a CSR', {
          namespace: identity.namespace,
          serviceAccount: identity.serviceAccount,
          reason: refusalType(err),
          error: err.message,
        });
      throw err;
    }
  }

  private readonly progressListeners: (() => void)[] = [];

  /** Called when a stream's sent, evaluated or answered config changes (the status writer). */
  onProgress(fn: () => void): void {
    this.progressListeners.push(fn);
  }

  private emitProgress(): void {
    for (const fn of this.progressListeners) fn();
  }

  /** Something outside the registry changed (the mesh config): recompute every stream, debounced. */
  refresh(): void {
    this.opts.metrics.triggers.inc({ type: 'config' });
    this.debouncer.trigger();
  }

  /**
   * What `kind` proxy of pod ns/name would get now; null when the pod is unknown. `onDemand`:
   * the proxy asks for hosts (an older one does not, and gets its whole scope).
   */
  configFor(
    kind: ProxyKind,
    namespace: string,
    pod: string,
    subscribed?: readonly EgressHost[],
    onDemand = true,
  ): GeneratedConfig | null {
    const info = this.opts.registry.pod(namespace, pod);
    if (!info) return null;
    return this.opts.generator.forProxy(this.opts.registry.snapshot(), kind, info, subscribed, { onDemand });
  }

  /**
   * What stream `id` would be sent now, its on-demand subscriptions included; null when the
   * stream is gone or its pod unknown (`weftctl proxy-status` compares it with what was ACKed).
   */
  configOfStream(id: number): GeneratedConfig | null {
    const c = this.connections.get(id);
    return c === undefined ? null : this.configOf(c);
  }

  /** What a stream is sent now: its pod's config with the stream's subscriptions. */
  private configOf(conn: Connection): GeneratedConfig | null {
    const { kind, namespace, pod, asksOnDemand } = conn.info;
    return this.configFor(kind, namespace, pod, conn.onDemand?.list(), asksOnDemand);
  }

  /**
   * What the proxy of pod ns/name is sent now: its newest stream's config, subscriptions
   * included; with no stream, what a new proxy of it would get.
   */
  configOfPod(kind: ProxyKind, namespace: string, pod: string): GeneratedConfig | null {
    const newest = this.newestStream({ kind, namespace, pod });
    return newest !== undefined ? this.configOf(newest) : this.configFor(kind, namespace, pod);
  }

  /** Brings one stream up to date; `firstChangeAt` (performance.now()) feeds the convergence histogram. */
  private update(conn: Connection, firstChangeAt?: number, resend = false): void {
    const { registry, metrics } = this.opts;
    if (!registry.synced()) return; // the sync itself triggers a push
    const { info } = conn;
    const evaluatedAt = registry.generation;
    let generated: GeneratedConfig | null;
    try {
      generated = this.configOf(conn);
      if (generated !== null && !info.serviceDomains) generated = spelledOut(generated);
    } catch (err) {
      conn.log.error('Could not build a config', { error: errorMessage(err) });
      return;
    }
    if (generated === null) {
      // keep the stream: the informer may not have seen the pod yet; a deleted pod keeps its last config
      if (info.state === 'waiting-for-sync') {
        info.state = 'pod-unknown';
        this.write(conn, {
          type: 'error',
          code: 'WEFT_POD_UNKNOWN',
          message: `weftd does not know pod ${info.namespace}/${info.pod} yet; its config follows as soon as it does`,
        });
      }
      return;
    }
    if (generated.version === info.version && !resend) {
      // nothing new for this proxy up to this generation: if it runs this version, it is current
      info.evaluatedAt = evaluatedAt;
      if (info.acked?.version === info.version) info.runningAt = evaluatedAt;
      this.emitProgress();
      return;
    }
    const nonce = newNonce();
    const push = this.encodePush(conn, generated, nonce);
    const ok = this.writeLine(conn, push.line, false);
    const kind = push.delta ? 'delta' : 'config';
    metrics.pushes.inc({ type: ok ? kind : `${kind}_senderr` });
    if (!ok) return;
    // a whole config's bytes are counted when it is made, at its turn (writeSliced)
    if (typeof push.line === 'string')
      metrics.pushedBytes.inc({ kind: 'delta' }, Buffer.byteLength(push.line));
    if (info.sent) this.nonces.delete(info.sent.nonce);
    this.nonces.set(nonce, info.id);
    info.sent = { version: generated.version, nonce, at: new Date().toISOString() };
    if (conn.held) {
      info.sent.delta = push.delta;
      if (push.held) info.sent.state = push.held.state;
      if (push.summary) {
        info.sent.changed = push.summary.changed.slice(0, DEBUG_NAMES);
        info.sent.removed = push.summary.removed.slice(0, DEBUG_NAMES);
      }
      conn.held.sent = push.held;
      conn.held.announced = undefined;
      if (push.delta) info.delta.deltas++;
      else info.delta.fulls++;
    }
    info.version = generated.version;
    info.evaluatedAt = evaluatedAt;
    this.emitProgress();
    info.pushes++;
    info.state = 'configured';
    if (firstChangeAt !== undefined) metrics.convergence.observe((performance.now() - firstChangeAt) / 1000);
    if (conn.log.isDebugEnabled()) conn.log.debug('Pushed config', { version: generated.version });
  }

  /**
   * The line of one push: the whole config (with its state hash on a delta stream), or on a delta
   * stream that weftd knows the state of, only what changed. `held`: the state the proxy will hold.
   */
  private encodePush(
    conn: Connection,
    generated: GeneratedConfig,
    nonce: string,
  ): { line: Line; delta: boolean; held: HeldState | null; summary?: DeltaSummary } {
    const held = conn.held;
    const whole = (state?: string): WholeLine => {
      let text: string | undefined;
      return { make: () => (text ??= withNonce(generated.encode(), nonce, state)) };
    };
    if (held === undefined) return { line: whole(), delta: false, held: null };
    let next: Planned | null;
    try {
      next = planFor(generated.config);
    } catch (err) {
      conn.log.error('Could not split a config into resources; pushing it whole', {
        error: errorMessage(err),
      });
      next = null;
    }
    if (next === null) {
      this.opts.metrics.deltaFallbacks.inc({ reason: 'unsplittable' });
      return { line: whole(), delta: false, held: null };
    }
    // a newer line replacing a waiting backlog starts from where the backlog started: the
    // proxy never sees the replaced one
    const waiting = conn.blocked && conn.backlog !== undefined;
    let from = waiting ? held.backlogBase : held.sent;
    if (from === null && held.announced !== undefined && held.announced === next.held.state) from = next.held;
    if (!waiting) held.backlogBase = from;
    if (from !== null) {
      const d = encodeDelta(from, next, generated.version, nonce, () => generated.encode().length);
      if (d !== null) {
        if (conn.log.isDebugEnabled())
          conn.log.debug('Delta push', {
            changed: d.summary.changed.length,
            removed: d.summary.removed.length,
          });
        return { line: d.line, delta: true, held: next.held, summary: d.summary };
      }
      this.opts.metrics.deltaFallbacks.inc({ reason: 'too_large' });
    } else if (held.announced !== undefined) {
      this.opts.metrics.deltaFallbacks.inc({ reason: 'resume_unknown' });
    }
    return { line: whole(next.held.state), delta: false, held: next.held };
  }

  /** Writes a message, or keeps it as the backlog while the socket drains; false when the stream is gone. */
  private write(conn: Connection, msg: DiscoveryMessage): boolean {
    return this.writeLine(conn, encodeMessage(msg), msg.type === 'ping');
  }

  private writeLine(conn: Connection, line: Line, isPing: boolean): boolean {
    const { out } = conn;
    if (out.destroyed || out.writableEnded) return false;
    if (conn.blocked) {
      if (!isPing) conn.backlog = line;
      return true;
    }
    this.send(conn, line);
    return true;
  }

  /**
   * Writes a line on a stream that is not blocked: a short one at once; a large one (a whole
   * config) waits for the write budget as the stream's backlog (a newer push replaces it, and
   * encodePush diffs from where it started), then goes out in slices (controlplane/pushwrite.ts).
   */
  private send(conn: Connection, line: Line): void {
    if (typeof line === 'string' && line.length < SLICED_LINE_CHARS) {
      if (!conn.out.write(line)) this.waitForDrain(conn);
      return;
    }
    conn.blocked = true;
    conn.backlog = line;
    const turn = this.writeBudget.acquire(
      // asked of the head of the queue only: its line is made then (it starts next)
      () => Buffer.byteLength(madeLine(conn.backlog) ?? ''),
      (bytes, waitedMs) => this.writeSliced(conn, bytes, waitedMs),
    );
    if (!turn.queued) return;
    conn.budgetTurn = turn;
    if (conn.log.isDebugEnabled())
      conn.log.debug('Config waits for the write budget', {
        inFlightBytes: this.writeBudget.inFlightBytes,
        waiting: this.writeBudget.waiting,
      });
  }

  /** The stream's turn: writes its newest backlog in slices, then whatever was pushed meanwhile. */
  private writeSliced(conn: Connection, bytes: number, waitedMs: number): void {
    conn.budgetTurn = undefined;
    const line = madeLine(conn.backlog);
    const whole = typeof conn.backlog === 'object';
    conn.backlog = undefined;
    if (line === undefined || conn.out.destroyed) return this.writeBudget.release(bytes);
    if (whole) this.opts.metrics.pushedBytes.inc({ kind: 'full' }, bytes);
    if (waitedMs > 0 && conn.log.isDebugEnabled())
      conn.log.debug('Config written after waiting for the write budget', {
        waitedMs: Math.round(waitedMs),
        bytes,
      });
    let counted = true;
    const giveBack = (): void => {
      if (counted) this.writeBudget.release(bytes);
      counted = false;
    };
    const stall = {
      ms: this.opts.writeStallMs ?? WRITE_STALL_MS,
      onStall: () => {
        conn.log.info('Proxy reads its config too slowly; it no longer holds the write budget', {
          bytes,
          stalledMs: stall.ms,
        });
        giveBack();
      },
    };
    sliceWrite(
      conn.out,
      line,
      (flushed) => {
        conn.blocked = false;
        giveBack();
        const pending = conn.backlog;
        conn.backlog = undefined;
        if (flushed && pending !== undefined && !conn.out.destroyed) this.send(conn, pending);
      },
      stall,
    );
  }

  /**
   * Marks the stream blocked until the socket drains, then sends the newest backlog. That write
   * can back up again, so every flush that fills the buffer waits for its own drain: one missed
   * re-arm would stall the stream for good.
   */
  private waitForDrain(conn: Connection): void {
    conn.blocked = true;
    conn.out.once('drain', () => {
      conn.blocked = false;
      const pending = conn.backlog;
      conn.backlog = undefined;
      if (pending !== undefined && !conn.out.destroyed) this.send(conn, pending);
    });
  }

  private pushAll(firstChangeAt: number): void {
    this.pushCycles++;
    const snapshot = this.opts.registry.snapshot();
    this.opts.metrics.services.set(snapshot.services.length);
    this.opts.metrics.virtualServices.set(snapshot.virtualServices.length);
    for (const conn of this.connections.values()) this.update(conn, firstChangeAt);
  }

  private pingAll(): void {
    for (const conn of this.connections.values()) if (!conn.blocked) this.write(conn, { type: 'ping' });
  }

  list(): ConnectionInfo[] {
    return [...this.connections.values()].map((c) => ({
      ...c.info,
      delta: { ...c.info.delta },
      ...(c.onDemand ? { onDemand: c.onDemand.list().map(egressRef) } : {}),
    }));
  }

  /** The connection a push's nonce was sent on (tests, debug). */
  connectionOf(nonce: string): ConnectionInfo | undefined {
    const id = this.nonces.get(nonce);
    const c = id === undefined ? undefined : this.connections.get(id);
    return c ? { ...c.info } : undefined;
  }

  /**
   * Ends every stream (proxies reconnect elsewhere) and stops pushing. Every upgraded socket is
   * closed here too, streams and those still opening or refused: the HTTP server no longer counts
   * them (closeAllConnections would miss them, and its close() would wait for their clients); an
   * upgrade arriving, or a review ending, after this is closed at once.
   */
  close(): void {
    this.closed = true;
    this.debouncer.stop();
    clearInterval(this.pinger);
    for (const c of this.connections.values()) c.out.end();
    for (const socket of this.upgraded) socket.destroy();
  }
}

/** The `error_type` label of a refused certificate request. */
export function refusalType(err: unknown): string {
  if (isWeftError(err, 'WEFT_CA_NOT_READY')) return 'not_ready';
  if (isWeftError(err, 'WEFT_INPUT_TOO_LARGE')) return 'malformed';
  if (!isWeftError(err, 'WEFT_CSR_INVALID')) return 'other';
  const reason = err.details?.reason;
  return typeof reason === 'string' ? reason : 'malformed';
}

const CONFIG_PREFIX = '{"type":"config",';

/**
 * Puts the push's nonce into a config line built by ConfigGenerator.encode() (shared by every
 * proxy of a version, so the nonce cannot be in it): one short splice, no re-serialization.
 */
export function withNonce(line: string, nonce: string, state?: string): string {
  if (!line.startsWith(CONFIG_PREFIX)) throw new Error('not a config line');
  const s = state === undefined ? '' : `"state":${JSON.stringify(state)},`;
  return `${CONFIG_PREFIX}"nonce":${JSON.stringify(nonce)},${s}${line.slice(CONFIG_PREFIX.length)}`;
}

/** A line's text (a whole config is made on the first call). */
function madeLine(line: Line | undefined): string | undefined {
  return typeof line === 'object' ? line.make() : line;
}

/** An answer on an upgraded stream must name that stream's own proxy. */
function ownAnswer(info: ConnectionInfo, m: ProxyMessage): void {
  if (m.kind !== info.kind || m.namespace !== info.namespace || m.pod !== info.pod)
    throw new WeftError(
      'WEFT_DISCOVERY_ACK_INVALID',
      `an answer on the stream of ${proxyKey(info)} named ${proxyKey(m)}: a stream carries its own proxy's answers only`,
    );
}

/** The resume cache's key: a state is only ever resumed by the proxy it was sent to. */
function proxyKey(info: Pick<ConnectionInfo, 'kind' | 'namespace' | 'pod'>): string {
  return `${info.kind}/${info.namespace}/${info.pod}`;
}

async function readJson(req: IncomingMessage, limit: number, invalid: ErrorCode): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new WeftError('WEFT_INPUT_TOO_LARGE', `request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new WeftError(invalid, `the body is not JSON: ${errorMessage(err)}`);
  }
}
