/**
 * Gateway TLS cost (ADR 0014): one in-process gateway proxy with a plaintext listener, a TLS
 * listener (SIMPLE, RSA 2048) and an ISTIO_MUTUAL listener (the gateway's ECDSA P-256 workload
 * certificate, a mesh client certificate verified per handshake) in front of the same upstream,
 * driven in the same run by the same client: keep-alive requests per second and new connections
 * per second (a full handshake each), as ratios to plaintext. Ratios, not absolute numbers: the
 * client shares the machine.
 *
 *   npx tsx bench/proxy/gateway-tls.ts          # DURATION_S (4) per phase, CONCURRENCY (32)
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCA, issueCert } from '../../hack/cluster/pki.js';
import { createLogger } from '../../pkg/log/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { ProxyServer } from '../../proxy/server.js';
import { freePort } from '../../test/support/ports.js';
import { meshRoot, TestIdentity, workloadCert } from '../../test/integration/proxy/mesh-identity.js';

const DURATION_S = Number(process.env.DURATION_S ?? 4);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const HOST = 'bench.example.test';

async function main(): Promise<void> {
  const ca = createCA('bench-ca', 1);
  const leaf = issueCert(ca, { commonName: HOST, hosts: [HOST], usage: 'server', validDays: 1 });
  const mesh = meshRoot();
  const identity = Object.assign(new TestIdentity('spiffe://cluster.local/ns/istio-system/sa/gw', mesh), {
    summary: () => ({}) as never,
  });
  const client = workloadCert(mesh, 'spiffe://cluster.local/ns/shop/sa/web');
  const app = http.createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;
  const vhosts = [
    {
      name: HOST,
      domains: [HOST],
      routes: [{ action: { type: 'route' as const, destinations: [{ cluster: 'app', weight: 100 }] } }],
    },
  ];
  const cfg: ProxyConfig = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'bench',
    listeners: [
      { name: 'plain', protocol: 'HTTP', address: '127.0.0.1', port: 0, edge: true, virtualHosts: vhosts },
      {
        name: 'tls',
        protocol: 'HTTP',
        address: '127.0.0.1',
        // two TLS listeners on port 0 would share one reconcile key (protocol|address|port|tls)
        port: await freePort(),
        edge: true,
        virtualHosts: vhosts,
        tls: { servers: [{ name: 'bench', sniHosts: [HOST], mode: 'SIMPLE', credentialName: 'c' }] },
      },
      {
        name: 'mesh',
        protocol: 'HTTP',
        address: '127.0.0.1',
        port: await freePort(),
        edge: true,
        virtualHosts: vhosts,
        tls: { servers: [{ name: 'bench-mesh', sniHosts: [HOST], mode: 'ISTIO_MUTUAL' }] },
      },
    ],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
    credentials: { c: { source: 'bench', certChain: leaf.certPem, privateKey: leaf.keyPem } },
  };
  const proxy = new ProxyServer({
    adminPort: null,
    metricsPort: null,
    healthPort: null,
    logger: createLogger('bench', { silent: true }),
    onExit: () => undefined,
    identity,
  });
  await proxy.apply(cfg);
  const ports = proxy.ports();

  /** Requests per second for DURATION_S with CONCURRENCY clients looping. */
  const run = async (kind: 'plain' | 'tls' | 'mesh', keepAlive: boolean): Promise<number> => {
    const secure = kind !== 'plain';
    const agent =
      kind === 'tls'
        ? new https.Agent({ keepAlive, maxSockets: CONCURRENCY, ca: ca.certPem, servername: HOST })
        : kind === 'mesh'
          ? new https.Agent({
              keepAlive,
              maxSockets: CONCURRENCY,
              ca: mesh.certPem,
              cert: client.certPem,
              key: client.keyPem,
              servername: HOST,
              checkServerIdentity: () => undefined, // a SPIFFE ID, no host name
            })
          : new http.Agent({ keepAlive, maxSockets: CONCURRENCY });
    const mod = secure ? https : http;
    const port = ports[kind]!;
    const end = Date.now() + DURATION_S * 1000;
    let done = 0;
    let failed = 0;
    const loop = async (): Promise<void> => {
      while (Date.now() < end) {
        await new Promise<void>((resolve) => {
          const req = mod.request({ host: '127.0.0.1', port, headers: { host: HOST }, agent }, (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) done++;
              else failed++;
              resolve();
            });
          });
          req.on('error', () => {
            failed++;
            resolve();
          });
          req.end();
        });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    agent.destroy();
    if (failed > 0) console.log(`  (${failed} failed)`);
    return done / DURATION_S;
  };

  const rows: [string, number, number, number][] = [];
  for (const keepAlive of [true, false]) {
    const plain = await run('plain', keepAlive);
    const tls = await run('tls', keepAlive);
    const meshed = await run('mesh', keepAlive);
    rows.push([keepAlive ? 'keep-alive req/s' : 'new connection per request, req/s', plain, tls, meshed]);
  }
  console.log(
    `gateway TLS bench: ${DURATION_S} s per phase, ${CONCURRENCY} clients, TLS 1.3; SIMPLE RSA 2048, ISTIO_MUTUAL ECDSA P-256 both sides`,
  );
  for (const [what, plain, tls, meshed] of rows)
    console.log(
      `${what.padEnd(36)} plaintext ${plain.toFixed(0).padStart(6)}   SIMPLE ${tls.toFixed(0).padStart(6)} (${(tls / plain).toFixed(2)})   ISTIO_MUTUAL ${meshed.toFixed(0).padStart(6)} (${(meshed / plain).toFixed(2)})`,
    );
  await proxy.shutdown();
  app.close();
}

await main();
