/**
 * The sidecar's capture listeners, where iptables REDIRECT delivers the pod's traffic:
 *
 * - outbound (15001): the first bytes decide. An HTTP/1.x request whose Host names a virtual host
 *   of the outbound config goes to the proxy's HTTP router (routing, retries, metrics: exactly
 *   standalone mode). Anything else — an unknown Host, TLS, a database protocol, a client that
 *   says nothing first — is piped as TCP to the original destination (Istio's PassthroughCluster).
 *   Under outboundTrafficPolicy REGISTRY_ONLY (the proxy's Sidecar) an unknown Host is answered
 *   404 NR by the router and TCP to a destination outside the registry is closed and counted
 *   (`weft_proxy_blackhole_connections_total`, Istio's BlackHoleCluster).
 *
 * Inbound (15006) is proxy/inbound/listener.ts (mesh mTLS, PeerAuthentication, HTTP or TCP to the
 * app); it shares readHead and hostPort from here.
 *
 * A connection to a declared TCP or TLS port of a known service (ProxyConfig.outboundTcp) is not
 * sniffed: its VirtualService tcp/tls routes (or the service itself) take it (proxy/tcp-route.ts).
 * TLS to any other address on a port with a catch-all (DNS ServiceEntries without addresses) is
 * routed by its SNI to the entry's cluster; what names no entry goes on as above.
 *
 * The original destination comes from the native addon (proxy/native). Without it, HTTP is still
 * routed by Host and other traffic cannot be passed through (the connection is closed and counted).
 */
import net from 'node:net';
import type { Logger } from '../../pkg/log/index.js';
import { findVHost, type CompiledHttpListener } from '../compile/compile.js';
import { originalDst, type OriginalDst } from '../native/original_dst.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import { splice } from '../tcp.js';
import { rememberOriginalDst } from '../upstream/origdst.js';
import { inspectClientHello } from '../inbound/clienthello.js';
import { readFirstBytes } from '../inbound/listener.js';
import type { RegistryOnly } from './registry-only.js';
import { prefaceVerdict } from '../h2/downstream.js';
import type { OutboundTcpEntry, OutboundTcpTable } from './outbound-tcp.js';
import { routeBySni, routeL4, sniRouted, type L4Env } from '../tcp-route.js';
import { markUnresolved } from '../router/unresolved.js';
import { onDemandHostName } from '../../pkg/discovery/protocol.js';
import type { OnDemandVerdict } from './ondemand.js';

/** Bytes to look at before deciding; an HTTP request head larger than this is passed through. */
const MAX_SNIFF_BYTES = 16 * 1024;
const HTTP_METHOD = /^[A-Z]{3,12} /;
const HTTP_REQUEST_LINE = /^[A-Z]{3,12} \S+ HTTP\/1\.[01]\r?\n/;

export type Sniffed =
  | { kind: 'http'; host: string | null }
  /** The HTTP/2 connection preface (h2c with prior knowledge): its authority is in HPACK. */
  | { kind: 'h2' }
  | { kind: 'tcp' }
  /** Not enough bytes yet to tell. */
  | { kind: 'more' };

/** Classifies the first bytes of a connection (pure: unit-tested). */
export function sniff(buf: Buffer, final = false): Sniffed {
  const h2 = prefaceVerdict(buf);
  if (h2 === 'h2') return { kind: 'h2' };
  if (h2 === 'more' && !final) return { kind: 'more' };
  const text = buf.subarray(0, MAX_SNIFF_BYTES).toString('latin1');
  if (!HTTP_METHOD.test(text)) {
    if (text.length < 13 && /^[A-Z]*$/.test(text) && !final) return { kind: 'more' };
    return { kind: 'tcp' };
  }
  const lineEnd = text.indexOf('\n');
  if (lineEnd < 0) return final || text.length >= MAX_SNIFF_BYTES ? { kind: 'tcp' } : { kind: 'more' };
  if (!HTTP_REQUEST_LINE.test(text)) return { kind: 'tcp' };
  const headEnd = text.search(/\r?\n\r?\n/);
  if (headEnd < 0) {
    if (final || buf.length >= MAX_SNIFF_BYTES) return { kind: 'http', host: hostHeader(text) };
    return { kind: 'more' };
  }
  return { kind: 'http', host: hostHeader(text.slice(0, headEnd)) };
}

function hostHeader(head: string): string | null {
  const m = /\r?\nhost:[ \t]*([^\r\n]*)/i.exec(head);
  return m ? m[1]!.trim() : null;
}

/** The port in a Host value (`reviews:9080` → 9080; none, or not a port number → 80). */
export function hostPort(host: string): number {
  const m = /:(\d{1,5})$/.exec(host);
  const port = m ? Number(m[1]) : 80;
  // net.connect throws on a port out of range: a Host header must never get that far
  return port >= 1 && port <= 65535 ? port : 80;
}

/**
 * Reads until `sniff` can decide (or `timeoutMs` passes with no decision: a server-first
 * protocol). The bytes read are returned to be replayed.
 */
export function readHead(
  socket: net.Socket,
  timeoutMs: number,
): Promise<{ head: Buffer; verdict: Sniffed; timedOut: boolean }> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    const done = (final: boolean, timedOut = false): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      const verdict = sniff(head, final);
      resolve({ head, verdict: verdict.kind === 'more' ? { kind: 'tcp' } : verdict, timedOut });
    };
    const onData = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      if (sniff(head).kind !== 'more') done(false);
    };
    const onEnd = (): void => done(true);
    const timer = setTimeout(() => done(true, true), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    // A client that connects and resets (a TCP health check) never sends 'end'.
    socket.once('close', onEnd);
  });
}

/** Istio's default connect timeout (10 s): a blackholed destination must not hold a drain for the kernel's SYN timeout. */
const PASSTHROUGH_CONNECT_TIMEOUT_MS = 10_000;

/** Pipes `client` (with `head` already read from it) to host:port; either side closing ends both. */
export function pipeTo(
  client: net.Socket,
  head: Buffer,
  target: { host: string; port: number; localAddress?: string | undefined },
  log: Logger,
  what: string,
): void {
  // The client may have reset while we sniffed: opening the upstream now would leak it.
  if (client.destroyed) return;
  const upstream = splice(client, target, PASSTHROUGH_CONNECT_TIMEOUT_MS, head, ({ connected, error }) => {
    if (error && !connected)
      log.warn('Pass-through connect failed', {
        to: `${target.host}:${target.port}`,
        what,
        error: error.message,
      });
  });
  upstream.setNoDelay(true);
}

export interface CaptureEnv {
  log: Logger;
  metrics: MetricsRegistry;
  /** The outbound HTTP listener of the config in force (null before the first config). */
  outboundHttp: () => CompiledHttpListener | null;
  /** Serve the socket on the HTTP router. */
  handOff: (socket: net.Socket) => boolean;
  /** Declared TCP/TLS service ports with their L4 routes (outbound-tcp.ts); null (or absent): none. */
  outboundTcp?: () => OutboundTcpTable | null;
  /** The proxy's L4 settings (access log, hello timeout); absent: `log` and `metrics` only. */
  l4Env?: () => L4Env;
  /** REGISTRY_ONLY's known destinations in the config in force; null (or absent): ALLOW_ANY. */
  registryOnly?: () => RegistryOnly | null;
  /**
   * On-demand hosts (ADR 0023, ondemand.ts): holds an HTTP request whose Host (or a TCP/h2c
   * connection whose original destination address, or a TLS connection whose SNI) the config
   * does not know until weftd sent it or the hold ended; `held` says when it is known. Absent or
   * null: off.
   */
  onDemand?: () => ((authority: string, held?: () => boolean) => Promise<OnDemandVerdict>) | null;
  /** The pod IP (INSTANCE_IP) the app listens on; 127.0.0.1 when unknown. */
  appHost: string;
  /** The capture ports themselves: a connection "originally" to them is not passed through. */
  capturePorts: number[];
  sniffTimeoutMs: number;
  dst?: (s: net.Socket) => OriginalDst | null;
}

let warnedNoDst = false;

function destination(env: CaptureEnv, socket: net.Socket): OriginalDst | null {
  try {
    return (env.dst ?? originalDst)(socket);
  } catch (err) {
    if (!warnedNoDst) env.log.warn('Cannot read original destination', { error: (err as Error).message });
    warnedNoDst = true;
    return null;
  }
}

function isSelf(env: CaptureEnv, dst: OriginalDst): boolean {
  return env.capturePorts.includes(dst.port) && (dst.address === '127.0.0.1' || dst.address === env.appHost);
}

/** The SNI of a complete ClientHello in `head`; null for anything else. */
function sniOf(head: Buffer): string | null {
  const v = inspectClientHello(head);
  return v.kind === 'hello' ? v.sni : null;
}

/**
 * `head` grown to a whole ClientHello when it holds the start of one (a post-quantum key share
 * makes it span TCP segments); null when the socket ended first.
 */
async function tlsHead(socket: net.Socket, head: Buffer, timeoutMs: number): Promise<Buffer | null> {
  if (inspectClientHello(head).kind !== 'more') return head;
  socket.unshift(head);
  const r = await readFirstBytes(socket, timeoutMs);
  return socket.destroyed ? null : r.head;
}

/**
 * h2c with prior knowledge goes to the HTTP router when the original destination is a service
 * address and port the outbound config has a virtual host for (`10.96.0.7:50051`): the preface
 * carries no authority to look up, as an HTTP/1 request's Host is. Anything else stays a pipe.
 */
function routesH2(l: CompiledHttpListener, dst: OriginalDst): boolean {
  const key = dst.address.includes(':') ? `[${dst.address}]:${dst.port}` : `${dst.address}:${dst.port}`;
  return l.exact.has(key);
}

/**
 * A declared TCP or TLS port of a known service: routed by its tcp/tls routes at once, never
 * sniffed (a server-first protocol's client says nothing until the server's greeting).
 */
function routedAtL4(env: CaptureEnv, socket: net.Socket, dst: OriginalDst): boolean {
  const svc = env.outboundTcp?.()?.find(dst.address, dst.port) ?? null;
  if (svc === null) return false;
  const addressed = { address: dst.address, port: dst.port, originalDst: true };
  void routeL4(socket, svc.l4, svc.name, addressed, env.l4Env?.() ?? { log: env.log, metrics: env.metrics });
  return true;
}

/**
 * TLS to an address that is no service's, on a port with a catch-all: a ClientHello naming a DNS
 * ServiceEntry's host goes to that entry's cluster (its resolved addresses), never to the address
 * the workload chose, so an allowed SNI cannot carry the connection anywhere else.
 */
function routedBySni(
  env: CaptureEnv,
  socket: net.Socket,
  dst: OriginalDst,
  catchAll: OutboundTcpEntry,
  hello: Buffer,
): boolean {
  const addressed = { address: dst.address, port: dst.port, originalDst: true };
  const l4Env = env.l4Env?.() ?? { log: env.log, metrics: env.metrics };
  return routeBySni(socket, catchAll.l4, catchAll.name, addressed, hello, sniOf(hello), l4Env);
}

/** The metric of protocol detection that ran out of time (a server-first protocol on an undeclared port). */
export const DETECTION_TIMEOUT_METRIC = 'weft_proxy_protocol_detection_timeouts_total';

/**
 * Sniffing waited the whole timeout: usually a server-first protocol (MySQL, SMTP) on a port whose
 * protocol is not declared, delayed on every connection. Counted, and logged at debug with the
 * destination so the port can be found and declared (`tcp-*` name or appProtocol).
 */
function countDetectionTimeout(env: CaptureEnv, dst: OriginalDst | null): void {
  env.metrics.incLabelled(DETECTION_TIMEOUT_METRIC, { side: 'outbound' });
  env.log.debug('Protocol detection timed out; declare the port protocol to skip it', {
    to: dst === null ? 'unknown' : `${dst.address}:${dst.port}`,
    sniffTimeoutMs: env.sniffTimeoutMs,
  });
}

/** Does the config in force route this original destination (TCP table, or h2c to a service address)? */
function knowsDestination(env: CaptureEnv, dst: OriginalDst, h2: boolean): boolean {
  if (env.outboundTcp?.()?.find(dst.address, dst.port)) return true;
  const l = env.outboundHttp();
  return h2 && l !== null && routesH2(l, dst);
}

/** What the on-demand step did with a connection: `continue` leaves it to the usual path. */
type OnDemandStep = 'routed' | 'refused' | 'continue';

let lastRefusalWarnAt = 0;

/**
 * A connection whose destination nobody could resolve in time (ADR 0023, `unresolved`): closed,
 * never passed through, since it may be for a mesh service that must get its routes and mTLS.
 * Counted each time; logged at warn at most every 10 s (the app chooses how many), else debug.
 */
function refuseUnresolved(
  env: CaptureEnv,
  socket: net.Socket,
  dst: OriginalDst,
  asked: string,
): OnDemandStep {
  env.metrics.inc('weft_proxy_passthrough_refused_total');
  const now = Date.now();
  const level = now - lastRefusalWarnAt >= 10_000 ? 'warn' : 'debug';
  if (level === 'warn') lastRefusalWarnAt = now;
  env.log[level]('Outbound connection closed: its destination was not resolved on demand in time', {
    to: `${dst.address}:${dst.port}`,
    asked,
    see: 'weft_proxy_ondemand_requests_total, weftd',
  });
  socket.destroy();
  return 'refused';
}

/**
 * On-demand hosts by address (ADR 0023): TCP or h2c to an original destination this sidecar does
 * not know is held while weftd is asked for the address; when a config that knows it arrives,
 * the connection is routed as if it had been there from the start. `continue`: not on demand,
 * or weftd does not know the address; the caller carries on with `head` unread.
 */
async function routedOnDemand(
  env: CaptureEnv,
  socket: net.Socket,
  dst: OriginalDst,
  verdict: Sniffed,
  head: Buffer,
): Promise<OnDemandStep> {
  const h2 = verdict.kind === 'h2';
  const wait = env.onDemand?.() ?? null;
  if (wait === null || knowsDestination(env, dst, h2)) return 'continue';
  const v = await wait(dst.address, () => knowsDestination(env, dst, h2));
  if (socket.destroyed) return 'refused';
  if (v === 'unresolved') return refuseUnresolved(env, socket, dst, dst.address);
  if (v === 'unknown') return 'continue';
  const l = env.outboundHttp();
  if (h2 && l !== null && routesH2(l, dst)) {
    rememberOriginalDst(socket, dst);
    socket.unshift(head);
    if (env.handOff(socket)) socket.resume();
    else socket.destroy(); // the router is closing (shutdown): nothing else would take it
    return 'routed';
  }
  if (env.outboundTcp?.()?.find(dst.address, dst.port) == null) return 'continue';
  socket.unshift(head);
  return routedAtL4(env, socket, dst) ? 'routed' : 'continue';
}

/** Does a port's catch-all in the config in force route this SNI (a DNS ServiceEntry's host)? */
function routesSni(env: CaptureEnv, dst: OriginalDst, sni: string): boolean {
  const catchAll = env.outboundTcp?.()?.catchAll(dst.port) ?? null;
  return catchAll !== null && sniRouted(catchAll.l4, { address: dst.address, port: dst.port }, sni);
}

/**
 * TLS to an address no service has (ADR 0023): the ClientHello's SNI is asked for, as an HTTP
 * request's Host is, so a DNS ServiceEntry without addresses (an external API) gets its routes
 * (an egress gateway, its DestinationRule) on demand too, instead of a passthrough that would
 * skip them. `continue`: not on demand, no SNI, or weftd does not know the name.
 */
async function routedBySniOnDemand(
  env: CaptureEnv,
  socket: net.Socket,
  dst: OriginalDst,
  hello: Buffer,
): Promise<OnDemandStep> {
  const wait = env.onDemand?.() ?? null;
  const sni = sniOf(hello);
  if (wait === null || sni === null || routesSni(env, dst, sni)) return 'continue';
  const v = await wait(sni, () => routesSni(env, dst, sni));
  if (socket.destroyed) return 'refused';
  if (v === 'unresolved') return refuseUnresolved(env, socket, dst, sni);
  const catchAll = env.outboundTcp?.()?.catchAll(dst.port) ?? null;
  if (v === 'routed' && catchAll !== null && routedBySni(env, socket, dst, catchAll, hello)) return 'routed';
  return 'continue';
}

/**
 * An HTTP request whose Host was not resolved on demand in time (ADR 0023): the router answers
 * it 503 NC saying why (router/unresolved.ts), rather than a passthrough without the mesh.
 */
function refuseUnresolvedHttp(env: CaptureEnv, socket: net.Socket, head: Buffer, host: string): void {
  markUnresolved(socket, onDemandHostName(host) ?? host);
  socket.unshift(head);
  if (env.handOff(socket)) socket.resume();
  else socket.destroy(); // the router is closing (shutdown)
}

export async function onOutbound(env: CaptureEnv, socket: net.Socket): Promise<void> {
  socket.on('error', () => socket.destroy());
  const dst = destination(env, socket);
  if (dst !== null && !isSelf(env, dst) && routedAtL4(env, socket, dst)) return;
  const read = await readHead(socket, env.sniffTimeoutMs);
  if (read.timedOut) countDetectionTimeout(env, dst);
  const { verdict } = read;
  let head = read.head;
  let l = env.outboundHttp();
  const ask = verdict.kind === 'http' && verdict.host !== null ? (env.onDemand?.() ?? null) : null;
  if (
    ask !== null &&
    verdict.kind === 'http' &&
    verdict.host !== null &&
    (l === null || findVHost(l, verdict.host) === null)
  ) {
    // a host this sidecar does not hold yet: weftd may send it (held at most the hold time)
    const v = await ask(verdict.host);
    if (socket.destroyed) return;
    if (v === 'unresolved') return refuseUnresolvedHttp(env, socket, head, verdict.host);
    if (v === 'routed') l = env.outboundHttp();
  }
  if (
    (verdict.kind === 'http' && l !== null && verdict.host !== null && findVHost(l, verdict.host) !== null) ||
    (verdict.kind === 'h2' && l !== null && dst !== null && routesH2(l, dst))
  ) {
    if (dst !== null && !isSelf(env, dst)) rememberOriginalDst(socket, dst); // ORIGINAL_DST clusters
    socket.unshift(head);
    if (env.handOff(socket)) {
      socket.resume();
      return;
    }
  }
  if (
    dst !== null &&
    !isSelf(env, dst) &&
    verdict.kind !== 'http' &&
    (await routedOnDemand(env, socket, dst, verdict, head)) !== 'continue'
  )
    return;
  if (socket.destroyed) return;
  const tlsCandidate = verdict.kind === 'tcp' && head.length > 0 && dst !== null && !isSelf(env, dst);
  const catchAll = tlsCandidate ? (env.outboundTcp?.()?.catchAll(dst.port) ?? null) : null;
  if (tlsCandidate && (catchAll !== null || (env.onDemand?.() ?? null) !== null)) {
    // TLS naming a DNS ServiceEntry's host goes to its cluster; anything else carries on below
    const hello = await tlsHead(socket, head, env.sniffTimeoutMs);
    if (hello === null) return;
    head = hello;
    if (catchAll !== null && routedBySni(env, socket, dst, catchAll, head)) return;
    if ((await routedBySniOnDemand(env, socket, dst, head)) !== 'continue') return;
  }
  const registryOnly = env.registryOnly?.() ?? null;
  if (registryOnly !== null && dst !== null && !isSelf(env, dst)) {
    if ((verdict.kind === 'http' || verdict.kind === 'h2') && env.handOff(socket)) {
      // REGISTRY_ONLY: an HTTP request for a host outside the registry is the router's 404 NR
      socket.unshift(head);
      socket.resume();
      return;
    }
    if (!registryOnly.allows(dst.address, dst.port)) {
      env.metrics.inc('weft_proxy_blackhole_connections_total');
      env.log.debug('Outbound connection outside the registry closed (REGISTRY_ONLY)', {
        to: `${dst.address}:${dst.port}`,
      });
      socket.destroy();
      return;
    }
  }
  if (dst === null || isSelf(env, dst)) {
    if ((verdict.kind === 'http' || verdict.kind === 'h2') && env.handOff(socket)) {
      // no destination to pass through to: the router answers (404 NR for an unknown host)
      socket.unshift(head);
      socket.resume();
      return;
    }
    env.metrics.inc('weft_proxy_passthrough_refused_total');
    env.log.warn('Outbound connection with no known destination closed', {
      reason: dst === null ? 'original destination unknown' : 'addressed to the proxy itself',
    });
    socket.destroy();
    return;
  }
  env.metrics.inc('weft_proxy_passthrough_connections_total');
  pipeTo(socket, head, { host: dst.address, port: dst.port }, env.log, 'outbound passthrough');
}
