import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import {
  decideInjection,
  DEFAULT_INJECTION_SETTINGS,
  type InjectionSettings,
} from '../../../pkg/inject/index.js';

const settings: InjectionSettings = { ...DEFAULT_INJECTION_SETTINGS };

function pod(
  opts: { label?: string; annotation?: string; hostNetwork?: boolean; status?: boolean } = {},
): V1Pod {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  if (opts.label !== undefined) labels['sidecar.istio.io/inject'] = opts.label;
  if (opts.annotation !== undefined) annotations['sidecar.istio.io/inject'] = opts.annotation;
  if (opts.status) annotations['sidecar.istio.io/status'] = '{}';
  return {
    metadata: { name: 'p', namespace: 'app', labels, annotations },
    spec: { containers: [{ name: 'app', image: 'x' }], ...(opts.hostNetwork ? { hostNetwork: true } : {}) },
  };
}

function ns(name: string, labels: Record<string, string> = {}) {
  return { metadata: { name, labels } };
}

describe('injection policy (Istio precedence)', () => {
  // namespace label x pod label: either disabled → no; either enabled → yes; neither → default (off)
  const matrix: [string, Record<string, string>, string | undefined, boolean, string][] = [
    ['ns enabled, pod unset', { 'istio-injection': 'enabled' }, undefined, true, 'namespace enabled'],
    ['ns enabled, pod true', { 'istio-injection': 'enabled' }, 'true', true, 'namespace enabled'],
    ['ns enabled, pod false', { 'istio-injection': 'enabled' }, 'false', false, 'pod disabled'],
    ['ns disabled, pod unset', { 'istio-injection': 'disabled' }, undefined, false, 'namespace disabled'],
    ['ns disabled, pod true', { 'istio-injection': 'disabled' }, 'true', false, 'namespace disabled'],
    ['ns disabled, pod false', { 'istio-injection': 'disabled' }, 'false', false, 'namespace disabled'],
    ['ns unset, pod unset', {}, undefined, false, 'not enabled'],
    ['ns unset, pod true', {}, 'true', true, 'pod enabled'],
    ['ns unset, pod false', {}, 'false', false, 'pod disabled'],
    ['weft label enabled', { 'weft.dev/inject': 'enabled' }, undefined, true, 'namespace enabled'],
    ['weft label true', { 'weft.dev/inject': 'true' }, undefined, true, 'namespace enabled'],
    [
      'weft label disabled beats istio enabled',
      { 'istio-injection': 'enabled', 'weft.dev/inject': 'disabled' },
      undefined,
      false,
      'namespace disabled',
    ],
    [
      'istio disabled beats weft enabled',
      { 'istio-injection': 'disabled', 'weft.dev/inject': 'enabled' },
      'true',
      false,
      'namespace disabled',
    ],
    ['unknown ns value does not vote', { 'istio-injection': 'yes-please' }, undefined, false, 'not enabled'],
    ['pod "yes" spelling', {}, 'yes', true, 'pod enabled'],
    ['pod "False" spelling', { 'istio-injection': 'enabled' }, 'False', false, 'pod disabled'],
  ];
  for (const [title, nsLabels, podLabel, inject, reason] of matrix) {
    it(title, () => {
      const d = decideInjection(
        pod(podLabel === undefined ? {} : { label: podLabel }),
        ns('app', nsLabels),
        settings,
      );
      expect(d).to.deep.equal({ inject, reason });
    });
  }

  it('the pod label wins over the pod annotation', () => {
    const d = decideInjection(
      pod({ label: 'false', annotation: 'true' }),
      ns('app', { 'istio-injection': 'enabled' }),
      settings,
    );
    expect(d.inject).to.equal(false);
  });

  it('the pod annotation votes when there is no label', () => {
    expect(decideInjection(pod({ annotation: 'true' }), ns('app'), settings)).to.deep.equal({
      inject: true,
      reason: 'pod enabled',
    });
    expect(
      decideInjection(pod({ annotation: 'false' }), ns('app', { 'istio-injection': 'enabled' }), settings)
        .inject,
    ).to.equal(false);
  });

  for (const name of ['kube-system', 'kube-public', 'kube-node-lease', 'weft-system']) {
    it(`never injects into ${name}, even when labelled and asked`, () => {
      const d = decideInjection(pod({ label: 'true' }), ns(name, { 'istio-injection': 'enabled' }), settings);
      expect(d.inject).to.equal(false);
      expect(d.reason).to.match(/system namespace|mesh namespace/);
    });
  }

  it('honours a custom mesh namespace', () => {
    const d = decideInjection(pod(), ns('mesh-a', { 'istio-injection': 'enabled' }), {
      ...settings,
      meshNamespace: 'mesh-a',
    });
    expect(d).to.deep.equal({ inject: false, reason: 'mesh namespace' });
  });

  it('never injects hostNetwork pods', () => {
    expect(
      decideInjection(
        pod({ hostNetwork: true, label: 'true' }),
        ns('app', { 'istio-injection': 'enabled' }),
        settings,
      ),
    ).to.deep.equal({
      inject: false,
      reason: 'hostNetwork',
    });
  });

  it('never injects twice', () => {
    expect(
      decideInjection(pod({ status: true }), ns('app', { 'istio-injection': 'enabled' }), settings).reason,
    ).to.equal('already injected');
  });

  it('enableNamespacesByDefault injects unlabelled namespaces but still honours opt-outs', () => {
    const s = { ...settings, enableNamespacesByDefault: true };
    expect(decideInjection(pod(), ns('app'), s).inject).to.equal(true);
    expect(decideInjection(pod({ label: 'false' }), ns('app'), s).inject).to.equal(false);
    expect(decideInjection(pod(), ns('app', { 'istio-injection': 'disabled' }), s).inject).to.equal(false);
  });

  it('falls back to the pod namespace when the Namespace object is unknown', () => {
    const p = pod({ label: 'true' });
    p.metadata!.namespace = 'kube-system';
    expect(decideInjection(p, undefined, settings).inject).to.equal(false);
  });
});
