/**
 * The validation pool's workers start on demand and stop when idle (ADR 0025): an idle webhook
 * holds no second V8 isolate, and an expensive object still gets one. Real worker threads.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationPool } from '../../../webhook/validate-pool.js';
import { waitFor } from '../../support/wait.js';

const virtualService = (destination: object): { obj: unknown; options: object } => ({
  obj: {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'r', namespace: 'pool' },
    spec: { hosts: ['r'], http: [{ route: [{ destination }] }] },
  },
  options: {},
});
const valid = virtualService({ host: 'r' });
/** A destination needs a host. */
const invalid = virtualService({ port: { number: 80 } });
/** A worker loading from source (tsx) on a busy machine takes seconds: wait as long as it needs. */
const WAIT = { waitMs: 30_000 };

describe('validation pool: workers on demand', function () {
  this.timeout(60_000);
  let pool: ValidationPool | undefined;
  afterEach(async () => pool?.close());

  it('starts no worker until a job comes, then one that answers it', async () => {
    pool = new ValidationPool();
    await sleep(200);
    expect(pool.workers).to.equal(0);
    expect(pool.started).to.equal(0);
    expect((await pool.validate(valid, WAIT)).result.errors).to.deep.equal([]);
    expect((await pool.validate(invalid, WAIT)).result.errors).to.not.deep.equal([]);
    expect(pool.workers).to.equal(1);
    expect(pool.started).to.equal(1);
  });

  it('stops a worker idle for idleMs, and starts another for the next job', async () => {
    pool = new ValidationPool({ idleMs: 300 });
    await pool.validate(valid, WAIT);
    await waitFor('the idle worker to stop', () => pool!.workers === 0, 10_000, 50);
    expect(pool.retired).to.equal(1);
    expect(pool.replacements).to.equal(0);
    expect((await pool.validate(invalid, WAIT)).result.errors).to.not.deep.equal([]);
    expect(pool.started).to.equal(2);
  });

  it('keeps a worker that gets jobs more often than idleMs', async () => {
    pool = new ValidationPool({ idleMs: 1_000 });
    for (let i = 0; i < 5; i++) {
      await pool.validate(valid, WAIT);
      await sleep(300);
    }
    expect(pool.started).to.equal(1);
    expect(pool.retired).to.equal(0);
  });

  it('starts one worker for jobs that arrive together, up to size', async () => {
    pool = new ValidationPool({ size: 2 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => pool!.validate(valid, WAIT)));
    expect(answers.every((a) => a.result.errors.length === 0)).to.equal(true);
    expect(pool.started).to.be.within(1, 2);
    expect(pool.workers).to.equal(pool.started);
  });

  it('refuses jobs after close, and warm() too', async () => {
    pool = new ValidationPool();
    await pool.warm();
    expect(pool.workers).to.equal(1);
    await pool.close();
    await pool.validate(valid, WAIT).then(
      () => expect.fail('validated after close'),
      (e: Error) => expect(e.message).to.equal('validation pool is closed'),
    );
    await pool.warm().then(
      () => expect.fail('warmed after close'),
      (e: Error) => expect(e.message).to.equal('validation pool is closed'),
    );
    pool = undefined;
  });
});
