/**
 * VirtualService tcp/tls routes end to end on loopback: Istio objects translated (translate.ts,
 * tcproutes.ts), a real proxy, real TCP and TLS servers and clients.
 *
 * - Gateway: a TCP server split 3:1 between two backends over N connections (the proxy's `rand`
 *   is a fixed sequence, so the split is exact), istio_tcp_* metrics per destination; a TLS
 *   PASSTHROUGH server where `tls.connect` with a servername reaches the backend that terminates
 *   it (its certificate is the backend's), and bad input: an SNI no route takes, a stalled
 *   ClientHello, garbage, plaintext: each closed and counted, the proxy still serving.
 * - Sidecar outbound (capture with an injected original destination): a declared TCP port whose
 *   server speaks first gets its banner at once under a 60 s sniff timeout; TLS routed by SNI.
 */
import { expect } from 'chai';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import type { Gateway, VirtualService } from '../../../pkg/api/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { translate, translateGateway, type ServiceRecord } from '../../../pkg/translate/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import { L4_REFUSED_METRIC } from '../../../proxy/tcp-route.js';
import { makeServingCert, type ServingCert } from '../../support/certs.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';
import { metricValue, startProxy, type Started } from './helpers.js';

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** A TCP server that answers each connection's first bytes with `<name>:<bytes>` and closes. */
async function namedEcho(name: string): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`${name}:${d.toString()}`)));
  return { server, port: await listen(server) };
}

/** A TLS server (it terminates): answers `<name>` to whatever it reads, with its own certificate. */
async function tlsBackend(name: string, cert: ServingCert): Promise<{ server: tls.Server; port: number }> {
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
    s.on('error', () => s.destroy());
    s.once('data', () => s.end(name));
  });
  return { server, port: await listen(server) };
}

/** Writes `data`, returns everything read until the peer closes (or '' on an error). */
function exchange(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    s.on('connect', () => {
      if (data.length > 0) s.write(data);
    });
  });
}

/** TLS through `port` with `servername`; resolves to the reply and the server certificate's CN, or an error. */
function tlsThrough(
  port: number,
  servername: string,
  ca: string,
): Promise<{ reply: string; cn?: string } | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca });
    let reply = '';
    let cn: string | undefined;
    s.on('secureConnect', () => {
      cn = s.getPeerCertificate().subject?.CN as string | undefined;
      s.write('hi');
    });
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', (e) => resolve(e));
    s.on('close', () => resolve(cn === undefined ? new Error('closed before the handshake') : { reply, cn }));
  });
}

const svc = (
  host: string,
  address: string,
  port: number,
  protocol: string,
  endpointPort: number,
): ServiceRecord => ({
  host,
  namespace: 'data',
  addresses: address === '' ? [] : [address],
  ports: [{ number: port, name: `${protocol.toLowerCase()}-p`, protocol }],
  endpoints: [{ address: '127.0.0.1', ports: { [`${protocol.toLowerCase()}-p`]: endpointPort }, labels: {} }],
});
const vs = (name: string, spec: VirtualService['spec']): VirtualService => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'data' },
  spec,
});
const metricLine = (text: string, name: string, service: string): number =>
  metricValue(text, name, `destination_service="${service}"`);
const refused = (text: string, reason: string): number =>
  metricValue(text, L4_REFUSED_METRIC, `reason="${reason}"`);

describe('gateway TCP and TLS PASSTHROUGH servers (VirtualService tcp/tls routes)', function () {
  this.timeout(30_000);
  const closers: (() => unknown)[] = [];
  let proxy: Started;
  let tcpPort: number;
  let tlsPort: number;
  let certA: ServingCert;
  let certB: ServingCert;
  let accessLines: Record<string, unknown>[];

  before(async () => {
    const a = await namedEcho('a');
    const b = await namedEcho('b');
    certA = makeServingCert(['a.example.com']);
    certB = makeServingCert(['b.example.com']);
    const ta = await tlsBackend('A', certA);
    const tb = await tlsBackend('B', certB);
    closers.push(
      () => a.server.close(),
      () => b.server.close(),
      () => ta.server.close(),
      () => tb.server.close(),
    );
    tcpPort = await freePort();
    tlsPort = await freePort();
    const gw: Gateway = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge', namespace: 'data' },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: tcpPort, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
          {
            port: { number: tlsPort, name: 'tls', protocol: 'TLS' },
            hosts: ['a.example.com', 'b.example.com'],
            tls: { mode: 'PASSTHROUGH' },
          },
        ],
      },
    };
    const { config, warnings } = translateGateway({
      pod: { namespace: 'data', labels: { istio: 'ingressgateway' } },
      gateways: [gw],
      services: [
        svc('a.data.svc.cluster.local', '10.96.0.1', 7000, 'TCP', a.port),
        svc('b.data.svc.cluster.local', '10.96.0.2', 7000, 'TCP', b.port),
        svc('ta.data.svc.cluster.local', '10.96.0.3', 443, 'TLS', ta.port),
        svc('tb.data.svc.cluster.local', '10.96.0.4', 443, 'TLS', tb.port),
      ],
      virtualServices: [
        vs('split', {
          hosts: ['*'],
          gateways: ['edge'],
          tcp: [
            {
              match: [{ port: tcpPort }],
              route: [
                { destination: { host: 'a', port: { number: 7000 } }, weight: 75 },
                { destination: { host: 'b', port: { number: 7000 } }, weight: 25 },
              ],
            },
          ],
        }),
        vs('sni', {
          hosts: ['a.example.com', 'b.example.com'],
          gateways: ['edge'],
          tls: [
            {
              match: [{ sniHosts: ['a.example.com'] }],
              route: [{ destination: { host: 'ta', port: { number: 443 } } }],
            },
            {
              match: [{ sniHosts: ['b.example.com'] }],
              route: [{ destination: { host: 'tb', port: { number: 443 } } }],
            },
          ],
        }),
      ],
    });
    expect(warnings).to.deep.equal([]);
    for (const l of config.listeners) l.address = '127.0.0.1';
    expect(config.listeners.map((l) => [l.port, l.protocol])).to.deep.equal(
      [
        [tcpPort, 'TCP'],
        [tlsPort, 'TCP'],
      ].sort((x, y) => (x[0] as number) - (y[0] as number)),
    );
    // a fixed sequence instead of Math.random: 0, .25, .5, .75 → a, a, a, b, exactly 3:1
    let k = 0;
    config.telemetry = { accessLog: true };
    accessLines = [];
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) =>
      accessLines.push(
        ...d
          .toString()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      ),
    );
    proxy = await startProxy(config, {
      rand: () => (k++ % 4) / 4,
      gatewayTls: { helloTimeoutMs: 300, maxPendingHellosPerSource: 4 },
      accessLogSink: sink,
    });
  });
  after(async () => {
    await proxy?.stop();
    for (const c of closers) c();
  });

  it('splits TCP connections by weight (75/25 over 40 connections) and counts istio_tcp_* per destination', async () => {
    const seen = { a: 0, b: 0 };
    for (let i = 0; i < 40; i++) {
      const out = await exchange(tcpPort, 'ping');
      expect(out).to.match(/^[ab]:ping$/);
      seen[out[0] as 'a' | 'b']++;
    }
    expect(seen).to.deep.equal({ a: 30, b: 10 });
    const text = proxy.proxy.metrics.render();
    const A = 'a.data.svc.cluster.local';
    expect(metricLine(text, 'istio_tcp_connections_opened_total', A)).to.equal(30);
    expect(metricLine(text, 'istio_tcp_connections_closed_total', A)).to.equal(30);
    expect(metricLine(text, 'istio_tcp_received_bytes_total', A)).to.equal(30 * 'ping'.length); // request direction
    expect(metricLine(text, 'istio_tcp_sent_bytes_total', A)).to.equal(30 * 'a:ping'.length); // response direction
    expect(metricLine(text, 'istio_tcp_connections_opened_total', 'b.data.svc.cluster.local')).to.equal(10);
    // one access log line per connection, when it closed
    const line = accessLines.find((l) => l.upstream_cluster === 'outbound|7000||a.data.svc.cluster.local');
    expect(line).to.include({
      protocol: 'TCP',
      response_flags: '-',
      bytes_received: 4,
      bytes_sent: 6,
      route_name: 'data/split.tcp[0]',
    });
  });

  it('a client that half-closes (writes, then FIN) still gets the whole answer: the FIN is passed on, not taken for a close', async () => {
    for (let i = 0; i < 8; i++) {
      const out = await new Promise<string>((resolve) => {
        const c = net.connect(tcpPort, '127.0.0.1', () => c.end('ping')); // shutdown(SHUT_WR) after the request
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString()));
        c.on('error', () => undefined);
        c.on('close', () => resolve(got));
      });
      expect(out, `connection ${i}`).to.match(/^[ab]:ping$/);
    }
  });

  it('passes TLS through by SNI: the backend terminates it with its own certificate', async () => {
    expect(await tlsThrough(tlsPort, 'a.example.com', certA.caPem)).to.deep.equal({
      reply: 'A',
      cn: 'a.example.com',
    });
    expect(await tlsThrough(tlsPort, 'b.example.com', certB.caPem)).to.deep.equal({
      reply: 'B',
      cn: 'b.example.com',
    });
  });

  it('closes and counts an SNI no route takes, a stalled ClientHello, garbage and plaintext; still serves after', async () => {
    const before = proxy.proxy.metrics.render();
    const unknown = await tlsThrough(tlsPort, 'c.example.com', certA.caPem);
    expect(unknown).to.be.instanceOf(Error);
    // the first 5 bytes of a record header then nothing: closed at the hello timeout (300 ms here)
    expect(await exchange(tlsPort, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]))).to.equal('');
    // a handshake record announcing more than a TLS record may hold
    expect(await exchange(tlsPort, Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0, 0, 0]))).to.equal('');
    expect(await exchange(tlsPort, 'GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n')).to.equal('');
    const after = proxy.proxy.metrics.render();
    for (const reason of ['no_route', 'hello_timeout', 'hello_malformed', 'not_tls'])
      expect(refused(after, reason) - refused(before, reason), reason).to.equal(1);
    expect(accessLines.find((l) => l.requested_server_name === 'c.example.com')).to.include({
      response_flags: 'NR',
    });
    expect(await tlsThrough(tlsPort, 'a.example.com', certA.caPem)).to.deep.equal({
      reply: 'A',
      cn: 'a.example.com',
    });
  });

  it('one source holding silent connections spends only its own ClientHello budget (security review)', async () => {
    const before = refused(proxy.proxy.metrics.render(), 'hello_limit');
    // 10 connections from 127.0.0.1 that never say anything; the budget per source is 4 here
    const silent = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port: tlsPort }, () => resolve(s));
            s.on('error', () => undefined);
          }),
      ),
    );
    try {
      // another source is still served while they hold their slots
      const other = await new Promise<{ reply: string; cn?: string } | Error>((resolve) => {
        const s = tls.connect({
          socket: net.connect({ host: '127.0.0.1', port: tlsPort, localAddress: '127.0.0.2' }),
          servername: 'b.example.com',
          ca: certB.caPem,
        });
        let reply = '';
        s.on('secureConnect', () => s.write('hi'));
        s.on('data', (d: Buffer) => (reply += d.toString()));
        s.on('error', (e) => resolve(e));
        s.on('close', () => resolve({ reply }));
      });
      expect(other).to.deep.equal({ reply: 'B' });
      await waitFor('hello_limit refusals', () =>
        refused(proxy.proxy.metrics.render(), 'hello_limit') - before >= 1 ? true : undefined,
      );
    } finally {
      for (const s of silent) s.destroy();
    }
  });
});

describe('sidecar outbound TCP and TLS services (capture, injected original destination)', function () {
  this.timeout(20_000);
  const SNIFF_TIMEOUT_MS = 60_000;
  const closers: (() => unknown)[] = [];
  let proxy: Started;
  let capturePort: number;
  let dst: OriginalDst | null = null;
  let certA: ServingCert;
  let certB: ServingCert;
  let directPort: number;

  before(async () => {
    const banner = net.createServer((c) => {
      c.on('error', () => c.destroy());
      c.write('220 banner\r\n'); // server-first: the client says nothing until it reads this
      c.once('data', (d: Buffer) => c.end(`got:${d.toString()}`));
    });
    const bannerPort = await listen(banner);
    certA = makeServingCert(['a.example.com']);
    certB = makeServingCert(['secure.example.com']);
    const ta = await tlsBackend('A', certA);
    const tb = await tlsBackend('B', certB);
    const direct = await namedEcho('direct');
    directPort = direct.port;
    closers.push(
      () => banner.close(),
      () => ta.server.close(),
      () => tb.server.close(),
      () => direct.server.close(),
    );
    const { config } = translate({
      services: [
        // resolution NONE (an ORIGINAL_DST cluster): the connection goes where it was going
        {
          ...svc('direct.example.com', '127.0.0.1', directPort, 'TCP', 0),
          endpoints: [],
          resolution: 'NONE',
        },
        svc('mysql.data.svc.cluster.local', '10.96.0.20', 3306, 'MYSQL', bannerPort),
        svc('secure.example.com', '10.96.0.21', 443, 'TLS', tb.port),
        svc('a-backend.data.svc.cluster.local', '10.96.0.22', 443, 'TLS', ta.port),
      ],
      virtualServices: [
        vs('secure', {
          hosts: ['secure.example.com'],
          tls: [
            {
              match: [{ sniHosts: ['a.example.com'], port: 443 }],
              route: [{ destination: { host: 'a-backend', port: { number: 443 } } }],
            },
          ],
        }),
      ],
      proxy: { namespace: 'data', labels: { app: 'client' } },
    });
    expect(config.outboundTcp?.map((s) => s.name)).to.include.members([
      'mysql.data.svc.cluster.local:3306',
      'secure.example.com:443',
    ]);
    proxy = await startProxy(config as ProxyConfig);
    const env: CaptureEnv = {
      log: createLogger('test', { silent: true }),
      metrics: proxy.proxy.metrics,
      outboundHttp: () => null,
      outboundTcp: () => proxy.proxy.outboundTcp(),
      handOff: () => false,
      appHost: '127.0.0.1',
      capturePorts: [],
      sniffTimeoutMs: SNIFF_TIMEOUT_MS,
      dst: () => dst,
    };
    const capture = net.createServer((s) => void onOutbound(env, s));
    capturePort = await listen(capture);
    env.capturePorts = [capturePort];
    closers.push(() => capture.close());
  });
  after(async () => {
    await proxy?.stop();
    for (const c of closers) c();
  });

  it(`a declared MYSQL port: the server's banner arrives without waiting for the ${SNIFF_TIMEOUT_MS} ms sniff`, async () => {
    dst = { address: '10.96.0.20', port: 3306, family: 4 };
    const s = net.connect(capturePort, '127.0.0.1');
    // the test's own 20 s timeout is well under the sniff timeout: sniffing would fail it
    const banner = await new Promise<string>((resolve) =>
      s.once('data', (d: Buffer) => resolve(d.toString())),
    );
    expect(banner).to.equal('220 banner\r\n');
    s.write('login');
    const rest = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
    expect(rest).to.equal('got:login');
    s.destroy();
    expect(
      metricLine(
        proxy.proxy.metrics.render(),
        'istio_tcp_connections_opened_total',
        'mysql.data.svc.cluster.local',
      ),
    ).to.equal(1);
  });

  it('a TLS port: the SNI a tls rule names goes to its destination, any other to the service', async () => {
    dst = { address: '10.96.0.21', port: 443, family: 4 };
    expect(await tlsThrough(capturePort, 'a.example.com', certA.caPem)).to.deep.equal({
      reply: 'A',
      cn: 'a.example.com',
    });
    expect(await tlsThrough(capturePort, 'secure.example.com', certB.caPem)).to.deep.equal({
      reply: 'B',
      cn: 'secure.example.com',
    });
  });

  it('a service resolved by its original destination (ServiceEntry resolution NONE) is routed there', async () => {
    dst = { address: '127.0.0.1', port: directPort, family: 4 };
    expect(await exchange(capturePort, 'ping')).to.equal('direct:ping');
    const opened = metricLine(
      proxy.proxy.metrics.render(),
      'istio_tcp_connections_opened_total',
      'direct.example.com',
    );
    expect(opened).to.equal(1);
  });

  it('an address that is no service is still sniffed (not taken by the L4 table)', () => {
    expect(proxy.proxy.outboundTcp()?.find('10.96.0.99', 3306) ?? null).to.equal(null);
    expect(proxy.proxy.outboundTcp()?.find('10.96.0.20', 3306)?.name).to.equal(
      'mysql.data.svc.cluster.local:3306',
    );
  });
});
