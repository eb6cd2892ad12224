/**
 * Hosts the sidecar could not resolve on demand (ADR 0023): the outbound capture held a request
 * whose Host its config lacks, and neither weftd's answer nor a config that routes it came in
 * time. Passed through, the request would leave without the mesh's routing and mTLS, so the
 * capture hands the connection to the router marked with the name, and the router answers
 * 503 NC saying why instead of its usual 404 NR (or the passthrough ALLOW_ANY would take).
 */
import type net from 'node:net';
import { onDemandHostName } from '../../pkg/discovery/protocol.js';

const unresolved = new WeakMap<net.Socket, string>();

/** Called by the outbound capture before it hands the connection to the router. */
export function markUnresolved(socket: net.Socket, hostName: string): void {
  unresolved.set(socket, hostName);
}

/** Why a request for `authority` on this connection is refused, or null when it is not. */
export function unresolvedDetail(socket: net.Socket, authority: string): string | null {
  const name = unresolved.get(socket);
  if (name === undefined || onDemandHostName(authority) !== name) return null;
  return (
    `host "${name}" is not in this sidecar's config, and weftd did not provide it in time ` +
    '(on-demand hosts): refused rather than sent without the mesh routing and mTLS; ' +
    'see weft_proxy_ondemand_requests_total and weftd'
  );
}
