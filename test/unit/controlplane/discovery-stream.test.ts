/**
 * The discovery server without a cluster (a fake registry and authenticator, a real HTTPS server
 * on loopback): coded error answers for bad requests, and flow control for a proxy that stops
 * reading. weftd must not queue every config for it: while
 * the socket is backed up only the newest config waits, so once the proxy reads again it gets
 * the latest version after far fewer messages than there were pushes.
 */
import { expect } from 'chai';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import { manyServices, SnapshotRegistry } from '../../support/snapshot-registry.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { MessageDecoder, discoveryQuery, type DiscoveryMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import { waitFor } from '../../support/wait.js';
import type { IncomingMessage } from 'node:http';
import { domainsOf } from '../../../pkg/proxyconfig/domains.js';
import type { HttpListener, ProxyConfig } from '../../../pkg/proxyconfig/types.js';

const log = createLogger('test', { silent: true });

describe('weftd discovery server without a cluster', function () {
  this.timeout(60_000);
  let server: Server;
  let discovery: DiscoveryService;
  let registry: SnapshotRegistry;
  let caPem: string;

  before(async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['weftd.test'], ttlMs: 3600_000, now });
    caPem = ca.certPem;
    registry = new SnapshotRegistry((g) => ({ services: manyServices(100, g) }), {
      trigger: 'endpoint',
      podLabels: () => ({ app: 'client' }),
    });
    const identity: Identity = { namespace: 'ns', serviceAccount: 'sa' };
    discovery = new DiscoveryService({
      registry,
      generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: WHOLE_SCOPE_MESH, log }),
      authenticate: async () => ({ identity, cached: false }),
      metrics: createWeftdMetrics(false),
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
    });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, discovery.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    discovery.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const errors: [string, string, string, number, string][] = [
    ['an unknown path', 'GET', '/v2/discovery', 404, 'WEFT_DISCOVERY_REQUEST_INVALID'],
    [
      'the wrong method',
      'POST',
      '/v1/discovery?kind=sidecar&namespace=ns&pod=p',
      404,
      'WEFT_DISCOVERY_REQUEST_INVALID',
    ],
    [
      'an unknown kind',
      'GET',
      '/v1/discovery?kind=waypoint&namespace=ns&pod=p',
      400,
      'WEFT_DISCOVERY_REQUEST_INVALID',
    ],
    ['no pod', 'GET', '/v1/discovery?kind=sidecar&namespace=ns', 400, 'WEFT_DISCOVERY_REQUEST_INVALID'],
    ['a certificate request without a CA', 'POST', '/v1/certificates', 503, 'WEFT_CA_NOT_READY'],
    ['a request target that is not a URL', 'GET', '//[', 400, 'WEFT_DISCOVERY_REQUEST_INVALID'],
  ];
  for (const [title, method, path, status, code] of errors) {
    it(`answers ${title} with ${status} ${code}`, async () => {
      const r = await getStatus((server.address() as AddressInfo).port, caPem, path, method);
      expect(r.status).to.equal(status);
      expect(JSON.parse(r.body)).to.include({ code });
    });
  }

  it('short service domains only to a proxy that asks (serviceDomains=1); an older one gets them spelled out', async () => {
    const port = (server.address() as AddressInfo).port;
    const firstConfig = async (serviceDomains: boolean): Promise<ProxyConfig> => {
      const path = discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: 'client-1', serviceDomains });
      const received: DiscoveryMessage[] = [];
      const decoder = new MessageDecoder();
      const res = await openStream(port, caPem, path);
      res.on('data', (chunk: Buffer) => received.push(...decoder.push(chunk)));
      await waitFor('the first config', () => received.length > 0, 30_000, 5);
      res.destroy();
      const m = received[0]!;
      if (m.type !== 'config') throw new Error(`got ${m.type}`);
      expect(m.version).to.equal(m.config.version);
      return m.config;
    };
    const short = await firstConfig(true);
    const older = await firstConfig(false);
    const vh = (c: ProxyConfig) => (c.listeners[0] as HttpListener).virtualHosts[0]!;
    expect(vh(short).domains).to.equal(undefined);
    expect(vh(short).serviceDomains).to.deep.include({ short: 's0', bare: true });
    expect(vh(older).serviceDomains).to.equal(undefined);
    expect(vh(older).domains).to.deep.equal(domainsOf(vh(short)));
    expect(vh(older).domains).to.include.members(['s0', 's0.ns:80', 's0.ns.svc', '10.0.0.0:80']);
    expect(older.version).to.equal(short.version);
  });

  it('keeps only the newest config while the socket is backed up, and delivers it once the proxy reads', async () => {
    const received: DiscoveryMessage[] = [];
    const decoder = new MessageDecoder();
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'weftd.test',
          port: (server.address() as AddressInfo).port,
          path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: 'client-1' }),
          ca: caPem,
          headers: { authorization: 'Bearer x' },
        },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).to.equal(200);
    res.on('data', (chunk: Buffer) => received.push(...decoder.push(chunk)));
    await waitFor('the first config', () => received.length > 0, 30_000, 5);
    res.pause(); // the proxy stops reading

    const pushes = 40;
    for (let i = 0; i < pushes; i++) {
      registry.change();
      const before = discovery.pushCycles;
      await waitFor('a push cycle', () => discovery.pushCycles > before, 30_000, 5);
    }
    const finalVersion = discovery.configFor('sidecar', 'ns', 'client-1')!.version;
    res.resume();
    await waitFor(
      'the final version',
      () => received.some((m) => m.type === 'config' && m.version === finalVersion),
      30_000,
      5,
    );
    const configs = received.filter((m) => m.type === 'config');
    expect(configs.at(-1)).to.deep.include({ version: finalVersion });
    // 1 initial + what the socket buffers held (~5 MB on loopback: 8-9 configs of 625 KB) + the
    // kept backlog; writing every push would deliver all 41
    expect(configs.length, `${configs.length} configs for ${pushes} pushes`).to.be.below(pushes / 2);
    // The stream keeps flowing after the backlog is flushed (each flush that fills the socket
    // buffer must wait for its own drain): later pushes still arrive.
    for (let i = 0; i < 3; i++) {
      registry.change();
      const before = discovery.pushCycles;
      await waitFor('a push cycle', () => discovery.pushCycles > before, 30_000, 5);
    }
    const later = discovery.configFor('sidecar', 'ns', 'client-1')!.version;
    await waitFor(
      'a later version',
      () => received.some((m) => m.type === 'config' && m.version === later),
      30_000,
      5,
    );
    res.destroy();
  });
});

function openStream(port: number, caPem: string, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'weftd.test',
        port,
        path,
        ca: caPem,
        headers: { authorization: 'Bearer x' },
      },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

function getStatus(
  port: number,
  caPem: string,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'weftd.test',
        port,
        path,
        method,
        ca: caPem,
        headers: { authorization: 'Bearer x' },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
