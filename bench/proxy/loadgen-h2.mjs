/* global process, Buffer, performance, setTimeout, URL */
// Fixed-rate (open-loop) HTTP/2 load generator, loadgen.mjs's counterpart for h2c and gRPC
// unary. Requests are scheduled at exact intervals over S h2c sessions (round robin) and sent at
// their slot whatever is still in flight (HTTP/2 multiplexes; the sessions allow 100 streams
// each, more than a rate this size keeps open unless the proxy stalls, and a stream queued by
// the client still counts from its slot). Latency runs from the scheduled time to the end of the
// response (trailers included), so queueing cannot hide (coordinated omission corrected).
//
//   node loadgen-h2.mjs URL AUTHORITY RATE SESSIONS SECONDS h2c|grpc  → one JSON line on stdout
//
// h2c: GET; grpc: POST /bench.Echo/Unary with one 256-byte message, content-type
// application/grpc, te: trailers; a response without grpc-status 0 counts as an error.
import http2 from 'node:http2';

const [url, authority, rateArg, sessionsArg, secsArg, mode] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secsArg);
const grpc = mode === 'grpc';
const { origin, pathname } = new URL(url);
const body = Buffer.concat([Buffer.from([0, 0, 0, 1, 0]), Buffer.alloc(256, 'y')]);
const headers = grpc
  ? {
      ':method': 'POST',
      ':path': '/bench.Echo/Unary',
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
    }
  : { ':method': 'GET', ':path': pathname, ':authority': authority };
const sessions = Array.from({ length: Number(sessionsArg) }, () => {
  const s = http2.connect(origin);
  s.on('error', () => {});
  return s;
});
await Promise.all(sessions.map((s) => new Promise((r) => s.once('connect', r))));

const latencies = [];
let errors = 0;
let non2xx = 0;
function send(scheduled, session) {
  const req = session.request(headers, { endStream: !grpc });
  let status = 0;
  let grpcStatus = grpc ? null : '0';
  req.on('response', (h) => {
    status = Number(h[':status']);
    if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']); // trailers-only
  });
  req.on('trailers', (t) => (grpcStatus = String(t['grpc-status'])));
  req.on('error', () => errors++);
  req.resume();
  req.on('end', () => {
    if (status < 200 || status > 299) non2xx++;
    else if (grpcStatus !== '0') errors++;
    latencies.push(performance.now() - scheduled);
  });
  if (grpc) req.end(body);
}

process.stderr.write('sending\n');
const start = performance.now();
const interval = 1000 / rate;
const total = Math.floor(rate * seconds);
let sent = 0;
await new Promise((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (sent < total && start + sent * interval <= now) {
      send(start + sent * interval, sessions[sent % sessions.length]);
      sent++;
    }
    if (sent >= total) return resolve();
    setTimeout(tick, 1);
  };
  tick();
});
const deadline = performance.now() + 2000;
while (latencies.length + errors < total && performance.now() < deadline)
  await new Promise((r) => setTimeout(r, 10));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
process.stdout.write(
  JSON.stringify({
    sent: total,
    completed: latencies.length,
    rps: latencies.length / elapsed,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    p999: pct(99.9),
    max: latencies.at(-1),
    errors,
    non2xx,
  }) + '\n',
);
process.exit(0);
