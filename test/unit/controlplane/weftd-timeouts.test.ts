/**
 * weftd's servers cut clients that do not send their request in time (issue #12, item 7): an
 * unauthenticated client dripping a body held a socket of the discovery port forever
 * (requestTimeout 0), and the monitoring port had Node's 60 s / 300 s. Measured with small
 * configured timeouts; the test's own timeout is what catches a server that never cuts. A
 * discovery stream, whose response lasts for hours, must not be cut.
 */
import { expect } from 'chai';
import { request } from 'node:https';
import { connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import { createMonitoringServer } from '../../../controlplane/monitoring.js';
import type { KubeRegistry, Snapshot } from '../../../controlplane/registry.js';
import { createDiscoveryServer } from '../../../controlplane/weftd.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { WeftError } from '../../../pkg/errors/index.js';
import {
  CERTIFICATES_PATH,
  DISCOVERY_UPGRADE,
  MessageDecoder,
  discoveryQuery,
  type DiscoveryMessage,
} from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';

const log = createLogger('test', { silent: true });
const TIMEOUTS = { headersMs: 200, requestMs: 400 };

const emptySnapshot: Snapshot = {
  generation: 1,
  services: [],
  kubeServices: [],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  peerAuthentications: [],
};

const registry: KubeRegistry = {
  generation: 1,
  hasSynced: Promise.resolve(),
  synced: () => true,
  unsynced: () => [],
  snapshot: () => emptySnapshot,
  pod: (namespace: string, name: string) => ({ namespace, name, labels: { app: 'client' } }),
  onChange: () => undefined,
  onEvent: () => undefined,
  events: 0,
  ignoredEvents: 0,
  stop: () => undefined,
} as unknown as KubeRegistry;

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

/** Sends `head` once connected, then a byte every 50 ms; resolves with what came back once the server closed. */
function trickle(
  sock: Socket,
  connected: 'connect' | 'secureConnect',
  head: string,
  drip: string,
): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    let timer: NodeJS.Timeout | undefined;
    sock.once(connected, () => {
      sock.write(head);
      timer = setInterval(() => sock.write(drip), 50);
    });
    sock.setEncoding('utf8').on('data', (c: string) => (got += c));
    sock.on('error', () => undefined);
    sock.once('close', () => {
      clearInterval(timer);
      resolve(got);
    });
  });
}

describe('weftd request timeouts', function () {
  this.timeout(20_000);
  const now = new Date();
  const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['weftd.test'], ttlMs: 3600_000, now });
  const identity: Identity = { namespace: 'ns', serviceAccount: 'sa' };
  const metrics = createWeftdMetrics(false);
  const discovery = new DiscoveryService({
    registry,
    generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
    authenticate: async (token) => {
      if (token !== 'good') throw new WeftError('WEFT_UNAUTHENTICATED', 'bad token');
      return { identity, cached: false };
    },
    metrics,
    log,
    debounce: { afterMs: 0, maxMs: 0 },
    pingIntervalMs: 100,
  });
  const https = createDiscoveryServer(
    { cert: Buffer.from(leaf.certPem), key: Buffer.from(leaf.keyPem) },
    discovery,
    TIMEOUTS,
  );
  const monitoring = createMonitoringServer({
    readiness: () => ({ ready: true }),
    metrics,
    discovery,
    registry,
    log,
    timeouts: TIMEOUTS,
  });
  let httpsPort = 0;
  let monitoringPort = 0;

  before(async () => {
    httpsPort = await listen(https);
    monitoringPort = await listen(monitoring);
  });
  after(async () => {
    discovery.close();
    for (const s of [https, monitoring]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const overTls = (head: string, drip: string): Promise<string> =>
    trickle(
      tlsConnect({ host: '127.0.0.1', port: httpsPort, ca: ca.certPem, servername: 'weftd.test' }),
      'secureConnect',
      head,
      drip,
    );

  it('cuts a client dripping a certificate request body without a token (408 or closed)', async () => {
    const got = await overTls(
      `POST ${CERTIFICATES_PATH} HTTP/1.1\r\nHost: weftd\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
      ' ',
    );
    // weftd may answer 401 at once (no token) and then Node cuts the unfinished body, or 408 first.
    expect(got).to.match(/^HTTP\/1\.1 (401 Unauthorized|408 Request Timeout)/);
  });

  it('cuts a client dripping its headers on the discovery port with a 408', async () => {
    const got = await overTls(
      `GET ${discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: 'p' })} HTTP/1.1\r\n`,
      'X-A: b\r\n',
    );
    expect(got).to.match(/^HTTP\/1\.1 408 Request Timeout/);
  });

  it('cuts a client dripping its headers on the monitoring port with a 408', async () => {
    const got = await trickle(
      tcpConnect(monitoringPort, '127.0.0.1'),
      'connect',
      'GET /ready HTTP/1.1\r\n',
      'X-A: b\r\n',
    );
    expect(got).to.match(/^HTTP\/1\.1 408 Request Timeout/);
  });

  const streamRequest = (pod: string, headers: Record<string, string> = {}) =>
    request({
      host: '127.0.0.1',
      servername: 'weftd.test',
      port: httpsPort,
      ca: ca.certPem,
      path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true }),
      headers: { authorization: 'Bearer good', ...headers },
    });

  /** Pings every 100 ms: ten of them span 2.5 request timeouts; rejects if the stream closes first. */
  const tenPings = (stream: Readable): Promise<void> => {
    const messages: DiscoveryMessage[] = [];
    const decoder = new MessageDecoder();
    return new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        messages.push(...decoder.push(chunk));
        if (messages.filter((m) => m.type === 'ping').length >= 10) resolve();
      });
      stream.once('close', () => reject(new Error(`stream closed after ${messages.length} messages`)));
    });
  };

  it('keeps a discovery stream open well past the request timeout', async () => {
    const req = streamRequest('client-1');
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      req.once('response', resolve).once('error', reject).end();
    });
    expect(res.statusCode).to.equal(200);
    await tenPings(res);
    req.destroy();
  });

  it('keeps an upgraded discovery stream (ACKs on its connection) open well past the request timeout', async () => {
    const req = streamRequest('client-2', { connection: 'Upgrade', upgrade: DISCOVERY_UPGRADE });
    const socket = await new Promise<Duplex>((resolve, reject) => {
      req.once('upgrade', (_res, s: Duplex, head: Buffer) => {
        if (head.length > 0) s.unshift(head);
        resolve(s);
      });
      req.once('response', (res) => reject(new Error(`not upgraded: HTTP ${res.statusCode}`)));
      req.once('error', reject).end();
    });
    // the HTTP server let go of an upgraded socket: its request and keep-alive timeouts no longer apply
    await tenPings(socket);
    socket.destroy();
  });
});
