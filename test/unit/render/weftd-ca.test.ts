/**
 * What render() gives weftd's workload CA and the proxies that use it: weftd's RBAC (configmap
 * writes for the root-cert publisher, one named CA Secret through a Role), the CA Secret in the
 * mesh config, and gateways wired to weftd exactly as injected sidecars are.
 */
import { expect } from 'chai';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import type { Mesh, MeshSpec } from '../../../pkg/api/mesh.js';
import { injectTemplate, type PodTemplate } from '../../../pkg/inject/inject.js';
import { DEFAULT_INJECTION_SETTINGS } from '../../../pkg/inject/settings.js';
import { caRootVolume, tokenVolume } from '../../../pkg/inject/templates.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { render } from '../../../pkg/render/index.js';

const mesh = (spec: MeshSpec): Mesh => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'Mesh',
  metadata: { name: 'default' },
  spec,
});

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const find = (objs: KubeObject[], kind: string, name: string): KubeObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) expect.fail(`${kind} ${name} not rendered`);
  return o;
};
const rulesOf = (o: KubeObject): Rule[] => (o as unknown as { rules: Rule[] }).rules;
const podSpec = (o: KubeObject): V1PodSpec =>
  (o as unknown as { spec: { template: { spec: V1PodSpec } } }).spec.template.spec;

describe('render: weftd CA permissions and the proxies that use the CA', () => {
  const objs = render(mesh({ gateways: [{ name: 'ingress' }] }));

  it('weftd may write ConfigMaps cluster-wide (the root-cert publisher) but read no Secret cluster-wide', () => {
    const rules = rulesOf(find(objs, 'ClusterRole', 'weftd'));
    const cm = rules.filter((r) => r.apiGroups.includes('') && r.resources.includes('configmaps'));
    expect(cm.flatMap((r) => r.verbs)).to.include.members([
      'create',
      'patch',
      'update',
      'get',
      'list',
      'watch',
    ]);
    expect(rules.some((r) => r.resources.includes('secrets') || r.resources.includes('*'))).to.equal(false);
    expect(rules).to.deep.include({
      apiGroups: ['authentication.k8s.io'],
      resources: ['tokenreviews'],
      verbs: ['create'],
    });
  });

  it('weftd reads exactly the root CA Secret, through a Role in weft-system bound to its service account', () => {
    const role = find(objs, 'Role', 'weftd-ca');
    expect(role.metadata.namespace).to.equal('weft-system');
    expect(rulesOf(role)).to.deep.equal([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['weft-root-ca'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const binding = find(objs, 'RoleBinding', 'weftd-ca') as unknown as {
      metadata: { namespace: string };
      roleRef: unknown;
      subjects: unknown[];
    };
    expect(binding.metadata.namespace).to.equal('weft-system');
    expect(binding.roleRef).to.deep.equal({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'weftd-ca',
    });
    expect(binding.subjects).to.deep.equal([
      { kind: 'ServiceAccount', name: 'weftd', namespace: 'weft-system' },
    ]);
  });

  describe("gateways' credentialName Secrets", () => {
    const ofKind = (o: KubeObject[], kind: string): KubeObject[] =>
      o.filter((x) => x.kind === kind && x.metadata.name === 'weftd-gateway-credentials');
    const two = render(
      mesh({
        gateways: [
          { name: 'ingress' },
          { name: 'edge-in', namespace: 'edge' },
          { name: 'edge-out', namespace: 'edge' },
        ],
      }),
    );

    it('weftd reads Secrets in each namespace with a gateway: one Role and RoleBinding per namespace, nothing wider', () => {
      const roles = ofKind(two, 'Role');
      expect(roles.map((r) => r.metadata.namespace)).to.deep.equal(['edge', 'weft-system']);
      for (const r of roles)
        expect(rulesOf(r)).to.deep.equal([
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
        ]);
      const bindings = ofKind(two, 'RoleBinding') as unknown as {
        metadata: KubeObject['metadata'];
        roleRef: unknown;
        subjects: unknown[];
      }[];
      expect(bindings.map((b) => b.metadata.namespace)).to.deep.equal(['edge', 'weft-system']);
      for (const b of bindings) {
        expect(b.roleRef).to.deep.equal({
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Role',
          name: 'weftd-gateway-credentials',
        });
        expect(b.subjects).to.deep.equal([
          { kind: 'ServiceAccount', name: 'weftd', namespace: 'weft-system' },
        ]);
        // the inventory label: the operator prunes them with the last gateway of their namespace
        expect(b.metadata.labels).to.include({
          'mesh.weft.dev/mesh': 'default',
          'app.kubernetes.io/managed-by': 'weft-operator',
        });
      }
      const secretRules = two
        .filter((o) => o.kind === 'ClusterRole')
        .flatMap(rulesOf)
        .filter((r) => r.resources.includes('secrets'));
      expect(secretRules, 'no cluster-wide Secret access').to.deep.equal([]);
    });

    it('a Mesh without gateways (or after the last one in a namespace goes) renders none there', () => {
      expect(ofKind(render(mesh({})), 'Role')).to.deep.equal([]);
      const one = render(mesh({ gateways: [{ name: 'edge-in', namespace: 'edge' }] }));
      expect(ofKind(one, 'Role').map((r) => r.metadata.namespace)).to.deep.equal(['edge']);
    });

    it('owned by the Mesh like every rendered object', () => {
      const owned = render({
        ...mesh({ gateways: [{ name: 'edge-in', namespace: 'edge' }] }),
        metadata: { name: 'default', uid: 'u-1' },
      });
      for (const o of [...ofKind(owned, 'Role'), ...ofKind(owned, 'RoleBinding')])
        expect(o.metadata.ownerReferences?.[0]).to.include({ kind: 'Mesh', uid: 'u-1', controller: true });
    });
  });

  const weftdArgs = (o: KubeObject[]): string[] =>
    podSpec(find(o, 'Deployment', 'weftd')).containers[0]!.args ?? [];

  it("with caSecretRef, the Role and weftd's --ca-secret name the user's Secret instead", () => {
    const user = render(mesh({ certificates: { caSecretRef: { name: 'corp-ca', namespace: 'pki' } } }));
    const role = find(user, 'Role', 'weftd-ca');
    expect(role.metadata.namespace).to.equal('pki');
    expect(rulesOf(role)[0]?.resourceNames).to.deep.equal(['corp-ca']);
    expect(find(user, 'RoleBinding', 'weftd-ca').metadata.namespace).to.equal('pki');
    expect(weftdArgs(user)).to.include('--ca-secret=pki/corp-ca');
  });

  it('weftd is told the default CA Secret, the one its Role grants', () => {
    expect(weftdArgs(objs)).to.include('--ca-secret=weft-system/weft-root-ca');
  });

  describe('a gateway Deployment', () => {
    const spec = podSpec(find(objs, 'Deployment', 'ingress'));
    const gw = spec.containers[0]!;
    // An injected sidecar, for comparison: the gateway must reach weftd the same way.
    const pod: PodTemplate = {
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'app', image: 'app' }] },
    };
    const injected = injectTemplate(pod, { ...DEFAULT_INJECTION_SETTINGS, rewriteAppProbes: false }, 'p');
    const sidecar = [...(injected.spec!.initContainers ?? []), ...injected.spec!.containers].find(
      (c) => c.name === 'weft-proxy',
    ) as V1Container;

    it('runs `proxy gateway` as uid 1337 with the proxy image', () => {
      expect(gw.args).to.deep.equal(['proxy', 'gateway']);
      expect(gw.securityContext).to.include({ runAsUser: 1337, runAsNonRoot: true });
      expect(gw.image).to.equal(DEFAULT_INJECTION_SETTINGS.proxyImage);
    });

    it("has the sidecar's identity and weftd variables, in the same order", () => {
      expect(gw.env).to.deep.equal(sidecar.env);
      const env = Object.fromEntries(
        (gw.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
      );
      expect(env).to.deep.equal({
        POD_NAME: 'metadata.name',
        POD_NAMESPACE: 'metadata.namespace',
        INSTANCE_IP: 'status.podIP',
        SERVICE_ACCOUNT: 'spec.serviceAccountName',
        WEFT_DISCOVERY_ADDRESS: 'weftd.weft-system.svc:15012',
        WEFT_TOKEN_PATH: '/var/run/secrets/tokens/weft-token',
        WEFT_TOKEN_AUDIENCE: 'weft-ca',
        WEFT_CA_ROOT_PATH: '/etc/weft/ca/root-cert.pem',
      });
    });

    it('mounts the weft-ca token and the mesh root like the sidecar', () => {
      expect(spec.volumes).to.deep.equal([tokenVolume('weft-ca'), caRootVolume()]);
      const sidecarMounts = (sidecar.volumeMounts ?? []).filter((m) =>
        ['weft-token', 'weft-ca-root-cert'].includes(m.name),
      );
      expect(gw.volumeMounts).to.deep.equal(sidecarMounts);
    });

    it('uses the Mesh proxy image when one is set', () => {
      const custom = render(
        mesh({ gateways: [{ name: 'g' }], injection: { proxyImage: 'registry.local/proxy:1' } }),
      );
      expect(podSpec(find(custom, 'Deployment', 'g')).containers[0]!.image).to.equal(
        'registry.local/proxy:1',
      );
    });
  });
});
