/**
 * The webhook under hostile input (issue #12), on a real TLS server: what crashed it, what
 * stalled it, what held its memory and its sockets. Each case asserts behaviour (alive, the
 * bounded answer, the connection cut), never how fast; bench/admission/abuse.ts measures.
 */
import { expect } from 'chai';
import { connect } from 'node:tls';
import { MAX_BODY_DEPTH, nestsDeeperThan } from '../../../pkg/admission/index.js';
import { MeshIndex, referenceTokens } from '../../../webhook/mesh-index.js';
import { ValidationPool } from '../../../webhook/validate-pool.js';
import { reviewOf, startTestServer, type TestServer } from './helpers.js';

type Obj = Record<string, unknown>;
const route = [{ destination: { host: 'r' } }];

function vs(spec: unknown, name = 'r', namespace = 'abuse'): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace },
    spec,
  };
}

/** `spec.http` nested `levels` deep, as JSON text (JSON.stringify itself overflows on such input). */
function nestedBody(levels: number, pad = 0): string {
  const review = reviewOf(vs({ hosts: ['r'], http: '@DEEP@', pad: 'p'.repeat(pad) }));
  return JSON.stringify(review).replace('"@DEEP@"', `${'['.repeat(levels)}${']'.repeat(levels)}`);
}

/** A cheap, valid object: the "other admissions" that must keep being answered. */
const typical = vs({ hosts: ['r'], http: [{ route }] });

async function expectServing(srv: TestServer): Promise<void> {
  const r = await srv.post('/validate', reviewOf(typical));
  expect(r.status).to.equal(200);
  expect(r.json.response.allowed).to.equal(true);
}

async function counter(srv: TestServer, placement: string): Promise<number> {
  const text = (await srv.get('/metrics')).text;
  const m = new RegExp(`weft_webhook_validations_total\\{placement="${placement}"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

describe('webhook under hostile input: depth (issue #12, item 5)', function () {
  this.timeout(60_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer({ handlerTimeoutMs: 30_000, poolJobTimeoutMs: 30_000 })));
  after(async () => srv.close());

  it('survives the crash sequence: two 100,000-route objects, then a body nested 100,000 deep', async () => {
    const empty = reviewOf(vs({ hosts: ['r'], http: Array.from({ length: 100_000 }, () => ({})) }));
    const first = [srv.post('/validate', empty), srv.post('/validate', empty)];
    const deep = await srv.post('/validate', nestedBody(100_000), true);
    expect(deep.status).to.equal(400);
    expect(deep.json.message).to.equal(
      `WEFT_ADMISSION_MALFORMED: body nests objects or arrays deeper than ${MAX_BODY_DEPTH} levels; the API server never sends more than 10000 in an object`,
    );
    for (const r of await Promise.all(first)) {
      expect(r.status).to.equal(200);
      expect(r.json.response.allowed).to.equal(false);
      // 500 errors listed at most, and the count of the rest
      expect(r.json.response.status.message).to.match(/^VirtualService abuse\/r: spec\.http\[0\]\.route: /);
    }
    await expectServing(srv);
  });

  it('denies an object nested past the validator limit on the worker path, never passing it to the worker', async () => {
    // Under the API server's 10,000 but over pkg/validation's 100; over the pool's byte threshold.
    const r = await srv.post('/validate', nestedBody(5_000, 70 * 1024), true);
    expect(r.status).to.equal(200);
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status.message).to.equal(
      'VirtualService abuse/r: (document): object nested deeper than 100 levels; refusing to validate it',
    );
    await expectServing(srv);
  });

  it('lets a metadata-only update of a stored object nested 9,000 deep through, with warnings', async () => {
    const text = nestedBody(9_000);
    const review = JSON.parse(text) as { request: Obj };
    review.request.operation = 'UPDATE';
    review.request.oldObject = review.request.object; // same spec: a label or finalizer change
    const r = await srv.post('/validate', review);
    expect(r.status).to.equal(200);
    expect(r.json.response.allowed).to.equal(true);
    expect(r.json.response.warnings).to.deep.equal([
      'existing spec is invalid: (document): object nested deeper than 100 levels; refusing to validate it',
    ]);
  });

  it('refuses a pod nested past the limit with a 400 before injecting', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 150; i++) deep = { d: deep };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'abuse' },
      spec: { containers: [{ name: 'a', image: 'a' }], deep },
    };
    const r = await srv.post('/inject', reviewOf(pod));
    expect(r.status).to.equal(400);
    expect(r.json.message).to.equal(
      'WEFT_ADMISSION_MALFORMED: request.object: nests deeper than 100 levels; no Pod the API server stores does',
    );
  });
});

describe('nestsDeeperThan: depth of a JSON text from its bytes', () => {
  const cases: [string, string, number, boolean][] = [
    ['flat object', '{"a":1}', 1, false],
    ['one level too many', '{"a":[1]}', 1, true],
    ['brackets inside strings do not count', `{"a":"${'['.repeat(50)}"}`, 1, false],
    ['escaped quotes stay inside the string', `{"a":"\\"[[[[[["}`, 1, false],
    ['an escaped backslash ends before the quote', `{"a":"\\\\","b":[[1]]}`, 2, true],
    ['UTF-8 text is not a bracket', `{"a":"é[ü"}`, 1, false],
    ['exactly at the limit', '[[[]]]', 3, false],
    ['just over it', '[[[[]]]]', 3, true],
  ];
  for (const [title, json, limit, want] of cases)
    it(`${title}: ${json.slice(0, 30)} (limit ${limit}) → ${want}`, () =>
      expect(nestsDeeperThan(Buffer.from(json), limit)).to.equal(want));
});

describe('webhook under hostile input: cost (issue #12, item 6)', function () {
  this.timeout(60_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer({ maxUnits: 200_000 })));
  after(async () => srv.close());

  const regexes = (n: number): Obj =>
    vs({
      hosts: ['r'],
      http: [
        {
          match: Array.from({ length: n }, (_, i) => ({
            uri: { regex: `/api/v${i}/(a|b|c)/[a-z0-9]{8,64}` },
          })),
          route,
        },
      ],
    });

  it('validates a small object with many regexes on the worker, and a typical one inline', async () => {
    const [worker, inline] = [await counter(srv, 'worker'), await counter(srv, 'inline')];
    const r = await srv.post('/validate', reviewOf(regexes(40))); // ~4 KB: under any byte threshold
    expect(r.json.response.allowed).to.equal(true);
    await expectServing(srv);
    expect(await counter(srv, 'worker')).to.equal(worker + 1);
    expect(await counter(srv, 'inline')).to.equal(inline + 1);
  });

  it('denies an object over the cost limit unvalidated, naming the limit and what costs', async () => {
    const refused = await counter(srv, 'refused');
    const r = await srv.post('/validate', reviewOf(regexes(1_450)));
    expect(r.status).to.equal(200);
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status.code).to.equal(403);
    expect(r.json.response.status.message).to.match(
      /^VirtualService abuse\/r: \(document\): validating this object would cost an estimated [\d,]+ units \(1,450 regexes: [\d,]+ units; 0 uri prefix matches; [\d,]+ values\), over the webhook's limit of 200,000; split it into smaller objects or simplify its regexes$/,
    );
    expect(await counter(srv, 'refused')).to.equal(refused + 1);
  });
});

describe('webhook under hostile input: default cost limit', function () {
  this.timeout(60_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer()));
  after(async () => srv.close());

  it('denies 30 regexes of a thousand copies each (minutes of compiling) at once', async () => {
    const heavy = 'a{1000}'.repeat(146);
    const obj = vs({
      hosts: ['r'],
      http: [
        {
          match: Array.from({ length: 30 }, (_, i) => ({ uri: { regex: `${i}${heavy}`.slice(0, 1024) } })),
          route,
        },
      ],
    });
    const r = await srv.post('/validate', reviewOf(obj));
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status.message).to.include("over the webhook's limit of 5,000,000");
    await expectServing(srv);
  });
});

describe('validation pool under hostile input', function () {
  this.timeout(60_000);
  const cheap = { obj: typical, options: {} };
  const heavy = {
    obj: vs({
      hosts: ['r'],
      http: [
        {
          match: Array.from({ length: 20 }, (_, i) => ({
            uri: { regex: `${i}${'a{1000}'.repeat(146)}`.slice(0, 1024) },
          })),
          route,
        },
      ],
    }),
    options: {},
  };
  let pool: ValidationPool | undefined;
  afterEach(async () => pool?.close());

  it('refuses at once (503 code) beyond its queue, and serves again after', async () => {
    pool = new ValidationPool({ jobTimeoutMs: 500, maxQueued: 1 });
    await pool.warm();
    const running = pool.validate(heavy, { waitMs: 30_000 }).catch((e: Error) => e);
    const queued = pool.validate(cheap, { waitMs: 30_000 });
    const refused = await pool.validate(cheap, { waitMs: 30_000 }).catch((e: { code?: string }) => e);
    expect(refused).to.have.property('code', 'WEFT_ADMISSION_OVERLOADED');
    expect((await running) as { code?: string }).to.have.property('code', 'WEFT_ADMISSION_TIMEOUT');
    expect((await queued).result.errors).to.deep.equal([]);
  });

  it('drops a queued job whose caller stopped waiting, unrun', async () => {
    pool = new ValidationPool({ jobTimeoutMs: 1_000 });
    await pool.warm();
    const running = pool.validate(heavy).catch((e: Error) => e);
    const gaveUp = await pool.validate(cheap, { waitMs: 50 }).catch((e: Error) => e);
    expect(gaveUp).to.have.property(
      'message',
      'gave up waiting for the validation worker (busy with other objects)',
    );
    await running;
    expect((await pool.validate(cheap)).result.errors).to.deep.equal([]);
  });

  it('fails a job it cannot hand to the worker alone, and serves the next at once', async () => {
    pool = new ValidationPool({ jobTimeoutMs: 60_000 });
    await pool.warm();
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const err = await pool
      .validate({ obj: deep, options: {} })
      .catch((e: { code?: string; message: string }) => e);
    expect(err).to.have.property('code', 'WEFT_INPUT_TOO_LARGE');
    expect((err as Error).message).to.match(/cannot be passed to the validation worker/);
    // The slot was never taken: the next job does not wait for the 60 s budget.
    expect((await pool.validate(cheap)).result.errors).to.deep.equal([]);
  });

  it("fails a job that needs more than the worker's heap alone, and replaces the worker", async () => {
    pool = new ValidationPool({ jobTimeoutMs: 60_000, maxHeapMb: 64 });
    await pool.warm();
    const huge = {
      obj: vs({ hosts: ['r'], http: Array.from({ length: 190_000 }, () => ({})) }),
      options: {},
    };
    const err = await pool.validate(huge).catch((e: { code?: string; message: string }) => e);
    expect(err).to.have.property('code', 'WEFT_INPUT_TOO_LARGE');
    expect((err as Error).message).to.equal(
      "validating this object needed more than the worker's 64 MB heap",
    );
    expect(pool.replacements).to.equal(1);
    expect((await pool.validate(cheap)).result.errors).to.deep.equal([]);
  });
});

describe('webhook under hostile input: memory and slow clients (issue #12, item 7)', function () {
  this.timeout(20_000);
  let srv: TestServer;
  before(
    async () =>
      (srv = await startTestServer({
        timeouts: { headersMs: 200, requestMs: 400 },
        inFlightLimitBytes: 100_000,
      })),
  );
  after(async () => srv.close());

  /** Opens a connection, sends `head`, trickles a byte every 50 ms; resolves with what came back when it closed. */
  function trickle(head: string, drip: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca });
      let got = '';
      let timer: NodeJS.Timeout | undefined;
      sock.once('secureConnect', () => {
        sock.write(head);
        timer = setInterval(() => sock.write(drip), 50);
      });
      sock.setEncoding('utf8').on('data', (c: string) => (got += c));
      sock.on('error', () => undefined);
      sock.once('close', () => {
        clearInterval(timer);
        resolve(got);
      });
      // The test's own timeout (20 s) catches a server that never cuts; Node's old 30 s sweep did not.
      sock.once('timeout', () => reject(new Error('never cut')));
    });
  }

  it('cuts a client that trickles its headers at the configured headers timeout, with a 408', async () => {
    const got = await trickle('POST /validate HTTP/1.1\r\nHost: x\r\n', 'X-A: b\r\n');
    expect(got).to.match(/^HTTP\/1\.1 408 Request Timeout/);
  });

  it('cuts a client that trickles its body at the configured request timeout, with a 408', async () => {
    const got = await trickle(
      'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{',
      ' ',
    );
    expect(got).to.match(/^HTTP\/1\.1 408 Request Timeout/);
  });

  it('refuses bodies beyond the in-flight limit with a 503, and takes them again once the others are done', async () => {
    const holding = trickle(
      'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80000\r\n\r\n{',
      ' ',
    );
    await new Promise((r) => setTimeout(r, 100)); // its 80,000 bytes are reserved
    const padded = reviewOf(vs({ hosts: ['r'], http: [{ route }], pad: 'p'.repeat(30_000) }));
    const refused = await srv.post('/validate', padded);
    expect(refused.status).to.equal(503);
    expect(refused.json.message).to.match(
      /^WEFT_ADMISSION_OVERLOADED: \d+ KiB of admission requests are already being handled \(the limit is 98 KiB\); retry shortly$/,
    );
    await holding; // cut by the request timeout: its reservation is released
    const again = await srv.post('/validate', padded);
    expect(again.status).to.equal(200);
  });
});

describe('mesh index on large objects', () => {
  it('reads the hosts of an object with 150,000 of them (no spread of a huge array)', () => {
    const obj = vs({ hosts: Array.from({ length: 150_000 }, (_, i) => `h${i % 10}`) });
    expect([...referenceTokens(obj)].sort()).to.deep.equal(
      Array.from({ length: 10 }, (_, i) => `h${i}`).sort(),
    );
    const index = new MeshIndex();
    index.upsert(obj);
    expect(index.size).to.equal(1);
  });
});
