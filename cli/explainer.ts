/**
 * `weftctl explain`'s engine: compiles a ProxyConfig with the proxy's own compiler
 * (proxy/compile) and runs the proxy's own explain (proxy/router/explain.ts, what admin
 * `POST /explain` answers) on a synthetic request, so the CLI can never disagree with the proxy.
 * On top it says *why*: for every rule tried before the one that matched, which condition of
 * each match block failed and what the request had instead; for a 404 NR, the nearest miss
 * (the rule block that failed the fewest conditions, or virtual hosts close to the authority).
 */
import { WeftError } from '../pkg/errors/index.js';
import { domainsOf } from '../pkg/proxyconfig/domains.js';
import type {
  HeaderMatch,
  LoadBalancer,
  ProxyConfig,
  RouteMatch,
  StringMatch,
} from '../pkg/proxyconfig/types.js';
import {
  compileConfig,
  findVHost,
  type CompiledHttpListener,
  type CompiledVHost,
} from '../proxy/compile/compile.js';
import { compileRouteMatch, queryParam, type Predicate, type RequestView } from '../proxy/compile/match.js';
import { selectRoute } from '../proxy/router/exchange.js';
import { explainSynthetic, syntheticView, type SyntheticRequest } from '../proxy/router/explain.js';
import { isRejection } from '../proxy/router/target.js';
import { MetricsRegistry } from '../proxy/telemetry/metrics.js';
import { explainRateLimit, type RateLimitExplanation } from '../proxy/ratelimit/explain.js';
import { rateLimitLines } from './inboundexplain.js';
import { loadBalancerText, matchBlockText, stringMatchText } from './proxyview.js';

/** What the user typed: `[METHOD] URL`, `-H 'name: value'`, `--listener`. */
export interface ExplainInput {
  method: string;
  url: string;
  headers: [string, string][];
  listener?: string;
  /**
   * The config's `rateLimits` limit its listeners (a gateway's, or a standalone config's): the
   * report names the limit that applies. A sidecar's block is for its inbound side (--inbound).
   */
  listenerRateLimits?: boolean;
  /** The client's address (a `clientIP` key); absent: unknown. */
  from?: string;
  /** weftd's Redis address (its debug answer), for a global limit's words. */
  rateLimitRedis?: string;
}

const METHOD = /^[A-Z]+$/;

/** `[METHOD] URL` from positional arguments; METHOD defaults to GET. */
export function requestFromPositionals(args: string[]): { method: string; url: string } {
  if (args.length === 1) return { method: 'GET', url: args[0]! };
  if (args.length === 2) {
    const [method, url] = args as [string, string];
    if (!METHOD.test(method))
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `${JSON.stringify(method)} is not an HTTP method (GET, POST, ... in capitals)`,
      );
    return { method, url };
  }
  throw new WeftError(
    'WEFT_INPUT_UNREADABLE',
    args.length === 0 ? 'a URL is required' : `too many arguments: ${args.join(' ')}`,
  );
}

/** `-H 'name: value'` as curl takes it. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  if (colon <= 0 || name === '' || /\s/.test(name))
    throw new WeftError('WEFT_INPUT_UNREADABLE', `-H needs 'name: value' (got ${JSON.stringify(text)})`);
  return [name.toLowerCase(), text.slice(colon + 1).trim()];
}

/**
 * The synthetic request: authority and port from the URL (`http://reviews:9080/p?q`; the scheme
 * may be left out), unless `-H 'host: ...'` says otherwise. The port is what a sidecar's router
 * sees: the authority's, else 80.
 */
export function syntheticRequest(input: ExplainInput): SyntheticRequest & { port: number } {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(input.url) ? input.url : `http://${input.url}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `${JSON.stringify(input.url)} is not a URL (like http://reviews:9080/path)`,
    );
  }
  if (url.protocol !== 'http:')
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `only http:// requests can be explained (the proxy routes plain HTTP), got ${url.protocol}`,
    );
  const headers = Object.fromEntries(input.headers);
  const authority = headers.host ?? url.host;
  const port = portOf(authority);
  return {
    method: input.method,
    path: `${url.pathname}${url.search}`,
    authority,
    headers: { ...headers, host: authority },
    port,
    ...(input.listener !== undefined ? { listener: input.listener } : {}),
  };
}

function portOf(authority: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon < 0 || authority.endsWith(']')) return 80;
  const p = Number(authority.slice(colon + 1));
  return Number.isInteger(p) && p > 0 && p < 65536 ? p : 80;
}

/** One condition of a match block, tested alone. */
export interface Condition {
  text: string;
  test: Predicate;
  /** What the request had for this condition, for "wanted X, request has Y". */
  actual: (v: RequestView) => string;
}

const shown = (s: string | undefined): string => (s === undefined ? '(absent)' : JSON.stringify(s));
const header = (v: RequestView, name: string): string | undefined => {
  const h = v.headers[name];
  return Array.isArray(h) ? h.join(',') : h;
};

function headerText(name: string, m: HeaderMatch): string {
  return 'present' in m ? `${name} present` : `${name} ${kindOf(m)} ${JSON.stringify(valueOf(m))}`;
}
const kindOf = (m: StringMatch): string => ('exact' in m ? 'exact' : 'prefix' in m ? 'prefix' : 'regex');
const valueOf = (m: StringMatch): string => ('exact' in m ? m.exact : 'prefix' in m ? m.prefix : m.regex);

/** A block's conditions one by one, each compiled by the proxy's matcher on its own. */
export function conditionsOf(m: RouteMatch): Condition[] {
  const out: Condition[] = [];
  const one = (text: string, part: RouteMatch, actual: (v: RequestView) => string): void => {
    out.push({ text, test: compileRouteMatch(part), actual });
  };
  if (m.uri)
    one(
      `uri ${kindOf(m.uri)} ${JSON.stringify(valueOf(m.uri))}${m.ignoreUriCase ? ' (any case)' : ''}`,
      { uri: m.uri, ...(m.ignoreUriCase ? { ignoreUriCase: true } : {}) },
      (v) => shown(v.path),
    );
  if (m.method) one(`method ${stringMatchText(m.method)}`, { method: m.method }, (v) => v.method);
  if (m.scheme) one(`scheme ${stringMatchText(m.scheme)}`, { scheme: m.scheme }, (v) => v.scheme);
  if (m.authority)
    one(
      `authority ${kindOf(m.authority)} ${JSON.stringify(valueOf(m.authority))}`,
      { authority: m.authority },
      (v) => shown(v.authority),
    );
  if (m.port !== undefined) one(`port ${m.port}`, { port: m.port }, (v) => String(v.port));
  for (const [k, h] of Object.entries(m.headers ?? {}))
    one(`header ${headerText(k, h)}`, { headers: { [k]: h } }, (v) => shown(header(v, k.toLowerCase())));
  for (const [k, h] of Object.entries(m.withoutHeaders ?? {}))
    one(`without header ${headerText(k, h)}`, { withoutHeaders: { [k]: h } }, (v) =>
      shown(header(v, k.toLowerCase())),
    );
  for (const [k, q] of Object.entries(m.queryParams ?? {}))
    one(`query ${headerText(k, q)}`, { queryParams: { [k]: q } }, (v) => shown(queryParam(v, k)));
  return out;
}

export interface BlockMiss {
  block: number;
  summary: string;
  failed: { condition: string; request: string }[];
}

export interface RouteMiss {
  index: number;
  name?: string;
  source?: string;
  blocks: BlockMiss[];
}

export interface ExplainReport {
  /** The proxy's own explain record (admin `POST /explain`). */
  explain: Record<string, unknown>;
  /** Rules tried before the one that matched (all of them on a 404 NR), and why each failed. */
  misses: RouteMiss[];
  /** On a 404 NR: the block that came closest. */
  nearestMiss?: RouteMiss;
  /** On a 404 NR for lack of a virtual host: hosts that look like the one asked for. */
  nearestHosts?: string[];
  /** The listener rate limit the request falls under (gateways; checked before routing, no token taken). */
  rateLimit?: RateLimitExplanation;
  routed: boolean;
}

function sourceText(
  s: { kind: string; namespace?: string; name: string; rule?: number } | undefined,
): string | undefined {
  if (!s) return undefined;
  return `${s.kind} ${s.namespace ? `${s.namespace}/` : ''}${s.name}${s.rule !== undefined ? ` http[${s.rule}]` : ''}`;
}

function missesBefore(vh: CompiledVHost, upTo: number, v: RequestView): RouteMiss[] {
  return vh.routes.slice(0, upTo).map((r) => {
    const source = sourceText(r.source);
    return {
      index: r.index,
      ...(r.name !== undefined ? { name: r.name } : {}),
      ...(source !== undefined ? { source } : {}),
      blocks: r.matches.map((m, block) => ({
        block,
        summary: matchBlockText(m),
        failed: conditionsOf(m)
          .filter((c) => !c.test(v))
          .map((c) => ({ condition: c.text, request: c.actual(v) })),
      })),
    };
  });
}

function nearestOf(misses: RouteMiss[]): RouteMiss | undefined {
  let best: RouteMiss | undefined;
  let fewest = Infinity;
  for (const m of misses)
    for (const b of m.blocks)
      if (b.failed.length < fewest) {
        fewest = b.failed.length;
        best = { ...m, blocks: [b] };
      }
  return best;
}

/** Virtual hosts whose domains share the request's host name (other port) or its first label. */
function nearestHosts(cfg: ProxyConfig, listener: string, authority: string): string[] {
  const host = authority.replace(/:\d+$/, '').toLowerCase();
  const first = host.split('.')[0] ?? host;
  const l = cfg.listeners.find((x) => x.name === listener);
  if (!l || l.protocol !== 'HTTP') return [];
  const hits = l.virtualHosts.filter((vh) =>
    domainsOf(vh).some((d) => {
      const dh = d.replace(/:\d+$/, '');
      return dh === host || editDistance(dh.split('.')[0] ?? dh, first) <= 2;
    }),
  );
  return hits.slice(0, 5).map((vh) => vh.name);
}

/** Levenshtein distance, for "did you mean" on host names (short strings only). */
export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The HTTP listener to explain against: `--listener`, else one on the request's port, else the first. */
function chooseListener(cfg: ProxyConfig, req: SyntheticRequest & { port: number }): string | undefined {
  if (req.listener !== undefined) return req.listener;
  const http = cfg.listeners.filter((l) => l.protocol === 'HTTP');
  return (http.find((l) => l.port === req.port) ?? http[0])?.name;
}

export function explainRequest(cfg: ProxyConfig, input: ExplainInput): ExplainReport {
  const req = syntheticRequest(input);
  const listenerName = chooseListener(cfg, req);
  const { config } = compileConfig(cfg, {
    metrics: new MetricsRegistry({ workload: '', namespace: '', app: '', version: '' }),
  });
  const explain = explainSynthetic(
    config,
    { ...req, ...(listenerName ? { listener: listenerName } : {}) },
    selectRoute,
  );
  const listener = config.listeners.find(
    (l): l is CompiledHttpListener => l.protocol === 'HTTP' && l.name === listenerName,
  );
  const outcome = String(explain.outcome ?? '');
  const routed = explain.error === undefined && !outcome.startsWith('404') && !outcome.startsWith('403 RBAC');
  if (!listener) return { explain, misses: [], routed: false };
  // the proxy's own view of the request (head checks, path normalization)
  const v = syntheticView(req, config.pathNormalization, listener.port);
  if (isRejection(v)) return { explain, misses: [], routed: false };
  // a gateway checks its listener limits before routing: a request to no host spends a token too
  const rl = listenerRateLimit(cfg, input, v, listener.port, outcome);
  const rateLimit = rl !== null ? { rateLimit: rl } : {};
  const vh = findVHost(listener, v.authority);
  if (vh === null)
    return {
      explain,
      misses: [],
      nearestHosts: nearestHosts(cfg, listener.name, req.authority ?? ''),
      ...rateLimit,
      routed,
    };
  const matched = (explain.route as { index?: number } | undefined)?.index;
  const misses = missesBefore(vh, matched ?? vh.routes.length, v);
  const nearest = routed ? undefined : nearestOf(misses);
  return { explain, misses, ...(nearest ? { nearestMiss: nearest } : {}), ...rateLimit, routed };
}

/** The gateway's listener limit for a request authorization let through (routing comes after it). */
function listenerRateLimit(
  cfg: ProxyConfig,
  input: ExplainInput,
  v: RequestView,
  port: number,
  outcome: string,
): RateLimitExplanation | null {
  if (input.listenerRateLimits !== true || outcome.startsWith('403 RBAC')) return null;
  return explainRateLimit(
    cfg.rateLimits,
    {
      port,
      target: v.target,
      method: v.method,
      headers: Object.fromEntries(input.headers.map(([k, val]) => [k.toLowerCase(), val])),
      principal: null,
      claims: null,
      peerIp: input.from,
    },
    input.rateLimitRedis,
  );
}

// ---------------------------------------------------------------- text

interface DestinationRecord {
  cluster: string;
  subset?: string;
  probability: string;
  exists: boolean;
  endpoints: { address: string; healthy: boolean }[];
  loadBalancer: string;
  outcomeIfChosen: string;
}

interface RouteRecord {
  index: number;
  name?: string;
  source?: string;
  match: string | { index: number; name?: string; conditions: RouteMatch };
}

const LABEL_WIDTH = 14;
const line = (label: string, text: string): string => `${label.padEnd(LABEL_WIDTH)}${text}\n`;

function routeText(r: RouteRecord): string {
  const who = `#${r.index}${r.name ? ` ${r.name}` : ''}${r.source ? ` (${r.source})` : ''}`;
  if (typeof r.match === 'string') return `${who}, ${r.match}`;
  return `${who}, match block ${r.match.index}${r.match.name ? ` "${r.match.name}"` : ''}: ${matchBlockText(r.match.conditions)}`;
}

function missText(m: RouteMiss, indent: string): string {
  let out = `${indent}#${m.index}${m.name ? ` ${m.name}` : ''}${m.source ? ` (${m.source})` : ''}\n`;
  for (const b of m.blocks) {
    const why = b.failed.map((f) => `${f.condition}, request has ${f.request}`).join('; ');
    out += `${indent}  block ${b.block} [${b.summary}]: ${why || 'matched'}\n`;
  }
  return out;
}

/** explain gives a live balancer's kind, or the configured one as JSON. */
function lbText(lb: string): string {
  if (!lb.startsWith('{')) return lb;
  try {
    return loadBalancerText(JSON.parse(lb) as LoadBalancer);
  } catch {
    return lb;
  }
}

function durationText(ms: unknown): string {
  return typeof ms === 'number' ? `${ms}ms` : String(ms);
}

/** The report as a person reads it: one labelled line per decision. */
export function explainText(report: ExplainReport): string {
  const e = report.explain;
  const req = e.request as { method: string; path: string; authority: string } | undefined;
  let out = '';
  if (req) out += line('request', `${req.method} http://${req.authority}${req.path}`);
  if (typeof e.version === 'string') out += line('config', `version ${e.version}`);
  if (typeof e.error === 'string') return out + line('outcome', `cannot explain: ${e.error}`);
  out += line('listener', String(e.listener));
  const authz = e.authz as { decision: string; reason: string; audit?: string; custom?: string } | undefined;
  if (authz) {
    out += line('authorization', `${authz.decision}: ${authz.reason}`);
    if (authz.custom !== undefined) out += line('', authz.custom);
    if (authz.audit !== undefined) out += line('', `audited by ${authz.audit}`);
  }
  if (report.rateLimit !== undefined) out += rateLimitLines(report.rateLimit);
  if (typeof e.virtualHost === 'string') out += line('virtual host', e.virtualHost);
  if (report.misses.length > 0 && report.routed) {
    out += 'not matched:\n';
    for (const m of report.misses) out += missText(m, '  ');
  }
  const route = e.route as RouteRecord | undefined;
  if (route) out += line('route', routeText(route));
  const dests = e.destinations as DestinationRecord[] | undefined;
  for (const d of dests ?? []) {
    const eps =
      d.endpoints.length === 0
        ? 'no endpoints'
        : `${d.endpoints.filter((x) => x.healthy).length}/${d.endpoints.length} endpoints healthy (${d.endpoints
            .slice(0, 3)
            .map((x) => x.address)
            .join(', ')}${d.endpoints.length > 3 ? ', ...' : ''})`;
    out += line(
      'destination',
      `${d.cluster}${d.subset ? ` subset ${d.subset}` : ''}, ${d.probability} of requests, ${lbText(d.loadBalancer)}, ${eps}${d.outcomeIfChosen !== 'forwarded' ? ` → ${d.outcomeIfChosen}` : ''}`,
    );
  }
  const rw = e.rewrite as { uri: string | null; authority: string | null; regex: boolean } | undefined;
  if (rw)
    out += line(
      'rewrite',
      [
        rw.uri !== null ? `uri → ${rw.uri}` : '',
        rw.regex ? 'uri by regex' : '',
        rw.authority !== null ? `authority → ${rw.authority}` : '',
      ]
        .filter((s) => s !== '')
        .join(', '),
    );
  if (e.redirect !== undefined) out += line('redirect', JSON.stringify(e.redirect));
  if (e.timeoutMs !== undefined) out += line('timeout', durationText(e.timeoutMs));
  const retries = e.retries as
    { attempts: number; perTryTimeoutMs?: number; retryOn: string[]; statusCodes: number[] } | undefined;
  if (retries)
    out += line(
      'retries',
      retries.attempts === 0
        ? 'none'
        : `${retries.attempts} on ${[...retries.retryOn, ...retries.statusCodes.map(String)].join(',') || '-'}${retries.perTryTimeoutMs ? `, ${retries.perTryTimeoutMs}ms per try` : ''}`,
    );
  const fault = e.fault as
    { delayMs: number; delayFraction: number; abortStatus: number; abortFraction: number } | undefined;
  if (fault) {
    const parts: string[] = [];
    if (fault.delayFraction > 0) parts.push(`delay ${fault.delayMs}ms for ${fault.delayFraction * 100}%`);
    if (fault.abortFraction > 0) parts.push(`abort ${fault.abortStatus} for ${fault.abortFraction * 100}%`);
    out += line('fault', `${parts.join(', ')} (retries and timeout off, as Istio does)`);
  }
  const mirrors = e.mirrors as { cluster: string; percentage: number }[] | undefined;
  if (mirrors && mirrors.length > 0)
    out += line('mirrors', mirrors.map((m) => `${m.cluster} ${m.percentage}%`).join(', '));
  out += line('outcome', String(e.outcome));
  if (report.nearestMiss) out += `nearest miss:\n${missText(report.nearestMiss, '  ')}`;
  else if (!report.routed && report.misses.length > 0) {
    out += 'rules tried:\n';
    for (const m of report.misses) out += missText(m, '  ');
  }
  if (report.nearestHosts && report.nearestHosts.length > 0)
    out += line('nearest', `virtual hosts: ${report.nearestHosts.join(', ')}`);
  return out;
}

/** A mesh object weftd leaves out of this config because it fails validation (/debug/config). */
export interface NotAppliedObject {
  kind: string;
  namespace: string;
  name: string;
  /** The first error, `path: message`. */
  error: string;
  errors: number;
  /** A security object weft fails closed for: what it enforces instead. */
  instead?: string;
}

const NOT_APPLIED_LISTED = 5;

/** Cluster text for a terminal: control characters shown escaped, never interpreted. */
const printable = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * The objects weftd leaves out of the explained config: a route or policy the user expected may
 * be missing because its object fails validation, and its status says so (Accepted=False).
 */
export function notAppliedText(objects: readonly NotAppliedObject[]): string {
  if (objects.length === 0) return '';
  const them = objects.length === 1 ? 'it' : 'them';
  // a security object is not left out: weftd enforces a fail-closed stand-in for it (`instead`)
  const fate = objects.some((o) => typeof o.instead === 'string')
    ? `weft does not apply ${them} as written`
    : `weft leaves ${them} out of this config`;
  let out = line(
    'not applied',
    `${objects.length} object${objects.length === 1 ? '' : 's'} that could reach this proxy fail${objects.length === 1 ? 's' : ''} validation; ${fate}:`,
  );
  for (const o of objects.slice(0, NOT_APPLIED_LISTED)) {
    const more = o.errors > 1 ? ` (and ${o.errors - 1} more error${o.errors > 2 ? 's' : ''})` : '';
    out += `  ${printable(`${o.kind} ${o.namespace}/${o.name}: ${o.error}`)}${more}\n`;
    if (typeof o.instead === 'string') out += `    instead: ${printable(o.instead)}\n`;
  }
  if (objects.length > NOT_APPLIED_LISTED) out += `  (and ${objects.length - NOT_APPLIED_LISTED} more)\n`;
  return `${out}  (each one's status says why: kubectl get KIND NAME -n NAMESPACE -o yaml, condition Accepted)\n`;
}
