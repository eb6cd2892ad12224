import { expect } from 'chai';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createCA, issueCert, makeServingCert, subjectAltNames } from '../../../hack/cluster/pki.js';

describe('hack/cluster/pki', () => {
  describe('subjectAltNames', () => {
    const cases: Array<[string, { type: number; value?: string; ip?: string }]> = [
      ['127.0.0.1', { type: 7, ip: '127.0.0.1' }],
      ['10.0.0.1', { type: 7, ip: '10.0.0.1' }],
      ['::1', { type: 7, ip: '::1' }],
      ['localhost', { type: 2, value: 'localhost' }],
      ['kubernetes.default.svc', { type: 2, value: 'kubernetes.default.svc' }],
      ['weft-webhook.weft-system.svc', { type: 2, value: 'weft-webhook.weft-system.svc' }],
      ['1.2.3', { type: 2, value: '1.2.3' }],
      ['256.1.1.1', { type: 2, value: '256.1.1.1' }],
    ];
    for (const [host, want] of cases) {
      it(`${host} → ${want.type === 7 ? 'IP' : 'DNS'} SAN`, () => {
        expect(subjectAltNames([host])).to.deep.equal([want]);
      });
    }
  });

  describe('issueCert', () => {
    const ca = createCA('unit-test-ca');
    const caX509 = new X509Certificate(ca.certPem);

    it('makes a CA certificate that is self-signed and marked CA', () => {
      expect(caX509.ca).to.equal(true);
      expect(caX509.verify(caX509.publicKey)).to.equal(true);
    });

    it('signs a serving cert with IP and DNS SANs that Go-style clients accept', () => {
      const leaf = issueCert(ca, { commonName: 'api', hosts: ['127.0.0.1', 'localhost'], usage: 'server' });
      const x = new X509Certificate(leaf.certPem);
      expect(x.verify(caX509.publicKey)).to.equal(true);
      expect(x.checkIP('127.0.0.1')).to.equal('127.0.0.1');
      expect(x.checkHost('localhost')).to.equal('localhost');
      expect(x.checkHost('example.com')).to.equal(undefined);
      expect(x.keyUsage).to.include('1.3.6.1.5.5.7.3.1'); // serverAuth
      expect(x.ca).to.equal(false);
      expect(x.checkPrivateKey(createPrivateKey(leaf.keyPem))).to.equal(true);
    });

    it('puts CN and O into the subject of a client cert (the Kubernetes user and groups)', () => {
      const c = issueCert(ca, {
        commonName: 'weft-admin',
        organizations: ['system:masters', 'devs'],
        usage: 'client',
      });
      const x = new X509Certificate(c.certPem);
      expect(x.subject.split('\n')).to.include.members(['CN=weft-admin', 'O=system:masters', 'O=devs']);
      expect(x.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']); // clientAuth only
      expect(x.subjectAltName).to.equal(undefined);
    });

    it('refuses a serving cert without hosts', () => {
      expect(() => issueCert(ca, { commonName: 'x', usage: 'server' })).to.throw(/needs at least one host/);
    });

    it('gives every certificate a distinct positive serial', () => {
      const serials = new Set(
        Array.from(
          { length: 5 },
          () => new X509Certificate(issueCert(ca, { commonName: 'c', usage: 'client' }).certPem).serialNumber,
        ),
      );
      expect(serials.size).to.equal(5);
      for (const s of serials) expect(Number.parseInt(s.slice(0, 2), 16)).to.be.below(0x80);
    });
  });

  describe('makeServingCert', () => {
    it('defaults to 127.0.0.1 and localhost and returns a base64 caBundle of the CA', () => {
      const s = makeServingCert();
      const x = new X509Certificate(s.certPem);
      expect(x.checkIP('127.0.0.1')).to.equal('127.0.0.1');
      expect(x.checkHost('localhost')).to.equal('localhost');
      expect(Buffer.from(s.caBundle, 'base64').toString()).to.equal(s.caPem);
      expect(x.verify(new X509Certificate(s.caPem).publicKey)).to.equal(true);
    });

    it('uses a fresh CA each time', () => {
      expect(makeServingCert().caPem).to.not.equal(makeServingCert().caPem);
    });

    it('rejects an empty host list with a clear message', () => {
      expect(() => makeServingCert([])).to.throw(/at least one host/);
    });
  });
});
