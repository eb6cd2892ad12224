import { expect } from 'chai';
import { planCertificates, servingDnsNames, type SecretReader } from '../../../operator/certificates.js';
import { certInfo, createCA, issueServing, signedBy } from '../../../pkg/certs/index.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { effectiveSpec } from '../../../pkg/render/index.js';

const DAY = 86400_000;
const now = new Date('2026-11-23T12:00:00Z');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const secretOf = (data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'x' },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});
/** Secrets as a map (namespace/name → Secret): the state planCertificates reads. */
const store =
  (m: Map<string, KubeObject>): SecretReader =>
  async (ns, n) =>
    m.get(`${ns}/${n}`) ?? null;
const remember = (m: Map<string, KubeObject>, secrets: KubeObject[]): void => {
  for (const s of secrets) m.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
};
const pem = (s: KubeObject, key: string): string =>
  Buffer.from((s as unknown as { data: Record<string, string> }).data[key]!, 'base64').toString();

describe('planCertificates', () => {
  it('self-signed: issues CA + two serving certs once, then nothing while they are valid', async () => {
    const state = new Map<string, KubeObject>();
    const first = await planCertificates('default', effectiveSpec({}), store(state), now);
    if (!first.ok) throw new Error(first.message);
    expect(first.plan.issued.map((i) => i.secret).sort()).to.deep.equal([
      'weft-root-ca',
      'weft-webhook-tls',
      'weftd-tls',
    ]);
    remember(state, first.plan.secrets);
    const second = await planCertificates(
      'default',
      effectiveSpec({}),
      store(state),
      new Date(now.getTime() + DAY),
    );
    if (!second.ok) throw new Error(second.message);
    expect(second.plan.issued).to.deep.equal([]);
    expect(second.plan.caBundle).to.equal(first.plan.caBundle);
    const ca = pem(first.plan.secrets[0]!, 'tls.crt');
    for (const s of first.plan.secrets.slice(1)) {
      expect(signedBy(pem(s, 'tls.crt'), ca)).to.equal(true);
      expect(pem(s, 'ca.crt')).to.equal(ca);
      expect(s.metadata.labels?.['mesh.weft.dev/mesh']).to.equal('default');
    }
    expect(first.plan.status.servingCertExpiresAt).to.equal('2027-11-23T12:00:00Z');
  });

  it('renews serving certs at 2/3 of their lifetime and on SAN change (webhook URL host)', async () => {
    const state = new Map<string, KubeObject>();
    const spec = effectiveSpec({ certificates: { servingCertTTL: '30h' } });
    const first = await planCertificates('default', spec, store(state), now);
    if (!first.ok) throw new Error(first.message);
    remember(state, first.plan.secrets);
    expect(first.plan.nextRenewal.getTime()).to.be.closeTo(
      now.getTime() + 20 * 3600_000 - (5 * 60_000) / 3,
      2000,
    );
    const late = await planCertificates(
      'default',
      spec,
      store(state),
      new Date(now.getTime() + 21 * 3600_000),
    );
    if (!late.ok) throw new Error(late.message);
    expect(late.plan.issued.map((i) => `${i.secret}:${i.reason}`).sort()).to.deep.equal([
      'weft-webhook-tls:Expiring',
      'weftd-tls:Expiring',
    ]);
    const sans = await planCertificates('default', spec, store(state), now, ['127.0.0.1']);
    if (!sans.ok) throw new Error(sans.message);
    expect(sans.plan.issued).to.deep.equal([{ secret: 'weft-webhook-tls', reason: 'SANChanged' }]);
    const hook = sans.plan.secrets.find((s) => s.metadata.name === 'weft-webhook-tls')!;
    expect(certInfo(pem(hook, 'tls.crt')).dnsNames).to.deep.equal([
      ...servingDnsNames('weft-webhook'),
      '127.0.0.1',
    ]);
  });

  it('user CA: signs with it; caBundle is its certificate; no CA Secret of ours', async () => {
    const root = createCA({ commonName: 'root', ttlMs: 365 * DAY, now });
    const state = new Map<string, KubeObject>([
      ['weft-system/my-ca', secretOf({ 'tls.crt': root.certPem, 'tls.key': root.keyPem })],
    ]);
    const spec = effectiveSpec({ certificates: { caSecretRef: { name: 'my-ca' } } });
    const r = await planCertificates('default', spec, store(state), now);
    if (!r.ok) throw new Error(r.message);
    expect(Buffer.from(r.plan.caBundle, 'base64').toString()).to.equal(root.certPem);
    expect(r.plan.secrets.map((s) => s.metadata.name)).to.deep.equal(['weftd-tls', 'weft-webhook-tls']);
    expect(signedBy(pem(r.plan.secrets[0]!, 'tls.crt'), root.certPem)).to.equal(true);
  });

  const bad: Array<[string, Map<string, KubeObject>, string, RegExp]> = [
    ['missing Secret', new Map(), 'CASecretNotFound', /caSecretRef: Secret weft-system\/my-ca not found/],
    [
      'no key',
      new Map([['weft-system/my-ca', secretOf({ 'tls.crt': 'x' })]]),
      'InvalidCASecret',
      /lacks tls.crt or tls.key/,
    ],
    [
      'not a CA',
      (() => {
        const ca = createCA({ commonName: 'r', ttlMs: DAY, now });
        const leaf = issueServing(ca, { commonName: 'l', dnsNames: ['l'], ttlMs: DAY, now });
        return new Map([
          ['weft-system/my-ca', secretOf({ 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem })],
        ]);
      })(),
      'InvalidCASecret',
      /not a CA certificate/,
    ],
  ];
  for (const [title, state, reason, message] of bad) {
    it(`user CA problem → Stalled reason: ${title}`, async () => {
      const r = await planCertificates(
        'default',
        effectiveSpec({ certificates: { caSecretRef: { name: 'my-ca' } } }),
        store(state),
        now,
      );
      expect(r.ok).to.equal(false);
      if (r.ok) return;
      expect(r.reason).to.equal(reason);
      expect(r.message).to.match(message);
      expect(r.message).to.not.match(/BEGIN/);
    });
  }
});
