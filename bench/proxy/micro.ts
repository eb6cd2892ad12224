/**
 * Micro-benchmarks of the proxy's per-request building blocks, to justify design choices with
 * numbers (ADR 0002): RE2 (re2js) vs the proven-safe JS RegExp path; prom-client vs the
 * hand-rolled metric groups; route selection through a VirtualService; the whole compiled
 * lookup (host → rule → destination). ns per operation, median of 5 rounds.
 *
 *   npx tsx bench/proxy/micro.ts
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { compileFullMatch } from '../../proxy/compile/regex.js';
import { MetricsRegistry } from '../../proxy/telemetry/metrics.js';
import {
  compileConfig,
  findVHost,
  pickDest,
  type CompiledHttpListener,
} from '../../proxy/compile/compile.js';
import { selectRoute } from '../../proxy/router/exchange.js';
import type { RequestView } from '../../proxy/compile/match.js';
import { hostValues, parseRequestHead } from '../../proxy/router/target.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';

function bench(name: string, n: number, fn: (i: number) => unknown): number {
  const rounds: number[] = [];
  let sink: unknown;
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn(i);
    rounds.push(Number(process.hrtime.bigint() - t) / n);
  }
  void sink;
  rounds.sort((a, b) => a - b);
  const ns = rounds[2]!;
  process.stdout.write(`${name.padEnd(58)} ${ns.toFixed(0).padStart(7)} ns/op\n`);
  return ns;
}

const N = 200_000;
const results: Record<string, number> = {};

// --- regex -------------------------------------------------------------------------------
for (const [p, input] of [
  ['/api/v[0-9]+/users/.*', '/api/v2/users/12345/profile'],
  ['(?i).*chrome.*', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0'],
] as const) {
  const js = compileFullMatch(p);
  const re2 = compileFullMatch(p, { forceEngine: 're2' });
  results[`regex ${p} js`] = bench(`regex ${p} (${js.engine})`, N, () => js.test(input));
  results[`regex ${p} re2`] = bench(`regex ${p} (re2js)`, N, () => re2.test(input));
}

// --- metrics -------------------------------------------------------------------------------
const reg = new Registry();
const labelNames = [
  'reporter',
  'source_workload',
  'destination_service',
  'destination_version',
  'response_code',
  'response_flags',
];
const promCount = new Counter({ name: 'istio_requests_total', help: 'x', labelNames, registers: [reg] });
const promHist = new Histogram({
  name: 'istio_request_duration_milliseconds',
  help: 'x',
  labelNames,
  buckets: [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  registers: [reg],
});
const labels = {
  reporter: 'source',
  source_workload: 'app',
  destination_service: 'reviews.default.svc.cluster.local',
  destination_version: 'v1',
  response_code: '200',
  response_flags: '-',
};
results['metrics prom-client'] = bench('metrics: prom-client counter + histogram (+ bytes x2)', N, (i) => {
  promCount.inc(labels);
  promHist.observe(labels, i % 7);
  promHist.observe(labels, 1024);
  promHist.observe(labels, 1024);
});
const group = new MetricsRegistry({ workload: 'app', namespace: 'ns', app: 'app', version: 'v1' }).group({
  destinationService: 'reviews.default.svc.cluster.local',
  destinationServiceName: 'reviews',
  destinationServiceNamespace: 'default',
  destinationVersion: 'v1',
});
results['metrics weft'] = bench('metrics: weft MetricGroup.record (count, 3 histograms)', N, (i) =>
  group.record(200, '-', i % 7, 0, 1024),
);

// --- routing -------------------------------------------------------------------------------
function config(rules: number): ProxyConfig {
  const routes: ProxyConfig['listeners'][number] extends infer L
    ? L extends { virtualHosts: (infer V)[] }
      ? V extends { routes: infer R }
        ? R
        : never
      : never
    : never = [];
  for (let i = 0; i < rules; i++) {
    routes.push({
      match: [{ headers: { 'end-user': { exact: `user-${i}` } } }, { uri: { prefix: `/api/v${i}/` } }],
      action: { type: 'route', destinations: [{ cluster: 'outbound|9080|v2|reviews', weight: 1 }] },
    });
  }
  routes.push({
    action: {
      type: 'route',
      destinations: [
        { cluster: 'outbound|9080|v1|reviews', weight: 90 },
        { cluster: 'outbound|9080|v2|reviews', weight: 10 },
      ],
    },
  });
  const vhosts = [{ name: 'reviews', domains: ['reviews', 'reviews:9080'], routes }];
  for (let i = 0; i < 1000; i++)
    vhosts.push({
      name: `svc-${i}`,
      domains: [`svc-${i}`, `svc-${i}:8080`],
      routes: [routes[routes.length - 1]!],
    });
  return {
    apiVersion: 'proxy.weft.dev/v1',
    kind: 'ProxyConfig',
    version: 'micro',
    listeners: [{ name: 'l', protocol: 'HTTP', port: 0, virtualHosts: vhosts }],
    clusters: [
      { name: 'outbound|9080|v1|reviews', endpoints: [{ address: '127.0.0.1', port: 1 }] },
      { name: 'outbound|9080|v2|reviews', endpoints: [{ address: '127.0.0.1', port: 2 }] },
    ],
  };
}
const view: RequestView = {
  method: 'GET',
  path: '/productpage',
  query: '',
  target: '/productpage',
  authority: 'reviews:9080',
  scheme: 'http',
  port: 9080,
  headers: { 'end-user': 'nobody', 'user-agent': 'x' },
};
for (const rules of [0, 3, 20]) {
  const { config: c } = compileConfig(config(rules), {
    metrics: new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }),
  });
  const l = c.listeners[0] as CompiledHttpListener;
  results[`route ${rules}`] = bench(
    `host lookup + ${rules} non-matching rules (2 blocks each) + weighted pick`,
    N,
    (i) => {
      const vh = findVHost(l, view.authority)!;
      const sel = selectRoute(vh, view)!;
      return pickDest(sel.route, (i % 100) / 100);
    },
  );
}

// --- request head (target form, Host, path normalization), once per request -----------------
const rawHeaders = ['Host', 'reviews:9080', 'User-Agent', 'curl/8', 'Accept', '*/*', 'X-Request-Id', 'abc'];
for (const [label, url, mode] of [
  ['canonical path, BASE', '/api/v1/reviews/0?x=1', 'BASE'],
  ['canonical path with dots in names, BASE', '/static/app.v2.min.js', 'BASE'],
  ['dot segments + escapes, BASE', '/api/./v1/../v1/%72eviews/0?x=1', 'BASE'],
  [
    'dot segments + escapes, DECODE_AND_MERGE_SLASHES',
    '/api//v1/..%2Fv1/%72eviews/0?x=1',
    'DECODE_AND_MERGE_SLASHES',
  ],
  ['absolute-form, BASE', 'http://reviews:9080/api/v1/reviews/0?x=1', 'BASE'],
  ['canonical path, NONE', '/api/v1/reviews/0?x=1', 'NONE'],
] as const)
  results[`head ${label}`] = bench(`request head: ${label}`, N, () =>
    parseRequestHead('GET', url, hostValues(rawHeaders), mode),
  );

process.stdout.write(
  `\nre2js / JS RegExp: ${(results['regex /api/v[0-9]+/users/.* re2']! / results['regex /api/v[0-9]+/users/.* js']!).toFixed(1)}×; ` +
    `prom-client / weft metrics: ${(results['metrics prom-client']! / results['metrics weft']!).toFixed(1)}×\n`,
);
