/**
 * weftd's cost per push as the mesh grows, measured on the code weftd runs (no cluster):
 *   - Services + EndpointSlices → ServiceRecords (pkg/translate servicesFromKube),
 *   - the sidecar translation, done once per registry generation (ConfigGenerator),
 *   - the per-proxy part: version + the NDJSON line, spliced around the shared body,
 *   - the line's size,
 * and the workload CA's cost per CSR (pkg/certs signWorkloadCsr). Synthetic mesh: every Service
 * has 2 ports and 3 ready endpoints, 1 in 5 has a VirtualService. Medians of REPS runs; writes
 * bench/weftd/last-run.json.
 *
 * Sidecar scoping (issue #19): at SCOPE_SERVICES (default 1,000) services in 20 namespaces, the
 * config bytes a sidecar is sent and the translation time with a Sidecar limiting egress to the
 * proxy's namespace + 5 hosts elsewhere, against no Sidecar, interleaved in the same run.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ConfigGenerator } from '../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../controlplane/registry.js';
import type { Sidecar, VirtualService } from '../../pkg/api/index.js';
import { createCA, type KeyPairPem } from '../../pkg/certs/index.js';
import { signWorkloadCsr, spiffeId } from '../../pkg/certs/workload.js';
import { createLogger } from '../../pkg/log/index.js';
import {
  servicesFromKube,
  type KubeEndpointSlice,
  type KubePod,
  type KubeService,
} from '../../pkg/translate/kube.js';
import { csrPem } from '../../test/integration/controlplane/fixtures.js';

/**
 * What this bench measures is a proxy's whole scope (the full push and what a Sidecar saves);
 * on-demand hosts, on by default since ADR 0023's amendment, have their own bench (ondemand.ts).
 */
const WHOLE_SCOPE = { ...DEFAULT_MESH, onDemandHosts: false };

const SIZES = (process.env.SIZES ?? '100,1000,5000').split(',').map(Number);
const REPS = Number(process.env.REPS ?? 5);
const CSRS = Number(process.env.CSRS ?? 50);
const SCOPE_SERVICES = Number(process.env.SCOPE_SERVICES ?? 1000);
const log = createLogger('bench', { silent: true });

function mesh(n: number): {
  services: KubeService[];
  slices: KubeEndpointSlice[];
  pods: KubePod[];
  vss: VirtualService[];
} {
  const services: KubeService[] = [];
  const slices: KubeEndpointSlice[] = [];
  const pods: KubePod[] = [];
  const vss: VirtualService[] = [];
  for (let i = 0; i < n; i++) {
    const ns = `ns${i % 20}`;
    const name = `svc${i}`;
    services.push({
      metadata: { name, namespace: ns },
      spec: {
        clusterIP: `10.96.${i >> 8}.${i & 255}`,
        selector: { app: name },
        ports: [
          { name: 'http', port: 80, targetPort: 8080 },
          { name: 'grpc', port: 9090, targetPort: 9090 },
        ],
      },
    });
    const endpoints = [0, 1, 2].map((j) => {
      pods.push({
        metadata: { name: `${name}-${j}`, namespace: ns, labels: { app: name, version: `v${j % 2}` } },
      });
      return {
        addresses: [`10.${(i >> 8) & 255}.${i & 255}.${j + 1}`],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', name: `${name}-${j}`, namespace: ns },
      };
    });
    slices.push({
      metadata: { name: `${name}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints,
      ports: [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { name: 'grpc', port: 9090, protocol: 'TCP' },
      ],
    });
    if (i % 5 === 0)
      vss.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace: ns },
        spec: {
          hosts: [name],
          http: [
            {
              match: [{ headers: { 'x-canary': { exact: 'true' } } }],
              route: [{ destination: { host: name } }],
            },
            { route: [{ destination: { host: name }, weight: 100 }], timeout: '5s' },
          ],
        },
      } as VirtualService);
  }
  return { services, slices, pods, vss };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = (fn: () => void): number => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

interface SizeResult {
  services: number;
  recordsMs: number;
  translateMs: number;
  perProxyMs: number;
  lineBytes: number;
}

function measureSize(n: number): SizeResult {
  const m = mesh(n);
  const pod: PodInfo = { name: 'client-1', namespace: 'ns0', labels: { app: 'client' } };
  const records: number[] = [];
  const translations: number[] = [];
  const perProxy: number[] = [];
  let lineBytes = 0;
  for (let r = 0; r < REPS; r++) {
    let services: ReturnType<typeof servicesFromKube> = [];
    records.push(time(() => (services = servicesFromKube(m.services, m.slices, m.pods))));
    const snapshot: Snapshot = {
      generation: r + 1,
      services,
      kubeServices: m.services,
      virtualServices: m.vss,
      destinationRules: [],
      serviceEntries: [],
      gateways: [],
      peerAuthentications: [],
    };
    const gen = new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: WHOLE_SCOPE, log });
    translations.push(time(() => gen.forProxy(snapshot, 'sidecar', pod)));
    // The per-proxy part of a push: 200 other pods of the same generation get their line.
    const pods = 200;
    const t = time(() => {
      for (let i = 0; i < pods; i++)
        lineBytes = gen.forProxy(snapshot, 'sidecar', { ...pod, name: `client-${i}` }).encode().length;
    });
    perProxy.push(t / pods);
  }
  return {
    services: n,
    recordsMs: median(records),
    translateMs: median(translations),
    perProxyMs: median(perProxy),
    lineBytes,
  };
}

interface ScopeVariant {
  translateMs: number;
  lineBytes: number;
  hosts: number;
}

/** No Sidecar vs a namespace Sidecar (`./*` + 5 hosts), interleaved rep by rep. */
function measureScope(n: number): { services: number; none: ScopeVariant; scoped: ScopeVariant } {
  const m = mesh(n);
  const services = servicesFromKube(m.services, m.slices, m.pods);
  const pod: PodInfo = { name: 'client-1', namespace: 'ns0', labels: { app: 'client' } };
  // svc1..svc5 live in ns1..ns5 (i % 20): five hosts outside the proxy's namespace
  const five = [1, 2, 3, 4, 5].map((i) => `ns${i % 20}/svc${i}.ns${i % 20}.svc.cluster.local`);
  const sidecar: Sidecar = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    metadata: { name: 'default', namespace: 'ns0' },
    spec: { egress: [{ hosts: ['./*', ...five] }] },
  };
  const runs = { none: [] as number[], scoped: [] as number[] };
  const out = {
    none: { translateMs: 0, lineBytes: 0, hosts: 0 },
    scoped: { translateMs: 0, lineBytes: 0, hosts: 0 },
  };
  for (let r = 0; r < REPS; r++) {
    for (const variant of ['none', 'scoped'] as const) {
      const snapshot: Snapshot = {
        generation: r + 1,
        services,
        kubeServices: m.services,
        virtualServices: m.vss,
        destinationRules: [],
        serviceEntries: [],
        gateways: [],
        peerAuthentications: [],
        ...(variant === 'scoped' ? { sidecars: [sidecar] } : {}),
      };
      const gen = new ConfigGenerator({ domainSuffix: 'cluster.local', mesh: WHOLE_SCOPE, log });
      let g: ReturnType<ConfigGenerator['forProxy']> | undefined;
      runs[variant].push(time(() => (g = gen.forProxy(snapshot, 'sidecar', pod))));
      out[variant].lineBytes = g!.encode().length;
      const l = g!.config.listeners[0];
      out[variant].hosts = l?.protocol === 'HTTP' ? l.virtualHosts.length : 0;
    }
  }
  out.none.translateMs = median(runs.none);
  out.scoped.translateMs = median(runs.scoped);
  return { services: n, ...out };
}

function measureCsr(): { csrs: number; meanMs: number } {
  const ca: KeyPairPem = createCA({ commonName: 'bench-root', ttlMs: 24 * 3600_000, now: new Date() });
  const csrs = Array.from({ length: CSRS }, () => csrPem());
  const id = spiffeId('cluster.local', 'ns0', 'client');
  signWorkloadCsr(ca, csrs[0]!, { spiffeId: id, ttlMs: 3600_000, now: new Date() }); // warm-up
  const t = time(() => {
    for (const csr of csrs) signWorkloadCsr(ca, csr, { spiffeId: id, ttlMs: 3600_000, now: new Date() });
  });
  return { csrs: CSRS, meanMs: t / CSRS };
}

const sizes = SIZES.map(measureSize);
const scope = measureScope(SCOPE_SERVICES);
const csr = measureCsr();
const fmt = (ms: number): string => (ms < 1 ? ms.toFixed(3) : ms.toFixed(0));
process.stdout.write(
  `| services (2 ports, 3 endpoints, 1 in 5 with a VirtualService), median of ${REPS} | records ms | sidecar translation ms | per proxy ms | line size |\n|---|---|---|---|---|\n`,
);
for (const s of sizes)
  process.stdout.write(
    `| ${s.services} | ${fmt(s.recordsMs)} | ${fmt(s.translateMs)} | ${fmt(s.perProxyMs)} | ${(s.lineBytes / 1e6).toFixed(2)} MB |\n`,
  );
process.stdout.write(
  `\nSidecar scoping at ${scope.services} services (20 namespaces), interleaved, median of ${REPS}:\n| sidecar config | virtual hosts | translation ms | config bytes per proxy |\n|---|---|---|---|\n`,
);
for (const [label, v] of [
  ['no Sidecar (baseline)', scope.none],
  ['Sidecar ./* + 5 hosts', scope.scoped],
] as const)
  process.stdout.write(`| ${label} | ${v.hosts} | ${fmt(v.translateMs)} | ${v.lineBytes} |\n`);
process.stdout.write(
  `scoped / baseline: bytes ${(scope.scoped.lineBytes / scope.none.lineBytes).toFixed(3)}×, translation ${(scope.scoped.translateMs / scope.none.translateMs).toFixed(3)}×\n`,
);
process.stdout.write(
  `\nworkload CA: ${csr.meanMs.toFixed(1)} ms per CSR (mean of ${csr.csrs} ECDSA P-256 CSRs, RSA-2048 root)\n`,
);
writeFileSync(
  new URL('./last-run.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), reps: REPS, sizes, scope, csr }, null, 2)}\n`,
);
