import { expect } from 'chai';
import { WorkQueue } from '../../../operator/queue.js';
import { backoffDelay } from '../../../pkg/kube/backoff.js';

const policy = { baseMs: 5, maxMs: 1000, jitter: 0 };
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('deduplicates a key added many times while waiting', async () => {
    const q = new WorkQueue(policy);
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).to.equal(2);
    expect(await q.get()).to.equal('a');
    expect(await q.get()).to.equal('b');
  });

  it('never hands out a key being processed; re-adds it after done()', async () => {
    const q = new WorkQueue(policy);
    q.add('a');
    const k = await q.get();
    q.add('a'); // event during processing
    expect(q.length).to.equal(0);
    let second: string | null | undefined;
    void q.get().then((v) => (second = v));
    await tick();
    expect(second).to.equal(undefined);
    q.done(k!, performance.now());
    await tick();
    expect(second).to.equal('a');
  });

  it('a key done without re-adds is gone', async () => {
    const q = new WorkQueue(policy);
    q.add('a');
    q.done((await q.get())!, performance.now());
    expect(q.length).to.equal(0);
  });

  it('addRateLimited backs off exponentially per key and forget resets it', () => {
    const q = new WorkQueue(policy);
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited('a'));
    expect(delays).to.deep.equal([5, 10, 20, 40, 80]);
    expect(q.numRequeues('a')).to.equal(5);
    q.forget('a');
    expect(q.addRateLimited('a')).to.equal(5);
    expect(q.addRateLimited('b')).to.equal(5);
    q.shutDown();
  });

  it('addAfter delivers later, and an earlier schedule wins over a later one', async () => {
    const q = new WorkQueue(policy);
    q.addAfter('a', 30);
    q.addAfter('a', 5000);
    expect(q.length).to.equal(0);
    await tick(60);
    expect(q.length).to.equal(1);
    q.shutDown();
  });

  it('shutDown releases waiting workers with null and ignores later adds', async () => {
    const q = new WorkQueue(policy);
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).to.equal(null);
    q.add('x');
    expect(await q.get()).to.equal(null);
  });
});

describe('backoffDelay', () => {
  const p = { baseMs: 5, maxMs: 1_000_000, jitter: 0 };
  const table: Array<[number, number]> = [
    [0, 0],
    [-1, 0],
    [1, 5],
    [2, 10],
    [10, 2560],
    [19, 1_000_000],
    [200, 1_000_000],
    [Infinity, 0],
    [NaN, 0],
  ];
  for (const [n, want] of table)
    it(`failure ${n} → ${want} ms (no jitter)`, () => expect(backoffDelay(n, p)).to.equal(want));
  it('jitter stays within [exp*(1-j), exp]', () => {
    const j = { baseMs: 100, maxMs: 10_000, jitter: 0.5 };
    expect(backoffDelay(3, j, () => 0)).to.equal(200);
    expect(backoffDelay(3, j, () => 0.999999)).to.equal(400);
  });
});
