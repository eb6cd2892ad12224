/**
 * Explains what the inbound listener would do with a connection to a workload port: the mTLS mode
 * in force and the policy that decided it, and for a plaintext or an mTLS client (with its peer
 * identity) whether the connection is accepted, how it is served, and what the app and the
 * metrics see; or why it is refused, in the words the proxy logs. Then the AuthorizationPolicies
 * of the config: a TCP port's connection, or the request given (METHOD URL), is evaluated as the
 * inbound side does (engine.ts, gate.ts). Evaluated with the proxy's own plan (plan.ts) and
 * decision (decide.ts) over a config; sends nothing.
 */
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { MetricsRegistry } from '../telemetry/metrics.js';
import { compileAuthz, tcpBlock, type AuthzDecision } from '../authz/engine.js';
import { authorizeAllReadings, authorizeConnection, peerAttributes } from '../authz/gate.js';
import { syntheticView } from '../router/explain.js';
import { isRejection } from '../router/target.js';
import { resolvePathNormalization } from '../router/path.js';
import { decide, refusalMessage } from './decide.js';
import { InboundPlan } from './plan.js';
import { explainRateLimit, rateLimitSentence, type RateLimitExplanation } from '../ratelimit/explain.js';

export interface InboundQuery {
  /** The workload port (the connection's original destination); null: unknown. */
  port: number | null;
  /** The client's address, for the words of a refusal (default "the client"). */
  from?: string;
  /** The client's SPIFFE ID when it speaks mesh mTLS; absent: plaintext. */
  peer?: string;
  /** Whether this workload has a certificate (the live proxy knows; a config alone assumes so). */
  hasIdentity?: boolean;
  /** An HTTP request on the connection, for its AuthorizationPolicy decision. */
  request?: { method: string; url: string; headers?: Record<string, string> };
  /** weftd's Redis address (its debug answer), to say where a global limit's budget is kept. */
  rateLimitRedis?: string;
}

export interface InboundExplanation {
  version: string;
  port: number | null;
  mode: string;
  policy: string;
  protocol: string;
  service?: string;
  connection: string;
  accepted: boolean;
  outcome: string;
  refusal?: string;
  connectionSecurityPolicy?: 'mutual_tls' | 'none';
  sourcePrincipal?: string;
  /** The AuthorizationPolicy decision for the TCP connection or the request given. */
  authz?: AuthzDecision;
  /** The rate limit and override the request given falls under (no token is taken). */
  rateLimit?: RateLimitExplanation;
}

export function explainInbound(cfg: ProxyConfig, q: InboundQuery): InboundExplanation {
  return withRateLimit(cfg, q, explainPolicies(cfg, q));
}

/** An admitted request's rate limit: which limit and override, and which bucket it draws from. */
function withRateLimit(cfg: ProxyConfig, q: InboundQuery, e: InboundExplanation): InboundExplanation {
  if (!e.accepted || q.request === undefined || cfg.rateLimits === undefined) return e;
  const r = q.request;
  const abs = /^https?:\/\//i.test(r.url) ? new URL(r.url) : null;
  const x = explainRateLimit(
    cfg.rateLimits,
    {
      port: q.port ?? 0,
      target: abs === null ? r.url : `${abs.pathname}${abs.search}`,
      method: r.method.toUpperCase(),
      headers: Object.fromEntries(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      principal: q.peer ?? null,
      claims: null,
      peerIp: q.from,
    },
    q.rateLimitRedis,
  );
  if (x === null) return { ...e, outcome: `${e.outcome}; no rate limit applies` };
  return { ...e, rateLimit: x, outcome: `${e.outcome}; ${rateLimitSentence(x, 'per pod')}` };
}

function explainPolicies(cfg: ProxyConfig, q: InboundQuery): InboundExplanation {
  const e = explainConnection(cfg, q);
  if (!e.accepted || cfg.authz === undefined) return e;
  const tcp = e.protocol === 'TCP';
  if (!tcp && q.request === undefined)
    return {
      ...e,
      outcome: `${e.outcome}; each request is then checked by ${cfg.authz.policies.length} AuthorizationPolicies (add METHOD URL to evaluate one)`,
    };
  const d = tcp
    ? authorizeConnection(compileAuthz(tcpBlock(cfg.authz)), attributes(q, null)).decision
    : requestDecision(cfg, q);
  if (typeof d === 'string') return { ...e, accepted: false, outcome: `the request is refused: ${d}` };
  if (d.decision === 'allow')
    return {
      ...e,
      authz: d,
      outcome: `${e.outcome}; ${tcp ? 'the connection' : 'the request'} is allowed: ${d.reason}`,
    };
  return {
    ...e,
    authz: d,
    accepted: false,
    outcome: tcp
      ? `refused: the connection is closed, ${d.reason}`
      : `the request is denied: 403 RBAC: ${d.reason}`,
  };
}

/** What AuthorizationPolicy sees of the explained client: its address, identity and port. */
function attributes(
  q: InboundQuery,
  view: {
    method: string;
    authority: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
  } | null,
) {
  const ip = q.from ?? '127.0.0.1';
  return {
    method: view?.method ?? '',
    host: view?.authority ?? '',
    path: view?.path ?? '',
    headers: view?.headers ?? {},
    port: q.port ?? 0,
    destinationIp: '',
    sourceIp: ip,
    remoteIp: ip,
    ...(q.peer !== undefined ? { peer: peerAttributes(q.peer) } : {}),
  };
}

/** The decision on the request, or why its head is refused before any policy. */
function requestDecision(cfg: ProxyConfig, q: InboundQuery): AuthzDecision | string {
  const r = q.request!;
  const abs = /^https?:\/\//i.test(r.url) ? new URL(r.url) : null;
  const v = syntheticView(
    {
      method: r.method,
      path: abs === null ? r.url : `${abs.pathname}${abs.search}`,
      authority: abs?.host ?? r.headers?.host ?? 'localhost',
      headers: r.headers ?? {},
      ...(q.port !== null ? { port: q.port } : {}),
    },
    resolvePathNormalization(cfg.pathNormalization),
    q.port ?? 80,
  );
  if (isRejection(v)) return `${v.status} (flag ${v.flag}): ${v.detail}`;
  return authorizeAllReadings(compileAuthz(cfg.authz!), attributes(q, v));
}

function explainConnection(cfg: ProxyConfig, q: InboundQuery): InboundExplanation {
  const plan = new InboundPlan(
    cfg.version,
    cfg.inbound,
    cfg,
    new MetricsRegistry({ workload: '', namespace: '', app: '', version: '' }),
  ).forPort(q.port);
  const from = q.from ?? 'the client';
  const mtls = q.peer !== undefined;
  const d = decide(
    plan.mode,
    mtls
      ? { kind: 'tls', meshAlpn: true, sni: true, alpn: ['istio'] }
      : { kind: 'plaintext', detail: 'not TLS' },
    q.hasIdentity ?? true,
  );
  const base = {
    version: cfg.version,
    port: q.port,
    mode: plan.mode,
    policy: plan.policy,
    protocol: plan.protocol ?? 'sniffed (HTTP/1.x parsed, anything else piped)',
    ...(plan.service !== null ? { service: plan.service } : {}),
    connection: mtls ? `mesh mTLS from ${from} as ${q.peer!}` : `plaintext from ${from}`,
  };
  if (d.action === 'refuse')
    return {
      ...base,
      accepted: false,
      refusal: d.reason,
      outcome: `refused: ${refusalMessage(d.reason, from, plan.policy, q.port, d.detail)}`,
    };
  const served =
    plan.protocol === 'TCP'
      ? 'piped to the app as TCP'
      : plan.protocol === 'HTTP'
        ? 'HTTP forwarded to the app'
        : 'sniffed, then HTTP forwarded or TCP piped to the app';
  if (d.action === 'terminate')
    return {
      ...base,
      accepted: true,
      connectionSecurityPolicy: 'mutual_tls',
      sourcePrincipal: q.peer!,
      outcome: `accepted if its certificate chains to the mesh roots and names ${q.peer!}: mTLS terminated, ${served} with x-forwarded-client-cert URI=${q.peer!}`,
    };
  if (d.action === 'tls-passthrough')
    return {
      ...base,
      accepted: true,
      connectionSecurityPolicy: 'none',
      outcome: "the app's own TLS, piped untouched",
    };
  // DISABLE never looks for TLS: a port declared HTTP parses the ClientHello as a request head
  if (mtls && plan.mode === 'DISABLE' && plan.protocol === 'HTTP')
    return {
      ...base,
      accepted: false,
      outcome:
        'not terminated (DISABLE), and the port is declared HTTP: the TLS bytes fail to parse as a request (400, flag DPE) and nothing reaches the app',
    };
  return {
    ...base,
    accepted: true,
    connectionSecurityPolicy: 'none',
    outcome:
      mtls && plan.mode === 'DISABLE'
        ? `not terminated (DISABLE): the TLS bytes go to the app as they are`
        : `accepted as plaintext: ${served}, without x-forwarded-client-cert`,
  };
}
