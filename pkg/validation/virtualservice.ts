/**
 * VirtualService rules: every rule of RULES.md §1 (Istio's webhook), plus weft's per-object
 * extras (unreachable rules behind a catch-all, retries that cannot fit in the route timeout).
 * Rule ids are `vs.*`; docs/validation.md lists them.
 */
import type {
  CorsPolicy,
  Destination,
  HTTPDirectResponse,
  HTTPFaultInjection,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRetry,
  HTTPRewrite,
  HTTPRoute,
  Headers,
  L4MatchAttributes,
  RouteDestination,
  TCPRoute,
  TLSMatchAttributes,
  TLSRoute,
  VirtualServiceSpec,
} from '../api/virtualservice.js';
import { GRPC_CODE_NAMES } from '../api/virtualservice.js';
import type { StringMatch } from '../api/common.js';
import { isProxyOwnedField, sendableFieldValue } from '../http/fields.js';
import { validAuthority } from '../http/authority.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import {
  checkDuration,
  checkExportTo,
  checkFQDN,
  checkGatewayHost,
  checkHeaderOperationName,
  checkHeaderValue,
  checkIPOrCIDR,
  checkLabelMap,
  checkMatchHeaderName,
  checkPort,
  checkRegex,
  checkRegexBacktracking,
  checkWildcardDomain,
  hostSubsetOf,
  hostsOverlap,
  isAuthorityHeader,
  isDNS1123Label,
  isIPAddress,
  isJwtClaimKey,
  isToken,
  parseGoDuration,
} from './primitives.js';

type Path = readonly PathSegment[];

const MESH = 'mesh';
const ROUTE_SEMANTICS = 'internal.istio.io/route-semantics';

interface VSContext {
  report: Report;
  /** `internal.istio.io/route-semantics: gateway` relaxes gateway-name and destination checks. */
  gatewaySemantics: boolean;
}

/**
 * Istio skips a `null` element of `http[].match` (routing reads it as a match with no
 * conditions, matching every request); the rules see it as `{}`, which is the same match.
 * Indexes, and so finding paths, are unchanged; the caller's object is not modified.
 */
function nullMatchesAsEmpty(spec: VirtualServiceSpec): VirtualServiceSpec {
  const hasNull = (h: HTTPRoute): boolean =>
    (h.match as (HTTPMatchRequest | null)[] | undefined)?.includes(null) === true;
  if (!spec.http?.some(hasNull)) return spec;
  return {
    ...spec,
    http: spec.http.map((h) =>
      hasNull(h) ? { ...h, match: (h.match ?? []).map((m: HTTPMatchRequest | null) => m ?? {}) } : h,
    ),
  };
}

export function validateVirtualService(input: VirtualServiceSpec, ctx: RuleContext): void {
  const spec = nullMatchesAsEmpty(input);
  const r = ctx.report;
  const vs: VSContext = { report: r, gatewaySemantics: ctx.annotations[ROUTE_SEMANTICS] === 'gateway' };
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const isDelegate = hosts.length === 0;

  if (isDelegate) {
    if (gateways.length > 0)
      r.error(
        ['spec', 'gateways'],
        'delegate virtual service must have no gateways specified',
        'vs.delegate.gateways',
      );
    if ((spec.tls ?? []).length > 0)
      r.error(
        ['spec', 'tls'],
        'delegate virtual service must have no tls route specified',
        'vs.delegate.tls',
      );
    if ((spec.tcp ?? []).length > 0)
      r.error(
        ['spec', 'tcp'],
        'delegate virtual service must have no tcp route specified',
        'vs.delegate.tcp',
      );
  }

  // Bound to gateways unless the list is empty or names `mesh`.
  const appliesToGateway = gateways.length > 0 && !gateways.includes(MESH);
  const appliesToMesh = !appliesToGateway;
  if (gateways.length > 0) checkGatewayNames(gateways, ['spec', 'gateways'], vs);
  if (!appliesToGateway) checkJwtClaimRouting(spec, gateways, r);

  checkHosts(spec, hosts, appliesToGateway, appliesToMesh, r);

  if ((spec.http ?? []).length === 0 && (spec.tcp ?? []).length === 0 && (spec.tls ?? []).length === 0) {
    r.error(['spec'], 'http, tcp or tls must be provided in virtual service', 'vs.routes.required');
  }
  (spec.http ?? []).forEach((route, i) => validateHTTPRoute(route, isDelegate, ['spec', 'http', i], vs));
  (spec.tls ?? []).forEach((route, i) => validateTLSRoute(route, spec, ['spec', 'tls', i], vs));
  (spec.tcp ?? []).forEach((route, i) => validateTCPRoute(route, ['spec', 'tcp', i], vs));

  for (const msg of checkExportTo(spec.exportTo ?? [], ctx.namespace))
    r.error(['spec', 'exportTo'], msg, 'vs.exportTo');

  analyzeUnreachable(spec.http ?? [], 'http', r);
  analyzeUnreachable(spec.tcp ?? [], 'tcp', r);
  analyzeUnreachable(spec.tls ?? [], 'tls', r);
}

// ---- hosts and gateways -------------------------------------------------------------------

function checkHosts(
  spec: VirtualServiceSpec,
  hosts: string[],
  appliesToGateway: boolean,
  appliesToMesh: boolean,
  r: Report,
): void {
  const sni = (spec.tls ?? []).some((t) => (t.match ?? []).some((m) => (m.sniHosts ?? []).length > 0));
  let allValid = true;
  hosts.forEach((host, i) => {
    const err = appliesToGateway ? checkGatewayHost(sni, host) : checkWildcardDomain(host);
    if (err) {
      if (!isIPAddress(host)) {
        r.error(['spec', 'hosts', i], err, 'vs.hosts.invalid');
        allValid = false;
      }
    } else if (appliesToMesh && host === '*') {
      r.error(
        ['spec', 'hosts', i],
        'wildcard host * is not allowed for virtual services bound to the mesh gateway',
        'vs.hosts.meshWildcard',
      );
      allValid = false;
    }
  });
  if (!allValid) return;
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      const a = hosts[i] ?? '';
      const b = hosts[j] ?? '';
      if (hostsOverlap(a, b))
        r.error(
          ['spec', 'hosts', j],
          `duplicate hosts in virtual service: ${a} & ${b}`,
          'vs.hosts.duplicate',
        );
    }
  }
}

/**
 * Istio's gateway-name rules. Quirk kept on purpose (verdicts must agree with Istio): checking
 * stops at the first name without a `/`.
 */
export function checkGatewayNames(names: string[], path: Path, vs: VSContext): void {
  const r = vs.report;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] ?? '';
    const at = [...path, i];
    const slash = name.indexOf('/');
    if (slash < 0) {
      if (name.includes('.')) {
        const parts = name.split('.');
        r.warn(
          at,
          `using legacy gatewayName format ${JSON.stringify(name)}; prefer the <namespace>/<name> format: ${JSON.stringify(`${parts[1]}/${parts[0]}`)}`,
          'vs.gateways.legacyName',
        );
      }
      const err = checkFQDN(name);
      if (err) r.error(at, err, 'vs.gateways.name');
      return;
    }
    const ns = name.slice(0, slash);
    const gw = name.slice(slash + 1);
    if (ns === '' || gw === '')
      r.error(at, 'config namespace and gateway name cannot be empty', 'vs.gateways.name');
    if (!isDNS1123Label(ns))
      r.error(at, `invalid value for namespace: ${JSON.stringify(ns)}`, 'vs.gateways.namespace');
    if (!isDNS1123Label(gw) && !vs.gatewaySemantics)
      r.error(at, `invalid value for gateway name: ${JSON.stringify(gw)}`, 'vs.gateways.name');
  }
}

function checkJwtClaimRouting(spec: VirtualServiceSpec, gateways: string[], r: Report): void {
  (spec.http ?? []).forEach((route, i) =>
    (route.match ?? []).forEach((m, j) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(m[field] ?? {})) {
          if (isJwtClaimKey(key)) {
            r.error(
              ['spec', 'http', i, 'match', j, field, key],
              `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`,
              'vs.match.jwtClaimNeedsGateway',
            );
          }
        }
      }
    }),
  );
}

// ---- HTTP routes --------------------------------------------------------------------------

function validateHTTPRoute(http: HTTPRoute, inDelegateVS: boolean, path: Path, vs: VSContext): void {
  const r = vs.report;
  const isRoot = !inDelegateVS && http.delegate !== undefined;
  checkRouteConflicts(http, inDelegateVS, isRoot, path, r);
  (http.match ?? []).forEach((m, i) => validateHTTPMatch(m, [...path, 'match', i], vs));
  checkHeaders(http.headers, [...path, 'headers'], r);
  if (http.corsPolicy) validateCors(http.corsPolicy, [...path, 'corsPolicy'], r);
  if (http.fault) validateFault(http.fault, [...path, 'fault'], r);
  checkMirrors(http, path, vs);
  if (http.redirect) validateRedirect(http.redirect, http.match ?? [], [...path, 'redirect'], r);
  if (http.directResponse) validateDirectResponse(http.directResponse, [...path, 'directResponse'], r);
  if (http.retries) validateRetries(http.retries, [...path, 'retries'], r);
  if (http.rewrite) validateRewrite(http.rewrite, [...path, 'rewrite'], r);
  checkAuthorityOnce(http.rewrite, http.headers, path, r);
  validateRouteDestinations(http.route ?? [], [...path, 'route'], vs, true);
  if (http.timeout !== undefined) duration(http.timeout, [...path, 'timeout'], r, 'vs.timeout');
  checkRetriesFitTimeout(http, path, r);
}

function checkRouteConflicts(
  http: HTTPRoute,
  inDelegateVS: boolean,
  isRoot: boolean,
  path: Path,
  r: Report,
): void {
  const name = http.name ?? '';
  if (isRoot) {
    if (http.redirect)
      r.error(
        [...path, 'redirect'],
        `root HTTP route ${name} must not specify redirect`,
        'vs.http.rootRedirect',
      );
    if (http.route)
      r.error([...path, 'route'], `root HTTP route ${name} must not specify route`, 'vs.http.rootRoute');
  } else {
    if (inDelegateVS && http.delegate)
      r.error(
        [...path, 'delegate'],
        'delegate HTTP route cannot contain delegate',
        'vs.http.delegateInDelegate',
      );
    const hasRoute = (http.route ?? []).length > 0;
    if (http.redirect) {
      if (hasRoute)
        r.error(path, 'HTTP route cannot contain both route and redirect', 'vs.http.routeAndRedirect');
      if (http.fault)
        r.error(path, 'HTTP route cannot contain both fault and redirect', 'vs.http.faultAndRedirect');
      if (http.rewrite)
        r.error(
          path,
          'HTTP route rule cannot contain both rewrite and redirect',
          'vs.http.rewriteAndRedirect',
        );
      if (http.directResponse)
        r.error(
          path,
          'HTTP route cannot contain both direct_response and redirect',
          'vs.http.directResponseAndRedirect',
        );
    } else if (http.directResponse) {
      if (hasRoute)
        r.error(
          path,
          'HTTP route cannot contain both route and direct_response',
          'vs.http.routeAndDirectResponse',
        );
      if (http.fault)
        r.error(
          path,
          'HTTP route cannot contain both fault and direct_response',
          'vs.http.faultAndDirectResponse',
        );
      if (http.rewrite)
        r.error(
          path,
          'HTTP route rule cannot contain both rewrite and direct_response',
          'vs.http.rewriteAndDirectResponse',
        );
    } else if (!hasRoute) {
      r.error(
        [...path, 'route'],
        'HTTP route, redirect or direct_response is required',
        'vs.http.actionRequired',
      );
    }
  }
  if (http.mirror && http.mirrors)
    r.error(path, 'HTTP route cannot contain both mirror and mirrors', 'vs.http.mirrorAndMirrors');
}

function validateHTTPMatch(m: HTTPMatchRequest, path: Path, vs: VSContext): void {
  const r = vs.report;
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const err = checkMatchHeaderName(name);
    if (err) r.error([...path, 'headers', name], err, 'vs.match.headerName');
    checkStringMatch(sm, 'headers', false, [...path, 'headers', name], r);
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const err = checkMatchHeaderName(name);
    if (err) r.error([...path, 'withoutHeaders', name], err, 'vs.match.headerName');
    // `regex: "*"` is Istio's way of saying "header present"; not a regex.
    if (sm.regex !== '*') checkStringMatch(sm, 'withoutHeaders', false, [...path, 'withoutHeaders', name], r);
  }
  if (m.uri) checkStringMatch(m.uri, 'uri', true, [...path, 'uri'], r);
  for (const field of ['scheme', 'method', 'authority'] as const) {
    const sm = m[field];
    if (sm) checkStringMatch(sm, field, false, [...path, field], r);
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {}))
    checkStringMatch(sm, 'queryParams', false, [...path, 'queryParams', name], r);
  if (m.port !== undefined && m.port !== 0) portCheck(m.port, [...path, 'port'], r);
  labels(m.sourceLabels, [...path, 'sourceLabels'], r);
  if (m.gateways) checkGatewayNames(m.gateways, [...path, 'gateways'], vs);
  if (m.sourceNamespace && !isDNS1123Label(m.sourceNamespace)) {
    r.error(
      [...path, 'sourceNamespace'],
      `sourceNamespace match ${m.sourceNamespace} is invalid`,
      'vs.match.sourceNamespace',
    );
  }
}

/** Empty prefix is fine for `uri` only; empty regex never; regexes must be RE2. */
function checkStringMatch(
  sm: StringMatch,
  what: string,
  allowEmptyPrefix: boolean,
  path: Path,
  r: Report,
): void {
  if (sm.prefix === '' && !allowEmptyPrefix)
    r.error(
      [...path, 'prefix'],
      `${JSON.stringify(what)}: prefix string match should not be empty`,
      'vs.match.emptyPrefix',
    );
  if (sm.regex === undefined) return;
  if (sm.regex === '') {
    r.error(
      [...path, 'regex'],
      `${JSON.stringify(what)}: regex string match should not be empty`,
      'vs.match.emptyRegex',
    );
    return;
  }
  regex(sm.regex, [...path, 'regex'], r, 'vs.match.regex');
}

/** RE2 syntax (Istio), then weft's catastrophic-backtracking shape check. */
function regex(value: string, path: Path, r: Report, rule: string): void {
  const err = checkRegex(value);
  if (err) {
    r.error(path, err, rule);
    return;
  }
  const shape = checkRegexBacktracking(value);
  if (shape) r.error(path, shape, 'regex.nestedRepetition');
}

// ---- destinations -------------------------------------------------------------------------

function validateRouteDestinations(
  routes: (RouteDestination & { headers?: Headers })[],
  path: Path,
  vs: VSContext,
  http: boolean,
): void {
  const r = vs.report;
  let total = 0;
  routes.forEach((rd, i) => {
    const at = [...path, i];
    if (!vs.gatewaySemantics) validateDestination(rd.destination, [...at, 'destination'], r);
    if (http) checkHeaders(rd.headers, [...at, 'headers'], r);
    const weight = rd.weight ?? 0;
    if (weight < 0) r.error([...at, 'weight'], `weight ${weight} < 0`, 'vs.route.weight.negative');
    total += weight;
  });
  if (routes.length > 1 && total === 0) {
    r.error(
      path,
      'total destination weight = 0 (every destination has weight 0, so no traffic can be sent)',
      'vs.route.weight.zeroTotal',
    );
  }
}

export function validateDestination(d: Destination, path: Path, r: Report): void {
  if (d.host === '*') r.error([...path, 'host'], 'invalid destination host *', 'vs.destination.host');
  else {
    const err = checkWildcardDomain(d.host);
    if (err) r.error([...path, 'host'], err, 'vs.destination.host');
  }
  if (d.subset !== undefined && d.subset !== '' && !isDNS1123Label(d.subset)) {
    r.error([...path, 'subset'], `subset name is invalid: ${d.subset}`, 'vs.destination.subset');
  }
  if (d.port !== undefined) portCheck(d.port.number ?? 0, [...path, 'port', 'number'], r);
}

function checkMirrors(http: HTTPRoute, path: Path, vs: VSContext): void {
  const r = vs.report;
  if (http.mirrorPercent !== undefined && http.mirrorPercent !== null) {
    if (http.mirrorPercent > 100)
      r.error(
        [...path, 'mirrorPercent'],
        `mirror_percent must have a max value of 100 (it has ${http.mirrorPercent})`,
        'vs.mirror.percent',
      );
    r.warn(
      [...path, 'mirrorPercent'],
      'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
      'vs.mirror.percentDeprecated',
    );
  }
  if (http.mirrorPercentage)
    percent0to100(
      http.mirrorPercentage.value ?? 0,
      'mirror_percentage',
      [...path, 'mirrorPercentage', 'value'],
      r,
    );
  if (http.mirror) validateDestination(http.mirror, [...path, 'mirror'], r);
  (http.mirrors ?? []).forEach((m, i) => {
    validateDestination(m.destination, [...path, 'mirrors', i, 'destination'], r);
    if (m.percentage)
      percent0to100(
        m.percentage.value ?? 0,
        'mirror_percentage',
        [...path, 'mirrors', i, 'percentage', 'value'],
        r,
      );
  });
}

function percent0to100(value: number, what: string, path: Path, r: Report): void {
  if (value > 100)
    r.error(path, `${what} must have a max value of 100 (it has ${value.toFixed(6)})`, 'vs.percentage.range');
  if (value < 0)
    r.error(path, `${what} must have a min value of 0 (it has ${value.toFixed(6)})`, 'vs.percentage.range');
}

// ---- headers ------------------------------------------------------------------------------

function checkHeaders(headers: Headers | undefined, path: Path, r: Report): void {
  if (!headers) return;
  const req = headers.request ?? {};
  const res = headers.response ?? {};
  for (const op of ['add', 'set'] as const) {
    for (const [name, value] of Object.entries(req[op] ?? {})) {
      const at = [...path, 'request', op, name];
      const err =
        name === ''
          ? 'header name cannot be empty'
          : name.startsWith(':') && !isAuthorityHeader(name)
            ? `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`
            : undefined;
      if (err) r.error(at, err, 'vs.headers.name');
      else proxyOwned(name, at, r);
      headerValue(value, at, r);
    }
    for (const [name, value] of Object.entries(res[op] ?? {})) {
      const at = [...path, 'response', op, name];
      const err = checkHeaderOperationName(name);
      if (err) r.error(at, err, 'vs.headers.name');
      else proxyOwned(name, at, r);
      headerValue(value, at, r);
    }
  }
  for (const [dir, ops] of [
    ['request', req],
    ['response', res],
  ] as const) {
    (ops.remove ?? []).forEach((name, i) => {
      const err = checkHeaderOperationName(name);
      if (err) r.error([...path, dir, 'remove', i], err, 'vs.headers.name');
    });
  }
}

/** A set/add of a connection or framing field: Istio accepts it, weft's proxy ignores it (fields.ts). */
function proxyOwned(name: string, path: Path, r: Report): void {
  if (!isProxyOwnedField(name)) return;
  r.warn(
    path,
    `header ${JSON.stringify(name)} is written by the proxy itself (connection management and message framing); weft ignores this operation, as Envoy's connection manager drops the field`,
    'vs.headers.proxyOwned',
  );
}

function headerValue(value: string, path: Path, r: Report): void {
  const err = checkHeaderValue(value);
  if (err) r.error(path, err, 'vs.headers.value');
}

/**
 * A rewritten authority no upstream can be sent (a space, userinfo, CR/LF, NUL, a character an
 * authority forbids): Istio accepts any `rewrite.authority` and any Host/:authority header value
 * without control characters, so this is a warning, not an error; weft's proxies never send it
 * (503 flag DPE, WEFT_PROXY_REQUEST_UNSENDABLE), where Envoy would refuse the whole route table.
 * A header value with `%` may be an Envoy substitution, known only per request: not judged.
 */
function authorityValue(value: unknown, path: Path, r: Report, header: boolean): void {
  if (typeof value !== 'string' || value === '' || validAuthority(value)) return;
  if (header && (value.includes('%') || checkHeaderValue(value))) return; // a substitution, or already an error
  r.warn(
    path,
    () =>
      `authority ${JSON.stringify(value)} is not uri-host[:port] (no space, userinfo or control character): it can never be sent, so weft answers requests on this route 503 (flag DPE) instead of forwarding them`,
    'vs.rewrite.authorityUnsendable',
  );
}

/** The authority may be rewritten in one place only (rewrite.authority, or one Host/:authority header). */
function checkAuthorityOnce(
  rewrite: HTTPRewrite | undefined,
  headers: Headers | undefined,
  path: Path,
  r: Report,
): void {
  authorityValue(rewrite?.authority, [...path, 'rewrite', 'authority'], r, false);
  for (const op of ['set', 'add'] as const)
    for (const [k, v] of Object.entries(headers?.request?.[op] ?? {}))
      if (isAuthorityHeader(k)) authorityValue(v, [...path, 'headers', 'request', op, k], r, true);
  let current = rewrite?.authority ?? '';
  for (const op of ['set', 'add'] as const) {
    for (const [k, v] of Object.entries(headers?.request?.[op] ?? {})) {
      if (!isAuthorityHeader(k)) continue;
      if (current !== '') {
        r.error(
          [...path, 'headers', 'request', op, k],
          `authority header cannot be set multiple times: have ${JSON.stringify(current)}, attempting to set ${JSON.stringify(v)}`,
          'vs.headers.authorityTwice',
        );
        return;
      }
      current = v;
    }
  }
}

// ---- rewrite, redirect, direct response ---------------------------------------------------

function validateRewrite(rw: HTTPRewrite, path: Path, r: Report): void {
  const hasUri = rw.uri !== undefined && rw.uri !== '';
  if (hasUri && rw.uriRegexRewrite) {
    r.error(path, 'rewrite may only contain one of URI or UriRegexRewrite', 'vs.rewrite.uriAndRegex');
    return;
  }
  if (!hasUri && !rw.uriRegexRewrite && !rw.authority) {
    r.error(
      path,
      'rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified',
      'vs.rewrite.empty',
    );
    return;
  }
  const rx = rw.uriRegexRewrite;
  if (rx) {
    if (!rx.match || rx.rewrite === undefined || rx.rewrite === '') {
      r.error(
        [...path, 'uriRegexRewrite'],
        'UriRegexRewrite requires both Rewrite and Match fields to be specified',
        'vs.rewrite.regexIncomplete',
      );
      return;
    }
    regex(rx.match, [...path, 'uriRegexRewrite', 'match'], r, 'vs.rewrite.regex');
  }
}

/**
 * `redirect.authority` / `redirect.uri` values Istio does not check (and Envoy refuses in its
 * route table): accepted, with a warning. One that makes a Location node cannot write (CR, LF,
 * NUL, above U+00FF) is answered 503 DPE by weft's proxies (WEFT_PROXY_REDIRECT_UNSENDABLE); an
 * authority that is merely not uri-host[:port] goes out, and no client can follow it.
 */
function redirectValues(rd: HTTPRedirect, path: Path, r: Report): void {
  const unsendable =
    ': it can never be sent in a Location header, so weft answers requests on this route 503 (flag DPE)';
  const authority = rd.authority;
  if (typeof authority === 'string' && authority !== '' && !validAuthority(authority))
    r.warn(
      [...path, 'authority'],
      () =>
        `redirect authority ${JSON.stringify(authority)} is not uri-host[:port]${sendableFieldValue(authority) ? ': no client can follow the redirect' : unsendable}`,
      'vs.redirect.unsendable',
    );
  const uri = rd.uri; // (prefixRewrite is not enforced: never sent)
  if (typeof uri === 'string' && !sendableFieldValue(uri))
    r.warn(
      [...path, 'uri'],
      () => `redirect uri ${JSON.stringify(uri)} has a character HTTP forbids${unsendable}`,
      'vs.redirect.unsendable',
    );
}

/** Istio reports only the first redirect problem. */
function validateRedirect(rd: HTTPRedirect, matches: HTTPMatchRequest[], path: Path, r: Report): void {
  redirectValues(rd, path, r);
  const hasUri = (rd.uri ?? '') !== '';
  const hasPrefix = (rd.prefixRewrite ?? '') !== '';
  if (hasUri && hasPrefix) {
    r.error(path, 'redirect may only specify one of uri or prefix_rewrite', 'vs.redirect.uriAndPrefix');
    return;
  }
  if (hasPrefix) {
    // A match without `uri` matches every path, which a prefix rewrite handles like prefix `/`.
    const i = matches.findIndex((m) => m.uri !== undefined && m.uri.prefix === undefined);
    if (i >= 0) {
      r.error(
        [...path, 'prefixRewrite'],
        `prefix_rewrite requires every uri match to be a prefix match (match[${i}].uri is not)`,
        'vs.redirect.prefixNeedsPrefixMatch',
      );
      return;
    }
  }
  const hasPort = (rd.port ?? 0) > 0 || rd.derivePort !== undefined;
  if (!hasUri && !hasPrefix && !rd.authority && !rd.scheme && !hasPort) {
    r.error(path, 'redirect must specify URI, authority, scheme, or port', 'vs.redirect.empty');
    return;
  }
  const code = rd.redirectCode ?? 0;
  if (code !== 0 && (code < 300 || code > 399)) {
    r.error(
      [...path, 'redirectCode'],
      `${code} is not a valid redirect code, must be 3xx`,
      'vs.redirect.code',
    );
    return;
  }
  if (rd.scheme !== undefined && rd.scheme !== '' && rd.scheme !== 'http' && rd.scheme !== 'https') {
    r.error(
      [...path, 'scheme'],
      `redirect scheme must be http or https (got ${JSON.stringify(rd.scheme)})`,
      'vs.redirect.scheme',
    );
    return;
  }
  if ((rd.port ?? 0) > 0) portCheck(rd.port ?? 0, [...path, 'port'], r);
}

const KIB = 1024;

function validateDirectResponse(dr: HTTPDirectResponse, path: Path, r: Report): void {
  httpStatus(dr.status, [...path, 'status'], r, 'vs.directResponse.status');
  const body = dr.body;
  if (!body) return;
  const size =
    body.string !== undefined
      ? Buffer.byteLength(body.string)
      : body.bytes !== undefined
        ? Buffer.from(body.bytes, 'base64').length
        : 0;
  if (size > 1024 * KIB)
    r.error(
      [...path, 'body'],
      'large direct_responses may impact control plane performance, must be less than 1MB',
      'vs.directResponse.bodyTooLarge',
    );
  else if (size > 100 * KIB)
    r.warn(
      [...path, 'body'],
      'large direct_responses may impact control plane performance, use with caution',
      'vs.directResponse.bodyLarge',
    );
}

function httpStatus(status: number, path: Path, r: Report, rule: string): void {
  // Istio's wording says 599; its check admits 600.
  if (status < 200 || status > 600) r.error(path, `HTTP status ${status} is not in range 200-599`, rule);
}

// ---- fault, retries, timeouts, CORS --------------------------------------------------------

const GRPC_CODES = new Set(GRPC_CODE_NAMES);

function validateFault(f: HTTPFaultInjection, path: Path, r: Report): void {
  if (!f.abort && !f.delay) {
    r.error(path, 'HTTP fault injection must have an abort and/or a delay', 'vs.fault.empty');
    return;
  }
  if (f.abort) {
    const at = [...path, 'abort'];
    faultPercentage(f.abort.percentage?.value, [...at, 'percentage', 'value'], r);
    if (f.abort.httpStatus !== undefined)
      httpStatus(f.abort.httpStatus, [...at, 'httpStatus'], r, 'vs.fault.abort.httpStatus');
    else if (f.abort.grpcStatus !== undefined) {
      if (!GRPC_CODES.has(f.abort.grpcStatus))
        r.error(
          [...at, 'grpcStatus'],
          `${JSON.stringify(f.abort.grpcStatus)} is not a valid gRPC code (one of ${[...GRPC_CODES].join(', ')})`,
          'vs.fault.abort.grpcStatus',
        );
    } else if (f.abort.http2Error !== undefined)
      r.error(
        [...at, 'http2Error'],
        'HTTP/2 abort fault injection not supported yet',
        'vs.fault.abort.http2Error',
      );
    else r.warn(at, 'abort configured, but error type not set', 'vs.fault.abort.noErrorType');
  }
  if (f.delay) {
    const at = [...path, 'delay'];
    faultPercentage(f.delay.percentage?.value, [...at, 'percentage', 'value'], r);
    if (f.delay.fixedDelay !== undefined)
      duration(f.delay.fixedDelay, [...at, 'fixedDelay'], r, 'vs.fault.delay.duration');
    else if (f.delay.exponentialDelay !== undefined)
      r.error(
        [...at, 'exponentialDelay'],
        'exponentialDelay not supported yet',
        'vs.fault.delay.exponential',
      );
  }
}

function faultPercentage(value: number | undefined, path: Path, r: Report): void {
  if (value === undefined || value === 0) return;
  if (value < 0.0001 || value > 100)
    r.error(path, `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`, 'vs.fault.percentage');
}

const RETRY_POLICIES = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** HTTP status codes Go's net/http has a text for (what Istio's retryOn check accepts). */
const GO_STATUS_CODES = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307,
  308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
  422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

function validateRetries(rt: HTTPRetry, path: Path, r: Report): void {
  const attempts = rt.attempts ?? 0;
  if (attempts < 0) r.error([...path, 'attempts'], 'attempts cannot be negative', 'vs.retries.attempts');
  if (
    attempts === 0 &&
    (rt.perTryTimeout !== undefined ||
      (rt.retryOn ?? '') !== '' ||
      (rt.retryRemoteLocalities !== undefined && rt.retryRemoteLocalities !== null))
  ) {
    r.error(
      path,
      'http retry policy configured when attempts are set to 0 (disabled)',
      'vs.retries.zeroAttempts',
    );
  }
  if (rt.perTryTimeout !== undefined)
    duration(rt.perTryTimeout, [...path, 'perTryTimeout'], r, 'vs.retries.perTryTimeout');
  if (rt.backoff !== undefined) duration(rt.backoff, [...path, 'backoff'], r, 'vs.retries.backoff');
  if (rt.retryOn !== undefined && rt.retryOn !== '') {
    for (const policy of rt.retryOn.split(',')) {
      // Istio does not trim whitespace, so `5xx, reset` is invalid too.
      const code = /^[0-9]+$/.test(policy) ? Number(policy) : NaN;
      if (!RETRY_POLICIES.has(policy) && !GO_STATUS_CODES.has(code)) {
        r.error(
          [...path, 'retryOn'],
          `${JSON.stringify(policy)} is not a valid retryOn policy`,
          'vs.retries.retryOn',
        );
      }
    }
  }
}

/** weft extra: retries that cannot all run inside the route timeout are cut short silently. */
function checkRetriesFitTimeout(http: HTTPRoute, path: Path, r: Report): void {
  const attempts = http.retries?.attempts ?? 0;
  const perTry =
    http.retries?.perTryTimeout === undefined ? undefined : parseGoDuration(http.retries.perTryTimeout);
  const timeout = http.timeout === undefined ? undefined : parseGoDuration(http.timeout);
  if (attempts <= 0 || perTry === undefined || timeout === undefined || timeout <= 0 || perTry <= 0) return;
  if (attempts * perTry > timeout) {
    r.warn(
      [...path, 'retries'],
      `retries cannot complete within the route timeout: ${attempts} attempts × ${http.retries?.perTryTimeout} perTryTimeout exceeds timeout ${http.timeout}, so later attempts are cut off`,
      'vs.retries.exceedTimeout',
    );
  }
}

const CORS_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  '*',
]);

function validateCors(c: CorsPolicy, path: Path, r: Report): void {
  (c.allowOrigins ?? []).forEach((o, i) => {
    const at = [...path, 'allowOrigins', i];
    const value = o.exact ?? o.prefix ?? o.regex;
    if (value === undefined || value === '')
      r.error(at, "'' is not a valid match type for CORS allow origins", 'vs.cors.origin');
    else if (o.regex !== undefined) {
      regex(o.regex, [...at, 'regex'], r, 'vs.cors.origin');
    }
  });
  (c.allowMethods ?? []).forEach((m, i) => {
    if (!CORS_METHODS.has(m))
      r.error(
        [...path, 'allowMethods', i],
        `${JSON.stringify(m)} is not a supported HTTP method`,
        'vs.cors.method',
      );
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    (c[field] ?? []).forEach((h, i) => {
      if (h !== '*' && !isToken(h))
        r.error([...path, field, i], `${JSON.stringify(h)} is not a valid header name`, 'vs.cors.header');
    });
  }
  if (c.maxAge !== undefined) {
    if (duration(c.maxAge, [...path, 'maxAge'], r, 'vs.cors.maxAge')) {
      const ns = parseGoDuration(c.maxAge) ?? 0;
      if (ns % 1e9 !== 0)
        r.error(
          [...path, 'maxAge'],
          'max_age duration is accurate only to seconds precision',
          'vs.cors.maxAge',
        );
    }
  }
}

// ---- TLS and TCP routes -------------------------------------------------------------------

function validateTLSRoute(tls: TLSRoute, spec: VirtualServiceSpec, path: Path, vs: VSContext): void {
  const r = vs.report;
  const matches = tls.match ?? [];
  if (matches.length === 0)
    r.error([...path, 'match'], 'TLS route must have at least one match condition', 'vs.tls.matchRequired');
  matches.forEach((m, i) => validateTLSMatch(m, spec, [...path, 'match', i], vs));
  if ((tls.route ?? []).length === 0)
    r.error([...path, 'route'], 'TLS route is required', 'vs.tls.routeRequired');
  validateRouteDestinations(tls.route ?? [], [...path, 'route'], vs, false);
}

function validateTLSMatch(m: TLSMatchAttributes, spec: VirtualServiceSpec, path: Path, vs: VSContext): void {
  const r = vs.report;
  const sniHosts = m.sniHosts ?? [];
  if (sniHosts.length === 0)
    r.error([...path, 'sniHosts'], 'TLS match must have at least one SNI host', 'vs.tls.sniRequired');
  const plain = (spec.gateways ?? []).includes(MESH);
  const hosts = spec.hosts ?? [];
  sniHosts.forEach((sni, i) => {
    const at = [...path, 'sniHosts', i];
    const err = plain ? checkWildcardDomain(sni) : checkGatewayHost(true, sni);
    if (err) {
      // An IP address is warned about and, as in Istio, not held to the hosts either.
      if (isIPAddress(sni))
        r.warn(
          at,
          `using an IP address (${JSON.stringify(sni)}) goes against SNI spec and most clients do not support this`,
          'vs.tls.sniIP',
        );
      else r.error(at, err, 'vs.tls.sniHost');
      return;
    }
    if (!hosts.some((h) => hostSubsetOf(sni, h))) {
      r.error(
        at,
        `SNI host ${JSON.stringify(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`,
        'vs.tls.sniNotInHosts',
      );
    }
  });
  l4Match(m, path, vs);
}

function validateTCPRoute(tcp: TCPRoute, path: Path, vs: VSContext): void {
  (tcp.match ?? []).forEach((m, i) => l4Match(m, [...path, 'match', i], vs));
  if ((tcp.route ?? []).length === 0)
    vs.report.error([...path, 'route'], 'TCP route is required', 'vs.tcp.routeRequired');
  validateRouteDestinations(tcp.route ?? [], [...path, 'route'], vs, false);
}

function l4Match(m: L4MatchAttributes | TLSMatchAttributes, path: Path, vs: VSContext): void {
  const r = vs.report;
  (m.destinationSubnets ?? []).forEach((s, i) => {
    const err = checkIPOrCIDR(s);
    if (err) r.error([...path, 'destinationSubnets', i], err, 'vs.l4.destinationSubnets');
  });
  if (m.port !== undefined && m.port !== 0) portCheck(m.port, [...path, 'port'], r);
  labels(m.sourceLabels, [...path, 'sourceLabels'], r);
  if (m.gateways) checkGatewayNames(m.gateways, [...path, 'gateways'], vs);
}

// ---- unreachable rules (warnings) ---------------------------------------------------------

interface AnyRoute {
  name?: string;
  match?: object[];
}

/**
 * Istio's unreachable-rule warnings (a rule after one without matches, a match repeated from an
 * earlier rule), plus weft's: a rule after a catch-all match (`prefix: /`, `regex: .*`, `{}`)
 * can never be reached either.
 */
function analyzeUnreachable(routes: AnyRoute[], kind: 'http' | 'tcp' | 'tls', r: Report): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  let catchAllReason = '';
  let catchAllRule = 'vs.unreachable.rule';
  const prefixMatches: PrefixMatch[] = [];
  routes.forEach((route, i) => {
    const path = ['spec', kind, i];
    const name = route.name ? JSON.stringify(route.name) : `#${i}`;
    const matches = route.match ?? [];
    if (matches.length === 0) {
      if (catchAll >= 0)
        r.warn(
          path,
          `virtualService rule ${name} not used (only the last rule can have no matches)`,
          'vs.unreachable.rule',
        );
      catchAll = i;
      catchAllReason = 'route without matches defined before';
      catchAllRule = 'vs.unreachable.rule';
      return;
    }
    if (catchAll >= 0) {
      r.warn(path, `virtualService rule ${name} not used (${catchAllReason})`, catchAllRule);
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      const key = canonical(m);
      const prior = seen.get(key);
      if (prior !== undefined) {
        const match = (m as { name?: string }).name ? JSON.stringify((m as { name?: string }).name) : `#${j}`;
        const priorName = routes[prior]?.name ? JSON.stringify(routes[prior]?.name) : `#${prior}`;
        r.warn(
          [...path, 'match', j],
          `virtualService rule ${name} match ${match} is not used (duplicate/overlapping match in rule ${priorName})`,
          'vs.unreachable.match',
        );
        duplicates++;
      } else {
        seen.set(key, i);
        if (kind === 'http') {
          const pm = prefixMatch(m as HTTPMatchRequest, name, j, i);
          if (pm) prefixMatches.push(pm);
        }
      }
    });
    if (duplicates === matches.length)
      r.warn(
        path,
        `virtualService rule ${name} not used (all matches used by prior rules)`,
        'vs.unreachable.rule',
      );
    if (kind === 'http' && matches.some((m) => isCatchAll(m as HTTPMatchRequest))) {
      catchAll = i;
      catchAllReason = `rule ${name} before it matches every request`;
      catchAllRule = 'vs.unreachable.afterCatchAll';
    }
  });
  reportCoveredPrefixes(prefixMatches, r);
}

/** A prefix match reduced to what Istio compares for overlap (exact/prefix values only). */
interface PrefixMatch {
  rule: string;
  match: string;
  path: PathSegment[];
  prefix: string;
  port: number;
  method: string;
  authority: string;
  headers: Map<string, string>;
  queryParams: Map<string, string>;
  withoutHeaders: Map<string, string>;
}

function exactOrPrefix(sm: StringMatch | undefined): string {
  if (sm?.exact) return `exact:${sm.exact}`;
  if (sm?.prefix) return `prefix:${sm.prefix}`;
  return '';
}

function prefixMatch(m: HTTPMatchRequest, rule: string, j: number, i: number): PrefixMatch | undefined {
  const prefix = m.uri?.prefix;
  if (!prefix) return undefined;
  const toMap = (x: Record<string, StringMatch> | undefined): Map<string, string> =>
    new Map(Object.entries(x ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));
  return {
    rule,
    match: m.name ? JSON.stringify(m.name) : `#${j}`,
    path: ['spec', 'http', i, 'match', j],
    prefix,
    port: m.port ?? 0,
    // Istio assumes GET when a match names no method.
    method: exactOrPrefix(m.method) || 'exact:GET',
    authority: exactOrPrefix(m.authority),
    headers: toMap(m.headers),
    queryParams: toMap(m.queryParams),
    withoutHeaders: toMap(m.withoutHeaders),
  };
}

/** Every value of `a` equals or starts with the value of `b` for the same key (Istio's test, kept as is). */
function mapCovered(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined || (v !== w && !v.startsWith(w))) return false;
  }
  return true;
}

/** An earlier prefix match `a` that covers a later, longer prefix `b` with the same conditions. */
function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  if (!b.prefix.startsWith(a.prefix) || a.port !== b.port) return false;
  if (a.method !== b.method && !a.method.startsWith(b.method)) return false;
  if (a.authority !== b.authority && !a.authority.startsWith(b.authority)) return false;
  return (
    mapCovered(a.headers, b.headers) &&
    mapCovered(a.queryParams, b.queryParams) &&
    mapCovered(a.withoutHeaders, b.withoutHeaders)
  );
}

/** Istio's overlapping-prefix warning: `/debug` before `/debugs` makes the second unreachable. */
function reportCoveredPrefixes(list: PrefixMatch[], r: Report): void {
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i];
      const b = list[j];
      if (!a || !b || a.prefix === b.prefix || !covers(a, b)) continue;
      r.warn(
        b.path,
        () =>
          `virtualService rule ${b.rule} match ${b.match} of prefix ${b.prefix} is not used (duplicate/overlapping match in rule ${a.match} of prefix ${a.prefix} on ${a.rule})`,
        'vs.unreachable.match',
      );
    }
  }
}

/** Match equality ignoring the match name and key order. */
function canonical(m: object): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => k !== 'name')
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, val]) => [k, sortKeys(val)]),
      );
    }
    return v;
  };
  return JSON.stringify(sortKeys(m));
}

const CATCH_ALL_FIELDS = new Set(['name', 'uri', 'ignoreUriCase', 'statPrefix']);

/** A match that every HTTP request satisfies. */
function isCatchAll(m: HTTPMatchRequest): boolean {
  if (Object.keys(m).some((k) => !CATCH_ALL_FIELDS.has(k))) return false;
  const uri = m.uri;
  if (!uri) return true;
  return uri.prefix === '/' || uri.prefix === '' || uri.regex === '.*' || uri.regex === '/.*';
}

// ---- shared small checks ------------------------------------------------------------------

function portCheck(port: number, path: Path, r: Report): void {
  const err = checkPort(port);
  if (err) r.error(path, err, 'port.range');
}

function labels(map: Record<string, string> | undefined, path: Path, r: Report): void {
  for (const msg of checkLabelMap(map ?? {})) r.error(path, msg, 'labels.invalid');
}

/** Reports a bad duration; returns true when it is fine. */
export function duration(value: string, path: Path, r: Report, rule: string): boolean {
  const err = checkDuration(value);
  if (err) r.error(path, err, rule);
  return err === undefined;
}
