/**
 * ACK connections outlive the server's keep-alive timeout while their stream is open (ADR 0020
 * amendment, issue #19): weftd's real DiscoveryService on a real HTTPS server on loopback with a
 * 1 s keep-alive timeout, real discovery streams and the proxy's real AckSender. Without it, the
 * first push after an idle spell longer than the timeout cost every proxy a new connection and
 * weftd a TLS handshake per proxy, all at once.
 */
import { expect } from 'chai';
import { Agent, createServer, request, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import { oneServiceAt, SnapshotRegistry } from '../../support/snapshot-registry.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import {
  ACK_PATH,
  MessageDecoder,
  discoveryQuery,
  type AckRequest,
} from '../../../pkg/discovery/protocol.js';
import { serverTimeoutOptions } from '../../../pkg/http/timeouts.js';
import { createLogger } from '../../../pkg/log/index.js';
import { AckSender } from '../../../proxy/discovery/ack.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });
const KEEPALIVE_MS = 1000;
/** Longer than the keep-alive timeout with Node's 1 s buffer on the server and the agent's hint. */
const IDLE_MS = 2500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('weftd keeps a proxy’s ACK connection open between pushes', function () {
  this.timeout(60_000);
  const now = new Date();
  const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  const servers: { server: Server; discovery: DiscoveryService }[] = [];
  const cleanups: (() => void)[] = [];

  /** A weftd with a 1 s keep-alive timeout; `ackKeepAliveMs: 0` is weftd before the change. */
  async function weftd(ackKeepAliveMs?: number) {
    const registry = new SnapshotRegistry((g) => ({ services: oneServiceAt(g) }), { trigger: 'service' });
    const discovery = new DiscoveryService({
      registry,
      generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
      authenticate: (token) =>
        token === 'tok-a'
          ? Promise.resolve({ identity: { namespace: 'ns', serviceAccount: 'sa-a' }, cached: true })
          : Promise.reject(new Error('token rejected')),
      metrics: createWeftdMetrics(false),
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
      keepAliveMs: KEEPALIVE_MS,
      ...(ackKeepAliveMs !== undefined ? { ackKeepAliveMs } : {}),
    });
    const server = createServer(
      { cert: leaf.certPem, key: leaf.keyPem, ...serverTimeoutOptions({ keepAliveMs: KEEPALIVE_MS }) },
      discovery.handle,
    );
    const sockets = new Set<Socket>();
    let handshakes = 0;
    server.on('secureConnection', (s: Socket) => {
      handshakes++;
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push({ server, discovery });
    const port = (server.address() as AddressInfo).port;
    return { registry, discovery, port, sockets, handshakes: () => handshakes };
  }

  after(async () => {
    for (const c of cleanups) c();
    for (const { server, discovery } of servers) {
      discovery.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  /** A proxy's stream (acks=1): the newest push's nonce and version, and a way to close it. */
  function stream(port: number, pod: string) {
    const pushes: { nonce: string; version: string }[] = [];
    const req = request({
      host: '127.0.0.1',
      port,
      ca: ca.certPem,
      path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true }),
      headers: { authorization: 'Bearer tok-a' },
      agent: false,
    });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      const decoder = new MessageDecoder();
      res.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk))
          if (m.type === 'config' && m.nonce !== undefined)
            pushes.push({ nonce: m.nonce, version: m.version });
      });
    });
    req.end();
    cleanups.push(() => req.destroy());
    const ack = (n: number): AckRequest => ({ kind: 'sidecar', namespace: 'ns', pod, ...pushes[n - 1]! });
    return { pushes, ack, close: () => req.destroy() };
  }

  function sender(port: number): AckSender {
    const s = new AckSender({
      host: '127.0.0.1',
      port,
      servername: undefined,
      ca: () => ca.certPem,
      token: () => 'tok-a',
      log,
    });
    cleanups.push(() => s.stop());
    return s;
  }

  /** New connections the ACK of a push after an idle spell longer than the keep-alive timeout took. */
  async function connectionsForAckAfterIdle(ackKeepAliveMs?: number): Promise<number> {
    const w = await weftd(ackKeepAliveMs);
    const s = stream(w.port, 'p1');
    await waitFor('the first push', () => s.pushes.length === 1);
    const acks = sender(w.port);
    await acks.send(s.ack(1));
    const afterFirst = w.handshakes();
    await sleep(IDLE_MS);
    w.registry.change();
    await waitFor('the second push', () => s.pushes.length === 2);
    await acks.send(s.ack(2));
    expect(acks.results.ack).to.equal(2);
    return w.handshakes() - afterFirst;
  }

  it('the next push after an idle spell longer than the keep-alive timeout is ACKed on the same connection', async () => {
    expect(await connectionsForAckAfterIdle(), 'new connections for the second ACK').to.equal(0);
  });

  it('without it (weftd before: ackKeepAliveMs 0) the same ACK needs a new connection', async () => {
    expect(await connectionsForAckAfterIdle(0)).to.equal(1);
  });

  it('tells the proxy’s agent how long in Keep-Alive, only for an answer to an open stream’s push', async () => {
    const w = await weftd();
    const s = stream(w.port, 'p1');
    await waitFor('the first push', () => s.pushes.length === 1);
    expect(await keepAliveHeader(w.port, s.ack(1))).to.equal('timeout=3600');
    // a stale answer (no such push) keeps the server's timeout
    expect(await keepAliveHeader(w.port, { ...s.ack(1), nonce: 'f'.repeat(32) })).to.equal('timeout=1');
  });

  it('a closed stream hands its ACK connection back to the server’s timeout', async () => {
    const w = await weftd();
    const s = stream(w.port, 'p1');
    await waitFor('the first push', () => s.pushes.length === 1);
    const acks = sender(w.port);
    await acks.send(s.ack(1));
    expect(w.sockets.size).to.equal(2); // the stream and the ACK connection
    s.close();
    await waitFor('the stream gone', () => w.discovery.list().length === 0);
    await waitFor('the idle ACK connection closed by weftd', () => w.sockets.size === 0, 2 * IDLE_MS);
  });

  it('keeps one ACK connection per stream: a newer one takes over, the older goes back to the timeout', async () => {
    const w = await weftd();
    const s = stream(w.port, 'p1');
    await waitFor('the first push', () => s.pushes.length === 1);
    const first = sender(w.port);
    await first.send(s.ack(1));
    const second = sender(w.port);
    await second.send(s.ack(1));
    expect(w.sockets.size).to.equal(3);
    await waitFor('the displaced ACK connection closed', () => w.sockets.size === 2, 2 * IDLE_MS);
    await sleep(IDLE_MS);
    expect(w.sockets.size, 'the stream and the newest ACK connection').to.equal(2);
  });
});

/** The Keep-Alive header weftd answers one ACK with (its own connection). */
function keepAliveHeader(port: number, ack: AckRequest): Promise<string | undefined> {
  const body = JSON.stringify(ack);
  const agent = new Agent({ keepAlive: true }); // a kept-alive request, as the AckSender's
  return new Promise<string | undefined>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: ACK_PATH,
        method: 'POST',
        rejectUnauthorized: false,
        agent,
        headers: { authorization: 'Bearer tok-a', 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['keep-alive'] as string | undefined));
      },
    );
    req.on('error', reject);
    req.end(body);
  }).finally(() => agent.destroy());
}
