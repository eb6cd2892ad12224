/**
 * weftd's monitoring port (istiod's 15014), plain HTTP, for the kubelet, Prometheus and people:
 *
 * - `GET /ready`: 200 once every informer has listed and the serving certificate is loaded;
 *   503 with the reason otherwise (which kinds are still listing, or the TLS problem).
 * - `GET /metrics`: Prometheus text (controlplane/metrics.ts).
 * - `GET /debug/config?namespace=NS&pod=NAME[&kind=sidecar|gateway]`: the config that proxy
 *   would get now, as JSON (kind defaults to gateway for pods with a `weft.dev/gateway` label),
 *   and `notApplied`: the mesh objects that could reach it but fail validation, so are not in it
 *   as written (`instead`: the fail-closed stand-in enforced for a security object).
 * - `GET /debug/connections`: the connected proxies, their versions (sent and current), push
 *   counts and ACK state (sent/acked/nacked with nonce and time), and the registry's event counts
 *   (events, ignoredEvents: no-op changes that produced no push).
 *
 * Not authenticated: like istiod's, the port must not be exposed outside the cluster network.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ProxyKind } from '../pkg/discovery/protocol.js';
import { redactCredentials } from '../pkg/proxyconfig/types.js';
import { serverTimeoutOptions, type ServerTimeouts } from '../pkg/http/timeouts.js';
import type { Logger } from '../pkg/log/index.js';
import type { ConnectionInfo, DiscoveryService } from './discovery.js';
import { badRequestTarget, requestUrl } from './discovery.js';
import type { WeftdMetrics } from './metrics.js';
import type { KubeRegistry } from './registry.js';
import { reachOf } from './statuswriter.js';
import { firstError, VALIDATED_KINDS, type NotApplied } from './validity.js';
import { DEFAULT_ROOT_NAMESPACE } from '../pkg/translate/authz.js';
import { failClosed, failClosedText } from '../pkg/translate/failclosed.js';

export interface Readiness {
  ready: boolean;
  reason?: string;
  [detail: string]: unknown;
}

export interface MonitoringOptions {
  readiness: () => Readiness;
  metrics: WeftdMetrics;
  discovery: DiscoveryService;
  registry: KubeRegistry;
  log: Logger;
  /** Defaults: headers 10 s, whole request 15 s (Node's own are 60 s and 300 s), idle keep-alive 30 s. */
  timeouts?: Partial<ServerTimeouts>;
  /** The global rate-limit Redis (`host:port`), named in /debug/config for weftctl explain. */
  rateLimitRedis?: string;
  /** The mesh's root namespace (mesh-wide policies); default weft-system. */
  rootNamespace?: string;
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
};

/** Gateway pods rendered by the operator carry `weft.dev/gateway`; everything else is a sidecar. */
export const GATEWAY_POD_LABEL = 'weft.dev/gateway';

function debugConfig(opts: MonitoringOptions, url: URL, res: ServerResponse): void {
  const namespace = url.searchParams.get('namespace') ?? '';
  const podName = url.searchParams.get('pod') ?? '';
  if (namespace === '' || podName === '') {
    json(res, 400, { code: 'WEFT_DISCOVERY_REQUEST_INVALID', message: 'namespace and pod are required' });
    return;
  }
  const pod = opts.registry.pod(namespace, podName);
  if (!pod) {
    json(res, 404, { code: 'WEFT_POD_UNKNOWN', message: `weftd does not know pod ${namespace}/${podName}` });
    return;
  }
  const asked = url.searchParams.get('kind');
  if (asked !== null && asked !== 'sidecar' && asked !== 'gateway') {
    json(res, 400, { code: 'WEFT_DISCOVERY_REQUEST_INVALID', message: 'kind must be sidecar or gateway' });
    return;
  }
  const kind: ProxyKind = asked ?? (pod.labels[GATEWAY_POD_LABEL] !== undefined ? 'gateway' : 'sidecar');
  // the connected proxy's config, with what it subscribed to on demand
  const generated = opts.discovery.configOfPod(kind, namespace, podName);
  const leftOut = notApplied(opts, namespace);
  // credentials' private keys are never shown (this port is not authenticated)
  json(res, 200, {
    kind,
    version: generated?.version,
    config: redactCredentials(generated?.config),
    ...(leftOut.length > 0 ? { notApplied: leftOut } : {}),
    ...(opts.rateLimitRedis !== undefined ? { rateLimitRedis: opts.rateLimitRedis } : {}),
  });
}

/** Objects listed in one answer at most (the rest are in `weft_weftd_registry_events_total`). */
const MAX_NOT_APPLIED = 50;

/**
 * The mesh objects that could reach proxies of `namespace` but fail validation, so are in none
 * of their configs (validity.ts): `weftctl explain` names them. Verdicts are memoised: no
 * validation runs here.
 */
function notApplied(opts: MonitoringOptions, namespace: string): NotApplied[] {
  const root = opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const out: NotApplied[] = [];
  for (const kind of VALIDATED_KINDS)
    for (const obj of opts.registry.list(kind)) {
      const result = opts.registry.validation(obj);
      if (result.errors.length === 0 || !reachOf(obj, root)(namespace)) continue;
      const closed = failClosed(obj, result.errors, root);
      out.push({
        kind,
        namespace: obj.metadata.namespace ?? '',
        name: obj.metadata.name,
        error: firstError(result),
        errors: result.errors.length,
        ...(closed !== null ? { instead: failClosedText(obj, closed, root) } : {}),
      });
      if (out.length >= MAX_NOT_APPLIED) return out;
    }
  return out;
}

/**
 * The connected proxies, each with `currentVersion`: what weftd would send it now (null when the
 * pod is unknown), so `weftctl proxy-status` can tell SYNCED from STALE.
 */
function connections(opts: MonitoringOptions): (ConnectionInfo & { currentVersion: string | null })[] {
  return opts.discovery.list().map((c) => {
    let currentVersion: string | null = null;
    try {
      currentVersion = opts.discovery.configOfStream(c.id)?.version ?? null;
    } catch {
      // a config that cannot be built is never sent either: the proxy is stale against nothing
    }
    return { ...c, currentVersion };
  });
}

export function createMonitoringServer(opts: MonitoringOptions): Server {
  return createServer(serverTimeoutOptions(opts.timeouts), (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req, 'http://weftd');
    if (url === null) return json(res, 400, { message: badRequestTarget(req).message });
    if (req.method !== 'GET') return json(res, 405, { message: 'GET only' });
    switch (url.pathname) {
      case '/ready': {
        const r = opts.readiness();
        return json(res, r.ready ? 200 : 503, r);
      }
      case '/metrics':
        void opts.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text),
          (err: unknown) => json(res, 500, { message: String(err) }),
        );
        return;
      case '/debug/config':
        return debugConfig(opts, url, res);
      case '/debug/connections':
        return json(res, 200, {
          generation: opts.registry.generation,
          pushCycles: opts.discovery.pushCycles,
          // informer events of kinds that can trigger, and those that changed nothing a config reads
          events: opts.registry.events,
          ignoredEvents: opts.registry.ignoredEvents,
          connections: connections(opts),
        });
      default:
        return json(res, 404, {
          message: 'no such endpoint (/ready, /metrics, /debug/config?namespace=&pod=, /debug/connections)',
        });
    }
  });
}
