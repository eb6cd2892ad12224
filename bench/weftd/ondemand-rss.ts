/**
 * The RSS of a real on-demand sidecar (issue #19 target: ≤ 50 MB idle, ≤ 60 MB at 1,000 req/s):
 * the image's `proxy sidecar` (bench/proxy/harness.ts layout and node flags) in ns0 of
 * bench/weftd/ondemand-mesh.ts's mesh (SERVICES services), against weftd's real discovery server
 * with on-demand hosts on; every endpoint is the bench upstream. RSS (VmRSS) idle once its config
 * is applied, idle again after it called CALLS services of other namespaces (each subscribed on
 * demand), and sampled every 250 ms under SECONDS of open-loop RATE req/s to one of them, with
 * the sidecar's CPU seconds per 1,000 requests over that load.
 * No certificate is issued (mTLS off), so the proxy is never Ready: config applied is the start.
 * Writes bench/weftd/last-run-ondemand-rss.json. SRC=<checkout> measures another tree with this
 * harness (before/after in one session); NODE_FLAGS adds Node flags after the image's.
 *   npx tsx bench/weftd/ondemand-rss.ts        SERVICES=1000 CALLS=5 RATE=1000 SECONDS=10
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createLogger } from '../../pkg/log/index.js';
import { startDiscoveryServer } from '../../test/support/discovery-server.js';
import { SnapshotRegistry } from '../../test/support/snapshot-registry.js';
import { sleep } from '../../test/support/wait.js';
import {
  buildImageLayout,
  cpuSeconds,
  fixedRate,
  imageNodeOptions,
  killChildren,
  median,
  ROOT,
  rssMb,
  startUpstream,
  track,
} from '../proxy/harness.js';
import { meshSnapshot, NAMESPACES } from './ondemand-mesh.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const CALLS = Number(process.env.CALLS ?? 5);
const RATE = Number(process.env.RATE ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 10);
const log = createLogger('bench', { silent: true });
/** Another checkout to measure instead of this one (a worktree of main: before/after in one session). */
const SRC = process.env.SRC ?? ROOT;
/** Node flags added after the image's (trials of V8 flags). */
const NODE_FLAGS = (process.env.NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', headers: { host }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** `samples` VmRSS readings `everyMs` apart, in MB. */
async function sampleRss(pid: number, samples: number, everyMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    out.push(rssMb([pid]));
    await sleep(everyMs);
  }
  return out;
}

async function main(): Promise<void> {
  const up = await startUpstream();
  const weftd = await startDiscoveryServer({
    registry: new SnapshotRegistry(() => meshSnapshot(SERVICES, up.port)),
    onDemandHosts: true,
    identity: { namespace: 'ns0', serviceAccount: 'sa', podName: 'web-0' },
    log,
  });
  const entry = buildImageLayout(SRC, 'ondemand-rss');
  const args = [
    ...imageNodeOptions(SRC),
    ...NODE_FLAGS,
    entry,
    'proxy',
    'sidecar',
    '--bind',
    '127.0.0.1',
    '--drain-seconds',
    '0',
  ];
  for (const p of ['--outbound-port', '--inbound-port', '--admin-port', '--metrics-port', '--health-port'])
    args.push(p, '0');
  const child = track(
    spawn(process.execPath, args, {
      cwd: path.dirname(entry),
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        WEFT_DISCOVERY_ADDRESS: weftd.address,
        WEFT_CA_ROOT_PATH: weftd.rootPath,
        WEFT_TOKEN_PATH: weftd.tokenPath,
        POD_NAME: 'web-0',
        POD_NAMESPACE: 'ns0',
        INSTANCE_IP: '127.0.0.1',
      },
    }),
  );
  try {
    let logText = '';
    child.stderr!.on('data', (d: Buffer) => {
      logText = (logText + d.toString()).slice(-65536);
    });
    let ports: Record<string, number> | null = null;
    for (let i = 0; ports === null; i++) {
      const line = logText
        .split('\n')
        .find((l) => l.includes('"Proxy started; waiting for config from weftd"'));
      if (line !== undefined) ports = (JSON.parse(line) as { ports: Record<string, number> }).ports;
      else if (i > 600 || child.exitCode !== null)
        throw new Error(`sidecar did not start: ${logText.slice(-500)}`);
      else await sleep(50);
    }
    while (!weftd.discovery.list().some((c) => c.version !== null)) await sleep(50);
    await sleep(3000);
    const idle = await sampleRss(child.pid!, 10, 500);
    const called = Array.from(
      { length: CALLS },
      (_, k) => `svc${k + 1}.ns${(k + 1) % NAMESPACES}.svc.cluster.local`,
    );
    for (const host of called) {
      const status = await get(ports.outbound!, host);
      if (status !== 200) throw new Error(`${host}: ${status}`);
      await sleep(150); // under the proxy's ask rate
    }
    await sleep(3000);
    const idleAfterCalls = await sampleRss(child.pid!, 10, 500);
    const under: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        under.push(rssMb([child.pid!]));
        await sleep(250);
      }
    })();
    const cpuBefore = cpuSeconds([child.pid!]);
    const load = await fixedRate(`http://127.0.0.1:${ports.outbound}/`, called[0]!, SECONDS, RATE);
    const cpu = cpuSeconds([child.pid!]) - cpuBefore;
    sampling = false;
    await sampler;
    const result = {
      src: SRC,
      nodeFlags: [...imageNodeOptions(SRC), ...NODE_FLAGS],
      services: SERVICES,
      calls: CALLS,
      rssMb: {
        idleMedian: median(idle),
        idleAfterCallsMedian: median(idleAfterCalls),
        underLoadMedian: median(under),
        underLoadMax: Math.max(...under),
      },
      load: {
        rate: RATE,
        seconds: SECONDS,
        achievedRps: load.rps,
        completed: load.completed,
        errors: load.errors,
        p50: load.p50,
        p99: load.p99,
        // the sidecar's CPU time over the load, per 1,000 requests (vCPU at 1,000 req/s)
        cpuSecondsPer1000: (cpu / load.completed) * 1000,
      },
    };
    console.log(JSON.stringify(result, null, 2));
    writeFileSync(
      path.join(ROOT, 'bench/weftd/last-run-ondemand-rss.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    killChildren();
    await weftd.close();
  }
}

await main();
