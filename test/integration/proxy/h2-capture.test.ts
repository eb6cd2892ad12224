/**
 * h2c with prior knowledge on the sidecar's capture path (proxy/sidecar/capture.ts): the preface
 * carries no authority, so it goes to the router when the original destination is a service
 * address and port of the outbound config, and is passed through otherwise, as before. A real
 * gRPC client and server.
 */
import { expect } from 'chai';
import net from 'node:net';
import { onOutbound, type CaptureEnv } from '../../../proxy/sidecar/capture.js';
import type { OriginalDst } from '../../../proxy/native/original_dst.js';
import type { CompiledHttpListener } from '../../../proxy/compile/compile.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { createLogger } from '../../../pkg/log/index.js';
import { H2_PREFACE } from '../../../proxy/h2/downstream.js';
import { raw, startProxy, type Started } from './helpers.js';
import { clientVia, grpcUpstream, GreeterClient, unary, type GrpcUpstream } from './grpc-fixture.js';

const VIP = '10.96.77.7';

describe('sidecar capture: h2c with prior knowledge', function () {
  this.timeout(20_000);
  let app: GrpcUpstream;
  let proxy: Started;
  let echo: net.Server;
  let echoPort: number;
  let capture: net.Server;
  let capturePort: number;
  let dst: OriginalDst | null = null;

  before(async () => {
    app = await grpcUpstream('app');
    proxy = await startProxy(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [${VIP}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.0.1, ports: {grpc: ${app.port}}}]
`);
    echo = net.createServer((c) =>
      c.once('data', (d: Buffer) => c.end(`echo:${d.subarray(0, 3).toString()}`)),
    );
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;
    const env: CaptureEnv = {
      log: createLogger('test', { silent: true }),
      metrics: new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }),
      outboundHttp: () => (proxy.proxy.current?.listeners[0] as CompiledHttpListener | undefined) ?? null,
      handOff: (sock) => {
        const up = net.connect(proxy.port, '127.0.0.1');
        sock.pipe(up).pipe(sock);
        return true;
      },
      appHost: '127.0.0.1',
      capturePorts: [],
      sniffTimeoutMs: 200,
      dst: () => dst,
    };
    capture = net.createServer((s) => void onOutbound(env, s));
    await new Promise<void>((r) => capture.listen(0, '127.0.0.1', r));
    capturePort = (capture.address() as net.AddressInfo).port;
  });
  after(async () => {
    capture.close();
    echo.close();
    await proxy.stop();
    await app.close();
  });

  it('to a service address and port: routed by the router to the gRPC service', async () => {
    // the VIP is not reachable on loopback: only the router (by :authority) can answer
    dst = { address: VIP, port: 9080, family: 4 };
    const c = clientVia(GreeterClient, capturePort, 'reviews:9080');
    try {
      const r = await unary(c, 'Hello', { name: 'captured' });
      expect(r.reply).to.deep.include({ name: 'captured', from: 'app' });
    } finally {
      c.close();
    }
  });

  it('to any other destination: passed through untouched', async () => {
    dst = { address: '127.0.0.1', port: echoPort, family: 4 };
    expect(await raw(capturePort, H2_PREFACE.toString('latin1'))).to.equal('echo:PRI');
  });
});
