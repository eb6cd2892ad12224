/**
 * Whole configs under weftd's write budget (controlplane/pushwrite.ts, issue #19), with a real
 * HTTPS server and clients on loopback: a proxy that stops reading holds its turn; streams that
 * connect meanwhile wait, in order, and never push the bytes in flight over the budget; a push
 * to a waiting stream replaces its waiting config (it gets the newest, whole, and no delta
 * before it); a stream that closes while waiting gives up its place; once the slow proxy reads
 * again every stream gets its whole config. And no single socket write reaches 16 KiB: Node's
 * TLS socket keeps an output buffer as large as its largest write for as long as it lives.
 */
import { expect } from 'chai';
import { createServer, request, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService, type DiscoveryOptions } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import { createWeftdMetrics } from '../../../controlplane/metrics.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { MessageDecoder, discoveryQuery, type DiscoveryMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import { manyServices, SnapshotRegistry } from '../../support/snapshot-registry.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });

interface Stream {
  res: IncomingMessage;
  received: DiscoveryMessage[];
}

describe('weftd whole configs under the write budget (real server and clients on loopback)', function () {
  this.timeout(120_000);
  let server: Server;
  let discovery: DiscoveryService;
  let registry: SnapshotRegistry;
  let caPem: string;
  let budgetBytes: number;
  const gauge = { inFlightMax: 0, waitingMax: 0 };
  /** The largest single write of any chunk to a TLS socket of the server. */
  let largestSocketWrite = 0;
  /** The service's options: a test shortens writeStallMs (read at each write). */
  let options: DiscoveryOptions;

  before(async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['weftd.test'], ttlMs: 3600_000, now });
    caPem = ca.certPem;
    registry = new SnapshotRegistry((g) => ({ services: manyServices(100, g) }), {
      trigger: 'endpoint',
      podLabels: () => ({ app: 'client' }),
    });
    const generator = new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: WHOLE_SCOPE_MESH, log });
    const line = generator.forProxy(registry.snapshot(), 'sidecar', registry.pod('ns', 'p'), undefined, {
      onDemand: true,
    });
    // room for one whole config and a half: a second never fits next to the first
    budgetBytes = Math.floor(1.5 * Buffer.byteLength(line.encode()));
    const metrics = createWeftdMetrics(false);
    const setInFlight = metrics.writeInFlightBytes.set.bind(metrics.writeInFlightBytes);
    metrics.writeInFlightBytes.set = ((v: number) => {
      gauge.inFlightMax = Math.max(gauge.inFlightMax, v);
      setInFlight(v);
    }) as typeof metrics.writeInFlightBytes.set;
    const setWaiting = metrics.writeWaitingStreams.set.bind(metrics.writeWaitingStreams);
    metrics.writeWaitingStreams.set = ((v: number) => {
      gauge.waitingMax = Math.max(gauge.waitingMax, v);
      setWaiting(v);
    }) as typeof metrics.writeWaitingStreams.set;
    const identity: Identity = { namespace: 'ns', serviceAccount: 'sa' };
    options = {
      registry,
      generator,
      authenticate: async () => ({ identity, cached: false }),
      metrics,
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
      writeBudgetBytes: budgetBytes,
      writeStallMs: 60_000,
    };
    discovery = new DiscoveryService(options);
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, discovery.handle);
    server.on('secureConnection', (socket: TLSSocket) => {
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        largestSocketWrite = Math.max(
          largestSocketWrite,
          typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength,
        );
        return write(chunk, ...rest);
      }) as typeof socket.write;
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    discovery.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const open = (pod: string, delta: boolean): Promise<Stream> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'weftd.test',
          port: (server.address() as AddressInfo).port,
          path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true, delta }),
          ca: caPem,
          headers: { authorization: 'Bearer x' },
          agent: false,
        },
        (res) => {
          const received: DiscoveryMessage[] = [];
          const decoder = new MessageDecoder();
          res.on('data', (chunk: Buffer) => received.push(...decoder.push(chunk)));
          resolve({ res, received });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const pushes = (s: Stream) => s.received.filter((m) => m.type === 'config' || m.type === 'delta');
  const newest = (pod: string) => discovery.configFor('sidecar', 'ns', pod)!.version;
  const pushCycle = async (): Promise<void> => {
    const before = discovery.pushCycles;
    registry.change();
    await waitFor('a push cycle', () => discovery.pushCycles > before, 30_000, 5);
  };

  /**
   * A proxy that stops reading after its first config: pushes fill its socket buffers until a
   * config's slices stop flushing, and that config holds its bytes of the budget.
   */
  const stalledReader = async (pod: string): Promise<Stream> => {
    const slow = await open(pod, true);
    await waitFor('the first config', () => pushes(slow).length > 0, 30_000, 5);
    slow.res.pause();
    let stuckSince = 0;
    for (let i = 0; i < 60; i++) {
      await pushCycle();
      await new Promise((r) => setTimeout(r, 20));
      if (discovery.writeBudget.inFlightBytes > 0) {
        stuckSince ||= Date.now();
        if (Date.now() - stuckSince > 300) break;
      } else stuckSince = 0;
    }
    expect(discovery.writeBudget.inFlightBytes, 'the slow proxy holds its turn').to.be.greaterThan(0);
    return slow;
  };

  it('streams wait their turn behind a slow reader, coalesce, give up their place on close, then all get their whole config', async () => {
    const slow = await stalledReader('slow');

    // streams connecting now wait (a second config never fits next to the first)
    const waiting = await Promise.all(['w-0', 'w-1', 'w-2', 'w-3'].map((pod, i) => open(pod, i % 2 === 0)));
    await waitFor('four streams waiting', () => discovery.writeBudget.waiting === 4, 30_000, 5);
    expect(waiting.every((s) => s.received.length === 0)).to.equal(true);
    const before = newest('w-0');
    await pushCycle(); // replaces each waiting config with the newest
    expect(newest('w-0')).to.not.equal(before);
    waiting[1]!.res.destroy(); // closes while waiting: gives up its place
    await waitFor('three streams waiting', () => discovery.writeBudget.waiting === 3, 30_000, 5);

    slow.res.resume();
    const live = [slow, waiting[0]!, waiting[2]!, waiting[3]!];
    const pods = ['slow', 'w-0', 'w-2', 'w-3'];
    await waitFor(
      'every live stream on its newest version',
      () => live.every((s, i) => pushes(s).at(-1)?.version === newest(pods[i]!)),
      60_000,
      5,
    );
    for (const s of live.slice(1)) {
      // one push each: the newest config, whole (the one computed before never reached it)
      const got = pushes(s);
      expect(got.map((m) => m.type)).to.deep.equal(['config']);
      expect(got[0]!.version).to.not.equal(before);
    }
    await waitFor(
      'nothing in flight or waiting',
      () => discovery.writeBudget.inFlightBytes === 0 && discovery.writeBudget.waiting === 0,
      30_000,
      5,
    );
    expect(gauge.inFlightMax, 'bytes in flight').to.be.at.most(budgetBytes);
    expect(gauge.waitingMax).to.equal(4);
    expect(largestSocketWrite, 'largest single socket write').to.be.below(16 * 1024);

    // the streams keep flowing: a later change reaches every live one
    await pushCycle();
    await waitFor(
      'a later version everywhere',
      () => live.every((s, i) => pushes(s).at(-1)?.version === newest(pods[i]!)),
      60_000,
      5,
    );
    for (const s of live) s.res.destroy();
  });

  it('a fleet connecting at once: every stream gets its whole config, at most one being written at a time', async () => {
    gauge.inFlightMax = 0;
    gauge.waitingMax = 0;
    const pods = Array.from({ length: 12 }, (_, i) => `f-${i}`);
    const fleet = await Promise.all(pods.map((pod, i) => open(pod, i % 2 === 0)));
    await waitFor(
      'every first config',
      () => fleet.every((s, i) => pushes(s)[0]?.version === newest(pods[i]!)),
      60_000,
      5,
    );
    for (const s of fleet) expect(pushes(s)[0]!.type).to.equal('config');
    expect(gauge.inFlightMax).to.be.at.most(budgetBytes);
    expect(gauge.waitingMax, 'streams waited their turn').to.be.greaterThan(0);
    expect(largestSocketWrite).to.be.below(16 * 1024);
    for (const s of fleet) s.res.destroy();
  });

  it('a reader that stalls gives its turn back after writeStallMs: the others get their configs while it stays stalled', async () => {
    options.writeStallMs = 1_000; // stalledReader sees it stuck for 300 ms first
    const stalled = await stalledReader('stalled');
    const next = await open('after-stall', true);
    await waitFor('it waits behind the stalled reader', () => discovery.writeBudget.waiting === 1, 30_000, 5);
    await waitFor('its first config', () => pushes(next)[0]?.version === newest('after-stall'), 30_000, 5);
    expect(pushes(next)[0]!.type).to.equal('config');
    // the stalled one still has not read its config, and holds no budget
    expect(discovery.writeBudget.inFlightBytes).to.equal(0);
    expect(discovery.writeBudget.waiting).to.equal(0);
    stalled.res.resume();
    await waitFor(
      'the stalled reader catches up',
      () => pushes(stalled).at(-1)?.version === newest('stalled'),
      60_000,
      5,
    );
    options.writeStallMs = 60_000;
    stalled.res.destroy();
    next.res.destroy();
  });
});
