/**
 * What the proxy benches share: /proc readings, medians, the two load generators (wrk for max
 * throughput, loadgen.mjs for a fixed rate with coordinated-omission correction), and `proxy
 * sidecar` run as the image runs it (images/weft/entrypoint.mjs over a dist/ compiled module by
 * module), configured by a fake weftd. Children are tracked here and stopped by PID.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProxyConfig, VirtualHost } from '../../pkg/proxyconfig/types.js';
import { freePort } from '../../test/support/ports.js';

export { freePort };

export const HERE = path.dirname(new URL(import.meta.url).pathname);
export const ROOT = path.resolve(HERE, '../..');
export const execFileP = promisify(execFile);
/** Every child a bench started; killChildren() stops those still running (by PID). */
export const children = new Set<ChildProcess>();

export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** utime + stime of the processes, in seconds. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]); // utime, stime
  }
  return ticks / 100;
}

/** VmRSS of the processes together, in MB. */
export function rssMb(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += Number(m?.[1] ?? 0);
  }
  return kb / 1024;
}

export interface WrkResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  p999?: number;
  max?: number;
  errors: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** wrk wants `<options> <url> -- <script args>`. */
function withUrl(args: string[], url: string): string[] {
  const i = args.indexOf('--');
  return i < 0 ? [...args, url] : [...args.slice(0, i), url, ...args.slice(i)];
}

/** Closed-loop max throughput (wrk is in Debian; bench/proxy/host.lua sets Host from the script args). */
export async function wrk(url: string, args: string[]): Promise<WrkResult> {
  const { stdout: out } = await execFileP('wrk', withUrl(args, url), { encoding: 'utf8', timeout: 120_000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const pct = (p: string): number => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors:.*?connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50: pct('50'), p90: pct('90'), p99: pct('99'), errors };
}

/**
 * 1,000 req/s (or `rate`) open-loop over 16 connections (or `opts.connections`) for `seconds`
 * (bench/proxy/loadgen.mjs); `opts.headersFile`: per-request extra headers (see loadgen.mjs);
 * `opts.onSending`: called when the connections are open and the first request goes out.
 */
export async function fixedRate(
  url: string,
  host: string,
  seconds: number,
  rate = 1000,
  opts: { connections?: number; headersFile?: string; onSending?: () => void } = {},
): Promise<WrkResult & { completed: number }> {
  const run = execFileP(
    process.execPath,
    [
      path.join(HERE, 'loadgen.mjs'),
      url,
      host,
      String(rate),
      String(opts.connections ?? 16),
      String(seconds),
      ...(opts.headersFile !== undefined ? [opts.headersFile] : []),
    ],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  const { onSending } = opts;
  if (onSending !== undefined)
    run.child.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('sending')) onSending();
    });
  const { stdout } = await run;
  const r = JSON.parse(stdout) as Required<WrkResult> & { non2xx: number; completed: number };
  return {
    completed: r.completed,
    rps: r.rps,
    p50: r.p50,
    p90: r.p90,
    p99: r.p99,
    p999: r.p999,
    max: r.max,
    errors: r.errors + r.non2xx,
  };
}

/** The benchmark upstream (bench/proxy/upstream.mjs: 1 KiB, keep-alive) and its port. */
export async function startUpstream(): Promise<{ child: ChildProcess; port: number }> {
  const up = track(
    spawn(process.execPath, [path.join(HERE, 'upstream.mjs')], { stdio: ['ignore', 'pipe', 'ignore'] }),
  );
  const port = await new Promise<number>((resolve) =>
    up.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  return { child: up, port };
}

function tsFiles(src: string, dir: string): string[] {
  return readdirSync(path.join(src, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f));
}

/**
 * The image's layout: entrypoint.mjs next to dist/, one .js per .ts (what `npm run build` makes),
 * under node_modules/.cache so package imports resolve and linters skip it.
 */
export function buildImageLayout(src: string, name: string): string {
  const out = path.join(ROOT, 'node_modules', '.cache', 'weft-bench', `image-${name}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, 'dist'), { recursive: true });
  execFileSync(
    path.join(ROOT, 'node_modules/.bin/esbuild'),
    [
      ...tsFiles(src, 'proxy'),
      ...tsFiles(src, 'pkg'),
      '--platform=node',
      '--format=esm',
      '--target=node22',
      `--outdir=${path.join(out, 'dist')}`,
      '--outbase=.',
      '--log-level=warning',
    ],
    { cwd: src },
  );
  writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type: 'module' }));
  copyFileSync(path.join(src, 'images/weft/entrypoint.mjs'), path.join(out, 'entrypoint.mjs'));
  return path.join(out, 'entrypoint.mjs');
}

/** Node flags the image gives a pod: the Dockerfile's NODE_OPTIONS, if any (entrypoint flags apply inside). */
export function imageNodeOptions(src: string): string[] {
  const m = /^ENV\s+.*NODE_OPTIONS="?([^"\n]*)"?/m.exec(readFileSync(path.join(src, 'Dockerfile'), 'utf8'));
  return (m?.[1] ?? '').split(' ').filter((f) => f !== '');
}

export interface RunningSidecar {
  child: ChildProcess;
  ports: Record<string, number>;
}

/**
 * `proxy sidecar` on loopback with every port chosen by the kernel, ready (config from weftd
 * applied, workload certificate held). `extraEnv` overrides the pod's env (POD_NAME,
 * WEFT_TOKEN_PATH for another identity...).
 */
export async function startSidecar(
  entry: string,
  flags: string[],
  weftd: { address: string; rootPath: string; tokenPath: string },
  extraEnv: Record<string, string> = {},
  stdoutFd?: number,
): Promise<RunningSidecar> {
  const args = [...flags, entry, 'proxy', 'sidecar', '--bind', '127.0.0.1', '--drain-seconds', '0'];
  for (const p of ['--outbound-port', '--inbound-port', '--admin-port', '--metrics-port', '--health-port'])
    args.push(p, '0');
  const child = track(
    spawn(process.execPath, args, {
      cwd: path.dirname(entry),
      stdio: ['ignore', stdoutFd ?? 'ignore', 'pipe'],
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        WEFT_DISCOVERY_ADDRESS: weftd.address,
        WEFT_CA_ROOT_PATH: weftd.rootPath,
        WEFT_TOKEN_PATH: weftd.tokenPath,
        POD_NAME: 'bench-client-1',
        POD_NAMESPACE: 'bench',
        INSTANCE_IP: '127.0.0.1',
        ...extraEnv,
      },
    }),
  );
  let log = '';
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`sidecar did not start: ${log.slice(-500)}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.length > 65536) log = log.slice(-32768);
      const l = log.split('\n').find((x) => x.includes('"Proxy started; waiting for config from weftd"'));
      if (l !== undefined) {
        clearTimeout(t);
        resolve(l);
      }
    });
    child.once('exit', (code) => reject(new Error(`sidecar exited (${code}): ${log.slice(-500)}`)));
  });
  const ports = (JSON.parse(line) as { ports: Record<string, number> }).ports;
  // ready = config from weftd compiled and swapped in, and a workload certificate held
  for (let i = 0; ; i++) {
    const r = await fetch(`http://127.0.0.1:${ports.health}/healthz/ready`).catch(() => null);
    if (r?.status === 200) break;
    if (i > 600) throw new Error(`sidecar never became ready: ${log.slice(-500)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return { child, ports };
}

export async function stopSidecar(r: RunningSidecar): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exited = new Promise((res) => r.child.once('exit', res));
  r.child.kill('SIGTERM');
  await exited;
}

/** The bench host's routes: two rules that never match before the one that does (header, prefix/regex). */
export function benchVirtualHost(host: string, domains: string[]): VirtualHost {
  return {
    name: host,
    domains,
    routes: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        action: { type: 'route', destinations: [{ cluster: 'outbound|80|v2|bench', weight: 100 }] },
      },
      {
        match: [{ uri: { prefix: '/admin' } }, { uri: { regex: '/api/v[0-9]+/internal/.*' } }],
        action: { type: 'route', destinations: [{ cluster: 'outbound|80|v2|bench', weight: 100 }] },
      },
      { action: { type: 'route', destinations: [{ cluster: 'outbound|80|v1|bench', weight: 100 }] } },
    ],
  };
}

/** `n` other services of namespace `bench` (two endpoints each, never called): a mesh's catalogue. */
export function serviceCatalogue(n: number): { vhosts: VirtualHost[]; clusters: ProxyConfig['clusters'] } {
  const vhosts: VirtualHost[] = [];
  const clusters: ProxyConfig['clusters'] = [];
  for (let i = 0; i < n; i++) {
    const host = `svc-${i}.bench.svc.cluster.local`;
    vhosts.push({
      name: host,
      domains: [host, `${host}:8080`, `svc-${i}`, `svc-${i}:8080`, `svc-${i}.bench`, `svc-${i}.bench:8080`],
      routes: [
        { action: { type: 'route', destinations: [{ cluster: `outbound|8080||${host}`, weight: 100 }] } },
      ],
    });
    clusters.push({
      name: `outbound|8080||${host}`,
      endpoints: [
        { address: `10.1.${i >> 8}.${i & 255}`, port: 8080 },
        { address: `10.2.${i >> 8}.${i & 255}`, port: 8080 },
      ],
    });
  }
  return { vhosts, clusters };
}

/** An nginx.conf for one worker under `dir`, no access log: `http` lines, then one server block. */
export function nginxConf(dir: string, http: string, server: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  ${http}
  server {
    ${server}
  }
}
`;
}

export interface Nginx {
  /** The master and its workers (CPU and RSS count all). */
  pids: number[];
  port: number;
}

/** nginx from /usr/sbin (hack/ensure-deps.sh) with `conf(dir, port)` under `work/name`, started and tracked. */
export async function startNginx(
  work: string,
  name: string,
  conf: (dir: string, port: number) => string,
): Promise<Nginx> {
  const dir = path.join(work, name);
  mkdirSync(dir);
  const port = await freePort();
  writeFileSync(path.join(dir, 'nginx.conf'), conf(dir, port));
  const ng = track(
    spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' }),
  );
  let master = 0;
  for (let i = 0; i < 100 && master === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      master = Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim());
    } catch {
      if (ng.exitCode !== null)
        throw new Error(`nginx ${name} exited: ${readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  const workers = execFileSync('ps', ['--ppid', String(master), '-o', 'pid='], { encoding: 'utf8' })
    .trim()
    .split(/\s+/)
    .map(Number);
  return { pids: [master, ...workers], port };
}
