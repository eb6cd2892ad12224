/**
 * ACKs on the stream's own connection (issue #19: weftd's memory is mostly per TLS connection):
 * weftd's real DiscoveryService on the server weftd runs (createDiscoveryServer, with its upgrade
 * listener) on loopback, the proxy's real DiscoveryClient. A proxy holds one TLS connection and
 * answers on it; a proxy from before still POSTs; a line weftd cannot read ends that stream with
 * an `error` message and is counted; refusals before the stream opens are HTTP answers; closing
 * weftd closes upgraded streams too.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request, type Server } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { createWeftdMetrics, type WeftdMetrics } from '../../../controlplane/metrics.js';
import { createDiscoveryServer } from '../../../controlplane/weftd.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import {
  ACK_PATH,
  DISCOVERY_UPGRADE,
  MAX_ACK_BYTES,
  MAX_ACK_ERROR_CHARS,
  MessageDecoder,
  discoveryQuery,
  encodeProxyMessage,
  type DiscoveryMessage,
} from '../../../pkg/discovery/protocol.js';
import { WeftError } from '../../../pkg/errors/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { oneServiceAt, SnapshotRegistry } from '../../support/snapshot-registry.js';
import { metricValue } from '../../support/metrics.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });

const IDENTITIES: Record<string, Identity> = {
  'tok-a': { namespace: 'ns', serviceAccount: 'sa-a' },
};
/** A token whose review never ends (a stuck TokenReview). */
const SLOW_TOKEN = 'tok-slow';
const UPGRADE_OPEN_MS = 2_000;

/**
 * A TLS client that never ends its side by itself (half-open allowed): only the server can close
 * the connection, and the client sees that as 'end'.
 */
function halfOpen(port: number, ca: string): TLSSocket {
  return tlsConnect({
    socket: netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }),
    ca,
    host: '127.0.0.1',
  });
}

/** An upgraded stream opened by hand: what weftd wrote on it, and the socket to write answers on. */
interface RawStream {
  socket: Duplex;
  messages: DiscoveryMessage[];
  closed: Promise<void>;
}

describe('weftd discovery streams carry their ACKs (upgrade, one connection per proxy)', function () {
  this.timeout(60_000);
  let server: Server;
  let discovery: DiscoveryService;
  let registry: SnapshotRegistry;
  let metrics: WeftdMetrics;
  let dir: string;
  let caPem: string;
  let handshakes = 0;
  let ackPosts = 0;
  const clients: DiscoveryClient[] = [];
  const port = (): number => (server.address() as AddressInfo).port;

  function weftd(upgradeOpenMs = UPGRADE_OPEN_MS): DiscoveryService {
    return new DiscoveryService({
      registry,
      generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
      authenticate: async (token) => {
        if (token === SLOW_TOKEN) return new Promise<never>(() => undefined);
        const identity = IDENTITIES[token];
        if (!identity) throw new WeftError('WEFT_UNAUTHENTICATED', 'token rejected');
        return { identity, cached: true };
      },
      metrics,
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
      upgradeOpenMs,
    });
  }

  before(async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
    caPem = ca.certPem;
    dir = mkdtempSync(join(tmpdir(), 'acks-stream-'));
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    for (const t of Object.keys(IDENTITIES)) writeFileSync(join(dir, t), t);
    registry = new SnapshotRegistry((g) => ({ services: oneServiceAt(g) }), { trigger: 'service' });
    metrics = createWeftdMetrics(false);
    discovery = weftd();
    server = createDiscoveryServer(
      { cert: Buffer.from(leaf.certPem), key: Buffer.from(leaf.keyPem) },
      discovery,
    );
    server.on('secureConnection', () => handshakes++);
    server.on('request', (req: IncomingMessage) => (req.url === ACK_PATH ? ackPosts++ : undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const c of clients) c.stop();
    discovery.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  function client(
    pod: string,
    opts: { acksOnStream?: boolean; fail?: () => boolean; error?: string } = {},
  ): DiscoveryClient {
    const c = new DiscoveryClient({
      address: `127.0.0.1:${port()}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath: join(dir, 'tok-a'),
      request: { kind: 'sidecar', namespace: 'ns', pod },
      log,
      onConfig: () =>
        opts.fail?.() ? Promise.reject(new Error(opts.error ?? 'port 8080 is taken')) : Promise.resolve(),
      ...(opts.acksOnStream !== undefined ? { acksOnStream: opts.acksOnStream } : {}),
    });
    clients.push(c);
    void c.run();
    return c;
  }

  const conn = (pod: string) => discovery.list().find((c) => c.pod === pod);
  const answered = (pod: string) =>
    waitFor(`${pod}'s answer to the newest push`, () => {
      const i = conn(pod);
      return i?.sent && (i.acked?.nonce === i.sent.nonce || i.nacked?.nonce === i.sent.nonce) ? i : null;
    });
  const counter = (name: string, labels: string): Promise<number> => metricValue(metrics, name, labels);

  /** Opens an upgraded stream by hand; rejects with the HTTP status when weftd refuses it. */
  function rawStream(pod: string, token = 'tok-a', upgrade = DISCOVERY_UPGRADE): Promise<RawStream> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: port(),
        ca: caPem,
        path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true }),
        headers: { authorization: `Bearer ${token}`, connection: 'Upgrade', upgrade },
        agent: false,
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          reject(new Error(`HTTP ${res.statusCode} ${res.headers.connection}: ${body.trim()}`)),
        );
      });
      req.on('upgrade', (_res, socket: Duplex, head: Buffer) => {
        const decoder = new MessageDecoder();
        const messages: DiscoveryMessage[] = [];
        const closed = new Promise<void>((r) => socket.once('close', () => r()));
        socket.on('error', () => undefined);
        socket.on('data', (c: Buffer) => messages.push(...decoder.push(c)));
        if (head.length > 0) socket.unshift(head);
        resolve({ socket, messages, closed });
      });
      req.end();
    });
  }

  const firstPush = async (s: RawStream) =>
    waitFor('the first push', () => {
      const m = s.messages.find((x) => x.type === 'config');
      return m?.type === 'config' ? m : null;
    });

  it('a proxy answers every push on its stream: one TLS connection, no ACK POST', async () => {
    const before = { handshakes, ackPosts };
    const c = client('p-one');
    await answered('p-one');
    for (let n = 0; n < 3; n++) {
      const prev = conn('p-one')!.sent!.nonce;
      registry.change();
      await waitFor('the next push ACKed', () => {
        const i = conn('p-one');
        return i?.sent?.nonce !== prev && i?.acked?.nonce === i?.sent?.nonce ? i : null;
      });
    }
    const i = conn('p-one')!;
    expect([i.acksOnStream, i.nacked]).to.deep.equal([true, null]);
    expect(handshakes - before.handshakes, 'TLS connections').to.equal(1);
    expect(ackPosts - before.ackPosts, 'ACK POSTs').to.equal(0);
    expect(c.acks, 'the POST sender').to.equal(null);
    expect(c.answersOnStream).to.be.at.least(4);
  });

  it('a NACK on the stream is recorded with its error and counted as a reject', async () => {
    const rejects = await counter('pilot_total_xds_rejects', 'type="config"');
    let fail = false;
    client('p-nack', { fail: () => fail });
    await answered('p-nack');
    fail = true;
    registry.change();
    const i = await waitFor('the NACK', () => {
      const x = conn('p-nack');
      return x?.nacked && x.nacked.nonce === x.sent?.nonce ? x : null;
    });
    expect(i.nacked!.error).to.equal('port 8080 is taken');
    expect(await counter('pilot_total_xds_rejects', 'type="config"')).to.equal(rejects + 1);
  });

  it('a proxy from before (answers POSTed) still works against this weftd', async () => {
    const before = { handshakes, ackPosts };
    const c = client('p-old', { acksOnStream: false });
    const i = await answered('p-old');
    expect([i.acksOnStream, i.acked?.nonce]).to.deep.equal([false, i.sent!.nonce]);
    expect(ackPosts - before.ackPosts).to.be.at.least(1);
    expect(handshakes - before.handshakes, 'stream + answers').to.equal(2);
    expect(c.answersOnStream).to.equal(0);
  });

  it('a stale answer on the stream changes nothing and keeps the stream open', async () => {
    const s = await rawStream('p-raw-stale');
    const push = await firstPush(s);
    const stale = await counter('weft_weftd_xds_acks_total', 'result="stale"');
    const ack = {
      type: 'ack',
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p-raw-stale',
      version: push.version,
    } as const;
    s.socket.write(encodeProxyMessage({ ...ack, nonce: 'f'.repeat(32), error: 'forged' }));
    await waitFor('the stale count', async () =>
      (await counter('weft_weftd_xds_acks_total', 'result="stale"')) === stale + 1 ? true : null,
    );
    // an ACK split across writes, and two in one write: lines, not packets
    const line = encodeProxyMessage({ ...ack, nonce: push.nonce! });
    s.socket.write(line.slice(0, 10));
    s.socket.write(line.slice(10) + line);
    await waitFor('the ACK', () => (conn('p-raw-stale')?.acked?.nonce === push.nonce ? true : null));
    expect(conn('p-raw-stale')!.nacked).to.equal(null);
    expect(s.socket.destroyed).to.equal(false);
    s.socket.destroy();
  });

  const badLines: [string, (nonce: string, version: string) => string][] = [
    ['not JSON', () => '{\n'],
    ['not an answer', () => '{"type":"ping"}\n'],
    [
      'a nonce weftd never makes',
      (_n, v) =>
        encodeProxyMessage({
          type: 'ack',
          kind: 'sidecar',
          namespace: 'ns',
          pod: 'p-bad',
          version: v,
          nonce: 'xyz',
        }),
    ],
    [
      "another pod's answer",
      (n, v) =>
        encodeProxyMessage({
          type: 'ack',
          kind: 'sidecar',
          namespace: 'ns',
          pod: 'p-other',
          version: v,
          nonce: n,
        }),
    ],
    ['a line past 16 KiB', () => `{"type":"ack","error":"${'x'.repeat(MAX_ACK_BYTES)}`],
  ];
  for (const [what, line] of badLines)
    it(`a line weftd cannot read ends that stream with an error message, counted: ${what}`, async () => {
      const invalid = await counter('weft_weftd_xds_acks_total', 'result="invalid"');
      const s = await rawStream('p-bad');
      const push = await firstPush(s);
      s.socket.write(line(push.nonce!, push.version));
      await s.closed;
      const error = s.messages.find((m) => m.type === 'error');
      expect(error, 'the error message').to.include({ type: 'error', code: 'WEFT_DISCOVERY_ACK_INVALID' });
      await waitFor('weftd to drop the stream', () => (conn('p-bad') === undefined ? true : null));
      expect(await counter('weft_weftd_xds_acks_total', 'result="invalid"')).to.equal(invalid + 1);
    });

  it('a NACK whose error is longer than an answer line may be is cut, recorded, and the stream stays', async () => {
    const invalid = await counter('weft_weftd_xds_acks_total', 'result="invalid"');
    let fail = false;
    client('p-long', { fail: () => fail, error: `compile failed: ${'x'.repeat(20 * 1024)}` });
    const first = await answered('p-long');
    fail = true;
    registry.change();
    const i = await waitFor('the NACK', () => {
      const x = conn('p-long');
      return x?.nacked && x.nacked.nonce === x.sent?.nonce ? x : null;
    });
    expect(i.id, 'the same stream').to.equal(first.id);
    expect(i.nacked!.error).to.have.length(MAX_ACK_ERROR_CHARS);
    expect(await counter('weft_weftd_xds_acks_total', 'result="invalid"')).to.equal(invalid);
  });

  it("an answer naming another stream's push of the same pod, or a repeated one, is stale", async () => {
    const a = await rawStream('p-two');
    const pushA = await firstPush(a);
    const b = await rawStream('p-two');
    const pushB = await firstPush(b);
    const streamA = () => discovery.connectionOf(pushA.nonce!);
    const stale = await counter('weft_weftd_xds_acks_total', 'result="stale"');
    const ack = { type: 'ack', kind: 'sidecar', namespace: 'ns', pod: 'p-two' } as const;
    b.socket.write(encodeProxyMessage({ ...ack, version: pushA.version, nonce: pushA.nonce! }));
    await waitFor('the stale count', async () =>
      (await counter('weft_weftd_xds_acks_total', 'result="stale"')) === stale + 1 ? true : null,
    );
    expect(streamA()!.acked, "stream A's push stays unanswered").to.equal(null);
    // a NACK repeated on its own stream counts once
    const nack = { ...ack, version: pushB.version, nonce: pushB.nonce!, error: 'no' };
    b.socket.write(encodeProxyMessage(nack) + encodeProxyMessage(nack) + encodeProxyMessage(nack));
    await waitFor('the repeats counted stale', async () =>
      (await counter('weft_weftd_xds_acks_total', 'result="stale"')) === stale + 3 ? true : null,
    );
    expect(discovery.connectionOf(pushB.nonce!)!.nacked!.nonce).to.equal(pushB.nonce);
    a.socket.destroy();
    b.socket.destroy();
  });

  it('closes an upgrade whose review does not end in time, and a refused one whose client never closes', async () => {
    /** Sends an upgrade request and never ends its side; resolves with how long weftd kept its side open. */
    const open = async (token: string, extra = '') => {
      const accepted = new Promise<TLSSocket>((r) => server.once('secureConnection', r));
      const socket = halfOpen(port(), caPem);
      socket.on('error', () => undefined);
      const ours = await accepted;
      const t0 = performance.now();
      socket.write(
        `GET ${discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: 'p-hold', acks: true })} HTTP/1.1\r\n` +
          `Host: weftd\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: ${DISCOVERY_UPGRADE}\r\n\r\n${extra}`,
      );
      // weftd's socket closing (not the client's 'end': a half-closed socket still counts)
      await new Promise((r) => ours.once('close', r));
      socket.destroy();
      return performance.now() - t0;
    };
    // a stuck review: the stream is never opened, the socket is closed after upgradeOpenMs
    expect(await open(SLOW_TOKEN)).to.be.within(UPGRADE_OPEN_MS - 50, UPGRADE_OPEN_MS + 2_000);
    // refused (bad token), bytes left unread and the client's side never ended: closed after its answer
    expect(await open('nope', 'some bytes weftd never reads')).to.be.below(UPGRADE_OPEN_MS);
    expect(conn('p-hold')).to.equal(undefined);
  });

  it('refusals before the stream opens are HTTP answers: 401 bad token, 400 another protocol', async () => {
    const failed = async (p: Promise<RawStream>) =>
      await p.then(
        () => 'upgraded',
        (e: Error) => e.message,
      );
    expect(await failed(rawStream('p-x', 'nope'))).to.match(/^HTTP 401 close: .*WEFT_UNAUTHENTICATED/);
    expect(await failed(rawStream('p-x', 'tok-a', 'websocket'))).to.match(
      /^HTTP 400 close: .*WEFT_DISCOVERY_REQUEST_INVALID.*only GET \/v1\/discovery upgrades/,
    );
    expect(conn('p-x')).to.equal(undefined);
  });

  it('closing weftd closes its upgraded streams and the ones still opening (the HTTP server no longer counts them)', async () => {
    const other = weftd(60_000); // a review in flight is closed by close(), not by this timer
    const now = new Date();
    const ca = createCA({ commonName: 'test2', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
    const srv = createDiscoveryServer(
      { cert: Buffer.from(leaf.certPem), key: Buffer.from(leaf.keyPem) },
      other,
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    // clients that never end their side (half-open allowed): only weftd can close these
    const connect = async (token: string) => {
      const socket = halfOpen((srv.address() as AddressInfo).port, ca.certPem);
      socket.on('error', () => undefined);
      let got = '';
      socket.on('data', (c: Buffer) => (got += c.toString()));
      await new Promise((r) => socket.once('secureConnect', r));
      socket.write(
        `GET ${discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod: `p-close-${token}`, acks: true })} HTTP/1.1\r\n` +
          `Host: weftd\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: ${DISCOVERY_UPGRADE}\r\n\r\n`,
      );
      const closed = new Promise<void>((r) => socket.once('end', r).once('close', r));
      return { closed, got: () => got };
    };
    const streaming = await connect('tok-a');
    await waitFor('the stream open', () => (streaming.got().includes('"type":"config"') ? true : null));
    const reviewing = await connect(SLOW_TOKEN);
    await new Promise((r) => setTimeout(r, 50));
    other.close();
    const t0 = performance.now();
    await new Promise((r) => srv.close(r)); // no closeAllConnections: close() alone must finish
    await Promise.all([streaming.closed, reviewing.closed]);
    expect(performance.now() - t0).to.be.below(5_000);
  });
});
