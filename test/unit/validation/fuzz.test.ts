/**
 * validateObject and analyzeObjects never throw, whatever the input: corpus objects with
 * random parts replaced (nulls, wrong types, huge strings, deep values, hostile regexes) must
 * come back as findings. Seeded, so a failure reproduces.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { analyzeObjects, validateObject } from '../../../pkg/validation/index.js';

const CORPUS = process.env.WEFT_CONFORMANCE_DIR ?? join(import.meta.dirname, '../../data/istio-validation');

/** mulberry32: small, seedable, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REPLACEMENTS: unknown[] = [
  null,
  0,
  -1,
  1.5,
  2 ** 53,
  '',
  '*',
  'x'.repeat(2000),
  '(a+)+$',
  '%',
  '0s',
  '1.5ms',
  true,
  [],
  [null],
  {},
  { exact: '', prefix: '' },
  { '': '' },
  [[[[[]]]]],
];

/** Every path to a value inside `v`. */
function paths(
  v: unknown,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((c, i) => paths(c, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) paths(c, [...prefix, k], out);
  return out;
}

function mutate(obj: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let cur = copy;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
  cur[path[path.length - 1] as string | number] = value;
  return copy;
}

describe('validation never throws (seeded fuzz over the corpus)', function () {
  this.timeout(60_000);
  const objects = ['valid', 'invalid'].flatMap((d) =>
    readdirSync(join(CORPUS, d)).map((f) => parse(readFileSync(join(CORPUS, d, f), 'utf8')) as unknown),
  );

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 1500 mutated objects → findings, no exceptions`, () => {
      const random = rng(seed);
      const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;
      const batch: unknown[] = [];
      for (let n = 0; n < 1500; n++) {
        let obj = pick(objects);
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--)
          obj = mutate(obj, pick(paths(obj)), pick(REPLACEMENTS));
        let result;
        try {
          result = validateObject(obj);
        } catch (err) {
          throw new Error(`validateObject threw on ${JSON.stringify(obj).slice(0, 400)}: ${String(err)}`, {
            cause: err,
          });
        }
        expect(result.errors).to.be.an('array');
        expect(result.warnings).to.be.an('array');
        batch.push(obj);
      }
      expect(() => analyzeObjects(batch)).to.not.throw();
    });
  }
});
