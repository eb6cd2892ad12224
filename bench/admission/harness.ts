/**
 * What the admission benchmarks share (bench.ts: latency at a fixed rate; abuse.ts: hostile
 * input): the real webhook process started with a fresh certificate and a 2,000-object index,
 * the AdmissionReview envelope, typical objects, and open-loop load.
 */
import { spawn } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCA, issueServing } from '../../pkg/certs/index.js';

export const ROOT = resolve(import.meta.dirname, '../..');

let uid = 0;
export function review(object: Record<string, unknown>): string {
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
export const virtualService = {
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
export const pod = {
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

export interface Server {
  port: number;
  ca: string;
  pid: number;
  /** False once the process has exited (crashed, for the abuse bench). */
  alive: () => boolean;
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

export async function startServer(dir: string, extraArgs: string[] = []): Promise<Server> {
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
      ...extraArgs,
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
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    port,
    ca: ca.certPem,
    pid: child.pid!,
    alive,
    stop: () =>
      new Promise((r) => {
        if (!alive()) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

export function post(agent: Agent, port: number, path: string, body: string): Promise<number> {
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

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Open loop at `rate` for `seconds`; latency from each request's scheduled start. */
export async function fixedRate(
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
