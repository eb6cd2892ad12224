/**
 * L4 routes cost (ADR 0018): one in-process proxy, in the same run, with
 *   - `plain`: a TCP listener piping to one cluster (the baseline),
 *   - `routed`: the same upstream behind 20 tcp routes that do not match (destination subnets)
 *     and a weighted one that does,
 *   - `sni`: a TLS PASSTHROUGH listener (tls routes by SNI) in front of a TLS echo, against the
 *     same TLS echo dialled directly.
 * Reports new connections per second (connect, one exchange, close) and the ratios routed/plain
 * and passthrough/direct. Ratios, not absolute numbers: the client shares the machine.
 *
 *   npx tsx bench/proxy/tcp-routes.ts          # DURATION_S (3) per phase, CONCURRENCY (16)
 */
import net from 'node:net';
import tls from 'node:tls';
import { createCA, issueCert } from '../../hack/cluster/pki.js';
import { createLogger } from '../../pkg/log/index.js';
import type { L4Route } from '../../pkg/proxyconfig/l4.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { ProxyServer } from '../../proxy/server.js';

const DURATION_S = Number(process.env.DURATION_S ?? 3);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const HOST = 'bench.example.test';

/** A free loopback port (listeners on port 0 share one key in the proxy: give each its own). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

/** One connection: connect, write, read the echo, close. */
function once(port: number, servername: string | null, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s =
      servername === null
        ? net.connect(port, '127.0.0.1')
        : tls.connect({ host: '127.0.0.1', port, servername, ca });
    s.once(servername === null ? 'connect' : 'secureConnect', () => s.write('x'));
    s.once('data', () => s.destroy());
    s.once('close', () => resolve());
    s.once('error', reject);
  });
}

async function rate(port: number, servername: string | null, ca: string): Promise<number> {
  const end = Date.now() + DURATION_S * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await once(port, servername, ca);
        done++;
      }
    }),
  );
  return done / DURATION_S;
}

async function main(): Promise<void> {
  const ca = createCA('bench-ca', 1);
  const leaf = issueCert(ca, { commonName: HOST, hosts: [HOST], usage: 'server', validDays: 1 });
  const echo = net.createServer((c) =>
    c.on('data', (d: Buffer) => c.write(d)).on('error', () => c.destroy()),
  );
  const tlsEcho = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (c) =>
    c.on('data', (d: Buffer) => c.write(d)).on('error', () => c.destroy()),
  );
  const echoPort = await listen(echo);
  const tlsPort = await listen(tlsEcho);
  const misses: L4Route[] = Array.from({ length: 20 }, (_, i) => ({
    match: [{ destinationSubnets: [`10.${i}.0.0/16`] }],
    destinations: [{ cluster: 'echo', weight: 100 }],
  }));
  const cfg: ProxyConfig = {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'bench',
    listeners: [
      { name: 'plain', protocol: 'TCP', address: '127.0.0.1', port: await freePort(), cluster: 'echo' },
      {
        name: 'routed',
        protocol: 'TCP',
        address: '127.0.0.1',
        port: await freePort(),
        tcpRoutes: [
          ...misses,
          {
            destinations: [
              { cluster: 'echo', weight: 80 },
              { cluster: 'echo2', weight: 20 },
            ],
          },
        ],
      },
      {
        name: 'sni',
        protocol: 'TCP',
        address: '127.0.0.1',
        port: await freePort(),
        tcpRoutes: [],
        tlsRoutes: [{ match: [{ sniHosts: [HOST] }], destinations: [{ cluster: 'tls', weight: 100 }] }],
      },
    ],
    clusters: [
      { name: 'echo', endpoints: [{ address: '127.0.0.1', port: echoPort }] },
      { name: 'echo2', endpoints: [{ address: '127.0.0.1', port: echoPort }] },
      { name: 'tls', endpoints: [{ address: '127.0.0.1', port: tlsPort }] },
    ],
  };
  const proxy = new ProxyServer({
    adminPort: null,
    metricsPort: null,
    healthPort: null,
    logger: createLogger('bench', { silent: true }),
    onExit: () => undefined,
  });
  await proxy.apply(cfg);
  const p = proxy.ports();
  const plain = await rate(p.plain!, null, '');
  const routed = await rate(p.routed!, null, '');
  const direct = await rate(tlsPort, HOST, ca.certPem);
  const sni = await rate(p.sni!, HOST, ca.certPem);
  const report = {
    durationS: DURATION_S,
    concurrency: CONCURRENCY,
    connsPerSecond: {
      plain: Math.round(plain),
      routed: Math.round(routed),
      tlsDirect: Math.round(direct),
      tlsPassthrough: Math.round(sni),
    },
    ratios: {
      routedOverPlain: +(routed / plain).toFixed(2),
      passthroughOverDirect: +(sni / direct).toFixed(2),
    },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await proxy.shutdown();
  echo.close();
  tlsEcho.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
