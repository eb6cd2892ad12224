/**
 * DNS settings of the proxy config (ProxyConfig.dns, Cluster.type STRICT_DNS / LOGICAL_DNS):
 * defaults and the checks shared by the config validator and the proxy's resolver
 * (proxy/upstream/dns.ts). No npm imports: the proxy loads this (ADR 0009).
 */
import { isIP } from 'node:net';
import type { DnsSettings } from './types.js';

/** Istio's meshConfig.dnsRefreshRate default. */
export const DEFAULT_DNS_REFRESH_MS = 60_000;
/** Envoy's dns_min_refresh_rate default. */
export const DEFAULT_DNS_MIN_REFRESH_MS = 5_000;
/** weft's own cap on a TTL (Envoy has none): a long TTL still refreshes every 5 minutes. */
export const DEFAULT_DNS_MAX_REFRESH_MS = 300_000;
/** c-ares' default per-attempt timeout. */
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;
/** Addresses kept per resolved host: an answer can never grow a cluster without bound. */
export const MAX_ADDRESSES_PER_HOST = 64;

export interface ResolvedDnsSettings {
  servers: string[] | null;
  refreshRateMs: number;
  minRefreshMs: number;
  maxRefreshMs: number;
  timeoutMs: number;
}

export function resolveDnsSettings(s: DnsSettings | undefined): ResolvedDnsSettings {
  const refreshRateMs = s?.refreshRateMs ?? DEFAULT_DNS_REFRESH_MS;
  const minRefreshMs = s?.minRefreshMs ?? Math.min(DEFAULT_DNS_MIN_REFRESH_MS, refreshRateMs);
  return {
    servers: s?.servers && s.servers.length > 0 ? [...s.servers] : null,
    refreshRateMs,
    minRefreshMs,
    maxRefreshMs: Math.max(s?.maxRefreshMs ?? DEFAULT_DNS_MAX_REFRESH_MS, minRefreshMs),
    timeoutMs: s?.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS,
  };
}

/** `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:5353` → null if valid, else why not. */
export function checkDnsServer(v: string): string | null {
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(v);
  const plain = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(v);
  const [ip, port] = bracket ? [bracket[1]!, bracket[2]] : plain ? [plain[1]!, plain[2]] : [v, undefined];
  if (isIP(ip) === 0) return 'must be an IP address, optionally with :port ([ipv6]:port)';
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return 'port must be 1-65535';
  return null;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** A host name the resolver may be asked for (RFC 1123 labels, ≤ 253 characters, optional final dot). */
export function isDnsHostName(v: string): boolean {
  const name = v.endsWith('.') ? v.slice(0, -1) : v;
  if (name === '' || name.length > 253) return false;
  return name.split('.').every((l) => LABEL.test(l));
}
