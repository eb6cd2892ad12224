/**
 * Gateway TLS cost (ADR 0014): one in-process gateway proxy with a plaintext listener and a TLS
 * listener (SIMPLE, RSA 2048) in front of the same upstream, driven in the same run by the same
 * client: keep-alive requests per second (TLS / plaintext ratio) and new connections per second
 * (a full handshake each; TLS / plaintext ratio). Ratios, not absolute numbers: the client shares
 * the machine.
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

const DURATION_S = Number(process.env.DURATION_S ?? 4);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const HOST = 'bench.example.test';

async function main(): Promise<void> {
  const ca = createCA('bench-ca', 1);
  const leaf = issueCert(ca, { commonName: HOST, hosts: [HOST], usage: 'server', validDays: 1 });
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
        port: 0,
        edge: true,
        virtualHosts: vhosts,
        tls: { servers: [{ name: 'bench', sniHosts: [HOST], mode: 'SIMPLE', credentialName: 'c' }] },
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
  });
  await proxy.apply(cfg);
  const ports = proxy.ports();

  /** Requests per second for DURATION_S with CONCURRENCY clients looping. */
  const run = async (secure: boolean, keepAlive: boolean): Promise<number> => {
    const agent = secure
      ? new https.Agent({ keepAlive, maxSockets: CONCURRENCY, ca: ca.certPem, servername: HOST })
      : new http.Agent({ keepAlive, maxSockets: CONCURRENCY });
    const mod = secure ? https : http;
    const port = secure ? ports.tls! : ports.plain!;
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

  const rows: [string, number, number][] = [];
  for (const keepAlive of [true, false]) {
    const plain = await run(false, keepAlive);
    const tls = await run(true, keepAlive);
    rows.push([keepAlive ? 'keep-alive req/s' : 'new connection per request, req/s', plain, tls]);
  }
  console.log(`gateway TLS bench: ${DURATION_S} s per phase, ${CONCURRENCY} clients, RSA 2048, TLS 1.3`);
  for (const [what, plain, tls] of rows)
    console.log(
      `${what.padEnd(36)} plaintext ${plain.toFixed(0).padStart(6)}   TLS ${tls.toFixed(0).padStart(6)}   TLS/plaintext ${(tls / plain).toFixed(2)}`,
    );
  await proxy.shutdown();
  app.close();
}

await main();
