import { expect } from 'chai';
import {
  certificatesReadiness,
  planCertificates,
  servingDnsNames,
  type CertObservation,
  type SecretReader,
} from '../../../operator/certificates.js';
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

describe('certificatesReadiness (the CertificatesReady condition)', () => {
  const HOUR = 3600_000;
  const t0 = new Date('2026-11-23T12:00:00Z');
  const at = (h: number): Date => new Date(t0.getTime() + h * HOUR);
  // root: 30 days from t0; serving: 30 h from t0 (renewal point about t0 + 20 h)
  const root = createCA({ commonName: 'root', ttlMs: 30 * 24 * HOUR, now: t0 });
  const leaf = issueServing(root, { commonName: 'weftd', dnsNames: ['weftd'], ttlMs: 30 * HOUR, now: t0 });
  const hook = issueServing(root, { commonName: 'hook', dnsNames: ['hook'], ttlMs: 60 * HOUR, now: t0 });
  const future = createCA({ commonName: 'later', ttlMs: 30 * 24 * HOUR, now: at(48) });
  const rootObs = (certPem?: string): CertObservation => ({
    secret: 'weft-system/weft-root-ca',
    role: 'root CA',
    ...(certPem === undefined ? {} : { certPem }),
  });
  const servingObs = (certPem?: string, name = 'weftd-tls'): CertObservation => ({
    secret: `weft-system/${name}`,
    role: 'serving certificate',
    ...(certPem === undefined ? {} : { certPem }),
  });
  const all = [rootObs(root.certPem), servingObs(leaf.certPem), servingObs(hook.certPem, 'weft-webhook-tls')];
  const failure = { reason: 'ApplyFailed', message: 'etcdserver: request timed out' };
  const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const leafExpiry = iso(certInfo(leaf.certPem).notAfter);
  const rootExpiry = iso(certInfo(root.certPem).notAfter);

  const table: Array<{
    title: string;
    certs: CertObservation[];
    now: Date;
    failure?: typeof failure;
    ready: boolean;
    reason: string;
    message: RegExp[];
  }> = [
    {
      title: 'all present and valid',
      certs: all,
      now: at(1),
      ready: true,
      reason: 'Issued',
      message: [
        new RegExp(`^root CA valid until ${rootExpiry}, serving certificates valid until ${leafExpiry}$`),
      ],
    },
    {
      title: 'valid, and a failure this reconcile does not matter before the renewal point',
      certs: all,
      now: at(10),
      failure,
      ready: true,
      reason: 'Issued',
      message: [/serving certificates valid until/],
    },
    {
      title: 'past the renewal point with nothing failing: still ready (renewal is under way)',
      certs: all,
      now: at(21),
      ready: true,
      reason: 'Issued',
      message: [/valid until/],
    },
    {
      title: 'past the renewal point and renewing failed',
      certs: all,
      now: at(21),
      failure,
      ready: false,
      reason: 'RenewalFailed',
      message: [
        /serving certificate in Secret weft-system\/weftd-tls expires at /,
        new RegExp(leafExpiry),
        /renewing failed: etcdserver: request timed out/,
      ],
    },
    {
      title: 'before issuance: no certificate in the Secret',
      certs: [rootObs(), servingObs(), servingObs(undefined, 'weft-webhook-tls')],
      now: at(0),
      ready: false,
      reason: 'NotIssued',
      message: [
        /root CA in Secret weft-system\/weft-root-ca not issued yet/,
        /weft-webhook-tls not issued yet/,
      ],
    },
    {
      title: 'issuance failed: the failure is named',
      certs: [rootObs(root.certPem), servingObs()],
      now: at(1),
      failure,
      ready: false,
      reason: 'NotIssued',
      message: [/weftd-tls not issued yet: etcdserver: request timed out/],
    },
    {
      title: 'a serving certificate expired',
      certs: all,
      now: at(31),
      ready: false,
      reason: 'CertificateExpired',
      message: [new RegExp(`serving certificate in Secret weft-system/weftd-tls expired at ${leafExpiry}`)],
    },
    {
      title: 'the root CA expired (every leaf too)',
      certs: all,
      now: at(31 * 24),
      ready: false,
      reason: 'CertificateExpired',
      message: [
        new RegExp(`root CA in Secret weft-system/weft-root-ca expired at ${rootExpiry}`),
        /weft-webhook-tls expired/,
      ],
    },
    {
      title: 'not valid yet (clock behind the issuer)',
      certs: [rootObs(future.certPem)],
      now: at(1),
      ready: false,
      reason: 'CertificateNotYetValid',
      message: [/root CA in Secret weft-system\/weft-root-ca is not valid before /],
    },
    {
      title: 'not a PEM certificate',
      certs: [
        rootObs(root.certPem),
        servingObs('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n'),
      ],
      now: at(1),
      ready: false,
      reason: 'InvalidCertificate',
      message: [/weftd-tls: tls.crt is not a PEM certificate/],
    },
  ];
  for (const c of table) {
    it(c.title, () => {
      const r = certificatesReadiness(c.certs, c.now, c.failure);
      expect(r.ready).to.equal(c.ready);
      expect(r.reason).to.equal(c.reason);
      for (const m of c.message) expect(r.message).to.match(m);
      expect(r.message).to.not.match(/BEGIN|PRIVATE/);
    });
  }

  it('planCertificates reports what it found (nothing, before issuance) and what will be in force', async () => {
    const state = new Map<string, KubeObject>();
    const first = await planCertificates('default', effectiveSpec({}), store(state), now);
    if (!first.ok) throw new Error(first.message);
    expect(first.plan.found.map((c) => [c.secret, c.certPem])).to.deep.equal([
      ['weft-system/weft-root-ca', undefined],
      ['weft-system/weftd-tls', undefined],
      ['weft-system/weft-webhook-tls', undefined],
    ]);
    expect(certificatesReadiness(first.plan.found, now, failure)).to.include({
      ready: false,
      reason: 'NotIssued',
    });
    expect(certificatesReadiness(first.plan.planned, now)).to.include({ ready: true, reason: 'Issued' });
    remember(state, first.plan.secrets);
    const second = await planCertificates('default', effectiveSpec({}), store(state), now);
    if (!second.ok) throw new Error(second.message);
    expect(second.plan.found).to.deep.equal(first.plan.planned);
  });

  it('user CA: the root observed is the bundle from the referenced Secret', async () => {
    const state = new Map<string, KubeObject>([
      ['certs/my-ca', secretOf({ 'tls.crt': root.certPem, 'tls.key': root.keyPem })],
    ]);
    const spec = effectiveSpec({ certificates: { caSecretRef: { name: 'my-ca', namespace: 'certs' } } });
    const r = await planCertificates('default', spec, store(state), at(1));
    if (!r.ok) throw new Error(r.message);
    expect(r.plan.planned[0]).to.deep.equal({
      secret: 'certs/my-ca',
      role: 'root CA',
      certPem: root.certPem,
    });
    expect(certificatesReadiness(r.plan.planned, at(1)).message).to.match(
      new RegExp(`root CA valid until ${rootExpiry}`),
    );
  });
});
