/**
 * HTTP/1.1 Upgrade (RFC 9110 §7.8), Envoy's model: an upgrade request is an ordinary routed
 * request (route actions, faults, circuit breaker, timeouts, header ops, rewrite, metrics and
 * access log all come from the Exchange), and it becomes a tunnel only when the listener allows
 * its token (`upgradeTypes`, default websocket) and the upstream answers 101 naming that token.
 * Anything else is relayed as HTTP and the client connection goes on being parsed request by
 * request. A token the listener does not allow (h2c, made-up ones) is forwarded as a plain
 * request: the Upgrade and HTTP2-Settings headers are hop-by-hop and stripped.
 *
 * node:http lets go of the socket for an upgrade request (its 'upgrade' event). The bytes the
 * client sent after the request head are held here: before a 101 they never reach the upstream
 * (where they could be read as a new, unrouted request). The Exchange answers through a
 * ServerResponse attached to the bare socket; once that response is finished the held bytes are
 * put back in front of the socket and the server is handed the socket again as a connection, so
 * HTTP parsing resumes exactly where it stopped. We do not let node:http decline the upgrade
 * (shouldUpgradeCallback → false) for requests without a body: it then drops whatever was
 * pipelined behind the request in the same read (Node 26), and that request would vanish.
 *
 * The handshake goes to the endpoint on a fresh connection, never a pooled one (the connection
 * becomes the tunnel), through node:http's client: its llhttp parser reads the 101 or the refusal
 * with strict framing, and the pooled client (upstream/h1client.ts) rejects 101 by design.
 */
import type {
  IncomingMessage,
  ServerResponse,
  ClientRequest as HttpClientRequest,
  Server as HttpServer,
} from 'node:http';
import { http } from '../pkg/builtins/index.js';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { CompiledHttpListener } from './compile/compile.js';
import type { EndpointRuntime } from './upstream/cluster.js';
import {
  UpstreamError,
  unsendable,
  type Controller,
  type Headers,
  type RequestSpec,
  type ResponseHandler,
} from './upstream/h1client.js';
import { join } from './tcp.js';
import type { Connect } from './upstream/tls.js';

/** Envoy's stream idle timeout, as the pooled client applies it: a handshake silent this long fails. */
const HANDSHAKE_IDLE_MS = 300_000;
/** The largest response head accepted from an upstream (the pooled client's limit too). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** What the Exchange needs to forward an allowed upgrade and turn a 101 into a tunnel. */
export interface UpgradeHook {
  /** Puts the upgrade back on the forwarded headers (forwardableHeaders stripped it as hop-by-hop). */
  offer(headers: Headers): void;
  /**
   * One attempt on a fresh connection to `ep`; the handler sees a 101 as a response start.
   * `connect` is the cluster's connection factory (mesh mTLS / TLS origination), null for plaintext.
   */
  dispatch(
    ep: EndpointRuntime,
    connectTimeoutMs: number,
    spec: RequestSpec,
    handler: ResponseHandler,
    connect: Connect | null,
  ): void;
  /**
   * The upstream answered 101 (on `c`, a controller from dispatch): writes it to the client with
   * `headers` and joins the two connections; `onEnd` runs once when the tunnel closes. Throws if
   * a header cannot be written (nothing was sent then).
   */
  tunnel(c: Controller, headers: Record<string, string | string[]>, onEnd: (tally: Tally) => void): void;
}

/** Bytes through a tunnel: client → upstream, upstream → client. */
export interface Tally {
  sent: number;
  received: number;
}

/** shouldUpgradeCallback: node:http hands us every upgrade request without a body. */
export function takesUpgrade(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (cl === undefined || Number(cl) === 0);
}

/**
 * An upgrade request node:http answered on its own request path: one with a body. Node 26 drops
 * the bytes pipelined behind such a request in the same read, so its response must close the
 * connection (the client then knows to resend them, RFC 9112 §9.3.2) instead of losing them.
 */
export function declinedUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade !== undefined && /(^|,)\s*upgrade\s*(,|$)/i.test(req.headers.connection ?? '');
}

/** The request's Upgrade token if the listener may tunnel it (HTTP/1.1 only), else null. */
export function allowedUpgrade(req: IncomingMessage, l: CompiledHttpListener): string | null {
  const v = req.headers.upgrade;
  if (req.httpVersion !== '1.1' || v === undefined) return null;
  const token = v.trim().toLowerCase();
  return l.upgradeTypes.has(token) ? token : null;
}

/** Whether the client asked to keep the connection (HTTP/1.1 without `Connection: close`). */
function clientKeepAlive(req: IncomingMessage): boolean {
  return req.httpVersion === '1.1' && !/(^|,)\s*close\s*(,|$)/i.test(req.headers.connection ?? '');
}

/**
 * A client connection node:http let go of for one upgrade request: the response the Exchange
 * writes on it, the bytes held behind the request, and (for an allowed token) the hook that
 * forwards the upgrade and builds the tunnel.
 */
export class DetachedUpgrade implements UpgradeHook {
  readonly res: ServerResponse;
  private readonly onError = (): void => void this.socket.destroy();

  constructor(
    private readonly server: HttpServer,
    req: IncomingMessage,
    private readonly socket: net.Socket,
    private readonly held: Buffer,
    /** The allowed token, or null: the request is forwarded as plain HTTP. */
    readonly token: string | null,
    draining: boolean,
  ) {
    const res = (this.res = new http.ServerResponse(req));
    const keepAlive = !draining && clientKeepAlive(req);
    res.shouldKeepAlive = keepAlive;
    socket.on('error', this.onError);
    socket.setTimeout(0); // a keep-alive timer of the parser that let go must not fire later
    res.assignSocket(socket);
    res.once('finish', () => this.resumeHttp(keepAlive));
  }

  /** The response is written: HTTP parsing resumes on the held bytes, or the connection ends. */
  private resumeHttp(keepAlive: boolean): void {
    const { res, socket } = this;
    res.detachSocket(socket);
    process.nextTick(() => res.emit('close')); // what node:http does after 'finish'
    socket.off('error', this.onError);
    if (socket.destroyed) return;
    if (!keepAlive || /close/i.test(String(res.getHeader('connection') ?? ''))) {
      socket.destroySoon();
      return;
    }
    if (this.held.length > 0) socket.unshift(this.held);
    this.server.emit('connection', socket);
  }

  offer(headers: Headers): void {
    headers.connection = 'upgrade';
    headers.upgrade = this.token!;
  }

  dispatch(
    ep: EndpointRuntime,
    connectTimeoutMs: number,
    spec: RequestSpec,
    handler: ResponseHandler,
    connect: Connect | null,
  ): void {
    new Handshake(handler, this.token!).start(ep, connectTimeoutMs, spec, connect);
  }

  tunnel(c: Controller, headers: Record<string, string | string[]>, onEnd: (tally: Tally) => void): void {
    if (!(c instanceof Handshake) || c.switched === null)
      throw new Error('tunnel() needs a switched handshake');
    const sw = c.switched;
    const head = switchingHead(headers, sw.upgrade); // throws before anything is written
    sw.taken = true;
    const { res, socket: client } = this;
    const upstream = sw.socket;
    res.detachSocket(client);
    client.off('error', this.onError);
    const tally: Tally = { sent: this.held.length, received: sw.head.length };
    const end = (): void => {
      onEnd(tally);
      res.emit('close');
    };
    if (client.destroyed) {
      upstream.destroy();
      return end();
    }
    client.write(head);
    if (sw.head.length > 0) client.write(sw.head);
    if (this.held.length > 0) upstream.write(this.held);
    join(client, upstream, end);
    client.on('data', (d: Buffer) => (tally.sent += d.length));
    upstream.on('data', (d: Buffer) => (tally.received += d.length));
  }
}

/** The 101 as the client gets it: the upstream's end-to-end headers, then the upgrade itself. */
function switchingHead(headers: Record<string, string | string[]>, upgrade: string): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const k in headers) {
    if (k === 'content-length') continue; // a 1xx has no body (RFC 9110 §8.6)
    const v = headers[k]!;
    for (const x of typeof v === 'string' ? [v] : v) {
      http.validateHeaderName(k);
      http.validateHeaderValue(k, x);
      head += `${k}: ${x}\r\n`;
    }
  }
  return `${head}connection: Upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
}

/** The upstream side of one upgrade attempt (a Controller for the Exchange). */
class Handshake implements Controller {
  /** Set on a valid 101: the upstream connection and the bytes it sent after the head. */
  switched: { socket: net.Socket; head: Buffer; upgrade: string; taken: boolean } | null = null;
  private req: HttpClientRequest | null = null;
  private res: IncomingMessage | null = null;
  private done = false;
  /** The connection is ready (TCP, or the TLS handshake when the cluster originates TLS). */
  private connected = false;

  constructor(
    private readonly handler: ResponseHandler,
    private readonly token: string,
  ) {}

  start(ep: EndpointRuntime, connectTimeoutMs: number, spec: RequestSpec, connect: Connect | null): void {
    this.handler.onRequestStart(this);
    if (this.done) return; // aborted in onRequestStart
    // a head no upstream may be sent (a rewrite made it): the proxy's own fault, 503 DPE as for
    // any request (exchange.ts unsendableReply), not the endpoint's
    const bad = unsendable(spec);
    if (bad !== null) return this.fail(new UpstreamError(bad, 'EINVALIDHEADER'));
    let req: HttpClientRequest;
    // the upgrade is encrypted like any request to this endpoint (mesh mTLS, SAN check → UF)
    const opened = connect?.(ep.address, ep.port) ?? null;
    try {
      req = http.request({
        // node:http uses createConnection only without an agent (agent: false would make one)
        ...(opened === null ? { agent: false } : { createConnection: () => opened.socket }),
        host: ep.address,
        port: ep.port,
        method: spec.method,
        path: spec.path,
        headers: definedHeaders(spec.headers),
        setHost: false,
        maxHeaderSize: MAX_RESPONSE_HEAD_BYTES,
      });
    } catch (err) {
      return this.fail(
        new UpstreamError(`cannot send the upgrade request: ${(err as Error).message}`, 'EREQUEST'),
      );
    }
    this.req = req;
    req.on('socket', (s: net.Socket) => this.watch(s, connectTimeoutMs, opened?.readyEvent ?? 'connect'));
    req.on('response', (res: IncomingMessage) => this.onResponse(res));
    req.on('upgrade', (res: IncomingMessage, s: net.Socket, head: Buffer) => this.onSwitch(res, s, head));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = !this.connected ? opened?.errorCode?.(e) : undefined;
      this.fail(
        code === undefined ? upstreamError(e, this.res === null) : new UpstreamError(e.message, code),
      );
    });
    const body = spec.body;
    if (body === null) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else (body as Readable).pipe(req);
  }

  /** Connect timeout, then the stream idle timeout until the response head. */
  private watch(s: net.Socket, connectTimeoutMs: number, readyEvent: 'connect' | 'secureConnect'): void {
    s.setNoDelay(true);
    s.setTimeout(connectTimeoutMs);
    s.once(readyEvent, () => {
      this.connected = true;
      s.setTimeout(HANDSHAKE_IDLE_MS);
    });
    s.on('timeout', () => {
      if (this.switched !== null) return;
      this.fail(
        this.connected
          ? new UpstreamError(
              `upstream idle for ${HANDSHAKE_IDLE_MS / 1000} s`,
              'ETIMEDOUT_STREAM',
              false,
              this.res === null,
            )
          : new UpstreamError(`connect timeout after ${connectTimeoutMs} ms`, 'ETIMEDOUT_CONNECT'),
      );
    });
  }

  /** Not a 101: an ordinary response, relayed; the connection is closed after it. */
  private onResponse(res: IncomingMessage): void {
    this.res = res;
    this.handler.onResponseStart(this, res.statusCode ?? 0, headerMap(res.rawHeaders));
    if (this.done) return;
    res.on('data', (c: Buffer) => {
      if (!this.done) this.handler.onResponseData(this, c);
    });
    res.once('end', () => {
      if (this.done) return;
      this.done = true;
      this.handler.onResponseEnd(this);
      this.req?.destroy();
    });
    res.once('error', (e: NodeJS.ErrnoException) => this.fail(upstreamError(e, false)));
    res.once('close', () => {
      if (!res.complete)
        this.fail(new UpstreamError('upstream closed mid-response', 'ECONNRESET', false, false));
    });
  }

  private onSwitch(res: IncomingMessage, s: net.Socket, head: Buffer): void {
    this.res = res;
    s.setTimeout(0);
    const upgrade = (res.headers.upgrade ?? '').trim();
    if (upgrade.toLowerCase() !== this.token) {
      s.destroy();
      return this.fail(
        new UpstreamError(
          `upstream protocol error: 101 to ${JSON.stringify(upgrade)} when ${JSON.stringify(this.token)} was offered`,
          'EPROTO_UPSTREAM',
          false,
          false,
        ),
      );
    }
    const sw = (this.switched = { socket: s, head, upgrade, taken: false });
    this.handler.onResponseStart(this, 101, headerMap(res.rawHeaders));
    if (sw.taken) this.done = true;
    else this.fail(new Error('101 not taken')); // the exchange did not want it (superseded)
  }

  abort(err: Error): void {
    if (this.switched?.taken === true) return void this.switched.socket.destroy();
    this.fail(err);
  }
  pause(): void {
    this.res?.pause();
  }
  resume(): void {
    this.res?.resume();
  }

  private fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.req?.destroy();
    this.switched?.socket.destroy(); // detached from req by the 101
    this.handler.onResponseError(this, err);
  }
}

/** node:http client errors in the pooled client's vocabulary (the Exchange's flags depend on it). */
function upstreamError(e: NodeJS.ErrnoException, beforeResponse: boolean): UpstreamError {
  const code = e.code ?? 'ESOCKET';
  if (code.startsWith('HPE_'))
    return new UpstreamError(`upstream protocol error: ${e.message}`, 'EPROTO_UPSTREAM', false, false);
  return new UpstreamError(e.message, code, false, beforeResponse);
}

function definedHeaders(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) if (h[k] !== undefined) out[k] = h[k];
  return out;
}

/** Lowercased names; a repeated header becomes a list (as the pooled client reports it). */
function headerMap(raw: string[]): Headers {
  const out: Headers = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const v = raw[i + 1]!;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}
