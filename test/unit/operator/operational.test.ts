import { expect } from 'chai';
import { parseFlags } from '../../../operator/main.js';
import { parseBindAddress, probeApp } from '../../../operator/server.js';
import { OperatorMetrics } from '../../../operator/metrics.js';
import { canAcquire } from '../../../pkg/kube/leader.js';
import { isWeftError } from '../../../pkg/errors/index.js';

describe('leader election: canAcquire', () => {
  const now = new Date('2026-01-01T00:00:30Z');
  const table: Array<[string, Parameters<typeof canAcquire>[0], boolean]> = [
    ['no lease spec', undefined, true],
    ['no holder', { holderIdentity: '' }, true],
    [
      'held by me',
      { holderIdentity: 'me', renewTime: '2026-01-01T00:00:29.000000Z', leaseDurationSeconds: 15 },
      true,
    ],
    [
      'held by other, fresh',
      { holderIdentity: 'other', renewTime: '2026-01-01T00:00:20.000000Z', leaseDurationSeconds: 15 },
      false,
    ],
    [
      'held by other, exactly at expiry',
      { holderIdentity: 'other', renewTime: '2026-01-01T00:00:15.000000Z', leaseDurationSeconds: 15 },
      false,
    ],
    [
      'held by other, expired',
      { holderIdentity: 'other', renewTime: '2026-01-01T00:00:14.000000Z', leaseDurationSeconds: 15 },
      true,
    ],
    ['held by other, no renewTime', { holderIdentity: 'other' }, true],
    ['held by other, garbage renewTime', { holderIdentity: 'other', renewTime: 'yesterday' }, true],
  ];
  for (const [title, spec, want] of table)
    it(title, () => expect(canAcquire(spec, 'me', now)).to.equal(want));
});

describe('operator flags', () => {
  it('defaults', () => {
    const f = parseFlags([], {});
    expect(f.leaderElect).to.equal(true);
    expect(f.leaseNamespace).to.equal('weft-system');
    expect(f.probeAddr).to.deep.equal({ host: '0.0.0.0', port: 8081 });
    expect(f.metricsAddr.port).to.equal(8080);
    expect(f.resyncMs).to.equal(36_000_000);
    expect([f.leaseDurationSeconds, f.renewDeadlineMs, f.retryPeriodMs]).to.deep.equal([15, 10_000, 2_000]);
  });
  it('parses every flag form', () => {
    const f = parseFlags(
      [
        '--leader-elect=false',
        '--health-probe-bind-address',
        '127.0.0.1:0',
        '--metrics-bind-address=:9090',
        '--resync-period=1h',
        '--lease-duration=4s',
        '--identity',
        'x',
        '--webhook-image=w:1',
      ],
      { POD_NAMESPACE: 'ns', KUBECONFIG: '/k' },
    );
    expect(f).to.include({
      leaderElect: false,
      leaseNamespace: 'ns',
      kubeconfig: '/k',
      resyncMs: 3_600_000,
      leaseDurationSeconds: 4,
      identity: 'x',
      webhookImage: 'w:1',
    });
    expect(f.probeAddr).to.deep.equal({ host: '127.0.0.1', port: 0 });
    expect(f.metricsAddr).to.deep.equal({ host: '0.0.0.0', port: 9090 });
  });
  const bad: Array<[string[], RegExp]> = [
    [['--nope'], /unknown flag --nope/],
    [['--resync-period', 'soon'], /--resync-period: "soon"/],
    [['--metrics-bind-address', 'localhost'], /--metrics-bind-address/],
    [['--identity'], /--identity needs a value/],
    [['--health-probe-bind-address=:99999'], /health-probe-bind-address/],
  ];
  for (const [argv, re] of bad) {
    it(`rejects ${argv.join(' ')} with a coded error`, () => {
      try {
        parseFlags(argv, {});
        expect.fail('should throw');
      } catch (err) {
        expect(isWeftError(err, 'WEFT_OPERATOR_CONFIG')).to.equal(true);
        expect((err as Error).message).to.match(re);
      }
    });
  }
  it('parseBindAddress', () => {
    expect(parseBindAddress(':8081')).to.deep.equal({ host: '0.0.0.0', port: 8081 });
    expect(parseBindAddress('[::1]:80')).to.deep.equal({ host: '::1', port: 80 });
    expect(parseBindAddress('8081')).to.deep.equal({ host: '0.0.0.0', port: 8081 });
    expect(parseBindAddress('x:y')).to.equal(null);
  });
});

describe('probes and metrics (real HTTP on loopback)', () => {
  it('/readyz follows cache sync; /healthz is ok', async () => {
    let ready = false;
    const server = probeApp({ ready: () => ready, healthy: () => true }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      expect((await fetch(`${base}/readyz`)).status).to.equal(503);
      ready = true;
      expect((await fetch(`${base}/readyz`)).status).to.equal(200);
    } finally {
      server.close();
    }
  });
  it('exports controller-runtime metric names', async () => {
    const m = new OperatorMetrics('mesh', 'mesh');
    m.reconciled('success', 0.01);
    m.reconciled('error', 0.02);
    m.queue.adds();
    const text = await m.registry.metrics();
    expect(text).to.include('controller_runtime_reconcile_total{controller="mesh",result="success"} 1');
    expect(text).to.include('controller_runtime_reconcile_errors_total{controller="mesh"} 1');
    expect(text).to.include('controller_runtime_reconcile_time_seconds_bucket');
    expect(text).to.include('workqueue_adds_total{name="mesh",controller="mesh"} 1');
    expect(text).to.include('controller_runtime_active_workers');
  });
});
