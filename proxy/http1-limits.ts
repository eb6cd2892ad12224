/**
 * HTTP/1 limits shared by the proxy's two parsers: Node's llhttp for downstream requests
 * (server.ts) and the upstream client's own for responses (upstream/h1parse.ts). One number per
 * limit, so a count one direction accepts is never refused by the other.
 */

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
