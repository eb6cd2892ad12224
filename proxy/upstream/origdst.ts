/**
 * Where a request "was going", for ORIGINAL_DST clusters (ServiceEntry resolution NONE): the
 * original destination the sidecar's outbound capture read from the connection
 * (SO_ORIGINAL_DST, proxy/native), remembered per socket when the connection is handed to the
 * HTTP router; without one (standalone mode, or no native addon), a Host that is an IP address
 * (with its port, else the service port) — never at a gateway, where Host comes from outside the
 * mesh and would let any client reach any inside address. A Host name is never resolved here: the app resolved
 * it already when it connected, and a proxy that resolved names from Host would let any client
 * pick any destination. Unknown → null → 503 UH.
 */
import { isIP } from 'node:net';
import type net from 'node:net';

const captured = new WeakMap<net.Socket, { address: string; port: number }>();

/** Called by the capture listener for a connection it hands to the router. */
export function rememberOriginalDst(socket: net.Socket, dst: { address: string; port: number }): void {
  captured.set(socket, { address: dst.address, port: dst.port });
}

export function requestOriginalDst(
  socket: net.Socket,
  authority: string,
  servicePort: number | undefined,
  /** false at a gateway (edge listener): an outside client's Host must never pick an inside address. */
  hostFallback = true,
): { address: string; port: number } | null {
  const c = captured.get(socket);
  if (c !== undefined) return c;
  if (!hostFallback) return null;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(authority) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (m === null || isIP(m[1]!) === 0) return null;
  const port = m[2] !== undefined ? Number(m[2]) : servicePort;
  if (port === undefined || port < 1 || port > 65535) return null;
  return { address: m[1]!, port };
}
