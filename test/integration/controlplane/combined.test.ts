/**
 * The combined control plane (ADR 0024) against the real API server: weftd and the admission
 * webhook in one process (controlplane/combined.ts), each on its own port with its own serving
 * certificate.
 *
 * - Both halves serve: an AdmissionReview is answered over TLS on the webhook port (a bad
 *   VirtualService denied, a pod in an injection-enabled namespace patched with the sidecar), a
 *   proxy's discovery stream over TLS on weftd's port gets its config, /ready answers 200 once
 *   both are ready, and one /metrics carries both halves' metrics.
 * - What they share: one informer per kind both watch (Namespaces and the Istio kinds), the
 *   webhook's cross-object index fed by the informers weftd started.
 * - Failure isolation: a half whose server closes reports the process down (main exits 1 so the
 *   kubelet restarts the pod whole); the process whose webhook port cannot be bound exits 1
 *   instead of running weftd alone; SIGTERM ends the combined process with 0.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import http from 'node:http';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { startCombined, type Combined } from '../../../controlplane/combined.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { CertReloader } from '../../../pkg/tls/index.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { FakeProxy, pod, requestToken, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const ROOT = resolve(import.meta.dirname, '../../..');

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

/** An HTTPS request that trusts only `ca` (the webhook's own CA: the API server's view). */
function tlsRequest(
  port: number,
  ca: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca,
        agent: false,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => res({ status: r.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', rej);
    req.end(payload);
  });
}

function review(
  uid: string,
  kind: { group: string; version: string; kind: string },
  resource: string,
  object: unknown,
  ns: string,
) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind,
      resource: { group: kind.group, version: kind.version, resource },
      requestKind: kind,
      requestResource: { group: kind.group, version: kind.version, resource },
      namespace: ns,
      operation: 'CREATE',
      userInfo: { username: 'test' },
      object,
      dryRun: false,
    },
  };
}

interface Answer {
  response: { uid: string; allowed: boolean; status?: { message?: string }; patch?: string };
}

describe('combined control plane: weftd and the webhook in one process (real API server)', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let ns: string;
  let weftdDir: string;
  let webhookDir: string;
  let combined: Combined | undefined;
  const down: { half: string; why: string }[] = [];

  const start = (): Promise<Combined> =>
    startCombined({
      flags: {
        host: '127.0.0.1',
        port: 0,
        monitoringPort: 0,
        domainSuffix: 'cluster.local',
        caSecret: { namespace: ns, name: 'weft-root-ca' },
        pushDebounceMs: 50,
        pushDebounceMaxMs: 1000,
      },
      mesh: DEFAULT_MESH,
      kube,
      tls: new CertReloader(join(weftdDir, 'tls.crt'), join(weftdDir, 'tls.key'), log),
      log,
      defaultMetrics: false,
      pingIntervalMs: 300,
      webhook: {
        host: '127.0.0.1',
        port: 0,
        tls: new CertReloader(join(webhookDir, 'tls.crt'), join(webhookDir, 'tls.key'), log),
        meshNamespace: 'weft-system',
      },
      onHalfDown: (half, why) => down.push({ half, why }),
    });

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('combined', { labels: { 'istio-injection': 'enabled' } });
    weftdDir = weftdServingDir('combined-weftd');
    webhookDir = weftdServingDir('combined-webhook');
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    await kube.create(pod(ns, 'app-1', { app: 'reviews' }, 'app'));
    combined = await start();
  });

  after(async () => {
    await combined?.stop();
    for (const d of [weftdDir, webhookDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('becomes ready on both ports once both halves are, and shares the informers both watch', async () => {
    const c = combined!;
    await waitFor(
      'weftd /ready 200',
      async () => (await get(c.weftd.monitoringPort, '/ready')).status === 200,
    );
    const ca = readFileSync(join(webhookDir, 'ca.crt'), 'utf8');
    expect((await tlsRequest(c.webhook.port, ca, 'GET', '/readyz')).status).to.equal(200);
    // Namespace and the eight Istio kinds the webhook indexes: listed and watched once
    expect(c.informers.shared).to.equal(9);
  });

  it('answers an AdmissionReview over TLS: a bad VirtualService is denied, a pod is injected', async () => {
    const c = combined!;
    const ca = readFileSync(join(webhookDir, 'ca.crt'), 'utf8');
    const vsKind = { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' };
    const bad = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'bad', namespace: ns },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: '' } }] }] },
    };
    const denied = await tlsRequest(
      c.webhook.port,
      ca,
      'POST',
      '/validate',
      review('u-1', vsKind, 'virtualservices', bad, ns),
    );
    expect(denied.status).to.equal(200);
    const a = JSON.parse(denied.body) as Answer;
    expect(a.response.uid).to.equal('u-1');
    expect(a.response.allowed).to.equal(false);
    expect(a.response.status?.message).to.include('empty domain name not allowed');

    const podKind = { group: '', version: 'v1', kind: 'Pod' };
    const p = pod(ns, 'web-1', { app: 'web' });
    const injected = await waitFor('namespace labels seen by the injector', async () => {
      const r = await tlsRequest(
        c.webhook.port,
        ca,
        'POST',
        '/inject',
        review('u-2', podKind, 'pods', p, ns),
      );
      const ans = JSON.parse(r.body) as Answer;
      return ans.response.patch ? ans : null;
    });
    expect(injected.response.allowed).to.equal(true);
    const patch = JSON.parse(Buffer.from(injected.response.patch!, 'base64').toString()) as unknown[];
    expect(JSON.stringify(patch)).to.include('weft-proxy');
  });

  it("serves a proxy's discovery stream over TLS on weftd's port", async () => {
    const c = combined!;
    const token = await requestToken(kube, ns, 'app', { audiences: [TOKEN_AUDIENCE] });
    const proxy = new FakeProxy(
      `127.0.0.1:${c.weftd.discoveryPort}`,
      weftdDir,
      token,
      'sidecar',
      ns,
      'app-1',
    );
    const config = await proxy.until('a config', () => true);
    expect(config).to.have.property('listeners');
    proxy.client.stop();
  });

  it("one registry: both halves' metrics on either /metrics", async () => {
    const c = combined!;
    const m = (await get(c.weftd.monitoringPort, '/metrics')).body;
    expect(m).to.include('pilot_xds');
    expect(m).to.match(/weft_webhook_requests_total\{webhook="validate"/);
    const ca = readFileSync(join(webhookDir, 'ca.crt'), 'utf8');
    expect((await tlsRequest(c.webhook.port, ca, 'GET', '/metrics')).body).to.include('pilot_xds');
  });

  it('holds no validation worker at idle, and starts one for a costly object (ADR 0025)', async () => {
    const c = combined!;
    const scrape = async (): Promise<string> => (await get(c.weftd.monitoringPort, '/metrics')).body;
    expect(await scrape()).to.match(/^weft_webhook_validation_workers 0$/m);
    const ca = readFileSync(join(webhookDir, 'ca.crt'), 'utf8');
    const vsKind = { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' };
    // 40 regexes: ~4 KB, but over the 2,000 cost units validated inline (test/unit/webhook/abuse.test.ts)
    const costly = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'costly', namespace: ns },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            match: Array.from({ length: 40 }, (_, i) => ({
              uri: { regex: `/api/v${i}/(a|b|c)/[a-z0-9]{8,64}` },
            })),
            route: [{ destination: { host: 'reviews' } }],
          },
        ],
      },
    };
    // The worker loads while the request waits; on a saturated machine (a worker loading from
    // source under tsx) that can exceed the 4 s budget once, as the API server would see: retry.
    const answer = await waitFor(
      'the costly VirtualService validated',
      async () => {
        const r = await tlsRequest(
          c.webhook.port,
          ca,
          'POST',
          '/validate',
          review('u-3', vsKind, 'virtualservices', costly, ns),
        );
        return r.status === 200 ? (JSON.parse(r.body) as Answer) : null;
      },
      60_000,
      500,
    );
    expect(answer.response.allowed).to.equal(true);
    const after = await scrape();
    expect(after).to.match(/^weft_webhook_validation_workers 1$/m);
    expect(after).to.match(/^weft_webhook_validations_total\{placement="worker"\} [1-9]/m);
  });

  it("reports the process down when either half's server closes outside a shutdown", async () => {
    const c = combined!;
    expect(down).to.deep.equal([]);
    c.webhook.server.close();
    await waitFor('the webhook half reported down', () => down.length === 1);
    expect(down[0]!.half).to.equal('webhook');
    await c.stop();
    combined = undefined;
    expect(down, 'a deliberate stop is not a failure').to.have.length(1);

    const again = await start();
    combined = again;
    again.weftd.servers[0]!.close();
    await waitFor('the weftd half reported down', () => down.length === 2);
    expect(down[1]!.half).to.equal('weftd');
  });

  describe('as a process (controlplane/main.ts --webhook-port)', () => {
    const run = (args: string[]) =>
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'controlplane/main.ts'),
          `--kubeconfig=${testCluster().kubeconfigPath}`,
          `--tls-dir=${weftdDir}`,
          `--webhook-tls-dir=${webhookDir}`,
          '--host=127.0.0.1',
          '--port=0',
          '--monitoring-port=0',
          `--ca-secret=${ns}/weft-root-ca`,
          '--status-lease=none',
          ...args,
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_LOG_LEVEL: 'warn' } },
      );
    const exitOf = (child: ReturnType<typeof run>): Promise<number | null> =>
      new Promise((r) => child.once('exit', (code) => r(code)));

    it('serves both halves, and exits 0 on SIGTERM', async () => {
      const child = run(['--webhook-port=0']);
      const exited = exitOf(child);
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      try {
        const ports = await waitFor('listening line', () => {
          const m = /listening (\d+) (\d+) (\d+)/.exec(out);
          return m ? m.slice(1).map(Number) : null;
        });
        const [, monitoring, webhookPort] = ports as [number, number, number];
        await waitFor('/ready 200', async () => (await get(monitoring, '/ready')).status === 200);
        const ca = readFileSync(join(webhookDir, 'ca.crt'), 'utf8');
        expect((await tlsRequest(webhookPort, ca, 'GET', '/healthz')).status).to.equal(200);
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).to.equal(0);
    });

    it('exits 1 when the webhook half cannot start, never running weftd alone', async () => {
      const taken = net.createServer();
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
      const port = (taken.address() as net.AddressInfo).port;
      try {
        const child = run([`--webhook-port=${port}`]);
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        expect(await exitOf(child)).to.equal(1);
        expect(err).to.include('EADDRINUSE');
      } finally {
        taken.close();
      }
    });
  });
});
