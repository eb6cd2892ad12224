/**
 * AuthorizationPolicy for one proxy: which policies select it (Istio's policy attachment) and
 * their compilation into the proxy config's `authz` block (pkg/proxyconfig/types.ts), parsed
 * once here so the proxy evaluates without parsing anything per request.
 *
 * Selection (Istio's WorkloadPolicyMatcher):
 * - a policy in the root namespace (mesh `rootNamespace`, default weft-system, the control plane's namespace) applies mesh-wide,
 *   one in the pod's namespace namespace-wide; any other namespace never applies;
 * - `selector.matchLabels` must be a subset of the pod's labels;
 * - `targetRef(s)` (same namespace only): kind Gateway (group gateway.networking.k8s.io) selects
 *   the pods labelled `gateway.networking.k8s.io/gateway-name: <name>`; kind Service selects the
 *   pods the Service selects. Istio applies a Service targetRef only at waypoints; weft has no
 *   waypoint, so it applies it at the workloads behind the Service instead of ignoring it (a
 *   silently ignored policy is the gap this module exists to close). A policy with targetRefs
 *   never applies through its namespace or selector.
 * - a policy without targetRefs selects by `selector` on every pod, gateway pods included
 *   (Istio's ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY default).
 *
 * Values Istio's webhook refuses never reach here through the API server; if one does (webhook
 * off), a rule that cannot compile is dropped from an ALLOW/AUDIT policy (allows less) and makes
 * a DENY/CUSTOM rule match everything (denies more): fail closed, with a warning.
 */
import type { AuthorizationPolicy, Condition, Operation, Rule, Source } from '../api/authorizationpolicy.js';
import type {
  AuthzAction,
  AuthzBlock,
  AuthzClause,
  AuthzKey,
  AuthzPolicy,
  AuthzRule,
  AuthzString,
  AuthzValue,
  ExtAuthzHttpProvider,
} from '../proxyconfig/types.js';
import { parseCIDR } from '../validation/primitives.js';
import { parseDurationMs } from './duration.js';
import type { ServiceRecord } from './index.js';
import type { KubeService } from './kube.js';

export const DEFAULT_ROOT_NAMESPACE = 'weft-system';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
/** Istio's default ext-authz timeout (extauthz.go timeoutOrDefault). */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;
/** Bound on the rules compiled per proxy: a 10,000-rule policy is refused, not compiled. */
export const MAX_RULES_PER_PROXY = 4096;

export interface AuthzPod {
  namespace: string;
  labels: Record<string, string>;
}

export interface AuthzTranslateInput {
  policies: AuthorizationPolicy[];
  pod: AuthzPod;
  /** Names of the Services (in the pod's namespace) whose selector matches the pod. */
  podServices?: string[];
  rootNamespace?: string;
  /** The mesh's `extensionProviders` (parsed by parseExtensionProviders). */
  providers?: MeshExtAuthzProvider[];
  /** Registry services, to resolve a provider's service to endpoints. */
  services?: ServiceRecord[];
  domainSuffix?: string;
  numTrustedProxies?: number;
}

export interface AuthzTranslateResult {
  /** Undefined when no policy applies (the proxy allows everything). */
  block: AuthzBlock | undefined;
  warnings: string[];
}

const keyOf = (p: AuthorizationPolicy): string => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

function targetRefsOf(
  p: AuthorizationPolicy,
): { group?: string; kind: string; name: string; namespace?: string }[] {
  const refs = p.spec?.targetRefs ?? [];
  if (refs.length === 0 && p.spec?.targetRef) return [p.spec.targetRef];
  return refs;
}

/** Whether `policy` applies to `pod` (Istio's policy attachment, see the module comment). */
export function policyApplies(
  policy: AuthorizationPolicy,
  pod: AuthzPod,
  podServices: readonly string[],
  rootNamespace = DEFAULT_ROOT_NAMESPACE,
): boolean {
  const ns = policy.metadata.namespace ?? 'default';
  if (ns !== rootNamespace && ns !== pod.namespace) return false;
  const refs = targetRefsOf(policy);
  if (refs.length > 0) {
    if (ns !== pod.namespace) return false;
    return refs.some((r) => {
      if (r.namespace !== undefined && r.namespace !== '' && r.namespace !== pod.namespace) return false;
      const group = r.group ?? '';
      if (r.kind === 'Gateway' && group === 'gateway.networking.k8s.io')
        return pod.labels[GATEWAY_NAME_LABEL] === r.name;
      if (r.kind === 'Service' && (group === '' || group === 'core')) return podServices.includes(r.name);
      return false;
    });
  }
  const match = policy.spec?.selector?.matchLabels ?? {};
  return Object.entries(match).every(([k, v]) => pod.labels[k] === v);
}

/** Istio string forms: `*` present, `*x` suffix, `x*` prefix, else exact. */
export function stringForm(v: string): AuthzString {
  if (v === '*') return { present: true };
  if (v.startsWith('*')) return { suffix: v.slice(1) };
  if (v.endsWith('*')) return { prefix: v.slice(0, -1) };
  return { exact: v };
}

class RuleError extends Error {}

function cidr(v: string): AuthzValue {
  const c = parseCIDR(v);
  if (c === null) throw new RuleError(`${JSON.stringify(v)} is not an IP address or CIDR block`);
  return { cidr: { address: c.address, prefixLen: c.prefixLen } };
}

function port(v: string): AuthzValue {
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535) throw new RuleError(`bad port ${JSON.stringify(v)}`);
  return { port: Number(v) };
}

/** `{*}` / `{**}` templates split into segments; other paths are Istio string forms. */
export function pathForm(v: string): AuthzValue {
  if (!v.includes('{') && !v.includes('}')) return stringForm(v);
  const segs = v.replace(/^\/+|\/+$/g, '').split('/');
  const out: string[] = [];
  segs.forEach((s, i) => {
    if (s === '{*}') out.push('*');
    else if (s === '{**}') {
      if (i !== segs.length - 1) throw new RuleError(`invalid path ${v}: {**} is not the last operator`);
      out.push('**');
    } else if (/[{}*]/.test(s) || !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(s))
      throw new RuleError(`invalid path ${v}: segment ${JSON.stringify(s)} is not a valid literal`);
    else out.push(s);
  });
  // a trailing slash is a literal of the template (Envoy): kept as a last empty segment
  if (v.length > 1 && v.endsWith('/') && out[out.length - 1] !== '**') out.push('');
  return { template: out };
}

/** `iss/sub` split at the last `/` with Istio's wildcard rules (requestPrincipalGenerator). */
export function requestPrincipalForm(v: string): AuthzValue {
  const any: AuthzString = { present: true };
  const idx = v.lastIndexOf('/');
  if (v === '*') return { iss: any, sub: any };
  const iss = idx >= 0 ? v.slice(0, idx) : v;
  const sub = idx >= 0 ? v.slice(idx + 1) : '';
  if (v.startsWith('*')) {
    if (idx < 0) return { iss: any, sub: { suffix: v.slice(1) } };
    return { iss: iss === '*' ? any : { suffix: iss.slice(1) }, sub: { exact: sub } };
  }
  if (v.endsWith('*')) {
    if (idx < 0) return { iss: { prefix: v.slice(0, -1) }, sub: any };
    return { iss: { exact: iss }, sub: sub === '*' ? any : { prefix: sub.slice(0, -1) } };
  }
  return { iss: { exact: iss }, sub: { exact: sub } };
}

function serviceAccountForm(v: string, policyNs: string): AuthzValue {
  if (v.includes('*')) throw new RuleError(`wildcard not allowed in serviceAccounts: ${JSON.stringify(v)}`);
  const parts = v.split('/');
  if (parts.length > 2 || parts.some((p) => p === ''))
    throw new RuleError(`expected 'serviceAccount' or 'namespace/serviceAccount', got ${JSON.stringify(v)}`);
  return parts.length === 2
    ? { serviceAccount: { namespace: parts[0]!, name: parts[1]! } }
    : { serviceAccount: { namespace: policyNs, name: parts[0]! } };
}

/** `[a][b]` → ["a", "b"]; null if malformed. */
export function bracketPath(s: string): string[] | null {
  const out: string[] = [];
  let rest = s;
  while (rest.length > 0) {
    const m = /^\[([^\]]+)\]/.exec(rest);
    if (!m) return null;
    out.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  return out.length > 0 ? out : null;
}

type Former = (v: string) => AuthzValue;

function clause(
  key: AuthzKey,
  form: Former,
  values: string[] | undefined,
  notValues: string[] | undefined,
  extra: Partial<AuthzClause> = {},
): AuthzClause | null {
  const v = values ?? [];
  const n = notValues ?? [];
  if (v.length === 0 && n.length === 0) return null;
  for (const x of [...v, ...n]) if (x === '') throw new RuleError(`empty value not allowed for ${key}`);
  return {
    key,
    ...extra,
    ...(v.length > 0 ? { values: v.map(form) } : {}),
    ...(n.length > 0 ? { notValues: n.map(form) } : {}),
  };
}

const push = (out: AuthzClause[], c: AuthzClause | null): void => {
  if (c !== null) out.push(c);
};

function sourceClauses(s: Source | undefined, policyNs: string): AuthzClause[] {
  const out: AuthzClause[] = [];
  if (!s) return out;
  push(out, clause('source.ip', cidr, s.ipBlocks, s.notIpBlocks));
  push(out, clause('remote.ip', cidr, s.remoteIpBlocks, s.notRemoteIpBlocks));
  push(out, clause('source.namespace', stringForm, s.namespaces, s.notNamespaces));
  push(out, clause('source.trustDomain', stringForm, s.trustDomains, s.notTrustDomains));
  const sa = (v: string): AuthzValue => serviceAccountForm(v, policyNs);
  push(out, clause('source.serviceAccount', sa, s.serviceAccounts, s.notServiceAccounts));
  push(
    out,
    clause('request.auth.principal', requestPrincipalForm, s.requestPrincipals, s.notRequestPrincipals),
  );
  push(out, clause('source.principal', stringForm, s.principals, s.notPrincipals));
  return out;
}

function operationClauses(o: Operation | undefined): AuthzClause[] {
  const out: AuthzClause[] = [];
  if (!o) return out;
  push(out, clause('destination.port', port, o.ports, o.notPorts));
  push(out, clause('request.path', pathForm, o.paths, o.notPaths));
  push(out, clause('request.method', stringForm, o.methods, o.notMethods));
  push(out, clause('request.host', stringForm, o.hosts, o.notHosts));
  return out;
}

/** Condition keys and how their values are read (Istio's pkg/config/security attributes). */
const CONDITIONS: Record<string, { key: AuthzKey; form: (ns: string) => Former }> = {
  'source.ip': { key: 'source.ip', form: () => cidr },
  'remote.ip': { key: 'remote.ip', form: () => cidr },
  'source.namespace': { key: 'source.namespace', form: () => stringForm },
  'source.principal': { key: 'source.principal', form: () => stringForm },
  'source.serviceAccount': { key: 'source.serviceAccount', form: (ns) => (v) => serviceAccountForm(v, ns) },
  'source.trustDomain': { key: 'source.trustDomain', form: () => stringForm },
  'request.auth.principal': { key: 'request.auth.principal', form: () => requestPrincipalForm },
  'request.auth.audiences': { key: 'request.auth.audiences', form: () => stringForm },
  'request.auth.presenter': { key: 'request.auth.presenter', form: () => stringForm },
  'destination.ip': { key: 'destination.ip', form: () => cidr },
  'destination.port': { key: 'destination.port', form: () => port },
  'connection.sni': { key: 'connection.sni', form: () => stringForm },
};

function conditionClause(c: Condition, policyNs: string): AuthzClause {
  const known = CONDITIONS[c.key];
  if (known) {
    const cl = clause(known.key, known.form(policyNs), c.values, c.notValues);
    if (cl === null) throw new RuleError(`condition ${c.key} has no values or notValues`);
    return cl;
  }
  for (const [prefix, key] of [
    ['request.headers', 'request.headers'],
    ['request.auth.claims', 'request.auth.claims'],
  ] as const) {
    if (!c.key.startsWith(prefix)) continue;
    const path = bracketPath(c.key.slice(prefix.length));
    if (path === null) throw new RuleError(`bad key ${c.key}: should have format ${prefix}[name]`);
    if (key === 'request.headers' && path.length !== 1)
      throw new RuleError(`bad key ${c.key}: one header name in brackets`);
    const extra = key === 'request.headers' ? { header: path[0]!.toLowerCase() } : { claim: path };
    const cl = clause(key, stringForm, c.values, c.notValues, extra);
    if (cl === null) throw new RuleError(`condition ${c.key} has no values or notValues`);
    return cl;
  }
  throw new RuleError(`unknown or unsupported condition key ${c.key}`);
}

/** One Istio rule → clauses; throws RuleError when a value cannot compile. */
export function compileRule(rule: Rule, policyNs: string): AuthzRule {
  const out: AuthzRule = {};
  if (rule.from && rule.from.length > 0) out.from = rule.from.map((f) => sourceClauses(f.source, policyNs));
  if (rule.to && rule.to.length > 0) out.to = rule.to.map((t) => operationClauses(t.operation));
  if (rule.when && rule.when.length > 0) out.when = rule.when.map((c) => conditionClause(c, policyNs));
  return out;
}

/** Whether an `istio.io/dry-run` value turns dry run on (Go's strconv.ParseBool, as Istio reads it). */
export const dryRunOn = (value: string | undefined): boolean =>
  value !== undefined && ['true', 'True', 'TRUE', '1', 't', 'T'].includes(value);

/** One applying policy → its compiled form (plus warnings for what had to be changed). */
export function compilePolicy(
  p: AuthorizationPolicy,
  providerNames: ReadonlySet<string>,
  warnings: string[],
): AuthzPolicy {
  const name = keyOf(p);
  const ns = p.metadata.namespace ?? 'default';
  let action: AuthzAction = p.spec?.action ?? 'ALLOW';
  const out: AuthzPolicy = { name, action, rules: [] };
  if (action === 'CUSTOM') {
    const provider = p.spec?.provider?.name ?? '';
    if (providerNames.has(provider)) out.provider = provider;
    else {
      // Istio: a CUSTOM policy whose provider cannot be used denies what it matches
      warnings.push(
        `AuthorizationPolicy ${name}: extension provider ${JSON.stringify(provider)} is not defined in the mesh config; the requests it matches are denied`,
      );
      action = out.action = 'DENY';
    }
  }
  const dry = p.metadata.annotations?.[DRY_RUN_ANNOTATION];
  if (dry !== undefined) {
    if (dryRunOn(dry)) out.dryRun = true;
    else if (!['false', 'False', 'FALSE', '0', 'f', 'F'].includes(dry))
      warnings.push(
        `AuthorizationPolicy ${name}: ${DRY_RUN_ANNOTATION}=${JSON.stringify(dry)} is not a boolean; enforced`,
      );
  }
  (p.spec?.rules ?? []).forEach((r, i) => {
    try {
      out.rules.push(compileRule(r ?? {}, ns));
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      const failClosed = action === 'DENY' || action === 'CUSTOM';
      warnings.push(
        `AuthorizationPolicy ${name} rule ${i}: ${err.message}; ${failClosed ? 'the rule matches every request (fail closed)' : 'the rule is skipped'}`,
      );
      if (failClosed) out.rules.push({});
    }
  });
  return out;
}

// ---- extension providers ------------------------------------------------------------------

/** Istio's `extensionProviders[].envoyExtAuthzHttp`, as read from the mesh config. */
export interface MeshExtAuthzProvider {
  name: string;
  service: string;
  port: number;
  pathPrefix?: string;
  timeoutMs?: number;
  failOpen?: boolean;
  statusOnError?: number;
  includeRequestHeadersInCheck?: string[];
  headersToUpstreamOnAllow?: string[];
  headersToDownstreamOnDeny?: string[];
  includeAdditionalHeadersInCheck?: Record<string, string>;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The mesh config's `extensionProviders` list → the envoyExtAuthzHttp providers; every problem
 * is returned (with its path) rather than thrown. Other provider kinds are ignored here.
 */
export function parseExtensionProviders(raw: unknown): {
  providers: MeshExtAuthzProvider[];
  errors: string[];
} {
  const providers: MeshExtAuthzProvider[] = [];
  const errors: string[] = [];
  if (raw === undefined || raw === null) return { providers, errors };
  if (!Array.isArray(raw)) return { providers, errors: ['extensionProviders must be a list'] };
  const names = new Set<string>();
  raw.forEach((p, i) => {
    const at = `extensionProviders[${i}]`;
    if (!isObj(p) || typeof p.name !== 'string' || p.name === '')
      return void errors.push(`${at}.name must be a non-empty string`);
    if (names.has(p.name)) errors.push(`${at}.name ${p.name} is defined twice`);
    names.add(p.name);
    const h = p.envoyExtAuthzHttp;
    if (h === undefined) return;
    if (!isObj(h)) return void errors.push(`${at}.envoyExtAuthzHttp must be a mapping`);
    const err = (m: string): void => void errors.push(`${at}.envoyExtAuthzHttp.${m}`);
    if (typeof h.service !== 'string' || h.service === '') return err('service must be a non-empty string');
    const port = h.port;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
      return err('port must be a port number 1-65535');
    const out: MeshExtAuthzProvider = { name: p.name, service: h.service, port: port as number };
    if (h.pathPrefix !== undefined) {
      if (typeof h.pathPrefix !== 'string' || !h.pathPrefix.startsWith('/'))
        err(`pathPrefix must begin with \`/\`, found: ${JSON.stringify(h.pathPrefix)}`);
      else out.pathPrefix = h.pathPrefix;
    }
    if (h.timeout !== undefined) {
      const ms = typeof h.timeout === 'string' ? parseDurationMs(h.timeout) : null;
      if (ms === null || ms <= 0) err('timeout must be a positive duration such as 500ms');
      else out.timeoutMs = ms;
    }
    if (h.failOpen !== undefined) {
      if (typeof h.failOpen !== 'boolean') err('failOpen must be true or false');
      else out.failOpen = h.failOpen;
    }
    if (h.statusOnError !== undefined) {
      const n = Number(h.statusOnError);
      if (!/^[0-9]{3}$/.test(String(h.statusOnError)) || n < 100 || n > 599)
        err(`statusOnError ${JSON.stringify(h.statusOnError)} is not an HTTP status`);
      else out.statusOnError = n;
    }
    for (const f of [
      'includeRequestHeadersInCheck',
      'headersToUpstreamOnAllow',
      'headersToDownstreamOnDeny',
    ] as const) {
      const v = h[f];
      if (v === undefined) continue;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === ''))
        err(`${f} must be a list of header names`);
      else out[f] = v as string[];
    }
    const add = h.includeAdditionalHeadersInCheck;
    if (add !== undefined) {
      if (!isObj(add) || Object.values(add).some((x) => typeof x !== 'string'))
        err('includeAdditionalHeadersInCheck must map header names to strings');
      else out.includeAdditionalHeadersInCheck = add as Record<string, string>;
    }
    providers.push(out);
  });
  return { providers, errors };
}

const headerForms = (v: string[] | undefined): AuthzString[] | undefined =>
  v === undefined ? undefined : v.map((h) => stringForm(h.toLowerCase()));

/** A provider's service (`host` or `ns/host`) resolved to endpoints from the registry. */
function resolveProvider(
  p: MeshExtAuthzProvider,
  services: readonly ServiceRecord[],
  suffix: string,
  warnings: string[],
): ExtAuthzHttpProvider {
  const host = p.service.includes('/') ? p.service.slice(p.service.indexOf('/') + 1) : p.service;
  const svc = services.find(
    (s) => s.host === host || s.host === `${host}.${suffix}` || s.host.startsWith(`${host}.`),
  );
  const endpoints: { address: string; port: number }[] = [];
  if (svc) {
    const sp = svc.ports.find((x) => x.number === p.port);
    for (const e of svc.endpoints) {
      const target = (sp && e.ports?.[sp.name]) ?? sp?.targetPort ?? p.port;
      endpoints.push({ address: e.address, port: target });
    }
  }
  if (endpoints.length === 0)
    warnings.push(
      `extension provider ${p.name}: service ${p.service}:${p.port} has no endpoints; its checks fail (${p.failOpen ? 'failOpen: allowed' : 'denied'})`,
    );
  const out: ExtAuthzHttpProvider = { service: p.service, port: p.port, endpoints };
  if (p.pathPrefix !== undefined) out.pathPrefix = p.pathPrefix;
  out.timeoutMs = p.timeoutMs ?? DEFAULT_EXT_AUTHZ_TIMEOUT_MS;
  if (p.failOpen !== undefined) out.failOpen = p.failOpen;
  if (p.statusOnError !== undefined) out.statusOnError = p.statusOnError;
  const inc = headerForms(p.includeRequestHeadersInCheck);
  if (inc) out.includeRequestHeadersInCheck = inc;
  const up = headerForms(p.headersToUpstreamOnAllow);
  if (up) out.headersToUpstreamOnAllow = up;
  const down = headerForms(p.headersToDownstreamOnDeny);
  if (down) out.headersToDownstreamOnDeny = down;
  if (p.includeAdditionalHeadersInCheck)
    out.includeAdditionalHeadersInCheck = p.includeAdditionalHeadersInCheck;
  return out;
}

/** The authz block for one pod: the policies that select it, compiled; undefined if none. */
export function translateAuthz(input: AuthzTranslateInput): AuthzTranslateResult {
  const warnings: string[] = [];
  const root = input.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const applying = input.policies
    .filter((p) => policyApplies(p, input.pod, input.podServices ?? [], root))
    // deterministic order (the content hash of the config depends on it): by namespace/name
    .sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  if (applying.length === 0) return { block: undefined, warnings };
  const meshProviders = new Map((input.providers ?? []).map((p) => [p.name, p]));
  const policies = applying.map((p) => compilePolicy(p, new Set(meshProviders.keys()), warnings));
  const total = policies.reduce((n, p) => n + p.rules.length, 0);
  if (total > MAX_RULES_PER_PROXY) {
    // refuse to push an unbounded matcher; deny everything instead of allowing by accident
    warnings.push(
      `${total} authorization rules select pod in ${input.pod.namespace} (limit ${MAX_RULES_PER_PROXY}); every request is denied until policies are reduced`,
    );
    return {
      block: { policies: [{ name: 'weft-system/too-many-authz-rules', action: 'DENY', rules: [{}] }] },
      warnings,
    };
  }
  const block: AuthzBlock = { policies };
  const used = new Set(policies.flatMap((p) => (p.provider !== undefined ? [p.provider] : [])));
  if (used.size > 0) {
    block.providers = {};
    for (const name of [...used].sort())
      block.providers[name] = resolveProvider(
        meshProviders.get(name)!,
        input.services ?? [],
        input.domainSuffix ?? 'svc.cluster.local',
        warnings,
      );
  }
  if (input.numTrustedProxies !== undefined && input.numTrustedProxies > 0)
    block.numTrustedProxies = input.numTrustedProxies;
  return { block, warnings };
}

/** Names of the Services in the pod's namespace whose selector matches it (Service targetRefs). */
export function podServiceNames(services: readonly KubeService[], pod: AuthzPod): string[] {
  const out: string[] = [];
  for (const svc of services) {
    const selector = svc.spec?.selector ?? {};
    if ((svc.metadata.namespace ?? 'default') !== pod.namespace || Object.keys(selector).length === 0)
      continue;
    if (Object.entries(selector).every(([k, v]) => pod.labels[k] === v)) out.push(svc.metadata.name);
  }
  return out.sort();
}
