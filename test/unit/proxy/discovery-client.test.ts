/** The discovery client never crashes the sidecar: unreadable inputs are retried, not thrown. */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { DISCOVERY_UPGRADE } from '../../../pkg/discovery/protocol.js';
import { DiscoveryClient } from '../../../proxy/discovery/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import { waitFor } from '../../support/wait.js';

describe('proxy discovery client', () => {
  const cases: [string, { address: string; tokenPath: string; caRootPath: string }, RegExp][] = [
    [
      'a token file that does not exist (yet: the kubelet projects it)',
      { address: '127.0.0.1:1', tokenPath: '/nonexistent/weft-token', caRootPath: '/nonexistent/root.pem' },
      /weft-token/,
    ],
    [
      'an address without a port',
      { address: 'weftd.weft-system.svc', tokenPath: '/nonexistent/t', caRootPath: '/nonexistent/r' },
      /.+/,
    ],
  ];
  for (const [title, paths, problem] of cases) {
    it(`retries with backoff, and says why, on ${title}`, async () => {
      const client = new DiscoveryClient({
        ...paths,
        request: { kind: 'sidecar', namespace: 'ns', pod: 'p' },
        log: createLogger('test', { silent: true }),
        onConfig: () => Promise.resolve(),
        backoff: { baseMs: 5, maxMs: 10, jitter: 0 },
      });
      const running = client.run();
      try {
        await waitFor(
          'two failed attempts',
          () => (client as unknown as { failures: number }).failures >= 2,
          10_000,
          5,
        );
        expect(client.connected).to.equal(false);
        expect(client.lastProblem ?? '').to.match(problem);
      } finally {
        client.stop();
        await running; // run() resolves once stopped: it never rejected
      }
    });
  }

  it('asks for plain streams after a 101 to another protocol (something in between speaks upgrades)', async () => {
    const now = new Date();
    const ca = createCA({ commonName: 'test', ttlMs: 3600_000, now });
    const leaf = issueServing(ca, { commonName: 'weftd', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
    const dir = mkdtempSync(join(tmpdir(), 'client-101-'));
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'tok'), 'tok');
    const asked: string[] = [];
    const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      asked.push(`plain ${req.headers.upgrade ?? '-'}`);
      res.writeHead(401).end('{"code":"WEFT_UNAUTHENTICATED","message":"stop here"}');
    });
    server.on('upgrade', (req, socket) => {
      asked.push(`upgrade ${req.headers.upgrade}`);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = new DiscoveryClient({
      address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      caRootPath: join(dir, 'ca.crt'),
      tokenPath: join(dir, 'tok'),
      request: { kind: 'sidecar', namespace: 'ns', pod: 'p' },
      log: createLogger('test', { silent: true }),
      onConfig: () => Promise.resolve(),
      backoff: { baseMs: 5, maxMs: 10, jitter: 0 },
    });
    const running = client.run();
    try {
      await waitFor('a plain request after the upgrade', () => (asked.length >= 3 ? true : null), 10_000, 5);
      expect(asked.slice(0, 3)).to.deep.equal([`upgrade ${DISCOVERY_UPGRADE}`, 'plain -', 'plain -']);
    } finally {
      client.stop();
      await running;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
