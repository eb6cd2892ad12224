import { expect } from 'chai';
import {
  inPanic,
  newHostHealth,
  outlierSettings,
  recordOutcome,
  tick,
} from '../../../proxy/upstream/outlier.js';

describe('proxy outlier detection state machine', () => {
  const s = outlierSettings({})!;
  it('Istio defaults', () => {
    expect(s).to.deep.equal({
      consecutive5xx: 5,
      consecutiveGateway: 0,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
    expect(outlierSettings(undefined)).to.equal(null);
  });

  // sequence of statuses (0 = local failure) → ejected after the sequence?
  const TABLE: [string, number[], boolean][] = [
    ['4 × 500 does not eject', [500, 500, 500, 500], false],
    ['5 × 500 ejects', [500, 500, 500, 500, 500], true],
    ['a 200 resets the count', [500, 500, 500, 500, 200, 500], false],
    ['4xx resets the count', [500, 500, 500, 500, 404, 500], false],
    ['local-origin failures count as 5xx', [0, 0, 0, 0, 0], true],
    ['mixed 5xx and local failures', [503, 0, 500, 0, 502], true],
  ];
  for (const [name, seq, want] of TABLE) {
    it(name, () => {
      const h = newHostHealth();
      let ejected = false;
      for (const st of seq) ejected = recordOutcome(s, h, st, { ejectedCount: 0, size: 10 }, 0) || ejected;
      expect(ejected).to.equal(want);
      expect(h.ejected).to.equal(want);
    });
  }

  it('consecutiveGatewayErrors counts only 502/503/504 and local failures', () => {
    const g = outlierSettings({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 })!;
    const h = newHostHealth();
    expect(recordOutcome(g, h, 500, { ejectedCount: 0, size: 3 }, 0)).to.equal(false);
    expect(recordOutcome(g, h, 502, { ejectedCount: 0, size: 3 }, 0)).to.equal(false);
    expect(recordOutcome(g, h, 500, { ejectedCount: 0, size: 3 }, 0)).to.equal(false); // 500 breaks the gateway run
    expect(recordOutcome(g, h, 503, { ejectedCount: 0, size: 3 }, 0)).to.equal(false);
    expect(recordOutcome(g, h, 0, { ejectedCount: 0, size: 3 }, 0)).to.equal(true);
  });

  it('consecutive5xxErrors 0 disables', () => {
    const d = outlierSettings({ consecutive5xxErrors: 0 })!;
    const h = newHostHealth();
    for (let i = 0; i < 20; i++)
      expect(recordOutcome(d, h, 500, { ejectedCount: 0, size: 2 }, 0)).to.equal(false);
  });

  it('ejection time = base × times ejected, then the host returns on tick', () => {
    const t = outlierSettings({ consecutive5xxErrors: 1, baseEjectionTimeMs: 1000 })!;
    const h = newHostHealth();
    expect(recordOutcome(t, h, 500, { ejectedCount: 0, size: 1 }, 0)).to.equal(true);
    expect(h.ejectedUntil).to.equal(1000);
    expect(tick([h], 999)).to.equal(0);
    expect(tick([h], 1000)).to.equal(1);
    expect(h.ejected).to.equal(false);
    expect(recordOutcome(t, h, 500, { ejectedCount: 0, size: 1 }, 5000)).to.equal(true);
    expect(h.ejectedUntil).to.equal(7000); // second ejection: 2 × base
  });

  it('ejection time is capped at 300 s', () => {
    const t = outlierSettings({ consecutive5xxErrors: 1, baseEjectionTimeMs: 200_000 })!;
    const h = newHostHealth();
    h.timesEjected = 5;
    recordOutcome(t, h, 500, { ejectedCount: 0, size: 1 }, 0);
    expect(h.ejectedUntil).to.equal(300_000);
  });

  it('maxEjectionPercent limits ejections but one host can always be ejected', () => {
    const t = outlierSettings({ consecutive5xxErrors: 1, maxEjectionPercent: 10 })!;
    expect(recordOutcome(t, newHostHealth(), 500, { ejectedCount: 0, size: 3 }, 0)).to.equal(true);
    expect(recordOutcome(t, newHostHealth(), 500, { ejectedCount: 1, size: 3 }, 0)).to.equal(false);
    const half = outlierSettings({ consecutive5xxErrors: 1, maxEjectionPercent: 50 })!;
    expect(recordOutcome(half, newHostHealth(), 500, { ejectedCount: 1, size: 4 }, 0)).to.equal(true);
    expect(recordOutcome(half, newHostHealth(), 500, { ejectedCount: 2, size: 4 }, 0)).to.equal(false);
  });

  it('panic mode only with minHealthPercent > 0', () => {
    expect(inPanic(s, 0, 3)).to.equal(false);
    const p = outlierSettings({ minHealthPercent: 50 })!;
    expect(inPanic(p, 1, 3)).to.equal(true);
    expect(inPanic(p, 2, 3)).to.equal(false);
  });
});
