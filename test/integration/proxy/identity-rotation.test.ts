/**
 * Issue #13 "Prove it": certificate rotation under load loses no request.
 *
 * Everything real except the node: weftd in-process against the test API server (its CA reads
 * the root CA Secret, signs with the mesh.yaml `workloadCertTTL`, publishes ConfigMap
 * `weft-ca-root-cert`), and two `proxy sidecar` agents in-process (startAgent: workload identity,
 * outbound capture, inbound listener terminating mesh mTLS) configured by that weftd from real
 * pods, a Service and an EndpointSlice. A stand-in kubelet copies the ConfigMap into each
 * proxy's root file, as the volume mount does. Loopback only: the client app sends to the client
 * sidecar's outbound capture (routed by Host), whose endpoint is the server sidecar's inbound
 * capture (ISTIO_MUTUAL by auto-mTLS), which forwards to the app.
 *
 * 1. Workload rotation: TTL 4 s, so both sidecars renew every ~2 s; 200 req/s open loop until
 *    both serials changed 3 times (bounded in time and count); every request answered 200.
 *    The DestinationRule caps requests per connection so new mTLS connections (new handshakes
 *    with whatever certificate is current) are made all along, not just pooled old ones.
 * 2. Root rotation, the procedure of docs/identity-rotation.md under the same load: both roots
 *    in `ca.crt`, then the signing key switched (and weftd's serving certificate re-issued, the
 *    operator's part), then the old root removed; no request lost, and afterwards a peer with a
 *    certificate of the old root is refused.
 *
 *   npx mocha --timeout 180000 --require test/support/cluster-hooks.ts test/integration/proxy/identity-rotation.test.ts
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { loadMeshSettings } from '../../../controlplane/flags.js';
import { startWeftd, type Weftd } from '../../../controlplane/weftd.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY, TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { CertReloader } from '../../../pkg/tls/index.js';
import type { IdentitySummary } from '../../../proxy/identity/workload.js';
import { agentSettings, startAgent } from '../../../proxy/sidecar/agent.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { requestToken } from '../controlplane/fixtures.js';
import { upstream, type Upstream } from './helpers.js';
import { workloadCert } from './mesh-identity.js';

const HOUR = 3600_000;
const log = createLogger('rotation-test', { silent: true });
/** The load: requests per second, open loop (sent on schedule whether or not answers came back). */
const RATE = 200;
/** Bounds of one load run. */
const MAX_RUN_MS = 60_000;
const MAX_REQUESTS = RATE * 60;
const REQUEST_TIMEOUT_MS = 10_000;

type Agent = Awaited<ReturnType<typeof startAgent>>;

interface LoadResult {
  sent: number;
  ok: number;
  /** Failure description → count (status and body, or the client error). */
  failures: Map<string, number>;
}

/**
 * Sends GET requests at `RATE` per second to `port` with `host` until `done()` (checked every
 * tick) or the bounds, then waits for the answers. A 200 with body `expect` is a success.
 */
async function drive(
  port: number,
  host: string,
  expectBody: string,
  done: () => boolean,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const result: LoadResult = { sent: 0, ok: 0, failures: new Map() };
  const fail = (why: string): void => void result.failures.set(why, (result.failures.get(why) ?? 0) + 1);
  const inFlight = new Set<Promise<void>>();
  const one = (n: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: `/load/${n}`, headers: { host }, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            fail(`response error: ${err.message}`);
            resolve();
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString();
            if (res.statusCode === 200 && body === expectBody) result.ok++;
            else fail(`HTTP ${res.statusCode ?? 0} ${body.slice(0, 120)}`);
            resolve();
          });
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('no answer in time')));
      req.on('error', (err) => {
        fail(`request error: ${err.message}`);
        resolve();
      });
      req.end();
    });
  const start = Date.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = Date.now() - start;
      if (done() || elapsed > MAX_RUN_MS || result.sent >= MAX_REQUESTS) {
        clearInterval(timer);
        resolve();
        return;
      }
      // catch up with the schedule, but never more than a burst of 50 at once
      const due = Math.min(50, Math.floor((elapsed * RATE) / 1000) - result.sent);
      for (let i = 0; i < due; i++) {
        const p = one(result.sent++);
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
      }
    }, 5);
  });
  await Promise.all([...inFlight]);
  agent.destroy();
  return result;
}

async function certs(agent: Agent): Promise<IdentitySummary> {
  const res = await fetch(`http://127.0.0.1:${agent.ports.admin}/certs`);
  return (await res.json()) as IdentitySummary;
}

/**
 * Polls both proxies' `/certs` every 50 ms: the distinct certificates each held, in order, as
 * serials and as SHA-256 fingerprints.
 */
function watchSerials(agents: Record<string, Agent>): {
  serials: Record<string, string[]>;
  fingerprints: Record<string, string[]>;
  latest: Record<string, IdentitySummary | undefined>;
  stop(): void;
} {
  const serials: Record<string, string[]> = {};
  const fingerprints: Record<string, string[]> = {};
  const latest: Record<string, IdentitySummary | undefined> = {};
  let stopped = false;
  const poll = async (): Promise<void> => {
    while (!stopped) {
      for (const [name, a] of Object.entries(agents)) {
        try {
          const s = await certs(a);
          latest[name] = s;
          const serial = s.certificate?.serialNumber;
          const seen = (serials[name] ??= []);
          if (serial !== undefined && seen[seen.length - 1] !== serial) {
            seen.push(serial);
            (fingerprints[name] ??= []).push(s.certificate!.fingerprint256);
          }
        } catch {
          // the next poll tries again; a proxy that never answers fails the waits below
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  void poll();
  return {
    serials,
    fingerprints,
    latest,
    stop: () => {
      stopped = true;
    },
  };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe('workload and root certificate rotation under load (real weftd CA, two sidecar agents)', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let ns: string;
  let weftd: Weftd;
  let dir: string;
  let app: Upstream;
  let client: Agent;
  let server: Agent;
  let root1: KeyPairPem;
  const xfccHashes = new Set<string>();
  /** Undone in reverse order when this file's tests end (agents renewing every 2 s must not outlive them). */
  const cleanups: (() => Promise<void>)[] = [];
  const host = (): string => `reviews.${ns}.svc.cluster.local:${app.port}`;
  const caSecret = (tlsPair: KeyPairPem, caCrt: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'weft-root-ca', namespace: ns },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(tlsPair.certPem), 'tls.key': b64(tlsPair.keyPem), 'ca.crt': b64(caCrt) },
  });
  /** The operator's part of a signing switch: weftd's serving certificate from the signing CA. */
  const issueWeftdServing = (ca: KeyPairPem): void => {
    const leaf = issueServing(ca, {
      commonName: 'weftd',
      dnsNames: ['localhost'],
      ttlMs: HOUR,
      now: new Date(),
    });
    // key first, then the certificate: CertReloader checks the pair and retries a mismatch
    writeFileSync(path.join(dir, 'tls.key.tmp'), leaf.keyPem);
    writeFileSync(path.join(dir, 'tls.crt.tmp'), leaf.certPem);
    renameSync(path.join(dir, 'tls.key.tmp'), path.join(dir, 'tls.key'));
    renameSync(path.join(dir, 'tls.crt.tmp'), path.join(dir, 'tls.crt'));
  };

  after(async () => {
    for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
  });

  before(async function () {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('rotation');
    dir = mkdtempSync(path.join(tmpdir(), 'weft-rotation-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    root1 = createCA({ commonName: 'weft rotation root 1', ttlMs: 24 * HOUR, now: new Date() });
    await kube.create(caSecret(root1, root1.certPem));
    issueWeftdServing(root1);
    const meshFile = path.join(dir, 'mesh.yaml');
    // no access log: 200 req/s through two proxies would flood the test output
    writeFileSync(
      meshFile,
      'trustDomain: cluster.local\nworkloadCertTTL: 4s\ntelemetry:\n  accessLog: false\n',
    );
    const tlsReloader = new CertReloader(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'), log, 200);
    weftd = await startWeftd({
      flags: {
        host: '127.0.0.1',
        port: 0,
        monitoringPort: 0,
        domainSuffix: 'cluster.local',
        caSecret: { namespace: ns, name: 'weft-root-ca' },
        pushDebounceMs: 50,
        pushDebounceMaxMs: 500,
      },
      mesh: loadMeshSettings(meshFile),
      kube,
      tls: tlsReloader,
      log,
      defaultMetrics: false,
      configFile: meshFile,
      configPollMs: 200,
    });
    cleanups.push(() => weftd.stop());

    // the app behind the server sidecar: answers after 20 ms, so at 200 req/s about four requests
    // are always in flight, and a rotation that drops connections loses some
    app = await upstream('reviews');
    cleanups.push(() => app.close());
    app.handler = (req, res) => {
      const xfcc = req.headers['x-forwarded-client-cert'];
      const hash = typeof xfcc === 'string' ? /Hash=([0-9a-f]+)/.exec(xfcc)?.[1] : undefined;
      if (hash !== undefined) xfccHashes.add(hash);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('reviews');
      }, 20);
    };

    // the pods weftd knows (never scheduled: the test cluster has no node), meshed
    const meshed = { 'security.istio.io/tlsMode': 'istio' };
    const pods: Record<string, KubeObject> = {};
    for (const [name, sa, labels] of [
      ['productpage-1', 'productpage', { app: 'productpage', ...meshed }],
      ['reviews-1', 'reviews', { app: 'reviews', ...meshed }],
    ] as const) {
      await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } });
      pods[name] = await kube.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: ns, labels },
        spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'busybox:1.36' }] },
      });
    }

    // a stand-in kubelet: the root ConfigMap weftd publishes, copied atomically into the file
    const rootFile = path.join(dir, 'root-cert.pem');
    let lastRoot = '';
    const syncRoot = async (): Promise<boolean> => {
      const cm = (await kube
        .get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: ROOT_CERT_CONFIGMAP })
        .catch(() => null)) as { data?: Record<string, string> } | null;
      const pem = cm?.data?.[ROOT_CERT_KEY];
      if (pem === undefined) return false;
      if (pem !== lastRoot) {
        writeFileSync(`${rootFile}.tmp`, pem);
        renameSync(`${rootFile}.tmp`, rootFile);
        lastRoot = pem;
      }
      return true;
    };
    await waitFor('weftd to publish the root ConfigMap', syncRoot);
    const kubelet = setInterval(() => void syncRoot(), 200);
    cleanups.push(async () => clearInterval(kubelet));

    const start = async (pod: string, sa: string): Promise<Agent> => {
      const tokenPath = path.join(dir, `${pod}.token`);
      const token = await requestToken(kube, ns, sa, { audiences: [TOKEN_AUDIENCE], pod: pods[pod]! });
      writeFileSync(tokenPath, token);
      const settings = agentSettings(
        'sidecar',
        [
          ...['--discovery-address', `localhost:${weftd.discoveryPort}`, '--ca-root', rootFile],
          ...['--token', tokenPath, '--namespace', ns, '--pod', pod, '--app-host', '127.0.0.1'],
          ...['--bind', '127.0.0.1', '--outbound-port', '0', '--inbound-port', '0'],
          ...['--admin-port', '0', '--metrics-port', '0', '--health-port', '0', '--drain-seconds', '1'],
        ],
        {},
      );
      const agent = await startAgent(settings, log.child({ pod }));
      cleanups.push(() => agent.stop());
      return agent;
    };
    server = await start('reviews-1', 'reviews');
    client = await start('productpage-1', 'productpage');

    // the service at the app's port, its one endpoint the server sidecar's inbound capture (where
    // iptables would deliver): a ServiceEntry, since an EndpointSlice may not name 127.0.0.1.
    // ISTIO_MUTUAL with the server's identity, as auto-mTLS gives a pod with a sidecar; every
    // 20th request on a connection closes it, so new mTLS connections are made all along
    await kube.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'reviews', namespace: ns },
      spec: {
        hosts: [`reviews.${ns}.svc.cluster.local`],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: app.port, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.1', ports: { http: server.ports.inbound! } }],
      },
    });
    await kube.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: ns },
      spec: {
        host: `reviews.${ns}.svc.cluster.local`,
        trafficPolicy: {
          connectionPool: { http: { maxRequestsPerConnection: 20 } },
          tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: [`spiffe://cluster.local/ns/${ns}/sa/reviews`] },
        },
      },
    });

    for (const a of [server, client])
      await waitFor('the sidecar to be ready (certificate and config)', async () => {
        const r = await fetch(`http://127.0.0.1:${a.ports.health}/healthz/ready`);
        return r.status === 200;
      });
    // the route works over mesh mTLS before the load starts
    await waitFor('a first request through both sidecars over mTLS', async () => {
      xfccHashes.clear();
      const one = await new Promise<number>((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: client.ports.outbound,
            path: '/',
            headers: { host: host() },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', () => resolve(0));
        req.end();
      });
      return one === 200 && xfccHashes.size === 1;
    });
  });

  /**
   * A mesh client of the server sidecar's inbound with `leaf` (trusting `ca`): the certificate
   * the server presented, and the status line of the answer (or how the connection ended).
   */
  const probeInbound = (leaf: KeyPairPem, ca: string): Promise<{ presented?: string; outcome: string }> =>
    new Promise((resolve) => {
      let presented: string | undefined;
      let answer = '';
      const s = tls.connect({
        host: '127.0.0.1',
        port: server.ports.inbound!,
        servername: `outbound_.${app.port}_._.reviews.${ns}.svc.cluster.local`,
        ALPNProtocols: ['istio-http/1.1', 'istio'],
        key: leaf.keyPem,
        cert: leaf.certPem,
        ca,
        checkServerIdentity: () => undefined,
      });
      s.on('secureConnect', () => {
        presented = s.getPeerX509Certificate()?.fingerprint256;
        s.write(`GET / HTTP/1.1\r\nhost: ${host()}\r\nconnection: close\r\n\r\n`);
      });
      s.on('data', (d: Buffer) => (answer += d.toString()));
      s.on('error', (err) =>
        resolve({ ...(presented ? { presented } : {}), outcome: `error: ${err.message}` }),
      );
      s.on('close', () =>
        resolve({
          ...(presented ? { presented } : {}),
          outcome: answer === '' ? 'closed' : answer.split('\r\n')[0]!,
        }),
      );
    });
  /** XFCC's Hash is the SHA-256 of the certificate, as `fingerprint256` without colons. */
  const hashOf = (fp: string | undefined): string => (fp ?? '').replace(/:/g, '').toLowerCase();

  it(`workload certificates of both sidecars rotate ≥ 3 times under ${RATE} req/s without losing a request`, async () => {
    xfccHashes.clear();
    const w = watchSerials({ client, server });
    const ROTATIONS = 3;
    // done: both rotated ROTATIONS times, and the client's newest certificate reached the server
    // on the wire (new connections use it), not just the proxy's memory
    const enough = (): boolean =>
      (w.serials.client?.length ?? 0) > ROTATIONS &&
      (w.serials.server?.length ?? 0) > ROTATIONS &&
      xfccHashes.has(hashOf(w.latest.client?.certificate?.fingerprint256));
    const result = await drive(client.ports.outbound!, host(), 'reviews', enough);
    w.stop();
    const summary = {
      sent: result.sent,
      ok: result.ok,
      failures: Object.fromEntries(result.failures),
      serials: w.serials,
      clientCertsSeenByServer: xfccHashes.size,
    };
    process.stdout.write(
      `      load: ${result.sent} sent, ${result.ok} ok; serials: client ${w.serials.client?.length ?? 0}, server ${w.serials.server?.length ?? 0}; client certificates seen by the app: ${xfccHashes.size}\n`,
    );
    expect(enough(), `rotations within ${MAX_RUN_MS} ms: ${JSON.stringify(summary)}`).to.equal(true);
    expect(Object.fromEntries(result.failures), JSON.stringify(summary)).to.deep.equal({});
    expect(result.ok).to.equal(result.sent);
    expect(result.sent).to.be.greaterThan(RATE); // more than a second of load
    // the client certificates installed during the load reached the app on new connections (the
    // one held at the start may have been replaced before the first new connection). One
    // intermediate certificate may go unseen: it lives ~2 s, and on a loaded machine the upstream
    // pool can serve all of that from kept-alive connections opened under the previous one. The
    // newest must be seen (enough() above), and so must the others.
    const installed = w.fingerprints.client!.slice(1).map(hashOf);
    expect(installed).to.have.length.at.least(ROTATIONS);
    expect(
      installed.filter((h) => !xfccHashes.has(h)),
      JSON.stringify(summary),
    ).to.have.length.at.most(1);
    // and a new connection gets the server's current certificate
    const now = await certs(server);
    const probe = await probeInbound(
      workloadCert(root1, `spiffe://cluster.local/ns/${ns}/sa/productpage`),
      root1.certPem,
    );
    expect(probe.outcome).to.equal('HTTP/1.1 200 OK');
    expect([now.certificate?.fingerprint256, (await certs(server)).certificate?.fingerprint256]).to.include(
      probe.presented,
    );
  });

  it('root rotation (both roots, switch the signing key, remove the old root) loses no request', async () => {
    const root2 = createCA({ commonName: 'weft rotation root 2', ttlMs: 24 * HOUR, now: new Date() });
    const fp1 = fingerprint(root1.certPem);
    const fp2 = fingerprint(root2.certPem);
    const w = watchSerials({ client, server });
    const both = (pred: (s: IdentitySummary) => boolean): boolean =>
      [w.latest.client, w.latest.server].every((s) => s !== undefined && pred(s));
    const trusts = (s: IdentitySummary): string[] => s.roots.map((r) => r.fingerprint256);
    const steps: string[] = [];
    let finished = false;
    const procedure = (async (): Promise<void> => {
      const secret = { apiVersion: 'v1', kind: 'Secret', namespace: ns, name: 'weft-root-ca' };
      // 1. both roots in the bundle; the old one still signs
      await kube.mergePatch(secret, { data: { 'ca.crt': b64(root1.certPem + root2.certPem) } });
      await waitFor(
        'both proxies to trust both roots',
        () => both((s) => trusts(s).includes(fp1) && trusts(s).includes(fp2)),
        60_000,
        50,
      );
      steps.push('both roots trusted');
      // 2. the new root signs (weftd's serving certificate follows: the operator's part)
      await kube.mergePatch(secret, {
        data: { 'tls.crt': b64(root2.certPem), 'tls.key': b64(root2.keyPem) },
      });
      issueWeftdServing(root2);
      await waitFor(
        'both proxies to hold a certificate from the new root',
        () => both((s) => s.certificate?.root?.fingerprint256 === fp2),
        60_000,
        50,
      );
      steps.push('certificates from the new root');
      // every certificate of the old root has expired (workloadCertTTL 4 s)
      await new Promise((r) => setTimeout(r, 4500));
      // 3. the old root leaves the bundle
      await kube.mergePatch(secret, { data: { 'ca.crt': b64(root2.certPem) } });
      await waitFor(
        'both proxies to trust the new root only',
        () => both((s) => trusts(s).join() === fp2),
        60_000,
        50,
      );
      steps.push('old root removed');
      // and a couple more rotations under the new root alone
      const marks = { client: w.serials.client!.length, server: w.serials.server!.length };
      await waitFor(
        'two more rotations on both sides',
        () => w.serials.client!.length >= marks.client + 2 && w.serials.server!.length >= marks.server + 2,
        60_000,
        50,
      );
    })().finally(() => (finished = true));
    const result = await drive(client.ports.outbound!, host(), 'reviews', () => finished);
    w.stop();
    await procedure;
    const summary = {
      sent: result.sent,
      ok: result.ok,
      failures: Object.fromEntries(result.failures),
      steps,
    };
    process.stdout.write(`      load: ${result.sent} sent, ${result.ok} ok; ${steps.join(' → ')}\n`);
    expect(steps).to.deep.equal(['both roots trusted', 'certificates from the new root', 'old root removed']);
    expect(Object.fromEntries(result.failures), JSON.stringify(summary)).to.deep.equal({});
    expect(result.ok).to.equal(result.sent);
    expect(result.sent).to.be.greaterThan(RATE);

    // the old root is really gone: a peer with a certificate it signed is refused inbound
    const stale = workloadCert(root1, `spiffe://cluster.local/ns/${ns}/sa/productpage`);
    const { outcome } = await probeInbound(stale, root2.certPem);
    expect(outcome).to.not.match(/^HTTP/);
    const refused = await (await fetch(`http://127.0.0.1:${server.ports.metrics}/stats/prometheus`)).text();
    expect(refused).to.match(/weft_proxy_inbound_refused_total\{[^}]*reason="peer_untrusted"[^}]*\} [1-9]/);
    // while a peer of the new root is served
    const fresh = workloadCert(root2, `spiffe://cluster.local/ns/${ns}/sa/productpage`);
    expect((await probeInbound(fresh, root2.certPem)).outcome).to.equal('HTTP/1.1 200 OK');
  });
});
