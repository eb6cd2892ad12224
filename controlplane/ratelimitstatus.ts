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

export function rateLimitCondition(rl: RateLimit): EnforcedCondition {
  if ((rl.spec.scope ?? 'local') === 'global')
    return {
      type: ENFORCED,
      status: 'False',
      reason: 'GlobalNotImplemented',
      message: 'scope global is not implemented yet: this limit is not enforced (use scope local)',
    };
  const l = localLimitOf(rl, []);
  if (typeof l === 'string') return { type: ENFORCED, status: 'False', reason: 'Invalid', message: l };
  return {
    type: ENFORCED,
    status: 'True',
    reason: 'Local',
    message: "a token bucket in each selected pod's sidecar: the budget is per pod",
  };
}

export function memquotaCondition(mq: MemQuota): EnforcedCondition {
  const { warnings } = memquotaLimitsFor([mq], {
    pod: { namespace: '', labels: {} },
    rateLimits: [],
    kubeServices: [],
    domainSuffix: '',
  });
  if (warnings.length > 0)
    return { type: ENFORCED, status: 'False', reason: 'Invalid', message: warnings.join('; ') };
  return {
    type: ENFORCED,
    status: 'True',
    reason: 'Local',
    message:
      "enforced locally: weft has no global rate-limit backend, so each destination pod's sidecar enforces its own budget (Mixer's was mesh-wide)",
  };
}
