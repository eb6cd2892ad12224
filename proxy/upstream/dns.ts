/**
 * DNS clusters (Cluster.type STRICT_DNS / LOGICAL_DNS; Istio's ServiceEntry resolution DNS and
 * DNS_ROUND_ROBIN): each endpoint's host name is resolved with node:dns (a Resolver of its own,
 * servers from ProxyConfig.dns or the system), and re-resolved when the answer's TTL runs out
 * (Envoy's respect_dns_ttl, which Istio sets), bounded to [minRefreshMs, maxRefreshMs].
 *
 * - STRICT_DNS: every address of every host's answer is an endpoint (port, labels, weight of the
 *   endpoint it came from).
 * - LOGICAL_DNS: only the first address of the latest answer.
 * - A failure keeps the last good addresses (Envoy does the same), logs one line, counts
 *   `weft_proxy_dns_resolution_failures_total{cluster}` and retries with a backoff from
 *   minRefreshMs doubling up to refreshRateMs. A host never resolved has no endpoint: 503 UH,
 *   and /clusters shows the error.
 * - Bounded: one timer and at most MAX_ADDRESSES_PER_HOST addresses per distinct host; nothing
 *   is kept for hosts no longer in the config (the refresher stops with its cluster).
 */
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from '../../pkg/log/index.js';
import { MAX_ADDRESSES_PER_HOST, type ResolvedDnsSettings } from '../../pkg/proxyconfig/dns.js';
import type { Endpoint } from '../../pkg/proxyconfig/types.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';

/** One answer: its addresses in the server's order, and its smallest TTL in seconds. */
export interface DnsAnswer {
  addresses: string[];
  ttlSeconds: number;
}

export type DnsLookup = (host: string) => Promise<DnsAnswer>;

/** What a DNS cluster needs from the proxy: the resolver, the timings, where to report. */
export interface DnsEnv {
  lookup: DnsLookup;
  settings: ResolvedDnsSettings;
  log?: Logger | undefined;
  metrics?: MetricsRegistry | undefined;
}

/** An A query answered with no record (NOERROR, empty): try AAAA. NXDOMAIN is final. */
const NO_RECORDS = new Set(['ENODATA']);

/**
 * A lookup over node:dns's Resolver: A records, else AAAA (Envoy's V4_PREFERRED). The servers
 * are the settings' (tests use one on 127.0.0.1) or the system's.
 */
export function resolverLookup(settings: ResolvedDnsSettings): DnsLookup {
  const r = new dnsPromises.Resolver({ timeout: settings.timeoutMs, tries: 2 });
  if (settings.servers) r.setServers(settings.servers);
  const answer = (recs: { address: string; ttl: number }[]): DnsAnswer => ({
    addresses: recs.map((x) => x.address),
    ttlSeconds: recs.reduce((m, x) => Math.min(m, x.ttl), Infinity),
  });
  return async (host) => {
    try {
      const a = await r.resolve4(host, { ttl: true });
      if (a.length > 0) return answer(a);
    } catch (err) {
      if (!NO_RECORDS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    const aaaa = await r.resolve6(host, { ttl: true });
    if (aaaa.length === 0)
      throw Object.assign(new Error(`no A or AAAA record for ${host}`), { code: 'ENODATA' });
    return answer(aaaa);
  };
}

interface HostState {
  host: string;
  addresses: string[];
  ttlSeconds: number | null;
  resolvedAt: number | null;
  lastError: string | null;
  failures: number;
  nextAt: number | null;
  timer: NodeJS.Timeout | null;
}

/** When to ask again after an answer with this TTL (seconds). */
export function refreshDelayMs(ttlSeconds: number, s: ResolvedDnsSettings): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0)
    return Math.max(s.minRefreshMs, Math.min(s.refreshRateMs, s.maxRefreshMs));
  return Math.min(Math.max(ttlSeconds * 1000, s.minRefreshMs), s.maxRefreshMs);
}

/** When to retry after the n-th consecutive failure (n ≥ 1). */
export function failureDelayMs(failures: number, s: ResolvedDnsSettings): number {
  const exp = Math.min(failures - 1, 20);
  return Math.max(s.minRefreshMs, Math.min(s.minRefreshMs * 2 ** exp, s.refreshRateMs));
}

export class DnsRefresher {
  private readonly hosts = new Map<string, HostState>();
  private stopped = false;
  /** Settles when every host has had its first answer or failure. */
  readonly ready: Promise<void>;

  constructor(
    private readonly cluster: string,
    private readonly targets: readonly Endpoint[],
    private readonly logical: boolean,
    private readonly env: DnsEnv,
    private readonly onUpdate: (endpoints: Endpoint[]) => void,
    private readonly now: () => number = Date.now,
  ) {
    for (const t of targets) {
      const host = t.address.toLowerCase();
      if (this.hosts.has(host)) continue;
      const literal = isIP(host) !== 0;
      this.hosts.set(host, {
        host,
        addresses: literal ? [host] : [],
        ttlSeconds: null,
        resolvedAt: null,
        lastError: null,
        failures: 0,
        nextAt: null,
        timer: null,
      });
    }
    const pending = [...this.hosts.values()].filter((h) => h.addresses.length === 0);
    if (pending.length < this.hosts.size) this.onUpdate(this.endpoints());
    this.ready = Promise.all(pending.map((h) => this.refresh(h))).then(() => undefined);
  }

  private async refresh(h: HostState): Promise<void> {
    h.timer = null;
    h.nextAt = null;
    const s = this.env.settings;
    let delay: number;
    try {
      const ans = await this.env.lookup(h.host);
      if (this.stopped) return;
      const before = h.addresses.join(',');
      h.addresses = [...new Set(ans.addresses)].slice(0, MAX_ADDRESSES_PER_HOST);
      h.ttlSeconds = ans.ttlSeconds;
      h.resolvedAt = this.now();
      h.lastError = null;
      h.failures = 0;
      delay = refreshDelayMs(ans.ttlSeconds, s);
      this.env.metrics?.inc('weft_proxy_dns_resolutions_total');
      if (h.addresses.join(',') !== before) this.onUpdate(this.endpoints());
    } catch (err) {
      if (this.stopped) return;
      const e = err as NodeJS.ErrnoException;
      h.failures++;
      h.lastError = e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message;
      delay = failureDelayMs(h.failures, s);
      this.env.metrics?.incLabelled('weft_proxy_dns_resolution_failures_total', { cluster: this.cluster });
      this.env.log?.warn('DNS resolution failed', {
        cluster: this.cluster,
        host: h.host,
        error: h.lastError,
        keptAddresses: h.addresses.length,
        retryInMs: delay,
      });
    }
    h.nextAt = this.now() + delay;
    h.timer = setTimeout(() => void this.refresh(h), delay);
    h.timer.unref();
  }

  /** The cluster's endpoints from the latest good answers. */
  endpoints(): Endpoint[] {
    const out: Endpoint[] = [];
    const seen = new Set<string>();
    for (const t of this.targets) {
      const h = this.hosts.get(t.address.toLowerCase());
      if (!h) continue;
      const addrs = this.logical ? h.addresses.slice(0, 1) : h.addresses;
      for (const address of addrs) {
        const key = `${address}:${t.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ ...t, address });
      }
      if (this.logical && out.length > 0) break;
    }
    return out;
  }

  /** Why the cluster has no endpoint, when DNS is the reason; null otherwise. */
  emptyReason(): string | null {
    const failed = [...this.hosts.values()].filter((h) => h.addresses.length === 0);
    if (failed.length === 0) return null;
    return failed
      .map((h) =>
        h.lastError !== null
          ? `DNS resolution of ${h.host} failed: ${h.lastError}`
          : h.resolvedAt === null
            ? `DNS resolution of ${h.host} pending`
            : `${h.host} has no address`,
      )
      .join('; ');
  }

  describe(): Record<string, unknown>[] {
    return [...this.hosts.values()].map((h) => ({
      host: h.host,
      addresses: h.addresses,
      ...(h.ttlSeconds !== null ? { ttlSeconds: h.ttlSeconds } : {}),
      ...(h.resolvedAt !== null ? { resolvedAt: new Date(h.resolvedAt).toISOString() } : {}),
      ...(h.lastError !== null ? { lastError: h.lastError, consecutiveFailures: h.failures } : {}),
      ...(h.nextAt !== null ? { nextRefresh: new Date(h.nextAt).toISOString() } : {}),
    }));
  }

  stop(): void {
    this.stopped = true;
    for (const h of this.hosts.values()) if (h.timer) clearTimeout(h.timer);
  }
}
