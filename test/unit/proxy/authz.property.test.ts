/**
 * Properties of the AuthorizationPolicy engine over random requests and random policies
 * (fast-check, seed 1414): it never throws; deny-all always denies; a DENY policy added can only
 * turn allows into denies; the strictest-reading check never allows what the routed path
 * alone denies; a policy set is decided the same whatever order DENY policies come in.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { Rule } from '../../../pkg/api/authorizationpolicy.js';
import { compilePolicy } from '../../../pkg/translate/authz.js';
import type { AuthzPolicy } from '../../../pkg/proxyconfig/types.js';
import { authorize, compileAuthz } from '../../../proxy/authz/engine.js';
import { authorizeAllReadings } from '../../../proxy/authz/gate.js';
import type { AuthzAttributes } from '../../../proxy/authz/attributes.js';

const SEED = 1414;
const seg = fc.constantFrom('admin', 'public', 'api', 'x', '..', '.', '%2e', '%2F', '', 'a.png', 'A');
const path = fc.array(seg, { maxLength: 5 }).map((s) => `/${s.join('/')}`);
const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('::ffff:10.0.0.1', 'garbage', ''));
const str = fc.constantFrom('a', 'b', 'admin', 'x.example.com', 'X.EXAMPLE.COM:80', '');
const attrs: fc.Arbitrary<AuthzAttributes> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'get'),
  host: str,
  path,
  headers: fc.dictionary(
    fc.constantFrom('x-a', 'x-b', 'user-agent'),
    fc.oneof(str, fc.array(str, { maxLength: 2 })),
  ),
  port: fc.integer({ min: 0, max: 65535 }),
  destinationIp: ip,
  sourceIp: ip,
  remoteIp: ip,
  sni: fc.option(str, { nil: undefined }),
  peer: fc.option(
    fc.record({
      principal: fc.constantFrom('cluster.local/ns/a/sa/b', 'spiffe://td/ns/x/sa/y', ''),
      namespace: str,
      serviceAccount: str,
    }),
    { nil: undefined },
  ),
  auth: fc.option(
    fc.record({
      principal: fc.constantFrom('iss/sub', 'https://i/x/s', 'nosub'),
      audiences: fc.array(str, { maxLength: 3 }),
      presenter: fc.option(str, { nil: undefined }),
      claims: fc.dictionary(
        fc.constantFrom('iss', 'sub', 'groups', 'n'),
        fc.oneof(str, fc.array(str), fc.integer(), fc.constant(null), fc.dictionary(str, str)),
      ),
    }),
    { nil: undefined },
  ),
}) as fc.Arbitrary<AuthzAttributes>;

const values = fc.array(
  fc.constantFrom('*', 'a*', '*a', 'admin', '/admin', '/admin/*', '/{*}/x', '/api/{**}', '*.png'),
  { minLength: 1, maxLength: 2 },
);
const ips = fc.array(fc.constantFrom('10.0.0.0/8', '0.0.0.0/0', '::/0', 'fd00::/8', '127.0.0.1'), {
  minLength: 1,
  maxLength: 2,
});
const rule: fc.Arbitrary<Rule> = fc.record(
  {
    from: fc.array(
      fc.record({
        source: fc.record(
          {
            principals: values,
            notNamespaces: values,
            ipBlocks: ips,
            notRemoteIpBlocks: ips,
            requestPrincipals: values,
          },
          { requiredKeys: [] },
        ),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    to: fc.array(
      fc.record({
        operation: fc.record(
          { paths: values, notPaths: values, methods: values, hosts: values, ports: fc.constant(['80']) },
          { requiredKeys: [] },
        ),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    when: fc.array(
      fc.record({
        key: fc.constantFrom(
          'request.headers[x-a]',
          'request.auth.claims[groups]',
          'source.ip',
          'request.auth.audiences',
          'connection.sni',
        ),
        values: fc.constant(['a']),
      }),
      { minLength: 1, maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<Rule>;
const action = fc.constantFrom('ALLOW', 'DENY', 'AUDIT') as fc.Arbitrary<'ALLOW' | 'DENY' | 'AUDIT'>;
const policies = fc.array(
  fc.record({ action, rules: fc.option(fc.array(rule, { maxLength: 3 }), { nil: undefined }) }),
  { maxLength: 4 },
);

function compile(specs: { action: 'ALLOW' | 'DENY' | 'AUDIT'; rules?: Rule[] | undefined }[]): AuthzPolicy[] {
  return specs.map((s, i) =>
    compilePolicy(
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: `p${i}`, namespace: 'ns' },
        spec: { action: s.action, ...(s.rules !== undefined ? { rules: s.rules } : {}) },
      } as never,
      new Set(),
      [],
    ),
  );
}

describe('AuthorizationPolicy engine properties (fast-check, seed 1414)', () => {
  it('never throws; deny-all denies; a DENY added never turns a deny into an allow; strict reading never loosens', () => {
    fc.assert(
      fc.property(policies, rule, attrs, (specs, extra, a) => {
        const base = compile(specs);
        const c = compileAuthz({ policies: base });
        const d = authorize(c, a);
        expect(['allow', 'deny']).to.include(d.decision);
        const strict = authorizeAllReadings(c, a);
        if (d.decision === 'deny') expect(strict.decision).to.equal('deny');
        const denyAll = compileAuthz({ policies: [...base, ...compile([{ action: 'DENY', rules: [{}] }])] });
        expect(authorize(denyAll, a).decision).to.equal('deny');
        const more = compileAuthz({ policies: [...base, ...compile([{ action: 'DENY', rules: [extra] }])] });
        if (d.decision === 'deny') expect(authorize(more, a).decision).to.equal('deny');
        const reversed = compileAuthz({ policies: [...base].reverse() });
        expect(authorize(reversed, a).decision).to.equal(d.decision);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
});
