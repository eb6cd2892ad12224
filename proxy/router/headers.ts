/**
 * Header handling on the forwarding path: hop-by-hop stripping (RFC 9110 §7.6.1 / RFC 7230
 * §6.1), and Istio's `headers.request/response.{set,add,remove}` compiled into one function per
 * route/destination (null when there is nothing to do, so the hot path skips it).
 */
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
 * Copies `src` into a new object without hop-by-hop headers, without `host`, and without any
 * header the `connection` header names (so a client cannot smuggle e.g. `x-request-id` removal).
 */
export function forwardableHeaders(src: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const k in src) {
    if (HOP_BY_HOP[k] === true || k === 'host') continue;
    out[k] = src[k];
  }
  const conn = src.connection;
  if (typeof conn === 'string' && conn.length > 10) {
    // "keep-alive" and "close" are the only common values; anything longer names extra headers
    for (const name of conn.split(',')) delete out[name.trim().toLowerCase()];
  }
  return out;
}

/** Compiles one ops block; order is Envoy's: remove, then set, then add (appending). */
export function compileHeaderOps(ops: HeaderOps | undefined): HeaderOpFn | null {
  if (!ops) return null;
  const remove = (ops.remove ?? []).map((n) => n.toLowerCase());
  const set = Object.entries(ops.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  const add = Object.entries(ops.add ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
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

/** Chains non-null op functions (route level first, then destination level). */
export function chainOps(a: HeaderOpFn | null, b: HeaderOpFn | null): HeaderOpFn | null {
  if (a === null) return b;
  if (b === null) return a;
  return (h) => {
    a(h);
    b(h);
  };
}
