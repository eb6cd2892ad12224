/* global process, performance, setTimeout */
// Closed-loop HTTP/1.1 client for bench/proxy/inbound.ts: C keep-alive connections, each sending
// its next request when the previous answer is complete, for S seconds, over plaintext or mesh
// mTLS (client certificate, Istio ALPN, an SNI). One JSON line on stdout.
//   node inbound-client.mjs PORT CONNECTIONS SECONDS [CERT_JSON]   (NEW_CONNECTIONS=1: no keep-alive)
import http from 'node:http';
import https from 'node:https';

const [portArg, connsArg, secsArg, certJson] = process.argv.slice(2);
const tlsOpts = certJson ? JSON.parse(certJson) : null;
const fresh = process.env.NEW_CONNECTIONS === '1';
const tlsRequestOpts = tlsOpts
  ? {
      key: tlsOpts.key,
      cert: tlsOpts.cert,
      ca: tlsOpts.ca,
      servername: 'outbound_.9080_._.app.bench.svc.cluster.local',
      ALPNProtocols: ['istio-http/1.1', 'istio'],
      checkServerIdentity: () => undefined,
    }
  : {};
// NEW_CONNECTIONS=1: agent false, so every request opens a connection and (TLS) does a full
// handshake with no session to resume: what a handshake flood costs
const agent = fresh
  ? false
  : tlsOpts
    ? new https.Agent({ keepAlive: true, maxSockets: Number(connsArg), ...tlsRequestOpts })
    : new http.Agent({ keepAlive: true, maxSockets: Number(connsArg) });
const mod = tlsOpts ? https : http;
const latencies = [];
let errors = 0;
let stopped = false;
const end = performance.now() + Number(secsArg) * 1000;

function loop() {
  if (performance.now() >= end) return;
  const t = performance.now();
  const opts = { host: '127.0.0.1', port: Number(portArg), path: '/', agent, headers: { host: 'app:9080' } };
  const req = mod.request(fresh ? { ...opts, ...tlsRequestOpts } : opts, (res) => {
    res.resume();
    res.on('end', () => {
      if (res.statusCode === 200) latencies.push(performance.now() - t);
      else errors++;
      loop();
    });
  });
  req.on('error', (e) => {
    if (errors++ === 0) process.stderr.write(`inbound-client: ${e.message}\n`);
    if (!stopped) setTimeout(loop, 10);
  });
  req.end();
}
for (let i = 0; i < Number(connsArg); i++) loop();
setTimeout(
  () => {
    stopped = true;
    latencies.sort((a, b) => a - b);
    const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
    process.stdout.write(
      JSON.stringify({ requests: latencies.length, errors, p50: q(0.5), p90: q(0.9), p99: q(0.99) }) + '\n',
    );
    if (agent) agent.destroy();
    process.exit(0);
  },
  Number(secsArg) * 1000 + 500,
);
