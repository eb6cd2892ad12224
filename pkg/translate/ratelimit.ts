/**
 * RateLimit (mesh.weft.dev, `scope: local`) → the `rateLimits` block of each destination
 * sidecar's config (pkg/proxyconfig/ratelimit.ts). A RateLimit selects the pods of its namespace
 * by label selector or through a Service (`targetHost`); its overrides' service accounts and
 * workload labels become SPIFFE principal patterns (`*\/ns/<ns>/sa/<sa>`, trust-domain agnostic),
 * workload labels resolved through the pods weftd knows. memquota objects are translated by
 * memquota.ts into the same block. `scope: global` becomes a limit the sidecar asks weftd about
 * when the mesh runs the global backend (ADR 0017); without it one that got in anyway (webhook
 * down) is skipped with a warning, never enforced as if it were local.
 */
import type { RateLimit, RateLimitBudgetSpec, RateLimitSource, RateLimitSpec } from '../api/ratelimit.js';
import { RATE_LIMIT_UNIT_MS } from '../api/ratelimit.js';
import type { MemQuota } from '../api/memquota.js';
import {
  RATE_LIMIT_BOUNDS,
  type LocalRateLimit,
  type RateBudget,
  type RateLimitBlock,
  type SourceKey,
  type SourceSelector,
} from '../proxyconfig/ratelimit.js';
import { parseDurationMs } from './duration.js';
import type { KubeService } from './kube.js';
import { memquotaLimitsFor } from './memquota.js';

/** A pod as the rate-limit translation needs it. */
export interface RateLimitPod {
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
}

export interface RateLimitInput {
  pod: RateLimitPod;
  rateLimits: readonly RateLimit[];
  memquotas?: readonly MemQuota[];
  kubeServices: readonly KubeService[];
  /** Every pod weftd knows (for workload-label sources); absent: such sources match nobody. */
  pods?: readonly RateLimitPod[];
  domainSuffix: string;
  /** The mesh's root namespace: its memquotas (and istio-system's) apply mesh-wide. */
  rootNamespace?: string;
  /**
   * The mesh runs the global backend (weftd --ratelimit-redis, ADR 0017): `scope: global`
   * RateLimits and every memquota become global limits (one budget in Redis, as Mixer's
   * memquota was mesh-wide); else global RateLimits are skipped with a warning, memquota local.
   */
  globalRateLimits?: boolean;
}

/** A spec budget in milliseconds, or why it cannot be one (the webhook's message too). */
export function resolveBudget(b: RateLimitBudgetSpec): RateBudget | string {
  const B = RATE_LIMIT_BOUNDS;
  if (!Number.isInteger(b.requests) || b.requests < 1)
    return `requests must be at least 1 (got ${b.requests}); to refuse every request use an AuthorizationPolicy`;
  if (b.requests > B.maxRequests) return `requests must be at most ${B.maxRequests}`;
  let intervalMs: number = RATE_LIMIT_UNIT_MS.second;
  if (b.unit !== undefined) intervalMs = RATE_LIMIT_UNIT_MS[b.unit];
  if (b.interval !== undefined) {
    const ms = parseDurationMs(b.interval);
    if (ms === null || b.interval.startsWith('-'))
      return `interval ${JSON.stringify(b.interval)} is not a positive duration`;
    if (ms < B.minIntervalMs) return `interval ${b.interval} is shorter than 1ms`;
    if (ms > B.maxIntervalMs)
      return `interval ${b.interval} is longer than 24h (use a quota system for longer windows)`;
    intervalMs = ms;
  }
  if (b.burst !== undefined && (!Number.isInteger(b.burst) || b.burst < 1 || b.burst > B.maxRequests))
    return `burst must be in 1..${B.maxRequests} (got ${b.burst})`;
  return {
    requests: b.requests,
    intervalMs,
    ...(b.burst !== undefined ? { burst: b.burst } : {}),
    ...(b.per !== undefined ? { per: b.per } : {}),
  };
}

const labelsMatch = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

/** `*\/ns/<ns>/sa/<sa>`: matches the SPIFFE ID in any trust domain. */
export const saPrincipal = (ns: string, sa: string): string => `*/ns/${ns}/sa/${sa}`;

/** Principal patterns of the pods with these labels (any namespace), sorted, unique. */
export function principalsOfLabels(sel: Record<string, string>, pods: readonly RateLimitPod[]): string[] {
  const out = new Set<string>();
  for (const p of pods)
    if (labelsMatch(sel, p.labels)) out.add(saPrincipal(p.namespace, p.serviceAccount ?? 'default'));
  return [...out].sort();
}

/** The Service a host names, in `namespace`: `ratings`, `ratings.ns`, `ratings.ns.svc[.<suffix>]`. */
export function serviceOfHost(
  host: string,
  namespace: string,
  services: readonly KubeService[],
  domainSuffix: string,
): KubeService | undefined {
  const parts = host.split('.');
  const name = parts[0];
  const ns = parts[1] ?? namespace;
  if (ns !== namespace) return undefined;
  if (parts.length > 2 && host !== `${name}.${ns}.svc` && host !== `${name}.${ns}.svc.${domainSuffix}`)
    return undefined;
  return services.find((s) => s.metadata.name === name && (s.metadata.namespace ?? 'default') === ns);
}

/** Does a Service select this pod (same namespace, non-empty selector, all labels)? */
export function serviceSelects(svc: KubeService, pod: RateLimitPod): boolean {
  const sel = svc.spec?.selector ?? {};
  return (
    (svc.metadata.namespace ?? 'default') === pod.namespace &&
    Object.keys(sel).length > 0 &&
    labelsMatch(sel, pod.labels)
  );
}

function selectsPod(spec: RateLimitSpec, ns: string, input: RateLimitInput): boolean {
  if (input.pod.namespace !== ns) return false;
  if (spec.selector !== undefined) return labelsMatch(spec.selector.matchLabels ?? {}, input.pod.labels);
  if (spec.targetHost !== undefined) {
    const svc = serviceOfHost(spec.targetHost, ns, input.kubeServices, input.domainSuffix);
    return svc !== undefined && serviceSelects(svc, input.pod);
  }
  return false;
}

function sourceSelector(s: RateLimitSource, ns: string, pods: readonly RateLimitPod[]): SourceSelector {
  const out: SourceSelector = {};
  // serviceAccounts, principals and workloadLabels together name one set of callers
  if (s.serviceAccounts !== undefined || s.principals !== undefined || s.workloadLabels !== undefined) {
    const principals = new Set<string>(s.principals ?? []);
    for (const sa of s.serviceAccounts ?? []) {
      const slash = sa.indexOf('/');
      principals.add(slash < 0 ? saPrincipal(ns, sa) : saPrincipal(sa.slice(0, slash), sa.slice(slash + 1)));
    }
    // Labels are anyone's to set: only pods of the RateLimit's namespace (or of the `namespaces`
    // it names) count, or a pod elsewhere could label itself into a generous override.
    if (s.workloadLabels !== undefined) {
      const where = new Set(s.namespaces ?? [ns]);
      const candidates = pods.filter((p) => where.has(p.namespace));
      for (const p of principalsOfLabels(s.workloadLabels, candidates)) principals.add(p);
    }
    out.principals = [...principals];
  }
  if (s.namespaces !== undefined) out.namespaces = [...s.namespaces];
  if (s.header !== undefined)
    out.header = {
      name: s.header.name.toLowerCase(),
      ...(s.header.values ? { values: s.header.values } : {}),
    };
  if (s.claim !== undefined)
    out.claim = { name: s.claim.name, ...(s.claim.values ? { values: s.claim.values } : {}) };
  return out;
}

function sourceKey(k: RateLimitSpec['sourceKey']): SourceKey | undefined {
  if (k === undefined) return undefined;
  if (k.by === 'header' || k.by === 'claim')
    return { kind: k.by, name: k.by === 'header' ? (k.name ?? '').toLowerCase() : (k.name ?? '') };
  return { kind: k.by };
}

/** One RateLimit as a proxy limit, or a warning saying why it is skipped. */
export function localLimitOf(
  rl: RateLimit,
  pods: readonly RateLimitPod[],
  globalRateLimits = false,
): LocalRateLimit | string {
  const ns = rl.metadata.namespace ?? 'default';
  const name = `RateLimit ${ns}/${rl.metadata.name ?? ''}`;
  const spec = rl.spec;
  const global = spec.scope === 'global';
  if (global && !globalRateLimits)
    return `${name}: scope global needs the global rate-limit backend (weftd --ratelimit-redis); not enforced`;
  const budget = resolveBudget(spec.limit);
  if (typeof budget === 'string') return `${name}: spec.limit: ${budget}; not enforced`;
  const overrides: NonNullable<LocalRateLimit['overrides']> = [];
  for (const [i, o] of (spec.overrides ?? []).entries()) {
    const b = resolveBudget(o.limit);
    if (typeof b === 'string') return `${name}: spec.overrides[${i}].limit: ${b}; not enforced`;
    overrides.push({
      name: o.name ?? `overrides[${i}]`,
      source: sourceSelector(o.source, ns, pods),
      budget: b,
    });
  }
  const key = sourceKey(spec.sourceKey);
  return {
    name,
    ...(spec.ports !== undefined && spec.ports.length > 0 ? { ports: [...spec.ports] } : {}),
    ...(spec.paths !== undefined && spec.paths.length > 0 ? { pathPrefixes: [...spec.paths] } : {}),
    ...(spec.methods !== undefined && spec.methods.length > 0
      ? { methods: spec.methods.map((m) => m.toUpperCase()) }
      : {}),
    budget,
    ...(overrides.length > 0 ? { overrides } : {}),
    ...(key !== undefined ? { sourceKey: key } : {}),
    ...(global
      ? { scope: 'global' as const, ...(spec.failureMode ? { failureMode: spec.failureMode } : {}) }
      : {}),
  };
}

/**
 * The block for one pod: its RateLimits (by namespace/name; the narrower ones — with ports, paths
 * or methods — first, namespace-wide ones — a selector without labels — last, so a broad limit
 * does not hide a specific one), then its memquota limits. The first
 * limit that applies to a request decides it.
 */
export function rateLimitsFor(input: RateLimitInput): { block?: RateLimitBlock; warnings: string[] } {
  const warnings: string[] = [];
  const pods = input.pods ?? [];
  const narrow = (s: RateLimitSpec): number =>
    (s.ports?.length ?? 0) > 0 || (s.paths?.length ?? 0) > 0 || (s.methods?.length ?? 0) > 0 ? 0 : 1;
  // a namespace-wide RateLimit (selector without labels) is the fallback of the selecting ones
  const wide = (s: RateLimitSpec): number =>
    s.selector !== undefined && Object.keys(s.selector.matchLabels ?? {}).length === 0 ? 1 : 0;
  const selected = input.rateLimits
    .filter((rl) => selectsPod(rl.spec, rl.metadata.namespace ?? 'default', input))
    .sort(
      (a, b) =>
        narrow(a.spec) - narrow(b.spec) ||
        wide(a.spec) - wide(b.spec) ||
        `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
          `${b.metadata.namespace}/${b.metadata.name}`,
        ),
    );
  const limits: LocalRateLimit[] = [];
  for (const rl of selected) {
    const l = localLimitOf(rl, pods, input.globalRateLimits === true);
    if (typeof l === 'string') warnings.push(l);
    else limits.push(l);
  }
  const mq = memquotaLimitsFor(input.memquotas ?? [], input);
  // Mixer's memquota was one budget for the mesh: with a global backend, so is weft's
  limits.push(
    ...(input.globalRateLimits === true
      ? mq.limits.map((l) => ({ ...l, scope: 'global' as const }))
      : mq.limits),
  );
  warnings.push(...mq.warnings);
  // the proxy rejects a config past the bound: dropping the last limits keeps the others enforced
  const max = RATE_LIMIT_BOUNDS.maxLimits;
  if (limits.length > max) {
    for (const l of limits.slice(max))
      warnings.push(`${l.name}: more than ${max} limits select this pod; not enforced`);
    limits.length = max;
  }
  return limits.length === 0 ? { warnings } : { block: { limits }, warnings };
}
