/**
 * `proxy wait`: blocks until the local proxy answers 200 on /healthz/ready (the injector runs it
 * as the proxy container's postStart hook, so the app starts only once the proxy can route, like
 * `pilot-agent wait`). Exit 0 when ready, 1 with the last answer after --timeout, 2 on bad usage.
 */
import { http } from '../pkg/builtins/index.js';

const USAGE =
  'usage: proxy wait [--timeout SECONDS (60)] [--url URL (http://127.0.0.1:15021/healthz/ready)] [--period-ms N (200)]';

export interface WaitOptions {
  url: string;
  timeoutMs: number;
  periodMs: number;
}

export function parseWaitArgs(argv: string[]): WaitOptions {
  const o: WaitOptions = { url: 'http://127.0.0.1:15021/healthz/ready', timeoutMs: 60_000, periodMs: 200 };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]!;
    let v: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) [flag, v] = [flag.slice(0, eq), flag.slice(eq + 1)];
    else v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    const n = Number(v.replace(/s$/, ''));
    if (flag === '--timeout' || flag === '--timeoutSeconds') {
      if (!Number.isFinite(n) || n <= 0)
        throw new Error(`--timeout needs seconds > 0, got ${JSON.stringify(v)}`);
      o.timeoutMs = n * 1000;
    } else if (flag === '--period-ms' || flag === '--periodMillis') {
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--period-ms needs a positive number`);
      o.periodMs = n;
    } else if (flag === '--url') o.url = v;
    else throw new Error(`unknown flag ${JSON.stringify(flag)}`);
  }
  return o;
}

function probe(url: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? null : `HTTP ${res.statusCode}: ${body.trim()}`));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 1 s')));
    req.on('error', (err) => resolve(err.message));
  });
}

export async function runWait(argv: string[]): Promise<number> {
  let o: WaitOptions;
  try {
    o = parseWaitArgs(argv);
  } catch (err) {
    process.stderr.write(`proxy wait: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const deadline = Date.now() + o.timeoutMs;
  let last: string | null = 'not probed';
  while (Date.now() < deadline) {
    last = await probe(o.url);
    if (last === null) {
      process.stdout.write('proxy wait: proxy is ready\n');
      return 0;
    }
    await new Promise((r) => setTimeout(r, o.periodMs));
  }
  process.stderr.write(`proxy wait: proxy not ready after ${o.timeoutMs / 1000} s (${o.url}): ${last}\n`);
  return 1;
}
