/**
 * The drain (issue #12, item 11): during SIGTERM's drain period the proxy keeps accepting and
 * answers with `Connection: close`, including connections whose first bytes arrive well after
 * accept; keep-alive connections idle after a response are closed; a connection that never
 * sends anything is closed when the drain period ends. TCP listeners accept during it too.
 */
import { expect } from 'chai';
import net from 'node:net';
import {
  head,
  RawConn,
  request,
  reviewsEntry,
  sleep,
  startProxy,
  upstream,
  type Started,
  type Upstream,
} from './helpers.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

describe('proxy drain: keeps accepting, answers with Connection: close', function () {
  this.timeout(30_000);
  let v1: Upstream;
  let p: Started | null = null;
  const conns: RawConn[] = [];
  before(async () => {
    v1 = await upstream('v1');
  });
  afterEach(async () => {
    for (const c of conns.splice(0)) c.destroy();
    await p?.stop();
    p = null;
  });
  after(() => v1.close());

  const open = async (): Promise<RawConn> => {
    const c = await RawConn.open(p!.port);
    conns.push(c);
    return c;
  };

  it('SIGTERM: connections whose request arrives 100+ ms after accept are answered (Connection: close)', async () => {
    p = await startProxy(reviewsEntry([v1]), { drainMs: 60_000 });
    const late = await Promise.all([open(), open(), open()]);
    const stopping = p.proxy.shutdown();
    await sleep(150); // several turns of the drain loop
    const fresh = await open(); // accepted mid-drain
    await sleep(100);
    for (const c of [...late, fresh]) c.write(head('GET', '/'));
    for (const c of [...late, fresh]) {
      const r = await c.response();
      expect([r?.status, r?.body, r?.headers.connection]).to.deep.equal([200, 'v1', 'close']);
      expect(await c.closedByPeer()).to.equal(true);
    }
    await stopping; // no request in flight, no connection open: done long before 60 s
    p = null;
  });

  it('SIGTERM: a keep-alive connection idle after its response is closed; a silent one at the end', async () => {
    p = await startProxy(reviewsEntry([v1]), { drainMs: 1500 });
    const kept = await open();
    kept.write(head('GET', '/'));
    expect((await kept.response())?.headers.connection).to.equal('keep-alive');
    const slow = await open();
    const silent = await open();
    const stopping = p.proxy.shutdown();
    expect(await kept.closedByPeer()).to.equal(true);
    await sleep(150); // several turns of the drain loop
    slow.write(head('GET', '/'));
    expect((await slow.response())?.headers.connection).to.equal('close');
    expect(silent.closed).to.equal(false); // still waiting for its request
    await stopping;
    p = null;
    expect(await silent.closedByPeer()).to.equal(true); // the drain period is over
  });

  it("SIGTERM: a gap in a steady client's traffic does not end the drain (quiet period)", async () => {
    p = await startProxy(reviewsEntry([v1]), { drainMs: 60_000, drainQuietMs: 2000 });
    const first = await open();
    const stopping = p.proxy.shutdown();
    first.write(head('GET', '/'));
    expect((await first.response())?.headers.connection).to.equal('close');
    expect(await first.closedByPeer()).to.equal(true); // nothing open, nothing in flight now
    await sleep(200);
    const next = await open(); // the client's next call, on a new connection
    next.write(head('GET', '/'));
    expect((await next.response())?.status).to.equal(200);
    await stopping; // quiet for 2 s after it: done
    p = null;
  });

  it('POST /drain stops accepting but answers a connection accepted before it', async () => {
    p = await startProxy(reviewsEntry([v1]), { drainMs: 60_000 });
    const early = await open();
    expect((await request(p.admin, { path: '/drain', method: 'POST' })).status).to.equal(200);
    let refused = false;
    await request(p.port, { agent: false }).catch(() => (refused = true));
    expect(refused).to.equal(true);
    early.write(head('GET', '/'));
    const r = await early.response();
    expect([r?.status, r?.headers.connection]).to.deep.equal([200, 'close']);
  });

  it('SIGTERM: a TCP listener accepts during the drain too', async () => {
    const echo = net.createServer((c) => c.on('data', (d: Buffer) => c.write(d)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    try {
      const cfg: ProxyConfig = {
        apiVersion: 'proxy.weft.dev/v1',
        kind: 'ProxyConfig',
        version: 'tcp-1',
        listeners: [{ name: 'db', protocol: 'TCP', address: '127.0.0.1', port: 0, cluster: 'db' }],
        clusters: [
          {
            name: 'db',
            service: 'db',
            endpoints: [{ address: '127.0.0.1', port: (echo.address() as net.AddressInfo).port }],
          },
        ],
      };
      p = await startProxy(cfg, { listen: undefined as never, drainMs: 60_000 });
      const port = p.proxy.ports().db!;
      const say = async (s: net.Socket, text: string): Promise<string> => {
        s.write(text);
        return new Promise<string>((r) => {
          s.once('data', (d: Buffer) => r(d.toString()));
          s.once('close', () => r('closed'));
        });
      };
      const connect = (): net.Socket => net.connect(port, '127.0.0.1').on('error', () => undefined);
      const before = connect(); // open across the start of the drain: the drain waits for it
      expect(await say(before, 'before')).to.equal('before');
      const stopping = p.proxy.shutdown();
      const during = connect();
      expect(await say(during, 'during drain')).to.equal('during drain');
      before.destroy();
      during.destroy();
      await stopping;
      p = null;
    } finally {
      echo.close();
    }
  });
});
