/**
 * Reads the CPU profiles of a `PROFILE=1` mesh run (bench/proxy/mesh.ts) and says where the
 * pair's CPU per request goes against the plaintext sidecar's: self time in µs per request, taken
 * only inside each scenario's fixed-rate windows (profiles/windows.json, on the profiles' own
 * monotonic clock). Whole-run totals mislead: start-up (compiling 1,000 services) and the
 * max-throughput phases, where the plaintext sidecar serves 2–3× more requests with more
 * batching, dominate them. On a shared machine a single function's figure moves by a few tenths
 * of a µs between runs; the totals and the large rows are what to read.
 *
 *   npx tsx bench/proxy/profile-compare.ts <profiles dir printed by the run> [rows]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ProfileWindow } from './mesh.js';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** µs of self time per request, by function, inside the windows; and the requests counted. */
interface PerRequest {
  byFunction: Map<string, number>;
  busy: number;
  requests: number;
}

const [dir, rowsArg] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: npx tsx bench/proxy/profile-compare.ts <profiles dir> [rows]\n');
  process.exit(2);
}
const ROWS = Number(rowsArg ?? 30);

function frameKey(cf: CpuProfile['nodes'][number]['callFrame']): string {
  const where = cf.url.replace(/^.*\/(proxy|pkg)\//, '$1/');
  return `${cf.functionName || '(anonymous)'} ${where}${where ? `:${cf.lineNumber + 1}` : ''}`;
}

function readProfile(tag: string): CpuProfile {
  const sub = path.join(dir!, tag);
  const file = readdirSync(sub).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile in ${sub}`);
  return JSON.parse(readFileSync(path.join(sub, file), 'utf8')) as CpuProfile;
}

function perRequest(profile: CpuProfile, windows: ProfileWindow[]): PerRequest {
  const keyOf = new Map(profile.nodes.map((n) => [n.id, frameKey(n.callFrame)]));
  const requests = windows.reduce((n, w) => n + w.requests, 0);
  const byFunction = new Map<string, number>();
  let busy = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    // a sample stands for the interval up to the next one
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!windows.some((w) => t >= w.startUs && t < w.endUs)) continue;
    const key = keyOf.get(profile.samples[i]!)!;
    if (key.startsWith('(idle)')) continue;
    busy += us;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  for (const [k, v] of byFunction) byFunction.set(k, v / requests);
  return { byFunction, busy: busy / requests, requests };
}

const { tags, windows } = JSON.parse(readFileSync(path.join(dir, 'windows.json'), 'utf8')) as {
  tags: Record<string, string>;
  windows: ProfileWindow[];
};
const sides = Object.fromEntries(
  Object.entries(tags).map(([tag, scenario]) => [
    tag,
    perRequest(
      readProfile(tag),
      windows.filter((w) => w.scenario === scenario),
    ),
  ]),
) as Record<string, PerRequest>;
const { client, server, plain } = sides;
if (client === undefined || server === undefined || plain === undefined)
  throw new Error('windows.json must name the client, server and plain profiles');

const f = (us: number): string => us.toFixed(1).padStart(7);
process.stdout.write(
  `busy main-thread µs per request in the fixed-rate windows (${client.requests} pair, ${plain.requests} plaintext requests):\n` +
    `  client ${f(client.busy)}   server ${f(server.busy)}   pair ${f(client.busy + server.busy)}   ` +
    `plaintext ${f(plain.busy)}   pair / plaintext ${((client.busy + server.busy) / plain.busy).toFixed(2)}×\n\n`,
);
const keys = new Set([...client.byFunction.keys(), ...server.byFunction.keys(), ...plain.byFunction.keys()]);
const rows = [...keys]
  .map((k) => {
    const c = client.byFunction.get(k) ?? 0;
    const s = server.byFunction.get(k) ?? 0;
    const p = plain.byFunction.get(k) ?? 0;
    return { k, c, s, p, extra: c + s - 2 * p };
  })
  .sort((a, b) => b.c + b.s + b.p - (a.c + a.s + a.p));
process.stdout.write(
  `${'client'.padStart(7)} ${'server'.padStart(7)} ${'plain'.padStart(7)} ${'c+s-2p'.padStart(7)}  self time, µs per request\n`,
);
for (const r of rows.slice(0, ROWS))
  process.stdout.write(`${f(r.c)} ${f(r.s)} ${f(r.p)} ${f(r.extra)}  ${r.k}\n`);
