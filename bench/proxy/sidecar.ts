/**
 * Memory and CPU of the proxy in its pod mode (`proxy sidecar`), run as the image runs it: the
 * image's entry point (images/weft/entrypoint.mjs) over a dist/ compiled module by module (as tsc
 * does for the image; no bundle), plain node, configured by a fake weftd (real TLS, the real
 * discovery protocol: test/integration/proxy/fake-weftd.ts) with SERVICES services + the bench
 * host. Per variant of Node flags, REPS interleaved runs (a fresh process each):
 *   idle RSS once ready (config applied), RSS max while serving 1,000 req/s for FIXED_SECONDS
 *   (loadgen.mjs through the outbound capture, routed by Host), vCPU per 1,000 req/s.
 * Plus one run with bench/proxy/modlog.mjs preloaded: modules loaded (count, source bytes, by
 * package) and process.memoryUsage() / V8 heap spaces at idle.
 *
 * Knobs (env): REPS (3), FIXED_SECONDS (10), SERVICES (1000), IDLE_SECONDS (2),
 * BASELINE (a git revision: its proxy/pkg/images/Dockerfile measured in the same run, interleaved),
 * VARIANTS ('entrypoint;none': `entrypoint` = the flags the image's entry point / ENV gives,
 * `none` = no Node flags, anything else = literal flags and NAME=value environment, `;`-separated).
 * Loopback only.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { fakeWeftd } from '../../test/integration/proxy/fake-weftd.js';
import {
  buildImageLayout,
  cpuSeconds,
  fixedRate,
  HERE,
  imageNodeOptions,
  killChildren,
  median,
  ROOT,
  rssMb,
  startSidecar,
  startUpstream,
  stopSidecar as stop,
  benchVirtualHost,
  serviceCatalogue,
} from './harness.js';

const REPS = Number(process.env.REPS ?? 3);
const FIXED_SECONDS = Number(process.env.FIXED_SECONDS ?? 10);
const SERVICES = Number(process.env.SERVICES ?? 1000);
/** How long a ready sidecar sits before its idle RSS is read (V8 gives memory back after a few idle seconds). */
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 2);
const VARIANTS = (process.env.VARIANTS || 'entrypoint;none').split(';').filter((v) => v !== '');
const HOST = 'bench.bench.svc.cluster.local';
const work = mkdtempSync(path.join(tmpdir(), 'weft-bench-sidecar-'));

function benchConfig(upstreamPort: number): ProxyConfig {
  const { vhosts, clusters } = serviceCatalogue(SERVICES);
  vhosts.unshift(benchVirtualHost(HOST, [HOST, `${HOST}:80`]));
  clusters.unshift(
    { name: 'outbound|80|v1|bench', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] },
    { name: 'outbound|80|v2|bench', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] },
  );
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'bench-1',
    listeners: [
      { name: 'outbound', protocol: 'HTTP', address: '0.0.0.0', port: 15001, virtualHosts: vhosts },
    ],
    clusters,
    telemetry: { workload: { name: 'bench-client', namespace: 'bench' } },
  };
}

interface Sample {
  idle: number;
  load: number;
  vcpu: number;
  rps: number;
  errors: number;
}

async function oneRun(
  entry: string,
  flags: string[],
  weftd: Parameters<typeof startSidecar>[2],
  env: Record<string, string>,
): Promise<Sample> {
  const r = await startSidecar(entry, flags, weftd, env);
  const pid = r.child.pid!;
  await new Promise((res) => setTimeout(res, IDLE_SECONDS * 1000));
  const idle = rssMb([pid]);
  const url = `http://127.0.0.1:${r.ports.outbound}/`;
  const c0 = cpuSeconds([pid]);
  const t0 = performance.now();
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rssMb([pid])), 500);
  const lg = await fixedRate(url, HOST, FIXED_SECONDS);
  clearInterval(sampler);
  samples.push(rssMb([pid]));
  const secs = (performance.now() - t0) / 1000;
  const vcpu = ((cpuSeconds([pid]) - c0) / secs) * (1000 / lg.rps);
  await stop(r);
  return { idle, load: Math.max(...samples), vcpu, rps: lg.rps, errors: lg.errors };
}

interface LoadedReport {
  modules: number;
  sourceKb: number;
  byPackage: Record<string, { modules: number; kb: number }>;
  memoryUsageMb: Record<string, number>;
  heapSpacesUsedMb: Record<string, number>;
}

async function whatIsLoaded(
  entry: string,
  flags: string[],
  weftd: Parameters<typeof startSidecar>[2],
): Promise<LoadedReport> {
  const file = path.join(work, 'modlog.json');
  const r = await startSidecar(entry, ['--import', path.join(HERE, 'modlog.mjs'), ...flags], weftd, {
    WEFT_MODLOG: file,
  });
  await new Promise((res) => setTimeout(res, 2000));
  r.child.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    try {
      readFileSync(file);
      break;
    } catch {
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  await stop(r);
  const d = JSON.parse(readFileSync(file, 'utf8')) as {
    modules: { url: string; size: number }[];
    memoryUsage: Record<string, number>;
    heapSpaces: { name: string; used: number }[];
  };
  const byPackage: LoadedReport['byPackage'] = {};
  for (const m of d.modules) {
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m.url);
    const key = m.url.startsWith('node:')
      ? 'node: builtins'
      : nm
        ? nm[1]!
        : (/\/dist\/([^/]+\/[^/]+)/.exec(m.url)?.[1] ?? m.url);
    const e = (byPackage[key] ??= { modules: 0, kb: 0 });
    e.modules++;
    e.kb += m.size / 1024;
  }
  const mb = (n: number): number => Number((n / 1048576).toFixed(1));
  return {
    modules: d.modules.filter((m) => !m.url.startsWith('node:')).length,
    sourceKb: Math.round(d.modules.reduce((a, m) => a + m.size, 0) / 1024),
    byPackage: Object.fromEntries(
      Object.entries(byPackage)
        .sort((a, b) => b[1].kb - a[1].kb)
        .map(([k, v]) => [k, { modules: v.modules, kb: Math.round(v.kb) }]),
    ),
    memoryUsageMb: Object.fromEntries(Object.entries(d.memoryUsage).map(([k, v]) => [k, mb(v)])),
    heapSpacesUsedMb: Object.fromEntries(d.heapSpaces.map((s) => [s.name, mb(s.used)])),
  };
}

/** A source tree to measure: the working tree, or BASELINE's files (git archive) for before/after in one run. */
interface Tree {
  name: string;
  src: string;
  entry: string;
}

function trees(): Tree[] {
  const out: Tree[] = [{ name: 'current', src: ROOT, entry: buildImageLayout(ROOT, 'current') }];
  const rev = process.env.BASELINE;
  if (rev !== undefined && rev !== '') {
    const src = path.join(work, 'baseline');
    mkdirSync(src);
    // the archive outgrew execFileSync's 1 MiB default buffer (ENOBUFS)
    const tar = execFileSync('git', ['archive', rev, 'proxy', 'pkg', 'images', 'Dockerfile'], {
      cwd: ROOT,
      maxBuffer: 256 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', src], { input: tar });
    out.push({ name: `baseline ${rev}`, src, entry: buildImageLayout(src, 'baseline') });
  }
  return out;
}

function variantFlags(v: string, src: string): string[] {
  if (v === 'entrypoint') return imageNodeOptions(src);
  if (v === 'none') return [];
  return v.split(' ').filter((f) => f !== '' && !ENV_TOKEN.test(f));
}

/** `NAME=value` words of a variant are environment for the sidecar (e.g. MALLOC_ARENA_MAX=2). */
const ENV_TOKEN = /^[A-Z][A-Z0-9_]*=/;
function variantEnv(v: string): Record<string, string> {
  const words = v.split(' ').filter((f) => ENV_TOKEN.test(f));
  return Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
}

async function main(): Promise<void> {
  const measured = trees().flatMap((t) => VARIANTS.map((v) => ({ label: `${t.name}: ${v}`, tree: t, v })));
  const { port: upstreamPort } = await startUpstream();
  const weftd = await fakeWeftd(benchConfig(upstreamPort));
  try {
    const runs = new Map<string, Sample[]>(measured.map((m) => [m.label, []]));
    for (let i = 0; i < REPS; i++)
      for (const m of measured) {
        const s = await oneRun(m.tree.entry, variantFlags(m.v, m.tree.src), weftd, variantEnv(m.v));
        runs.get(m.label)!.push(s);
        process.stderr.write(
          `${m.label} rep ${i + 1}: idle ${s.idle.toFixed(1)} MB, at 1,000 req/s ${s.load.toFixed(1)} MB, ${s.vcpu.toFixed(3)} vCPU/1k, ${s.rps.toFixed(0)} req/s, errors ${s.errors}\n`,
        );
      }
    const first = measured[0]!;
    const loaded = await whatIsLoaded(first.tree.entry, variantFlags(first.v, first.tree.src), weftd);
    const variants = Object.fromEntries(
      measured.map(({ label, tree, v }) => {
        const ss = runs.get(label)!;
        return [
          label,
          {
            nodeFlags: variantFlags(v, tree.src),
            env: variantEnv(v),
            rss_idle_mb: median(ss.map((s) => s.idle)),
            rss_at_1000_rps_mb: median(ss.map((s) => s.load)),
            vcpu_per_1000_rps: median(ss.map((s) => s.vcpu)),
            errors: ss.reduce((a, s) => a + s.errors, 0),
          },
        ];
      }),
    );
    const result = {
      when: new Date().toISOString(),
      loadavg_at_end: loadavg().map((x) => Number(x.toFixed(2))),
      settings: {
        REPS,
        FIXED_SECONDS,
        SERVICES,
        IDLE_SECONDS,
        BASELINE: process.env.BASELINE ?? null,
        mode: 'proxy sidecar via images/weft/entrypoint.mjs',
      },
      variants,
      loaded,
    };
    writeFileSync(path.join(HERE, 'last-run-sidecar.json'), JSON.stringify(result, null, 2) + '\n');
    const f = (n: number, d = 1): string => n.toFixed(d);
    const lines = [
      `| proxy sidecar, ${SERVICES + 1} services (median of ${REPS}) | Node flags | RSS MB idle | RSS MB @1,000 req/s | vCPU per 1,000 req/s |`,
      `|---|---|---|---|---|`,
      ...Object.entries(variants).map(
        ([v, r]) =>
          `| ${v} | ${r.nodeFlags.join(' ') || '(none)'} | ${f(r.rss_idle_mb)} | ${f(r.rss_at_1000_rps_mb)} | ${f(r.vcpu_per_1000_rps, 3)} |`,
      ),
      `| target (issue 6) | | ≤ 50 | ≤ 70 | ≤ 0.15 |`,
    ];
    const top = Object.entries(loaded.byPackage)
      .slice(0, 12)
      .map(([k, v]) => `${k} ${v.modules}/${v.kb} KB`)
      .join(', ');
    process.stdout.write(
      `${lines.join('\n')}\n\nloaded at idle (${first.label}): ${loaded.modules} modules, ${loaded.sourceKb} KB source; ` +
        `largest: ${top}\nmemoryUsage MB: ${JSON.stringify(loaded.memoryUsageMb)}\n` +
        `load average at the end: ${result.loadavg_at_end.join(' ')} (2 cores)\nfull results: bench/proxy/last-run-sidecar.json\n`,
    );
  } finally {
    await weftd.close();
  }
}

function cleanup(): void {
  killChildren();
  rmSync(work, { recursive: true, force: true });
}

main().then(cleanup, (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exitCode = 1;
});
