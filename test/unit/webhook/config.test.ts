/**
 * The webhook configurations: safe defaults written out in full. (config/webhook/webhook.yaml is
 * generated from the operator's render() by hack/gen-config.ts, checked by its own test.)
 */
import { expect } from 'chai';
import type { V1LabelSelector, V1MutatingWebhook, V1ValidatingWebhook } from '@kubernetes/client-node';
import {
  buildWebhookConfigurations,
  VALIDATING_WEBHOOK_NAME,
  validationRules,
} from '../../../pkg/admission/index.js';
import { kindDefinitions } from '../../../pkg/api/registry.js';

const serviceTarget = { service: { namespace: 'weft-system', name: 'weft-webhook' } };

/** Does a selector match a namespace with these labels? (The API server's semantics for the operators used here.) */
function matches(sel: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const has = e.key in labels;
    const val = labels[e.key];
    if (e.operator === 'In' && !(has && e.values!.includes(val!))) return false;
    if (e.operator === 'NotIn' && has && e.values!.includes(val!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

describe('webhook configurations', () => {
  const [validating, mutating] = buildWebhookConfigurations({
    target: serviceTarget,
    meshNamespace: 'weft-system',
    webhookNamespace: 'weft-webhook',
  });
  const all: (V1ValidatingWebhook | V1MutatingWebhook)[] = [...validating.webhooks!, ...mutating.webhooks!];

  it('writes out every field the API server would default', () => {
    for (const wh of all) {
      expect(wh, wh.name).to.include.all.keys(
        'admissionReviewVersions',
        'clientConfig',
        'failurePolicy',
        'matchPolicy',
        'namespaceSelector',
        'objectSelector',
        'rules',
        'sideEffects',
        'timeoutSeconds',
      );
      expect(wh.admissionReviewVersions).to.deep.equal(['v1']);
      expect(wh.sideEffects).to.equal('None');
      expect(wh.matchPolicy).to.equal('Equivalent');
      for (const r of wh.rules!) expect(r.scope, wh.name).to.be.oneOf(['Namespaced', 'Cluster', '*']);
    }
    for (const wh of mutating.webhooks!) expect(wh.reinvocationPolicy).to.equal('IfNeeded');
  });

  it('validation: Fail, 5 s, named as users see it, every weft kind and version', () => {
    const wh = validating.webhooks![0]!;
    expect(wh.name).to.equal(VALIDATING_WEBHOOK_NAME);
    expect(wh).to.include({ failurePolicy: 'Fail', timeoutSeconds: 5 });
    const covered = new Set(
      wh.rules!.flatMap((r) =>
        r.resources!.flatMap((res) => r.apiVersions!.map((v) => `${r.apiGroups![0]}/${v}/${res}`)),
      ),
    );
    for (const def of kindDefinitions)
      for (const v of def.versions)
        expect(covered.has(`${def.group}/${v}/${def.plural}`), `${def.kind} ${v}`).to.equal(true);
  });

  it('injection: Fail (documented), 10 s, pods at CREATE only', () => {
    for (const wh of mutating.webhooks!) {
      expect(wh).to.include({ failurePolicy: 'Fail', timeoutSeconds: 10 });
      expect(wh.rules).to.deep.equal([
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE'],
          resources: ['pods'],
          scope: 'Namespaced',
        },
      ]);
    }
  });

  it('groups rules per API group with the right scope', () => {
    const rules = validationRules(kindDefinitions);
    const mesh = rules.find((r) => r.apiGroups![0] === 'mesh.weft.dev');
    // RateLimit (namespaced) shares the group with the cluster-scoped Mesh
    expect(mesh).to.deep.include({ resources: ['meshes', 'ratelimits'], scope: '*' });
    expect(rules.find((r) => r.apiGroups![0] === 'networking.istio.io')?.scope).to.equal('Namespaced');
  });

  // Which injection webhooks a namespace selects: the API server calls us only where injection may happen.
  const nsCases: [string, Record<string, string>, number][] = [
    ['istio-injection=enabled', { 'istio-injection': 'enabled' }, 1],
    ['weft.dev/inject=enabled', { 'weft.dev/inject': 'enabled' }, 1],
    ['both enabled (one call, not two)', { 'istio-injection': 'enabled', 'weft.dev/inject': 'enabled' }, 1],
    ['istio enabled, weft disabled', { 'istio-injection': 'enabled', 'weft.dev/inject': 'disabled' }, 0],
    ['istio disabled, weft enabled', { 'istio-injection': 'disabled', 'weft.dev/inject': 'enabled' }, 0],
    ['istio-injection=disabled', { 'istio-injection': 'disabled' }, 0],
    ['unlabelled (object webhook only)', {}, 1],
    [
      'opted out of all weft webhooks',
      { 'istio-injection': 'enabled', 'weft.dev/admission-webhooks': 'disabled' },
      0,
    ],
  ];
  for (const [title, labels, count] of nsCases) {
    it(`namespace ${title} → ${count} injection webhook(s)`, () => {
      const selected = mutating.webhooks!.filter((wh) =>
        matches(wh.namespaceSelector, { ...labels, 'kubernetes.io/metadata.name': 'app' }),
      );
      expect(selected.map((w) => w.name)).to.have.length(count);
    });
  }

  for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', 'weft-system', 'weft-webhook']) {
    it(`never sends pods of ${ns} to the injector, whatever its labels`, () => {
      const labels = { 'kubernetes.io/metadata.name': ns, 'istio-injection': 'enabled' };
      expect(mutating.webhooks!.filter((wh) => matches(wh.namespaceSelector, labels))).to.have.length(0);
      expect(
        mutating.webhooks!.filter((wh) =>
          matches(wh.namespaceSelector, { 'kubernetes.io/metadata.name': ns }),
        ),
      ).to.have.length(0);
    });
  }

  it("never sends weft's own pods, and honours the pod opt-out in selectors", () => {
    for (const wh of mutating.webhooks!) {
      expect(
        matches(wh.objectSelector, {
          'app.kubernetes.io/part-of': 'weft',
          'sidecar.istio.io/inject': 'true',
        }),
      ).to.equal(false);
      expect(matches(wh.objectSelector, { 'sidecar.istio.io/inject': 'false' })).to.equal(false);
    }
  });

  it('targets a URL with a caBundle for a webhook outside the cluster', () => {
    const [v, m] = buildWebhookConfigurations({
      target: { url: 'https://127.0.0.1:9443/' },
      caBundle: 'Q0E=',
      meshNamespace: 'weft-system',
    });
    expect(v.webhooks![0]!.clientConfig).to.deep.equal({
      url: 'https://127.0.0.1:9443/validate',
      caBundle: 'Q0E=',
    });
    expect(m.webhooks![0]!.clientConfig).to.deep.equal({
      url: 'https://127.0.0.1:9443/inject',
      caBundle: 'Q0E=',
    });
  });
});
