/**
 * The sidecar's inbound listener (proxy/inbound/listener.ts) alone, in this process: a closed-loop
 * client (bench/proxy/inbound-client.mjs, another process) → the listener → an app (another
 * process). Reports req/s, client-side latency percentiles and this process's CPU per 1,000
 * requests, for the app direct, inbound plaintext (PERMISSIVE) and inbound mesh mTLS (STRICT, with
 * a workload certificate from a mesh root made here), and mTLS with a new connection and a full
 * handshake (no resumption) per request. Loopback only, bounded: SECONDS (10) per
 * variant, CONNECTIONS (8), REPS (3; the median is reported).
 *
 *   npx tsx bench/proxy/inbound.ts
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { createLogger } from '../../pkg/log/index.js';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { InboundListener } from '../../proxy/inbound/listener.js';
import { MetricsRegistry } from '../../proxy/telemetry/metrics.js';
import { meshRoot, TestIdentity, workloadCert } from '../../test/integration/proxy/mesh-identity.js';

const SECONDS = Number(process.env.SECONDS ?? 10);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const REPS = Number(process.env.REPS ?? 3);
const HERE = path.dirname(new URL(import.meta.url).pathname);

function runNode(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
  });
}

async function startApp(): Promise<{ port: number; stop: () => void }> {
  const c = spawn(
    process.execPath,
    [
      '-e',
      "const s=require('http').createServer((q,r)=>r.end('x'.repeat(1024)));s.keepAliveTimeout=60000;s.listen(0,'127.0.0.1',()=>console.log(s.address().port))",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((r) =>
    c.stdout.once('data', (d: Buffer) => r(Number(d.toString()))),
  );
  return { port, stop: () => c.kill() };
}

interface Result {
  connections?: number;
  requests: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
}

let connectionsOpened = (): number => 0;

async function measure(
  port: number,
  cert?: string,
  newConnections = false,
): Promise<Result & { cpuMsPer1k: number }> {
  const before = process.cpuUsage();
  const conns = connectionsOpened();
  if (newConnections) process.env.NEW_CONNECTIONS = '1';
  else delete process.env.NEW_CONNECTIONS;
  const out = await runNode([
    path.join(HERE, 'inbound-client.mjs'),
    String(port),
    String(CONNECTIONS),
    String(SECONDS),
    ...(cert ? [cert] : []),
  ]);
  const cpu = process.cpuUsage(before);
  const r = JSON.parse(out) as Result;
  return {
    ...r,
    connections: connectionsOpened() - conns,
    cpuMsPer1k: r.requests > 0 ? ((cpu.user + cpu.system) / 1000 / r.requests) * 1000 : 0,
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const app = await startApp();
  const root = meshRoot();
  const self = 'spiffe://cluster.local/ns/bench/sa/app';
  const peer = workloadCert(root, 'spiffe://cluster.local/ns/bench/sa/client');
  const identity = new TestIdentity(self, root);
  const metrics = new MetricsRegistry({ workload: 'app', namespace: 'bench', app: 'app', version: 'v1' });
  const listener = new InboundListener({
    log: createLogger('bench', { silent: true }),
    metrics,
    accessLog: null,
    appHost: '127.0.0.1',
    identity,
    sniffTimeoutMs: 500,
    capturePorts: () => [],
    dst: () => ({ address: '127.0.0.1', port: app.port, family: 4 }),
  });
  connectionsOpened = () => metrics.counters.get('weft_proxy_inbound_connections_total') ?? 0;
  const server = net.createServer({ noDelay: true }, (s) => listener.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const cfg = (mode: 'STRICT' | 'PERMISSIVE'): ProxyConfig => ({
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: mode,
    listeners: [],
    clusters: [],
    inbound: {
      mtls: { mode, policy: `bench ${mode}` },
      ports: [{ port: app.port, protocol: 'HTTP' as const }],
    },
  });
  const cert = JSON.stringify({ key: peer.keyPem, cert: peer.certPem, ca: root.certPem });
  const variants: [string, () => Promise<Result & { cpuMsPer1k: number }>][] = [
    ['app direct', () => measure(app.port)],
    ['inbound plaintext (PERMISSIVE)', () => (listener.apply(cfg('PERMISSIVE')), measure(port))],
    ['inbound mTLS (STRICT)', () => (listener.apply(cfg('STRICT')), measure(port, cert))],
    [
      'inbound mTLS, a full handshake per request',
      () => (listener.apply(cfg('STRICT')), measure(port, cert, true)),
    ],
  ];
  const rows: Record<string, unknown>[] = [];
  for (const [name, run] of variants) {
    const reps: (Result & { cpuMsPer1k: number })[] = [];
    for (let i = 0; i < REPS; i++) reps.push(await run());
    rows.push({
      variant: name,
      'req/s': Math.round(median(reps.map((r) => r.requests / SECONDS))),
      'p50 ms': median(reps.map((r) => r.p50)).toFixed(2),
      'p99 ms': median(reps.map((r) => r.p99)).toFixed(2),
      'listener CPU ms / 1k req':
        name === 'app direct' ? '-' : median(reps.map((r) => r.cpuMsPer1k)).toFixed(1),
      'connections/s':
        name === 'app direct' ? '-' : Math.round(median(reps.map((r) => (r.connections ?? 0) / SECONDS))),
      errors: reps.reduce((a, r) => a + r.errors, 0),
    });
  }
  console.table(rows);
  console.log(JSON.stringify({ seconds: SECONDS, connections: CONNECTIONS, reps: REPS, rows }));
  server.close();
  await listener.close();
  app.stop();
}

await main();
