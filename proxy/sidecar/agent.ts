/**
 * `proxy sidecar` and `proxy gateway`: the proxy in a pod, configured by weftd.
 *
 * sidecar: capture listeners on 15001 (outbound, proxy/sidecar/capture.ts) and 15006 (inbound:
 * mesh mTLS per PeerAuthentication, then HTTP or TCP to the app, proxy/inbound/listener.ts) where
 * iptables delivers the pod's traffic; the outbound HTTP listener of the config is served
 * through the 15001 capture instead of being bound itself. gateway: binds whatever listeners its
 * config has. Both: health on 15021 (`/healthz/ready`, `/app-health/...`), Prometheus on 15090,
 * admin on 127.0.0.1:15000, config from the discovery stream (proxy/discovery/client.ts).
 * Flags override the environment the injector / operator set.
 */
import net from 'node:net';
import { fs } from '../../pkg/builtins/index.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProxyKind } from '../../pkg/discovery/protocol.js';
import { createLogger, type Logger } from '../../pkg/log/index.js';
import { WeftError, errorMessage } from '../../pkg/errors/index.js';
import { validateProxyConfig } from '../../pkg/proxyconfig/validate.js';
import { ProxyServer, type ProxyOptions } from '../server.js';
import { DiscoveryClient, parseAddress } from '../discovery/client.js';
import { loadAddon } from '../native/original_dst.js';
import { onOutbound, type CaptureEnv } from './capture.js';
import { findVHost } from '../compile/compile.js';
import { OnDemandHolder, ONDEMAND_METRIC, type OnDemandVerdict } from './ondemand.js';
import { InboundListener } from '../inbound/listener.js';
import { DEFAULT_GLOBAL_TIMEOUT_MS, GlobalClient } from '../ratelimit/global.js';
import { inboundAdminRoutes } from '../inbound/admin.js';
import type { IdentitySource } from '../identity/types.js';
import { APP_HEALTH_PREFIX, parseProbers, runProbe, type Probers } from './probes.js';
import { WorkloadIdentity, parseKeyAlgorithm } from '../identity/workload.js';
import type { WorkloadKeyAlgorithm } from '../../pkg/certs/csr.js';

export const DEFAULT_CA_ROOT_PATH = '/etc/weft/ca/root-cert.pem';
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/weft-token';
/** The port weftd gives the sidecar's outbound HTTP listener (controlplane/configgen.ts). */
export const CONFIG_OUTBOUND_PORT = 15001;

export interface AgentSettings {
  kind: ProxyKind;
  discoveryAddress: string;
  caRootPath: string;
  tokenPath: string;
  namespace: string;
  pod: string;
  /** Where the app listens (INSTANCE_IP), for inbound and probes. */
  appHost: string;
  /** Bind address of the capture listeners, health and metrics. */
  bind: string;
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  metricsPort: number;
  healthPort: number;
  drainMs: number;
  sniffTimeoutMs: number;
  /** Deadline of a global rate-limit check to weftd (default 50 ms; ADR 0017). */
  rateLimitTimeoutMs: number;
  probers: Probers;
  /** The workload key: ECDSA_P256 (default) or RSA_2048/3072/4096 (WEFT_KEY_ALGORITHM). */
  keyAlgorithm: WorkloadKeyAlgorithm;
}

export class AgentUsageError extends Error {}

const USAGE = `usage: proxy sidecar|gateway [--discovery-address HOST:PORT] [--ca-root FILE] [--token FILE]
         [--namespace NS] [--pod NAME] [--app-host IP] [--bind ADDR]
         [--outbound-port N] [--inbound-port N] [--admin-port N] [--metrics-port N] [--health-port N]
         [--drain-seconds N] [--sniff-timeout-ms N] [--ratelimit-timeout-ms N]
         [--key-algorithm ECDSA_P256|RSA_2048|...]
Defaults come from the pod's env: WEFT_DISCOVERY_ADDRESS, WEFT_CA_ROOT_PATH, WEFT_TOKEN_PATH,
POD_NAMESPACE, POD_NAME, INSTANCE_IP, ISTIO_KUBE_APP_PROBERS, WEFT_KEY_ALGORITHM.`;

function portFlag(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new AgentUsageError(`${flag} needs a port 0-65535, got ${JSON.stringify(v)}`);
  return n;
}

/** Flags over env over defaults (pure: unit-tested). */
export function agentSettings(kind: ProxyKind, argv: string[], env: NodeJS.ProcessEnv): AgentSettings {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new AgentUsageError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(0, eq), a.slice(eq + 1));
    else {
      const v = argv[++i];
      if (v === undefined) throw new AgentUsageError(`${a} needs a value`);
      flags.set(a, v);
    }
  }
  const known = [
    '--discovery-address',
    '--ca-root',
    '--token',
    '--namespace',
    '--pod',
    '--app-host',
    '--bind',
    '--outbound-port',
    '--inbound-port',
    '--admin-port',
    '--metrics-port',
    '--health-port',
    '--drain-seconds',
    '--sniff-timeout-ms',
    '--ratelimit-timeout-ms',
    '--key-algorithm',
  ];
  for (const f of flags.keys())
    if (!known.includes(f)) throw new AgentUsageError(`unknown flag ${JSON.stringify(f)}`);
  const pick = (flag: string, envName: string | null, dflt?: string): string | undefined =>
    flags.get(flag) ?? (envName ? env[envName] || undefined : undefined) ?? dflt;
  const need = (flag: string, envName: string): string => {
    const v = pick(flag, envName);
    if (v === undefined) throw new AgentUsageError(`${flag} or ${envName} is required`);
    return v;
  };
  const discoveryAddress = need('--discovery-address', 'WEFT_DISCOVERY_ADDRESS');
  try {
    parseAddress(discoveryAddress);
  } catch (err) {
    throw new AgentUsageError(errorMessage(err));
  }
  const drain = Number(pick('--drain-seconds', null, '5'));
  if (!Number.isFinite(drain) || drain < 0)
    throw new AgentUsageError('--drain-seconds needs a non-negative number');
  const sniff = Number(pick('--sniff-timeout-ms', null, '500'));
  if (!Number.isFinite(sniff) || sniff <= 0)
    throw new AgentUsageError('--sniff-timeout-ms needs a positive number');
  const rlTimeout = Number(pick('--ratelimit-timeout-ms', null, String(DEFAULT_GLOBAL_TIMEOUT_MS)));
  if (!Number.isInteger(rlTimeout) || rlTimeout < 1 || rlTimeout > 10_000)
    throw new AgentUsageError('--ratelimit-timeout-ms needs an integer in 1..10000');
  let probers: Probers;
  let keyAlgorithm: WorkloadKeyAlgorithm;
  try {
    probers = parseProbers(env.ISTIO_KUBE_APP_PROBERS);
    keyAlgorithm = parseKeyAlgorithm(pick('--key-algorithm', 'WEFT_KEY_ALGORITHM'));
  } catch (err) {
    throw new AgentUsageError(errorMessage(err));
  }
  return {
    kind,
    discoveryAddress,
    caRootPath: pick('--ca-root', 'WEFT_CA_ROOT_PATH', DEFAULT_CA_ROOT_PATH)!,
    tokenPath: pick('--token', 'WEFT_TOKEN_PATH', DEFAULT_TOKEN_PATH)!,
    namespace: need('--namespace', 'POD_NAMESPACE'),
    pod: need('--pod', 'POD_NAME'),
    appHost: pick('--app-host', 'INSTANCE_IP', '127.0.0.1')!,
    bind: pick('--bind', null, '0.0.0.0')!,
    outboundPort: portFlag(pick('--outbound-port', null, '15001')!, '--outbound-port'),
    inboundPort: portFlag(pick('--inbound-port', null, '15006')!, '--inbound-port'),
    adminPort: portFlag(pick('--admin-port', null, '15000')!, '--admin-port'),
    metricsPort: portFlag(pick('--metrics-port', null, '15090')!, '--metrics-port'),
    healthPort: portFlag(pick('--health-port', null, '15021')!, '--health-port'),
    drainMs: drain * 1000,
    sniffTimeoutMs: sniff,
    rateLimitTimeoutMs: rlTimeout,
    probers,
    keyAlgorithm,
  };
}

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function appHealth(s: AgentSettings, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0]!;
  if (!path.startsWith(APP_HEALTH_PREFIX)) return false;
  const prober = s.probers.get(path);
  const reply = (status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${text}\n`);
  };
  if (prober === undefined) {
    reply(
      404,
      `no app probe at ${path} (ISTIO_KUBE_APP_PROBERS has ${[...s.probers.keys()].join(', ') || 'none'})`,
    );
    return true;
  }
  runProbe(prober, s.appHost).then(
    (r) => reply(r.status, r.detail),
    (err: unknown) => reply(503, errorMessage(err)),
  );
  return true;
}

/**
 * Starts the agent; resolves with a stop function once the servers are bound. The workload
 * certificate comes from weftd's CA (proxy/identity/workload.ts); `deps.identity` replaces it for
 * the inbound side in tests that bring their own mesh certificates.
 */
export async function startAgent(
  s: AgentSettings,
  log: Logger,
  deps: { identity?: IdentitySource | null } = {},
): Promise<{
  proxy: ProxyServer;
  inbound: InboundListener | null;
  /** Bound ports by name (admin, metrics, health, and the sidecar's outbound and inbound captures). */
  ports: Record<string, number>;
  stop: () => Promise<void>;
}> {
  let capturesBound = s.kind === 'gateway';
  // the readiness gate reads the client's state; the client is created once the proxy exists
  const link: { client?: DiscoveryClient } = {};
  // the proxy is not Ready until it holds a valid workload certificate (mesh mTLS needs it)
  const identity = new WorkloadIdentity({
    address: s.discoveryAddress,
    caRootPath: s.caRootPath,
    tokenPath: s.tokenPath,
    keyAlgorithm: s.keyAlgorithm,
    log: log.child({ part: 'identity' }),
  });
  // one identity terminates mesh mTLS inbound and originates it outbound
  const meshIdentity: IdentitySource = deps.identity ?? identity;
  let inboundListener: InboundListener | null = null;
  const opts: ProxyOptions = {
    identity,
    logger: log,
    adminPort: s.adminPort,
    metricsPort: s.metricsPort,
    healthPort: s.healthPort,
    adminAddress: '127.0.0.1',
    auxAddresses: { metrics: s.bind, health: s.bind },
    drainMs: s.drainMs,
    unbound: (l) => s.kind === 'sidecar' && l.protocol === 'HTTP' && l.port === CONFIG_OUTBOUND_PORT,
    // a new Host on a keep-alive connection the capture handed in (its first request was asked there)
    onDemandHost: onDemandIfOn,
    readinessGate: () => {
      if (!capturesBound) return 'capture listeners are not bound yet';
      const noCert = identity.notReadyReason();
      if (noCert !== null) return noCert;
      if (proxy.current === null)
        return `no config from weftd yet (${link.client?.lastProblem ?? 'not started'})`;
      return null;
    },
    healthRoutes: (req, res) => appHealth(s, req, res),
    adminRoutes: inboundAdminRoutes(
      () => proxy,
      () => inboundListener,
      meshIdentity,
    ),
    // a gateway limits ingress on its listeners; a sidecar's limits are its inbound side's
    ...(s.kind === 'gateway'
      ? {
          listenerRateLimits: {
            global: globalRateLimitClient(
              s.discoveryAddress,
              s.caRootPath,
              s.tokenPath,
              s.rateLimitTimeoutMs,
            ),
          },
        }
      : {}),
  };
  const proxy = new ProxyServer(opts);
  identity.exportMetrics(proxy.metrics);
  void identity.start(); // retries on its own; readiness waits for the certificate
  await proxy.startAux();
  const captures: net.Server[] = [];
  /** Connections accepted by the captures (pass-through and inbound pipes), for the drain. */
  const captured = new Set<net.Socket>();
  // on-demand hosts (ADR 0023): asks go through the discovery client, made below
  const onDemand = new OnDemandHolder({
    ask: (names, redeclare) =>
      link.client ? link.client.askHosts(names, redeclare) : Promise.reject(new Error('no discovery client')),
    isHeld: (authority) => {
      const l = proxy.unboundHttp();
      return l !== null && findVHost(l, authority) !== null;
    },
    // names one virtual host routes (a wildcard ServiceEntry's subdomains) are re-declared once
    entryOf: (name) => {
      const l = proxy.unboundHttp();
      return (l === null ? null : findVHost(l, name)?.name) ?? null;
    },
    count: (result) => proxy.metrics.incLabelled(ONDEMAND_METRIC, { result }),
  });
  const onDemandWait = (authority: string, held?: () => boolean): Promise<OnDemandVerdict> =>
    onDemand.wait(authority, held);
  /** The hold when the config in force is on demand (ADR 0023); null otherwise. */
  function onDemandIfOn(): typeof onDemandWait | null {
    return proxy.current?.source.onDemand !== undefined ? onDemandWait : null;
  }
  if (s.kind === 'sidecar') {
    const addon = loadAddon();
    if (addon.addon === null)
      log.warn(
        'Original destinations unavailable: HTTP is routed by Host, inbound uses the Host port, other traffic is refused',
        {
          reason: addon.reason,
        },
      );
    const env: CaptureEnv = {
      log,
      metrics: proxy.metrics,
      outboundHttp: () => proxy.unboundHttp(),
      registryOnly: () => proxy.registryOnly(),
      onDemand: onDemandIfOn,
      outboundTcp: () => proxy.outboundTcp(),
      l4Env: () => proxy.l4Env(),
      handOff: (sock) => {
        captured.delete(sock); // the HTTP drain takes care of it from here
        return proxy.handOff(sock);
      },
      appHost: s.appHost,
      capturePorts: [s.outboundPort, s.inboundPort],
      sniffTimeoutMs: s.sniffTimeoutMs,
    };
    const tracked = (handle: (sock: net.Socket) => void) => (sock: net.Socket) => {
      captured.add(sock);
      sock.once('close', () => captured.delete(sock));
      handle(sock);
    };
    inboundListener = new InboundListener({
      log,
      metrics: proxy.metrics,
      accessLog: proxy.env.accessLog,
      appHost: s.appHost,
      identity: meshIdentity,
      sniffTimeoutMs: s.sniffTimeoutMs,
      capturePorts: () => env.capturePorts,
      globalRateLimit: globalRateLimitClient(
        s.discoveryAddress,
        s.caRootPath,
        s.tokenPath,
        s.rateLimitTimeoutMs,
      ),
    });
    const il = inboundListener;
    // allowHalfOpen: a client's FIN is passed on (TCP pipes), not taken for the end of both
    // directions; node:http and node:http2 handle a half-closed socket themselves
    const outbound = net.createServer(
      { noDelay: true, allowHalfOpen: true },
      tracked((sock) => void onOutbound(env, sock)),
    );
    const inbound = net.createServer(
      { noDelay: true, allowHalfOpen: true },
      tracked((sock) => il.handle(sock)),
    );
    env.capturePorts = [
      await listen(outbound, s.outboundPort, s.bind),
      await listen(inbound, s.inboundPort, s.bind),
    ];
    captures.push(outbound, inbound);
    capturesBound = true;
  }
  const client = (link.client = new DiscoveryClient({
    address: s.discoveryAddress,
    caRootPath: s.caRootPath,
    tokenPath: s.tokenPath,
    request: { kind: s.kind, namespace: s.namespace, pod: s.pod },
    log,
    onOpen: () => void onDemand.redeclare(),
    onConfig: async (config, version) => {
      try {
        // the decoder checked only the message's shape; the config gets the same checks as a file
        const problems = validateProxyConfig(config);
        if (problems.length > 0)
          throw new WeftError(
            'WEFT_PROXY_CONFIG_INVALID',
            `config ${version} from weftd has ${problems.length} problem(s): ${problems
              .slice(0, 10)
              .map((p) => `${p.path}: ${p.message}`)
              .join('; ')}`,
          );
        await proxy.apply(config);
        inboundListener?.apply(config, proxy.current ?? undefined);
        onDemand.configApplied();
      } catch (err) {
        proxy.rejected(err);
        throw err;
      }
    },
  }));
  const running = client.run();
  const ports: Record<string, number> = { ...proxy.ports() };
  if (captures.length === 2) {
    ports.outbound = (captures[0]!.address() as net.AddressInfo).port;
    ports.inbound = (captures[1]!.address() as net.AddressInfo).port;
  }
  log.info('Proxy started; waiting for config from weftd', {
    kind: s.kind,
    discovery: s.discoveryAddress,
    pod: `${s.namespace}/${s.pod}`,
    ports,
    appProbes: [...s.probers.keys()],
  });
  return {
    proxy,
    inbound: inboundListener,
    ports,
    stop: async () => {
      client.stop();
      identity.stop();
      inboundListener?.drain();
      // inbound requests to the app and pass-through connections are raw pipes the HTTP drain
      // does not see: they get the same drain period (readiness failing, HTTP answering with
      // Connection: close meanwhile), then the HTTP drain finishes within what is left
      const deadline = Date.now() + s.drainMs;
      proxy.draining = true;
      log.info('Draining pass-through and inbound connections', { open: captured.size, drainMs: s.drainMs });
      while (captured.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await proxy.shutdown(deadline);
      for (const c of captures) c.close();
      for (const sock of captured) sock.destroy();
      await inboundListener?.close();
      await running;
    },
  };
}

export async function runAgent(kind: ProxyKind, argv: string[]): Promise<number> {
  let settings: AgentSettings;
  try {
    settings = agentSettings(kind, argv, process.env);
  } catch (err) {
    if (!(err instanceof AgentUsageError)) throw err;
    process.stderr.write(`proxy ${kind}: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  const log = createLogger(`proxy-${kind}`);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    agent = await startAgent(settings, log);
  } catch (err) {
    log.error('Proxy failed to start', { error: errorMessage(err) });
    return 1;
  }
  const stop = (signal: string): void => {
    log.info('Received signal; draining', { signal });
    void agent.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return 0;
}

/** weftd's global rate-limit check (ADR 0017) on the discovery address; CA and token re-read every 10 s (they rotate). */
function globalRateLimitClient(
  address: string,
  caRootPath: string,
  tokenPath: string,
  timeoutMs: number,
): GlobalClient {
  const { host, port } = parseAddress(address);
  const cached = (path: string): (() => string) => {
    let value = '';
    let at = -Infinity;
    return () => {
      if (Date.now() - at > 10_000) {
        value = fs.readFileSync(path, 'utf8').trim();
        at = Date.now();
      }
      return value;
    };
  };
  return new GlobalClient({
    host,
    port,
    servername: net.isIP(host) === 0 ? host : undefined,
    ca: cached(caRootPath),
    token: cached(tokenPath),
    timeoutMs,
  });
}
