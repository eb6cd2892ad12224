/**
 * The webhook's AuthorizationPolicy rules that follow current Istio
 * (pkg/config/validation/validation.go ValidateAuthorizationPolicy and
 * pkg/config/security ValidateAttribute), and weft's refusal of conditions it cannot enforce.
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';

const ap = (spec: Record<string, unknown>, v = 'security.istio.io/v1') => ({
  apiVersion: v,
  kind: 'AuthorizationPolicy',
  metadata: { name: 'x', namespace: 'default' },
  spec,
});
const errors = (spec: Record<string, unknown>, v?: string): string[] =>
  validateObject(ap(spec, v)).errors.map((f) => `${f.path}: ${f.message}`);
const when = (key: string, values: string[] = ['a']) => ({ rules: [{ when: [{ key, values }] }] });

describe('AuthorizationPolicy admission (current Istio rules)', () => {
  const REFUSED: [string, Record<string, unknown>, string][] = [
    [
      'DENY without rules (Istio: meaningless)',
      { action: 'DENY' },
      'DENY action without `rules` is meaningless',
    ],
    [
      'CUSTOM without rules',
      { action: 'CUSTOM', provider: { name: 'ext' } },
      'CUSTOM action without `rules`',
    ],
    [
      'experimental.envoy.filters condition',
      when('experimental.envoy.filters.http.jwt_authn[iss]'),
      'experimental.envoy.filters.* matches Envoy filter metadata',
    ],
    ['destination.namespace', when('destination.namespace'), 'is replaced by the metadata.namespace'],
    ['destination.labels[app]', when('destination.labels[app]'), 'is replaced by the workload selector'],
    ['destination.name', when('destination.name'), 'only supported in v1alpha1'],
    ['destination.user', when('destination.user'), 'only supported in v1alpha1'],
    ['unknown key', when('request.bogus'), 'unknown attribute "request.bogus"'],
    ['request.headers without a name', when('request.headers'), 'should have format'],
    ['request.headers with nested brackets', when('request.headers[a][b]'), 'should have format'],
    ['request.auth.claims without a name', when('request.auth.claims[]'), 'should have format'],
    ['empty condition value', when('source.namespace', ['']), 'empty value not allowed'],
    [
      'source.serviceAccount with a wildcard',
      when('source.serviceAccount', ['ns/*']),
      'wildcard not allowed',
    ],
    [
      'source.serviceAccount with two slashes',
      when('source.serviceAccount', ['a/b/c']),
      "expected format 'serviceAccount' or 'namespace/serviceAccount'",
    ],
    [
      'source.trustDomain with a slash',
      when('source.trustDomain', ['a/b']),
      "trust domain must not contain '/'",
    ],
    [
      'source.trustDomain wildcard in the middle',
      when('source.trustDomain', ['a*b']),
      'wildcard is only allowed at the start or end',
    ],
    ['destination.port not a number', when('destination.port', ['http']), 'is not a number'],
    ['source.ip not an IP', when('source.ip', ['nope']), 'is not a valid IP'],
    [
      'serviceAccounts with principals',
      { rules: [{ from: [{ source: { serviceAccounts: ['a'], principals: ['b'] } }] }] },
      'cannot set serviceAccounts with namespaces or principals',
    ],
    [
      'serviceAccounts: more than 16',
      {
        rules: [{ from: [{ source: { serviceAccounts: Array.from({ length: 17 }, (_, i) => `sa${i}`) } }] }],
      },
      'may not have more than 16 values',
    ],
    [
      'trustDomains with a slash',
      { rules: [{ from: [{ source: { trustDomains: ['a/b'] } }] }] },
      "trust domain must not contain '/'",
    ],
    [
      'CUSTOM with principals',
      { action: 'CUSTOM', provider: { name: 'e' }, rules: [{ from: [{ source: { principals: ['a'] } }] }] },
      'principals is currently not supported with CUSTOM action',
    ],
    [
      'CUSTOM with request.auth.claims',
      { action: 'CUSTOM', provider: { name: 'e' }, ...when('request.auth.claims[a]') },
      'is currently not supported with CUSTOM action',
    ],
    [
      'path with braces outside a template',
      { rules: [{ to: [{ operation: { paths: ['/a/{x}'] } }] }] },
      'invalid path',
    ],
    ['{**} not last', { rules: [{ to: [{ operation: { paths: ['/a/{**}/b'] } }] }] }, 'invalid path'],
  ];
  for (const [name, spec, fragment] of REFUSED)
    it(`refuses ${name}`, () => {
      const e = errors(spec);
      expect(
        e.some((x) => x.includes(fragment)),
        JSON.stringify(e),
      ).to.equal(true);
    });
  const ACCEPTED: [string, Record<string, unknown>][] = [
    ['DENY with rules: [{}]', { action: 'DENY', rules: [{}] }],
    ['ALLOW without rules (allow nothing)', { action: 'ALLOW' }],
    [
      'every documented condition key',
      {
        rules: [
          {
            when: [
              'request.headers[x-a]',
              'source.ip',
              'remote.ip',
              'source.namespace',
              'source.principal',
              'source.serviceAccount',
              'source.trustDomain',
              'request.auth.principal',
              'request.auth.audiences',
              'request.auth.presenter',
              'request.auth.claims[groups]',
              'request.auth.claims[a][b]',
              'destination.ip',
              'destination.port',
              'connection.sni',
            ].map((key) => ({
              key,
              values: [
                key.endsWith('.ip')
                  ? '10.0.0.0/8'
                  : key === 'destination.port'
                    ? '80'
                    : key === 'source.serviceAccount'
                      ? 'ns/sa'
                      : 'v',
              ],
            })),
          },
        ],
      },
    ],
    [
      'trustDomains and serviceAccounts',
      { rules: [{ from: [{ source: { trustDomains: ['*.local'], serviceAccounts: ['ns/sa', 'sa'] } }] }] },
    ],
    ['v1beta1 is the same', { action: 'DENY', rules: [{}] }],
  ];
  for (const [name, spec] of ACCEPTED) it(`accepts ${name}`, () => expect(errors(spec)).to.deep.equal([]));
  it('v1beta1 refuses the same', () =>
    expect(errors({ action: 'DENY' }, 'security.istio.io/v1beta1').join()).to.include('meaningless'));
});

/**
 * `methods` / `notMethods` values no request method can equal: Istio checks only that a value is
 * not empty (ValidateAuthorizationPolicy, security.CheckEmptyValues), so they are accepted, with
 * a warning that they can never match (in notMethods: exclude nothing).
 */
describe('AuthorizationPolicy methods that can never match: accepted (Istio) with a warning', () => {
  const RULE = 'ap.operation.methodNeverMatches';
  const op = (operation: Record<string, unknown>) => ({ rules: [{ to: [{ operation }] }] });
  const AT = 'spec.rules[0].to[0].operation';
  const table: [string, Record<string, unknown>, string[]][] = [
    ['GET', op({ methods: ['GET'] }), []],
    ['a prefix wildcard and a suffix wildcard', op({ methods: ['*T', 'PO*'] }), []],
    ['* alone', op({ methods: ['*'] }), []],
    ['an extension method (a token)', op({ methods: ['PURGE', 'M-SEARCH'] }), []],
    ['GET followed by CR LF', op({ methods: ['GET\r\n'] }), [`${AT}.methods[0]`]],
    ['a space inside', op({ methods: ['GE T'] }), [`${AT}.methods[0]`]],
    ['a trailing space', op({ methods: ['GET '] }), [`${AT}.methods[0]`]],
    ['NUL', op({ methods: ['GET\u0000'] }), [`${AT}.methods[0]`]],
    ['a separator in a wildcard value', op({ methods: ['G/*'] }), [`${AT}.methods[0]`]],
    ['notMethods with a space', op({ notMethods: ['DELETE', 'P UT'] }), [`${AT}.notMethods[1]`]],
  ];
  for (const [what, spec, warnedAt] of table)
    it(`${what}: ${warnedAt.length === 0 ? 'no warning' : 'a warning'}, no error`, () => {
      const result = validateObject(ap(spec));
      expect(result.errors, JSON.stringify(result.errors)).to.deep.equal([]);
      const warned = result.warnings.filter((f) => f.rule === RULE);
      expect(warned.map((f) => f.path)).to.deep.equal(warnedAt);
      for (const f of warned) {
        expect(f.message).to.include('can never match');
        expect(f.message, 'control characters are escaped').to.not.match(/[\r\n\0]/);
      }
    });

  it('says what a notMethods value does: excludes no request', () => {
    const [w] = validateObject(ap(op({ notMethods: ['P UT'] }))).warnings.filter((f) => f.rule === RULE);
    expect(w?.message).to.include('as a notMethods value it excludes no request');
  });
});
