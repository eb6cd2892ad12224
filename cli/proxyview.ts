/**
 * The tables of `weftctl proxy-status` and `weftctl proxy-config`: pure functions from weftd's
 * debug JSON (or a ProxyConfig) to rows, and one column formatter shaped like kubectl's and
 * istioctl's (left-aligned, three spaces between columns). Kept free of I/O so unit tables
 * cover every column.
 */
import type {
  Cluster,
  ConnectionPool,
  HeaderMatch,
  LoadBalancer,
  OutlierDetection,
  ProxyConfig,
  Route,
  RouteMatch,
  StringMatch,
} from '../pkg/proxyconfig/types.js';
import type { ProxyConnection } from './weftd.js';
import { domainsOf } from '../pkg/proxyconfig/domains.js';

export type Row = string[];

/** Columns padded to their widest cell; the last column is not padded (no trailing blanks). */
export function table(headers: string[], rows: Row[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** `45s`, `3m12s`, `2h5m`, `3d4h`: kubectl's AGE, coarse past the first unit. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 > 0 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 > 0 ? `${m % 60}m` : ''}`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24 > 0 ? `${h % 24}h` : ''}`;
}

// ---------------------------------------------------------------- proxy-status

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT' | 'UNKNOWN';

/**
 * From what the proxy answered, not from what weftd sent (istioctl proxy-status's states):
 * - NOT SENT: weftd has written nothing on this stream (it does not know the pod, or is listing);
 * - UNKNOWN: the proxy does not answer pushes (an older build), or weftd does not record answers;
 * - NACKED: the proxy refused the newest push (it runs its previous config; the reason is shown);
 * - STALE: the newest push is not ACKed yet, or weftd would send another version now (a push is
 *   debouncing, the socket is backed up, or the pod is gone);
 * - SYNCED: the proxy ACKed the newest push (compiled and swapped in) and it is current.
 */
export function syncState(c: ProxyConnection): SyncState {
  if (c.version === null || c.sent === null) return 'NOT SENT';
  if (c.acks !== true || c.sent === undefined) return 'UNKNOWN';
  if (c.nacked?.nonce === c.sent.nonce) return 'NACKED';
  if (c.acked?.nonce !== c.sent.nonce) return 'STALE';
  if (c.currentVersion !== undefined && c.currentVersion !== c.sent.version) return 'STALE';
  return 'SYNCED';
}

export interface StatusEntry {
  name: string;
  kind: string;
  version: string | null;
  /** The newest version the proxy ACKed on this stream. */
  acked: string | null;
  currentVersion: string | null;
  state: SyncState;
  /** Why the newest push was refused (NACKED only). */
  reason: string | null;
  weftdState: string;
  pushes: number;
  age: string;
  serviceAccount: string;
}

export function statusEntries(connections: ProxyConnection[], now: number): StatusEntry[] {
  return [...connections]
    .sort((a, b) => `${a.namespace}/${a.pod}/${a.id}`.localeCompare(`${b.namespace}/${b.pod}/${b.id}`))
    .map((c) => {
      const state = syncState(c);
      return {
        name: `${c.pod}.${c.namespace}`,
        kind: c.kind,
        version: c.version,
        acked: c.acked?.version ?? null,
        currentVersion: c.currentVersion ?? null,
        state,
        reason: state === 'NACKED' ? (c.nacked?.error ?? null) : null,
        weftdState: c.state,
        pushes: c.pushes,
        age: age(now - Date.parse(c.connectedAt)),
        serviceAccount: c.serviceAccount,
      };
    });
}

/** A NACK's reason in the table: its first line, at most this long (-o json has all of it). */
const REASON_CHARS = 100;

function stateCell(e: StatusEntry): string {
  if (e.state === 'NOT SENT') return `NOT SENT (${e.weftdState})`;
  if (e.state !== 'NACKED' || e.reason === null) return e.state;
  const line = e.reason.split('\n')[0]!;
  return `NACKED: ${line.length > REASON_CHARS ? `${line.slice(0, REASON_CHARS - 1)}…` : line}`;
}

export function statusTable(entries: StatusEntry[]): string {
  return table(
    ['NAME', 'KIND', 'VERSION', 'ACKED', 'PUSHES', 'CONNECTED', 'STATE'],
    entries.map((e) => [
      e.name,
      e.kind,
      e.version ?? '-',
      e.acked ?? '-',
      String(e.pushes),
      e.age,
      stateCell(e),
    ]),
  );
}

// ---------------------------------------------------------------- proxy-config

export type ConfigSection = 'listeners' | 'routes' | 'clusters' | 'endpoints';
export const CONFIG_SECTIONS: ConfigSection[] = ['listeners', 'routes', 'clusters', 'endpoints'];

/** Where a TCP listener or outbound TCP service sends: its one cluster, or how many L4 routes it has. */
function l4Destination(l: { cluster?: string; tcpRoutes?: unknown[]; tlsRoutes?: unknown[] }): string {
  if (l.tcpRoutes === undefined && l.tlsRoutes === undefined) return `cluster ${l.cluster ?? ''}`;
  return `${l.tlsRoutes?.length ?? 0} tls route(s), ${l.tcpRoutes?.length ?? 0} tcp route(s)`;
}

export function listenerTable(cfg: ProxyConfig): string {
  return table(
    ['NAME', 'ADDRESS', 'PORT', 'PROTOCOL', 'DESTINATION'],
    [
      ...cfg.listeners.map((l) => [
        l.name,
        l.address ?? '127.0.0.1',
        String(l.port),
        l.protocol,
        l.protocol === 'TCP' ? l4Destination(l) : `${l.virtualHosts.length} virtual host(s)`,
      ]),
      // the sidecar's outbound TCP/TLS services, served through the capture port
      ...(cfg.outboundTcp ?? []).map((s) => [
        s.name,
        s.addresses.join(','),
        String(s.port),
        'TCP',
        // a catch-all only takes the SNIs it names; the rest is passed through or blackholed
        s.catchAll ? `${l4Destination(s)}, SNI catch-all` : l4Destination(s),
      ]),
    ],
  );
}

/** One line per route: which listener and virtual host it lives in, and where it sends. */
export interface RouteLine {
  listener: string;
  virtualHost: string;
  domains: string[];
  route: Route;
}

export function routeLines(cfg: ProxyConfig): RouteLine[] {
  const out: RouteLine[] = [];
  for (const l of cfg.listeners) {
    if (l.protocol !== 'HTTP') continue;
    for (const vh of l.virtualHosts)
      for (const route of vh.routes)
        out.push({ listener: l.name, virtualHost: vh.name, domains: domainsOf(vh), route });
  }
  return out;
}

/** Domains are many per host (short names, ports, cluster IPs): the first, then a count. */
export function domainsSummary(domains: string[]): string {
  if (domains.length === 0) return '-';
  const shortest = [...domains].sort((a, b) => a.length - b.length || a.localeCompare(b))[0]!;
  return domains.length === 1 ? shortest : `${shortest} +${domains.length - 1} more`;
}

export function stringMatchText(m: StringMatch): string {
  if ('exact' in m) return m.exact;
  if ('prefix' in m) return `${m.prefix}*`;
  return `~${m.regex}`;
}

function headerMatchText(name: string, m: HeaderMatch): string {
  return 'present' in m ? name : `${name}=${stringMatchText(m)}`;
}

/** `GET /api/* header end-user=jason !x-debug ?v=2 port 9080` — AND inside one block. */
export function matchBlockText(m: RouteMatch): string {
  const parts: string[] = [];
  if (m.method) parts.push(stringMatchText(m.method));
  if (m.uri) parts.push(`${stringMatchText(m.uri)}${m.ignoreUriCase ? ' (any case)' : ''}`);
  if (m.scheme) parts.push(`scheme ${stringMatchText(m.scheme)}`);
  if (m.authority) parts.push(`authority ${stringMatchText(m.authority)}`);
  if (m.port !== undefined) parts.push(`port ${m.port}`);
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(`header ${headerMatchText(k, v)}`);
  for (const [k, v] of Object.entries(m.withoutHeaders ?? {})) parts.push(`!header ${headerMatchText(k, v)}`);
  for (const [k, v] of Object.entries(m.queryParams ?? {})) parts.push(`?${headerMatchText(k, v)}`);
  return parts.length === 0 ? '*' : parts.join(' ');
}

/** Blocks are ORed: `a | b`. No blocks: `*` (every request). */
export function matchSummary(matches: RouteMatch[] | undefined): string {
  if (!matches || matches.length === 0) return '*';
  return matches.map(matchBlockText).join(' | ');
}

export function actionSummary(route: Route): string {
  const a = route.action;
  if (a.type === 'redirect')
    return `redirect ${a.redirect.code ?? 301} ${a.redirect.scheme ? `${a.redirect.scheme}://` : ''}${a.redirect.authority ?? ''}${a.redirect.uri ?? ''}`;
  if (a.type === 'directResponse') return `direct response ${a.status}`;
  if (a.destinations.length === 1) return a.destinations[0]!.cluster;
  const total = a.destinations.reduce((s, d) => s + d.weight, 0);
  return a.destinations.map((d) => `${d.cluster} ${percent(d.weight, total)}`).join(', ');
}

function percent(weight: number, total: number): string {
  if (total <= 0) return '0%';
  const p = (weight / total) * 100;
  return `${Number.isInteger(p) ? p : p.toFixed(1)}%`;
}

function sourceText(route: Route): string {
  const s = route.source;
  if (!s) return '-';
  return `${s.kind === 'VirtualService' ? 'vs' : s.kind} ${s.namespace ? `${s.namespace}/` : ''}${s.name}${s.rule !== undefined ? `[${s.rule}]` : ''}`;
}

/**
 * Why an on-demand sidecar holds a host (ADR 0023): `namespace` (its own, there from the start),
 * `on demand` (a subscription it asked for), `Sidecar ns/name` (named exactly by its Sidecar), or
 * `VirtualService destination` (a service an imported VirtualService routes to). Null when
 * on-demand hosts are off (every host the scope allows is there: docs/scoping.md).
 */
export function hostReason(cfg: ProxyConfig, host: string | undefined): string | null {
  const od = cfg.onDemand;
  if (od === undefined) return null;
  if (host === undefined) return '-';
  const h = host.replace(/:\d+$/, '').toLowerCase();
  const labels = h.split('.');
  if (labels[1] === od.namespace && labels[2] === 'svc') return 'namespace';
  const subscribed = od.subscribed.find((e) => {
    const pattern = e.slice(e.indexOf('/') + 1);
    return pattern === h || (pattern.startsWith('*') && h.endsWith(pattern.slice(1)));
  });
  if (subscribed !== undefined) return `on demand (${subscribed})`;
  return cfg.scope ? `Sidecar ${cfg.scope.sidecar}` : 'VirtualService destination';
}

/** The WHY column's header and cells, only on an on-demand config (other tables stay as they were). */
function whyColumn<T>(
  cfg: ProxyConfig,
  items: T[],
  hostOf: (t: T) => string | undefined,
): { head: string[]; cells: string[][] } {
  if (cfg.onDemand === undefined) return { head: [], cells: items.map(() => []) };
  return { head: ['WHY'], cells: items.map((t) => [hostReason(cfg, hostOf(t)) ?? '-']) };
}

export function routeTable(cfg: ProxyConfig): string {
  const lines = routeLines(cfg);
  const why = whyColumn(cfg, lines, (r) => r.virtualHost);
  return table(
    ['LISTENER', 'VIRTUAL HOST', 'DOMAINS', 'MATCH', 'DESTINATIONS', 'SOURCE', ...why.head],
    lines.map((r, i) => [
      r.listener,
      r.virtualHost,
      domainsSummary(r.domains),
      matchSummary(r.route.match),
      actionSummary(r.route),
      sourceText(r.route),
      ...why.cells[i]!,
    ]),
  );
}

export function loadBalancerText(lb: LoadBalancer | undefined): string {
  if (!lb) return 'LEAST_REQUEST';
  if ('simple' in lb) return lb.simple;
  const h = lb.consistentHash;
  if ('httpHeaderName' in h) return `hash header ${h.httpHeaderName}`;
  if ('httpCookie' in h) return `hash cookie ${h.httpCookie.name}`;
  if ('useSourceIp' in h) return 'hash source IP';
  return `hash query ${h.httpQueryParameterName}`;
}

export function poolText(p: ConnectionPool | undefined): string {
  if (!p) return '-';
  const parts: string[] = [];
  if (p.maxConnections !== undefined) parts.push(`maxConn=${p.maxConnections}`);
  if (p.http1MaxPendingRequests !== undefined) parts.push(`pending=${p.http1MaxPendingRequests}`);
  if (p.http2MaxRequests !== undefined) parts.push(`maxReq=${p.http2MaxRequests}`);
  if (p.maxRequestsPerConnection !== undefined) parts.push(`perConn=${p.maxRequestsPerConnection}`);
  if (p.maxRetries !== undefined) parts.push(`retries=${p.maxRetries}`);
  if (p.connectTimeoutMs !== undefined) parts.push(`connect=${p.connectTimeoutMs}ms`);
  if (p.idleTimeoutMs !== undefined) parts.push(`idle=${p.idleTimeoutMs}ms`);
  return parts.length === 0 ? '-' : parts.join(',');
}

export function outlierText(o: OutlierDetection | undefined): string {
  if (!o) return '-';
  const parts: string[] = [];
  if (o.consecutive5xxErrors !== undefined) parts.push(`5xx=${o.consecutive5xxErrors}`);
  if (o.consecutiveGatewayErrors !== undefined) parts.push(`gw=${o.consecutiveGatewayErrors}`);
  if (o.intervalMs !== undefined) parts.push(`every=${o.intervalMs}ms`);
  if (o.baseEjectionTimeMs !== undefined) parts.push(`eject=${o.baseEjectionTimeMs}ms`);
  if (o.maxEjectionPercent !== undefined) parts.push(`max=${o.maxEjectionPercent}%`);
  if (o.minHealthPercent !== undefined) parts.push(`minHealth=${o.minHealthPercent}%`);
  return parts.length === 0 ? 'on' : parts.join(',');
}

export function clusterTable(cfg: ProxyConfig): string {
  const why = whyColumn(cfg, cfg.clusters, (c) => c.service);
  return table(
    ['NAME', 'SERVICE', 'PORT', 'SUBSET', 'LB', 'POOL', 'OUTLIER', 'ENDPOINTS', ...why.head],
    cfg.clusters.map((c: Cluster, i) => [
      c.name,
      c.service ?? '-',
      c.port === undefined ? '-' : String(c.port),
      c.subset ?? '-',
      loadBalancerText(c.loadBalancer),
      poolText(c.connectionPool),
      outlierText(c.outlierDetection),
      String(c.endpoints.length),
      ...why.cells[i]!,
    ]),
  );
}

export function labelsText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function endpointTable(cfg: ProxyConfig): string {
  const rows: Row[] = [];
  for (const c of cfg.clusters)
    for (const e of c.endpoints)
      rows.push([
        `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`,
        c.name,
        String(e.weight ?? 1),
        labelsText(e.labels),
      ]);
  return table(['ENDPOINT', 'CLUSTER', 'WEIGHT', 'LABELS'], rows);
}

/**
 * Which Sidecar resource scoped the proxy's hosts (pkg/translate/scope.ts) and its outbound mode:
 * printed under the listeners table, so "why is this host missing" has an answer.
 */
export function scopeText(cfg: ProxyConfig): string {
  const via = {
    workload: 'its workloadSelector',
    namespace: 'namespace default',
    root: 'root-namespace default',
  };
  const who = cfg.scope
    ? `Sidecar ${cfg.scope.sidecar} (${via[cfg.scope.via]}) scoped this proxy's hosts`
    : 'no Sidecar: every host exported to the namespace';
  const p = cfg.outboundTrafficPolicy;
  const mode = p
    ? `outbound REGISTRY_ONLY (${p.destinations.length} known destination address(es); unknown HTTP hosts 404 NR, other TCP closed)`
    : 'outbound ALLOW_ANY';
  const od = cfg.onDemand;
  const onDemand = od
    ? `on-demand hosts: namespace ${od.namespace} from the start, ${od.subscribed.length} subscribed${
        od.subscribed.length > 0 ? ` (${od.subscribed.join(', ')})` : ''
      }; other hosts are asked for when the app calls them\n`
    : '';
  return `${who}; ${mode}\n${onDemand}`;
}

/** The raw part of the config that `-o json|yaml` prints for a section. */
export function configSection(cfg: ProxyConfig, section: ConfigSection): unknown {
  switch (section) {
    case 'listeners':
      return cfg.listeners.map((l) =>
        l.protocol === 'HTTP' ? { ...l, virtualHosts: l.virtualHosts.map((v) => v.name) } : l,
      );
    case 'routes':
      return cfg.listeners.flatMap((l) =>
        l.protocol === 'HTTP' ? l.virtualHosts.map((vh) => ({ listener: l.name, ...vh })) : [],
      );
    case 'clusters':
      return cfg.clusters.map(({ endpoints, ...rest }) => ({ ...rest, endpoints: endpoints.length }));
    case 'endpoints':
      return cfg.clusters.map((c) => ({ cluster: c.name, endpoints: c.endpoints }));
  }
}

export function sectionTable(cfg: ProxyConfig, section: ConfigSection): string {
  switch (section) {
    case 'listeners':
      return listenerTable(cfg) + scopeText(cfg);
    case 'routes':
      return routeTable(cfg);
    case 'clusters':
      return clusterTable(cfg);
    case 'endpoints':
      return endpointTable(cfg);
  }
}

// ---------------------------------------------------------------- proxy-config secret

/** The proxy's `/certs` answer (proxy/identity/workload.ts IdentitySummary), as weftctl reads it. */
export interface CertsAnswer {
  state: 'no-certificate' | 'valid' | 'expired';
  certificate: {
    spiffeId: string;
    serialNumber: string;
    notBefore: string;
    notAfter: string;
    valid: boolean;
  } | null;
  roots: { serialNumber: string; notBefore: string; notAfter: string; valid: boolean }[];
  /** DestinationRule credentialName credentials (gateways; proxy/upstream/tls.ts credentialSummaries). */
  credentials?: {
    name: string;
    state: 'valid' | 'expired' | 'error';
    error?: string;
    certificate: { serialNumber: string; notBefore: string; notAfter: string; valid: boolean } | null;
    roots: { serialNumber: string; notBefore: string; notAfter: string; valid: boolean }[];
  }[];
}

/** `2026-12-06T14:00:00Z`: istioctl's NOT AFTER form (seconds, no millis). */
function certTime(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

/**
 * istioctl's `proxy-config secret` table: the workload chain as `default` (type Cert Chain) and
 * each trusted root as `ROOTCA` (type CA). STATUS is ACTIVE while valid, EXPIRED after, WARMING
 * before the first certificate (istioctl's word for a secret not served yet).
 */
export function secretTable(a: CertsAnswer): string {
  const rows: Row[] = [];
  const c = a.certificate;
  const row = (
    name: string,
    type: string,
    x: { valid: boolean; serialNumber: string; notAfter: string; notBefore: string },
  ): Row => [
    name,
    type,
    x.valid ? 'ACTIVE' : 'EXPIRED',
    String(x.valid),
    x.serialNumber.toLowerCase(),
    certTime(x.notAfter),
    certTime(x.notBefore),
  ];
  if (c === null) rows.push(['default', 'Cert Chain', 'WARMING', 'false', '-', '-', '-']);
  else rows.push(row('default', 'Cert Chain', c));
  for (const r of a.roots) rows.push(row('ROOTCA', 'CA', r));
  // credentialName credentials under Istio's SDS names; an unusable one says why below the table
  const errors: string[] = [];
  for (const cred of a.credentials ?? []) {
    if (cred.state === 'error') {
      rows.push([cred.name, 'Cert Chain', 'ERROR', 'false', '-', '-', '-']);
      errors.push(`${cred.name}: ${cred.error ?? 'unusable'}`);
      continue;
    }
    if (cred.certificate !== null) rows.push(row(cred.name, 'Cert Chain', cred.certificate));
    for (const r of cred.roots) rows.push(row(`${cred.name}-cacert`, 'CA', r));
  }
  const out = table(
    ['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'],
    rows,
  );
  return errors.length === 0 ? out : `${out}\n${errors.join('\n')}\n`;
}
