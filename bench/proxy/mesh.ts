/**
 * Issue 13's benchmark: one hop protected by TLS, weft against nginx, in one run, interleaved.
 *
 *  - `sidecar pair, mTLS`: client → sidecar A's outbound capture → mesh mTLS (ISTIO_MUTUAL from
 *    auto-mTLS: A's workload certificate, Istio ALPN, B's SPIFFE ID checked) → sidecar B's inbound
 *    capture (PeerAuthentication STRICT) → the app on loopback. Both are `proxy sidecar` run as
 *    the image runs it (harness.ts), each with its own fake weftd whose CA endpoint signs the
 *    sidecar's own CSR with weftd's CA code (signWorkloadCsr): real ECDSA P-256 workload
 *    identities spiffe://cluster.local/ns/bench/sa/client and .../sa/app, over one mesh root.
 *  - `nginx pair, TLS`: client → nginx A (HTTP) → TLS with a client certificate → nginx B
 *    (ssl_verify_client against the mesh root) → the app. The two nginx hold certificates for
 *    the same two identities, made by the same CA code from the CSR the proxy sends
 *    (test/integration/proxy/mesh-identity.ts), on the same root. nginx A does not verify B's
 *    certificate (proxy_ssl_verify off): nginx can only match a DNS name / CN, and a SPIFFE
 *    certificate has a URI SAN only; that check costs at handshakes, which keep-alive makes rare.
 *    One worker each (two processes serving, as the pair of sidecars), keep-alive on every hop.
 *  - `one sidecar, plaintext`: client → a sidecar's outbound capture → the app (the issue's CPU
 *    yardstick: the pair should cost ≤ 2× this).
 *  - `direct`: client → the app (latency floor; fixed rate only).
 *
 * Every sidecar gets the same SERVICES-service catalogue (as a mesh without Sidecar scoping
 * pushes). No iptables: the client addresses A's capture port; B's inbound has no original
 * destination, so it sends HTTP to the Host header's port (proxy/inbound/listener.ts), and the
 * client's Host carries the app's port.
 *
 * Measured (REPS interleaved repetitions, medians): max req/s (wrk -t1 -c64, MAX_SECONDS),
 * p50/p90/p99 at 1,000 req/s over 16 connections (loadgen.mjs, open loop, coordinated omission
 * corrected, FIXED_SECONDS), vCPU per 1,000 req/s and RSS (all processes of the pair; per side
 * too) during the fixed-rate runs. B's istio_requests_total is read at the end to prove the hop
 * was mTLS from the client's identity. Bounded: the whole run is killed after DEADLINE_SECONDS.
 * PROFILE=1: both sidecars of the pair and the plaintext one run with --cpu-prof (profiles kept,
 * path printed), to compare the pair's self time with the yardstick's.
 * TRACE_GC=1: every sidecar runs with --trace-gc; the run prints, per sidecar, the GC pauses that
 * fell inside its scenario's fixed-rate windows (count, total, longest, ≥5 ms, ≥10 ms, by kind),
 * to tell a collector's pause from other stalls in the p99 (logs kept, path printed).
 *
 *   PROXY_BENCH=mesh npm run bench -- proxy        (or: npx tsx bench/proxy/mesh.ts)
 */
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import {
  PROXY_CONFIG_API_VERSION,
  TLS_MODE_LABEL,
  type ProxyConfig,
  type UpstreamTls,
} from '../../pkg/proxyconfig/types.js';
import { spiffeId } from '../../pkg/certs/workload.js';
import { fakeWeftd, GOOD_TOKEN, type FakeWeftd } from '../../test/integration/proxy/fake-weftd.js';
import { workloadCert } from '../../test/integration/proxy/mesh-identity.js';
import {
  benchVirtualHost,
  buildImageLayout,
  cpuSeconds,
  fixedRate,
  HERE,
  imageNodeOptions,
  killChildren,
  median,
  nginxConf,
  ROOT,
  rssMb,
  serviceCatalogue,
  startNginx,
  startSidecar,
  startUpstream,
  wrk,
  type RunningSidecar,
  type WrkResult,
} from './harness.js';

const REPS = Number(process.env.REPS ?? 3);
const MAX_SECONDS = Number(process.env.MAX_SECONDS ?? 5);
const FIXED_SECONDS = Number(process.env.FIXED_SECONDS ?? 8);
const SERVICES = Number(process.env.SERVICES ?? 1000);
const DEADLINE_SECONDS = Number(process.env.DEADLINE_SECONDS ?? 240);
const PROFILE = process.env.PROFILE === '1';
const TRACE_GC = process.env.TRACE_GC === '1';
const NS = 'bench';
const HOST = `bench.${NS}.svc.cluster.local`;
const CLIENT_SA = 'client';
const SERVER_SA = 'app';
const work = mkdtempSync(path.join(tmpdir(), 'weft-bench-mesh-'));

/** The outbound catalogue every sidecar gets: the bench host (to `bench`) and SERVICES others. */
function config(
  version: string,
  host: string,
  bench: { address: string; port: number; tls?: UpstreamTls; labels?: Record<string, string> },
  inbound?: ProxyConfig['inbound'],
): ProxyConfig {
  const { vhosts, clusters } = serviceCatalogue(SERVICES);
  vhosts.unshift(benchVirtualHost(HOST, [HOST, host]));
  const ep = { address: bench.address, port: bench.port, ...(bench.labels ? { labels: bench.labels } : {}) };
  clusters.unshift(
    ...['v1', 'v2'].map((subset) => ({
      name: `outbound|80|${subset}|bench`,
      service: HOST,
      port: 80,
      subset,
      endpoints: [ep],
      ...(bench.tls ? { tls: { ...bench.tls, sni: `outbound_.80_.${subset}_.${HOST}` } } : {}),
    })),
  );
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: [
      { name: 'outbound', protocol: 'HTTP', address: '0.0.0.0', port: 15001, virtualHosts: vhosts },
    ],
    clusters,
    ...(inbound ? { inbound } : {}),
    telemetry: { workload: { name: `bench-${version}`, namespace: NS } },
  };
}

/** A fake weftd whose CA signs `sa`'s identity for the bench token (same mesh root for all). */
async function weftdFor(cfg: ProxyConfig, sa: string): Promise<FakeWeftd> {
  const w = await fakeWeftd(cfg);
  w.identities.set(GOOD_TOKEN, { namespace: NS, serviceAccount: sa });
  return w;
}

interface Scenario {
  name: string;
  url: string;
  /** Processes whose CPU and RSS count; parts: per side. */
  pids: number[];
  parts?: Record<string, number[]>;
  max: boolean;
}

interface FixedSample extends WrkResult {
  vcpu: number;
  rss: number;
  parts: Record<string, { vcpu: number; rss: number }>;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const entry = buildImageLayout(ROOT, 'current');
  const flags = [...imageNodeOptions(ROOT)];
  const prof = (tag: string): string[] => [
    ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(work, 'profiles', tag)}`] : []),
    ...(TRACE_GC ? ['--trace-gc'] : []),
  ];
  const gcTraces = new Map<string, GcTrace>();
  const gcOut = (tag: string): number | undefined => {
    if (!TRACE_GC) return undefined;
    const file = path.join(work, `gc-${tag}.log`);
    gcTraces.set(tag, { file, startedAt: Date.now() });
    return openSync(file, 'w');
  };
  const app = await startUpstream();
  const host = `${HOST}:${app.port}`;
  const serverId = spiffeId('cluster.local', NS, SERVER_SA);
  const clientId = spiffeId('cluster.local', NS, CLIENT_SA);

  // sidecar B (server side): STRICT inbound, HTTP declared on the app's port
  const weftdB = await weftdFor(
    config(
      'server',
      host,
      { address: '127.0.0.1', port: app.port },
      {
        mtls: { mode: 'STRICT', policy: `PeerAuthentication ${NS}/strict` },
        ports: [{ port: app.port, protocol: 'HTTP' }],
      },
    ),
    SERVER_SA,
  );
  const b = await startSidecar(
    entry,
    [...flags, ...prof('server')],
    weftdB,
    { POD_NAME: 'app-1' },
    gcOut('server'),
  );
  // sidecar A (client side): auto-mTLS to B's inbound capture, as weftd's translation gives it
  const weftdA = await weftdFor(
    config('client', host, {
      address: '127.0.0.1',
      port: b.ports.inbound!,
      labels: { [TLS_MODE_LABEL]: 'istio' },
      tls: { mode: 'ISTIO_MUTUAL', auto: true, subjectAltNames: [serverId] },
    }),
    CLIENT_SA,
  );
  const a = await startSidecar(
    entry,
    [...flags, ...prof('client')],
    weftdA,
    { POD_NAME: 'client-1' },
    gcOut('client'),
  );
  // one plaintext sidecar, straight to the app
  const weftdP = await weftdFor(config('plain', host, { address: '127.0.0.1', port: app.port }), CLIENT_SA);
  const p = await startSidecar(
    entry,
    [...flags, ...prof('plain')],
    weftdP,
    { POD_NAME: 'plain-1' },
    gcOut('plain'),
  );

  // nginx with TLS on the same hop, certificates for the same identities from the same CA code
  const certDir = path.join(work, 'certs');
  mkdirSync(certDir);
  const write = (n: string, s: string): string => {
    writeFileSync(path.join(certDir, n), s);
    return path.join(certDir, n);
  };
  const root = write('root.pem', weftdA.ca.certPem);
  const sc = workloadCert(weftdA.ca, serverId);
  const cc = workloadCert(weftdA.ca, clientId);
  const [sCert, sKey, cCert, cKey] = [
    write('server.pem', sc.certPem),
    write('server.key', sc.keyPem),
    write('client.pem', cc.certPem),
    write('client.key', cc.keyPem),
  ];
  const ngB = await startNginx(work, 'nginx-b', (dir, port) =>
    nginxConf(
      dir,
      `keepalive_requests 100000;
  upstream app { server 127.0.0.1:${app.port}; keepalive 64; }`,
      `listen 127.0.0.1:${port} ssl;
    ssl_certificate ${sCert};
    ssl_certificate_key ${sKey};
    ssl_client_certificate ${root};
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }`,
    ),
  );
  const ngA = await startNginx(work, 'nginx-a', (dir, port) =>
    nginxConf(
      dir,
      `keepalive_requests 100000;
  upstream b { server 127.0.0.1:${ngB.port}; keepalive 64; }`,
      `listen 127.0.0.1:${port};
    location / {
      proxy_pass https://b;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_ssl_certificate ${cCert};
      proxy_ssl_certificate_key ${cKey};
      proxy_ssl_server_name on;
      proxy_ssl_name outbound_.80_.v1_.${HOST};
      proxy_ssl_session_reuse on;
      proxy_ssl_verify off;
    }`,
    ),
  );

  const pair = [a.child.pid!, b.child.pid!];
  const ngPair = [...ngA.pids, ...ngB.pids];
  const scenarios: Scenario[] = [
    { name: 'direct', url: `http://127.0.0.1:${app.port}/`, pids: [app.child.pid!], max: false },
    {
      name: 'nginx pair, TLS',
      url: `http://127.0.0.1:${ngA.port}/`,
      pids: ngPair,
      parts: { 'nginx A': ngA.pids, 'nginx B': ngB.pids },
      max: true,
    },
    {
      name: 'sidecar pair, mTLS',
      url: `http://127.0.0.1:${a.ports.outbound}/`,
      pids: pair,
      parts: { 'sidecar A': [a.child.pid!], 'sidecar B': [b.child.pid!] },
      max: true,
    },
    {
      name: 'one sidecar, plaintext',
      url: `http://127.0.0.1:${p.ports.outbound}/`,
      pids: [p.child.pid!],
      max: true,
    },
  ];
  const hostArgs = ['-s', path.join(HERE, 'host.lua'), '--', host];
  // warm up (JIT, pools, TLS sessions); idle RSS after it
  for (const s of scenarios.filter((x) => x.max)) {
    const r = await wrk(s.url, ['-t1', '-c4', '-d2s', ...hostArgs]);
    if (r.errors > 0 || !(r.rps > 0))
      throw new Error(`${s.name}: warm-up failed (${r.errors} errors, ${r.rps} req/s)`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const idle = Object.fromEntries(scenarios.filter((s) => s.max).map((s) => [s.name, rssMb(s.pids)]));

  const maxRuns = new Map<string, WrkResult[]>();
  const fixedRuns = new Map<string, FixedSample[]>();
  const fixedWindows = new Map<string, Array<[number, number]>>();
  /** PROFILE: the fixed-rate windows on the profiles' clock (µs, monotonic) with the requests served. */
  const profileWindows: ProfileWindow[] = [];
  for (let i = 0; i < REPS; i++) {
    for (const s of scenarios.filter((x) => x.max)) {
      const r = await wrk(s.url, ['-t1', '-c64', `-d${MAX_SECONDS}s`, ...hostArgs]);
      (maxRuns.get(s.name) ?? maxRuns.set(s.name, []).get(s.name)!).push(r);
      process.stderr.write(`max ${s.name} rep ${i + 1}: ${r.rps.toFixed(0)} req/s, errors ${r.errors}\n`);
    }
    for (const s of scenarios) {
      const groups = { all: s.pids, ...(s.parts ?? {}) };
      const c0 = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, cpuSeconds(v)]));
      const peak: Record<string, number> = Object.fromEntries(Object.keys(groups).map((k) => [k, 0]));
      const sample = (): void => {
        for (const [k, v] of Object.entries(groups)) peak[k] = Math.max(peak[k]!, rssMb(v));
      };
      const started = performance.now();
      const wallStart = Date.now();
      const sampler = setInterval(sample, 500);
      const monoStart = monotonicUs();
      const r = await fixedRate(s.url, host, FIXED_SECONDS);
      profileWindows.push({
        scenario: s.name,
        startUs: monoStart,
        endUs: monotonicUs(),
        requests: r.completed,
      });
      (fixedWindows.get(s.name) ?? fixedWindows.set(s.name, []).get(s.name)!).push([wallStart, Date.now()]);
      clearInterval(sampler);
      sample();
      const secs = (performance.now() - started) / 1000;
      const vcpu = (k: string): number =>
        ((cpuSeconds(groups[k as keyof typeof groups]!) - c0[k]!) / secs) * (1000 / r.rps);
      const fs: FixedSample = {
        ...r,
        vcpu: vcpu('all'),
        rss: peak.all!,
        parts: Object.fromEntries(
          Object.keys(s.parts ?? {}).map((k) => [k, { vcpu: vcpu(k), rss: peak[k]! }]),
        ),
      };
      (fixedRuns.get(s.name) ?? fixedRuns.set(s.name, []).get(s.name)!).push(fs);
      process.stderr.write(
        `fixed ${s.name} rep ${i + 1}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} p90 ${r.p90.toFixed(2)} p99 ${r.p99.toFixed(2)} ms, ${fs.vcpu.toFixed(3)} vCPU/1k, RSS ${fs.rss.toFixed(1)} MB, errors ${r.errors}\n`,
      );
    }
    if ((Date.now() - t0) / 1000 > DEADLINE_SECONDS * 0.8 && i < REPS - 1) {
      process.stderr.write(`stopping after ${i + 1} repetitions: close to the ${DEADLINE_SECONDS} s bound\n`);
      break;
    }
  }

  // proof that the hop was mesh mTLS from the client's identity: B's destination metrics
  const metrics = await (await fetch(`http://127.0.0.1:${b.ports.metrics}/stats/prometheus`)).text();
  const mtlsRequests = metrics
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('istio_requests_total{') &&
        l.includes('reporter="destination"') &&
        l.includes('connection_security_policy="mutual_tls"') &&
        l.includes(`source_principal="${clientId}"`),
    )
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  const plaintextRequests = metrics
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && l.includes('connection_security_policy="none"'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);

  // connection churn on the mTLS hop: every one is a full handshake on both sides
  const stats = await (await fetch(`http://127.0.0.1:${a.ports.admin}/stats`)).text();
  const handshakes = [
    ...stats.matchAll(/^cluster\.outbound\|80\|v[12]\|bench\.ssl\.handshake: (\d+)$/gm),
  ].reduce((n, x) => n + Number(x[1]), 0);
  const inboundConns = Number(
    /^weft_proxy_inbound_connections_total(?:\{\})? (\d+)/m.exec(metrics)?.[1] ?? NaN,
  );

  const m = (name: string, k: keyof FixedSample): number =>
    median(fixedRuns.get(name)!.map((r) => r[k] as number));
  const part = (name: string, p: string, k: 'vcpu' | 'rss'): number =>
    median(fixedRuns.get(name)!.map((r) => r.parts[p]![k]));
  const fixed = Object.fromEntries(
    scenarios.map((s) => [
      s.name,
      {
        rps: m(s.name, 'rps'),
        p50_ms: m(s.name, 'p50'),
        p90_ms: m(s.name, 'p90'),
        p99_ms: m(s.name, 'p99'),
        p999_ms: m(s.name, 'p999'),
        vcpu_per_1000_rps: m(s.name, 'vcpu'),
        rss_mb_at_1000_rps: m(s.name, 'rss'),
        errors: fixedRuns.get(s.name)!.reduce((n, r) => n + r.errors, 0),
        parts: Object.fromEntries(
          Object.keys(s.parts ?? {}).map((p) => [
            p,
            { vcpu_per_1000_rps: part(s.name, p, 'vcpu'), rss_mb_at_1000_rps: part(s.name, p, 'rss') },
          ]),
        ),
      },
    ]),
  );
  const max = Object.fromEntries(
    [...maxRuns].map(([n, rs]) => [
      n,
      { rps: median(rs.map((r) => r.rps)), errors: rs.reduce((x, r) => x + r.errors, 0) },
    ]),
  );
  const PAIR = 'sidecar pair, mTLS';
  const NG = 'nginx pair, TLS';
  const ONE = 'one sidecar, plaintext';
  const targets = {
    vcpu_pair_over_one_plaintext: fixed[PAIR]!.vcpu_per_1000_rps / fixed[ONE]!.vcpu_per_1000_rps,
    p99_pair_over_nginx_tls: fixed[PAIR]!.p99_ms / fixed[NG]!.p99_ms,
  };
  const result = {
    when: new Date().toISOString(),
    loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))),
    settings: {
      REPS,
      reps_done: fixedRuns.get(PAIR)!.length,
      MAX_SECONDS,
      FIXED_SECONDS,
      SERVICES,
      nodeFlags: flags,
      load: 'max: wrk -t1 -c64; fixed: loadgen.mjs 1,000 req/s open-loop over 16 connections',
      identities: { client: clientId, server: serverId, key: 'ECDSA P-256 (weft CA code path)' },
    },
    max,
    fixed,
    rss_mb_idle: idle,
    targets,
    server_sidecar_requests: { mutual_tls_from_client: mtlsRequests, plaintext: plaintextRequests },
    mtls_hop_connections: { client_handshakes: handshakes, server_inbound_connections: inboundConns },
  };
  writeFileSync(path.join(HERE, 'last-run-mesh.json'), JSON.stringify(result, null, 2) + '\n');

  const f = (n: number | undefined, d = 2): string =>
    n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d);
  const row = (n: string): string => {
    const x = fixed[n]!;
    const parts = Object.entries(x.parts)
      .map(([k, v]) => `${k} ${f(v.vcpu_per_1000_rps, 3)}`)
      .join(', ');
    const rssParts = Object.entries(x.parts)
      .map(([k, v]) => `${k} ${f(v.rss_mb_at_1000_rps, 1)}`)
      .join(', ');
    return `| ${n} | ${max[n] ? f(max[n].rps, 0) : '-'} | ${f(x.p50_ms)} / ${f(x.p90_ms)} / ${f(x.p99_ms)} | ${n === 'direct' ? '-' : f(x.vcpu_per_1000_rps, 3) + (parts ? ` (${parts})` : '')} | ${idle[n] === undefined ? '-' : f(idle[n], 1)} / ${n === 'direct' ? '-' : f(x.rss_mb_at_1000_rps, 1) + (rssParts ? ` (${rssParts})` : '')} |`;
  };
  const lines = [
    `| medians of ${result.settings.reps_done} | max req/s (wrk -c64) | p50 / p90 / p99 ms @1,000 req/s | vCPU per 1,000 req/s | RSS MB idle / @1,000 req/s |`,
    `|---|---|---|---|---|`,
    ...scenarios.map((s) => row(s.name)),
  ];
  process.stdout.write(
    `${lines.join('\n')}\n\n` +
      `target: pair vCPU ≤ 2× one plaintext sidecar: ${f(targets.vcpu_pair_over_one_plaintext)}× (${targets.vcpu_pair_over_one_plaintext <= 2 ? 'met' : 'MISSED'})\n` +
      `target: pair p99 ≤ 1.5× nginx-TLS: ${f(targets.p99_pair_over_nginx_tls)}× (${targets.p99_pair_over_nginx_tls <= 1.5 ? 'met' : 'MISSED'})\n` +
      `sidecar B counted ${mtlsRequests} requests mutual_tls from ${clientId}, ${plaintextRequests} plaintext; ` +
      `A→B TLS handshakes ${handshakes}, B inbound connections ${inboundConns} (whole run)\n` +
      `errors at max: ${Object.entries(max)
        .map(([n, x]) => `${n} ${x.errors}`)
        .join(', ')}\n` +
      `load average at the end: ${result.loadavg_at_end.join(' ')} (2 cores, shared)\nfull results: bench/proxy/last-run-mesh.json\n`,
  );
  // stop the sidecars first so --cpu-prof writes its profiles
  for (const r of [a, b, p] as RunningSidecar[]) {
    const exited = new Promise((res) => r.child.once('exit', res));
    r.child.kill('SIGTERM');
    await exited;
  }
  for (const w of [weftdA, weftdB, weftdP]) await w.close();
  if (PROFILE) {
    const dir = path.join(work, 'profiles');
    writeFileSync(
      path.join(dir, 'windows.json'),
      JSON.stringify({ tags: { client: PAIR, server: PAIR, plain: ONE }, windows: profileWindows }, null, 2),
    );
    process.stderr.write(
      `CPU profiles: ${dir} (kept); per request, pair against plaintext: npx tsx bench/proxy/profile-compare.ts ${dir}\n`,
    );
  }
  if (TRACE_GC) {
    const windowsOf: Record<string, string> = { client: PAIR, server: PAIR, plain: ONE };
    for (const [tag, trace] of gcTraces) {
      const s = summariseGc(trace, fixedWindows.get(windowsOf[tag]!) ?? []);
      process.stdout.write(
        `GC ${tag} (during "${windowsOf[tag]}" fixed-rate windows): ${s.count} pauses, ${s.totalMs.toFixed(1)} ms in all, ` +
          `longest ${s.maxMs.toFixed(1)} ms, ${s.over5} ≥ 5 ms, ${s.over10} ≥ 10 ms; by kind ${JSON.stringify(s.byKind)}\n`,
      );
    }
    process.stderr.write(`GC traces: ${work} (kept)\n`);
  }
}

/** A fixed-rate window as profile-compare.ts reads it (profiles/windows.json). */
export interface ProfileWindow {
  scenario: string;
  startUs: number;
  endUs: number;
  requests: number;
}

/**
 * Now on the clock of V8's CPU profiles (their startTime and timeDeltas): CLOCK_MONOTONIC in µs,
 * which process.hrtime reads too, so windows taken here line up with samples taken in the sidecars.
 */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface GcTrace {
  file: string;
  /** wall clock at spawn: --trace-gc stamps ms since the isolate started, a few ms later */
  startedAt: number;
}

/** GC pauses from a --trace-gc log that fall inside the given wall-clock windows. */
function summariseGc(
  trace: GcTrace,
  windows: Array<[number, number]>,
): {
  count: number;
  totalMs: number;
  maxMs: number;
  over5: number;
  over10: number;
  byKind: Record<string, number>;
} {
  const out = { count: 0, totalMs: 0, maxMs: 0, over5: 0, over10: 0, byKind: {} as Record<string, number> };
  for (const line of readFileSync(trace.file, 'utf8').split('\n')) {
    const m = /\s(\d+) ms: ([A-Za-z][A-Za-z -]*?)(?: \(|\s[\d.]+ \().*?, ([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (m === null) continue;
    const at = trace.startedAt + Number(m[1]);
    if (!windows.some(([from, to]) => at >= from && at <= to)) continue;
    const pause = Number(m[3]);
    out.count++;
    out.totalMs += pause;
    out.maxMs = Math.max(out.maxMs, pause);
    if (pause >= 5) out.over5++;
    if (pause >= 10) out.over10++;
    out.byKind[m[2]!] = (out.byKind[m[2]!] ?? 0) + 1;
  }
  return out;
}

function cleanup(): void {
  killChildren();
  if (!PROFILE && !TRACE_GC) rmSync(work, { recursive: true, force: true });
}

const watchdog = setTimeout(() => {
  process.stderr.write(`bench/proxy/mesh: over ${DEADLINE_SECONDS} s; stopping\n`);
  cleanup();
  process.exit(1);
}, DEADLINE_SECONDS * 1000);
watchdog.unref();

main().then(
  () => {
    clearTimeout(watchdog);
    cleanup();
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    cleanup();
    process.exitCode = 1;
  },
);
