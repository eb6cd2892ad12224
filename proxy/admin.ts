/**
 * Admin (15000), Prometheus (15090) and health (15021) endpoints, Envoy/Istio-shaped:
 *   GET  /config_dump   the ProxyConfig in force (+ version and last reload result)
 *   GET  /ready         200 LIVE / 503 DRAINING or NOT_READY
 *   GET  /stats         cluster counters as `name: value` lines (Envoy text form)
 *   GET  /stats/prometheus, /metrics   Istio metrics
 *   GET  /clusters      endpoints with health, in-flight counts and ejections (JSON)
 *   GET  /certs         the workload certificate and trust bundle: SPIFFE ID, serials, validity,
 *                       fingerprints, next rotation (never the key), and the delivered
 *                       credentialName credentials (certificates, CAs, errors); also on the Prometheus port,
 *                       where `weftctl proxy-config secret` reads it through the API server
 *   POST /explain       evaluate a synthetic request against the live config (JSON in, JSON out)
 *   POST /drain         stop accepting, fail readiness
 *   POST /quitquitquit  drain, then exit (for Jobs)
 *   (sidecar) GET /inbound, POST /inbound/explain   proxy/inbound/admin.ts
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProxyServer } from './server.js';
import { redactCredentials } from '../pkg/proxyconfig/types.js';
import { credentialSummaries } from './upstream/tls.js';
import { explainSynthetic, type SyntheticRequest } from './router/explain.js';
import { selectRoute } from './router/exchange.js';

const MAX_BODY = 64 * 1024;

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new Error(`request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  return JSON.parse(text) as unknown;
}

function readiness(p: ProxyServer): [number, string] {
  if (p.draining) return [503, 'DRAINING\n'];
  const notReady = p.opts.readinessGate?.() ?? null;
  if (notReady !== null) return [503, `NOT_READY: ${notReady}\n`];
  if (p.current === null) return [503, 'NOT_READY: no config applied yet\n'];
  return [200, 'LIVE\n'];
}

function stats(p: ProxyServer): string {
  const lines: string[] = [];
  for (const c of p.current?.clusters.values() ?? []) {
    const s = c.stats;
    const pre = `cluster.${c.name}`;
    lines.push(
      `${pre}.upstream_rq_total: ${s.rqTotal}`,
      `${pre}.upstream_rq_active: ${s.rqActive}`,
      `${pre}.upstream_rq_pending_overflow: ${s.rqPendingOverflow}`,
      `${pre}.upstream_rq_retry: ${s.rqRetry}`,
      `${pre}.upstream_rq_retry_overflow: ${s.rqRetryOverflow}`,
      `${pre}.upstream_cx_connect_fail: ${s.cxConnectFail}`,
      `${pre}.outlier_detection.ejections_total: ${s.ejectionsTotal}`,
      `${pre}.ssl.handshake: ${c.tlsStats.sslHandshake}`,
      `${pre}.ssl.connection_error: ${c.tlsStats.sslConnectionError}`,
      `${pre}.ssl.fail_verify_san: ${c.tlsStats.sslFailVerifySan}`,
      `${pre}.membership_healthy: ${c.healthyCount()}`,
      `${pre}.membership_total: ${c.endpoints.length}`,
    );
  }
  for (const [k, v] of p.metrics.counters) lines.push(`${k}: ${v}`);
  const mem = process.memoryUsage();
  lines.push(
    `server.downstream_rq_active: ${p.inFlight()}`,
    `server.state: ${p.draining ? 'DRAINING' : 'LIVE'}`,
    `server.memory_rss_bytes: ${mem.rss}`,
    `server.memory_heap_used_bytes: ${mem.heapUsed}`,
    `server.memory_heap_total_bytes: ${mem.heapTotal}`,
  );
  return lines.join('\n') + '\n';
}

async function explain(p: ProxyServer, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: unknown;
  try {
    body = await readJson(req);
  } catch (err) {
    return send(res, 400, {
      error: `explain: body must be JSON {method, path, authority, headers, port}: ${(err as Error).message}`,
    });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return send(res, 400, { error: 'explain: body must be a JSON object' });
  const b = body as Record<string, unknown>;
  const input: SyntheticRequest = {};
  if (typeof b.method === 'string') input.method = b.method;
  if (typeof b.path === 'string') input.path = b.path;
  if (typeof b.authority === 'string') input.authority = b.authority;
  if (typeof b.host === 'string') input.authority ??= b.host;
  if (typeof b.port === 'number') input.port = b.port;
  if (typeof b.listener === 'string') input.listener = b.listener;
  if (typeof b.sourceIp === 'string') input.sourceIp = b.sourceIp;
  if (typeof b.headers === 'object' && b.headers !== null) {
    input.headers = Object.fromEntries(
      Object.entries(b.headers as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
    );
  }
  if (p.current === null) return send(res, 503, { error: 'no config applied yet' });
  send(res, 200, explainSynthetic(p.current, input, selectRoute));
}

/** The identity summary; 404 for a proxy without one (standalone `run`). */
function certs(p: ProxyServer, res: ServerResponse): void {
  const identity = p.opts.identity;
  if (!identity) return send(res, 404, { error: 'this proxy has no workload identity (standalone mode)' });
  // and the DestinationRule credentialName credentials weftd delivered (gateways), without keys
  send(res, 200, { ...identity.summary(), credentials: credentialSummaries(p.current?.source.credentials) });
}

export async function handleAdmin(
  p: ProxyServer,
  role: 'admin' | 'metrics' | 'health',
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const method = req.method ?? 'GET';
  if (role === 'health') {
    if (path === '/healthz/ready' || path === '/ready') {
      const [code, text] = readiness(p);
      return send(res, code, text);
    }
    if (p.opts.healthRoutes?.(req, res)) return;
    return send(res, 404, 'not found: try /healthz/ready\n');
  }
  if (path === '/stats/prometheus' || path === '/metrics') {
    const text = p.metrics.render();
    res.writeHead(200, {
      'content-type': 'text/plain; version=0.0.4',
      'content-length': Buffer.byteLength(text),
    });
    return void res.end(text);
  }
  if (path === '/certs' && method === 'GET') return certs(p, res);
  if (role === 'metrics') return send(res, 404, 'not found: try /stats/prometheus or /certs\n');
  if (p.opts.adminRoutes?.(req, res)) return;
  switch (`${method} ${path}`) {
    case 'GET /config_dump':
      return send(res, 200, {
        version: p.current?.version,
        lastReload: p.lastReload,
        // private keys of delivered credentials are never shown
        config: redactCredentials(p.current?.source),
      });
    case 'GET /ready': {
      const [code, text] = readiness(p);
      return send(res, code, text);
    }
    case 'GET /stats':
      return send(res, 200, stats(p));
    case 'GET /clusters':
      return send(res, 200, {
        version: p.current?.version,
        clusters: [...(p.current?.clusters.defs.values() ?? [])].map(
          (def) =>
            p.current?.clusters.peek(def.name)?.describe() ?? {
              name: def.name,
              created: false,
              endpoints: def.endpoints.map((e) => ({
                address: `${e.address}:${e.port}`,
                labels: e.labels ?? {},
                healthy: true,
                active: 0,
              })),
            },
        ),
      });
    case 'POST /explain':
      return explain(p, req, res);
    case 'POST /drain':
    case 'POST /drain_listeners':
      p.drain();
      return send(res, 200, 'DRAINING\n');
    case 'POST /quitquitquit':
      send(res, 200, 'OK\n');
      void p.shutdown().then(() => p.exit());
      return;
    default:
      return send(
        res,
        404,
        'not found: /config_dump /ready /stats /stats/prometheus /clusters /certs POST /explain /drain /quitquitquit\n',
      );
  }
}
