/**
 * Explain records: why a request went where it went (reference §5.1). The same shape comes
 * from a live request (access log, `x-weft-explain` response header) and from a synthetic one
 * evaluated against the live config without sending anything (admin `POST /explain`).
 */
import { guardsListener, matchCustom, remoteAddress, type AuthzDecision } from '../authz/engine.js';
import { authorizeAllReadings } from '../authz/gate.js';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ActionType,
  findVHost,
  type CompiledConfig,
  type CompiledDest,
  type CompiledHttpListener,
  type CompiledRoute,
  type CompiledVHost,
} from '../compile/compile.js';
import type { RequestView } from '../compile/match.js';
import type { CompiledRetry } from './retry.js';
import type { PathNormalization } from './path.js';
import { authorityPort, isRejection, parseRequestHead, type HeadRejection } from './target.js';

/** What an Exchange exposes to Explain (kept structural to avoid an import cycle). */
export interface ExplainSource {
  cfg: CompiledConfig;
  vhost: CompiledVHost | null;
  route: CompiledRoute | null;
  block: number;
  dest: CompiledDest | null;
  attempts: number;
  flags: string;
  status: number;
  endpointKey: string | undefined;
  /** Envoy's response code details, when the reply has them. */
  details?: string | undefined;
}

function routeRef(r: CompiledRoute, block: number): Record<string, unknown> {
  const src = r.source;
  return {
    index: r.index,
    name: r.name,
    source: src
      ? `${src.kind} ${src.namespace ? `${src.namespace}/` : ''}${src.name}${src.rule !== undefined ? ` http[${src.rule}]` : ''}`
      : undefined,
    match:
      block < 0
        ? 'any (no match conditions)'
        : { index: block, name: r.matches[block]?.name, conditions: r.matches[block] },
  };
}

export function buildExplain(ex: ExplainSource): Record<string, unknown> {
  const r = ex.route;
  const d = ex.dest;
  return {
    version: ex.cfg.version,
    virtualHost: ex.vhost?.name,
    route: r ? routeRef(r, ex.block) : undefined,
    destination: d
      ? {
          cluster: d.clusterName,
          subset: d.subset || undefined,
          weight: r && r.dests.length > 1 ? `${d.weight}/${r.totalWeight}` : undefined,
        }
      : undefined,
    endpoint: ex.endpointKey,
    attempts: ex.attempts,
    retries: ex.attempts > 1 ? ex.attempts - 1 : 0,
    status: ex.status,
    flags: ex.flags,
    ...(ex.details !== undefined ? { details: ex.details } : {}),
  };
}

function retrySummary(r: CompiledRetry): Record<string, unknown> {
  const on: string[] = [];
  if (r.on5xx) on.push('5xx');
  if (r.onGatewayError) on.push('gateway-error');
  if (r.onReset) on.push('reset');
  if (r.onConnectFailure) on.push('connect-failure');
  if (r.onRefusedStream) on.push('refused-stream');
  if (r.onRetriable4xx) on.push('retriable-4xx');
  return {
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeoutMs || undefined,
    retryOn: on,
    statusCodes: [...r.statusCodes],
  };
}

/** Describes a destination without creating its runtime (explain must not allocate pools). */
function destSummary(r: CompiledRoute, d: CompiledDest): Record<string, unknown> {
  const def = d.table.defs.get(d.clusterName);
  const live = d.table.peek(d.clusterName);
  const endpoints = live
    ? live.endpoints.map((e) => ({ address: e.key, healthy: !e.health.ejected }))
    : (def?.endpoints.map((e) => ({ address: `${e.address}:${e.port}`, healthy: true })) ?? []);
  const healthy = endpoints.filter((e) => e.healthy).length;
  return {
    cluster: d.clusterName,
    subset: d.subset || undefined,
    probability: `${((d.weight / r.totalWeight) * 100).toFixed(2)}%`,
    exists: def !== undefined,
    endpoints,
    loadBalancer:
      live?.balancer.kind ?? (def?.loadBalancer ? JSON.stringify(def.loadBalancer) : 'LEAST_REQUEST'),
    outcomeIfChosen:
      def === undefined
        ? '503 NC (cluster not found)'
        : healthy === 0
          ? '503 UH (no healthy upstream)'
          : 'forwarded',
  };
}

export interface SyntheticRequest {
  method?: string;
  path?: string;
  authority?: string;
  headers?: Record<string, string>;
  port?: number;
  listener?: string;
  /** The client address AuthorizationPolicy sees (source.ip / remote.ip); default 127.0.0.1. */
  sourceIp?: string;
}

/**
 * The view the proxy builds for this request (the same head parsing and path normalization as
 * Exchange), or why the proxy would refuse its head.
 */
export function syntheticView(
  input: SyntheticRequest,
  mode: PathNormalization,
  listenerPort: number,
): RequestView | HeadRejection {
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  const host = input.authority ?? headers.host;
  const method = input.method ?? 'GET';
  const head = parseRequestHead(method, input.path ?? '/', host === undefined ? [] : [host], mode);
  if (isRejection(head)) return head;
  headers.host = head.authority;
  return {
    method,
    path: head.path,
    query: head.query,
    target: head.target,
    authority: head.authority,
    scheme: 'http',
    port: input.port ?? authorityPort(head.authority, listenerPort),
    headers,
  };
}

/**
 * Which AuthorizationPolicy would allow or deny the request (DENY/ALLOW/AUDIT/dry-run; a
 * matching CUSTOM policy is named, its provider is not called). Null when no policy guards it.
 */
function explainAuthz(
  cfg: CompiledConfig,
  listener: CompiledHttpListener,
  v: RequestView,
  input: SyntheticRequest,
): (AuthzDecision & { custom?: string }) | null {
  const az = cfg.authz;
  if (!guardsListener(az, listener.name)) return null;
  const ip = input.sourceIp ?? '127.0.0.1';
  const attrs = {
    method: v.method,
    host: v.authority,
    path: v.path,
    headers: v.headers,
    port: input.port ?? listener.port,
    destinationIp: listener.address,
    sourceIp: ip,
    remoteIp: remoteAddress(ip, v.headers['x-forwarded-for'], az.numTrustedProxies),
  };
  const d: AuthzDecision & { custom?: string } = authorizeAllReadings(az, attrs);
  const custom = matchCustom(az, attrs);
  if (custom !== null)
    d.custom = `CUSTOM policy ${custom.policy} rule ${custom.rule} sends this request to provider ${custom.providerName} first (not called by explain)`;
  return d;
}

/** Evaluates a synthetic request against the live config; sends nothing. */
export function explainSynthetic(
  cfg: CompiledConfig,
  input: SyntheticRequest,
  select: (vh: CompiledVHost, v: RequestView) => { route: CompiledRoute; block: number } | null,
): Record<string, unknown> {
  const listener = cfg.listeners.find(
    (l): l is CompiledHttpListener =>
      l.protocol === 'HTTP' && (input.listener === undefined || l.name === input.listener),
  );
  if (!listener)
    return {
      version: cfg.version,
      error: `no HTTP listener${input.listener ? ` named ${input.listener}` : ''}`,
    };
  const url = input.path ?? '/';
  const v = syntheticView(input, cfg.pathNormalization, listener.port);
  const request: Record<string, unknown> = { method: input.method ?? 'GET', path: url };
  const base = { version: cfg.version, listener: listener.name, request };
  if (isRejection(v)) return { ...base, outcome: `${v.status} ${v.flag}: ${v.detail}` };
  const authority = (request.authority = v.authority);
  // what routing saw, when normalization changed the path
  if (v.target !== url) request.normalized = v.target;
  const authz = explainAuthz(cfg, listener, v, input);
  if (authz !== null) {
    (base as Record<string, unknown>).authz = authz;
    if (authz.decision === 'deny') return { ...base, outcome: `403 RBAC: ${authz.reason}` };
  }
  const vh = findVHost(listener, authority);
  if (vh === null) return { ...base, outcome: `404 NR: no virtual host for authority "${authority}"` };
  const sel = select(vh, v);
  if (sel === null)
    return {
      ...base,
      virtualHost: vh.name,
      outcome: `404 NR: none of the ${vh.routes.length} rules of ${vh.name} matched`,
    };
  const r = sel.route;
  const out: Record<string, unknown> = { ...base, virtualHost: vh.name, route: routeRef(r, sel.block) };
  if (r.type === ActionType.Direct) return { ...out, outcome: `direct response ${r.directStatus}` };
  if (r.type === ActionType.Redirect)
    return { ...out, outcome: `redirect ${r.redirect?.code ?? 301}`, redirect: r.redirect };
  return {
    ...out,
    destinations: r.dests.map((d) => destSummary(r, d)),
    timeoutMs: r.timeoutMs || 'none',
    retries: retrySummary(r.retry),
    fault: r.fault ?? undefined,
    mirrors: r.mirrors?.map((m) => ({ cluster: m.dest.clusterName, percentage: m.fraction * 100 })),
    rewrite:
      r.rewriteUri !== null || r.rewriteAuthority !== null || r.rewriteRegex !== null
        ? { uri: r.rewriteUri, authority: r.rewriteAuthority, regex: r.rewriteRegex !== null }
        : undefined,
    outcome: 'forwarded to one destination by weight',
  };
}
