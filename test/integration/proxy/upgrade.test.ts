/**
 * HTTP/1.1 Upgrade through the proxy (issue #12, item 1): a tunnel exists only after the
 * upstream answered 101 to an upgrade the listener allows (websocket unless configured); any
 * other answer is relayed as HTTP and the client connection keeps being parsed request by
 * request, so a later request on it is routed like any other (a 403 abort on /admin holds).
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { configFromText } from '../../../proxy/config/load.js';
import {
  head,
  RawConn,
  request,
  reviewsEntry,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';

const ROUTES = vs(`
  - match: [{uri: {prefix: /admin}}]
    fault: {abort: {httpStatus: 403, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {exact: /direct}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match: [{uri: {prefix: /moved}}]
    redirect: {uri: /there}
  - route: [{destination: {host: reviews, subset: v1}}]`);

const WEBSOCKET = {
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
};

describe('proxy HTTP/1.1 upgrades: tunnel only after a 101 to an allowed upgrade', function () {
  this.timeout(30_000);
  let p: Started | null = null;
  let conn: RawConn | null = null;
  const ups: Upstream[] = [];
  afterEach(async () => {
    conn?.destroy();
    conn = null;
    await p?.stop();
    p = null;
    for (const u of ups.splice(0)) await u.close();
  });
  const up = async (upgrade: boolean): Promise<Upstream> => {
    const u = await upstream('v1', { upgrade });
    ups.push(u);
    return u;
  };
  const urls = (u: Upstream): string[] => u.seen.map((s) => s.url);

  for (const pipelined of [false, true])
    it(`an upgrade an ordinary app answers with 200 stays HTTP: the next request is routed (403 on /admin)${pipelined ? ', pipelined' : ''}`, async () => {
      const app = await up(false); // node:http without an 'upgrade' listener: answers 200
      p = await startProxy(reviewsEntry([app]) + ROUTES);
      conn = await RawConn.open(p.port);
      const second = head('GET', '/admin/users');
      conn.write(head('GET', '/chat', WEBSOCKET) + (pipelined ? second : ''));
      const first = await conn.response();
      expect(first?.status).to.equal(200);
      expect(first?.body).to.equal('v1');
      if (!pipelined) conn.write(second);
      const denied = await conn.response();
      expect(denied?.status).to.equal(403);
      expect(denied?.headers['x-weft-response-flags']).to.equal('FI');
      expect(urls(app)).to.deep.equal(['/chat']);
      expect(app.seen[0]!.headers.upgrade).to.equal('websocket'); // an allowed upgrade is offered upstream
    });

  for (const [token, extra] of [
    ['h2c', { 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA', Connection: 'Upgrade, HTTP2-Settings' }],
    ['made-up/1.0', {}],
  ] as const)
    it(`a ${token} upgrade (not allowed) is forwarded as plain HTTP, Upgrade and HTTP2-Settings stripped, never a tunnel`, async () => {
      const v1 = await up(true); // would answer 101 to any upgrade it is offered
      p = await startProxy(reviewsEntry([v1]) + ROUTES);
      conn = await RawConn.open(p.port);
      conn.write(
        head('GET', '/x', { Connection: 'Upgrade', Upgrade: token, ...extra }) + head('GET', '/admin'),
      );
      const first = await conn.response();
      expect(first?.status).to.equal(200);
      expect(first?.headers.upgrade).to.equal(undefined);
      expect((await conn.response())?.status).to.equal(403);
      expect(urls(v1)).to.deep.equal(['/x']);
      expect(v1.seen[0]!.headers).to.not.have.any.keys('upgrade', 'http2-settings');
      conn.write(head('GET', '/y'));
      expect((await conn.response())?.body).to.equal('v1'); // still HTTP
    });

  it('route actions apply to upgrade requests (abort, direct response, redirect, no route), connection kept', async () => {
    const v1 = await up(true);
    p = await startProxy(reviewsEntry([v1]) + ROUTES);
    conn = await RawConn.open(p.port);
    conn.write(head('GET', '/admin', WEBSOCKET));
    const abort = await conn.response();
    expect([abort?.status, abort?.headers['x-weft-response-flags']]).to.deep.equal([403, 'FI']);
    conn.write(head('GET', '/direct', WEBSOCKET));
    const direct = await conn.response();
    expect([direct?.status, direct?.body]).to.deep.equal([418, 'short and stout']);
    conn.write(head('GET', '/moved', WEBSOCKET));
    const moved = await conn.response();
    expect([moved?.status, moved?.headers.location]).to.deep.equal([301, 'http://reviews:9080/there']);
    conn.write(head('GET', '/', { ...WEBSOCKET, Host: 'nobody:1' }));
    const nr = await conn.response();
    expect([nr?.status, nr?.headers['x-weft-response-flags']]).to.deep.equal([404, 'NR']);
    expect(v1.seen).to.have.length(0);
    conn.write(head('GET', '/plain'));
    expect((await conn.response())?.body).to.equal('v1');
  });

  it('after a 101 the tunnel carries bytes both ways; bytes sent before the 101 go into it, not as a request', async () => {
    const v1 = await up(true);
    p = await startProxy(reviewsEntry([v1]) + ROUTES);
    conn = await RawConn.open(p.port);
    const smuggled = head('GET', '/admin');
    conn.write(head('GET', '/ws', WEBSOCKET) + smuggled);
    const switched = await conn.response();
    expect(switched?.status).to.equal(101);
    expect(switched?.headers.upgrade).to.equal('websocket');
    expect(await conn.until((s) => s.includes(`echo:${smuggled}`))).to.equal(`echo:${smuggled}`);
    conn.write('ping');
    expect(await conn.until((s) => s.endsWith('echo:ping'))).to.equal(`echo:${smuggled}echo:ping`);
    expect(urls(v1)).to.deep.equal(['/ws']);
    await v1.close(); // the upstream side ends the tunnel; the client connection goes with it
    expect(await conn.closedByPeer()).to.equal(true);
    // the tunnel is one request in the metrics, recorded when it closes
    let text = '';
    for (let i = 0; i < 100 && !/response_code="101"/.test(text); i++) {
      await new Promise((r) => setTimeout(r, 20));
      text = (await request(p.metrics, { path: '/stats/prometheus' })).body;
    }
    expect(text).to.match(/istio_requests_total\{[^}]*response_code="101",response_flags="-"[^}]*\} 1/);
  });

  it('an upgrade whose rewritten Host no upstream may be sent (a space): 503 DPE, nothing sent, no tunnel', async () => {
    const v1 = await up(true);
    p = await startProxy(
      reviewsEntry([v1]) +
        vs(`
  - match: [{uri: {prefix: /bad-authority}}]
    rewrite: {authority: "bad host.example"}
    retries: {attempts: 3, retryOn: "5xx,reset,connect-failure"}
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    conn = await RawConn.open(p.port);
    conn.write(head('GET', '/bad-authority', WEBSOCKET));
    const r = await conn.response();
    expect(r?.status).to.equal(503);
    expect(r?.headers['x-weft-response-flags']).to.equal('DPE');
    expect(r?.body).to.contain('WEFT_PROXY_REQUEST_UNSENDABLE');
    expect(v1.seen, 'nothing reached the upstream').to.have.length(0);
    expect(v1.accepted, 'not even a connection').to.equal(0);
  });

  it('other upgrade tokens tunnel only where the listener allows them (upgradeTypes)', async () => {
    const v1 = await up(true);
    const cfg = configFromText(reviewsEntry([v1]) + ROUTES, 'test.yaml').config;
    (cfg.listeners[0] as HttpListener).upgradeTypes = ['made-up'];
    p = await startProxy(cfg);
    conn = await RawConn.open(p.port);
    conn.write(head('GET', '/ws', WEBSOCKET)); // websocket is no longer allowed: plain HTTP
    const plain = await conn.response();
    expect([plain?.status, plain?.body]).to.deep.equal([200, 'v1']);
    conn.write(head('GET', '/tunnel', { Connection: 'Upgrade', Upgrade: 'Made-Up' }));
    expect((await conn.response())?.status).to.equal(101);
    conn.write('hello');
    expect(await conn.until((s) => s.includes('echo:hello'))).to.equal('echo:hello');
    expect(urls(v1)).to.deep.equal(['/ws', '/tunnel']);
    expect(v1.seen[0]!.headers.upgrade).to.equal(undefined);
  });

  it('a 101 naming another protocol than the one offered is an upstream protocol error (502 UPE)', async () => {
    const odd = net.createServer((s) =>
      s.once('data', () =>
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'),
      ),
    );
    await new Promise<void>((r) => odd.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (odd.address() as net.AddressInfo).port;
      p = await startProxy(reviewsEntry([{ name: 'v1', port } as Upstream]) + ROUTES);
      conn = await RawConn.open(p.port);
      conn.write(head('GET', '/ws', WEBSOCKET));
      const r = await conn.response();
      expect([r?.status, r?.headers['x-weft-response-flags']]).to.deep.equal([502, 'UPE']);
    } finally {
      odd.close();
    }
  });

  it('an upgrade request with a body is forwarded as plain HTTP and the connection closed after it', async () => {
    const v1 = await up(true);
    p = await startProxy(reviewsEntry([v1]) + ROUTES);
    conn = await RawConn.open(p.port);
    conn.write(
      `${head('POST', '/form', { ...WEBSOCKET, 'Content-Length': '5' })}hello${head('GET', '/admin')}`,
    );
    const r = await conn.response();
    expect([r?.status, r?.body, r?.headers.connection]).to.deep.equal([200, 'v1', 'close']);
    expect(await conn.closedByPeer()).to.equal(true);
    expect(v1.seen.map((s) => [s.url, s.body, s.headers.upgrade])).to.deep.equal([
      ['/form', 'hello', undefined],
    ]);
  });

  it('the node:http client sees a WebSocket handshake through the proxy', async () => {
    const v1 = await up(true);
    p = await startProxy(reviewsEntry([v1]) + ROUTES);
    const port = p.port;
    const got = await new Promise<string>((resolve, reject) => {
      const r = http.request({
        host: '127.0.0.1',
        port,
        path: '/ws',
        headers: { host: 'reviews:9080', ...WEBSOCKET },
      });
      r.on('upgrade', (res, socket) => {
        socket.write('hi');
        socket.once('data', (d: Buffer) => {
          socket.destroy();
          resolve(`${res.statusCode} ${d.toString()}`);
        });
      });
      r.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      r.on('error', reject);
      r.end();
    });
    expect(got).to.equal('101 echo:hi');
  });
});
