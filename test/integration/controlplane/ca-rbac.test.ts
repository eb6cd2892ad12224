/**
 * The RBAC render() gives weftd, enforced by a real API server for a real service-account token:
 * the CA can read its one Secret (field-selected list/watch under a resourceNames Role) and no
 * other, the root-cert publisher can write ConfigMaps in any namespace, and the status writer
 * can take its Lease and write mesh objects' status, and gateways' credentialName Secrets are
 * readable in a gateway's namespace and no other. Cluster-scoped names
 * get a per-test suffix so this never collides with a Mesh another test file renders.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createCertificateAuthority } from '../../../controlplane/ca.js';
import { startRootCertPublisher } from '../../../controlplane/rootcert.js';
import { createCA } from '../../../pkg/certs/index.js';
import { ROOT_CERT_CONFIGMAP } from '../../../pkg/discovery/protocol.js';
import { isApiError, KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { gatewayCredentialReaders, weftdRbac } from '../../../pkg/render/cluster.js';
import { SecretCredentials } from '../../../controlplane/credentials.js';
import { MESH_NAMESPACE } from '../../../pkg/render/spec.js';
import { createKubeRegistry } from '../../../controlplane/registry.js';
import { StatusWriter } from '../../../controlplane/statuswriter.js';
import { installCRDs } from '../../support/index.js';
import { freshNamespace, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { clientAs } from './fixtures.js';

const log = createLogger('test', { silent: true });
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** render()'s weftd RBAC, bound to `ns/weftd` instead of weft-system/weftd, cluster names suffixed. */
function rbacFor(ns: string, suffix: string): KubeObject[] {
  return weftdRbac('test', { namespace: ns, name: 'weft-root-ca' }).map((o) => {
    const obj = structuredClone(o) as KubeObject & {
      subjects?: { namespace: string }[];
      roleRef?: { kind: string; name: string };
    };
    if (obj.kind.startsWith('Cluster')) obj.metadata.name = `${obj.metadata.name}-${suffix}`;
    if (obj.roleRef?.kind === 'ClusterRole') obj.roleRef.name = `${obj.roleRef.name}-${suffix}`;
    for (const s of obj.subjects ?? []) s.namespace = ns;
    if (obj.metadata.namespace === MESH_NAMESPACE) obj.metadata.namespace = ns; // the status Lease's Role
    return obj;
  });
}

describe("weftd's rendered RBAC on a real API server", function () {
  this.timeout(120_000);

  it('lets the CA read only its Secret (by field selector) and the publisher write ConfigMaps anywhere', async () => {
    const admin = KubeClient.fromFile(testCluster().kubeconfigPath);
    const ns = await freshNamespace('ca-rbac');
    const suffix = randomBytes(3).toString('hex');
    const root = createCA({ commonName: 'rbac-root', ttlMs: 3600_000, now: new Date() });
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'weftd', namespace: ns },
    });
    for (const name of ['weft-root-ca', 'someone-elses'])
      await admin.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: ns },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(root.certPem), 'tls.key': b64(root.keyPem), 'ca.crt': b64(root.certPem) },
      });
    const rbac = rbacFor(ns, suffix);
    onCleanup(async () => {
      for (const o of rbac.filter((x) => x.kind.startsWith('Cluster')))
        await admin.delete({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name });
    });
    for (const o of rbac) await admin.apply(o, 'test', true);
    const weftd = await clientAs(admin, ns, 'weftd');
    const secretKey = { apiVersion: 'v1', kind: 'Secret', namespace: ns };

    // RBAC takes effect as soon as the authorizer's cache has the new bindings.
    await waitFor(
      'weftd to read its CA Secret',
      async () => (await weftd.get({ ...secretKey, name: 'weft-root-ca' })) !== null,
    );
    const forbidden = async (fn: () => Promise<unknown>): Promise<boolean> =>
      fn().then(
        () => false,
        (err: unknown) => isApiError(err, 403),
      );
    expect(
      await forbidden(() => weftd.get({ ...secretKey, name: 'someone-elses' })),
      'another Secret',
    ).to.equal(true);
    expect(
      await forbidden(() => weftd.list('v1', 'Secret', { namespace: ns })),
      'list without selector',
    ).to.equal(true);
    const listed = await weftd.list('v1', 'Secret', {
      namespace: ns,
      fieldSelector: 'metadata.name=weft-root-ca',
    });
    expect(listed.items.map((s) => s.metadata.name)).to.deep.equal(['weft-root-ca']);

    const ca = createCertificateAuthority({
      kube: weftd,
      caSecret: { namespace: ns, name: 'weft-root-ca' },
      trustDomain: 'cluster.local',
      workloadTtlMs: 3600_000,
      log,
    });
    const publisher = startRootCertPublisher({ kube: weftd, ca, log });
    onCleanup(async () => {
      publisher.stop();
      ca.stop();
      const body = (await admin.request('GET', '/api/v1/configmaps', {
        query: {
          fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}`,
          labelSelector: 'app.kubernetes.io/managed-by=weftd',
        },
      })) as { items?: KubeObject[] };
      for (const cm of body.items ?? [])
        await admin.delete({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          namespace: cm.metadata.namespace!,
          name: cm.metadata.name,
        });
    });
    await waitFor('the CA to load its Secret as weftd', () => ca.ready());
    const other = await freshNamespace('ca-rbac-other');
    await waitFor('weftd to publish the root in another namespace', async () => {
      const cm = (await admin.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: other,
        name: ROOT_CERT_CONFIGMAP,
      })) as {
        data?: Record<string, string>;
      } | null;
      return cm?.data?.['root-cert.pem'] === root.certPem;
    });
    // ...and nothing else: another ConfigMap (think kube-system's coredns) is out of its reach.
    await admin.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'coredns', namespace: other },
      data: { Corefile: '.:53 {}' },
    });
    const coredns = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: other } };
    expect(
      await forbidden(() => weftd.apply({ ...coredns, data: { Corefile: 'hijacked' } }, 'weftd', true)),
      "another ConfigMap's content",
    ).to.equal(true);
  });

  it("lets weftd read credential Secrets in a gateway's namespace (the rendered Role), and in no other", async () => {
    const admin = KubeClient.fromFile(testCluster().kubeconfigPath);
    const ns = await freshNamespace('gw-rbac-weftd');
    const gatewayNs = await freshNamespace('gw-rbac-edge');
    const otherNs = await freshNamespace('gw-rbac-other');
    const root = createCA({ commonName: 'site', ttlMs: 3600_000, now: new Date() });
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'weftd', namespace: ns },
    });
    for (const namespace of [gatewayNs, otherNs])
      await admin.create({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'site-cert', namespace },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(root.certPem), 'tls.key': b64(root.keyPem) },
      });
    // render()'s objects for a gateway in gatewayNs, bound to ns/weftd instead of weft-system/weftd
    for (const o of gatewayCredentialReaders('test', [gatewayNs])) {
      const obj = structuredClone(o) as KubeObject & { subjects?: { namespace: string }[] };
      for (const sub of obj.subjects ?? []) sub.namespace = ns;
      await admin.apply(obj, 'test', true);
    }
    const weftd = await clientAs(admin, ns, 'weftd');
    const secretKey = { apiVersion: 'v1', kind: 'Secret', name: 'site-cert' };
    await waitFor(
      'weftd to read the Secret in the gateway namespace',
      async () => (await weftd.get({ ...secretKey, namespace: gatewayNs })) !== null,
    );
    const forbidden = async (fn: () => Promise<unknown>): Promise<boolean> =>
      fn().then(
        () => false,
        (err: unknown) => isApiError(err, 403),
      );
    expect(
      await forbidden(() => weftd.get({ ...secretKey, namespace: otherNs })),
      'another namespace',
    ).to.equal(true);
    expect(await forbidden(() => weftd.list('v1', 'Secret', {})), 'Secrets cluster-wide').to.equal(true);

    const store = new SecretCredentials(weftd, log, () => undefined);
    onCleanup(async () => store.stop());
    const usable = await waitFor('the gateway credential through the rendered Role', () => {
      const c = store.get(gatewayNs, 'site-cert');
      return c.error === undefined ? c : null;
    });
    expect(usable.certChain).to.equal(root.certPem);
    const refused = await waitFor('the other namespace refused', () => {
      const e = store.get(otherNs, 'site-cert').error ?? '';
      return e.includes('(403)') ? e : null;
    });
    expect(refused).to.contain(`weftd may not read Secret ${otherNs}/site-cert (403)`);
  });

  it('lets the status writer take its Lease and write a VirtualService status', async () => {
    const admin = KubeClient.fromFile(testCluster().kubeconfigPath);
    await installCRDs();
    const ns = await freshNamespace('status-rbac');
    const suffix = randomBytes(3).toString('hex');
    await admin.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'weftd', namespace: ns },
    });
    const rbac = rbacFor(ns, suffix);
    onCleanup(async () => {
      for (const o of rbac.filter((x) => x.kind.startsWith('Cluster')))
        await admin.delete({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name });
    });
    for (const o of rbac) await admin.apply(o, 'test', true);
    await admin.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: ns },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    });
    const weftd = await clientAs(admin, ns, 'weftd');
    const registry = createKubeRegistry(weftd, log, 'cluster.local');
    const writer = new StatusWriter({
      kube: weftd,
      registry,
      log,
      lease: { namespace: ns, identity: 'rbac' },
      debounce: { afterMs: 20, maxMs: 200 },
      leaseTiming: { retryPeriodMs: 200 },
    });
    writer.start();
    onCleanup(async () => {
      await writer.stop();
      registry.stop();
    });
    await waitFor('the status writer to lead with the rendered Role', () => writer.isLeader, 30_000);
    const status = await waitFor('the VirtualService status written', async () => {
      const o = await admin.get({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        namespace: ns,
        name: 'reviews',
      });
      return (o?.status as { conditions?: unknown[] } | undefined)?.conditions;
    });
    expect(status).to.have.length(4);
    expect(writer.counts.errors).to.equal(0);
  });
});
