/**
 * Writes each mesh object's conditions (status.ts) through the status subresource.
 *
 * - Only the elected leader writes (a Lease, pkg/kube/leader.ts): two weftd replicas never fight
 *   over a status, and a stale replica that lost the Lease stops at once.
 * - Level-based, as a kubebuilder reconciler: any change (an object, a Service, a status edited
 *   by hand) schedules one pass over the cluster, debounced like a push; a pass computes every
 *   object's status and queues a write only where the live one differs. A pass while writes are
 *   queued replaces the queued status of an object (coalesced: one write per object per burst).
 * - Writes are rate-limited (a token bucket) so a burst of 1,000 changes cannot flood the API
 *   server, and a status write never causes a push: the registry ignores status-only updates.
 * - Server-side apply with field manager `weftd`: no read-modify-write, no 409 on a race.
 */
import type { KubeClient } from '../pkg/kube/client.js';
import { isApiError } from '../pkg/kube/client.js';
import { LeaderElector, LEASE_DEFAULTS, type LeaderElectionConfig } from '../pkg/kube/leader.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import { analyze, REFERENCE_RULES } from '../pkg/validation/analyze.js';
import type { ObjectFinding } from '../pkg/validation/index.js';
import { VALIDATED_KINDS } from './validity.js';
import { Debouncer } from './debounce.js';
import { podInfo, type KubeRegistry, type PodInfo, type WatchedKind } from './registry.js';
import { memquotaCondition, rateLimitCondition } from './ratelimitstatus.js';
import type { SecretCredentials } from './credentials.js';
import { gatewayCredentialProblems } from './gatewaycredentials.js';
import { gatewaySelects } from '../pkg/translate/gateway.js';
import type { Gateway } from '../pkg/api/index.js';
import { DEFAULT_ROOT_NAMESPACE } from '../pkg/translate/authz.js';
import { failClosed, failClosedText } from '../pkg/translate/failclosed.js';
import {
  objectStatus,
  reconciliation,
  statusUpToDate,
  type ProxyProgress,
  type FreshCondition,
  type ObjectStatus,
  type Verdict,
} from './status.js';
import type { MemQuota } from '../pkg/api/memquota.js';
import type { RateLimit } from '../pkg/api/ratelimit.js';

/** The mesh kinds weftd watches that get a status (every Istio kind it translates from). */
export const STATUS_KINDS: readonly WatchedKind[] = VALIDATED_KINDS;

export const FIELD_MANAGER = 'weftd';

/** The kinds whose events can change a verdict. */
const JUDGED_FROM: ReadonlySet<WatchedKind> = new Set<WatchedKind>([...STATUS_KINDS, 'Service']);

export interface StatusWriterOptions {
  kube: KubeClient;
  registry: KubeRegistry;
  log: Logger;
  /** The Lease's namespace and this replica's identity (the pod name). */
  lease: { namespace: string; name?: string; identity: string };
  /** Sustained writes per second (default 20) and burst (default 40). */
  writesPerSecond?: number;
  burst?: number;
  /** Debounce of passes (default 100 ms quiet, 1 s at most). */
  debounce?: { afterMs: number; maxMs: number };
  /** weftd runs the global rate-limit backend: RateLimit scope global is accepted and Enforced (Global). */
  globalRateLimits?: boolean;
  /** Counts writes by result (ok|error); tests read `writes`. */
  onWrite?: (result: 'ok' | 'error') => void;
  /**
   * The proxy streams of this weftd, for the Reconciled condition, and a way to hear of their
   * progress (pushes, ACKs, NACKs, connects); absent: no Reconciled condition.
   */
  proxies?: { list(): ProxyProgress[]; onProgress(fn: () => void): void };
  /** The mesh's root namespace (mesh-wide policies); default weft-system. */
  rootNamespace?: string;
  /**
   * Where gateways' `credentialName` Secrets are read (the config generator's source), to judge
   * Gateways' TLS credentials; absent: not judged. Call `credentialsChanged` when they change.
   */
  credentials?: Pick<SecretCredentials, 'peek'>;
  /** Lease timings (tests shorten the retry period); default LEASE_DEFAULTS. */
  leaseTiming?: Partial<
    Pick<LeaderElectionConfig, 'leaseDurationSeconds' | 'renewDeadlineMs' | 'retryPeriodMs'>
  >;
}

interface Pending {
  obj: KubeObject;
  status: ObjectStatus;
}

/**
 * The namespaces whose proxies an object can affect: exportTo for the routing kinds (default
 * every namespace); the object's own namespace for policies, Sidecars and limits, unless it sits
 * in the root namespace (or, for memquota, Mixer's istio-system), where it is mesh-wide.
 * Gateways select gateway pods anywhere.
 */
export function reachOf(obj: KubeObject, rootNamespace: string): (namespace: string) => boolean {
  const ns = obj.metadata.namespace ?? 'default';
  if (obj.kind === 'Gateway') return () => true;
  if (obj.kind === 'VirtualService' || obj.kind === 'DestinationRule' || obj.kind === 'ServiceEntry') {
    const exportTo = (obj.spec as { exportTo?: unknown } | undefined)?.exportTo;
    if (!Array.isArray(exportTo) || exportTo.length === 0 || exportTo.includes('*')) return () => true;
    const to = new Set(exportTo.map((e) => (e === '.' ? ns : String(e))));
    return (n) => to.has(n);
  }
  if (ns === rootNamespace || (obj.kind === 'memquota' && ns === 'istio-system')) return () => true;
  return (n) => n === ns;
}

/** Conditions only some kinds have: what weft does with a rate limit (ratelimitstatus.ts). */
function kindConditions(obj: KubeObject, global: boolean): FreshCondition[] {
  if (obj.kind === 'RateLimit') return [rateLimitCondition(obj as unknown as RateLimit, global)];
  if (obj.kind === 'memquota') return [memquotaCondition(obj as unknown as MemQuota, global)];
  return [];
}

const keyOf = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class StatusWriter {
  private readonly elector: LeaderElector;
  private readonly debouncer: Debouncer;
  private readonly pending = new Map<string, Pending>();
  private leading = false;
  private draining = false;
  private stopped = false;
  private tokens: number;
  private lastRefill = performance.now();
  /** Writes made (ok) and failed, for tests and /debug. */
  readonly counts = { passes: 0, writes: 0, errors: 0 };

  constructor(private readonly opts: StatusWriterOptions) {
    this.tokens = opts.burst ?? 40;
    this.debouncer = new Debouncer(() => this.pass(), opts.debounce ?? { afterMs: 100, maxMs: 1000 });
    this.elector = new LeaderElector(
      opts.kube,
      {
        namespace: opts.lease.namespace,
        name: opts.lease.name ?? 'weftd-status',
        identity: opts.lease.identity,
        ...LEASE_DEFAULTS,
        ...opts.leaseTiming,
        onStartedLeading: () => {
          this.leading = true;
          opts.log.info('Status writer leading', { identity: opts.lease.identity });
          this.debouncer.trigger();
        },
        onStoppedLeading: () => {
          this.leading = false;
          this.pending.clear();
          if (!this.stopped) opts.log.warn('Status writer lost its Lease; status writes paused');
        },
      },
      opts.log,
    );
    // Pods, slices, nodes and namespaces churn and change no verdict: only the objects judged
    // (their status edited by hand included) and the Services their hosts may name do.
    opts.registry.onEvent((kind) => {
      if (JUDGED_FROM.has(kind)) this.debouncer.trigger();
    });
    // A pass before the registry has synced does nothing; the kinds that sync last (Pods,
    // EndpointSlices, Nodes) judge nothing, so without this a writer that leads early would
    // write no status until some judged object changes (seen in CI: a Lease won before the sync)
    opts.registry.hasSynced.then(
      () => this.debouncer.trigger(),
      () => undefined, // the registry reports its own failures
    );
    opts.proxies?.onProgress(() => this.debouncer.trigger());
  }

  /** A credential Secret was listed, changed or removed: Gateways' ResolvedRefs may change. */
  credentialsChanged(): void {
    this.debouncer.trigger();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.elector.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.debouncer.stop();
    this.pending.clear();
    await this.elector.stop();
  }

  /** One pass: every object's status computed, the ones that differ queued for writing. */
  private pass(): void {
    if (!this.leading || this.stopped || !this.opts.registry.synced()) return;
    this.counts.passes++;
    const objects = STATUS_KINDS.flatMap((k) => this.opts.registry.list(k));
    const verdicts = this.verdicts(objects);
    const now = new Date();
    this.pending.clear();
    for (const obj of objects) {
      const status = objectStatus(obj, verdicts.get(keyOf(obj))!, now);
      if (!statusUpToDate(obj, status)) this.pending.set(keyOf(obj), { obj, status });
    }
    void this.drain();
  }

  private verdicts(objects: KubeObject[]): Map<string, Verdict> {
    const snapshot = this.opts.registry.snapshot();
    // the pods' labels, read once per pass for every Gateway that names a credential
    let podInfos: PodInfo[] | undefined;
    const pods = (): PodInfo[] => (podInfos ??= this.opts.registry.list('Pod').map(podInfo));
    const kubeHosts = new Set(snapshot.services.map((s) => s.host));
    const entryHosts = snapshot.serviceEntries.flatMap((se) => se.spec.hosts ?? []);
    const knownHost = (host: string): boolean =>
      kubeHosts.has(host) ||
      entryHosts.some((h) => h === host || (h.startsWith('*') && host.endsWith(h.slice(1))));
    // across the objects weft applies: one it leaves out wins no host and conflicts with none
    const applied = objects.filter((o) => this.opts.registry.validation(o).errors.length === 0);
    const findings = analyze(applied, 'default', { knownHost, wholeCluster: true });
    const byObject = new Map<string, ObjectFinding[]>();
    for (const f of findings) {
      const key = `${f.object.kind}/${f.object.namespace ?? ''}/${f.object.name}`;
      byObject.set(key, [...(byObject.get(key) ?? []), f]);
    }
    const out = new Map<string, Verdict>();
    const proxies = this.opts.proxies?.list();
    // most objects changed before every proxy's newest ACK: one comparison, not a scan of proxies
    const floor = proxies?.reduce((m, p) => (p.acks ? Math.min(m, p.runningAt) : m), Infinity) ?? 0;
    const current = reconciliation(0, []);
    const root = this.opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    for (const obj of objects) {
      const mine = byObject.get(keyOf(obj)) ?? [];
      const validation = this.opts.registry.validation(obj);
      const closed = failClosed(obj, validation.errors, root);
      out.set(keyOf(obj), {
        validation,
        ...(closed !== null ? { failClosed: failClosedText(obj, closed, root) } : {}),
        unresolved: mine.filter((f) => f.rule !== undefined && REFERENCE_RULES.has(f.rule)),
        notes: mine.filter((f) => f.rule === undefined || !REFERENCE_RULES.has(f.rule)),
        ...(obj.kind === 'Gateway' ? this.gatewayCredentials(obj as unknown as Gateway, pods) : {}),
        extra: kindConditions(obj, this.opts.globalRateLimits === true),
        ...(proxies ? { reconciled: this.reconciled(obj, proxies, floor, current) } : {}),
      });
    }
    return out;
  }

  /** The Gateway's TLS credentials as the gateway pods it selects would read them. */
  private gatewayCredentials(gw: Gateway, pods: () => PodInfo[]): Pick<Verdict, 'badCredentials'> {
    const source = this.opts.credentials;
    const usesCredentials = (gw.spec.servers ?? []).some((s) => (s.tls?.credentialName ?? '') !== '');
    if (source === undefined || !usesCredentials) return {};
    const namespaces = new Set(
      pods()
        .filter((pod) => gatewaySelects(gw, pod))
        .map((pod) => pod.namespace),
    );
    const problems = gatewayCredentialProblems(gw, namespaces, (ns, name) => source.peek(ns, name));
    return problems.length > 0 ? { badCredentials: problems } : {};
  }

  private reconciled(
    obj: KubeObject,
    proxies: ProxyProgress[],
    floor: number,
    current: FreshCondition,
  ): FreshCondition {
    const { namespace, name } = obj.metadata;
    const changedAt = this.opts.registry.changedAt(obj.kind as WatchedKind, namespace, name);
    if (changedAt <= floor) return current;
    const reach = reachOf(obj, this.opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE);
    return reconciliation(
      changedAt,
      proxies.filter((p) => reach(p.namespace)),
      namespace ?? '',
    );
  }

  /** Writes the queued statuses, at most `writesPerSecond` (after a burst). */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (;;) {
        if (!this.leading || this.stopped) return;
        const next = this.pending.entries().next();
        if (next.done) return;
        const [key, item] = next.value;
        this.pending.delete(key);
        await this.takeToken();
        if (!this.leading || this.stopped) return;
        await this.write(item);
      }
    } finally {
      this.draining = false;
    }
  }

  private async takeToken(): Promise<void> {
    const rate = this.opts.writesPerSecond ?? 20;
    const burst = this.opts.burst ?? 40;
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(burst, this.tokens + ((now - this.lastRefill) / 1000) * rate);
      this.lastRefill = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / rate) * 1000)));
    }
  }

  private async write({ obj, status }: Pending): Promise<void> {
    const log = this.opts.log.child({ object: keyOf(obj) });
    try {
      await this.opts.kube.applyStatus(
        {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          metadata: {
            name: obj.metadata.name,
            ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
          },
          status,
        },
        FIELD_MANAGER,
      );
      this.counts.writes++;
      this.opts.onWrite?.('ok');
      log.debug('Status written', { generation: status.observedGeneration });
    } catch (err) {
      if (isApiError(err) && err.status === 404) return; // deleted meanwhile
      this.counts.errors++;
      this.opts.onWrite?.('error');
      log.warn('Status write failed; retried on the next pass', { error: errorMessage(err) });
      setTimeout(() => this.debouncer.trigger(), 1000).unref();
    }
  }
}
