/**
 * The `Enforced` condition of every RateLimit and memquota (pure; the status writer,
 * statuswriter.ts, writes it beside Accepted/ResolvedRefs/Ready/Stalled), so that
 * `kubectl get -o yaml` says what weft does with it: a local limit (a token bucket per destination
 * pod), a memquota enforced per pod rather than mesh-wide as Mixer did, or why it is not enforced
 * (`scope: global`, an object the webhook would refuse that got in while it was down).
 */
import type { RateLimit } from '../pkg/api/ratelimit.js';
import type { MemQuota } from '../pkg/api/memquota.js';
import { localLimitOf } from '../pkg/translate/ratelimit.js';
import { memquotaLimitsFor } from '../pkg/translate/memquota.js';

export const ENFORCED = 'Enforced';

export interface EnforcedCondition {
  type: typeof ENFORCED;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** `global`: weftd runs the global rate-limit backend (--ratelimit-redis, ADR 0017). */
export function rateLimitCondition(rl: RateLimit, global = false): EnforcedCondition {
  if ((rl.spec.scope ?? 'local') === 'global' && !global)
    return {
      type: ENFORCED,
      status: 'False',
      reason: 'GlobalNotImplemented',
      message:
        'scope global needs the global rate-limit backend, which this mesh does not run (weftd --ratelimit-redis HOST:PORT): this limit is not enforced (use scope local, or enable the backend)',
    };
  const l = localLimitOf(rl, [], global);
  if (typeof l === 'string') return { type: ENFORCED, status: 'False', reason: 'Invalid', message: l };
  if (l.scope === 'global')
    return {
      type: ENFORCED,
      status: 'True',
      reason: 'Global',
      message: `one budget across every selected pod, kept in weftd's Redis; when it does not answer in time requests are ${l.failureMode === 'deny' ? 'denied (failureMode deny)' : 'allowed (failureMode allow)'}`,
    };
  return {
    type: ENFORCED,
    status: 'True',
    reason: 'Local',
    message:
      "a token bucket in each selected pod's proxy (sidecar, or gateway listener): the budget is per pod",
  };
}

export function memquotaCondition(mq: MemQuota, global = false): EnforcedCondition {
  const { warnings } = memquotaLimitsFor([mq], {
    pod: { namespace: '', labels: {} },
    rateLimits: [],
    kubeServices: [],
    domainSuffix: '',
  });
  if (warnings.length > 0)
    return { type: ENFORCED, status: 'False', reason: 'Invalid', message: warnings.join('; ') };
  if (global)
    return {
      type: ENFORCED,
      status: 'True',
      reason: 'Global',
      message:
        "enforced mesh-wide as Mixer did: one budget per quota in weftd's Redis, shared by every destination pod",
    };
  return {
    type: ENFORCED,
    status: 'True',
    reason: 'Local',
    message:
      "enforced locally: this mesh runs no global rate-limit backend (weftd --ratelimit-redis), so each destination pod's sidecar enforces its own budget (Mixer's was mesh-wide)",
  };
}
