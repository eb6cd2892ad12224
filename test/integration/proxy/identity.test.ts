/**
 * The proxy's workload identity against a weftd stand-in that signs with weftd's real CA code
 * (fake-weftd.ts): first certificate, rotation at half-life without dropping a connection, weftd
 * down (backoff, loud log and metric near expiry, the held certificate stays), trust-bundle
 * changes from the root file, and answers that must not be installed. Real TLS on loopback.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import winston from 'winston';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { buildCsr, generateWorkloadKey } from '../../../pkg/certs/csr.js';
import { signWorkloadCsr } from '../../../pkg/certs/workload.js';
import type { Logger } from '../../../pkg/log/index.js';
import { PROXY_CONFIG_API_VERSION } from '../../../pkg/proxyconfig/types.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import {
  WorkloadIdentity,
  checkAnswer,
  parseKeyAlgorithm,
  rotationTime,
} from '../../../proxy/identity/workload.js';
import { waitFor } from '../../support/wait.js';
import { runProxyConfig } from '../../../cli/commands/proxy-config.js';
import { ProxyServer } from '../../../proxy/server.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';

const FAST = { baseMs: 20, maxMs: 100, jitter: 0 };

function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const log = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { log, lines };
}

function metrics(): MetricsRegistry {
  return new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });
}

function identityFor(w: FakeWeftd, extra: Partial<ConstructorParameters<typeof WorkloadIdentity>[0]> = {}) {
  return new WorkloadIdentity({
    address: w.address,
    caRootPath: w.rootPath,
    tokenPath: w.tokenPath,
    log: capturingLogger().log,
    backoff: FAST,
    rootPollMs: 50,
    ...extra,
  });
}

describe('proxy workload identity (proxy/identity/workload.ts)', function () {
  this.timeout(60_000);
  let weftd: FakeWeftd;
  const started: WorkloadIdentity[] = [];
  beforeEach(async () => {
    weftd = await fakeWeftd(null);
  });
  afterEach(async () => {
    for (const s of started.splice(0)) s.stop();
    await weftd.close();
  });
  const start = async (id: WorkloadIdentity): Promise<WorkloadIdentity> => {
    started.push(id);
    await id.start();
    return id;
  };

  it('gets an ECDSA P-256 certificate for the token identity; not ready before, ready after', async () => {
    const m = metrics();
    const id = identityFor(weftd, { metrics: m });
    expect(id.notReadyReason()).to.match(/no workload certificate yet/);
    expect(id.secureContext()).to.equal(null);
    await start(id);
    const c = id.current()!;
    expect(c.spiffeId).to.equal('spiffe://cluster.local/ns/default/sa/default');
    expect(c.trustDomain).to.equal('cluster.local');
    expect(id.notReadyReason()).to.equal(null);
    expect(id.secureContext()).to.not.equal(null);
    const leaf = new X509Certificate(c.certChainPem);
    expect(leaf.publicKey.asymmetricKeyType).to.equal('ec');
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    const summary = JSON.stringify(id.summary());
    expect(summary).to.not.contain('PRIVATE KEY');
    expect(summary).to.contain(leaf.serialNumber);
    expect(id.summary().certificate?.root?.fingerprint256).to.equal(
      new X509Certificate(weftd.ca.certPem).fingerprint256,
    );
    const text = m.render();
    expect(text).to.match(/istio_agent_cert_expiry_seconds\{resource_name="default"\} \d{3,}/);
    expect(text).to.match(/istio_agent_cert_expiry_seconds\{resource_name="ROOTCA"\} \d{3,}/);
    expect(text).to.match(/weft_proxy_cert_renewal_overdue 0/);
  });

  it('uses RSA when configured', async () => {
    const id = await start(identityFor(weftd, { keyAlgorithm: 'RSA_2048' }));
    expect(new X509Certificate(id.current()!.certChainPem).publicKey.asymmetricKeyType).to.equal('rsa');
  });

  it('rotates at half-life with a new key; an open connection survives, new ones get the new certificate', async () => {
    weftd.certTtlMs = 3000; // rotation ~1.5 s after issue
    const id = await start(identityFor(weftd));
    const first = id.current()!;
    // a TLS server presenting whatever the identity holds now, and a client connected before rotation
    const server = tls.createServer(
      { SNICallback: (_n, cb) => cb(null, id.secureContext() ?? undefined) },
      (s) => s.pipe(s),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const connect = (): Promise<tls.TLSSocket> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({
          port,
          host: '127.0.0.1',
          servername: 'mesh',
          ca: first.rootsPem,
          checkServerIdentity: () => undefined,
        });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
      });
    const early = await connect();
    const changed = new Promise<void>((r) => id.onChange(r));
    await waitFor('a rotation', () => weftd.issued >= 2, 20_000, 50);
    await changed;
    const second = id.current()!;
    expect(second.keyPem).to.not.equal(first.keyPem);
    expect(new X509Certificate(second.certChainPem).serialNumber).to.not.equal(
      new X509Certificate(first.certChainPem).serialNumber,
    );
    // the early connection still carries data after the rotation
    const echoed = new Promise<string>((r) => early.once('data', (d: Buffer) => r(d.toString())));
    early.write('still here');
    expect(await echoed).to.equal('still here');
    expect(early.getPeerX509Certificate()!.serialNumber).to.equal(
      new X509Certificate(first.certChainPem).serialNumber,
    );
    const late = await connect();
    expect(late.getPeerX509Certificate()!.serialNumber).to.equal(
      new X509Certificate(second.certChainPem).serialNumber,
    );
    early.destroy();
    late.destroy();
    server.close();
  });

  it('weftd down before the first certificate: retries with backoff, ready once weftd signs', async () => {
    weftd.certsDown = true;
    const id = await start(identityFor(weftd));
    await waitFor('two failed attempts', () => id.summary().renewalFailures >= 2, 10_000, 20);
    expect(id.notReadyReason()).to.match(/HTTP 503/);
    weftd.certsDown = false;
    await waitFor('a certificate', () => id.current(), 10_000, 20);
    expect(id.notReadyReason()).to.equal(null);
    expect(id.summary().renewalFailures).to.equal(0);
  });

  it('weftd down near expiry: keeps serving the held certificate, logs at error level and raises the metric', async () => {
    weftd.certTtlMs = 2000;
    const m = metrics();
    const { log, lines } = capturingLogger();
    const id = await start(identityFor(weftd, { metrics: m, log }));
    const held = id.current()!;
    weftd.certsDown = true;
    await waitFor('a failed renewal', () => id.summary().renewalFailures >= 1, 20_000, 20);
    expect(id.current()).to.equal(held);
    // overdue once less than 20% of the 2 s life is left (the retries keep failing until then)
    await waitFor('overdue', () => id.overdue(), 20_000, 20);
    expect(m.render()).to.match(/weft_proxy_cert_renewal_overdue 1/);
    expect(m.render()).to.match(/weft_proxy_cert_renewal_failures_total [1-9]/);
    // the next failed attempt (retries every ≤ 100 ms) says it at error level
    await waitFor(
      'a failure logged at error level',
      () => lines.find((l) => l.level === 'error' && /cannot renew/.test(String(l.message))),
      20_000,
      20,
    );
    weftd.certsDown = false;
    await waitFor('a renewal once weftd is back', () => id.current() !== held, 20_000, 20);
    expect(id.overdue()).to.equal(false);
  });

  it('a failed renewal with most of the life left is not overdue, even for a certificate of seconds (the 5 min backdate is not life)', async () => {
    weftd.certTtlMs = 10_000; // renewal ~5 s after issue, with ~5 s (50%) left
    const m = metrics();
    const { log, lines } = capturingLogger();
    const id = await start(
      identityFor(weftd, { metrics: m, log, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } }),
    );
    weftd.certsDown = true;
    await waitFor('a failed renewal', () => id.summary().renewalFailures >= 1, 20_000, 20);
    expect(id.overdue()).to.equal(false);
    expect(m.render()).to.match(/weft_proxy_cert_renewal_overdue 0/);
    const failure = lines.find((l) => /renewal failed|cannot renew/.test(String(l.message)));
    expect(failure?.level, JSON.stringify(lines.slice(-3))).to.equal('warn');
  });

  it('a root added to the mounted bundle is trusted (old and new overlap), without a new certificate', async () => {
    const id = await start(identityFor(weftd));
    const issued = weftd.issued;
    const changed = new Promise<void>((r) => id.onChange(r));
    const next = createCA({ commonName: 'next root', ttlMs: 3600_000, now: new Date() });
    writeFileSync(weftd.rootPath, weftd.ca.certPem + next.certPem);
    await changed;
    expect(id.summary().roots).to.have.length(2);
    const fp = new X509Certificate(next.certPem).fingerprint256;
    expect(id.summary().roots.map((r) => r.fingerprint256)).to.include(fp);
    expect(id.current()!.rootsPem).to.contain(new X509Certificate(next.certPem).toString().trim());
    expect(weftd.issued).to.equal(issued);
  });

  it('serves the summary at /certs (never the key) and weftctl proxy-config secret prints it like istioctl', async () => {
    const id = await start(identityFor(weftd));
    const proxy = new ProxyServer({
      identity: id,
      adminPort: 0,
      metricsPort: 0,
      healthPort: null,
      logger: capturingLogger().log,
    });
    await proxy.startAux();
    try {
      const base = `http://127.0.0.1:${proxy.ports().metrics}`;
      const body = await (await fetch(`${base}/certs`)).text();
      expect(body).to.not.match(/PRIVATE KEY/);
      const out: string[] = [];
      const err: string[] = [];
      const code = await runProxyConfig(['secret', 'app-1.default', '--proxy-address', base], {
        stdout: (t: string) => void out.push(t),
        stderr: (t: string) => void err.push(t),
      } as never);
      expect(code, err.join('')).to.equal(0);
      const [header, chain, root] = out.join('').trimEnd().split('\n');
      expect(header).to.match(
        /^RESOURCE NAME\s+TYPE\s+STATUS\s+VALID CERT\s+SERIAL NUMBER\s+NOT AFTER\s+NOT BEFORE$/,
      );
      const serial = new X509Certificate(id.current()!.certChainPem).serialNumber.toLowerCase();
      expect(chain).to.match(
        new RegExp(`^default\\s+Cert Chain\\s+ACTIVE\\s+true\\s+${serial}\\s+\\S+Z\\s+\\S+Z$`),
      );
      expect(root).to.match(/^ROOTCA\s+CA\s+ACTIVE\s+true\s+[0-9a-f]+\s/);

      // a gateway's delivered credentialName credentials are listed too, under Istio's SDS names
      const credCa = createCA({ commonName: 'cred-ca', ttlMs: 3600_000, now: new Date() });
      const credLeaf = issueServing(credCa, {
        commonName: 'c',
        dnsNames: ['c'],
        ttlMs: 3600_000,
        now: new Date(),
      });
      await proxy.apply({
        apiVersion: PROXY_CONFIG_API_VERSION,
        kind: 'ProxyConfig',
        version: 'creds',
        listeners: [],
        clusters: [],
        credentials: {
          'client-cred': {
            source: 'edge/client-cred',
            certChain: credLeaf.certPem,
            privateKey: credLeaf.keyPem,
            caCertificates: credCa.certPem,
          },
          missing: { source: 'edge/missing', error: 'Secret edge/missing not found' },
        },
      });
      expect(await (await fetch(`${base}/certs`)).text()).to.not.match(/PRIVATE KEY/);
      out.length = 0;
      expect(
        await runProxyConfig(['secret', 'app-1.default', '--proxy-address', base], {
          stdout: (t: string) => void out.push(t),
          stderr: (t: string) => void err.push(t),
        } as never),
      ).to.equal(0);
      const lines = out.join('').trimEnd().split('\n');
      const credSerial = new X509Certificate(credLeaf.certPem).serialNumber.toLowerCase();
      expect(lines.slice(3)).to.have.length(5);
      expect(lines[3]).to.match(
        new RegExp(`^kubernetes://client-cred\\s+Cert Chain\\s+ACTIVE\\s+true\\s+${credSerial}\\s`),
      );
      expect(lines[4]).to.match(/^kubernetes:\/\/client-cred-cacert\s+CA\s+ACTIVE\s+true\s/);
      expect(lines[5]).to.match(/^kubernetes:\/\/missing\s+Cert Chain\s+ERROR\s+false/);
      expect(lines.at(-1)).to.equal('kubernetes://missing: Secret edge/missing not found');
    } finally {
      await proxy.shutdown();
    }
  });

  it('refuses answers it must not install: another key, an untrusted chain, an expired leaf', () => {
    const ca = createCA({ commonName: 'root', ttlMs: 3600_000, now: new Date() });
    const stranger = createCA({ commonName: 'stranger', ttlMs: 3600_000, now: new Date() });
    const roots = [new X509Certificate(ca.certPem)];
    const key = generateWorkloadKey('ECDSA_P256');
    const other = generateWorkloadKey('ECDSA_P256');
    const ID = 'spiffe://cluster.local/ns/a/sa/b';
    const leaf = (k = key, signer = ca, now = new Date()) =>
      signWorkloadCsr(signer, buildCsr(k), { spiffeId: ID, ttlMs: 60_000, now });
    // with two trusted roots, the one the chain leads to is named (a root rotation's step 2 check)
    const both = [new X509Certificate(stranger.certPem), ...roots];
    const ok = checkAnswer({ certChain: [leaf()], rootCert: ca.certPem }, key, both, Date.now());
    expect(ok.spiffeId).to.equal(ID);
    expect(ok.root.fingerprint256).to.equal(roots[0]!.fingerprint256);
    expect(() => checkAnswer({ certChain: [leaf(other)], rootCert: '' }, key, roots, Date.now())).to.throw(
      /not for our key/,
    );
    expect(() =>
      checkAnswer({ certChain: [leaf(key, stranger)], rootCert: '' }, key, roots, Date.now()),
    ).to.throw(/trusted root/);
    expect(() =>
      checkAnswer({ certChain: [leaf()], rootCert: '' }, key, roots, Date.now() + 3_600_000),
    ).to.throw(/not valid now/);
    expect(() => checkAnswer({ certChain: [], rootCert: '' }, key, roots, Date.now())).to.throw(
      /without certChain/,
    );
  });

  it('rotationTime: half of the remaining life, ±1%', () => {
    const cases: [number, number][] = [
      [0, 0.49],
      [0.5, 0.5],
      [1, 0.51],
    ];
    for (const [r, ratio] of cases)
      expect(rotationTime(1000, 1000 + 3600_000, () => r)).to.be.closeTo(1000 + 3600_000 * ratio, 1);
    expect(rotationTime(5000, 1000, () => 0.5)).to.equal(5000); // already expired: renew now
  });

  it('parseKeyAlgorithm', () => {
    expect(parseKeyAlgorithm(undefined)).to.equal('ECDSA_P256');
    expect(parseKeyAlgorithm('rsa')).to.equal('RSA_2048');
    expect(parseKeyAlgorithm('RSA-4096')).to.equal('RSA_4096');
    expect(() => parseKeyAlgorithm('DSA')).to.throw(/not one of/);
  });
});
