/**
 * (c6) protocols on the real node (issue #18, "Prove it"), for test/e2e/mesh.test.ts:
 *
 *   - gRPC between two sidecars over mesh mTLS: a meshed client calls a meshed server through the
 *     Service port named `grpc`; a server error status passes through; a VirtualService
 *     `fault.abort.grpcStatus` answers with that status; both sidecars count the calls
 *     (`istio_requests_total{request_protocol="grpc", grpc_response_status}`).
 *   - the ingress gateway terminating HTTPS (SIMPLE, `credentialName` → a kubernetes.io/tls
 *     Secret in weft-system, read through the Role the Mesh renders) for curl on the host, HTTP/1.1 and HTTP/2; a wrong SNI is refused;
 *   - TLS PASSTHROUGH by SNI to a pod that terminates TLS itself (curl verifies its certificate);
 *   - a Gateway TCP server routed by a VirtualService `tcp:` rule to a TCP echo.
 *
 * The apps are a few lines of node run in the weft image (node:http2 with gRPC's 5-byte framing,
 * node:https, node:net; no @grpc/grpc-js there) and the echo image: local images only.
 * The gateway is reached from the host: HTTPS through its Service's ClusterIP (kube-proxy's
 * OUTPUT rules), the passthrough and TCP ports, which the sample Mesh's Service does not list,
 * on the gateway pod's IP on the node bridge (a Gateway server port that is no Service port is
 * listened on as is, Istio's resolvePorts).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeServingCert, type ServingCert } from '../../support/certs.js';
import {
  apply,
  freshNamespace,
  IMAGES,
  kubectl,
  kubectlJson,
  kubectlRun,
  waitFor,
  waitPodReady,
  WEFT_IMAGE,
} from './kube.js';

const GATEWAY_NS = 'weft-system';
const GATEWAY_SELECTOR = 'istio=ingressgateway';
const SECURE_HOST = 'secure.e2e.weft';
const PASS_HOST = 'pass.e2e.weft';
const HTTPS_PORT = 443;
const PASS_PORT = 9443;
const TCP_PORT = 9000;
const CREDENTIAL = 'e2e-proto-cert';

/** The gRPC server (node:http2, h2c): `/weft.e2e.Echo/Say` answers `{reply, from}`, or the status `{fail}` asks for. */
const GRPC_SERVER = `
const http2 = require('node:http2');
const frame = (obj) => { const b = Buffer.from(JSON.stringify(obj)); const h = Buffer.alloc(5); h.writeUInt32BE(b.length, 1); return Buffer.concat([h, b]); };
http2.createServer().on('stream', (stream, headers) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    if (headers[':path'] !== '/weft.e2e.Echo/Say' || body.length < 5) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
      return;
    }
    const msg = JSON.parse(body.subarray(5, 5 + body.readUInt32BE(1)).toString());
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(msg.fail
      ? { 'grpc-status': String(msg.fail), 'grpc-message': 'no such thing' }
      : { 'grpc-status': '0' }));
    stream.end(msg.fail ? undefined : frame({ reply: 'hello ' + msg.name, from: process.env.HOSTNAME }));
  });
}).listen(50051, () => console.log('grpc server on 50051'));
`;

/** One unary call (argv: url, JSON message, extra header name=value or ''); prints the outcome as JSON. */
const GRPC_CALL = `
const http2 = require('node:http2');
const [url, json, extra] = process.argv.slice(1);
const b = Buffer.from(json); const h = Buffer.alloc(5); h.writeUInt32BE(b.length, 1);
const out = { headers: {}, trailers: {}, message: null };
const session = http2.connect(url);
const done = (err) => { if (err) out.error = err.message; console.log(JSON.stringify(out)); session.close(); };
session.on('error', done);
const headers = { ':method': 'POST', ':path': '/weft.e2e.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' };
if (extra) headers[extra.split('=')[0]] = extra.split('=')[1];
const req = session.request(headers);
req.setTimeout(10000, () => req.close(http2.constants.NGHTTP2_CANCEL));
const chunks = [];
req.on('response', (hs) => { out.headers = hs; });
req.on('trailers', (ts) => { out.trailers = ts; });
req.on('data', (c) => chunks.push(c));
req.on('end', () => {
  const body = Buffer.concat(chunks);
  if (body.length >= 5) out.message = JSON.parse(body.subarray(5, 5 + body.readUInt32BE(1)).toString());
  done();
});
req.on('error', done);
req.end(Buffer.concat([h, b]));
`;

/** An HTTPS server with its own certificate (TLS_CERT, TLS_KEY): the passthrough backend. */
const TLS_BACKEND = `
require('node:https').createServer({ cert: process.env.TLS_CERT, key: process.env.TLS_KEY }, (req, res) => {
  res.end('terminated by ' + process.env.HOSTNAME + '\\n');
}).listen(8443, () => console.log('https on 8443'));
`;

/** A TCP echo: every byte back. */
const TCP_ECHO = `
require('node:net').createServer((s) => { s.on('error', () => undefined); s.pipe(s); }).listen(9000, () => console.log('tcp echo on 9000'));
`;

const IDLE = 'setInterval(() => undefined, 1 << 30)';

function nodePod(name: string, script: string, env: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: WEFT_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: ['node', '-e', script],
          env: Object.entries(env).map(([n, value]) => ({ name: n, value })),
        },
      ],
    },
  };
}

function service(name: string, port: { name: string; port: number; targetPort: number }): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { app: name } },
    spec: { selector: { app: name }, ports: [port] },
  };
}

function webPod(): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'web',
          image: IMAGES.echo,
          imagePullPolicy: 'IfNotPresent',
          env: [
            { name: 'VERSION', value: 'through-the-gateway' },
            { name: 'SERVICE_NAME', value: 'web' },
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
        },
      ],
    },
  };
}

/** The apps of (c6): gRPC server and client, the gateway's HTTP, TLS and TCP backends. */
export function protocolApps(backendCert: ServingCert): object[] {
  return [
    service('grpc-server', { name: 'grpc', port: 50051, targetPort: 50051 }),
    nodePod('grpc-server', GRPC_SERVER),
    nodePod('grpc-client', IDLE),
    service('web', { name: 'http', port: 80, targetPort: 8080 }),
    webPod(),
    service('tls-backend', { name: 'https', port: 443, targetPort: 8443 }),
    nodePod('tls-backend', TLS_BACKEND, { TLS_CERT: backendCert.certPem, TLS_KEY: backendCert.keyPem }),
    service('tcp-echo', { name: 'tcp', port: 9000, targetPort: 9000 }),
    nodePod('tcp-echo', TCP_ECHO),
  ];
}

interface GrpcOutcome {
  headers: Record<string, string>;
  trailers: Record<string, string>;
  message: { reply?: string; from?: string } | null;
  error?: string;
}

/** grpc-status of a call: from the trailers, or the headers of a trailers-only answer. */
export function grpcStatusOf(o: GrpcOutcome): string | undefined {
  return o.trailers['grpc-status'] ?? o.headers['grpc-status'];
}

/** Sum of `istio_requests_total` over the series whose labels include every one of `labels`. */
export function requestsCounted(prometheus: string, labels: string[]): number {
  return prometheus
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && labels.every((m) => l.includes(m)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

interface Curl {
  code: number;
  status: string;
  httpVersion: string;
  body: string;
  stderr: string;
}

/** curl on the host: `--resolve host:port:ip`, trusting `caFile` only; status and HTTP version last. */
function curl(args: string[], host: string, port: number, ip: string, caFile: string, path = '/'): Curl {
  const r = spawnSync(
    'curl',
    [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      caFile,
      '--resolve',
      `${host}:${port}:${ip}`,
      '-w',
      '\n%{http_code} %{http_version}',
      ...args,
      `https://${host}:${port}${path}`,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  const lines = (r.stdout ?? '').split('\n');
  const [status = '', httpVersion = ''] = (lines.pop() ?? '').split(' ');
  return { code: r.status ?? -1, status, httpVersion, body: lines.join('\n'), stderr: r.stderr ?? '' };
}

/** Sends `payload` to ip:port and resolves with what comes back once as many bytes arrived. */
function tcpRoundTrip(ip: string, port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const s = connect({ host: ip, port }, () => s.end(payload));
    s.setTimeout(10_000, () => s.destroy(new Error('no echo within 10 s')));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= payload.length) s.destroy();
    });
    s.on('close', () =>
      got >= payload.length ? resolve(Buffer.concat(chunks)) : reject(new Error(`closed after ${got} bytes`)),
    );
    s.on('error', reject);
  });
}

/**
 * Defines the (c6) group. `skipUnlessReady` skips a step (with the reason printed) while the
 * loaded image lacks pieces the suite needs, as the other steps do.
 */
export function protocolSteps(skipUnlessReady: (ctx: Mocha.Context) => void): void {
  describe('(c6) protocols: gRPC between sidecars, gateway HTTPS, TLS passthrough and TCP (issue #18)', () => {
    let space: { ns: string; cleanup: () => void } | null = null;
    let tmp = '';
    let gatewayCert: ServingCert;
    let backendCert: ServingCert;
    const ns = (): string => space!.ns;
    const scrape = (pod: string): string =>
      kubectl(['get', '--raw', `/api/v1/namespaces/${ns()}/pods/${pod}:15090/proxy/stats/prometheus`]);
    const call = (message: object, extraHeader = ''): GrpcOutcome => {
      const out = kubectl(
        [
          'exec',
          '-n',
          ns(),
          'grpc-client',
          '-c',
          'app',
          '--',
          'node',
          '-e',
          GRPC_CALL,
          `http://grpc-server.${ns()}.svc.cluster.local:50051`,
          JSON.stringify(message),
          extraHeader,
        ],
        undefined,
        30_000,
      );
      return JSON.parse(out.trim().split('\n').pop()!) as GrpcOutcome;
    };
    const gatewayPodIp = (): string => {
      const pods = kubectlJson<{ items: { status?: { podIP?: string } }[] }>([
        'get',
        'pods',
        '-n',
        GATEWAY_NS,
        '-l',
        GATEWAY_SELECTOR,
        '--field-selector=status.phase=Running',
      ]).items;
      expect(pods.length, 'one running gateway pod').to.equal(1);
      return pods[0]!.status!.podIP!;
    };

    before(async function () {
      skipUnlessReady(this);
      this.timeout(300_000);
      space = freshNamespace('e2e-proto');
      kubectl(['label', 'namespace', ns(), 'istio-injection=enabled']);
      tmp = mkdtempSync(join(tmpdir(), 'weft-e2e-proto-'));
      gatewayCert = makeServingCert([SECURE_HOST]);
      backendCert = makeServingCert([PASS_HOST]);
      writeFileSync(join(tmp, 'gateway-ca.pem'), gatewayCert.caPem);
      writeFileSync(join(tmp, 'backend-ca.pem'), backendCert.caPem);
      await waitFor(`default ServiceAccount in ${ns()}`, () =>
        kubectlRun(['get', 'serviceaccount', 'default', '-n', ns()]).status === 0 ? true : undefined,
      );
      apply(ns(), protocolApps(backendCert));
      for (const pod of ['grpc-server', 'grpc-client', 'web', 'tls-backend', 'tcp-echo'])
        await waitPodReady(ns(), pod, 180_000);
    });

    after(() => {
      kubectlRun(['delete', 'secret', CREDENTIAL, '-n', GATEWAY_NS, '--ignore-not-found']);
      space?.cleanup();
      if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
    });

    it('a unary gRPC call through both sidecars (Service port `grpc`, mesh mTLS) returns the reply; both sidecars count it as grpc status 0', async function () {
      skipUnlessReady(this);
      const ok = await waitFor(
        'a gRPC answer from grpc-server',
        () => {
          const o = call({ name: 'weft' });
          return grpcStatusOf(o) === '0' ? o : undefined;
        },
        60_000,
        1000,
      );
      expect(ok.headers[':status']).to.equal(200);
      expect(ok.headers['content-type']).to.equal('application/grpc');
      expect(ok.message).to.deep.equal({ reply: 'hello weft', from: 'grpc-server' });
      const grpc0 = ['request_protocol="grpc"', 'grpc_response_status="0"', `"${ns()}"`];
      const source = requestsCounted(scrape('grpc-client'), [...grpc0, 'reporter="source"']);
      const dest = scrape('grpc-server');
      expect(source, 'client sidecar, reporter source').to.be.at.least(1);
      expect(requestsCounted(dest, [...grpc0, 'reporter="destination"']), dest.slice(0, 3000)).to.be.at.least(
        1,
      );
      expect(
        requestsCounted(dest, [
          'reporter="destination"',
          'request_protocol="grpc"',
          'connection_security_policy="mutual_tls"',
        ]),
        'the server sidecar saw it over mesh mTLS',
      ).to.be.at.least(1);
    });

    it("the server's error status (5 NOT_FOUND) passes through both sidecars and is counted as 5", function () {
      skipUnlessReady(this);
      const o = call({ name: 'missing', fail: 5 });
      expect(grpcStatusOf(o), JSON.stringify(o)).to.equal('5');
      expect(o.trailers['grpc-message'] ?? o.headers['grpc-message']).to.equal('no such thing');
      expect(o.headers[':status']).to.equal(200);
      const grpc5 = ['request_protocol="grpc"', 'grpc_response_status="5"'];
      expect(requestsCounted(scrape('grpc-client'), [...grpc5, 'reporter="source"'])).to.be.at.least(1);
      expect(requestsCounted(scrape('grpc-server'), [...grpc5, 'reporter="destination"'])).to.be.at.least(1);
    });

    it('a VirtualService fault.abort.grpcStatus UNAVAILABLE ends matching calls with 14, the server never sees them', async function () {
      skipUnlessReady(this);
      const served = (): number =>
        requestsCounted(scrape('grpc-server'), ['reporter="destination"', 'request_protocol="grpc"']);
      apply(ns(), [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'grpc-server' },
          spec: {
            hosts: ['grpc-server'],
            http: [
              {
                name: 'abort',
                match: [{ headers: { 'x-fault': { exact: 'abort' } } }],
                fault: { abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 100 } } },
                route: [{ destination: { host: 'grpc-server' } }],
              },
              { name: 'rest', route: [{ destination: { host: 'grpc-server' } }] },
            ],
          },
        },
      ]);
      const aborted = await waitFor(
        'the fault to reach the client sidecar',
        () => {
          const o = call({ name: 'faulty' }, 'x-fault=abort');
          return grpcStatusOf(o) === '14' ? o : undefined;
        },
        60_000,
        1000,
      );
      expect(aborted.headers[':status'], JSON.stringify(aborted)).to.equal(200);
      expect(aborted.message).to.equal(null);
      const before = served();
      expect(grpcStatusOf(call({ name: 'faulty' }, 'x-fault=abort'))).to.equal('14');
      expect(grpcStatusOf(call({ name: 'plain' })), 'other calls are routed').to.equal('0');
      // the server sidecar records a call as it ends: wait for the plain one, then none more
      await waitFor(
        'the server sidecar to count the plain call',
        () => (served() > before ? true : undefined),
        30_000,
        500,
      );
      expect(served() - before, 'only the call without the header reached the server').to.equal(1);
      expect(
        requestsCounted(scrape('grpc-client'), [
          'reporter="source"',
          'request_protocol="grpc"',
          'grpc_response_status="14"',
        ]),
      ).to.be.at.least(2);
    });

    it('the ingress gateway terminates HTTPS with the certificate of a kubernetes.io/tls Secret: curl on the host, HTTP/1.1 and HTTP/2, 200 from the backend', async function () {
      skipUnlessReady(this);
      // no hand-made Role: the sample Mesh runs this gateway in weft-system, and renders weftd's
      // read of that namespace's Secrets (Role weftd-gateway-credentials, docs/controlplane.md)
      kubectl([
        'create',
        'secret',
        'tls',
        CREDENTIAL,
        '-n',
        GATEWAY_NS,
        `--cert=${writeTmp('gateway.crt', gatewayCert.certPem)}`,
        `--key=${writeTmp('gateway.key', gatewayCert.keyPem)}`,
      ]);
      apply(ns(), [
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Gateway',
          metadata: { name: 'proto-gw' },
          spec: {
            selector: { istio: 'ingressgateway' },
            servers: [
              {
                port: { number: HTTPS_PORT, name: 'https', protocol: 'HTTPS' },
                hosts: [SECURE_HOST],
                tls: { mode: 'SIMPLE', credentialName: CREDENTIAL },
              },
              {
                port: { number: PASS_PORT, name: 'tls-pass', protocol: 'TLS' },
                hosts: [PASS_HOST],
                tls: { mode: 'PASSTHROUGH' },
              },
              { port: { number: TCP_PORT, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
            ],
          },
        },
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'secure' },
          spec: {
            hosts: [SECURE_HOST],
            gateways: ['proto-gw'],
            http: [{ route: [{ destination: { host: 'web', port: { number: 80 } } }] }],
          },
        },
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'pass' },
          spec: {
            hosts: [PASS_HOST],
            gateways: ['proto-gw'],
            tls: [
              {
                match: [{ port: PASS_PORT, sniHosts: [PASS_HOST] }],
                route: [{ destination: { host: 'tls-backend', port: { number: 443 } } }],
              },
            ],
          },
        },
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'tcp' },
          spec: {
            hosts: ['*'],
            gateways: ['proto-gw'],
            tcp: [
              {
                match: [{ port: TCP_PORT }],
                route: [{ destination: { host: 'tcp-echo', port: { number: TCP_PORT } } }],
              },
            ],
          },
        },
      ]);
      const clusterIp = kubectlJson<{ spec: { clusterIP: string } }>([
        'get',
        'service',
        'ingressgateway',
        '-n',
        GATEWAY_NS,
      ]).spec.clusterIP;
      const ca = join(tmp, 'gateway-ca.pem');
      const h1 = await waitFor(
        'the gateway to serve https://secure.e2e.weft',
        () => {
          const r = curl(['--http1.1'], SECURE_HOST, HTTPS_PORT, clusterIp, ca, '/version');
          if (r.code !== 0 || r.status !== '200')
            throw new Error(`curl ${r.code} ${r.status}: ${r.stderr}${r.body}`);
          return r;
        },
        90_000,
        1000,
      );
      expect(h1.body.trim()).to.equal('through-the-gateway');
      expect(h1.httpVersion).to.equal('1.1');
      const h2 = curl(['--http2'], SECURE_HOST, HTTPS_PORT, clusterIp, ca, '/version');
      expect(h2.code, h2.stderr).to.equal(0);
      expect(h2.status).to.equal('200');
      expect(h2.httpVersion, 'ALPN h2').to.equal('2');
      expect(h2.body.trim()).to.equal('through-the-gateway');
      await waitFor(
        'Gateway proto-gw ResolvedRefs=True (its credential usable)',
        () => {
          const gw = kubectlJson<{ status?: { conditions?: { type: string; status: string }[] } }>([
            'get',
            'gateway',
            'proto-gw',
            '-n',
            ns(),
          ]);
          return gw.status?.conditions?.some((c) => c.type === 'ResolvedRefs' && c.status === 'True')
            ? true
            : undefined;
        },
        60_000,
        1000,
      );
    });

    it('a wrong SNI gets neither that certificate nor its route', function () {
      skipUnlessReady(this);
      const clusterIp = kubectlJson<{ spec: { clusterIP: string } }>([
        'get',
        'service',
        'ingressgateway',
        '-n',
        GATEWAY_NS,
      ]).spec.clusterIP;
      const wrong = curl(
        ['--http1.1', '-k'],
        'other.e2e.weft',
        HTTPS_PORT,
        clusterIp,
        join(tmp, 'gateway-ca.pem'),
        '/version',
      );
      expect(wrong.code, `${wrong.stderr}${wrong.body}`).to.not.equal(0);
      expect(wrong.status).to.not.equal('200');
      // the gateway's unrecognized_name alert: no server, so no certificate and no route
      expect(wrong.stderr).to.match(/unrecognized name/);
      expect(wrong.code).to.equal(35);
    });

    it('TLS PASSTHROUGH by SNI: curl on the host verifies the certificate of the backend pod, which terminates TLS itself', async function () {
      skipUnlessReady(this);
      const ip = gatewayPodIp();
      const r = await waitFor(
        `the gateway to pass ${PASS_HOST} through`,
        () => {
          const c = curl(['--http1.1'], PASS_HOST, PASS_PORT, ip, join(tmp, 'backend-ca.pem'));
          if (c.code !== 0 || c.status !== '200')
            throw new Error(`curl ${c.code} ${c.status}: ${c.stderr}${c.body}`);
          return c;
        },
        90_000,
        1000,
      );
      expect(r.body.trim()).to.equal('terminated by tls-backend');
      // the gateway's own certificate authority does not vouch for what answers here
      const viaGatewayCa = curl(['--http1.1'], PASS_HOST, PASS_PORT, ip, join(tmp, 'gateway-ca.pem'));
      expect(viaGatewayCa.code, viaGatewayCa.stderr).to.equal(60);
    });

    it('a Gateway TCP server routes by a VirtualService tcp: rule to a TCP echo: bytes come back unchanged', async function () {
      skipUnlessReady(this);
      const ip = gatewayPodIp();
      const payload = randomBytes(64 * 1024);
      const echoed = await waitFor(
        `the gateway's TCP port ${TCP_PORT} to echo`,
        () => tcpRoundTrip(ip, TCP_PORT, payload),
        90_000,
        1000,
      );
      expect(echoed.equals(payload), `${echoed.length} bytes back`).to.equal(true);
    });

    function writeTmp(name: string, content: string): string {
      const file = join(tmp, name);
      writeFileSync(file, content);
      return file;
    }
  });
}
