/**
 * controlplane/ca/signer: what the workload CA makes of the root CA Secret (self-signed root,
 * intermediate with ca.crt, chain in tls.crt, broken Secrets), and the root-cert publisher's
 * pure decisions (is a ConfigMap up to date, is a namespace terminating).
 */
import { expect } from 'chai';
import forge from 'node-forge';
import { signerFromSecret, splitPemCerts } from '../../../controlplane/ca/signer.js';
import {
  isTerminating,
  isUpToDate,
  rootCertConfigMap,
  ROOT_CERT_LABELS,
} from '../../../controlplane/rootcert.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import type { KubeObject } from '../../../pkg/kube/types.js';

const HOUR = 3600_000;
const now = new Date('2026-11-23T12:00:00Z');
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function secret(data: Record<string, string>): KubeObject {
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'weft-root-ca', namespace: 'weft-system' },
    data: encoded,
  };
}

/** A CA certificate for a fresh key, signed by `root`. */
function intermediateOf(root: KeyPairPem): KeyPairPem {
  const leaf = issueServing(root, { commonName: 'x', dnsNames: ['x'], ttlMs: 12 * HOUR, now });
  const key = forge.pki.privateKeyFromPem(leaf.keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + 12 * HOUR);
  cert.setSubject([{ name: 'commonName', value: 'intermediate' }]);
  cert.setIssuer(forge.pki.certificateFromPem(root.certPem).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(root.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: leaf.keyPem };
}

describe('workload CA signer from the root CA Secret', () => {
  const root = createCA({ commonName: 'root', ttlMs: 24 * HOUR, now });
  const other = createCA({ commonName: 'other', ttlMs: 24 * HOUR, now });
  const inter = intermediateOf(root);
  const leaf = issueServing(root, { commonName: 'l', dnsNames: ['l'], ttlMs: HOUR, now });

  const ok: { name: string; data: Record<string, string>; root: string; intermediates: string[] }[] = [
    {
      name: 'self-signed root (the operator)',
      data: { 'tls.crt': root.certPem, 'tls.key': root.keyPem, 'ca.crt': root.certPem },
      root: root.certPem,
      intermediates: [],
    },
    {
      name: 'root without ca.crt',
      data: { 'tls.crt': root.certPem, 'tls.key': root.keyPem },
      root: root.certPem,
      intermediates: [],
    },
    {
      name: 'intermediate with ca.crt',
      data: { 'tls.crt': inter.certPem, 'tls.key': inter.keyPem, 'ca.crt': root.certPem },
      root: root.certPem,
      intermediates: [inter.certPem],
    },
    {
      name: 'intermediate + root chain in tls.crt, no ca.crt',
      data: { 'tls.crt': inter.certPem + root.certPem, 'tls.key': inter.keyPem },
      root: root.certPem,
      intermediates: [inter.certPem],
    },
    {
      name: 'two roots in ca.crt (during a root rotation)',
      data: { 'tls.crt': root.certPem, 'tls.key': root.keyPem, 'ca.crt': root.certPem + other.certPem },
      root: root.certPem + other.certPem,
      intermediates: [],
    },
  ];
  for (const c of ok) {
    it(`accepts ${c.name}`, () => {
      const r = signerFromSecret(secret(c.data), now);
      if (!r.ok) expect.fail(r.problem);
      expect(r.signer.rootPem).to.equal(c.root);
      expect(r.signer.intermediates).to.deep.equal(c.intermediates);
      expect(r.signer.fingerprint).to.match(/^[0-9A-F:]+$/);
    });
  }

  const bad: { name: string; data: Record<string, string>; problem: RegExp }[] = [
    { name: 'no key', data: { 'tls.crt': root.certPem }, problem: /lacks tls.crt or tls.key/ },
    {
      name: 'no certificate in tls.crt',
      data: { 'tls.crt': 'x', 'tls.key': root.keyPem },
      problem: /no PEM/,
    },
    { name: 'a leaf as CA', data: { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem }, problem: /not a CA/ },
    {
      name: 'a key of another CA',
      data: { 'tls.crt': root.certPem, 'tls.key': other.keyPem },
      problem: /does not match/,
    },
    {
      name: 'a key that is not PEM',
      data: { 'tls.crt': root.certPem, 'tls.key': 'nope' },
      problem: /tls.key/,
    },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, () => {
      const r = signerFromSecret(secret(c.data), now);
      expect(r.ok).to.equal(false);
      if (!r.ok) {
        expect(r.problem).to.match(c.problem);
        expect(r.problem).to.not.include('PRIVATE KEY');
      }
    });
  }

  it('refuses an expired CA', () => {
    const r = signerFromSecret(
      secret({ 'tls.crt': root.certPem, 'tls.key': root.keyPem }),
      new Date(now.getTime() + 48 * HOUR),
    );
    expect(r.ok).to.equal(false);
  });

  it('splits a bundle into its certificates, each kept verbatim', () => {
    expect(splitPemCerts(root.certPem)).to.deep.equal([root.certPem]);
    expect(splitPemCerts(`junk\n${root.certPem}${other.certPem}`)).to.deep.equal([
      root.certPem,
      other.certPem,
    ]);
    expect(splitPemCerts('')).to.deep.equal([]);
  });
});

describe('root-cert publisher decisions', () => {
  const cm = rootCertConfigMap('shop', 'ROOT');
  const cases: { name: string; live: KubeObject | undefined; want: boolean }[] = [
    { name: 'missing', live: undefined, want: false },
    { name: 'what we apply', live: cm, want: true },
    {
      name: 'with extra keys and labels of others',
      live: {
        ...cm,
        data: { 'root-cert.pem': 'ROOT', x: 'y' },
        metadata: { ...cm.metadata, labels: { ...ROOT_CERT_LABELS, team: 'a' } },
      },
      want: true,
    },
    { name: 'an old root', live: { ...cm, data: { 'root-cert.pem': 'OLD' } }, want: false },
    { name: 'no data', live: { ...cm, data: undefined }, want: false },
    {
      name: 'a label of ours removed',
      live: { ...cm, metadata: { ...cm.metadata, labels: {} } },
      want: false,
    },
  ];
  for (const c of cases)
    it(`a ConfigMap that is ${c.name} is ${c.want ? '' : 'not '}up to date`, () => {
      expect(isUpToDate(c.live, 'ROOT')).to.equal(c.want);
    });

  const ns = (extra: Record<string, unknown>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'n' },
    ...extra,
  });
  const nsCases: { name: string; obj: KubeObject | undefined; want: boolean }[] = [
    { name: 'active', obj: ns({ status: { phase: 'Active' } }), want: false },
    { name: 'without status', obj: ns({}), want: false },
    { name: 'Terminating', obj: ns({ status: { phase: 'Terminating' } }), want: true },
    {
      name: 'with a deletionTimestamp',
      obj: { ...ns({}), metadata: { name: 'n', deletionTimestamp: '2026-01-01T00:00:00Z' } },
      want: true,
    },
    { name: 'unknown (gone)', obj: undefined, want: true },
  ];
  for (const c of nsCases)
    it(`a namespace that is ${c.name} is ${c.want ? '' : 'not '}terminating`, () => {
      expect(isTerminating(c.obj)).to.equal(c.want);
    });

  it('the ConfigMap carries the root, our labels, and none of the operator inventory labels', () => {
    expect(cm.data).to.deep.equal({ 'root-cert.pem': 'ROOT' });
    expect(cm.metadata.labels).to.deep.equal(ROOT_CERT_LABELS);
    expect(cm.metadata.labels).to.not.have.property('mesh.weft.dev/mesh');
    expect(cm.metadata.labels?.['app.kubernetes.io/managed-by']).to.not.equal('weft-operator');
  });
});
