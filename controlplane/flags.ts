/**
 * weftd's command line and its mesh config file (`mesh.yaml` from ConfigMap weft-mesh-config,
 * written by the operator's render()). Both are checked up front: a bad flag or an unreadable
 * file stops weftd with a coded message naming the flag or field, never a half-started server.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DISCOVERY_PORT, MONITORING_PORT } from '../pkg/discovery/protocol.js';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import { parseDurationMs } from '../pkg/translate/duration.js';
import { parseRedisAddress } from '../pkg/ratelimit/global.js';
import {
  PATH_NORMALIZATION_TYPES,
  PROXY_HEADERS_FIELDS,
  type PathNormalizationType,
  type ProxyHeadersSetting,
} from '../pkg/proxyconfig/types.js';
import {
  DEFAULT_ROOT_NAMESPACE,
  parseExtensionProviders,
  type MeshExtAuthzProvider,
} from '../pkg/translate/authz.js';

export const HELP = `weftd: weft's control plane (discovery, config push, workload certificates)

  --config FILE            mesh config (mesh.yaml: trustDomain, rootNamespace, mtls.mode, workloadCertTTL, telemetry,
                           pathNormalization.normalization, extensionProviders,
                           defaultConfig.gatewayTopology.numTrustedProxies, defaultConfig.proxyHeaders,
                           defaultConfig.onDemandHosts);
                           default: built-in defaults (trust domain cluster.local, 24h certificates)
  --tls-dir DIR            serving certificate DIR/tls.crt and key DIR/tls.key (default /etc/weft/tls);
                           reloaded when the files change
  --kubeconfig FILE        cluster to watch (default: in-cluster, else $KUBECONFIG or ~/.kube/config)
  --host ADDR              listen address of both ports (default 0.0.0.0)
  --port N                 discovery and certificates, HTTPS (default ${DISCOVERY_PORT}; 0 picks a free one)
  --monitoring-port N      /ready, /metrics, /debug, plain HTTP (default ${MONITORING_PORT}; 0 picks a free one)
  --domain-suffix SUFFIX   cluster DNS suffix (default cluster.local)
  --ca-secret NS/NAME      root CA Secret the workload CA signs with (default weft-system/weft-root-ca)
  --push-debounce DUR      quiet time after a change before pushing (default 100ms, like PILOT_DEBOUNCE_AFTER)
  --push-debounce-max DUR  push at the latest this long after the first change of a burst (default 10s)
  --status-lease NS/NAME   Lease electing the one replica that writes mesh objects' status
  --ratelimit-redis HOST:PORT  Redis keeping global rate-limit buckets (RateLimit scope: global, memquota
                           mesh-wide); default none: global limits are off
  --ratelimit-redis-password-file FILE  AUTH with this password (a mounted Secret; re-read per connection)
  --ratelimit-redis-username NAME       Redis 6 ACL user for AUTH (default: Redis's default user)
                           (default weft-system/weftd-status; none: write no status)
  --webhook-port N         also serve the admission webhooks (validate, inject) on this HTTPS port, in
                           this process (the combined control plane, ADR 0024; default: off)
  --webhook-tls-dir DIR    their serving certificate DIR/tls.crt, DIR/tls.key (default /etc/weft/webhook-tls)
Env: DISABLE_SHADOW_HOST_SUFFIX=false appends -shadow to mirrored requests' Host (istiod's
switch; default true: the original Host, as Istio ≥ 1.28).
Logs: JSON on stderr; WEFT_LOG_FORMAT=text, WEFT_LOG_LEVEL=debug|info|warn.`;

export interface MeshSettings {
  trustDomain: string;
  /**
   * Istio's meshConfig.rootNamespace (weft's control-plane namespace): its PeerAuthentications and
   * AuthorizationPolicies without a selector are mesh-wide.
   */
  rootNamespace: string;
  mtlsMode: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  workloadCertTtlMs: number;
  telemetry: { metrics: boolean; accessLog: boolean; tracingSamplingPercent: number };
  /** Pushed to every proxy (Istio's meshConfig.pathNormalization); DEFAULT is read as BASE. */
  pathNormalization: { normalization: Exclude<PathNormalizationType, 'DEFAULT'> };
  /** Istio's meshConfig.extensionProviders (envoyExtAuthzHttp ones), for CUSTOM policies. */
  extensionProviders: MeshExtAuthzProvider[];
  /**
   * Istio's meshConfig.defaultConfig.gatewayTopology.numTrustedProxies: proxies in front of the
   * gateways, so `remote.ip` / `remoteIpBlocks` read x-forwarded-for (0 = the peer address).
   */
  gatewayNumTrustedProxies: number;
  /** Pushed to every proxy (Istio's meshConfig.defaultConfig.proxyHeaders); {} = every header on. */
  proxyHeaders: ProxyHeadersSetting;
  /**
   * On-demand hosts (ADR 0023, `defaultConfig.onDemandHosts`): a sidecar starts with its own
   * namespace and the hosts its Sidecar names exactly, and asks weftd for the others when the app
   * calls them. On by default (ADR 0023, amended 2026-12-07).
   */
  onDemandHosts: boolean;
}

export const DEFAULT_MESH: MeshSettings = {
  trustDomain: 'cluster.local',
  rootNamespace: DEFAULT_ROOT_NAMESPACE,
  mtlsMode: 'PERMISSIVE',
  workloadCertTtlMs: 24 * 3600_000,
  telemetry: { metrics: true, accessLog: true, tracingSamplingPercent: 1 },
  pathNormalization: { normalization: 'BASE' },
  extensionProviders: [],
  gatewayNumTrustedProxies: 0,
  proxyHeaders: {},
  onDemandHosts: true,
};

export interface WeftdOptions {
  help: boolean;
  configFile?: string;
  tlsDir: string;
  kubeconfig?: string;
  host: string;
  port: number;
  monitoringPort: number;
  domainSuffix: string;
  caSecret: { namespace: string; name: string };
  pushDebounceMs: number;
  pushDebounceMaxMs: number;
  /** Mirrored requests' Host gets `-shadow`: env DISABLE_SHADOW_HOST_SUFFIX=false, as in istiod (default true). */
  shadowHostSuffix: boolean;
  /** The Lease electing the status writer (controlplane/statuswriter.ts); absent: no status writes. */
  statusLease?: { namespace: string; name: string };
  /** Redis of the global rate-limit service (ADR 0017); absent: global limits are off. */
  rateLimitRedis?: { host: string; port: number };
  /** AUTH for that Redis: the password's file and an optional ACL user. */
  rateLimitRedisAuth?: { passwordFile: string; username?: string };
  /** The admission webhook in this process (controlplane/combined.ts); absent: weftd alone. */
  webhook?: { port: number; tlsDir: string };
}

/** `host:port` or `[v6]:port` of the global rate-limit Redis. */
export function redisAddress(v: string): { host: string; port: number } {
  return (
    parseRedisAddress(v) ??
    fail(`--ratelimit-redis: ${JSON.stringify(v)} is not HOST:PORT (e.g. redis.weft-system:6379)`)
  );
}

const fail = (message: string): never => {
  throw new WeftError('WEFT_WEFTD_CONFIG', message);
};

function port(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535)
    fail(`--${flag}: ${v} is not a port number`);
  return n;
}

function duration(flag: string, v: string): number {
  const ms = /^\d+$/.test(v) ? Number(v) : parseDurationMs(v);
  if (ms === null || ms < 0) fail(`--${flag}: ${v} is not a duration (e.g. 100ms, 1s)`);
  return ms!;
}

const DNS_LABELS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** istiod's boolean env vars: unset = the default; otherwise true/false/1/0, anything else is refused. */
export function envBool(env: NodeJS.ProcessEnv, name: string, dflt: boolean): boolean {
  const v = env[name]?.trim().toLowerCase();
  if (v === undefined || v === '') return dflt;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return fail(`${name}=${env[name]!}: must be true or false`);
}

export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): WeftdOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        'tls-dir': { type: 'string', default: '/etc/weft/tls' },
        kubeconfig: { type: 'string' },
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'string', default: String(DISCOVERY_PORT) },
        'monitoring-port': { type: 'string', default: String(MONITORING_PORT) },
        'domain-suffix': { type: 'string', default: 'cluster.local' },
        'ca-secret': { type: 'string', default: 'weft-system/weft-root-ca' },
        'push-debounce': { type: 'string', default: '100ms' },
        'push-debounce-max': { type: 'string', default: '10s' },
        'status-lease': { type: 'string', default: 'weft-system/weftd-status' },
        'ratelimit-redis': { type: 'string' },
        'ratelimit-redis-password-file': { type: 'string' },
        'ratelimit-redis-username': { type: 'string' },
        'webhook-port': { type: 'string' },
        'webhook-tls-dir': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return fail(`${errorMessage(err)} (weftd --help lists the flags)`);
  }
  const [ns, name, ...rest] = values['ca-secret'].split('/');
  if (!ns || !name || rest.length > 0) fail(`--ca-secret: ${values['ca-secret']} is not NAMESPACE/NAME`);
  const suffix = values['domain-suffix'].replace(/^\.+|\.+$/g, '');
  if (!DNS_LABELS.test(suffix)) fail(`--domain-suffix: ${values['domain-suffix']} is not a DNS name`);
  const opts: WeftdOptions = {
    help: values.help,
    tlsDir: values['tls-dir'].replace(/\/+$/, '') || '/',
    host: values.host,
    port: port('port', values.port),
    monitoringPort: port('monitoring-port', values['monitoring-port']),
    domainSuffix: suffix,
    caSecret: { namespace: ns!, name: name! },
    pushDebounceMs: duration('push-debounce', values['push-debounce']),
    pushDebounceMaxMs: duration('push-debounce-max', values['push-debounce-max']),
    shadowHostSuffix: !envBool(env, 'DISABLE_SHADOW_HOST_SUFFIX', true),
  };
  if (values['status-lease'] !== 'none') {
    const [leaseNs, leaseName, ...extra] = values['status-lease'].split('/');
    if (!leaseNs || !leaseName || extra.length > 0)
      fail(`--status-lease: ${values['status-lease']} is not NAMESPACE/NAME or none`);
    opts.statusLease = { namespace: leaseNs!, name: leaseName! };
  }
  if (values['ratelimit-redis'] !== undefined) opts.rateLimitRedis = redisAddress(values['ratelimit-redis']);
  const passwordFile = values['ratelimit-redis-password-file'];
  const username = values['ratelimit-redis-username'];
  if ((passwordFile !== undefined || username !== undefined) && opts.rateLimitRedis === undefined)
    fail('--ratelimit-redis-password-file and --ratelimit-redis-username need --ratelimit-redis');
  if (username !== undefined && passwordFile === undefined)
    fail('--ratelimit-redis-username needs --ratelimit-redis-password-file (AUTH takes both)');
  if (username !== undefined && !/^[\x21-\x7e]{1,256}$/.test(username))
    fail('--ratelimit-redis-username: 1-256 printable characters without spaces');
  if (passwordFile !== undefined)
    opts.rateLimitRedisAuth = { passwordFile, ...(username !== undefined ? { username } : {}) };
  if (values.config !== undefined) opts.configFile = values.config;
  if (values.kubeconfig !== undefined) opts.kubeconfig = values.kubeconfig;
  if (opts.port !== 0 && opts.port === opts.monitoringPort) fail('--port and --monitoring-port must differ');
  const webhookPort = values['webhook-port'];
  if (webhookPort === undefined && values['webhook-tls-dir'] !== undefined)
    fail('--webhook-tls-dir needs --webhook-port');
  if (webhookPort !== undefined) {
    const p = port('webhook-port', webhookPort);
    if (p !== 0 && (p === opts.port || p === opts.monitoringPort))
      fail('--webhook-port must differ from --port and --monitoring-port');
    const dir = (values['webhook-tls-dir'] ?? '/etc/weft/webhook-tls').replace(/\/+$/, '') || '/';
    opts.webhook = { port: p, tlsDir: dir };
  }
  return opts;
}

/** mesh.yaml text → settings; absent fields keep the defaults, wrong ones are named. */
export function parseMeshSettings(text: string, source = 'mesh config'): MeshSettings {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail(`${source}: not YAML: ${errorMessage(err)}`);
  }
  if (doc === null || doc === undefined) return structuredClone(DEFAULT_MESH);
  if (typeof doc !== 'object' || Array.isArray(doc)) fail(`${source}: must be a mapping`);
  const m = doc as {
    trustDomain?: unknown;
    rootNamespace?: unknown;
    mtls?: { mode?: unknown };
    workloadCertTTL?: unknown;
    telemetry?: Record<string, unknown>;
    pathNormalization?: { normalization?: unknown };
    extensionProviders?: unknown;
    defaultConfig?: {
      gatewayTopology?: { numTrustedProxies?: unknown };
      proxyHeaders?: unknown;
      onDemandHosts?: unknown;
    };
  };
  const out = structuredClone(DEFAULT_MESH);
  const ext = parseExtensionProviders(m.extensionProviders);
  if (ext.errors.length > 0) fail(`${source}: ${ext.errors.join('; ')}`);
  out.extensionProviders = ext.providers;
  const hops = m.defaultConfig?.gatewayTopology?.numTrustedProxies;
  if (hops !== undefined) {
    if (!Number.isInteger(hops) || (hops as number) < 0 || (hops as number) > 64)
      fail(`${source}: defaultConfig.gatewayTopology.numTrustedProxies must be an integer 0-64`);
    out.gatewayNumTrustedProxies = hops as number;
  }
  if (m.trustDomain !== undefined) {
    if (typeof m.trustDomain !== 'string' || m.trustDomain === '')
      fail(`${source}: trustDomain must be a non-empty string`);
    out.trustDomain = m.trustDomain as string;
  }
  if (m.rootNamespace !== undefined) {
    if (typeof m.rootNamespace !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(m.rootNamespace))
      fail(`${source}: rootNamespace must be a namespace name`);
    out.rootNamespace = m.rootNamespace as string;
  }
  if (m.mtls?.mode !== undefined) {
    if (m.mtls.mode !== 'STRICT' && m.mtls.mode !== 'PERMISSIVE' && m.mtls.mode !== 'DISABLE')
      fail(`${source}: mtls.mode must be STRICT, PERMISSIVE or DISABLE, got ${JSON.stringify(m.mtls.mode)}`);
    out.mtlsMode = m.mtls.mode as MeshSettings['mtlsMode'];
  }
  if (m.workloadCertTTL !== undefined) {
    const ms = typeof m.workloadCertTTL === 'string' ? parseDurationMs(m.workloadCertTTL) : null;
    if (ms === null || ms <= 0) fail(`${source}: workloadCertTTL must be a positive duration such as 24h`);
    out.workloadCertTtlMs = ms!;
  }
  const t = m.telemetry ?? {};
  for (const key of ['metrics', 'accessLog'] as const) {
    if (t[key] === undefined) continue;
    if (typeof t[key] !== 'boolean') fail(`${source}: telemetry.${key} must be true or false`);
    out.telemetry[key] = t[key] as boolean;
  }
  if (t.tracingSamplingPercent !== undefined) {
    const p = t.tracingSamplingPercent;
    if (typeof p !== 'number' || p < 0 || p > 100)
      fail(`${source}: telemetry.tracingSamplingPercent must be 0-100`);
    out.telemetry.tracingSamplingPercent = p as number;
  }
  const n = m.pathNormalization?.normalization;
  if (n !== undefined) {
    if (!(PATH_NORMALIZATION_TYPES as readonly unknown[]).includes(n))
      fail(
        `${source}: pathNormalization.normalization must be one of ${PATH_NORMALIZATION_TYPES.join(', ')}, got ${JSON.stringify(n)}`,
      );
    out.pathNormalization.normalization =
      n === 'DEFAULT' ? 'BASE' : (n as MeshSettings['pathNormalization']['normalization']);
  }
  if (m.defaultConfig !== undefined) {
    if (m.defaultConfig === null || typeof m.defaultConfig !== 'object' || Array.isArray(m.defaultConfig))
      fail(`${source}: defaultConfig must be a mapping`);
    for (const k of Object.keys(m.defaultConfig))
      if (k !== 'proxyHeaders' && k !== 'gatewayTopology' && k !== 'onDemandHosts')
        fail(
          `${source}: defaultConfig.${k} is not supported (only proxyHeaders, gatewayTopology and onDemandHosts)`,
        );
    const onDemand = m.defaultConfig.onDemandHosts;
    if (onDemand !== undefined) {
      if (typeof onDemand !== 'boolean') fail(`${source}: defaultConfig.onDemandHosts must be true or false`);
      out.onDemandHosts = onDemand as boolean;
    }
    if (m.defaultConfig.proxyHeaders !== undefined)
      out.proxyHeaders = proxyHeadersOf(
        m.defaultConfig.proxyHeaders,
        `${source}: defaultConfig.proxyHeaders`,
      );
  }
  return out;
}

/** `{attemptCount: {disabled: true}, ...}` checked field by field (Istio's shape, weft's subset). */
function proxyHeadersOf(v: unknown, where: string): ProxyHeadersSetting {
  const isMap = (x: unknown): x is Record<string, unknown> =>
    x !== null && typeof x === 'object' && !Array.isArray(x);
  if (!isMap(v)) return fail(`${where} must be a mapping`);
  const out: ProxyHeadersSetting = {};
  for (const [k, f] of Object.entries(v)) {
    if (!(PROXY_HEADERS_FIELDS as readonly string[]).includes(k))
      fail(`${where}.${k} is not supported (only ${PROXY_HEADERS_FIELDS.join(', ')})`);
    if (!isMap(f)) fail(`${where}.${k} must be a mapping like {disabled: true}`);
    const field = f as Record<string, unknown>;
    for (const fk of Object.keys(field))
      if (fk !== 'disabled') fail(`${where}.${k}.${fk} is not supported (only disabled)`);
    if (field.disabled !== undefined && typeof field.disabled !== 'boolean')
      fail(`${where}.${k}.disabled must be true or false`);
    out[k as (typeof PROXY_HEADERS_FIELDS)[number]] =
      field.disabled === undefined ? {} : { disabled: field.disabled as boolean };
  }
  return out;
}

export function loadMeshSettings(file: string | undefined): MeshSettings {
  if (file === undefined) return structuredClone(DEFAULT_MESH);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`--config ${file}: cannot read it: ${errorMessage(err)}`);
  }
  return parseMeshSettings(text, file);
}
