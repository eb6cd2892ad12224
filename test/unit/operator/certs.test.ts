import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import {
  caNeedsRenewal,
  certInfo,
  checkCA,
  createCA,
  issueServing,
  renewAt,
  renewalReason,
  serialNumber,
  signedBy,
} from '../../../pkg/certs/index.js';
import { isWeftError } from '../../../pkg/errors/index.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const now = new Date('2026-11-23T12:00:00Z');

describe('certs', () => {
  const ca = createCA({ commonName: 'weft-root', ttlMs: 365 * DAY, now });
  const dns = ['weft-webhook.weft-system.svc', 'weft-webhook.weft-system.svc.cluster.local'];
  const leaf = issueServing(ca, { commonName: dns[0]!, dnsNames: dns, ttlMs: 30 * DAY, now });

  it('creates a self-signed CA that verifies itself', () => {
    const info = certInfo(ca.certPem);
    expect(info.isCA).to.equal(true);
    expect(info.subjectCN).to.equal('weft-root');
    expect(info.issuerCN).to.equal('weft-root');
    expect(signedBy(ca.certPem, ca.certPem)).to.equal(true);
    expect(checkCA(ca, now)).to.equal(null);
  });

  it('issues a serving certificate with the SANs, signed by the CA, not a CA itself', () => {
    const info = certInfo(leaf.certPem);
    expect(info.dnsNames).to.deep.equal(dns);
    expect(info.isCA).to.equal(false);
    expect(info.issuerCN).to.equal('weft-root');
    expect(signedBy(leaf.certPem, ca.certPem)).to.equal(true);
    expect(info.notAfter.getTime()).to.equal(now.getTime() + 30 * DAY - ((now.getTime() + 30 * DAY) % 1000));
  });

  it('the serving certificate works for a real TLS handshake verified against the CA', async () => {
    const tls = await import('node:tls');
    const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const got = await new Promise<string>((resolve, reject) => {
        const sock = tls.connect(
          { host: '127.0.0.1', port, ca: ca.certPem, servername: dns[0]! },
          () => undefined,
        );
        let data = '';
        sock.on('data', (d: Buffer) => (data += d.toString()));
        sock.on('end', () => resolve(data));
        sock.on('error', reject);
      });
      expect(got).to.equal('ok');
    } finally {
      server.close();
    }
  });

  it('caps a leaf at the CA expiry', () => {
    const shortCa = createCA({ commonName: 'short', ttlMs: 2 * DAY, now });
    const l = issueServing(shortCa, { commonName: 'x', dnsNames: ['x.svc'], ttlMs: 90 * DAY, now });
    expect(certInfo(l.certPem).notAfter.getTime()).to.be.at.most(
      certInfo(shortCa.certPem).notAfter.getTime(),
    );
  });

  const table: Array<{
    name: string;
    at: Date;
    dns: string[];
    ca?: string;
    cur?: typeof leaf | null;
    want: string | null;
  }> = [
    { name: 'fresh certificate', at: now, dns, want: null },
    { name: 'just before 2/3 of lifetime', at: new Date(now.getTime() + 19 * DAY), dns, want: null },
    { name: 'after 2/3 of lifetime', at: new Date(now.getTime() + 21 * DAY), dns, want: 'Expiring' },
    { name: 'expired', at: new Date(now.getTime() + 31 * DAY), dns, want: 'Expiring' },
    { name: 'SAN added', at: now, dns: [...dns, 'extra.svc'], want: 'SANChanged' },
    { name: 'SAN removed', at: now, dns: [dns[0]!], want: 'SANChanged' },
    { name: 'same SANs in another order', at: now, dns: [dns[1]!, dns[0]!], want: null },
    { name: 'no certificate yet', at: now, dns, cur: null, want: 'Missing' },
    { name: 'garbage certificate', at: now, dns, cur: { certPem: 'nope', keyPem: 'nope' }, want: 'Missing' },
  ];
  for (const row of table) {
    it(`renewal: ${row.name} → ${String(row.want)}`, () => {
      const cur = row.cur === undefined ? leaf : row.cur;
      expect(renewalReason(cur, { dnsNames: row.dns, caPem: row.ca ?? ca.certPem, now: row.at })).to.equal(
        row.want,
      );
    });
  }

  it('renewal: CA rotated → IssuerChanged', () => {
    const other = createCA({ commonName: 'weft-root', ttlMs: DAY, now });
    expect(renewalReason(leaf, { dnsNames: dns, caPem: other.certPem, now })).to.equal('IssuerChanged');
  });

  it('renewAt is two thirds through the validity', () => {
    const at = renewAt({ notBefore: new Date(0), notAfter: new Date(3000) });
    expect(at.getTime()).to.equal(2000);
  });

  it('CA renewal: none, fresh, late in life', () => {
    expect(caNeedsRenewal(null, now)).to.equal(true);
    expect(caNeedsRenewal(ca, now)).to.equal(false);
    expect(caNeedsRenewal(ca, new Date(now.getTime() + 300 * DAY))).to.equal(true);
  });

  it('checkCA names what is wrong with a user CA', () => {
    expect(checkCA({ certPem: leaf.certPem, keyPem: leaf.keyPem }, now)).to.match(/not a CA/);
    expect(checkCA({ certPem: 'x', keyPem: ca.keyPem }, now)).to.match(/not a PEM/);
    const other = createCA({ commonName: 'o', ttlMs: DAY, now });
    expect(checkCA({ certPem: ca.certPem, keyPem: other.keyPem }, now)).to.match(/does not match/);
    expect(checkCA({ certPem: ca.certPem, keyPem: 'garbage' }, now)).to.match(/not an RSA private key/);
    expect(checkCA(ca, new Date(now.getTime() + 400 * DAY))).to.match(/expired/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(checkCA({ certPem: ca.certPem, keyPem: ec }, now)).to.match(/RSA/);
  });

  it('bad input is a coded error without the key material in the message', () => {
    try {
      issueServing(
        {
          certPem: ca.certPem,
          keyPem: '-----BEGIN RSA PRIVATE KEY-----\nSECRETSTUFF\n-----END RSA PRIVATE KEY-----',
        },
        { commonName: 'x', dnsNames: ['x'], ttlMs: DAY, now },
      );
      expect.fail('should throw');
    } catch (err) {
      expect(isWeftError(err, 'WEFT_CERT_INVALID')).to.equal(true);
      expect((err as Error).message).to.not.include('SECRETSTUFF');
    }
    expect(() => issueServing(ca, { commonName: 'x', dnsNames: [], ttlMs: DAY, now })).to.throw(
      /at least one DNS name/,
    );
    expect(() => createCA({ commonName: 'x', ttlMs: -1, now })).to.throw(/positive/);
  });
});

describe('certs: IP SANs (a webhook on 127.0.0.1)', () => {
  it('issues an iPAddress SAN for an IP literal and verifies a TLS handshake to it', async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'ip-ca', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, {
      commonName: 'weft-webhook',
      dnsNames: ['weft-webhook.weft-system.svc', '127.0.0.1'],
      ttlMs: 3600_000,
      now,
    });
    expect(certInfo(leaf.certPem).dnsNames).to.deep.equal(['weft-webhook.weft-system.svc', '127.0.0.1']);
    const tls = await import('node:tls');
    const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem }, () => undefined);
        let data = '';
        sock.on('data', (d: Buffer) => (data += d.toString()));
        sock.on('end', () => resolve(data));
        sock.on('error', reject);
      });
      expect(got).to.equal('ok');
    } finally {
      server.close();
    }
  });

  it('draws serials that are positive and minimally encoded, so readers see exactly what we wrote', () => {
    // 2,000 draws: a rule that fails for 1 serial in 256 (a 0x00 first byte) cannot slip through.
    for (let i = 0; i < 2000; i++) {
      const serial = serialNumber();
      expect(serial).to.match(/^[0-9a-f]{32}$/);
      const first = Number.parseInt(serial.slice(0, 2), 16);
      expect(first, serial).to.be.within(0x01, 0x7f);
    }
  });
});
