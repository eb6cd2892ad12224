/* global process, Buffer, setTimeout */
// weft's demo/test echo app: answers every request with who served it (version, pod, node) and
// what it received, so routing, load balancing and header rules can be seen from the client.
// Plain Node, no dependencies. Env: PORT (8080), VERSION (v1), SERVICE_NAME (echo).
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const version = process.env.VERSION ?? 'v1';
const service = process.env.SERVICE_NAME ?? 'echo';
const log = (msg, extra = {}) =>
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), msg, service, version, ...extra })}\n`,
  );

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= 64 * 1024) chunks.push(c); // echo at most 64 KiB of body back
  });
  req.on('end', () => {
    if (req.url === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
    if (req.url === '/version') return send(res, 200, 'text/plain', `${version}\n`);
    const status = /^\/status\/(\d{3})$/.exec(req.url ?? '')?.[1];
    const body = {
      service,
      version,
      hostname: hostname(),
      podIP: process.env.POD_IP,
      node: process.env.NODE_NAME,
      method: req.method,
      path: req.url,
      headers: req.headers,
      bodyBytes: size,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    send(res, status === undefined ? 200 : Number(status), 'application/json', `${JSON.stringify(body)}\n`);
  });
});

function send(res, status, type, text) {
  res.writeHead(status, { 'content-type': type, 'x-echo-version': version, 'x-echo-hostname': hostname() });
  res.end(text);
}

server.keepAliveTimeout = 65_000;
server.listen(port, () => log('listening', { port }));

// Graceful termination: stop accepting, let in-flight requests finish, then exit 0.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    log('shutting down', { signal: sig });
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  });
}
