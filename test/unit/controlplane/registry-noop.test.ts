/**
 * No push for changes that cannot change a proxy config (registry.ts changeMatters): metadata
 * that Argo CD, kubectl or the API server add (labels, annotations, managedFields,
 * resourceVersion, generation), status writes and resyncs of the same object are ignored; a spec
 * change, an add or a delete, and the labels/annotations a config does read are not.
 */
import { expect } from 'chai';
import { changeMatters, type WatchedKind } from '../../../controlplane/registry.js';
import type { KubeObject } from '../../../pkg/kube/types.js';

const vs = (
  over: Partial<KubeObject['metadata']> = {},
  spec: unknown = { hosts: ['r'] },
  status?: unknown,
): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'r', namespace: 'ns', resourceVersion: '1', ...over },
  spec: spec as Record<string, unknown>,
  ...(status !== undefined ? { status } : {}),
});

const ARGO = {
  'argocd.argoproj.io/tracking-id': 'app:networking.istio.io/VirtualService:ns/r',
  'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}',
};

describe('registry: which informer events can change a proxy config', () => {
  const cases: [
    string,
    WatchedKind,
    'add' | 'update' | 'delete',
    KubeObject,
    KubeObject | undefined,
    boolean,
  ][] = [
    ['a VirtualService added', 'VirtualService', 'add', vs(), undefined, true],
    ['a VirtualService deleted', 'VirtualService', 'delete', vs(), undefined, true],
    ['a VirtualService spec change', 'VirtualService', 'update', vs({}, { hosts: ['s'] }), vs(), true],
    ['a label on a VirtualService', 'VirtualService', 'update', vs({ labels: { team: 'a' } }), vs(), false],
    [
      'Argo CD annotations on a VirtualService',
      'VirtualService',
      'update',
      vs({ annotations: ARGO }),
      vs(),
      false,
    ],
    [
      'managedFields, resourceVersion and generation churn',
      'VirtualService',
      'update',
      vs({ resourceVersion: '9', generation: 4, managedFields: [{ manager: 'argocd' }] } as never),
      vs(),
      false,
    ],
    [
      'a status write',
      'VirtualService',
      'update',
      vs({ resourceVersion: '2' }, { hosts: ['r'] }, { conditions: [{ type: 'Reconciled' }] }),
      vs(),
      false,
    ],
    ['a resync (the same object)', 'DestinationRule', 'update', vs(), vs(), false],
    [
      'a label on an AuthorizationPolicy',
      'AuthorizationPolicy',
      'update',
      vs({ labels: { a: 'b' } }),
      vs(),
      false,
    ],
    [
      'the dry-run annotation on an AuthorizationPolicy',
      'AuthorizationPolicy',
      'update',
      vs({ annotations: { 'istio.io/dry-run': 'true' } }),
      vs(),
      true,
    ],
    [
      'the dry-run annotation on a VirtualService (not read)',
      'VirtualService',
      'update',
      vs({ annotations: { 'istio.io/dry-run': 'true' } }),
      vs(),
      false,
    ],
    [
      'a label on a Service (selectors, exportTo)',
      'Service',
      'update',
      vs({ labels: { app: 'x' } }),
      vs(),
      true,
    ],
    ['an annotation on a Service', 'Service', 'update', vs({ annotations: ARGO }), vs(), false],
    [
      "a Service's networking.istio.io/exportTo annotation (which namespaces see it)",
      'Service',
      'update',
      vs({ annotations: { ...ARGO, 'networking.istio.io/exportTo': '.' } }),
      vs({ annotations: ARGO }),
      true,
    ],
    ['a label on a WorkloadEntry', 'WorkloadEntry', 'update', vs({ labels: { app: 'x' } }), vs(), true],
    [
      'an EndpointSlice endpoint change',
      'EndpointSlice',
      'update',
      { ...vs(), endpoints: [{ addresses: ['10.0.0.2'] }] } as KubeObject,
      { ...vs(), endpoints: [{ addresses: ['10.0.0.1'] }] } as KubeObject,
      true,
    ],
    [
      'an EndpointSlice annotation only',
      'EndpointSlice',
      'update',
      {
        ...vs({ annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': 'now' } }),
        endpoints: [],
      } as KubeObject,
      { ...vs(), endpoints: [] } as KubeObject,
      false,
    ],
    ['a Pod status-only update', 'Pod', 'update', vs({}, {}, { phase: 'Running' }), vs({}, {}), false],
    ['a Pod label change', 'Pod', 'update', vs({ labels: { v: '2' } }, {}), vs({}, {}), true],
  ];
  for (const [title, kind, type, obj, old, want] of cases)
    it(`${title}: ${want ? 'a new generation' : 'ignored'}`, () =>
      expect(changeMatters(kind, type, obj, old)).to.equal(want));
});
