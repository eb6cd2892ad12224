import { expect } from 'chai';
import { compileRouteMatch, queryParam, type RequestView } from '../../../proxy/compile/match.js';
import type { RouteMatch } from '../../../pkg/proxyconfig/types.js';

function view(over: Partial<RequestView> = {}): RequestView {
  return {
    method: 'GET',
    path: '/',
    query: '',
    target: '/',
    authority: 'reviews:9080',
    scheme: 'http',
    port: 9080,
    headers: {},
    ...over,
  };
}

// [description, match, request, expected]
const TABLE: [string, RouteMatch, Partial<RequestView>, boolean][] = [
  ['empty block matches all', {}, {}, true],
  ['uri exact', { uri: { exact: '/a' } }, { path: '/a' }, true],
  ['uri exact is case-sensitive', { uri: { exact: '/a' } }, { path: '/A' }, false],
  ['uri exact ignoreUriCase', { uri: { exact: '/a' }, ignoreUriCase: true }, { path: '/A' }, true],
  ['uri prefix', { uri: { prefix: '/api' } }, { path: '/api/v1' }, true],
  ['uri prefix miss', { uri: { prefix: '/api' } }, { path: '/ap' }, false],
  ['uri prefix ignoreUriCase', { uri: { prefix: '/API' }, ignoreUriCase: true }, { path: '/api/x' }, true],
  [
    'ignoreUriCase does not apply to regex',
    { uri: { regex: '/api' }, ignoreUriCase: true },
    { path: '/API' },
    false,
  ],
  ['uri regex is full match', { uri: { regex: '/v[0-9]' } }, { path: '/v1/x' }, false],
  ['uri ignores query', { uri: { exact: '/a' } }, { path: '/a', query: 'x=1' }, true],
  [
    'header exact',
    { headers: { 'end-user': { exact: 'jason' } } },
    { headers: { 'end-user': 'jason' } },
    true,
  ],
  [
    'header exact case-sensitive value',
    { headers: { 'end-user': { exact: 'jason' } } },
    { headers: { 'end-user': 'Jason' } },
    false,
  ],
  ['header absent fails exact', { headers: { 'end-user': { exact: 'jason' } } }, {}, false],
  [
    'header prefix',
    { headers: { 'user-agent': { prefix: 'Mozilla' } } },
    { headers: { 'user-agent': 'Mozilla/5' } },
    true,
  ],
  [
    'header regex (?i)',
    { headers: { 'user-agent': { regex: '(?i).*chrome.*' } } },
    { headers: { 'user-agent': 'x CHROME y' } },
    true,
  ],
  [
    'header presence {}',
    { headers: { 'x-canary': { present: true } } },
    { headers: { 'x-canary': '' } },
    true,
  ],
  ['header presence missing', { headers: { 'x-canary': { present: true } } }, {}, false],
  [
    'header names lowercased',
    { headers: { 'End-User': { exact: 'a' } } },
    { headers: { 'end-user': 'a' } },
    true,
  ],
  [
    'repeated header joined with comma',
    { headers: { 'x-a': { exact: '1,2' } } },
    { headers: { 'x-a': ['1', '2'] } },
    true,
  ],
  ['pseudo keys ignored inside headers', { headers: { method: { exact: 'POST' } } }, { method: 'GET' }, true],
  [
    'withoutHeaders negates',
    { withoutHeaders: { 'end-user': { exact: 'jason' } } },
    { headers: { 'end-user': 'jason' } },
    false,
  ],
  ['withoutHeaders absent header passes', { withoutHeaders: { 'end-user': { exact: 'jason' } } }, {}, true],
  [
    'withoutHeaders presence',
    { withoutHeaders: { 'x-debug': { present: true } } },
    { headers: { 'x-debug': '1' } },
    false,
  ],
  ['query exact', { queryParams: { v: { exact: '2' } } }, { query: 'a=1&v=2' }, true],
  ['query regex', { queryParams: { v: { regex: '\\d+' } } }, { query: 'v=22' }, true],
  ['query missing', { queryParams: { v: { exact: '2' } } }, { query: 'a=1' }, false],
  ['query percent-decoded', { queryParams: { q: { exact: 'a b' } } }, { query: 'q=a%20b' }, true],
  [
    'query malformed escape compared literally',
    { queryParams: { q: { exact: '%zz' } } },
    { query: 'q=%zz' },
    true,
  ],
  ['method', { method: { exact: 'POST' } }, { method: 'POST' }, true],
  ['method miss', { method: { exact: 'POST' } }, { method: 'GET' }, false],
  ['authority prefix', { authority: { prefix: 'reviews' } }, {}, true],
  ['scheme', { scheme: { exact: 'https' } }, {}, false],
  ['port', { port: 9080 }, {}, true],
  ['port miss', { port: 80 }, {}, false],
  [
    'fields are ANDed',
    { uri: { prefix: '/a' }, method: { exact: 'GET' }, headers: { x: { exact: '1' } } },
    { path: '/a', headers: { x: '2' } },
    false,
  ],
  [
    'fields are ANDed (all true)',
    { uri: { prefix: '/a' }, method: { exact: 'GET' }, headers: { x: { exact: '1' } } },
    { path: '/a', headers: { x: '1' } },
    true,
  ],
];

describe('proxy route matching', () => {
  for (const [name, m, req, want] of TABLE) {
    it(name, () => expect(compileRouteMatch(m)(view(req))).to.equal(want));
  }
  it('parses the query once and caches it', () => {
    const v = view({ query: 'a=1&a=2&b' });
    expect(queryParam(v, 'a')).to.equal('1');
    expect(queryParam(v, 'b')).to.equal('');
    expect(v.queryMap?.size).to.equal(2);
  });
});
