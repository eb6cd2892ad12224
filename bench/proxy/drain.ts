/**
 * What clients get while the proxy drains (issue #12, item 11): the standalone proxy runs as its
 * own process; requests arrive at RATE per second, each on a fresh connection (the worst case:
 * every one is accepted during the drain); after BEFORE_S seconds the proxy gets SIGTERM and the
 * load goes on until it has exited. Requests sent after the SIGTERM are counted by outcome:
 * answered (with or without `Connection: close`), reset after being accepted (the defect),
 * refused (the drain's last second accepts nothing, and then the proxy has exited: documented;
 * a refused connection is safe to retry elsewhere), other errors.
 *
 *   npx tsx bench/proxy/drain.ts            # this tree
 *   TREE=/path/to/other/checkout npx tsx bench/proxy/drain.ts   # another tree, same load
 *
 * Knobs: RATE (200), BEFORE_S (1), DRAIN_S (--drain-seconds, 5), DELAY_MS (a pause between
 * connect and sending the request, 0). Loopback only; bounded by DRAIN_S + 30 s.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './harness.js';

const RATE = Number(process.env.RATE ?? 200);
const BEFORE_S = Number(process.env.BEFORE_S ?? 1);
const DRAIN_S = Number(process.env.DRAIN_S ?? 5);
const DELAY_MS = Number(process.env.DELAY_MS ?? 0);
const HERE = path.dirname(new URL(import.meta.url).pathname);
const TREE = path.resolve(process.env.TREE ?? path.join(HERE, '../..'));

type Outcome = 'answered' | 'answeredClose' | 'reset' | 'refused' | 'other';

/** One request on a fresh connection: raw, so a reset after accept is told apart from a refusal. */
function once(port: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let connected = false;
    const done = (o: Outcome): void => {
      s.destroy();
      resolve(o);
    };
    s.once('connect', () => {
      connected = true;
      setTimeout(() => s.write('GET / HTTP/1.1\r\nHost: reviews:9080\r\n\r\n'), DELAY_MS);
    });
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/\r\n\r\nv1$/.test(got)) done(/connection: close/i.test(got) ? 'answeredClose' : 'answered');
    });
    s.on('error', (e: NodeJS.ErrnoException) =>
      done(!connected && e.code === 'ECONNREFUSED' ? 'refused' : connected ? 'reset' : 'other'),
    );
    s.on('close', () => done(connected ? 'reset' : 'other'));
    setTimeout(() => done('other'), 10_000).unref();
  });
}

async function main(): Promise<void> {
  const app = http.createServer((_q, res) => res.writeHead(200, { 'content-length': '2' }).end('v1'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as net.AddressInfo).port;
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-drain-'));
  const file = path.join(dir, 'mesh.yaml');
  writeFileSync(
    file,
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${appPort}}}]
`,
  );
  const port = await freePort();
  const proxy = spawn(
    path.join(TREE, 'node_modules/.bin/tsx'),
    [
      path.join(TREE, 'proxy/main.ts'),
      'run',
      '--config',
      file,
      '--listen',
      `127.0.0.1:${port}`,
      '--admin-port',
      '0',
      '--metrics-port',
      '0',
      '--health-port',
      '0',
      '--drain-seconds',
      String(DRAIN_S),
      '--no-watch',
    ],
    { cwd: TREE, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proxy.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number>((r) => proxy.once('exit', (c) => r(c ?? -1)));
  for (let i = 0; i < 600 && !log.includes('Proxy ready'); i++) await new Promise((r) => setTimeout(r, 100));
  if (!log.includes('Proxy ready')) throw new Error(`the proxy did not start: ${log.slice(-500)}`);

  const during: Promise<Outcome>[] = [];
  let termAt = Infinity;
  let stopped = false;
  void exited.then(() => (stopped = true));
  const start = Date.now();
  const deadline = start + (BEFORE_S + DRAIN_S + 30) * 1000;
  for (let n = 0; !stopped && Date.now() < deadline; n++) {
    const due = start + (n * 1000) / RATE;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    if (termAt === Infinity && Date.now() - start >= BEFORE_S * 1000) {
      termAt = Date.now();
      proxy.kill('SIGTERM');
    }
    const r = once(port);
    if (Date.now() >= termAt) during.push(r);
  }
  const code = await exited;
  const outcomes = await Promise.all(during);
  const count = (o: Outcome): number => outcomes.filter((x) => x === o).length;
  const result = {
    tree: TREE,
    rate: RATE,
    drainSeconds: DRAIN_S,
    delayMs: DELAY_MS,
    exitCode: code,
    drainLastedMs: Date.now() - termAt,
    sentDuringDrain: outcomes.length,
    answered: count('answered') + count('answeredClose'),
    answeredWithConnectionClose: count('answeredClose'),
    resetAfterAccept: count('reset'),
    refused: count('refused'),
    other: count('other'),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  app.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
