/**
 * Outlier detection, Envoy/Istio semantics (reference §2.7), as a pure state machine with an
 * injected clock so unit tables can drive it:
 * - every 5xx (and every locally originated failure: connect refused/timeout, reset) counts
 *   towards `consecutive5xxErrors` (default 5, 0 disables);
 * - 502/503/504 and local failures also count towards `consecutiveGatewayErrors` (off by default);
 * - any other response resets both counters;
 * - ejection lasts baseEjectionTime × times-ejected, capped at max(300 s, base);
 * - at most maxEjectionPercent of hosts are ejected, but one host can always be ejected;
 * - ejected hosts return on the first `tick()` (run every `interval`) after their time is up.
 */
import type { OutlierDetection } from '../../pkg/proxyconfig/types.js';

export interface OutlierSettings {
  consecutive5xx: number;
  consecutiveGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

const MAX_EJECTION_MS = 300_000;

export function outlierSettings(od: OutlierDetection | undefined): OutlierSettings | null {
  if (!od) return null;
  return {
    consecutive5xx: od.consecutive5xxErrors ?? 5,
    consecutiveGateway: od.consecutiveGatewayErrors ?? 0,
    intervalMs: od.intervalMs ?? 10_000,
    baseEjectionMs: od.baseEjectionTimeMs ?? 30_000,
    maxEjectionPercent: od.maxEjectionPercent ?? 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}

export interface HostHealth {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejected: boolean;
  ejectedUntil: number;
  timesEjected: number;
}

export function newHostHealth(): HostHealth {
  return { consecutive5xx: 0, consecutiveGateway: 0, ejected: false, ejectedUntil: 0, timesEjected: 0 };
}

/** `status` 0 = locally originated failure (no response). Returns true when the host was just ejected. */
export function recordOutcome(
  s: OutlierSettings,
  host: HostHealth,
  status: number,
  pool: { ejectedCount: number; size: number },
  now: number,
): boolean {
  const local = status === 0;
  if (!local && status < 500) {
    host.consecutive5xx = 0;
    host.consecutiveGateway = 0;
    return false;
  }
  host.consecutive5xx++;
  if (local || status === 502 || status === 503 || status === 504) host.consecutiveGateway++;
  else host.consecutiveGateway = 0;
  if (host.ejected) return false;
  const tripped =
    (s.consecutive5xx > 0 && host.consecutive5xx >= s.consecutive5xx) ||
    (s.consecutiveGateway > 0 && host.consecutiveGateway >= s.consecutiveGateway);
  if (!tripped || !mayEject(s, pool)) return false;
  host.ejected = true;
  host.timesEjected++;
  host.ejectedUntil =
    now + Math.min(s.baseEjectionMs * host.timesEjected, Math.max(MAX_EJECTION_MS, s.baseEjectionMs));
  host.consecutive5xx = 0;
  host.consecutiveGateway = 0;
  return true;
}

function mayEject(s: OutlierSettings, pool: { ejectedCount: number; size: number }): boolean {
  if (pool.ejectedCount === 0) return true; // Envoy always allows one ejection
  return (pool.ejectedCount / pool.size) * 100 < s.maxEjectionPercent;
}

/** Returns hosts to their pool once their ejection time is over; returns how many came back. */
export function tick(hosts: HostHealth[], now: number): number {
  let back = 0;
  for (const h of hosts) {
    if (h.ejected && now >= h.ejectedUntil) {
      h.ejected = false;
      back++;
    }
  }
  return back;
}

/**
 * Whether ejected hosts should be ignored because too few are healthy (panic mode). With Istio's
 * default minHealthPercent 0 this never triggers, so an all-ejected pool answers 503 UH.
 */
export function inPanic(s: OutlierSettings, healthy: number, size: number): boolean {
  return s.minHealthPercent > 0 && size > 0 && (healthy / size) * 100 < s.minHealthPercent;
}
