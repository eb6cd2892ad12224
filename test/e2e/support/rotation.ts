/**
 * The load for the e2e rotation test (test/e2e/mesh.test.ts (c3)): a meshed pod running the weft
 * image's node with a small open-loop HTTP client (no dependency: node:http), `RATE` requests per
 * second for `SECONDS` seconds to `URL`, each answered 200 with an echo version counting as a
 * success. It prints one line `RESULT {"sent":…,"ok":…,"failures":{…}}` and then idles, so its
 * sidecar can still be scraped; the test deletes it.
 */

/** Runs in the pod (CommonJS, `node -e`). */
const LOAD_SCRIPT = `
const http = require('node:http');
const url = process.env.URL, rate = Number(process.env.RATE), secs = Number(process.env.SECONDS);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const failures = {};
let sent = 0, ok = 0, open = 0;
const fail = (why) => { failures[why] = (failures[why] || 0) + 1; };
function one() {
  open++;
  let done = false;
  const end = (why) => { if (done) return; done = true; open--; if (why === null) ok++; else fail(why); };
  const req = http.get(url, { agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => { body += c; });
    res.on('end', () => end(res.statusCode === 200 && /^v\\d/.test(body.trim()) ? null : 'HTTP ' + res.statusCode + ' ' + body.trim().slice(0, 100)));
    res.on('error', (e) => end('response ' + e.message));
  });
  req.setTimeout(10000, () => req.destroy(new Error('no answer in 10 s')));
  req.on('error', (e) => end('request ' + (e.code || '') + ' ' + e.message));
}
// optional warm-up (not counted): WARMUP requests to WARMUP_URL, 24 in flight, then the load
const warmUrl = process.env.WARMUP_URL, warmN = Number(process.env.WARMUP || 0);
const warmOne = () => new Promise((resolve) => {
  const req = http.get(warmUrl, { agent }, (res) => { res.resume(); res.on('end', resolve); res.on('error', resolve); });
  req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  req.on('error', resolve);
});
let warmLeft = warmN;
const warm = Promise.all(Array.from({ length: Math.min(24, warmN) }, async () => { while (warmLeft-- > 0) await warmOne(); }));
let start = 0;
warm.then(() => { start = Date.now(); load(); });
const load = () => { const timer = setInterval(() => {
  const due = Math.min(rate * secs, Math.floor(((Date.now() - start) * rate) / 1000)) - sent;
  for (let i = 0; i < Math.min(due, 50); i++) { sent++; one(); }
  if (sent >= rate * secs) {
    clearInterval(timer);
    const wait = setInterval(() => {
      if (open > 0 && Date.now() - start < (secs + 15) * 1000) return;
      clearInterval(wait);
      console.log('RESULT ' + JSON.stringify({ sent, ok, failures, open, seconds: (Date.now() - start) / 1000 }));
      setInterval(() => undefined, 1 << 30);
    }, 100);
  }
}, 5); };
`;

export interface LoadResult {
  sent: number;
  ok: number;
  failures: Record<string, number>;
  open: number;
  seconds: number;
}

/**
 * The load pod (meshed by its namespace's injection label). `warmup`: requests sent first to
 * another URL and not counted (connections set up before the measured load).
 */
export function loadPod(
  name: string,
  image: string,
  url: string,
  rate: number,
  seconds: number,
  warmup?: { url: string; requests: number },
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      restartPolicy: 'Never',
      containers: [
        {
          name: 'load',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['node', '-e', LOAD_SCRIPT],
          env: [
            { name: 'URL', value: url },
            { name: 'RATE', value: String(rate) },
            { name: 'SECONDS', value: String(seconds) },
            ...(warmup
              ? [
                  { name: 'WARMUP_URL', value: warmup.url },
                  { name: 'WARMUP', value: String(warmup.requests) },
                ]
              : []),
          ],
        },
      ],
    },
  };
}

/** The RESULT line of the load pod's log, or undefined while it runs. */
export function loadResult(log: string): LoadResult | undefined {
  const line = log.split('\n').find((l) => l.startsWith('RESULT '));
  return line === undefined ? undefined : (JSON.parse(line.slice('RESULT '.length)) as LoadResult);
}

/** `weft_proxy_cert_renewals_total` of a proxy's Prometheus text (certificates issued, the first included). */
export function renewals(prometheus: string): number {
  const m = /^weft_proxy_cert_renewals_total (\d+)$/m.exec(prometheus);
  return m ? Number(m[1]) : 0;
}
