/**
 * weftd's workload CA and root-cert publisher against a real API server: the CA reads its
 * signing key from a Secret the test creates (through a field-selected watch), signs a proxy's
 * CSR into a SPIFFE leaf that chains to the root, follows a rotation of the Secret at once, and
 * the publisher keeps ConfigMap weft-ca-root-cert in every live namespace (new ones, deleted
 * ones, edited ones, and after a rotation).
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { createCertificateAuthority, type CertificateAuthority } from '../../../controlplane/ca.js';
import { ROOT_CERT_LABELS, startRootCertPublisher } from '../../../controlplane/rootcert.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY } from '../../../pkg/discovery/protocol.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { freshNamespace, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { csrPem } from './fixtures.js';

const HOUR = 3600_000;
const log = createLogger('test', { silent: true });
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function rootSecret(
  namespace: string,
  ca: KeyPairPem,
  extra: { crt?: string; root?: string } = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'weft-root-ca', namespace },
    type: 'kubernetes.io/tls',
    data: {
      'tls.crt': b64(extra.crt ?? ca.certPem),
      'tls.key': b64(ca.keyPem),
      'ca.crt': b64(extra.root ?? ca.certPem),
    },
  };
}

/** The chain verifies link by link and ends at `rootPem`. */
function chainsTo(chain: string[], rootPem: string): boolean {
  const certs = [...chain, rootPem].map((p) => new X509Certificate(p));
  for (let i = 0; i + 1 < certs.length; i++) {
    const [child, parent] = [certs[i]!, certs[i + 1]!];
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) return false;
  }
  return true;
}

describe('weftd workload CA on a real API server', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  const now = new Date();
  const rootA = createCA({ commonName: 'root-a', ttlMs: 24 * HOUR, now });
  const rootB = createCA({ commonName: 'root-b', ttlMs: 24 * HOUR, now });
  const cas: CertificateAuthority[] = [];

  before(() => {
    kube = KubeClient.fromFile(testCluster().kubeconfigPath);
  });
  afterEach(() => {
    for (const ca of cas.splice(0)) ca.stop();
  });

  function startCA(namespace: string): CertificateAuthority {
    const ca = createCertificateAuthority({
      kube,
      caSecret: { namespace, name: 'weft-root-ca' },
      trustDomain: 'cluster.local',
      workloadTtlMs: HOUR,
      log,
    });
    cas.push(ca);
    return ca;
  }

  it('refuses CSRs until the Secret exists, then signs a SPIFFE leaf that chains to the root', async () => {
    const ns = await freshNamespace('ca-sign');
    const ca = startCA(ns);
    expect(ca.ready()).to.equal(false);
    const early = await ca
      .handle({ csr: csrPem() }, { namespace: ns, serviceAccount: 'cart' })
      .catch((e: unknown) => e);
    expect(isWeftError(early, 'WEFT_CA_NOT_READY'), String(early)).to.equal(true);

    await kube.create(rootSecret(ns, rootA));
    await waitFor('the CA to read the Secret', () => ca.ready());
    const res = await ca.handle({ csr: csrPem() }, { namespace: ns, serviceAccount: 'cart' });
    expect(res.certChain).to.have.length(1);
    expect(res.rootCert).to.equal(rootA.certPem);
    expect(chainsTo(res.certChain, rootA.certPem)).to.equal(true);
    const leaf = new X509Certificate(res.certChain[0]!);
    expect(leaf.subjectAltName).to.equal(`URI:spiffe://cluster.local/ns/${ns}/sa/cart`);
    expect(new Date(leaf.validTo).getTime() - Date.now()).to.be.at.most(HOUR);
  });

  it('a rotated Secret is used for the next CSR; a broken one keeps the last good signer', async () => {
    const ns = await freshNamespace('ca-rotate');
    await kube.create(rootSecret(ns, rootA));
    const ca = startCA(ns);
    const roots: string[] = [];
    ca.onRootChange((pem) => roots.push(pem));
    await waitFor('the CA to read the Secret', () => ca.ready());

    await kube.apply(rootSecret(ns, rootB), 'test', true);
    await waitFor('the CA to follow the rotation', () => ca.rootCertPem() === rootB.certPem);
    const res = await ca.handle({ csr: csrPem() }, { namespace: ns, serviceAccount: 'cart' });
    expect(chainsTo(res.certChain, rootB.certPem)).to.equal(true);
    expect(chainsTo(res.certChain, rootA.certPem)).to.equal(false);
    expect(roots).to.deep.equal([rootA.certPem, rootB.certPem]);

    await kube.mergePatch(
      { apiVersion: 'v1', kind: 'Secret', namespace: ns, name: 'weft-root-ca' },
      {
        data: { 'tls.key': b64('not a key') },
      },
    );
    await waitFor('the CA to see the broken Secret', () => ca.status().problem !== null);
    expect(ca.status().problem).to.match(/tls.key/);
    expect(ca.ready()).to.equal(true);
    const still = await ca.handle({ csr: csrPem() }, { namespace: ns, serviceAccount: 'cart' });
    expect(chainsTo(still.certChain, rootB.certPem)).to.equal(true);
  });

  it('an intermediate CA in the Secret travels in the chain; the root is ca.crt', async () => {
    const ns = await freshNamespace('ca-inter');
    // An intermediate: a CA certificate signed by rootA (issueServing makes leaves, so build it with forge).
    const inter = intermediateOf(rootA);
    await kube.create(rootSecret(ns, inter, { crt: inter.certPem, root: rootA.certPem }));
    const ca = startCA(ns);
    await waitFor('the CA to read the Secret', () => ca.ready());
    const res = await ca.handle({ csr: csrPem() }, { namespace: ns, serviceAccount: 'cart' });
    expect(res.certChain).to.have.length(2);
    expect(res.rootCert).to.equal(rootA.certPem);
    expect(chainsTo(res.certChain, rootA.certPem)).to.equal(true);
  });

  it('the publisher writes weft-ca-root-cert into new namespaces, restores deleted or edited ones, follows rotation', async () => {
    const caNs = await freshNamespace('ca-pub');
    await kube.create(rootSecret(caNs, rootA));
    const ca = startCA(caNs);
    await waitFor('the CA to read the Secret', () => ca.ready());
    const publisher = startRootCertPublisher({ kube, ca, log });
    onCleanup(async () => {
      publisher.stop();
      await deletePublished(kube);
    });
    await publisher.synced;

    const cmKey = (ns: string): Parameters<KubeClient['get']>[0] => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: ns,
      name: ROOT_CERT_CONFIGMAP,
    });
    const rootIn = async (ns: string): Promise<string | undefined> =>
      ((await kube.get(cmKey(ns))) as { data?: Record<string, string> } | null)?.data?.[ROOT_CERT_KEY];

    await waitFor(
      'the ConfigMap in the existing default namespace',
      async () => (await rootIn('default')) === rootA.certPem,
    );
    const ns = await freshNamespace('ca-pub-new');
    await waitFor('the ConfigMap in a new namespace', async () => (await rootIn(ns)) === rootA.certPem);
    const cm = await kube.get(cmKey(ns));
    expect(cm?.metadata.labels).to.include(ROOT_CERT_LABELS);
    const managers = (cm?.metadata.managedFields as { manager: string; operation: string }[]).map(
      (m) => m.manager,
    );
    expect(managers).to.include('weftd');

    await kube.delete(cmKey(ns));
    await waitFor('the deleted ConfigMap to come back', async () => (await rootIn(ns)) === rootA.certPem);

    await kube.mergePatch(cmKey(ns), { data: { [ROOT_CERT_KEY]: 'tampered' } });
    await waitFor('the edited ConfigMap to be restored', async () => (await rootIn(ns)) === rootA.certPem);

    await kube.apply(rootSecret(caNs, rootB), 'test', true);
    await waitFor(
      'the rotated root everywhere',
      async () => (await rootIn(ns)) === rootB.certPem && (await rootIn('default')) === rootB.certPem,
    );
  });
});

function intermediateOf(root: KeyPairPem): KeyPairPem {
  // Reuse issueServing for a key pair and a leaf shape, then re-sign as a CA with forge.
  const leaf = issueServing(root, { commonName: 'x', dnsNames: ['x'], ttlMs: 12 * HOUR, now: new Date() });
  const key = forge.pki.privateKeyFromPem(leaf.keyPem) as forge.pki.rsa.PrivateKey;
  const rootCert = forge.pki.certificateFromPem(root.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 12 * HOUR);
  cert.setSubject([{ name: 'commonName', value: 'weft-intermediate' }]);
  cert.setIssuer(rootCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(root.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: leaf.keyPem };
}

/** The publisher wrote into every namespace of the shared test cluster: remove what it wrote. */
async function deletePublished(kube: KubeClient): Promise<void> {
  const body = (await kube.request('GET', '/api/v1/configmaps', {
    query: {
      fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}`,
      labelSelector: 'app.kubernetes.io/managed-by=weftd',
    },
  })) as { items?: KubeObject[] };
  for (const cm of body.items ?? [])
    await kube.delete({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: cm.metadata.namespace!,
      name: cm.metadata.name,
    });
}
