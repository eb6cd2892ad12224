/**
 * pkg/certs/workload + csr: signing a proxy's CSR into a SPIFFE leaf. ECDSA P-256 and RSA CSRs
 * (as the proxy builds them) are signed; a CSR that asks for anything but the token's identity
 * is refused with a reason the CA counts; the lifetime is bounded by the request and the CA.
 */
import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import forge from 'node-forge';
import { createCA, signedBy } from '../../../pkg/certs/index.js';
import { buildCsr, generateWorkloadKey, OID, parseCsr, uriSans } from '../../../pkg/certs/csr.js';
import {
  bitString,
  contextTag,
  derToPem,
  octetString,
  oid,
  pemToDer,
  seq,
  setOf,
  tlv,
  uint,
  utf8String,
} from '../../../pkg/certs/der.js';
import { MAX_CSR_BYTES, signWorkloadCsr, spiffeId } from '../../../pkg/certs/workload.js';
import { isWeftError, WeftError, type ErrorCode } from '../../../pkg/errors/index.js';

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

interface ForgeCsrSpec {
  keys: forge.pki.rsa.KeyPair;
  cn?: string;
  extensions?: object[];
  attributes?: object[];
  /** Replace the public key after signing, so the signature no longer matches. */
  swapKey?: forge.pki.rsa.PublicKey;
}

/** RSA CSRs with whatever names and extensions forge can express (hostile inputs). */
function forgeCsr(spec: ForgeCsrSpec): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = spec.keys.publicKey;
  if (spec.cn !== undefined) csr.setSubject([{ name: 'commonName', value: spec.cn }]);
  const attrs = [...(spec.attributes ?? [])];
  if (spec.extensions) attrs.push({ name: 'extensionRequest', extensions: spec.extensions });
  if (attrs.length > 0) csr.setAttributes(attrs);
  csr.sign(spec.keys.privateKey, forge.md.sha256.create());
  if (spec.swapKey) {
    csr.publicKey = spec.swapKey;
    // forge caches the signed request info; drop it so the PEM carries the swapped key.
    (csr as { certificationRequestInfo: unknown }).certificationRequestInfo = null;
  }
  return forge.pki.certificationRequestToPem(csr);
}

/** An EC CSR with raw extensions (DER), signed properly: the refusal must come from the content. */
function ecCsrWithExtensions(key: KeyObject, extensions: Buffer[], subject = seq()): string {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const attrs = extensions.length === 0 ? [] : [seq(oid(OID.extensionRequest), setOf(seq(...extensions)))];
  const info = seq(uint(0), subject, spki, tlv(contextTag(0, true), Buffer.concat(attrs)));
  return derToPem(
    seq(info, seq(oid(OID.ecdsaSha256)), bitString(sign('sha256', info, key))),
    'CERTIFICATE REQUEST',
  );
}

function expectRefusal(fn: () => unknown, code: ErrorCode, pattern: RegExp, reason?: string): void {
  try {
    fn();
  } catch (err) {
    expect(isWeftError(err, code), String(err)).to.equal(true);
    expect((err as Error).message).to.match(pattern);
    if (reason !== undefined) expect((err as WeftError).details?.reason).to.equal(reason);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('workload CSR signing (pkg/certs/workload, pkg/certs/csr)', () => {
  const ca = createCA({ commonName: 'weft-root', ttlMs: 30 * 24 * HOUR, now });
  const ec = generateWorkloadKey('ECDSA_P256');
  const keys = rsaKeys(2048);
  const other = rsaKeys(2048);
  const sign1h = (csr: string): string => signWorkloadCsr(ca, csr, { spiffeId: ID, ttlMs: HOUR, now });

  for (const alg of ['ECDSA_P256', 'RSA_2048'] as const) {
    it(`issues a ${alg} leaf with only the SPIFFE URI SAN, for the CSR key, chaining to the CA`, () => {
      const key = alg === 'ECDSA_P256' ? ec : generateWorkloadKey(alg);
      const pem = signWorkloadCsr(ca, buildCsr(key, ID), { spiffeId: ID, ttlMs: 24 * HOUR, now });
      const x = new X509Certificate(pem);
      expect(x.subjectAltName).to.equal(`URI:${ID}`);
      expect(x.subject ?? '').to.equal('');
      expect(x.ca).to.equal(false);
      expect(x.keyUsage).to.have.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
      expect(signedBy(pem, ca.certPem)).to.equal(true);
      expect(x.checkPrivateKey(key)).to.equal(true);
      expect(x.checkIssued(new X509Certificate(ca.certPem))).to.equal(true);
      expect(new Date(x.validTo).getTime()).to.equal(now.getTime() + 24 * HOUR);
      expect(new Date(x.validFrom).getTime()).to.equal(now.getTime() - 5 * 60_000);
      // forge reads the extensions (RSA leaves only: forge cannot read an EC key)
      if (alg === 'RSA_2048') {
        const ku = forge.pki.certificateFromPem(pem).getExtension('keyUsage') as Record<string, boolean>;
        expect(ku).to.include({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
      }
    });
  }

  it('accepts a CSR with no SAN (the identity comes from the token)', () => {
    expect(new X509Certificate(sign1h(buildCsr(ec))).subjectAltName).to.equal(`URI:${ID}`);
  });

  it('gives every leaf a positive serial', () => {
    for (let i = 0; i < 20; i++) {
      const serial = new X509Certificate(sign1h(buildCsr(ec))).serialNumber;
      expect(parseInt(serial.slice(0, 2), 16) & 0x80, serial).to.equal(0);
      expect(serial.slice(0, 2), serial).to.not.equal('00');
    }
  });

  it('never outlives the CA', () => {
    const pem = signWorkloadCsr(ca, buildCsr(ec), { spiffeId: ID, ttlMs: 365 * 24 * HOUR, now });
    expect(new X509Certificate(pem).validTo).to.equal(new X509Certificate(ca.certPem).validTo);
  });

  const san = (names: Buffer): Buffer => seq(oid(OID.subjectAltName), octetString(names));
  const refused: { name: string; csr: () => string; reason: string; pattern: RegExp }[] = [
    { name: 'not PEM', csr: () => 'hello', reason: 'malformed', pattern: /not a PEM/ },
    {
      name: 'a certificate, not a CSR',
      csr: () => ca.certPem,
      reason: 'malformed',
      pattern: /not a PEM "CERTIFICATE REQUEST"/,
    },
    {
      name: 'garbage inside the PEM armour',
      csr: () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      reason: 'malformed',
      pattern: /cannot be parsed/,
    },
    {
      name: 'two CSRs in one PEM',
      csr: () => buildCsr(ec) + buildCsr(ec),
      reason: 'malformed',
      pattern: /found 2/,
    },
    {
      name: 'followed by trailing bytes inside the armour',
      csr: () =>
        derToPem(
          Buffer.concat([pemToDer(buildCsr(ec), 'CERTIFICATE REQUEST'), Buffer.from([0])]),
          'CERTIFICATE REQUEST',
        ),
      reason: 'malformed',
      pattern: /after the DER value/,
    },
    {
      name: 'signed by another key (no proof of possession)',
      csr: () => forgeCsr({ keys, swapKey: other.publicKey }),
      reason: 'signature',
      pattern: /signature does not match/,
    },
    {
      name: 'asking for another identity',
      csr: () => buildCsr(ec, 'spiffe://cluster.local/ns/kube-system/sa/admin'),
      reason: 'identity',
      pattern: /asks for "spiffe:\/\/cluster.local\/ns\/kube-system\/sa\/admin", but the token proves/,
    },
    {
      name: 'asking for its identity and another URI',
      csr: () => ecCsrWithExtensions(ec, [san(uriSans([ID, 'spiffe://cluster.local/ns/shop/sa/admin']))]),
      reason: 'identity',
      pattern: /asks for .*sa\/admin/,
    },
    {
      name: 'asking for a DNS SAN',
      csr: () =>
        forgeCsr({
          keys,
          extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'evil.example' }] }],
        }),
      reason: 'identity',
      pattern: /dNSName SAN/,
    },
    {
      name: 'asking for an IP SAN',
      csr: () =>
        forgeCsr({ keys, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '10.0.0.1' }] }] }),
      reason: 'identity',
      pattern: /iPAddress SAN/,
    },
    {
      name: 'naming a subject',
      csr: () => forgeCsr({ keys, cn: 'admin.evil.example' }),
      reason: 'identity',
      pattern: /subject names something \(attribute 2\.5\.4\.3\)/,
    },
    {
      name: 'naming a subject (EC)',
      csr: () => ecCsrWithExtensions(ec, [], seq(setOf(seq(oid('2.5.4.3'), utf8String('admin'))))),
      reason: 'identity',
      pattern: /subject names something/,
    },
    {
      name: 'carrying a challengePassword attribute',
      csr: () => forgeCsr({ keys, attributes: [{ name: 'challengePassword', value: 'x' }] }),
      reason: 'identity',
      pattern: /attribute 1\.2\.840\.113549\.1\.9\.7/,
    },
    {
      name: 'asking for basicConstraints CA:TRUE',
      csr: () => forgeCsr({ keys, extensions: [{ name: 'basicConstraints', cA: true }] }),
      reason: 'ca',
      pattern: /asks for a CA/,
    },
    {
      name: 'asking for keyCertSign',
      csr: () => forgeCsr({ keys, extensions: [{ name: 'keyUsage', keyCertSign: true }] }),
      reason: 'ca',
      pattern: /keyCertSign or cRLSign/,
    },
    {
      name: 'asking for an extension outside the list (nameConstraints)',
      csr: () => ecCsrWithExtensions(ec, [seq(oid('2.5.29.30'), octetString(seq()))]),
      reason: 'extension',
      pattern: /extension 2\.5\.29\.30/,
    },
    {
      name: 'asking for the SAN twice',
      csr: () => ecCsrWithExtensions(ec, [san(uriSans([ID])), san(uriSans([ID]))]),
      reason: 'extension',
      pattern: /twice/,
    },
    {
      name: 'an RSA key below 2048 bits',
      csr: () => forgeCsr({ keys: rsaKeys(1024) }),
      reason: 'key',
      pattern: /1024 bits; weft accepts 2048-4096/,
    },
    {
      name: 'an EC key on P-521',
      csr: () => buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey),
      reason: 'key',
      pattern: /curve secp521r1/,
    },
    {
      name: 'an EC key on secp256k1',
      csr: () => buildCsr(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey),
      reason: 'key',
      pattern: /curve secp256k1/,
    },
    {
      name: 'larger than the limit',
      csr: () => `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(MAX_CSR_BYTES)}\n`,
      reason: 'malformed',
      pattern: /larger than/,
    },
  ];
  for (const c of refused) {
    it(`refuses a CSR ${c.name} (reason ${c.reason})`, () => {
      const csr = c.csr();
      expectRefusal(() => sign1h(csr), 'WEFT_CSR_INVALID', c.pattern, c.reason);
    });
  }

  it('accepts benign requests: CA:FALSE, digitalSignature, extKeyUsage', () => {
    const csr = forgeCsr({
      keys,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', clientAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 6, value: ID }] },
      ],
    });
    expect(new X509Certificate(sign1h(csr)).ca).to.equal(false);
  });

  it('parseCsr never throws anything but WEFT_CSR_INVALID on corrupted CSRs (seeded)', () => {
    const good = pemToDer(buildCsr(ec, ID), 'CERTIFICATE REQUEST');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.nat(good.length),
        (edits, cut) => {
          const der = Buffer.from(good.subarray(0, Math.max(1, cut)));
          for (const [i, v] of edits) if (i < der.length) der[i] = v;
          try {
            parseCsr(derToPem(der, 'CERTIFICATE REQUEST'));
          } catch (err) {
            if (!isWeftError(err, 'WEFT_CSR_INVALID')) throw err;
          }
        },
      ),
      { seed: 42, numRuns: 400 },
    );
  });

  for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses a lifetime of ${ttlMs} ms`, () => {
      expectRefusal(
        () => signWorkloadCsr(ca, buildCsr(ec), { spiffeId: ID, ttlMs, now }),
        'WEFT_CERT_INVALID',
        /lifetime must be positive/,
      );
    });
  }

  it('refuses an identity that is not a SPIFFE ID', () => {
    expectRefusal(
      () => signWorkloadCsr(ca, buildCsr(ec), { spiffeId: 'https://x/y', ttlMs: HOUR, now }),
      'WEFT_CSR_INVALID',
      /not a SPIFFE ID/,
    );
  });

  it('refuses a CA whose key is not PEM, or not its certificate', () => {
    expectRefusal(
      () => signWorkloadCsr({ ...ca, keyPem: 'nope' }, buildCsr(ec), { spiffeId: ID, ttlMs: HOUR, now }),
      'WEFT_CERT_INVALID',
      /not a private key/,
    );
    const stranger = createCA({ commonName: 'other', ttlMs: HOUR, now });
    expectRefusal(
      () =>
        signWorkloadCsr({ ...ca, keyPem: stranger.keyPem }, buildCsr(ec), { spiffeId: ID, ttlMs: HOUR, now }),
      'WEFT_CERT_INVALID',
      /does not match/,
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
      else expectRefusal(() => spiffeId(...c.args), 'WEFT_CSR_INVALID', c.want);
    });
  }
});
