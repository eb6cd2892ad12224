/**
 * Istio's Mixer `memquota` → local rate limits in the destination sidecars, as ADR 0013 says.
 *
 * For each quota and each destination pod: the overrides are read in order (Istio: the first
 * override whose dimensions all match applies). An override whose `destination` does not name
 * this pod is irrelevant to it. One with a `source` becomes a proxy override for the principals
 * of that source's pods; the first one without a `source` matches every caller, so it becomes the
 * pod's default budget and every later override is unreachable (the webhook warns). With no such
 * override the quota's own `maxAmount`/`validDuration` is the default. Every budget is one shared
 * bucket per destination pod: "ratings 100/s" is 100/s at each ratings pod. With the global
 * backend it is one budget per destination across its pods (the limit's `sharedKey` is the pod's
 * destination value), as Mixer counted per dimension set: ratings and productpage under one
 * quota do not draw from each other's 5000/s.
 *
 * A dimension value names a workload as Istio's quota instances did (`source.labels["app"]`,
 * `destination.labels["app"] | destination.service.name`): pods whose `app` label is that
 * value, or pods a Service of that name selects in the memquota's namespace.
 */
import type { MemQuota, MemQuotaOverride, MemQuotaQuota } from '../api/memquota.js';
import { MEMQUOTA_DIMENSIONS } from '../api/memquota.js';
import {
  RATE_LIMIT_BOUNDS,
  type LocalRateLimit,
  type RateBudget,
  type RateLimitOverride,
} from '../proxyconfig/ratelimit.js';
import { DEFAULT_ROOT_NAMESPACE } from './authz.js';
import type { KubeService } from './kube.js';
import type { RateLimitInput, RateLimitPod } from './ratelimit.js';
import { resolveBudget, saPrincipal, serviceSelects } from './ratelimit.js';

/** Mixer's default when validDuration is absent: the quota is not time-bound, weft needs one. */
export function memquotaBudget(maxAmount: number, validDuration: string | undefined): RateBudget | string {
  if (validDuration === undefined || validDuration === '')
    return 'validDuration is required: weft enforces memquota as a rate limit (an allocation quota without a window has no equivalent)';
  return resolveBudget({ requests: maxAmount, interval: validDuration });
}

/** Does the dimension value `name` designate this pod (app label, or a Service selecting it)? */
export function namesPod(
  name: string,
  pod: RateLimitPod,
  namespace: string,
  services: readonly KubeService[],
): boolean {
  if (pod.labels.app === name) return true;
  return services.some(
    (s) =>
      s.metadata.name === name && (s.metadata.namespace ?? 'default') === namespace && serviceSelects(s, pod),
  );
}

/**
 * The pod's `destination` dimension as Istio's quota instance computed it
 * (`destination.labels["app"] | destination.service.name | "unknown"`): its app label, else the
 * first by name of the Services in its namespace that select it, else `unknown`.
 */
export function destinationValue(pod: RateLimitPod, services: readonly KubeService[]): string {
  const app = pod.labels.app;
  if (app !== undefined && app !== '') return app;
  const names = services
    .filter((s) => serviceSelects(s, pod))
    .map((s) => s.metadata.name ?? '')
    .filter((n) => n !== '')
    .sort();
  return names[0] ?? 'unknown';
}

/** The principal patterns of the workload a `source` names. */
export function sourcePrincipals(
  name: string,
  namespace: string,
  pods: readonly RateLimitPod[],
  services: readonly KubeService[],
): string[] {
  const out = new Set<string>();
  for (const p of pods)
    if (namesPod(name, p, namespace, services))
      out.add(saPrincipal(p.namespace, p.serviceAccount ?? 'default'));
  return [...out].sort();
}

export const unknownDimensions = (o: MemQuotaOverride): string[] =>
  Object.keys(o.dimensions ?? {}).filter((d) => !(MEMQUOTA_DIMENSIONS as readonly string[]).includes(d));

/**
 * Mixer's configuration namespace (`istio-system`) and the mesh's root namespace hold mesh-wide
 * quotas, as Mixer's default config namespace did; a memquota anywhere else limits only the pods
 * of its own namespace (or anyone allowed a memquota in their namespace could throttle the mesh).
 */
const MIXER_CONFIG_NAMESPACE = 'istio-system';

function appliesTo(mq: MemQuota, input: RateLimitInput): boolean {
  const ns = mq.metadata.namespace ?? 'default';
  const root = input.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  return ns === root || ns === MIXER_CONFIG_NAMESPACE || ns === input.pod.namespace;
}

function quotaLimit(
  mq: MemQuota,
  q: MemQuotaQuota,
  input: RateLimitInput,
): { limit?: LocalRateLimit; warning?: string } {
  const ns = mq.metadata.namespace ?? 'default';
  if (!appliesTo(mq, input)) return {};
  const name = `memquota ${ns}/${mq.metadata.name ?? ''} ${q.name}`;
  // one name for every destination the quota covers: the key keeps their budgets apart
  const sharedKey = destinationValue(input.pod, input.kubeServices).slice(
    0,
    RATE_LIMIT_BOUNDS.maxSharedKeyChars,
  );
  let budget = memquotaBudget(q.maxAmount, q.validDuration);
  if (typeof budget === 'string') return { warning: `${name}: ${budget}; not enforced` };
  const overrides: RateLimitOverride[] = [];
  if ((q.overrides ?? []).length > RATE_LIMIT_BOUNDS.maxOverrides)
    return { warning: `${name}: more than ${RATE_LIMIT_BOUNDS.maxOverrides} overrides; not enforced` };
  for (const [i, o] of (q.overrides ?? []).entries()) {
    if (unknownDimensions(o).length > 0)
      return {
        warning: `${name}: overrides[${i}] has unknown dimensions ${unknownDimensions(o).join(', ')}; not enforced`,
      };
    const dims = o.dimensions ?? {};
    if (dims.destination !== undefined && !namesPod(dims.destination, input.pod, ns, input.kubeServices))
      continue;
    const b = memquotaBudget(o.maxAmount, o.validDuration ?? q.validDuration);
    if (typeof b === 'string') return { warning: `${name}: overrides[${i}]: ${b}; not enforced` };
    if (dims.source === undefined) {
      // matches every caller: this pod's default, later overrides are unreachable
      budget = b;
      return {
        limit: {
          name,
          budget,
          ...(overrides.length > 0 ? { overrides } : {}),
          defaultName: `overrides[${i}]`,
          sharedKey,
        },
      };
    }
    overrides.push({
      name: `overrides[${i}]`,
      source: { principals: sourcePrincipals(dims.source, ns, input.pods ?? [], input.kubeServices) },
      budget: b,
    });
  }
  return { limit: { name, budget, ...(overrides.length > 0 ? { overrides } : {}), sharedKey } };
}

export function memquotaLimitsFor(
  memquotas: readonly MemQuota[],
  input: RateLimitInput,
): { limits: LocalRateLimit[]; warnings: string[] } {
  const limits: LocalRateLimit[] = [];
  const warnings: string[] = [];
  const sorted = [...memquotas].sort((a, b) =>
    `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`),
  );
  for (const mq of sorted)
    for (const q of mq.spec.quotas ?? []) {
      const r = quotaLimit(mq, q, input);
      if (r.warning !== undefined) warnings.push(r.warning);
      if (r.limit !== undefined) limits.push(r.limit);
    }
  return { limits, warnings };
}
