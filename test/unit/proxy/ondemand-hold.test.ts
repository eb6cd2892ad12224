/**
 * The sidecar's on-demand hold (proxy/sidecar/ondemand.ts, ADR 0023) with a fake clock and fake
 * timers: a request for a host the config lacks is held until a config routes it (`routed`),
 * weftd says it is unknown (`unknown`: the unknown-host path follows), or the hold time passes
 * (`unresolved`: the caller refuses it); every bound (held requests, pending names, ask rate)
 * makes the request `unresolved` at once instead of holding it.
 */
import { expect } from 'chai';
import type { OnDemandResult } from '../../../pkg/discovery/protocol.js';
import {
  ONDEMAND_HOLD_DEFAULTS,
  OnDemandHolder,
  type OnDemandOutcome,
} from '../../../proxy/sidecar/ondemand.js';

interface Harness {
  holder: OnDemandHolder;
  asked: string[][];
  routed: Set<string>;
  outcomes: OnDemandOutcome[];
  answer: (name: string, r: OnDemandResult) => Promise<void>;
  fail: (name: string) => Promise<void>;
  advance: (ms: number) => Promise<void>;
}

const tick = () => new Promise((r) => setImmediate(r));

function harness(opts: Partial<ConstructorParameters<typeof OnDemandHolder>[0]> = {}): Harness {
  let now = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const asked: string[][] = [];
  const answers = new Map<
    string,
    { resolve: (r: Record<string, OnDemandResult>) => void; reject: (e: Error) => void }
  >();
  const routed = new Set<string>();
  const outcomes: OnDemandOutcome[] = [];
  const holder = new OnDemandHolder({
    ask: (names) => {
      asked.push(names);
      return new Promise((resolve, reject) => answers.set(names[0]!, { resolve, reject }));
    },
    isHeld: (authority) => routed.has(authority),
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return { cancel: () => (t.live = false) };
    },
    count: (o) => outcomes.push(o),
    holdMs: 1000,
    maxPendingHosts: 3,
    maxHeldRequests: 5,
    asksPerSecond: 2,
    burst: 3,
    negativeTtlMs: 10_000,
    maxNegative: 2,
    ...opts,
  });
  return {
    holder,
    asked,
    routed,
    outcomes,
    answer: async (name, r) => {
      answers.get(name)!.resolve({ [name]: r });
      await tick();
    },
    fail: async (name) => {
      answers.get(name)!.reject(new Error('down'));
      await tick();
    },
    advance: async (ms) => {
      now += ms;
      for (const t of timers)
        if (t.live && t.at <= now) {
          t.live = false;
          t.fn();
        }
      await tick();
    },
  };
}

describe('sidecar on-demand hold (fake clock)', () => {
  it('holds a request until the config routes its host, then releases it routed', async () => {
    const h = harness();
    const p = h.holder.wait('Reviews.Prod:9080');
    expect(h.asked).to.deep.equal([['reviews.prod']]);
    expect(h.holder.heldRequests).to.equal(1);
    await h.answer('reviews.prod', 'found');
    // found, but the config is not in force yet: still held
    expect(h.holder.heldRequests).to.equal(1);
    h.routed.add('Reviews.Prod:9080');
    h.holder.configApplied();
    expect(await p).to.equal('routed');
    expect(h.outcomes).to.deep.equal(['routed']);
    expect(h.holder.subscribedNames()).to.deep.equal(['reviews.prod']);
  });

  it('releases at once when the config was in force before weftd answered', async () => {
    const h = harness();
    const p = h.holder.wait('reviews.prod');
    h.routed.add('reviews.prod');
    await h.answer('reviews.prod', 'found');
    expect(await p).to.equal('routed');
  });

  it('asks once for many requests to one host, and releases them together', async () => {
    const h = harness();
    const ps = [h.holder.wait('a.prod'), h.holder.wait('a.prod:80'), h.holder.wait('A.PROD')];
    expect(h.asked).to.have.length(1);
    h.routed.add('a.prod').add('a.prod:80').add('A.PROD');
    await h.answer('a.prod', 'found');
    expect(await Promise.all(ps)).to.deep.equal(['routed', 'routed', 'routed']);
  });

  it('not_found ends the hold as unknown (the unknown-host path) and is remembered until its TTL', async () => {
    const h = harness();
    const p = h.holder.wait('nope.example.com');
    await h.answer('nope.example.com', 'not_found');
    expect(await p).to.equal('unknown');
    expect(await h.holder.wait('nope.example.com')).to.equal('unknown');
    expect(h.asked).to.have.length(1);
    expect(h.outcomes).to.deep.equal(['not_found', 'negative']);
    await h.advance(10_001);
    void h.holder.wait('nope.example.com');
    expect(h.asked).to.have.length(2);
  });

  it('the hold ends after holdMs without an answer: unresolved (refused, never passed through)', async () => {
    const h = harness();
    const p = h.holder.wait('slow.prod');
    await h.advance(999);
    expect(h.holder.heldRequests).to.equal(1);
    await h.advance(1);
    expect(await p).to.equal('unresolved');
    expect(h.outcomes).to.deep.equal(['timeout']);
    expect(h.holder.heldRequests).to.equal(0);
    expect(h.holder.pendingHosts).to.equal(0);
  });

  it('weftd unreachable or limiting: unresolved, not remembered', async () => {
    const h = harness();
    const a = h.holder.wait('a.prod');
    await h.fail('a.prod');
    expect(await a).to.equal('unresolved');
    const b = h.holder.wait('b.prod');
    await h.answer('b.prod', 'limited');
    expect(await b).to.equal('unresolved');
    expect(h.outcomes).to.deep.equal(['error', 'limited']);
    void h.holder.wait('b.prod');
    expect(h.asked).to.have.length(3);
  });

  it('a flood of random hosts: at most maxPendingHosts asked, the rest unresolved at once', async () => {
    const h = harness();
    const ps = Array.from({ length: 50 }, (_, i) => h.holder.wait(`r${i}.example.com`));
    expect(h.asked).to.have.length(3);
    expect(h.holder.pendingHosts).to.equal(3);
    expect(h.holder.heldRequests).to.equal(3);
    await h.advance(1000);
    const results = await Promise.all(ps);
    expect(results.every((r) => r === 'unresolved')).to.equal(true);
    expect(h.outcomes.filter((o) => o === 'overflow')).to.have.length(47);
    expect(h.outcomes.filter((o) => o === 'timeout')).to.have.length(3);
  });

  it('asks at most `burst` names at once, then `asksPerSecond`; a name whose token comes within half the hold waits for it', async () => {
    const h = harness({ maxPendingHosts: 100, maxHeldRequests: 100 });
    const ps = Array.from({ length: 20 }, (_, i) => h.holder.wait(`r${i}.example.com`));
    // 3 from the bucket; the 4th's token comes in 500 ms (half the hold): reserved; the rest refused
    expect(h.asked).to.have.length(3);
    expect(h.holder.pendingHosts).to.equal(4);
    expect(h.outcomes.filter((o) => o === 'rate_limited')).to.have.length(16);
    await h.advance(499);
    expect(h.asked).to.have.length(3);
    await h.advance(1);
    expect(h.asked.map((a) => a[0])).to.deep.equal([
      'r0.example.com',
      'r1.example.com',
      'r2.example.com',
      'r3.example.com',
    ]);
    // the bucket is empty again: the next token is 500 ms away
    void h.holder.wait('later.example.com');
    void h.holder.wait('later2.example.com');
    expect(h.outcomes.filter((o) => o === 'rate_limited')).to.have.length(17);
    await h.advance(500);
    expect(h.asked).to.have.length(5);
    await h.advance(1000);
    const verdicts = await Promise.all(ps);
    expect(verdicts.filter((v) => v === 'unresolved')).to.have.length(20); // no answers: all timed out or refused
  });

  it('a reserved ask is not made when a push routed the name meanwhile', async () => {
    const h = harness({ burst: 1 });
    void h.holder.wait('a.prod');
    const b = h.holder.wait('b.prod'); // its token is 500 ms away
    expect(h.asked).to.have.length(1);
    h.routed.add('b.prod');
    h.holder.configApplied();
    expect(await b).to.equal('routed');
    await h.advance(500);
    expect(h.asked.map((a) => a[0])).to.deep.equal(['a.prod']);
  });

  it('caps held requests across hosts', async () => {
    const h = harness({ maxPendingHosts: 10, burst: 10 });
    const ps = Array.from({ length: 8 }, () => h.holder.wait('busy.prod'));
    expect(h.holder.heldRequests).to.equal(5);
    expect((await Promise.all(ps.slice(5))).every((r) => r === 'unresolved')).to.equal(true);
    expect(h.outcomes).to.deep.equal(['overflow', 'overflow', 'overflow']);
  });

  it('bounds the negative cache (oldest name evicted)', async () => {
    const h = harness({ burst: 10 });
    for (const n of ['n1.x', 'n2.x', 'n3.x']) {
      const p = h.holder.wait(n);
      await h.answer(n, 'not_found');
      await p;
    }
    void h.holder.wait('n1.x');
    expect(h.asked.map((a) => a[0])).to.deep.equal(['n1.x', 'n2.x', 'n3.x', 'n1.x']);
  });

  it('a Host that is no host name is not asked for: unknown (no mesh service has such a name)', async () => {
    const h = harness();
    for (const a of ['[::1]:80', 'a b', '', 'x'.repeat(300), 'évil.com'])
      expect(await h.holder.wait(a)).to.equal('unknown');
    expect(h.asked).to.deep.equal([]);
    expect(new Set(h.outcomes)).to.deep.equal(new Set(['invalid']));
  });

  it('re-declares what weftd found, in batches, dropping what it no longer finds', async () => {
    const redeclared: [string[], boolean | undefined][] = [];
    const h = harness({
      burst: 10,
      maxPendingHosts: 10,
    });
    for (const n of ['a.p', 'b.p', 'c.p']) {
      const p = h.holder.wait(n);
      h.routed.add(n);
      await h.answer(n, 'found');
      await p;
    }
    const holder2 = h.holder as unknown as {
      o: { ask: (n: string[], r?: boolean) => Promise<Record<string, OnDemandResult>> };
    };
    holder2.o.ask = (names, r) => {
      redeclared.push([names, r]);
      return Promise.resolve(Object.fromEntries(names.map((n) => [n, n === 'b.p' ? 'not_found' : 'found'])));
    };
    await h.holder.redeclare(2);
    expect(redeclared).to.deep.equal([
      [['a.p', 'b.p'], true],
      [['c.p'], true],
    ]);
    expect(h.holder.subscribedNames()).to.deep.equal(['a.p', 'c.p']);
  });

  describe('what is re-declared stays within weftd’s subscription cap', () => {
    /** A holder whose weftd finds every name and whose config then routes it (a wildcard ServiceEntry). */
    const wildcard = (entryOf?: (name: string) => string | null): OnDemandHolder => {
      const routed = new Set<string>();
      return new OnDemandHolder({
        ask: (names) => {
          for (const n of names) routed.add(n);
          return Promise.resolve(Object.fromEntries(names.map((n) => [n, 'found' as const])));
        },
        isHeld: (authority) => routed.has(authority),
        ...(entryOf ? { entryOf } : {}),
        asksPerSecond: 1e9,
        burst: 1e9,
        setTimer: () => ({ cancel: () => undefined }),
      });
    };
    const subdomains = Array.from({ length: 2000 }, (_, i) => `n${i}.example.com`);

    it('2,000 names found one by one: at most 512, the most recent kept', async () => {
      const holder = wildcard();
      for (const n of subdomains) expect(await holder.wait(n)).to.equal('routed');
      const kept = holder.subscribedNames();
      expect(kept).to.have.length(ONDEMAND_HOLD_DEFAULTS.maxFound);
      expect(kept.at(-1)).to.equal('n1999.example.com');
    });

    it('names one config entry routes (a wildcard’s subdomains) are re-declared once', async () => {
      const holder = wildcard((n) => (n.endsWith('.example.com') ? '*.example.com:80' : null));
      for (const n of subdomains) await holder.wait(n);
      expect(holder.subscribedNames()).to.deep.equal(['n0.example.com']);
    });
  });
});
