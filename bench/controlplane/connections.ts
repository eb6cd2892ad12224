/**
 * TLS connections and time for N sequential API calls (issue #19, ADR 0022), against a
 * stand-in API server on loopback (real TLS, a test CA from pkg/certs, a small JSON answer):
 *   - weft: KubeClient with weft's access object (one keep-alive pool per client),
 *   - baseline: the code path before ADR 0022, client-node's applySecurityAuthentication and
 *     fetch with the undici dispatcher it builds for every request.
 * Both in the same process and run, interleaved; medians of REPS runs.
 *   npx tsx bench/controlplane/connections.ts      REQUESTS=200 REPS=5
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createCA, issueServing } from '../../pkg/certs/index.js';
import { KubeClient } from '../../pkg/kube/client.js';

const REQUESTS = Number(process.env.REQUESTS ?? 200);
const REPS = Number(process.env.REPS ?? 5);

async function main(): Promise<void> {
  const now = new Date();
  const ca = createCA({ commonName: 'bench-ca', ttlMs: 3600_000, now });
  const leaf = issueServing(ca, { commonName: 'apiserver', dnsNames: ['127.0.0.1'], ttlMs: 3600_000, now });
  let connections = 0;
  const answer = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } });
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(answer) });
    res.end(answer);
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'c', server: url, caData: Buffer.from(ca.certPem).toString('base64'), skipTLSVerify: false },
    ],
    users: [{ name: 'u', token: 'bench' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const path = '/api/v1/namespaces/ns/pods/p';
  const weft = new KubeClient(kc);
  const modes: Record<string, () => Promise<unknown>> = {
    weft: () => weft.request('GET', path),
    baseline: async () => {
      const ctx = new RequestContext(url + path, HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      const res = await fetch(url + path, {
        headers: { ...ctx.getHeaders(), Accept: 'application/json' },
        dispatcher: ctx.getDispatcher(),
      } as unknown as RequestInit);
      return res.json();
    },
  };
  const results: Record<string, { connections: number[]; msPerRequest: number[] }> = {
    weft: { connections: [], msPerRequest: [] },
    baseline: { connections: [], msPerRequest: [] },
  };
  for (let rep = 0; rep < REPS; rep++) {
    for (const [mode, call] of Object.entries(modes)) {
      await call(); // warm: the first request of a run is a handshake in both modes
      connections = 0;
      const t0 = performance.now();
      for (let i = 0; i < REQUESTS; i++) await call();
      results[mode]!.msPerRequest.push((performance.now() - t0) / REQUESTS);
      results[mode]!.connections.push(connections);
    }
  }
  weft.close();
  server.closeAllConnections();
  server.close();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const report = Object.fromEntries(
    Object.entries(results).map(([m, r]) => [
      m,
      { connections: median(r.connections), msPerRequest: median(r.msPerRequest) },
    ]),
  );
  console.log(`${REQUESTS} sequential GETs, median of ${REPS} interleaved runs (node ${process.version})`);
  for (const [m, r] of Object.entries(report))
    console.log(
      `  ${m.padEnd(9)} new TLS connections ${String(r.connections).padStart(4)}   ${r.msPerRequest.toFixed(3)} ms/request`,
    );
  console.log(
    `  weft/baseline: ${(report.weft!.msPerRequest / report.baseline!.msPerRequest).toFixed(2)}x time per request, ` +
      `${report.weft!.connections} vs ${report.baseline!.connections} handshakes`,
  );
  writeFileSync(
    join(import.meta.dirname, 'last-run-connections.json'),
    `${JSON.stringify(report, null, 2)}\n`,
  );
}

await main();
