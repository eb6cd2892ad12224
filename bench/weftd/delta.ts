/**
 * Delta pushes (ADR 0020) against whole-config pushes, in the same run: SERVICES services
 * (default 1,000: 2 ports, 3 endpoints each, 1 in 5 with a VirtualService) and PROXIES simulated
 * sidecars (default 2,000, 100 workloads) holding real discovery streams (TLS, NDJSON) to weftd's
 * real DiscoveryService. One VirtualService change (a route timeout) is applied; the clock runs
 * from the registry change to weftd having recorded every proxy's ACK of the new version (every
 * proxy sees the service: all are affected). Two fleets of the same size, one asking for deltas
 * (`delta=1`), one as an older proxy (whole configs, the baseline); changes alternate between
 * them, REPS each. Reported: bytes written per proxy for the change (weftd's
 * weft_weftd_xds_pushed_bytes_total), and the median and p99 over proxies of the time to each
 * proxy's recorded ACK, medians over the reps. Each fleet has its own DiscoveryService and registry
 * (the same mesh), so a change measured on one fleet does not push to the other.
 *
 * The simulated proxies ACK a config as soon as its last byte arrived (they do not compile it:
 * a real proxy adds its compile time, the same in both modes, to each proxy's own ACK); the
 * fleet and weftd share this process and its CPU, so times include the fleet's TLS and parsing.
 * Then the proxy's own cost for one change, on one config of the same mesh (medians of 5): decoding
 * the whole config line (what every push cost it before), against decoding the delta line and
 * applying it to its held resources (copy, verify, rebuild); and hashing a whole config's
 * resources once (what a full config now costs it on top).
 * Writes bench/weftd/last-run-delta.json.
 *   npx tsx bench/weftd/delta.ts        SERVICES=1000 PROXIES=2000 REPS=3
 */
import { writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DiscoveryService } from '../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import { createWeftdMetrics } from '../../controlplane/metrics.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { discoveryQuery } from '../../pkg/discovery/protocol.js';
import { serverTimeoutOptions } from '../../pkg/http/timeouts.js';
import { createLogger } from '../../pkg/log/index.js';
import { AckSender } from '../../proxy/discovery/ack.js';
import { ResourceHolder } from '../../proxy/discovery/held.js';
import { encodeDelta, planFor } from '../../controlplane/delta.js';
import { MessageDecoder } from '../../pkg/discovery/protocol.js';
import { meshService, meshVirtualService, podAddress, type MeshService } from './ondemand-mesh.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const PROXIES = Number(process.env.PROXIES ?? 2000);
const REPS = Number(process.env.REPS ?? 3);
const WORKLOADS = 100;
const MODES = ['delta', 'full'] as const;
type Mode = (typeof MODES)[number];
const log = createLogger('bench', { silent: true });

/**
 * The mesh: SERVICES services in 20 namespaces, a VirtualService on every fifth (ondemand-mesh.ts).
 * A change (a new generation) moves svc0's first route timeout to `generation` seconds.
 */
function meshSnapshot(generation: number): Record<string, unknown> {
  const services: MeshService[] = [];
  const virtualServices: Record<string, unknown>[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const svc = meshService(i, (j) => ({
      address: podAddress(i, j),
      labels: { app: `svc${i}`, version: `v${j % 2}` },
      ports: { http: 8080, grpc: 9090 },
    }));
    services.push(svc);
    if (i % 5 === 0) {
      const canary = {
        match: [{ headers: { 'x-canary': { exact: 'yes' } } }],
        route: [{ destination: { host: svc.host, port: { number: 80 } } }],
        timeout: `${i === 0 ? generation : 1}s`,
      };
      virtualServices.push(meshVirtualService(i, svc, [canary]));
    }
  }
  return { services, virtualServices };
}

function meshRegistry(): SnapshotRegistry {
  return new SnapshotRegistry(meshSnapshot, {
    podLabels: (name) => ({ app: `w${Number(name.slice(name.lastIndexOf('-') + 1)) % WORKLOADS}` }),
  });
}

const now = new Date();
const ca = createCA({ commonName: 'bench', ttlMs: 3600_000, now });
const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
interface Setup {
  registry: SnapshotRegistry;
  discovery: DiscoveryService;
  metrics: ReturnType<typeof createWeftdMetrics>;
  close(): void;
  port: number;
}

async function setup(): Promise<Setup> {
  const registry = meshRegistry();
  const metrics = createWeftdMetrics(false);
  const discovery = new DiscoveryService({
    registry,
    generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
    authenticate: () =>
      Promise.resolve({ identity: { namespace: 'ns', serviceAccount: 'sa' }, cached: true }),
    metrics,
    log,
    debounce: { afterMs: 0, maxMs: 0 },
    pingIntervalMs: 60_000,
  });
  const server = createServer(
    { cert: leaf.certPem, key: leaf.keyPem, ...serverTimeoutOptions() },
    discovery.handle,
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    registry,
    discovery,
    metrics,
    port: (server.address() as AddressInfo).port,
    close: () => {
      discovery.close();
      server.closeAllConnections();
      server.close();
    },
  };
}
const setups: Record<Mode, Setup> = { delta: await setup(), full: await setup() };

/** Only the head of a line is read: version and nonce come first; the rest is counted and dropped. */
const HEAD = /"nonce":"([0-9a-f]{32})".*?"version":"([^"]+)"|"version":"([^"]+)","nonce":"([0-9a-f]{32})"/;

interface SimProxy {
  pod: string;
  mode: Mode;
  acks: AckSender;
  /** performance.now() when the newest line was complete. */
  lineAt: number;
}

function connect(mode: Mode, i: number): Promise<SimProxy> {
  const pod = `${mode}-${i}`;
  const { port } = setups[mode];
  const p: SimProxy = {
    pod,
    mode,
    lineAt: 0,
    // the fleet shares one event loop: after an idle spell, 2,000 ACK connections reconnect at
    // once and their TLS handshakes queue behind each other, so attempts get more time than a
    // proxy's own process needs
    acks: new AckSender({
      attempts: 10,
      timeoutMs: 60_000,
      host: '127.0.0.1',
      port,
      servername: undefined,
      ca: () => ca.certPem,
      token: () => 'bench',
      log,
    }),
  };
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      ca: ca.certPem,
      path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true, delta: mode === 'delta' }),
      headers: { authorization: 'Bearer bench' },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream ${pod}: HTTP ${res.statusCode}`));
      let head = '';
      res.on('data', (chunk: Buffer) => {
        let from = 0;
        for (;;) {
          const nl = chunk.indexOf(10, from);
          const part = chunk.subarray(from, nl < 0 ? chunk.length : nl);
          if (head.length < 400) head += part.subarray(0, 400 - head.length).toString('latin1');
          if (nl < 0) break;
          p.lineAt = performance.now();
          const m = HEAD.exec(head.slice(0, 400));
          if (m) {
            const nonce = m[1] ?? m[4]!;
            const version = m[2] ?? m[3]!;
            void p.acks.send({ kind: 'sidecar', namespace: 'ns', pod, version, nonce });
            resolve(p); // connected once the first config is in: a fleet is connected in batches, not 3 GB at once
          }
          head = '';
          from = nl + 1;
        }
      });
    });
    req.end();
  });
}

async function until(what: string, ok: () => boolean, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fleet: SimProxy[] = [];
for (const mode of MODES)
  for (let i = 0; i < PROXIES; i += 50)
    fleet.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, PROXIES - i) }, (_, j) => connect(mode, i + j)),
      )),
    );

const inMode = (mode: Mode) => setups[mode].discovery.list();
const allAcked = (mode: Mode, versionOf: (pod: string) => string): boolean =>
  inMode(mode).length === PROXIES &&
  inMode(mode).every((c) => c.sent?.version === versionOf(c.pod) && c.acked?.nonce === c.sent.nonce);
const currentVersions = (mode: Mode): Map<string, string> => {
  const out = new Map<string, string>();
  for (const p of fleet)
    if (p.mode === mode) out.set(p.pod, setups[mode].discovery.configFor('sidecar', 'ns', p.pod)!.version);
  return out;
};
const bytes = async (mode: Mode): Promise<number> => {
  const text = await setups[mode].metrics.registry.getSingleMetricAsString(
    'weft_weftd_xds_pushed_bytes_total',
  );
  return Number(new RegExp(`kind="${mode}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
};

for (const m of MODES) {
  const v = currentVersions(m);
  await until(`the first configs ACKed (${m})`, () => allAcked(m, (pod) => v.get(pod)!));
}
const firstFullBytes = (await bytes('full')) / PROXIES;

interface Sample {
  bytesPerProxy: number;
  /** Registry change → the line complete at the proxy. */
  receivedMedianMs: number;
  receivedP99Ms: number;
  /** Registry change → weftd recorded the proxy's ACK. */
  medianMs: number;
  p99Ms: number;
  allMs: number;
}
const samples: Record<Mode, Sample[]> = { delta: [], full: [] };
const quantile = (xs: number[], q: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/**
 * One VirtualService change on `mode`'s registry, until every proxy of that fleet ACKed it (the
 * time of each proxy's ACK as weftd recorded it, polled every 5 ms).
 */
async function change(mode: Mode): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const b0 = await bytes(mode);
  const ackedAt = new Map<string, number>();
  const t0 = performance.now();
  setups[mode].registry.change();
  const versions = currentVersions(mode);
  const pending = new Set(inMode(mode).map((c) => c.pod));
  await until(`change (${mode})`, () => {
    const t = performance.now();
    for (const c of inMode(mode))
      if (
        pending.has(c.pod) &&
        c.sent &&
        c.sent.version === versions.get(c.pod) &&
        c.acked?.nonce === c.sent.nonce
      ) {
        pending.delete(c.pod);
        ackedAt.set(c.pod, t - t0);
      }
    return pending.size === 0;
  }).catch((err: unknown) => {
    const stuck = inMode(mode).filter((c) => pending.has(c.pod));
    const sim = fleet.filter((p) => pending.has(p.pod));
    const sample = stuck[0];
    throw new Error(
      `${String(err)}: ${stuck.length} proxies not ACKed; e.g. ${JSON.stringify({ sent: sample?.sent, acked: sample?.acked, want: versions.get(sample?.pod ?? '') })}; ` +
        `their senders: ${JSON.stringify(sim.reduce((a, p) => ({ sent: a.sent + p.acks.sent, failed: a.failed + p.acks.failed }), { sent: 0, failed: 0 }))}`,
    );
  });
  const times = [...ackedAt.values()];
  const received = fleet.filter((p) => p.mode === mode).map((p) => p.lineAt - t0);
  samples[mode].push({
    bytesPerProxy: ((await bytes(mode)) - b0) / PROXIES,
    receivedMedianMs: quantile(received, 0.5),
    receivedP99Ms: quantile(received, 0.99),
    medianMs: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    allMs: Math.max(...times),
  });
}

await change('delta'); // warm-up: the first delta splits and diffs the shared translation cold
samples.delta.length = 0;
for (let rep = 0; rep < REPS; rep++)
  for (const m of rep % 2 === 0 ? MODES : [...MODES].reverse()) await change(m);

const med = (xs: number[]): number => quantile(xs, 0.5);

/** The proxy's side, in isolation: one config of this mesh, one VirtualService change. */
function proxyCost(): { decodeFullMs: number; fromFullMs: number; decodeAndApplyDeltaMs: number } {
  const { registry, discovery } = setups.delta;
  const before = discovery.configFor('sidecar', 'ns', 'delta-0')!;
  registry.change();
  const after = discovery.configFor('sidecar', 'ns', 'delta-0')!;
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
    return med(xs);
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
const proxy = proxyCost();
const result = MODES.map((m) => ({
  mode: m,
  bytesPerProxy: med(samples[m].map((s) => s.bytesPerProxy)),
  receivedMedianMs: med(samples[m].map((s) => s.receivedMedianMs)),
  receivedP99Ms: med(samples[m].map((s) => s.receivedP99Ms)),
  medianMs: med(samples[m].map((s) => s.medianMs)),
  p99Ms: med(samples[m].map((s) => s.p99Ms)),
}));
const [d, f] = result as [(typeof result)[0], (typeof result)[0]];
process.stdout.write(
  `| ${SERVICES} services, ${PROXIES} proxies per mode, one VirtualService change (median of ${REPS}) | bytes per proxy | apply → received median ms | p99 ms | apply → ACK median ms | p99 ms |\n|---|---|---|---|---|---|\n`,
);
for (const r of result)
  process.stdout.write(
    `| ${r.mode} | ${r.bytesPerProxy.toFixed(0)} | ${r.receivedMedianMs.toFixed(0)} | ${r.receivedP99Ms.toFixed(0)} | ${r.medianMs.toFixed(0)} | ${r.p99Ms.toFixed(0)} |\n`,
  );
process.stdout.write(
  `| delta / full | ${((100 * d.bytesPerProxy) / f.bytesPerProxy).toFixed(3)} % | ${(d.receivedMedianMs / f.receivedMedianMs).toFixed(2)}× | ${(d.receivedP99Ms / f.receivedP99Ms).toFixed(2)}× | ${(d.medianMs / f.medianMs).toFixed(2)}× | ${(d.p99Ms / f.p99Ms).toFixed(2)}× |\n` +
    `(first config per proxy: ${firstFullBytes.toFixed(0)} bytes)\n` +
    `proxy side, one change: decode the whole config ${proxy.decodeFullMs.toFixed(1)} ms; decode + apply the delta ${proxy.decodeAndApplyDeltaMs.toFixed(1)} ms; hash a whole config's resources (once per full config) ${proxy.fromFullMs.toFixed(1)} ms\n`,
);
writeFileSync(
  new URL('./last-run-delta.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), services: SERVICES, proxies: PROXIES, reps: REPS, firstFullBytes, result, proxy, samples }, null, 2)}\n`,
);
for (const p of fleet) p.acks.stop();
for (const m of MODES) setups[m].close();
