/** A real webhook server on 127.0.0.1 with a real TLS certificate, for the unit suites. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:https';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServingCert, type ServingCert } from '../../support/certs.js';
import { DEFAULT_INJECTION_SETTINGS, type InjectionSettings } from '../../../pkg/inject/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { MeshIndex } from '../../../webhook/mesh-index.js';
import { createMetrics, type WebhookMetrics } from '../../../webhook/metrics.js';
import { createWebhookApp, listenHttps } from '../../../webhook/server.js';
import { CertReloader } from '../../../pkg/tls/index.js';
import { ValidationPool, type PoolOptions } from '../../../webhook/validate-pool.js';
import type { ServerTimeouts } from '../../../pkg/http/timeouts.js';

/** The answer as the tests read it: an AdmissionReview, or a coded HTTP error. Fields may be absent at run time. */
export interface AnswerJson {
  response: {
    uid: string;
    allowed: boolean;
    status: { code: number; message: string; reason?: string };
    patchType?: string;
    patch: string;
    warnings: string[];
  };
  code: string;
  message: string;
}

export interface TestServer {
  port: number;
  ca: string;
  dir: string;
  cert: ServingCert;
  index: MeshIndex;
  pool: ValidationPool;
  metrics: WebhookMetrics;
  tls: CertReloader;
  namespaces: Map<string, Record<string, string>>;
  post(
    path: string,
    body: unknown,
    raw?: boolean,
  ): Promise<{ status: number; json: AnswerJson; text: string }>;
  get(path: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export async function startTestServer(
  opts: {
    settings?: Partial<InjectionSettings>;
    handlerTimeoutMs?: number;
    bodyLimitBytes?: number;
    inFlightLimitBytes?: number;
    poolJobTimeoutMs?: number;
    pool?: PoolOptions;
    /** Cost limits of the validating handler (defaults: webhook/validate.ts). */
    inlineMaxUnits?: number;
    maxUnits?: number;
    /** Server timeouts (defaults: pkg/http/timeouts.ts). */
    timeouts?: Partial<ServerTimeouts>;
    crossObject?: 'warn' | 'deny';
    /** Informers the index waits for before it is trusted (0: ready at once). */
    indexSources?: number;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-webhook-test-'));
  const cert = makeServingCert(['127.0.0.1']);
  writeFileSync(join(dir, 'tls.crt'), cert.certPem);
  writeFileSync(join(dir, 'tls.key'), cert.keyPem);
  const log = createLogger('webhook-test', { silent: true });
  const tls = new CertReloader(join(dir, 'tls.crt'), join(dir, 'tls.key'), log, 50);
  const index = new MeshIndex(opts.indexSources ?? 0);
  const pool = new ValidationPool({ jobTimeoutMs: opts.poolJobTimeoutMs ?? 7000, ...opts.pool });
  await pool.warm();
  const metrics = createMetrics(false);
  const namespaces = new Map<string, Record<string, string>>();
  const settings: InjectionSettings = { ...structuredClone(DEFAULT_INJECTION_SETTINGS), ...opts.settings };
  const app = createWebhookApp({
    log,
    metrics,
    validate: {
      index,
      crossObject: opts.crossObject ?? 'deny',
      pool,
      poolThresholdBytes: 64 * 1024,
      ...(opts.inlineMaxUnits === undefined ? {} : { inlineMaxUnits: opts.inlineMaxUnits }),
      ...(opts.maxUnits === undefined ? {} : { maxUnits: opts.maxUnits }),
    },
    inject: {
      // Namespace `hang` stands for an API server that never answers the lookup.
      namespace: (name) =>
        name === 'hang'
          ? new Promise(() => {})
          : Promise.resolve(
              namespaces.has(name) ? { metadata: { name, labels: namespaces.get(name)! } } : undefined,
            ),
      settings: () => settings,
    },
    readiness: () => ({ ready: tls.pair !== undefined }),
    ...(opts.handlerTimeoutMs === undefined ? {} : { handlerTimeoutMs: opts.handlerTimeoutMs }),
    ...(opts.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: opts.bodyLimitBytes }),
    ...(opts.inFlightLimitBytes === undefined ? {} : { inFlightLimitBytes: opts.inFlightLimitBytes }),
  });
  const { server, port } = await listenHttps(app, {
    host: '127.0.0.1',
    port: 0,
    tls,
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
  });
  const agent = new Agent({ ca: cert.caPem, keepAlive: true });
  const call = (method: string, path: string, payload?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method,
          agent,
          headers: payload === undefined ? {} : { 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return {
    port,
    ca: cert.caPem,
    dir,
    cert,
    index,
    pool,
    metrics,
    tls,
    namespaces,
    async post(path, body, raw = false) {
      const r = await call('POST', path, raw ? String(body) : JSON.stringify(body));
      let json = {} as AnswerJson;
      try {
        json = JSON.parse(r.text) as AnswerJson;
      } catch {
        // Not JSON: the tests that expect JSON fail on the missing fields.
      }
      return { ...r, json };
    },
    get: (path) => call('GET', path),
    close: async () => {
      await pool.close();
      await closeServer(server, agent, tls, dir);
    },
  };
}

async function closeServer(server: Server, agent: Agent, tls: CertReloader, dir: string): Promise<void> {
  tls.stop();
  agent.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
}

let uidCounter = 0;

export function reviewOf(object: unknown, over: Record<string, unknown> = {}): unknown {
  const o = (object ?? {}) as {
    apiVersion?: string;
    kind?: string;
    metadata?: { name?: string; namespace?: string };
  };
  const [group, version] = (o.apiVersion ?? 'v1').includes('/')
    ? (o.apiVersion ?? '').split('/')
    : ['', o.apiVersion ?? 'v1'];
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${++uidCounter}`,
      kind: { group, version, kind: o.kind ?? 'Unknown' },
      operation: 'CREATE',
      name: o.metadata?.name,
      namespace: o.metadata?.namespace,
      object,
      ...over,
    },
  };
}
