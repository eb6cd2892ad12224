/**
 * DestinationRule `tls.mode: MUTUAL` + `credentialName`, end to end on loopback with a real API
 * server: weftd (in-process) reads the Secret the DestinationRule names from the gateway's
 * namespace and puts it in that gateway's config; an in-process proxy applies the config and
 * originates TLS to a real upstream that requires a client certificate from the client CA.
 *
 * Without the Secret the cluster fails closed (503 UF with the reason; the upstream never sees a
 * connection, let alone plaintext); with it the request passes with the Secret's certificate; a
 * Secret turned bad fails closed again. The Secret's key never shows in /debug/config (what
 * `weftctl proxy-config` reads) nor in the proxy's /config_dump, and
 * `weft_weftd_credentials{state}` counts usable and unusable credentials.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Weftd } from '../../../controlplane/weftd.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { REDACTED, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { leafWithSans } from '../proxy/mesh-identity.js';
import { request, startProxy, type Started } from '../proxy/helpers.js';
import { clientAs, pod, startTestWeftd } from './fixtures.js';
import { SecretCredentials } from '../../../controlplane/credentials.js';

const HOUR = 3600_000;
const NET = 'networking.istio.io/v1';
const HOST = 'secure.example.test';
const CRED = 'client-cred';
const log = createLogger('test', { silent: true });

describe('DestinationRule MUTUAL credentialName: Secret → weftd → gateway → upstream (real API server, loopback TLS)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let ns: string;
  let dir: string;
  let upstream: HttpsServer;
  let proxy: Started | null = null;
  const now = new Date();
  const serverCa = createCA({ commonName: 'upstream-ca', ttlMs: HOUR, now });
  const clientCa = createCA({ commonName: 'client-ca', ttlMs: HOUR, now });
  const client: KeyPairPem = leafWithSans(clientCa, [{ type: 2, value: 'gateway.client.test' }]);
  /** Per TLS connection the upstream accepted: the client certificate's SANs. */
  const peers: string[] = [];
  let connections = 0;

  const config = async (pred: (c: ProxyConfig) => boolean): Promise<ProxyConfig> =>
    waitFor('the gateway config', () => {
      const c = weftd.discovery.configFor('gateway', ns, 'gw-1')?.config;
      return c !== undefined && pred(c) ? c : null;
    });
  const credentialError = (c: ProxyConfig): string | undefined => c.credentials?.[CRED]?.error;
  const tlsSecret = (data: Record<string, string>): KubeObject =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CRED, namespace: ns },
      type: 'kubernetes.io/tls',
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    }) as KubeObject;
  const get = async (port: number, path: string): Promise<string> =>
    (await fetch(`http://127.0.0.1:${port}${path}`)).text();
  /** The proxy's /clusters view of the secure cluster: why its last TLS connection failed. */
  const lastTlsError = async (p: Started): Promise<string | undefined> => {
    const body = JSON.parse(await get(p.admin, '/clusters')) as {
      clusters: { name: string; tls?: { lastError?: string } }[];
    };
    return body.clusters.find((c) => c.name.endsWith(`|${HOST}`))?.tls?.lastError;
  };

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('cred');
    // the upstream: TLS for secure.example.test, a client certificate from clientCa required
    const serving = issueServing(serverCa, { commonName: HOST, dnsNames: [HOST], ttlMs: HOUR, now });
    upstream = createHttpsServer(
      {
        key: serving.keyPem,
        cert: serving.certPem,
        ca: clientCa.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        peers.push((req.socket as TLSSocket).getPeerCertificate().subjectaltname ?? '');
        res.end('secure');
      },
    );
    upstream.on('connection', () => connections++);
    upstream.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as AddressInfo).port;

    // weftd's serving certificate (files, as in a pod)
    dir = mkdtempSync(join(tmpdir(), 'weftd-cred-'));
    const wca = createCA({ commonName: 'weftd-test-ca', ttlMs: HOUR, now });
    const leaf = issueServing(wca, {
      commonName: 'weftd',
      dnsNames: ['weftd.weft-system.svc'],
      ttlMs: HOUR,
      now,
    });
    writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem);

    const selector = { istio: `egress-${ns}` };
    await kube.create(pod(ns, 'gw-1', selector));
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'public', namespace: ns },
      spec: { selector, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'secure', namespace: ns },
      spec: {
        hosts: [HOST],
        gateways: ['public'],
        http: [{ route: [{ destination: { host: HOST, port: { number: 443 } } }] }],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'secure', namespace: ns },
      spec: {
        hosts: [HOST],
        ports: [{ number: 443, name: 'http', protocol: 'HTTP' }],
        resolution: 'STATIC',
        location: 'MESH_EXTERNAL',
        endpoints: [{ address: '127.0.0.1', ports: { http: upstreamPort } }],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'DestinationRule',
      metadata: { name: 'secure', namespace: ns },
      spec: { host: HOST, trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: CRED, sni: HOST } } },
    });
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { flags: { pushDebounceMs: 20, pushDebounceMaxMs: 200 }, workloadCa: false },
    );
    await weftd.registry.hasSynced;
  });

  afterEach(async () => {
    await proxy?.stop();
    proxy = null;
  });

  after(async () => {
    await weftd?.stop();
    upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('no Secret: the gateway gets the reason, the cluster fails closed (503 UF), the upstream sees no connection', async () => {
    const c = await config((x) => credentialError(x) === `Secret ${ns}/${CRED} not found`);
    expect(c.clusters.find((x) => x.service === HOST)?.tls).to.include({
      mode: 'MUTUAL',
      credentialName: CRED,
    });
    proxy = await startProxy(c);
    const before = connections;
    const r = await request(proxy.port, { host: HOST });
    expect(r.status).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.match(/^UF\b/);
    // the client learns a TLS failure, not Secret names; the operator reads the reason in /clusters
    expect(r.body).to.contain('(ETLS_HANDSHAKE)');
    expect(r.body).to.not.contain(CRED);
    expect(await lastTlsError(proxy)).to.equal(
      `TLS settings unusable: tls.credentialName ${CRED} (${ns}/${CRED}): Secret ${ns}/${CRED} not found`,
    );
    expect(connections, 'not a byte went to the upstream').to.equal(before);
    const stats = await get(proxy.admin, '/stats');
    expect(stats).to.match(/\.ssl\.connection_error: [1-9]/);
    const metrics = await get(weftd.monitoringPort, '/metrics');
    expect(metrics).to.match(/^weft_weftd_credentials\{state="unusable"\} 1$/m);
  });

  it('the Secret appears: weftd pushes, the gateway presents its certificate and the upstream accepts it', async () => {
    const cycles = weftd.discovery.pushCycles;
    await kube.create(
      tlsSecret({ 'tls.crt': client.certPem, 'tls.key': client.keyPem, 'ca.crt': serverCa.certPem }),
    );
    const c = await config((x) => x.credentials?.[CRED] !== undefined && credentialError(x) === undefined);
    await waitFor('a push cycle after the Secret was created', () => weftd.discovery.pushCycles > cycles);
    expect(c.credentials![CRED]).to.deep.equal({
      source: `${ns}/${CRED}`,
      certChain: client.certPem,
      privateKey: client.keyPem,
      caCertificates: serverCa.certPem,
    });
    proxy = await startProxy(c);
    const r = await request(proxy.port, { host: HOST });
    expect(r.status, r.body).to.equal(200);
    expect(r.body).to.equal('secure');
    expect(peers.at(-1)).to.equal('DNS:gateway.client.test');
    expect(await get(weftd.monitoringPort, '/metrics')).to.match(
      /^weft_weftd_credentials\{state="usable"\} 1$/m,
    );
  });

  it('the private key is redacted in /debug/config (weftctl proxy-config) and the proxy’s /config_dump', async () => {
    const keyBody = client.keyPem.split('\n')[1]!;
    const dbg = await get(weftd.monitoringPort, `/debug/config?namespace=${ns}&pod=gw-1&kind=gateway`);
    const shown = (JSON.parse(dbg) as { config: ProxyConfig }).config.credentials![CRED]!;
    expect(shown.privateKey).to.equal(REDACTED);
    expect(shown.certChain).to.equal(client.certPem);
    expect(dbg).to.not.contain(keyBody);
    proxy = await startProxy(await config((x) => credentialError(x) === undefined));
    const dump = await get(proxy.admin, '/config_dump');
    expect(dump).to.contain(REDACTED);
    expect(dump).to.not.contain(keyBody);
  });

  it('RBAC: a weftd that may not read the Secret says so (403); a Role with resourceNames for it is enough', async () => {
    await kube.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'weftd-lite', namespace: ns },
    });
    const limited = await clientAs(kube, ns, 'weftd-lite');
    let changes = 0;
    const store = new SecretCredentials(limited, log, () => changes++);
    try {
      const forbidden = await waitFor('the 403 reason', () => {
        const e = store.get(ns, CRED).error ?? '';
        return e.includes('(403)') ? e : null;
      });
      expect(forbidden).to.equal(
        `weftd may not read Secret ${ns}/${CRED} (403): grant its service account get/list/watch on it`,
      );
      // exactly this Secret (its CA is in it, so no -cacert is needed)
      await kube.create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'credential-reader', namespace: ns },
        rules: [
          { apiGroups: [''], resources: ['secrets'], resourceNames: [CRED], verbs: ['get', 'list', 'watch'] },
        ],
      } as KubeObject);
      await kube.create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'credential-reader', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'credential-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'weftd-lite', namespace: ns }],
      } as KubeObject);
      const usable = await waitFor(
        'the credential once the Role allows it (the informer retries with backoff)',
        () => {
          const c = store.get(ns, CRED);
          return c.error === undefined ? c : null;
        },
        90_000,
      );
      expect(usable.certChain).to.equal(client.certPem);
      expect(changes).to.be.greaterThan(0);
      expect(store.watching()).to.deep.equal([`${ns}/${CRED}`]);
    } finally {
      store.stop();
    }
  });

  it('a Secret turned bad (a key of another certificate): fails closed again, with the reason and no key material', async () => {
    const other = leafWithSans(clientCa, [{ type: 2, value: 'other.client.test' }]);
    await kube.replace({
      ...tlsSecret({ 'tls.crt': client.certPem, 'tls.key': other.keyPem, 'ca.crt': serverCa.certPem }),
    });
    const c = await config((x) => /does not match/.test(credentialError(x) ?? ''));
    expect(c.credentials![CRED]!.privateKey).to.equal(undefined);
    proxy = await startProxy(c);
    const before = connections;
    const r = await request(proxy.port, { host: HOST });
    expect(r.status).to.equal(503);
    const reason = await lastTlsError(proxy);
    expect(reason).to.contain(`tls.key of Secret ${ns}/${CRED} does not match the certificate in tls.crt`);
    expect(reason).to.not.contain('PRIVATE KEY');
    expect(connections).to.equal(before);
  });
});
