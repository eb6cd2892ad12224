/**
 * Property suite for the HTTP/1 front (issue #12, "keep it closed"): random sequences of requests
 * on one client connection, some with Upgrade headers of random tokens, some with bodies, some
 * pipelined, through a real proxy to a recording upstream that answers 101 (path /accept) or an
 * ordinary 200. A model says what each request must get; the properties:
 *  - every request the upstream receives as HTTP was routed: the deny route (/admin, a 403
 *    abort) is never reached, and each reached request is one the client sent and the model
 *    forwards, exactly once, parsed by a strict (llhttp) server;
 *  - the client gets the model's answer for every request, in order;
 *  - a tunnel exists only after a 101 to an allowed token, and then carries exactly the bytes the
 *    client sent after the upgrade request (never parsed as requests by anyone);
 *  - a token that is not allowed never reaches the upstream (no Upgrade, no HTTP2-Settings).
 * Seeded and bounded: a fixed seed, 150 sequences of at most 6 requests.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import http, { type IncomingMessage } from 'node:http';
import type net from 'node:net';
import { configFromText } from '../../../proxy/config/load.js';
import { RawConn, reviewsEntry, startProxy, vs, type Started, type Upstream } from './helpers.js';
import type { HttpListener } from '../../../pkg/proxyconfig/types.js';

const ALLOWED = ['websocket', 'made-up'];
const TOKENS = ['websocket', 'WebSocket', 'made-up', 'h2c', 'other', 'websocket, h2c'] as const;
const PATHS = ['/ok', '/admin', '/accept', '/refuse'] as const;

interface Step {
  path: (typeof PATHS)[number];
  upgrade: (typeof TOKENS)[number] | null;
  /** `Connection: Upgrade` (node:http and the proxy treat it as an upgrade only with Upgrade). */
  connectionUpgrade: boolean;
  body: boolean;
  /** Written in the same write as the next request. */
  pipelined: boolean;
}

/** One in four: true. */
const sometimes = fc.integer({ min: 0, max: 3 }).map((n) => n === 0);

const step: fc.Arbitrary<Step> = fc.record({
  path: fc.constantFrom(...PATHS),
  upgrade: fc.option(fc.constantFrom(...TOKENS), { freq: 4 }), // null one time in four
  connectionUpgrade: sometimes.map((b) => !b),
  body: sometimes,
  pipelined: fc.boolean(),
});

type Expect =
  | { kind: 'denied'; close: boolean }
  | { kind: 'forwarded'; offered: boolean; close: boolean }
  | { kind: 'tunnel' };

/** What the proxy must do with `s` (on a connection still speaking HTTP). */
function model(s: Step): Expect {
  const flagged = s.upgrade !== null && s.connectionUpgrade; // what node:http calls an upgrade
  // an upgrade with a body stays plain and closes the connection (upgrade.ts: declinedUpgrade)
  const close = flagged && s.body;
  if (s.path === '/admin') return { kind: 'denied', close };
  const allowed = s.upgrade !== null && ALLOWED.includes(s.upgrade.toLowerCase());
  if (flagged && allowed && !s.body && s.path === '/accept') return { kind: 'tunnel' };
  return { kind: 'forwarded', offered: flagged && allowed && !s.body, close };
}

function requestBytes(s: Step, id: number): string {
  const h: string[] = ['Host: reviews:9080', `x-id: ${id}`];
  if (s.upgrade === 'h2c')
    h.push(
      `Connection: ${s.connectionUpgrade ? 'Upgrade, ' : ''}HTTP2-Settings`,
      'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
    );
  else if (s.connectionUpgrade) h.push('Connection: Upgrade');
  if (s.upgrade !== null) h.push(`Upgrade: ${s.upgrade}`);
  if (s.body) h.push('Content-Length: 5');
  return `${s.body ? 'POST' : 'GET'} ${s.path} HTTP/1.1\r\n${h.join('\r\n')}\r\n\r\n${s.body ? 'hello' : ''}`;
}

interface Seen {
  id: string;
  url: string;
  upgrade: string | undefined;
  http2Settings: string | undefined;
  body: string;
  tunnel: boolean;
}

describe('proxy HTTP/1 front, property: upgrades and pipelining never bypass routing', function () {
  this.timeout(60_000);
  const seen: Seen[] = [];
  const tunnelled: string[] = [];
  let badRequests = 0;
  let server: http.Server;
  const sockets = new Set<net.Socket>();
  let p: Started;

  before(async () => {
    server = http.createServer(
      { shouldUpgradeCallback: (req: IncomingMessage) => (req.url ?? '').startsWith('/accept') },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.push(record(req, Buffer.concat(chunks).toString(), false));
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok:${String(req.headers['x-id'])}`);
        });
      },
    );
    server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      seen.push(record(req, '', true));
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`,
      );
      const echo = (d: Buffer): void => {
        tunnelled.push(d.toString());
        socket.write(d);
      };
      if (head.length > 0) echo(head);
      socket.on('data', echo);
      socket.on('error', () => undefined);
    });
    server.on('clientError', (_e, socket) => {
      badRequests++;
      socket.destroy();
    });
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const cfg = configFromText(
      reviewsEntry([{ name: 'v1', port } as Upstream]) +
        vs(`
  - match: [{uri: {prefix: /admin}}]
    fault: {abort: {httpStatus: 403, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - route: [{destination: {host: reviews, subset: v1}}]`),
      'test.yaml',
    ).config;
    (cfg.listeners[0] as HttpListener).upgradeTypes = ALLOWED;
    p = await startProxy(cfg);
  });
  after(async () => {
    await p.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  let nextId = 1;

  it('every upstream request was routed, exactly once; tunnels only after a 101 to an allowed token', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        seen.length = 0;
        tunnelled.length = 0;
        const ids = steps.map(() => nextId++);
        const conn = await RawConn.open(p.port);
        try {
          await runSequence(conn, steps, ids);
        } finally {
          conn.destroy();
        }
        expect(badRequests, 'requests the upstream could not parse').to.equal(0);
      }),
      { seed: 1212, numRuns: 150 },
    );
  });

  /** Drives one connection through `steps` and checks every answer against the model. */
  async function runSequence(conn: RawConn, steps: Step[], ids: number[]): Promise<void> {
    const forwarded: number[] = [];
    let written = 0;
    let tunnelAt = -1;
    for (let i = 0; i < steps.length && tunnelAt < 0; i++) {
      if (i >= written) {
        // write this request and every one pipelined behind it in one write
        let bytes = '';
        do bytes += requestBytes(steps[written]!, ids[written]!);
        while (steps[written++]!.pipelined && written < steps.length);
        conn.write(bytes);
      }
      const s = steps[i]!;
      const want = model(s);
      const got = await conn.response();
      const where = `request ${i} ${JSON.stringify(s)}`;
      expect(got, `${where}: no response`).to.not.equal(null);
      if (want.kind === 'tunnel') {
        expect(got!.status, where).to.equal(101);
        tunnelAt = i;
        forwarded.push(ids[i]!);
        break;
      }
      if (want.kind === 'denied')
        expect([got!.status, got!.headers['x-weft-response-flags']], where).to.deep.equal([403, 'FI']);
      else {
        expect([got!.status, got!.body], where).to.deep.equal([200, `ok:${ids[i]}`]);
        forwarded.push(ids[i]!);
        const at = seen.find((x) => x.id === String(ids[i]));
        expect(at?.upgrade !== undefined, `${where}: upgrade offered upstream`).to.equal(want.offered);
      }
      if (want.close) {
        expect(got!.headers.connection, where).to.equal('close');
        expect(await conn.closedByPeer(), `${where}: closed after`).to.equal(true);
        break;
      }
    }
    if (tunnelAt >= 0) {
      // everything after the upgrade request is tunnel data, echoed, never a request
      let rest = '';
      for (let j = tunnelAt + 1; j < steps.length; j++) rest += requestBytes(steps[j]!, ids[j]!);
      const unwritten = steps.slice(written).reduce((a, s, k) => a + requestBytes(s, ids[written + k]!), '');
      if (unwritten !== '') conn.write(unwritten);
      if (rest !== '') {
        expect(await conn.until((x) => x.length >= rest.length)).to.equal(rest);
        expect(tunnelled.join('')).to.equal(rest);
      }
    }
    // the upstream saw exactly the forwarded requests, once each, and never the deny route
    expect(seen.map((x) => Number(x.id)).sort((a, b) => a - b)).to.deep.equal(
      [...forwarded].sort((a, b) => a - b),
    );
    for (const x of seen) {
      expect(x.url).to.not.match(/^\/admin/);
      expect(x.http2Settings, 'HTTP2-Settings forwarded').to.equal(undefined);
      if (x.upgrade !== undefined) expect(ALLOWED).to.include(x.upgrade.toLowerCase());
      expect(x.tunnel).to.equal(x.url === '/accept' && x.upgrade !== undefined);
    }
  }
});

function record(req: IncomingMessage, body: string, tunnel: boolean): Seen {
  return {
    id: String(req.headers['x-id']),
    url: req.url ?? '',
    upgrade: req.headers.upgrade,
    http2Settings: req.headers['http2-settings'] as string | undefined,
    body,
    tunnel,
  };
}
