/**
 * Header operations on connection and framing fields (pkg/http/fields.ts): Istio accepts a
 * VirtualService that sets `transfer-encoding`, `content-length`, `keep-alive`... but the proxy
 * frames each hop itself. Before, a response `set` of such a field crashed the gateway on the first
 * HTTP/2 client (node:http2 threw ERR_HTTP2_INVALID_CONNECTION_HEADERS from a local reply, past
 * every catch), sent HTTP/1.1 clients a body they could not delimit, and a request `set` of
 * `transfer-encoding` went upstream next to the proxy's own content-length (smuggling). Now the
 * operation is ignored, as Envoy's connection manager drops the field, and the webhook warns.
 */
import { expect } from 'chai';
import http2 from 'node:http2';
import https from 'node:https';
import { createCA, issueCert } from '../../../hack/cluster/pki.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startProxy, upstream, type Started, type Upstream } from './helpers.js';
import { gatewayTlsConfig } from '../../support/gateway-tls.js';
import { h2Exchange } from '../../support/h2.js';

const ca = createCA('framing-ca', 30);
const cert = issueCert(ca, {
  commonName: 'a.example.com',
  hosts: ['a.example.com'],
  usage: 'server',
  validDays: 30,
});
const OWNED = [
  'transfer-encoding',
  'content-length',
  'keep-alive',
  'upgrade',
  'te',
  'proxy-connection',
  'connection',
];

function config(appPort: number): ProxyConfig {
  const set = Object.fromEntries(OWNED.map((f) => [f, f === 'content-length' ? '1' : 'chunked']));
  return gatewayTlsConfig({
    servers: [{ name: 'x/gw[0]', sniHosts: ['a.example.com'], mode: 'SIMPLE', credentialName: 'a' }],
    virtualHosts: [
      {
        name: 'a',
        domains: ['a.example.com'],
        routes: [
          {
            action: { type: 'route', destinations: [{ cluster: 'app', weight: 100 }] },
            retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
            headers: { request: { set }, response: { set: { ...set, 'x-kept': 'yes' } } },
          },
        ],
      },
    ],
    clusters: [{ name: 'app', type: 'STATIC', endpoints: [{ address: '127.0.0.1', port: appPort }] }],
    certs: { a: cert },
  });
}

describe('header operations on connection and framing fields are ignored (the proxy frames each hop)', function () {
  this.timeout(30_000);
  let app: Upstream;
  let gw: Started;
  before(async () => {
    app = await upstream('app');
    gw = await startProxy(config(app.port));
  });
  after(async () => {
    await gw.stop();
    await app.close();
  });

  it('HTTP/1.1: two responses on one keep-alive connection are delimited, the framing is the proxy’s own', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 2; i++) {
        const got = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
          (resolve, reject) => {
            const req = https.request(
              {
                port: gw.port,
                host: '127.0.0.1',
                servername: 'a.example.com',
                ca: ca.certPem,
                agent,
                path: '/h1',
              },
              (res) => {
                let body = '';
                res.on('data', (d: Buffer) => (body += d.toString()));
                res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
              },
            );
            req.setHeader('host', 'a.example.com');
            req.on('error', reject);
            req.end();
          },
        );
        expect(got.status).to.equal(200);
        expect(got.body).to.equal('app');
        expect(got.headers['x-kept']).to.equal('yes');
        expect(got.headers['transfer-encoding']).to.not.equal('chunked, chunked');
        expect(got.headers['content-length']).to.not.equal('1');
        expect(got.headers['upgrade']).to.equal(undefined);
        expect(got.headers['te']).to.equal(undefined);
      }
    } finally {
      agent.destroy();
    }
  });

  it('HTTP/2: the stream answers 200 and the proxy lives on', async () => {
    for (let i = 0; i < 2; i++) {
      const session = http2.connect(`https://127.0.0.1:${gw.port}`, {
        ca: ca.certPem,
        servername: 'a.example.com',
      });
      session.on('error', () => undefined);
      try {
        const got = await h2Exchange(session, { ':path': '/h2', ':authority': 'a.example.com' });
        expect(got.head[':status']).to.equal(200);
        expect(got.body).to.equal('app');
        expect(got.head['x-kept']).to.equal('yes');
      } finally {
        session.destroy();
      }
    }
  });

  it('a request set of transfer-encoding never reaches the upstream next to the proxy’s content-length', async () => {
    const before = app.seen.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          port: gw.port,
          host: '127.0.0.1',
          servername: 'a.example.com',
          ca: ca.certPem,
          method: 'POST',
          path: '/post',
          headers: { host: 'a.example.com', 'content-length': '5' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end('hello');
    });
    expect(status).to.equal(200);
    const seen = app.seen.slice(before).find((r) => r.url === '/post');
    expect(seen, 'the upstream parsed the request').to.not.equal(undefined);
    expect(seen!.body).to.equal('hello');
    expect(seen!.headers['transfer-encoding']).to.equal(undefined);
    expect(seen!.headers['content-length']).to.equal('5');
  });
});
