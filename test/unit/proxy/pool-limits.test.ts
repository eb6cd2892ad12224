/**
 * The upstream pool limits a DestinationRule's connectionPool resolves to, with Istio's defaults
 * (networking/v1/destination_rule.proto) where a field is absent.
 */
import { expect } from 'chai';
import { resolveLimits } from '../../../proxy/upstream/cluster.js';
import type { ConnectionPool } from '../../../pkg/proxyconfig/types.js';

const UNLIMITED = 2 ** 32 - 1;
const HOUR = 3_600_000;

describe('proxy upstream: connection pool limits', () => {
  const cases: {
    name: string;
    cp: ConnectionPool | undefined;
    want: Partial<ReturnType<typeof resolveLimits>>;
  }[] = [
    {
      name: 'no connectionPool: Istio defaults (unlimited, 10 s connect, 1 h idle)',
      cp: undefined,
      want: {
        maxConnections: UNLIMITED,
        maxPending: UNLIMITED,
        maxRequests: UNLIMITED,
        maxRetries: UNLIMITED,
        connectTimeoutMs: 10_000,
        idleTimeoutMs: HOUR,
        maxRequestsPerConnection: 0,
      },
    },
    {
      name: 'idleTimeout 30s is kept (it used to be cut to 4 s)',
      cp: { idleTimeoutMs: 30_000 },
      want: { idleTimeoutMs: 30_000 },
    },
    { name: 'idleTimeout 2h is kept', cp: { idleTimeoutMs: 2 * HOUR }, want: { idleTimeoutMs: 2 * HOUR } },
    { name: 'idleTimeout 100ms is kept', cp: { idleTimeoutMs: 100 }, want: { idleTimeoutMs: 100 } },
    { name: 'maxConnections 1', cp: { maxConnections: 1 }, want: { maxConnections: 1, idleTimeoutMs: HOUR } },
    {
      name: 'pending, requests, retries, per-connection',
      cp: { http1MaxPendingRequests: 5, http2MaxRequests: 7, maxRetries: 2, maxRequestsPerConnection: 1 },
      want: { maxPending: 5, maxRequests: 7, maxRetries: 2, maxRequestsPerConnection: 1 },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const got = resolveLimits(c.cp);
      for (const [k, v] of Object.entries(c.want)) expect(got[k as keyof typeof got], k).to.equal(v);
    });
});
