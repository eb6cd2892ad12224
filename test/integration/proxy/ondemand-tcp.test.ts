/**
 * On-demand hosts by original destination (ADR 0023) on the sidecar's real capture path, in
 * process on loopback: a real proxy whose config starts without a TCP service, the real
 * OnDemandHolder, and an `ask` standing in for weftd that swaps in the config with the service
 * (as a subscription's push does) and answers `found`. A client-first TCP connection to the
 * service's address is held, then routed by the service's L4 route (to its endpoint, not to the
 * address dialled); an address weftd does not know is not held past its answer and goes on as
 * before (ALLOW_ANY: passed through to the original destination). When nobody can say (weftd
 * down, or silent past the hold), the connection or HTTP request is refused (closed, or 503 NC),
 * never passed through: it may be for a mesh service that must get its routes and mTLS.
 */
import { expect } from 'chai';
import net from 'node:net';
import type { OnDemandResult } from '../../../pkg/discovery/protocol.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { translate, type ServiceRecord } from '../../../pkg/translate/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import { OnDemandHolder } from '../../../proxy/sidecar/ondemand.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import { findVHost } from '../../../proxy/compile/compile.js';
import { startProxy, type Started } from './helpers.js';

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

function exchange(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(out));
    s.on('connect', () => s.write(data));
  });
}

const service = (host: string, address: string, endpointPort: number): ServiceRecord => ({
  host,
  namespace: 'data',
  addresses: [address],
  ports: [{ number: 5555, name: 'tcp-p', protocol: 'TCP' }],
  endpoints: [{ address: '127.0.0.1', ports: { 'tcp-p': endpointPort }, labels: {} }],
});

describe('on-demand hosts by original destination (TCP, real capture path)', function () {
  this.timeout(30_000);
  let proxy: Started;
  let capturePort: number;
  let dst: OriginalDst;
  /** The server a passthrough reaches: it answers `direct:<what it read>`. */
  let directPort: number;
  const asked: string[] = [];
  /** weftd's state as the proxy sees it: answering, refusing connections, or never answering. */
  let weftd: 'up' | 'down' | 'silent' = 'up';
  const closers: (() => void)[] = [];
  let withService: ProxyConfig;

  before(async () => {
    const backend = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`backend:${d.toString()}`)));
    const direct = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`direct:${d.toString()}`)));
    const backendPort = await listen(backend);
    directPort = await listen(direct);
    closers.push(
      () => backend.close(),
      () => direct.close(),
    );
    const onDemand = { namespace: 'app', subscribed: [] as string[] };
    const empty = {
      ...translate({ services: [], proxy: { namespace: 'app', labels: {} } }).config,
      onDemand,
    };
    withService = {
      ...translate({
        services: [service('db.data.svc.cluster.local', '10.96.0.50', backendPort)],
        proxy: { namespace: 'app', labels: {} },
      }).config,
      onDemand: { ...onDemand, subscribed: ['data/db.data.svc.cluster.local'] },
    } as ProxyConfig;
    // the outbound listener served through handOff only, as in the sidecar
    proxy = await startProxy(empty as ProxyConfig, { unbound: (l) => l.name === 'outbound' });
    // weftd's part: the address of a known service is found and its config pushed; others not
    const holder = new OnDemandHolder({
      ask: async (names): Promise<Record<string, OnDemandResult>> => {
        asked.push(...names);
        if (weftd === 'down') throw new Error('connect ECONNREFUSED');
        if (weftd === 'silent') return new Promise<never>(() => undefined);
        if (names[0] !== '10.96.0.50') return { [names[0]!]: 'not_found' };
        await proxy.proxy.apply(withService);
        setImmediate(() => holder.configApplied());
        return { [names[0]]: 'found' };
      },
      isHeld: (authority) => {
        const l = proxy.proxy.unboundHttp();
        return l !== null && findVHost(l, authority) !== null;
      },
      holdMs: 400,
    });
    const env: CaptureEnv = {
      log: createLogger('test', { silent: true }),
      metrics: proxy.proxy.metrics,
      outboundHttp: () => proxy.proxy.unboundHttp(),
      outboundTcp: () => proxy.proxy.outboundTcp(),
      onDemand: () =>
        proxy.proxy.current?.source.onDemand !== undefined ? (a, held) => holder.wait(a, held) : null,
      handOff: (s) => proxy.proxy.handOff(s),
      appHost: '127.0.0.1',
      capturePorts: [],
      sniffTimeoutMs: 200,
      dst: () => dst,
    };
    const capture = net.createServer((s) => void onOutbound(env, s));
    capturePort = await listen(capture);
    closers.push(() => capture.close());
    dst = { address: '127.0.0.1', port: directPort, family: 4 };
  });
  after(async () => {
    await proxy?.stop();
    for (const c of closers) c();
  });

  it('an address weftd does not know: asked once, then passed through as before', async () => {
    expect(proxy.proxy.outboundTcp()).to.equal(null);
    expect(await exchange(capturePort, 'ping')).to.equal(`direct:ping`);
    expect(asked).to.deep.equal(['127.0.0.1']);
    // remembered: not asked again
    expect(await exchange(capturePort, 'again')).to.equal(`direct:again`);
    expect(asked).to.deep.equal(['127.0.0.1']);
  });

  it('the first connection to a service address it lacks is held, then routed by the service', async () => {
    dst = { address: '10.96.0.50', port: 5555, family: 4 };
    expect(await exchange(capturePort, 'hello')).to.equal('backend:hello');
    expect(asked.at(-1)).to.equal('10.96.0.50');
    expect(proxy.proxy.outboundTcp()?.find('10.96.0.50', 5555)?.name).to.equal(
      'db.data.svc.cluster.local:5555',
    );
    // held from now on: routed at once, no new ask
    const before = asked.length;
    expect(await exchange(capturePort, 'next')).to.equal('backend:next');
    expect(asked).to.have.length(before);
  });

  describe('nobody can say (weftd down or silent): refused, never passed through', () => {
    const PASSTHROUGH_REFUSED = 'weft_proxy_passthrough_refused_total';
    afterEach(() => {
      weftd = 'up';
      dst = { address: '127.0.0.1', port: directPort, family: 4 };
    });

    for (const state of ['down', 'silent'] as const) {
      it(`weftd ${state}: TCP to an address it may know is closed and counted`, async () => {
        weftd = state;
        dst = { address: state === 'down' ? '10.96.0.61' : '10.96.0.62', port: directPort, family: 4 };
        const before = proxy.proxy.metrics.counters.get(PASSTHROUGH_REFUSED) ?? 0;
        // passed through, the direct server would answer `direct:ping`
        expect(await exchange(capturePort, 'ping')).to.equal('');
        expect(proxy.proxy.metrics.counters.get(PASSTHROUGH_REFUSED)).to.equal(before + 1);
      });

      it(`weftd ${state}: an HTTP request for a Host it does not hold is answered 503 NC, saying why`, async () => {
        weftd = state;
        const reply = await exchange(
          capturePort,
          `GET / HTTP/1.1\r\nHost: ratings-${state}.prod:9080\r\nConnection: close\r\n\r\n`,
        );
        expect(reply).to.match(/^HTTP\/1\.1 503 /);
        expect(reply.toLowerCase()).to.contain('x-weft-response-flags: nc');
        expect(reply).to.contain(`host "ratings-${state}.prod" is not in this sidecar's config`);
        expect(reply).to.not.contain('direct:');
      });
    }

    it('weftd back: the same Host weftd does not know takes the unknown-host path (ALLOW_ANY: passed through)', async () => {
      const reply = await exchange(capturePort, 'GET / HTTP/1.1\r\nHost: ratings-down.prod\r\n\r\n');
      expect(reply.startsWith('direct:GET / HTTP/1.1')).to.equal(true);
    });
  });
});
