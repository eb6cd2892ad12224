/**
 * Admission benchmark (not a test). Starts `webhook/main.ts --no-cluster` with a fresh
 * certificate, then for each webhook sends AdmissionReviews at a fixed rate (open loop: each
 * request has a scheduled send time, and latency is measured from that time, so a stall is
 * charged to every request it delays rather than hidden), over a keep-alive HTTPS agent.
 * Finally a short closed-loop burst (16 in flight) gives the throughput ceiling.
 *
 * The validator runs with an index of 2,000 mesh objects (`--preload`), so each validation
 * includes the cross-object checks a real cluster would have.
 *
 * Env: RATE (req/s, default 100), DURATION (s per webhook, default 30), WARMUP (s, default 3).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, fixedRate, percentile, pod, post, review, startServer, virtualService } from './harness.js';
const RATE = Number(process.env.RATE ?? 100);
const DURATION = Number(process.env.DURATION ?? 30);
const WARMUP = Number(process.env.WARMUP ?? 3);
const BURST_SECONDS = 5;
const BURST_CONCURRENCY = 16;
if (!(RATE > 0 && RATE <= 2000 && DURATION > 0 && DURATION <= 300))
  throw new Error('RATE must be 1..2000 and DURATION 1..300');

/**
 * The webhook's own view: `durationMs` of each "Admission reviewed" log line written since
 * `from` (body parsed → response written), i.e. latency without client, kernel or TLS queueing.
 */
function serverDurations(logFile: string, from: number): number[] {
  const text = readFileSync(logFile, 'utf8').slice(from);
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('Admission reviewed')) continue;
    const d = (JSON.parse(line) as { durationMs?: number }).durationMs;
    if (typeof d === 'number') out.push(d);
  }
  return out.sort((a, b) => a - b);
}

/** One request whose answer is read: the bench must measure real verdicts, not errors. */
function sanityCheck(
  agent: Agent,
  port: number,
  path: string,
  body: string,
  expect: (r: Record<string, unknown>) => boolean,
): Promise<void> {
  return new Promise((ok, fail) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          const resp = (JSON.parse(text) as { response?: Record<string, unknown> }).response ?? {};
          if (expect(resp)) ok();
          else fail(new Error(`unexpected answer from ${path}: ${text.slice(0, 500)}`));
        });
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

async function burst(agent: Agent, port: number, path: string, make: () => string): Promise<number> {
  const end = performance.now() + BURST_SECONDS * 1000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await post(agent, port, path, make());
      done++;
    }
  };
  await Promise.all(Array.from({ length: BURST_CONCURRENCY }, worker));
  return done / BURST_SECONDS;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-admission-'));
  const server = await startServer(dir);
  const agent = new Agent({ ca: server.ca, keepAlive: true, maxSockets: 16 });
  const cases = [
    { name: 'validate', path: '/validate', make: () => review(virtualService) },
    { name: 'inject', path: '/inject', make: () => review(pod) },
  ];
  const results: Record<string, unknown>[] = [];
  // Other work on the machine shows up as tail latency; record it so figures can be judged.
  const loadBefore = loadavg()[0]!.toFixed(2);
  try {
    // validate: allowed with no warnings (the index defines the subsets); inject: a patch.
    await sanityCheck(
      agent,
      server.port,
      '/validate',
      cases[0]!.make(),
      (r) => r.allowed === true && r.warnings === undefined,
    );
    await sanityCheck(
      agent,
      server.port,
      '/inject',
      cases[1]!.make(),
      (r) => r.allowed === true && typeof r.patch === 'string',
    );
    for (const c of cases) {
      await fixedRate(agent, server.port, c.path, c.make, RATE, WARMUP);
      const logFrom = statSync(join(dir, 'webhook.log')).size;
      const { lat, errors } = await fixedRate(agent, server.port, c.path, c.make, RATE, DURATION);
      const inServer = serverDurations(join(dir, 'webhook.log'), logFrom);
      const ceiling = await burst(agent, server.port, c.path, c.make);
      const row = {
        webhook: c.name,
        rate: RATE,
        requests: lat.length,
        errors,
        p50_ms: +percentile(lat, 50).toFixed(2),
        p90_ms: +percentile(lat, 90).toFixed(2),
        p99_ms: +percentile(lat, 99).toFixed(2),
        max_ms: +(lat[lat.length - 1] ?? NaN).toFixed(2),
        server_p50_ms: +percentile(inServer, 50).toFixed(2),
        server_p99_ms: +percentile(inServer, 99).toFixed(2),
        closed_loop_req_per_s: Math.round(ceiling),
      };
      results.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    agent.destroy();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0]!.toFixed(2);
  console.log(
    `\nadmission latency at ${RATE} req/s over ${DURATION} s, HTTPS keep-alive on loopback, ${cpus().length} cores, node ${process.version}, logs at info`,
  );
  console.log(
    `1-min load average: ${loadBefore} before, ${loadAfter} after (above ~1 means other processes competed for the CPUs)`,
  );
  console.log(
    'webhook   p50 ms   p90 ms   p99 ms   max ms   errors   in-server p50/p99 ms   ceiling req/s (16 in flight)',
  );
  for (const r of results) {
    const cols = [r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors]
      .map((v) => String(v).padStart(6))
      .join('   ');
    console.log(
      `${String(r.webhook).padEnd(9)} ${cols}   ${`${r.server_p50_ms} / ${r.server_p99_ms}`.padStart(20)}   ${r.closed_loop_req_per_s}`,
    );
  }
  const target = results.every((r) => (r.p99_ms as number) < 10);
  console.log(`target p99 < 10 ms: ${target ? 'met' : 'MISSED'}`);
  writeFileSync(
    join(ROOT, 'bench/admission/last-run.json'),
    `${JSON.stringify({ date: new Date().toISOString(), rate: RATE, duration: DURATION, loadBefore, loadAfter, results }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  console.error(`bench/admission: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
