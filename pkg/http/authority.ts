/**
 * What an HTTP authority (Host, `:authority`) may be: one check for the proxy's door
 * (proxy/router/target.ts refuses such a request with 400 DPE), its upstream clients (a rewrite
 * that makes one is answered 503 DPE, never sent) and validation (a `rewrite.authority` that can
 * never be sent is warned about: Istio accepts any value there).
 */

// RFC 3986 reg-name: unreserved / pct-encoded / sub-delims
const REG_NAME = /^[A-Za-z0-9\-._~%!$&'()*+,;=]+$/;
const IPV6_BODY = /^[0-9A-Fa-f:.]+$/;
const PORT = /^[0-9]{1,5}$/;

/** `uri-host [":" port]` as Envoy's header validator accepts it; userinfo never. */
export function validAuthority(value: string): boolean {
  if (value === '' || value.indexOf('@') >= 0) return false;
  let rest: string;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.lastIndexOf(']');
    if (close < 2 || !IPV6_BODY.test(value.slice(1, close))) return false;
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(':');
    const host = colon < 0 ? value : value.slice(0, colon);
    if (!REG_NAME.test(host)) return false;
    rest = colon < 0 ? '' : value.slice(colon);
  }
  if (rest === '') return true;
  if (rest.charCodeAt(0) !== 0x3a /* : */ || !PORT.test(rest.slice(1))) return false;
  const port = Number(rest.slice(1));
  return port >= 1 && port <= 65535;
}
