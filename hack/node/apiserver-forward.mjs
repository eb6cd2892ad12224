/* global process */
// Makes kube-apiserver (bound to 127.0.0.1 only) reachable from pods at the node IP, which
// kube-apiserver advertises as the `kubernetes` Service endpoint: in-cluster clients (the
// operator, weftd, the webhook's watches) reach https://kubernetes.default.svc through
// kube-proxy → NODE_IP:PORT → here → 127.0.0.1:PORT. TLS passes through untouched. Binding
// the node IP rather than 0.0.0.0 keeps the API server off eth0.
//
//   node apiserver-forward.mjs LISTEN_HOST:PORT TARGET_HOST:PORT STATE_DIR
import { createConnection, createServer } from 'node:net';

const [listen, target] = process.argv.slice(2);
const split = (hp) => {
  const i = hp?.lastIndexOf(':') ?? -1;
  const port = Number(hp?.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write(`apiserver-forward: bad address "${hp}" (want HOST:PORT)\n`);
    process.exit(2);
  }
  return { host: hp.slice(0, i), port };
};
const from = split(listen);
const to = split(target);

const server = createServer({ pauseOnConnect: false }, (client) => {
  const upstream = createConnection(to);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  client.pipe(upstream);
  upstream.pipe(client);
});
server.maxConnections = 512;
server.on('error', (err) => {
  process.stderr.write(`apiserver-forward: ${err.message}\n`);
  process.exit(1);
});
server.listen(from.port, from.host, () =>
  process.stdout.write(`apiserver-forward: ${from.host}:${from.port} -> ${to.host}:${to.port}\n`),
);
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
