/**
 * Writes an `Enforced` condition into the status of every RateLimit and memquota, so that
 * `kubectl get -o yaml` says what weft does with it: a local limit (a token bucket per destination
 * pod), a memquota enforced per pod rather than mesh-wide as Mixer did, or why it is not enforced
 * (`scope: global`, an object the webhook would refuse that got in while it was down).
 *
 * Runs after registry changes, debounced; writes only what differs from what it last wrote for
 * that object and generation (a status write is an update event: the registry ignores updates
 * that leave the generation unchanged, so this never loops into pushes). Several weftd replicas
 * write the same content.
 */
import type { KubeClient } from '../pkg/kube/client.js';
import type { Logger } from '../pkg/log/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import type { RateLimit } from '../pkg/api/ratelimit.js';
import type { MemQuota } from '../pkg/api/memquota.js';
import { localLimitOf } from '../pkg/translate/ratelimit.js';
import { memquotaLimitsFor } from '../pkg/translate/memquota.js';
import type { KubeRegistry } from './registry.js';

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

interface Tracked {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; generation?: number };
  status?: { conditions?: { type?: string; status?: string; lastTransitionTime?: string }[] };
}

export function startRateLimitStatus(opts: {
  kube: KubeClient;
  registry: KubeRegistry;
  log: Logger;
  debounceMs?: number;
}): { stop(): void; idle(): Promise<void> } {
  const { kube, registry, log } = opts;
  /** uid → `generation|condition` last written (pruned to the objects that exist). */
  const written = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;

  const writeOne = async (o: Tracked, c: EnforcedCondition): Promise<void> => {
    const uid = o.metadata.uid ?? `${o.metadata.namespace}/${o.metadata.name}`;
    const memo = `${o.metadata.generation ?? 0}|${JSON.stringify(c)}`;
    if (written.get(uid) === memo) return;
    const prev = o.status?.conditions?.find((x) => x.type === ENFORCED);
    const lastTransitionTime =
      prev?.status === c.status && prev.lastTransitionTime !== undefined
        ? prev.lastTransitionTime
        : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const others = (o.status?.conditions ?? []).filter((x) => x.type !== ENFORCED);
    try {
      await kube.mergePatch(
        {
          apiVersion: o.apiVersion,
          kind: o.kind,
          name: o.metadata.name ?? '',
          namespace: o.metadata.namespace ?? 'default',
        },
        {
          status: {
            conditions: [
              ...others,
              { ...c, observedGeneration: o.metadata.generation ?? 0, lastTransitionTime },
            ],
          },
        },
        'status',
      );
      written.set(uid, memo);
    } catch (err) {
      // gone in between, or RBAC: said once per change, retried on the next one
      log.warn('Could not write a rate limit status', {
        object: `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`,
        error: errorMessage(err),
      });
    }
  };

  const cycle = async (): Promise<void> => {
    const snap = registry.snapshot();
    const seen = new Set<string>();
    const all: [Tracked, EnforcedCondition][] = [
      ...(snap.rateLimits ?? []).map(
        (r) => [r as Tracked, rateLimitCondition(r)] as [Tracked, EnforcedCondition],
      ),
      ...(snap.memquotas ?? []).map(
        (m) => [m as Tracked, memquotaCondition(m)] as [Tracked, EnforcedCondition],
      ),
    ];
    for (const [o, c] of all) {
      if (stopped) return;
      seen.add(o.metadata.uid ?? `${o.metadata.namespace}/${o.metadata.name}`);
      await writeOne(o, c);
    }
    for (const k of written.keys()) if (!seen.has(k)) written.delete(k);
  };

  const schedule = (): void => {
    if (stopped || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(cycle, cycle);
    }, opts.debounceMs ?? 500);
  };
  registry.onChange((t) => {
    if (t === 'config') schedule();
  });
  void registry.hasSynced.then(schedule);
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
    idle: () => running,
  };
}
