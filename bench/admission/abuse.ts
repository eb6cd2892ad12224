/**
 * The webhook under hostile input (issue #12), as a benchmark (not a test): the real process
 * (`webhook/main.ts --no-cluster`, 2,000-object index), unauthenticated requests only.
 *
 *   1. crash: two ~300 KB VirtualServices with 100,000 empty routes each, then an
 *      AdmissionReview nested 100,000 levels deep (killed the process before the fix);
 *   2. regex flood: FLOOD_CONCURRENCY (8) clients each send, back to back, a ~122 KB
 *      VirtualService with 1,450 regexes, while a typical VirtualService is sent at RATE
 *      (open loop, latency from the scheduled send time): the typical ones' p50/p99 is the
 *      figure that matters (target p99 < 50 ms);
 *   3. huge flood: HUGE_COUNT 100,000-route objects, 4 in flight (memory);
 *   4. slow clients: SLOW_CLIENTS connections that trickle their headers and as many that
 *      trickle a body, one byte a second: how long until the server cuts each.
 *
 * The webhook's RSS is sampled every 100 ms: reported idle (before), at its peak (VmHWM) and
 * after IDLE_AFTER seconds of rest. Writes bench/admission/last-run-abuse.json.
 *
 * Env: RATE (default 50), FLOOD_SECONDS (20), FLOOD_CONCURRENCY (8), HUGE_COUNT (10),
 * SLOW_CLIENTS (10), IDLE_AFTER (10), PHASES (default crash,regex_flood,huge_flood,slow_clients:
 * leave out crash to measure the others on a build that the crash kills).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { peakRssBytes, rssBytes } from '../../hack/cluster/proc.js';
import { ROOT, fixedRate, percentile, review, startServer, virtualService, type Server } from './harness.js';

const RATE = Number(process.env.RATE ?? 50);
const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 20);
const FLOOD_CONCURRENCY = Number(process.env.FLOOD_CONCURRENCY ?? 8);
const HUGE_COUNT = Number(process.env.HUGE_COUNT ?? 10);
const SLOW_CLIENTS = Number(process.env.SLOW_CLIENTS ?? 10);
const IDLE_AFTER = Number(process.env.IDLE_AFTER ?? 10);
const PHASES = (process.env.PHASES ?? 'crash,regex_flood,huge_flood,slow_clients').split(',');
if (
  !(RATE > 0 && RATE <= 500) ||
  !(FLOOD_SECONDS > 0 && FLOOD_SECONDS <= 120) ||
  !(FLOOD_CONCURRENCY > 0 && FLOOD_CONCURRENCY <= 32) ||
  !(HUGE_COUNT >= 0 && HUGE_COUNT <= 50) ||
  !(SLOW_CLIENTS >= 0 && SLOW_CLIENTS <= 100) ||
  !(IDLE_AFTER >= 0 && IDLE_AFTER <= 120)
)
  throw new Error(
    'RATE 1..500, FLOOD_SECONDS 1..120, FLOOD_CONCURRENCY 1..32, HUGE_COUNT 0..50, SLOW_CLIENTS 0..100',
  );

const MB = 1024 * 1024;

function vs(name: string, spec: unknown): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'abuse' },
    spec,
  };
}

/** ~300 KB: 100,000 routes that are `{}`. */
const emptyRoutes = (): string =>
  review(vs('empty-routes', { hosts: ['r'], http: Array.from({ length: 100_000 }, () => ({})) }));

/** 100,000 levels of `[` inside spec.http (built as text: JSON.stringify would overflow here). */
const deeplyNested = (): string =>
  review(vs('deep', { hosts: ['r'], http: '@DEEP@' })).replace(
    '"@DEEP@"',
    `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  );

/** ~122 KB, under the 128 KiB byte threshold of the old code: 1,450 matches with one regex each. */
const manyRegexes = (): string =>
  review(
    vs('regexes', {
      hosts: ['r'],
      http: [
        {
          match: Array.from({ length: 1450 }, (_, i) => ({
            uri: { regex: `/api/v${i}/(users|orders|items)/[a-z0-9]{8,64}(/[a-z]{1,16}){0,4}` },
          })),
          route: [{ destination: { host: 'r' } }],
        },
      ],
    }),
  );

interface Answer {
  status: number;
  text: string;
  ms: number;
}

/** POST that never rejects: a reset or timeout is status 0 with the error as text. */
function answer(agent: Agent, port: number, body: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, text: string): void =>
      resolve({ status, text, ms: performance.now() - started });
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => done(res.statusCode ?? 0, text));
        res.on('error', (err) => done(0, err.message));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => done(0, err.message));
    req.end(body);
  });
}

/** `200 denied: <message start>` / `400 WEFT_...`: what a client saw, short. */
function outcome(a: Answer): string {
  if (a.status === 0) return `no answer (${a.text})`;
  try {
    const j = JSON.parse(a.text) as {
      response?: { allowed: boolean; status?: { message: string } };
      message?: string;
    };
    if (j.response)
      return `${a.status} ${j.response.allowed ? 'allowed' : `denied: ${j.response.status?.message.slice(0, 140)}`}`;
    return `${a.status} ${String(j.message).slice(0, 140)}`;
  } catch {
    return `${a.status} ${a.text.slice(0, 100)}`;
  }
}

function tally(answers: Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = outcome(a)
      .replace(/\d[\d,]*/g, 'N')
      .slice(0, 120);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

class RssSampler {
  private timer: NodeJS.Timeout;
  peakSampled = 0;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => {
      this.peakSampled = Math.max(this.peakSampled, rssBytes(pid) ?? 0);
    }, 100);
  }
  now(): number {
    return rssBytes(this.pid) ?? 0;
  }
  stop(): number {
    clearInterval(this.timer);
    return Math.max(this.peakSampled, peakRssBytes(this.pid) ?? 0);
  }
}

async function crashSequence(agent: Agent, server: Server): Promise<Record<string, unknown>> {
  const empty = emptyRoutes();
  const [a, b] = [answer(agent, server.port, empty), answer(agent, server.port, empty)];
  await sleep(200); // both are parsed and queued before the deep one arrives, as in the report
  const deep = await answer(agent, server.port, deeplyNested());
  const results = [await a, await b, deep];
  await sleep(500);
  return {
    bodies_kb: [Math.round(empty.length / 1024), Math.round(deeplyNested().length / 1024)],
    answers: results.map(outcome),
    alive: server.alive(),
  };
}

async function regexFlood(agent: Agent, server: Server): Promise<Record<string, unknown>> {
  const body = manyRegexes();
  const end = performance.now() + FLOOD_SECONDS * 1000;
  const abusive: Answer[] = [];
  const flooder = async (): Promise<void> => {
    while (performance.now() < end && server.alive()) abusive.push(await answer(agent, server.port, body));
  };
  const typical = new Agent({ ca: server.ca, keepAlive: true, maxSockets: 16 });
  const [normal] = await Promise.all([
    fixedRate(typical, server.port, '/validate', () => review(virtualService), RATE, FLOOD_SECONDS),
    ...Array.from({ length: FLOOD_CONCURRENCY }, flooder),
  ]);
  typical.destroy();
  return {
    abusive_body_kb: Math.round(body.length / 1024),
    abusive_sent: abusive.length,
    abusive_answers: tally(abusive),
    abusive_p50_ms: Math.round(
      percentile(
        abusive.map((a) => a.ms).sort((x, y) => x - y),
        50,
      ),
    ),
    normal_requests: normal.lat.length,
    normal_errors: normal.errors,
    normal_p50_ms: +percentile(normal.lat, 50).toFixed(1),
    normal_p99_ms: +percentile(normal.lat, 99).toFixed(1),
    normal_max_ms: +(normal.lat[normal.lat.length - 1] ?? NaN).toFixed(1),
    alive: server.alive(),
  };
}

async function hugeFlood(agent: Agent, server: Server): Promise<Record<string, unknown>> {
  const body = emptyRoutes();
  const answers: Answer[] = [];
  let next = 0;
  const sender = async (): Promise<void> => {
    while (next++ < HUGE_COUNT && server.alive()) answers.push(await answer(agent, server.port, body));
  };
  await Promise.all(Array.from({ length: 4 }, sender));
  return { sent: answers.length, answers: tally(answers), alive: server.alive() };
}

/** Seconds until the server closed the connection (or `cap` if it never did). */
function slowClient(server: Server, mode: 'headers' | 'body', cap: number): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const sock = connect({ host: '127.0.0.1', port: server.port, ca: server.ca });
    let drip: NodeJS.Timeout | undefined;
    const give = setTimeout(() => sock.destroy(), cap * 1000);
    sock.once('secureConnect', () => {
      sock.write(
        mode === 'headers'
          ? 'POST /validate HTTP/1.1\r\nHost: x\r\n'
          : 'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
      );
      drip = setInterval(() => sock.write(mode === 'headers' ? 'X-A: b\r\n' : ' '), 1000);
    });
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    sock.once('close', () => {
      clearInterval(drip);
      clearTimeout(give);
      resolve(Math.min(cap, (performance.now() - started) / 1000));
    });
  });
}

async function slowClients(server: Server): Promise<Record<string, unknown>> {
  const cap = 60;
  const [headers, bodies] = await Promise.all([
    Promise.all(Array.from({ length: SLOW_CLIENTS }, () => slowClient(server, 'headers', cap))),
    Promise.all(Array.from({ length: SLOW_CLIENTS }, () => slowClient(server, 'body', cap))),
  ]);
  const med = (xs: number[]): number =>
    +percentile(
      [...xs].sort((a, b) => a - b),
      50,
    ).toFixed(1);
  return {
    clients: SLOW_CLIENTS * 2,
    headers_cut_after_s: { median: med(headers), max: +Math.max(...headers).toFixed(1) },
    body_cut_after_s: { median: med(bodies), max: +Math.max(...bodies).toFixed(1) },
    never_cut: [...headers, ...bodies].filter((s) => s >= cap).length,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-abuse-'));
  const server = await startServer(dir);
  const agent = new Agent({ ca: server.ca, keepAlive: true, maxSockets: 32 });
  const rss = new RssSampler(server.pid);
  const loadBefore = loadavg()[0]!.toFixed(2);
  const report: Record<string, unknown> = {};
  try {
    await fixedRate(agent, server.port, '/validate', () => review(virtualService), 100, 2);
    await sleep(1000);
    report.rss_idle_mb = +(rss.now() / MB).toFixed(1);
    const phases: [string, () => Promise<Record<string, unknown>>][] = [
      ['crash', () => crashSequence(agent, server)],
      ['regex_flood', () => regexFlood(agent, server)],
      ['huge_flood', () => hugeFlood(agent, server)],
      ['slow_clients', () => slowClients(server)],
    ];
    for (const [name, run] of phases) {
      if (!PHASES.includes(name)) continue;
      if (!server.alive()) {
        report[name] = 'skipped: the webhook process had exited';
        continue;
      }
      report[name] = await run();
      console.log(name, JSON.stringify(report[name]));
    }
    await sleep(IDLE_AFTER * 1000);
    report.rss_after_mb = server.alive() ? +(rss.now() / MB).toFixed(1) : 'exited';
    report.alive_at_end = server.alive();
  } finally {
    report.rss_peak_mb = +(rss.stop() / MB).toFixed(1);
    agent.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0]!.toFixed(2);
  console.log(
    `\nwebhook under abuse: ${cpus().length} cores, node ${process.version}, 1-min load ${loadBefore} before, ${loadAfter} after`,
  );
  console.log(
    `RSS: idle ${String(report.rss_idle_mb)} MB, peak ${String(report.rss_peak_mb)} MB, after ${IDLE_AFTER} s rest ${String(report.rss_after_mb)} MB; alive at the end: ${String(report.alive_at_end)}`,
  );
  writeFileSync(
    join(ROOT, 'bench/admission/last-run-abuse.json'),
    `${JSON.stringify({ date: new Date().toISOString(), rate: RATE, floodSeconds: FLOOD_SECONDS, loadBefore, loadAfter, ...report }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(`bench/admission/abuse: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
