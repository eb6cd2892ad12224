import { expect } from 'chai';
import type { MeshComponentStatus, MeshCondition } from '../../../pkg/api/mesh.js';
import {
  desiredConditions,
  mergeConditions,
  startingConditions,
  type ComponentReadiness,
  type Outcome,
} from '../../../operator/conditions.js';
import { deploymentStatus, webhookConfigStatus } from '../../../operator/readiness.js';
import { activeMeshName, stableStringify } from '../../../operator/reconciler.js';

const ok = (name: string): MeshComponentStatus => ({ name, ready: true, replicas: 1, readyReplicas: 1 });
const bad = (name: string): MeshComponentStatus => ({
  name,
  ready: false,
  replicas: 1,
  readyReplicas: 0,
  message: '0/1 available',
});
const readiness = (over: Partial<ComponentReadiness> = {}): ComponentReadiness => ({
  controlPlane: [ok('weftd')],
  gateways: [ok('gateway/in')],
  webhook: [ok('webhook')],
  certificates: { ready: true, message: 'valid' },
  ...over,
});
const get = (conds: { type: string; status: string; reason: string }[], type: string): string => {
  const c = conds.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : 'absent';
};

describe('desiredConditions: the state machine', () => {
  const table: Array<[string, Outcome, Record<string, string>]> = [
    [
      'everything available',
      { kind: 'applied', readiness: readiness() },
      {
        Ready: 'True/Available',
        Reconciling: 'False/ReconcileComplete',
        Stalled: 'False/NoError',
        ControlPlaneReady: 'True/Available',
        GatewaysReady: 'True/Available',
        WebhooksReady: 'True/Available',
        CertificatesReady: 'True/Issued',
      },
    ],
    [
      'control plane down',
      { kind: 'applied', readiness: readiness({ controlPlane: [bad('weftd')] }) },
      {
        Ready: 'False/ControlPlaneNotAvailable',
        Reconciling: 'True/WaitingForComponents',
        Stalled: 'False/NoError',
        ControlPlaneReady: 'False/ControlPlaneNotAvailable',
      },
    ],
    [
      'gateway down',
      { kind: 'applied', readiness: readiness({ gateways: [ok('gateway/a'), bad('gateway/b')] }) },
      { Ready: 'False/GatewaysNotAvailable', GatewaysReady: 'False/GatewaysNotAvailable' },
    ],
    [
      'no gateways configured counts as ready',
      { kind: 'applied', readiness: readiness({ gateways: [] }) },
      { Ready: 'True/Available', GatewaysReady: 'True/Available' },
    ],
    [
      'webhook not ready',
      { kind: 'applied', readiness: readiness({ webhook: [bad('webhook')] }) },
      { Ready: 'False/WebhookNotReady', WebhooksReady: 'False/WebhookNotReady' },
    ],
    [
      'certificates not ready',
      { kind: 'applied', readiness: readiness({ certificates: { ready: false, message: 'x' } }) },
      { Ready: 'False/CertificatesNotReady', CertificatesReady: 'False/CertificatesNotReady' },
    ],
    [
      'stalled on invalid spec',
      { kind: 'stalled', reason: 'InvalidSpec', message: 'spec.gateways[1]: dup' },
      {
        Ready: 'False/InvalidSpec',
        Reconciling: 'False/InvalidSpec',
        Stalled: 'True/InvalidSpec',
        ControlPlaneReady: 'absent',
      },
    ],
    [
      'transient error',
      { kind: 'error', reason: 'ApplyFailed', message: '503' },
      {
        Ready: 'False/ApplyFailed',
        Reconciling: 'True/RetryingAfterError',
        Stalled: 'False/NoError',
        CertificatesReady: 'absent',
      },
    ],
    [
      'certificates not ready for a named reason: Ready and CertificatesReady carry it',
      {
        kind: 'applied',
        readiness: readiness({
          certificates: { ready: false, reason: 'CertificateExpired', message: 'Secret a/b expired' },
        }),
      },
      { Ready: 'False/CertificateExpired', CertificatesReady: 'False/CertificateExpired' },
    ],
    [
      'stalled on the CA Secret: CertificatesReady=False with the same reason, other components untouched',
      {
        kind: 'stalled',
        reason: 'CASecretNotFound',
        message: 'spec.certificates.caSecretRef: Secret weft-system/my-ca not found',
        certificates: {
          ready: false,
          reason: 'CASecretNotFound',
          message: 'spec.certificates.caSecretRef: Secret weft-system/my-ca not found',
        },
      },
      {
        Ready: 'False/CASecretNotFound',
        Stalled: 'True/CASecretNotFound',
        CertificatesReady: 'False/CASecretNotFound',
        ControlPlaneReady: 'absent',
        WebhooksReady: 'absent',
      },
    ],
    [
      'apply failed while a certificate was due for renewal',
      {
        kind: 'error',
        reason: 'ApplyFailed',
        message: '503',
        certificates: { ready: false, reason: 'RenewalFailed', message: 'weftd-tls: renewing failed: 503' },
      },
      {
        Ready: 'False/ApplyFailed',
        Reconciling: 'True/RetryingAfterError',
        CertificatesReady: 'False/RenewalFailed',
      },
    ],
    [
      'apply failed with the certificates in force still good',
      {
        kind: 'error',
        reason: 'ApplyFailed',
        message: '503',
        certificates: { ready: true, message: 'serving certificates valid until 2027-01-01T00:00:00Z' },
      },
      { Ready: 'False/ApplyFailed', CertificatesReady: 'True/Issued', ControlPlaneReady: 'absent' },
    ],
  ];
  for (const [title, outcome, want] of table) {
    it(title, () => {
      const conds = desiredConditions(outcome);
      for (const [type, v] of Object.entries(want)) expect(get(conds, type), type).to.equal(v);
      const rec = conds.find((c) => c.type === 'Reconciling')!;
      const st = conds.find((c) => c.type === 'Stalled')!;
      expect(rec.status === 'True' && st.status === 'True', 'never both True').to.equal(false);
      for (const c of conds) expect(c.reason).to.match(/^[A-Z][A-Za-z]*$/);
    });
  }
});

describe('mergeConditions', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T01:00:00Z');
  it('stamps lastTransitionTime only when status flips, and sets observedGeneration', () => {
    const first = mergeConditions(
      undefined,
      desiredConditions({ kind: 'applied', readiness: readiness({ controlPlane: [bad('weftd')] }) }),
      1,
      t0,
    );
    const same = mergeConditions(
      first,
      desiredConditions({ kind: 'applied', readiness: readiness({ controlPlane: [bad('weftd')] }) }),
      2,
      t1,
    );
    expect(same.find((c) => c.type === 'Ready')!.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
    expect(same.every((c) => c.observedGeneration === 2)).to.equal(true);
    const flipped = mergeConditions(
      same,
      desiredConditions({ kind: 'applied', readiness: readiness() }),
      2,
      t1,
    );
    expect(flipped.find((c) => c.type === 'Ready')!.lastTransitionTime).to.equal('2026-01-01T01:00:00Z');
    expect(flipped.find((c) => c.type === 'Stalled')!.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
  });
  it('three identical merges give byte-identical conditions (no-op reconciles write nothing)', () => {
    const d = desiredConditions({ kind: 'applied', readiness: readiness() });
    const a = mergeConditions(undefined, d, 3, t0);
    const b = mergeConditions(a, d, 3, t1);
    const c = mergeConditions(b, d, 3, new Date());
    expect(stableStringify(c)).to.equal(stableStringify(a));
  });
  it('keeps condition types the outcome does not mention (stale, with their old generation)', () => {
    const full = mergeConditions(
      undefined,
      desiredConditions({ kind: 'applied', readiness: readiness() }),
      1,
      t0,
    );
    const stalled = mergeConditions(
      full,
      desiredConditions({ kind: 'stalled', reason: 'InvalidSpec', message: 'x' }),
      2,
      t1,
    );
    expect(stalled.find((c) => c.type === 'ControlPlaneReady')!.observedGeneration).to.equal(1);
    expect(stalled.find((c) => c.type === 'Ready')!.observedGeneration).to.equal(2);
  });
  it('startingConditions: Reconciling=True at once, and Ready never stays True for a new generation', () => {
    const ready = mergeConditions(
      undefined,
      desiredConditions({ kind: 'applied', readiness: readiness() }),
      1,
      t0,
    );
    const start = startingConditions(ready, 2, t1);
    expect(get(start, 'Reconciling')).to.equal('True/NewGeneration');
    expect(get(start, 'Ready')).to.equal('False/Reconciling');
    const fresh = startingConditions(undefined, 1, t0) as MeshCondition[];
    expect(fresh.map((c) => c.type)).to.deep.equal(['Ready', 'Reconciling', 'Stalled']);
  });
});

describe('deploymentStatus (child readiness from the child status)', () => {
  const dep = (
    spec: number,
    status: Record<string, number>,
    generation = 1,
  ): Parameters<typeof deploymentStatus>[1] => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'weftd', namespace: 'weft-system', generation },
    spec: { replicas: spec },
    status,
  });
  const table: Array<[string, Parameters<typeof deploymentStatus>[1], boolean, string | undefined]> = [
    ['missing', undefined, false, 'not created yet'],
    ['no status yet', dep(1, {}), false, 'rollout not yet observed'],
    [
      'stale observedGeneration',
      dep(1, { observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1, replicas: 1 }, 2),
      false,
      'rollout not yet observed',
    ],
    [
      'not updated',
      dep(2, { observedGeneration: 1, updatedReplicas: 1, availableReplicas: 2, replicas: 2 }),
      false,
      '1/2 updated',
    ],
    [
      'not available',
      dep(2, { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 1, replicas: 2 }),
      false,
      '1/2 available',
    ],
    [
      'old replicas still there',
      dep(1, { observedGeneration: 1, updatedReplicas: 1, availableReplicas: 1, replicas: 2 }),
      false,
      'old replicas terminating',
    ],
    [
      'available',
      dep(2, {
        observedGeneration: 1,
        updatedReplicas: 2,
        availableReplicas: 2,
        replicas: 2,
        readyReplicas: 2,
      }),
      true,
      undefined,
    ],
    ['scaled to zero', dep(0, { observedGeneration: 1 }), true, 'scaled to zero'],
  ];
  for (const [title, d, ready, msg] of table) {
    it(title, () => {
      const s = deploymentStatus('weftd', d);
      expect(s.ready).to.equal(ready);
      expect(s.message).to.equal(msg);
    });
  }
  it('webhook configuration readiness needs the current caBundle on every webhook', () => {
    const cfg = (bundles: (string | undefined)[]) => ({
      apiVersion: 'x',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'v' },
      webhooks: bundles.map((caBundle) => ({ clientConfig: caBundle ? { caBundle } : {} })),
    });
    expect(webhookConfigStatus('v', undefined, 'A').ready).to.equal(false);
    expect(webhookConfigStatus('v', cfg(['A', 'A']), 'A').ready).to.equal(true);
    expect(webhookConfigStatus('v', cfg(['A', 'B']), 'A').ready).to.equal(false);
    expect(webhookConfigStatus('v', cfg([undefined]), 'A').ready).to.equal(false);
    expect(webhookConfigStatus('v', cfg([]), 'A').ready).to.equal(false);
  });
});

describe('activeMeshName: one Mesh per cluster', () => {
  const m = (name: string, ts: string) => ({ metadata: { name, creationTimestamp: ts } });
  it('the oldest wins, then the name', () => {
    expect(activeMeshName([m('b', '2026-01-02T00:00:00Z'), m('a', '2026-01-03T00:00:00Z')])).to.equal('b');
    expect(activeMeshName([m('b', '2026-01-02T00:00:00Z'), m('a', '2026-01-02T00:00:00Z')])).to.equal('a');
    expect(activeMeshName([])).to.equal(undefined);
  });
});
