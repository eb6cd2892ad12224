/**
 * weft's own way to find the API server and its credentials (ADR 0022), so that the daemons
 * (weftd, the operator, the webhook) never load `@kubernetes/client-node` (~60 MB RSS).
 *
 * - in a pod: the service account (`KUBERNETES_SERVICE_HOST/PORT` and
 *   /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}); the token is a
 *   projected one that the kubelet rotates, so it is re-read every minute and after a 401;
 * - else kubeconfig files: `--kubeconfig`, else `$KUBECONFIG` (a list merged by kubectl's rules:
 *   the first file to name a cluster, user or context, or to set current-context, wins), else
 *   ~/.kube/config; `--context` picks a context. Relative file paths in a kubeconfig resolve
 *   against that kubeconfig's directory, as kubectl resolves them.
 *
 * What it understands: cluster `server`, `certificate-authority(-data)`,
 * `insecure-skip-tls-verify`, `tls-server-name`; user `client-certificate(-data)`,
 * `client-key(-data)`, `token`, `tokenFile`, `username`/`password`. `exec` and `auth-provider`
 * users run programs or cloud SDK logic: the daemons refuse them with a coded error, and
 * weftctl passes in a `plugins` hook that lazily loads client-node for them (cli/kube-plugins.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { WeftError, errorMessage } from '../errors/index.js';

/** Everything a KubeClient needs to reach and authenticate to one API server. */
export interface KubeAccess {
  /** `https://host:port` (or `http://` for a local insecure port), without a trailing slash. */
  server: string;
  tls: TlsAccess;
  /** Headers that authenticate each request; `refresh` after a 401 re-reads rotating credentials. */
  authHeaders(refresh?: boolean): Promise<Record<string, string>> | Record<string, string>;
  /** The context's (or service account's) namespace, when it has one. */
  namespace?: string;
  /** Where this came from, for messages: `in-cluster`, `context kind-weft in ~/.kube/config`. */
  source: string;
}

export interface TlsAccess {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  /** insecure-skip-tls-verify: the server's certificate is not checked at all. */
  insecure?: boolean;
}

type Raw = Record<string, unknown>;

/** A named entry of a kubeconfig, with the directory its relative paths resolve against. */
interface Entry {
  body: Raw;
  dir: string;
  file: string;
}

/** One or more kubeconfig files merged by kubectl's rules. */
export interface Kubeconfig {
  files: string[];
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
  currentContext: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How long a service-account token is used before the file is read again (kubelet rotates it). */
export const TOKEN_REREAD_MS = 60_000;
const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;

/** The kubeconfig files kubectl would read, in its order (they need not exist). */
export function kubeconfigPaths(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  if (explicit !== undefined && explicit !== '') return [explicit];
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (fromEnv.length > 0) return fromEnv;
  return [join(env.HOME ?? homedir(), '.kube', 'config')];
}

/** Parses one kubeconfig file's text; `file` names it in errors and anchors relative paths. */
export function parseKubeconfig(text: string, file: string): Kubeconfig {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw invalid(`${file} is not YAML: ${errorMessage(err)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw invalid(`${file} is not a kubeconfig (not a map)`);
  const root = doc as Raw;
  const dir = dirname(resolve(file));
  const current = root['current-context'];
  return {
    files: [file],
    clusters: namedList(root, 'clusters', 'cluster', file, dir),
    users: namedList(root, 'users', 'user', file, dir),
    contexts: namedList(root, 'contexts', 'context', file, dir),
    currentContext: typeof current === 'string' ? current : '',
  };
}

/** `clusters: [{name, cluster: {...}}]` as a map; the first entry of a repeated name wins. */
function namedList(root: Raw, list: string, field: string, file: string, dir: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const items = root[list] ?? [];
  if (!Array.isArray(items)) throw invalid(`${file}: ${list} is not a list`);
  for (const [i, item] of items.entries()) {
    const named = item as Raw | null;
    if (named === null || typeof named !== 'object' || typeof named.name !== 'string' || named.name === '')
      throw invalid(`${file}: ${list}[${i}] has no name`);
    const body = named[field] ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw invalid(`${file}: ${list}[${i}] (${named.name}) has no ${field} map`);
    if (!out.has(named.name)) out.set(named.name, { body: body as Raw, dir, file });
  }
  return out;
}

/** kubectl's merge: the first file to set a name or current-context wins; later files only add. */
export function mergeKubeconfigs(configs: Kubeconfig[]): Kubeconfig {
  const merged: Kubeconfig = {
    files: [],
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
    currentContext: '',
  };
  for (const kc of configs) {
    merged.files.push(...kc.files);
    if (merged.currentContext === '') merged.currentContext = kc.currentContext;
    for (const key of ['clusters', 'users', 'contexts'] as const)
      for (const [name, entry] of kc[key]) if (!merged[key].has(name)) merged[key].set(name, entry);
  }
  return merged;
}

/**
 * Reads and merges the files kubectl would read (missing ones in a $KUBECONFIG list are skipped,
 * as kubectl skips them); a coded error when none exists or one is unreadable.
 */
export function readKubeconfig(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Kubeconfig {
  const wanted = kubeconfigPaths(explicit, env);
  const files = wanted.filter((f) => existsSync(f));
  if (files.length === 0)
    throw new WeftError('WEFT_KUBECONFIG_MISSING', `no kubeconfig: ${wanted.join(', ')} does not exist`);
  return mergeKubeconfigs(files.map((f) => parseKubeconfig(readText(f), f)));
}

function readText(file: string): string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw invalid(`cannot read kubeconfig ${file}: ${errorMessage(err)}`);
  }
  if (buf.length > MAX_KUBECONFIG_BYTES)
    throw invalid(`kubeconfig ${file} is larger than ${MAX_KUBECONFIG_BYTES} bytes`);
  return buf.toString('utf8');
}

/** How `exec` / `auth-provider` users are handled: daemons pass none and get a coded error. */
export type PluginAuth = (user: Raw, userName: string) => KubeAccess['authHeaders'];

export interface AccessOptions {
  /** `--context`; default the current context. */
  context?: string;
  plugins?: PluginAuth;
}

/** The context's cluster and user as a KubeAccess; coded errors name what is missing. */
export function accessFromKubeconfig(kc: Kubeconfig, opts: AccessOptions = {}): KubeAccess {
  const where = kc.files.join(', ');
  const contextName = opts.context ?? kc.currentContext;
  if (contextName === '')
    throw new WeftError(
      'WEFT_KUBECONFIG_MISSING',
      `kubeconfig ${where} has no current-context; pass --context NAME (it has: ${names(kc.contexts)})`,
    );
  const context = kc.contexts.get(contextName);
  if (!context)
    throw new WeftError(
      'WEFT_KUBECONFIG_MISSING',
      `context ${JSON.stringify(contextName)} is not in ${where} (it has: ${names(kc.contexts)})`,
    );
  const clusterName = str(context.body, 'cluster');
  const cluster = clusterName === undefined ? undefined : kc.clusters.get(clusterName);
  if (!cluster)
    throw invalid(
      `context ${contextName} in ${where} names cluster ${JSON.stringify(clusterName ?? '')}, which is not there`,
    );
  const userName = str(context.body, 'user');
  const user = userName === undefined || userName === '' ? undefined : kc.users.get(userName);
  if (userName !== undefined && userName !== '' && !user)
    throw invalid(
      `context ${contextName} in ${where} names user ${JSON.stringify(userName)}, which is not there`,
    );
  const namespace = str(context.body, 'namespace');
  return {
    server: serverOf(cluster, clusterName!),
    tls: { ...clusterTls(cluster, clusterName!), ...userTls(user, userName ?? '') },
    authHeaders: userAuth(user, userName ?? '', opts.plugins),
    ...(namespace !== undefined && namespace !== '' ? { namespace } : {}),
    source: `context ${contextName} in ${where}`,
  };
}

function serverOf(cluster: Entry, name: string): string {
  const server = str(cluster.body, 'server');
  if (server === undefined || server === '')
    throw invalid(`cluster ${name} in ${cluster.file} has no server`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw invalid(`cluster ${name} in ${cluster.file}: server ${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw invalid(`cluster ${name} in ${cluster.file}: server ${server} is not http(s)`);
  if (cluster.body['proxy-url'] !== undefined)
    throw invalid(`cluster ${name} in ${cluster.file} uses proxy-url, which weft does not support`);
  return server.replace(/\/+$/, '');
}

function clusterTls(cluster: Entry, name: string): TlsAccess {
  const tls: TlsAccess = {};
  const ca = dataOrFile(cluster, 'certificate-authority', `cluster ${name}`);
  if (ca) tls.ca = ca;
  const servername = str(cluster.body, 'tls-server-name');
  if (servername) tls.servername = servername;
  if (cluster.body['insecure-skip-tls-verify'] === true) {
    // kubectl's rule: trusting a CA and trusting anything cannot both be meant
    if (ca)
      throw invalid(
        `cluster ${name} in ${cluster.file} sets both a certificate authority and insecure-skip-tls-verify; keep one`,
      );
    tls.insecure = true;
  }
  return tls;
}

function userTls(user: Entry | undefined, name: string): TlsAccess {
  if (!user) return {};
  const cert = dataOrFile(user, 'client-certificate', `user ${name}`);
  const key = dataOrFile(user, 'client-key', `user ${name}`);
  if ((cert === undefined) !== (key === undefined))
    throw invalid(
      `user ${name} in ${user.file} has a client ${cert ? 'certificate without a key' : 'key without a certificate'}`,
    );
  return cert && key ? { cert, key } : {};
}

function userAuth(user: Entry | undefined, name: string, plugins?: PluginAuth): KubeAccess['authHeaders'] {
  if (!user) return () => ({});
  const body = user.body;
  for (const field of ['as', 'as-groups', 'as-uid', 'as-user-extra'])
    if (body[field] !== undefined)
      throw invalid(`user ${name} in ${user.file} impersonates (${field}), which weft does not support`);
  if (body.exec !== undefined || body['auth-provider'] !== undefined) {
    if (plugins) return plugins(body, name);
    throw new WeftError(
      'WEFT_KUBE_AUTH_UNSUPPORTED',
      `user ${name} in ${user.file} authenticates with ${body.exec !== undefined ? 'exec' : 'auth-provider'}, which weft's daemons do not run: give them a kubeconfig with a token, tokenFile or client certificate, or run them in-cluster with a service account`,
    );
  }
  const token = str(body, 'token');
  if (token) return () => ({ Authorization: `Bearer ${token}` });
  const tokenFile = str(body, 'tokenFile');
  if (tokenFile) return rotatingToken(resolveIn(user.dir, tokenFile));
  const username = str(body, 'username');
  if (username !== undefined) {
    const basic = Buffer.from(`${username}:${str(body, 'password') ?? ''}`).toString('base64');
    return () => ({ Authorization: `Basic ${basic}` });
  }
  return () => ({});
}

/** `X-data` (base64) wins over `X` (a path, relative to the kubeconfig's directory). */
function dataOrFile(entry: Entry, field: string, what: string): Buffer | undefined {
  const data = str(entry.body, `${field}-data`);
  if (data) {
    const buf = Buffer.from(data, 'base64');
    if (buf.length === 0) throw invalid(`${what} in ${entry.file}: ${field}-data is not base64`);
    return buf;
  }
  const path = str(entry.body, field);
  if (!path) return undefined;
  const file = resolveIn(entry.dir, path);
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(`${what} in ${entry.file}: cannot read ${field} ${file}: ${errorMessage(err)}`);
  }
}

function resolveIn(dir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dir, path);
}

/**
 * A bearer token read from a file that someone else rotates (the kubelet's projected
 * service-account token): used for TOKEN_REREAD_MS, then read again; read at once after a 401.
 * A failed re-read keeps the last token (the file is swapped by rename, briefly absent).
 */
export function rotatingToken(file: string, now: () => number = Date.now): KubeAccess['authHeaders'] {
  let token: string | undefined;
  let readAt = 0;
  return (refresh = false) => {
    if (token === undefined || refresh || now() - readAt >= TOKEN_REREAD_MS) {
      try {
        const text = readFileSync(file, 'utf8').trim();
        if (text === '') throw new Error('the file is empty');
        token = text;
        readAt = now();
      } catch (err) {
        if (token === undefined)
          throw new WeftError(
            'WEFT_KUBECONFIG_MISSING',
            `cannot read the token file ${file}: ${errorMessage(err)}`,
          );
      }
    }
    return { Authorization: `Bearer ${token}` };
  };
}

/** In a pod: the service account, as client-go's rest.InClusterConfig reads it. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new WeftError(
      'WEFT_KUBECONFIG_MISSING',
      'not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set',
    );
  const tokenFile = join(dir, 'token');
  const authHeaders = rotatingToken(tokenFile);
  authHeaders(); // fail now, with the path, when the service account is not mounted
  let ca: Buffer;
  try {
    ca = readFileSync(join(dir, 'ca.crt'));
  } catch (err) {
    throw new WeftError(
      'WEFT_KUBECONFIG_MISSING',
      `cannot read the service account's CA: ${errorMessage(err)}`,
    );
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    // the namespace file is optional
  }
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    tls: { ca },
    authHeaders,
    ...(namespace ? { namespace } : {}),
    source: 'in-cluster service account',
  };
}

export interface DefaultAccessOptions extends AccessOptions {
  /** `--kubeconfig FILE`. */
  kubeconfig?: string;
  env?: NodeJS.ProcessEnv;
  /** The service-account directory (tests). */
  serviceAccountDir?: string;
}

/**
 * What a daemon talks to, in controller-runtime's order: --kubeconfig, else $KUBECONFIG, else
 * the service account when in a pod, else ~/.kube/config.
 */
export function loadAccess(opts: DefaultAccessOptions = {}): KubeAccess {
  const env = opts.env ?? process.env;
  const explicit = opts.kubeconfig ?? '';
  if (explicit === '' && (env.KUBECONFIG ?? '') === '' && env.KUBERNETES_SERVICE_HOST)
    return inClusterAccess(env, opts.serviceAccountDir);
  return accessFromKubeconfig(readKubeconfig(explicit === '' ? undefined : explicit, env), opts);
}

function str(body: Raw, field: string): string | undefined {
  const v = body[field];
  return typeof v === 'string' ? v : undefined;
}

function names(map: Map<string, unknown>): string {
  return [...map.keys()].join(', ') || 'none';
}

function invalid(message: string): WeftError {
  return new WeftError('WEFT_KUBECONFIG_INVALID', message);
}
