/**
 * weftd against a real API server: started in-process (random ports, its own serving cert from
 * pkg/certs), it watches a Service + EndpointSlice + VirtualService + DestinationRule the test
 * creates, and a proxy's stream over real TLS, authenticated with a real TokenRequest token,
 * carries the route; an edit pushes a new version, a no-op change pushes nothing, a token of
 * another namespace is refused, an unknown pod gets its config once it exists, a gateway pod
 * gets its Gateway's listener, the certificates endpoint signs for the token's identity, and
 * the monitoring port answers. One test also runs weftd as a process: SIGTERM exits 0.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Weftd } from '../../../controlplane/weftd.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import {
  CERTIFICATES_PATH,
  MessageDecoder,
  TOKEN_AUDIENCE,
  discoveryQuery,
  type DiscoveryMessage,
  type ProxyKind,
} from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { HttpListener, ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { freshNamespace, installCRDs, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { createReviews, csrPem, pod, requestToken, startTestWeftd } from './fixtures.js';

const HOUR = 3600_000;
const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';

/** One discovery stream: messages queue up until the test takes them. */
class Stream {
  readonly messages: DiscoveryMessage[] = [];
  private waiters: (() => void)[] = [];
  status = 0;
  body = '';
  ended = false;
  private close: () => void = () => undefined;

  static open(
    port: number,
    caPem: string,
    token: string,
    kind: ProxyKind,
    namespace: string,
    pod: string,
  ): Promise<Stream> {
    const s = new Stream();
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          servername: 'weftd.weft-system.svc',
          port,
          path: discoveryQuery({ kind, namespace, pod }),
          ca: caPem,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        },
        (res) => {
          s.status = res.statusCode ?? 0;
          const decoder = new MessageDecoder();
          res.on('data', (chunk: Buffer) => {
            if (s.status !== 200) s.body += chunk.toString();
            else s.messages.push(...decoder.push(chunk));
            s.wake();
          });
          res.on('end', () => {
            s.ended = true;
            s.wake();
          });
          resolve(s);
        },
      );
      req.on('error', reject);
      req.end();
      s.close = () => req.destroy();
      onCleanup(async () => s.close());
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next message that is not a ping. */
  async next(timeoutMs = 30_000): Promise<Exclude<DiscoveryMessage, { type: 'ping' }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.shift();
      if (m && m.type !== 'ping') return m;
      if (m) continue;
      if (this.ended) throw new Error('stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message in time');
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(left)]);
    }
  }

  async nextConfig(): Promise<{ version: string; config: ProxyConfig }> {
    const m = await this.next();
    if (m.type !== 'config') throw new Error(`expected a config, got ${JSON.stringify(m)}`);
    return m;
  }

  end(): void {
    this.close();
  }
}

function servingCert(): { ca: KeyPairPem; dir: string } {
  const now = new Date();
  const ca = createCA({ commonName: 'weftd-test-ca', ttlMs: HOUR, now });
  const leaf = issueServing(ca, {
    commonName: 'weftd',
    dnsNames: ['weftd.weft-system.svc'],
    ttlMs: HOUR,
    now,
  });
  const dir = mkdtempSync(join(tmpdir(), 'weftd-tls-'));
  writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'mesh.yaml'), 'trustDomain: cluster.local\ntelemetry:\n  accessLog: true\n');
  return { ca, dir };
}

/** A token for weftd's audience, bound to `boundPod` if given. */
const token = (kube: KubeClient, ns: string, sa: string, boundPod?: KubeObject): Promise<string> =>
  requestToken(kube, ns, sa, { audiences: [TOKEN_AUDIENCE], ...(boundPod ? { pod: boundPod } : {}) });

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

const vhostsOf = (c: ProxyConfig, listener = 0): HttpListener['virtualHosts'] =>
  (c.listeners[listener] as HttpListener).virtualHosts;

describe('weftd (in-process, real API server)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let caPem: string;
  let tlsDir: string;
  let ns: string;
  let other: string;
  let appToken: string;
  const host = (): string => `reviews.${ns}.svc.cluster.local`;

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('weftd');
    other = await freshNamespace('weftd-other');
    const { ca, dir } = servingCert();
    caPem = ca.certPem;
    tlsDir = dir;
    for (const [n, sa] of [
      [ns, 'app'],
      [other, 'app'],
    ] as const)
      await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: n } });
    // the proxy's pod, the service's two versions, its Service and EndpointSlice
    await kube.create(pod(ns, 'app-1', { app: 'client' }, 'app'));
    await createReviews(kube, ns);
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: ns },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
    });
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { pingIntervalMs: 300, configFile: join(dir, 'mesh.yaml'), configPollMs: 100 },
    );
    appToken = await token(kube, ns, 'app');
  });

  after(async () => {
    await weftd?.stop();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('/ready answers 200 once the informers have listed', async () => {
    const r = await waitFor('ready', async () => {
      const res = await get(weftd.monitoringPort, '/ready');
      return res.status === 200 ? res : null;
    });
    expect(JSON.parse(r.body)).to.include({ ready: true });
  });

  it('streams the route over TLS: VirtualService → DestinationRule subset → ready endpoint with the pod labels a proxy reads', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    expect(s.status).to.equal(200);
    const { version, config } = await s.nextConfig();
    expect(version).to.equal(config.version);
    const outbound = config.listeners[0] as HttpListener;
    expect([outbound.name, outbound.address, outbound.port]).to.deep.equal(['outbound', '0.0.0.0', 15001]);
    const vh = vhostsOf(config).find((v) => v.name === `${host()}:9080`);
    expect(vh?.domains).to.include.members(['reviews', `reviews.${ns}`, `${host()}:9080`]);
    const action = vh!.routes[0]!.action;
    expect(action).to.deep.include({ type: 'route' });
    const cluster = action.type === 'route' ? action.destinations[0]!.cluster : '';
    expect(cluster).to.equal(`outbound|9080|v2|${host()}`);
    expect(config.clusters.find((c) => c.name === cluster)?.endpoints).to.deep.equal([
      { address: '10.244.0.12', port: 8080, labels: { version: 'v2' } }, // app: no proxy reads it
    ]);
    expect(config.telemetry?.workload).to.deep.include({ namespace: ns, app: 'client' });
    s.end();
  });

  it('auto-mTLS: a pod that runs a sidecar gets ISTIO_MUTUAL with its service account as the expected identity', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    const name = `outbound|9080|v2|${host()}`;
    expect((await s.nextConfig()).config.clusters.find((c) => c.name === name)?.tls).to.equal(undefined);
    const key = { apiVersion: 'v1', kind: 'Pod', name: 'reviews-v2', namespace: ns };
    await kube.mergePatch(key, { metadata: { labels: { 'security.istio.io/tlsMode': 'istio' } } });
    const tls = await waitFor('ISTIO_MUTUAL on the v2 cluster', async () => {
      const { config } = await s.nextConfig();
      return config.clusters.find((c) => c.name === name)?.tls;
    });
    expect(tls).to.deep.equal({
      mode: 'ISTIO_MUTUAL',
      auto: true,
      sni: `outbound_.9080_.v2_.${host()}`,
      subjectAltNames: [`spiffe://cluster.local/ns/${ns}/sa/default`],
    });
    await kube.mergePatch(key, { metadata: { labels: { 'security.istio.io/tlsMode': null } } });
    s.end();
  });

  it('pushes a new version when the VirtualService changes, and nothing for a change that alters no config', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    const first = await s.nextConfig();
    const key = { apiVersion: NET, kind: 'VirtualService', name: 'reviews', namespace: ns };
    // an annotation changes nothing a config reads: the registry ignores it (no new generation,
    // so no push cycle of its own), and no message may follow it (the next one is the spec edit's)
    const generation = weftd.registry.generation;
    const ignored = weftd.registry.ignoredEvents;
    await kube.mergePatch(key, { metadata: { annotations: { 'weft.dev/test': 'noop' } } });
    await waitFor('the no-op change ignored', () => weftd.registry.ignoredEvents > ignored);
    expect(weftd.registry.generation).to.equal(generation);
    await kube.mergePatch(key, {
      spec: { http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
    });
    const second = await s.nextConfig();
    expect(second.version).to.not.equal(first.version);
    const action = vhostsOf(second.config).find((v) => v.name === `${host()}:9080`)!.routes[0]!.action;
    expect(action.type === 'route' && action.destinations[0]!.cluster).to.equal(`outbound|9080|v1|${host()}`);
    s.end();
  });

  it('ServiceEntries: WorkloadEntries are watched as workloadSelector endpoints, exportTo hides, DNS becomes STRICT_DNS', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    await s.nextConfig();
    const port80 = [{ number: 80, name: 'http', protocol: 'HTTP' }];
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'vms', namespace: ns },
      spec: {
        hosts: ['vms.example.com'],
        ports: port80,
        resolution: 'STATIC',
        location: 'MESH_INTERNAL',
        workloadSelector: { labels: { app: 'vm' } },
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'dns', namespace: ns },
      spec: { hosts: ['api.example.com'], ports: port80, resolution: 'DNS' },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'private', namespace: other },
      spec: { hosts: ['private.example.com'], ports: port80, resolution: 'DNS', exportTo: ['.'] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'WorkloadEntry',
      metadata: { name: 'vm-1', namespace: ns },
      spec: { address: '10.9.0.1', labels: { app: 'vm' } },
    });
    const config = await waitFor('the entries in the config', async () => {
      const { config: c } = await s.nextConfig();
      return c.clusters.some((x) => x.service === 'vms.example.com' && x.endpoints.length === 1) &&
        c.clusters.some((x) => x.service === 'api.example.com')
        ? c
        : null;
    });
    expect(
      config.clusters.find((c) => c.service === 'vms.example.com')!.endpoints.map((e) => e.address),
    ).to.deep.equal(['10.9.0.1']);
    expect(config.clusters.find((c) => c.service === 'api.example.com')).to.deep.include({
      type: 'STRICT_DNS',
      endpoints: [{ address: 'api.example.com', port: 80 }],
    });
    expect(config.clusters.some((c) => c.service === 'private.example.com')).to.equal(false);
    s.end();
  });

  it('watches PeerAuthentication: a STRICT policy selecting the pod reaches its stream as the inbound block, with the deciding policy', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    const first = await s.nextConfig();
    expect(first.config.inbound?.mtls).to.deep.equal({ mode: 'PERMISSIVE', policy: 'Mesh spec.mtls.mode' });
    await kube.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'client-strict', namespace: ns },
      spec: {
        selector: { matchLabels: { app: 'client' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '8080': { mode: 'DISABLE' } },
      },
    });
    const second = await s.nextConfig();
    expect(second.config.inbound).to.deep.equal({
      mtls: { mode: 'STRICT', policy: `PeerAuthentication ${ns}/client-strict` },
      ports: [
        {
          port: 8080,
          mtls: { mode: 'DISABLE', policy: `PeerAuthentication ${ns}/client-strict portLevelMtls[8080]` },
        },
      ],
    });
    await kube.delete({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      name: 'client-strict',
      namespace: ns,
    });
    expect((await s.nextConfig()).config.inbound?.mtls.mode, 'back to the mesh default').to.equal(
      'PERMISSIVE',
    );
    s.end();
  });

  it('refuses a token of another namespace (403), a missing token (401) and a pod-bound token used for another pod (403)', async () => {
    const foreign = await Stream.open(
      weftd.discoveryPort,
      caPem,
      await token(kube, other, 'app'),
      'sidecar',
      ns,
      'app-1',
    );
    expect(foreign.status).to.equal(403);
    expect(JSON.parse(foreign.body)).to.include({ code: 'WEFT_FORBIDDEN' });
    expect(foreign.body).to.contain(`namespace ${ns}`);
    const none = await Stream.open(weftd.discoveryPort, caPem, '', 'sidecar', ns, 'app-1');
    expect(none.status).to.equal(401);
    expect(JSON.parse(none.body)).to.include({ code: 'WEFT_UNAUTHENTICATED' });
    const appPod = await kube.get({ apiVersion: 'v1', kind: 'Pod', name: 'app-1', namespace: ns });
    const bound = await token(kube, ns, 'app', appPod!);
    const wrongPod = await Stream.open(weftd.discoveryPort, caPem, bound, 'sidecar', ns, 'reviews-v1');
    expect(wrongPod.status).to.equal(403);
    expect(wrongPod.body).to.contain('bound to pod');
    const rightPod = await Stream.open(weftd.discoveryPort, caPem, bound, 'sidecar', ns, 'app-1');
    expect(rightPod.status).to.equal(200);
    expect((await rightPod.next()).type).to.equal('config');
    rightPod.end();
  });

  it('tells a pod it does not know yet, keeps the stream, and sends its config once the pod exists', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'late-1');
    expect(s.status).to.equal(200);
    const first = await s.next();
    expect(first).to.deep.include({ type: 'error', code: 'WEFT_POD_UNKNOWN' });
    await kube.create(pod(ns, 'late-1', { app: 'late' }, 'app'));
    const { config } = await s.nextConfig();
    expect(config.telemetry?.workload).to.deep.include({ app: 'late' });
    s.end();
  });

  it('gives a gateway pod a listener per Gateway server port (at its Service target port) with the bound VirtualService', async () => {
    const selector = { istio: `ingress-${ns}` };
    await kube.create(pod(ns, 'ingress-1', selector, 'app'));
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ingress', namespace: ns },
      spec: { selector, ports: [{ name: 'http2', port: 80, targetPort: 8080 }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'public', namespace: ns },
      spec: {
        selector,
        servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*.example.com'] }],
      },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'www', namespace: ns },
      spec: {
        hosts: ['www.example.com'],
        gateways: ['public'],
        http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
      },
    });
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'gateway', ns, 'ingress-1');
    const config = await waitFor('the gateway listener with its virtual host', async () => {
      const { config: c } = await s.nextConfig();
      return vhostsOf(c)?.some((v) => v.name === 'www.example.com:80') ? c : null;
    });
    const l = config.listeners[0] as HttpListener;
    // clients reach Service port 80; the pod listens on the target port, as Istio binds it
    expect([l.name, l.address, l.port]).to.deep.equal(['gateway-8080', '0.0.0.0', 8080]);
    expect(l.virtualHosts[0]!.domains).to.deep.equal(['www.example.com', 'www.example.com:80']);
    expect(config.clusters.map((c) => c.name)).to.deep.equal([`outbound|9080|v1|${host()}`]);
    s.end();
  });

  it('signs a CSR for the token identity once the root CA Secret exists', async () => {
    const now = new Date();
    const root = createCA({ commonName: 'weft-root', ttlMs: 24 * HOUR, now });
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await kube.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'weft-root-ca', namespace: ns },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(root.certPem), 'tls.key': b64(root.keyPem), 'ca.crt': b64(root.certPem) },
    });
    const answer = await waitFor('a signed certificate', async () => {
      const r = await postCertificate(weftd.discoveryPort, caPem, appToken, { csr: csrPem() });
      return r.status === 200 ? (JSON.parse(r.body) as { certChain: string[]; rootCert: string }) : null;
    });
    const leaf = new X509Certificate(answer.certChain[0]!);
    expect(leaf.subjectAltName).to.contain(`spiffe://cluster.local/ns/${ns}/sa/app`);
    const refused = await postCertificate(weftd.discoveryPort, caPem, 'not-a-token', { csr: csrPem() });
    expect(refused.status).to.equal(401);
    // a CSR for another identity, a token for another audience: refused and counted, weftd stays up
    const admin = `spiffe://cluster.local/ns/kube-system/sa/admin`;
    const other = await postCertificate(weftd.discoveryPort, caPem, appToken, {
      csr: csrPem('ECDSA_P256', admin),
    });
    expect(other.status).to.equal(400);
    expect(other.body).to.contain('but the token proves');
    const apiToken = await requestToken(kube, ns, 'app'); // the API server's own audience
    const audience = await postCertificate(weftd.discoveryPort, caPem, apiToken, { csr: csrPem() });
    expect(audience.status).to.equal(401);
    const metrics = await get(weftd.monitoringPort, '/metrics');
    expect(metrics.body).to.match(/citadel_server_csr_sign_err_count\{error_type="identity"\} 1/);
    expect(metrics.body).to.match(/citadel_server_authentication_failure_count \d+/);
    expect(metrics.body).to.not.match(/citadel_server_authentication_failure_count 0/);
    expect(metrics.body).to.match(/citadel_server_success_cert_issuance_count [1-9]/);
    expect(metrics.body).to.match(/citadel_server_root_cert_expiry_timestamp [1-9]/);
  });

  it('applies a changed mesh.yaml without a restart, and keeps the old settings when the file breaks', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    const first = await s.nextConfig();
    expect(first.config.telemetry?.accessLog).to.equal(true);
    const file = join(tlsDir, 'mesh.yaml');
    writeFileSync(file, 'telemetry: {accessLog: "maybe"}\n'); // invalid: ignored
    await sleep(300); // three polls; nothing may arrive, and the valid change below must still apply
    writeFileSync(file, 'trustDomain: cluster.local\nworkloadCertTTL: 7m\ntelemetry:\n  accessLog: false\n');
    const second = await s.nextConfig();
    expect(second.config.telemetry?.accessLog).to.equal(false);
    expect(second.version).to.not.equal(first.version);
    // the Mesh's workloadCertTTL drives the next certificate, without a restart
    const r = await postCertificate(weftd.discoveryPort, caPem, appToken, { csr: csrPem() });
    expect(r.status, r.body).to.equal(200);
    const leaf = new X509Certificate((JSON.parse(r.body) as { certChain: string[] }).certChain[0]!);
    const lifeMs = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
    expect(lifeMs).to.equal(7 * 60_000 + 5 * 60_000); // 7m TTL + the 5 min clock-skew backdate
    s.end();
  });

  it('/metrics, /debug/config and /debug/connections answer', async () => {
    const s = await Stream.open(weftd.discoveryPort, caPem, appToken, 'sidecar', ns, 'app-1');
    await s.nextConfig();
    const metrics = await get(weftd.monitoringPort, '/metrics');
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.match(/^pilot_xds\{type="sidecar"\} [1-9]/m);
    expect(metrics.body).to.match(/^pilot_xds_pushes\{type="config"\} [1-9]/m);
    expect(metrics.body).to.contain('pilot_proxy_convergence_time_bucket');
    const conns = JSON.parse((await get(weftd.monitoringPort, '/debug/connections')).body) as {
      connections: { namespace: string; pod: string; state: string }[];
    };
    expect(conns.connections).to.deep.include.members([
      {
        ...conns.connections.find((c) => c.pod === 'app-1')!,
        namespace: ns,
        pod: 'app-1',
        state: 'configured',
      },
    ]);
    const dbg = await get(weftd.monitoringPort, `/debug/config?namespace=${ns}&pod=app-1`);
    expect(dbg.status).to.equal(200);
    expect(JSON.parse(dbg.body)).to.include({ kind: 'sidecar' });
    expect((await get(weftd.monitoringPort, `/debug/config?namespace=${ns}&pod=nope`)).status).to.equal(404);
    s.end();
  });

  it('runs as a process: serves, reports ready, and on SIGTERM ends the streams and exits 0', async () => {
    const child = spawn(
      process.execPath, // the pinned Node; npx would not forward SIGTERM to weftd
      [
        '--import',
        'tsx',
        'controlplane/main.ts',
        `--kubeconfig=${testCluster().kubeconfigPath}`,
        `--tls-dir=${tlsDir}`,
        '--host=127.0.0.1',
        '--port=0',
        '--monitoring-port=0',
        `--ca-secret=${ns}/weft-root-ca`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } },
    );
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    onCleanup(async () => void child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const ports = await waitFor('the listening line', () => /listening (\d+) (\d+)/.exec(out), 60_000);
    await waitFor('ready', async () => (await get(Number(ports[2]), '/ready')).status === 200);
    const s = await Stream.open(Number(ports[1]), caPem, appToken, 'sidecar', ns, 'app-1');
    expect((await s.next()).type).to.equal('config');
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    await waitFor('the stream to end', () => s.ended);
  });
});

function postCertificate(
  port: number,
  caPem: string,
  tok: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        servername: 'weftd.weft-system.svc',
        port,
        path: CERTIFICATES_PATH,
        method: 'POST',
        ca: caPem,
        headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
