/**
 * Properties of the admission handler under arbitrary input (fast-check, fixed seed, bounded
 * runs), sent over real HTTPS to the real server: AdmissionReview bodies of random shape, depth,
 * size and cost (valid and garbage JSON, wrong types at every level, huge arrays, deep nesting,
 * many regexes). It always answers, with an AdmissionReview or a coded error from the documented
 * set, never a 500; answers stay within their limits; the server keeps serving; and a valid small
 * object gets exactly the verdict the validation engine alone gives it (the hardening changes
 * where and whether work is done, never the verdict).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { boundWarnings } from '../../../pkg/admission/index.js';
import { analyzeObjects, validateObject } from '../../../pkg/validation/index.js';
import { startTestServer, type TestServer } from './helpers.js';

type Obj = Record<string, unknown>;
const SEED = 1212;
/** The denial message limit (webhook/validate.ts) plus its truncation note. */
const MAX_DENIAL_CHARS = 32 * 1024 + 80;
const ERROR_STATUSES = [400, 413, 503, 504];

const vs = (spec: unknown): Obj => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'r', namespace: 'prop' },
  spec,
});

function envelope(object: unknown): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'prop-uid',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
      operation: 'CREATE',
      namespace: 'prop',
      name: 'r',
      object,
    },
  };
}

const route = [{ destination: { host: 'r' } }];
const typical = vs({ hosts: ['r'], http: [{ route }] });

/** Every level of a valid envelope, to put a value of the wrong type at. */
const PATHS: (string | number)[][] = [
  [],
  ['apiVersion'],
  ['kind'],
  ['request'],
  ['request', 'uid'],
  ['request', 'kind'],
  ['request', 'kind', 'kind'],
  ['request', 'kind', 'group'],
  ['request', 'operation'],
  ['request', 'namespace'],
  ['request', 'dryRun'],
  ['request', 'userInfo'],
  ['request', 'oldObject'],
  ['request', 'object'],
  ['request', 'object', 'apiVersion'],
  ['request', 'object', 'metadata'],
  ['request', 'object', 'metadata', 'name'],
  ['request', 'object', 'spec'],
  ['request', 'object', 'spec', 'hosts'],
  ['request', 'object', 'spec', 'http'],
  ['request', 'object', 'spec', 'http', 0],
  ['request', 'object', 'spec', 'http', 0, 'route'],
  ['request', 'object', 'spec', 'http', 0, 'route', 0, 'destination'],
];

function setAt(root: Obj, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let cur = root as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) cur = cur[seg] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return root;
}

const wrongType = fc
  .tuple(fc.constantFrom(...PATHS), fc.jsonValue({ maxDepth: 3 }))
  .map(([path, value]) => JSON.stringify(setAt(envelope(structuredClone(typical)), path, value)));

/**
 * Nested `levels` deep at one of four places; padded past the worker's byte threshold or not; a
 * CREATE, or an UPDATE whose old object is the same (the spec-unchanged comparison walks both).
 */
const nested = fc
  .record({
    levels: fc.integer({ min: 1, max: 12_000 }),
    open: fc.constantFrom('[', '{"a":'),
    balanced: fc.boolean(),
    where: fc.constantFrom('body', 'object', 'spec', 'http'),
    pad: fc.boolean(),
    update: fc.boolean(),
  })
  .map(({ levels, open, balanced, where, pad, update }) => {
    const close = open === '[' ? ']' : '}';
    const deep = `${open.repeat(levels)}${open === '[' ? '' : '1'}${balanced ? close.repeat(levels) : ''}`;
    if (where === 'body') return deep;
    const object =
      where === 'object'
        ? '@X@'
        : vs(where === 'spec' ? '@X@' : { hosts: ['r'], http: '@X@', pad: pad ? 'p'.repeat(70 * 1024) : '' });
    const holder = envelope(object) as { request: Obj };
    if (update) {
      holder.request.operation = 'UPDATE';
      holder.request.oldObject = structuredClone(object);
    }
    return JSON.stringify(holder).replaceAll('"@X@"', deep);
  });

const hugeArray = fc
  .integer({ min: 0, max: 60_000 })
  .map((n) => JSON.stringify(envelope(vs({ hosts: ['r'], http: Array.from({ length: n }, () => ({})) }))));

const HOSTILE_REGEXES = [
  'a{1000}',
  '(?:(?:ab|cd){1,100}){1,10}',
  '(?i)\\pL',
  '(?i)[\\x{100}-\\x{10000}]',
  '(a+)+',
];
const regexText = fc.oneof(
  fc.constantFrom(...HOSTILE_REGEXES).map((unit) => unit.repeat(Math.floor(1024 / unit.length))),
  fc.stringMatching(/^[a-z0-9()|*+?{}[\]\\.,^$-]{0,40}$/),
);
const manyRegexes = fc.tuple(fc.integer({ min: 0, max: 1_500 }), regexText).map(([n, re]) =>
  JSON.stringify(
    envelope(
      vs({
        hosts: ['r'],
        http: [
          {
            match: Array.from({ length: n }, (_, i) => ({ uri: { regex: `${i}${re}`.slice(0, 1024) } })),
            route,
          },
        ],
      }),
    ),
  ),
);

const truncated = fc
  .tuple(fc.constantFrom(JSON.stringify(envelope(typical))), fc.nat())
  .map(([text, at]) => text.slice(0, at % text.length));

const anyBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 4 }),
  wrongType,
  nested,
  hugeArray,
  manyRegexes,
  truncated,
);

/** What every answer must look like, whatever was sent. */
function checkAnswer(r: { status: number; text: string }): void {
  expect(r.status, r.text.slice(0, 300)).to.be.oneOf([200, ...ERROR_STATUSES]);
  const body = JSON.parse(r.text) as {
    response?: {
      uid: unknown;
      allowed: unknown;
      status?: { code: number; message: string };
      warnings?: string[];
    };
    code?: string;
    message?: string;
  };
  if (r.status !== 200) {
    expect(body.code).to.match(/^WEFT_[A-Z_]+$/);
    expect(body.message?.startsWith(`${body.code}: `)).to.equal(true);
    return;
  }
  const resp = body.response!;
  expect(resp.uid).to.be.a('string');
  expect(resp.allowed).to.be.a('boolean');
  if (resp.allowed === false) {
    expect(resp.status?.code).to.be.oneOf([400, 403]);
    expect(resp.status?.message.length).to.be.within(1, MAX_DENIAL_CHARS);
  }
  const warnings = resp.warnings ?? [];
  for (const w of warnings) expect(w.length).to.be.at.most(256);
  expect(warnings.join('').length).to.be.at.most(4096);
}

/** Small VirtualServices, valid or not, from the fields the rules look at. */
const host = fc.constantFrom(
  'r',
  'reviews',
  'reviews.prop.svc.cluster.local',
  '*.example.com',
  '',
  'Bad_Host',
  '*',
);
const stringMatch = fc.oneof(
  fc.record({ exact: fc.constantFrom('/a', '', 'x') }),
  fc.record({ prefix: fc.constantFrom('/', '/a', '/ab', '') }),
  fc.record({
    regex: fc.oneof(
      fc.constantFrom('.*', '(a+)+', '[', '/api/v[0-9]+/.*', ''),
      fc.stringMatching(/^[a-z(|)*+.]{0,8}$/),
    ),
  }),
);
const httpRoute = fc.record(
  {
    name: fc.constantFrom('a', 'b', 'a'),
    match: fc.array(
      fc.record(
        {
          uri: stringMatch,
          headers: fc.dictionary(fc.constantFrom('x-user', 'X-Bad Header'), stringMatch, { maxKeys: 2 }),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    route: fc.array(
      fc.record(
        {
          destination: fc.record(
            { host, subset: fc.constantFrom('v1', 'v2', 'BAD') },
            { requiredKeys: ['host'] },
          ),
          weight: fc.integer({ min: -5, max: 120 }),
        },
        { requiredKeys: ['destination'] },
      ),
      { maxLength: 3 },
    ),
    timeout: fc.constantFrom('5s', '1.5s', 'bad', '-1s'),
  },
  { requiredKeys: [] },
);
/** Mostly valid: real hosts, routes with destinations and weights that add up. */
const validHost = fc.constantFrom('r', 'reviews', 'reviews.prop.svc.cluster.local', 'ratings');
const validRoute = fc.record(
  {
    match: fc.array(
      fc.record({
        uri: fc.oneof(
          fc.record({ prefix: fc.constantFrom('/', '/a', '/ab', '/api') }),
          fc.record({ exact: fc.constantFrom('/a', '/b') }),
          fc.record({ regex: fc.constantFrom('/api/v[0-9]+/.*', '[a-z]+', '(?i)/Login') }),
        ),
      }),
      { maxLength: 2 },
    ),
    route: fc.oneof(
      validHost.map((h) => [{ destination: { host: h } }]),
      fc
        .tuple(validHost, validHost, fc.constantFrom([50, 50], [90, 10], [100, 0]))
        .map(([a, b, [wa, wb]]) => [
          { destination: { host: a }, weight: wa },
          { destination: { host: b }, weight: wb },
        ]),
    ),
    timeout: fc.constantFrom('5s', '250ms'),
  },
  { requiredKeys: ['route'] },
);
const validSpec = fc.record({
  hosts: fc.array(validHost, { minLength: 1, maxLength: 2 }),
  http: fc.array(validRoute, { minLength: 1, maxLength: 4 }),
});

const smallSpec = fc.record(
  { hosts: fc.array(host, { maxLength: 3 }), http: fc.array(httpRoute, { maxLength: 4 }) },
  { requiredKeys: [] },
);

const anySmallSpec = fc.oneof({ arbitrary: validSpec, weight: 3 }, { arbitrary: smallSpec, weight: 2 });

/** The verdict of the validation engine alone (no cost routing, no findings cap), as the webhook words it. */
function engineVerdict(obj: Obj): { allowed: boolean; message?: string; warnings?: string[] } {
  const result = validateObject(obj, { defaultNamespace: 'prop' });
  const cross = analyzeObjects([obj]);
  const errors = [...result.errors, ...cross.filter((f) => f.severity === 'error')];
  const warnings = [...result.warnings, ...cross.filter((f) => f.severity !== 'error')].map(
    (f) => `${f.path}: ${f.message}`,
  );
  const bounded = warnings.length > 0 ? { warnings: boundWarnings(warnings) } : {};
  if (errors.length === 0) return { allowed: true, ...bounded };
  return {
    allowed: false,
    message: `VirtualService prop/r: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    ...bounded,
  };
}

describe('admission handler properties (fast-check)', function () {
  this.timeout(120_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer()));
  after(async () => srv.close());

  it('always answers an AdmissionReview or a coded 4xx/503/504, within the answer limits', async () => {
    await fc.assert(
      fc.asyncProperty(anyBody, async (text) => checkAnswer(await srv.post('/validate', text, true))),
      { seed: SEED, numRuns: 250 },
    );
    const r = await srv.post('/validate', envelope(typical));
    expect(r.json.response.allowed).to.equal(true);
  });

  it('gives a valid small object the verdict of the validation engine alone', async () => {
    await fc.assert(
      fc.asyncProperty(anySmallSpec, async (spec) => {
        const obj = vs(JSON.parse(JSON.stringify(spec)) as unknown);
        const r = await srv.post('/validate', envelope(obj));
        expect(r.status).to.equal(200);
        const want = engineVerdict(obj);
        const got = r.json.response;
        expect({
          allowed: got.allowed,
          ...(got.allowed ? {} : { message: got.status.message }),
          ...(got.warnings ? { warnings: got.warnings } : {}),
        }).to.deep.equal(want);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
