/**
 * weftctl proxy-status / proxy-config / explain as a user runs them (bin/weftctl.js in a child
 * process) against weftd started in-process on a throwaway API server, with a fake proxy holding
 * a real discovery stream (TLS, TokenRequest token). weftd listens on loopback, which the API
 * server refuses to proxy to, so the happy paths use --weftd-address; the API server's own
 * answers on the service-proxy path (no weftd Service, no endpoints, RBAC) are checked for real.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Weftd } from '../../../controlplane/weftd.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import {
  MessageDecoder,
  TOKEN_AUDIENCE,
  discoveryQuery,
  type DiscoveryMessage,
} from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { freshNamespace, installCRDs, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { AckSender } from '../../../proxy/discovery/ack.js';
import { createReviews, pod, requestToken, startTestWeftd } from '../controlplane/fixtures.js';

const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin', 'weftctl.js');
const HOUR = 3600_000;
const NET = 'networking.istio.io/v1';
const log = createLogger('test', { silent: true });

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Async on purpose: weftd runs in this process and must keep answering while weftctl asks. */
function weftctl(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A fake proxy: holds a discovery stream open and remembers the configs it got. */
function connectProxy(
  port: number,
  caPem: string,
  tok: string,
  ns: string,
  name: string,
): Promise<{ versions: string[]; acks: AckSender }> {
  // answers every push as a proxy does (the proxy's own sender), so proxy-status can say SYNCED
  const acks = new AckSender({
    host: '127.0.0.1',
    port,
    servername: 'weftd.weft-system.svc',
    ca: () => caPem,
    token: () => tok,
    log: createLogger('fake-proxy', { silent: true }),
  });
  onCleanup(async () => acks.stop());
  const seen = { versions: [] as string[], acks };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        servername: 'weftd.weft-system.svc',
        port,
        path: discoveryQuery({ kind: 'sidecar', namespace: ns, pod: name, acks: true }),
        ca: caPem,
        headers: { authorization: `Bearer ${tok}` },
      },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`discovery answered ${res.statusCode}`));
        const decoder = new MessageDecoder();
        res.on('data', (chunk: Buffer) => {
          for (const m of decoder.push(chunk) as DiscoveryMessage[])
            if (m.type === 'config') {
              seen.versions.push(m.version);
              if (m.nonce !== undefined)
                void acks.send({
                  kind: 'sidecar',
                  namespace: ns,
                  pod: name,
                  version: m.version,
                  nonce: m.nonce,
                });
            }
        });
        resolve(seen);
      },
    );
    req.on('error', reject);
    req.end();
    onCleanup(async () => void req.destroy());
  });
}

describe('weftctl against weftd (in-process, real API server)', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let tlsDir: string;
  let ns: string;
  let address: string;
  let proxy: { versions: string[]; acks: AckSender };

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('weftctl');
    const ca = createCA({ commonName: 'weftctl-test-ca', ttlMs: HOUR, now: new Date() });
    const leaf = issueServing(ca, {
      commonName: 'weftd',
      dnsNames: ['weftd.weft-system.svc'],
      ttlMs: HOUR,
      now: new Date(),
    });
    tlsDir = mkdtempSync(join(tmpdir(), 'weftctl-tls-'));
    writeFileSync(join(tlsDir, 'tls.crt'), leaf.certPem);
    writeFileSync(join(tlsDir, 'tls.key'), leaf.keyPem);
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    await kube.create(pod(ns, 'app-1', { app: 'client' }, 'app'));
    await createReviews(kube, ns);
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: ns },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            match: [{ headers: { 'end-user': { exact: 'jason' } } }],
            route: [{ destination: { host: 'reviews', subset: 'v2' } }],
          },
          { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
        ],
      },
    });
    weftd = await startTestWeftd({ kube, ns, tlsDir, log }, { pingIntervalMs: 1000 });
    address = `http://127.0.0.1:${weftd.monitoringPort}`;
    proxy = await connectProxy(
      weftd.discoveryPort,
      ca.certPem,
      await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] }),
      ns,
      'app-1',
    );
    await waitFor('the fake proxy got its config', () => proxy.versions.length > 0);
  });

  after(async () => {
    await weftd?.stop();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('proxy-status lists the connected proxy as SYNCED once it ACKed the version it got', async () => {
    await waitFor('the ACK', () => proxy.acks.results.ack >= proxy.versions.length);
    const r = await weftctl(['proxy-status', '--weftd-address', address]);
    expect(r.code, r.stderr).to.equal(0);
    const row = r.stdout.split('\n').find((l) => l.startsWith(`app-1.${ns} `));
    const cells = row?.split(/\s{2,}/);
    expect([...(cells?.slice(0, 5) ?? []), cells?.at(-1)]).to.deep.equal([
      `app-1.${ns}`,
      'sidecar',
      proxy.versions.at(-1),
      proxy.versions.at(-1),
      String(proxy.versions.length),
      'SYNCED',
    ]);
  });

  it("proxy-config routes shows the VirtualService's header-matched route and its default", async () => {
    const r = await weftctl(['proxy-config', 'routes', `app-1.${ns}`, '--weftd-address', address]);
    expect(r.code, r.stderr).to.equal(0);
    const host = `reviews.${ns}.svc.cluster.local`;
    const rows = r.stdout
      .split('\n')
      .filter((l) => l.includes(`${host}:9080 `))
      .map((l) => l.split(/\s{3,}/));
    expect(rows.map((c) => [c[3], c[4], c[5]])).to.deep.equal([
      ['header end-user=jason', `outbound|9080|v2|${host}`, `vs ${ns}/reviews[0]`],
      ['*', `outbound|9080|v1|${host}`, `vs ${ns}/reviews[1]`],
    ]);
    const json = await weftctl([
      'proxy-config',
      'endpoints',
      'app-1',
      '-n',
      ns,
      '-o',
      'json',
      '--weftd-address',
      address,
    ]);
    const eps = JSON.parse(json.stdout) as { cluster: string; endpoints: { address: string }[] }[];
    expect(
      eps.find((e) => e.cluster === `outbound|9080|v2|${host}`)?.endpoints.map((e) => e.address),
    ).to.deep.equal(['10.244.0.12']);
  });

  it('explain picks the header-matched subset, and says why the first rule missed without the header', async () => {
    const jason = await weftctl([
      'explain',
      `app-1.${ns}`,
      'http://reviews:9080/r/1',
      '-H',
      'end-user: jason',
      '--weftd-address',
      address,
    ]);
    expect(jason.code, jason.stderr).to.equal(0);
    expect(jason.stdout).to.match(
      /^destination +outbound\|9080\|v2\|\S+ subset v2, 100\.00% of requests, .*\(10\.244\.0\.12:8080\)$/m,
    );
    const other = await weftctl([
      'explain',
      `app-1.${ns}`,
      'GET',
      'http://reviews:9080/r/1',
      '--weftd-address',
      address,
      '-o',
      'json',
    ]);
    expect(other.code, other.stderr).to.equal(0);
    const report = JSON.parse(other.stdout) as {
      explain: { destinations: { subset: string }[] };
      misses: { index: number; blocks: { failed: { condition: string; request: string }[] }[] }[];
    };
    expect(report.explain.destinations.map((d) => d.subset)).to.deep.equal(['v1']);
    expect(report.misses.map((m) => [m.index, m.blocks[0]?.failed])).to.deep.equal([
      [0, [{ condition: 'header end-user exact "jason"', request: '(absent)' }]],
    ]);
  });

  it('explain names a VirtualService weftd leaves out (it fails validation), and why', async () => {
    // past the webhook (this cluster runs none): a redirect with nothing to redirect to
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'broken', namespace: ns },
      spec: { hosts: ['broken.example'], http: [{ redirect: {} }] },
    });
    const args = ['explain', `app-1.${ns}`, 'http://broken.example/x', '--weftd-address', address];
    const r = await waitFor('weftd names it', async () => {
      const out = await weftctl(args);
      return out.stdout.includes('not applied') ? out : null;
    });
    expect(r.code, 'no route: 404 NR').to.equal(1);
    expect(r.stdout).to.match(/^not applied +1 object that could reach this proxy fails validation/m);
    expect(r.stdout).to.contain(`VirtualService ${ns}/broken: spec.http[0].redirect: redirect must specify`);
    const json = JSON.parse((await weftctl([...args, '-o', 'json'])).stdout) as {
      notApplied: { name: string }[];
    };
    expect(json.notApplied.map((n) => n.name)).to.deep.equal(['broken']);
    await kube.delete({ apiVersion: NET, kind: 'VirtualService', name: 'broken', namespace: ns });
  });

  it('explain --inbound: a STRICT PeerAuthentication refuses plaintext, naming the policy; an mTLS peer is accepted', async () => {
    await kube.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: ns },
      spec: { mtls: { mode: 'STRICT' } },
    });
    const args = ['explain', `app-1.${ns}`, '--inbound', '9080', '--weftd-address', address];
    const refused = await waitFor('weftd applies the PeerAuthentication', async () => {
      const r = await weftctl([...args, '--from', '10.244.0.7']);
      return r.code === 1 ? r : null;
    });
    expect(refused.stdout).to.match(/^mtls +STRICT \(PeerAuthentication \S+\/strict\)$/m);
    expect(refused.stdout).to.contain(
      `outcome       refused: plaintext from 10.244.0.7 refused by PeerAuthentication ${ns}/strict on port 9080: not TLS`,
    );
    const peer = 'spiffe://cluster.local/ns/other/sa/productpage';
    const accepted = await weftctl([...args, '--peer', peer]);
    expect(accepted.code, accepted.stderr).to.equal(0);
    expect(accepted.stdout).to.contain(`source_principal=${peer}`);
  });

  it('proxy-status shows the proxy STALE once weftd would no longer send it what it holds (its pod is gone)', async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'Pod', name: 'app-1', namespace: ns });
    await waitFor('weftd forgets the pod', () => !weftd.registry.pod(ns, 'app-1'));
    const r = await weftctl(['proxy-status', `app-1.${ns}`, '-o', 'json', '--weftd-address', address]);
    expect(r.code, r.stderr).to.equal(0);
    const body = JSON.parse(r.stdout) as {
      proxies: { name: string; state: string; version: string; currentVersion: string | null }[];
    };
    expect(body.proxies.map((p) => [p.name, p.state, p.version, p.currentVersion])).to.deep.equal([
      [`app-1.${ns}`, 'STALE', proxy.versions.at(-1), null],
    ]);
  });

  it("through the API server's service proxy: no weftd Service, weftd without endpoints, RBAC", async () => {
    const kubeconfig = testCluster().kubeconfigPath;
    const empty = await freshNamespace('weftctl-mesh');
    const missing = await weftctl(['proxy-status', '--kubeconfig', kubeconfig, '--mesh-namespace', empty]);
    expect([missing.code, missing.stderr]).to.satisfy(
      ([c, e]: [number, string]) =>
        c === 2 && /^WEFT_MESH_NOT_INSTALLED: .*is the mesh installed\? \(kubectl get mesh\)/.test(e),
    );
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'weftd', namespace: empty },
      spec: { ports: [{ name: 'http-monitoring', port: 15014 }], selector: { app: 'weftd' } },
    });
    const notReady = await weftctl(['proxy-status', '--kubeconfig', kubeconfig, '--mesh-namespace', empty]);
    expect(notReady.stderr).to.match(/^WEFT_WEFTD_UNREACHABLE: weftd is not ready/);
    // a service account with no RBAC at all, through a kubeconfig of its own
    await kube.create({
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'nobody', namespace: empty },
    });
    const cluster = testCluster().kubeConfig.getCurrentCluster()!;
    const file = join(tlsDir, 'nobody.kubeconfig');
    const caLine = cluster.caData
      ? `certificate-authority-data: ${cluster.caData}`
      : `certificate-authority: ${cluster.caFile}`;
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${cluster.server}\n    ${caLine}\nusers:\n- name: nobody\n  user:\n    token: ${await requestToken(kube, empty, 'nobody')}\ncontexts:\n- name: nobody\n  context: {cluster: c, user: nobody}\ncurrent-context: nobody\n`,
    );
    const denied = await weftctl([
      'proxy-config',
      'routes',
      `app-1.${ns}`,
      '--kubeconfig',
      file,
      '--mesh-namespace',
      empty,
    ]);
    expect(denied.stderr).to.match(
      new RegExp(
        `^WEFT_RBAC_DENIED: .*needs RBAC verb "get" on resource "services/proxy" in namespace ${empty} .*system:serviceaccount:${empty}:nobody`,
      ),
    );
  });
});
