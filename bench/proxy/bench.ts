/**
 * weft proxy benchmark against nginx in the same run (issue 6, proxy-baselines.md method):
 * upstream = a minimal Node server returning 1 KiB; keep-alive on both hops; loopback only.
 *
 *  1. max throughput: `wrk -t1 -c64`, REPS interleaved runs per proxy, medians;
 *  2. latency at a fixed 1,000 req/s over 16 connections: loadgen.mjs, an open-loop fixed-rate
 *     generator with coordinated-omission correction (what wrk2 does; wrk2 is not in Debian),
 *     also straight to the upstream so the added latency can be read off;
 *  3. proxy CPU per 1,000 req/s: utime+stime from /proc during the fixed-rate runs;
 *  4. RSS idle and during the fixed-rate runs, weft loaded with SERVICES ServiceEntries.
 *
 * weft runs as an esbuild bundle of proxy/main.ts on the pinned Node (what an image would run),
 * not under tsx, so its RSS does not include the TypeScript loader. Routing is on (a
 * VirtualService with header and prefix rules evaluated before the matching one) and metrics
 * are on (Prometheus is scraped once per run to prove it).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import {
  cpuSeconds,
  fixedRate,
  freePort,
  HERE,
  median,
  nginxConf,
  ROOT,
  rssMb,
  wrk,
  type WrkResult,
} from './harness.js';

const REPS = Number(process.env.REPS ?? 3);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 10);
const FIXED_SECONDS = Number(process.env.FIXED_SECONDS ?? 15);
const SERVICES = Number(process.env.SERVICES ?? 1000);
const PROFILE = process.env.PROFILE === '1';
/**
 * V8 flags for the weft process. Default: the deployment recommendation (docs/proxy.md) — a
 * 2 MB young generation saves 13–18 MB RSS at the same CPU. WEFT_NODE_FLAGS='' for none.
 */
const NODE_FLAGS = (process.env.WEFT_NODE_FLAGS ?? '--max-semi-space-size=2')
  .split(' ')
  .filter((f) => f !== '');
const HOST = 'bench.bench.svc.cluster.local';
const work = mkdtempSync(path.join(tmpdir(), 'weft-bench-'));
const children: ChildProcess[] = [];

function start(cmd: string, args: string[], opts: { cwd?: string } = {}): ChildProcess {
  const c = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  return c;
}

function waitLine(c: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}: ${buf.slice(-500)}`)), ms);
    c[stream]!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m !== undefined) {
        clearTimeout(t);
        resolve(m);
      }
    });
    c.once('exit', (code) => reject(new Error(`process exited (${code}) before ${re}: ${buf.slice(-500)}`)));
  });
}

function istioYaml(upstreamPort: number): string {
  const docs: string[] = [];
  docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: bench, namespace: bench}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${upstreamPort}}, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bench, namespace: bench}
spec:
  host: ${HOST}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: bench}
spec:
  hosts: [${HOST}]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: ${HOST}, subset: v2}}]
  - match: [{uri: {prefix: /admin}}, {uri: {regex: "/api/v[0-9]+/internal/.*"}}]
    route: [{destination: {host: ${HOST}, subset: v2}}]
  - route: [{destination: {host: ${HOST}, subset: v1}}]`);
  for (let i = 0; i < SERVICES; i++) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${i}, namespace: bench}
spec:
  hosts: [svc-${i}.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.1.${i >> 8}.${i & 255}, labels: {version: v1}}, {address: 10.2.${i >> 8}.${i & 255}, labels: {version: v2}}]`);
  }
  return docs.join('\n---\n') + '\n';
}

function benchNginxConf(dir: string, port: number, upstreamPort: number): string {
  return nginxConf(
    dir,
    `upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }`,
    `listen 127.0.0.1:${port};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }`,
  );
}

/** Bundles proxy/main.ts; code splitting keeps the config loader (yaml, ajv) out of the serving process. */
function buildProxy(): string {
  // under node_modules/.cache: package imports resolve from there, and linters skip it
  const outdir = path.join(ROOT, 'node_modules', '.cache', 'weft-bench', 'weft-proxy');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  execFileSync(
    path.join(ROOT, 'node_modules/.bin/esbuild'),
    [
      'proxy/main.ts',
      '--bundle',
      '--splitting',
      '--platform=node',
      '--format=esm',
      '--target=node22',
      '--packages=external',
      `--outdir=${outdir}`,
      '--log-level=warning',
    ],
    { cwd: ROOT },
  );
  return path.join(outdir, 'main.js');
}

async function main(): Promise<void> {
  const node = process.execPath;
  const bundle = buildProxy();
  const up = start(node, [path.join(HERE, 'upstream.mjs')]);
  const upstreamPort = Number((await waitLine(up, 'stdout', /^\d+$/)).trim());

  const cfg = path.join(work, 'istio.yaml');
  writeFileSync(cfg, istioYaml(upstreamPort));
  const weftArgs = [
    ...NODE_FLAGS,
    ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${work}`] : []),
    bundle,
    'run',
    '--config',
    cfg,
    '--listen',
    '127.0.0.1:0',
    '--admin-port',
    '0',
    '--metrics-port',
    '0',
    '--health-port',
    '0',
    '--no-watch',
  ];
  const weft = start(node, weftArgs);
  const ready = JSON.parse(await waitLine(weft, 'stderr', /Proxy ready/)) as {
    ports: Record<string, number>;
  };
  const weftUrl = `http://127.0.0.1:${ready.ports.outbound}/`;

  const ngDir = path.join(work, 'nginx');
  mkdirSync(ngDir);
  const ngPort = await freePort();
  writeFileSync(path.join(ngDir, 'nginx.conf'), benchNginxConf(ngDir, ngPort, upstreamPort));
  const ng = start('/usr/sbin/nginx', ['-p', ngDir, '-c', path.join(ngDir, 'nginx.conf')]);
  await new Promise((r) => setTimeout(r, 500));
  const ngMaster = Number(readFileSync(path.join(ngDir, 'nginx.pid'), 'utf8').trim());
  const ngPids = [
    ngMaster,
    ...execFileSync('ps', ['--ppid', String(ngMaster), '-o', 'pid='], { encoding: 'utf8' })
      .trim()
      .split(/\s+/)
      .map(Number),
  ];
  const ngUrl = `http://127.0.0.1:${ngPort}/`;
  const directUrl = `http://127.0.0.1:${upstreamPort}/`;
  void ng;

  const hostArgs = ['-s', path.join(HERE, 'host.lua')];
  // warm up both (JIT, pools) and take weft's idle RSS after config load
  for (const u of [weftUrl, ngUrl]) await wrk(u, ['-t1', '-c4', '-d2s', ...hostArgs, '--', HOST]);
  await new Promise((r) => setTimeout(r, 1000));
  const idle = { weft: rssMb([weft.pid!]), nginx: rssMb(ngPids) };

  const maxRuns: Record<string, WrkResult[]> = { weft: [], nginx: [] };
  const cpuAtMax: Record<string, number[]> = { weft: [], nginx: [] };
  for (let i = 0; i < REPS; i++) {
    for (const [name, url, pids] of [
      ['nginx', ngUrl, ngPids],
      ['weft', weftUrl, [weft.pid!]],
    ] as const) {
      const c0 = cpuSeconds([...pids]);
      const r = await wrk(url, ['-t1', '-c64', `-d${MAX_SECONDS}s`, ...hostArgs, '--', HOST]);
      cpuAtMax[name]!.push(((cpuSeconds([...pids]) - c0) / (r.rps * MAX_SECONDS)) * 1e6);
      maxRuns[name]!.push(r);
      process.stderr.write(`max ${name} rep ${i + 1}: ${r.rps.toFixed(0)} req/s, errors ${r.errors}\n`);
    }
  }

  const fixedRuns: Record<string, WrkResult[]> = { direct: [], weft: [], nginx: [] };
  const cpuFixed: Record<string, number[]> = { weft: [], nginx: [] };
  const rssLoad: Record<string, number[]> = { weft: [], nginx: [] };
  for (let i = 0; i < REPS; i++) {
    for (const [name, url, pids] of [
      ['direct', directUrl, [up.pid!]],
      ['nginx', ngUrl, ngPids],
      ['weft', weftUrl, [weft.pid!]],
    ] as const) {
      const c0 = cpuSeconds([...pids]);
      const t0 = performance.now();
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssMb([...pids])), 1000);
      const r = await fixedRate(url, HOST, FIXED_SECONDS);
      clearInterval(sampler);
      samples.push(rssMb([...pids]));
      const secs = (performance.now() - t0) / 1000;
      fixedRuns[name]!.push(r);
      if (name !== 'direct') {
        cpuFixed[name]!.push(((cpuSeconds([...pids]) - c0) / secs) * (1000 / r.rps));
        rssLoad[name]!.push(Math.max(...samples));
      }
      process.stderr.write(
        `fixed ${name} rep ${i + 1}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} p90 ${r.p90.toFixed(2)} p99 ${r.p99.toFixed(2)} p99.9 ${r.p999?.toFixed(2)} max ${r.max?.toFixed(1)} ms, errors ${r.errors}\n`,
      );
    }
  }

  const metricsText = await (await fetch(`http://127.0.0.1:${ready.ports.metrics}/stats/prometheus`)).text();
  const counted = metricsText
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total') && l.includes(`destination_service="${HOST}"`))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);

  const med = (name: string, runs: Record<string, WrkResult[]>, k: keyof WrkResult): number =>
    median(runs[name]!.map((r) => r[k] ?? NaN));
  const result = {
    when: new Date().toISOString(),
    // other work on the machine skews absolute numbers; ratios within one run hold better
    loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))),
    settings: {
      REPS,
      MAX_SECONDS,
      FIXED_SECONDS,
      SERVICES,
      nodeFlags: NODE_FLAGS,
      load: 'max: wrk -t1 -c64; fixed: loadgen.mjs 1,000 req/s open-loop over 16 connections',
    },
    max: {
      nginx_rps: med('nginx', maxRuns, 'rps'),
      weft_rps: med('weft', maxRuns, 'rps'),
      ratio: med('weft', maxRuns, 'rps') / med('nginx', maxRuns, 'rps'),
      cpu_us_per_request: { nginx: median(cpuAtMax.nginx!), weft: median(cpuAtMax.weft!) },
      errors: {
        nginx: maxRuns.nginx!.reduce((a, r) => a + r.errors, 0),
        weft: maxRuns.weft!.reduce((a, r) => a + r.errors, 0),
      },
    },
    fixed: Object.fromEntries(
      ['direct', 'nginx', 'weft'].map((n) => [
        n,
        {
          rps: med(n, fixedRuns, 'rps'),
          p50_ms: med(n, fixedRuns, 'p50'),
          p90_ms: med(n, fixedRuns, 'p90'),
          p99_ms: med(n, fixedRuns, 'p99'),
          p999_ms: med(n, fixedRuns, 'p999'),
          max_ms: med(n, fixedRuns, 'max'),
        },
      ]),
    ),
    p99_ratio: med('weft', fixedRuns, 'p99') / med('nginx', fixedRuns, 'p99'),
    vcpu_per_1000_rps: { nginx: median(cpuFixed.nginx!), weft: median(cpuFixed.weft!) },
    rss_mb: { idle, at_1000_rps: { nginx: median(rssLoad.nginx!), weft: median(rssLoad.weft!) } },
    weft_requests_counted_in_metrics: counted,
  };
  writeFileSync(path.join(HERE, 'last-run.json'), JSON.stringify(result, null, 2) + '\n');
  const f = (n: number, d = 2): string => n.toFixed(d);
  const fx = result.fixed as Record<
    string,
    { rps: number; p50_ms: number; p90_ms: number; p99_ms: number; p999_ms: number; max_ms: number }
  >;
  const lines = [
    `| measure | nginx | weft | weft/nginx | target |`,
    `|---|---|---|---|---|`,
    `| max req/s @64 conns (median of ${REPS}) | ${f(result.max.nginx_rps, 0)} | ${f(result.max.weft_rps, 0)} | ${f(result.max.ratio)} | ≥ 0.60 |`,
    `| CPU µs per request at max | ${f(result.max.cpu_us_per_request.nginx, 1)} | ${f(result.max.cpu_us_per_request.weft, 1)} | ${f(result.max.cpu_us_per_request.weft / result.max.cpu_us_per_request.nginx)} | |`,
    `| p50 / p90 / p99 ms @1,000 req/s, 16 conns (direct: ${f(fx.direct!.p50_ms)} / ${f(fx.direct!.p90_ms)} / ${f(fx.direct!.p99_ms)}) | ${f(fx.nginx!.p50_ms)} / ${f(fx.nginx!.p90_ms)} / ${f(fx.nginx!.p99_ms)} | ${f(fx.weft!.p50_ms)} / ${f(fx.weft!.p90_ms)} / ${f(fx.weft!.p99_ms)} | p99 ${f(result.p99_ratio)} | p99 ≤ 1.2 |`,
    `| p99.9 / max ms @1,000 req/s (GC pauses show here) | ${f(fx.nginx!.p999_ms)} / ${f(fx.nginx!.max_ms, 1)} | ${f(fx.weft!.p999_ms)} / ${f(fx.weft!.max_ms, 1)} | | |`,
    `| vCPU per 1,000 req/s | ${f(result.vcpu_per_1000_rps.nginx, 3)} | ${f(result.vcpu_per_1000_rps.weft, 3)} | ${f(result.vcpu_per_1000_rps.weft / result.vcpu_per_1000_rps.nginx)} | weft ≤ 0.15 |`,
    `| RSS MB idle (weft: ${SERVICES + 1} services) | ${f(idle.nginx, 1)} | ${f(idle.weft, 1)} | | weft ≤ 50 |`,
    `| RSS MB at 1,000 req/s | ${f(result.rss_mb.at_1000_rps.nginx, 1)} | ${f(result.rss_mb.at_1000_rps.weft, 1)} | | weft ≤ 70 |`,
  ];
  process.stdout.write(
    lines.join('\n') +
      `\n\nload average at the end: ${result.loadavg_at_end.join(' ')} (2 cores)\nerrors at max: nginx ${result.max.errors.nginx}, weft ${result.max.errors.weft}; weft requests counted in istio_requests_total: ${counted}\nfixed-rate achieved: direct ${f(fx.direct!.rps, 0)}, nginx ${f(fx.nginx!.rps, 0)}, weft ${f(fx.weft!.rps, 0)} req/s\nfull results: bench/proxy/last-run.json\n`,
  );
}

function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  if (!PROFILE) setTimeout(() => rmSync(work, { recursive: true, force: true }), 500).unref();
}

main().then(
  () => {
    cleanup();
    if (PROFILE) process.stderr.write(`CPU profile written under ${work} (kept)\n`);
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).message}\n`);
    cleanup();
    process.exitCode = 1;
  },
);
