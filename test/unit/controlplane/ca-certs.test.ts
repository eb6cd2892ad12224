/**
 * pkg/certs/workload: signing a proxy's CSR into a SPIFFE leaf. The CSR's names are ignored,
 * its signature and key are checked, and the lifetime is bounded by the request and the CA.
 */
import { expect } from 'chai';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { createCA, signedBy } from '../../../pkg/certs/index.js';
import { MAX_CSR_BYTES, signWorkloadCsr, spiffeId } from '../../../pkg/certs/workload.js';
import { isWeftError, type ErrorCode } from '../../../pkg/errors/index.js';

const HOUR = 3600_000;
const now = new Date('2026-11-23T12:00:00Z');
const ID = 'spiffe://cluster.local/ns/shop/sa/cart';

function rsaKeys(bits: number): forge.pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const key = forge.pki.privateKeyFromPem(
    privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  ) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

interface CsrSpec {
  keys: forge.pki.rsa.KeyPair;
  cn?: string;
  extensions?: object[];
  /** Replace the public key after signing, so the signature no longer matches. */
  swapKey?: forge.pki.rsa.PublicKey;
}

function makeCsr(spec: CsrSpec): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = spec.keys.publicKey;
  csr.setSubject([{ name: 'commonName', value: spec.cn ?? 'ignored.example' }]);
  if (spec.extensions) csr.setAttributes([{ name: 'extensionRequest', extensions: spec.extensions }]);
  csr.sign(spec.keys.privateKey, forge.md.sha256.create());
  if (spec.swapKey) {
    csr.publicKey = spec.swapKey;
    // forge caches the signed request info; drop it so the PEM carries the swapped key.
    (csr as { certificationRequestInfo: unknown }).certificationRequestInfo = null;
  }
  return forge.pki.certificationRequestToPem(csr);
}

function expectCode(fn: () => unknown, code: ErrorCode, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(isWeftError(err, code), String(err)).to.equal(true);
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('workload CSR signing (pkg/certs/workload)', () => {
  const ca = createCA({ commonName: 'weft-root', ttlMs: 30 * 24 * HOUR, now });
  const keys = rsaKeys(2048);
  const other = rsaKeys(2048);

  it('issues a leaf with only the SPIFFE URI SAN, for the CSR key, chaining to the CA', () => {
    const csr = makeCsr({
      keys,
      cn: 'admin.evil.example',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'evil.example' }] }],
    });
    const pem = signWorkloadCsr(ca, csr, { spiffeId: ID, ttlMs: 24 * HOUR, now });
    const x = new X509Certificate(pem);
    expect(x.subjectAltName).to.equal(`URI:${ID}`);
    expect(x.subject ?? '').to.equal('');
    expect(x.ca).to.equal(false);
    expect(x.keyUsage).to.have.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(signedBy(pem, ca.certPem)).to.equal(true);
    const leafKey = forge.pki.certificateFromPem(pem).publicKey as forge.pki.rsa.PublicKey;
    expect(leafKey.n.compareTo(keys.publicKey.n)).to.equal(0);
    expect(new Date(x.validTo).getTime()).to.equal(now.getTime() + 24 * HOUR);
    expect(new Date(x.validFrom).getTime()).to.equal(now.getTime() - 5 * 60_000);
    const ext = forge.pki.certificateFromPem(pem).getExtension('keyUsage') as Record<string, boolean>;
    expect(ext).to.include({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
  });

  it('gives every leaf a positive serial', () => {
    for (let i = 0; i < 20; i++) {
      const pem = signWorkloadCsr(ca, makeCsr({ keys }), { spiffeId: ID, ttlMs: HOUR, now });
      const serial = forge.pki.certificateFromPem(pem).serialNumber;
      expect(parseInt(serial.slice(0, 2), 16) & 0x80, serial).to.equal(0);
      expect(serial.slice(0, 2), serial).to.not.equal('00');
    }
  });

  it('never outlives the CA', () => {
    const pem = signWorkloadCsr(ca, makeCsr({ keys }), { spiffeId: ID, ttlMs: 365 * 24 * HOUR, now });
    expect(new X509Certificate(pem).validTo).to.equal(new X509Certificate(ca.certPem).validTo);
  });

  const badCsrs: { name: string; csr: () => string; code: ErrorCode; pattern: RegExp }[] = [
    { name: 'not PEM', csr: () => 'hello', code: 'WEFT_CSR_INVALID', pattern: /not a PEM/ },
    {
      name: 'a certificate, not a CSR',
      csr: () => ca.certPem,
      code: 'WEFT_CSR_INVALID',
      pattern: /not a PEM "CERTIFICATE REQUEST"/,
    },
    {
      name: 'garbage inside the PEM armour',
      csr: () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      code: 'WEFT_CSR_INVALID',
      pattern: /cannot be parsed/,
    },
    {
      name: 'signature by another key (no proof of possession)',
      csr: () => makeCsr({ keys, swapKey: other.publicKey }),
      code: 'WEFT_CSR_INVALID',
      pattern: /signature does not match/,
    },
    {
      name: 'asks for basicConstraints CA:TRUE',
      csr: () => makeCsr({ keys, extensions: [{ name: 'basicConstraints', cA: true }] }),
      code: 'WEFT_CSR_INVALID',
      pattern: /asks for a CA/,
    },
    {
      name: 'asks for keyCertSign',
      csr: () => makeCsr({ keys, extensions: [{ name: 'keyUsage', keyCertSign: true }] }),
      code: 'WEFT_CSR_INVALID',
      pattern: /asks for a CA/,
    },
    {
      name: 'RSA key below 2048 bits',
      csr: () => makeCsr({ keys: rsaKeys(1024) }),
      code: 'WEFT_CSR_INVALID',
      pattern: /1024 bits; at least 2048/,
    },
    {
      name: 'larger than the limit',
      csr: () => `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(MAX_CSR_BYTES)}\n`,
      code: 'WEFT_CSR_INVALID',
      pattern: /larger than/,
    },
  ];
  for (const c of badCsrs) {
    it(`refuses a CSR that is ${c.name}`, () => {
      const csr = c.csr();
      expectCode(() => signWorkloadCsr(ca, csr, { spiffeId: ID, ttlMs: HOUR, now }), c.code, c.pattern);
    });
  }

  it('a CA-requesting CSR still passes when the request is benign (CA:FALSE)', () => {
    const csr = makeCsr({ keys, extensions: [{ name: 'basicConstraints', cA: false }] });
    const pem = signWorkloadCsr(ca, csr, { spiffeId: ID, ttlMs: HOUR, now });
    expect(new X509Certificate(pem).ca).to.equal(false);
  });

  for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses a lifetime of ${ttlMs} ms`, () => {
      expectCode(
        () => signWorkloadCsr(ca, makeCsr({ keys }), { spiffeId: ID, ttlMs, now }),
        'WEFT_CERT_INVALID',
        /lifetime must be positive/,
      );
    });
  }

  it('refuses an identity that is not a SPIFFE ID', () => {
    expectCode(
      () => signWorkloadCsr(ca, makeCsr({ keys }), { spiffeId: 'https://x/y', ttlMs: HOUR, now }),
      'WEFT_CSR_INVALID',
      /not a SPIFFE ID/,
    );
  });

  it('refuses a CA whose key is not PEM', () => {
    expectCode(
      () => signWorkloadCsr({ ...ca, keyPem: 'nope' }, makeCsr({ keys }), { spiffeId: ID, ttlMs: HOUR, now }),
      'WEFT_CERT_INVALID',
      /not an RSA private key/,
    );
  });

  const ids: { args: [string, string, string]; want: string | RegExp }[] = [
    { args: ['cluster.local', 'shop', 'cart'], want: 'spiffe://cluster.local/ns/shop/sa/cart' },
    { args: ['example.org', 'a-b', 'x.y-z'], want: 'spiffe://example.org/ns/a-b/sa/x.y-z' },
    { args: ['Cluster.Local', 'shop', 'cart'], want: /trust domain/ },
    { args: ['cluster.local', 'Shop', 'cart'], want: /namespace/ },
    { args: ['cluster.local', 'shop', 'a/b'], want: /service account/ },
    { args: ['cluster.local', 'shop', ''], want: /service account/ },
  ];
  for (const c of ids) {
    it(`spiffeId(${c.args.join(', ')})`, () => {
      if (typeof c.want === 'string') expect(spiffeId(...c.args)).to.equal(c.want);
      else expectCode(() => spiffeId(...c.args), 'WEFT_CSR_INVALID', c.want);
    });
  }
});
