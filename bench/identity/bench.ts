/**
 * The cost of workload identity, ECDSA P-256 against RSA-2048 (ADR 0010): key generation, CSR
 * building (the proxy), CSR signing (weftd's CA, RSA-2048 root), a CSR round trip over HTTPS on
 * loopback (a new TLS connection each time, as the proxy makes it; no TokenReview), and a full
 * mutual-TLS handshake on loopback (no session resumption: every mesh connection the proxy
 * opens pays one), and a request through the proxy over a kept-alive upstream connection,
 * plaintext vs ISTIO_MUTUAL, each through a stand-in for the server side (a TCP pipe, or a TLS
 * terminator) to an HTTP app: the steady-state cost of mesh mTLS, record encryption both ways.
 * Medians (and p90) of REPS runs, in process; CPU is client + proxy + servers together.
 *
 *   npm run bench -- identity          REPS=200 (default) bash bench/identity/run.sh
 */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { buildCsr, generateWorkloadKey, type WorkloadKeyAlgorithm } from '../../pkg/certs/csr.js';
import { signWorkloadCsr } from '../../pkg/certs/workload.js';
import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../pkg/log/index.js';
import type { Cluster, ProxyConfig } from '../../pkg/proxyconfig/types.js';
import type { IdentitySource } from '../../proxy/identity/types.js';
import { ProxyServer } from '../../proxy/server.js';

const REPS = Math.max(10, Math.min(2000, Number(process.env.REPS ?? 200)));
const ALGS: WorkloadKeyAlgorithm[] = ['ECDSA_P256', 'RSA_2048'];
const now = new Date();
const root = createCA({ commonName: 'bench-root', ttlMs: 24 * 3600_000, now });
const ID = 'spiffe://cluster.local/ns/bench/sa/client';

interface Stat {
  median: number;
  p90: number;
}

function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.floor(s.length * 0.9)]! };
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

function repeat(n: number, fn: () => void): Stat {
  fn(); // warm-up
  return stat(Array.from({ length: n }, () => timed(fn)));
}

function identity(alg: WorkloadKeyAlgorithm): { key: string; cert: string } {
  const key = generateWorkloadKey(alg);
  const cert = signWorkloadCsr(root, buildCsr(key, ID), { spiffeId: ID, ttlMs: 3600_000, now });
  return { key: key.export({ type: 'pkcs8', format: 'pem' }).toString(), cert };
}

async function handshakes(alg: WorkloadKeyAlgorithm): Promise<{ ms: Stat; cpuMs: number }> {
  const server = identity(alg);
  const client = identity(alg);
  const srv = tls.createServer(
    { ...server, ca: root.certPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (s) => s.end(),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      const s = tls.connect({
        port,
        host: '127.0.0.1',
        ...client,
        ca: root.certPem,
        checkServerIdentity: () => undefined,
        minVersion: 'TLSv1.3',
      });
      s.once('secureConnect', () => {
        const ms = performance.now() - t;
        s.destroy();
        resolve(ms);
      });
      s.once('error', reject);
    });
  await one();
  const cpu = process.cpuUsage();
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) samples.push(await one());
  const used = process.cpuUsage(cpu);
  srv.close();
  return { ms: stat(samples), cpuMs: (used.user + used.system) / 1000 / REPS };
}

async function roundTrips(alg: WorkloadKeyAlgorithm): Promise<Stat> {
  const serving = issueServing(root, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  const srv = https.createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { csr } = JSON.parse(Buffer.concat(chunks).toString()) as { csr: string };
      const leaf = signWorkloadCsr(root, csr, { spiffeId: ID, ttlMs: 3600_000, now: new Date() });
      res.end(JSON.stringify({ certChain: [leaf], rootCert: root.certPem }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      const csr = buildCsr(generateWorkloadKey(alg), ID);
      const req = https.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/certificates', ca: root.certPem, agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => {
            new X509Certificate((JSON.parse(body) as { certChain: string[] }).certChain[0]!);
            resolve(performance.now() - t);
          });
        },
      );
      req.once('error', reject);
      req.end(JSON.stringify({ csr }));
    });
  await one();
  const n = Math.min(REPS, 100);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await one());
  srv.close();
  return stat(samples);
}

/** An IdentitySource with a fixed certificate (the bench measures TLS, not renewal). */
function fixedIdentity(
  alg: WorkloadKeyAlgorithm,
  sa: string,
): IdentitySource & { pair: { key: string; cert: string } } {
  const key = generateWorkloadKey(alg);
  const id = `spiffe://cluster.local/ns/bench/sa/${sa}`;
  const cert = signWorkloadCsr(root, buildCsr(key, id), { spiffeId: id, ttlMs: 3600_000, now });
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const context = tls.createSecureContext({ key: keyPem, cert, ca: root.certPem });
  const creds = {
    spiffeId: id,
    trustDomain: 'cluster.local',
    certChainPem: cert,
    keyPem,
    rootsPem: root.certPem,
    notBefore: now,
    notAfter: new Date(now.getTime() + 3600_000),
  };
  return {
    current: () => creds,
    secureContext: () => context,
    onChange: () => () => undefined,
    pair: { key: keyPem, cert },
  };
}

async function throughProxy(mtls: boolean): Promise<{ ms: Stat; cpuMs: number }> {
  const app = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  const server = fixedIdentity('ECDSA_P256', 'server');
  const term = tls.createServer(
    { ...server.pair, ca: root.certPem, requestCert: true, rejectUnauthorized: true },
    (s) => {
      const out = net.connect(appPort, '127.0.0.1');
      s.pipe(out).pipe(s);
      s.on('error', () => out.destroy());
      out.on('error', () => s.destroy());
    },
  );
  await new Promise<void>((r) => term.listen(0, '127.0.0.1', r));
  const termPort = (term.address() as AddressInfo).port;
  // plaintext goes through the same kind of hop (a TCP pipe), so the two differ by TLS alone
  const pipe = net.createServer((s) => {
    const out = net.connect(appPort, '127.0.0.1');
    s.pipe(out).pipe(s);
    s.on('error', () => out.destroy());
    out.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => pipe.listen(0, '127.0.0.1', r));
  const pipePort = (pipe.address() as AddressInfo).port;
  const cluster: Cluster = {
    name: 'outbound|80||app',
    service: 'app',
    port: 80,
    endpoints: [{ address: '127.0.0.1', port: mtls ? termPort : pipePort }],
    ...(mtls ? { tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: [server.current()!.spiffeId] } } : {}),
  };
  const cfg: ProxyConfig = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'bench',
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        port: 0,
        virtualHosts: [
          {
            name: 'app',
            domains: ['app'],
            routes: [{ action: { type: 'route', destinations: [{ cluster: cluster.name, weight: 1 }] } }],
          },
        ],
      },
    ],
    clusters: [cluster],
  };
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    adminPort: null,
    metricsPort: null,
    healthPort: null,
    logger: createLogger('bench', { silent: true }),
    accessLogSink: new PassThrough(),
    identity: { ...fixedIdentity('ECDSA_P256', 'client'), summary: () => ({}) as never },
  });
  await proxy.apply(cfg);
  const port = proxy.ports().outbound!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      http
        .get({ host: '127.0.0.1', port, path: '/', headers: { host: 'app' }, agent }, (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(performance.now() - t)
              : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        })
        .on('error', reject);
    });
  for (let i = 0; i < 50; i++) await one(); // warm-up, and the pooled connections are open
  const n = REPS * 10;
  const cpu = process.cpuUsage();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await one());
  const used = process.cpuUsage(cpu);
  agent.destroy();
  await proxy.shutdown();
  term.close();
  pipe.close();
  app.close();
  return { ms: stat(samples), cpuMs: (used.user + used.system) / 1000 / n };
}

const rows: Record<string, unknown>[] = [];
const f = (s: Stat): string => `${s.median.toFixed(2)} (p90 ${s.p90.toFixed(2)})`;
process.stdout.write(
  `| key | keygen ms | build CSR ms | CA sign ms | CSR round trip ms | mTLS handshake ms | handshake CPU ms |\n|---|---|---|---|---|---|---|\n`,
);
for (const alg of ALGS) {
  const keygen = repeat(alg === 'ECDSA_P256' ? REPS : Math.min(REPS, 50), () => generateWorkloadKey(alg));
  const key = generateWorkloadKey(alg);
  const csr = repeat(REPS, () => buildCsr(key, ID));
  const pem = buildCsr(key, ID);
  const sign = repeat(REPS, () => signWorkloadCsr(root, pem, { spiffeId: ID, ttlMs: 3600_000, now }));
  const trip = await roundTrips(alg);
  const hs = await handshakes(alg);
  rows.push({ alg, keygen, csr, sign, roundTrip: trip, handshake: hs.ms, handshakeCpuMs: hs.cpuMs });
  process.stdout.write(
    `| ${alg} | ${f(keygen)} | ${f(csr)} | ${f(sign)} | ${f(trip)} | ${f(hs.ms)} | ${hs.cpuMs.toFixed(2)} |\n`,
  );
}
process.stdout.write(
  `\n(medians of ${REPS}; RSA keygen of min(${REPS}, 50); round trips of min(${REPS}, 100))\n`,
);
const through: Record<string, unknown> = {};
process.stdout.write(
  `\n| request through the proxy, kept-alive upstream | ms | CPU ms per request (all parties) |\n|---|---|---|\n`,
);
for (const mtls of [false, true]) {
  const r = await throughProxy(mtls);
  through[mtls ? 'istioMutual' : 'plaintext'] = r;
  process.stdout.write(
    `| ${mtls ? 'ISTIO_MUTUAL (ECDSA P-256)' : 'plaintext'} | ${f(r.ms)} | ${r.cpuMs.toFixed(3)} |\n`,
  );
}
process.stdout.write(`(medians of ${REPS * 10} sequential requests)\n`);
rows.push({ throughProxy: through });
writeFileSync(
  new URL('./last-run.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), reps: REPS, rows }, null, 2)}\n`,
);
