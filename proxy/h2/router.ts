/**
 * What the router (router/exchange.ts) does differently for a gRPC request: the status it
 * records, and how long it waits.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { encodeGrpcMessage, isGrpcRequest, parseGrpcTimeout } from './grpc.js';
import { endWithHead } from './downstream.js';

/** The gRPC state of one request: its status once known ('' until then). */
export interface GrpcReply {
  status: string;
  /** A fault's `grpcStatus`: the status of the local reply whatever the HTTP mapping says. */
  forced?: string;
}

/** A GrpcReply for a gRPC request, null for anything else. */
export function grpcReply(headers: IncomingHttpHeaders): GrpcReply | null {
  return isGrpcRequest(headers) ? { status: '' } : null;
}

/**
 * The `grpc_response_status` label: a status code 0–16 as the upstream sent it; anything else
 * (absent: the stream was cut; garbage from a broken upstream) is 2, UNKNOWN, as a gRPC client
 * reads it. Bounded: an upstream cannot mint label values.
 */
export function grpcStatusLabel(status: string): string {
  return /^(?:[0-9]|1[0-6])$/.test(status) ? status : '2';
}

/**
 * The request's timeout: the route's, or the client's `grpc-timeout` when that is sooner (a
 * gRPC deadline the proxy enforces too, as Envoy's grpc_timeout_header_max does with no cap;
 * 0 = none). The header goes upstream unchanged, so the server sees the deadline too.
 */
export function grpcTimeoutMs(g: GrpcReply | null, headers: IncomingHttpHeaders, routeMs: number): number {
  if (g === null) return routeMs;
  const client = parseGrpcTimeout(headers['grpc-timeout']);
  if (client === null || client === 0) return routeMs;
  return routeMs > 0 ? Math.min(routeMs, client) : client;
}

/**
 * Sends a gRPC error as a trailers-only response (HTTP 200, no body) with `grpc-status` and
 * `grpc-message`; `extra` headers go along (the response flags, rate-limit headers); `contentType`:
 * a gRPC-Web client's (h2/grpc-web.ts). Nothing when the response already started.
 */
export function sendGrpcError(
  res: ServerResponse,
  status: string,
  message: string,
  extra: Readonly<Record<string, string | string[]>>,
  contentType = 'application/grpc',
): void {
  if (res.headersSent || res.destroyed) return;
  const h: Record<string, string | string[]> = { ...extra };
  delete h['content-length']; // the reply has no body, whatever a refusal's own headers said
  Object.assign(h, {
    'content-type': contentType,
    'grpc-status': status,
    'grpc-message': encodeGrpcMessage(message),
  });
  if (endWithHead(res, 200, h)) return;
  res.writeHead(200, h);
  res.end();
}
