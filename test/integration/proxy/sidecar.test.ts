/**
 * `proxy sidecar`, `proxy gateway` and `proxy wait` as real processes, configured by a fake weftd
 * (real TLS, the real wire protocol): first config → ready; a new version → routes change; a cut
 * stream → keeps serving and reconnects; a bad token → stays unready with a clear log; app probes
 * replayed; SIGTERM drains and exits 0. Loopback only (captures are reached directly, so routing
 * is by Host; the netns test covers original destinations).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import net from 'node:net';
import http2 from 'node:http2';
import { freePort } from '../../support/ports.js';
import path from 'node:path';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { DiscoveryClient, type DiscoveryClientOptions } from '../../../proxy/discovery/client.js';
import { heldStateOf } from '../../../pkg/discovery/delta.js';
import type { DiscoveryMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { startProxyProcess, type ProxyProcess } from '../../support/proxy-process.js';
import { request, sleep, upstream, type Upstream } from './helpers.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

function config(
  version: string,
  ups: Upstream,
  listener: { address: string; port: number } = { address: '0.0.0.0', port: 15001 },
): ProxyConfig {
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version,
    listeners: [
      {
        name: 'outbound',
        protocol: 'HTTP',
        ...listener,
        virtualHosts: [
          {
            name: 'reviews',
            domains: ['reviews', 'reviews:9080'],
            routes: [{ action: { type: 'route', destinations: [{ cluster: 'reviews', weight: 100 }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: 'reviews', endpoints: [{ address: '127.0.0.1', port: ups.port }] }],
    telemetry: { workload: { name: 'productpage', namespace: 'bookinfo' } },
  };
}

/** The suite's pod, bookinfo/productpage-1 (`extraEnv` overrides), draining 5 s, sniffing 300 ms. */
function startProc(
  kind: 'sidecar' | 'gateway',
  weftd: FakeWeftd,
  extraEnv: Record<string, string> = {},
): Promise<ProxyProcess> {
  return startProxyProcess(
    kind,
    weftd,
    { POD_NAME: 'productpage-1', POD_NAMESPACE: 'bookinfo', ...extraEnv },
    ['--drain-seconds', '5', '--sniff-timeout-ms', '300'],
  );
}

async function ready(p: ProxyProcess): Promise<{ status: number; body: string }> {
  const r = await request(p.ports.health!, { path: '/healthz/ready' });
  return { status: r.status, body: r.body };
}

/** Polls `check` until it returns true (semantic wait, generous bound). */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** A gRPC health server (h2c): SERVING for every service but "down". */
async function grpcHealth(): Promise<http2.Http2Server> {
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const service = body.length > 7 ? body.subarray(7).toString() : '';
      const ok = headers[':path'] === '/grpc.health.v1.Health/Check' && service !== 'down';
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, ok ? 1 : 2]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function runWait(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'proxy/main.ts', 'wait', ...args], {
      cwd: ROOT,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

describe('proxy sidecar with a fake weftd', function () {
  this.timeout(120_000);
  let a: Upstream;
  let b: Upstream;
  let weftd: FakeWeftd;
  let p: ProxyProcess;
  let closedPort: number;
  let grpc: http2.Http2Server;

  before(async () => {
    a = await upstream('a');
    grpc = await grpcHealth();
    const grpcPort = (grpc.address() as net.AddressInfo).port;
    b = await upstream('b');
    closedPort = await freePort();
    weftd = await fakeWeftd(null);
    p = await startProc('sidecar', weftd, {
      ISTIO_KUBE_APP_PROBERS: JSON.stringify({
        '/app-health/app/readyz': { httpGet: { path: '/healthz', port: a.port } },
        '/app-health/app/livez': { tcpSocket: { port: closedPort }, timeoutSeconds: 2 },
        '/app-health/app/startupz': { tcpSocket: { port: a.port } },
        '/app-health/grpc/readyz': { grpc: { port: grpcPort, service: 'reviews' } },
        '/app-health/grpc/livez': { grpc: { port: grpcPort, service: 'down' } },
      }),
    });
  });
  after(async () => {
    p?.child.kill('SIGKILL');
    await weftd?.close();
    await a?.close();
    await b?.close();
    grpc?.close();
  });

  it('is not ready before the first config, and says why', async () => {
    await until('the proxy connected', () => weftd.openStreams() === 1);
    const r = await ready(p);
    expect(r.status).to.equal(503);
    expect(r.body).to.contain('no config from weftd yet');
    expect(weftd.requests[0]!.query).to.deep.equal({
      kind: 'sidecar',
      namespace: 'bookinfo',
      pod: 'productpage-1',
      acks: true, // it answers every push with ACK/NACK
      delta: true, // and takes delta pushes (ADR 0020)
      serviceDomains: true, // and spells out short service domains (issue #19)
      onDemand: true, // and asks for hosts it does not hold (ADR 0023)
    });
  });

  it('proxy wait times out with the reason while the proxy is unready', async () => {
    const r = await runWait(['--url', `http://127.0.0.1:${p.ports.health}/healthz/ready`, '--timeout', '1']);
    expect(r.code).to.equal(1);
    expect(r.out).to.contain('not ready after 1 s').and.to.contain('no config from weftd yet');
  });

  it('the first config makes it ready and routes outbound HTTP by Host', async () => {
    weftd.push(config('v1', a));
    await until('ready', async () => (await ready(p)).status === 200);
    const r = await request(p.ports.outbound!, { headers: { host: 'reviews:9080' } });
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('a');
  });

  it('proxy wait returns 0 once ready', async () => {
    const r = await runWait(['--url', `http://127.0.0.1:${p.ports.health}/healthz/ready`, '--timeout', '10']);
    expect(r.code, r.out).to.equal(0);
  });

  it('a new version changes the routes', async () => {
    weftd.push(config('v2', b));
    await until(
      'routed to b',
      async () => (await request(p.ports.outbound!, { headers: { host: 'reviews' } })).body === 'b',
    );
  });

  it('a bad config is rejected and the last good one stays', async () => {
    const bad = {
      ...config('v3-bad', a),
      listeners: [{ name: 'x', protocol: 'NOPE', port: 1 }],
    } as unknown as ProxyConfig;
    weftd.push(bad);
    await until('rejection logged', () => p.log().includes('Rejected proxy config'));
    expect(p.log()).to.contain('config v3-bad from weftd has');
    expect((await request(p.ports.outbound!, { headers: { host: 'reviews' } })).body).to.equal('b');
    expect((await ready(p)).status).to.equal(200);
  });

  it('an unknown host without an original destination gets 404 NR from the router', async () => {
    const r = await request(p.ports.outbound!, { headers: { host: 'nowhere.example' } });
    expect(r.status).to.equal(404);
    expect(r.headers['x-weft-response-flags']).to.equal('NR');
  });

  it('inbound connections reach the app on the Host port (no original destination here)', async () => {
    const r = await request(p.ports.inbound!, {
      headers: { host: `reviews:${a.port}` },
      path: '/in',
      agent: false,
    });
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('a');
    expect(a.seen.at(-1)!.url).to.equal('/in');
  });

  it('replays the app probes from ISTIO_KUBE_APP_PROBERS', async () => {
    const readyz = await request(p.ports.health!, { path: '/app-health/app/readyz' });
    expect(readyz.status).to.equal(200);
    expect(a.seen.at(-1)!.url).to.equal('/healthz');
    expect(a.seen.at(-1)!.headers['user-agent']).to.match(/^kube-probe/);
    expect((await request(p.ports.health!, { path: '/app-health/app/startupz' })).status).to.equal(200);
    const livez = await request(p.ports.health!, { path: '/app-health/app/livez' });
    expect(livez.status).to.equal(503);
    expect(livez.body).to.contain(`connect 127.0.0.1:${closedPort}`);
    expect((await request(p.ports.health!, { path: '/app-health/other/livez' })).status).to.equal(404);
    expect((await request(p.ports.health!, { path: '/app-health/grpc/readyz' })).body).to.contain('SERVING');
    const down = await request(p.ports.health!, { path: '/app-health/grpc/livez' });
    expect(down.status).to.equal(503);
    expect(down.body).to.contain('not SERVING');
  });

  it('serves Istio metrics on the Prometheus port', async () => {
    const r = await request(p.ports.metrics!, { path: '/stats/prometheus' });
    expect(r.status).to.equal(200);
    expect(r.body).to.contain('istio_requests_total{');
    expect(r.body).to.contain('source_workload="productpage"');
  });

  it('a cut stream: keeps serving, reconnects, and takes the config again', async () => {
    const before = weftd.requests.length;
    weftd.cut();
    expect((await request(p.ports.outbound!, { headers: { host: 'reviews' } })).body).to.equal('b');
    await until('reconnected', () => weftd.requests.length > before && weftd.openStreams() === 1);
    expect((await ready(p)).status).to.equal(200);
    weftd.push(config('v4', a));
    await until(
      'routed to a again',
      async () => (await request(p.ports.outbound!, { headers: { host: 'reviews' } })).body === 'a',
    );
  });

  it('a STRICT inbound block: plaintext inbound is refused, and the admin says why (GET /inbound, POST /inbound/explain)', async () => {
    const strict: ProxyConfig = {
      ...config('v5-strict', a),
      inbound: { mtls: { mode: 'STRICT', policy: 'PeerAuthentication bookinfo/strict' } },
    };
    weftd.push(strict);
    await until('STRICT applied', () => p.log().includes('"version":"v5-strict"'));
    const r = await request(p.ports.inbound!, { headers: { host: `reviews:${a.port}` }, agent: false }).then(
      (x) => `status ${x.status}`,
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    expect(r, 'closed without an answer').to.be.oneOf(['ECONNRESET', 'socket hang up']);
    const d = JSON.parse((await request(p.ports.admin!, { path: '/inbound' })).body) as {
      workload: unknown;
      refused: Record<string, number>;
      recentRefusals: { message: string }[];
    };
    expect(d.workload).to.deep.equal({ mode: 'STRICT', policy: 'PeerAuthentication bookinfo/strict' });
    expect(d.refused.plaintext).to.be.greaterThan(0);
    expect(d.recentRefusals.at(-1)!.message).to.match(
      /^plaintext from 127\.0\.0\.1 refused by PeerAuthentication bookinfo\/strict/,
    );
    expect(p.log()).to.contain('plaintext from 127.0.0.1 refused by PeerAuthentication bookinfo/strict');
    const explained = await request(p.ports.admin!, {
      path: '/inbound/explain',
      method: 'POST',
      body: JSON.stringify({ port: 9080, from: '10.244.0.7' }),
    });
    expect(JSON.parse(explained.body)).to.deep.include({
      accepted: false,
      outcome:
        'refused: plaintext from 10.244.0.7 refused by PeerAuthentication bookinfo/strict on port 9080: not TLS',
    });
    const peer = await request(p.ports.admin!, {
      path: '/inbound/explain',
      method: 'POST',
      body: JSON.stringify({ port: 9080, peer: 'spiffe://cluster.local/ns/x/sa/y' }),
    });
    // the sidecar holds a workload certificate from weftd's CA, so mesh mTLS can be terminated
    expect(JSON.parse(peer.body), 'the workload certificate terminates mTLS').to.deep.include({
      accepted: true,
      connectionSecurityPolicy: 'mutual_tls',
    });
    weftd.push(config('v6', a));
    await until('back to PERMISSIVE', () => p.log().includes('"version":"v6"'));
    expect(
      (await request(p.ports.inbound!, { headers: { host: `reviews:${a.port}` }, agent: false })).status,
    ).to.equal(200);
  });

  it('SIGTERM: an inbound request in flight still completes, then exit 0', async () => {
    let release = (): void => undefined;
    a.handler = (_req, res) => {
      release = () => res.end('late answer');
      res.writeHead(200);
    };
    const seen = a.seen.length;
    const reply = request(p.ports.inbound!, {
      headers: { host: `reviews:${a.port}` },
      path: '/slow',
      agent: false,
    });
    await until('the app has the request', () => a.seen.length > seen);
    p.child.kill('SIGTERM');
    await until('draining', () => p.log().includes('Received signal; draining'));
    expect((await ready(p)).body).to.contain('DRAINING');
    release();
    const r = await reply;
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('late answer');
    expect(await p.exited).to.equal(0);
    expect(p.log()).to.contain('Proxy stopped');
  });
});

describe('proxy sidecar with a bad token', function () {
  this.timeout(120_000);
  let weftd: FakeWeftd;
  let p: ProxyProcess;
  before(async () => {
    const a = await upstream('a');
    weftd = await fakeWeftd(config('v1', a));
    await a.close();
    p = await startProc('sidecar', weftd, { WEFT_TOKEN_PATH: weftd.badTokenPath });
  });
  after(async () => {
    p?.child.kill('SIGKILL');
    await weftd?.close();
  });

  it('stays unready, retries, and logs weftd’s answer', async () => {
    await until('two attempts', () => weftd.requests.length >= 2);
    expect(weftd.requests.every((r) => !r.authorized)).to.equal(true);
    const r = await ready(p);
    expect(r.status).to.equal(503);
    expect(r.body).to.contain('HTTP 401').and.to.contain('WEFT_UNAUTHENTICATED');
    expect(p.log()).to.contain('Discovery stream ended; reconnecting').and.to.contain('WEFT_UNAUTHENTICATED');
  });
});

describe('proxy gateway with a fake weftd', function () {
  this.timeout(120_000);
  let weftd: FakeWeftd;
  let p: ProxyProcess;
  let a: Upstream;
  let port: number;
  before(async () => {
    a = await upstream('a');
    port = await freePort();
    weftd = await fakeWeftd(config('g1', a, { address: '127.0.0.1', port }));
    p = await startProc('gateway', weftd);
  });
  after(async () => {
    p?.child.kill('SIGKILL');
    await weftd?.close();
    await a?.close();
  });

  it('asks for a gateway config, binds its listeners and becomes ready', async () => {
    await until('ready', async () => (await ready(p)).status === 200);
    expect(weftd.requests[0]!.query.kind).to.equal('gateway');
    expect(p.ports.outbound).to.equal(undefined);
    const r = await request(port, { headers: { host: 'reviews' } });
    expect(r.body).to.equal('a');
  });
});

/** A sidecar's DiscoveryClient against `weftd` (quick reconnects) that notes each version it applies in `applied`. */
function clientOf(
  weftd: FakeWeftd,
  applied: string[],
  opts: Partial<DiscoveryClientOptions> = {},
): DiscoveryClient {
  return new DiscoveryClient({
    address: weftd.address,
    caRootPath: weftd.rootPath,
    tokenPath: weftd.tokenPath,
    request: { kind: 'sidecar', namespace: 'ns', pod: 'p' },
    log: createLogger('test', { silent: true }),
    onConfig: async (_c, v) => void applied.push(v),
    backoff: { baseMs: 10, maxMs: 50, jitter: 0 },
    ...opts,
  });
}

describe('discovery client: a silent stream is dead', function () {
  this.timeout(30_000);
  it('reconnects after 3 ping intervals without a message', async () => {
    const a = await upstream('a');
    const weftd = await fakeWeftd(config('s1', a));
    const applied: string[] = [];
    const client = clientOf(weftd, applied, { pingIntervalMs: 100 });
    const running = client.run();
    try {
      await until('second connection', () => weftd.requests.length >= 2);
      expect(applied[0]).to.equal('s1');
      expect(client.lastProblem ?? '').to.satisfy((s: string) => s === '' || s.includes('dead stream'));
    } finally {
      client.stop();
      await running;
      await weftd.close();
      await a.close();
    }
  });
});

describe('discovery client: a reconnect that brings back the running config', function () {
  this.timeout(30_000);
  it('is ACKed without recompiling it, whole or as an empty delta (a weftd restart must not stall every proxy), and a change still applies', async () => {
    const a = await upstream('a');
    const weftd = await fakeWeftd(null);
    const whole = (c: ProxyConfig, nonce: string): DiscoveryMessage => ({
      type: 'config',
      version: c.version,
      nonce,
      state: heldStateOf(c)!.held.state,
      config: c,
    });
    const compiled: string[] = [];
    const client = clientOf(weftd, compiled);
    const running = client.run();
    try {
      await until('connected', () => weftd.openStreams() === 1);
      weftd.send(whole(config('r1', a), 'n1'));
      await until('first config', () => client.applied.full === 1);
      weftd.cut();
      await until('reconnected', () => weftd.requests.length === 2 && weftd.openStreams() === 1);
      // the proxy resumes from the state it holds...
      expect(weftd.requests[1]!.query.state).to.equal(heldStateOf(config('r1', a))!.held.state);
      // ...and a weftd that cannot send a delta from it (a restarted one) sends the whole config
      weftd.send(whole(config('r1', a), 'n2'));
      await until('the same config seen', () => client.applied.unchanged === 1);
      expect(compiled).to.deep.equal(['r1']);
      // a weftd that resumes the stream sends an empty delta from that state: not compiled either
      const state = heldStateOf(config('r1', a))!.held.state;
      weftd.send({
        type: 'delta',
        version: 'r1',
        nonce: 'n2b',
        base: state,
        state,
        resources: [],
        removed: [],
      });
      await until('the empty delta seen', () => client.applied.unchanged === 2);
      expect(compiled).to.deep.equal(['r1']);
      weftd.send(whole(config('r2', a, { address: '0.0.0.0', port: 15002 }), 'n3'));
      await until('a changed config', () => client.applied.full === 2);
      expect(compiled).to.deep.equal(['r1', 'r2']);
    } finally {
      client.stop();
      await running;
      await weftd.close();
      await a.close();
    }
  });
});
