/**
 * The catastrophic-backtracking shape check: nested unbounded repetition is found, ordinary
 * patterns (including Istio's own samples) are left alone, and the scan never runs a pattern.
 */
import { expect } from 'chai';
import { nestedRepetition } from '../../../pkg/validation/regex-shape.js';

describe('nestedRepetition (ReDoS shape)', () => {
  const flagged: [string, string][] = [
    ['(a+)+$', '(a+)+'],
    ['(a*)*', '(a*)*'],
    ['^(.*,)*x', '(.*,)*'],
    ['(\\w+\\s?){2,}', '(\\w+\\s?){2,}'],
    ['(a+){1,50}', '(a+){1,50}'],
    ['(?:a+)+b', '(?:a+)+'],
    ['(?P<word>[a-z]+)*', '(?P<word>[a-z]+)*'],
    ['(?<word>x+y)+', '(?<word>x+y)+'],
    ['((a)+)+', '((a)+)+'],
    ['(x+x+)+y', '(x+x+)+'],
    ['((ab)*c)+?', '((ab)*c)+?'],
    ['/api/(v[0-9]+/)*items', '(v[0-9]+/)*'],
  ];
  for (const [re, group] of flagged)
    it(`flags ${re} at ${group}`, () => expect(nestedRepetition(re)).to.equal(group));

  const fine = [
    '^(.*?;)?(user=dev-123)(;.*)?',
    '/reviews/.*',
    '(a+){2}',
    '(a+){2,10}',
    '(a|b)*c',
    '[(]+[)]*',
    '\\(a+\\)+',
    '\\Q(a+)+\\E',
    '(?i)^(GET|POST)$',
    '(ab+c)?',
    '[[:alpha:]]+(-[[:alnum:]]+)?',
    '\\p{Greek}+(x)*',
    '\\x{41}+(b)*',
    '^/[a-z]+/[0-9]{1,5}$',
  ];
  for (const re of fine) it(`leaves ${re} alone`, () => expect(nestedRepetition(re)).to.equal(undefined));

  it('scans a long pattern in linear time', () => {
    const re = `${'(a|b)'.repeat(100)}${'x*'.repeat(400)}`;
    const start = performance.now();
    expect(nestedRepetition(re)).to.equal(undefined);
    expect(performance.now() - start).to.be.lessThan(1000);
  });
});
