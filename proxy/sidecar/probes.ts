/**
 * Replays the app's kubelet probes from inside the pod (`/app-health/<container>/<livez|readyz|
 * startupz>` on the health port). The injector (pkg/inject/probes.ts) rewrote each probe to that
 * path and handed the original in ISTIO_KUBE_APP_PROBERS, keyed by path, in Istio's JSON shape.
 *
 * Probe connections leave from 127.0.0.6, the inbound pass-through source that the capture rules
 * never redirect (proxy/init/rules.ts), so they reach the app directly, like the kubelet's would.
 * Success is what the kubelet counts as success (HTTP 200-399, TCP connect, gRPC SERVING);
 * a failure answers 503 (or the app's own 4xx/5xx) with the reason in the body.
 */
import { http, http2 } from '../../pkg/builtins/index.js';
import type * as Http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { AppProber } from '../../pkg/inject/probes.js';

export const APP_HEALTH_PREFIX = '/app-health/';
export const PROBE_SOURCE = '127.0.0.6';

export type Probers = Map<string, AppProber>;

export interface ProbeResult {
  ok: boolean;
  status: number;
  detail: string;
}

/** Parses ISTIO_KUBE_APP_PROBERS; an unusable value is an error naming the bad entry. */
export function parseProbers(json: string | undefined): Probers {
  const out: Probers = new Map();
  if (json === undefined || json.trim() === '') return out;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`ISTIO_KUBE_APP_PROBERS is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error('ISTIO_KUBE_APP_PROBERS must be a JSON object keyed by probe path');
  for (const [path, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!path.startsWith(APP_HEALTH_PREFIX))
      throw new Error(
        `ISTIO_KUBE_APP_PROBERS: path ${JSON.stringify(path)} is not under ${APP_HEALTH_PREFIX}`,
      );
    const p = value as AppProber | null;
    const port = p?.httpGet?.port ?? p?.tcpSocket?.port ?? p?.grpc?.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new Error(
        `ISTIO_KUBE_APP_PROBERS[${JSON.stringify(path)}] needs httpGet, tcpSocket or grpc with a numeric port`,
      );
    out.set(path, p!);
  }
  return out;
}

/** Kubelet's default probe timeout is 1 s. */
function timeoutMs(p: AppProber): number {
  return Math.max(1, p.timeoutSeconds ?? 1) * 1000;
}

export async function runProbe(p: AppProber, appHost: string): Promise<ProbeResult> {
  if (p.httpGet) return httpProbe(p, appHost);
  if (p.tcpSocket) return tcpProbe(p.tcpSocket.host ?? appHost, p.tcpSocket.port, timeoutMs(p));
  if (p.grpc) return grpcProbe(appHost, p.grpc.port, p.grpc.service ?? '', timeoutMs(p));
  return { ok: false, status: 503, detail: 'no probe handler' };
}

/** Local source for the probe: 127.0.0.6 only works towards loopback or the pod's own address. */
function sourceFor(host: string): string | undefined {
  return net.isIPv4(host) ? PROBE_SOURCE : undefined;
}

function httpProbe(p: AppProber, appHost: string): Promise<ProbeResult> {
  const g = p.httpGet!;
  const host = g.host || appHost;
  const secure = (g.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.36', accept: '*/*' };
  for (const h of g.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const path = g.path ? (g.path.startsWith('/') ? g.path : `/${g.path}`) : '/';
  return new Promise((resolve) => {
    const req = (secure ? https : http).request({
      host,
      port: g.port,
      path,
      method: 'GET',
      headers,
      localAddress: sourceFor(host),
      timeout: timeoutMs(p),
      agent: false,
      // the kubelet does not verify app certificates either
      rejectUnauthorized: false,
    });
    req.on('response', (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 400;
      resolve({ ok, status: ok ? 200 : status, detail: `HTTP ${status} from ${host}:${g.port}${path}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs(p)} ms`)));
    req.on('error', (err) =>
      resolve({ ok: false, status: 503, detail: `GET ${host}:${g.port}${path}: ${err.message}` }),
    );
    req.end();
  });
}

function tcpProbe(host: string, port: number, ms: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: sourceFor(host), timeout: ms });
    s.once('connect', () => {
      s.destroy();
      resolve({ ok: true, status: 200, detail: `connected to ${host}:${port}` });
    });
    s.once('timeout', () => s.destroy(new Error(`no connection within ${ms} ms`)));
    s.once('error', (err) =>
      resolve({ ok: false, status: 503, detail: `connect ${host}:${port}: ${err.message}` }),
    );
  });
}

/** Protobuf's base-128 varint. */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * A gRPC length-prefixed HealthCheckRequest: flag byte 0, a 4-byte big-endian length, then the
 * message (field 1, `service`, length-delimited; lengths are varints, so long names encode right).
 */
export function grpcHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg =
    name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

/** grpc.health.v1.Health/Check over h2c: request field 1 = service, response field 1 = status (1 = SERVING). */
function grpcProbe(host: string, port: number, service: string, ms: number): Promise<ProbeResult> {
  const frame = grpcHealthRequest(service);
  return new Promise((resolve) => {
    const done = (r: ProbeResult): void => {
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const session = http2().connect(`http://${net.isIPv6(host) ? `[${host}]` : host}:${port}`, {
      localAddress: sourceFor(host),
    } as Http2.SecureClientSessionOptions);
    const timer = setTimeout(
      () => done({ ok: false, status: 503, detail: `gRPC health: no answer within ${ms} ms` }),
      ms,
    );
    session.on('error', (err) =>
      done({ ok: false, status: 503, detail: `gRPC health ${host}:${port}: ${err.message}` }),
    );
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => done({ ok: false, status: 503, detail: `gRPC health: ${err.message}` }));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      // 5-byte gRPC frame header, then the HealthCheckResponse: 0x08 <status varint>
      const status = body.length >= 7 && body[5] === 0x08 ? body[6]! : 0;
      done(
        status === 1
          ? { ok: true, status: 200, detail: 'gRPC health: SERVING' }
          : { ok: false, status: 503, detail: `gRPC health: status ${status} (not SERVING)` },
      );
    });
    stream.end(frame);
  });
}
