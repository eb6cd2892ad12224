/* global Buffer, console */
// Benchmark upstream: 1 KiB body, keep-alive, nothing else. Prints its port on stdout.
import http from 'node:http';
const body = Buffer.alloc(1024, 'x');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
