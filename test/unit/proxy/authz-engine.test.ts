/**
 * AuthorizationPolicy decisions, from Istio objects through the translator (pkg/translate/authz)
 * to the proxy engine (proxy/authz). Sources: Istio's AuthorizationPolicy reference (evaluation
 * order, rule semantics, string forms, path templates, condition keys), the builder testdata
 * (allow-empty-rule, allow-nil-rule, deny-empty-rule, deny-and-allow) and the generators in
 * pilot/pkg/security/authz/model (principal/namespace/serviceAccount/trustDomain/requestPrincipal
 * matching, hosts case-insensitive).
 */
import { expect } from 'chai';
import type { AuthorizationPolicy, Rule } from '../../../pkg/api/authorizationpolicy.js';
import { compilePolicy, translateAuthz } from '../../../pkg/translate/authz.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { PROXY_CONFIG_API_VERSION } from '../../../pkg/proxyconfig/types.js';
import {
  authorize,
  compileAuthz,
  remoteAddress,
  hostOnly,
  claimStrings,
  tcpBlock,
} from '../../../proxy/authz/engine.js';
import {
  authorizeAllReadings,
  authorizeConnection,
  connectionAttributes,
} from '../../../proxy/authz/gate.js';
import type { AuthzAttributes } from '../../../proxy/authz/attributes.js';
import { normalizePath, type PathNormalization } from '../../../proxy/router/path.js';

type Spec = {
  name?: string;
  ns?: string;
  action?: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  rules?: Rule[];
  dryRun?: boolean;
};

function policy(s: Spec): AuthorizationPolicy {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: s.name ?? 'p',
      namespace: s.ns ?? 'foo',
      ...(s.dryRun ? { annotations: { 'istio.io/dry-run': 'true' } } : {}),
    },
    spec: { ...(s.action ? { action: s.action } : {}), ...(s.rules !== undefined ? { rules: s.rules } : {}) },
  } as AuthorizationPolicy;
}

const BASE: AuthzAttributes = {
  method: 'GET',
  host: 'app.example.com',
  path: '/',
  headers: { 'user-agent': 'curl/8' },
  port: 8080,
  destinationIp: '10.0.0.9',
  sourceIp: '10.0.0.5',
  remoteIp: '10.0.0.5',
  peer: { principal: 'cluster.local/ns/foo/sa/sleep', namespace: 'foo', serviceAccount: 'sleep' },
};
const JWT = {
  principal: 'https://accounts.example.com/alice',
  audiences: ['api', 'web'],
  presenter: 'frontend',
  claims: {
    iss: 'https://accounts.example.com',
    sub: 'alice',
    groups: ['admin', 'dev'],
    role: 'editor',
    nested: { key: { deep: 'v1' }, list: ['x', 'y'] },
    count: 3,
  } as Record<string, unknown>,
};

/** Overrides of BASE; `peer: undefined` / `auth: undefined` = plaintext / no JWT. */
type Req = { [K in keyof AuthzAttributes]?: AuthzAttributes[K] | undefined };

function decide(specs: Spec[], req: Req = {}) {
  const warnings: string[] = [];
  const policies = specs.map((s, i) => compilePolicy(policy({ name: `p${i}`, ...s }), new Set(), warnings));
  return authorize(compileAuthz({ policies }), { ...BASE, ...req } as AuthzAttributes);
}

type Case = [string, Spec[], Req, 'allow' | 'deny', string?];
const allow = (rules?: Rule[]): Spec => ({ action: 'ALLOW', ...(rules !== undefined ? { rules } : {}) });
const deny = (rules?: Rule[]): Spec => ({ action: 'DENY', ...(rules !== undefined ? { rules } : {}) });
const to = (operation: Record<string, string[]>): Rule => ({ to: [{ operation }] });
const from = (source: Record<string, string[]>): Rule => ({ from: [{ source }] });
const when = (key: string, values?: string[], notValues?: string[]): Rule => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});

const CASES: Case[] = [
  // ---- defaults and order ----------------------------------------------------------------
  ['no policy at all: allowed', [], {}, 'allow'],
  ['ALLOW with no rules allows nothing', [allow()], {}, 'deny'],
  ['ALLOW with rules: [] allows nothing', [allow([])], {}, 'deny'],
  ['ALLOW with rules: [{}] allows everything', [allow([{}])], {}, 'allow', 'foo/p0'],
  ['DENY with rules: [{}] denies everything', [deny([{}])], {}, 'deny', 'foo/p0'],
  ['DENY with no rules denies nothing', [deny()], {}, 'allow'],
  ['DENY with rules: [] denies nothing', [deny([])], {}, 'allow'],
  ['DENY beats ALLOW', [allow([{}]), deny([{}])], {}, 'deny', 'foo/p1'],
  [
    'DENY not matching, ALLOW matching',
    [allow([{}]), deny([to({ paths: ['/admin'] })])],
    {},
    'allow',
    'foo/p0',
  ],
  ['ALLOW present but not matching: denied', [allow([to({ paths: ['/ok'] })])], {}, 'deny'],
  [
    'two ALLOWs, second matches',
    [allow([to({ paths: ['/x'] })]), allow([to({ paths: ['/'] })])],
    {},
    'allow',
    'foo/p1',
  ],
  ['AUDIT alone does not decide (allowed)', [{ action: 'AUDIT', rules: [{}] }], {}, 'allow'],
  [
    'AUDIT + ALLOW not matching: denied',
    [{ action: 'AUDIT', rules: [{}] }, allow([to({ paths: ['/x'] })])],
    {},
    'deny',
  ],
  ['default action is ALLOW', [{ rules: [to({ paths: ['/'] })] }], {}, 'allow', 'foo/p0'],
  ['dry-run DENY is not enforced', [{ ...deny([{}]), dryRun: true }], {}, 'allow'],
  [
    'dry-run ALLOW does not create the ALLOW default',
    [{ ...allow([to({ paths: ['/x'] })]), dryRun: true }],
    {},
    'allow',
  ],
  [
    'a rule needs from AND to AND when',
    [allow([{ ...to({ paths: ['/'] }), ...from({ namespaces: ['bar'] }) }])],
    {},
    'deny',
  ],
  ['rules are ORed', [allow([to({ paths: ['/x'] }), to({ paths: ['/'] })])], {}, 'allow'],
  [
    'to alternatives are ORed',
    [allow([{ to: [{ operation: { paths: ['/x'] } }, { operation: { methods: ['GET'] } }] }])],
    {},
    'allow',
  ],
  [
    'from alternatives are ORed',
    [allow([{ from: [{ source: { namespaces: ['x'] } }, { source: { namespaces: ['foo'] } }] }])],
    {},
    'allow',
  ],
  ['fields in one operation are ANDed', [allow([to({ paths: ['/'], methods: ['POST'] })])], {}, 'deny'],
  [
    'values and notValues together: both must hold',
    [allow([to({ paths: ['/*'], notPaths: ['/'] })])],
    {},
    'deny',
  ],
  // ---- paths -----------------------------------------------------------------------------
  ['path exact', [allow([to({ paths: ['/api'] })])], { path: '/api' }, 'allow'],
  ['path exact is case-sensitive', [allow([to({ paths: ['/api'] })])], { path: '/API' }, 'deny'],
  [
    'path exact does not match a longer path',
    [allow([to({ paths: ['/api'] })])],
    { path: '/api/v1' },
    'deny',
  ],
  ['path prefix', [allow([to({ paths: ['/api/*'] })])], { path: '/api/v1/x' }, 'allow'],
  ['path prefix needs the slash', [allow([to({ paths: ['/api/*'] })])], { path: '/api' }, 'deny'],
  ['path prefix without slash', [allow([to({ paths: ['/api*'] })])], { path: '/apiary' }, 'allow'],
  ['path suffix', [allow([to({ paths: ['*.png'] })])], { path: '/img/a.png' }, 'allow'],
  ['path suffix miss', [allow([to({ paths: ['*.png'] })])], { path: '/img/a.png.exe' }, 'deny'],
  ['path * matches any path', [allow([to({ paths: ['*'] })])], { path: '/anything/at/all' }, 'allow'],
  ['notPaths excludes', [allow([to({ notPaths: ['/admin*'] })])], { path: '/admin/x' }, 'deny'],
  ['notPaths lets others through', [allow([to({ notPaths: ['/admin*'] })])], { path: '/public' }, 'allow'],
  [
    'DENY notPaths: deny all but health',
    [deny([to({ notPaths: ['/healthz'] })])],
    { path: '/healthz' },
    'allow',
  ],
  ['DENY notPaths: others denied', [deny([to({ notPaths: ['/healthz'] })])], { path: '/data' }, 'deny'],
  ['template {*} one segment', [allow([to({ paths: ['/foo/{*}/bar'] })])], { path: '/foo/x/bar' }, 'allow'],
  [
    'template {*} not two segments',
    [allow([to({ paths: ['/foo/{*}/bar'] })])],
    { path: '/foo/x/y/bar' },
    'deny',
  ],
  ['template {*} not empty', [allow([to({ paths: ['/foo/{*}/bar'] })])], { path: '/foo//bar' }, 'deny'],
  ['template {**} many segments', [allow([to({ paths: ['/foo/{**}'] })])], { path: '/foo/a/b/c' }, 'allow'],
  [
    'template {**} zero chars after slash',
    [allow([to({ paths: ['/foo/{**}'] })])],
    { path: '/foo/' },
    'allow',
  ],
  ['template {**} not the bare prefix', [allow([to({ paths: ['/foo/{**}'] })])], { path: '/foo' }, 'deny'],
  ['template {*} then {**}', [allow([to({ paths: ['/{*}/x/{**}'] })])], { path: '/a/x/b/c' }, 'allow'],
  [
    'template {*} then {**}, wrong literal',
    [allow([to({ paths: ['/{*}/x/{**}'] })])],
    { path: '/a/y/b' },
    'deny',
  ],
  ['template literal is exact', [allow([to({ paths: ['/api/{*}'] })])], { path: '/apix/1' }, 'deny'],
  [
    'template {*}.txt style literal not a segment glob',
    [allow([to({ paths: ['/files/{*}'] })])],
    { path: '/files/a.txt' },
    'allow',
  ],
  ['template with a trailing slash', [allow([to({ paths: ['/a/{*}/'] })])], { path: '/a/x/' }, 'allow'],
  [
    'template with a trailing slash needs it',
    [allow([to({ paths: ['/a/{*}/'] })])],
    { path: '/a/x' },
    'deny',
  ],
  [
    'template without a trailing slash refuses one',
    [allow([to({ paths: ['/a/{*}'] })])],
    { path: '/a/x/' },
    'deny',
  ],
  ['template in notPaths', [deny([to({ notPaths: ['/public/{**}'] })])], { path: '/public/a/b' }, 'allow'],
  [
    'template in notPaths, outside',
    [deny([to({ notPaths: ['/public/{**}'] })])],
    { path: '/private' },
    'deny',
  ],
  // ---- methods, hosts, ports ---------------------------------------------------------------
  ['method exact', [allow([to({ methods: ['GET'] })])], {}, 'allow'],
  ['method is case-sensitive', [allow([to({ methods: ['get'] })])], {}, 'deny'],
  ['notMethods', [allow([to({ notMethods: ['DELETE'] })])], { method: 'DELETE' }, 'deny'],
  ['method prefix form', [allow([to({ methods: ['P*'] })])], { method: 'PUT' }, 'allow'],
  ['DENY methods POST', [deny([to({ methods: ['POST'] })])], { method: 'POST' }, 'deny'],
  ['host exact', [allow([to({ hosts: ['app.example.com'] })])], {}, 'allow'],
  ['host is case-insensitive', [allow([to({ hosts: ['App.Example.COM'] })])], {}, 'allow'],
  [
    'host request upper-case',
    [allow([to({ hosts: ['app.example.com'] })])],
    { host: 'APP.EXAMPLE.COM' },
    'allow',
  ],
  [
    'host ignores the request port',
    [allow([to({ hosts: ['app.example.com'] })])],
    { host: 'app.example.com:8080' },
    'allow',
  ],
  [
    'host with port pattern',
    [allow([to({ hosts: ['app.example.com:8080'] })])],
    { host: 'app.example.com:8080' },
    'allow',
  ],
  [
    'host with port pattern, other port',
    [allow([to({ hosts: ['app.example.com:8080'] })])],
    { host: 'app.example.com:9090' },
    'deny',
  ],
  [
    'DENY host not bypassed by :port',
    [deny([to({ hosts: ['admin.example.com'] })])],
    { host: 'admin.example.com:80' },
    'deny',
  ],
  [
    'DENY host not bypassed by case',
    [deny([to({ hosts: ['admin.example.com'] })])],
    { host: 'ADMIN.example.com' },
    'deny',
  ],
  [
    'DENY host not bypassed by trailing dot',
    [deny([to({ hosts: ['admin.example.com'] })])],
    { host: 'admin.example.com.' },
    'deny',
  ],
  ['host suffix', [allow([to({ hosts: ['*.example.com'] })])], {}, 'allow'],
  [
    'host suffix with port',
    [allow([to({ hosts: ['*.example.com'] })])],
    { host: 'x.example.com:443' },
    'allow',
  ],
  ['host prefix', [allow([to({ hosts: ['app.*'] })])], {}, 'allow'],
  ['host miss', [allow([to({ hosts: ['other.com'] })])], {}, 'deny'],
  ['notHosts', [allow([to({ notHosts: ['app.example.com'] })])], {}, 'deny'],
  ['IPv6 authority with port', [allow([to({ hosts: ['[::1]'] })])], { host: '[::1]:8080' }, 'allow'],
  ['port match', [allow([to({ ports: ['8080'] })])], {}, 'allow'],
  ['port miss', [allow([to({ ports: ['9090'] })])], {}, 'deny'],
  ['notPorts', [allow([to({ notPorts: ['8080'] })])], {}, 'deny'],
  ['DENY port', [deny([to({ ports: ['8080'] })])], {}, 'deny'],
  // ---- source: principals, namespaces, service accounts, trust domains ---------------------
  ['principal exact', [allow([from({ principals: ['cluster.local/ns/foo/sa/sleep'] })])], {}, 'allow'],
  [
    'principal given with spiffe:// on the peer',
    [allow([from({ principals: ['cluster.local/ns/foo/sa/sleep'] })])],
    { peer: { ...BASE.peer!, principal: 'spiffe://cluster.local/ns/foo/sa/sleep' } },
    'allow',
  ],
  ['principal miss', [allow([from({ principals: ['cluster.local/ns/foo/sa/other'] })])], {}, 'deny'],
  ['principal prefix', [allow([from({ principals: ['cluster.local/ns/foo/*'] })])], {}, 'allow'],
  ['principal suffix', [allow([from({ principals: ['*/sa/sleep'] })])], {}, 'allow'],
  ['principal * needs a peer', [allow([from({ principals: ['*'] })])], { peer: undefined }, 'deny'],
  ['principal * with a peer', [allow([from({ principals: ['*'] })])], {}, 'allow'],
  [
    'plaintext: no principal matches',
    [allow([from({ principals: ['cluster.local/ns/foo/sa/sleep'] })])],
    { peer: undefined },
    'deny',
  ],
  [
    'plaintext: notPrincipals holds (Istio)',
    [allow([from({ notPrincipals: ['cluster.local/ns/foo/sa/sleep'] })])],
    { peer: undefined },
    'allow',
  ],
  [
    'DENY notPrincipals * denies plaintext',
    [deny([from({ notPrincipals: ['*'] })])],
    { peer: undefined },
    'deny',
  ],
  ['DENY notPrincipals * lets mTLS through', [deny([from({ notPrincipals: ['*'] })])], {}, 'allow'],
  ['namespace exact', [allow([from({ namespaces: ['foo'] })])], {}, 'allow'],
  ['namespace miss', [allow([from({ namespaces: ['bar'] })])], {}, 'deny'],
  ['namespace prefix', [allow([from({ namespaces: ['fo*'] })])], {}, 'allow'],
  ['namespace suffix', [allow([from({ namespaces: ['*oo'] })])], {}, 'allow'],
  ['namespace needs a peer', [allow([from({ namespaces: ['foo'] })])], { peer: undefined }, 'deny'],
  [
    'DENY notNamespaces denies other namespaces',
    [deny([from({ notNamespaces: ['foo'] })])],
    { peer: { principal: 'cluster.local/ns/bar/sa/x', namespace: 'bar', serviceAccount: 'x' } },
    'deny',
  ],
  ['DENY notNamespaces keeps own namespace', [deny([from({ notNamespaces: ['foo'] })])], {}, 'allow'],
  [
    'serviceAccount short form uses the policy namespace',
    [allow([from({ serviceAccounts: ['sleep'] })])],
    {},
    'allow',
  ],
  [
    'serviceAccount short form, other namespace policy',
    [{ ns: 'bar', ...allow([from({ serviceAccounts: ['sleep'] })]) }],
    {},
    'deny',
  ],
  ['serviceAccount ns/name', [allow([from({ serviceAccounts: ['foo/sleep'] })])], {}, 'allow'],
  ['serviceAccount ns/name miss', [allow([from({ serviceAccounts: ['bar/sleep'] })])], {}, 'deny'],
  ['notServiceAccounts', [allow([from({ notServiceAccounts: ['foo/sleep'] })])], {}, 'deny'],
  ['trustDomain exact', [allow([from({ trustDomains: ['cluster.local'] })])], {}, 'allow'],
  ['trustDomain miss', [allow([from({ trustDomains: ['other.td'] })])], {}, 'deny'],
  ['trustDomain suffix', [allow([from({ trustDomains: ['*.local'] })])], {}, 'allow'],
  ['trustDomain * needs a peer', [allow([from({ trustDomains: ['*'] })])], { peer: undefined }, 'deny'],
  ['notTrustDomains', [deny([from({ notTrustDomains: ['cluster.local'] })])], {}, 'allow'],
  // ---- source: IPs -------------------------------------------------------------------------
  ['ipBlocks CIDR', [allow([from({ ipBlocks: ['10.0.0.0/24'] })])], {}, 'allow'],
  ['ipBlocks single IP', [allow([from({ ipBlocks: ['10.0.0.5'] })])], {}, 'allow'],
  ['ipBlocks miss', [allow([from({ ipBlocks: ['10.1.0.0/16'] })])], {}, 'deny'],
  [
    'ipBlocks v4-mapped peer',
    [allow([from({ ipBlocks: ['10.0.0.0/8'] })])],
    { sourceIp: '::ffff:10.0.0.5' },
    'allow',
  ],
  ['ipBlocks IPv6', [allow([from({ ipBlocks: ['fd00::/8'] })])], { sourceIp: 'fd00::1' }, 'allow'],
  ['ipBlocks IPv6 miss', [allow([from({ ipBlocks: ['fd00::/8'] })])], { sourceIp: '2001:db8::1' }, 'deny'],
  ['ipBlocks unmasked CIDR 10.0.0.7/24', [allow([from({ ipBlocks: ['10.0.0.7/24'] })])], {}, 'allow'],
  ['notIpBlocks', [deny([from({ notIpBlocks: ['10.0.0.0/8'] })])], {}, 'allow'],
  ['notIpBlocks outside', [deny([from({ notIpBlocks: ['192.168.0.0/16'] })])], {}, 'deny'],
  [
    'remoteIpBlocks uses remote.ip',
    [allow([from({ remoteIpBlocks: ['203.0.113.0/24'] })])],
    { remoteIp: '203.0.113.7' },
    'allow',
  ],
  [
    'remoteIpBlocks not the peer',
    [allow([from({ remoteIpBlocks: ['10.0.0.5'] })])],
    { remoteIp: '203.0.113.7' },
    'deny',
  ],
  [
    'notRemoteIpBlocks',
    [deny([from({ notRemoteIpBlocks: ['203.0.113.0/24'] })])],
    { remoteIp: '198.51.100.1' },
    'deny',
  ],
  [
    '0.0.0.0/0 matches every v4',
    [allow([from({ ipBlocks: ['0.0.0.0/0'] })])],
    { sourceIp: '1.2.3.4' },
    'allow',
  ],
  [
    '0.0.0.0/0 does not match IPv6',
    [allow([from({ ipBlocks: ['0.0.0.0/0'] })])],
    { sourceIp: '2001:db8::1' },
    'deny',
  ],
  ['::/0 matches IPv6', [allow([from({ ipBlocks: ['::/0'] })])], { sourceIp: '2001:db8::1' }, 'allow'],
  ['::/0 does not match IPv4', [allow([from({ ipBlocks: ['::/0'] })])], { sourceIp: '10.0.0.5' }, 'deny'],
  [
    '/32 edge: 255.255.255.255',
    [allow([from({ ipBlocks: ['255.255.255.255/32'] })])],
    { sourceIp: '255.255.255.255' },
    'allow',
  ],
  ['/31 boundary', [allow([from({ ipBlocks: ['10.0.0.4/31'] })])], { sourceIp: '10.0.0.5' }, 'allow'],
  ['/31 just outside', [allow([from({ ipBlocks: ['10.0.0.4/31'] })])], { sourceIp: '10.0.0.6' }, 'deny'],
  ['/1 high half', [allow([from({ ipBlocks: ['128.0.0.0/1'] })])], { sourceIp: '200.1.1.1' }, 'allow'],
  [
    '/1 high half, low address',
    [allow([from({ ipBlocks: ['128.0.0.0/1'] })])],
    { sourceIp: '10.1.1.1' },
    'deny',
  ],
  [
    'v4 and v6 values in one clause',
    [allow([from({ ipBlocks: ['fd00::/8', '10.0.0.0/8'] })])],
    { sourceIp: '10.9.9.9' },
    'allow',
  ],
  [
    'a garbage peer address matches no block',
    [allow([from({ ipBlocks: ['0.0.0.0/0'] })])],
    { sourceIp: '1.2.3' },
    'deny',
  ],
  // ---- source: request principals (JWT) ----------------------------------------------------
  [
    'requestPrincipals exact',
    [allow([from({ requestPrincipals: ['https://accounts.example.com/alice'] })])],
    { auth: JWT },
    'allow',
  ],
  ['requestPrincipals no JWT', [allow([from({ requestPrincipals: ['*'] })])], {}, 'deny'],
  ['requestPrincipals * with JWT', [allow([from({ requestPrincipals: ['*'] })])], { auth: JWT }, 'allow'],
  [
    'requestPrincipals iss/*',
    [allow([from({ requestPrincipals: ['https://accounts.example.com/*'] })])],
    { auth: JWT },
    'allow',
  ],
  ['requestPrincipals */sub', [allow([from({ requestPrincipals: ['*/alice'] })])], { auth: JWT }, 'allow'],
  ['requestPrincipals */sub miss', [allow([from({ requestPrincipals: ['*/bob'] })])], { auth: JWT }, 'deny'],
  [
    'requestPrincipals iss suffix',
    [allow([from({ requestPrincipals: ['*example.com/alice'] })])],
    { auth: JWT },
    'allow',
  ],
  [
    'requestPrincipals wrong issuer',
    [allow([from({ requestPrincipals: ['https://evil.com/alice'] })])],
    { auth: JWT },
    'deny',
  ],
  [
    'requestPrincipals sub cannot smuggle a slash',
    [allow([from({ requestPrincipals: ['https://accounts.example.com/alice'] })])],
    {
      auth: {
        ...JWT,
        principal: 'https://accounts.example.com/x/alice',
        claims: { iss: 'https://accounts.example.com/x', sub: 'alice' },
      },
    },
    'deny',
  ],
  ['DENY notRequestPrincipals * (require JWT)', [deny([from({ notRequestPrincipals: ['*'] })])], {}, 'deny'],
  [
    'DENY notRequestPrincipals * with JWT',
    [deny([from({ notRequestPrincipals: ['*'] })])],
    { auth: JWT },
    'allow',
  ],
  // ---- conditions --------------------------------------------------------------------------
  ['request.headers exact', [allow([when('request.headers[User-Agent]', ['curl/8'])])], {}, 'allow'],
  [
    'request.headers name is case-insensitive',
    [allow([when('request.headers[USER-AGENT]', ['curl/8'])])],
    {},
    'allow',
  ],
  [
    'request.headers value is case-sensitive',
    [allow([when('request.headers[user-agent]', ['CURL/8'])])],
    {},
    'deny',
  ],
  ['request.headers prefix', [allow([when('request.headers[user-agent]', ['curl*'])])], {}, 'allow'],
  [
    'request.headers * = present',
    [allow([when('request.headers[x-token]', ['*'])])],
    { headers: { 'x-token': 'a' } },
    'allow',
  ],
  ['request.headers * absent', [allow([when('request.headers[x-token]', ['*'])])], {}, 'deny'],
  [
    'request.headers notValues',
    [deny([when('request.headers[x-env]', undefined, ['prod'])])],
    { headers: { 'x-env': 'prod' } },
    'allow',
  ],
  [
    'request.headers notValues on absent header: holds',
    [deny([when('request.headers[x-env]', undefined, ['prod'])])],
    {},
    'deny',
  ],
  [
    'request.headers multi-valued joined',
    [allow([when('request.headers[x-a]', ['1,2'])])],
    { headers: { 'x-a': ['1', '2'] } },
    'allow',
  ],
  ['source.ip', [allow([when('source.ip', ['10.0.0.0/8'])])], {}, 'allow'],
  ['source.ip miss', [allow([when('source.ip', ['192.168.0.0/16'])])], {}, 'deny'],
  ['remote.ip', [allow([when('remote.ip', ['10.0.0.5'])])], {}, 'allow'],
  ['destination.ip', [allow([when('destination.ip', ['10.0.0.9/32'])])], {}, 'allow'],
  ['destination.ip notValues', [allow([when('destination.ip', undefined, ['10.0.0.0/8'])])], {}, 'deny'],
  ['destination.port', [allow([when('destination.port', ['8080'])])], {}, 'allow'],
  ['destination.port miss', [allow([when('destination.port', ['80', '443'])])], {}, 'deny'],
  ['source.namespace', [allow([when('source.namespace', ['foo'])])], {}, 'allow'],
  ['source.principal', [allow([when('source.principal', ['cluster.local/ns/foo/sa/sleep'])])], {}, 'allow'],
  ['source.principal plaintext', [allow([when('source.principal', ['*'])])], { peer: undefined }, 'deny'],
  ['source.serviceAccount', [allow([when('source.serviceAccount', ['foo/sleep'])])], {}, 'allow'],
  ['source.serviceAccount short', [allow([when('source.serviceAccount', ['sleep'])])], {}, 'allow'],
  ['source.trustDomain', [allow([when('source.trustDomain', ['cluster.local'])])], {}, 'allow'],
  [
    'connection.sni',
    [allow([when('connection.sni', ['*.example.com'])])],
    { sni: 'app.example.com' },
    'allow',
  ],
  ['connection.sni absent', [allow([when('connection.sni', ['*'])])], {}, 'deny'],
  [
    'request.auth.principal',
    [allow([when('request.auth.principal', ['https://accounts.example.com/alice'])])],
    { auth: JWT },
    'allow',
  ],
  ['request.auth.principal no JWT', [allow([when('request.auth.principal', ['*'])])], {}, 'deny'],
  [
    'request.auth.audiences any of the list',
    [allow([when('request.auth.audiences', ['web'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.audiences miss',
    [allow([when('request.auth.audiences', ['admin'])])],
    { auth: JWT },
    'deny',
  ],
  ['request.auth.presenter', [allow([when('request.auth.presenter', ['frontend'])])], { auth: JWT }, 'allow'],
  ['request.auth.presenter miss', [allow([when('request.auth.presenter', ['cli'])])], { auth: JWT }, 'deny'],
  [
    'request.auth.claims string',
    [allow([when('request.auth.claims[role]', ['editor'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims list item',
    [allow([when('request.auth.claims[groups]', ['admin'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims list miss',
    [allow([when('request.auth.claims[groups]', ['ops'])])],
    { auth: JWT },
    'deny',
  ],
  [
    'request.auth.claims nested',
    [allow([when('request.auth.claims[nested][key][deep]', ['v1'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims nested list',
    [allow([when('request.auth.claims[nested][list]', ['y'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims nested miss (path through a string)',
    [allow([when('request.auth.claims[role][x]', ['editor'])])],
    { auth: JWT },
    'deny',
  ],
  [
    'request.auth.claims number never matches a string',
    [allow([when('request.auth.claims[count]', ['3'])])],
    { auth: JWT },
    'deny',
  ],
  [
    'request.auth.claims prefix',
    [allow([when('request.auth.claims[role]', ['edi*'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims notValues',
    [deny([when('request.auth.claims[groups]', undefined, ['admin'])])],
    { auth: JWT },
    'allow',
  ],
  [
    'request.auth.claims no JWT: notValues holds',
    [deny([when('request.auth.claims[groups]', undefined, ['admin'])])],
    {},
    'deny',
  ],
  [
    'conditions are ANDed',
    [
      allow([
        {
          when: [
            { key: 'source.namespace', values: ['foo'] },
            { key: 'destination.port', values: ['1'] },
          ],
        },
      ]),
    ],
    {},
    'deny',
  ],
  ['condition values are ORed', [allow([when('destination.port', ['1', '8080'])])], {}, 'allow'],
];

describe('AuthorizationPolicy engine: Istio semantics table', () => {
  for (const [name, specs, req, want, policyName] of CASES) {
    it(`${name} → ${want}`, () => {
      const d = decide(specs, req);
      expect(d.decision, d.reason).to.equal(want);
      if (policyName !== undefined) expect(d.policy).to.equal(policyName);
    });
  }
  it(`has more than 150 cases (${CASES.length})`, () => expect(CASES.length).to.be.greaterThan(150));
});

const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';

/** A TCP connection as the inbound side sees one: no method, path, host, headers or JWT. */
function decideTcp(specs: Spec[], peer: string | null, port = 8080) {
  const warnings: string[] = [];
  const policies = specs.map((s, i) => compilePolicy(policy({ name: `p${i}`, ...s }), new Set(), warnings));
  const c = compileAuthz(tcpBlock({ policies }));
  return authorizeConnection(
    c,
    connectionAttributes({ remoteAddress: '10.0.0.5', localAddress: '10.0.0.9' }, { port, sni: null, peer }),
  ).decision;
}

type TcpCase = [string, Spec[], string | null, 'allow' | 'deny'];
// Istio's TCP task and builder: ALLOW/AUDIT rules with HTTP-only fields match nothing; DENY
// rules drop the HTTP-only fields and apply on the rest
const TCP_CASES: TcpCase[] = [
  ['no policy', [], null, 'allow'],
  [
    'ALLOW by principal, the peer',
    [allow([from({ principals: ['cluster.local/ns/foo/sa/sleep'] })])],
    SLEEP,
    'allow',
  ],
  [
    'ALLOW by principal, plaintext',
    [allow([from({ principals: ['cluster.local/ns/foo/sa/sleep'] })])],
    null,
    'deny',
  ],
  ['ALLOW by namespace, the peer', [allow([from({ namespaces: ['foo'] })])], SLEEP, 'allow'],
  ['ALLOW by ipBlocks', [allow([from({ ipBlocks: ['10.0.0.0/24'] })])], null, 'allow'],
  ['ALLOW by port', [allow([to({ ports: ['8080'] })])], null, 'allow'],
  ['ALLOW by another port', [allow([to({ ports: ['9000'] })])], null, 'deny'],
  ['ALLOW with methods only: no TCP allowed', [allow([to({ methods: ['GET'] })])], SLEEP, 'deny'],
  [
    'ALLOW with paths and ports: the rule is dropped',
    [allow([to({ paths: ['/'], ports: ['8080'] })])],
    null,
    'deny',
  ],
  [
    'ALLOW with hosts in one rule, ports in another: the second allows',
    [allow([to({ hosts: ['a'] }), to({ ports: ['8080'] })])],
    null,
    'allow',
  ],
  [
    'ALLOW with requestPrincipals: no JWT on TCP',
    [allow([from({ requestPrincipals: ['*'] })])],
    SLEEP,
    'deny',
  ],
  ['ALLOW with a request.headers condition', [allow([when('request.headers[x-a]', ['1'])])], SLEEP, 'deny'],
  ['ALLOW with a source.ip condition stays', [allow([when('source.ip', ['10.0.0.5'])])], null, 'allow'],
  ['DENY with methods only: denies every connection', [deny([to({ methods: ['GET'] })])], SLEEP, 'deny'],
  [
    'DENY with paths and ports: denies that port',
    [deny([to({ paths: ['/admin'], ports: ['8080'] })])],
    null,
    'deny',
  ],
  [
    'DENY with paths and another port: allows',
    [deny([to({ paths: ['/admin'], ports: ['9000'] })])],
    null,
    'allow',
  ],
  [
    'DENY by namespace + path: denies that namespace',
    [deny([{ ...from({ namespaces: ['foo'] }), ...to({ paths: ['/x'] }) }])],
    SLEEP,
    'deny',
  ],
  [
    'DENY by namespace + path: another namespace passes',
    [deny([{ ...from({ namespaces: ['bar'] }), ...to({ paths: ['/x'] }) }])],
    SLEEP,
    'allow',
  ],
  ['DENY with requestPrincipals: denies all', [deny([from({ requestPrincipals: ['*'] })])], null, 'deny'],
  ['DENY notPrincipals *: plaintext denied', [deny([from({ notPrincipals: ['*'] })])], null, 'deny'],
  ['DENY notPrincipals *: the peer passes', [deny([from({ notPrincipals: ['*'] })])], SLEEP, 'allow'],
  ['AUDIT with methods: no effect', [{ action: 'AUDIT', rules: [to({ methods: ['GET'] })] }], null, 'allow'],
  ['DENY beats a TCP ALLOW', [allow([{}]), deny([to({ methods: ['POST'] })])], SLEEP, 'deny'],
];

describe('AuthorizationPolicy on TCP connections (tcpBlock)', () => {
  for (const [name, specs, peer, want] of TCP_CASES)
    it(`${name} → ${want}`, () => {
      const d = decideTcp(specs, peer);
      expect(d.decision, d.reason).to.equal(want);
    });

  it('a CUSTOM policy that matches refuses the connection (its HTTP provider cannot check TCP)', () => {
    const c = compileAuthz(
      tcpBlock({
        policies: [
          {
            name: 'foo/ext',
            action: 'CUSTOM',
            provider: 'ext',
            rules: [{ to: [[{ key: 'request.path', values: [{ exact: '/x' }] }]] }],
          },
        ],
        providers: { ext: { service: 'ext.foo.svc.cluster.local', port: 80, endpoints: [] } as never },
      }),
    );
    const o = authorizeConnection(c, connectionAttributes({}, { port: 1, sni: null, peer: null }));
    expect(o.decision.decision).to.equal('deny');
    expect(o.decision.reason).to.match(/CUSTOM policy foo\/ext matches a TCP connection/);
    expect(o.denial?.flag).to.equal('RBAC');
  });

  it('the block for HTTP is left as it was', () => {
    const block = {
      policies: [
        {
          name: 'a/b',
          action: 'ALLOW' as const,
          rules: [{ to: [[{ key: 'request.method' as const, values: [{ exact: 'GET' }] }]] }],
        },
      ],
    };
    const copy = structuredClone(block);
    tcpBlock(block);
    expect(block).to.deep.equal(copy);
  });
});

describe('AuthorizationPolicy engine: what a decision says', () => {
  it('a DENY decision names its policy and rule', () => {
    const d = decide([deny([to({ paths: ['/x'] }), to({ paths: ['/'] })])]);
    expect(d).to.deep.include({ decision: 'deny', policy: 'foo/p0', rule: 1, action: 'DENY' });
  });
  it('an ALLOW-default deny says no ALLOW policy matched', () => {
    const d = decide([allow([to({ paths: ['/x'] })])]);
    expect(d).to.deep.include({ decision: 'deny', action: 'ALLOW', reason: 'no ALLOW policy matched' });
    expect(d.policy).to.equal(undefined);
  });
  it('AUDIT marks the decision without changing it', () => {
    const d = decide([{ action: 'AUDIT', rules: [to({ paths: ['/'] })] }, allow([{}])]);
    expect(d).to.deep.include({ decision: 'allow', audit: 'foo/p0' });
  });
  it('dry-run policies report what they would decide in shadow', () => {
    const d = decide([{ ...deny([{}]), dryRun: true }]);
    expect(d.decision).to.equal('allow');
    expect(d.shadow).to.deep.include({ decision: 'deny', policy: 'foo/p0', rule: 0 });
  });
  it('no dry-run policy: no shadow', () => expect(decide([allow([{}])]).shadow).to.equal(undefined));
  it('dry-run ALLOW not matching: shadow says it would deny', () => {
    const d = decide([{ ...allow([to({ paths: ['/x'] })]), dryRun: true }]);
    expect(d.decision).to.equal('allow');
    expect(d.shadow).to.deep.include({ decision: 'deny', reason: 'no ALLOW policy matched' });
  });
  it('a dry-run AUDIT policy has no shadow decision', () =>
    expect(decide([{ action: 'AUDIT', rules: [{}], dryRun: true }]).shadow).to.equal(undefined));
});

describe('AuthorizationPolicy: paths cannot bypass a DENY through encodings', () => {
  const MODES: PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
  const ATTACKS = [
    '/admin',
    '/admin/../admin',
    '/public/../admin',
    '//admin',
    '/./admin',
    '/%2Fadmin',
    '/%2fadmin',
    '/%61dmin',
    '/%2e/admin',
    '/public/%2e%2e/admin',
    '/public/%2E%2E%2Fadmin',
    '/public%2F..%2Fadmin',
    '\\admin',
    '/public\\..\\admin',
    '/%5Cadmin',
  ];
  const policies = compileAuthz({
    policies: [
      compilePolicy(
        policy({ name: 'no-admin', action: 'DENY', rules: [to({ paths: ['/admin', '/admin/*'] })] }),
        new Set(),
        [],
      ),
    ],
  });
  const allowPublic = compileAuthz({
    policies: [
      compilePolicy(policy({ name: 'public', rules: [to({ paths: ['/public/*'] })] }), new Set(), []),
    ],
  });
  for (const mode of MODES)
    for (const raw of ATTACKS) {
      it(`${mode}: ${raw} is refused (400) or denied`, () => {
        const path = normalizePath(raw, mode);
        if (path === null) return; // the proxy answers 400 before authorization
        const d = authorizeAllReadings(policies, { ...BASE, path });
        expect(d.decision, `${raw} → ${path}`).to.equal('deny');
      });
    }
  for (const mode of MODES)
    for (const raw of [
      '/public/../admin',
      '/public/%2e%2e/admin',
      '/public%2F..%2Fadmin',
      '/public/%2E%2E%2Fadmin',
    ])
      it(`${mode}: ALLOW /public/* does not let ${raw} through`, () => {
        const path = normalizePath(raw, mode);
        if (path === null) return;
        expect(authorizeAllReadings(allowPublic, { ...BASE, path }).decision, `${raw} → ${path}`).to.equal(
          'deny',
        );
      });
  it('a plain public path stays allowed under every mode', () => {
    for (const mode of MODES)
      expect(
        authorizeAllReadings(allowPublic, { ...BASE, path: normalizePath('/public/a', mode)! }).decision,
      ).to.equal('allow');
  });
  it('a DENY on /admin still allows /administrator and /public', () => {
    expect(authorizeAllReadings(policies, { ...BASE, path: '/administrator' }).decision).to.equal('allow');
    expect(authorizeAllReadings(policies, { ...BASE, path: '/public' }).decision).to.equal('allow');
  });
});

describe('AuthorizationPolicy engine: malformed attributes never throw, never allow by accident', () => {
  const every = [
    deny([from({ requestPrincipals: ['*'] })]),
    deny([when('request.auth.audiences', ['a'])]),
    deny([when('request.auth.presenter', ['a'])]),
    deny([when('request.auth.claims[a][b]', ['a'])]),
    deny([from({ ipBlocks: ['10.0.0.0/8'] })]),
    deny([to({ hosts: ['x'] })]),
  ];
  const BAD: [string, Req][] = [
    [
      'auth without claims',
      { auth: { principal: 'a/b', audiences: [] } as unknown as AuthzAttributes['auth'] },
    ],
    [
      'audiences not a list',
      { auth: { principal: 'a/b', audiences: 'a', claims: {} } as unknown as AuthzAttributes['auth'] },
    ],
    ['claims with null inside', { auth: { principal: 'a/b', audiences: [], claims: { a: null } } }],
    [
      'presenter a number',
      {
        auth: {
          principal: 'a/b',
          audiences: [],
          presenter: 7,
          claims: {},
        } as unknown as AuthzAttributes['auth'],
      },
    ],
    ['source ip not an address', { sourceIp: 'not-an-ip' }],
    ['empty host', { host: '' }],
  ];
  for (const [name, req] of BAD)
    it(`${name}: no exception; the ALLOW-default still denies`, () => {
      expect(() => decide(every, req)).to.not.throw();
      expect(decide([allow([to({ paths: ['/nope'] })]), ...every], req).decision).to.equal('deny');
    });
});

describe('AuthorizationPolicy engine helpers', () => {
  const XFF: [string, string | undefined, number, string][] = [
    ['10.0.0.1', undefined, 0, '10.0.0.1'],
    ['10.0.0.1', '203.0.113.9', 0, '10.0.0.1'],
    ['10.0.0.1', '203.0.113.9', 1, '203.0.113.9'],
    ['10.0.0.1', '198.51.100.1, 203.0.113.9', 1, '203.0.113.9'],
    ['10.0.0.1', '198.51.100.1, 203.0.113.9', 2, '198.51.100.1'],
    ['10.0.0.1', '203.0.113.9', 2, '10.0.0.1'],
    ['10.0.0.1', 'garbage', 1, '10.0.0.1'],
    ['::ffff:10.0.0.1', undefined, 0, '10.0.0.1'],
  ];
  for (const [peer, xff, n, want] of XFF)
    it(`remote.ip: peer ${peer}, xff ${String(xff)}, ${n} trusted → ${want}`, () =>
      expect(remoteAddress(peer, xff, n)).to.equal(want));
  const HOSTS: [string, string][] = [
    ['a.com', 'a.com'],
    ['A.COM:80', 'a.com'],
    ['a.com.', 'a.com'],
    ['[::1]:8080', '[::1]'],
    ['[::1]', '[::1]'],
  ];
  for (const [h, want] of HOSTS) it(`hostOnly(${h}) = ${want}`, () => expect(hostOnly(h)).to.equal(want));
  it('claimStrings reads strings and string lists only', () => {
    expect(claimStrings({ a: ['x', 1, 'y'] }, ['a'])).to.deep.equal(['x', 'y']);
    expect(claimStrings({ a: true }, ['a'])).to.deep.equal([]);
    expect(claimStrings({ a: { b: 'c' } }, ['a', 'b'])).to.deep.equal(['c']);
    expect(claimStrings(undefined, ['a'])).to.deep.equal([]);
  });
});

describe('authz block: translate → validate → compile round trip', () => {
  it('a compiled block passes the proxy config validator and compiles', () => {
    const { block } = translateAuthz({
      pod: { namespace: 'foo', labels: { app: 'a' } },
      policies: [
        policy({
          action: 'DENY',
          rules: [
            {
              from: [
                { source: { ipBlocks: ['10.0.0.0/8'], requestPrincipals: ['*'], serviceAccounts: ['sa'] } },
              ],
              to: [{ operation: { paths: ['/a/{*}', '*.png'], ports: ['80'], hosts: ['*.x'] } }],
              when: [{ key: 'request.auth.claims[a][b]', values: ['c'] }],
            },
          ],
        }),
      ],
    });
    const cfg = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [],
      clusters: [],
      authz: block,
    };
    expect(validateProxyConfig(cfg)).to.deep.equal([]);
    expect(() => compileAuthz(block!)).to.not.throw();
  });
  const BAD: [string, unknown, string][] = [
    ['policies not a list', { policies: 1 }, 'authz.policies'],
    ['bad action', { policies: [{ name: 'a/b', action: 'MAYBE', rules: [] }] }, 'authz.policies[0].action'],
    [
      'CUSTOM without provider',
      { policies: [{ name: 'a/b', action: 'CUSTOM', rules: [] }] },
      'authz.policies[0].provider',
    ],
    [
      'unknown key',
      {
        policies: [
          { name: 'a/b', action: 'DENY', rules: [{ when: [{ key: 'x.y', values: [{ exact: 'a' }] }] }] },
        ],
      },
      'authz.policies[0].rules[0].when[0].key',
    ],
    [
      'bad cidr',
      {
        policies: [
          {
            name: 'a/b',
            action: 'DENY',
            rules: [
              { when: [{ key: 'source.ip', values: [{ cidr: { address: '10.0.0.0', prefixLen: 33 } }] }] },
            ],
          },
        ],
      },
      'authz.policies[0].rules[0].when[0].values[0]',
    ],
    [
      'clause without values',
      { policies: [{ name: 'a/b', action: 'DENY', rules: [{ to: [[{ key: 'request.path' }]] }] }] },
      'authz.policies[0].rules[0].to[0][0]',
    ],
    [
      '** not last',
      {
        policies: [
          {
            name: 'a/b',
            action: 'DENY',
            rules: [{ to: [[{ key: 'request.path', values: [{ template: ['**', 'a'] }] }]] }],
          },
        ],
      },
      'authz.policies[0].rules[0].to[0][0].values[0]',
    ],
    [
      'upper-case header',
      {
        policies: [
          {
            name: 'a/b',
            action: 'DENY',
            rules: [{ when: [{ key: 'request.headers', header: 'X-A', values: [{ exact: 'a' }] }] }],
          },
        ],
      },
      'authz.policies[0].rules[0].when[0].header',
    ],
  ];
  for (const [name, authz, path] of BAD)
    it(`validator refuses ${name} (${path})`, () => {
      const cfg = {
        apiVersion: PROXY_CONFIG_API_VERSION,
        kind: 'ProxyConfig',
        version: 'v',
        listeners: [],
        clusters: [],
        authz,
      };
      expect(validateProxyConfig(cfg).map((p) => p.path)).to.include(path);
    });
});
