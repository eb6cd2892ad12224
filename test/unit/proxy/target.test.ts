/**
 * The request head routing sees (RFC 9112 §3.2 request-target forms, RFC 9110 §7.2 Host, Envoy's
 * codec and header-validator behaviour): which authority and which path a request is for.
 */
import { expect } from 'chai';
import { parseRequestHead, validAuthority, type HeadResult } from '../../../proxy/router/target.js';
import type { PathNormalization } from '../../../proxy/router/path.js';

type Case = [string, string, string, string[], HeadResult | 400 | 404, PathNormalization?];

const ok = (authority: string, path: string, query: string, target: string, form = 'origin'): HeadResult =>
  ({ form, authority, path, query, target }) as HeadResult;

const CASES: Case[] = [
  ['origin-form', 'GET', '/a?b=1', ['reviews:9080'], ok('reviews:9080', '/a', 'b=1', '/a?b=1')],
  ['an empty query keeps its ?', 'GET', '/a?', ['r'], ok('r', '/a', '', '/a?')],
  [
    'absolute-form: the target authority replaces Host, path forwarded in origin form',
    'GET',
    'http://app:8080/admin/secret',
    ['other'],
    ok('app:8080', '/admin/secret', '', '/admin/secret', 'absolute'),
  ],
  [
    'absolute-form without Host',
    'GET',
    'http://app:8080/x?y=1',
    [],
    ok('app:8080', '/x', 'y=1', '/x?y=1', 'absolute'),
  ],
  ['absolute-form, empty path → /', 'GET', 'http://app', [], ok('app', '/', '', '/', 'absolute')],
  ['absolute-form, query only → /?q', 'GET', 'http://app?q', [], ok('app', '/', 'q', '/?q', 'absolute')],
  [
    'absolute-form scheme is case-insensitive',
    'GET',
    'HTTP://App:80/x',
    [],
    ok('App:80', '/x', '', '/x', 'absolute'),
  ],
  [
    'absolute-form path is normalized too',
    'GET',
    'http://app/x/../admin',
    [],
    ok('app', '/admin', '', '/admin', 'absolute'),
  ],
  [
    'absolute-form IPv6 literal',
    'GET',
    'http://[::1]:8080/p',
    [],
    ok('[::1]:8080', '/p', '', '/p', 'absolute'),
  ],
  ['absolute-form https on a plain-text listener', 'GET', 'https://app/x', [], 400],
  ['absolute-form other scheme', 'GET', 'ftp://app/x', [], 400],
  ['absolute-form userinfo', 'GET', 'http://user@app/x', [], 400],
  ['absolute-form empty authority', 'GET', 'http:///x', [], 400],
  ['absolute-form port 0', 'GET', 'http://app:0/x', [], 400],
  ['absolute-form port over 65535', 'GET', 'http://app:65536/x', [], 400],
  ['absolute-form still needs a valid Host if one is sent', 'GET', 'http://app/x', ['a@b'], 400],
  ['asterisk-form OPTIONS * is not routed (Envoy: 404)', 'OPTIONS', '*', ['app'], 404],
  ['asterisk-form with another method', 'GET', '*', ['app'], 400],
  ['authority-form outside CONNECT', 'GET', 'app:8080', ['app'], 400],
  ['a relative reference', 'GET', 'admin', ['app'], 400],
  ['a fragment (Envoy rejects it)', 'GET', '/a#frag', ['app'], 400],
  ['two Host fields', 'GET', '/', ['a', 'b'], 400],
  ['two identical Host fields', 'GET', '/', ['a', 'a'], 400],
  ['Host with userinfo', 'GET', '/', ['name@evil'], 400],
  ['empty Host', 'GET', '/', [''], 400],
  ['no Host', 'GET', '/', [], 400],
  ['dot segments are resolved before matching', 'GET', '/x/../admin', ['a'], ok('a', '/admin', '', '/admin')],
  ['%2e%2e too', 'GET', '/%2e%2e/admin', ['a'], ok('a', '/admin', '', '/admin')],
  [
    'the query is never normalized',
    'GET',
    '/a/../b?x=/../%2e%2e//y',
    ['a'],
    ok('a', '/b', 'x=/../%2e%2e//y', '/b?x=/../%2e%2e//y'),
  ],
  ['a path that cannot be normalized safely', 'GET', '/admin%00', ['a'], 400],
  [
    'NONE leaves the path as received',
    'GET',
    '/x/../admin',
    ['a'],
    ok('a', '/x/../admin', '', '/x/../admin'),
    'NONE',
  ],
  [
    'MERGE_SLASHES',
    'GET',
    '//admin//x?a=//',
    ['a'],
    ok('a', '/admin/x', 'a=//', '/admin/x?a=//'),
    'MERGE_SLASHES',
  ],
];

describe('proxy request head (request-target forms, Host)', () => {
  for (const [name, method, url, hosts, want, mode] of CASES)
    it(`${name}: ${method} ${url} Host ${JSON.stringify(hosts)}`, () => {
      const got = parseRequestHead(method, url, hosts, mode ?? 'BASE');
      if (typeof want === 'number') {
        expect(got).to.include({ status: want, flag: want === 400 ? 'DPE' : 'NR' });
        expect((got as { detail: string }).detail)
          .to.be.a('string')
          .and.not.equal('');
      } else expect(got).to.deep.equal(want);
    });

  const AUTHORITIES: [string, boolean][] = [
    ['reviews', true],
    ['reviews:9080', true],
    ['reviews.default.svc.cluster.local:9080', true],
    ['10.0.0.1:80', true],
    ['[::1]', true],
    ['[2001:db8::1]:443', true],
    ['xn--bcher-kva.example', true],
    ['a_b-c~d', true],
    ['', false],
    ['name@evil', false],
    ['user:pw@host', false],
    ['host:', false],
    ['host:0', false],
    ['host:65536', false],
    ['host:123456', false],
    ['host:+80', false],
    ['host:8a', false],
    ['a:b:c', false],
    ['ex ample', false],
    ['app/x', false],
    ['app?x', false],
    ['[::1', false],
    ['[]', false],
    ['[::1]x', false],
    ['[::1]:', false],
    ['[fe80::1%25eth0]', false],
    ['app\u00e9', false],
  ];
  for (const [value, want] of AUTHORITIES)
    it(`Host ${JSON.stringify(value)} is ${want ? 'valid' : 'refused'}`, () => {
      expect(validAuthority(value)).to.equal(want);
    });
});
