/**
 * `weftctl explain POD[.NS] [METHOD] URL [-H 'k: v']...`: where would this request go, and why?
 * Fetches the config weftd gives that pod's proxy (or reads `--config FILE`), compiles it with
 * the proxy's compiler and runs the proxy's explain on the request without sending anything
 * (cli/explainer.ts).
 */
import { errorMessage, WeftError } from '../../pkg/errors/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import type { Flag } from '../args.js';
import type { CommandIO } from '../command.js';
import {
  explainRequest,
  explainText,
  notAppliedText,
  parseHeader,
  requestFromPositionals,
  type NotAppliedObject,
} from '../explainer.js';
import { inboundText } from '../inboundexplain.js';
import { explainInbound, type InboundQuery } from '../../proxy/inbound/explain.js';
import { loadLocalConfig, parseMeshArgs } from '../meshargs.js';
import { clusterFlagsUsage, connectWeftd, fetchProxyConfig, podRef } from '../weftd.js';

export const explainUsage = `Usage: weftctl explain POD[.NAMESPACE] [METHOD] URL [-H 'name: value']... [-n NAMESPACE] [-o text|json] [flags]
       weftctl explain --config FILE [METHOD] URL [-H 'name: value']...
       weftctl explain POD[.NAMESPACE] --inbound PORT [--from IP] [--peer SPIFFE_ID] [[METHOD] URL [-H ...]]

Evaluates a request against the config the pod's proxy gets from weftd (or a local ProxyConfig /
Istio YAML with --config), with the proxy's own router, without sending it. Prints the listener,
virtual host and route that match and why the rules before it did not, the destinations with
their weights, endpoints and load balancer, rewrites, timeout, retries, faults and mirrors in
force; or 404 NR with the nearest miss. For a gateway, the rate limit its listener applies first
(the limit, local or global with weftd's Redis and failureMode, and the bucket's key).
  URL                 http://HOST[:PORT]/PATH?QUERY (the scheme may be left out); the Host
                      header is HOST[:PORT] unless -H 'host: ...' says otherwise
  -H 'name: value'    a request header (repeatable)
  --listener NAME     the HTTP listener (default: the one on the URL's port, else the first)
  --kind sidecar|gateway
  --inbound PORT      explain a connection TO the pod on this workload port instead: the mTLS
                      mode in force and the PeerAuthentication that decided it, and whether a
                      plaintext client (default) or a mesh mTLS client (--peer) is accepted,
                      how it is served, or why it is refused; then the AuthorizationPolicies:
                      a TCP port's connection, or the request METHOD URL, allowed or denied
                      and by which policy and rule
  --from IP           the client's address (inbound: in that explanation; a gateway: the
                      peer address a per-client-address rate limit is keyed by)
  --peer SPIFFE_ID    the client speaks mesh mTLS as this identity

Exit status: 0 the request is routed (forwarded, redirect or direct response), 1 404 NR, 403
RBAC (an AuthorizationPolicy denies it: the policy and rule are named) or no listener, 2 bad
arguments or weftd unreachable. With --inbound: 0 accepted, 1 refused (mTLS or authorization).

${clusterFlagsUsage}`;

function portArg(v: string): number {
  const n = Number(v);
  if (!/^\d{1,5}$/.test(v) || n < 1 || n > 65535)
    throw new WeftError('WEFT_INPUT_UNREADABLE', `--inbound needs a port 1-65535 (got ${JSON.stringify(v)})`);
  return n;
}

function spiffeArg(v: string): string {
  if (!/^spiffe:\/\/[^/\s]+\/\S+$/.test(v))
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `--peer needs a SPIFFE ID like spiffe://cluster.local/ns/NS/sa/SA (got ${JSON.stringify(v)})`,
    );
  return v;
}

export async function runExplain(argv: string[], io: CommandIO): Promise<number> {
  try {
    const headers: [string, string][] = [];
    let listener: string | undefined;
    let kind: string | undefined;
    let inbound: InboundQuery | undefined;
    let from: string | undefined;
    const inboundQuery = (): InboundQuery => (inbound ??= { port: null });
    const extra = (flag: Flag): boolean => {
      if (flag.name === '-H' || flag.name === '--header') headers.push(parseHeader(flag.value()));
      else if (flag.name === '--listener') listener = flag.value();
      else if (flag.name === '--kind') kind = flag.value();
      else if (flag.name === '--inbound') inboundQuery().port = portArg(flag.value());
      else if (flag.name === '--from') from = flag.value();
      else if (flag.name === '--peer') inboundQuery().peer = spiffeArg(flag.value());
      else return false;
      return true;
    };
    const args = parseMeshArgs(argv, explainUsage, ['text', 'json'], extra);
    if (args.help) {
      io.stdout(`${explainUsage}\n`);
      return 0;
    }
    if (kind !== undefined && kind !== 'sidecar' && kind !== 'gateway')
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `--kind must be sidecar or gateway (got ${JSON.stringify(kind)})`,
      );
    if (inbound !== undefined && inbound.port === null)
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        '--peer explains an inbound connection: add --inbound PORT',
      );
    if (inbound !== undefined && from !== undefined) inbound.from = from;
    let config: ProxyConfig;
    let request: string[];
    // a standalone config limits its listeners as a gateway does (weft-proxy run)
    let gatewayLike = true;
    let rateLimitRedis: string | undefined;
    // objects weftd leaves out of this config (they fail validation): named under the answer
    let notApplied: NotAppliedObject[] = [];
    if (args.configFile !== undefined) {
      config = loadLocalConfig(args.configFile, io);
      request = args.positionals;
    } else {
      const [pod, ...rest] = args.positionals;
      if (pod === undefined)
        throw new WeftError(
          'WEFT_INPUT_UNREADABLE',
          `POD[.NAMESPACE] and a URL are required (or --config FILE)\n\n${explainUsage}`,
        );
      request = rest;
      // argument errors first: no cluster round trip for a typo
      if (inbound === undefined || rest.length > 0) requestFromPositionals(request);
      const target = connectWeftd(args.cluster);
      const ref = podRef(pod, args.namespace, target.defaultNamespace);
      const answer = await fetchProxyConfig(target, ref.namespace, ref.pod, kind);
      config = answer.config!;
      gatewayLike = answer.kind === 'gateway';
      rateLimitRedis = answer.rateLimitRedis;
      notApplied = Array.isArray(answer.notApplied) ? answer.notApplied : [];
    }
    const withNotApplied = <T extends object>(report: T): T | (T & { notApplied: NotAppliedObject[] }) =>
      notApplied.length > 0 ? { ...report, notApplied } : report;
    if (inbound !== undefined) {
      if (request.length > 0)
        inbound.request = { ...requestFromPositionals(request), headers: Object.fromEntries(headers) };
      const e = explainInbound(config, { ...inbound, ...(rateLimitRedis ? { rateLimitRedis } : {}) });
      io.stdout(
        args.output === 'json'
          ? `${JSON.stringify(withNotApplied(e), null, 2)}\n`
          : inboundText(e) + notAppliedText(notApplied),
      );
      return e.accepted ? 0 : 1;
    }
    const { method, url } = requestFromPositionals(request);
    const report = explainRequest(config, {
      method,
      url,
      headers,
      ...(listener !== undefined ? { listener } : {}),
      listenerRateLimits: gatewayLike,
      ...(from !== undefined ? { from } : {}),
      ...(rateLimitRedis !== undefined ? { rateLimitRedis } : {}),
    });
    if (args.output === 'json') io.stdout(`${JSON.stringify(withNotApplied(report), null, 2)}\n`);
    else io.stdout(explainText(report) + notAppliedText(notApplied));
    return report.routed ? 0 : 1;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 2;
  }
}
