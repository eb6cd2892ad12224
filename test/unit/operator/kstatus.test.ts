/**
 * kstatus compatibility (sigs.k8s.io/cli-utils pkg/kstatus): a port of its generic checks —
 * deletionTimestamp → Terminating; observedGeneration ≠ generation → InProgress;
 * Reconciling=True → InProgress; Stalled=True → Failed; else the Ready fallback
 * (True → Current, False → InProgress); no conditions → Current — run over the Argo CD
 * fixtures and over statuses produced by the operator's own state machine. The port is
 * checked against the library itself in test/integration/kstatus-library.test.ts.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { kstatus, type Cond, type Obj } from '../../support/kstatus-port.js';
import { desiredConditions, mergeConditions, startingConditions } from '../../../operator/conditions.js';

const dir = 'config/argocd/health/mesh.weft.dev/Mesh/testdata';
const fixture = (f: string): Obj => parse(readFileSync(`${dir}/${f}.yaml`, 'utf8')) as Obj;

describe('kstatus reading of Mesh status', () => {
  const table: Array<[string, ReturnType<typeof kstatus>]> = [
    ['healthy', 'Current'],
    ['progressing_reconciling', 'InProgress'],
    ['progressing_stale_generation', 'InProgress'],
    ['degraded_stalled', 'Failed'],
    ['terminating', 'Terminating'],
    ['progressing_ready_false', 'InProgress'],
  ];
  for (const [f, want] of table)
    it(`fixture ${f} → ${want}`, () => expect(kstatus(fixture(f))).to.equal(want));

  const now = new Date('2026-01-01T00:00:00Z');
  const ready = {
    controlPlane: [{ name: 'weftd', ready: true }],
    gateways: [],
    webhook: [{ name: 'webhook', ready: true }],
    certificates: { ready: true, message: 'ok' },
  };
  const states: Array<[string, Cond[], ReturnType<typeof kstatus>]> = [
    ['first status of a new Mesh', startingConditions(undefined, 1, now), 'InProgress'],
    [
      'waiting for children',
      mergeConditions(
        undefined,
        desiredConditions({
          kind: 'applied',
          readiness: { ...ready, controlPlane: [{ name: 'weftd', ready: false }] },
        }),
        1,
        now,
      ),
      'InProgress',
    ],
    [
      'all available',
      mergeConditions(undefined, desiredConditions({ kind: 'applied', readiness: ready }), 1, now),
      'Current',
    ],
    [
      'invalid spec',
      mergeConditions(
        undefined,
        desiredConditions({ kind: 'stalled', reason: 'InvalidSpec', message: 'x' }),
        1,
        now,
      ),
      'Failed',
    ],
    [
      'retrying a transient error',
      mergeConditions(
        undefined,
        desiredConditions({ kind: 'error', reason: 'ApplyFailed', message: 'x' }),
        1,
        now,
      ),
      'InProgress',
    ],
  ];
  for (const [title, conditions, want] of states) {
    it(`operator state "${title}" → ${want}`, () => {
      expect(
        kstatus({ metadata: { generation: 1 }, status: { observedGeneration: 1, conditions } }),
      ).to.equal(want);
    });
  }
});
