/**
 * The discovery and certificate endpoints on weftd's HTTPS port (the wire contract is
 * pkg/discovery/protocol.ts).
 *
 * `GET /v1/discovery`: authenticate, then hold the response open as an NDJSON stream: the proxy's
 * config at once, a new full config whenever a (debounced) registry change gives it a new
 * version, and a ping every PING_INTERVAL_MS. A pod weftd does not know yet (it can connect
 * before the informer sees it) gets one `error` message and its config as soon as the pod shows
 * up. A slow reader never makes weftd buffer a queue of configs: while its socket is backed up
 * only the newest pending config is kept (state of the world: older ones are worthless).
 *
 * `POST /v1/certificates`: authenticate the same way, then hand the CSR to the workload CA for
 * the token's identity.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CERTIFICATES_PATH,
  DISCOVERY_CONTENT_TYPE,
  DISCOVERY_PATH,
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
import type { ConfigGenerator, GeneratedConfig } from './configgen.js';
import { Debouncer } from './debounce.js';
import type { WeftdMetrics } from './metrics.js';
import type { KubeRegistry } from './registry.js';

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
}

interface Connection {
  info: ConnectionInfo;
  res: ServerResponse;
  log: Logger;
  blocked: boolean;
  /** The newest config line not yet written because the socket is backed up. */
  backlog: string | undefined;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  WEFT_DISCOVERY_REQUEST_INVALID: 400,
  WEFT_CSR_INVALID: 400,
  WEFT_INPUT_TOO_LARGE: 413,
  WEFT_UNAUTHENTICATED: 401,
  WEFT_FORBIDDEN: 403,
  WEFT_TOKEN_REVIEW_FAILED: 503,
  WEFT_CA_NOT_READY: 503,
};

export function sendError(res: ServerResponse, err: unknown): void {
  const code: ErrorCode = isWeftError(err) ? err.code : 'WEFT_DISCOVERY_REQUEST_INVALID';
  const explicit = isWeftError(err) ? err.details?.status : undefined;
  const status = typeof explicit === 'number' ? explicit : isWeftError(err) ? (STATUS[err.code] ?? 500) : 500;
  const message = isWeftError(err) ? err.message : errorMessage(err);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  res.writeHead(status, headers).end(`${JSON.stringify({ code, message: `${code}: ${message}` })}\n`);
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
export function authorize(id: Identity, r: DiscoveryRequest): void {
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

export class DiscoveryService {
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;
  /** Debounced push cycles run so far (tests wait on it; /debug/connections shows it). */
  pushCycles = 0;
  private readonly debouncer: Debouncer;
  private readonly pinger: NodeJS.Timeout;

  constructor(private readonly opts: DiscoveryOptions) {
    this.debouncer = new Debouncer((first) => this.pushAll(first), opts.debounce);
    opts.registry.onChange((trigger) => {
      opts.metrics.triggers.inc({ type: trigger });
      this.debouncer.trigger();
    });
    this.pinger = setInterval(() => this.pingAll(), opts.pingIntervalMs ?? PING_INTERVAL_MS);
    this.pinger.unref();
  }

  /** The request handler for the HTTPS server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = requestUrl(req, 'https://weftd');
    if (url === null) return sendError(res, badRequestTarget(req));
    const route =
      url.pathname === DISCOVERY_PATH && req.method === 'GET'
        ? this.discovery(req, res, url)
        : url.pathname === CERTIFICATES_PATH && req.method === 'POST'
          ? this.certificates(req, res)
          : Promise.reject(
              new WeftError(
                'WEFT_DISCOVERY_REQUEST_INVALID',
                `no such endpoint: ${req.method} ${url.pathname} (GET ${DISCOVERY_PATH}, POST ${CERTIFICATES_PATH})`,
                { details: { status: 404 } },
              ),
            );
    route.catch((err: unknown) => {
      if (!isWeftError(err) || (STATUS[err.code] ?? 500) >= 500)
        this.opts.log.warn('Request failed', { path: url.pathname, error: errorMessage(err) });
      if (!res.headersSent) sendError(res, err);
      else res.end();
    });
  };

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

  private async discovery(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const request = parseDiscoveryQuery(url.searchParams);
    const identity = await this.identify(req);
    authorize(identity, request);
    if (res.destroyed) return; // the proxy gave up while the review ran
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
    };
    const conn: Connection = {
      info,
      res,
      log: this.opts.log.child({ conn: info.id, proxy: `${info.kind}/${info.namespace}/${info.pod}` }),
      blocked: false,
      backlog: undefined,
    };
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true, 30_000);
    res.writeHead(200, { 'content-type': DISCOVERY_CONTENT_TYPE, 'cache-control': 'no-store' });
    res.flushHeaders();
    this.connections.set(info.id, conn);
    this.opts.metrics.xds.inc({ type: info.kind });
    conn.log.info('Proxy connected', { remote: info.remote, serviceAccount: info.serviceAccount });
    res.on('close', () => {
      this.connections.delete(info.id);
      this.opts.metrics.xds.dec({ type: info.kind });
      conn.log.info('Proxy disconnected', { pushes: info.pushes, version: info.version });
    });
    this.update(conn);
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
      const body = await readJson(req, MAX_CERT_REQUEST_BYTES);
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

  /** Something outside the registry changed (the mesh config): recompute every stream, debounced. */
  refresh(): void {
    this.opts.metrics.triggers.inc({ type: 'config' });
    this.debouncer.trigger();
  }

  /** What `kind` proxy of pod ns/name would get now; null when the pod is unknown. */
  configFor(kind: ProxyKind, namespace: string, pod: string): GeneratedConfig | null {
    const info = this.opts.registry.pod(namespace, pod);
    if (!info) return null;
    return this.opts.generator.forProxy(this.opts.registry.snapshot(), kind, info);
  }

  /** Brings one stream up to date; `firstChangeAt` (performance.now()) feeds the convergence histogram. */
  private update(conn: Connection, firstChangeAt?: number): void {
    const { registry, metrics } = this.opts;
    if (!registry.synced()) return; // the sync itself triggers a push
    const { info } = conn;
    let generated: GeneratedConfig | null;
    try {
      generated = this.configFor(info.kind, info.namespace, info.pod);
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
    if (generated.version === info.version) return;
    const ok = this.writeLine(conn, generated.encode(), false);
    metrics.pushes.inc({ type: ok ? 'config' : 'config_senderr' });
    if (!ok) return;
    info.version = generated.version;
    info.pushes++;
    info.state = 'configured';
    if (firstChangeAt !== undefined) metrics.convergence.observe((performance.now() - firstChangeAt) / 1000);
    conn.log.debug('Pushed config', { version: generated.version });
  }

  /** Writes a message, or keeps it as the backlog while the socket drains; false when the stream is gone. */
  private write(conn: Connection, msg: DiscoveryMessage): boolean {
    return this.writeLine(conn, encodeMessage(msg), msg.type === 'ping');
  }

  private writeLine(conn: Connection, line: string, isPing: boolean): boolean {
    const { res } = conn;
    if (res.destroyed || res.writableEnded) return false;
    if (conn.blocked) {
      if (!isPing) conn.backlog = line;
      return true;
    }
    if (!res.write(line)) this.waitForDrain(conn);
    return true;
  }

  /**
   * Marks the stream blocked until the socket drains, then writes the newest backlog. That write
   * can back up again (config lines are far larger than the socket buffer), so every flush that
   * fills the buffer waits for its own drain: one missed re-arm would stall the stream for good.
   */
  private waitForDrain(conn: Connection): void {
    conn.blocked = true;
    conn.res.once('drain', () => {
      conn.blocked = false;
      const pending = conn.backlog;
      conn.backlog = undefined;
      if (pending !== undefined && !conn.res.destroyed && !conn.res.write(pending)) this.waitForDrain(conn);
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
    return [...this.connections.values()].map((c) => ({ ...c.info }));
  }

  /** Ends every stream (proxies reconnect elsewhere) and stops pushing. */
  close(): void {
    this.debouncer.stop();
    clearInterval(this.pinger);
    for (const c of this.connections.values()) c.res.end();
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

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
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
    throw new WeftError('WEFT_CSR_INVALID', `the body is not JSON: ${errorMessage(err)}`);
  }
}
