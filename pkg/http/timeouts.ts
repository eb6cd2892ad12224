/**
 * Timeouts for weft's servers that face clients it does not trust (the webhook; weftd's
 * discovery and monitoring ports), as `http(s).createServer` options.
 *
 * Node enforces `headersTimeout` and `requestTimeout` only when it sweeps its connections, every
 * `connectionsCheckingInterval` (30 s by default): a documented 10 s cut really came at 10-40 s.
 * Sweeping every second (a quarter of the shortest timeout when that is shorter) makes the cut
 * come when the limit says. `requestTimeout` bounds receiving the request (headers and body),
 * never the response, so a long-lived response stream (weftd's discovery) is not affected.
 * A client cut off gets `408 Request Timeout` and the connection is closed.
 */
export interface ServerTimeouts {
  /** The request line and headers must arrive within this (default 10 s). */
  headersMs: number;
  /** The whole request, body included, must arrive within this (default 15 s). */
  requestMs: number;
  /** An idle keep-alive connection is closed after this (default 30 s). */
  keepAliveMs: number;
}

export const DEFAULT_SERVER_TIMEOUTS: Readonly<ServerTimeouts> = {
  headersMs: 10_000,
  requestMs: 15_000,
  keepAliveMs: 30_000,
};

export function serverTimeoutOptions(overrides: Partial<ServerTimeouts> = {}): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  const t = { ...DEFAULT_SERVER_TIMEOUTS, ...overrides };
  return {
    headersTimeout: t.headersMs,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    connectionsCheckingInterval: Math.max(
      10,
      Math.min(1000, Math.floor(Math.min(t.headersMs, t.requestMs) / 4)),
    ),
  };
}
