import { expect } from 'chai';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import {
  DEFAULT_INJECTION_SETTINGS,
  injectPod,
  injectTemplate,
  settingsFromMesh,
  type InjectionSettings,
} from '../../../pkg/inject/index.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import { agentSettings } from '../../../proxy/sidecar/agent.js';

const SIDECAR_ENV = {
  WEFT_DISCOVERY_ADDRESS: 'weftd.weft-system.svc:15012',
  POD_NAMESPACE: 'app',
  POD_NAME: 'web',
};

const enabledNs = { metadata: { name: 'app', labels: { 'istio-injection': 'enabled' } } };

function pod(annotations: Record<string, string> = {}, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'app', annotations },
    spec: { containers: [{ name: 'web', image: 'web:1' }], ...extra },
  };
}

function settings(over: Partial<InjectionSettings> = {}): InjectionSettings {
  return { ...structuredClone(DEFAULT_INJECTION_SETTINGS), ...over };
}

function injected(p: V1Pod, s: InjectionSettings): V1Pod {
  const out = injectPod(p, enabledNs, s);
  if (!out.injected) throw new Error(`not injected: ${out.reason}`);
  return out.pod;
}

function byName(list: V1Container[] | undefined, name: string): V1Container {
  const c = list?.find((x) => x.name === name);
  if (!c) throw new Error(`${name} not found in ${JSON.stringify(list?.map((x) => x.name))}`);
  return c;
}

const modes: [string, Partial<InjectionSettings>][] = [
  ['classic', { nativeSidecar: false, holdApplicationUntilProxyStarts: false }],
  ['classic + hold', { nativeSidecar: false, holdApplicationUntilProxyStarts: true }],
  ['native', { nativeSidecar: true }],
];

describe('injector', () => {
  for (const [mode, over] of modes) {
    describe(`${mode} mode`, () => {
      const s = settings(over);
      const out = injected(pod({}, { initContainers: [{ name: 'setup', image: 'setup:1' }] }), s);
      const spec = out.spec!;
      const proxy = byName(over.nativeSidecar ? spec.initContainers : spec.containers, 'weft-proxy');
      const init = byName(spec.initContainers, 'weft-init');

      it('runs the proxy as uid 1337, non-root, read-only root, no capabilities', () => {
        expect(proxy.securityContext).to.include({
          runAsUser: 1337,
          runAsGroup: 1337,
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
        });
        expect(proxy.securityContext?.capabilities).to.deep.equal({ drop: ['ALL'] });
        expect(proxy.securityContext?.allowPrivilegeEscalation).to.equal(false);
      });
      it('exposes 15001, 15006, 15021, 15090', () => {
        expect(proxy.ports?.map((p) => p.containerPort)).to.deep.equal([15001, 15006, 15021, 15090]);
      });
      it('passes pod name, namespace, IP and service account by the downward API', () => {
        const env = Object.fromEntries(
          (proxy.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]),
        );
        expect(env).to.include({
          POD_NAME: 'metadata.name',
          POD_NAMESPACE: 'metadata.namespace',
          INSTANCE_IP: 'status.podIP',
          SERVICE_ACCOUNT: 'spec.serviceAccountName',
        });
      });
      it('mounts a projected token with the mesh audience', () => {
        const vol = spec.volumes?.find((v) => v.name === 'weft-token');
        expect(vol?.projected?.sources?.[0]?.serviceAccountToken).to.deep.include({
          audience: 'weft-ca',
          path: 'weft-token',
        });
        expect(proxy.volumeMounts?.find((m) => m.name === 'weft-token')).to.include({ readOnly: true });
      });
      it('mounts the mesh root ConfigMap weftd publishes, and says where it is', () => {
        const vol = spec.volumes?.find((v) => v.name === 'weft-ca-root-cert');
        expect(vol?.configMap).to.deep.equal({ name: 'weft-ca-root-cert' });
        expect(proxy.volumeMounts?.find((m) => m.name === 'weft-ca-root-cert')).to.deep.equal({
          name: 'weft-ca-root-cert',
          mountPath: '/etc/weft/ca',
          readOnly: true,
        });
        expect(proxy.env?.find((e) => e.name === 'WEFT_CA_ROOT_PATH')?.value).to.equal(
          '/etc/weft/ca/root-cert.pem',
        );
      });
      it('is ready on 15021', () => {
        expect(proxy.readinessProbe?.httpGet).to.deep.equal({
          path: '/healthz/ready',
          port: 15021,
          scheme: 'HTTP',
        });
      });
      it('runs proxy init as root with NET_ADMIN and NET_RAW only', () => {
        expect(init.args?.slice(0, 2)).to.deep.equal(['proxy', 'init']);
        expect(init.securityContext).to.include({
          runAsUser: 0,
          runAsNonRoot: false,
          privileged: false,
          allowPrivilegeEscalation: false,
        });
        expect(init.securityContext?.capabilities).to.deep.equal({
          add: ['NET_ADMIN', 'NET_RAW'],
          drop: ['ALL'],
        });
      });
      it('orders containers as the mode requires', () => {
        const inits = spec.initContainers!.map((c) => c.name);
        const containers = spec.containers.map((c) => c.name);
        if (over.nativeSidecar) {
          expect(inits).to.deep.equal(['weft-init', 'weft-proxy', 'setup']);
          expect(containers).to.deep.equal(['web']);
          expect(proxy.restartPolicy).to.equal('Always');
          expect(proxy.startupProbe?.httpGet?.port).to.equal(15021);
          expect(proxy.lifecycle).to.equal(undefined);
        } else {
          expect(inits).to.deep.equal(['setup', 'weft-init']);
          expect(containers).to.deep.equal(
            over.holdApplicationUntilProxyStarts ? ['weft-proxy', 'web'] : ['web', 'weft-proxy'],
          );
          expect(proxy.restartPolicy).to.equal(undefined);
          expect(proxy.lifecycle?.postStart?.exec?.command).to.deep.equal(
            over.holdApplicationUntilProxyStarts ? ['proxy', 'wait'] : undefined,
          );
        }
      });
      it('records what it added in sidecar.istio.io/status', () => {
        const status = JSON.parse(out.metadata!.annotations!['sidecar.istio.io/status']!) as Record<
          string,
          unknown
        >;
        expect(status.volumes).to.deep.equal([
          'weft-data',
          'weft-podinfo',
          'weft-token',
          'weft-ca-root-cert',
        ]);
        expect(status.containers).to.deep.equal(over.nativeSidecar ? [] : ['weft-proxy']);
      });
      it('is idempotent: the injected pod is left alone', () => {
        expect(injectPod(out, enabledNs, s)).to.deep.equal({ injected: false, reason: 'already injected' });
      });
    });
  }

  it('produces a patch that turns the request object into the injected pod', () => {
    const p = pod({ 'sidecar.istio.io/proxyCPU': '300m' });
    const out = injectPod(p, enabledNs, settings());
    if (!out.injected) throw new Error('expected injection');
    const applied = fastJsonPatch.applyPatch(structuredClone(p), out.patch, true, false).newDocument;
    expect(applied).to.deep.equal(out.pod);
    expect(out.patch.every((op) => op.path.startsWith('/metadata') || op.path.startsWith('/spec'))).to.equal(
      true,
    );
  });

  it('takes resources from the mesh, then from annotations', () => {
    const s = settingsFromMesh({ resources: { requests: { cpu: '50m' }, limits: { memory: '256Mi' } } });
    const out = injected(pod({ 'sidecar.istio.io/proxyMemory': '64Mi' }), { ...s, nativeSidecar: false });
    expect(byName(out.spec!.containers, 'weft-proxy').resources).to.deep.equal({
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { cpu: '2', memory: '256Mi' },
    });
  });

  it('rejects a request above its limit, naming both annotations', () => {
    expect(() => injectPod(pod({ 'sidecar.istio.io/proxyMemory': '2Gi' }), enabledNs, settings())).to.throw(
      /proxyMemory\]: proxy memory request 2Gi is above its limit 1Gi; raise sidecar.istio.io\/proxyMemoryLimit too/,
    );
  });

  it('per-pod nativeSidecar annotation overrides the mesh', () => {
    const out = injected(
      pod({ 'sidecar.istio.io/nativeSidecar': 'true' }),
      settings({ nativeSidecar: false }),
    );
    expect(out.spec!.initContainers!.map((c) => c.name)).to.deep.equal(['weft-init', 'weft-proxy']);
  });

  it("ratelimit.weft.dev/check-timeout becomes the sidecar's --ratelimit-timeout-ms (absent: no flag)", () => {
    const proxyOf = (p: V1Pod): V1Container =>
      byName([...(p.spec!.initContainers ?? []), ...p.spec!.containers], 'weft-proxy');
    const out = injected(pod({ 'ratelimit.weft.dev/check-timeout': '1.5s' }), settings());
    expect(proxyOf(out).args).to.deep.equal(['proxy', 'sidecar', '--ratelimit-timeout-ms=1500']);
    expect(proxyOf(injected(pod(), settings())).args).to.deep.equal(['proxy', 'sidecar']);
    expect(agentSettings('sidecar', proxyOf(out).args!.slice(2), SIDECAR_ENV).rateLimitTimeoutMs).to.equal(
      1500,
    );
  });

  it('maps the iptables annotations onto proxy init flags', () => {
    const out = injected(
      pod({
        'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8',
        'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.1/32',
        'traffic.sidecar.istio.io/includeInboundPorts': '80',
        'traffic.sidecar.istio.io/excludeInboundPorts': '9000,15021',
        'traffic.sidecar.istio.io/excludeOutboundPorts': '5432',
      }),
      settings(),
    );
    const args = byName(out.spec!.initContainers, 'weft-init').args!;
    const flag = (f: string) => args[args.indexOf(f) + 1];
    expect([flag('-i'), flag('-x'), flag('-b'), flag('-d'), flag('-o')]).to.deep.equal([
      '10.0.0.0/8',
      '10.0.0.1/32',
      '80',
      '15090,15021,9000',
      '5432',
    ]);
    expect(args.slice(2, 10)).to.deep.equal(['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT']);
  });

  it('rewrites HTTP probes through 15021 and hands the original to the proxy', () => {
    const p = pod(
      {},
      {
        containers: [
          {
            name: 'web',
            image: 'web:1',
            ports: [{ name: 'http', containerPort: 8080 }],
            livenessProbe: { httpGet: { path: '/live', port: 'http' }, periodSeconds: 7 },
            readinessProbe: { exec: { command: ['true'] } },
          },
        ],
      },
    );
    const out = injected(p, settings({ nativeSidecar: false }));
    const web = byName(out.spec!.containers, 'web');
    expect(web.livenessProbe).to.deep.equal({
      periodSeconds: 7,
      httpGet: { path: '/app-health/web/livez', port: 15021, scheme: 'HTTP' },
    });
    expect(web.readinessProbe).to.deep.equal({ exec: { command: ['true'] } });
    const env = byName(out.spec!.containers, 'weft-proxy').env!.find(
      (e) => e.name === 'ISTIO_KUBE_APP_PROBERS',
    );
    expect(JSON.parse(env!.value!)).to.deep.equal({
      '/app-health/web/livez': { httpGet: { path: '/live', port: 8080 } },
    });
  });

  it('skips pods that already carry a container named like ours', () => {
    const p = pod({}, { containers: [{ name: 'weft-proxy', image: 'x' }] });
    expect(injectPod(p, enabledNs, settings())).to.deep.equal({
      injected: false,
      reason: 'container weft-proxy already present',
    });
  });

  it('reports a pod without containers as invalid input, not a crash', () => {
    const p = { metadata: { name: 'x', namespace: 'app' }, spec: {} } as V1Pod;
    let caught: unknown;
    try {
      injectPod(p, enabledNs, settings());
    } catch (err) {
      caught = err;
    }
    expect(isWeftError(caught, 'WEFT_INJECTION_INPUT_INVALID')).to.equal(true);
  });

  it('injectTemplate does not modify its argument', () => {
    const p = pod();
    const before = structuredClone(p);
    injectTemplate(p, settings(), 'web');
    expect(p).to.deep.equal(before);
  });
});
