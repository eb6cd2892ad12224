/**
 * Where the bytes of an on-demand sidecar's config go (issue #19): the config weftd's real
 * ConfigGenerator gives the ns0 sidecar of bench/weftd/ondemand.ts's mesh after it subscribed to
 * CALLS services of other namespaces, broken down by section (JSON bytes). Set DUMP=file to
 * write the config itself.
 *   npx tsx bench/weftd/config-size.ts        SERVICES=1000 CALLS=5 NS_SERVICES=50
 */
import { writeFileSync } from 'node:fs';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import { createLogger } from '../../pkg/log/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { meshSnapshot, NAMESPACES } from './ondemand-mesh.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const CALLS = Number(process.env.CALLS ?? 5);
const log = createLogger('bench', { silent: true });

const bytes = (v: unknown): number => (v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v)));

function breakdown(cfg: ProxyConfig): Record<string, number> {
  const out: Record<string, number> = { total: bytes(cfg) };
  for (const [k, v] of Object.entries(cfg)) out[`top.${k}`] = bytes(v);
  let vhosts = 0;
  let routes = 0;
  let vhostCount = 0;
  let routeCount = 0;
  for (const l of cfg.listeners)
    if (l.protocol === 'HTTP')
      for (const vh of l.virtualHosts) {
        vhostCount++;
        vhosts += bytes({ ...vh, routes: [] });
        for (const r of vh.routes) {
          routeCount++;
          routes += bytes(r);
          for (const [k, v] of Object.entries(r)) out[`route.${k}`] = (out[`route.${k}`] ?? 0) + bytes(v);
        }
      }
  out.listenerCount = cfg.listeners.length;
  out.virtualHostCount = vhostCount;
  out['virtualHosts(without routes)'] = vhosts;
  out.routeCount = routeCount;
  out.routes = routes;
  out.clusterCount = cfg.clusters.length;
  for (const c of cfg.clusters)
    for (const [k, v] of Object.entries(c)) out[`cluster.${k}`] = (out[`cluster.${k}`] ?? 0) + bytes(v);
  return out;
}

const registry = new SnapshotRegistry(() => meshSnapshot(SERVICES, null));
const gen = new ConfigGenerator({
  domainSuffix: 'cluster.local',
  mesh: { ...structuredClone(DEFAULT_MESH), mtlsMode: 'DISABLE', onDemandHosts: true },
  log,
});
const pod = { namespace: 'ns0', name: 'web-0', labels: { app: 'web' } };
const subscribed = Array.from(
  { length: CALLS },
  (_, k) => `svc${k + 1}.ns${(k + 1) % NAMESPACES}.svc.cluster.local`,
).flatMap((name) => gen.resolveOnDemand(registry.snapshot(), pod, name));
const generated = gen.forProxy(registry.snapshot(), 'sidecar', pod, subscribed);
const encoded = generated.encode();
const cfg = generated.config;
if (process.env.DUMP) writeFileSync(process.env.DUMP, JSON.stringify(cfg, null, 2));
console.log(
  JSON.stringify(
    { services: SERVICES, calls: CALLS, encoded: Buffer.byteLength(encoded), ...breakdown(cfg) },
    null,
    2,
  ),
);
