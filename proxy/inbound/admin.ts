/**
 * The sidecar's inbound admin routes (127.0.0.1:15000):
 *   GET  /inbound           the modes in force per port, the workload identity, refusals by
 *                           reason and the latest ones (source, port, deciding policy)
 *   POST /inbound/explain   {port, from?, peer?}: what the listener would do with that
 *                           connection now (proxy/inbound/explain.ts on the live config)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJson, send } from '../admin.js';
import type { ProxyServer } from '../server.js';
import type { IdentitySource } from '../identity/types.js';
import { explainInbound, type InboundQuery } from './explain.js';
import type { InboundListener } from './listener.js';

function query(body: unknown): InboundQuery | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body must be a JSON object';
  const b = body as Record<string, unknown>;
  const port = b.port;
  if (
    port !== undefined &&
    port !== null &&
    (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
  )
    return 'port must be 1-65535';
  if (b.from !== undefined && typeof b.from !== 'string') return 'from must be a string';
  if (b.peer !== undefined && typeof b.peer !== 'string') return 'peer must be a SPIFFE ID string';
  return {
    port: (port as number | undefined) ?? null,
    ...(typeof b.from === 'string' ? { from: b.from } : {}),
    ...(typeof b.peer === 'string' ? { peer: b.peer } : {}),
  };
}

export function inboundAdminRoutes(
  proxy: () => ProxyServer,
  listener: () => InboundListener | null,
  identity: IdentitySource | null,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const l = listener();
    if (l === null) return false;
    if (req.method === 'GET' && path === '/inbound') {
      send(res, 200, l.describe());
      return true;
    }
    if (req.method === 'POST' && path === '/inbound/explain') {
      readJson(req).then(
        (body) => {
          const q = query(body);
          if (typeof q === 'string') return send(res, 400, { error: `inbound explain: ${q}` });
          const cfg = proxy().current?.source;
          if (cfg === undefined) return send(res, 503, { error: 'no config applied yet' });
          send(res, 200, explainInbound(cfg, { ...q, hasIdentity: identity?.secureContext() != null }));
        },
        (err: unknown) => send(res, 400, { error: `inbound explain: ${(err as Error).message}` }),
      );
      return true;
    }
    return false;
  };
}
