/**
 * ServiceEntry resolution end to end on loopback: an in-process proxy, backends on 127.0.0.2 and
 * 127.0.0.3, and a DNS server the test starts on 127.0.0.1 (test/support/dns-server.ts) — no
 * question ever leaves the machine.
 *  - DNS: the host resolves to a backend and requests reach it; a new answer after the TTL
 *    moves traffic to the new address; an unresolvable host is 503 UH saying why.
 *  - NONE: requests go to the connection's original destination (the sidecar's capture, with
 *    the original destination injected as in capture.test.ts).
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { configFromText } from '../../../proxy/config/load.js';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';
import { waitFor } from '../../support/wait.js';
import { request, startProxy, type Started } from './helpers.js';

interface Backend {
  server: http.Server;
  hits: number;
}

async function backend(name: string, host: string, port: number): Promise<Backend> {
  const b: Backend = {
    hits: 0,
    server: http.createServer((_req, res) => {
      b.hits++;
      res.setHeader('connection', 'close');
      res.end(name);
    }),
  };
  await new Promise<void>((resolve, reject) => {
    b.server.once('error', reject);
    b.server.listen(port, host, () => resolve());
  });
  return b;
}

const entry = (name: string, spec: string): string => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
${spec}
`;

describe('ServiceEntry resolution (loopback DNS server, in-process proxy)', function () {
  this.timeout(30_000);
  let dns: TestDnsServer;
  let a: Backend;
  let b: Backend;
  let port: number;
  let proxy: Started | undefined;

  before(async () => {
    a = await backend('backend-a', '127.0.0.2', 0);
    port = (a.server.address() as net.AddressInfo).port;
    b = await backend('backend-b', '127.0.0.3', port);
    dns = await startDnsServer({ 'api.test': { a: ['127.0.0.2'], ttl: 1 } });
  });
  after(async () => {
    await proxy?.stop();
    await dns?.close();
    a?.server.close();
    b?.server.close();
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  const withDns = (yaml: string): ProxyConfig => ({
    ...configFromText(yaml, 'test.yaml').config,
    // a 1 s TTL is honoured as 50 ms here, so the test sees a refresh quickly
    dns: { servers: [dns.address], minRefreshMs: 10, maxRefreshMs: 50, refreshRateMs: 50, timeoutMs: 500 },
  });

  it('DNS: the host resolves to a backend; a new answer moves traffic to the new address', async () => {
    dns.records.set('api.test', { a: ['127.0.0.2'], ttl: 1 });
    proxy = await startProxy(
      withDns(
        entry(
          'api',
          `  hosts: [api.test]
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  resolution: DNS`,
        ),
      ),
    );
    const host = `api.test:${port}`;
    // the config was applied after the first answer (warm-up): the first request finds it
    const first = await request(proxy.port, { host, agent: false });
    expect(first.status).to.equal(200);
    expect(first.body).to.equal('backend-a');
    dns.records.set('api.test', { a: ['127.0.0.3'], ttl: 1 });
    await waitFor(
      'traffic on the new address',
      async () => (await request(proxy!.port, { host, agent: false })).body === 'backend-b',
      10_000,
      20,
    );
    const clusters = (await request(proxy.admin, { path: '/clusters', agent: false })).body;
    const c = (
      JSON.parse(clusters) as {
        clusters: { name: string; type: string; dns: { host: string; addresses: string[] }[] }[];
      }
    ).clusters.find((x) => x.name === `outbound|${port}||api.test`)!;
    expect(c.type).to.equal('STRICT_DNS');
    expect(c.dns[0]).to.include({ host: 'api.test' });
    expect(c.dns[0]!.addresses).to.deep.equal(['127.0.0.3']);
  });

  it('DNS_ROUND_ROBIN: one address at a time, the first of the answer', async () => {
    dns.records.set('rr.test', { a: ['127.0.0.3', '127.0.0.2'], ttl: 300 });
    proxy = await startProxy(
      withDns(
        entry(
          'rr',
          `  hosts: [rr.test]
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN`,
        ),
      ),
    );
    for (let i = 0; i < 4; i++)
      expect((await request(proxy.port, { host: `rr.test:${port}`, agent: false })).body).to.equal(
        'backend-b',
      );
  });

  it('DNS: a host that does not resolve is 503 UH, and the reply and /clusters say why', async () => {
    proxy = await startProxy(
      withDns(
        entry(
          'gone',
          `  hosts: [gone.test]
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  resolution: DNS`,
        ),
      ),
    );
    const r = await request(proxy.port, { host: `gone.test:${port}`, agent: false });
    expect(r.status).to.equal(503);
    expect(r.headers['x-weft-response-flags']).to.equal('UH');
    expect(r.body).to.match(/DNS resolution of gone\.test failed: .*ENOTFOUND/);
    const clusters = JSON.parse((await request(proxy.admin, { path: '/clusters', agent: false })).body) as {
      clusters: { name: string; noEndpointReason?: string }[];
    };
    const c = clusters.clusters.find((x) => x.name === `outbound|${port}||gone.test`)!;
    expect(c.noEndpointReason).to.match(/has no endpoint: DNS resolution of gone\.test failed: .*ENOTFOUND/);
  });

  describe('NONE: the original destination', () => {
    let capture: net.Server;
    let capturePort: number;
    let dst: OriginalDst | null = null;

    beforeEach(async () => {
      proxy = await startProxy(
        configFromText(
          entry(
            'wild',
            `  hosts: ["*.wild.test"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE`,
          ),
          'test.yaml',
        ).config,
        { unbound: () => true }, // the sidecar's outbound: served through handOff only
      );
      const started = proxy;
      const env: CaptureEnv = {
        log: createLogger('test', { silent: true }),
        metrics: started.proxy.metrics,
        outboundHttp: () => started.proxy.unboundHttp(),
        handOff: (sock) => started.proxy.handOff(sock),
        appHost: '127.0.0.1',
        capturePorts: [],
        sniffTimeoutMs: 200,
        dst: () => dst,
      };
      capture = net.createServer((s) => void onOutbound(env, s));
      await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
      capturePort = (capture.address() as net.AddressInfo).port;
      env.capturePorts = [capturePort];
    });
    afterEach(() => capture.close());

    it('a request for a wildcard host goes where its connection was going', async () => {
      dst = { address: '127.0.0.3', port, family: 4 };
      const before = b.hits;
      const r = await request(capturePort, { host: 'anything.wild.test', agent: false });
      expect(r.status).to.equal(200);
      expect(r.body).to.equal('backend-b');
      expect(b.hits).to.equal(before + 1);
      dst = { address: '127.0.0.2', port, family: 4 };
      expect((await request(capturePort, { host: 'other.wild.test', agent: false })).body).to.equal(
        'backend-a',
      );
    });

    it('without an original destination (and a Host name): 503 UH, never a DNS lookup of Host', async () => {
      dst = null;
      const r = await request(capturePort, { host: 'anything.wild.test', agent: false });
      expect(r.status).to.equal(503);
      expect(r.headers['x-weft-response-flags']).to.equal('UH');
      expect(r.body).to.match(/original destination is unknown/);
    });
  });
});
