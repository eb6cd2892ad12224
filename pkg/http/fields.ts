/**
 * Fields the proxy writes itself on each hop: connection management and message framing. A
 * header operation (VirtualService `headers.{request,response}.{set,add}`) that set one would
 * break the hop it lands on: `transfer-encoding` or `content-length` next to the proxy's own
 * framing desyncs the peer (request smuggling upstream, a response the client cannot delimit),
 * and an HTTP/2 peer refuses every connection-specific field (RFC 9113 §8.2.2). Envoy's
 * connection manager removes them after the route's header operations; the proxy ignores such a
 * `set`/`add` (proxy/router/headers.ts) and the webhook warns at apply time
 * (pkg/validation/virtualservice.ts). Removing one is harmless and stays allowed.
 */
export const PROXY_OWNED_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
  'content-length',
]);

/** True for a field name (any case) the proxy owns on every hop. */
export function isProxyOwnedField(name: string): boolean {
  return PROXY_OWNED_FIELDS.has(name.toLowerCase());
}

/** What HTTP/1.1 forbids in a field value (RFC 9110 §5.5, as node:http checks it): all but HTAB, visible ASCII, obs-text. */
export const FIELD_VALUE_FORBIDDEN = /[^\t\x20-\x7e\x80-\xff]/;

/** Whether a field value can be written at all: node:http throws on CR, LF, NUL or a character above U+00FF. */
export const sendableFieldValue = (v: string): boolean => !FIELD_VALUE_FORBIDDEN.test(v);
