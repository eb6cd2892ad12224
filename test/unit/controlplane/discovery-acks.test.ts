/**
 * ACK/NACK of pushes without a cluster: weftd's real DiscoveryService on a real HTTPS server on
 * loopback (a fake registry and an authenticator mapping tokens to identities), the proxy's real
 * DiscoveryClient and AckSender. An ACK is recorded on the stream it names; a NACK with its
 * error; a nonce that is unknown, old or another proxy's is stale and changes nothing; bodies
 * past 16 KiB are 413; an older proxy (no acks=1) is never waited for; answers reuse one TLS
 * connection. The server has no upgrade listener, as a weftd from before ADR 0026: the proxy asks
 * to upgrade, gets a plain stream, and POSTs its answers (discovery-acks-stream.test.ts: on the
 * stream).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../../controlplane/auth.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DiscoveryService, withNonce } from '../../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { createWeftdMetrics, type WeftdMetrics } from '../../../controlplane/metrics.js';
import { oneServiceAt, SnapshotRegistry } from '../../support/snapshot-registry.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { ACK_PATH, MAX_ACK_BYTES, encodeMessage, MessageDecoder } from '../../../pkg/discovery/protocol.js';
import { WeftError } from '../../../pkg/errors/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { AckSender, attemptOf } from '../../../proxy/discovery/ack.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { metricValue } from '../../support/metrics.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });

/** token → identity; anything else is refused as the TokenReview would. */
const IDENTITIES: Record<string, Identity> = {
  'tok-a': { namespace: 'ns', serviceAccount: 'sa-a' },
  'tok-b': { namespace: 'ns', serviceAccount: 'sa-b' },
  'tok-other-ns': { namespace: 'other', serviceAccount: 'sa-a' },
};

describe('weftd ACK/NACK of pushes (real server and client on loopback)', function () {
  this.timeout(60_000);
  let server: Server;
  let discovery: DiscoveryService;
  let registry: SnapshotRegistry;
  let metrics: WeftdMetrics;
  let dir: string;
  let handshakes = 0;
  const clients: DiscoveryClient[] = [];
  const port = (): number => (server.address() as AddressInfo).port;

  before(async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
    dir = mkdtempSync(join(tmpdir(), 'acks-'));
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    for (const t of Object.keys(IDENTITIES)) writeFileSync(join(dir, t), t);
    registry = new SnapshotRegistry((g) => ({ services: oneServiceAt(g) }), { trigger: 'service' });
    metrics = createWeftdMetrics(false);
    discovery = new DiscoveryService({
      registry,
      generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
      authenticate: async (token) => {
        const identity = IDENTITIES[token];
        if (!identity) throw new WeftError('WEFT_UNAUTHENTICATED', 'token rejected');
        return { identity, cached: true };
      },
      metrics,
      log,
      debounce: { afterMs: 0, maxMs: 0 },
      pingIntervalMs: 60_000,
    });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, discovery.handle);
    server.on('secureConnection', () => handshakes++);
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
    token: string,
    onConfig: (c: ProxyConfig, v: string) => Promise<void>,
    acks = true,
  ): DiscoveryClient {
    const c = new DiscoveryClient({
      address: `127.0.0.1:${port()}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath: join(dir, token),
      request: { kind: 'sidecar', namespace: 'ns', pod },
      log,
      onConfig,
      acks,
    });
    clients.push(c);
    void c.run();
    return c;
  }

  const conn = (pod: string) => discovery.list().find((c) => c.pod === pod);
  const counter = (name: string, labels: string): Promise<number> => metricValue(metrics, name, labels);

  function post(
    body: string | Buffer,
    token = 'tok-a',
  ): Promise<{ status: number; body: string; connection: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: port(),
          path: ACK_PATH,
          method: 'POST',
          ca: undefined,
          rejectUnauthorized: false,
          agent: false,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('records an ACK on the stream once the proxy has applied the push (acked == sent)', async () => {
    const before = await counter('weft_weftd_xds_acks_total', 'result="ack"');
    client('p-ack', 'tok-a', () => Promise.resolve());
    const c = await waitFor('the ACK', () => {
      const i = conn('p-ack');
      return i?.acked && i.acked.nonce === i.sent?.nonce ? i : null;
    });
    expect(c.acks).to.equal(true);
    expect(c.acksOnStream, 'a plain stream: answers POSTed').to.equal(false);
    expect(c.acked!.version).to.equal(c.sent!.version);
    expect(c.sent!.nonce).to.match(/^[0-9a-f]{32}$/);
    expect(c.nacked).to.equal(null);
    expect(await counter('weft_weftd_xds_acks_total', 'result="ack"')).to.equal(before + 1);
  });

  it('a new push gets a new nonce, and the ACK follows it', async () => {
    const first = conn('p-ack')!.sent!;
    registry.change();
    const c = await waitFor('the ACK of the new push', () => {
      const i = conn('p-ack');
      return i?.sent && i.sent.nonce !== first.nonce && i.acked?.nonce === i.sent.nonce ? i : null;
    });
    expect(c.sent!.version).to.not.equal(first.version);
  });

  it('records a NACK with the proxy’s error, counts it as a reject, and the ACK state stays as it was', async () => {
    const rejects = await counter('pilot_total_xds_rejects', 'type="config"');
    let fail = false;
    const cl = client('p-nack', 'tok-a', () =>
      fail
        ? Promise.reject(new Error('listen EADDRINUSE: address already in use 0.0.0.0:8080'))
        : Promise.resolve(),
    );
    const good = await waitFor('the first ACK', () => conn('p-nack')?.acked ?? null);
    fail = true;
    registry.change();
    const c = await waitFor('the NACK', () => {
      const i = conn('p-nack');
      return i?.nacked && i.nacked.nonce === i.sent?.nonce ? i : null;
    });
    expect(c.nacked!.error).to.equal('listen EADDRINUSE: address already in use 0.0.0.0:8080');
    expect(c.acked).to.deep.equal(good); // the last good config is what the proxy runs
    expect(cl.versionsApplied.at(-1)).to.equal(good.version);
    expect(await counter('pilot_total_xds_rejects', 'type="config"')).to.equal(rejects + 1);
    // a NACK does not make weftd resend: nothing loops while the proxy keeps refusing
    const pushes = c.pushes;
    await new Promise((r) => setTimeout(r, 300));
    expect(conn('p-nack')!.pushes).to.equal(pushes);
    fail = false;
    registry.change();
    await waitFor('an ACK after the NACK', () => {
      const i = conn('p-nack');
      return i?.acked?.nonce === i?.sent?.nonce ? i : null;
    });
  });

  it('an older proxy (no acks=1) is marked as not answering and sends nothing', async () => {
    const cl = client('p-old', 'tok-a', () => Promise.resolve(), false);
    const c = await waitFor('its config', () => (cl.versionsApplied.length > 0 ? conn('p-old') : null));
    expect(c!.acks).to.equal(false);
    expect(c!.acked).to.equal(null);
    expect(cl.acks).to.equal(null);
  });

  it('stale: an unknown nonce, an old nonce, another identity’s nonce, a wrong version — 200 stale, nothing recorded', async () => {
    const i = conn('p-ack')!;
    const ack = {
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p-ack',
      version: i.sent!.version,
      nonce: i.sent!.nonce,
    };
    const stale = await counter('weft_weftd_xds_acks_total', 'result="stale"');
    const cases: [string, object, string][] = [
      ['unknown nonce', { ...ack, nonce: 'f'.repeat(32), error: 'forged' }, 'tok-a'],
      ['another service account', { ...ack, error: 'forged' }, 'tok-b'],
      ['wrong version', { ...ack, version: 'nope', error: 'forged' }, 'tok-a'],
      ['another pod of the same identity', { ...ack, pod: 'p-nack', error: 'forged' }, 'tok-a'],
    ];
    for (const [what, body, token] of cases) {
      const r = await post(JSON.stringify(body), token);
      expect([what, r.status, JSON.parse(r.body)]).to.deep.equal([what, 200, { result: 'stale' }]);
    }
    expect(conn('p-ack')!.nacked).to.equal(null);
    expect(await counter('weft_weftd_xds_acks_total', 'result="stale"')).to.equal(stale + cases.length);
    // an old nonce of this very stream: stale once a newer push went out
    registry.change();
    await waitFor('the next push', () => (conn('p-ack')!.sent!.nonce !== ack.nonce ? true : null));
    const r = await post(JSON.stringify({ ...ack, error: 'late' }));
    expect(JSON.parse(r.body)).to.deep.equal({ result: 'stale' });
    expect(conn('p-ack')!.nacked).to.equal(null);
  });

  it('refuses what is not an ACK: 413 past 16 KiB, 400 for a bad body, 401 without a valid token, 403 for another namespace', async () => {
    const ack = { kind: 'sidecar', namespace: 'ns', pod: 'p-ack', version: 'v', nonce: 'a'.repeat(32) };
    const cases: [string, string | Buffer, string, number, string][] = [
      [
        'a body past the limit',
        JSON.stringify({ ...ack, error: 'x'.repeat(MAX_ACK_BYTES) }),
        'tok-a',
        413,
        'WEFT_INPUT_TOO_LARGE',
      ],
      ['not JSON', '{', 'tok-a', 400, 'WEFT_DISCOVERY_ACK_INVALID'],
      ['no nonce', JSON.stringify({ ...ack, nonce: undefined }), 'tok-a', 400, 'WEFT_DISCOVERY_ACK_INVALID'],
      [
        'a nonce that is not one weftd makes',
        JSON.stringify({ ...ack, nonce: 'x' }),
        'tok-a',
        400,
        'WEFT_DISCOVERY_ACK_INVALID',
      ],
      [
        'an error that is not a string',
        JSON.stringify({ ...ack, error: 7 }),
        'tok-a',
        400,
        'WEFT_DISCOVERY_ACK_INVALID',
      ],
      ['an unknown token', JSON.stringify(ack), 'nope', 401, 'WEFT_UNAUTHENTICATED'],
      ['another namespace', JSON.stringify(ack), 'tok-other-ns', 403, 'WEFT_FORBIDDEN'],
    ];
    for (const [what, body, token, status, code] of cases) {
      const r = await post(body, token);
      if (status === 413) expect(r.connection, what).to.equal('close');
      expect([what, r.status, (JSON.parse(r.body) as { code: string }).code]).to.deep.equal([
        what,
        status,
        code,
      ]);
    }
  });

  it('answers reuse one keep-alive TLS connection (no handshake per ACK)', async () => {
    const i = conn('p-ack')!;
    const sender = new AckSender({
      host: '127.0.0.1',
      port: port(),
      servername: undefined,
      ca: () => readCa(dir),
      token: () => 'tok-a',
      log,
    });
    const before = handshakes;
    for (let n = 0; n < 20; n++)
      await sender.send({
        kind: 'sidecar',
        namespace: 'ns',
        pod: 'p-ack',
        version: i.sent!.version,
        nonce: i.sent!.nonce,
      });
    sender.stop();
    expect(sender.sent).to.equal(20);
    expect(sender.results.ack).to.equal(20);
    expect(handshakes - before).to.equal(1);
  });

  it('retries a refused connection a bounded number of times, then gives up and counts it', async () => {
    const sender = new AckSender({
      host: '127.0.0.1',
      port: 1, // nothing listens
      servername: undefined,
      ca: () => readCa(dir),
      token: () => 'tok-a',
      log,
      attempts: 3,
      backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
    });
    await sender.send({ kind: 'sidecar', namespace: 'ns', pod: 'p', version: 'v', nonce: 'a'.repeat(32) });
    expect([sender.sent, sender.failed]).to.deep.equal([0, 1]);
    sender.stop();
  });
});

const readCa = (dir: string): string => readFileSync(join(dir, 'ca.crt'), 'utf8');

describe('ACK sender: what an answer means (attemptOf)', () => {
  const cases: [number, string, string][] = [
    [200, '{"result":"ack"}', 'ok ack'],
    [200, '{"result":"stale"}', 'ok stale'],
    [200, 'garbage', 'retry'],
    [413, '{}', 'final'],
    [400, '{}', 'final'],
    [401, '{}', 'final'],
    [429, '{}', 'retry'],
    [503, '{}', 'retry'],
  ];
  for (const [status, body, want] of cases)
    it(`${status} ${body} → ${want}`, () => {
      const a = attemptOf(status, body);
      expect(a.ok ? `ok ${a.result}` : a.retry ? 'retry' : 'final').to.equal(want);
    });
});

describe('withNonce: the nonce spliced into a shared config line', () => {
  it('is the same message encodeMessage would write with the nonce', () => {
    const config = {
      apiVersion: 'weft.dev/proxy/v1alpha1',
      kind: 'ProxyConfig',
      version: 'v1',
      listeners: [],
      clusters: [],
    } as unknown as ProxyConfig;
    const line = withNonce(encodeMessage({ type: 'config', version: 'v1', config }), 'ab'.repeat(16));
    const [m] = new MessageDecoder().push(line);
    expect(m).to.deep.equal({ type: 'config', nonce: 'ab'.repeat(16), version: 'v1', config });
    expect(() => withNonce(encodeMessage({ type: 'ping' }), 'x')).to.throw('not a config line');
  });
});

describe('ACK sender: an answer queued as the previous one finishes is sent', () => {
  // Regression: `running` used to be cleared by a `.finally()` a microtask after the drain loop
  // had exited; an answer queued in that window started no drain and waited for the next push.
  const ack = (version: string) => ({
    kind: 'sidecar' as const,
    namespace: 'ns',
    pod: 'p',
    version,
    nonce: 'n',
  });
  for (let k = 0; k <= 6; k++)
    it(`queued ${k} microtasks after the previous answer was delivered`, async () => {
      const sender = new AckSender({
        host: '127.0.0.1',
        port: 1,
        servername: undefined,
        ca: () => '',
        token: () => '',
        log: createLogger('t', { silent: true }),
      });
      const posted: string[] = [];
      (sender as unknown as { post: (a: { version: string }) => Promise<unknown> }).post = (a) => {
        posted.push(a.version);
        const done = Promise.resolve({ ok: true, result: 'ack' });
        if (a.version === 'v1') {
          let p: Promise<unknown> = done;
          for (let i = 0; i < k; i++) p = p.then(() => undefined);
          void p.then(() => sender.send(ack('v2')));
        }
        return done;
      };
      await sender.send(ack('v1'));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      sender.stop();
      expect(posted).to.deep.equal(['v1', 'v2']);
    });
});
