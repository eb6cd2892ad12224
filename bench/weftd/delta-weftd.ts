/**
 * The weftd side of bench/weftd/delta.ts, a child process of its own: weftd's real
 * DiscoveryService on a real HTTPS server over a SnapshotRegistry of the bench's mesh, and
 * nothing else, so its CPU time and RSS are weftd's (the fleet runs in another process,
 * delta-fleet.ts). Driven over IPC by the orchestrator; see delta.ts for what is measured.
 *
 * MODE: `delta` (weftd as it is), `delta-before` (ACK connections not kept past the server's
 * keep-alive timeout: weftd before the ADR 0020 amendment), `full` (the same weftd; the fleet
 * asks as an older proxy), `ondemand` (on-demand hosts, ADR 0023: the fleet's proxies ask for
 * the hosts they call; each token names its pod, as a projected token does). The other modes
 * measure the whole scope, whatever weftd's default. A `-post` suffix (`delta-post`,
 * `ondemand-post`) is the same weftd; its fleet POSTs its ACKs as a proxy from before
 * weft-discovery/1 upgrades did (two TLS connections per proxy).
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { encodeDelta, planFor } from '../../controlplane/delta.js';
import { DiscoveryService } from '../../controlplane/discovery.js';
import { DEFAULT_MESH, parseFlags } from '../../controlplane/flags.js';
import { createWeftdMetrics } from '../../controlplane/metrics.js';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { MessageDecoder } from '../../pkg/discovery/protocol.js';
import { serverTimeoutOptions } from '../../pkg/http/timeouts.js';
import { createLogger } from '../../pkg/log/index.js';
import { ResourceHolder } from '../../proxy/discovery/held.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { meshService, meshVirtualService, podAddress, type MeshService } from './ondemand-mesh.js';
import { profile } from './profile.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const MODE = process.env.MODE ?? 'delta';
const weftdDefaults = parseFlags([], {});
const WORKLOADS = 100;
const log = createLogger('bench', { silent: true });
const absNow = (): number => performance.timeOrigin + performance.now();

/**
 * The mesh: SERVICES services in 20 namespaces, a VirtualService on every fifth (ondemand-mesh.ts).
 * A change (a new generation) moves svc0's first route timeout to `generation` seconds. Built
 * once and kept, as weftd's informer cache keeps every object until it is updated: a change
 * replaces svc0's VirtualService only (until 2026-12-07 every change rebuilt the whole mesh, which
 * cost weftd's heap ~1 MB of new objects per change and made it translate everything again: its
 * carry-over tells edits apart by object identity, ADR 0023 decision 8).
 */
const services: MeshService[] = [];
const virtualServices: Record<string, unknown>[] = [];
for (let i = 0; i < SERVICES; i++) {
  const svc = meshService(i, (j) => ({
    address: podAddress(i, j),
    labels: { app: `svc${i}`, version: `v${j % 2}` },
    ports: { http: 8080, grpc: 9090 },
  }));
  services.push(svc);
  if (i % 5 === 0) virtualServices.push(canaryRoute(i, svc, 1));
}

function canaryRoute(i: number, svc: MeshService, timeoutS: number): Record<string, unknown> {
  const canary = {
    match: [{ headers: { 'x-canary': { exact: 'yes' } } }],
    route: [{ destination: { host: svc.host, port: { number: 80 } } }],
    timeout: `${timeoutS}s`,
  };
  return meshVirtualService(i, svc, [canary]);
}

function meshSnapshot(generation: number): Record<string, unknown> {
  return {
    services,
    virtualServices: [canaryRoute(0, services[0]!, generation), ...virtualServices.slice(1)],
  };
}

const registry = new SnapshotRegistry(meshSnapshot);
/**
 * Pod `<mode>-<i>` is a replica of Deployment `w<i % WORKLOADS>` (generateName and
 * pod-template-hash as a ReplicaSet sets them), so the replicas of a workload get one config, as
 * in a cluster. PODS=unique: every pod its own workload (its name in its telemetry: a config per
 * pod), what this bench simulated before.
 */
registry.pod = (namespace, name) => {
  const app = `w${Number(name.slice(name.lastIndexOf('-') + 1)) % WORKLOADS}`;
  if (process.env.PODS === 'unique') return { namespace, name, labels: { app } };
  const hash = '5d8f9c7b4';
  return { namespace, name, generateName: `${app}-${hash}-`, labels: { app, 'pod-template-hash': hash } };
};
const metrics = createWeftdMetrics(false);
const discovery = new DiscoveryService({
  registry,
  generator: new ConfigGenerator({
    domainSuffix: 'cluster.local',
    mesh: { ...DEFAULT_MESH, onDemandHosts: MODE.startsWith('ondemand') },
    log,
  }),
  // on demand the fleet's token is its pod's name (asks need a pod-bound token)
  authenticate: (token) =>
    Promise.resolve({
      identity: {
        namespace: 'ns',
        serviceAccount: 'sa',
        ...(MODE.startsWith('ondemand') ? { podName: token } : {}),
      },
      cached: true,
    }),
  metrics,
  log,
  // DEBOUNCE=weftd: weftd's own defaults (as deployed); else none, each change its own push (the worst case)
  debounce:
    process.env.DEBOUNCE === 'weftd'
      ? { afterMs: weftdDefaults.pushDebounceMs, maxMs: weftdDefaults.pushDebounceMaxMs }
      : { afterMs: 0, maxMs: 0 },
  pingIntervalMs: 60_000,
  ...(MODE === 'delta-before' ? { ackKeepAliveMs: 0 } : {}),
});
const now = new Date();
const ca = createCA({ commonName: 'bench', ttlMs: 3600_000, now });
const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
const server = createServer(
  { cert: leaf.certPem, key: leaf.keyPem, ...serverTimeoutOptions() },
  discovery.handle,
);
// ACKs on the stream (weft-discovery/1 upgrades); a BASELINE_ROOT checkout from before has no listener
const upgrade = (discovery as Partial<Pick<DiscoveryService, 'upgrade'>>).upgrade;
if (upgrade) server.on('upgrade', upgrade);
let handshakes = 0;
server.on('secureConnection', () => handshakes++);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

/**
 * The time of each proxy's ACK of a push computed at `generation` or later (the change being
 * measured), as weftd records it: a wrapper around recordAck, no polling on weftd's event loop.
 */
interface Waiting {
  generation: number;
  proxies: number;
  ackedAt: Map<string, number>;
  done: () => void;
}
let waiting: Waiting | null = null;
const recordAck = discovery.recordAck.bind(discovery);
discovery.recordAck = (ack, identity) => {
  const result = recordAck(ack, identity);
  const w = waiting;
  if (
    result === 'ack' &&
    w !== null &&
    !w.ackedAt.has(ack.pod) &&
    discovery.connectionOf(ack.nonce)!.evaluatedAt >= w.generation
  ) {
    w.ackedAt.set(ack.pod, absNow());
    if (w.ackedAt.size === w.proxies) w.done();
  }
  return result;
};

const pushedBytes = async (): Promise<number> => {
  const text = await metrics.registry.getSingleMetricAsString('weft_weftd_xds_pushed_bytes_total');
  let sum = 0;
  for (const m of text.matchAll(/\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
};

/** Applies `changes` registry changes `gapMs` apart; resolves when every proxy ACKed the last one's version. */
async function changes(count: number, gapMs: number): Promise<Record<string, unknown>> {
  const proxies = discovery.list().length;
  const ackedAt = new Map<string, number>();
  const bytes0 = await pushedBytes();
  const handshakes0 = handshakes;
  const cpu0 = process.cpuUsage();
  let peakRss = process.memoryUsage.rss();
  const rssBefore = peakRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  const t0 = absNow();
  let lastAt = t0;
  let done!: () => void;
  const allAcked = new Promise<void>((r) => (done = r));
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    lastAt = absNow();
    registry.change();
  }
  // only ACKs of the last change's pushes end it (those of earlier changes in a burst do not count)
  waiting = { generation: registry.generation, proxies, ackedAt, done };
  await allAcked;
  waiting = null;
  const end = absNow();
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  // checked after the clock stopped: every proxy ACKed the version weftd computes for it now
  for (const c of discovery.list())
    if (c.acked?.version !== discovery.configOfStream(c.id)!.version)
      throw new Error(`proxy ${c.pod} ACKed ${c.acked?.version}, not its current version`);
  return {
    t0,
    lastAt,
    end,
    ackedAt: [...ackedAt.values()],
    bytes: (await pushedBytes()) - bytes0,
    newConnections: handshakes - handshakes0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssBeforeMb: rssBefore / 1e6,
    peakRssMb: Math.max(peakRss, process.memoryUsage.rss()) / 1e6,
    proxies,
  };
}

/**
 * weftd's peak RSS while the fleet connects (sampled from the first 'connecting' command: the
 * orchestrator sends it before the fleet connects), until `ready`.
 */
let connectPeakRss = 0;
let connectSampler: NodeJS.Timeout | undefined;
function connecting(): Record<string, unknown> {
  connectPeakRss = process.memoryUsage.rss();
  connectSampler = setInterval(
    () => (connectPeakRss = Math.max(connectPeakRss, process.memoryUsage.rss())),
    20,
  );
  return {};
}

/** All `proxies` streams connected and their first configs ACKed; weftd's RSS then, and its peak since `connecting`. */
async function ready(proxies: number): Promise<Record<string, unknown>> {
  for (;;) {
    const list = discovery.list();
    if (list.length === proxies && list.every((c) => c.sent && c.acked?.nonce === c.sent.nonce)) {
      clearInterval(connectSampler);
      const rss = process.memoryUsage.rss();
      return {
        bytesPerProxy: (await pushedBytes()) / proxies,
        readyAt: absNow(),
        rssReadyMb: rss / 1e6,
        connectPeakRssMb: Math.max(connectPeakRss, rss) / 1e6,
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** weftd's memory after a full collection (the child runs with --expose-gc), in MB. */
function memory(): Record<string, number> {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rssMb: m.rss / 1e6, heapUsedMb: m.heapUsed / 1e6, externalMb: m.external / 1e6 };
}

/** The proxy's side, in isolation: one config of this mesh, one VirtualService change. */
function proxyCost(): Record<string, number> {
  const id = discovery.list()[0]!.id;
  const before = discovery.configOfStream(id)!;
  registry.change();
  const after = discovery.configOfStream(id)!;
  const fullLine = before.encode();
  const from = planFor(before.config)!;
  const delta = encodeDelta(
    from.held,
    planFor(after.config)!,
    after.version,
    '0'.repeat(32),
    () => Infinity,
  )!;
  const time = (f: () => void): number => {
    const xs = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      f();
      xs.push(performance.now() - t);
    }
    return xs.sort((a, b) => a - b)[2]!;
  };
  const holder = new ResourceHolder();
  const decodedFull = new MessageDecoder().push(fullLine)[0] as { config: typeof before.config };
  holder.commit(holder.fromFull(decodedFull.config, before.version));
  return {
    decodeFullMs: time(() => new MessageDecoder().push(fullLine)),
    fromFullMs: time(() => holder.fromFull(decodedFull.config, before.version)),
    decodeAndApplyDeltaMs: time(() => {
      const [m] = new MessageDecoder().push(delta.line);
      if (m?.type !== 'delta') throw new Error('not a delta');
      holder.applyDelta(m);
    }),
  };
}

interface Command {
  id: number;
  cmd: 'connecting' | 'ready' | 'changes' | 'proxyCost' | 'profile' | 'memory' | 'stop';
  name?: string;
  proxies?: number;
  count?: number;
  gapMs?: number;
}
process.on('message', (m: Command) => {
  const run = async (): Promise<unknown> => {
    switch (m.cmd) {
      case 'connecting':
        return connecting();
      case 'ready':
        return ready(m.proxies!);
      case 'changes':
        return changes(m.count!, m.gapMs ?? 0);
      case 'proxyCost':
        return proxyCost();
      case 'memory':
        return memory();
      case 'profile':
        return profile(m.name!);
      case 'stop':
        discovery.close();
        server.closeAllConnections();
        server.close();
        setImmediate(() => process.exit(0));
        return {};
    }
  };
  run().then(
    (value) => process.send!({ id: m.id, value }),
    (err: unknown) => process.send!({ id: m.id, error: String(err) }),
  );
});
process.send!({ id: 0, value: { port: (server.address() as AddressInfo).port, ca: ca.certPem } });
