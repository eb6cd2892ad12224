/**
 * The downstream request head as routing sees it: which authority and which path a request is
 * for, computed once per request from the request-target (RFC 9112 §3.2) and the Host header,
 * then used for matching, rewriting and forwarding alike.
 *
 * - origin-form `/p?q`: authority from Host, path normalized (path.ts), query kept raw;
 * - absolute-form `http://app:8080/p?q`: the target's authority replaces Host (RFC 9112 §3.2.2,
 *   Envoy's codec), forwarded in origin form; only `http` on this plain-text listener;
 * - asterisk-form `OPTIONS *`: a question for the proxy itself, not routed (404, as Envoy);
 * - anything else (authority-form outside CONNECT, `GET *`, a fragment, an unknown scheme): 400.
 *
 * Host is validated as Envoy's header validator does (RFC 9110 §7.2 uri-host [":" port]): one
 * Host field only, no userinfo, reg-name / IPv4 or a bracketed IPv6 literal, a port of 1-65535.
 * A request without Host is refused unless its target names the authority. Pure: no I/O.
 */
import { validAuthority } from '../../pkg/http/authority.js';
import { normalizePath, type PathNormalization } from './path.js';

export { validAuthority };

export interface RequestHead {
  form: 'origin' | 'absolute';
  /** The authority the request is for (Host, or the absolute-form target's). */
  authority: string;
  /** Normalized path without query: what routes match and rewrites act on. */
  path: string;
  /** Raw query without '?', '' when absent. Never normalized. */
  query: string;
  /** The origin-form target sent upstream: `path`, then the query exactly as received. */
  target: string;
}

/** Why a head is refused: DPE = 400 malformed; NR = 404 (asterisk-form, not routed). */
export interface HeadRejection {
  status: 400 | 404;
  flag: 'DPE' | 'NR';
  detail: string;
}

export type HeadResult = RequestHead | HeadRejection;

export function isRejection<T extends object>(h: T | HeadRejection): h is HeadRejection {
  return typeof (h as Partial<HeadRejection>).status === 'number';
}

const bad = (detail: string): HeadRejection => ({ status: 400, flag: 'DPE', detail });

/** The one Host value, or a rejection (several Host fields, or an invalid one). undefined = none. */
function hostOf(values: readonly string[]): string | undefined | HeadRejection {
  if (values.length === 0) return undefined;
  if (values.length > 1) return bad(`${values.length} Host header fields (RFC 9112 §3.2 allows one)`);
  const host = values[0]!;
  if (!validAuthority(host))
    return bad(
      host.indexOf('@') >= 0
        ? `Host ${JSON.stringify(host)} carries userinfo`
        : `Host ${JSON.stringify(host)} is not uri-host[:port]`,
    );
  return host;
}

interface Split {
  authority: string | undefined;
  rawPath: string;
  query: string;
  search: string;
}

/** Splits an origin-form or absolute-form target; a rejection for every other form. */
function splitTarget(method: string, url: string): Split | HeadRejection {
  if (url.indexOf('#') >= 0) return bad('the request-target has a #fragment (Envoy rejects it)');
  const first = url.charCodeAt(0);
  if (first === 0x2f /* / */) return splitPathQuery(undefined, url);
  if (url === '*') {
    return method === 'OPTIONS'
      ? { status: 404, flag: 'NR', detail: 'OPTIONS * asks about the proxy itself; it is not routed' }
      : bad(`asterisk-form is for OPTIONS only, not ${method}`);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (scheme === null)
    return bad(
      `request-target ${JSON.stringify(url.slice(0, 100))} is neither origin-form nor absolute-form`,
    );
  const name = scheme[1]!.toLowerCase();
  if (name !== 'http')
    return bad(`absolute-form scheme ${name} on a plain-text listener (only http is accepted)`);
  const start = scheme[0].length;
  let end = start;
  while (end < url.length && url[end] !== '/' && url[end] !== '?') end++;
  const authority = url.slice(start, end);
  if (!validAuthority(authority))
    return bad(`request-target authority ${JSON.stringify(authority)} is not uri-host[:port] (no userinfo)`);
  // RFC 9112 §3.2.1: an empty path is sent as "/"
  const rest = url.slice(end);
  return splitPathQuery(authority, rest === '' || rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest);
}

function splitPathQuery(authority: string | undefined, pathAndQuery: string): Split {
  const q = pathAndQuery.indexOf('?');
  return q < 0
    ? { authority, rawPath: pathAndQuery, query: '', search: '' }
    : {
        authority,
        rawPath: pathAndQuery.slice(0, q),
        query: pathAndQuery.slice(q + 1),
        search: pathAndQuery.slice(q),
      };
}

/**
 * The head of one request: authority, normalized path, raw query and the target to forward, or
 * why it is refused. `hosts` is every Host field value received, in order.
 */
export function parseRequestHead(
  method: string,
  url: string,
  hosts: readonly string[],
  mode: PathNormalization,
): HeadResult {
  const host = hostOf(hosts);
  if (typeof host === 'object') return host;
  const split = splitTarget(method, url);
  if ('status' in split) return split;
  const authority = split.authority ?? host;
  if (authority === undefined) return bad('no Host header (RFC 9112 §3.2 requires one)');
  const path = normalizePath(split.rawPath, mode);
  if (path === null)
    return bad(`path ${JSON.stringify(split.rawPath.slice(0, 100))} cannot be normalized safely (${mode})`);
  return {
    form: split.authority === undefined ? 'origin' : 'absolute',
    authority,
    path,
    query: split.query,
    target: path + split.search,
  };
}

/**
 * The port a request was addressed to (route `port` matches): the authority's, 80 when the
 * authority names none (HTTP's default), the listener's when there is no authority at all.
 */
export function authorityPort(authority: string, fallback: number): number {
  const colon = authority.lastIndexOf(':');
  if (colon < 0 || authority.endsWith(']')) return authority === '' ? fallback : 80;
  const p = Number(authority.slice(colon + 1));
  return Number.isInteger(p) && p > 0 && p < 65536 ? p : 80;
}

/** Every Host field value of a node:http request, in order (node keeps only the first in `headers`). */
export function hostValues(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') out.push(rawHeaders[i + 1]!);
  }
  return out;
}
