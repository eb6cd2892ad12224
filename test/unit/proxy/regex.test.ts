import { expect } from 'chai';
import { compileFullMatch, compileRegexRewrite, toSafeJs } from '../../../proxy/compile/regex.js';

// [pattern, input, expected full match]
const TABLE: [string, string, boolean][] = [
  ['\\d+$', '123', true],
  ['\\d+$', 'a123', false],
  ['\\d+$', '123a', false],
  ['/api/v[0-9]+/users/.*', '/api/v2/users/9', true],
  ['/api/v[0-9]+/users/.*', '/api/v/users/9', false],
  ['/api/v[0-9]+/users/.*', 'x/api/v2/users/9', false],
  ['a|b', 'a', true],
  ['a|b', 'ab', false],
  ['(?i)mozilla.*', 'Mozilla/5.0', true],
  ['(?i)mozilla.*', 'Chrome', false],
  ['.*', 'line\rbreak', true], // RE2 `.` matches \r; JS `.` would not
  ['.*', 'line\nbreak', false], // neither matches \n
  ['a\\sb', 'a\u00a0b', false], // RE2 \s is ASCII only
  ['a\\sb', 'a b', true],
  ['[a-c]{2,3}', 'abc', true],
  ['[a-c]{2,3}', 'abcd', false],
  ['(ab)+', 'ababab', true], // quantified group → re2js
  ['(a+)+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!', false], // catastrophic in V8, linear in RE2
  ['x.*y.*z', 'x123y456z', true],
  ['\\pL+', 'héllo', true],
  ['prefix-[^/]+', 'prefix-abc', true],
  ['prefix-[^/]+', 'prefix-a/c', false],
];

describe('proxy regex (RE2 full-match)', () => {
  for (const [p, input, want] of TABLE) {
    it(`${JSON.stringify(p)} on ${JSON.stringify(input)} → ${want}`, () => {
      expect(compileFullMatch(p).test(input)).to.equal(want);
      expect(compileFullMatch(p, { forceEngine: 're2' }).test(input)).to.equal(want);
    });
  }

  const UNSAFE = [
    '(a+)+',
    '(ab)*',
    'a*a*b',
    '\\d+\\d+x',
    '[a-z]*[a-z]*1',
    '.*.*x',
    '.*x.*',
    '(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b)(a|b).*',
    '(?=a)',
    '\\1',
    'é',
    '\\pL',
    '[[:alpha:]]',
    'a{1,100}b{1,100}',
  ];
  for (const p of UNSAFE) {
    it(`keeps ${JSON.stringify(p)} off the backtracking engine`, () => expect(toSafeJs(p)).to.equal(null));
  }

  const SAFE = [
    '\\d+',
    '/api/.*',
    'a|b|c',
    '[a-z0-9-]+\\.example\\.com',
    '(foo|bar)baz',
    'v[12]',
    '/api/v[0-9]+/users/.*',
    'a*b*',
    '[^/]+/[^/]+/.*',
    '\\d+-\\d+-\\d+$',
  ];
  for (const p of SAFE) {
    it(`translates ${JSON.stringify(p)} to a JS RegExp`, () => {
      expect(toSafeJs(p)).to.be.a('string');
      expect(compileFullMatch(p).engine).to.equal('js');
    });
  }

  it('guarded quantifiers stay fast on adversarial input (< 50 ms on 20k chars)', () => {
    for (const p of ['[0-9]+/[0-9]+/.*', 'a*b*c', '[^/]+/[^/]+/x']) {
      const m = compileFullMatch(p);
      expect(m.engine, p).to.equal('js');
      const t = performance.now();
      m.test('1'.repeat(10_000) + '/' + '2'.repeat(10_000));
      m.test('a'.repeat(20_000));
      expect(performance.now() - t, p).to.be.lessThan(50);
    }
  });

  it('linear time on a catastrophic pattern (< 50 ms on 10k chars)', () => {
    const m = compileFullMatch('(a+)+$');
    const t = performance.now();
    expect(m.test('a'.repeat(10_000) + '!')).to.equal(false);
    expect(performance.now() - t).to.be.lessThan(50);
  });

  it('rejects invalid RE2 with a coded error naming the pattern', () => {
    expect(() => compileFullMatch('(unclosed')).to.throw(/WEFT|invalid RE2 regex "\(unclosed"/);
    expect(() => compileFullMatch('(?<=a)b')).to.throw(/invalid RE2 regex/);
  });

  it('regex rewrite replaces every match with \\N groups', () => {
    const rw = compileRegexRewrite('^/service/([^/]+)(/.*)$', '\\2/instance/\\1');
    expect(rw('/service/foo/v1/api')).to.equal('/v1/api/instance/foo');
    expect(compileRegexRewrite('o', '0')('/foo/boo')).to.equal('/f00/b00');
    expect(compileRegexRewrite('x', '$1')('axb')).to.equal('a$1b');
  });
});
