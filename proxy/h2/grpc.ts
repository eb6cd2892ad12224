/**
 * gRPC on the router's path: which requests are gRPC, the status of a local reply as a gRPC
 * client reads it, and the `grpc-timeout` request header. Envoy's conventions (and gRPC's own
 * doc/http-grpc-status-mapping.md, which Envoy's Grpc::Utility::httpToGrpcStatus implements).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** `application/grpc`, `application/grpc+proto`, `application/grpc-web...` (the bridge is not done). */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return (
    typeof ct === 'string' && ct.startsWith('application/grpc') && !ct.startsWith('application/grpc-web')
  );
}

/** The gRPC status of a local reply with HTTP status `http` (gRPC's mapping; anything else UNKNOWN). */
export function grpcStatusOfHttp(http: number): number {
  switch (http) {
    case 200:
      return 0;
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/**
 * `grpc-message` is percent-encoded (gRPC's HTTP/2 protocol doc): every byte outside printable
 * ASCII, and `%` itself. Bounded so a long local-reply detail cannot make a huge header.
 */
export function encodeGrpcMessage(text: string): string {
  const bytes = Buffer.from(text.length > 1024 ? text.slice(0, 1024) : text, 'utf8');
  let out = '';
  for (const b of bytes)
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/**
 * The `grpc-timeout` header in milliseconds (`TimeoutValue TimeoutUnit`: at most 8 digits, one
 * of H M S m u n), or null when absent or malformed (Envoy ignores a malformed one). A positive
 * timeout below 1 ms counts as 1 ms, so it still bounds the request.
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | null {
  if (typeof value !== 'string') return null;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return null;
  const ms = Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
  if (ms === 0) return 0;
  // 99999999H is 11,400 years; node's timers fire at once past 2^31-1 ms (24.8 days)
  return Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(ms)));
}

/** The longest delay node's timers keep (a longer one fires after 1 ms, with a warning). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * `grpc-timeout` for a number of milliseconds (what is left of the deadline, sent upstream), in
 * the largest unit that keeps the value exact, within the header's 8 digits.
 */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole <= 99_999_999) return `${whole}m`;
  const seconds = Math.ceil(whole / 1000);
  return seconds <= 99_999_999 ? `${seconds}S` : `${Math.ceil(seconds / 60)}M`;
}
