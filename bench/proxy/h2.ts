/**
 * HTTP/2 and gRPC benchmarks (ADR 0019, issue #18). Two parts, chosen by H2_BENCH:
 *
 * `nginx` (default): h2c and gRPC unary through one `proxy sidecar` (run as the image runs it,
 * configured by a fake weftd: an HTTP/2 cluster to an h2c upstream) against nginx `grpc_pass`
 * (one worker, upstream keep-alive), in one run, interleaved, REPS repetitions, medians:
 *   - max req/s: h2load (nghttp2-client, hack/ensure-deps.sh) closed loop, 4 sessions × 16
 *     streams (64 in flight, as wrk -c64 for HTTP/1), MAX_SECONDS;
 *   - p50/p90/p99 at 1,000 req/s over 4 sessions (loadgen-h2.mjs, open loop, coordinated
 *     omission corrected), FIXED_SECONDS, and vCPU per 1,000 req/s of the proxy's processes;
 *   - `direct`: the same client straight to the upstream (latency floor, fixed rate only).
 * Workloads: `h2c` (GET, 1 KiB response) and `grpc` (unary POST, 256-byte message in, 1 KiB
 * out, grpc-status in trailers; every response's grpc-status is checked). Targets, as HTTP/1's:
 * sidecar ≥ 0.6× nginx max req/s, p99 ≤ 1.2× nginx's. Results: bench/proxy/last-run-h2.json.
 *
 * `inprocess`: HTTP/2 against HTTP/1.1 through one in-process proxy, in the same run:
 *   - `h1`: keep-alive HTTP/1.1 clients → proxy → an HTTP/1.1 upstream (the baseline),
 *   - `h2`: one h2c session with CONCURRENCY streams → proxy (the raw stream API, the same router)
 *     → an HTTP/2 upstream session pool,
 *   - `h2-direct`: the same h2c client straight to the HTTP/2 upstream (what the hop costs).
 * Reports requests per second and the ratios h2/h1 and h2/h2-direct (client, proxy and upstreams
 * share the machine and the proxy shares the client's event loop, as in tcp-routes.ts).
 *
 * `alloc`: JS heap allocated per request through an in-process proxy (V8's total_allocated_bytes
 * around ALLOC_REQUESTS h2load requests): load-independent, to compare versions on a busy machine.
 *
 *   PROXY_BENCH=h2 npm run bench -- proxy      (or: npx tsx bench/proxy/h2.ts)
 *   PROFILE=1 npx tsx bench/proxy/h2.ts        # + the sidecar's CPU profile in bench/results/h2-profiles
 *   H2_BENCH=inprocess npx tsx bench/proxy/h2.ts   # DURATION_S (3) per phase, CONCURRENCY (32)
 *   H2_BENCH=alloc npx node --max-semi-space-size=1 --import tsx bench/proxy/h2.ts
 *     # ALLOC_LOAD=fixed, ALLOC_PROFILE=1: see allocations()
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { loadavg, tmpdir } from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { createLogger } from '../../pkg/log/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { ProxyServer } from '../../proxy/server.js';
import { PROXY_CONFIG_API_VERSION } from '../../pkg/proxyconfig/types.js';
import { fakeWeftd } from '../../test/integration/proxy/fake-weftd.js';
import {
  buildImageLayout,
  cpuSeconds,
  execFileP,
  HERE,
  imageNodeOptions,
  killChildren,
  median,
  nginxConf,
  ROOT,
  startNginx,
  startSidecar,
  stopSidecar,
  track,
  type WrkResult,
} from './harness.js';

const DURATION_S = Number(process.env.DURATION_S ?? 3);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const BODY = Buffer.alloc(256, 'x');

/** A ProxyServer in this process with no admin, metrics or health port, silent, access log dropped. */
function inProcessProxy(): ProxyServer {
  return new ProxyServer({
    adminPort: null,
    metricsPort: null,
    healthPort: null,
    logger: createLogger('bench', { silent: true }),
    accessLogSink: { write: () => true } as unknown as NodeJS.WritableStream,
    onExit: () => undefined,
  });
}

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

function config(h1Port: number, h2Port: number): ProxyConfig {
  const vhost = (name: string, cluster: string) => ({
    name,
    domains: [name],
    routes: [
      {
        action: { type: 'route' as const, destinations: [{ cluster, weight: 100 }] },
        retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
      },
    ],
  });
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'bench',
    listeners: [
      {
        name: 'http',
        protocol: 'HTTP',
        address: '127.0.0.1',
        port: 0,
        virtualHosts: [vhost('h1', 'h1'), vhost('h2', 'h2')],
      },
    ],
    clusters: [
      { name: 'h1', endpoints: [{ address: '127.0.0.1', port: h1Port }] },
      { name: 'h2', http2: true, endpoints: [{ address: '127.0.0.1', port: h2Port }] },
    ],
  };
}

async function loop(run: () => Promise<void>): Promise<number> {
  const end = Date.now() + DURATION_S * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await run();
        done++;
      }
    }),
  );
  return done / DURATION_S;
}

function h1Rate(port: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const r = http.request(
        { host: '127.0.0.1', port, path: '/', headers: { host: 'h1' }, agent },
        (res) => {
          res.resume();
          res.on('end', () => resolve());
        },
      );
      r.on('error', reject);
      r.end();
    });
  return loop(one).finally(() => agent.destroy());
}

async function h2Rate(port: number, authority: string): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':path': '/', ':authority': authority });
      s.on('error', reject);
      s.resume();
      s.on('end', () => resolve());
      s.end();
    });
  try {
    return await loop(one);
  } finally {
    session.close();
  }
}

async function inProcess(): Promise<void> {
  const h1 = http.createServer((_req, res) => res.end(BODY));
  const h2 = http2.createServer((_req, res) => res.end(BODY));
  const h1Port = await listen(h1);
  const h2Port = await listen(h2);
  const proxy = inProcessProxy();
  await proxy.apply(config(h1Port, h2Port));
  const port = proxy.ports().http!;
  // warm-up (JIT, pools)
  await Promise.all([h1Rate(port), h2Rate(port, 'h2')].map((p) => p.catch(() => 0)));
  const rows: Record<string, number> = {};
  rows.h1 = await h1Rate(port);
  rows.h2 = await h2Rate(port, 'h2');
  rows['h2-direct'] = await h2Rate(h2Port, 'h2');
  const out = {
    durationS: DURATION_S,
    concurrency: CONCURRENCY,
    reqPerS: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(v)])),
    ratioH2toH1: Number((rows.h2! / rows.h1!).toFixed(2)),
    ratioH2toDirect: Number((rows.h2! / rows['h2-direct']!).toFixed(2)),
  };
  console.log(JSON.stringify(out, null, 2));
  await proxy.shutdown(Date.now());
  h1.close();
  h2.close();
}

const REPS = Number(process.env.REPS ?? 3);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 5);
const FIXED_SECONDS = Number(process.env.FIXED_SECONDS ?? 8);
const DEADLINE_SECONDS = Number(process.env.DEADLINE_SECONDS ?? 300);
const GRPC_HOST = 'echo.bench.svc.cluster.local';
const GRPC_PATH = '/bench.Echo/Unary';
type Workload = 'h2c' | 'grpc';
const WORKLOADS: Workload[] = ['h2c', 'grpc'];

/** The sidecar's outbound config: GRPC_HOST → an HTTP/2 cluster (a `grpc` port) to the upstream. */
function sidecarConfig(upstreamPort: number): ProxyConfig {
  const cluster = `outbound|50051||${GRPC_HOST}`;
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'h2-bench',
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        address: '0.0.0.0',
        port: 15001,
        virtualHosts: [
          {
            name: GRPC_HOST,
            domains: [GRPC_HOST, `${GRPC_HOST}:50051`],
            routes: [{ action: { type: 'route', destinations: [{ cluster, weight: 100 }] } }],
          },
        ],
      },
    ],
    clusters: [
      {
        name: cluster,
        service: GRPC_HOST,
        port: 50051,
        http2: true,
        endpoints: [{ address: '127.0.0.1', port: upstreamPort }],
      },
    ],
    telemetry: { workload: { name: 'h2-bench', namespace: 'bench' } },
  };
}

/** nginx as the HTTP/2 proxy: h2c in, `grpc_pass` (HTTP/2 upstream, kept alive) out. */
function nginxGrpcConf(dir: string, port: number, upstreamPort: number): string {
  return nginxConf(
    dir,
    `keepalive_requests 1000000;
  upstream echo { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }`,
    `listen 127.0.0.1:${port} http2;
    location / { grpc_pass grpc://echo; }`,
  );
}

async function startH2Upstream(): Promise<{ pid: number; port: number }> {
  const up = track(
    spawn(process.execPath, [path.join(HERE, 'upstream-h2.mjs')], { stdio: ['ignore', 'pipe', 'ignore'] }),
  );
  const port = await new Promise<number>((resolve) =>
    up.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  return { pid: up.pid!, port };
}

/** Closed-loop max req/s with h2load; every request must succeed (2xx). */
async function h2load(
  url: string,
  workload: Workload,
  bodyFile: string,
  seconds: number,
): Promise<WrkResult> {
  const args = ['-c4', '-m16', `-D${seconds}`, '--warm-up-time=1', '-H', `:authority: ${GRPC_HOST}`];
  if (workload === 'grpc')
    args.push('-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  const target = workload === 'grpc' ? `${url}${GRPC_PATH}` : `${url}/`;
  const { stdout } = await execFileP('h2load', [...args, target], { encoding: 'utf8', timeout: 120_000 });
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? NaN);
  // `succeeded`: 2xx/3xx responses; `done`: every request that finished, whatever the outcome
  const req = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(stdout);
  const errors = req === null ? 1 : Number(req[1]) - Number(req[2]);
  return { rps, p50: NaN, p90: NaN, p99: NaN, errors };
}

/** 1,000 req/s open loop over 4 h2c sessions (loadgen-h2.mjs). */
async function h2FixedRate(url: string, workload: Workload, seconds: number): Promise<WrkResult> {
  const { stdout } = await execFileP(
    process.execPath,
    [path.join(HERE, 'loadgen-h2.mjs'), `${url}/`, GRPC_HOST, '1000', '4', String(seconds), workload],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const r = JSON.parse(stdout) as Required<WrkResult> & { non2xx: number };
  return { rps: r.rps, p50: r.p50, p90: r.p90, p99: r.p99, p999: r.p999, errors: r.errors + r.non2xx };
}

interface H2Scenario {
  name: string;
  url: string;
  pids: number[];
  max: boolean;
}

async function againstNginx(): Promise<void> {
  const t0 = Date.now();
  const work = mkdtempSync(path.join(tmpdir(), 'weft-bench-h2-'));
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench/proxy/h2: over ${DEADLINE_SECONDS} s; stopping\n`);
    killChildren();
    process.exit(1);
  }, DEADLINE_SECONDS * 1000);
  watchdog.unref();
  try {
    const bodyFile = path.join(work, 'grpc-request.bin');
    writeFileSync(bodyFile, Buffer.concat([Buffer.from([0, 0, 0, 1, 0]), Buffer.alloc(256, 'y')]));
    const up = await startH2Upstream();
    const entry = buildImageLayout(ROOT, 'current');
    const flags = imageNodeOptions(ROOT);
    const weftd = await fakeWeftd(sidecarConfig(up.port));
    // PROFILE=1: the sidecar writes a V8 CPU profile when it stops (bench/results/, gitignored)
    const profileDir = path.join(ROOT, 'bench', 'results', 'h2-profiles');
    const profile = process.env.PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const sidecar = await startSidecar(entry, [...flags, ...profile], weftd, { POD_NAME: 'h2-bench-1' });
    const ng = await startNginx(work, 'nginx', (dir, port) => nginxGrpcConf(dir, port, up.port));
    const scenarios: H2Scenario[] = [
      { name: 'direct', url: `http://127.0.0.1:${up.port}`, pids: [up.pid], max: false },
      { name: 'nginx grpc_pass', url: `http://127.0.0.1:${ng.port}`, pids: ng.pids, max: true },
      {
        name: 'sidecar',
        url: `http://127.0.0.1:${sidecar.ports.outbound}`,
        pids: [sidecar.child.pid!],
        max: true,
      },
    ];
    // warm-up (JIT, upstream sessions); a failing scenario stops the run here
    for (const s of scenarios.filter((x) => x.max))
      for (const w of WORKLOADS) {
        const r = await h2load(s.url, w, bodyFile, 2);
        if (r.errors > 0 || !(r.rps > 0))
          throw new Error(`${s.name} ${w}: warm-up failed (${JSON.stringify(r)})`);
      }
    const runs = new Map<
      string,
      { max: number[]; fixed: (WrkResult & { vcpu: number })[]; errors: number }
    >();
    const key = (s: H2Scenario, w: Workload): string => `${s.name} / ${w}`;
    const slot = (k: string) => runs.get(k) ?? runs.set(k, { max: [], fixed: [], errors: 0 }).get(k)!;
    let reps = 0;
    for (let i = 0; i < REPS; i++) {
      for (const w of WORKLOADS)
        for (const s of scenarios) {
          const r = slot(key(s, w));
          if (s.max) {
            const m = await h2load(s.url, w, bodyFile, MAX_SECONDS);
            r.max.push(m.rps);
            r.errors += m.errors;
            process.stderr.write(
              `max ${key(s, w)} rep ${i + 1}: ${m.rps.toFixed(0)} req/s, errors ${m.errors}\n`,
            );
          }
          const c0 = cpuSeconds(s.pids);
          const started = performance.now();
          const f = await h2FixedRate(s.url, w, FIXED_SECONDS);
          const secs = (performance.now() - started) / 1000;
          const vcpu = ((cpuSeconds(s.pids) - c0) / secs) * (1000 / f.rps);
          r.fixed.push({ ...f, vcpu });
          r.errors += f.errors;
          process.stderr.write(
            `fixed ${key(s, w)} rep ${i + 1}: ${f.rps.toFixed(0)} req/s p50 ${f.p50.toFixed(2)} p90 ${f.p90.toFixed(2)} p99 ${f.p99.toFixed(2)} ms, ${vcpu.toFixed(3)} vCPU/1k, errors ${f.errors}\n`,
          );
        }
      reps = i + 1;
      if ((Date.now() - t0) / 1000 > DEADLINE_SECONDS * 0.7 && i < REPS - 1) {
        process.stderr.write(
          `stopping after ${reps} repetitions: close to the ${DEADLINE_SECONDS} s bound\n`,
        );
        break;
      }
    }
    const summary = Object.fromEntries(
      [...runs].map(([k, r]) => [
        k,
        {
          max_rps: r.max.length ? median(r.max) : null,
          p50_ms: median(r.fixed.map((x) => x.p50)),
          p90_ms: median(r.fixed.map((x) => x.p90)),
          p99_ms: median(r.fixed.map((x) => x.p99)),
          vcpu_per_1000_rps: median(r.fixed.map((x) => x.vcpu)),
          errors: r.errors,
        },
      ]),
    );
    const targets = Object.fromEntries(
      WORKLOADS.map((w) => {
        const sc = summary[`sidecar / ${w}`]!;
        const ng = summary[`nginx grpc_pass / ${w}`]!;
        return [w, { throughput_vs_nginx: sc.max_rps! / ng.max_rps!, p99_vs_nginx: sc.p99_ms / ng.p99_ms }];
      }),
    );
    const result = {
      when: new Date().toISOString(),
      loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))),
      settings: {
        REPS,
        reps_done: reps,
        MAX_SECONDS,
        FIXED_SECONDS,
        nodeFlags: flags,
        load: 'max: h2load -c4 -m16 (closed loop); fixed: loadgen-h2.mjs 1,000 req/s open loop over 4 sessions',
        nginx: spawnSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8' }).stderr.trim(),
      },
      summary,
      targets,
    };
    writeFileSync(path.join(HERE, 'last-run-h2.json'), JSON.stringify(result, null, 2) + '\n');
    const f = (n: number | null | undefined, d = 2): string =>
      n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d);
    const lines = [
      `| medians of ${reps} | max req/s (h2load -c4 -m16) | p50 / p90 / p99 ms @1,000 req/s | vCPU per 1,000 req/s |`,
      '|---|---|---|---|',
      ...Object.entries(summary).map(
        ([k, x]) =>
          `| ${k} | ${f(x.max_rps, 0)} | ${f(x.p50_ms)} / ${f(x.p90_ms)} / ${f(x.p99_ms)} | ${k.startsWith('direct') ? '-' : f(x.vcpu_per_1000_rps, 3)} |`,
      ),
    ];
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    process.stdout.write(
      `${lines.join('\n')}\n\n` +
        WORKLOADS.map(
          (w) =>
            `${w}: sidecar/nginx throughput ${f(targets[w]!.throughput_vs_nginx)}× (≥ 0.6: ${verdict(targets[w]!.throughput_vs_nginx >= 0.6)}), ` +
            `p99 ${f(targets[w]!.p99_vs_nginx)}× (≤ 1.2: ${verdict(targets[w]!.p99_vs_nginx <= 1.2)})`,
        ).join('\n') +
        `\nerrors: ${Object.entries(summary)
          .map(([k, x]) => `${k} ${x.errors}`)
          .join(', ')}\nload average at the end: ${result.loadavg_at_end.join(' ')} (2 cores, shared)\n` +
        'full results: bench/proxy/last-run-h2.json\n',
    );
    await stopSidecar(sidecar);
    await weftd.close();
  } finally {
    clearTimeout(watchdog);
    killChildren();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * What one request costs the proxy, in process: ProxyServer with the sidecar bench's route (an
 * HTTP/2 cluster to upstream-h2.mjs), the load from another process, and around the measured
 * phase V8's total_allocated_bytes, the scavenges (perf_hooks 'gc' entries, minor) and the
 * process's CPU time. Unlike req/s or vCPU these do not move much with the machine's load, so
 * they compare two versions on a shared machine; what is allocated is what the 1 MB young
 * generation (ADR 0009) must scavenge. Run under the image's flags to match.
 *
 *   ALLOC_LOAD=max (default): h2load -c4 -m16 -n ALLOC_REQUESTS (closed loop);
 *   ALLOC_LOAD=fixed: loadgen-h2.mjs at 1,000 req/s over 4 sessions for ALLOC_SECONDS (the nginx
 *     bench's fixed-rate phase);
 *   ALLOC_PROFILE=1: a second pass of the same load under the inspector's CPU profiler and
 *     allocation sampler; prints the top functions by self time and by bytes allocated, per
 *     request, and writes both profiles to bench/results/h2-alloc/.
 */
async function allocations(): Promise<void> {
  const n = Number(process.env.ALLOC_REQUESTS ?? 20_000);
  const fixed = process.env.ALLOC_LOAD === 'fixed';
  const seconds = Number(process.env.ALLOC_SECONDS ?? 10);
  const up = await startH2Upstream();
  const proxy = inProcessProxy();
  const cfg = sidecarConfig(up.port);
  cfg.listeners[0] = { ...cfg.listeners[0]!, address: '127.0.0.1', port: 0 };
  await proxy.apply(cfg);
  const url = `http://127.0.0.1:${Object.values(proxy.ports())[0]!}`;
  const work = mkdtempSync(path.join(tmpdir(), 'weft-bench-h2-'));
  const bodyFile = path.join(work, 'grpc-request.bin');
  writeFileSync(bodyFile, Buffer.concat([Buffer.from([0, 0, 0, 1, 0]), Buffer.alloc(256, 'y')]));
  let scavenges = 0;
  let gcMs = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR)
        scavenges++;
      gcMs += e.duration;
    }
  });
  gcs.observe({ entryTypes: ['gc'] });
  const load = async (w: Workload, count: number): Promise<number> => {
    if (fixed) {
      const f = await h2FixedRate(url, w, seconds);
      return Math.round(f.rps * seconds) - f.errors;
    }
    const args = ['-c4', '-m16', '-H', `:authority: ${GRPC_HOST}`];
    if (w === 'grpc') args.push('-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
    const target = w === 'grpc' ? `${url}${GRPC_PATH}` : `${url}/`;
    const { stdout } = await execFileP('h2load', [...args, '-n', String(count), target], {
      encoding: 'utf8',
    });
    return Number(/(\d+) succeeded/.exec(stdout)?.[1] ?? 0);
  };
  const out: Record<string, Record<string, number>> = {};
  const profiles: Record<string, string> = {};
  try {
    for (const w of WORKLOADS) {
      await load(w, 5000); // warm-up: JIT, upstream session
      const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50)); // gc entries arrive async
      await settle();
      const [s0, g0] = [scavenges, gcMs];
      const before = v8.getHeapStatistics().total_allocated_bytes;
      const cpu0 = process.cpuUsage();
      const ok = await load(w, n);
      const cpu = process.cpuUsage(cpu0);
      const after = v8.getHeapStatistics().total_allocated_bytes;
      await settle();
      out[w] = {
        ok,
        kib_per_request: Number(((after - before) / ok / 1024).toFixed(2)),
        scavenges_per_1000: Number((((scavenges - s0) * 1000) / ok).toFixed(2)),
        gc_us_per_request: Number((((gcMs - g0) * 1000) / ok).toFixed(1)),
        cpu_us_per_request: Number(((cpu.user + cpu.system) / ok).toFixed(1)),
      };
      if (process.env.ALLOC_PROFILE === '1') profiles[w] = await profiled(w, () => load(w, n));
    }
    gcs.disconnect();
    console.log(
      JSON.stringify(
        {
          load: fixed ? `fixed 1000 req/s ${seconds} s` : `h2load -n ${n}`,
          nodeFlags: process.execArgv,
          ...out,
        },
        null,
        2,
      ),
    );
    for (const [w, text] of Object.entries(profiles)) process.stdout.write(`\n== ${w} ==\n${text}`);
  } finally {
    await proxy.shutdown(Date.now());
    killChildren();
    rmSync(work, { recursive: true, force: true });
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize?: number;
  children?: (ProfileNode | number)[];
}

function frameName(cf: ProfileNode['callFrame']): string {
  const where = cf.url.replace(/^.*\/(proxy|pkg)\//, '$1/').replace(/^node:/, '');
  return `${cf.functionName || '(anonymous)'} ${where}${where ? `:${cf.lineNumber + 1}` : ''}`;
}

function top(rows: Map<string, number>, scale: number, unit: string, count = 25): string {
  return [...rows]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, v]) => `${(v / scale).toFixed(unit === 'B' ? 0 : 2).padStart(8)} ${unit}  ${k}`)
    .join('\n');
}

/** One more pass of `run` under the CPU profiler and the allocation sampler; the two top lists. */
async function profiled(w: Workload, run: () => Promise<number>): Promise<string> {
  const inspector = await import('node:inspector/promises');
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('HeapProfiler.enable');
  // every object, also those the next scavenge frees (the default keeps only the live ones)
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await session.post('Profiler.start');
  const ok = await run();
  const { profile } = (await session.post('Profiler.stop')) as unknown as {
    profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  };
  const { profile: heap } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
    profile: { head: ProfileNode };
  };
  session.disconnect();
  const dir = path.join(ROOT, 'bench', 'results', 'h2-alloc');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${w}.cpuprofile`), JSON.stringify(profile));
  writeFileSync(path.join(dir, `${w}.heapprofile`), JSON.stringify(heap));
  const self = new Map<string, number>();
  const byId = new Map(profile.nodes.map((x) => [x.id, frameName(x.callFrame)]));
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const k = byId.get(id)!;
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (k.startsWith('(idle)') || k.startsWith('(program)')) return;
    busy += us;
    self.set(k, (self.get(k) ?? 0) + us);
  });
  const bytes = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode): void => {
    const k = frameName(node.callFrame);
    total += node.selfSize ?? 0;
    bytes.set(k, (bytes.get(k) ?? 0) + (node.selfSize ?? 0));
    for (const c of node.children ?? []) walk(c as ProfileNode);
  };
  walk(heap.head);
  return (
    `profiled pass: ${ok} requests, JS busy ${(busy / ok).toFixed(1)} µs/request (sampled), ` +
    `allocated ${(total / ok).toFixed(0)} B/request (sampled)\n` +
    `self time, µs per request:\n${top(self, ok, 'µs')}\n` +
    `allocated, bytes per request (allocation site):\n${top(bytes, ok, 'B')}\n`
  );
}

const mode = process.env.H2_BENCH ?? 'nginx';
const MODES: Record<string, () => Promise<void>> = {
  nginx: againstNginx,
  inprocess: inProcess,
  alloc: allocations,
};
if (MODES[mode] === undefined) {
  process.stderr.write(`bench/proxy/h2: H2_BENCH is nginx, inprocess or alloc, got ${mode}\n`);
  process.exit(2);
}
MODES[mode]!().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  killChildren();
  process.exit(1); // the fake weftd's server would keep the process alive
});
