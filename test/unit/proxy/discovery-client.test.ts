/** The discovery client never crashes the sidecar: unreadable inputs are retried, not thrown. */
import { expect } from 'chai';
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
});
