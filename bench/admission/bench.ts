/**
 * Admission benchmark (not a test). Starts `webhook/main.ts --no-cluster` with a fresh
 * certificate, then for each webhook sends AdmissionReviews at a fixed rate (open loop: each
 * request has a scheduled send time, and latency is measured from that time, so a stall is
 * charged to every request it delays rather than hidden), over a keep-alive HTTPS agent.
 * Finally a short closed-loop burst (16 in flight) gives the throughput ceiling.
 *
 * The validator runs with an index of 2,000 mesh objects (`--preload`), so each validation
 * includes the cross-object checks a real cluster would have.
 *
 * Env: RATE (req/s, default 100), DURATION (s per webhook, default 30), WARMUP (s, default 3).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueServing } from '../../pkg/certs/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const RATE = Number(process.env.RATE ?? 100);
const DURATION = Number(process.env.DURATION ?? 30);
const WARMUP = Number(process.env.WARMUP ?? 3);
const BURST_SECONDS = 5;
const BURST_CONCURRENCY = 16;
if (!(RATE > 0 && RATE <= 2000 && DURATION > 0 && DURATION <= 300))
  throw new Error('RATE must be 1..2000 and DURATION 1..300');

let uid = 0;
function review(object: Record<string, unknown>): string {
  const [group, version] = String(object.apiVersion).includes('/')
    ? String(object.apiVersion).split('/')
    : ['', String(object.apiVersion)];
  const meta = object.metadata as { name: string; namespace: string };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${++uid}`,
      kind: { group, version, kind: object.kind },
      operation: 'CREATE',
      name: meta.name,
      namespace: meta.namespace,
      object,
    },
  });
}

/** Bookinfo's reviews VirtualService with a header match and a 90/10 split: a typical object. */
const virtualService = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'bookinfo' },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        match: [{ headers: { 'end-user': { exact: 'jason' } } }],
        route: [{ destination: { host: 'reviews', subset: 'v2' } }],
      },
      {
        match: [{ uri: { prefix: '/api/v1' } }],
        timeout: '5s',
        retries: { attempts: 3, perTryTimeout: '1s' },
        route: [{ destination: { host: 'reviews', subset: 'v3' } }],
      },
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 10 },
        ],
      },
    ],
  },
};

/** A Deployment-made pod with probes and annotations (opted in by label: the bench runs without a cluster). */
const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'reviews-v1-7d9f8c6b5-',
    namespace: 'bookinfo',
    labels: {
      app: 'reviews',
      version: 'v1',
      'pod-template-hash': '7d9f8c6b5',
      'sidecar.istio.io/inject': 'true',
    },
    annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432' },
  },
  spec: {
    serviceAccountName: 'bookinfo-reviews',
    containers: [
      {
        name: 'reviews',
        image: 'docker.io/istio/examples-bookinfo-reviews-v1:1.20.2',
        ports: [{ name: 'http', containerPort: 9080 }],
        readinessProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 5 },
        livenessProbe: { tcpSocket: { port: 9080 } },
        resources: { requests: { cpu: '100m', memory: '128Mi' } },
      },
    ],
  },
};

interface Server {
  port: number;
  ca: string;
  stop: () => Promise<void>;
}

/** The mesh the validator checks each object against: 2,000 objects in 50 namespaces, plus reviews' DestinationRule. */
const INDEX_OBJECTS = 2000;
function meshYaml(): string {
  const docs: object[] = [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: 'bookinfo' },
      spec: {
        host: 'reviews',
        subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
      },
    },
  ];
  for (let i = 0; i < INDEX_OBJECTS / 2; i++) {
    const ns = `team-${i % 50}`;
    docs.push(
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: {
          hosts: [`svc-${i}`],
          http: [{ route: [{ destination: { host: `svc-${i}`, subset: 'v1' } }] }],
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: { host: `svc-${i}`, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
      },
    );
  }
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

async function startServer(dir: string): Promise<Server> {
  const now = new Date();
  const ca = createCA({ commonName: 'bench-ca', ttlMs: 86400_000, now });
  const leaf = issueServing(ca, { commonName: '127.0.0.1', dnsNames: ['127.0.0.1'], ttlMs: 86400_000, now });
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  writeFileSync(join(dir, 'mesh.yaml'), meshYaml());
  const log = openSync(join(dir, 'webhook.log'), 'w');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'webhook/main.ts'),
      '--no-cluster',
      '--port=0',
      '--host=127.0.0.1',
      `--tls-dir=${dir}`,
      `--preload=${join(dir, 'mesh.yaml')}`,
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', log],
      // The in-server figures are parsed from the JSON request logs.
      env: { ...process.env, WEFT_LOG_FORMAT: 'json', WEFT_LOG_LEVEL: 'info' },
    },
  );
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    const timer = setTimeout(
      () => fail(new Error(`webhook did not start; see ${join(dir, 'webhook.log')}`)),
      30_000,
    );
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`webhook exited with ${code}`)));
  });
  return {
    port,
    ca: ca.certPem,
    stop: () =>
      new Promise((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

function post(agent: Agent, port: number, path: string, body: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? ok(res.statusCode) : fail(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end(body);
  });
}

/**
 * The webhook's own view: `durationMs` of each "Admission reviewed" log line written since
 * `from` (body parsed → response written), i.e. latency without client, kernel or TLS queueing.
 */
function serverDurations(logFile: string, from: number): number[] {
  const text = readFileSync(logFile, 'utf8').slice(from);
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('Admission reviewed')) continue;
    const d = (JSON.parse(line) as { durationMs?: number }).durationMs;
    if (typeof d === 'number') out.push(d);
  }
  return out.sort((a, b) => a - b);
}

/** One request whose answer is read: the bench must measure real verdicts, not errors. */
function sanityCheck(
  agent: Agent,
  port: number,
  path: string,
  body: string,
  expect: (r: Record<string, unknown>) => boolean,
): Promise<void> {
  return new Promise((ok, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          const resp = (JSON.parse(text) as { response?: Record<string, unknown> }).response ?? {};
          if (expect(resp)) ok();
          else fail(new Error(`unexpected answer from ${path}: ${text.slice(0, 500)}`));
        });
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Open loop at `rate` for `seconds`; latency from each request's scheduled start. */
async function fixedRate(
  agent: Agent,
  port: number,
  path: string,
  make: () => string,
  rate: number,
  seconds: number,
): Promise<{ lat: number[]; errors: number }> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  const lat: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const body = make();
    inflight.push(
      post(agent, port, path, body).then(
        () => void lat.push(performance.now() - due),
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  return { lat: lat.sort((a, b) => a - b), errors };
}

async function burst(agent: Agent, port: number, path: string, make: () => string): Promise<number> {
  const end = performance.now() + BURST_SECONDS * 1000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await post(agent, port, path, make());
      done++;
    }
  };
  await Promise.all(Array.from({ length: BURST_CONCURRENCY }, worker));
  return done / BURST_SECONDS;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-admission-'));
  const server = await startServer(dir);
  const agent = new Agent({ ca: server.ca, keepAlive: true, maxSockets: 16 });
  const cases = [
    { name: 'validate', path: '/validate', make: () => review(virtualService) },
    { name: 'inject', path: '/inject', make: () => review(pod) },
  ];
  const results: Record<string, unknown>[] = [];
  // Other work on the machine shows up as tail latency; record it so figures can be judged.
  const loadBefore = loadavg()[0]!.toFixed(2);
  try {
    // validate: allowed with no warnings (the index defines the subsets); inject: a patch.
    await sanityCheck(
      agent,
      server.port,
      '/validate',
      cases[0]!.make(),
      (r) => r.allowed === true && r.warnings === undefined,
    );
    await sanityCheck(
      agent,
      server.port,
      '/inject',
      cases[1]!.make(),
      (r) => r.allowed === true && typeof r.patch === 'string',
    );
    for (const c of cases) {
      await fixedRate(agent, server.port, c.path, c.make, RATE, WARMUP);
      const logFrom = statSync(join(dir, 'webhook.log')).size;
      const { lat, errors } = await fixedRate(agent, server.port, c.path, c.make, RATE, DURATION);
      const inServer = serverDurations(join(dir, 'webhook.log'), logFrom);
      const ceiling = await burst(agent, server.port, c.path, c.make);
      const row = {
        webhook: c.name,
        rate: RATE,
        requests: lat.length,
        errors,
        p50_ms: +percentile(lat, 50).toFixed(2),
        p90_ms: +percentile(lat, 90).toFixed(2),
        p99_ms: +percentile(lat, 99).toFixed(2),
        max_ms: +(lat[lat.length - 1] ?? NaN).toFixed(2),
        server_p50_ms: +percentile(inServer, 50).toFixed(2),
        server_p99_ms: +percentile(inServer, 99).toFixed(2),
        closed_loop_req_per_s: Math.round(ceiling),
      };
      results.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    agent.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0]!.toFixed(2);
  console.log(
    `\nadmission latency at ${RATE} req/s over ${DURATION} s, HTTPS keep-alive on loopback, ${cpus().length} cores, node ${process.version}, logs at info`,
  );
  console.log(
    `1-min load average: ${loadBefore} before, ${loadAfter} after (above ~1 means other processes competed for the CPUs)`,
  );
  console.log(
    'webhook   p50 ms   p90 ms   p99 ms   max ms   errors   in-server p50/p99 ms   ceiling req/s (16 in flight)',
  );
  for (const r of results) {
    const cols = [r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors]
      .map((v) => String(v).padStart(6))
      .join('   ');
    console.log(
      `${String(r.webhook).padEnd(9)} ${cols}   ${`${r.server_p50_ms} / ${r.server_p99_ms}`.padStart(20)}   ${r.closed_loop_req_per_s}`,
    );
  }
  const target = results.every((r) => (r.p99_ms as number) < 10);
  console.log(`target p99 < 10 ms: ${target ? 'met' : 'MISSED'}`);
  writeFileSync(
    join(ROOT, 'bench/admission/last-run.json'),
    `${JSON.stringify({ date: new Date().toISOString(), rate: RATE, duration: DURATION, loadBefore, loadAfter, results }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(`bench/admission: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
