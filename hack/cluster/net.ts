/** Loopback ports and health probes for the local cluster. Nothing here leaves 127.0.0.1. */
import { createServer, type Server } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

/** Binds `preferred` on 127.0.0.1 if it is free, else any free port; returns the port. */
export async function freePort(preferred = 0): Promise<number> {
  const tryListen = (port: number): Promise<number | undefined> =>
    new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(undefined));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
        const addr = srv.address();
        const got = typeof addr === 'object' && addr !== null ? addr.port : undefined;
        srv.close(() => resolve(got));
      });
    });
  if (preferred > 0) {
    const got = await tryListen(preferred);
    if (got !== undefined) return got;
  }
  const any = await tryListen(0);
  if (any === undefined) throw new Error('no free port on 127.0.0.1');
  return any;
}

/**
 * `n` distinct free ports on 127.0.0.1. All are held at once while they are chosen: `n` calls of
 * freePort() can be handed the same port twice (each closes before the next binds), and two
 * daemons told the same port fail at start (Argo CD's repo-server: "bind: address already in
 * use", seen in CI).
 */
export async function freePorts(n: number): Promise<number[]> {
  const held = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(srv));
        }),
    ),
  );
  const ports = held.map((srv) => {
    const addr = srv.address();
    return typeof addr === 'object' && addr !== null ? addr.port : 0;
  });
  await Promise.all(held.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  return ports;
}

export async function portInUse(port: number): Promise<boolean> {
  return (await freePort(port)) !== port;
}

export interface ProbeTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ProbeResult {
  status: number;
  body: string;
}

/** One GET with a short timeout; rejects on connection errors, resolves with any HTTP status. */
export function httpGet(url: string, tls?: ProbeTls, timeoutMs = 2000): Promise<ProbeResult> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ...tls, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before every attempt; a message here aborts the wait at once (e.g. process exited). */
  abort?: () => string | undefined;
}

export type Check = () => Promise<{ ok: boolean; detail: string }>;

/**
 * Polls `check` until it reports ok. Resolves with the elapsed ms, or rejects with the last
 * detail (or the abort reason) so the caller can say what was still wrong.
 */
export async function waitUntil(check: Check, opts: WaitOptions): Promise<number> {
  const start = Date.now();
  let last = 'not checked yet';
  while (Date.now() - start < opts.timeoutMs) {
    const aborted = opts.abort?.();
    if (aborted !== undefined) throw new Error(aborted);
    try {
      const r = await check();
      if (r.ok) return Date.now() - start;
      last = r.detail;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(opts.intervalMs ?? 200);
  }
  throw new Error(`not healthy after ${Math.round(opts.timeoutMs / 1000)} s: ${last}`);
}
