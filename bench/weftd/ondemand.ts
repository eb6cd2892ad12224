/**
 * On-demand hosts (ADR 0023), on against off in the same run, no cluster: SERVICES services
 * (default 1,000) in 20 namespaces (2 ports, 3 endpoints each, a VirtualService on every fifth),
 * weftd's real DiscoveryService and ConfigGenerator on a real HTTPS server, one sidecar in ns0
 * that calls CALLS (default 5) services of other namespaces.
 *
 * 1. Bytes: the config that sidecar holds (JSON bytes of what its real DiscoveryClient applied)
 *    and the bytes weftd wrote to its stream, with on-demand off (every host) and on (ns0's
 *    services, then one ask per called service), medians over REPS.
 * 2. First-request latency: a real `proxy sidecar` process against an on-demand weftd; for each
 *    of HOSTS services of other namespaces (all served by one local HTTP upstream), the first
 *    request (held while weftd subscribes the proxy and pushes, then routed) against the second
 *    one to the same host (already held: the baseline), through the sidecar's outbound capture;
 *    medians.
 * 3. weftd's translation per change for that sidecar (a new registry generation, then its config),
 *    off (shared by every proxy of a namespace without a Sidecar) against on (its own namespace
 *    plus its CALLS subscriptions: shared only by proxies with the same subscriptions), medians
 *    over REPS × 5.
 * 4. weftd's translation per change for a fleet: WORKLOADS Deployments per namespace (default 5,
 *    so 100), each calling CALLS services of other namespaces of its own (a distinct subscription
 *    set per Deployment, its replicas share it). Off, the Deployments of a namespace share one
 *    translation; on, each set is its own. Two kinds of change: one service's endpoints move
 *    (the sets that did not read it are carried over, ADR 0023 decision 8), and one
 *    VirtualService is edited (the sets that import it are translated). All the configs one
 *    change costs weftd, and how many Deployments' configs changed (weftd pushes to those),
 *    medians over REPS × 2 changes.
 * Writes bench/weftd/last-run-ondemand.json.
 *   npx tsx bench/weftd/ondemand.ts        SERVICES=1000 CALLS=5 REPS=3 HOSTS=20 WORKLOADS=5
 *   WEFTD_BENCH=ondemand bash bench/weftd/run.sh
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import { createLogger } from '../../pkg/log/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { DiscoveryClient } from '../../proxy/discovery/client.js';
import { startDiscoveryServer } from '../../test/support/discovery-server.js';
import { startProxyProcess } from '../../test/support/proxy-process.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { sleep } from '../../test/support/wait.js';
import { meshSnapshot, NAMESPACES } from './ondemand-mesh.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const CALLS = Number(process.env.CALLS ?? 5);
const REPS = Number(process.env.REPS ?? 3);
const HOSTS = Number(process.env.HOSTS ?? 20);
const WORKLOADS = Number(process.env.WORKLOADS ?? 5);
const log = createLogger('bench', { silent: true });
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function weftd(onDemandHosts: boolean, upstreamPort: number | null) {
  const w = await startDiscoveryServer({
    registry: new SnapshotRegistry(() => meshSnapshot(SERVICES, upstreamPort)),
    onDemandHosts,
    identity: { namespace: 'ns0', serviceAccount: 'sa', podName: 'web-0' },
    log,
  });
  const pushed = async (): Promise<number> =>
    (await w.metrics.pushedBytes.get()).values.reduce((a, v) => a + v.value, 0);
  return { ...w, pushed };
}

const vhostNames = (c: ProxyConfig): Set<string> =>
  new Set(c.listeners.flatMap((l) => (l.protocol === 'HTTP' ? l.virtualHosts.map((v) => v.name) : [])));

/** One sidecar in ns0 with the real discovery client; on demand it asks for CALLS services of other namespaces. */
async function heldBytes(onDemand: boolean): Promise<{ held: number; pushed: number; hosts: number }> {
  const w = await weftd(onDemand, null);
  let latest: ProxyConfig | null = null;
  const client = new DiscoveryClient({
    address: w.address,
    caRootPath: w.rootPath,
    tokenPath: w.tokenPath,
    request: { kind: 'sidecar', namespace: 'ns0', pod: 'web-0' },
    log,
    onConfig: (c) => {
      latest = c;
      return Promise.resolve();
    },
  });
  void client.run();
  const until = async (ok: (c: ProxyConfig) => boolean): Promise<ProxyConfig> => {
    for (let i = 0; i < 600; i++) {
      if (latest !== null && ok(latest)) return latest;
      await sleep(50);
    }
    throw new Error('no config in time');
  };
  await until(() => true);
  // services of other namespaces: svc1 (ns1), svc2 (ns2), ...
  const called = Array.from(
    { length: CALLS },
    (_, k) => `svc${k + 1}.ns${(k + 1) % NAMESPACES}.svc.cluster.local`,
  );
  if (onDemand)
    for (const name of called) {
      const answer = await client.askHosts([name]);
      if (answer[name] !== 'found') throw new Error(`${name}: ${answer[name]}`);
    }
  const cfg = await until((c) => called.every((h) => vhostNames(c).has(`${h}:80`)));
  const out = {
    held: Buffer.byteLength(JSON.stringify(cfg)),
    pushed: await w.pushed(),
    hosts: vhostNames(cfg).size,
  };
  client.stop();
  await w.close();
  return out;
}

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', headers: { host, connection: 'close' }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - t)
            : reject(new Error(`${host}: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A real `proxy sidecar` process against an on-demand weftd: first (held) and second request per host. */
async function firstRequestLatency(): Promise<{ first: number[]; second: number[] }> {
  const upstream = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const w = await weftd(true, (upstream.address() as AddressInfo).port);
  const proxy = await startProxyProcess('sidecar', w, {
    POD_NAME: 'web-0',
    POD_NAMESPACE: 'ns0',
    WEFT_LOG_LEVEL: 'info',
  });
  try {
    const port = proxy.ports.outbound!;
    while (!w.discovery.list().some((c) => c.version !== null)) await sleep(50);
    await sleep(500);
    // warm the path with a host of its own namespace
    for (let i = 0; i < 5; i++) await get(port, 'svc0.ns0.svc.cluster.local');
    const first: number[] = [];
    const second: number[] = [];
    for (let k = 0; k < HOSTS; k++) {
      const i = k + 1 + Math.floor(k / (NAMESPACES - 1)); // never ns0
      const host = `svc${i}.ns${i % NAMESPACES}.svc.cluster.local`;
      first.push(await get(port, host));
      second.push(await get(port, host));
      await sleep(150); // under the proxy's ask rate (10/s)
    }
    return { first, second };
  } finally {
    proxy.child.kill('SIGKILL');
    await w.close();
    upstream.close();
  }
}

/** weftd's config generator, with on-demand hosts on or off. */
const generator = (onDemand: boolean): ConfigGenerator =>
  new ConfigGenerator({
    domainSuffix: 'cluster.local',
    mesh: { ...structuredClone(DEFAULT_MESH), onDemandHosts: onDemand },
    log,
  });

/** ms for weftd to give the ns0 sidecar its config after a registry change, on demand or not. */
function translationMs(onDemand: boolean): number[] {
  const registry = new SnapshotRegistry(() => meshSnapshot(SERVICES, null));
  const gen = generator(onDemand);
  const pod = { namespace: 'ns0', name: 'web-0', labels: { app: 'web' } };
  const subscribed = onDemand
    ? Array.from(
        { length: CALLS },
        (_, k) => `svc${k + 1}.ns${(k + 1) % NAMESPACES}.svc.cluster.local`,
      ).flatMap((name) => gen.resolveOnDemand(registry.snapshot(), pod, name))
    : [];
  const out: number[] = [];
  for (let i = 0; i < REPS * 5 + 1; i++) {
    registry.change();
    const t = performance.now();
    gen.forProxy(registry.snapshot(), 'sidecar', pod, subscribed).encode();
    if (i > 0) out.push(performance.now() - t); // the first warms the JIT
  }
  return out;
}

/**
 * A mesh whose changes are what a cluster sees: `endpoints` moves one service's endpoints (as an
 * EndpointSlice update does: every service record is rebuilt, the config objects are kept, as
 * weftd's registry does), `config` edits one VirtualService (a new object).
 */
function changingMesh(kind: 'endpoints' | 'config'): SnapshotRegistry {
  const base = meshSnapshot(SERVICES, null) as {
    services: { endpoints: { address: string }[] }[];
    virtualServices: Record<string, unknown>[];
  };
  let virtualServices = base.virtualServices;
  return new SnapshotRegistry((g) => {
    if (kind === 'endpoints' && g > 1) {
      // the endpoints stay where they moved: each generation changes one service
      const moved = base.services[(g * 37) % SERVICES]!;
      moved.endpoints = moved.endpoints.map((e, j) => ({ ...e, address: `10.250.${g & 255}.${j}` }));
    }
    const services = base.services.map((svc) => structuredClone(svc));
    if (kind === 'config' && g > 1) {
      const k = (g * 7) % virtualServices.length;
      // a new object with a new retry count: its proxies get a new config
      const edited = (vs: Record<string, unknown>): Record<string, unknown> => {
        const copy = structuredClone(vs) as { spec: { http: { retries?: { attempts: number } }[] } };
        for (const r of copy.spec.http) if (r.retries) r.retries.attempts = 1 + (g % 3);
        return copy;
      };
      virtualServices = virtualServices.map((vs, i) => (i === k ? edited(vs) : vs));
    }
    return { services, virtualServices };
  });
}

/**
 * ms for weftd to bring a fleet up to date after one registry change of `kind`: one config per
 * Deployment (its replicas share the translation), WORKLOADS per namespace, each subscribed on
 * demand to CALLS services of other namespaces picked for it; off, every Deployment has its
 * whole scope. On demand, an endpoint change translates only the sets that read that service
 * (the others are carried, controlplane/carryover.ts); a VirtualService edit, the sets that import it.
 */
function fleetTranslationMs(
  onDemand: boolean,
  kind: 'endpoints' | 'config',
): { ms: number[]; changed: number[] } {
  const registry = changingMesh(kind);
  const gen = generator(onDemand);
  const fleet = Array.from({ length: NAMESPACES * WORKLOADS }, (_, w) => {
    const pod = { namespace: `ns${w % NAMESPACES}`, name: `w${w}-0`, labels: { app: `w${w}` } };
    // service i lives in ns<i % NAMESPACES>: a stride that is no multiple of it leaves the namespace
    const called = Array.from({ length: CALLS }, (_, k) => (w * 7919 + k * 21 + 1) % SERVICES).map(
      (i) => `svc${i}.ns${i % NAMESPACES}.svc.cluster.local`,
    );
    const subscribed = onDemand
      ? called.flatMap((name) => gen.resolveOnDemand(registry.snapshot(), pod, name))
      : [];
    return { pod, subscribed };
  });
  const out = { ms: [] as number[], changed: [] as number[] };
  let versions = new Map<string, string>();
  for (let i = 0; i < REPS * 2 + 1; i++) {
    registry.change();
    const t = performance.now();
    const now = new Map<string, string>();
    for (const f of fleet) {
      const g = gen.forProxy(registry.snapshot(), 'sidecar', f.pod, f.subscribed);
      g.encode();
      now.set(f.pod.name, g.version);
    }
    if (i > 0) {
      out.ms.push(performance.now() - t); // the first warms the JIT
      // the Deployments whose config changed: weftd pushes to their proxies only
      out.changed.push([...now].filter(([name, v]) => versions.get(name) !== v).length);
    }
    versions = now;
  }
  return out;
}

async function main(): Promise<void> {
  const bytes: Record<'off' | 'on', { held: number[]; pushed: number[]; hosts: number }> = {
    off: { held: [], pushed: [], hosts: 0 },
    on: { held: [], pushed: [], hosts: 0 },
  };
  for (let r = 0; r < REPS; r++)
    for (const mode of ['off', 'on'] as const) {
      const m = await heldBytes(mode === 'on');
      bytes[mode].held.push(m.held);
      bytes[mode].pushed.push(m.pushed);
      bytes[mode].hosts = m.hosts;
    }
  const translation = { off: [] as number[], on: [] as number[] };
  for (let r = 0; r < 2; r++)
    for (const mode of ['off', 'on'] as const) translation[mode].push(...translationMs(mode === 'on'));
  const fleet = {
    endpoints: {
      off: [] as number[],
      on: [] as number[],
      offChanged: [] as number[],
      onChanged: [] as number[],
    },
    config: {
      off: [] as number[],
      on: [] as number[],
      offChanged: [] as number[],
      onChanged: [] as number[],
    },
  };
  for (const kind of ['endpoints', 'config'] as const)
    for (const mode of ['off', 'on'] as const) {
      const { ms, changed } = fleetTranslationMs(mode === 'on', kind);
      fleet[kind][mode].push(...ms);
      fleet[kind][`${mode}Changed`].push(...changed);
    }
  const lat = await firstRequestLatency();
  const result = {
    services: SERVICES,
    calls: CALLS,
    reps: REPS,
    bytes: Object.fromEntries(
      (['off', 'on'] as const).map((m) => [
        m,
        {
          heldBytes: median(bytes[m].held),
          pushedBytes: median(bytes[m].pushed),
          virtualHosts: bytes[m].hosts,
        },
      ]),
    ),
    heldRatio: median(bytes.on.held) / median(bytes.off.held),
    translationMsPerChange: { off: median(translation.off), on: median(translation.on) },
    fleetTranslationMsPerChange: {
      deployments: NAMESPACES * WORKLOADS,
      ...Object.fromEntries(
        (['endpoints', 'config'] as const).map((k) => [
          k,
          {
            off: median(fleet[k].off),
            on: median(fleet[k].on),
            ratio: median(fleet[k].on) / median(fleet[k].off),
            deploymentsPushed: { off: median(fleet[k].offChanged), on: median(fleet[k].onChanged) },
          },
        ]),
      ),
    },
    latencyMs: {
      hosts: HOSTS,
      firstMedian: median(lat.first),
      secondMedian: median(lat.second),
      addedMedian: median(lat.first.map((f, i) => f - lat.second[i]!)),
      firstMax: Math.max(...lat.first),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(
    path.join(ROOT, 'bench/weftd/last-run-ondemand.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
}

await main();
