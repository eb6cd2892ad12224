/**
 * ACK cost of a push to a fleet: PROXIES simulated proxies (default 1,000) hold real discovery
 * streams (TLS, NDJSON) to weftd's real DiscoveryService and answer every config with the
 * proxy's real AckSender; one registry change pushes a new config to all of them and the clock
 * runs until weftd has recorded every ACK. Same run, same fleet, one block of pushes
 * per mode, each block after a warm-up push (a mode is measured in its steady state: keep-alive
 * sockets open, session tickets cached):
 *   - keep-alive: the proxy's default (one kept-alive TLS connection per proxy, warm from the
 *     previous ACK),
 *   - resume: a new connection per ACK that resumes the TLS session,
 *   - new: a new connection and full TLS handshake per ACK (the baseline a naive client costs).
 * Medians of REPS pushes per mode; the ratio to `new` is the figure to compare across machines.
 * Everything runs in one process on loopback (weftd's side and the fleet's share the CPU), so
 * absolute times include the fleet's own work. Writes bench/weftd/last-run-acks.json.
 *   npx tsx bench/weftd/acks.ts          PROXIES=1000 REPS=5
 */
import { writeFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DiscoveryService } from '../../controlplane/discovery.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import { createWeftdMetrics } from '../../controlplane/metrics.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { MessageDecoder, discoveryQuery } from '../../pkg/discovery/protocol.js';
import { serverTimeoutOptions } from '../../pkg/http/timeouts.js';
import { createLogger } from '../../pkg/log/index.js';
import { AckSender } from '../../proxy/discovery/ack.js';

const PROXIES = Number(process.env.PROXIES ?? 1000);
const REPS = Number(process.env.REPS ?? 5);
const MODES = ['keep-alive', 'resume', 'new'] as const;
type Mode = (typeof MODES)[number];
const log = createLogger('bench', { silent: true });

/** A registry of 20 services whose endpoints move on every change (a new version for everyone). */

const now = new Date();
const ca = createCA({ commonName: 'bench', ttlMs: 3600_000, now });
const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
const registry = new SnapshotRegistry(
  (g) => ({
    services: Array.from({ length: 20 }, (_, i) => ({
      host: `s${i}.ns.svc.cluster.local`,
      namespace: 'ns',
      addresses: [`10.0.0.${i}`],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: `10.1.${g & 255}.${i}`, labels: {}, ports: { http: 8080 } }],
    })),
  }),
  { trigger: 'endpoint', podLabels: () => ({ app: 'client' }) },
);
const discovery = new DiscoveryService({
  registry,
  generator: new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: DEFAULT_MESH, log }),
  // a TokenReview answered from weftd's cache, as it is for a proxy that is already streaming
  authenticate: () => Promise.resolve({ identity: { namespace: 'ns', serviceAccount: 'sa' }, cached: true }),
  metrics: createWeftdMetrics(false),
  log,
  debounce: { afterMs: 0, maxMs: 0 },
  pingIntervalMs: 60_000,
});
let connections = 0;
let fullHandshakes = 0;
const server = createServer(
  { cert: leaf.certPem, key: leaf.keyPem, ...serverTimeoutOptions() },
  discovery.handle,
);
server.on('secureConnection', (s: import('node:tls').TLSSocket) => {
  connections++;
  if (!s.isSessionReused()) fullHandshakes++;
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;

let mode: Mode = 'keep-alive';
interface SimProxy {
  senders: Record<Mode, AckSender>;
}

function senders(): Record<Mode, AckSender> {
  const make = (connection: Mode): AckSender =>
    new AckSender({
      host: '127.0.0.1',
      port,
      servername: undefined,
      ca: () => ca.certPem,
      token: () => 'bench',
      log,
      connection,
    });
  return { 'keep-alive': make('keep-alive'), resume: make('resume'), new: make('new') };
}

/** A proxy: its stream, and an ACK (through the current mode's sender) for every config. */
function connect(i: number): Promise<SimProxy> {
  const p: SimProxy = { senders: senders() };
  return new Promise((resolve, reject) => {
    const pod = `p${i}`;
    const req = request({
      host: '127.0.0.1',
      port,
      ca: ca.certPem,
      path: discoveryQuery({ kind: 'sidecar', namespace: 'ns', pod, acks: true }),
      headers: { authorization: 'Bearer bench' },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream ${pod}: HTTP ${res.statusCode}`));
      const decoder = new MessageDecoder();
      res.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk))
          if (m.type === 'config' && m.nonce !== undefined)
            void p.senders[mode].send({
              kind: 'sidecar',
              namespace: 'ns',
              pod,
              version: m.version,
              nonce: m.nonce,
            });
      });
      resolve(p);
    });
    req.end();
  });
}

/** One registry change, then until weftd wrote the new config to every stream and recorded every ACK. */
async function pushAndWait(what: string): Promise<void> {
  const cycles = discovery.pushCycles;
  const target = answered() + PROXIES;
  registry.change();
  // the fleet's own count is cheap to poll; weftd's record is then checked once
  await until(what, () => discovery.pushCycles > cycles && answered() >= target);
  if (!allAcked()) throw new Error(`${what}: the fleet was answered but weftd did not record every ACK`);
}

/** ACKs weftd answered `ack` to, over the whole fleet and every mode. */
function answered(): number {
  let n = 0;
  for (const p of fleet) for (const m of MODES) n += p.senders[m].results.ack;
  return n;
}

/** Every stream's newest push ACKed, as weftd recorded it. */
function allAcked(): boolean {
  const list = discovery.list();
  return list.length === PROXIES && list.every((c) => c.sent !== null && c.acked?.nonce === c.sent.nonce);
}

async function until(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fleet: SimProxy[] = [];
for (let i = 0; i < PROXIES; i += 50)
  fleet.push(
    ...(await Promise.all(Array.from({ length: Math.min(50, PROXIES - i) }, (_, j) => connect(i + j)))),
  );
await until('the first configs ACKed', allAcked);
const samples: Record<Mode, { ms: number; connections: number; fullHandshakes: number }[]> = {
  'keep-alive': [],
  resume: [],
  new: [],
};
for (const m of MODES) {
  mode = m;
  await pushAndWait(`warm-up ${m}`);
  for (let rep = 0; rep < REPS; rep++) {
    await new Promise((r) => setTimeout(r, 200));
    const c0 = connections;
    const h0 = fullHandshakes;
    const t0 = performance.now();
    await pushAndWait(`push ${rep} (${m})`);
    samples[m].push({
      ms: performance.now() - t0,
      connections: connections - c0,
      fullHandshakes: fullHandshakes - h0,
    });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = MODES.map((m) => ({
  mode: m,
  medianMs: median(samples[m].map((s) => s.ms)),
  medianConnections: median(samples[m].map((s) => s.connections)),
  medianFullHandshakes: median(samples[m].map((s) => s.fullHandshakes)),
}));
const base = result.find((r) => r.mode === 'new')!.medianMs;
process.stdout.write(
  `| ${PROXIES} proxies, one push, until weftd recorded every ACK (median of ${REPS}) | ms | new TLS connections | full handshakes | vs new connection |\n|---|---|---|---|---|\n`,
);
for (const r of result)
  process.stdout.write(
    `| ${r.mode} | ${r.medianMs.toFixed(0)} | ${r.medianConnections} | ${r.medianFullHandshakes} | ${(r.medianMs / base).toFixed(2)}× |\n`,
  );
writeFileSync(
  new URL('./last-run-acks.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), proxies: PROXIES, reps: REPS, result, samples }, null, 2)}\n`,
);
for (const p of fleet) for (const s of Object.values(p.senders)) s.stop();
discovery.close();
server.closeAllConnections();
server.close();
