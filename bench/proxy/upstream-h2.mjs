/* global Buffer, console */
// Benchmark HTTP/2 upstream (h2c): a gRPC request (content-type application/grpc) gets one
// length-prefixed 1 KiB message and `grpc-status: 0` in trailers, as a unary gRPC server answers;
// any other request gets 1 KiB. Prints its port on stdout.
import http2 from 'node:http2';
const payload = Buffer.alloc(1024, 'x');
const grpcMessage = Buffer.concat([Buffer.from([0, 0, 0, 4, 0]), payload]); // uncompressed, 1024 bytes
const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const grpc = String(headers['content-type'] ?? '').startsWith('application/grpc');
  stream.resume(); // the request body
  stream.on('end', () => {
    if (stream.destroyed || stream.closed) return; // the client reset it (h2load stopping)
    if (!grpc) {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': payload.length });
      stream.end(payload);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(grpcMessage);
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
