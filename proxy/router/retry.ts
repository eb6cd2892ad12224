/**
 * Retry decisions, Istio/Envoy semantics (reference §2.3). Pure: the router calls `isRetriable`
 * with what one attempt produced and asks `backoffMs` how long to wait.
 *
 * Istio's default policy (applied when a route sets no `retries`, pilot route/retry ConvertPolicy):
 * 2 retries on connect-failure, refused-stream, unavailable and cancelled, on another host
 * (previous_hosts, not with consistent hashing), backoff 25 ms base capped at 250 ms. Since
 * Istio 1.24 no status code is retried by default: a 503 may come from an app that already
 * acted on a non-idempotent request (istio/istio#52111). `retriable-status-codes` stays in the
 * token list as Istio writes it, with an empty code list, so it matches nothing.
 * Status codes match only real upstream responses: a reset is `reset`, never "503".
 */
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../pkg/proxyconfig/types.js';

export { DEFAULT_RETRY_POLICY };

/** What one upstream attempt ended with. */
export type AttemptOutcome =
  | { kind: 'response'; status: number; grpcStatus?: string }
  | { kind: 'connect-failure' }
  | { kind: 'reset' }
  | { kind: 'per-try-timeout' };

export interface CompiledRetry {
  attempts: number;
  perTryTimeoutMs: number;
  backoffBaseMs: number;
  on5xx: boolean;
  onGatewayError: boolean;
  onReset: boolean;
  onConnectFailure: boolean;
  onRetriable4xx: boolean;
  onRefusedStream: boolean;
  onRateLimited: boolean;
  statusCodes: Set<number>;
  /** gRPC status names mapped to their numeric codes (as strings, how grpc-status carries them). */
  grpcCodes: Set<string>;
}

const GRPC_CODES: Record<string, string> = {
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
};

export function compileRetry(p: RetryPolicy | undefined, routeTimeoutMs: number): CompiledRetry {
  const policy = p ?? DEFAULT_RETRY_POLICY;
  const on = new Set(policy.retryOn);
  const codes = new Set(policy.retriableStatusCodes);
  const grpc = new Set<string>();
  for (const [name, code] of Object.entries(GRPC_CODES)) if (on.has(name)) grpc.add(code);
  return {
    attempts: policy.attempts,
    // perTryTimeout defaults to the route timeout (0 = none)
    perTryTimeoutMs: policy.perTryTimeoutMs ?? routeTimeoutMs,
    backoffBaseMs: policy.backoffBaseMs ?? 25,
    on5xx: on.has('5xx'),
    onGatewayError: on.has('gateway-error'),
    onReset: on.has('reset'),
    onConnectFailure: on.has('connect-failure'),
    onRetriable4xx: on.has('retriable-4xx'),
    onRefusedStream: on.has('refused-stream'),
    onRateLimited: on.has('envoy-ratelimited'),
    statusCodes: on.has('retriable-status-codes') ? codes : new Set(),
    grpcCodes: grpc,
  };
}

export const NO_RETRY: CompiledRetry = compileRetry(
  { attempts: 0, retryOn: [], retriableStatusCodes: [] },
  0,
);

/** Whether the policy's conditions cover this outcome (not counting remaining attempts). */
export function isRetriable(r: CompiledRetry, o: AttemptOutcome): boolean {
  switch (o.kind) {
    case 'connect-failure':
      return r.onConnectFailure || r.on5xx || r.onGatewayError || r.onReset;
    case 'reset':
      return r.onReset || r.on5xx;
    case 'per-try-timeout':
      return r.on5xx || r.onGatewayError || r.onReset;
    case 'response': {
      const s = o.status;
      if (r.on5xx && s >= 500) return true;
      if (r.onGatewayError && (s === 502 || s === 503 || s === 504)) return true;
      if (r.onRetriable4xx && s === 409) return true;
      if (r.statusCodes.has(s)) return true;
      if (o.grpcStatus !== undefined && r.grpcCodes.has(o.grpcStatus)) return true;
      return false;
    }
  }
}

/**
 * Envoy's fully jittered exponential backoff: uniform in [0, base × (2^n − 1)], capped at
 * 10 × base. `retryNumber` is 1 for the first retry.
 */
export function backoffMs(r: CompiledRetry, retryNumber: number, rand: () => number): number {
  const ceiling = Math.min(r.backoffBaseMs * (2 ** retryNumber - 1), r.backoffBaseMs * 10);
  return Math.floor(rand() * ceiling);
}
