/**
 * VirtualService `tcp:` and `tls:` routes at run time (pkg/proxyconfig/l4.ts): a gateway's TCP and
 * TLS PASSTHROUGH listeners and the sidecar's outbound TCP services hold them.
 *
 * - TLS routes first, when there are any: the ClientHello is read without being consumed (the
 *   inspector of proxy/inbound/clienthello.ts: bounded size, bounded records) within
 *   `helloTimeoutMs`; its SNI picks the first route whose `sniHosts` cover it. The hello is then
 *   replayed to the chosen backend, which terminates TLS itself (nothing is decrypted here).
 * - Then TCP routes: first match by destination port and subnet; no bytes are awaited, so a
 *   server-first protocol (MySQL, SMTP banners) gets its greeting at once.
 * - No route takes the connection: it is closed and counted (`weft_proxy_l4_refused_total`,
 *   reason `no_route`, flag NR in the log); so are a stalled hello, a malformed or oversized one,
 *   and plaintext on a TLS-only listener.
 *
 * Weights pick one destination per connection (Envoy's weighted_clusters on tcp_proxy).
 */
import type net from 'node:net';
import type { Logger } from '../pkg/log/index.js';
import type { L4Route } from '../pkg/proxyconfig/l4.js';
import type { ClusterRuntime } from './upstream/cluster.js';
import type { MetricsRegistry, TcpGroup } from './telemetry/metrics.js';
import { addressSet, hostCovers } from './sidecar/registry-only.js';
import { readFirstBytes } from './inbound/listener.js';
import { HELLO_TIMEOUT_MS } from './gateway-tls.js';
import { l4LogEntry, pipeTcp, pipeToCluster } from './tcp.js';
import type { AccessLog } from './telemetry/accesslog.js';
import type { CompiledTcpListener } from './compile/compile.js';

export const L4_REFUSED_METRIC = 'weft_proxy_l4_refused_total';
/** ClientHellos being read at once, process-wide; more are refused (each holds ≤ 16 KB for ≤ the timeout). */
export const MAX_PENDING_HELLOS = 1024;
/**
 * Of those, from one source address: without it, one client holding 1,024 silent connections
 * (re-opened every hello timeout) had every TLS route of the proxy refuse everyone else.
 */
export const MAX_PENDING_HELLOS_PER_SOURCE = 32;
/** A refused-for-the-limit connection is logged at most this often (the counter counts them all). */
const HELLO_LIMIT_LOG_EVERY_MS = 1000;

export type L4RefusedReason = 'no_route' | 'hello_timeout' | 'hello_malformed' | 'not_tls' | 'hello_limit';

/** One weighted destination: its cluster (bound once the config is adopted) and its istio_tcp_* counters. */
export interface L4Target {
  clusterName: string;
  cluster: ClusterRuntime | null;
  metrics: TcpGroup;
  weight: number;
}

interface CompiledL4Match {
  port: number | null;
  inSubnets: ((address: string) => boolean) | null;
  /** Lowercase; `*.suffix` patterns as hostCovers reads them. */
  sniHosts: string[] | null;
}

export interface CompiledL4Route {
  name: string;
  /** null: matches every connection. */
  match: CompiledL4Match[] | null;
  dests: L4Target[];
  totalWeight: number;
}

export interface CompiledL4 {
  tcp: CompiledL4Route[];
  tls: CompiledL4Route[];
}

/** What a connection is matched on. */
export interface L4Connection {
  /** The port it was addressed to (original destination, or the listener's). */
  port: number;
  /** The address it was addressed to. */
  address: string;
  /** From the ClientHello (lowercase, no trailing dot); null: none, or not TLS. */
  sni: string | null;
}

function compileMatch(m: NonNullable<L4Route['match']>[number]): CompiledL4Match {
  return {
    port: m.port ?? null,
    inSubnets:
      m.destinationSubnets && m.destinationSubnets.length > 0 ? addressSet(m.destinationSubnets) : null,
    sniHosts: m.sniHosts ? m.sniHosts.map((h) => h.toLowerCase()) : null,
  };
}

function compileRoutes(
  routes: L4Route[] | undefined,
  kind: 'tcp' | 'tls',
  metricsFor: (cluster: string) => TcpGroup,
): CompiledL4Route[] {
  return (routes ?? []).map((r, i) => ({
    name: r.name ?? `${kind}[${i}]`,
    match: r.match && r.match.length > 0 ? r.match.map(compileMatch) : null,
    dests: r.destinations.map((d) => ({
      clusterName: d.cluster,
      cluster: null,
      metrics: metricsFor(d.cluster),
      weight: d.weight,
    })),
    totalWeight: r.destinations.reduce((n, d) => n + d.weight, 0),
  }));
}

/** Compiles a listener's (or outbound service's) routes; null when it has none (one cluster). */
export function compileL4(
  def: { tcpRoutes?: L4Route[]; tlsRoutes?: L4Route[] },
  metricsFor: (cluster: string) => TcpGroup,
): CompiledL4 | null {
  if (def.tcpRoutes === undefined && def.tlsRoutes === undefined) return null;
  return {
    tcp: compileRoutes(def.tcpRoutes, 'tcp', metricsFor),
    tls: compileRoutes(def.tlsRoutes, 'tls', metricsFor),
  };
}

/** Binds every destination to its cluster runtime (after the cluster table is adopted). */
export function bindL4(l4: CompiledL4 | null, get: (name: string) => ClusterRuntime | null): void {
  if (l4 === null) return;
  for (const r of [...l4.tcp, ...l4.tls]) for (const d of r.dests) d.cluster = get(d.clusterName);
}

function matches(m: CompiledL4Match, conn: L4Connection): boolean {
  if (m.port !== null && m.port !== conn.port) return false;
  if (m.inSubnets !== null && !m.inSubnets(conn.address)) return false;
  if (m.sniHosts === null) return true;
  const sni = conn.sni;
  return sni !== null && m.sniHosts.some((h) => h === '*' || hostCovers(h, sni));
}

/** The first route one of whose match blocks takes the connection (pure: unit-tested). */
export function firstL4Route(routes: readonly CompiledL4Route[], conn: L4Connection): CompiledL4Route | null {
  for (const r of routes) if (r.match === null || r.match.some((m) => matches(m, conn))) return r;
  return null;
}

/** A destination by weight (`rand` in [0, 1)); all weights 0: the first. */
export function pickL4Target(route: CompiledL4Route, rand: () => number): L4Target {
  if (route.dests.length === 1 || route.totalWeight <= 0) return route.dests[0]!;
  let ticket = rand() * route.totalWeight;
  for (const d of route.dests) {
    ticket -= d.weight;
    if (ticket < 0) return d;
  }
  return route.dests[route.dests.length - 1]!;
}

export interface L4Env {
  log: Logger;
  metrics: MetricsRegistry;
  /** Set when access logging is on (one line per connection, refused ones with their flag). */
  accessLog?: AccessLog | null;
  /** How long a TLS route waits for the whole ClientHello (default HELLO_TIMEOUT_MS). */
  helloTimeoutMs?: number;
  /** ClientHellos read at once from one source address (default MAX_PENDING_HELLOS_PER_SOURCE). */
  maxPendingHellosPerSource?: number;
  rand?: () => number;
}

let pendingHellos = 0;
/** Pending ClientHellos by source address (at most MAX_PENDING_HELLOS entries). */
const pendingBySource = new Map<string, number>();
let helloLimitLoggedAt = 0;

/** Takes a slot to read a ClientHello from `source`, or says no (process-wide or per-source budget spent). */
function takeHelloSlot(source: string, perSource: number): boolean {
  const mine = pendingBySource.get(source) ?? 0;
  if (pendingHellos >= MAX_PENDING_HELLOS || mine >= perSource) return false;
  pendingHellos++;
  pendingBySource.set(source, mine + 1);
  return true;
}

function releaseHelloSlot(source: string): void {
  pendingHellos--;
  const left = (pendingBySource.get(source) ?? 1) - 1;
  if (left <= 0) pendingBySource.delete(source);
  else pendingBySource.set(source, left);
}

/** The SNI the way routes compare it: lowercase, without a trailing dot. */
function normalizeSni(sni: string | null): string | null {
  if (sni === null) return null;
  const s = sni.toLowerCase().replace(/\.$/, '');
  return s === '' ? null : s;
}

function refuse(
  env: L4Env,
  client: net.Socket,
  where: string,
  reason: L4RefusedReason,
  detail: { sni?: string | undefined; detail?: string } = {},
): void {
  env.metrics.incLabelled(L4_REFUSED_METRIC, { listener: where, reason });
  // a flood of connections over the hello budget must not become a flood of log lines
  const now = Date.now();
  if (reason !== 'hello_limit' || now - helloLimitLoggedAt >= HELLO_LIMIT_LOG_EVERY_MS) {
    if (reason === 'hello_limit') helloLimitLoggedAt = now;
    env.log.warn('TCP connection refused', { listener: where, flag: 'NR', reason, ...detail });
  }
  const end = { start: Date.now(), flag: 'NR', received: 0, sent: 0, upstream: null };
  env.accessLog?.write(
    l4LogEntry(client, { name: where, clusterName: '' }, { sni: detail.sni ?? null }, end),
  );
  client.destroy();
}

/**
 * Routes one accepted connection: reads the ClientHello when there are TLS routes, picks the
 * route and a weighted destination, pipes (replaying the bytes read). `where`: the listener or
 * outbound service name (logs, the refused counter's label).
 */
export async function routeL4(
  client: net.Socket,
  l4: CompiledL4,
  where: string,
  /** `originalDst`: the address is a captured connection's original destination (ORIGINAL_DST clusters use it). */
  addressed: { port: number; address: string; originalDst?: boolean },
  env: L4Env,
): Promise<void> {
  client.on('error', () => client.destroy());
  let head: Buffer = Buffer.alloc(0);
  let sni: string | null = null;
  if (l4.tls.length > 0) {
    const source = client.remoteAddress ?? '';
    if (!takeHelloSlot(source, env.maxPendingHellosPerSource ?? MAX_PENDING_HELLOS_PER_SOURCE))
      return refuse(env, client, where, 'hello_limit', { detail: `source ${source}` });
    const read = await readFirstBytes(client, env.helloTimeoutMs ?? HELLO_TIMEOUT_MS).finally(() =>
      releaseHelloSlot(source),
    );
    if (client.destroyed) return;
    head = read.head;
    const v = read.verdict;
    if (v.kind === 'hello') sni = normalizeSni(v.sni);
    else if (l4.tcp.length === 0) {
      // a TLS-only port: nothing but a complete, well-formed ClientHello is routed
      if (v.kind === 'malformed') return refuse(env, client, where, 'hello_malformed', { detail: v.reason });
      if (v.kind === 'plaintext') return refuse(env, client, where, 'not_tls');
      if (read.ended) return void client.destroy(); // the client left before saying anything
      return refuse(env, client, where, 'hello_timeout');
    }
  }
  const conn: L4Connection = { ...addressed, sni };
  const route = (sni !== null ? firstL4Route(l4.tls, conn) : null) ?? firstL4Route(l4.tcp, conn);
  if (route === null) return refuse(env, client, where, 'no_route', { sni: sni ?? undefined });
  pipeRoute(client, route, where, addressed, head, sni, env);
}

/** Pipes the connection (replaying `head`) to a weighted destination of `route`. */
function pipeRoute(
  client: net.Socket,
  route: CompiledL4Route,
  where: string,
  addressed: { port: number; address: string; originalDst?: boolean },
  head: Buffer,
  sni: string | null,
  env: L4Env,
): void {
  const target = pickL4Target(route, env.rand ?? Math.random);
  pipeToCluster(client, { name: where, ...target }, head, env.log, {
    originalDst: addressed.originalDst ? addressed : null,
    accessLog: env.accessLog ?? null,
    route: route.name,
    sni,
  });
}

/**
 * A catch-all's TLS routes for a ClientHello already read (`head`, its SNI): pipes the connection
 * to the first route's destination and returns true; false (nothing done) when none takes it.
 */
/** Would routeBySni route this SNI (without routing anything)? The on-demand hold's test. */
export function sniRouted(
  l4: CompiledL4,
  addressed: { port: number; address: string },
  rawSni: string,
): boolean {
  const sni = normalizeSni(rawSni);
  return sni !== null && firstL4Route(l4.tls, { ...addressed, sni }) !== null;
}

export function routeBySni(
  client: net.Socket,
  l4: CompiledL4,
  where: string,
  addressed: { port: number; address: string; originalDst?: boolean },
  head: Buffer,
  rawSni: string | null,
  env: L4Env,
): boolean {
  const sni = normalizeSni(rawSni);
  if (sni === null) return false;
  const route = firstL4Route(l4.tls, { ...addressed, sni });
  if (route === null) return false;
  pipeRoute(client, route, where, addressed, head, sni, env);
  return true;
}

/** A connection accepted by a TCP listener: its routes, or its one cluster. */
export function serveTcpListener(socket: net.Socket, l: CompiledTcpListener, env: L4Env): void {
  if (l.l4 === null) return pipeTcp(socket, l, env.log, env.accessLog ?? null);
  // the address the client reached (the gateway's own): what destinationSubnets compare
  void routeL4(socket, l.l4, l.name, { port: l.port, address: socket.localAddress ?? '' }, env);
}
