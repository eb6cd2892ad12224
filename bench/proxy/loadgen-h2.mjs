/* global process, Buffer, performance, URL */
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
import { openLoop, report } from './latency.mjs';

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
const { total, elapsed } = await openLoop(
  rate,
  seconds,
  (scheduled, n) => send(scheduled, sessions[n % sessions.length]),
  () => latencies.length + errors,
);
report({ sent: total, elapsed, latencies, errors, non2xx });
