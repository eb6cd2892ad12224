/**
 * The operator's small HTTP servers, kubebuilder-style: probes (`/healthz`, `/readyz`) on one
 * address and Prometheus `/metrics` on another. Every replica serves them; `/readyz` turns
 * green once the informer caches have synced (leader or not, a synced standby is ready).
 */
import express from 'express';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface ProbeState {
  ready: () => boolean;
  healthy: () => boolean;
}

/** `:8081`, `127.0.0.1:8081`, `0` → host and port for listen(). */
export function parseBindAddress(addr: string): { host: string; port: number } | null {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(addr.trim());
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1] === undefined || m[1] === '' ? '0.0.0.0' : m[1].replace(/^\[|\]$/g, ''), port };
}

function listen(app: express.Express, addr: { host: string; port: number }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(addr.port, addr.host, (err?: Error) => (err ? reject(err) : resolve(server)));
    server.on('error', reject);
  });
}

export function probeApp(state: ProbeState): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res
      .status(state.healthy() ? 200 : 500)
      .type('text/plain')
      .send(state.healthy() ? 'ok' : 'unhealthy');
  });
  app.get('/readyz', (_req, res) => {
    const ok = state.ready();
    res
      .status(ok ? 200 : 503)
      .type('text/plain')
      .send(ok ? 'ok' : 'informer caches not synced');
  });
  return app;
}

export function metricsApp(registry: Registry): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return app;
}

export async function startServers(
  probes: { host: string; port: number },
  metrics: { host: string; port: number },
  state: ProbeState,
  registry: Registry,
): Promise<Server[]> {
  return [await listen(probeApp(state), probes), await listen(metricsApp(registry), metrics)];
}
