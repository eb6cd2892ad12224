/**
 * A DNS ServiceEntry without addresses on a TLS port, end to end on loopback: the ServiceEntry
 * translated (tcproutes.ts sniCatchAll), a real proxy whose STRICT_DNS cluster resolves the host
 * through a DNS server the test starts (test/support/dns-server.ts: api.example.test →
 * 127.0.0.2), the sidecar's capture with an injected original destination, real TLS clients.
 *
 * The attack: the workload sends SNI api.example.test to a decoy TLS server of its choosing
 * (127.0.0.1, same port). It must end at the entry's resolved address, never at the decoy,
 * under ALLOW_ANY and REGISTRY_ONLY alike. A service with its own address on that port still
 * takes its connections. Another SNI: passed through to the address dialled under ALLOW_ANY;
 * refused and counted (BlackHoleCluster) under REGISTRY_ONLY.
 */
import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import type { ServiceEntry } from '../../../pkg/api/index.js';
import type { Sidecar } from '../../../pkg/api/sidecar.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { translate } from '../../../pkg/translate/index.js';
import { proxyScope } from '../../../pkg/translate/scope.js';
import { createLogger } from '../../../pkg/log/index.js';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import { OnDemandHolder } from '../../../proxy/sidecar/ondemand.js';
import type { OnDemandResult } from '../../../pkg/discovery/protocol.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import { makeServingCert } from '../../support/certs.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { startProxy, type Started } from './helpers.js';

const BLACKHOLE = 'weft_proxy_blackhole_connections_total';

/** A TLS server on `host:port` that answers `<name>` to whatever it reads, and counts its connections. */
async function tlsServer(
  name: string,
  host: string,
  port: number,
): Promise<{ server: tls.Server; port: number; accepted: () => number }> {
  const cert = makeServingCert(['api.example.test', 'other.example.net']);
  let accepted = 0;
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    s.on('error', () => s.destroy());
    s.once('data', () => s.end(name));
  });
  server.on('connection', () => accepted++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
}

/** TLS through the capture port with `servername`: the reply, or '' when the connection was closed first. */
function tlsThrough(port: number, servername: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    let reply = '';
    s.on('secureConnect', () => s.write('hi'));
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(reply));
  });
}

/** Plain bytes through the capture port: everything read until it is closed. */
function plaintext(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
  });
}

const entry = (port: number): ServiceEntry => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'api', namespace: 'ext' },
  spec: {
    hosts: ['api.example.test'],
    ports: [{ number: port, name: 'tls', protocol: 'TLS' }],
    resolution: 'DNS',
  },
});

/**
 * The sidecar's outbound capture in front of `proxy`, with an injected original destination;
 * `extra` adds what a case needs (REGISTRY_ONLY, on-demand hosts).
 */
async function startCapture(
  proxy: Started,
  dst: () => OriginalDst,
  extra: Partial<CaptureEnv> = {},
): Promise<{ server: net.Server; port: number }> {
  const env: CaptureEnv = {
    log: createLogger('test', { silent: true }),
    metrics: proxy.proxy.metrics,
    outboundHttp: () => null,
    outboundTcp: () => proxy.proxy.outboundTcp(),
    handOff: () => false,
    appHost: '127.0.0.1',
    capturePorts: [],
    sniffTimeoutMs: 2000,
    dst,
    ...extra,
  };
  const server = net.createServer((s) => void onOutbound(env, s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  env.capturePorts = [port];
  return { server, port };
}

/** The proxy's DNS settings for the test's DNS server (fast refreshes). */
const dnsSettings = (server: TestDnsServer) => ({
  servers: [server.address],
  minRefreshMs: 10,
  maxRefreshMs: 50,
  refreshRateMs: 50,
  timeoutMs: 500,
});

const registryOnly: Sidecar = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: { name: 'default', namespace: 'app' },
  spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } },
};

describe('sidecar: TLS to a DNS ServiceEntry without addresses goes to the entry, not the address dialled', function () {
  this.timeout(30_000);
  let dns: TestDnsServer;
  let real: Awaited<ReturnType<typeof tlsServer>>;
  let decoy: Awaited<ReturnType<typeof tlsServer>>;

  before(async () => {
    // the entry's real server on 127.0.0.2, the decoy on 127.0.0.1, same port
    real = await tlsServer('entry', '127.0.0.2', 0);
    decoy = await tlsServer('decoy', '127.0.0.1', real.port);
    dns = await startDnsServer({ 'api.example.test': { a: ['127.0.0.2'], ttl: 300 } });
  });
  after(async () => {
    real?.server.close();
    decoy?.server.close();
    await dns?.close();
  });

  for (const mode of ['ALLOW_ANY', 'REGISTRY_ONLY'] as const)
    describe(mode, () => {
      let proxy: Started;
      let capture: net.Server;
      let capturePort: number;
      let dst: OriginalDst;

      before(async () => {
        const { config } = translate({
          serviceEntries: [entry(real.port)],
          // a service with its own address on the same port: its listener, not the catch-all
          services: [
            {
              host: 'vip.app.svc.cluster.local',
              namespace: 'app',
              addresses: ['10.96.0.30'],
              ports: [{ number: real.port, name: 'tls', protocol: 'TLS' }],
              endpoints: [{ address: '127.0.0.1', labels: {} }],
            },
          ],
          proxy: { namespace: 'app', labels: { app: 'client' } },
          ...(mode === 'REGISTRY_ONLY'
            ? { scope: proxyScope({ sidecar: registryOnly, via: 'namespace' }, 'app') }
            : {}),
        });
        proxy = await startProxy({ ...config, dns: dnsSettings(dns) } as ProxyConfig);
        ({ server: capture, port: capturePort } = await startCapture(proxy, () => dst, {
          registryOnly: () => proxy.proxy.registryOnly(),
        }));
        dst = { address: '127.0.0.1', port: decoy.port, family: 4 };
      });
      after(async () => {
        capture?.close();
        await proxy?.stop();
      });

      it('SNI api.example.test dialled at the decoy ends at the address DNS gave for the entry', async () => {
        const decoyBefore = decoy.accepted();
        const queriesBefore = dns.queries.get('api.example.test/A') ?? 0;
        expect(await tlsThrough(capturePort, 'api.example.test')).to.equal('entry');
        expect(await tlsThrough(capturePort, 'API.Example.TEST.')).to.equal('entry');
        expect(decoy.accepted() - decoyBefore, 'connections the decoy saw').to.equal(0);
        // resolved by the proxy's DNS cluster (its warm-up asked before the config was applied)
        expect(queriesBefore + (dns.queries.get('api.example.test/A') ?? 0)).to.be.greaterThan(0);
        const metrics = proxy.proxy.metrics.render();
        expect(metrics).to.match(/istio_tcp_connections_opened_total\{[^}]*api\.example\.test[^}]*\} 2/);
      });

      it('a service’s own address wins over the catch-all, whatever the SNI', async () => {
        dst = { address: '10.96.0.30', port: decoy.port, family: 4 };
        try {
          // the VIP's endpoint is the decoy's address: routed there by the VIP service
          expect(await tlsThrough(capturePort, 'api.example.test')).to.equal('decoy');
        } finally {
          dst = { address: '127.0.0.1', port: decoy.port, family: 4 };
        }
      });

      it(
        mode === 'ALLOW_ANY'
          ? 'another SNI passes through to the address dialled (PassthroughCluster)'
          : 'another SNI, or plaintext, to an unknown address is refused and counted (BlackHoleCluster)',
        async () => {
          const decoyBefore = decoy.accepted();
          const holesBefore = proxy.proxy.metrics.counters.get(BLACKHOLE) ?? 0;
          const reply = await tlsThrough(capturePort, 'other.example.net');
          if (mode === 'ALLOW_ANY') {
            expect(reply).to.equal('decoy');
            expect(decoy.accepted() - decoyBefore).to.equal(1);
            expect(proxy.proxy.metrics.counters.get(BLACKHOLE) ?? 0).to.equal(holesBefore);
            return;
          }
          expect(reply).to.equal('');
          // a subdomain of the entry's host is not the host either
          expect(await tlsThrough(capturePort, 'x.api.example.test')).to.equal('');
          expect(await plaintext(capturePort, 'hello')).to.equal('');
          expect(decoy.accepted() - decoyBefore, 'connections the decoy saw').to.equal(0);
          expect(proxy.proxy.metrics.counters.get(BLACKHOLE)).to.equal(holesBefore + 3);
        },
      );
    });

  /**
   * On demand (ADR 0023): the sidecar starts without the entry. The address dialled is no
   * service's, so the ClientHello's SNI is asked for as a Host would be; weftd's part (an `ask`
   * that pushes the entry's config) is played here. Before, the address was asked, weftd knew it
   * not, and the connection was passed through to the decoy, skipping the entry and its routes.
   */
  describe('on demand: the SNI is asked for when the address is no service’s', () => {
    let proxy: Started;
    let capture: net.Server;
    let capturePort: number;
    let weftdDown = false;
    const asked: string[] = [];
    const dst: OriginalDst = { address: '127.0.0.1', port: 0, family: 4 };

    before(async () => {
      dst.port = decoy.port;
      const onDemand = { namespace: 'app', subscribed: [] as string[] };
      const proxyOf = (input: Parameters<typeof translate>[0], subscribed: string[]): ProxyConfig =>
        ({
          ...translate(input).config,
          dns: dnsSettings(dns),
          onDemand: { ...onDemand, subscribed },
        }) as ProxyConfig;
      const app = { namespace: 'app', labels: { app: 'client' } };
      proxy = await startProxy(proxyOf({ proxy: app }, []));
      const withEntry = proxyOf({ serviceEntries: [entry(real.port)], proxy: app }, ['ext/api.example.test']);
      const holder = new OnDemandHolder({
        ask: async (names): Promise<Record<string, OnDemandResult>> => {
          asked.push(...names);
          if (weftdDown) throw new Error('connect ECONNREFUSED');
          if (names[0] !== 'api.example.test') return { [names[0]!]: 'not_found' };
          await proxy.proxy.apply(withEntry);
          setImmediate(() => holder.configApplied());
          return { [names[0]]: 'found' };
        },
        isHeld: () => false,
      });
      ({ server: capture, port: capturePort } = await startCapture(proxy, () => dst, {
        onDemand: () =>
          proxy.proxy.current?.source.onDemand !== undefined ? (a, held) => holder.wait(a, held) : null,
      }));
    });
    after(async () => {
      capture?.close();
      await proxy?.stop();
    });

    it('the first connection with SNI api.example.test is held and ends at the entry, not the decoy', async () => {
      expect(proxy.proxy.outboundTcp()).to.equal(null);
      const decoyBefore = decoy.accepted();
      expect(await tlsThrough(capturePort, 'api.example.test')).to.equal('entry');
      expect(asked).to.deep.equal(['127.0.0.1', 'api.example.test']);
      expect(decoy.accepted() - decoyBefore, 'connections the decoy saw').to.equal(0);
      // held from now on: no new ask
      expect(await tlsThrough(capturePort, 'api.example.test')).to.equal('entry');
      expect(asked).to.have.length(2);
    });

    it('an SNI weftd does not know passes through as before (ALLOW_ANY), asked once', async () => {
      expect(await tlsThrough(capturePort, 'other.example.net')).to.equal('decoy');
      expect(asked.slice(2)).to.deep.equal(['other.example.net']);
      expect(await tlsThrough(capturePort, 'other.example.net')).to.equal('decoy');
      expect(asked).to.have.length(3);
    });

    it('weftd down: a name nobody could resolve is refused and counted, never passed through', async () => {
      weftdDown = true;
      const decoyBefore = decoy.accepted();
      const refusedBefore = proxy.proxy.metrics.counters.get('weft_proxy_passthrough_refused_total') ?? 0;
      expect(await tlsThrough(capturePort, 'new.example.net')).to.equal('');
      expect(decoy.accepted() - decoyBefore, 'connections the decoy saw').to.equal(0);
      expect(proxy.proxy.metrics.counters.get('weft_proxy_passthrough_refused_total')).to.equal(
        refusedBefore + 1,
      );
      // what it holds keeps working, and what weftd said it does not know still passes through
      expect(await tlsThrough(capturePort, 'api.example.test')).to.equal('entry');
      expect(await tlsThrough(capturePort, 'other.example.net')).to.equal('decoy');
    });
  });
});
