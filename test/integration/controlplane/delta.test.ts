/**
 * Delta pushes (ADR 0020) end to end: a real weftd against the real API server and a real
 * `proxy gateway` process, which asks for deltas as every current proxy does.
 *
 * - One VirtualService edit: weftd sends a delta of that one virtual host (nothing else), the
 *   gateway applies it, ACKs, serves the new route, and the config it runs (/config_dump) equals
 *   the full config weftd computes for it now (/debug/config).
 * - weftd restarts: the gateway reconnects naming the state it holds; the new weftd, which never
 *   sent it anything, verifies that state against the config it computes and resumes with an
 *   (empty) delta; the next edit is a delta again.
 * - weftd restarts after an edit made while it was down: the state the gateway names is one this
 *   weftd cannot verify, so it gets the whole config (counted as a fallback).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import type { ConnectionInfo } from '../../../controlplane/discovery.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { freePort } from '../../support/ports.js';
import { freshNamespace, installCRDs, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';
const ROOT = resolve(import.meta.dirname, '../../..');

function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, agent: false, headers: host ? { host } : {} },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      },
    );
    req.on('error', rej);
    req.end();
  });
}

describe('weftd delta pushes with a real gateway process', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let gw: ChildProcess;
  let gwLog = '';
  let servicePort: number;
  let adminPort: number;
  let discoveryPort: number;
  const selector = { istio: 'ingress-delta' };

  const start = async (): Promise<Weftd> =>
    (weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { pingIntervalMs: 300, flags: { port: discoveryPort } },
    ));
  const gwConn = async (): Promise<ConnectionInfo | undefined> =>
    (
      JSON.parse((await get(weftd.monitoringPort, '/debug/connections')).body) as {
        connections: ConnectionInfo[];
      }
    ).connections.find((c) => c.pod === 'ingress-1' && c.namespace === ns);
  const metric = async (line: RegExp): Promise<number> => {
    const m = line.exec((await get(weftd.monitoringPort, '/metrics')).body);
    return m ? Number(m[1]) : 0;
  };
  /** The gateway's newest push, once it ACKed it and it is what weftd computes now. */
  const synced = (what: string): Promise<ConnectionInfo> =>
    waitFor(
      what,
      async () => {
        const i = await gwConn();
        const now = JSON.parse(
          (await get(weftd.monitoringPort, `/debug/config?namespace=${ns}&pod=ingress-1&kind=gateway`)).body,
        ) as { version?: string };
        return i?.sent && i.sent.version === now.version && i.acked?.nonce === i.sent.nonce ? i : null;
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- gateway log ---\n${gwLog.slice(-4000)}`);
    });
  /** The config the gateway runs equals the whole config weftd computes for it now. */
  const runsFullConfig = async (): Promise<void> => {
    const running = JSON.parse((await get(adminPort, '/config_dump')).body) as { config: unknown };
    const full = JSON.parse(
      (await get(weftd.monitoringPort, `/debug/config?namespace=${ns}&pod=ingress-1&kind=gateway`)).body,
    ) as { config: unknown };
    expect(running.config).to.deep.equal(full.config);
  };
  const editBody = async (name: string, body: string): Promise<void> => {
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name },
      { spec: { http: [{ directResponse: { status: 200, body: { string: body } } }] } },
    );
  };

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('delta');
    dir = weftdServingDir('weftd-delta');
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gw', namespace: ns } });
    await kube.create(pod(ns, 'ingress-1', selector, 'gw'));
    [servicePort, adminPort, discoveryPort] = [await freePort(), await freePort(), await freePort()];
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ingress', namespace: ns },
      spec: { selector, ports: [{ name: 'http2', port: 80, targetPort: servicePort }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'public', namespace: ns },
      spec: { selector, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    });
    for (const [name, host] of [
      ['www', 'www.example.com'],
      ['api', 'api.example.com'],
      ['shop', 'shop.example.com'],
    ] as const)
      await kube.create({
        apiVersion: NET,
        kind: 'VirtualService',
        metadata: { name, namespace: ns },
        spec: {
          hosts: [host],
          gateways: ['public'],
          http: [{ directResponse: { status: 200, body: { string: `${name} first` } } }],
        },
      });
    await start();
    const token = await requestToken(kube, ns, 'gw', { audiences: [TOKEN_AUDIENCE] });
    writeFileSync(join(dir, 'gw.token'), token);
    gw = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'proxy/main.ts',
        'gateway',
        '--bind',
        '127.0.0.1',
        ...['--admin-port', String(adminPort), '--metrics-port', '0', '--health-port', '0'],
        ...['--drain-seconds', '1'],
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          WEFT_LOG_SILENT: '0',
          WEFT_DISCOVERY_ADDRESS: `127.0.0.1:${discoveryPort}`,
          WEFT_CA_ROOT_PATH: join(dir, 'ca.crt'),
          WEFT_TOKEN_PATH: join(dir, 'gw.token'),
          POD_NAME: 'ingress-1',
          POD_NAMESPACE: ns,
          INSTANCE_IP: '127.0.0.1',
        },
      },
    );
    gw.stdout!.on('data', (d: Buffer) => (gwLog += d.toString()));
    gw.stderr!.on('data', (d: Buffer) => (gwLog += d.toString()));
    onCleanup(async () => void gw.kill('SIGKILL'));
  });

  after(async () => {
    gw?.kill('SIGKILL');
    await weftd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one VirtualService edit: a delta of that virtual host only; the gateway then runs exactly the full config', async () => {
    const first = await synced('the first config ACKed');
    expect(first.delta.enabled).to.equal(true);
    expect(first.sent!.delta).to.equal(false);
    expect((await get(servicePort, '/', 'www.example.com')).body).to.equal('www first');
    const fullBytes = await metric(/^weft_weftd_xds_pushed_bytes_total\{kind="full"\} (\d+)/m);

    await editBody('www', 'www second');
    await waitFor('the new route served', async () =>
      (await get(servicePort, '/', 'www.example.com')).body === 'www second' ? true : null,
    );
    const c = await synced('the delta ACKed');
    expect(c.sent!.delta).to.equal(true);
    expect(c.sent!.changed).to.have.length(1);
    expect(c.sent!.changed![0]).to.match(/^vhost\/.*www\.example\.com/);
    expect(c.sent!.removed).to.deep.equal([]);
    expect(c.delta.held).to.deep.equal({ version: c.sent!.version, state: c.sent!.state });
    await runsFullConfig();
    expect((await get(servicePort, '/', 'api.example.com')).body).to.equal('api first');
    const deltaBytes = await metric(/^weft_weftd_xds_pushed_bytes_total\{kind="delta"\} (\d+)/m);
    expect(deltaBytes).to.be.greaterThan(0);
    expect(await metric(/^weft_weftd_xds_pushed_bytes_total\{kind="full"\} (\d+)/m)).to.equal(fullBytes);
    expect(deltaBytes).to.be.lessThan(fullBytes / 2);
  });

  it('weftd restarts: the gateway resumes with a delta from the state it names, verified against the config weftd computes', async () => {
    await weftd.stop();
    await start();
    const resumed = await synced('the resumed stream ACKed');
    expect(resumed.sent!.delta, 'resumed with a delta').to.equal(true);
    expect(resumed.sent!.changed).to.deep.equal([]);
    expect(resumed.delta.fulls).to.equal(0);
    await editBody('api', 'api second');
    const c = await synced('the next delta ACKed');
    expect(c.sent!.delta).to.equal(true);
    expect(c.sent!.changed).to.have.length(1);
    expect(c.delta.fulls).to.equal(0);
    await runsFullConfig();
  });

  it('a state weftd cannot verify (edited while weftd was down) gets the whole config', async () => {
    await weftd.stop();
    await editBody('shop', 'shop second');
    await start();
    const c = await synced('the whole config ACKed');
    expect(c.sent!.delta).to.equal(false);
    expect(await metric(/^weft_weftd_xds_delta_fallbacks_total\{reason="resume_unknown"\} (\d+)/m)).to.equal(
      1,
    );
    await runsFullConfig();
    expect((await get(servicePort, '/', 'shop.example.com')).body).to.equal('shop second');
  });
});
