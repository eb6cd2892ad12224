/**
 * Small read-only probes the node's health checks use: the API server with the admin client
 * certificate, plain HTTP(S) GETs on loopback, and DNS queries to CoreDNS on the node IP. All
 * bounded by short timeouts, so a health poll never hangs `up` or `status`.
 */
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { ClusterContext } from '../cluster/types.js';

export interface GetResult {
  status: number;
  body: string;
}

export function get(url: string, opts: https.RequestOptions = {}, timeoutMs = 2000): Promise<GetResult> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ...opts, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 256 * 1024) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** GET on kube-apiserver as the cluster admin; resolves with the parsed JSON (or throws). */
export async function apiGet(ctx: ClusterContext, path: string): Promise<unknown> {
  const admin = ctx.pki.ensureCert('admin-client', {
    commonName: 'weft-admin',
    organizations: ['system:masters'],
    usage: 'client',
  });
  const r = await get(`${ctx.apiserverUrl}${path}`, {
    ca: readFileSync(ctx.pki.ca.cert),
    cert: readFileSync(admin.cert),
    key: readFileSync(admin.key),
  });
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}`);
  return JSON.parse(r.body) as unknown;
}

interface NodeLike {
  status?: { conditions?: { type?: string; status?: string; reason?: string; message?: string }[] };
}

/** `Ready` condition of a Node object, as `{ok, detail}`. */
export function nodeReady(node: unknown): { ok: boolean; detail: string } {
  const ready = (node as NodeLike).status?.conditions?.find((c) => c.type === 'Ready');
  if (ready === undefined) return { ok: false, detail: 'node has no Ready condition yet' };
  return {
    ok: ready.status === 'True',
    detail: `Ready=${ready.status ?? '?'} ${ready.reason ?? ''} ${ready.message ?? ''}`.trim(),
  };
}

/** A/IPv4 lookup against one DNS server, one try, one second. */
export async function lookup4(server: string, name: string): Promise<string[]> {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([server]);
  return r.resolve4(name);
}
