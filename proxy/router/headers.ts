/**
 * Header handling on the forwarding path: hop-by-hop stripping (RFC 9110 §7.6.1 / RFC 7230
 * §6.1), and Istio's `headers.request/response.{set,add,remove}` compiled into one function per
 * route/destination (null when there is nothing to do, so the hot path skips it).
 */
import { PROXY_OWNED_FIELDS } from '../../pkg/http/fields.js';
import type { HeaderOps } from '../../pkg/proxyconfig/types.js';

export type HeaderMap = Record<string, string | string[] | undefined>;
export type HeaderOpFn = (h: HeaderMap) => void;

/** Connection-scoped headers never forwarded. `host` is rewritten separately. */
export const HOP_BY_HOP: Readonly<Record<string, true>> = {
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  'proxy-authenticate': true,
  'proxy-authorization': true,
  te: true,
  trailer: true,
  'transfer-encoding': true,
  upgrade: true,
  'http2-settings': true,
};

/**
 * Request headers Envoy removes from external requests (header sanitizing; the edge-only ones
 * included, since a gateway's external clients are the edge): they steer retries, timeouts,
 * stats and tracing in Envoy, and a client outside the mesh must not set them for the upstream.
 */
export const EXTERNAL_UNTRUSTED: readonly string[] = [
  'x-envoy-decorator-operation',
  'x-envoy-downstream-service-cluster',
  'x-envoy-downstream-service-node',
  'x-envoy-retriable-status-codes',
  'x-envoy-retriable-header-names',
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-force-trace',
  'x-envoy-ip-tags',
  'x-envoy-original-url',
  'x-envoy-hedge-on-per-try-timeout',
  // Istio's gateways: forwardClientCertDetails SANITIZE_SET. A client's own value is never
  // forwarded (an app would take it for the gateway's word); the gateway sets it from a verified
  // client certificate (MUTUAL, ISTIO_MUTUAL)
  'x-forwarded-client-cert',
];

/** Removes EXTERNAL_UNTRUSTED from forwarded request headers (already lowercase keys). */
export function sanitizeExternal(h: HeaderMap): void {
  for (const k of EXTERNAL_UNTRUSTED) delete h[k];
}

/**
 * Connection-scoped response headers never forwarded downstream: Envoy's set for responses
 * (Connection, Upgrade, Keep-Alive, Proxy-Connection, Transfer-Encoding), plus TE and
 * HTTP2-Settings, request fields an app has no business answering with that node:http2 refuses to
 * send (RFC 9113 §8.2.2): one would fail the stream of an HTTP/2 client. Proxy-Authenticate passes,
 * as in Envoy (its challenge is for whoever chose the proxy, RFC 9110 §11.7.1).
 */
const RESPONSE_HOP_BY_HOP: Readonly<Record<string, true>> = {
  connection: true,
  'keep-alive': true,
  'proxy-connection': true,
  'transfer-encoding': true,
  upgrade: true,
  trailer: true,
  te: true,
  'http2-settings': true,
};

/**
 * The connection-options a `Connection` field names (RFC 9110 §7.6.1), lowercase. Every one is
 * a hop-by-hop header of this connection, whatever the length of the field value.
 */
export function connectionOptions(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const line of typeof value === 'string' ? [value] : value)
    for (const token of line.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') out.push(name);
    }
  return out;
}

/** Nominated fields kept on the request object: the proxy reads them itself (framing, Host, upgrades). */
const KEPT_WHEN_NOMINATED: Readonly<Record<string, true>> = {
  ...HOP_BY_HOP,
  host: true,
  'content-length': true,
};

/**
 * Removes, in place, the client's fields its `Connection` header nominates (RFC 9110 §7.6.1),
 * before authentication and authorization read the request: a policy must decide on the headers
 * the app will get, and the headers the proxy adds afterwards (JWT claim outputs, ext-authz
 * headers) must not be nameable away. Hop-by-hop, framing and Host fields stay for the proxy's own
 * use; they are never forwarded as they are.
 */
export function dropNominatedFields(h: HeaderMap): void {
  if (h.connection === undefined) return;
  const kept: string[] = [];
  for (const name of connectionOptions(h.connection)) {
    if (KEPT_WHEN_NOMINATED[name] === true || name === 'close') kept.push(name);
    else delete h[name];
  }
  // the options are spent: forwarding must not remove what the proxy sets under those names
  if (kept.length > 0) h.connection = kept.join(', ');
  else delete h.connection;
}

function copyWithout(
  src: HeaderMap,
  hop: Readonly<Record<string, true>>,
  dropHost: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in src) {
    const v = src[k];
    // an HTTP/2 request's pseudo-header fields (`:path`...) are that hop's framing, never fields
    if (v === undefined || hop[k] === true || (dropHost && k === 'host') || k.charCodeAt(0) === 58) continue;
    out[k] = v;
  }
  // a proxy MUST remove the fields the Connection header names before forwarding (RFC 9110
  // §7.6.1): `Connection: x-secret` keeps X-Secret on this hop. Only what the peer sent is
  // removed: the callers add their own headers (XFCC, x-forwarded-proto, trace context, header
  // ops, rate-limit fields) afterwards, so a client or app cannot name those away
  for (const name of connectionOptions(src.connection)) delete out[name];
  return out;
}

/**
 * The request headers to forward: without hop-by-hop headers, without `host` (set from the
 * route decision), and without any header the `Connection` header names.
 */
export function forwardableHeaders(src: HeaderMap): HeaderMap {
  return copyWithout(src, HOP_BY_HOP, true);
}

/**
 * The response headers to pass downstream, on every response path (outbound, gateway, the
 * sidecar's inbound hop): the same rules for a response. Connection-nominated fields go too,
 * as RFC 9110 §7.6.1 asks (Envoy removes them from requests only).
 */
export function withoutHopByHop(src: HeaderMap): Record<string, string | string[]> {
  return copyWithout(src, RESPONSE_HOP_BY_HOP, false);
}

/**
 * Fields a trailer section must not carry (RFC 9110 §6.5.1: framing, routing and connection
 * fields), besides the hop-by-hop ones. Node's HTTP/2 server throws from inside the stream's end,
 * past any try around addTrailers, on a connection-specific trailer: an upstream that sent one
 * would take the whole proxy down.
 */
const NOT_A_TRAILER: Readonly<Record<string, true>> = {
  ...HOP_BY_HOP,
  'content-length': true,
  'content-type': true,
  'content-encoding': true,
  host: true,
};

/** The upstream trailers to pass downstream: no pseudo-headers, no framing or hop-by-hop fields. */
export function forwardableTrailers(src: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in src) {
    const v = src[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* : */ || NOT_A_TRAILER[k.toLowerCase()]) continue;
    out[k] = v;
  }
  return out;
}

/** Compiles one ops block; order is Envoy's: remove, then set, then add (appending). */
export function compileHeaderOps(ops: HeaderOps | undefined): HeaderOpFn | null {
  if (!ops) return null;
  const remove = (ops.remove ?? []).map((n) => n.toLowerCase());
  const entry = ([k, v]: [string, string]): readonly [string, string] => [fieldName(k), fieldValue(k, v)];
  // a field the proxy frames itself: ignored, as Envoy's connection manager drops it (fields.ts)
  const settable = ([k]: readonly [string, string]): boolean => !PROXY_OWNED_FIELDS.has(k);
  const set = Object.entries(ops.set ?? {})
    .map(entry)
    .filter(settable);
  const add = Object.entries(ops.add ?? {})
    .map(entry)
    .filter(settable);
  if (remove.length === 0 && set.length === 0 && add.length === 0) return null;
  return (h) => {
    for (const k of remove) delete h[k];
    for (const [k, v] of set) h[k] = v;
    for (const [k, v] of add) {
      const cur = h[k];
      if (cur === undefined) h[k] = v;
      else if (Array.isArray(cur)) h[k] = [...cur, v];
      else h[k] = [cur, v];
    }
  };
}

const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A header name a config sets or adds, lowercased; throws when HTTP does not allow it. */
function fieldName(name: string): string {
  if (!FIELD_NAME.test(name))
    throw new Error(`header name ${JSON.stringify(name.slice(0, 64))} is not an HTTP token`);
  return name.toLowerCase();
}

/**
 * A configured header value as the bytes go on the wire. Headers here are byte strings (one char
 * per byte, as node:http parses them), so text beyond ASCII is sent as its UTF-8 bytes, as Envoy
 * sends it. A CR, LF, NUL or other control character would end the field and inject another (or
 * make node:http throw while writing a response): the config is refused instead (it got past
 * validation: created before the webhook ran, or with it off).
 */
function fieldValue(name: string, value: string): string {
  let ascii = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f)
      throw new Error(`header ${name}: the value has a control character (CR, LF, NUL...) HTTP forbids`);
    if (c > 0x7f) ascii = false;
  }
  return ascii ? value : Buffer.from(value, 'utf8').toString('latin1');
}

/** Chains non-null op functions (route level first, then destination level). */
export function chainOps(a: HeaderOpFn | null, b: HeaderOpFn | null): HeaderOpFn | null {
  if (a === null) return b;
  if (b === null) return a;
  return (h) => {
    a(h);
    b(h);
  };
}
