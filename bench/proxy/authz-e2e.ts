/**
 * Proxy CPU per request with AuthorizationPolicy on (the 20 mixed policies of authz.ts) against
 * none, in one run: an in-process proxy on loopback, a keep-alive client and a Node upstream in
 * this same process, so the figure is whole-process CPU (client + proxy + upstream) per request;
 * the difference between the two configs is the policy cost. Interleaved rounds, medians.
 * Run: npx tsx bench/proxy/authz-e2e.ts   (ROUNDS=5 REQUESTS=4000 by default)
 */
import http from 'node:http';
import type net from 'node:net';
import type { AuthorizationPolicy } from '../../pkg/api/authorizationpolicy.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { translateAuthz } from '../../pkg/translate/authz.js';
import { createLogger } from '../../pkg/log/index.js';
import { ProxyServer } from '../../proxy/server.js';
import { configFromText } from '../../proxy/config/load.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const REQUESTS = Number(process.env.REQUESTS ?? 4000);

const upstream = http.createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const upPort = (upstream.address() as net.AddressInfo).port;
const base = configFromText(
  `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: foo}
spec:
  hosts: [app.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${upPort}}}]
`,
  'bench.yaml',
).config;

const policies: AuthorizationPolicy[] = [];
for (let i = 0; i < 20; i++)
  policies.push({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `p${i}`, namespace: 'foo' },
    spec: {
      action: i % 4 === 0 ? 'DENY' : 'ALLOW',
      rules: [
        {
          from: [{ source: { ipBlocks: [`10.${i}.0.0/16`], notNamespaces: ['evil'] } }],
          to: [
            {
              operation: {
                paths: [`/api/v${i}/*`, `/items/{*}/p${i}`],
                methods: ['GET', 'POST'],
                hosts: ['*.example.com'],
              },
            },
          ],
          when: [{ key: 'request.headers[x-tenant]', values: [`t${i}`] }],
        },
        { to: [{ operation: { paths: [`/items/{*}/p${i}`], ports: [`${9000 + i}`] } }] },
        {
          from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }],
          to: [{ operation: { paths: ['/items/*'] } }],
          when: [{ key: 'request.headers[x-tenant]', values: [`t${i}`] }],
        },
      ],
    },
  } as AuthorizationPolicy);
const { block } = translateAuthz({ policies, pod: { namespace: 'foo', labels: {} } });

async function round(cfg: ProxyConfig): Promise<number> {
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    adminPort: 0,
    metricsPort: 0,
    healthPort: 0,
    logger: createLogger('bench', { silent: true }),
    drainMs: 100,
    onExit: () => undefined,
  });
  await proxy.apply(cfg);
  const port = Object.values(proxy.ports())[0]!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const get = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const r = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/items/42/p19',
          agent,
          headers: { host: 'app.example.com', 'x-tenant': 't19' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', reject);
      r.end();
    });
  for (let i = 0; i < 500; i++) if ((await get()) !== 200) throw new Error('expected 200 (policy allows)');
  const c0 = process.cpuUsage();
  const inflight: Promise<number>[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    inflight.push(get());
    if (inflight.length === 8) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  const c = process.cpuUsage(c0);
  agent.destroy();
  await proxy.shutdown();
  return (c.user + c.system) / REQUESTS;
}

const none: number[] = [];
const withPolicies: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  none.push(await round(base));
  withPolicies.push(await round({ ...base, authz: block! }));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const a = median(none);
const b = median(withPolicies);
console.log(
  `CPU per request (client+proxy+upstream, µs, median of ${ROUNDS}×${REQUESTS}): none ${a.toFixed(1)}, 20 policies ${b.toFixed(1)} (+${(((b - a) / a) * 100).toFixed(1)} %)`,
);
upstream.close();
process.exit(0);
