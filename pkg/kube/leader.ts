/**
 * Leader election on a coordination.k8s.io/v1 Lease, client-go's algorithm: the holder renews
 * every retry period; a candidate takes the Lease only once `renewTime + leaseDuration` has
 * passed; every write is a PUT with the read resourceVersion, so two candidates racing get one
 * 200 and one 409. A leader that cannot renew within the renew deadline steps down (the
 * caller's `onStoppedLeading` must stop all work) rather than risk two active leaders.
 */
import type { Logger } from '../log/index.js';
import { sleep } from './backoff.js';
import { isApiError, type KubeClient } from './client.js';
import type { KubeObject } from './types.js';

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

export const LEASE_DEFAULTS = {
  leaseDurationSeconds: 15,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

/** MicroTime as the API expects it: RFC 3339 with microseconds. */
const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** Pure: may `identity` take or keep this lease at time `now`? */
export function canAcquire(spec: LeaseSpec | undefined, identity: string, now: Date): boolean {
  if (!spec?.holderIdentity || spec.holderIdentity === identity) return true;
  const renewed = spec.renewTime ? Date.parse(spec.renewTime) : NaN;
  if (Number.isNaN(renewed)) return true;
  return now.getTime() > renewed + (spec.leaseDurationSeconds ?? LEASE_DEFAULTS.leaseDurationSeconds) * 1000;
}

export class LeaderElector {
  private leading = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly client: KubeClient,
    private readonly cfg: LeaderElectionConfig,
    private readonly log: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.leading) {
      this.leading = false;
      await this.release().catch((err: unknown) =>
        this.log.warn('Lease release failed', { error: (err as Error).message }),
      );
      this.cfg.onStoppedLeading();
    }
  }

  private async loop(): Promise<void> {
    let lastRenew = 0;
    while (!this.abort.signal.aborted) {
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.log.warn('Lease update failed', { lease: this.cfg.name, error: (err as Error).message });
        return false;
      });
      if (this.abort.signal.aborted) return;
      const now = Date.now();
      if (ok) {
        lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.log.info('Became leader', { lease: this.cfg.name, identity: this.cfg.identity });
          this.cfg.onStartedLeading();
        }
      } else if (this.leading && now - lastRenew > this.cfg.renewDeadlineMs) {
        this.leading = false;
        this.log.error('Lost leadership: lease not renewed within the deadline', { lease: this.cfg.name });
        this.cfg.onStoppedLeading();
      }
      await sleep(this.cfg.retryPeriodMs, this.abort.signal);
    }
  }

  private leaseKey(): { apiVersion: string; kind: string; name: string; namespace: string } {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      name: this.cfg.name,
      namespace: this.cfg.namespace,
    };
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const current = await this.client.get<Lease>(this.leaseKey());
    if (!current) {
      try {
        await this.client.create({
          ...this.leaseKey(),
          metadata: { name: this.cfg.name, namespace: this.cfg.namespace },
          spec: this.freshSpec(now, 0),
        } as Lease);
        return true;
      } catch (err) {
        if (isApiError(err, 409)) return false;
        throw err;
      }
    }
    if (!canAcquire(current.spec, this.cfg.identity, now)) return false;
    const held = current.spec?.holderIdentity === this.cfg.identity;
    const spec: LeaseSpec = held
      ? { ...current.spec, renewTime: microTime(now), leaseDurationSeconds: this.cfg.leaseDurationSeconds }
      : this.freshSpec(now, (current.spec?.leaseTransitions ?? 0) + 1);
    try {
      await this.client.replace({ ...current, spec } as Lease);
      return true;
    } catch (err) {
      if (isApiError(err, 409)) return false;
      throw err;
    }
  }

  private freshSpec(now: Date, transitions: number): LeaseSpec {
    return {
      holderIdentity: this.cfg.identity,
      leaseDurationSeconds: this.cfg.leaseDurationSeconds,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: transitions,
    };
  }

  /** Give the lease up by expiring it (client-go's ReleaseOnCancel). */
  private async release(): Promise<void> {
    const current = await this.client.get<Lease>(this.leaseKey());
    if (!current || current.spec?.holderIdentity !== this.cfg.identity) return;
    const past = microTime(new Date(0));
    await this.client.replace({
      ...current,
      spec: { ...current.spec, holderIdentity: '', renewTime: past, leaseDurationSeconds: 1 },
    } as Lease);
  }
}
