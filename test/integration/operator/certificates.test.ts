/**
 * CertificatesReady on a real API server, with the operator as a real process and a Mesh that
 * signs with the user's CA (spec.certificates.caSecretRef): False with the reason while the
 * referenced Secret is missing or holds an expired CA, True (naming the expiry) once it holds a
 * valid one, and False again when it goes away (the condition was a hard-coded True before).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { createCA } from '../../../pkg/certs/index.js';
import type { KubeClient } from '../../../pkg/kube/client.js';
import { keyOf } from '../../../pkg/kube/types.js';
import { installCRDs, testCluster } from '../../support/index.js';
import { clientFor, condition, OperatorProcess, TestWebhook, waitFor } from './harness.js';

const MESH = { apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh', name: 'default' };
const NS = 'weft-system';
const CA = { apiVersion: 'v1', kind: 'Secret', namespace: NS, name: 'user-ca' };
const DAY = 86400_000;

describe('operator: CertificatesReady from the user CA Secret (real API server)', function () {
  this.timeout(180_000);
  let client: KubeClient;
  let hook: TestWebhook;
  let op: OperatorProcess;
  let bumps = 0;

  const certificatesReady = async (): Promise<ReturnType<typeof condition>> =>
    condition(await client.get(MESH), 'CertificatesReady');
  /** Secrets outside the Mesh's children are not watched: nudge a reconcile instead of waiting. */
  const nudge = (): Promise<unknown> =>
    client.mergePatch(MESH, { metadata: { annotations: { 'test.weft.dev/nudge': String(++bumps) } } });
  const waitCondition = async (status: string, reason: string) => {
    // The nudge is best-effort: with the CA gone, the Mesh's own validating webhook (whose
    // caBundle came from that CA) may refuse the patch until the operator catches up.
    let polls = 0;
    return waitFor(
      `CertificatesReady=${status}/${reason}`,
      async () => {
        if (polls++ % 8 === 0) await nudge().catch(() => undefined);
        const c = await certificatesReady();
        return c?.status === status && c.reason === reason ? c : undefined;
      },
      60_000,
      250,
    );
  };
  const putCA = async (ca: { certPem: string; keyPem: string }): Promise<void> => {
    await client.delete(CA).catch(() => undefined);
    await waitFor('old CA Secret gone', async () => !(await client.get(CA)), 30_000, 100);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CA.name, namespace: NS },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(ca.certPem), 'tls.key': b64(ca.keyPem) },
    } as never);
  };

  before(async function () {
    this.timeout(120_000);
    await installCRDs();
    client = clientFor(testCluster().kubeconfigPath);
    // One Mesh per cluster: a Mesh left behind by an earlier test file would be the active one.
    for (const m of (await client.list(MESH.apiVersion, 'Mesh')).items) {
      await client
        .jsonPatch({ ...MESH, name: m.metadata.name }, [{ op: 'remove', path: '/metadata/finalizers' }])
        .catch(() => undefined);
      await client.delete({ ...MESH, name: m.metadata.name });
    }
    if (!(await client.get({ apiVersion: 'v1', kind: 'Namespace', name: NS })))
      await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await client.delete(CA).catch(() => undefined);
    hook = await TestWebhook.start(client);
    op = await OperatorProcess.start({
      kubeconfig: testCluster().kubeconfigPath,
      webhookUrl: hook.url,
      identity: 'operator-certs',
    });
    await waitFor('operator to lead', () => op.isLeader(), 30_000, 200);
  });

  after(async function () {
    this.timeout(120_000);
    await client.delete(MESH).catch(() => undefined);
    await waitFor('Mesh gone', async () => !(await client.get(MESH)), 90_000, 500).catch(() =>
      client.jsonPatch(MESH, [{ op: 'remove', path: '/metadata/finalizers' }]).catch(() => undefined),
    );
    await op?.stop();
    for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
      const { items } = await client.list('admissionregistration.k8s.io/v1', kind, {
        labelSelector: 'app.kubernetes.io/managed-by=weft-operator',
      });
      for (const i of items) await client.delete(keyOf(i));
    }
    await client.delete(CA).catch(() => undefined);
    hook?.close();
  });

  it('CA Secret missing: CertificatesReady=False/CASecretNotFound naming the Secret', async () => {
    const mesh = parse(readFileSync('config/samples/mesh.yaml', 'utf8')) as { spec: Record<string, unknown> };
    mesh.spec.certificates = { caSecretRef: { name: CA.name, namespace: NS }, servingCertTTL: '8760h' };
    const r = await testCluster().kubectl(['apply', '-f', '-'], { input: stringify(mesh) });
    expect(r.code, r.stderr).to.equal(0);
    const c = await waitCondition('False', 'CASecretNotFound');
    expect(c.message).to.include(`Secret ${NS}/${CA.name} not found`);
  });

  it('CA Secret holding an expired CA: CertificatesReady=False/InvalidCASecret with the expiry', async () => {
    const expired = createCA({ commonName: 'expired-root', ttlMs: DAY, now: new Date(Date.now() - 3 * DAY) });
    await putCA(expired);
    const c = await waitCondition('False', 'InvalidCASecret');
    expect(c.message)
      .to.include(`Secret ${NS}/${CA.name}`)
      .and.match(/the CA certificate expired at \d{4}-/);
  });

  it('a valid CA in the Secret: CertificatesReady=True/Issued naming the root expiry', async () => {
    const good = createCA({ commonName: 'user-root', ttlMs: 365 * DAY, now: new Date() });
    await putCA(good);
    const c = await waitCondition('True', 'Issued');
    const expiry = new Date(Date.now() + 365 * DAY).toISOString().slice(0, 10);
    expect(c.message)
      .to.include(`root CA valid until ${expiry}`)
      .and.include('serving certificates valid until');
    const status = (await client.get(MESH)) as { status?: { certificates?: { rootCertExpiresAt?: string } } };
    expect(status.status?.certificates?.rootCertExpiresAt).to.match(new RegExp(`^${expiry}`));
  });

  it('the CA Secret deleted after issuance: CertificatesReady flips to False/CASecretNotFound', async () => {
    await client.delete(CA);
    const c = await waitCondition('False', 'CASecretNotFound');
    expect(c.message).to.include(`Secret ${NS}/${CA.name} not found`);
    expect(condition(await client.get(MESH), 'Stalled')?.status).to.equal('True');
  });
});
