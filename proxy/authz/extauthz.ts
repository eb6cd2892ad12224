/**
 * CUSTOM action: one check against an Istio `envoyExtAuthzHttp` provider, as Envoy's HTTP
 * ext_authz filter makes it. The check request has the original method and `pathPrefix` + the
 * original path and query, no body (`content-length: 0`), and the headers Envoy always sends
 * (host, method and path are the request line; `content-length`, `authorization`), plus those matched by
 * `includeRequestHeadersInCheck` and the fixed `includeAdditionalHeadersInCheck`.
 *
 * A 2xx allows: response headers matched by `headersToUpstreamOnAllow` are set on the request
 * going upstream. Any other status denies with that status and body, plus the response headers
 * matched by `headersToDownstreamOnDeny`. A provider that cannot be reached, times out
 * (`timeout`, default 600 s as Istio), or sends more than MAX_BODY: `failOpen` allows,
 * otherwise `statusOnError` (default 403) denies.
 */
import type { IncomingHttpHeaders as HttpIncomingHttpHeaders } from 'node:http';
import { http } from '../../pkg/builtins/index.js';
import type { AuthzString, ExtAuthzHttpProvider } from '../../pkg/proxyconfig/types.js';

/** The largest provider response body kept for a denial. */
export const MAX_BODY = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 600_000;

export interface ExtAuthzRequest {
  method: string;
  /** The request target as received: path and query. */
  target: string;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
}

export type ExtAuthzResult =
  | { ok: true; upstreamHeaders: Record<string, string> }
  | { ok: false; status: number; body: Buffer; headers: Record<string, string>; error?: string };

function nameMatcher(forms: AuthzString[] | undefined): (name: string) => boolean {
  if (!forms || forms.length === 0) return () => false;
  return (n) =>
    forms.some((f) =>
      'exact' in f
        ? n === f.exact
        : 'prefix' in f
          ? n.startsWith(f.prefix)
          : 'suffix' in f
            ? n.endsWith(f.suffix)
            : true,
    );
}

/** Precompiled header selectors of a provider (built once per config). */
export interface PreparedProvider {
  p: ExtAuthzHttpProvider;
  include: (n: string) => boolean;
  toUpstream: (n: string) => boolean;
  toDownstream: (n: string) => boolean;
  next: number;
}

export function prepareProvider(p: ExtAuthzHttpProvider): PreparedProvider {
  return {
    p,
    include: nameMatcher(p.includeRequestHeadersInCheck),
    toUpstream: nameMatcher(p.headersToUpstreamOnAllow),
    toDownstream: nameMatcher(p.headersToDownstreamOnDeny),
    next: 0,
  };
}

function pick(res: HttpIncomingHttpHeaders, want: (n: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res)) {
    if (v === undefined || !want(k)) continue;
    out[k] = Array.isArray(v) ? v.join(',') : v;
  }
  return out;
}

/** One check; never rejects. */
export function checkExtAuthz(pp: PreparedProvider, req: ExtAuthzRequest): Promise<ExtAuthzResult> {
  const p = pp.p;
  const failure = (error: string): ExtAuthzResult =>
    p.failOpen === true
      ? { ok: true, upstreamHeaders: {} }
      : { ok: false, status: p.statusOnError ?? 403, body: Buffer.alloc(0), headers: {}, error };
  if (p.endpoints.length === 0) return Promise.resolve(failure(`${p.service}:${p.port} has no endpoints`));
  const ep = p.endpoints[pp.next++ % p.endpoints.length]!;
  const headers: Record<string, string> = { 'content-length': '0' };
  const host = req.headers.host;
  if (typeof host === 'string') headers.host = host;
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k === 'host' || k === 'content-length' || k === 'transfer-encoding') continue;
    if (k === 'authorization' || pp.include(k)) headers[k] = Array.isArray(v) ? v.join(',') : v;
  }
  for (const [k, v] of Object.entries(p.includeAdditionalHeadersInCheck ?? {})) headers[k.toLowerCase()] = v;
  const path = `${p.pathPrefix ?? ''}${req.target}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ExtAuthzResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const creq = http.request(
      { host: ep.address, port: ep.port, method: req.method, path, headers, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            res.destroy();
            return done(failure(`provider response body over ${MAX_BODY} bytes`));
          }
          chunks.push(c);
        });
        res.on('error', (e) => done(failure(e.message)));
        res.on('end', () => {
          if (status >= 200 && status < 300)
            done({ ok: true, upstreamHeaders: pick(res.headers, pp.toUpstream) });
          else
            done({
              ok: false,
              status: status >= 100 && status <= 599 ? status : 403,
              body: Buffer.concat(chunks),
              headers: pick(res.headers, pp.toDownstream),
            });
        });
      },
    );
    const timer = setTimeout(() => {
      creq.destroy();
      done(failure(`no answer from ${ep.address}:${ep.port} within ${p.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`));
    }, p.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    creq.on('error', (e) => done(failure(`${ep.address}:${ep.port}: ${e.message}`)));
    creq.end();
  });
}
