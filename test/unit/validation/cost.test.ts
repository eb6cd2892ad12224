/**
 * Cost bounding in pkg/validation: the regex cost estimate (regex-cost.ts), the object cost
 * estimate the webhook routes by (limits.ts estimateCost), and the findings cap. None of it may
 * change a verdict; the figures behind the constants come from `npx tsx bench/admission/cost.ts`.
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';
import { MAX_DEPTH, MAX_NODES, estimateCost } from '../../../pkg/validation/limits.js';
import { REGEX_BASE_UNITS, regexCost } from '../../../pkg/validation/regex-cost.js';

const fill = (unit: string, prefix = ''): string =>
  prefix + unit.repeat(Math.floor((1024 - prefix.length) / unit.length));

const vs = (spec: unknown): Record<string, unknown> => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'cost', namespace: 'default' },
  spec,
});
const route = [{ destination: { host: 'r' } }];

describe('regexCost: what compiling a regex costs, from its text', () => {
  // Lower bounds from re2js's measured compile time (bench/admission/cost.ts, quiet machine):
  // the estimate must never be below what the regex really costs, in µs.
  const atLeast: [string, string, number][] = [
    ['a thousand copies of a literal, 146 times', fill('a{1000}'), 285_000],
    ['nested counted alternation', fill('(?:(?:ab|cd|ef){1,100}){1,10}'), 250_000],
    ['a thousand optional pieces, 93 times', fill('(?:a?){1000}'), 125_000],
    ['Unicode classes under case folding', fill('\\pL', '(?i)'), 23_000],
    ['case-folded wide ranges (rune by rune)', fill('[\\x{100}-\\x{10000}]', '(?i)'), 105_000],
    ['case-folded ranges given as literals', fill('[Ā-耀]', '(?i)'), 260_000],
  ];
  for (const [title, re, micros] of atLeast)
    it(`charges at least the measured cost: ${title}`, () => expect(regexCost(re)).to.be.at.least(micros));

  const cheap: [string, number][] = [
    ['^/reviews/.*', 1_000],
    ['/api/v1/(users|orders|items)/[a-z0-9]{8,64}(/[a-z]{1,16}){0,4}', 2_000],
    ['[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 1_000],
  ];
  for (const [re, most] of cheap)
    it(`keeps a typical regex cheap: ${re}`, () =>
      expect(regexCost(re)).to.be.within(REGEX_BASE_UNITS, most));

  it('a range is only expensive under case folding', () => {
    expect(regexCost('[\\x{100}-\\x{10000}]')).to.be.below(500);
    expect(regexCost('(?i)[\\x{100}-\\x{10000}]')).to.be.above(6_000);
    expect(regexCost('(?i:[\\x{100}-\\x{10000}])')).to.be.above(6_000);
  });

  it('a regex over the length limit is refused before compiling: it costs its length', () => {
    const long = 'a{1000}'.repeat(200);
    expect(regexCost(long)).to.equal(long.length);
  });

  it('stays finite on text re2js refuses (unbalanced, counts over 1000)', () => {
    for (const re of ['((((a', 'a))))', '(a{1000}){1000}', '[', '\\', 'x{99999999}'])
      expect(Number.isFinite(regexCost(re)), re).to.equal(true);
  });
});

describe('estimateCost: one bounded walk of the object', () => {
  it('finds every regex the VirtualService rules compile', () => {
    const m = { regex: 'a+' };
    const est = estimateCost(
      vs({
        hosts: ['r'],
        http: [
          {
            match: [
              {
                uri: m,
                scheme: m,
                method: m,
                authority: m,
                headers: { h: m },
                queryParams: { q: m },
                withoutHeaders: { w: m },
              },
            ],
            rewrite: { uriRegexRewrite: { match: 'a+', rewrite: '/' } },
            corsPolicy: { allowOrigins: [m, { exact: 'x' }] },
            route,
          },
        ],
      }),
    );
    expect(est.regexes).to.equal(9);
    expect(est.regexUnits).to.equal(9 * regexCost('a+'));
  });

  it('charges every pair of uri prefix matches (Istio compares them pairwise)', () => {
    const prefixes = (n: number): Record<string, unknown> =>
      vs({
        hosts: ['r'],
        http: Array.from({ length: n }, (_, i) => ({ match: [{ uri: { prefix: `/p${i}` } }], route })),
      });
    const small = estimateCost(prefixes(1_000));
    const large = estimateCost(prefixes(10_000));
    expect(small.prefixMatches).to.equal(1_000);
    // ten times the matches, a hundred times the pairs: the pair term dominates
    expect(large.units / small.units).to.be.above(50);
  });

  it('stops at the depth limit without recursing, however deep the input', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const est = estimateCost(vs({ hosts: ['r'], http: deep }));
    expect(est.shape).to.deep.equal({ kind: 'depth', limit: MAX_DEPTH });
  });

  it('stops at the node limit', () => {
    const est = estimateCost(vs({ hosts: new Array(MAX_NODES + 10).fill('h') }));
    expect(est.shape).to.deep.equal({ kind: 'nodes', limit: MAX_NODES });
    expect(est.nodes).to.equal(MAX_NODES + 1);
  });

  it('stops on a cyclic object (YAML aliases) at the depth limit', () => {
    const spec: Record<string, unknown> = { hosts: ['r'] };
    spec.self = spec;
    expect(estimateCost(vs(spec)).shape?.kind).to.equal('depth');
  });
});

describe('validateObject maxFindings', () => {
  const broken = vs({ hosts: ['r'], http: Array.from({ length: 2_000 }, () => ({})) });

  it('keeps the first findings and counts the rest; the verdict is the same', () => {
    const all = validateObject(broken);
    const capped = validateObject(broken, { maxFindings: 10 });
    expect(all.errors.length).to.be.above(1_000);
    expect(capped.errors.slice(0, 10)).to.deep.equal(all.errors.slice(0, 10));
    expect(capped.errors).to.have.length(11);
    expect(capped.errors[10]).to.deep.equal({
      path: '(document)',
      message: `${all.errors.length - 10} more errors not listed`,
      rule: 'report.truncated',
    });
  });

  it('caps warnings the same way (a pairwise check can find millions)', () => {
    const nested = vs({
      hosts: ['r'],
      http: Array.from({ length: 100 }, (_, i) => ({
        match: [{ uri: { prefix: `/${'a'.repeat(i + 1)}` } }],
        route,
      })),
    });
    const all = validateObject(nested);
    const capped = validateObject(nested, { maxFindings: 5 });
    expect(all.warnings).to.have.length(4_950); // every earlier prefix covers every later one
    expect(capped.warnings.slice(0, 5)).to.deep.equal(all.warnings.slice(0, 5));
    expect(capped.warnings[5]?.message).to.equal('4945 more warnings not listed');
    expect(capped.errors).to.deep.equal(all.errors);
  });

  it('changes nothing for an object under the cap', () => {
    const ok = vs({ hosts: ['r'], http: [{ match: [{ uri: { regex: '(a+)+' } }], route }] });
    expect(validateObject(ok, { maxFindings: 10 })).to.deep.equal(validateObject(ok));
  });
});
