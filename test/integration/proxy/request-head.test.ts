/**
 * The downstream request head through a real proxy to real node:http upstreams on 127.0.0.1:
 * request-target forms (RFC 9112 §3.2), path normalization (Istio's pathNormalization), Host
 * validation and Connection-nominated headers. Each case checks what the route decision was
 * (which upstream answered) and exactly what that upstream received.
 */
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import {
  raw,
  request,
  reviewsEntry,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';

const ADMIN_RULES = vs(`
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]`);

const mesh = (mode: string): string => `---
apiVersion: mesh.weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  pathNormalization: {normalization: ${mode}}
`;

/** Status line, headers and body of a raw response. */
function parse(out: string): { status: number; headers: string; body: string } {
  const end = out.indexOf('\r\n\r\n');
  const headers = out.slice(0, end).toLowerCase();
  let body = out.slice(end + 4);
  if (headers.includes('transfer-encoding: chunked')) {
    let text = '';
    for (let at = 0; ;) {
      const nl = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, nl), 16);
      if (!(size > 0)) break;
      text += body.slice(nl + 2, nl + 2 + size);
      at = nl + 2 + size + 2;
    }
    body = text;
  }
  return { status: Number(out.slice(9, 12)), headers, body };
}

describe('proxy request head: target forms, path normalization, Host, Connection', function () {
  this.timeout(30_000);
  let v1: Upstream;
  let v2: Upstream;
  let p: Started | null = null;
  before(async () => {
    v1 = await upstream('v1');
    v2 = await upstream('v2');
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
    v1.seen.length = 0;
    v2.seen.length = 0;
    v1.handler = (_q, res) => res.writeHead(200, { 'x-upstream': 'v1' }).end('v1');
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });

  const start = async (extra = ''): Promise<Started> =>
    (p = await startProxy(reviewsEntry([v1, v2]) + ADMIN_RULES + extra));
  const send = async (head: string): Promise<{ status: number; headers: string; body: string }> =>
    parse(await raw(p!.port, `${head}\r\nConnection: close\r\n\r\n`, 5000));

  it('absolute-form: the target authority replaces Host, the path is matched and forwarded in origin form', async () => {
    await start();
    const r = await send('GET http://reviews:9080/admin/secret?x=1 HTTP/1.1\r\nHost: elsewhere:1');
    expect([r.status, r.body]).to.deep.equal([200, 'v2']);
    expect(v2.seen.map((s) => [s.url, s.headers.host])).to.deep.equal([
      ['/admin/secret?x=1', 'reviews:9080'],
    ]);
    // no Host at all: the target names the authority
    const noHost = await send('GET http://reviews:9080/admin HTTP/1.1');
    expect(noHost.body).to.equal('v2');
    expect(v2.seen[1]!.url).to.equal('/admin');
    // the same request in origin form routes the same way
    const origin = await send('GET /admin/secret?x=1 HTTP/1.1\r\nHost: reviews:9080');
    expect(origin.body).to.equal('v2');
    expect(v2.seen[2]!.url).to.equal('/admin/secret?x=1');
    expect(v1.seen).to.have.length(0);
  });

  it('absolute-form with another scheme, userinfo, or no path rules', async () => {
    await start();
    expect((await send('GET https://reviews:9080/admin HTTP/1.1\r\nHost: reviews:9080')).status).to.equal(
      400,
    );
    const userinfo = await send('GET http://user@reviews:9080/admin HTTP/1.1\r\nHost: reviews:9080');
    expect(userinfo.status).to.equal(400);
    expect(userinfo.headers).to.contain('x-weft-response-flags: dpe');
    const bare = await send('GET http://reviews:9080 HTTP/1.1');
    expect(bare.body).to.equal('v1');
    expect(v1.seen.map((s) => s.url)).to.deep.equal(['/']);
    expect(v2.seen).to.have.length(0);
  });

  it('asterisk-form OPTIONS * is not routed (404 NR); other forms are 400 DPE', async () => {
    await start();
    const star = await send('OPTIONS * HTTP/1.1\r\nHost: reviews:9080');
    expect(star.status).to.equal(404);
    expect(star.headers).to.contain('x-weft-response-flags: nr');
    const getStar = await send('GET * HTTP/1.1\r\nHost: reviews:9080');
    expect(getStar.status).to.equal(400);
    expect(getStar.headers).to.contain('x-weft-response-flags: dpe');
    expect((await send('GET reviews:9080 HTTP/1.1\r\nHost: reviews:9080')).status).to.equal(400);
    expect((await send('GET /admin#frag HTTP/1.1\r\nHost: reviews:9080')).status).to.equal(400);
    expect(v1.seen.length + v2.seen.length).to.equal(0);
  });

  it('BASE (default): dot segments and %2e are resolved before matching; the upstream gets the normalized path', async () => {
    await start();
    for (const path of [
      '/x/../admin',
      '/./admin',
      '/%2e%2e/admin',
      '/x/%2E%2E/admin',
      '/x/..\\admin',
      '/%61dmin',
    ]) {
      const r = await request(p!.port, { path });
      expect(r.body, path).to.equal('v2');
    }
    expect(v2.seen.map((s) => s.url)).to.deep.equal(Array(6).fill('/admin'));
    // the query is never normalized
    await request(p!.port, { path: '/x/../admin?next=/../%2e%2e//y' });
    expect(v2.seen[6]!.url).to.equal('/admin?next=/../%2e%2e//y');
    // BASE does not merge slashes (Istio): //admin is not /admin, and goes upstream as it is
    expect((await request(p!.port, { path: '//admin' })).body).to.equal('v1');
    expect(v1.seen.map((s) => s.url)).to.deep.equal(['//admin']);
  });

  it('a path that cannot be normalized safely → 400 DPE, nothing forwarded, connection closed', async () => {
    await start();
    const r = await send('GET /admin%00 HTTP/1.1\r\nHost: reviews:9080');
    expect(r.status).to.equal(400);
    expect(r.headers).to.contain('x-weft-response-flags: dpe');
    expect(r.body).to.match(/cannot be normalized/);
    const keepAlive = await raw(
      p!.port,
      'GET /x%00 HTTP/1.1\r\nHost: reviews:9080\r\n\r\nGET / HTTP/1.1\r\nHost: reviews:9080\r\n\r\n',
    );
    expect(keepAlive.match(/HTTP\/1\.1 /g)).to.have.length(1);
    expect(keepAlive).to.match(/connection: close/i);
    expect(v1.seen.length + v2.seen.length).to.equal(0);
  });

  it('the Mesh setting in the standalone file: MERGE_SLASHES, DECODE_AND_MERGE_SLASHES, NONE', async () => {
    await start(mesh('MERGE_SLASHES'));
    expect((await request(p!.port, { path: '//admin//x' })).body).to.equal('v2');
    expect((await request(p!.port, { path: '/admin%2fx' })).body).to.equal('v2');
    expect(v2.seen.map((s) => s.url)).to.deep.equal(['/admin/x', '/admin%2fx']);
    await p!.stop();
    v2.seen.length = 0;
    await start(mesh('DECODE_AND_MERGE_SLASHES'));
    expect((await request(p!.port, { path: '/x%2F..%2Fadmin%5cy' })).body).to.equal('v2');
    expect(v2.seen.map((s) => s.url)).to.deep.equal(['/admin/y']);
    await p!.stop();
    await start(mesh('NONE'));
    expect((await request(p!.port, { path: '/x/../admin' })).body).to.equal('v1');
    expect(v1.seen.map((s) => s.url)).to.deep.equal(['/x/../admin']);
  });

  it('rewrites act on the normalized path; the pre-rewrite target goes in x-envoy-original-path', async () => {
    p = await startProxy(
      reviewsEntry([v1, v2]) +
        vs(`
  - match: [{uri: {prefix: /admin}}]
    rewrite: {uri: /internal}
    route: [{destination: {host: reviews, subset: v2}}]`),
    );
    await request(p!.port, { path: '/x/../admin/a?q=/../b' });
    expect(v2.seen[0]!.url).to.equal('/internal/a?q=/../b');
    expect(v2.seen[0]!.headers['x-envoy-original-path']).to.equal('/admin/a?q=/../b');
  });

  it('Host: two fields, userinfo, a bad port, or none → 400 DPE; nothing forwarded', async () => {
    await start();
    for (const head of [
      'GET /admin HTTP/1.1\r\nHost: reviews:9080\r\nHost: evil',
      'GET /admin HTTP/1.1\r\nHost: reviews:9080\r\nhost: reviews:9080',
      'GET /admin HTTP/1.1\r\nHost: name@evil',
      'GET /admin HTTP/1.1\r\nHost: reviews:9080@evil',
      'GET /admin HTTP/1.1\r\nHost: reviews:99999',
      'GET /admin HTTP/1.1\r\nHost: ',
      'GET /admin HTTP/1.1',
      'GET /admin HTTP/1.0',
    ]) {
      const r = await send(head);
      expect(r.status, head).to.equal(400);
      expect(r.headers, head).to.contain('x-weft-response-flags: dpe');
    }
    expect(v1.seen.length + v2.seen.length).to.equal(0);
  });

  it('headers the Connection field names are not forwarded, however short (request and response)', async () => {
    await start();
    v1.handler = (_q, res) =>
      res.writeHead(200, { connection: 'x-internal', 'x-internal': 'secret' }).end('v1');
    const r = await request(p!.port, {
      path: '/',
      headers: { connection: 'x-secret', 'x-secret': 's', 'x-keep': 'k' },
    });
    expect(v1.seen[0]!.headers['x-secret']).to.equal(undefined);
    expect(v1.seen[0]!.headers['x-keep']).to.equal('k');
    expect(r.headers['x-internal']).to.equal(undefined);
  });

  it('a WebSocket upgrade is routed on, and replays, the same normalized target and authority', async () => {
    await start();
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(p!.port, '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\r\n\r\n')) {
          s.destroy();
          resolve(got);
        }
      });
      s.write(
        'GET http://reviews:9080/x/../admin/ws?a=1 HTTP/1.1\r\nHost: other\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    expect(out).to.match(/^HTTP\/1\.1 101 /);
    expect(v2.seen.map((s) => [s.url, s.headers.host])).to.deep.equal([['/admin/ws?a=1', 'reviews:9080']]);
    const bad = await send('GET /ws HTTP/1.1\r\nHost: a@b\r\nUpgrade: websocket\r\nConnection: Upgrade');
    expect(bad.status).to.equal(400);
    expect(bad.headers).to.contain('x-weft-response-flags: dpe');
  });

  it('explain (POST :15000/explain) uses the same head rules as the router', async () => {
    await start();
    const ask = (body: object): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const r = http.request(
          { host: '127.0.0.1', port: p!.admin, method: 'POST', path: '/explain' },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
          },
        );
        r.on('error', reject);
        r.end(JSON.stringify(body));
      });
    const e = await ask({ authority: 'reviews:9080', path: '/x/../admin' });
    expect(e.request).to.deep.include({ path: '/x/../admin', normalized: '/admin' });
    expect((e.route as { index: number }).index).to.equal(0);
    const bad = await ask({ authority: 'reviews:9080', path: '/a%00' });
    expect(bad.outcome).to.match(/^400 DPE: /);
  });
});
