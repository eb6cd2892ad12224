/**
 * The write budget over whole configs being written (controlplane/pushwrite.ts, issue #19): a
 * FIFO byte semaphore, and the slices a large line is written in (under Node's 16 KiB TLS
 * buffer-sizing threshold, never splitting a character).
 */
import { expect } from 'chai';
import { SLICED_LINE_CHARS, WriteBudget, sliceEnd } from '../../../controlplane/pushwrite.js';

/** A budget whose starts are recorded by name, with every in-flight/waiting change seen. */
function recorded(limit: number) {
  const started: string[] = [];
  const seen: { inFlight: number; waiting: number }[] = [];
  const budget = new WriteBudget(limit, { changed: (inFlight, waiting) => seen.push({ inFlight, waiting }) });
  const ask = (name: string, bytes: number | (() => number)) =>
    budget.acquire(typeof bytes === 'number' ? () => bytes : bytes, (b) => started.push(`${name}:${b}`));
  return { budget, started, seen, ask };
}

describe('WriteBudget', () => {
  it('starts lines while they fit, then one at a time in the order asked; never over the limit', () => {
    const { budget, started, seen, ask } = recorded(100);
    expect(ask('a', 60).queued).to.equal(false);
    expect(ask('b', 30).queued).to.equal(false);
    expect(ask('c', 30).queued).to.equal(true); // 120 > 100
    expect(ask('d', 5).queued).to.equal(true); // would fit, but does not overtake c
    expect(started).to.deep.equal(['a:60', 'b:30']);
    expect(budget.waiting).to.equal(2);
    budget.release(30); // b flushed: 60 + 30 fits, then d
    expect(started).to.deep.equal(['a:60', 'b:30', 'c:30', 'd:5']);
    expect(budget.inFlightBytes).to.equal(95);
    budget.release(60);
    budget.release(30);
    budget.release(5);
    expect(budget.inFlightBytes).to.equal(0);
    expect(Math.max(...seen.map((s) => s.inFlight))).to.be.at.most(100);
    expect(seen.at(-1)).to.deep.equal({ inFlight: 0, waiting: 0 });
  });

  it('a line larger than the whole budget goes alone, once nothing else is in flight', () => {
    const { budget, started, ask } = recorded(100);
    ask('a', 10);
    expect(ask('huge', 500).queued).to.equal(true);
    expect(ask('b', 10).queued).to.equal(true);
    budget.release(10);
    expect(started).to.deep.equal(['a:10', 'huge:500']);
    budget.release(500);
    expect(started).to.deep.equal(['a:10', 'huge:500', 'b:10']);
  });

  it('a waiter that cancels (its stream closed) gives up its place and never starts', () => {
    const { budget, started, ask } = recorded(100);
    ask('a', 80);
    const b = ask('b', 50);
    ask('c', 20);
    b.cancel(); // c fits next to a once b, which held it back, is gone
    expect(started).to.deep.equal(['a:80', 'c:20']);
    b.cancel(); // twice: no effect
    budget.release(80);
    budget.release(20);
    expect(started).to.deep.equal(['a:80', 'c:20']);
    expect(budget.waiting).to.equal(0);
    expect(budget.inFlightBytes).to.equal(0);
  });

  it("counts a waiter's size when its turn comes (its newest line: newer pushes replaced the first)", () => {
    const { budget, started, ask } = recorded(100);
    ask('a', 100);
    let newest = 40;
    ask('b', () => newest);
    newest = 70;
    budget.release(100);
    expect(started).to.deep.equal(['a:100', 'b:70']);
    expect(budget.inFlightBytes).to.equal(70);
  });

  it('a start that releases at once (its stream closed) lets the next ones start in the same turn', () => {
    const started: string[] = [];
    const budget = new WriteBudget(100);
    budget.acquire(
      () => 100,
      (b) => started.push(`a:${b}`),
    );
    budget.acquire(
      () => 60,
      (b) => {
        started.push(`gone:${b}`);
        budget.release(b);
      },
    );
    budget.acquire(
      () => 60,
      (b) => started.push(`c:${b}`),
    );
    budget.release(100);
    expect(started).to.deep.equal(['a:100', 'gone:60', 'c:60']);
    expect(budget.inFlightBytes).to.equal(60);
    expect(budget.waiting).to.equal(0);
  });

  it('refuses to release more than is in flight, and a budget that is not positive', () => {
    const { budget } = recorded(100);
    expect(() => budget.release(1)).to.throw(/below zero/);
    expect(() => new WriteBudget(0)).to.throw(/positive/);
  });
});

describe('sliceEnd', () => {
  const slices = (line: string): string[] => {
    const out: string[] = [];
    for (let from = 0; from < line.length;) {
      const end = sliceEnd(line, from);
      out.push(line.slice(from, end));
      from = end;
    }
    return out;
  };
  const cases: [string, string][] = [
    ['ASCII', 'x'.repeat(3 * SLICED_LINE_CHARS + 7)],
    ['two-byte characters', 'é'.repeat(2 * SLICED_LINE_CHARS)],
    ['three-byte characters', '€'.repeat(SLICED_LINE_CHARS)],
    // a pair straddling every natural boundary: 1 ASCII byte shifts each pair by one unit
    ['surrogate pairs', `a${'😀'.repeat(SLICED_LINE_CHARS)}`],
    ['a mix', `{"k":"${'aé€😀'.repeat(SLICED_LINE_CHARS / 2)}"}\n`],
  ];
  for (const [name, line] of cases)
    it(`cuts ${name} into slices under 16 KiB of UTF-8 that join back to the same bytes`, () => {
      const parts = slices(line);
      expect(parts.join('')).to.equal(line);
      for (const p of parts) {
        expect(Buffer.byteLength(p)).to.be.below(16 * 1024 - 16);
        expect(p.length).to.be.greaterThan(0);
      }
      // no lone surrogate: each part encodes to the bytes of its own text
      expect(Buffer.concat(parts.map((p) => Buffer.from(p))).equals(Buffer.from(line))).to.equal(true);
    });
});
