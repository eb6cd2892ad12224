/**
 * Which AuthorizationPolicies select a proxy (Istio's WorkloadPolicyMatcher:
 * pilot/pkg/model/policyattachment.go) and how weftd compiles them: root namespace mesh-wide,
 * namespace-wide, selector, targetRefs (Gateway by the gateway-name label, Service by its
 * selector), the mesh's extensionProviders, and the fail-closed paths.
 */
import { expect } from 'chai';
import type { AuthorizationPolicy, AuthorizationPolicySpec } from '../../../pkg/api/authorizationpolicy.js';
import {
  bracketPath,
  compilePolicy,
  parseExtensionProviders,
  pathForm,
  podServiceNames,
  policyApplies,
  requestPrincipalForm,
  stringForm,
  translateAuthz,
  MAX_RULES_PER_PROXY,
} from '../../../pkg/translate/authz.js';
import { parseMeshSettings } from '../../../controlplane/flags.js';
import type { ServiceRecord } from '../../../pkg/translate/index.js';

const ap = (
  ns: string,
  name: string,
  spec: AuthorizationPolicySpec,
  annotations?: Record<string, string>,
): AuthorizationPolicy =>
  ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec,
  }) as AuthorizationPolicy;

const POD = { namespace: 'foo', labels: { app: 'reviews', version: 'v1' } };
const GW_POD = { namespace: 'gw', labels: { 'gateway.networking.k8s.io/gateway-name': 'public', app: 'gw' } };

describe('AuthorizationPolicy selection (policyApplies)', () => {
  const CASES: [
    string,
    AuthorizationPolicy,
    { namespace: string; labels: Record<string, string> },
    string[],
    boolean,
  ][] = [
    ['root namespace, no selector: mesh-wide', ap('weft-system', 'a', {}), POD, [], true],
    [
      'root namespace with a matching selector',
      ap('weft-system', 'a', { selector: { matchLabels: { app: 'reviews' } } }),
      POD,
      [],
      true,
    ],
    [
      'root namespace with another selector',
      ap('weft-system', 'a', { selector: { matchLabels: { app: 'x' } } }),
      POD,
      [],
      false,
    ],
    ['same namespace, no selector: namespace-wide', ap('foo', 'a', {}), POD, [], true],
    ['other namespace never applies', ap('bar', 'a', {}), POD, [], false],
    [
      'selector subset of labels',
      ap('foo', 'a', { selector: { matchLabels: { app: 'reviews' } } }),
      POD,
      [],
      true,
    ],
    [
      'selector with all labels',
      ap('foo', 'a', { selector: { matchLabels: { app: 'reviews', version: 'v1' } } }),
      POD,
      [],
      true,
    ],
    [
      'selector with a label the pod lacks',
      ap('foo', 'a', { selector: { matchLabels: { app: 'reviews', tier: 'x' } } }),
      POD,
      [],
      false,
    ],
    [
      'selector value mismatch',
      ap('foo', 'a', { selector: { matchLabels: { version: 'v2' } } }),
      POD,
      [],
      false,
    ],
    ['empty matchLabels = namespace-wide', ap('foo', 'a', { selector: { matchLabels: {} } }), POD, [], true],
    [
      'targetRef Gateway by gateway-name label',
      ap('gw', 'a', { targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' } }),
      GW_POD,
      [],
      true,
    ],
    [
      'targetRefs Gateway by gateway-name label',
      ap('gw', 'a', {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' }],
      }),
      GW_POD,
      [],
      true,
    ],
    [
      'targetRef Gateway of another name',
      ap('gw', 'a', { targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'private' } }),
      GW_POD,
      [],
      false,
    ],
    [
      'targetRef Gateway from another namespace',
      ap('other', 'a', {
        targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' },
      }),
      GW_POD,
      [],
      false,
    ],
    [
      'targetRef Gateway from the root namespace does not apply',
      ap('weft-system', 'a', {
        targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' },
      }),
      { ...GW_POD, namespace: 'gw' },
      [],
      false,
    ],
    [
      'targetRef Gateway naming another namespace',
      ap('gw', 'a', {
        targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public', namespace: 'x' },
      }),
      GW_POD,
      [],
      false,
    ],
    [
      'targetRef Gateway on a pod without the label',
      ap('foo', 'a', { targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public' } }),
      POD,
      [],
      false,
    ],
    [
      'targetRef Gateway of another group (networking.istio.io)',
      ap('gw', 'a', { targetRef: { group: 'networking.istio.io', kind: 'Gateway', name: 'public' } }),
      GW_POD,
      [],
      false,
    ],
    [
      'targetRef Service: the pods behind it',
      ap('foo', 'a', { targetRef: { kind: 'Service', name: 'reviews' } }),
      POD,
      ['reviews'],
      true,
    ],
    [
      'targetRef Service with group core',
      ap('foo', 'a', { targetRef: { group: 'core', kind: 'Service', name: 'reviews' } }),
      POD,
      ['reviews'],
      true,
    ],
    [
      'targetRef Service the pod is not behind',
      ap('foo', 'a', { targetRef: { kind: 'Service', name: 'ratings' } }),
      POD,
      ['reviews'],
      false,
    ],
    [
      'targetRefs: any of them',
      ap('foo', 'a', {
        targetRefs: [
          { kind: 'Service', name: 'x' },
          { kind: 'Service', name: 'reviews' },
        ],
      }),
      POD,
      ['reviews'],
      true,
    ],
    [
      'a gateway pod still takes selector policies',
      ap('gw', 'a', { selector: { matchLabels: { app: 'gw' } } }),
      GW_POD,
      [],
      true,
    ],
    ['a gateway pod takes namespace-wide policies', ap('gw', 'a', {}), GW_POD, [], true],
  ];
  for (const [name, p, pod, services, want] of CASES)
    it(`${name} → ${want ? 'applies' : 'does not apply'}`, () =>
      expect(policyApplies(p, pod, services)).to.equal(want));
  it('a custom root namespace', () => {
    expect(policyApplies(ap('mesh-root', 'a', {}), POD, [], 'mesh-root')).to.equal(true);
    expect(policyApplies(ap('weft-system', 'a', {}), POD, [], 'mesh-root')).to.equal(false);
  });
  it('podServiceNames: Services in the namespace whose selector matches', () => {
    const svc = (ns: string, name: string, selector?: Record<string, string>) => ({
      metadata: { name, namespace: ns },
      spec: selector ? { selector } : {},
    });
    expect(
      podServiceNames(
        [
          svc('foo', 'reviews', { app: 'reviews' }),
          svc('foo', 'other', { app: 'x' }),
          svc('bar', 'reviews2', { app: 'reviews' }),
          svc('foo', 'headless'),
        ],
        POD,
      ),
    ).to.deep.equal(['reviews']);
  });
});

describe('AuthorizationPolicy compilation forms', () => {
  const STRINGS: [string, unknown][] = [
    ['*', { present: true }],
    ['*.png', { suffix: '.png' }],
    ['/api/*', { prefix: '/api/' }],
    ['/x', { exact: '/x' }],
  ];
  for (const [v, want] of STRINGS) it(`string form ${v}`, () => expect(stringForm(v)).to.deep.equal(want));
  const PATHS: [string, unknown][] = [
    ['/a/{*}/b', { template: ['a', '*', 'b'] }],
    ['/a/{**}', { template: ['a', '**'] }],
    ['/{*}', { template: ['*'] }],
    ['/a/*', { prefix: '/a/' }],
    ['/a/{*}/', { template: ['a', '*', ''] }],
    ['/a/{**}/', { template: ['a', '**'] }],
  ];
  for (const [v, want] of PATHS) it(`path form ${v}`, () => expect(pathForm(v)).to.deep.equal(want));
  for (const bad of ['/a/{**}/b', '/a/{x}', '/a/b*{*}', '/a/{*}x'])
    it(`path template ${bad} is refused`, () => expect(() => pathForm(bad)).to.throw());
  const RP: [string, unknown][] = [
    ['*', { iss: { present: true }, sub: { present: true } }],
    ['iss/sub', { iss: { exact: 'iss' }, sub: { exact: 'sub' } }],
    ['https://a.com/x/sub', { iss: { exact: 'https://a.com/x' }, sub: { exact: 'sub' } }],
    ['iss/*', { iss: { exact: 'iss' }, sub: { present: true } }],
    ['*/sub', { iss: { present: true }, sub: { exact: 'sub' } }],
    ['*a.com/sub', { iss: { suffix: 'a.com' }, sub: { exact: 'sub' } }],
    ['iss/su*', { iss: { exact: 'iss' }, sub: { prefix: 'su' } }],
    ['*sub', { iss: { present: true }, sub: { suffix: 'sub' } }],
    ['iss*', { iss: { prefix: 'iss' }, sub: { present: true } }],
  ];
  for (const [v, want] of RP)
    it(`requestPrincipal form ${v}`, () => expect(requestPrincipalForm(v)).to.deep.equal(want));
  const BR: [string, string[] | null][] = [
    ['[a]', ['a']],
    ['[a][b][c]', ['a', 'b', 'c']],
    ['', null],
    ['[a', null],
    ['[a]x', null],
  ];
  for (const [v, want] of BR)
    it(`bracket path ${JSON.stringify(v)}`, () => expect(bracketPath(v)).to.deep.equal(want));

  it('an uncompilable rule in a DENY policy matches everything (fail closed), with a warning', () => {
    const w: string[] = [];
    const p = compilePolicy(
      ap('foo', 'd', {
        action: 'DENY',
        rules: [{ when: [{ key: 'experimental.envoy.filters.x[y]', values: ['1'] }] }],
      }),
      new Set(),
      w,
    );
    expect(p.rules).to.deep.equal([{}]);
    expect(w.join()).to.match(/fail closed/);
  });
  it('an uncompilable rule in an ALLOW policy is skipped (allows less)', () => {
    const w: string[] = [];
    const p = compilePolicy(
      ap('foo', 'a', { rules: [{ from: [{ source: { ipBlocks: ['nope'] } }] }, {}] }),
      new Set(),
      w,
    );
    expect(p.rules).to.deep.equal([{}]);
    expect(w.join()).to.match(/skipped/);
  });
  it('CUSTOM with an undefined provider denies what it matches (Istio)', () => {
    const w: string[] = [];
    const p = compilePolicy(
      ap('foo', 'c', { action: 'CUSTOM', provider: { name: 'nope' }, rules: [{}] }),
      new Set(['ext']),
      w,
    );
    expect(p.action).to.equal('DENY');
    expect(w.join()).to.match(/not defined in the mesh config/);
  });
  it('dry-run annotation', () => {
    const w: string[] = [];
    expect(compilePolicy(ap('foo', 'a', {}, { 'istio.io/dry-run': 'true' }), new Set(), w).dryRun).to.equal(
      true,
    );
    expect(compilePolicy(ap('foo', 'a', {}, { 'istio.io/dry-run': 'false' }), new Set(), w).dryRun).to.equal(
      undefined,
    );
    expect(compilePolicy(ap('foo', 'a', {}, { 'istio.io/dry-run': 'maybe' }), new Set(), w).dryRun).to.equal(
      undefined,
    );
    expect(w.join()).to.match(/not a boolean; enforced/);
  });
  it('no rules vs rules: [] vs rules: [{}]', () => {
    const w: string[] = [];
    expect(compilePolicy(ap('foo', 'a', {}), new Set(), w).rules).to.deep.equal([]);
    expect(compilePolicy(ap('foo', 'a', { rules: [] }), new Set(), w).rules).to.deep.equal([]);
    expect(compilePolicy(ap('foo', 'a', { rules: [{}] }), new Set(), w).rules).to.deep.equal([{}]);
  });
});

describe('translateAuthz', () => {
  const services: ServiceRecord[] = [
    {
      host: 'ext-authz.auth.svc.cluster.local',
      namespace: 'auth',
      addresses: ['10.96.0.9'],
      ports: [{ number: 8000, name: 'http', protocol: 'HTTP', targetPort: 9000 }],
      endpoints: [{ address: '10.244.1.5', labels: {} }],
    },
  ];
  it('no applying policy: no block (the proxy checks nothing)', () => {
    expect(translateAuthz({ policies: [ap('bar', 'x', {})], pod: POD }).block).to.equal(undefined);
  });
  it('numTrustedProxies is carried for remote.ip (0 is left out)', () => {
    const p = [ap('foo', 'a', {})];
    expect(translateAuthz({ policies: p, pod: POD, numTrustedProxies: 1 }).block!.numTrustedProxies).to.equal(
      1,
    );
    expect(translateAuthz({ policies: p, pod: POD, numTrustedProxies: 0 }).block!.numTrustedProxies).to.equal(
      undefined,
    );
  });
  it('sorted by namespace/name, so the config version is stable', () => {
    const { block } = translateAuthz({
      policies: [ap('foo', 'z', {}), ap('weft-system', 'a', {}), ap('foo', 'b', {})],
      pod: POD,
    });
    expect(block!.policies.map((p) => p.name)).to.deep.equal(['foo/b', 'foo/z', 'weft-system/a']);
  });
  it('CUSTOM: the provider is resolved to the service endpoints at its target port', () => {
    const { block, warnings } = translateAuthz({
      policies: [ap('foo', 'c', { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{}] })],
      pod: POD,
      providers: [
        {
          name: 'ext',
          service: 'ext-authz.auth.svc.cluster.local',
          port: 8000,
          headersToUpstreamOnAllow: ['X-User'],
        },
      ],
      services,
    });
    expect(warnings).to.deep.equal([]);
    expect(block!.providers!.ext).to.deep.include({
      endpoints: [{ address: '10.244.1.5', port: 9000 }],
      timeoutMs: 600_000,
      headersToUpstreamOnAllow: [{ exact: 'x-user' }],
    });
    expect(block!.policies[0]).to.deep.include({ action: 'CUSTOM', provider: 'ext' });
  });
  it('CUSTOM provider with no endpoints: warned', () => {
    const { warnings } = translateAuthz({
      policies: [ap('foo', 'c', { action: 'CUSTOM', provider: { name: 'ext' }, rules: [{}] })],
      pod: POD,
      providers: [{ name: 'ext', service: 'nowhere.svc', port: 80 }],
    });
    expect(warnings.join()).to.match(/no endpoints/);
  });
  it(`more than ${MAX_RULES_PER_PROXY} rules: deny everything rather than push an unbounded matcher`, () => {
    const rules = Array.from({ length: 10_000 }, (_, i) => ({ to: [{ operation: { paths: [`/p${i}`] } }] }));
    const { block, warnings } = translateAuthz({ policies: [ap('foo', 'big', { rules })], pod: POD });
    expect(block!.policies).to.deep.equal([
      { name: 'weft-system/too-many-authz-rules', action: 'DENY', rules: [{}] },
    ]);
    expect(warnings.join()).to.match(/limit/);
  });
});

describe('mesh config extensionProviders', () => {
  it('parses an envoyExtAuthzHttp provider with every field', () => {
    const { providers, errors } = parseExtensionProviders([
      {
        name: 'ext',
        envoyExtAuthzHttp: {
          service: 'ext.auth.svc.cluster.local',
          port: 8000,
          pathPrefix: '/check',
          timeout: '250ms',
          failOpen: true,
          statusOnError: '503',
          includeRequestHeadersInCheck: ['x-ext-authz'],
          headersToUpstreamOnAllow: ['x-user'],
          headersToDownstreamOnDeny: ['x-reason'],
          includeAdditionalHeadersInCheck: { 'x-added': 'yes' },
        },
      },
      { name: 'otel', opentelemetry: { service: 'x', port: 1 } },
    ]);
    expect(errors).to.deep.equal([]);
    expect(providers).to.deep.equal([
      {
        name: 'ext',
        service: 'ext.auth.svc.cluster.local',
        port: 8000,
        pathPrefix: '/check',
        timeoutMs: 250,
        failOpen: true,
        statusOnError: 503,
        includeRequestHeadersInCheck: ['x-ext-authz'],
        headersToUpstreamOnAllow: ['x-user'],
        headersToDownstreamOnDeny: ['x-reason'],
        includeAdditionalHeadersInCheck: { 'x-added': 'yes' },
      },
    ]);
  });
  const BAD: [string, unknown, RegExp][] = [
    ['not a list', { a: 1 }, /must be a list/],
    ['no name', [{ envoyExtAuthzHttp: { service: 'a', port: 1 } }], /name must be a non-empty string/],
    ['duplicate name', [{ name: 'a' }, { name: 'a' }], /defined twice/],
    ['no service', [{ name: 'a', envoyExtAuthzHttp: { port: 1 } }], /service must be/],
    ['bad port', [{ name: 'a', envoyExtAuthzHttp: { service: 's', port: 70000 } }], /port must be/],
    [
      'pathPrefix without /',
      [{ name: 'a', envoyExtAuthzHttp: { service: 's', port: 1, pathPrefix: 'x' } }],
      /pathPrefix must begin/,
    ],
    [
      'bad timeout',
      [{ name: 'a', envoyExtAuthzHttp: { service: 's', port: 1, timeout: 'soon' } }],
      /timeout/,
    ],
    [
      'bad statusOnError',
      [{ name: 'a', envoyExtAuthzHttp: { service: 's', port: 1, statusOnError: 'x' } }],
      /statusOnError/,
    ],
    [
      'bad header list',
      [{ name: 'a', envoyExtAuthzHttp: { service: 's', port: 1, headersToUpstreamOnAllow: [1] } }],
      /headersToUpstreamOnAllow/,
    ],
  ];
  for (const [name, raw, re] of BAD)
    it(`refuses ${name}`, () => expect(parseExtensionProviders(raw).errors.join('; ')).to.match(re));
  it('mesh.yaml: rootNamespace and extensionProviders are read, errors are named', () => {
    const m = parseMeshSettings(
      'rootNamespace: mesh-root\nextensionProviders:\n- name: ext\n  envoyExtAuthzHttp:\n    service: a.b\n    port: 80\n',
    );
    expect(m.rootNamespace).to.equal('mesh-root');
    expect(m.extensionProviders.map((p) => p.name)).to.deep.equal(['ext']);
    expect(parseMeshSettings('').rootNamespace).to.equal('weft-system');
    expect(() =>
      parseMeshSettings('extensionProviders:\n- name: ext\n  envoyExtAuthzHttp:\n    port: 80\n'),
    ).to.throw(/service must be/);
  });
});
