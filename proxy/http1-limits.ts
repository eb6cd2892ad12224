/**
 * HTTP/1 limits shared by the proxy's two parsers: Node's llhttp for downstream requests
 * (server.ts, inbound/http.ts) and the upstream client's own for responses (upstream/h1parse.ts).
 * One number per limit, so a count one direction accepts is never refused by the other.
 */
import type {
  RequestListener as HttpRequestListener,
  Server as HttpServer,
  ServerOptions as HttpServerOptions,
} from 'node:http';
import { http } from '../pkg/builtins/index.js';
import { serveH2Too, type H2Refusal } from './h2/downstream.js';

/**
 * Header fields per message head (trailers included), requests and responses alike: Envoy's
 * `max_headers_count` default, which Istio does not change. A request over it gets 431 (DPE), a
 * response over it 502 (UPE). Node's own default would be 2000 for requests and none for our
 * responses.
 */
export const MAX_HEADERS_COUNT = 100;

/**
 * Bytes of an upstream response head: status line, header lines and every CRLF up to and including
 * the empty line. Exceeded by one byte → 502 (UPE). (Requests: `maxHeaderBytes` in server.ts.)
 */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/** Bytes of one chunk-size line of a chunked response (size and extensions, without CRLF). */
export const MAX_CHUNK_LINE_BYTES = 4096;

/** The downstream limits a listener may override (tests and the standalone proxy set them). */
export interface DownstreamLimits {
  maxHeaderBytes?: number | undefined;
  headersTimeoutMs?: number | undefined;
  requestTimeoutMs?: number | undefined;
  idleTimeoutMs?: number | undefined;
}

/**
 * node:http server options for a listener that parses requests from a client: the outbound and
 * gateway listeners (server.ts) and the sidecar's inbound side (inbound/http.ts) use the same ones.
 * (Through `createDownstreamServer`, which also sets the header-count limit.)
 */
export function downstreamServerOptions(o: DownstreamLimits) {
  return {
    // Envoy's default header limit is 60 KiB; larger requests get 431
    maxHeaderSize: o.maxHeaderBytes ?? 60 * 1024,
    headersTimeout: o.headersTimeoutMs ?? 10_000,
    // a request (headers + body) must arrive within 5 min (Envoy's stream idle timeout)
    requestTimeout: o.requestTimeoutMs ?? 300_000,
    keepAliveTimeout: o.idleTimeoutMs ?? 60_000,
    // how often header/request timeouts are enforced (Node's default is 30 s)
    connectionsCheckingInterval: Math.min(o.headersTimeoutMs ?? 10_000, 1000),
    noDelay: true,
  };
}

/**
 * The node:http server of a listener that parses requests from a client, with every downstream
 * limit applied: the options above (`extra` adds listener-specific ones) and the header-count
 * limit, which node:http takes as a property rather than an option. `onH2Refused` counts the
 * HTTP/2 requests and sessions refused by the same limits (HTTP/1's go to 'clientError'). The outbound and gateway
 * listeners (server.ts) and the sidecar's inbound side (inbound/http.ts) are made here, so a
 * limit added for one is never missing from the other.
 */
export function createDownstreamServer(
  o: DownstreamLimits,
  extra: HttpServerOptions,
  onRequest: HttpRequestListener,
  onH2Refused?: H2Refusal,
): HttpServer {
  // the limits last: a listener's own options cannot loosen them
  const server = http.createServer({ ...extra, ...downstreamServerOptions(o) }, onRequest);
  // over it: HPE_HEADER_OVERFLOW → 431 DPE (downstreamErrorStatus)
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  // h2c with prior knowledge and h2 after ALPN, on the same handler (proxy/h2/downstream.ts)
  const opts = downstreamServerOptions(o);
  serveH2Too(
    server,
    {
      maxHeaderBytes: opts.maxHeaderSize,
      maxHeaderFields: MAX_HEADERS_COUNT,
      headersTimeoutMs: opts.headersTimeout,
      idleTimeoutMs: opts.keepAliveTimeout,
    },
    onRequest,
    onH2Refused,
  );
  return server;
}

/**
 * The status of a request node:http refused (`clientError`): oversized head or too many header
 * fields 431, header or request timeout 408, anything else malformed (CL/TE conflicts, obs-fold,
 * bad tokens) 400. Answered with flag DPE by both downstream listeners.
 */
export function downstreamErrorStatus(code: string): 400 | 408 | 431 {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return 408;
  return 400;
}
