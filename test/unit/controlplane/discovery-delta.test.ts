/**
 * Delta pushes without a cluster (ADR 0020): weftd's real DiscoveryService on a real HTTPS server
 * on loopback, a registry of services and VirtualServices changed by hand, the proxy's real
 * DiscoveryClient (and raw streams where the test must see the wire). One VirtualService change
 * sends one virtual host; one endpoint change one cluster's endpoints; the proxy's result equals
 * weftd's full config; a delta that does not compile is NACKed and the proxy stays on its last
 * good state, which weftd then diffs from; a delta that does not apply is resynced with the whole
 * config; a reconnecting proxy resumes with a delta; a forged or foreign state gets the whole
 * config; an older proxy gets whole configs.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { createWeftdMetrics, type WeftdMetrics } from '../../../controlplane/metrics.js';
import { SnapshotRegistry } from '../../support/snapshot-registry.js';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import {
  ACK_PATH,
  MessageDecoder,
  discoveryQuery,
  type DiscoveryMessage,
  type DiscoveryRequest,
} from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { metricValue } from '../../support/metrics.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });
const SERVICES = 20;

/** SERVICES services in `ns`; a VirtualService on s0 whose timeout and s1's endpoint IP move on demand. */
/** The mesh the suite edits: `timeout` is s0's route timeout, `endpointOctet` moves s1's endpoint. */
const mesh = { timeout: '1s', endpointOctet: 1 };

function meshRegistry(): SnapshotRegistry {
  Object.assign(mesh, { timeout: '1s', endpointOctet: 1 });
  return new SnapshotRegistry(() => ({
    services: Array.from({ length: SERVICES }, (_, i) => ({
      host: `s${i}.ns.svc.cluster.local`,
      namespace: 'ns',
      addresses: [`10.0.0.${i}`],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      endpoints: [
        { address: `10.1.${i === 1 ? mesh.endpointOctet : 0}.${i}`, labels: {}, ports: { http: 8080 } },
      ],
    })),
    virtualServices: [
      {
        metadata: { name: 'vs0', namespace: 'ns' },
        spec: {
          hosts: ['s0.ns.svc.cluster.local'],
          http: [{ timeout: mesh.timeout, route: [{ destination: { host: 's0.ns.svc.cluster.local' } }] }],
        },
      },
    ],
  }));
}

type Delta = Extract<DiscoveryMessage, { type: 'delta' }>;

describe('weftd delta pushes (real server and client on loopback)', function () {
  this.timeout(60_000);
  let server: Server;
  let discovery: DiscoveryService;
  let registry: SnapshotRegistry;
  let metrics: WeftdMetrics;
  let dir: string;
  let ca: KeyPairPem;
  const clients: DiscoveryClient[] = [];
  const streams: (() => void)[] = [];
  const port = (): number => (server.address() as AddressInfo).port;

  before(async () => {
    const now = new Date();
    ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
    dir = mkdtempSync(join(tmpdir(), 'delta-'));
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'tok'), 'tok');
    registry = meshRegistry();
    metrics = createWeftdMetrics(false);
    discovery = new DiscoveryService({
      registry,
      generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
      authenticate: () =>
        Promise.resolve({ identity: { namespace: 'ns', serviceAccount: 'sa' }, cached: true }),
      metrics,
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
    });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, discovery.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const c of clients) c.stop();
    for (const s of streams) s();
    discovery.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A real proxy client; `running` is the config it swapped in last. */
  function client(
    pod: string,
    opts: { delta?: boolean; onConfig?: (c: ProxyConfig) => void } = {},
  ): { c: DiscoveryClient; running: () => ProxyConfig | undefined } {
    let running: ProxyConfig | undefined;
    const c = new DiscoveryClient({
      address: `127.0.0.1:${port()}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath: join(dir, 'tok'),
      request: { kind: 'sidecar', namespace: 'ns', pod },
      log,
      onConfig: (config) => {
        opts.onConfig?.(config);
        running = config;
        return Promise.resolve();
      },
      ...(opts.delta === false ? { delta: false } : {}),
      backoff: { baseMs: 20, maxMs: 50, jitter: 0 },
    });
    clients.push(c);
    void c.run();
    return { c, running: () => running };
  }

  /** A raw stream: every message weftd writes, in order. */
  function raw(pod: string, extra: Partial<DiscoveryRequest> = {}): DiscoveryMessage[] {
    const got: DiscoveryMessage[] = [];
    const req = request({
      host: '127.0.0.1',
      port: port(),
      ca: ca.certPem,
      path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true, delta: true, ...extra }),
      headers: { authorization: 'Bearer tok' },
      agent: false,
    });
    req.on('response', (res) => {
      const d = new MessageDecoder();
      res.on('data', (chunk: Buffer) => got.push(...d.push(chunk).filter((m) => m.type !== 'ping')));
    });
    req.on('error', () => undefined);
    req.end();
    streams.push(() => req.destroy());
    return got;
  }

  const conn = (pod: string) => discovery.list().find((c) => c.pod === pod);
  const fresh = (pod: string): ProxyConfig => discovery.configFor('sidecar', 'ns', pod)!.config;
  const json = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
  const acked = (pod: string) =>
    waitFor(`${pod} ACKed the config weftd computes now`, () => {
      const i = conn(pod);
      const current = i?.sent?.version === fresh(pod).version;
      return current && i?.acked && i.acked.nonce === i.sent?.nonce ? i : null;
    });
  const counter = (name: string, labels: string): Promise<number> => metricValue(metrics, name, labels);

  it('one VirtualService change sends one virtual host; the proxy then runs exactly the full config', async () => {
    const wire = raw('p-wire');
    const p = client('p-vs');
    await waitFor('first configs', () => (wire.length > 0 && p.running() ? true : null));
    await acked('p-vs');
    expect(wire[0]!.type).to.equal('config');
    const first = wire[0] as Extract<DiscoveryMessage, { type: 'config' }>;
    expect(first.state, 'a full config on a delta stream names its state').to.match(/^[0-9a-f]{32}$/);
    const fullBytes0 = await counter('weft_weftd_xds_pushed_bytes_total', 'kind="full"');

    registry.change(() => (mesh.timeout = '2s'));
    const d = (await waitFor('the delta', () => wire.find((m) => m.type === 'delta') ?? null)) as Delta;
    expect(d.resources.map((r) => r.name)).to.deep.equal(['vhost/outbound/s0.ns.svc.cluster.local:80']);
    expect(d.removed).to.deep.equal([]);
    expect(d.base).to.equal(first.state);
    const info = await acked('p-vs');
    expect(info.sent!.delta).to.equal(true);
    expect(json(p.running())).to.deep.equal(json(fresh('p-vs')));
    expect(p.c.applied).to.deep.include({ full: 1, delta: 1, resyncs: 0 });
    // /debug/connections: what the proxy holds, by version and state
    expect(info.delta.held).to.deep.equal({ version: info.sent!.version, state: p.c.held.state });
    expect(await counter('weft_weftd_xds_pushed_bytes_total', 'kind="full"')).to.equal(fullBytes0);
    expect(await counter('weft_weftd_xds_pushed_bytes_total', 'kind="delta"')).to.be.greaterThan(0);
    expect(await counter('pilot_xds_pushes', 'type="delta"')).to.be.greaterThan(0);
  });

  it("one endpoint change sends only that cluster's endpoints", async () => {
    const wire = raw('p-ep');
    await waitFor('first config', () => (wire.length > 0 ? true : null));
    registry.change(() => mesh.endpointOctet++);
    const d = (await waitFor('the delta', () => wire.find((m) => m.type === 'delta') ?? null)) as Delta;
    expect(d.resources.map((r) => r.name)).to.deep.equal(['endpoints/outbound|80||s1.ns.svc.cluster.local']);
  });

  it('an older proxy (no delta=1) gets whole configs', async () => {
    const p = client('p-old', { delta: false });
    await acked('p-old');
    registry.change(() => (mesh.timeout = '3s'));
    await waitFor('the new config', () => (p.c.applied.full === 2 ? true : null));
    expect(p.c.applied.delta).to.equal(0);
    const info = await acked('p-old');
    expect(info.delta.enabled).to.equal(false);
    expect(info.sent!.delta).to.equal(undefined);
  });

  it('a delta that does not compile is NACKed; the proxy keeps its last good state and weftd diffs from it', async () => {
    let refuse = false;
    const p = client('p-bad', {
      onConfig: () => {
        if (refuse) throw new Error('listener port already bound');
      },
    });
    const good = await acked('p-bad');
    const heldBefore = p.c.held.state;
    refuse = true;
    registry.change(() => (mesh.timeout = '4s'));
    const nacked = await waitFor('the NACK', () => {
      const i = conn('p-bad');
      return i?.nacked && i.nacked.nonce === i.sent?.nonce ? i : null;
    });
    expect(nacked.nacked!.delta).to.equal(true);
    expect(p.c.held.state).to.equal(heldBefore);
    expect(nacked.delta.held).to.deep.equal({ version: good.sent!.version, state: heldBefore });
    // the next change is a delta from the last good state, and it applies
    refuse = false;
    registry.change(() => (mesh.timeout = '5s'));
    await waitFor('the next delta applied', () => (p.c.applied.delta >= 1 ? true : null));
    await acked('p-bad');
    expect(p.c.applied.resyncs).to.equal(0);
    expect(json(p.running())).to.deep.equal(json(fresh('p-bad')));
  });

  it('a delta that does not apply (hash mismatch) is NACKed with resync and answered with the whole config', async () => {
    const p = client('p-resync');
    await acked('p-resync');
    const before = await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resync"');
    p.c.held.commit(null); // the proxy lost track of its resources
    registry.change(() => (mesh.timeout = '6s'));
    await waitFor('the whole config after the resync', () => (p.c.applied.full === 2 ? true : null));
    expect(p.c.applied.resyncs).to.equal(1);
    const info = await acked('p-resync');
    expect(info.sent!.delta).to.equal(false);
    expect(await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resync"')).to.equal(before + 1);
    expect(json(p.running())).to.deep.equal(json(fresh('p-resync')));
    expect(p.c.held.state).to.equal(info.delta.held!.state);
  });

  it('a NACK of a whole config that asks for resync is not answered with another whole config (security review)', async () => {
    const wire = raw('p-fullnack');
    const first = (await waitFor(
      'the first (whole) config',
      () => wire.find((m) => m.type === 'config') ?? null,
    )) as {
      version: string;
      nonce: string;
    };
    const before = await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resync"');
    const body = JSON.stringify({
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p-fullnack',
      version: first.version,
      nonce: first.nonce,
      error: 'pretend',
      resync: true,
    });
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: port(),
          ca: ca.certPem,
          method: 'POST',
          path: ACK_PATH,
          headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(JSON.parse(answer)).to.deep.equal({ result: 'nack' });
    // each such NACK used to cost an immediate whole push (4 per connection)
    expect(conn('p-fullnack')!.delta.resyncs).to.equal(0);
    expect(await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resync"')).to.equal(before);
  });

  it('a reconnecting proxy resumes with a delta from the state it holds', async () => {
    const p = client('p-resume');
    await acked('p-resume');
    const streamsBefore = discovery.list().filter((c) => c.pod === 'p-resume')[0]!.id;
    // the stream breaks and the mesh changes before the proxy is back
    (p.c as unknown as { currentReq: { destroy(): void } }).currentReq.destroy();
    await waitFor('the old stream gone', () => (conn('p-resume')?.id === streamsBefore ? null : true));
    registry.change(() => (mesh.timeout = '7s'));
    const info = await waitFor('the new stream ACKed', () => {
      const i = conn('p-resume');
      const current = i?.sent?.version === fresh('p-resume').version;
      return i && i.id !== streamsBefore && current && i.acked?.nonce === i.sent!.nonce ? i : null;
    });
    expect(info.sent!.delta, 'resumed with a delta').to.equal(true);
    expect(info.delta.fulls).to.equal(0);
    expect(p.c.applied.full).to.equal(1);
    expect(json(p.running())).to.deep.equal(json(fresh('p-resume')));
  });

  it('a proxy naming the state of its current config (e.g. weftd restarted) gets an empty delta', async () => {
    const first = raw('p-current');
    const c = (await waitFor('config', () => first.find((m) => m.type === 'config') ?? null)) as {
      state: string;
    };
    const again = raw('p-current2', { state: c.state });
    // p-current2 has the same config but its own telemetry: another state; use its own
    const own = (await waitFor('config', () => again[0] ?? null)) as Extract<
      DiscoveryMessage,
      { type: 'config' }
    >;
    expect(own.type, 'a state not known for this proxy gets the whole config').to.equal('config');
    const third = raw('p-current2', { state: own.state! });
    const d = (await waitFor('the answer', () => third[0] ?? null)) as Delta;
    expect(d.type).to.equal('delta');
    expect(d.resources).to.deep.equal([]);
    expect(d.removed).to.deep.equal([]);
    expect(d.base).to.equal(own.state);
  });

  it("a forged state, or another proxy's, gets the whole config", async () => {
    const victim = raw('p-victim');
    const v = (await waitFor('config', () => victim[0] ?? null)) as { state: string };
    const before = await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resume_unknown"');
    const forged = raw('p-forger', { state: 'a'.repeat(32) });
    const foreign = raw('p-forger2', { state: v.state });
    await waitFor('answers', () => (forged[0] && foreign[0] ? true : null));
    expect(forged[0]!.type).to.equal('config');
    expect(foreign[0]!.type).to.equal('config');
    expect(await counter('weft_weftd_xds_delta_fallbacks_total', 'reason="resume_unknown"')).to.equal(
      before + 2,
    );
  });
});
