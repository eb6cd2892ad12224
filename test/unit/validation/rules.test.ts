/**
 * One or more cases per rule of RULES.md (VirtualService §1, DestinationRule §2, conventions §0)
 * plus valid look-alikes that Istio accepts, so weft is never stricter than Istio.
 *
 * Each case lists the findings it must produce as `path: message-fragment`; every error the
 * validator reports must be listed (no surprises), and every listed one must appear.
 */
import { expect } from 'chai';
import { type Finding, validateObject } from '../../../pkg/validation/index.js';

type Obj = Record<string, unknown>;

interface Case {
  name: string;
  obj: Obj;
  /** `path: fragment` for each expected error; omitted or [] means valid. */
  errors?: string[];
  /** `path: fragment` for warnings that must appear (others are allowed). */
  warnings?: string[];
}

const NS = 'default';

function vs(spec: Obj, metadata: Obj = {}): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: NS, ...metadata },
    spec,
  };
}

/** A mesh VS for `reviews` with one HTTP route; `patch` is merged into that route. */
function http(patch: Obj, specPatch: Obj = {}): Obj {
  return vs({
    hosts: ['reviews'],
    http: [{ route: [{ destination: { host: 'reviews' } }], ...patch }],
    ...specPatch,
  });
}

/** A VS whose single route has this match. */
function match(m: Obj, specPatch: Obj = {}): Obj {
  return http({ match: [m] }, specPatch);
}

function dr(spec: Obj, metadata: Obj = {}): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: NS, ...metadata },
    spec: { host: 'reviews', ...spec },
  };
}

function tp(policy: Obj): Obj {
  return dr({ trafficPolicy: policy });
}

const R = 'spec.http[0]';
const M = 'spec.http[0].match[0]';
const TP = 'spec.trafficPolicy';
const LB = 'spec.trafficPolicy.loadBalancer';

const conventions: Case[] = [
  {
    name: '§0.2 unknown top-level key',
    obj: { ...http({}), extra: 1 },
    errors: ['extra: unknown field "extra"'],
  },
  {
    name: '§0.3 type error: weight "ten"',
    obj: http({ route: [{ destination: { host: 'r' }, weight: 'ten' }] }),
    errors: [`${R}.route[0].weight: must be an integer`],
  },
  {
    name: '§0.3 unknown enum name',
    obj: http({ redirect: { derivePort: 'FROM_NOWHERE' }, route: undefined }),
    errors: [`${R}.redirect.derivePort: must be one of`],
  },
  {
    name: '§0.3 unparsable duration',
    obj: http({ timeout: '10 s' }),
    errors: [`${R}.timeout: invalid duration "10 s"`],
  },
  {
    name: '§0.3 unknown spec fields are tolerated (warning)',
    obj: http({ websocketUpgrade: true }),
    warnings: [`${R}.websocketUpgrade: unknown field`],
  },
  {
    name: '§0.3 snake_case is pruned: warned with the camelCase name',
    obj: http({ retries: { attempts: 2, per_try_timeout: '1s' } }),
    warnings: ['did you mean "perTryTimeout"'],
  },
  {
    name: '§0.4 istio.io/dry-run rejected on VS',
    obj: vs(
      { hosts: ['r'], http: [{ route: [{ destination: { host: 'r' } }] }] },
      { annotations: { 'istio.io/dry-run': 'true' } },
    ),
    errors: ['metadata.annotations["istio.io/dry-run"]: unsupported annotation'],
  },
  {
    name: '§0.4 istio.io/dry-run rejected on DR',
    obj: dr({}, { annotations: { 'istio.io/dry-run': 'true' } }),
    errors: ['metadata.annotations["istio.io/dry-run"]: unsupported annotation'],
  },
  {
    name: '§0.4 internal annotation webhook-always-reject',
    obj: dr({}, { annotations: { 'internal.istio.io/webhook-always-reject': 'x' } }),
    errors: ['annotation found'],
  },
  {
    name: '§0.4 internal annotation parents',
    obj: dr({}, { annotations: { 'internal.istio.io/parents': 'x' } }),
    errors: ['annotation found'],
  },
  {
    name: '§0.4 internal annotation parent-namespace',
    obj: dr({}, { annotations: { 'internal.istio.io/parent-namespace': 'x' } }),
    errors: ['annotation found'],
  },
  {
    name: '§0.4 gateway semantics relax gateway names and destinations',
    obj: vs(
      { hosts: ['a.com'], gateways: ['ns/gw~auto'], http: [{ route: [{ destination: { host: '*' } }] }] },
      { annotations: { 'internal.istio.io/route-semantics': 'gateway' } },
    ),
  },
  {
    name: '§0.5 exportTo "." and own namespace are duplicates',
    obj: http({}, { exportTo: ['.', NS] }),
    errors: ['spec.exportTo: duplicate entries in exportTo'],
  },
  {
    name: '§0.7 duration 0s is invalid',
    obj: http({ timeout: '0s' }),
    errors: [`${R}.timeout: duration must be greater than 1ms`],
  },
  {
    name: '§0.7 duration under 1ms',
    obj: http({ timeout: '500us' }),
    errors: [`${R}.timeout: duration must be greater than 1ms`],
  },
  {
    name: '§0.7 duration below ms precision',
    obj: http({ timeout: '1.5ms' }),
    errors: [`${R}.timeout: only durations to ms precision`],
  },
  {
    name: '§0.7 Go durations: 1h2m, 1.5s, 500ms are valid',
    obj: http({ timeout: '1h2m', retries: { attempts: 1, perTryTimeout: '1.5s', backoff: '500ms' } }),
  },
  {
    name: '§0.7 port out of range',
    obj: match({ port: 70000 }),
    errors: [`${M}.port: port number 70000 must be in the range 1..65535`],
  },
  {
    name: '§0.7 DNS labels allow upper case (subset V1)',
    obj: http({ route: [{ destination: { host: 'reviews', subset: 'V1' } }] }),
  },
  {
    name: '§0.7 domain: partial wildcard foo.*.com',
    obj: vs({ hosts: ['foo.*.com'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[0]: domain name "foo.*.com" invalid (label "*" invalid)'],
  },
  {
    name: '§0.7 domain: all-numeric top-level domain',
    obj: vs({ hosts: ['foo.123'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[0]: top level domain "123" cannot be all-numeric'],
  },
  {
    name: '§0.7 domain: too long',
    obj: vs({
      hosts: [`${'a'.repeat(60)}.`.repeat(5) + 'com'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
    errors: ['spec.hosts[0]: too long (max 255)'],
  },
  {
    name: '§0.7 domain: underscore label',
    obj: vs({ hosts: ['a_b.com'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[0]: label "a_b" invalid'],
  },
  {
    name: '§0.7 domain: *foo, *-foo, trailing dot are valid',
    obj: vs({
      hosts: ['*foo.com', '*-bar.org', 'istio.io.'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
  },
  {
    name: '§0.7 label map: bad key',
    obj: match({ sourceLabels: { 'bad key': 'v' } }),
    errors: [`${M}.sourceLabels: invalid tag key: "bad key"`],
  },
  {
    name: '§0.7 label map: bad value',
    obj: match({ sourceLabels: { app: 'a b' } }),
    errors: [`${M}.sourceLabels: invalid tag value: "a b"`],
  },
  {
    name: '§0.7 label map: prefixed key, empty and very long values are valid',
    obj: match({ sourceLabels: { 'example.com/app': '', version: 'v'.repeat(100) } }),
  },
  {
    name: '§0.7 exportTo ~',
    obj: http({}, { exportTo: ['~'] }),
    errors: ['spec.exportTo: exportTo ~ (none) is not allowed'],
  },
  {
    name: '§0.7 exportTo bad label',
    obj: http({}, { exportTo: ['bad_ns'] }),
    errors: ['spec.exportTo: only .,*, or a valid DNS 1123 label'],
  },
  {
    name: '§0.7 exportTo duplicate',
    obj: http({}, { exportTo: ['a', 'a'] }),
    errors: ['spec.exportTo: duplicate entries'],
  },
  {
    name: '§0.7 exportTo * with others',
    obj: http({}, { exportTo: ['*', 'a'] }),
    errors: ['spec.exportTo: cannot have both public (*) and non-public'],
  },
  {
    name: '§0.7 regex too large',
    obj: match({ uri: { regex: 'a'.repeat(1025) } }),
    errors: [`${M}.uri.regex: regex is too large, max length allowed is 1024`],
  },
  {
    name: '§0.7 regex look-ahead is not RE2',
    obj: match({ uri: { regex: '^(?!/admin).*' } }),
    errors: [`${M}.uri.regex: error parsing regexp: invalid or unsupported Perl syntax`],
  },
  {
    name: '§0.7 regex back-reference is not RE2',
    obj: match({ headers: { x: { regex: '(a)\\1' } } }),
    errors: [`${M}.headers.x.regex: invalid escape sequence`],
  },
  {
    name: 'weft: catastrophic-backtracking shape is rejected (RE2-valid, but (a+)+ means a+)',
    obj: match({ uri: { regex: '^/(a+)+$' }, headers: { x: { regex: '(\\w+,?)*' } } }),
    errors: [
      `${M}.uri.regex: "(a+)+" repeats a group that itself repeats without bound`,
      `${M}.headers.x.regex: repeats a group that itself repeats`,
    ],
  },
  {
    name: 'weft: the nesting check also covers CORS origins and regex rewrites',
    obj: http({
      corsPolicy: { allowOrigins: [{ regex: '(https?://[a-z]+\\.)*example\\.com' }] },
      rewrite: { uriRegexRewrite: { match: '^/(x*y)*', rewrite: '/' } },
    }),
    errors: [
      `${R}.corsPolicy.allowOrigins[0].regex: repeats a group`,
      `${R}.rewrite.uriRegexRewrite.match: repeats a group`,
    ],
  },
];

const vsTop: Case[] = [
  {
    name: 'delegate VS with gateways',
    obj: vs({ gateways: ['ns/gw'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.gateways: delegate virtual service must have no gateways'],
  },
  {
    name: 'delegate VS with tls',
    obj: vs({ tls: [{ match: [{ sniHosts: ['a.com'] }], route: [{ destination: { host: 'r' } }] }] }),
    errors: [
      'spec.tls: delegate virtual service must have no tls',
      'spec.tls[0].match[0].sniHosts[0]: not a compatible subset',
    ],
  },
  {
    name: 'delegate VS with tcp',
    obj: vs({ tcp: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.tcp: delegate virtual service must have no tcp'],
  },
  {
    name: 'no http, tcp or tls',
    obj: vs({ hosts: ['r'] }),
    errors: ['spec: http, tcp or tls must be provided'],
  },
  {
    name: 'no spec at all',
    obj: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'x' } },
    errors: ['spec: http, tcp or tls must be provided'],
  },
  {
    name: 'host is an IP address: accepted',
    obj: vs({ hosts: ['10.0.0.1', '2001:db8::1'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
  },
  {
    name: 'mesh VS may not use host *',
    obj: vs({ hosts: ['*'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[0]: wildcard host * is not allowed'],
  },
  {
    name: 'VS listing mesh may not use host *',
    obj: vs({
      hosts: ['*'],
      gateways: ['mesh', 'ns/gw'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
    errors: ['spec.hosts[0]: wildcard host * is not allowed'],
  },
  {
    name: 'gateway VS may use host *',
    obj: vs({ hosts: ['*'], gateways: ['ns/gw'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
  },
  {
    name: 'gateway VS with SNI: auto-passthrough host form',
    obj: vs({
      hosts: ['outbound_.80_._.e2e.foo.mesh'],
      gateways: ['ns/gw'],
      tls: [
        {
          match: [{ sniHosts: ['outbound_.80_._.e2e.foo.mesh'] }],
          route: [{ destination: { host: 'e2e.foo.mesh' } }],
        },
      ],
    }),
  },
  {
    name: 'duplicate hosts: literal',
    obj: vs({ hosts: ['a.com', 'a.com'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[1]: duplicate hosts in virtual service: a.com & a.com'],
  },
  {
    name: 'duplicate hosts: wildcard overlap',
    obj: vs({ hosts: ['*.foo.bar', '*.bar'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['duplicate hosts in virtual service: *.foo.bar & *.bar'],
  },
  {
    name: 'duplicate hosts: name under wildcard',
    obj: vs({ hosts: ['a.com', '*.com'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['duplicate hosts in virtual service: a.com & *.com'],
  },
  {
    name: 'duplicate hosts: case-sensitive, so A.com and a.com differ',
    obj: vs({ hosts: ['A.com', 'a.com'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
  },
  {
    name: 'duplicate check skipped when a host is invalid',
    obj: vs({ hosts: ['a_b', 'a_b'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.hosts[0]: label "a_b" invalid', 'spec.hosts[1]: label "a_b" invalid'],
  },
  {
    name: 'gateway name: empty namespace',
    obj: vs({ hosts: ['a.com'], gateways: ['/gw'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: [
      'spec.gateways[0]: config namespace and gateway name cannot be empty',
      'spec.gateways[0]: invalid value for namespace: ""',
    ],
  },
  {
    name: 'gateway name: bad namespace',
    obj: vs({
      hosts: ['a.com'],
      gateways: ['bad_ns/gw'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
    errors: ['spec.gateways[0]: invalid value for namespace: "bad_ns"'],
  },
  {
    name: 'gateway name: bad name',
    obj: vs({
      hosts: ['a.com'],
      gateways: ['ns/bad_gw'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
    errors: ['spec.gateways[0]: invalid value for gateway name: "bad_gw"'],
  },
  {
    name: 'gateway name: legacy dotted form warns',
    obj: vs({
      hosts: ['a.com'],
      gateways: ['gw.istio-system'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
    warnings: [
      'spec.gateways[0]: using legacy gatewayName format "gw.istio-system"; prefer the <namespace>/<name> format: "istio-system/gw"',
    ],
  },
  {
    name: 'gateway name: plain name must be an FQDN',
    obj: vs({ hosts: ['a.com'], gateways: ['bad_gw'], http: [{ route: [{ destination: { host: 'r' } }] }] }),
    errors: ['spec.gateways[0]: domain name "bad_gw" invalid'],
  },
  {
    name: 'gateway name quirk: checking stops at the first name without /',
    obj: vs({
      hosts: ['a.com'],
      gateways: ['mesh', 'bad_ns/gw'],
      http: [{ route: [{ destination: { host: 'r' } }] }],
    }),
  },
  {
    name: 'match gateways are checked too',
    obj: match({ gateways: ['ns/bad_gw'] }, { gateways: ['ns/gw'], hosts: ['a.com'] }),
    errors: [`${M}.gateways[0]: invalid value for gateway name`],
  },
  {
    name: 'JWT claim routing on a mesh VS',
    obj: match({ headers: { '@request.auth.claims.group': { exact: 'admin' } } }),
    errors: [
      `${M}.headers["@request.auth.claims.group"]: JWT claim based routing (key: @request.auth.claims.group) is only supported for gateway`,
    ],
  },
  {
    name: 'JWT claim routing (bracket form) in withoutHeaders on a mesh VS',
    obj: match({ withoutHeaders: { '@request.auth.claims[group]': { exact: 'admin' } } }),
    errors: ['JWT claim based routing (key: @request.auth.claims[group])'],
  },
  {
    name: 'JWT claim routing on a gateway VS is fine',
    obj: match(
      { headers: { '@request.auth.claims.group': { exact: 'admin' } } },
      { hosts: ['a.com'], gateways: ['ns/gw'] },
    ),
  },
  {
    name: 'unreachable: rule after a rule without matches (warning)',
    obj: vs({
      hosts: ['r'],
      http: [
        { route: [{ destination: { host: 'r' } }] },
        { match: [{ uri: { exact: '/a' } }], route: [{ destination: { host: 'r' } }] },
      ],
    }),
    warnings: ['spec.http[1]: virtualService rule #1 not used (route without matches defined before)'],
  },
  {
    name: 'unreachable: two rules without matches (warning)',
    obj: vs({
      hosts: ['r'],
      http: [
        { route: [{ destination: { host: 'r' } }] },
        { name: 'b', route: [{ destination: { host: 'r' } }] },
      ],
    }),
    warnings: ['spec.http[1]: virtualService rule "b" not used (only the last rule can have no matches)'],
  },
  {
    name: 'unreachable: duplicate match (warning)',
    obj: vs({
      hosts: ['r'],
      http: [
        { match: [{ uri: { exact: '/a' } }], route: [{ destination: { host: 'r' } }] },
        { match: [{ name: 'n', uri: { exact: '/a' } }], route: [{ destination: { host: 'r' } }] },
      ],
    }),
    warnings: [
      'spec.http[1].match[0]: virtualService rule #1 match "n" is not used (duplicate/overlapping match in rule #0)',
      'spec.http[1]: virtualService rule #1 not used (all matches used by prior rules)',
    ],
  },
  {
    name: 'unreachable: a longer prefix after a shorter one with the same conditions (warning)',
    obj: vs({
      hosts: ['r'],
      http: [
        { name: 'a', match: [{ uri: { prefix: '/debug' } }], route: [{ destination: { host: 'r' } }] },
        { name: 'b', match: [{ uri: { prefix: '/debugs' } }], route: [{ destination: { host: 'r' } }] },
        {
          name: 'c',
          match: [{ uri: { prefix: '/debugz' }, headers: { x: { exact: '1' } } }],
          route: [{ destination: { host: 'r' } }],
        },
      ],
    }),
    warnings: [
      'spec.http[1].match[0]: virtualService rule "b" match #0 of prefix /debugs is not used (duplicate/overlapping match in rule #0 of prefix /debug on "a")',
    ],
  },
  {
    name: 'weft: rule behind a catch-all prefix / (warning)',
    obj: vs({
      hosts: ['r'],
      http: [
        { match: [{ uri: { prefix: '/' } }], route: [{ destination: { host: 'r' } }] },
        { match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'r' } }] },
      ],
    }),
    warnings: ['spec.http[1]: virtualService rule #1 not used (rule #0 before it matches every request)'],
  },
  {
    name: 'weft: prefix / with a header condition is not a catch-all',
    obj: vs({
      hosts: ['r'],
      http: [
        {
          match: [{ uri: { prefix: '/' }, headers: { x: { exact: '1' } } }],
          route: [{ destination: { host: 'r' } }],
        },
        { route: [{ destination: { host: 'r' } }] },
      ],
    }),
  },
];

const httpRoutes: Case[] = [
  {
    name: 'delegate route may not delegate',
    obj: vs({ http: [{ delegate: { name: 'x' }, route: [{ destination: { host: 'r' } }] }] }),
    errors: [`${R}.delegate: delegate HTTP route cannot contain delegate`],
  },
  {
    name: 'root route with redirect',
    obj: http({ delegate: { name: 'x' }, route: undefined, redirect: { uri: '/a' } }),
    errors: [`${R}.redirect: root HTTP route  must not specify redirect`],
  },
  {
    name: 'root route with route',
    obj: http({ name: 'root', delegate: { name: 'x' } }),
    errors: [`${R}.route: root HTTP route root must not specify route`],
  },
  {
    name: 'root route without route is fine',
    obj: http({ delegate: { name: 'x', namespace: 'y' }, route: undefined }),
  },
  {
    name: 'route and redirect',
    obj: http({ redirect: { uri: '/a' } }),
    errors: [`${R}: HTTP route cannot contain both route and redirect`],
  },
  {
    name: 'fault and redirect',
    obj: http({ route: undefined, redirect: { uri: '/a' }, fault: { abort: { httpStatus: 500 } } }),
    errors: [`${R}: HTTP route cannot contain both fault and redirect`],
  },
  {
    name: 'rewrite and redirect',
    obj: http({ route: undefined, redirect: { uri: '/a' }, rewrite: { uri: '/b' } }),
    errors: [`${R}: HTTP route rule cannot contain both rewrite and redirect`],
  },
  {
    name: 'directResponse and redirect',
    obj: http({ route: undefined, redirect: { uri: '/a' }, directResponse: { status: 200 } }),
    errors: [`${R}: HTTP route cannot contain both direct_response and redirect`],
  },
  {
    name: 'route and directResponse',
    obj: http({ directResponse: { status: 200 } }),
    errors: [`${R}: HTTP route cannot contain both route and direct_response`],
  },
  {
    name: 'fault and directResponse',
    obj: http({ route: undefined, directResponse: { status: 200 }, fault: { abort: { httpStatus: 500 } } }),
    errors: [`${R}: HTTP route cannot contain both fault and direct_response`],
  },
  {
    name: 'rewrite and directResponse',
    obj: http({ route: undefined, directResponse: { status: 200 }, rewrite: { uri: '/b' } }),
    errors: [`${R}: HTTP route rule cannot contain both rewrite and direct_response`],
  },
  {
    name: 'no action',
    obj: http({ route: [] }),
    errors: [`${R}.route: HTTP route, redirect or direct_response is required`],
  },
  {
    name: 'mirror and mirrors',
    obj: http({ mirror: { host: 'm' }, mirrors: [{ destination: { host: 'm' } }] }),
    errors: [`${R}: HTTP route cannot contain both mirror and mirrors`],
  },
  {
    name: 'match: invalid header name',
    obj: match({ headers: { 'bad header': { exact: 'x' } } }),
    errors: [`${M}.headers["bad header"]: header name "bad header" is not a valid header name`],
  },
  {
    name: 'match: pseudo-headers are valid names',
    obj: match({ headers: { ':path': { prefix: '/a' }, ':method': { exact: 'GET' } } }),
  },
  {
    name: 'match: unknown pseudo-header',
    obj: match({ headers: { ':foo': { exact: 'x' } } }),
    errors: [`${M}.headers[":foo"]: is not a valid header name`],
  },
  {
    name: 'match: null header value (schema)',
    obj: match({ headers: { x: null } }),
    errors: [`${M}.headers.x: must be an object`],
  },
  {
    name: 'match: empty header prefix',
    obj: match({ headers: { x: { prefix: '' } } }),
    errors: [`${M}.headers.x.prefix: "headers": prefix string match should not be empty`],
  },
  {
    name: 'match: empty method prefix',
    obj: match({ method: { prefix: '' } }),
    errors: [`${M}.method.prefix: "method": prefix string match should not be empty`],
  },
  {
    name: 'match: empty scheme prefix',
    obj: match({ scheme: { prefix: '' } }),
    errors: [`${M}.scheme.prefix: prefix string match should not be empty`],
  },
  {
    name: 'match: empty authority prefix',
    obj: match({ authority: { prefix: '' } }),
    errors: [`${M}.authority.prefix: prefix string match should not be empty`],
  },
  {
    name: 'match: empty query param prefix',
    obj: match({ queryParams: { q: { prefix: '' } } }),
    errors: [`${M}.queryParams.q.prefix: "queryParams": prefix string match should not be empty`],
  },
  { name: 'match: empty uri prefix is allowed', obj: match({ uri: { prefix: '' } }) },
  {
    name: 'match: empty uri regex',
    obj: match({ uri: { regex: '' } }),
    errors: [`${M}.uri.regex: "uri": regex string match should not be empty`],
  },
  {
    name: 'match: invalid authority regex',
    obj: match({ authority: { regex: '[' } }),
    errors: [`${M}.authority.regex: missing closing ]`],
  },
  {
    name: 'match: exact and prefix together (schema oneof)',
    obj: match({ uri: { exact: '/a', prefix: '/b' } }),
    errors: [`${M}.uri: only one of exact, prefix, regex may be set`],
  },
  {
    name: 'match: withoutHeaders regex "*" means present',
    obj: match({ withoutHeaders: { 'x-debug': { regex: '*' } } }),
  },
  {
    name: 'match: withoutHeaders bad regex',
    obj: match({ withoutHeaders: { 'x-debug': { regex: '(' } } }),
    errors: [`${M}.withoutHeaders.x-debug.regex: missing closing )`],
  },
  {
    name: 'match: sourceNamespace invalid',
    obj: match({ sourceNamespace: 'Bad_NS' }),
    errors: [`${M}.sourceNamespace: sourceNamespace match Bad_NS is invalid`],
  },
  { name: 'match: port 0 means any', obj: match({ port: 0 }) },
  {
    name: 'destination missing (schema)',
    obj: http({ route: [{ weight: 10 }] }),
    errors: [`${R}.route[0].destination: required`],
  },
  {
    name: 'destination host missing (schema)',
    obj: http({ route: [{ destination: {} }] }),
    errors: [`${R}.route[0].destination.host: required`],
  },
  {
    name: 'destination host *',
    obj: http({ route: [{ destination: { host: '*' } }] }),
    errors: [`${R}.route[0].destination.host: invalid destination host *`],
  },
  {
    name: 'destination host empty',
    obj: http({ route: [{ destination: { host: '' } }] }),
    errors: [`${R}.route[0].destination.host: empty domain name not allowed`],
  },
  {
    name: 'destination subset invalid',
    obj: http({ route: [{ destination: { host: 'r', subset: 'v_1' } }] }),
    errors: [`${R}.route[0].destination.subset: subset name is invalid: v_1`],
  },
  {
    name: 'destination port without number',
    obj: http({ route: [{ destination: { host: 'r', port: {} } }] }),
    errors: [`${R}.route[0].destination.port.number: port number 0 must be in the range`],
  },
  {
    name: 'destination port out of range',
    obj: http({ route: [{ destination: { host: 'r', port: { number: 65536 } } }] }),
    errors: [`${R}.route[0].destination.port.number: port number 65536`],
  },
  {
    name: 'negative weight',
    obj: http({
      route: [
        { destination: { host: 'a' }, weight: 110 },
        { destination: { host: 'b' }, weight: -10 },
      ],
    }),
    errors: [`${R}.route[1].weight: weight -10 < 0`],
  },
  {
    name: 'all weights 0 with several destinations',
    obj: http({ route: [{ destination: { host: 'a' }, weight: 0 }, { destination: { host: 'b' } }] }),
    errors: [`${R}.route: total destination weight = 0`],
  },
  {
    name: 'single destination with weight 0 is fine',
    obj: http({ route: [{ destination: { host: 'a' }, weight: 0 }] }),
  },
  {
    name: 'weights need not sum to 100',
    obj: http({
      route: [
        { destination: { host: 'a' }, weight: 30 },
        { destination: { host: 'b' }, weight: 30 },
      ],
    }),
  },
  {
    name: 'headers: request set of a pseudo-header',
    obj: http({ headers: { request: { set: { ':path': '/x' } } } }),
    errors: [`${R}.headers.request.set[":path"]: invalid header ":path": header cannot have ":" prefix`],
  },
  {
    name: 'headers: request set of :authority and add of Host are allowed (once)',
    obj: http({ headers: { request: { set: { ':authority': 'a.com' } } } }),
  },
  {
    name: 'headers: request add empty name',
    obj: http({ headers: { request: { add: { '': 'x' } } } }),
    errors: [`${R}.headers.request.add[""]: header name cannot be empty`],
  },
  {
    name: 'headers: request remove Host',
    obj: http({ headers: { request: { remove: ['Host'] } } }),
    errors: [`${R}.headers.request.remove[0]: invalid header "Host": cannot set Host header`],
  },
  {
    name: 'headers: response set Host',
    obj: http({ headers: { response: { set: { host: 'x' } } } }),
    errors: [`${R}.headers.response.set.host: cannot set Host header`],
  },
  {
    name: 'headers: response add pseudo-header',
    obj: http({ headers: { response: { add: { ':status': '200' } } } }),
    errors: [`${R}.headers.response.add[":status"]: header cannot have ":" prefix`],
  },
  {
    name: 'headers: response remove pseudo-header',
    obj: http({ headers: { response: { remove: [':status'] } } }),
    errors: [`${R}.headers.response.remove[0]: header cannot have ":" prefix`],
  },
  {
    name: 'headers: per-destination headers are checked',
    obj: http({ route: [{ destination: { host: 'r' }, headers: { response: { set: { Host: 'x' } } } }] }),
    errors: [`${R}.route[0].headers.response.set.Host: cannot set Host header`],
  },
  // Istio accepts a set/add of a connection or framing field; weft's proxy ignores it (it would
  // desync or break the hop), so the webhook says so: a warning, never an error
  {
    name: 'headers: request set transfer-encoding is accepted with a warning',
    obj: http({ headers: { request: { set: { 'Transfer-Encoding': 'chunked' } } } }),
    warnings: [`${R}.headers.request.set.Transfer-Encoding: weft ignores this operation`],
  },
  {
    name: 'headers: response add content-length is accepted with a warning',
    obj: http({ headers: { response: { add: { 'content-length': '5' } } } }),
    warnings: [
      `${R}.headers.response.add.content-length: header "content-length" is written by the proxy itself`,
    ],
  },
  {
    name: 'headers: per-destination response set keep-alive is accepted with a warning',
    obj: http({
      route: [{ destination: { host: 'r' }, headers: { response: { set: { 'keep-alive': 'x' } } } }],
    }),
    warnings: [`${R}.route[0].headers.response.set.keep-alive: weft ignores this operation`],
  },
  {
    name: 'headers: removing connection is fine',
    obj: http({ headers: { response: { remove: ['connection'] } } }),
  },
  {
    name: 'header value: control character',
    obj: http({ headers: { request: { set: { x: 'a\u0001b' } } } }),
    errors: [`${R}.headers.request.set.x: header value configuration: invalid character 0x01`],
  },
  { name: 'header value: tab is allowed', obj: http({ headers: { request: { set: { x: 'a\tb' } } } }) },
  {
    name: 'header value: lone %',
    obj: http({ headers: { request: { set: { x: '100%' } } } }),
    errors: [`${R}.headers.request.set.x: Un-escaped %`],
  },
  {
    name: 'header value: unterminated %VAR',
    obj: http({ headers: { response: { add: { x: '%START_TIME' } } } }),
    errors: [`${R}.headers.response.add.x: Un-terminated variable expression`],
  },
  {
    name: 'header value: %%, %VAR% and %VAR(args)% are valid',
    obj: http({
      headers: {
        request: {
          set: { a: '100%%', b: '%DOWNSTREAM_REMOTE_ADDRESS%', c: '%REQ(x-foo)%', d: '%START_TIME(%s)%' },
        },
      },
    }),
  },
  {
    name: 'authority twice: rewrite.authority and Host header',
    obj: http({ rewrite: { authority: 'a.com' }, headers: { request: { set: { host: 'b.com' } } } }),
    errors: [
      `${R}.headers.request.set.host: authority header cannot be set multiple times: have "a.com", attempting to set "b.com"`,
    ],
  },
  {
    name: 'authority twice: :authority set and Host add',
    obj: http({ headers: { request: { set: { ':authority': 'a.com' }, add: { Host: 'b.com' } } } }),
    errors: [`${R}.headers.request.add.Host: authority header cannot be set multiple times`],
  },
  {
    name: 'rewrite: uri and uriRegexRewrite',
    obj: http({ rewrite: { uri: '/a', uriRegexRewrite: { match: 'a', rewrite: 'b' } } }),
    errors: [`${R}.rewrite: rewrite may only contain one of URI or UriRegexRewrite`],
  },
  {
    name: 'rewrite: empty',
    obj: http({ rewrite: {} }),
    errors: [`${R}.rewrite: rewrite must specify at least one of URI, UriRegexRewrite, or authority`],
  },
  {
    name: 'rewrite: uriRegexRewrite without rewrite',
    obj: http({ rewrite: { uriRegexRewrite: { match: '^/a' } } }),
    errors: [`${R}.rewrite.uriRegexRewrite: UriRegexRewrite requires both Rewrite and Match fields`],
  },
  {
    name: 'rewrite: uriRegexRewrite match not RE2',
    obj: http({ rewrite: { uriRegexRewrite: { match: '(?<=a)b', rewrite: '/x' } } }),
    errors: [`${R}.rewrite.uriRegexRewrite.match: error parsing regexp: invalid named capture`],
  },
  { name: 'rewrite: authority alone is enough', obj: http({ rewrite: { authority: 'a.com' } }) },
  {
    name: 'redirect: uri and prefixRewrite',
    obj: http({ route: undefined, redirect: { uri: '/a', prefixRewrite: '/b' } }),
    errors: [`${R}.redirect: redirect may only specify one of uri or prefix_rewrite`],
  },
  {
    name: 'redirect: prefixRewrite needs prefix matches',
    obj: http({ route: undefined, match: [{ uri: { exact: '/a' } }], redirect: { prefixRewrite: '/b' } }),
    errors: [
      `${R}.redirect.prefixRewrite: prefix_rewrite requires every uri match to be a prefix match (match[0].uri is not)`,
    ],
  },
  {
    name: 'redirect: prefixRewrite with prefix match is fine',
    obj: http({ route: undefined, match: [{ uri: { prefix: '/a' } }], redirect: { prefixRewrite: '/b' } }),
  },
  {
    // Istio (TestValidateHTTPRoute): a match without uri matches every path, as prefix `/` does.
    name: 'redirect: prefixRewrite with a match that has no uri is fine',
    obj: http({
      route: undefined,
      match: [{ headers: { 'x-foo': { exact: 'bar' } } }],
      redirect: { prefixRewrite: '/b' },
    }),
  },
  {
    name: 'redirect: prefixRewrite holds only the matches that have a uri',
    obj: http({
      route: undefined,
      match: [{ headers: { 'x-foo': { exact: 'bar' } } }, { uri: { regex: '/a.*' } }],
      redirect: { prefixRewrite: '/b' },
    }),
    errors: [`${R}.redirect.prefixRewrite: (match[1].uri is not)`],
  },
  {
    name: 'redirect: prefixRewrite with a null match (match-all) is fine',
    obj: http({ route: undefined, match: [null], redirect: { prefixRewrite: '/b' } }),
  },
  {
    // Istio skips a nil match element; routing reads it as a match with no conditions.
    name: 'match: a null element is a match-all, not a schema error',
    obj: http({ match: [null] }),
  },
  {
    name: 'match: the other elements beside a null one are still checked',
    obj: http({ match: [null, { headers: { x: { prefix: '' } } }] }),
    errors: [`${R}.match[1].headers.x.prefix: prefix string match should not be empty`],
  },
  {
    name: 'match: a null element makes later rules unreachable (it matches every request)',
    obj: vs({
      hosts: ['reviews'],
      http: [
        { match: [null], route: [{ destination: { host: 'reviews' } }] },
        { match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'reviews' } }] },
      ],
    }),
    warnings: ['spec.http[1]: not used'],
  },
  {
    name: 'http: a null route element is refused (Istio: http route may not be null)',
    obj: vs({ hosts: ['reviews'], http: [null] }),
    errors: ['spec.http[0]: must be an object'],
  },
  {
    name: 'mirrors: a null element is refused (Istio: mirror cannot be null)',
    obj: http({ mirrors: [null] }),
    errors: [`${R}.mirrors[0]: must be an object`],
  },
  {
    name: 'match: a null header match value is still refused',
    obj: http({ match: [{ headers: { x: null } }] }),
    errors: [`${R}.match[0].headers.x: must be an object`],
  },
  {
    name: 'redirect: empty',
    obj: http({ route: undefined, redirect: {} }),
    errors: [`${R}.redirect: redirect must specify URI, authority, scheme, or port`],
  },
  {
    name: 'redirect: code 200',
    obj: http({ route: undefined, redirect: { uri: '/a', redirectCode: 200 } }),
    errors: [`${R}.redirect.redirectCode: 200 is not a valid redirect code, must be 3xx`],
  },
  {
    name: 'redirect: scheme ftp',
    obj: http({ route: undefined, redirect: { scheme: 'ftp' } }),
    errors: [`${R}.redirect.scheme: redirect scheme must be http or https`],
  },
  {
    name: 'redirect: port out of range',
    obj: http({ route: undefined, redirect: { port: 70000 } }),
    errors: [`${R}.redirect.port: port number 70000`],
  },
  {
    name: 'redirect: only the first problem is reported',
    obj: http({ route: undefined, redirect: { uri: '/a', redirectCode: 200, scheme: 'ftp' } }),
    errors: [`${R}.redirect.redirectCode: 200 is not a valid redirect code`],
  },
  {
    name: 'redirect: derivePort alone is enough',
    obj: http({ route: undefined, redirect: { derivePort: 'FROM_REQUEST_PORT' } }),
  },
  {
    name: 'redirect: port and derivePort together (schema oneof)',
    obj: http({ route: undefined, redirect: { port: 8080, derivePort: 'FROM_REQUEST_PORT' } }),
    errors: [`${R}.redirect: only one of port, derivePort may be set`],
  },
  {
    name: 'directResponse: status 199',
    obj: http({ route: undefined, directResponse: { status: 199 } }),
    errors: [`${R}.directResponse.status: HTTP status 199 is not in range 200-599`],
  },
  {
    name: 'directResponse: status 0',
    obj: http({ route: undefined, directResponse: { status: 0 } }),
    errors: [`${R}.directResponse.status: HTTP status 0`],
  },
  {
    name: 'directResponse: status 601',
    obj: http({ route: undefined, directResponse: { status: 601 } }),
    errors: [`${R}.directResponse.status: HTTP status 601`],
  },
  {
    name: 'directResponse: status 600 passes (Istio quirk)',
    obj: http({ route: undefined, directResponse: { status: 600 } }),
  },
  {
    name: 'directResponse: body over 1 MiB',
    obj: http({
      route: undefined,
      directResponse: { status: 200, body: { string: 'x'.repeat(1024 * 1024 + 1) } },
    }),
    errors: [`${R}.directResponse.body: must be less than 1MB`],
  },
  {
    name: 'directResponse: base64 body over 1 MiB',
    obj: http({
      route: undefined,
      directResponse: { status: 200, body: { bytes: Buffer.alloc(1024 * 1024 + 3).toString('base64') } },
    }),
    errors: [`${R}.directResponse.body: must be less than 1MB`],
  },
  {
    name: 'directResponse: body over 100 KiB warns',
    obj: http({
      route: undefined,
      directResponse: { status: 200, body: { string: 'x'.repeat(200 * 1024) } },
    }),
    warnings: [`${R}.directResponse.body: use with caution`],
  },
  {
    name: 'fault: empty',
    obj: http({ fault: {} }),
    errors: [`${R}.fault: HTTP fault injection must have an abort and/or a delay`],
  },
  {
    name: 'fault: percentage too small',
    obj: http({ fault: { abort: { httpStatus: 503, percentage: { value: 0.00001 } } } }),
    errors: [
      `${R}.fault.abort.percentage.value: percentage 0.00001 is neither 0.0, nor in range [0.0001, 100.0]`,
    ],
  },
  {
    name: 'fault: percentage over 100',
    obj: http({ fault: { delay: { fixedDelay: '1s', percentage: { value: 101 } } } }),
    errors: [`${R}.fault.delay.percentage.value: percentage 101 is neither`],
  },
  {
    name: 'fault: percentage 0 and 100 are fine',
    obj: http({
      fault: {
        abort: { httpStatus: 503, percentage: { value: 0 } },
        delay: { fixedDelay: '1s', percentage: { value: 100 } },
      },
    }),
  },
  {
    name: 'fault: abort httpStatus 700',
    obj: http({ fault: { abort: { httpStatus: 700 } } }),
    errors: [`${R}.fault.abort.httpStatus: HTTP status 700 is not in range`],
  },
  {
    name: 'fault: abort grpcStatus unknown',
    obj: http({ fault: { abort: { grpcStatus: 'NOPE' } } }),
    errors: [`${R}.fault.abort.grpcStatus: "NOPE" is not a valid gRPC code`],
  },
  {
    name: 'fault: abort grpcStatus UNAVAILABLE is fine',
    obj: http({ fault: { abort: { grpcStatus: 'UNAVAILABLE' } } }),
  },
  {
    name: 'fault: abort http2Error',
    obj: http({ fault: { abort: { http2Error: 'x' } } }),
    errors: [`${R}.fault.abort.http2Error: HTTP/2 abort fault injection not supported yet`],
  },
  {
    name: 'fault: abort without error type warns',
    obj: http({ fault: { abort: { percentage: { value: 10 } } } }),
    warnings: [`${R}.fault.abort: abort configured, but error type not set`],
  },
  {
    name: 'fault: fixedDelay 0s',
    obj: http({ fault: { delay: { fixedDelay: '0s' } } }),
    errors: [`${R}.fault.delay.fixedDelay: duration must be greater than 1ms`],
  },
  {
    name: 'fault: exponentialDelay',
    obj: http({ fault: { delay: { exponentialDelay: '1s' } } }),
    errors: [`${R}.fault.delay.exponentialDelay: exponentialDelay not supported yet`],
  },
  {
    name: 'fault: delay with neither is not an error',
    obj: http({ fault: { delay: { percentage: { value: 5 } } } }),
  },
  {
    name: 'mirrorPercentage over 100',
    obj: http({ mirror: { host: 'm' }, mirrorPercentage: { value: 101 } }),
    errors: [`${R}.mirrorPercentage.value: mirror_percentage must have a max value of 100`],
  },
  {
    name: 'mirrorPercentage negative',
    obj: http({ mirror: { host: 'm' }, mirrorPercentage: { value: -1 } }),
    errors: [`${R}.mirrorPercentage.value: mirror_percentage must have a min value of 0`],
  },
  {
    name: 'mirrorPercent over 100 (deprecated)',
    obj: http({ mirror: { host: 'm' }, mirrorPercent: 150 }),
    errors: [`${R}.mirrorPercent: mirror_percent must have a max value of 100 (it has 150)`],
    warnings: [`${R}.mirrorPercent: using deprecated setting "mirrorPercent"`],
  },
  {
    name: 'mirrorPercent always warns',
    obj: http({ mirror: { host: 'm' }, mirrorPercent: 50 }),
    warnings: ['using deprecated setting "mirrorPercent"'],
  },
  {
    name: 'mirror destination *',
    obj: http({ mirror: { host: '*' } }),
    errors: [`${R}.mirror.host: invalid destination host *`],
  },
  {
    name: 'mirrors: missing destination (schema)',
    obj: http({ mirrors: [{ percentage: { value: 5 } }] }),
    errors: [`${R}.mirrors[0].destination: required`],
  },
  {
    name: 'mirrors: percentage over 100',
    obj: http({ mirrors: [{ destination: { host: 'm' }, percentage: { value: 120 } }] }),
    errors: [`${R}.mirrors[0].percentage.value: mirror_percentage must have a max value of 100`],
  },
  {
    name: 'mirrors: destination checked',
    obj: http({ mirrors: [{ destination: { host: 'm', subset: 'a.b' } }] }),
    errors: [`${R}.mirrors[0].destination.subset: subset name is invalid: a.b`],
  },
  {
    name: 'retries: negative attempts',
    obj: http({ retries: { attempts: -1 } }),
    errors: [`${R}.retries.attempts: attempts cannot be negative`],
  },
  {
    name: 'retries: attempts 0 with perTryTimeout',
    obj: http({ retries: { attempts: 0, perTryTimeout: '1s' } }),
    errors: [`${R}.retries: http retry policy configured when attempts are set to 0 (disabled)`],
  },
  {
    name: 'retries: no attempts but retryOn',
    obj: http({ retries: { retryOn: '5xx' } }),
    errors: [`${R}.retries: http retry policy configured when attempts are set to 0`],
  },
  {
    name: 'retries: no attempts but retryRemoteLocalities',
    obj: http({ retries: { retryRemoteLocalities: false } }),
    errors: [`${R}.retries: http retry policy configured when attempts are set to 0`],
  },
  { name: 'retries: attempts 0 alone disables retries', obj: http({ retries: { attempts: 0 } }) },
  {
    name: 'retries: perTryTimeout under 1ms',
    obj: http({ retries: { attempts: 2, perTryTimeout: '100us' } }),
    errors: [`${R}.retries.perTryTimeout: duration must be greater than 1ms`],
  },
  {
    name: 'retries: backoff 0s',
    obj: http({ retries: { attempts: 2, backoff: '0s' } }),
    errors: [`${R}.retries.backoff: duration must be greater than 1ms`],
  },
  {
    name: 'retries: unknown retryOn policy',
    obj: http({ retries: { attempts: 2, retryOn: '5xx,bogus' } }),
    errors: [`${R}.retries.retryOn: "bogus" is not a valid retryOn policy`],
  },
  {
    name: 'retries: retryOn is not trimmed',
    obj: http({ retries: { attempts: 2, retryOn: '5xx, reset' } }),
    errors: [`${R}.retries.retryOn: " reset" is not a valid retryOn policy`],
  },
  {
    name: 'retries: unknown status code',
    obj: http({ retries: { attempts: 2, retryOn: '599' } }),
    errors: [`${R}.retries.retryOn: "599" is not a valid retryOn policy`],
  },
  {
    name: 'retries: policies and status codes',
    obj: http({
      retries: {
        attempts: 2,
        retryOn: 'gateway-error,connect-failure,refused-stream,503,retriable-status-codes,unavailable',
      },
    }),
  },
  {
    name: 'timeout 0s',
    obj: http({ timeout: '0s' }),
    errors: [`${R}.timeout: duration must be greater than 1ms`],
  },
  {
    name: 'weft: retries cannot fit in the timeout (warning)',
    obj: http({ timeout: '5s', retries: { attempts: 3, perTryTimeout: '2s' } }),
    warnings: [
      `${R}.retries: retries cannot complete within the route timeout: 3 attempts × 2s perTryTimeout exceeds timeout 5s`,
    ],
  },
  {
    name: 'cors: empty origin match',
    obj: http({ corsPolicy: { allowOrigins: [{}] } }),
    errors: [`${R}.corsPolicy.allowOrigins[0]: '' is not a valid match type for CORS allow origins`],
  },
  {
    name: 'cors: empty exact origin',
    obj: http({ corsPolicy: { allowOrigins: [{ exact: '' }] } }),
    errors: [`${R}.corsPolicy.allowOrigins[0]: '' is not a valid match type`],
  },
  {
    name: 'cors: origin regex not RE2',
    obj: http({ corsPolicy: { allowOrigins: [{ regex: '(?=x)' }] } }),
    errors: [`${R}.corsPolicy.allowOrigins[0].regex: invalid or unsupported Perl syntax`],
  },
  {
    name: 'cors: unsupported method',
    obj: http({ corsPolicy: { allowMethods: ['GET', 'FETCH'] } }),
    errors: [`${R}.corsPolicy.allowMethods[1]: "FETCH" is not a supported HTTP method`],
  },
  {
    name: 'cors: empty allowHeaders entry',
    obj: http({ corsPolicy: { allowHeaders: [''] } }),
    errors: [`${R}.corsPolicy.allowHeaders[0]: "" is not a valid header name`],
  },
  {
    name: 'cors: bad exposeHeaders entry',
    obj: http({ corsPolicy: { exposeHeaders: ['x y'] } }),
    errors: [`${R}.corsPolicy.exposeHeaders[0]: "x y" is not a valid header name`],
  },
  {
    name: 'cors: maxAge 0s',
    obj: http({ corsPolicy: { maxAge: '0s' } }),
    errors: [`${R}.corsPolicy.maxAge: duration must be greater than 1ms`],
  },
  {
    name: 'cors: maxAge not whole seconds',
    obj: http({ corsPolicy: { maxAge: '1500ms' } }),
    errors: [`${R}.corsPolicy.maxAge: max_age duration is accurate only to seconds precision`],
  },
  {
    name: 'cors: full valid policy',
    obj: http({
      corsPolicy: {
        allowOrigins: [{ exact: 'https://a.com' }, { regex: 'https://.*\\.b\\.com' }],
        allowMethods: ['GET', 'POST', '*'],
        allowHeaders: ['*', 'x-custom'],
        exposeHeaders: ['x-id'],
        maxAge: '24h',
        allowCredentials: true,
      },
    }),
  },
];

const TLS = 'spec.tls[0]';
function tls(route: Obj, hosts: string[] = ['a.com']): Obj {
  return vs({ hosts, gateways: ['ns/gw'], tls: [route] });
}
const tlsRoute = (m: Obj): Obj => ({
  match: [{ sniHosts: ['a.com'], ...m }],
  route: [{ destination: { host: 'a' } }],
});

const l4Routes: Case[] = [
  {
    name: 'tls: empty match list',
    obj: tls({ match: [], route: [{ destination: { host: 'a' } }] }),
    errors: [`${TLS}.match: TLS route must have at least one match condition`],
  },
  {
    name: 'tls: match missing (schema)',
    obj: tls({ route: [{ destination: { host: 'a' } }] }),
    errors: [`${TLS}.match: required`],
  },
  {
    name: 'tls: sniHosts empty',
    obj: tls({ match: [{ sniHosts: [] }], route: [{ destination: { host: 'a' } }] }),
    errors: [`${TLS}.match[0].sniHosts: TLS match must have at least one SNI host`],
  },
  {
    name: 'tls: SNI host not within VS hosts',
    obj: tls(tlsRoute({ sniHosts: ['b.com'] })),
    errors: [
      `${TLS}.match[0].sniHosts[0]: SNI host "b.com" is not a compatible subset of any of the virtual service hosts: [a.com]`,
    ],
  },
  {
    name: 'tls: SNI host under a wildcard VS host',
    obj: tls(tlsRoute({ sniHosts: ['x.a.com'] }), ['*.a.com']),
  },
  {
    name: 'tls: invalid SNI host',
    obj: tls(tlsRoute({ sniHosts: ['a_b.com'] }), ['*']),
    errors: [`${TLS}.match[0].sniHosts[0]: label "a_b" invalid`],
  },
  {
    name: 'tls: IP SNI host only warns',
    obj: tls(tlsRoute({ sniHosts: ['10.0.0.1'] }), ['10.0.0.1']),
    warnings: [`${TLS}.match[0].sniHosts[0]: using an IP address ("10.0.0.1") goes against SNI spec`],
  },
  {
    // Istio (TestValidateVirtualService "ip address as sni host"): warns and returns, so an IP is
    // not held to the VirtualService hosts.
    name: 'tls: IP SNI host outside the VS hosts only warns',
    obj: tls(tlsRoute({ sniHosts: ['1.1.1.1'] })),
    warnings: [`${TLS}.match[0].sniHosts[0]: using an IP address ("1.1.1.1") goes against SNI spec`],
  },
  {
    name: 'tls: IPv6 SNI host only warns',
    obj: tls(tlsRoute({ sniHosts: ['2001:db8::1'] })),
    warnings: [`${TLS}.match[0].sniHosts[0]: using an IP address ("2001:db8::1")`],
  },
  {
    name: 'tls: null match element (schema; Istio: TLS match may not be null)',
    obj: tls({ match: [null], route: [{ destination: { host: 'a' } }] }),
    errors: [`${TLS}.match[0]: must be an object`],
  },
  {
    name: 'tls: mesh VS without gateways is checked too',
    obj: vs({ hosts: ['a.com'], tls: [tlsRoute({ sniHosts: ['b.com'] })] }),
    errors: ['not a compatible subset'],
  },
  {
    name: 'tls: bad destinationSubnets CIDR',
    obj: tls(tlsRoute({ destinationSubnets: ['10.0.0.0/33'] })),
    errors: [`${TLS}.match[0].destinationSubnets[0]: 10.0.0.0/33 is not a valid CIDR block`],
  },
  {
    name: 'tls: bad destinationSubnets IP',
    obj: tls(tlsRoute({ destinationSubnets: ['10.0.0.300'] })),
    errors: [`${TLS}.match[0].destinationSubnets[0]: 10.0.0.300 is not a valid IP`],
  },
  {
    name: 'tls: subnets IP, CIDR, IPv6 are fine',
    obj: tls(tlsRoute({ destinationSubnets: ['10.0.0.1', '10.0.0.0/8', 'fd00::/64'] })),
  },
  {
    name: 'tls: match port out of range',
    obj: tls(tlsRoute({ port: 99999 })),
    errors: [`${TLS}.match[0].port: port number 99999`],
  },
  {
    name: 'tls: sourceLabels checked',
    obj: tls(tlsRoute({ sourceLabels: { '-bad': 'x' } })),
    errors: [`${TLS}.match[0].sourceLabels: invalid tag key: "-bad"`],
  },
  {
    name: 'tls: gateways checked',
    obj: tls(tlsRoute({ gateways: ['ns/Bad_Gw'] })),
    errors: [`${TLS}.match[0].gateways[0]: invalid value for gateway name`],
  },
  {
    name: 'tls: route required',
    obj: tls({ match: [{ sniHosts: ['a.com'] }] }),
    errors: [`${TLS}.route: TLS route is required`],
  },
  {
    name: 'tls: route destinations checked',
    obj: tls({ match: [{ sniHosts: ['a.com'] }], route: [{ destination: { host: 'a' }, weight: -1 }] }),
    errors: [`${TLS}.route[0].weight: weight -1 < 0`],
  },
  {
    name: 'tcp: route required',
    obj: vs({ hosts: ['a.com'], tcp: [{ match: [{ port: 27017 }] }] }),
    errors: ['spec.tcp[0].route: TCP route is required'],
  },
  {
    name: 'tcp: destinationSubnets checked',
    obj: vs({
      hosts: ['a.com'],
      tcp: [{ match: [{ destinationSubnets: ['bogus'] }], route: [{ destination: { host: 'a' } }] }],
    }),
    errors: ['spec.tcp[0].match[0].destinationSubnets[0]: bogus is not a valid IP'],
  },
  {
    name: 'tcp: null match (schema)',
    obj: vs({ hosts: ['a.com'], tcp: [{ match: [null], route: [{ destination: { host: 'a' } }] }] }),
    errors: ['spec.tcp[0].match[0]: must be an object'],
  },
  {
    name: 'tcp: zero total weight',
    obj: vs({
      hosts: ['a.com'],
      tcp: [
        {
          route: [
            { destination: { host: 'a' }, weight: 0 },
            { destination: { host: 'b' }, weight: 0 },
          ],
        },
      ],
    }),
    errors: ['spec.tcp[0].route: total destination weight = 0'],
  },
  {
    name: 'tcp: destination host *',
    obj: vs({ hosts: ['a.com'], tcp: [{ route: [{ destination: { host: '*' } }] }] }),
    errors: ['spec.tcp[0].route[0].destination.host: invalid destination host *'],
  },
];

const drCases: Case[] = [
  {
    name: 'dr: host missing (schema)',
    obj: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'x' }, spec: {} },
    errors: ['spec.host: required'],
  },
  { name: 'dr: host empty', obj: dr({ host: '' }), errors: ['spec.host: empty domain name not allowed'] },
  { name: 'dr: host * is fine', obj: dr({ host: '*' }) },
  {
    name: 'dr: host IP is rejected (unlike VS hosts)',
    obj: dr({ host: '10.0.0.1' }),
    errors: ['spec.host: top level domain "1" cannot be all-numeric'],
  },
  {
    name: 'dr: subset name empty',
    obj: dr({ subsets: [{ name: '' }] }),
    errors: ['spec.subsets[0].name: subset name cannot be empty'],
  },
  {
    name: 'dr: subset name invalid',
    obj: dr({ subsets: [{ name: 'v1.0' }] }),
    errors: ['spec.subsets[0].name: subset name is invalid: v1.0'],
  },
  {
    name: 'dr: duplicate subset names',
    obj: dr({ subsets: [{ name: 'v1' }, { name: 'v1' }] }),
    errors: ['spec.subsets[1].name: duplicate subset names: v1'],
  },
  {
    name: 'dr: subset labels checked',
    obj: dr({ subsets: [{ name: 'v1', labels: { version: 'v 1' } }] }),
    errors: ['spec.subsets[0].labels: invalid tag value: "v 1"'],
  },
  {
    name: 'dr: subset traffic policy checked',
    obj: dr({ subsets: [{ name: 'v1', trafficPolicy: {} }] }),
    errors: ['spec.subsets[0].trafficPolicy: traffic policy must have at least one field'],
  },
  {
    name: 'dr: null subset (schema)',
    obj: dr({ subsets: [null] }),
    errors: ['spec.subsets[0]: must be an object'],
  },
  {
    name: 'dr: exportTo checked',
    obj: dr({ exportTo: ['*', '.'] }),
    errors: ['spec.exportTo: cannot have both public (*) and non-public'],
  },
  {
    name: 'dr: workloadSelector with two exportTo entries',
    obj: dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['.', 'other'] }),
    errors: [
      'spec.exportTo: destination rule with workload selector cannot have multiple entries in exportTo',
    ],
  },
  {
    name: 'dr: workloadSelector exported elsewhere',
    obj: dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['other'] }),
    errors: [
      'spec.exportTo: destination rule with workload selector cannot have exportTo beyond current namespace',
    ],
  },
  {
    name: 'dr: workloadSelector exported to own namespace by name',
    obj: dr({ workloadSelector: { matchLabels: { app: 'a' } }, exportTo: [NS] }),
  },
  {
    name: 'dr: workloadSelector empty key',
    obj: dr({ workloadSelector: { matchLabels: { '': 'a' } } }),
    errors: ['spec.workloadSelector.matchLabels: empty key is not supported in selector'],
  },
  {
    name: 'dr: workloadSelector wildcard',
    obj: dr({ workloadSelector: { matchLabels: { app: '*' } } }),
    errors: ['spec.workloadSelector.matchLabels.app: wildcard is not supported in selector'],
  },
  {
    name: 'dr: workloadSelector without labels warns',
    obj: dr({ workloadSelector: {} }),
    warnings: ['spec.workloadSelector.matchLabels: workload selector specified without labels'],
  },
  {
    name: 'tp: empty traffic policy',
    obj: tp({}),
    errors: [`${TP}: traffic policy must have at least one field`],
  },
  { name: 'tp: retryBudget alone counts as a field', obj: tp({ retryBudget: { percent: 20 } }) },
  {
    name: 'tp: tunnel with proxyProtocol',
    obj: tp({ tunnel: { targetHost: 'a.com', targetPort: 443 }, proxyProtocol: { version: 'V1' } }),
    errors: [`${TP}: tunnel and proxyProtocol must not be set together`],
  },
  {
    name: 'tp: port-level setting without port',
    obj: tp({ portLevelSettings: [{ tls: { mode: 'ISTIO_MUTUAL' } }] }),
    errors: [`${TP}.portLevelSettings[0].port: portTrafficPolicy must have valid port`],
  },
  {
    name: 'tp: port-level setting with only a port',
    obj: tp({ portLevelSettings: [{ port: { number: 80 } }] }),
    errors: [`${TP}.portLevelSettings[0]: port traffic policy must have at least one field`],
  },
  {
    name: 'tp: port-level setting contents checked',
    obj: tp({ portLevelSettings: [{ port: { number: 80 }, connectionPool: {} }] }),
    errors: [`${TP}.portLevelSettings[0].connectionPool: connection pool must have at least one field`],
  },
  {
    name: 'tp: null port-level setting (schema)',
    obj: tp({ portLevelSettings: [null] }),
    errors: [`${TP}.portLevelSettings[0]: must be an object`],
  },
  {
    name: 'lb: httpCookie without name',
    obj: tp({ loadBalancer: { consistentHash: { httpCookie: { name: '', ttl: '10s' } } } }),
    errors: [`${LB}.consistentHash.httpCookie.name: name required for HttpCookie`],
  },
  {
    name: 'lb: cookie attribute without name',
    obj: tp({ loadBalancer: { consistentHash: { httpCookie: { name: 'c', attributes: [{ name: '' }] } } } }),
    errors: [`${LB}.consistentHash.httpCookie.attributes[0].name: cookie attribute name cannot be empty`],
  },
  {
    name: 'lb: duplicate cookie attribute',
    obj: tp({
      loadBalancer: {
        consistentHash: {
          httpCookie: { name: 'c', attributes: [{ name: 'SameSite', value: 'Lax' }, { name: 'SameSite' }] },
        },
      },
    }),
    errors: [`${LB}.consistentHash.httpCookie.attributes[1].name: duplicate cookie attribute name: SameSite`],
  },
  {
    name: 'lb: minimumRingSize warns',
    obj: tp({ loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 1024 } } }),
    warnings: [`${LB}.consistentHash.minimumRingSize: consistent hash MinimumRingSize is deprecated`],
  },
  {
    name: 'lb: minimumRingSize with ringHash',
    obj: tp({
      loadBalancer: {
        consistentHash: { useSourceIp: true, minimumRingSize: 1024, ringHash: { minimumRingSize: 1024 } },
      },
    }),
    errors: [`${LB}.consistentHash: only one of MinimumRingSize or Maglev/Ringhash can be specified`],
  },
  {
    name: 'lb: maglev without tableSize',
    obj: tp({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: {} } } }),
    errors: [`${LB}.consistentHash.maglev.tableSize: tableSize must be set for maglev`],
  },
  {
    name: 'lb: maglev tableSize too big',
    obj: tp({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 5000011 } } } }),
    errors: [`${LB}.consistentHash.maglev.tableSize: tableSize must be less than 5000011`],
  },
  {
    name: 'lb: maglev tableSize not prime',
    obj: tp({ loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } } }),
    errors: [`${LB}.consistentHash.maglev.tableSize: tableSize must be a prime number`],
  },
  {
    name: 'lb: maglev tableSize 65537 is fine',
    obj: tp({ loadBalancer: { consistentHash: { httpHeaderName: 'x-user', maglev: { tableSize: 65537 } } } }),
  },
  {
    name: 'lb: simple and consistentHash (schema oneof)',
    obj: tp({ loadBalancer: { simple: 'ROUND_ROBIN', consistentHash: { useSourceIp: true } } }),
    errors: [`${LB}: only one of simple, consistentHash, backendUtilization may be set`],
  },
  {
    name: 'lb: localityLbSetting and zoneAwareLbSetting',
    obj: tp({
      loadBalancer: { localityLbSetting: { enabled: true }, zoneAwareLbSetting: { enabled: true } },
    }),
    errors: [`${LB}: localityLbSetting and zoneAwareLbSetting cannot both be set`],
  },
  {
    name: 'lb: warmup duration 0s',
    obj: tp({ loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '0s' } } }),
    errors: [`${LB}.warmup.duration: duration must be greater than 1ms`],
  },
  {
    name: 'lb: warmup duration missing (schema)',
    obj: tp({ loadBalancer: { warmup: { minimumPercent: 10 } } }),
    errors: [`${LB}.warmup.duration: required`],
  },
  {
    name: 'lb: warmup minimumPercent over 100 (schema)',
    obj: tp({ loadBalancer: { warmup: { duration: '10s', minimumPercent: 150 } } }),
    errors: [`${LB}.warmup.minimumPercent: must be <= 100`],
  },
  {
    name: 'lb: warmup aggression 0',
    obj: tp({ loadBalancer: { warmup: { duration: '10s', aggression: 0 } } }),
    errors: [`${LB}.warmup.aggression: aggression should be greater than 0`],
  },
  {
    name: 'lb: warmup aggression negative (schema)',
    obj: tp({ loadBalancer: { warmup: { duration: '10s', aggression: -0.1 } } }),
    errors: [`${LB}.warmup.aggression: must be >= 0`],
  },
  {
    name: 'locality: distribute and failover',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: {
        localityLbSetting: {
          distribute: [{ from: 'a/*', to: { 'a/*': 100 } }],
          failover: [{ from: 'a', to: 'b' }],
        },
      },
    }),
    errors: [`${LB}.localityLbSetting: can not simultaneously specify 'distribute' and 'failover'`],
  },
  {
    name: 'locality: failover with topology failoverPriority',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: {
        localityLbSetting: {
          failover: [{ from: 'a', to: 'b' }],
          failoverPriority: ['topology.kubernetes.io/zone'],
        },
      },
    }),
    errors: [
      `${LB}.localityLbSetting.failoverPriority: failoverPriority can not contain region/zone/subzone`,
    ],
  },
  {
    name: 'locality: weight out of range',
    obj: tp({
      loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 0, 'b/*': 100 } }] } },
    }),
    errors: [`${LB}.localityLbSetting.distribute[0].to["a/*"]: locality weight must be in range [1, 100]`],
  },
  {
    name: 'locality: weights not summing to 100',
    obj: tp({
      loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*', to: { 'a/*': 80, 'b/*': 10 } }] } },
    }),
    errors: [`${LB}.localityLbSetting.distribute[0].to: total locality weight 90 != 100`],
  },
  {
    name: 'locality: wildcard not at the end',
    obj: tp({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a/*/c', to: { 'a/*': 100 } }] } } }),
    errors: [`${LB}.localityLbSetting.distribute[0].from: wildcard '*' may appear only once, at the end`],
  },
  {
    name: 'locality: empty segment',
    obj: tp({ loadBalancer: { localityLbSetting: { distribute: [{ from: 'a//c', to: { 'a/*': 100 } }] } } }),
    errors: [`${LB}.localityLbSetting.distribute[0].from: empty region, zone or subzone`],
  },
  {
    name: 'locality: overlapping from entries',
    obj: tp({
      loadBalancer: {
        localityLbSetting: {
          distribute: [
            { from: 'us/*', to: { 'us/*': 100 } },
            { from: 'us/zone1', to: { 'eu/*': 100 } },
          ],
        },
      },
    }),
    errors: [`${LB}.localityLbSetting.distribute[1].from: locality "us/zone1" overlaps`],
  },
  {
    name: 'locality: overlapping to keys',
    obj: tp({
      loadBalancer: {
        localityLbSetting: { distribute: [{ from: 'us/*', to: { 'us/*': 50, 'us/z1': 50 } }] },
      },
    }),
    errors: [`${LB}.localityLbSetting.distribute[0].to["us/z1"]: locality "us/z1" overlaps`],
  },
  {
    name: 'locality: failover to the same region',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: { localityLbSetting: { failover: [{ from: 'us', to: 'us' }] } },
    }),
    errors: [
      `${LB}.localityLbSetting.failover[0]: locality lb failover settings must specify different regions`,
    ],
  },
  {
    name: 'locality: failover with a zone',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: { localityLbSetting: { failover: [{ from: 'us/z1', to: 'eu' }] } },
    }),
    errors: [`${LB}.localityLbSetting.failover[0]: locality lb failover only specify region`],
  },
  {
    name: 'locality: failover with a wildcard',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: { localityLbSetting: { failover: [{ from: '*', to: 'eu' }] } },
    }),
    errors: [`${LB}.localityLbSetting.failover[0]: should not contain '*' wildcard`],
  },
  {
    name: 'locality: failover without outlier detection warns',
    obj: tp({ loadBalancer: { localityLbSetting: { failover: [{ from: 'us', to: 'eu' }] } } }),
    warnings: [`${LB}.localityLbSetting: outlier detection policy must be provided for failover`],
  },
  {
    name: 'locality: failoverPriority without outlier detection warns',
    obj: tp({ loadBalancer: { localityLbSetting: { failoverPriority: ['topology.istio.io/network'] } } }),
    warnings: ['outlier detection policy must be provided for failover'],
  },
  {
    name: 'zoneAware: topology label in failoverPriority',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: { zoneAwareLbSetting: { failoverPriority: ['topology.kubernetes.io/region'] } },
    }),
    errors: [
      `${LB}.zoneAwareLbSetting.failoverPriority[0]: failoverPriority can not contain the topology label`,
    ],
  },
  {
    name: 'zoneAware: failover entries checked',
    obj: tp({
      outlierDetection: { consecutive5xxErrors: 5 },
      loadBalancer: { zoneAwareLbSetting: { failover: [{ from: 'a', to: 'a' }] } },
    }),
    errors: [`${LB}.zoneAwareLbSetting.failover[0]: must specify different regions`],
  },
  {
    name: 'pool: empty',
    obj: tp({ connectionPool: {} }),
    errors: [`${TP}.connectionPool: connection pool must have at least one field`],
  },
  {
    name: 'pool: negative http1MaxPendingRequests',
    obj: tp({ connectionPool: { http: { http1MaxPendingRequests: -1 } } }),
    errors: [
      `${TP}.connectionPool.http.http1MaxPendingRequests: http1MaxPendingRequests must be non-negative`,
    ],
  },
  {
    name: 'pool: negative maxConcurrentStreams',
    obj: tp({ connectionPool: { http: { maxConcurrentStreams: -5 } } }),
    errors: [`${TP}.connectionPool.http.maxConcurrentStreams: must be non-negative`],
  },
  {
    name: 'pool: http idleTimeout 0s',
    obj: tp({ connectionPool: { http: { idleTimeout: '0s' } } }),
    errors: [`${TP}.connectionPool.http.idleTimeout: duration must be greater than 1ms`],
  },
  {
    name: 'pool: UPGRADE with useClientProtocol',
    obj: tp({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } }),
    errors: [
      `${TP}.connectionPool.http: use client protocol must not be true when H2UpgradePolicy is UPGRADE`,
    ],
  },
  {
    name: 'pool: http2KeepAlive without timeout',
    obj: tp({ connectionPool: { http: { http2KeepAlive: { interval: '10s' } } } }),
    errors: [`${TP}.connectionPool.http.http2KeepAlive.timeout: http2 keepalive timeout is required`],
  },
  {
    name: 'pool: http2KeepAlive without interval',
    obj: tp({ connectionPool: { http: { http2KeepAlive: { timeout: '10s' } } } }),
    errors: [`${TP}.connectionPool.http.http2KeepAlive.interval: http2 keepalive interval is required`],
  },
  {
    name: 'pool: http2KeepAlive bad duration',
    obj: tp({ connectionPool: { http: { http2KeepAlive: { interval: '10s', timeout: '0s' } } } }),
    errors: [`${TP}.connectionPool.http.http2KeepAlive.timeout: duration must be greater than 1ms`],
  },
  {
    name: 'pool: negative maxConnections',
    obj: tp({ connectionPool: { tcp: { maxConnections: -1 } } }),
    errors: [`${TP}.connectionPool.tcp.maxConnections: max connections must be non-negative`],
  },
  {
    name: 'pool: connectTimeout under 1ms',
    obj: tp({ connectionPool: { tcp: { connectTimeout: '100us' } } }),
    errors: [`${TP}.connectionPool.tcp.connectTimeout: duration must be greater than 1ms`],
  },
  {
    name: 'pool: maxConnectionDuration 0s',
    obj: tp({ connectionPool: { tcp: { maxConnectionDuration: '0s' } } }),
    errors: [`${TP}.connectionPool.tcp.maxConnectionDuration: duration must be greater than 1ms`],
  },
  {
    name: 'pool: tcpKeepalive time/interval',
    obj: tp({ connectionPool: { tcp: { tcpKeepalive: { time: '0s', interval: '1.5ms' } } } }),
    errors: [
      `${TP}.connectionPool.tcp.tcpKeepalive.time: duration must be greater than 1ms`,
      `${TP}.connectionPool.tcp.tcpKeepalive.interval: only durations to ms precision`,
    ],
  },
  {
    name: 'pool: tcp idleTimeout 0s disables it',
    obj: tp({ connectionPool: { tcp: { idleTimeout: '0s' } } }),
  },
  {
    name: 'pool: tcp idleTimeout checked above 1ms',
    obj: tp({ connectionPool: { tcp: { idleTimeout: '1.5ms' } } }),
    errors: [`${TP}.connectionPool.tcp.idleTimeout: only durations to ms precision`],
  },
  {
    name: 'outlier: baseEjectionTime 0s',
    obj: tp({ outlierDetection: { baseEjectionTime: '0s' } }),
    errors: [`${TP}.outlierDetection.baseEjectionTime: duration must be greater than 1ms`],
  },
  {
    name: 'outlier: interval under 1ms',
    obj: tp({ outlierDetection: { interval: '10us' } }),
    errors: [`${TP}.outlierDetection.interval: duration must be greater than 1ms`],
  },
  {
    name: 'outlier: maxEjectionPercent over 100',
    obj: tp({ outlierDetection: { maxEjectionPercent: 101 } }),
    errors: [`${TP}.outlierDetection.maxEjectionPercent: percentage 101 is not in range 0..100`],
  },
  {
    name: 'outlier: minHealthPercent negative',
    obj: tp({ outlierDetection: { minHealthPercent: -1 } }),
    errors: [`${TP}.outlierDetection.minHealthPercent: percentage -1 is not in range 0..100`],
  },
  {
    name: 'outlier: consecutiveErrors warns',
    obj: tp({ outlierDetection: { consecutiveErrors: 5 } }),
    warnings: [
      `${TP}.outlierDetection.consecutiveErrors: outlier detection consecutive errors is deprecated`,
    ],
  },
  {
    name: 'outlier: local origin failures without split',
    obj: tp({ outlierDetection: { consecutiveLocalOriginFailures: 5 } }),
    errors: [
      `${TP}.outlierDetection.consecutiveLocalOriginFailures: split external local origin errors is set to false`,
    ],
  },
  {
    name: 'outlier: local origin failures with split',
    obj: tp({
      outlierDetection: { consecutiveLocalOriginFailures: 5, splitExternalLocalOriginErrors: true },
    }),
  },
  {
    name: 'tls: configmap credential in another namespace',
    obj: tp({ tls: { mode: 'SIMPLE', credentialName: 'configmap://other/ca' } }),
    errors: [`${TP}.tls.credentialName: credential "configmap://other/ca" must be in the same namespace`],
  },
  {
    name: 'tls: configmap credential malformed',
    obj: tp({ tls: { mode: 'SIMPLE', credentialName: 'configmap://' } }),
    errors: [`${TP}.tls.credentialName: invalid credentialName "configmap://"`],
  },
  {
    name: 'tls: configmap credential in own namespace',
    obj: tp({ tls: { mode: 'SIMPLE', credentialName: 'configmap://ca' } }),
  },
  {
    name: 'tls: SIMPLE insecureSkipVerify with caCertificates',
    obj: tp({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, caCertificates: '/ca.pem' } }),
    errors: [
      `${TP}.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true`,
    ],
  },
  {
    name: 'tls: SIMPLE insecureSkipVerify with subjectAltNames',
    obj: tp({ tls: { mode: 'SIMPLE', insecureSkipVerify: true, subjectAltNames: ['a'] } }),
    errors: [`${TP}.tls: cannot specify CaCertificates or CredentialName or SubjectAltNames`],
  },
  {
    name: 'tls: MUTUAL insecureSkipVerify with subjectAltNames',
    obj: tp({
      tls: {
        mode: 'MUTUAL',
        insecureSkipVerify: true,
        subjectAltNames: ['a'],
        clientCertificate: '/c',
        privateKey: '/k',
      },
    }),
    errors: [
      `${TP}.tls: cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true`,
    ],
  },
  {
    name: 'tls: credentialName with client certificate',
    obj: tp({ tls: { mode: 'SIMPLE', credentialName: 'c', clientCertificate: '/c' } }),
    errors: [
      `${TP}.tls: cannot specify client certificates or CA certificate or CA CRL If credentialName is set`,
    ],
  },
  {
    name: 'tls: credentialName with caCrl',
    obj: tp({ tls: { mode: 'MUTUAL', credentialName: 'c', caCrl: '/crl' } }),
    errors: [`${TP}.tls: cannot specify client certificates or CA certificate or CA CRL`],
  },
  {
    name: 'tls: MUTUAL without certificate and key',
    obj: tp({ tls: { mode: 'MUTUAL' } }),
    errors: [
      `${TP}.tls.clientCertificate: client certificate required for mutual tls`,
      `${TP}.tls.privateKey: private key required for mutual tls`,
    ],
  },
  {
    name: 'tls: MUTUAL with credentialName needs no files',
    obj: tp({ tls: { mode: 'MUTUAL', credentialName: 'client-cert' } }),
  },
  {
    name: 'tls: ISTIO_MUTUAL and DISABLE have no checks',
    obj: dr({
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL', caCertificates: '/x' } },
      subsets: [
        {
          name: 'v1',
          trafficPolicy: { tls: { mode: 'DISABLE', credentialName: 'x', clientCertificate: '/c' } },
        },
      ],
    }),
  },
  {
    name: 'tunnel: unsupported protocol',
    obj: tp({ tunnel: { protocol: 'GET', targetHost: 'a.com', targetPort: 443 } }),
    errors: [`${TP}.tunnel.protocol: tunnel protocol GET is not supported`],
  },
  {
    name: 'tunnel: bad target host',
    obj: tp({ tunnel: { targetHost: 'a_b.com', targetPort: 443 } }),
    errors: [`${TP}.tunnel.targetHost: tunnel target host must be a valid FQDN or an IP address`],
  },
  {
    name: 'tunnel: target port 0',
    obj: tp({ tunnel: { targetHost: '10.0.0.1', targetPort: 0 } }),
    errors: [`${TP}.tunnel.targetPort: port number 0`],
  },
  {
    name: 'tunnel: CONNECT to an IP is fine',
    obj: tp({ tunnel: { protocol: 'CONNECT', targetHost: '10.0.0.1', targetPort: 8443 } }),
  },
  {
    name: 'proxyProtocol: V3 (schema enum)',
    obj: tp({ proxyProtocol: { version: 'V3' } }),
    errors: [`${TP}.proxyProtocol.version: must be one of V1, V2`],
  },
];

/**
 * `want` matches a finding when it is a fragment of `path: message`, or when it is
 * `path: fragment` with exactly that path and the fragment anywhere in the message.
 */
function matches(f: Finding, want: string): boolean {
  if (`${f.path}: ${f.message}`.includes(want)) return true;
  const sep = want.indexOf(': ');
  return sep > 0 && f.path === want.slice(0, sep) && f.message.includes(want.slice(sep + 2));
}

function check(c: Case): void {
  const result = validateObject(c.obj, { defaultNamespace: NS });
  const show = (fs: Finding[]): string =>
    JSON.stringify(
      fs.map((f) => `${f.path}: ${f.message}`),
      null,
      2,
    );
  const expected = c.errors ?? [];
  for (const want of expected) {
    expect(
      result.errors.some((f) => matches(f, want)),
      `missing error "${want}"\n  got: ${show(result.errors)}`,
    ).to.equal(true);
  }
  for (const got of result.errors) {
    expect(
      expected.some((w) => matches(got, w)),
      `unexpected error "${got.path}: ${got.message}"`,
    ).to.equal(true);
  }
  for (const want of c.warnings ?? []) {
    expect(
      result.warnings.some((f) => matches(f, want)),
      `missing warning "${want}"\n  got: ${show(result.warnings)}`,
    ).to.equal(true);
  }
  for (const f of [...result.errors, ...result.warnings])
    expect(f.rule, `rule id on ${f.path}`).to.be.a('string');
}

for (const [title, cases] of [
  ['RULES.md §0 conventions', conventions],
  ['RULES.md §1 VirtualService: hosts, gateways, top level', vsTop],
  ['RULES.md §1 VirtualService: HTTP routes', httpRoutes],
  ['RULES.md §1 VirtualService: TLS and TCP routes', l4Routes],
  ['RULES.md §2 DestinationRule', drCases],
] as const) {
  describe(title, () => {
    for (const c of cases) it(c.name, () => check(c));
  });
}

/**
 * `rewrite.authority` (and a Host/:authority header op) that no upstream can be sent: Istio
 * checks no value there (validateHTTPRewrite, validateAuthorityRewrite; its CRD says `string`),
 * so weft accepts it too, with a warning; its proxies answer 503 DPE instead of sending it
 * (proxy/upstream/h1client.ts `unsendable`). Header-op values with control characters stay
 * errors (Istio's ValidateHTTPHeaderValue) and get no second finding.
 */
describe('rewritten authority that can never be sent: accepted (Istio) with a warning', () => {
  const RULE = 'vs.rewrite.authorityUnsendable';
  const table: [string, Obj, string | null][] = [
    ['a host name', { rewrite: { authority: 'a.example' } }, null],
    ['a host and port', { rewrite: { authority: 'a.example:8080' } }, null],
    ['an IPv6 literal and port', { rewrite: { authority: '[::1]:80' } }, null],
    ['a space', { rewrite: { authority: 'bad host.example' } }, `${R}.rewrite.authority`],
    ['CR LF', { rewrite: { authority: 'a.example\r\nx-injected: 1' } }, `${R}.rewrite.authority`],
    ['NUL', { rewrite: { authority: 'a\u0000b' } }, `${R}.rewrite.authority`],
    ['userinfo', { rewrite: { authority: 'user@a.example' } }, `${R}.rewrite.authority`],
    ['a character above U+007E', { rewrite: { authority: 'caf\u20ac.example' } }, `${R}.rewrite.authority`],
    ['a quote', { rewrite: { authority: 'a"b' } }, `${R}.rewrite.authority`],
    ['a port out of range', { rewrite: { authority: 'a:70000' } }, `${R}.rewrite.authority`],
    [
      'a Host header op with a space',
      { headers: { request: { set: { host: 'a b' } } } },
      `${R}.headers.request.set.host`,
    ],
    [
      'an :authority header op with an Envoy substitution (known per request only)',
      { headers: { request: { set: { ':authority': '%REQ(x-host)%' } } } },
      null,
    ],
  ];
  for (const [what, patch, warnedAt] of table)
    it(`${what}: ${warnedAt === null ? 'no warning' : 'a warning'}, no error`, () => {
      const result = validateObject(http(patch), { defaultNamespace: NS });
      expect(result.errors, JSON.stringify(result.errors)).to.deep.equal([]);
      const warned = result.warnings.filter((f) => f.rule === RULE);
      expect(warned.map((f) => f.path)).to.deep.equal(warnedAt === null ? [] : [warnedAt]);
      for (const f of warned) {
        expect(f.message).to.include('can never be sent').and.include('503 (flag DPE)');
        expect(f.message, 'control characters are escaped').to.not.match(/[\r\n\0]/);
      }
    });

  it('a Host header op with CR LF: the header-value error only', () => {
    const result = validateObject(http({ headers: { request: { set: { host: 'a\r\nb' } } } }), {
      defaultNamespace: NS,
    });
    expect(result.errors.map((f) => f.rule)).to.deep.equal(['vs.headers.value']);
    expect(result.warnings.filter((f) => f.rule === RULE)).to.deep.equal([]);
  });
});

/**
 * `redirect.authority` / `uri`: Istio checks no value (validateHTTPRedirect), so
 * weft accepts them, warning about one that can never be sent (its proxies answer 503 DPE,
 * WEFT_PROXY_REDIRECT_UNSENDABLE) or that no client can follow.
 */
describe('redirect values that can never be sent or followed: accepted (Istio) with a warning', () => {
  const RULE = 'vs.redirect.unsendable';
  const redirect = (rd: Obj): Obj => http({ route: undefined, redirect: rd });
  const table: [string, Obj, [string, string][]][] = [
    ['a host name and a path', { authority: 'a.example', uri: '/moved' }, []],
    ['an authority with a port', { authority: 'a.example:8443' }, []],
    [
      'CR LF in the authority',
      { authority: 'a.example\r\nset-cookie: x=1' },
      [[`${R}.redirect.authority`, 'can never be sent']],
    ],
    ['CR LF in the uri', { uri: '/x\r\nset-cookie: x=1' }, [[`${R}.redirect.uri`, 'can never be sent']]],
    ['a character above U+00FF in the uri', { uri: '/caf\u20ac' }, [[`${R}.redirect.uri`, '503 (flag DPE)']]],
    [
      'a space in the authority (sent, but not a URL)',
      { authority: 'a b' },
      [[`${R}.redirect.authority`, 'no client can follow the redirect']],
    ],
  ];
  for (const [what, rd, want] of table)
    it(`${what}: ${want.length === 0 ? 'no warning' : 'a warning'}, no error`, () => {
      const result = validateObject(redirect(rd), { defaultNamespace: NS });
      expect(result.errors, JSON.stringify(result.errors)).to.deep.equal([]);
      const warned = result.warnings.filter((f) => f.rule === RULE);
      expect(warned.map((f) => f.path)).to.deep.equal(want.map(([p]) => p));
      want.forEach(([, fragment], i) => expect(warned[i]!.message).to.include(fragment));
      for (const f of warned) expect(f.message).to.not.match(/[\r\n]/);
    });
});
