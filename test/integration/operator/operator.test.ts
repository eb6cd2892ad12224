/**
 * The operator against a real kube-apiserver + etcd + kube-controller-manager: the sample Mesh
 * becomes children with owner references; pods made Ready (the test plays kubelet) roll up to
 * Ready=True; spec edits, deleted and hand-edited children, a second Mesh, an invalid spec, a
 * leader crash and an API server restart are all converged; deleting the Mesh removes all.
 *
 * The tests share one cluster-scoped Mesh and run in order.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { testCluster, installCRDs, freshNamespace } from '../../support/index.js';
import type { KubeClient } from '../../../pkg/kube/client.js';
import { keyOf, type KubeObject } from '../../../pkg/kube/types.js';
import { Informer } from '../../../pkg/kube/informer.js';
import { createLogger } from '../../../pkg/log/index.js';
import {
  condition,
  clientFor,
  makeMeshReady,
  OperatorProcess,
  restartApiServer,
  TestWebhook,
  waitFor,
} from './harness.js';

const MESH = { apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh', name: 'default' };
const sample = (): Record<string, unknown> & { spec: Record<string, unknown> } =>
  parse(readFileSync('config/samples/mesh.yaml', 'utf8')) as Record<string, unknown> & {
    spec: Record<string, unknown>;
  };

describe('operator (real API server)', function () {
  this.timeout(180_000);
  let client: KubeClient;
  let hook: TestWebhook;
  let op: OperatorProcess;
  let standby: OperatorProcess | undefined;
  /** Every version of every Mesh seen on a watch during the run: the status invariants are checked over all of them. */
  const history: KubeObject[] = [];
  let recorder: Informer | undefined;
  const kubectl = (args: string[], input?: string) =>
    testCluster().kubectl(args, input === undefined ? {} : { input });
  const getMesh = (name = 'default'): Promise<KubeObject | null> => client.get({ ...MESH, name });
  const apply = async (obj: unknown): Promise<void> => {
    const r = await kubectl(['apply', '-f', '-'], stringify(obj));
    expect(r.code, r.stderr).to.equal(0);
  };
  const readyAtGeneration = async (name = 'default'): Promise<boolean> => {
    const m = await getMesh(name);
    const ready = condition(m, 'Ready');
    const gen = m?.metadata.generation;
    return (
      ready?.status === 'True' &&
      ready.observedGeneration === gen &&
      (m as { status?: { observedGeneration?: number } }).status?.observedGeneration === gen
    );
  };
  const convergeReady = (what: string, timeoutMs = 60_000): Promise<boolean> =>
    waitFor(
      what,
      async () => {
        await makeMeshReady(client, 'default');
        return readyAtGeneration();
      },
      timeoutMs,
      250,
    );
  const deploymentNames = async (): Promise<string[]> =>
    (await client.list('apps/v1', 'Deployment', { labelSelector: 'mesh.weft.dev/mesh=default' })).items
      .map((d) => `${d.metadata.namespace}/${d.metadata.name}`)
      .sort();

  before(async function () {
    this.timeout(120_000);
    await installCRDs();
    const { kubeconfigPath } = testCluster();
    client = clientFor(kubeconfigPath);
    // One Mesh per cluster: a Mesh left behind by an earlier test file would be the active one.
    const leftovers = await client.list(MESH.apiVersion, 'Mesh');
    for (const m of leftovers.items) {
      process.stderr.write(`operator tests: removing leftover Mesh ${m.metadata.name}\n`);
      await client
        .jsonPatch({ ...MESH, name: m.metadata.name }, [{ op: 'remove', path: '/metadata/finalizers' }])
        .catch(() => undefined);
      await client.delete({ ...MESH, name: m.metadata.name });
    }
    if (!(await client.get({ apiVersion: 'v1', kind: 'Namespace', name: 'weft-system' }))) {
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'weft-system' } });
    }
    recorder = new Informer(
      client,
      { apiVersion: MESH.apiVersion, kind: 'Mesh' },
      createLogger('test', { silent: true }),
    );
    recorder.on((type, m) => {
      if (type !== 'delete') history.push(m);
    });
    recorder.start();
    await recorder.hasSynced;
    hook = await TestWebhook.start(client);
    op = await OperatorProcess.start({
      kubeconfig: kubeconfigPath,
      webhookUrl: hook.url,
      identity: 'operator-a',
    });
    await waitFor('operator-a to lead', () => op.isLeader(), 30_000, 200);
  });

  after(async function () {
    this.timeout(120_000);
    // Leave nothing behind: the webhook configurations would fail calls once `hook` is gone.
    for (const name of ['default', 'second']) await client.delete({ ...MESH, name }).catch(() => undefined);
    await waitFor(
      'Meshes gone',
      async () => !(await getMesh()) && !(await getMesh('second')),
      90_000,
      500,
    ).catch(async () => {
      for (const name of ['default', 'second'])
        await client
          .jsonPatch({ ...MESH, name }, [{ op: 'remove', path: '/metadata/finalizers' }])
          .catch(() => undefined);
    });
    recorder?.stop();
    await standby?.stop();
    await op?.stop();
    for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
      const { items } = await client.list('admissionregistration.k8s.io/v1', kind, {
        labelSelector: 'app.kubernetes.io/managed-by=weft-operator',
      });
      for (const i of items) await client.delete(keyOf(i));
    }
    hook?.close();
  });

  it('applies the sample: Reconciling=True at once, every child with an owner reference, then Ready=True; kubectl wait returns', async () => {
    const t0 = Date.now();
    await apply(sample());
    const first = await waitFor(
      'first status',
      async () => {
        const m = await getMesh();
        return condition(m, 'Reconciling')?.status === 'True' ? m : null;
      },
      10_000,
      50,
    );
    const firstStatusMs = Date.now() - t0;
    expect((first as { status?: { observedGeneration?: number } }).status?.observedGeneration).to.equal(
      first.metadata.generation,
    );
    expect(first.metadata.finalizers).to.include('mesh.weft.dev/cleanup');

    await waitFor('webhook server to load the issued certificate', () => hook.loaded, 30_000);
    const wait = kubectl(['wait', '--for=condition=Ready', 'mesh/default', '--timeout=90s']);
    await convergeReady('Ready=True');
    const readyMs = Date.now() - t0;
    const w = await wait;
    expect(w.code, w.stderr).to.equal(0);
    expect(w.stdout).to.match(/condition met/);
    console.log(`      first status after ${firstStatusMs} ms, Ready=True after ${readyMs} ms`);

    const mesh = (await getMesh())!;
    const uid = mesh.metadata.uid;
    const kinds: [string, string, string?][] = [
      ['v1', 'ServiceAccount', 'weft-system'],
      ['v1', 'ConfigMap', 'weft-system'],
      ['v1', 'Secret', 'weft-system'],
      ['v1', 'Service', 'weft-system'],
      ['apps/v1', 'Deployment', 'weft-system'],
      ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
      ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
      ['admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration'],
      ['admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'],
    ];
    let total = 0;
    for (const [apiVersion, kind, namespace] of kinds) {
      const { items } = await client.list(apiVersion, kind, {
        ...(namespace ? { namespace } : {}),
        labelSelector: 'mesh.weft.dev/mesh=default',
      });
      expect(items.length, kind).to.be.greaterThan(0);
      for (const o of items) {
        total++;
        expect(o.metadata.ownerReferences, `${kind} ${o.metadata.name}`).to.deep.equal([
          {
            apiVersion: MESH.apiVersion,
            kind: 'Mesh',
            name: 'default',
            uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ]);
        expect(o.metadata.labels?.['app.kubernetes.io/managed-by']).to.equal('weft-operator');
        expect(o.metadata.labels?.['app.kubernetes.io/part-of']).to.equal('weft');
      }
    }
    // Combined control plane (ADR 0024): 2 SA, 1 CM, 3 Secrets, 3 Services, 2 Deployments, 2+2 RBAC,
    // 2 webhook configurations; weftd's pods serve the webhook Service
    expect(total).to.equal(17);
    expect(await deploymentNames()).to.deep.equal(['weft-system/ingressgateway', 'weft-system/weftd']);
    const st = (mesh as unknown as { status: { certificates: Record<string, string> } }).status;
    expect(Date.parse(st.certificates.servingCertExpiresAt!)).to.be.greaterThan(Date.now() + 300 * 86400_000);
    for (const t of ['ControlPlaneReady', 'GatewaysReady', 'WebhooksReady', 'CertificatesReady'])
      expect(condition(mesh, t)?.status, t).to.equal('True');
    expect(condition(mesh, 'Stalled')?.status).to.equal('False');
    expect(condition(mesh, 'Reconciling')?.status).to.equal('False');
  });

  it('the API server calls the webhook over TLS verified with the operator-managed caBundle', async () => {
    const ns = await freshNamespace('op-webhook');
    const before = hook.requests;
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'r', namespace: ns },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    };
    await apply(vs);
    expect(hook.requests).to.be.greaterThan(before);
  });

  it('a no-op resync makes no writes: resourceVersions and condition timestamps stay put', async () => {
    const before = (await getMesh())!;
    const deps = await client.list('apps/v1', 'Deployment', { namespace: 'weft-system' });
    await kubectl(['annotate', 'mesh/default', 'test.weft.dev/poke=1', '--overwrite']); // wakes the reconciler
    await new Promise((r) => setTimeout(r, 2000));
    const after = (await getMesh())!;
    expect(JSON.stringify((after as { status?: unknown }).status)).to.equal(
      JSON.stringify((before as { status?: unknown }).status),
    );
    const deps2 = await client.list('apps/v1', 'Deployment', { namespace: 'weft-system' });
    expect(deps2.items.map((d) => d.metadata.resourceVersion)).to.deep.equal(
      deps.items.map((d) => d.metadata.resourceVersion),
    );
  });

  it('follows spec edits: replicas, a new gateway, a removed gateway (pruned), PDBs for replicas > 1', async () => {
    const edited = sample();
    edited.spec.controlPlane = { replicas: 2, image: 'weft/weftd:latest' };
    edited.spec.gateways = [
      {
        name: 'egressgateway',
        namespace: 'weft-system',
        serviceType: 'ClusterIP',
        replicas: 1,
        ports: [{ name: 'http2', port: 80, targetPort: 8080 }],
      },
    ];
    await apply(edited);
    await waitFor('children to follow', async () => {
      const names = await deploymentNames();
      const weftd = await client.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'weft-system',
        name: 'weftd',
      });
      return (
        names.join() === 'weft-system/egressgateway,weft-system/weftd' &&
        (weftd as { spec?: { replicas?: number } } | null)?.spec?.replicas === 2
      );
    });
    expect(
      await client.get({
        apiVersion: 'v1',
        kind: 'Service',
        namespace: 'weft-system',
        name: 'ingressgateway',
      }),
    ).to.equal(null);
    expect(
      await client.get({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        namespace: 'weft-system',
        name: 'ingressgateway',
      }),
    ).to.equal(null);
    const pdbs = await client.list('policy/v1', 'PodDisruptionBudget', { namespace: 'weft-system' });
    expect(pdbs.items.map((p) => p.metadata.name).sort()).to.deep.equal(['weftd']);
    await convergeReady('Ready=True at the new generation');
    const events = await kubectl([
      'get',
      'events',
      '-A',
      '--field-selector',
      'involvedObject.kind=Mesh,involvedObject.name=default',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.stdout).to.include('Pruned');
  });

  it("switches controlPlane.mode both ways level-based: the other mode's objects pruned, Ready again", async () => {
    const current = (await getMesh()) as unknown as { spec: Record<string, unknown> };
    const withMode = (mode: string): Record<string, unknown> => {
      const m = sample();
      m.spec = { ...current.spec, controlPlane: { ...(current.spec.controlPlane as object), mode } };
      return m;
    };
    const get = (kind: string, name: string, apiVersion = 'v1') =>
      client.get({
        apiVersion,
        kind,
        name,
        ...(kind.startsWith('Cluster') ? {} : { namespace: 'weft-system' }),
      });
    const webhookSubject = async (): Promise<string | undefined> =>
      (
        (await get('ClusterRoleBinding', 'weft-webhook', 'rbac.authorization.k8s.io/v1')) as {
          subjects?: { name: string }[];
        } | null
      )?.subjects?.[0]?.name;
    const webhookSelector = async (): Promise<string | undefined> => {
      const sel = (
        (await get('Service', 'weft-webhook')) as { spec?: { selector?: Record<string, string> } } | null
      )?.spec?.selector;
      return sel?.['weft.dev/admission-webhook'] === 'true' ? 'weftd' : sel?.app;
    };

    const weftdArgs = async (): Promise<string[]> =>
      (
        (await get('Deployment', 'weftd', 'apps/v1')) as unknown as {
          spec: { template: { spec: { containers: { args: string[] }[] } } };
        }
      ).spec.template.spec.containers[0]!.args;

    await apply(withMode('Separate'));
    // Handover: until the new webhook pods are Ready (the test plays kubelet below), admission
    // stays on weftd's pods, which keep their webhook port
    await waitFor('Separate: the webhook Deployment created', async () =>
      (await deploymentNames()).includes('weft-system/weft-webhook'),
    );
    expect(await webhookSelector(), 'Service still on the serving pods').to.equal('weftd');
    expect(await weftdArgs(), 'weftd keeps serving admission meanwhile').to.include('--webhook-port=9443');
    await waitFor(
      'Separate: a webhook Deployment and ServiceAccount of its own',
      async () =>
        (await makeMeshReady(client, 'default')) === undefined &&
        (await deploymentNames()).includes('weft-system/weft-webhook') &&
        (await get('ServiceAccount', 'weft-webhook')) !== null &&
        (await webhookSubject()) === 'weft-webhook' &&
        (await webhookSelector()) === 'weft-webhook',
    );
    await convergeReady('Ready=True in Separate mode');
    const sepPdbs = await client.list('policy/v1', 'PodDisruptionBudget', { namespace: 'weft-system' });
    expect(sepPdbs.items.map((p) => p.metadata.name).sort()).to.deep.equal(['weft-webhook', 'weftd']);

    expect(await weftdArgs()).to.not.include('--webhook-port=9443');

    await apply(withMode('Combined'));
    await waitFor('Combined: weftd updated with the webhook port', async () =>
      (await weftdArgs()).includes('--webhook-port=9443'),
    );
    expect(await webhookSelector(), 'Service on the old webhook pods until weftd rolls out').to.equal(
      'weft-webhook',
    );
    expect(await deploymentNames(), 'old webhook kept meanwhile').to.include('weft-system/weft-webhook');
    await waitFor(
      'Combined: the webhook Deployment, ServiceAccount and PDB pruned, weftd serves both',
      async () => {
        await makeMeshReady(client, 'default');
        const pdbs = await client.list('policy/v1', 'PodDisruptionBudget', { namespace: 'weft-system' });
        return (
          !(await deploymentNames()).includes('weft-system/weft-webhook') &&
          (await get('ServiceAccount', 'weft-webhook')) === null &&
          pdbs.items.map((p) => p.metadata.name).join() === 'weftd' &&
          (await webhookSubject()) === 'weftd' &&
          (await webhookSelector()) === 'weftd'
        );
      },
    );
    const weftd = (await get('Deployment', 'weftd', 'apps/v1')) as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    expect(weftd.spec.template.spec.containers[0]!.args).to.include('--webhook-port=9443');
    await convergeReady('Ready=True in Combined mode');
  });

  it('restores a deleted child and corrects a hand-edited one, with Events', async () => {
    expect(
      await client.delete({ apiVersion: 'v1', kind: 'Service', namespace: 'weft-system', name: 'weftd' }),
    ).to.equal(true);
    await waitFor('Service weftd restored', () =>
      client.get({ apiVersion: 'v1', kind: 'Service', namespace: 'weft-system', name: 'weftd' }),
    );
    const scaled = await kubectl(['-n', 'weft-system', 'scale', 'deployment/weftd', '--replicas=5']);
    expect(scaled.code, scaled.stderr).to.equal(0);
    await waitFor('weftd replicas back to 2', async () => {
      const d = await client.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'weft-system',
        name: 'weftd',
      });
      return (d as { spec?: { replicas?: number } } | null)?.spec?.replicas === 2;
    });
    await waitFor('Restored and DriftCorrected events', async () => {
      const ev = await kubectl([
        'get',
        'events',
        '-A',
        '--field-selector',
        'involvedObject.kind=Mesh,involvedObject.name=default',
        '-o',
        'jsonpath={.items[*].reason}',
      ]);
      return ev.stdout.includes('Restored') && ev.stdout.includes('DriftCorrected');
    });
  });

  it('reports a second Mesh Stalled and leaves it alone', async () => {
    await apply({ apiVersion: MESH.apiVersion, kind: 'Mesh', metadata: { name: 'second' }, spec: {} });
    const w = await kubectl(['wait', '--for=condition=Stalled', 'mesh/second', '--timeout=30s']);
    expect(w.code, w.stderr).to.equal(0);
    const second = await getMesh('second');
    expect(condition(second, 'Stalled')?.reason).to.equal('AnotherMeshActive');
    expect(condition(second, 'Ready')?.status).to.equal('False');
    const owned = await client.list('apps/v1', 'Deployment', { labelSelector: 'mesh.weft.dev/mesh=second' });
    expect(owned.items).to.deep.equal([]);
    expect(await readyAtGeneration()).to.equal(true);
    await client.delete({ ...MESH, name: 'second' });
    await waitFor('second Mesh gone', async () => !(await getMesh('second')));
  });

  it('turns an invalid spec the schema cannot catch into Stalled=True naming the field, then recovers', async () => {
    const bad = sample();
    bad.spec.gateways = [{ name: 'weftd', namespace: 'weft-system' }];
    await apply(bad);
    const m = await waitFor('Stalled=True', async () => {
      const x = await getMesh();
      return condition(x, 'Stalled')?.status === 'True' ? x : null;
    });
    expect(condition(m, 'Stalled')?.reason).to.equal('InvalidSpec');
    expect(condition(m, 'Stalled')?.message).to.include('spec.gateways[0].name');
    expect(condition(m, 'Reconciling')?.status).to.equal('False');
    expect(op.proc.exitCode).to.equal(null);
    await apply(sample());
    await convergeReady('recovered to Ready=True');
  });

  it('fails over to a standby when the leader dies (Lease), and the new leader reconciles', async () => {
    standby = await OperatorProcess.start({
      kubeconfig: testCluster().kubeconfigPath,
      webhookUrl: hook.url,
      identity: 'operator-b',
    });
    expect(await standby.isLeader()).to.equal(false);
    const t0 = Date.now();
    await op.stop('SIGKILL');
    await waitFor('operator-b to lead', () => standby!.isLeader(), 30_000, 200);
    console.log(`      standby took over ${Date.now() - t0} ms after the leader was killed (lease 6 s)`);
    const promoted = standby;
    op = promoted;
    standby = undefined;
    await client.delete({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'weft-system',
      name: 'weft-mesh-config',
    });
    await waitFor('ConfigMap restored by the new leader', () =>
      client.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'weft-system', name: 'weft-mesh-config' }),
    );
  });

  it('survives an API server restart in the middle of a reconcile and converges', async () => {
    const edited = sample();
    edited.spec.controlPlane = { replicas: 3, image: 'weft/weftd:latest' };
    await apply(edited);
    const downtime = await restartApiServer(testCluster().kubeconfigPath);
    console.log(`      kube-apiserver was down for ${downtime} ms`);
    await waitFor(
      'API server back',
      async () => (await client.get({ apiVersion: 'v1', kind: 'Namespace', name: 'weft-system' })) !== null,
      60_000,
      500,
    );
    await waitFor(
      'weftd at 3 replicas',
      async () => {
        const d = await client.get({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          namespace: 'weft-system',
          name: 'weftd',
        });
        return (d as { spec?: { replicas?: number } } | null)?.spec?.replicas === 3;
      },
      60_000,
      250,
    );
    await convergeReady('Ready=True after the restart', 90_000);
    expect(op.proc.exitCode).to.equal(null);
    // The restart must not have left the operator wedged: it still restores a deleted child.
    await client.delete({
      apiVersion: 'v1',
      kind: 'Service',
      namespace: 'weft-system',
      name: 'weft-webhook',
    });
    await waitFor(
      'Service restored after restart',
      () => client.get({ apiVersion: 'v1', kind: 'Service', namespace: 'weft-system', name: 'weft-webhook' }),
      30_000,
    );
  });

  it('exports controller-runtime metrics', async () => {
    const text = await op.metrics();
    expect(text).to.match(/controller_runtime_reconcile_total\{controller="mesh",result="success"\} [1-9]/);
    expect(text).to.include('controller_runtime_reconcile_time_seconds_bucket');
    expect(text).to.match(/workqueue_adds_total\{name="mesh",controller="mesh"\} [1-9]/);
  });

  it('status invariants held in every version of the Mesh seen on a watch (kstatus / Argo CD rules)', () => {
    expect(history.length).to.be.greaterThan(20);
    // Only versions whose status changed are status writes by the operator; a spec edit alone
    // leaves the old status (kstatus reads that as InProgress through observedGeneration).
    const previous = new Map<string, string>();
    let writes = 0;
    for (const m of history) {
      const statusJson = JSON.stringify((m as { status?: unknown }).status ?? null);
      const changed = previous.get(m.metadata.uid ?? '') !== statusJson;
      previous.set(m.metadata.uid ?? '', statusJson);
      if (!changed) continue;
      writes++;
      const gen = m.metadata.generation ?? 0;
      const st = (
        m as {
          status?: {
            observedGeneration?: number;
            conditions?: {
              type: string;
              status: string;
              reason: string;
              observedGeneration?: number;
              lastTransitionTime?: string;
            }[];
          };
        }
      ).status;
      const where = `${m.metadata.name} rv ${m.metadata.resourceVersion}`;
      const ready = condition(m, 'Ready');
      if (ready?.status === 'True') {
        expect(st?.observedGeneration, `${where}: Ready=True with a stale observedGeneration`).to.equal(gen);
        expect(ready.observedGeneration, `${where}: Ready=True for an old generation`).to.equal(gen);
      }
      expect(
        condition(m, 'Reconciling')?.status === 'True' && condition(m, 'Stalled')?.status === 'True',
        `${where}: Reconciling and Stalled both True`,
      ).to.equal(false);
      for (const c of st?.conditions ?? []) {
        expect(c.reason, where).to.match(/^[A-Z][A-Za-z]*$/);
        expect(c.lastTransitionTime, where).to.match(/^\d{4}-\d\d-\d\dT/);
        expect(['True', 'False', 'Unknown']).to.include(c.status);
      }
    }
    expect(writes).to.be.greaterThan(10);
  });

  it('deleting the Mesh removes every child, cluster-scoped ones included', async () => {
    const r = await kubectl(['delete', 'mesh/default', '--timeout=60s']);
    expect(r.code, r.stderr).to.equal(0);
    await waitFor(
      'all children gone',
      async () => {
        let left = 0;
        for (const [apiVersion, kind] of [
          ['apps/v1', 'Deployment'],
          ['v1', 'Secret'],
          ['v1', 'Service'],
          ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
          ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
          ['admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration'],
          ['admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration'],
        ] as const) {
          left += (
            await client.list(apiVersion, kind, { labelSelector: 'mesh.weft.dev/mesh=default' })
          ).items.filter((o) => !o.metadata.deletionTimestamp).length;
        }
        return left === 0;
      },
      60_000,
      250,
    );
  });

  it('measures: kubectl apply → Ready=True (median of 5) and idle RSS', async function () {
    this.timeout(300_000);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await apply(sample());
      await convergeReady(`run ${i} Ready`, 60_000);
      times.push(Date.now() - t0);
      const d = await kubectl(['delete', 'mesh/default', '--timeout=60s']);
      expect(d.code, d.stderr).to.equal(0);
      await waitFor('Deployments gone', async () => (await deploymentNames()).length === 0, 60_000, 250);
    }
    times.sort((a, b) => a - b);
    await new Promise((r) => setTimeout(r, 5000));
    const rss = op.rssBytes();
    const heap = Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(await op.metrics())?.[1] ?? NaN);
    console.log(
      `      apply→Ready ms: ${times.join(', ')}; median ${times[2]} ms; operator idle RSS ${(rss / 1048576).toFixed(1)} MiB, V8 heap used ${(heap / 1048576).toFixed(1)} MiB`,
    );
  });
});
