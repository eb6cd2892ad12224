/**
 * The proxy's CPU per request with AuthorizationPolicy and RequestAuthentication on, against none,
 * in one run (issue 14: target ≤ +15 % at 1,000 req/s). The proxy runs in this process; the client
 * (loadgen.mjs: open loop, paced at RATE over CONNECTIONS keep-alive connections) and the upstream
 * (upstream.mjs, 1 KiB) are other processes, so this process's CPU is the proxy's alone.
 *
 * Configs, built through the real translators (translateAuthz, requestAuthnFor), measured in
 * interleaved rounds (medians reported):
 *   a. none: no policy, no JWT
 *   b. 20 AuthorizationPolicies of mixed rules (paths and templates, methods, hosts, ports, CIDRs,
 *      headers, requestPrincipals / notRequestPrincipals, request.auth.claims incl. nested)
 *   c. b + a RequestAuthentication (RS256 issuer, inline JWKS, audience checked): every request
 *      carries a valid token, one of TOKENS users (the steady state: tokens in the per-provider
 *      verified cache, Envoy's jwt_cache)
 *   d. c with a token never seen before on every request (worst case: a signature check each)
 * Every request sends the same headers in all four (the token is only read in c and d), is
 * answered 200, and is allowed by the same policy (p19) in b, c and d; the run checks all of it.
 *
 *   npx tsx bench/proxy/authz-e2e.ts     (knobs: ROUNDS=5 SECONDS=4 RATE=1000 CONNECTIONS=8 TOKENS=20 ONLY=)
 *   profile: ONLY=c npx tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/proxy/authz-e2e.ts
 */
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuthorizationPolicy } from '../../pkg/api/authorizationpolicy.js';
import type { RequestAuthentication } from '../../pkg/api/requestauthentication.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { translateAuthz } from '../../pkg/translate/authz.js';
import { requestAuthnFor } from '../../pkg/translate/requestauthn.js';
import { createLogger } from '../../pkg/log/index.js';
import { ProxyServer } from '../../proxy/server.js';
import { configFromText } from '../../proxy/config/load.js';
import { jwks, makeKey, signJwt } from '../../test/support/jwt.js';
import { fixedRate, killChildren, median, startUpstream } from './harness.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SECONDS = Number(process.env.SECONDS ?? 4);
const RATE = Number(process.env.RATE ?? 1000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const TOKENS = Number(process.env.TOKENS ?? 20);
const WARMUP = 500;
const ISSUER = 'https://issuer.bench.weft';
const PATH = '/items/42/p19';
const HOST = 'app.example.com';

const upstream = await startUpstream();
const base = configFromText(
  `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: foo}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstream.port}}}]
`,
  'bench.yaml',
).config;

// 20 policies, 5 DENY (p0, p4, …) and 15 ALLOW, 4 rules each. The request (127.0.0.1, GET
// /items/42/p19, x-tenant t19, a token of groups [g19, bench]) misses every DENY rule and every
// ALLOW rule until p19's third; the JWT rules run their principal and claim checks in c and d.
const policies: AuthorizationPolicy[] = [];
for (let i = 0; i < 20; i++) {
  const deny = i % 4 === 0;
  policies.push({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `p${i}`, namespace: 'foo' },
    spec: {
      action: deny ? 'DENY' : 'ALLOW',
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
        deny
          ? {
              // no token on the admin API, or a banned user anywhere
              from: [{ source: { notRequestPrincipals: ['*'] } }],
              to: [{ operation: { paths: ['/admin/*'] } }],
              when: [{ key: 'request.auth.claims[realm][role]', values: ['banned'] }],
            }
          : {
              from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }],
              to: [{ operation: { methods: ['GET'], paths: ['/items/*'] } }],
              when: [
                { key: 'request.auth.claims[groups]', values: [`g${i}-admin`] },
                { key: 'request.auth.audiences', values: ['bench'] },
              ],
            },
      ],
    },
  } as AuthorizationPolicy);
}
const authz = translateAuthz({ policies, pod: { namespace: 'foo', labels: {} } });
if (authz.block === undefined || authz.warnings.length > 0)
  throw new Error(`authz translation: ${authz.warnings.join('; ')}`);

const key = makeKey('rsa', 'bench-1');
const ra: RequestAuthentication = {
  apiVersion: 'security.istio.io/v1',
  kind: 'RequestAuthentication',
  metadata: { name: 'jwt', namespace: 'foo' },
  spec: { jwtRules: [{ issuer: ISSUER, audiences: ['bench'], jwks: jwks(key) }] },
};
const authn = requestAuthnFor({
  policies: [ra],
  workload: { namespace: 'foo', labels: {} },
  rootNamespace: 'weft-system',
  jwks: {
    keys: () => {
      throw new Error('inline jwks only');
    },
  },
});
// no `listeners` on either block: on this gateway-style config both guard every listener
if (authn.jwt === undefined || authn.warnings.length > 0)
  throw new Error(`RequestAuthentication translation: ${authn.warnings.join('; ')}`);

const exp = Math.floor(Date.now() / 1000) + 3600;
const token = (sub: string): string =>
  signJwt(
    'RS256',
    key.privateKey,
    { iss: ISSUER, sub, aud: 'bench', exp, groups: ['g19', 'bench'], realm: { role: 'reader' } },
    { kid: key.kid },
  );
const headersOf = (t: string): Record<string, string> => ({
  'x-tenant': 't19',
  authorization: `Bearer ${t}`,
});
const work = mkdtempSync(path.join(os.tmpdir(), 'weft-authz-bench-'));
interface Pool {
  headers: Record<string, string>[];
  file: string;
}
const pool = (n: number, prefix: string): Pool => {
  const headers = Array.from({ length: n }, (_, k) => headersOf(token(`${prefix}-${k}`)));
  const file = path.join(work, `${prefix}.json`);
  writeFileSync(file, JSON.stringify(headers));
  return { headers, file };
};
const users = pool(TOKENS, 'user');
// more than a round sends plus the warm-up's own (the last WARMUP, which loadgen never reaches):
// the verified cache (100 per provider) never holds the next token
const fresh = pool(Math.ceil(RATE * SECONDS * 1.1) + WARMUP, 'fresh');

interface Variant {
  name: string;
  cfg: ProxyConfig;
  pool: Pool;
  jwt: boolean;
  authz: boolean;
}
const withAuthz: ProxyConfig = { ...base, authz: authz.block };
const withJwt: ProxyConfig = { ...withAuthz, jwt: authn.jwt };
const all: Variant[] = [
  { name: 'a. none', cfg: base, pool: users, jwt: false, authz: false },
  { name: 'b. 20 policies', cfg: withAuthz, pool: users, jwt: false, authz: true },
  { name: `c. 20 policies + JWT (${TOKENS} users)`, cfg: withJwt, pool: users, jwt: true, authz: true },
  { name: 'd. 20 policies + JWT (a new token each)', cfg: withJwt, pool: fresh, jwt: true, authz: true },
];
// ONLY=c (or b,c…): those configs alone, e.g. under --cpu-prof
const only = process.env.ONLY?.split(',');
const variants = all.filter((v) => only === undefined || only.includes(v.name[0]!));

const sum = (m: Map<string, number> | undefined, match: string): number =>
  [...(m ?? new Map<string, number>())].reduce((n, [k, v]) => (k.includes(match) ? n + v : n), 0);

async function round(v: Variant): Promise<number> {
  const proxy = new ProxyServer({
    listen: { host: '127.0.0.1', port: 0 },
    adminPort: 0,
    metricsPort: 0,
    healthPort: 0,
    logger: createLogger('bench', { silent: true }),
    drainMs: 100,
    onExit: () => undefined,
  });
  await proxy.apply(v.cfg);
  const port = Object.values(proxy.ports())[0]!;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const { headers } = v.pool;
  const get = (i: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const h = headers[headers.length - 1 - (i % headers.length)];
      const r = http.request(
        { host: '127.0.0.1', port, path: PATH, agent, headers: { host: HOST, ...h } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', reject);
      r.end();
    });
  for (let i = 0; i < WARMUP; i++) if ((await get(i)) !== 200) throw new Error(`${v.name}: warm-up not 200`);
  agent.destroy();
  // the window: from the first request sent to the client's exit (not the child's start-up)
  let c0: NodeJS.CpuUsage | undefined;
  const r = await fixedRate(`http://127.0.0.1:${port}${PATH}`, HOST, SECONDS, RATE, {
    connections: CONNECTIONS,
    headersFile: v.pool.file,
    onSending: () => (c0 = process.cpuUsage()),
  });
  if (c0 === undefined) throw new Error(`${v.name}: the client never said it was sending`);
  const c = process.cpuUsage(c0);
  const sent = Math.floor(RATE * SECONDS);
  if (r.errors > 0 || r.completed !== sent)
    throw new Error(`${v.name}: ${r.completed}/${sent} answered, ${r.errors} errors or non-2xx`);
  // the work measured is the work meant: tokens verified, decisions taken by p19
  const m = proxy.metrics.labelledCounters;
  const verified = sum(m.get('weft_proxy_jwt_authn_total'), 'result="success"');
  const byP19 = sum(m.get('weft_proxy_authz_allowed_total'), 'policy="foo/p19"');
  const total = WARMUP + sent;
  if (verified !== (v.jwt ? total : 0) || byP19 !== (v.authz ? total : 0))
    throw new Error(`${v.name}: ${verified} tokens verified, ${byP19} allowed by foo/p19 of ${total}`);
  await proxy.shutdown();
  return (c.user + c.system) / r.completed;
}

const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
try {
  for (let i = 0; i < ROUNDS; i++)
    for (const v of variants) {
      cpu.get(v)!.push(await round(v));
      process.stderr.write(`round ${i + 1} ${v.name}: ${cpu.get(v)!.at(-1)!.toFixed(1)} µs\n`);
    }
} finally {
  killChildren();
  rmSync(work, { recursive: true, force: true });
}
// "vs a": against the first config run; the ratio of the medians, and the median of each round's
// own ratio (rounds are back to back, so this one is steadier on a shared machine)
const first = cpu.get(variants[0]!)!;
const a = median(first);
const rows = variants.map((v) => {
  const xs = cpu.get(v)!;
  const m = median(xs);
  return {
    config: v.name,
    'proxy CPU µs/request': m.toFixed(1),
    'vs a': `${(m / a).toFixed(3)}×`,
    'vs a, per round': `${median(xs.map((x, i) => x / first[i]!)).toFixed(3)}×`,
  };
});
console.log(
  `proxy CPU per request at ${RATE} req/s over ${CONNECTIONS} keep-alive connections, median of ${ROUNDS} interleaved rounds × ${SECONDS} s (${new Date().toISOString()}):`,
);
console.table(rows);
console.log(
  JSON.stringify({
    rate: RATE,
    connections: CONNECTIONS,
    seconds: SECONDS,
    rounds: ROUNDS,
    tokens: TOKENS,
    rows,
  }),
);
process.exit(0);
