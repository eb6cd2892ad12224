/**
 * Gateway TLS termination end to end (ADR 0014): weftd (in-process) on a real API server reads
 * the kubernetes.io/tls Secret a Gateway HTTPS server names (`credentialName`) and pushes it over
 * the real discovery stream to the gateway whose Gateway references it (and to no other proxy);
 * a real in-process gateway proxy applies each push and terminates HTTPS with it. A rotated
 * Secret is served without restarting the gateway; a Secret turned bad (a key of another
 * certificate) leaves the previous certificate in use, counted.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import type { Condition } from '../../../controlplane/status.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { ProxyServer } from '../../../proxy/server.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { FakeProxy, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';
import { join } from 'node:path';
import { Writable } from 'node:stream';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';
const HOST = 'shop.example.test';
const CRED = 'shop-cert';
const HOUR = 3600_000;

describe('Gateway HTTPS credentialName: Secret → weftd → gateway (real API server, real discovery stream, loopback TLS)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let ns: string;
  let dir: string;
  let app: http.Server;
  let gateway: ProxyServer;
  let client: DiscoveryClient;
  let other: FakeProxy;
  const ca = createCA({ commonName: 'shop-ca', ttlMs: HOUR, now: new Date() });
  const leaf = (): KeyPairPem =>
    issueServing(ca, { commonName: HOST, dnsNames: [HOST], ttlMs: HOUR, now: new Date() });
  const first = leaf();
  const second = leaf();

  const secret = (p: KeyPairPem): KubeObject =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CRED, namespace: ns },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': Buffer.from(p.certPem).toString('base64'),
        'tls.key': Buffer.from(p.keyPem).toString('base64'),
      },
    }) as KubeObject;

  const port = (): number => gateway.ports()['gateway-443']!;

  /** An HTTPS GET through the gateway: status and the serial of the certificate it presented. */
  const get = (): Promise<{ status: number; serial: string; proto: string }> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: port(),
          servername: HOST,
          headers: { host: HOST },
          ca: ca.certPem,
          agent: false,
        },
        (res) => {
          const serial = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber ?? '';
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, serial, proto: body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const serialOf = (p: KeyPairPem): string => new X509Certificate(p.certPem).serialNumber;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('gwtls');
    dir = weftdServingDir('weftd-gwtls');
    // the app behind the gateway echoes the scheme the gateway saw
    app = http.createServer((req, res) => res.end(String(req.headers['x-forwarded-proto'])));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const appPort = (app.address() as AddressInfo).port;
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gw', namespace: ns } });
    const selector = { istio: `ingress-${ns}` };
    await kube.create(pod(ns, 'gw-1', selector, 'gw'));
    await kube.create(pod(ns, 'gw-other', { istio: `other-${ns}` }, 'gw'));
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'public', namespace: ns },
      spec: {
        selector,
        servers: [
          {
            port: { number: 443, name: 'https', protocol: 'HTTPS' },
            hosts: [HOST],
            tls: { mode: 'SIMPLE', credentialName: CRED },
          },
        ],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'other', namespace: ns },
      spec: {
        selector: { istio: `other-${ns}` },
        servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'app', namespace: ns },
      spec: {
        hosts: ['app.internal.test'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'STATIC',
        endpoints: [{ address: '127.0.0.1', ports: { http: appPort } }],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'shop', namespace: ns },
      spec: {
        hosts: [HOST],
        gateways: ['public', 'other'],
        http: [{ route: [{ destination: { host: 'app.internal.test', port: { number: 80 } } }] }],
      },
    });
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      {
        mesh: structuredClone(DEFAULT_MESH),
        pingIntervalMs: 300,
        flags: { pushDebounceMs: 20, pushDebounceMaxMs: 200 },
        status: {
          lease: { namespace: ns, identity: 'weftd-gwtls' },
          debounce: { afterMs: 20, maxMs: 200 },
          leaseTiming: { retryPeriodMs: 200 },
        },
      },
    );
    await weftd.registry.hasSynced;
    const token = await requestToken(kube, ns, 'gw', { audiences: [TOKEN_AUDIENCE] });
    const address = `127.0.0.1:${weftd.discoveryPort}`;
    // the gateway: the proxy's own discovery client feeding a real ProxyServer (as `proxy gateway` does)
    gateway = new ProxyServer({
      listen: { host: '127.0.0.1', port: 0 },
      adminPort: null,
      metricsPort: null,
      healthPort: null,
      logger: log,
      onExit: () => undefined,
      accessLogSink: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    const tokenPath = join(dir, 'gw-1.token');
    writeFileSync(tokenPath, token);
    client = new DiscoveryClient({
      address,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath,
      request: { kind: 'gateway', namespace: ns, pod: 'gw-1' },
      log,
      onConfig: async (c) => {
        try {
          await gateway.apply(c);
        } catch (err) {
          gateway.rejected(err);
          throw err;
        }
      },
      pingIntervalMs: 300,
    });
    void client.run();
    other = new FakeProxy(address, dir, token, 'gateway', ns, 'gw-other');
  });

  after(async () => {
    client?.stop();
    other?.client.stop();
    await gateway?.shutdown();
    await weftd?.stop();
    app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the Secret reaches the gateway whose Gateway names it, and it terminates HTTPS with it', async () => {
    await kube.create(secret(first));
    await waitFor('the gateway serving the Secret', () =>
      gateway.current?.source.credentials?.[CRED]?.certChain === first.certPem ? true : null,
    );
    const r = await get();
    expect(r.status).to.equal(200);
    expect(r.serial).to.equal(serialOf(first));
    expect(r.proto, 'x-forwarded-proto from the real scheme').to.equal('https');
  });

  it('a gateway whose Gateways do not reference the Secret never gets it', async () => {
    const c = await other.until('the other gateway config', () => true);
    expect(c.credentials).to.equal(undefined);
    expect(JSON.stringify(c)).to.not.contain(CRED);
  });

  it('a rotated Secret is served without restarting the gateway', async () => {
    await kube.replace(secret(second));
    await waitFor('the rotated certificate', async () =>
      (await get()).serial === serialOf(second) ? true : null,
    );
  });

  it('a Secret turned bad keeps the previous certificate in use, counted', async () => {
    await kube.replace(secret({ certPem: first.certPem, keyPem: second.keyPem }));
    await waitFor('the bad credential pushed', () =>
      /does not match/.test(gateway.current?.source.credentials?.[CRED]?.error ?? '') ? true : null,
    );
    const r = await get();
    expect(r.status).to.equal(200);
    expect(r.serial).to.equal(serialOf(second));
    const refused =
      /weft_proxy_gateway_tls_credential_refused_total\{server="[^"]+\/public\[0\]"\} (\d+)/.exec(
        gateway.metrics.render(),
      );
    expect(Number(refused?.[1] ?? 0), gateway.metrics.render()).to.be.at.least(1);
  });

  it('the Gateway says so: ResolvedRefs False (InvalidCertificateRef), Ready False, Stalled', async () => {
    const conditionsOf = async (): Promise<Condition[]> => {
      const gw = await kube.get({ apiVersion: NET, kind: 'Gateway', namespace: ns, name: 'public' });
      return (gw?.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
    };
    const refs = await waitFor('ResolvedRefs False on the Gateway', async () =>
      (await conditionsOf()).find((c) => c.type === 'ResolvedRefs' && c.status === 'False'),
    );
    expect(refs.reason).to.equal('InvalidCertificateRef');
    expect(refs.message).to.match(
      new RegExp(`server servers\\[0\\] \\(port 443\\): tls.key of Secret ${ns}/${CRED} does not match`),
    );
    const all = await conditionsOf();
    expect(all.find((c) => c.type === 'Ready')).to.include({
      status: 'False',
      reason: 'InvalidCertificateRef',
    });
    expect(all.find((c) => c.type === 'Stalled')).to.include({ status: 'True' });
    // the Gateway that names no credential is not judged on it
    const other = await kube.get({ apiVersion: NET, kind: 'Gateway', namespace: ns, name: 'other' });
    const otherRefs = ((other?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find(
      (c) => c.type === 'ResolvedRefs',
    );
    expect(otherRefs?.status).to.equal('True');

    // mended: True again, without touching the Gateway
    await kube.replace(secret(first));
    await waitFor('ResolvedRefs True again', async () =>
      (await conditionsOf()).find((c) => c.type === 'ResolvedRefs' && c.status === 'True'),
    );
  });
});
