/**
 * gRPC-Web bridged at the gateway (proxy/h2/grpc-web.ts), end to end: a real `proxy gateway`
 * process configured by a fake weftd, a real gRPC server (@grpc/grpc-js) behind an HTTP/2
 * cluster, and gRPC-Web requests made by hand as a browser library sends them (HTTP/1.1 and
 * h2c; binary and `-text`): unary and server-streaming calls, the status in a trailer frame,
 * gRPC errors, the refusals (bad base64, a body over the bound, no route), and gRPC-Web towards
 * an HTTP/1.1 cluster passed unchanged.
 */
import { expect } from 'chai';
import http from 'node:http';
import http2 from 'node:http2';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { grpc, grpcUpstream, type GrpcUpstream } from './grpc-fixture.js';
import { upstream, type Upstream } from './helpers.js';
import { waitFor } from '../../support/wait.js';
import { freePort } from '../../support/ports.js';
import { startGatewayProcess, type ProxyProcess } from '../../support/proxy-process.js';
import { MAX_GRPC_WEB_REQUEST_BYTES } from '../../../proxy/h2/grpc-web.js';

const HELLO = '/weft.test.Greeter/Hello';
const COUNT = '/weft.test.Greeter/Count';

/** One length-prefixed message (flag 0: uncompressed data). */
function frame(message: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

interface WebReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** HTTP trailers (there must be none: gRPC-Web puts them in the body). */
  httpTrailers: Record<string, unknown>;
  messages: Record<string, unknown>[];
  /** The trailer frame's fields; null when the body had none. */
  trailers: Record<string, string> | null;
  raw: Buffer;
}

/** Splits a gRPC-Web response body into its data messages and its trailer frame. */
function parseBody(body: Buffer): Pick<WebReply, 'messages' | 'trailers'> {
  const messages: Record<string, unknown>[] = [];
  let trailers: Record<string, string> | null = null;
  let at = 0;
  while (at < body.length) {
    expect(body.length - at, 'a whole frame header').to.be.at.least(5);
    const flag = body[at]!;
    const len = body.readUInt32BE(at + 1);
    const payload = body.subarray(at + 5, at + 5 + len);
    expect(payload.length, 'a whole frame').to.equal(len);
    if (flag & 0x80) {
      expect(trailers, 'one trailer frame, last').to.equal(null);
      trailers = {};
      for (const line of payload
        .toString('latin1')
        .split('\r\n')
        .filter((l) => l !== '')) {
        const i = line.indexOf(':');
        trailers[line.slice(0, i)] = line.slice(i + 1);
      }
    } else {
      expect(trailers, 'no data after the trailer frame').to.equal(null);
      messages.push(JSON.parse(payload.toString()) as Record<string, unknown>);
    }
    at += 5 + len;
  }
  return { messages, trailers };
}

/** A `-text` response: padded base64 segments one after the other (one per frame). */
function decodeText(text: string): Buffer {
  expect(text).to.match(
    /^(?:[A-Za-z0-9+/]{4})*$|^(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)*$/,
  );
  const parts = text.match(/[^=]*(?:={1,2}|$)/g)!.filter((p) => p !== '');
  return Buffer.concat(parts.map((p) => Buffer.from(p, 'base64')));
}

function finish(
  status: number,
  headers: WebReply['headers'],
  httpTrailers: Record<string, unknown>,
  raw: Buffer,
): WebReply {
  const text = String(headers['content-type'] ?? '').startsWith('application/grpc-web-text');
  const body = text ? decodeText(raw.toString('latin1')) : raw;
  return { status, headers, httpTrailers, raw, ...parseBody(body) };
}

/** A gRPC-Web call over HTTP/1.1, as grpc-web / Connect clients send it from a browser. */
function web1(
  port: number,
  authority: string,
  p: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<WebReply> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: p,
        agent: false,
        headers: {
          host: authority,
          'x-grpc-web': '1',
          'content-length': String(Buffer.byteLength(body)),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve(finish(res.statusCode ?? 0, res.headers, res.trailers, Buffer.concat(chunks))),
        );
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

/** The same over h2c (a client behind an HTTP/2-speaking load balancer). */
function web2(
  port: number,
  authority: string,
  p: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<WebReply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const s = session.request({
      ':method': 'POST',
      ':path': p,
      ':authority': authority,
      'x-grpc-web': '1',
      ...headers,
    });
    let status = 0;
    let head: WebReply['headers'] = {};
    let httpTrailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    s.on('response', (h) => {
      status = Number(h[':status']);
      head = h as WebReply['headers'];
    });
    s.on('trailers', (t) => (httpTrailers = t));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      session.close();
      resolve(finish(status, head, httpTrailers, Buffer.concat(chunks)));
    });
    s.on('error', reject);
    s.end(body);
  });
}

const BINARY = { 'content-type': 'application/grpc-web+proto', accept: 'application/grpc-web+proto' };
const TEXT = { 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text' };

describe('proxy gateway: gRPC-Web bridged to a gRPC server (real process, real grpc-js)', function () {
  this.timeout(120_000);
  let server: GrpcUpstream;
  let app: Upstream;
  let weftd: FakeWeftd;
  let gateway: ProxyProcess;
  let port: number;

  before(async () => {
    server = await grpcUpstream('web-backend');
    app = await upstream('h1-app');
    port = await freePort();
    const config: ProxyConfig = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: 'web-1',
      listeners: [
        {
          name: `0.0.0.0_${port}`,
          protocol: 'HTTP',
          address: '127.0.0.1',
          port,
          edge: true,
          virtualHosts: [
            {
              name: 'grpc',
              domains: ['grpc.example.com'],
              routes: [
                {
                  match: [{ uri: { prefix: '/weft.test.Greeter/' } }],
                  action: { type: 'route', destinations: [{ cluster: 'greeter', weight: 100 }] },
                  retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
                },
              ],
            },
            {
              name: 'h1',
              domains: ['h1.example.com'],
              routes: [{ action: { type: 'route', destinations: [{ cluster: 'h1-app', weight: 100 }] } }],
            },
          ],
        },
      ],
      clusters: [
        { name: 'greeter', http2: true, endpoints: [{ address: '127.0.0.1', port: server.port }] },
        { name: 'h1-app', endpoints: [{ address: '127.0.0.1', port: app.port }] },
      ],
      telemetry: { accessLog: true, workload: { name: 'ingressgateway', namespace: 'istio-system' } },
    };
    weftd = await fakeWeftd(config);
    gateway = await startGatewayProcess(weftd);
    await waitFor(
      'the gateway applied its config',
      () => gateway.log().includes('"version":"web-1"'),
      60_000,
    );
  });

  after(async () => {
    gateway?.child.kill('SIGKILL');
    await weftd?.close();
    await server?.close();
    await app?.close();
  });

  for (const [name, call] of [
    ['HTTP/1.1', web1],
    ['h2c', web2],
  ] as const) {
    it(`${name}, binary: a unary call; the status is the body's last frame, not an HTTP trailer`, async () => {
      const r = await call(port, 'grpc.example.com', HELLO, frame({ name: 'web' }), BINARY);
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/grpc-web+proto');
      expect(r.headers['content-length']).to.equal(undefined);
      expect(r.messages).to.have.length(1);
      expect(r.messages[0]).to.include({ name: 'web', from: 'web-backend' });
      expect(r.trailers).to.include({ 'grpc-status': '0' });
      expect(Object.keys(r.httpTrailers).filter((k) => !k.startsWith(':'))).to.deep.equal([]);
      // the server got a gRPC call: application/grpc, te: trailers, the client's metadata
      const seen = server.calls.at(-1)!.metadata.getMap();
      expect(seen['x-grpc-web']).to.equal('1');
    });

    it(`${name}, -text: a server stream, each frame base64 on its own, then the trailer frame`, async () => {
      const body = frame({ name: 'txt', n: 3 }).toString('base64');
      const r = await call(port, 'grpc.example.com', COUNT, body, TEXT);
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/grpc-web-text+proto');
      expect(r.messages.map((m) => m.name)).to.deep.equal(['txt-0', 'txt-1', 'txt-2']);
      expect(r.trailers).to.include({ 'grpc-status': '0' });
    });
  }

  it('a gRPC error from the server (trailers-only) reaches the client with its status and message', async () => {
    server.fail = (p) =>
      p === HELLO
        ? Object.assign(new Error('no such greeting'), {
            code: grpc.status.NOT_FOUND,
            details: 'no such greeting',
            metadata: new grpc.Metadata(),
          })
        : null;
    try {
      const r = await web1(port, 'grpc.example.com', HELLO, frame({ name: 'x' }), BINARY);
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/grpc-web+proto');
      const status = r.trailers?.['grpc-status'] ?? r.headers['grpc-status'];
      const message = r.trailers?.['grpc-message'] ?? r.headers['grpc-message'];
      expect(status).to.equal(String(grpc.status.NOT_FOUND));
      expect(decodeURIComponent(String(message))).to.equal('no such greeting'); // percent-encoded, as gRPC sends it
      expect(r.messages).to.deep.equal([]);
    } finally {
      server.fail = () => null;
    }
  });

  it('bad base64 in a -text request: INTERNAL, as a gRPC-Web error, the server not called', async () => {
    const before = server.calls.length;
    for (const bad of ['AAAA*AAA', 'AAAAAA', 'AA=A']) {
      const r = await web1(port, 'grpc.example.com', HELLO, bad, TEXT);
      expect(r.status, bad).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/grpc-web-text+proto');
      expect(r.headers['grpc-status'], bad).to.equal('13');
      expect(String(r.headers['grpc-message'])).to.include('invalid base64');
      expect(r.headers['x-weft-response-flags']).to.equal('DPE');
    }
    expect(server.calls.length).to.equal(before);
  });

  it('a request body over the bound: RESOURCE_EXHAUSTED, the server not called', async () => {
    const before = server.calls.length;
    const big = Buffer.alloc(MAX_GRPC_WEB_REQUEST_BYTES + 1024, 1);
    const r = await web1(port, 'grpc.example.com', HELLO, big, BINARY);
    expect(r.status).to.equal(200);
    expect(r.headers['grpc-status']).to.equal('8');
    expect(server.calls.length).to.equal(before);
  });

  it('-text: the bound is on the decoded message (base64 over 4 MiB of a 3 MiB message passes)', async () => {
    const name = 'n'.repeat(3 * 1024 * 1024);
    const body = frame({ name }).toString('base64');
    expect(body.length).to.be.above(MAX_GRPC_WEB_REQUEST_BYTES);
    const r = await web1(port, 'grpc.example.com', HELLO, body, TEXT);
    expect(r.trailers).to.include({ 'grpc-status': '0' });
    expect(r.messages[0]!.name).to.equal(name);
  });

  it('-text: a decoded message over the bound is RESOURCE_EXHAUSTED, the server not called', async () => {
    const before = server.calls.length;
    const body = Buffer.alloc(MAX_GRPC_WEB_REQUEST_BYTES + 1, 1).toString('base64');
    const r = await web1(port, 'grpc.example.com', HELLO, body, TEXT);
    expect(r.status).to.equal(200);
    expect(r.headers['grpc-status']).to.equal('8');
    expect(r.headers['x-weft-response-flags']).to.equal('DPE');
    expect(server.calls.length).to.equal(before);
  });

  for (const [name, call] of [
    ['HTTP/1.1', web1],
    ['h2c', web2],
  ] as const)
    it(`${name}, -text response: a frame over 4 MiB ends the call with RESOURCE_EXHAUSTED`, async () => {
      // the largest request the server takes; its echo (with `from`) is a few bytes over 4 MiB
      const big = frame({ name: 'x'.repeat(MAX_GRPC_WEB_REQUEST_BYTES - 16) });
      expect(big.length).to.equal(MAX_GRPC_WEB_REQUEST_BYTES);
      const headers = { 'content-type': 'application/grpc-web+proto', accept: 'application/grpc-web-text' };
      const r = await call(port, 'grpc.example.com', HELLO, big, headers);
      expect(r.status).to.equal(200);
      expect(r.messages).to.deep.equal([]);
      expect(r.trailers).to.include({ 'grpc-status': '8' });
      // the gateway still serves the next call
      const next = await call(
        port,
        'grpc.example.com',
        HELLO,
        frame({ name: 'after' }).toString('base64'),
        TEXT,
      );
      expect(next.messages[0]).to.include({ name: 'after' });
    });

  it('no route: UNIMPLEMENTED as a gRPC-Web error', async () => {
    const r = await web1(port, 'grpc.example.com', '/weft.test.Nope/Call', frame({}), BINARY);
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.equal('application/grpc-web+proto');
    expect(r.headers['grpc-status']).to.equal('12');
    expect(r.headers['x-weft-response-flags']).to.equal('NR');
  });

  it('towards an HTTP/1.1 cluster gRPC-Web passes unchanged (an app serving gRPC-Web itself)', async () => {
    const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/x',
          agent: false,
          headers: { host: 'h1.example.com', 'content-type': 'application/grpc-web+proto' },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      r.on('error', reject);
      r.end(frame({ name: 'h1' }));
    });
    expect(got.status).to.equal(200);
    const seen = app.seen.at(-1)!;
    expect(seen.headers['content-type']).to.equal('application/grpc-web+proto');
  });

  it('the access log has the gRPC status of bridged calls, protocol as the client spoke it', async () => {
    await waitFor('access log lines', () =>
      gateway
        .log()
        .split('\n')
        .some(
          (l) =>
            l.includes(`"path":"${COUNT}"`) &&
            l.includes('"grpc_status":"0"') &&
            l.includes('"upstream_cluster":"greeter"'),
        ),
    );
    const counts = gateway
      .log()
      .split('\n')
      .filter((l) => l.includes(`"path":"${COUNT}"`));
    expect(counts.some((l) => l.includes('"protocol":"HTTP/1.1"'))).to.equal(true);
    expect(counts.some((l) => l.includes('"protocol":"HTTP/2"'))).to.equal(true);
  });
});
