/**
 * How weftctl reaches weftd's debug endpoints (monitoring port 15014, controlplane/monitoring.ts):
 *
 * - through the API server's service proxy, with the user's kubeconfig:
 *   `/api/v1/namespaces/<mesh ns>/services/http:weftd:15014/proxy/debug/...`. Only RBAC `get` on
 *   `services/proxy` in the mesh namespace is needed, and nothing has to be port-forwarded;
 * - or straight to `--weftd-address http://HOST:PORT` (tests, port-forwards). The API server
 *   refuses to proxy to loopback endpoints, so a weftd on 127.0.0.1 is only reachable this way.
 *
 * Every failure becomes one coded error that says what to do (install the mesh, which RBAC verb
 * is missing, weftd not ready), never a raw HTTP status.
 */
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import { ApiError, KubeClient } from '../pkg/kube/client.js';
import {
  accessFromKubeconfig,
  kubeconfigPaths,
  readKubeconfig,
  type Kubeconfig,
} from '../pkg/kube/kubeconfig.js';
import { clientNodePlugins } from './kube-plugins.js';
import type { ProxyConfig } from '../pkg/proxyconfig/types.js';
import type { NotAppliedObject } from './explainer.js';
import type { Flag } from './args.js';

export const DEFAULT_MESH_NAMESPACE = 'weft-system';
export const WEFTD_SERVICE = 'weftd';
export const WEFTD_MONITORING_PORT = 15014;

/** Flags shared by every command that talks to a mesh. */
export interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
  meshNamespace: string;
  weftdAddress?: string;
}

export const clusterFlagsUsage = `Reaching weftd:
  --kubeconfig FILE         kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
  --context NAME            kubeconfig context (default: its current context)
  --mesh-namespace NS       where weftd runs (default ${DEFAULT_MESH_NAMESPACE}); reached through the API
                            server's service proxy (RBAC: get services/proxy in NS)
  --weftd-address URL       talk to weftd's monitoring port directly, e.g. http://127.0.0.1:15014
                            (after kubectl port-forward); no kubeconfig needed`;

/** Consumes a cluster flag into `into`; false when `flag` is not one. */
export function clusterFlag(flag: Flag, into: ClusterFlags): boolean {
  switch (flag.name) {
    case '--kubeconfig':
      into.kubeconfig = flag.value();
      return true;
    case '--context':
      into.context = flag.value();
      return true;
    case '--mesh-namespace':
      into.meshNamespace = flag.value();
      return true;
    case '--weftd-address':
      into.weftdAddress = parseWeftdAddress(flag.value());
      return true;
    default:
      return false;
  }
}

/** `http://host:port` (a trailing slash is dropped); anything else is a usage error. */
export function parseWeftdAddress(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `--weftd-address must be a URL like http://127.0.0.1:15014 (got ${JSON.stringify(text)})`,
    );
  }
  if (url.protocol !== 'http:')
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `--weftd-address must be http:// (weftd's monitoring port is plain HTTP), got ${url.protocol}`,
    );
  return `${url.origin}${url.pathname.replace(/\/$/, '')}`;
}

/** The kubeconfig files weftctl would read, in kubectl's order; empty when there are none. */
export function kubeconfigFiles(flags: ClusterFlags, env: NodeJS.ProcessEnv = process.env): string[] {
  return kubeconfigPaths(flags.kubeconfig, env);
}

/** A kubeconfig and the context weftctl uses in it. */
export interface LoadedKubeconfig {
  config: Kubeconfig;
  context: string;
}

/**
 * Loads the kubeconfig (KUBECONFIG=a:b merged as kubectl merges it: the first file to set a
 * name or the current context wins) and the context the flags name; a coded error when there is
 * none, with what to do.
 */
export function loadKubeConfig(flags: ClusterFlags, env: NodeJS.ProcessEnv = process.env): LoadedKubeconfig {
  let config: Kubeconfig;
  try {
    config = readKubeconfig(flags.kubeconfig, env);
  } catch (err) {
    if (err instanceof WeftError && err.code === 'WEFT_KUBECONFIG_MISSING')
      throw new WeftError(
        'WEFT_KUBECONFIG_MISSING',
        `no kubeconfig: ${kubeconfigFiles(flags, env).join(', ')} does not exist; pass --kubeconfig FILE, set KUBECONFIG, or use --weftd-address http://HOST:PORT`,
      );
    throw new WeftError('WEFT_KUBECONFIG_MISSING', `cannot read kubeconfig: ${errorMessage(err)}`);
  }
  const where = config.files.join(', ');
  const context = flags.context ?? config.currentContext;
  if (!config.contexts.has(context))
    throw new WeftError(
      'WEFT_KUBECONFIG_MISSING',
      flags.context !== undefined
        ? `context ${JSON.stringify(flags.context)} is not in ${where} (it has: ${[...config.contexts.keys()].join(', ') || 'none'})`
        : `kubeconfig ${where} has no current context with a cluster; pass --context NAME`,
    );
  return { config, context };
}

/** A client for the loaded context; exec / auth-provider users load client-node then, lazily. */
function kubeClientFor(loaded: LoadedKubeconfig): KubeClient {
  return new KubeClient(
    accessFromKubeconfig(loaded.config, { context: loaded.context, plugins: clientNodePlugins }),
  );
}

/** One proxy as weftd's `/debug/connections` lists it. */
export interface ProxyConnection {
  id: number;
  kind: 'sidecar' | 'gateway';
  namespace: string;
  pod: string;
  serviceAccount: string;
  remote: string;
  connectedAt: string;
  version: string | null;
  /** What weftd would send it now (added for proxy-status; absent from older weftds). */
  currentVersion?: string | null;
  pushes: number;
  state: string;
  /** The proxy answers pushes with ACK/NACK (absent from older weftds; false: an older proxy). */
  acks?: boolean;
  /** The newest push, ACK and NACK on this stream (absent from older weftds). */
  sent?: PushRecord | null;
  acked?: PushRecord | null;
  nacked?: (PushRecord & { error: string }) | null;
}

export interface PushRecord {
  version: string;
  nonce: string;
  at: string;
}

export interface ConnectionsAnswer {
  generation: number;
  connections: ProxyConnection[];
}

export interface DebugConfigAnswer {
  kind: 'sidecar' | 'gateway';
  version?: string;
  config?: ProxyConfig;
  /** weftd's global rate-limit Redis (`host:port`), when it runs one. */
  rateLimitRedis?: string;
  /** Mesh objects that could reach this proxy but fail validation: not in its config. */
  notApplied?: NotAppliedObject[];
}

/** A GET of a weftd debug path (`/debug/connections`, ...) that returns the parsed JSON. */
export type WeftdGet = (pathAndQuery: string) => Promise<unknown>;

/** The weftd endpoint the flags point at, and the namespace that pod names default to. */
export interface WeftdTarget {
  get: WeftdGet;
  /** The kubeconfig context's namespace, else `default`. */
  defaultNamespace: string;
  /** For messages: where weftd was reached. */
  describe: string;
}

export function connectWeftd(flags: ClusterFlags, env: NodeJS.ProcessEnv = process.env): WeftdTarget {
  if (flags.weftdAddress !== undefined) return directTarget(flags.weftdAddress, flags, env);
  const kc = loadKubeConfig(flags, env);
  const kube = kubeClientFor(kc);
  const ns = flags.meshNamespace;
  const base = `/api/v1/namespaces/${encodeURIComponent(ns)}/services/http:${WEFTD_SERVICE}:${WEFTD_MONITORING_PORT}/proxy`;
  return {
    defaultNamespace: contextNamespace(kc),
    describe: `service ${ns}/${WEFTD_SERVICE} through ${kube.server}`,
    get: async (path) => {
      try {
        return await kube.request('GET', `${base}${path}`);
      } catch (err) {
        throw proxyError(err, ns, path);
      }
    },
  };
}

function contextNamespace(kc: LoadedKubeconfig): string {
  const ns = kc.config.contexts.get(kc.context)?.body.namespace;
  return typeof ns === 'string' && ns !== '' ? ns : 'default';
}

/** With --weftd-address, the namespace default still follows the kubeconfig when there is one. */
function directTarget(address: string, flags: ClusterFlags, env: NodeJS.ProcessEnv): WeftdTarget {
  let defaultNamespace = 'default';
  try {
    defaultNamespace = contextNamespace(loadKubeConfig(flags, env));
  } catch {
    // no kubeconfig is fine here: weftd is reached without the API server
  }
  return {
    defaultNamespace,
    describe: address,
    get: async (path) => {
      let res: Response;
      try {
        res = await fetch(`${address}${path}`, { signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        const cause = networkCause(err);
        throw new WeftError(
          'WEFT_WEFTD_UNREACHABLE',
          `cannot reach weftd at ${address}: ${cause}; is the port-forward running?`,
        );
      }
      const text = await res.text();
      if (res.status >= 200 && res.status < 300) return parseJson(text, address);
      throw weftdAnswerError(res.status, text, path);
    },
  };
}

/** fetch says only "fetch failed"; the socket's code (ECONNREFUSED, ...) is in its cause. */
function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? errorMessage(err);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new WeftError(
      'WEFT_WEFTD_ANSWER',
      `${where} did not answer with JSON (is it weftd's monitoring port?): ${text.slice(0, 200)}`,
    );
  }
}

/** weftd's own error answers are `{code?, message}`; keep its code in the message. */
function weftdAnswerError(status: number, text: string, path: string): WeftError {
  let message = text.slice(0, 300).trim();
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    message =
      body.code && !(body.message ?? '').startsWith(body.code)
        ? `${body.code}: ${body.message}`
        : (body.message ?? message);
  } catch {
    // not JSON: the raw text says more than nothing
  }
  if (status === 503) return new WeftError('WEFT_WEFTD_UNREACHABLE', `weftd is not ready: ${message}`);
  return new WeftError('WEFT_WEFTD_ANSWER', `weftd answered ${status} to GET ${path}: ${message}`);
}

/**
 * The API server's answers through the service proxy: its own Status objects (Service missing,
 * RBAC, no endpoints) are told apart from weftd's answers relayed with their status.
 */
export function proxyError(err: unknown, meshNamespace: string, path: string): WeftError {
  if (!(err instanceof ApiError))
    return new WeftError('WEFT_WEFTD_UNREACHABLE', errorMessage(err), { cause: err });
  const msg = err.message;
  if (err.status === 0)
    return new WeftError('WEFT_WEFTD_UNREACHABLE', `cannot reach the API server: ${msg}`, { cause: err });
  if (err.status === 401)
    return new WeftError(
      'WEFT_RBAC_DENIED',
      `the API server does not accept these credentials (401); log in again or check --context`,
    );
  if (err.status === 403)
    return new WeftError(
      'WEFT_RBAC_DENIED',
      `the API server refused the service proxy to weftd: weftctl needs RBAC verb "get" on resource "services/proxy" in namespace ${meshNamespace} (kubectl auth can-i get services/proxy -n ${meshNamespace}). Server said: ${afterStatus(msg)}`,
    );
  if (err.status === 404 && /services? "?weftd"? not found/.test(msg))
    return new WeftError(
      'WEFT_MESH_NOT_INSTALLED',
      `there is no Service ${WEFTD_SERVICE} in namespace ${meshNamespace}: is the mesh installed? (kubectl get mesh); pass --mesh-namespace if weftd runs elsewhere`,
    );
  if (err.status === 503 || err.status === 502 || /no endpoints available/.test(msg))
    return new WeftError(
      'WEFT_WEFTD_UNREACHABLE',
      `weftd is not ready (kubectl -n ${meshNamespace} get pods -l app=weftd): ${afterStatus(msg)}`,
    );
  return new WeftError(
    'WEFT_WEFTD_ANSWER',
    `weftd answered ${err.status} to GET ${path}: ${afterStatus(msg)}`,
  );
}

/** ApiError messages start `GET /api/v1/...: 404 NotFound: `; the part after it is the news. */
function afterStatus(message: string): string {
  const m = /: \d{3} [^:]*: (.*)$/s.exec(message);
  return (m?.[1] ?? message).trim();
}

export async function fetchConnections(target: WeftdTarget): Promise<ConnectionsAnswer> {
  const body = (await target.get('/debug/connections')) as Partial<ConnectionsAnswer>;
  if (!Array.isArray(body.connections))
    throw new WeftError(
      'WEFT_WEFTD_ANSWER',
      `${target.describe}: /debug/connections has no connections list`,
    );
  return { generation: body.generation ?? 0, connections: body.connections };
}

export async function fetchProxyConfig(
  target: WeftdTarget,
  namespace: string,
  pod: string,
  kind?: string,
): Promise<DebugConfigAnswer> {
  const q = new URLSearchParams({ namespace, pod, ...(kind !== undefined ? { kind } : {}) });
  const body = (await target.get(`/debug/config?${q.toString()}`)) as Partial<DebugConfigAnswer>;
  if (body.config === undefined || body.config === null)
    throw new WeftError(
      'WEFT_WEFTD_ANSWER',
      `weftd has no config for pod ${namespace}/${pod} (its config could not be built; see weftd's log)`,
    );
  return body as DebugConfigAnswer;
}

/** `POD.NS` or `POD` (then `-n`, else the default namespace); pod names may hold dots, so NS is after the last one. */
export function podRef(
  text: string,
  namespaceFlag: string | undefined,
  defaultNamespace: string,
): { pod: string; namespace: string } {
  const dot = text.lastIndexOf('.');
  if (dot > 0 && dot < text.length - 1) {
    const namespace = text.slice(dot + 1);
    // with -n naming another namespace, the dots are part of the pod's name
    if (namespaceFlag === undefined || namespaceFlag === namespace)
      return { pod: text.slice(0, dot), namespace };
    return { pod: text, namespace: namespaceFlag };
  }
  if (text === '' || dot === 0 || dot === text.length - 1)
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `${JSON.stringify(text)} is not a pod (POD or POD.NAMESPACE)`,
    );
  return { pod: text, namespace: namespaceFlag ?? defaultNamespace };
}

/** The proxy port whose `/certs` weftctl reads (the Prometheus port: bound on the pod IP). */
export const PROXY_CERTS_PORT = 15090;

/**
 * GET of a proxy's `/certs`: through the API server's pod proxy
 * (`/api/v1/namespaces/NS/pods/POD:15090/proxy/certs`, RBAC `get pods/proxy`), or straight to
 * `proxyAddress` (`http://HOST:PORT` after a port-forward, tests).
 */
export async function fetchProxyCerts(
  flags: ClusterFlags,
  namespace: string,
  pod: string,
  proxyAddress?: string,
): Promise<unknown> {
  if (proxyAddress !== undefined) {
    let res: Response;
    try {
      res = await fetch(`${proxyAddress}/certs`, { signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new WeftError(
        'WEFT_WEFTD_UNREACHABLE',
        `cannot reach the proxy at ${proxyAddress}: ${networkCause(err)}`,
      );
    }
    const text = await res.text();
    if (res.status === 200) return parseJson(text, proxyAddress);
    throw new WeftError(
      'WEFT_WEFTD_ANSWER',
      `the proxy at ${proxyAddress} answered ${res.status}: ${text.slice(0, 300)}`,
    );
  }
  const kube = kubeClientFor(loadKubeConfig(flags));
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${PROXY_CERTS_PORT}/proxy/certs`;
  try {
    return await kube.request('GET', path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403)
      throw new WeftError(
        'WEFT_RBAC_DENIED',
        `the API server refused the pod proxy: weftctl needs RBAC verb "get" on "pods/proxy" in namespace ${namespace}. Server said: ${afterStatus(err.message)}`,
      );
    if (err instanceof ApiError && err.status === 404)
      throw new WeftError(
        'WEFT_WEFTD_ANSWER',
        `pod ${namespace}/${pod} has no /certs on port ${PROXY_CERTS_PORT} (no such pod, or no weft proxy in it): ${afterStatus(err.message)}`,
      );
    throw new WeftError(
      'WEFT_WEFTD_UNREACHABLE',
      `cannot reach pod ${namespace}/${pod}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}
