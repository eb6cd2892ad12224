/**
 * weftd assembled: registry (informers) → config generator → discovery streams on the HTTPS
 * port, workload CA and root-cert publisher (controlplane/ca.ts, rootcert.ts), monitoring on
 * the plain HTTP port. `startWeftd` is what main.ts runs and what integration tests start
 * in-process against a test cluster (random ports, their own TLS).
 */
import { X509Certificate } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { errorMessage, WeftError } from '../pkg/errors/index.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeClient } from '../pkg/kube/client.js';
import type { Logger } from '../pkg/log/index.js';
import { serverTimeoutOptions, type ServerTimeouts } from '../pkg/http/timeouts.js';
import type { CertReloader, KeyPair } from '../pkg/tls/index.js';
import { authenticate, cachedAuthenticator } from './auth.js';
import { createCertificateAuthority, type CertificateAuthority } from './ca.js';
import { ConfigGenerator } from './configgen.js';
import { JwksResolver, type JwksResolverOptions } from './jwks.js';
import { SecretCredentials } from './credentials.js';
import { DiscoveryService, type ConnectionInfo } from './discovery.js';
import type { ProxyProgress } from './status.js';
import { loadMeshSettings, type MeshSettings, type WeftdOptions } from './flags.js';
import { createWeftdMetrics, type WeftdMetrics } from './metrics.js';
import { createMonitoringServer, type Readiness } from './monitoring.js';
import { createKubeRegistry, type KubeRegistry } from './registry.js';
import type { InformerSource } from '../pkg/kube/shared-informers.js';
import { startRootCertPublisher } from './rootcert.js';
import { StatusWriter, type StatusWriterOptions } from './statuswriter.js';
import { splitPemCerts } from './ca/signer.js';
import { authFromFile, RedisClient, type RedisAuth } from '../pkg/ratelimit/redis.js';
import { GlobalBucketStore } from '../pkg/ratelimit/global.js';
import { GlobalRateLimitService } from './globalratelimit.js';

export interface StartOptions {
  flags: Pick<
    WeftdOptions,
    'host' | 'port' | 'monitoringPort' | 'domainSuffix' | 'caSecret' | 'pushDebounceMs' | 'pushDebounceMaxMs'
  > &
    Partial<Pick<WeftdOptions, 'shadowHostSuffix' | 'rateLimitRedis' | 'rateLimitRedisAuth'>>;
  mesh: MeshSettings;
  kube: KubeClient;
  tls: CertReloader;
  log: Logger;
  /** The mesh.yaml `mesh` came from: watched, and a valid change is applied without a restart. */
  configFile?: string;
  /** How often the config file is polled (default 2 s; tests shorten it). */
  configPollMs?: number;
  /** Tests shorten it; proxies expect PING_INTERVAL_MS. */
  pingIntervalMs?: number;
  /** Default true. Off: no CA, no root-cert ConfigMaps (tests of discovery alone). */
  workloadCa?: boolean;
  /** Default true: process metrics (tests running several weftds in one process turn it off). */
  defaultMetrics?: boolean;
  /** Both ports; defaults: headers 10 s, whole request 15 s, idle keep-alive 30 s (pkg/http/timeouts.ts). */
  timeouts?: Partial<ServerTimeouts>;
  /**
   * Mesh objects' status conditions, written by the replica holding this Lease
   * (statuswriter.ts). Absent: weftd writes no status.
   */
  status?: Omit<StatusWriterOptions, 'kube' | 'registry' | 'log'>;
  /** JWKS fetching for RequestAuthentication jwksUri (tests shorten the refresh). */
  jwks?: Partial<Omit<JwksResolverOptions, 'log' | 'onChange'>>;
  /** Informers shared with the in-process webhook (controlplane/combined.ts); default: weftd's own. */
  informers?: InformerSource;
  /** Also required for /ready (combined: the pod backs the webhook's Service as well). */
  alsoReady?: () => { ready: boolean; reason?: string };
}

export interface Weftd {
  discoveryPort: number;
  monitoringPort: number;
  registry: KubeRegistry;
  discovery: DiscoveryService;
  metrics: WeftdMetrics;
  jwks: JwksResolver;
  status?: StatusWriter;
  readiness(): Readiness;
  /** The discovery (HTTPS) and monitoring servers: the combined process watches them close. */
  servers: (Server | HttpsServer)[];
  stop(): Promise<void>;
}

const tlsOptions = (pair: KeyPair) => ({ ...pair, minVersion: 'TLSv1.2' as const });

/**
 * The discovery port's HTTPS server. A client must send its whole request (headers and body)
 * within the request timeout, or get a 408 and a closed connection: an unauthenticated client
 * dripping a body no longer holds a socket forever. The timeout bounds receiving the request
 * only, so a discovery stream (a GET whose response lasts for hours) is not affected.
 */
export function createDiscoveryServer(
  pair: KeyPair,
  discovery: Pick<DiscoveryService, 'handle' | 'upgrade'>,
  timeouts: Partial<ServerTimeouts> = {},
): HttpsServer {
  const server = createHttpsServer(
    { ...tlsOptions(pair), ...serverTimeoutOptions(timeouts) },
    discovery.handle,
  );
  // an upgraded stream (its ACKs on the same connection) leaves the HTTP server's timeouts: a
  // stream lives for hours; weftd's pings and TCP keep-alive find a dead peer
  server.on('upgrade', discovery.upgrade);
  return server;
}

function listen(server: Server | HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Polls mesh.yaml (a mounted ConfigMap changes by a symlink swap, which stat follows) and hands
 * every valid change to `apply`; a broken file keeps the previous settings. The CA was built with
 * the trust domain of the start, so a change to it waits for a restart; the certificate TTL is
 * applied to the next CSR.
 */
function watchMeshConfig(
  file: string,
  initial: MeshSettings,
  intervalMs: number,
  apply: (mesh: MeshSettings) => void,
  log: Logger,
): () => void {
  let current = initial;
  const reload = (): void => {
    let next: MeshSettings;
    try {
      next = loadMeshSettings(file);
    } catch (err) {
      log.warn('Mesh config not reloaded; keeping the previous one', { error: errorMessage(err) });
      return;
    }
    if (JSON.stringify(next) === JSON.stringify(current)) return;
    if (next.trustDomain !== initial.trustDomain)
      log.warn('trustDomain changes take effect when weftd restarts', { trustDomain: next.trustDomain });
    current = next;
    log.info('Mesh config reloaded', { telemetry: next.telemetry, mtlsMode: next.mtlsMode });
    apply(next);
  };
  watchFile(file, { interval: intervalMs, persistent: false }, reload);
  return () => unwatchFile(file, reload);
}

/** The first expiry among the roots of a bundle (ms since the epoch). */
function earliestExpiry(bundle: string): number {
  const times = splitPemCerts(bundle).map((pem) => new Date(new X509Certificate(pem).validTo).getTime());
  return times.length > 0 ? Math.min(...times) : 0;
}

function close(server: Server | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A stream as the status writer's Reconciled condition sees it. */
function proxyProgress(c: ConnectionInfo, now: number): ProxyProgress {
  const nacked = c.nacked !== null && c.nacked.version === c.version;
  const answered = c.sent === null || c.acked?.nonce === c.sent.nonce || c.nacked?.nonce === c.sent.nonce;
  return {
    name: `${c.namespace}/${c.pod}`,
    namespace: c.namespace,
    acks: c.acks && c.state === 'configured',
    runningAt: c.runningAt,
    ...(nacked ? { nackError: c.nacked!.error } : {}),
    ...(answered ? {} : { unansweredMs: now - Date.parse(c.sent!.at) }),
  };
}

export async function startWeftd(opts: StartOptions): Promise<Weftd> {
  const { flags, kube, log, tls } = opts;
  const metrics = createWeftdMetrics(opts.defaultMetrics ?? true);
  const registry = createKubeRegistry(
    kube,
    log.child({ part: 'registry' }),
    flags.domainSuffix,
    opts.informers,
    { globalRateLimits: flags.rateLimitRedis !== undefined, rootNamespace: opts.mesh.rootNamespace },
  );
  const jwks = new JwksResolver({ ...opts.jwks, log: log.child({ part: 'jwks' }) });
  // gateways' DestinationRule tls.credentialName Secrets; a change re-pushes (refresh, set below)
  let onCredentialChange = (): void => undefined;
  const credentials = new SecretCredentials(
    kube,
    log.child({ part: 'credentials' }),
    () => onCredentialChange(),
    (n) => {
      metrics.credentials.set({ state: 'usable' }, n.usable);
      metrics.credentials.set({ state: 'unusable' }, n.unusable);
    },
    undefined,
    new Set([`${flags.caSecret.namespace}/${flags.caSecret.name}`]),
  );
  const generator = new ConfigGenerator({
    domainSuffix: flags.domainSuffix,
    globalRateLimits: flags.rateLimitRedis !== undefined,
    shadowHostSuffix: flags.shadowHostSuffix === true,
    mesh: opts.mesh,
    log: log.child({ part: 'translate' }),
    jwks,
    credentials,
    onTranslation: (result) => metrics.translations.inc({ result }),
  });
  let ca: CertificateAuthority | undefined;
  let publisher: { stop(): void } | undefined;
  if (opts.workloadCa ?? true) {
    ca = createCertificateAuthority({
      kube,
      caSecret: flags.caSecret,
      trustDomain: opts.mesh.trustDomain,
      workloadTtlMs: opts.mesh.workloadCertTtlMs,
      log: log.child({ part: 'ca' }),
    });
    publisher = startRootCertPublisher({ kube, ca, log: log.child({ part: 'root-cert' }) });
    const authority = ca;
    const setRootExpiry = (): void => {
      const root = authority.rootCertPem();
      metrics.rootCertExpiry.set(root ? earliestExpiry(root) / 1000 : 0);
    };
    authority.onRootChange(setRootExpiry);
    setRootExpiry();
  }
  // global rate limits (ADR 0017): a Redis client with a short deadline; the sidecars' own
  // deadline (proxy/ratelimit/global.ts) is shorter still, and they apply the failure mode
  const redis = flags.rateLimitRedis
    ? new RedisClient({ ...flags.rateLimitRedis, timeoutMs: 200, ...redisAuthOf(flags.rateLimitRedisAuth) })
    : undefined;
  const globalRateLimit = redis
    ? new GlobalRateLimitService(new GlobalBucketStore(redis), log.child({ part: 'ratelimit' }))
    : undefined;
  const discovery = new DiscoveryService({
    ...(globalRateLimit ? { globalRateLimit } : {}),
    registry,
    generator,
    authenticate: cachedAuthenticator((token) => authenticate(kube, token)),
    ...(ca ? { ca } : {}),
    metrics,
    log: log.child({ part: 'discovery' }),
    debounce: { afterMs: flags.pushDebounceMs, maxMs: flags.pushDebounceMaxMs },
    ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
    ...(opts.timeouts?.keepAliveMs !== undefined ? { keepAliveMs: opts.timeouts.keepAliveMs } : {}),
  });

  onCredentialChange = () => {
    discovery.refresh();
    status?.credentialsChanged();
  };
  const status = opts.status
    ? new StatusWriter({
        ...opts.status,
        kube,
        registry,
        globalRateLimits: flags.rateLimitRedis !== undefined,
        log: log.child({ part: 'status' }),
        onWrite: (result) => metrics.statusWrites.inc({ result }),
        rootNamespace: opts.mesh.rootNamespace,
        credentials,
        proxies: {
          list: () => {
            const now = Date.now();
            return discovery.list().map((c) => proxyProgress(c, now));
          },
          onProgress: (fn) => discovery.onProgress(fn),
        },
      })
    : undefined;
  status?.start();

  const readiness = (): Readiness => {
    const unsynced = registry.unsynced();
    const tlsLoaded = tls.pair !== undefined;
    const also = opts.alsoReady?.() ?? { ready: true };
    const reason = !tlsLoaded
      ? 'serving certificate not loaded'
      : unsynced.length > 0
        ? `still listing ${unsynced.join(', ')}`
        : !also.ready
          ? (also.reason ?? 'not ready')
          : undefined;
    return {
      ready: reason === undefined,
      ...(reason ? { reason } : {}),
      certificateNotAfter: tls.notAfter,
      workloadCa: ca ? (ca.ready() ? 'ready' : 'no usable root CA yet') : 'off',
      connections: discovery.list().length,
    };
  };

  jwks.onChange = () => discovery.refresh();
  const stopConfigWatch = opts.configFile
    ? watchMeshConfig(
        opts.configFile,
        opts.mesh,
        opts.configPollMs ?? 2000,
        (mesh) => {
          ca?.setWorkloadTtl(mesh.workloadCertTtlMs);
          generator.setMesh(mesh);
          discovery.refresh();
        },
        log.child({ part: 'config' }),
      )
    : (): void => undefined;
  const https = createDiscoveryServer(tls.pair ?? tls.load(), discovery, opts.timeouts);
  tls.watch((next) => https.setSecureContext(tlsOptions(next)));
  const monitoring = createMonitoringServer({
    readiness,
    metrics,
    discovery,
    registry,
    log,
    rootNamespace: opts.mesh.rootNamespace,
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    ...(flags.rateLimitRedis
      ? { rateLimitRedis: formatAddress(flags.rateLimitRedis.host, flags.rateLimitRedis.port) }
      : {}),
  });
  const discoveryPort = await listen(https, flags.port, flags.host);
  const monitoringPort = await listen(monitoring, flags.monitoringPort, flags.host).catch(
    async (err: unknown) => {
      await close(https);
      throw err;
    },
  );
  log.info('weftd serving', { discoveryPort, monitoringPort, domainSuffix: flags.domainSuffix });

  return {
    discoveryPort,
    monitoringPort,
    registry,
    discovery,
    metrics,
    jwks,
    ...(status ? { status } : {}),
    readiness,
    servers: [https, monitoring],
    async stop() {
      stopConfigWatch();
      await status?.stop();
      jwks.stop();
      redis?.close();
      discovery.close();
      publisher?.stop();
      ca?.stop();
      credentials.stop();
      registry.stop();
      tls.stop();
      await Promise.all([close(https), close(monitoring)]);
    },
  };
}

/**
 * AUTH credentials for weftd's Redis, read once now so a missing or empty password file stops
 * weftd with a clear error instead of every check failing later (the file is re-read per
 * connection after that: Secret rotation).
 */
function redisAuthOf(a: WeftdOptions['rateLimitRedisAuth']): { auth?: () => RedisAuth } {
  if (a === undefined) return {};
  const auth = authFromFile(a.passwordFile, a.username);
  try {
    auth();
  } catch (err) {
    throw new WeftError('WEFT_WEFTD_CONFIG', `--ratelimit-redis-password-file: ${errorMessage(err)}`);
  }
  return { auth };
}

/** `host:port`, `[v6]:port`. */
const formatAddress = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
