/**
 * The webhook's cost estimate against real time: regexes (pkg/validation/regex-cost.ts, against
 * re2js's compile time, for typical regexes and hostile families of ~1 KB, the length limit),
 * then whole objects (pkg/validation/limits.ts estimateCost, against validateObject as the
 * webhook calls it). A unit is meant as ~1 µs of a quiet core: `ratio` = estimated units /
 * measured µs must stay >= 1 for hostile input (the estimate is what keeps it off the main
 * thread, and what the hard limit is counted in) and not far above it for typical input.
 *   npx tsx bench/admission/cost.ts
 */
import { RE2JS } from 're2js';
import { validateObject, warmUp } from '../../pkg/validation/index.js';
import { estimateCost } from '../../pkg/validation/limits.js';
import { regexCost } from '../../pkg/validation/regex-cost.js';
import { checkRegexBacktracking } from '../../pkg/validation/primitives.js';

const fill = (unit: string, prefix = ''): string =>
  prefix + unit.repeat(Math.floor((1024 - prefix.length) / unit.length));

const families: Record<string, string> = {
  'typical: path': '/api/v1/(users|orders|items)/[a-z0-9]{8,64}(/[a-z]{1,16}){0,4}',
  'typical: prefix': '^/reviews/.*',
  'typical: header': '^(?i)bearer [a-z0-9._-]+$',
  'typical: version': 'v[0-9]+\\.[0-9]+\\.[0-9]+',
  'typical: origin': 'https?://([a-z0-9-]+\\.)*example\\.com(:[0-9]+)?',
  'typical: uuid': '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  'hostile: a{1000}': fill('a{1000}'),
  'hostile: [a-z]{1000}': fill('[a-z]{1000}'),
  'hostile: \\pL{1000}': fill('\\pL{1000}'),
  'hostile: (?i)\\pL{1000}': fill('\\pL{1000}', '(?i)'),
  'hostile: nested alternation': fill('(?:(?:ab|cd|ef){1,100}){1,10}'),
  'hostile: (?:a?){1000}': fill('(?:a?){1000}'),
  'hostile: (?:a*b*){1000}': fill('(?:a*b*){1000}'),
  'hostile: \\pL': fill('\\pL'),
  'hostile: (?i)\\pL': fill('\\pL', '(?i)'),
  'hostile: (?i)\\PL': fill('\\PL', '(?i)'),
  'hostile: (?i)[^\\pL\\pN]': fill('[^\\pL\\pN]', '(?i)'),
  'hostile: (?i) wide range': fill('[\\x{100}-\\x{10000}]', '(?i)'),
  'hostile: (?i) wider range': fill('[\\x{42}-\\x{1E942}]', '(?i)'),
  'hostile: \\w': fill('\\w'),
  'hostile: groups': fill('((((a))))'),
};

function measureMicros(re: string): number {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const t = performance.now();
    try {
      RE2JS.compile(re);
      checkRegexBacktracking(re);
    } catch {
      // invalid regexes cost their parse too
    }
    best = Math.min(best, performance.now() - t);
  }
  return best * 1000;
}

for (const re of Object.values(families)) measureMicros(re); // JIT warm-up
console.log('family                          length   estimate units   measured µs   ratio');
let worst = Infinity;
for (const [name, re] of Object.entries(families)) {
  const units = regexCost(re);
  const us = measureMicros(re);
  const ratio = units / us;
  if (name.startsWith('hostile')) worst = Math.min(worst, ratio);
  console.log(
    `${name.padEnd(30)} ${String(re.length).padStart(7)} ${String(units).padStart(16)} ${us.toFixed(0).padStart(13)} ${ratio.toFixed(2).padStart(7)}`,
  );
}
console.log(`lowest ratio among hostile regexes: ${worst.toFixed(2)} (must be >= 1 on a quiet machine)`);

const vs = (spec: unknown): unknown => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'cost', namespace: 'default' },
  spec,
});
const route = [{ destination: { host: 'reviews' } }];
const objects: Record<string, unknown> = {
  'typical: bookinfo reviews': vs({
    hosts: ['reviews'],
    http: [
      { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route },
      { match: [{ uri: { prefix: '/api/v1' } }], timeout: '5s', route },
      { route },
    ],
  }),
  'typical: 100 routes, regex each': vs({
    hosts: ['reviews'],
    http: Array.from({ length: 100 }, (_, i) => ({
      match: [{ uri: { regex: `/api/v${i}/[a-z]+(/.*)?` } }],
      route,
    })),
  }),
  'large: 6,000 routes, regex + header': vs({
    hosts: ['reviews'],
    http: Array.from({ length: 6000 }, (_, i) => ({
      match: [{ uri: { regex: `/api/v${i}/[a-z]+(/.*)?` }, headers: { 'x-user': { exact: `u${i}` } } }],
      route: [
        { destination: { host: 'reviews' }, weight: 50 },
        { destination: { host: 'ratings' }, weight: 50 },
      ],
    })),
  }),
  'hostile: 100,000 empty routes': vs({ hosts: ['r'], http: Array.from({ length: 100_000 }, () => ({})) }),
  'hostile: 1,450 regexes (issue #12)': vs({
    hosts: ['r'],
    http: [
      {
        match: Array.from({ length: 1450 }, (_, i) => ({
          uri: { regex: `/api/v${i}/(users|orders|items)/[a-z0-9]{8,64}(/[a-z]{1,16}){0,4}` },
        })),
        route,
      },
    ],
  }),
  'hostile: 30 x a{1000} regexes': vs({
    hosts: ['r'],
    http: [
      {
        match: Array.from({ length: 30 }, (_, i) => ({
          uri: { regex: `${i}${fill('a{1000}')}`.slice(0, 1024) },
        })),
        route,
      },
    ],
  }),
  'hostile: 2,000 nested prefixes': vs({
    hosts: ['r'],
    http: Array.from({ length: 2000 }, (_, i) => ({
      match: [{ uri: { prefix: `/${'a'.repeat(i + 1)}` } }],
      route,
    })),
  }),
  'hostile: 10,000 distinct prefixes': vs({
    hosts: ['r'],
    http: Array.from({ length: 10_000 }, (_, i) => ({ match: [{ uri: { prefix: `/x${i}y` } }], route })),
  }),
  'hostile: 50,000-value AuthorizationPolicy': {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'cost', namespace: 'default' },
    spec: {
      rules: Array.from({ length: 500 }, (_, i) => ({
        to: [{ operation: { paths: Array.from({ length: 100 }, (_, j) => `/p${i}/${j}`) } }],
      })),
    },
  },
};

warmUp();
for (const obj of Object.values(objects)) validateObject(obj, { maxFindings: 500 }); // JIT warm-up
console.log('\nobject                                  estimate units   measured µs   ratio');
for (const [name, obj] of Object.entries(objects)) {
  const units = estimateCost(obj).units;
  let best = Infinity;
  for (let k = 0; k < 2; k++) {
    const t = performance.now();
    validateObject(obj, { maxFindings: 500 });
    best = Math.min(best, (performance.now() - t) * 1000);
  }
  console.log(
    `${name.padEnd(38)} ${String(units).padStart(16)} ${best.toFixed(0).padStart(13)} ${(units / best).toFixed(2).padStart(7)}`,
  );
}
