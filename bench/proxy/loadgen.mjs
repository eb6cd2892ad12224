/* global process, Buffer, performance, setTimeout, URL */
// Fixed-rate (open-loop) HTTP/1.1 load generator, the part of wrk2 we need (wrk2 is not in
// Debian). Requests are scheduled at exact intervals over C keep-alive connections; latency is
// measured from the *scheduled* send time, so a stalled proxy cannot hide queueing delay
// (coordinated omission corrected, as wrk2 does).
//
//   node loadgen.mjs URL HOST RATE CONNECTIONS SECONDS [HEADERS.json]  → one JSON line on stdout
//
// HEADERS.json (optional): a JSON array of header objects; request n carries entry n mod length
// (e.g. a pool of bearer tokens).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { openLoop, report } from './latency.mjs';

const [url, host, rateArg, connsArg, secsArg, headersFile] = process.argv.slice(2);
const { hostname, port, pathname } = new URL(url);
const rate = Number(rateArg);
const conns = Number(connsArg);
const seconds = Number(secsArg);
const headerSets = headersFile ? JSON.parse(readFileSync(headersFile, 'utf8')) : [{}];
const requests = headerSets.map((h) =>
  Buffer.from(
    `GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: weft-loadgen\r\n` +
      Object.entries(h)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      '\r\n',
  ),
);
let written = 0;
const latencies = [];
let errors = 0;
let non2xx = 0;
const idle = [];
const backlog = []; // scheduled times waiting for a free connection

function connect() {
  const s = net.connect({ host: hostname, port: Number(port), noDelay: true });
  const c = { s, buf: Buffer.alloc(0), sentAt: 0, need: -1, busy: false, closing: false };
  s.on('connect', () => release(c));
  s.on('data', (d) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
    for (;;) {
      if (c.need < 0) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = c.buf.toString('latin1', 0, end);
        const m = /content-length:\s*(\d+)/i.exec(head);
        // servers end keep-alive connections (nginx: after 1,000 requests); don't reuse those
        if (/\r\nconnection:\s*close/i.test(head)) c.closing = true;
        if (!/^HTTP\/1\.1 2/.test(head)) non2xx++;
        c.need = end + 4 + (m ? Number(m[1]) : 0);
      }
      if (c.buf.length < c.need) return;
      c.buf = c.buf.subarray(c.need);
      c.need = -1;
      latencies.push(performance.now() - c.sentAt);
      c.busy = false;
      if (!c.closing) release(c);
    }
  });
  s.on('error', () => errors++);
  s.on('close', () => {
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    // a request lost with its connection is re-sent, still timed from its scheduled slot
    if (c.busy) backlog.unshift(c.sentAt);
    if (!stopped) connect();
  });
}

function send(c, scheduled) {
  c.busy = true;
  c.sentAt = scheduled;
  c.s.write(requests[written++ % requests.length]);
}

function release(c) {
  const next = backlog.shift();
  if (next !== undefined) send(c, next);
  else idle.push(c);
}

let stopped = false;
for (let i = 0; i < conns; i++) connect();
await new Promise((r) => setTimeout(r, 300));
process.stderr.write('sending\n'); // the measured window starts (bench/proxy/harness.ts fixedRate)
const { total, elapsed } = await openLoop(
  rate,
  seconds,
  (scheduled) => {
    const c = idle.pop();
    if (c) send(c, scheduled);
    else backlog.push(scheduled);
  },
  () => latencies.length + errors,
);
stopped = true;
report({ sent: total, elapsed, latencies, errors, non2xx });
