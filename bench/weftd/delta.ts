/**
 * Delta pushes (ADR 0020) against whole-config pushes, in the same run: SERVICES services
 * (default 1,000: 2 ports, 3 endpoints each, 1 in 5 with a VirtualService) and PROXIES simulated
 * sidecars (default 2,000, 100 workloads) holding real discovery streams (TLS, NDJSON) to weftd's
 * real DiscoveryService. One VirtualService change (a route timeout) is applied; the clock runs
 * from the registry change to weftd having recorded every proxy's ACK of it (every proxy sees
 * the service: all are affected).
 *
 * Three processes per mode: this orchestrator, weftd (delta-weftd.ts: the DiscoveryService and
 * its HTTPS server, nothing else, so its CPU time and RSS are weftd's) and the fleet
 * (delta-fleet.ts: the simulated proxies, answering as the proxy does). Modes run one after the
 * other, each with fresh processes:
 *   - delta: weftd as it is, proxies asking for deltas;
 *   - delta-before: the same, but weftd closes an idle ACK connection after its 30 s keep-alive
 *     timeout, as before the ADR 0020 amendment (the baseline of that change);
 *   - baseline: the weftd of another checkout (BASELINE_ROOT, e.g. a worktree of main with this
 *     bench's delta-*.ts and profile.ts copied in), proxies asking for deltas: weft before;
 *   - full: proxies asking as an older proxy (whole configs), FULL_PROXIES of them (default
 *     PROXIES; the whole-config fleet moves ~1.6 MB per proxy per change, so a smaller one keeps
 *     memory bounded: bytes per proxy do not depend on it, times do);
 *   - ondemand: on-demand hosts (ADR 0023, weft's default): the proxies, in a namespace with no
 *     service, each ask for 5 hosts after their first config (svc0, whose VirtualService the
 *     change edits, and 4 of their workload's own), deltas as in `delta`;
 *   - delta-post, ondemand-post: as delta and ondemand, but the proxies POST their ACKs on a
 *     second connection, as before weft-discovery/1 upgrades (the baseline of that change); in
 *     the other modes they answer on the stream's own connection, as the proxy does.
 * The modes other than `ondemand` give every proxy its whole scope, whatever weftd's default.
 * Before each measured change the mesh is idle for IDLE_MS (default 35 s: longer than weftd's
 * keep-alive timeout, as between two changes of a quiet mesh). Per change: bytes written per
 * proxy (weft_weftd_xds_pushed_bytes_total), apply → line received and apply → ACK recorded,
 * median and p99 over proxies, new TLS connections to weftd, and weftd's CPU time; medians over
 * REPS changes. Then, for the delta modes, a burst of BURST changes (default 100) GAP_MS apart
 * (default 10 ms) after an idle spell: weftd's peak RSS, and its CPU time over the wall time
 * from the first change until every proxy ACKed the last one (vCPU). Then the proxy's own cost of
 * one change (decode the whole config vs decode and apply the delta; hashing a whole config).
 * Before all that, per mode: the fleet's first connect, CONNECT_BATCH proxies at once (default 50;
 * the next batch once each got its first config), the time until every first config was ACKed and
 * weftd's RSS then and at its peak meanwhile (whole configs: the memory weftd's writes leave).
 * weftd's child runs as the image runs weftd: plain node with the Dockerfile's NODE_OPTIONS over
 * compiled JavaScript (delta-weftd.ts bundled by esbuild, tsx's own compiler, its packages left to
 * node_modules), not through tsx, whose loader thread and caches add ~40 MB of RSS a deployed
 * weftd does not have. WEFTD_RUNTIME=tsx runs it through tsx, as this bench did before 2026-12-07;
 * WEFTD_NODE_FLAGS="..." replaces the image's flags (trials of V8 settings). Changes are pushed
 * without debounce, each its own push cycle (the worst case); DEBOUNCE=weftd gives weftd its own
 * defaults (--push-debounce 100ms, --push-debounce-max 10s), as deployed.
 * PROF=<dir> writes CPU profiles of weftd and of the fleet around each measured change
 * (summarize with bench/weftd/profile-top.ts). Writes bench/weftd/last-run-delta.json.
 *   npx tsx bench/weftd/delta.ts      SERVICES=1000 PROXIES=2000 FULL_PROXIES=500 REPS=3
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { imageNodeOptions } from '../proxy/harness.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const PROXIES = Number(process.env.PROXIES ?? 2000);
const FULL_PROXIES = Number(process.env.FULL_PROXIES ?? PROXIES);
const REPS = Number(process.env.REPS ?? 3);
const IDLE_MS = Number(process.env.IDLE_MS ?? 35_000);
const BURST = Number(process.env.BURST ?? 100);
const GAP_MS = Number(process.env.GAP_MS ?? 10);
const MODES = (process.env.MODES ?? 'delta,delta-before,full').split(',');
const PROF = process.env.PROF ?? '';
const BASELINE_ROOT = process.env.BASELINE_ROOT ?? '';
/** Modes with a burst (default: the delta modes). */
const BURST_MODES = (
  process.env.BURST_MODES ?? 'delta,delta-before,delta-post,baseline,ondemand,ondemand-post'
).split(',');

interface Child {
  ask<T>(msg: Record<string, unknown>): Promise<T>;
  proc: ChildProcess;
}

/** A bench child over IPC: resolves once it reported ready (message 0), with that message. */
const WEFTD_RUNTIME = process.env.WEFTD_RUNTIME ?? 'node';

/**
 * delta-weftd.ts of the checkout at `root`, bundled into one ES module under that checkout's
 * node_modules (so its packages resolve there), for plain node.
 */
async function bundledWeftd(root: string): Promise<string> {
  const outfile = join(root, 'node_modules/.cache/weft-bench/delta-weftd.mjs');
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(root, 'bench/weftd/delta-weftd.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

/** weftd's child: the bundle under the image's Node flags, or (WEFTD_RUNTIME=tsx) the source through tsx. */
async function weftdChild(root: string, env: Record<string, string>) {
  if (WEFTD_RUNTIME === 'tsx') return child(join(root, 'bench/weftd/delta-weftd.ts'), env);
  const flags = process.env.WEFTD_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? imageNodeOptions(REPO);
  return child(await bundledWeftd(root), env, ['--expose-gc', ...flags]);
}

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

async function child(
  file: string,
  env: Record<string, string>,
  execArgv = ['--import', 'tsx', '--expose-gc'],
): Promise<{ c: Child; hello: unknown }> {
  const path = file.startsWith('/') ? file : fileURLToPath(new URL(file, import.meta.url));
  const proc = fork(path, [], { execArgv, env: { ...process.env, ...env } });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  const hello = new Promise<unknown>((resolve, reject) => waiting.set(0, { resolve, reject }));
  proc.on('message', (m: { id: number; value?: unknown; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(`${file}: ${m.error}`));
    else w?.resolve(m.value);
  });
  proc.on('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`${file} exited (${code})`));
    waiting.clear();
  });
  const c: Child = {
    proc,
    ask: <T>(msg: Record<string, unknown>) =>
      new Promise<T>((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ ...msg, id });
      }),
  };
  return { c, hello: await hello };
}

interface ChangeResult {
  t0: number;
  lastAt: number;
  end: number;
  ackedAt: number[];
  bytes: number;
  newConnections: number;
  cpuMs: number;
  rssBeforeMb: number;
  peakRssMb: number;
  proxies: number;
}
interface Received {
  lineAt: number[];
  failed: number;
  cpuMs: number;
}

const quantile = (xs: number[], q: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const med = (xs: number[]): number => quantile(xs, 0.5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  bytesPerProxy: number;
  receivedMedianMs: number;
  receivedP99Ms: number;
  ackMedianMs: number;
  ackP99Ms: number;
  newConnections: number;
  weftdCpuMs: number;
  fleetCpuMs: number;
}
interface Burst {
  changes: number;
  wallMs: number;
  weftdCpuMs: number;
  vcpu: number;
  rssBeforeMb: number;
  peakRssMb: number;
  lastChangeToAllAckedMs: number;
  newConnections: number;
}
/** weftd's side of the fleet's first connect (delta-weftd.ts `ready`). */
interface FirstConfigs {
  bytesPerProxy: number;
  readyAt: number;
  rssReadyMb: number;
  connectPeakRssMb: number;
}
interface ModeResult {
  proxies: number;
  firstConfigBytes: number;
  /** From the fleet's first connect to every first config ACKed; weftd's RSS then and its peak meanwhile. */
  firstConfigs: { ms: number; rssReadyMb: number; connectPeakRssMb: number };
  samples: Sample[];
  burst?: Burst;
  memory?: Record<string, number>;
}
const out: Record<string, ModeResult> = {};
let proxySide: Record<string, number> | undefined;

for (const mode of MODES) {
  const proxies = mode === 'full' ? FULL_PROXIES : PROXIES;
  if (mode === 'baseline' && BASELINE_ROOT === '') throw new Error('mode baseline needs BASELINE_ROOT');
  const weftd = await weftdChild(mode === 'baseline' ? BASELINE_ROOT : REPO, {
    MODE: mode,
    SERVICES: String(SERVICES),
  });
  const { port, ca } = weftd.hello as { port: number; ca: string };
  const fleet = (await child('./delta-fleet.ts', {})).c;
  await weftd.c.ask({ cmd: 'connecting' });
  const connectAt = performance.timeOrigin + performance.now();
  await fleet.ask({ cmd: 'connect', port, ca, delta: mode !== 'full', proxies, mode, services: SERVICES });
  const first = await weftd.c.ask<FirstConfigs>({ cmd: 'ready', proxies });
  const firstConfigs = {
    ms: first.readyAt - connectAt,
    rssReadyMb: first.rssReadyMb,
    connectPeakRssMb: first.connectPeakRssMb,
  };
  process.stderr.write(`${mode} first configs: ${JSON.stringify(firstConfigs)}\n`);
  const entry: (typeof out)[string] = {
    proxies,
    firstConfigBytes: first.bytesPerProxy,
    firstConfigs,
    samples: [],
  };
  out[mode] = entry;
  let fleetCpu = (await fleet.ask<Received>({ cmd: 'received' })).cpuMs;

  /** `count` changes after `idleMs` of quiet; the fleet's view and its CPU time since the last call. */
  const measure = async (count: number, idleMs: number, name: string) => {
    await sleep(idleMs);
    if (PROF !== '') await Promise.all([weftd.c.ask({ cmd: 'profile' }), fleet.ask({ cmd: 'profile' })]);
    const r = await weftd.c.ask<ChangeResult>({ cmd: 'changes', count, gapMs: GAP_MS });
    const seen = await fleet.ask<Received>({ cmd: 'received' });
    if (PROF !== '')
      await Promise.all([
        weftd.c.ask({ cmd: 'profile', name: `weftd-${mode}-${name}` }),
        fleet.ask({ cmd: 'profile', mode: `fleet-${mode}-${name}` }),
      ]);
    if (seen.failed > 0) throw new Error(`${mode}: ${seen.failed} ACKs not delivered`);
    const fleetCpuMs = seen.cpuMs - fleetCpu;
    fleetCpu = seen.cpuMs;
    return { r, seen, fleetCpuMs };
  };

  await measure(1, 300, 'warmup'); // the first delta splits and diffs the shared translation cold
  for (let rep = 0; rep < REPS; rep++) {
    const { r, seen, fleetCpuMs } = await measure(1, IDLE_MS, `change${rep}`);
    const received = seen.lineAt.map((t) => t - r.t0);
    const acked = r.ackedAt.map((t) => t - r.t0);
    entry.samples.push({
      bytesPerProxy: r.bytes / r.proxies,
      receivedMedianMs: med(received),
      receivedP99Ms: quantile(received, 0.99),
      ackMedianMs: med(acked),
      ackP99Ms: quantile(acked, 0.99),
      newConnections: r.newConnections,
      weftdCpuMs: r.cpuMs,
      fleetCpuMs,
    });
    process.stderr.write(`${mode} change ${rep + 1}/${REPS}: ${JSON.stringify(entry.samples.at(-1))}\n`);
  }
  entry.memory = await weftd.c.ask<Record<string, number>>({ cmd: 'memory' });
  process.stderr.write(
    `${mode} weftd memory after the changes, after a full GC: ${JSON.stringify(entry.memory)}\n`,
  );
  if (mode !== 'full' && BURST > 0 && BURST_MODES.includes(mode)) {
    const { r } = await measure(BURST, IDLE_MS, 'burst');
    const wallMs = r.end - r.t0;
    entry.burst = {
      changes: BURST,
      wallMs,
      weftdCpuMs: r.cpuMs,
      vcpu: r.cpuMs / wallMs,
      rssBeforeMb: r.rssBeforeMb,
      peakRssMb: r.peakRssMb,
      lastChangeToAllAckedMs: r.end - r.lastAt,
      newConnections: r.newConnections,
    };
    process.stderr.write(`${mode} burst: ${JSON.stringify(entry.burst)}\n`);
  }
  if (mode === 'delta') proxySide = await weftd.c.ask<Record<string, number>>({ cmd: 'proxyCost' });
  await Promise.all([weftd.c.ask({ cmd: 'stop' }), fleet.ask({ cmd: 'stop' })]);
}

const summary = Object.entries(out).map(([mode, e]) => ({
  mode,
  proxies: e.proxies,
  bytesPerProxy: med(e.samples.map((s) => s.bytesPerProxy)),
  receivedMedianMs: med(e.samples.map((s) => s.receivedMedianMs)),
  receivedP99Ms: med(e.samples.map((s) => s.receivedP99Ms)),
  ackMedianMs: med(e.samples.map((s) => s.ackMedianMs)),
  ackP99Ms: med(e.samples.map((s) => s.ackP99Ms)),
  newConnections: med(e.samples.map((s) => s.newConnections)),
  weftdCpuMs: med(e.samples.map((s) => s.weftdCpuMs)),
  fleetCpuMs: med(e.samples.map((s) => s.fleetCpuMs)),
  burst: e.burst,
  memory: e.memory,
  firstConfigs: e.firstConfigs,
}));
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |\n`;
let text =
  `${SERVICES} services, one VirtualService change after ${IDLE_MS / 1000} s idle, medians of ${REPS}\n` +
  row([
    'mode',
    'proxies',
    'bytes per proxy',
    'apply → received median / p99 ms',
    'apply → ACK median / p99 ms',
    'new TLS connections',
    'weftd CPU ms',
    'fleet CPU ms',
  ]) +
  row(Array(8).fill('---'));
for (const s of summary)
  text += row([
    s.mode,
    s.proxies,
    s.bytesPerProxy.toFixed(0),
    `${s.receivedMedianMs.toFixed(0)} / ${s.receivedP99Ms.toFixed(0)}`,
    `${s.ackMedianMs.toFixed(0)} / ${s.ackP99Ms.toFixed(0)}`,
    s.newConnections,
    s.weftdCpuMs.toFixed(0),
    s.fleetCpuMs.toFixed(0),
  ]);
const byMode = Object.fromEntries(summary.map((s) => [s.mode, s]));
if (byMode.delta && byMode.full)
  text += `delta / full bytes per proxy: ${((100 * byMode.delta.bytesPerProxy) / byMode.full.bytesPerProxy).toFixed(3)} %\n`;
if (byMode.delta && byMode.baseline)
  text += `delta / baseline ACK p99: ${(byMode.delta.ackP99Ms / byMode.baseline.ackP99Ms).toFixed(2)}×, weftd CPU: ${(byMode.delta.weftdCpuMs / byMode.baseline.weftdCpuMs).toFixed(2)}×\n`;
for (const m of ['delta', 'ondemand']) {
  const now = byMode[m];
  const post = byMode[`${m}-post`];
  if (now?.burst && post?.burst)
    text += `${m} / ${m}-post (ACKs on the stream / POSTed): weftd RSS before the burst ${(now.burst.rssBeforeMb / post.burst.rssBeforeMb).toFixed(2)}×, peak ${(now.burst.peakRssMb / post.burst.peakRssMb).toFixed(2)}×; one change ACK p99 ${(now.ackP99Ms / post.ackP99Ms).toFixed(2)}×, weftd CPU ${(now.weftdCpuMs / post.weftdCpuMs).toFixed(2)}×\n`;
}
if (byMode.delta && byMode['delta-before'])
  text += `delta / delta-before ACK p99: ${(byMode.delta.ackP99Ms / byMode['delta-before'].ackP99Ms).toFixed(2)}×\n`;
for (const s of summary)
  text +=
    `${s.mode}: the fleet's first configs (${s.proxies} proxies, batches of ${process.env.CONNECT_BATCH ?? 50}): ` +
    `${(s.firstConfigs.ms / 1000).toFixed(1)} s from the first connect to every first config ACKed; weftd RSS ` +
    `${s.firstConfigs.rssReadyMb.toFixed(0)} MB then, ${s.firstConfigs.connectPeakRssMb.toFixed(0)} MB peak meanwhile\n`;
for (const s of summary)
  if (s.burst)
    text +=
      `${s.mode}: burst of ${s.burst.changes} changes ${GAP_MS} ms apart: weftd ${s.burst.weftdCpuMs.toFixed(0)} ms CPU over ` +
      `${s.burst.wallMs.toFixed(0)} ms (${s.burst.vcpu.toFixed(2)} vCPU), RSS ${s.burst.rssBeforeMb.toFixed(0)} MB before, ` +
      `${s.burst.peakRssMb.toFixed(0)} MB peak; last change → all ACKed ${s.burst.lastChangeToAllAckedMs.toFixed(0)} ms; ` +
      `${s.burst.newConnections} new TLS connections; before it, after a full GC: ${JSON.stringify(s.memory)}\n`;
if (proxySide)
  text += `proxy side, one change: decode the whole config ${proxySide.decodeFullMs!.toFixed(1)} ms; decode + apply the delta ${proxySide.decodeAndApplyDeltaMs!.toFixed(1)} ms; hash a whole config's resources (once per full config) ${proxySide.fromFullMs!.toFixed(1)} ms\n`;
process.stdout.write(text);
writeFileSync(
  new URL('./last-run-delta.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), services: SERVICES, idleMs: IDLE_MS, reps: REPS, gapMs: GAP_MS, summary, proxySide, out }, null, 2)}\n`,
);
