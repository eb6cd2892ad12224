/**
 * weftd's real DiscoveryService and ConfigGenerator on a real HTTPS server on loopback, over a
 * registry the caller builds, with no cluster: the on-demand suite and the on-demand bench run a
 * proxy against it. Its mesh root and a token are written to a temp dir for the proxy; every
 * stream is authenticated as `identity`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DiscoveryService } from '../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import { createWeftdMetrics, type WeftdMetrics } from '../../controlplane/metrics.js';
import { createDiscoveryServer } from '../../controlplane/weftd.js';
import type { KubeRegistry } from '../../controlplane/registry.js';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import type { Logger } from '../../pkg/log/index.js';
import type { WeftdEndpoint } from './proxy-process.js';

export interface DiscoveryServer extends WeftdEndpoint {
  discovery: DiscoveryService;
  metrics: WeftdMetrics;
  /** The HTTPS server. */
  server: Server;
  /**
   * Cuts every connection, upgraded discovery streams included (ADR 0026: the HTTP server lets go
   * of an upgraded socket, so its closeAllConnections() does not reach one).
   */
  cutConnections(): void;
  close(): Promise<void>;
}

export async function startDiscoveryServer(opts: {
  registry: KubeRegistry;
  /** The mesh's `onDemandHosts` (ADR 0023); mTLS is off. */
  onDemandHosts: boolean;
  /** Who every stream is; a projected token names its pod, and on-demand asks need one. */
  identity: { namespace: string; serviceAccount: string; podName: string };
  log: Logger;
}): Promise<DiscoveryServer> {
  const now = new Date();
  const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-discovery-'));
  const rootPath = path.join(dir, 'ca.crt');
  const tokenPath = path.join(dir, 'tok');
  writeFileSync(rootPath, ca.certPem);
  writeFileSync(tokenPath, 'tok');
  const metrics = createWeftdMetrics(false);
  const discovery = new DiscoveryService({
    registry: opts.registry,
    generator: new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: { ...structuredClone(DEFAULT_MESH), mtlsMode: 'DISABLE', onDemandHosts: opts.onDemandHosts },
      log: opts.log,
    }),
    authenticate: () => Promise.resolve({ identity: opts.identity, cached: true }),
    metrics,
    log: opts.log,
    debounce: { afterMs: 0, maxMs: 0 },
    pingIntervalMs: 60_000,
  });
  // the server weftd runs (its upgrade listener and timeouts)
  const server = createDiscoveryServer(
    { cert: Buffer.from(leaf.certPem), key: Buffer.from(leaf.keyPem) },
    discovery,
  );
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    discovery,
    metrics,
    server,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    rootPath,
    tokenPath,
    cutConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      discovery.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
