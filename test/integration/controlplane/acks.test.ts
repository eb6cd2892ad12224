/**
 * ACK/NACK and "no push for changes that cannot change proxy config" (issue 16), end to end: a
 * real weftd against the real API server and a real `proxy gateway` process.
 *
 * - The gateway ACKs the config it compiled and bound: weftd records it, `weftctl proxy-status`
 *   says SYNCED with the ACKED version.
 * - A config the proxy cannot apply (its Service's target port is held by another process, so the
 *   listener cannot bind): the proxy NACKs with the bind error, weftd records it and counts a
 *   reject, proxy-status says NACKED with the reason, and the proxy keeps serving the old config.
 * - A label-only edit, Argo CD's annotations and a status write to a VirtualService: ignored by
 *   the registry (counted), no new generation, no push cycle, no new push on the stream.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { freePort } from '../../support/ports.js';
import { join, resolve } from 'node:path';
import type { ConnectionInfo } from '../../../controlplane/discovery.js';
import type { Weftd } from '../../../controlplane/weftd.js';
import { runProxyStatus } from '../../../cli/commands/proxy-status.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { freshNamespace, installCRDs, onCleanup, testCluster, waitFor } from '../../support/index.js';
import { pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';
const ROOT = resolve(import.meta.dirname, '../../..');

/** A GET on loopback; `host` sets the Host header (fetch would not let it be set). */
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

async function proxyStatus(monitoringPort: number): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runProxyStatus(['--weftd-address', `http://127.0.0.1:${monitoringPort}`], {
    stdout: (s: string) => void (out += s),
    stderr: (s: string) => void (err += s),
  } as never);
  return { code, out, err };
}

describe('weftd ACK/NACK with a real gateway process, and no push for no-op edits', function () {
  this.timeout(180_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let gw: ChildProcess;
  let gwLog = '';
  let goodPort: number;
  const selector = { istio: 'ingress-acks' };

  const connections = async (): Promise<ConnectionInfo[]> =>
    (
      JSON.parse((await get(weftd.monitoringPort, '/debug/connections')).body) as {
        connections: ConnectionInfo[];
      }
    ).connections;
  const gwConn = async (): Promise<ConnectionInfo | undefined> =>
    (await connections()).find((c) => c.pod === 'ingress-1' && c.namespace === ns);
  const metric = async (line: RegExp): Promise<number> => {
    const m = line.exec((await get(weftd.monitoringPort, '/metrics')).body);
    return m ? Number(m[1]) : 0;
  };

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('acks');
    dir = weftdServingDir('weftd-acks');
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'gw', namespace: ns } });
    await kube.create(pod(ns, 'ingress-1', selector, 'gw'));
    goodPort = await freePort();
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ingress', namespace: ns },
      spec: { selector, ports: [{ name: 'http2', port: 80, targetPort: goodPort }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'Gateway',
      metadata: { name: 'public', namespace: ns },
      spec: { selector, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    });
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'www', namespace: ns },
      spec: {
        hosts: ['www.example.com'],
        gateways: ['public'],
        http: [{ directResponse: { status: 200, body: { string: 'first' } } }],
      },
    });
    weftd = await startTestWeftd({ kube, ns, tlsDir: dir, log }, { pingIntervalMs: 300 });
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
        ...['--admin-port', '0', '--metrics-port', '0', '--health-port', '0'],
        ...['--drain-seconds', '1'],
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          WEFT_LOG_SILENT: '0',
          WEFT_DISCOVERY_ADDRESS: `127.0.0.1:${weftd.discoveryPort}`,
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

  it('the gateway ACKs the config it bound: weftd records it, proxy-status says SYNCED with the ACKED version', async () => {
    const c = await waitFor(
      'the gateway’s ACK',
      async () => {
        const i = await gwConn();
        return i?.sent && i.acked?.nonce === i.sent.nonce ? i : null;
      },
      60_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- gateway log ---\n${gwLog}`);
    });
    expect(c.acks).to.equal(true);
    expect(c.acked!.version).to.equal(c.version);
    expect((await get(goodPort, '/', 'www.example.com')).body).to.equal('first');
    expect(await metric(/^weft_weftd_xds_acks_total\{result="ack"\} (\d+)/m)).to.be.at.least(1);
    const st = await proxyStatus(weftd.monitoringPort);
    expect(st.code, st.err).to.equal(0);
    const row = st.out.split('\n').find((l) => l.startsWith(`ingress-1.${ns}`))!;
    expect(row.split(/\s{3,}/)).to.deep.equal([
      `ingress-1.${ns}`,
      'gateway',
      c.version!,
      c.version!,
      String(c.pushes),
      row.split(/\s{3,}/)[5]!,
      'SYNCED',
    ]);
  });

  it('no push for a label-only edit, Argo CD annotations or a status write to a VirtualService', async () => {
    // a push cycle still debouncing from before must not count against the edits below
    let last = -1;
    await waitFor('no push cycle for 1.5 s (longer than the debounce max)', async () => {
      const c = weftd.discovery.pushCycles;
      if (c === last) return true;
      last = c;
      await new Promise((r) => setTimeout(r, 1500));
      return weftd.discovery.pushCycles === c;
    });
    const before = await gwConn();
    const generation = weftd.registry.generation;
    const cycles = weftd.discovery.pushCycles;
    const { events, ignoredEvents } = weftd.registry;
    const pushes = await metric(/^pilot_xds_pushes\{type="config"\} (\d+)/m);
    const key = { apiVersion: NET, kind: 'VirtualService', name: 'www', namespace: ns };
    await kube.mergePatch(key, { metadata: { labels: { team: 'edge' } } });
    await kube.mergePatch(key, {
      metadata: {
        annotations: {
          'argocd.argoproj.io/tracking-id': `app:networking.istio.io/VirtualService:${ns}/www`,
          'kubectl.kubernetes.io/last-applied-configuration': '{}',
        },
      },
    });
    await kube.request('PATCH', `/apis/networking.istio.io/v1/namespaces/${ns}/virtualservices/www/status`, {
      body: { status: { observedGeneration: 1, conditions: [{ type: 'Reconciled', status: 'True' }] } },
      contentType: 'application/merge-patch+json',
    });
    // all three events reached the registry, and were ignored
    await waitFor('three ignored events', () => weftd.registry.ignoredEvents >= ignoredEvents + 3);
    expect(weftd.registry.events - events).to.equal(weftd.registry.ignoredEvents - ignoredEvents);
    // give a (wrong) push cycle the debounce window and more to show up
    await new Promise((r) => setTimeout(r, 500));
    expect(weftd.registry.generation).to.equal(generation);
    expect(weftd.discovery.pushCycles).to.equal(cycles);
    expect(await metric(/^pilot_xds_pushes\{type="config"\} (\d+)/m)).to.equal(pushes);
    const after = await gwConn();
    expect(after!.sent).to.deep.equal(before!.sent);
    expect(
      await metric(/^weft_weftd_registry_events_total\{kind="VirtualService",result="ignored"\} (\d+)/m),
    ).to.be.at.least(3);
    const dbg = JSON.parse((await get(weftd.monitoringPort, '/debug/connections')).body) as {
      ignoredEvents: number;
    };
    expect(dbg.ignoredEvents).to.be.at.least(ignoredEvents + 3);
    // while a spec edit is a new version, pushed and ACKed
    await kube.mergePatch(key, {
      spec: { http: [{ directResponse: { status: 200, body: { string: 'second' } } }] },
    });
    const next = await waitFor('the ACK of the spec edit', async () => {
      const i = await gwConn();
      return i?.sent && i.sent.version !== before!.sent!.version && i.acked?.nonce === i.sent.nonce
        ? i
        : null;
    });
    expect(next.pushes).to.equal(before!.pushes + 1);
    expect((await get(goodPort, '/', 'www.example.com')).body).to.equal('second');
  });

  it('a config the proxy cannot apply: NACK with the error recorded, a reject counted, the old config keeps serving', async () => {
    const rejects = await metric(/^pilot_total_xds_rejects\{type="config"\} (\d+)/m);
    const good = (await gwConn())!;
    // another process holds the port the new config's listener must bind
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '0.0.0.0', r));
    onCleanup(() => new Promise((r) => holder.close(() => r(undefined))));
    const heldPort = (holder.address() as net.AddressInfo).port;
    await kube.mergePatch(
      { apiVersion: 'v1', kind: 'Service', name: 'ingress', namespace: ns },
      { spec: { ports: [{ name: 'http2', port: 80, targetPort: heldPort }] } },
    );
    const c = await waitFor('the gateway’s NACK', async () => {
      const i = await gwConn();
      return i?.sent && i.nacked?.nonce === i.sent.nonce ? i : null;
    });
    expect(c.nacked!.error).to.match(/EADDRINUSE/);
    expect(c.acked).to.deep.equal(good.acked); // what it runs: the last good config
    expect(await metric(/^pilot_total_xds_rejects\{type="config"\} (\d+)/m)).to.equal(rejects + 1);
    expect(await metric(/^weft_weftd_xds_acks_total\{result="nack"\} (\d+)/m)).to.be.at.least(1);
    // the old listener still serves the old routes
    expect((await get(goodPort, '/', 'www.example.com')).body).to.equal('second');
    const st = await proxyStatus(weftd.monitoringPort);
    const row = st.out.split('\n').find((l) => l.startsWith(`ingress-1.${ns}`))!;
    expect(row).to.match(/NACKED: .*EADDRINUSE/);
    expect(row).to.contain(good.acked!.version);
  });
});
