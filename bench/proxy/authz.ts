/**
 * Cost of AuthorizationPolicy per request: `authorizeAllReadings` over 20 policies of mixed
 * rules (paths, templates, methods, hosts, headers, CIDRs, claims) against a request that
 * walks most of them, versus none. Run: npx tsx bench/proxy/authz.ts
 */
import type { AuthorizationPolicy } from '../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../pkg/translate/authz.js';
import { compileAuthz } from '../../proxy/authz/engine.js';
import { authorizeAllReadings } from '../../proxy/authz/gate.js';
import type { AuthzAttributes } from '../../proxy/authz/attributes.js';

const policies: AuthorizationPolicy[] = [];
for (let i = 0; i < 20; i++) {
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
          when: [
            { key: 'request.headers[x-tenant]', values: [`t${i}`] },
            { key: 'request.auth.claims[groups]', values: [`g${i}`] },
          ],
        },
        { to: [{ operation: { notPaths: ['/healthz'], ports: [`${9000 + i}`] } }] },
      ],
    },
  } as AuthorizationPolicy);
}
const { block } = translateAuthz({ policies, pod: { namespace: 'foo', labels: {} } });
const compiled = compileAuthz(block!);
const empty = compileAuthz({ policies: [] });
const attrs: AuthzAttributes = {
  method: 'GET',
  host: 'app.example.com:8080',
  path: '/items/42/p19',
  headers: { 'x-tenant': 't19', 'user-agent': 'bench' },
  port: 9019,
  destinationIp: '10.0.0.9',
  sourceIp: '10.19.3.4',
  remoteIp: '10.19.3.4',
  peer: { principal: 'cluster.local/ns/foo/sa/a', namespace: 'foo', serviceAccount: 'a' },
  auth: { principal: 'iss/sub', audiences: ['a'], claims: { iss: 'iss', sub: 'sub', groups: ['g19'] } },
};

function run(c: typeof compiled, n: number): number {
  const t0 = process.hrtime.bigint();
  let allowed = 0;
  for (let i = 0; i < n; i++) if (authorizeAllReadings(c, attrs).decision === 'allow') allowed++;
  const ns = Number(process.hrtime.bigint() - t0);
  if (allowed !== n && c === compiled) throw new Error(`expected allow, got ${allowed}/${n}`);
  return ns / n;
}
for (let round = 0; round < 3; round++) {
  run(compiled, 20_000);
  run(empty, 20_000);
}
const N = 200_000;
const withPolicies = run(compiled, N);
const none = run(empty, N);
console.log(
  `authorize, 20 policies / 40 rules: ${(withPolicies / 1000).toFixed(2)} µs per request; no policy: ${(none / 1000).toFixed(2)} µs (${N} requests)`,
);
console.log(`at 1,000 req/s: ${(((withPolicies * 1000) / 1e9) * 100).toFixed(3)} % of one core`);
