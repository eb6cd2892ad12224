/**
 * The sidecar's capture dispatch on loopback, with the original destination injected (the netns
 * test covers the real one): what goes to the router, what is passed through, what is refused.
 */
import { expect } from 'chai';
import net from 'node:net';
import { DETECTION_TIMEOUT_METRIC, onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import type { CompiledHttpListener } from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { createLogger } from '../../../pkg/log/index.js';
import { compileRegistryOnly, type RegistryOnly } from '../../../proxy/sidecar/registry-only.js';
import { raw, startProxy, reviewsEntry, upstream, type Started, type Upstream } from './helpers.js';

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

describe('sidecar capture dispatch (loopback, injected original destination)', function () {
  this.timeout(20_000);
  let app: Upstream;
  let proxy: Started;
  let echo: net.Server;
  let echoPort: number;
  let capture: net.Server;
  let capturePort: number;
  let dst: OriginalDst | null = null;
  /** outboundTrafficPolicy of the config in force (null: ALLOW_ANY). */
  let registryOnly: RegistryOnly | null = null;
  const metrics = new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });

  before(async () => {
    app = await upstream('app');
    proxy = await startProxy(reviewsEntry([app]));
    echo = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`echo:${d.toString()}`)));
    echoPort = await listen(echo);
    const env: CaptureEnv = {
      log: createLogger('test', { silent: true }),
      metrics,
      outboundHttp: () => (proxy.proxy.current?.listeners[0] as CompiledHttpListener | undefined) ?? null,
      // hand HTTP to the standalone proxy's listener over loopback (its listener is bound)
      handOff: (sock) => {
        const up = net.connect(proxy.port, '127.0.0.1');
        sock.pipe(up).pipe(sock);
        return true;
      },
      appHost: '127.0.0.1',
      capturePorts: [],
      sniffTimeoutMs: 200,
      dst: () => dst,
      registryOnly: () => registryOnly,
    };
    capture = net.createServer((s) => void onOutbound(env, s));
    capturePort = await listen(capture);
    env.capturePorts = [capturePort];
  });
  after(async () => {
    capture?.close();
    echo?.close();
    await proxy?.stop();
    await app?.close();
  });

  it('passes a non-HTTP connection through to its original destination', async () => {
    dst = { address: '127.0.0.1', port: echoPort, family: 4 };
    expect(await raw(capturePort, 'hello')).to.equal('echo:hello');
    expect(metrics.counters.get('weft_proxy_passthrough_connections_total')).to.be.greaterThan(0);
  });

  it('opens no upstream for a client that resets while it is being sniffed (a TCP health check)', async () => {
    let accepted = 0;
    const target = net.createServer((c) => {
      accepted++;
      c.destroy();
    });
    const port = await listen(target);
    dst = { address: '127.0.0.1', port, family: 4 };
    try {
      const probe = net.connect(capturePort, '127.0.0.1');
      await new Promise<void>((r) => probe.once('connect', () => r()));
      probe.resetAndDestroy();
      // Long enough for the sniff timeout (200 ms) and a connect to the target to have happened.
      await new Promise((r) => setTimeout(r, 600));
      expect(accepted, 'connections the target accepted').to.equal(0);
    } finally {
      target.close();
    }
  });

  it('passes a server-first connection through after the sniff timeout', async () => {
    const greeter = net.createServer((c) => c.end('220 greeting\r\n'));
    const port = await listen(greeter);
    dst = { address: '127.0.0.1', port, family: 4 };
    try {
      expect(await raw(capturePort, '')).to.equal('220 greeting\r\n');
      // counted: a server-first protocol on an undeclared port is delayed on every connection
      const timeouts = metrics.labelledCounters.get(DETECTION_TIMEOUT_METRIC);
      expect(timeouts?.get('side="outbound"')).to.be.greaterThan(0);
    } finally {
      greeter.close();
    }
  });

  it('hands HTTP for a known host to the router, whatever the original destination', async () => {
    dst = { address: '127.0.0.1', port: echoPort, family: 4 };
    const out = await raw(
      capturePort,
      'GET /routed HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n',
    );
    expect(out).to.match(/^HTTP\/1\.1 200/);
    expect(out).to.contain('x-upstream: app').and.not.to.contain('echo:');
    expect(app.seen.at(-1)!.url).to.equal('/routed');
  });

  it('passes HTTP for a host the config does not know through (PassthroughCluster)', async () => {
    dst = { address: '127.0.0.1', port: app.port, family: 4 };
    const out = await raw(
      capturePort,
      'GET /direct HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n',
    );
    expect(out).to.match(/^HTTP\/1\.1 200/);
    expect(app.seen.at(-1)!.url).to.equal('/direct');
  });

  it('refuses a connection whose original destination is the capture port itself (no loop)', async () => {
    dst = { address: '127.0.0.1', port: capturePort, family: 4 };
    const before = metrics.counters.get('weft_proxy_passthrough_refused_total') ?? 0;
    expect(await raw(capturePort, 'data')).to.equal('');
    expect(metrics.counters.get('weft_proxy_passthrough_refused_total')).to.equal(before + 1);
  });

  describe('REGISTRY_ONLY (the Sidecar outboundTrafficPolicy)', () => {
    afterEach(() => {
      registryOnly = null;
    });

    it('answers HTTP for a host outside the registry 404 NR instead of passing it through', async () => {
      dst = { address: '127.0.0.1', port: app.port, family: 4 };
      registryOnly = compileRegistryOnly({ mode: 'REGISTRY_ONLY', destinations: [] });
      const seen = app.seen.length;
      const out = await raw(
        capturePort,
        'GET /direct HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n',
      );
      expect(out).to.match(/^HTTP\/1\.1 404/);
      expect(out.toLowerCase()).to.contain('x-weft-response-flags: nr');
      expect(app.seen.length, 'nothing reached the destination').to.equal(seen);
    });

    it('still routes HTTP for a known host', async () => {
      dst = { address: '127.0.0.1', port: echoPort, family: 4 };
      registryOnly = compileRegistryOnly({ mode: 'REGISTRY_ONLY', destinations: [] });
      const out = await raw(
        capturePort,
        'GET /ok HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n',
      );
      expect(out).to.match(/^HTTP\/1\.1 200/);
    });

    it('closes TCP to a destination outside the registry and counts it', async () => {
      dst = { address: '127.0.0.1', port: echoPort, family: 4 };
      registryOnly = compileRegistryOnly({
        mode: 'REGISTRY_ONLY',
        destinations: [{ address: '10.96.0.10', ports: [5432] }],
      });
      const before = metrics.counters.get('weft_proxy_blackhole_connections_total') ?? 0;
      expect(await raw(capturePort, 'hello')).to.equal('');
      expect(metrics.counters.get('weft_proxy_blackhole_connections_total')).to.equal(before + 1);
    });

    it('passes TCP to a registry destination through', async () => {
      dst = { address: '127.0.0.1', port: echoPort, family: 4 };
      registryOnly = compileRegistryOnly({
        mode: 'REGISTRY_ONLY',
        destinations: [{ address: '127.0.0.1', ports: [echoPort] }],
      });
      expect(await raw(capturePort, 'hello')).to.equal('echo:hello');
    });
  });
});
