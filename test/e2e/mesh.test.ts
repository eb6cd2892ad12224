/**
 * weft as pods on the real node, the whole path a user takes (issues #5 and #7):
 *
 *   (a) `kubectl apply --server-side -k config/default`, the sample Mesh, and
 *       `kubectl wait --for=condition=Ready mesh/default` — the operator renders weftd, the
 *       webhook and the gateway; the API server (on the host) calls the webhook through its
 *       Service's ClusterIP (kube-proxy's OUTPUT rules);
 *   (b) a pod in a namespace labelled istio-injection=enabled comes out with weft-init and
 *       weft-proxy and runs (init exits 0, the proxy becomes ready once weftd serves it);
 *   (c) traffic from the meshed client to echo follows the demo's VirtualService (80/20
 *       split measured over a bounded number of requests, header canary to v2);
 *   (c2) the sidecars talk mutual TLS with certificates from weftd's CA; a STRICT
 *       PeerAuthentication refuses a pod without a sidecar and keeps serving the mesh;
 *   (c2b) the echo app sees x-forwarded-client-cert and whole request bodies; a port-level
 *       PERMISSIVE/DISABLE exception under a namespace STRICT; DestinationRule tls DISABLE;
 *   (c4) AuthorizationPolicy and RequestAuthentication on the echo sidecars (issue #14): a
 *       deny-all 403 counted by its policy, an ALLOW by principals (mTLS identity), a JWT
 *       required by requestPrincipals (valid 200, none 403, invalid 401), a dry-run DENY that
 *       only counts;
 *   (c5) the seeds' rate limits (issue #17): Istio's memquota YAML applied as written; ratings
 *       held to ~100 req/s while echo is not limited, reviews → ratings to ~1 req/s, and a
 *       limited answer carries 429, RL and the RateLimit headers;
 *   (c7) global rate limits (issue #17; test/e2e/support/globallimits.ts): the Mesh's
 *       `rateLimits.redis.deploy` runs the operator's weft-redis and restarts weftd with
 *       `--ratelimit-redis`; a memquota (Enforced: Global) and a RateLimit `scope: global` each
 *       hold one budget across three replicas within ±10 %; the Mesh is restored after;
 *   (c3) with the Mesh's workloadCertTTL at 1m, a meshed load pod at 200 req/s across ≥ 3
 *       certificate rotations of its sidecar and of both echo sidecars loses no request
 *       (issue #13; docs/identity-rotation.md);
 *   (c6) protocols (issue #18; test/e2e/support/protocols.ts): gRPC between two sidecars (reply,
 *       error status, grpcStatus fault, metrics), the gateway terminating HTTPS from a
 *       kubernetes.io/tls Secret (HTTP/1.1 and HTTP/2), TLS PASSTHROUGH by SNI, a TCP route;
 *   (d) deleting the Mesh removes everything it made.
 *
 * (b) and (c) use config/samples/demo, what `npm start` deploys. Steps that need weftd or the
 * proxy's sidecar/gateway commands are skipped, with the reason printed, while the loaded image
 * lacks them; everything else checks for real. Needs the weft image on the node
 * (hack/test-e2e.sh builds and loads it) and a cluster with no Mesh of its own (not a running
 * `npm start`).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INVENTORY_LABEL } from '../../pkg/render/labels.js';
import { INIT_CONTAINER, PROXY_CONTAINER } from '../../pkg/inject/ports.js';
import { spawnSync } from 'node:child_process';
import {
  apply,
  clientPod,
  freshNamespace,
  IMAGES,
  kubeconfig,
  kubectl,
  kubectlJson,
  kubectlRun,
  repoRoot,
  waitFor,
  waitForServiceAccount,
  waitPodReady,
  WEFT_IMAGE,
  weftImageLoaded,
} from './support/kube.js';
import { loadPod, loadResult, renewals, type LoadResult } from './support/rotation.js';
import { jwks, makeKey, signJwt } from '../support/jwt.js';
import { protocolSteps } from './support/protocols.js';
import { globalLimitSteps } from './support/globallimits.js';

/** The staged build context of the image hack/images/load.sh last built (what the node runs). */
const imageContext = join(repoRoot, '.local', 'images', 'weft-context');
const MESH_READY_TIMEOUT_S = 240;
const REQUESTS = 100;

/** The parts of weft other work adds, missing from the loaded image (empty: everything is there). */
export function missingPieces(context = imageContext): string[] {
  const missing: string[] = [];
  if (!existsSync(join(context, 'dist/controlplane/main.js')))
    missing.push('weftd (dist/controlplane/main.js) is not in the weft image yet');
  const proxyMain = join(context, 'dist/proxy/main.js');
  const proxy = existsSync(proxyMain) ? readFileSync(proxyMain, 'utf8') : '';
  for (const cmd of ['init', 'sidecar', 'gateway', 'wait'])
    if (!new RegExp(`['"]${cmd}['"]`).test(proxy))
      missing.push(`the proxy has no \`${cmd}\` command in the weft image yet`);
  return missing;
}

function pending(ctx: Mocha.Context, missing: string[]): void {
  if (missing.length === 0) return;
  process.stdout.write(`      pending: ${missing.join('; ')}\n`);
  ctx.skip();
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface PodView {
  metadata: { name: string; namespace?: string };
  spec: { initContainers?: { name: string }[]; containers: { name: string }[] };
  status?: {
    phase?: string;
    conditions?: Condition[];
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}
interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount?: number;
  state?: { terminated?: { exitCode?: number; reason?: string }; waiting?: { reason?: string } };
}

/** Mesh conditions, pods and their states, recent warnings: what a failed wait prints. */
function diagnose(namespaces: string[]): string {
  const out: string[] = [];
  const mesh = kubectlRun(['get', 'mesh', 'default', '-o', 'json']);
  if (mesh.status === 0) {
    const conds = (JSON.parse(mesh.stdout) as { status?: { conditions?: Condition[] } }).status?.conditions;
    for (const c of conds ?? []) out.push(`mesh ${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`);
  } else out.push(`mesh/default: ${mesh.stderr.trim()}`);
  for (const ns of namespaces) {
    const pods = kubectlRun(['get', 'pods', '-n', ns, '-o', 'json']);
    if (pods.status !== 0) continue;
    for (const p of (JSON.parse(pods.stdout) as { items: PodView[] }).items) {
      const states = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map(
        (c) =>
          `${c.name}:${c.ready ? 'ready' : (c.state?.waiting?.reason ?? c.state?.terminated?.reason ?? 'not-ready')}` +
          `${c.restartCount ? `(restarts ${c.restartCount})` : ''}`,
      );
      out.push(`pod ${ns}/${p.metadata.name} ${p.status?.phase ?? '?'} ${states.join(' ')}`);
      if (!(p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')) {
        const logs = kubectlRun(['logs', '-n', ns, p.metadata.name, '--all-containers', '--tail=3']);
        for (const l of `${logs.stdout}${logs.stderr}`.trim().split('\n').slice(-6))
          out.push(`    ${l.slice(0, 240)}`);
      }
    }
  }
  const ev = kubectlRun([
    'get',
    'events',
    '-A',
    '--field-selector',
    'type=Warning',
    '--sort-by=.lastTimestamp',
  ]);
  out.push(...ev.stdout.trim().split('\n').slice(-6));
  return out.join('\n');
}

/** Runs the real weftctl against the node's cluster (through the API server's service proxy). */
function weftctl(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [join(repoRoot, 'bin/weftctl.js'), ...args, '--kubeconfig', kubeconfig],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function meshExists(): boolean {
  return kubectlRun(['get', 'mesh', 'default']).status === 0;
}

/** Counts the versions echo answered with over `n` requests from the demo client (through its sidecar). */
function versionsSeen(n: number, header?: string): Record<string, number> {
  // busybox's `wget -T` segfaults (Debian 1.35 static); busybox `timeout` bounds each request.
  const wget = `timeout 10 wget -qO- ${header ? `--header '${header}' ` : ''}http://echo/version`;
  const script = `for i in $(seq ${n}); do ${wget} || echo failed; done`;
  const out = kubectl(
    ['exec', '-n', 'demo', 'deploy/client', '-c', 'client', '--', 'sh', '-c', script],
    undefined,
    180_000,
  );
  const counts: Record<string, number> = {};
  for (const line of out.split('\n').filter((l) => l !== ''))
    counts[line.trim()] = (counts[line.trim()] ?? 0) + 1;
  return counts;
}

describe('e2e: weft as pods — install, Mesh, injection, traffic, delete', function () {
  this.timeout(MESH_READY_TIMEOUT_S * 1000 + 60_000);
  let missing: string[] = [];
  let installed = false;

  before(function () {
    if (!weftImageLoaded()) {
      process.stdout.write(`      skipped: ${WEFT_IMAGE} is not on the node (hack/images/load.sh weft)\n`);
      this.skip();
    }
    if (meshExists()) {
      process.stdout.write(
        '      skipped: this cluster already runs a Mesh (npm start?); the suite needs its own\n',
      );
      this.skip();
    }
    missing = missingPieces();
  });

  after(function () {
    this.timeout(240_000);
    if (!installed) return;
    // The Mesh first, while the operator runs (its finalizer removes the cluster-scoped
    // children), then the demo and the install itself.
    kubectlRun(['delete', 'mesh', 'default', '--ignore-not-found', '--timeout=90s']);
    kubectlRun(['delete', 'namespace', 'demo', '--ignore-not-found', '--timeout=90s']);
    kubectlRun(
      ['delete', '-k', join(repoRoot, 'config/default'), '--ignore-not-found', '--timeout=120s'],
      undefined,
      150_000,
    );
  });

  describe('(a) install and the sample Mesh', () => {
    it('kubectl apply --server-side -k config/default rolls the operator out (1 replica, leading)', () => {
      installed = true;
      kubectl(['apply', '--server-side', '-k', join(repoRoot, 'config/default')], undefined, 120_000);
      const r = kubectlRun(
        ['-n', 'weft-system', 'rollout', 'status', 'deployment/weft-operator', '--timeout=120s'],
        undefined,
        150_000,
      );
      expect(r.status, `${r.stderr}\n${diagnose(['weft-system'])}`).to.equal(0);
      const lease = kubectlJson<{ spec: { holderIdentity?: string } }>([
        'get',
        'lease',
        '-n',
        'weft-system',
        'weft-operator',
      ]);
      expect(lease.spec.holderIdentity ?? '').to.match(/^weft-operator-/);
    });

    it('the sample Mesh: the operator renders weftd, the webhook and the gateway, with certificates', async () => {
      kubectl(['apply', '-f', join(repoRoot, 'config/samples/mesh.yaml')]);
      // Combined control plane (ADR 0024): the webhook runs in weftd's pods
      const want = ['weftd', 'ingressgateway'];
      await waitFor('weft-system Deployments weftd, ingressgateway', () => {
        const names = kubectlJson<{ items: { metadata: { name: string } }[] }>([
          'get',
          'deployments',
          '-n',
          'weft-system',
          '-l',
          `${INVENTORY_LABEL}=default`,
        ]).items.map((d) => d.metadata.name);
        return want.every((w) => names.includes(w)) ? names : undefined;
      });
      for (const s of ['weft-root-ca', 'weftd-tls', 'weft-webhook-tls'])
        expect(kubectlRun(['get', 'secret', '-n', 'weft-system', s]).status, `secret ${s}`).to.equal(0);
      const cond = await waitFor('mesh CertificatesReady=True', () => {
        const m = kubectlJson<{ status?: { conditions?: Condition[] } }>(['get', 'mesh', 'default']);
        return m.status?.conditions?.find((c) => c.type === 'CertificatesReady' && c.status === 'True');
      });
      expect(cond.reason).to.be.a('string');
    });

    it('the webhook runs in a pod and the API server reaches it through its Service (a bad VirtualService is denied)', async () => {
      const r = kubectlRun(
        ['-n', 'weft-system', 'rollout', 'status', 'deployment/weftd', '--timeout=120s'],
        undefined,
        150_000,
      );
      expect(r.status, `${r.stderr}\n${diagnose(['weft-system'])}`).to.equal(0);
      const bad = readFileSync(join(repoRoot, 'webhook/examples/bad-vs.yaml'), 'utf8').replace(
        'namespace: demo',
        'namespace: default',
      );
      // The Service's endpoints and kube-proxy's rules follow readiness by a moment: retry until
      // the webhook answers, then the answer must be a denial that lists the errors.
      const denied = await waitFor('the validating webhook to deny bad-vs.yaml', () => {
        const a = kubectlRun(['apply', '--dry-run=server', '-f', '-'], bad);
        if (a.status === 0) throw new Error('bad-vs.yaml was accepted');
        return /denied the request/.test(a.stderr) ? a.stderr : undefined;
      });
      expect(denied).to.match(/weft/i);
      expect(denied).to.match(/regex|weight/i);
    });

    it(`kubectl wait --for=condition=Ready mesh/default (≤ ${MESH_READY_TIMEOUT_S} s)`, function () {
      pending(this, missing);
      const r = kubectlRun(
        ['wait', '--for=condition=Ready', 'mesh/default', `--timeout=${MESH_READY_TIMEOUT_S}s`],
        undefined,
        (MESH_READY_TIMEOUT_S + 30) * 1000,
      );
      expect(r.status, `mesh/default not Ready:\n${r.stderr}\n${diagnose(['weft-system'])}`).to.equal(0);
    });
  });

  describe('(b) injection into a labelled namespace (config/samples/demo)', () => {
    it('pods in namespace demo come out with weft-init and weft-proxy', async () => {
      kubectl(['apply', '--server-side', '-k', join(repoRoot, 'config/samples/demo')]);
      const pod = await waitFor(
        'a demo client pod',
        () => kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=client']).items[0],
      );
      const names = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name);
      expect(names).to.include.members([INIT_CONTAINER, PROXY_CONTAINER, 'client']);
      expect(names.indexOf(INIT_CONTAINER), 'weft-init runs first').to.equal(0);
    });

    it('the injected pods run: weft-init exits 0, weft-proxy is ready', async function () {
      pending(this, missing);
      const all = await waitFor(
        '3 ready demo pods (echo-v1, echo-v2, client)',
        () => {
          const pods = kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo']).items;
          const ready = pods.filter((p) =>
            p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          return ready.length === 3 ? ready : undefined;
        },
        180_000,
        1000,
      ).catch((err: unknown) => {
        throw new Error(
          `${err instanceof Error ? err.message : String(err)}\n${diagnose(['demo', 'weft-system'])}`,
        );
      });
      for (const p of all) {
        const init = p.status?.initContainerStatuses?.find((c) => c.name === INIT_CONTAINER);
        expect(init?.state?.terminated?.exitCode, `${p.metadata.name} weft-init`).to.equal(0);
        const proxy = [
          ...(p.status?.initContainerStatuses ?? []),
          ...(p.status?.containerStatuses ?? []),
        ].find((c) => c.name === PROXY_CONTAINER);
        expect(proxy?.ready, `${p.metadata.name} weft-proxy ready`).to.equal(true);
      }
    });
  });

  describe('(c) traffic through the sidecars follows the VirtualService', () => {
    it(`splits ~80/20 between v1 and v2 over ${REQUESTS} requests`, function () {
      pending(this, missing);
      const seen = versionsSeen(REQUESTS);
      expect(seen.failed ?? 0, JSON.stringify(seen)).to.equal(0);
      const v2 = (seen.v2 ?? 0) / REQUESTS;
      process.stdout.write(`      seen: ${JSON.stringify(seen)}\n`);
      // p = 0.2, n = 100: sd 0.04. Without the VirtualService kube-proxy alone gives ~0.5.
      expect((seen.v1 ?? 0) + (seen.v2 ?? 0)).to.equal(REQUESTS);
      expect(v2, JSON.stringify(seen)).to.be.within(0.05, 0.4);
    });

    it('sends every request with x-canary: true to v2', function () {
      pending(this, missing);
      const seen = versionsSeen(20, 'x-canary: true');
      expect(seen, JSON.stringify(seen)).to.deep.equal({ v2: 20 });
    });

    it("the client's proxy counts the requests on /stats/prometheus", function () {
      pending(this, missing);
      const text = kubectl([
        'exec',
        '-n',
        'demo',
        'deploy/client',
        '-c',
        'client',
        '--',
        'wget',
        '-qO-',
        'http://127.0.0.1:15090/stats/prometheus',
      ]);
      const total = text
        .split('\n')
        .filter((l) => l.startsWith('istio_requests_total') && l.includes('echo'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
      expect(total, text.slice(0, 2000)).to.be.at.least(REQUESTS);
    });

    it('weftctl reaches weftd through the API server and explains the route (proxy-status, explain)', function () {
      pending(this, missing);
      const client = kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=client'])
        .items[0]!.metadata.name;
      const status = weftctl(['proxy-status']);
      expect(status.status, status.stderr).to.equal(0);
      const row = status.stdout.split('\n').find((l) => l.startsWith(`${client}.demo `));
      expect(row, status.stdout).to.match(/\bSYNCED\b/);
      const canary = weftctl([
        'explain',
        `${client}.demo`,
        'GET',
        'http://echo/version',
        '-H',
        'x-canary: true',
      ]);
      expect(canary.status, canary.stderr).to.equal(0);
      expect(canary.stdout, canary.stdout)
        .to.match(/canary/)
        .and.to.match(/\bv2\b/);
      const nowhere = weftctl(['explain', `${client}.demo`, 'GET', 'http://nowhere.demo/']);
      expect(nowhere.status, nowhere.stdout).to.equal(1);
      expect(nowhere.stdout).to.match(/NR/);
    });
  });

  describe('(c2) mesh mTLS between the sidecars, and PeerAuthentication', () => {
    let plain: { ns: string; cleanup: () => void } | null = null;
    const echoUrl = 'http://echo.demo/version';
    /** One request from the unmeshed pod: the echo version, or 'refused' when it fails. */
    const fromPlain = (): string => {
      const r = kubectlRun(
        [
          'exec',
          '-n',
          plain!.ns,
          'plain',
          '--',
          'sh',
          '-c',
          `timeout 10 wget -qO- ${echoUrl} || echo refused`,
        ],
        undefined,
        30_000,
      );
      return r.stdout.trim();
    };
    after(() => {
      kubectlRun(['delete', 'peerauthentication', 'strict', '-n', 'demo', '--ignore-not-found']);
      plain?.cleanup();
    });

    it("every sidecar holds a workload certificate with its service account's SPIFFE ID (weftctl proxy-config secret)", function () {
      pending(this, missing);
      const client = kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=client'])
        .items[0]!.metadata.name;
      const secret = weftctl(['proxy-config', 'secret', `${client}.demo`, '-o', 'json']);
      expect(secret.status, secret.stderr).to.equal(0);
      expect(secret.stdout).to.contain('spiffe://cluster.local/ns/demo/sa/default');
    });

    it('traffic between the demo pods is mutual TLS: the echo sidecar counts it with the client as source_principal', function () {
      pending(this, missing);
      expect(versionsSeen(5).failed ?? 0).to.equal(0);
      const echo = kubectlJson<{ items: PodView[] }>([
        'get',
        'pods',
        '-n',
        'demo',
        '-l',
        'app=echo',
      ]).items.map((p) => p.metadata.name);
      const text = echo
        .map((pod) =>
          kubectl(['get', '--raw', `/api/v1/namespaces/demo/pods/${pod}:15090/proxy/stats/prometheus`]),
        )
        .join('\n');
      const inbound = text
        .split('\n')
        .filter((l) => l.startsWith('istio_requests_total') && l.includes('reporter="destination"'));
      expect(inbound.join('\n'), text.slice(0, 3000)).to.contain('connection_security_policy="mutual_tls"');
      expect(inbound.join('\n')).to.contain('source_principal="spiffe://cluster.local/ns/demo/sa/default"');
    });

    it('PERMISSIVE (the default) serves a pod without a sidecar in plaintext; STRICT refuses it and keeps serving the mesh', async function () {
      pending(this, missing);
      plain = freshNamespace('e2e-plain');
      await waitForServiceAccount(plain.ns);
      kubectl(['apply', '-n', plain.ns, '-f', '-'], JSON.stringify(clientPod('plain')));
      await waitPodReady(plain.ns, 'plain');
      expect(fromPlain()).to.match(/^v[12]$/);
      kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'security.istio.io/v1',
          kind: 'PeerAuthentication',
          metadata: { name: 'strict', namespace: 'demo' },
          spec: { mtls: { mode: 'STRICT' } },
        }),
      );
      await waitFor(
        'STRICT refuses the plaintext client',
        () => (fromPlain() === 'refused' ? true : undefined),
        60_000,
        1000,
      );
      const seen = versionsSeen(10);
      expect(seen.failed ?? 0, JSON.stringify(seen)).to.equal(0);
      kubectl(['delete', 'peerauthentication', 'strict', '-n', 'demo']);
      await waitFor('PERMISSIVE again', () => (/^v[12]$/.test(fromPlain()) ? true : undefined), 60_000, 1000);
    });
  });

  describe('(c2b) what the app sees over mTLS, port-level exceptions, DestinationRule tls DISABLE (issue #13)', () => {
    interface Echoed {
      headers: Record<string, string>;
      bodyBytes: number;
    }
    /** echo's JSON answer to the demo client (through both sidecars), optionally a POST of `bytes`. */
    const echoed = (bytes = 0): Echoed => {
      const post = bytes > 0 ? `--post-data "$(head -c ${bytes} /dev/zero | tr '\\0' a)" ` : '';
      const out = kubectl(
        [
          'exec',
          '-n',
          'demo',
          'deploy/client',
          '-c',
          'client',
          '--',
          'sh',
          '-c',
          `timeout 10 wget -qO- ${post}http://echo/anything`,
        ],
        undefined,
        30_000,
      );
      return JSON.parse(out) as Echoed;
    };
    let plain: { ns: string; cleanup: () => void } | null = null;
    const fromPlain = (): string =>
      kubectlRun(
        [
          'exec',
          '-n',
          plain!.ns,
          'plain',
          '--',
          'sh',
          '-c',
          'timeout 10 wget -qO- http://echo.demo/version || echo refused',
        ],
        undefined,
        30_000,
      ).stdout.trim();
    after(() => {
      for (const [kind, name] of [
        ['peerauthentication', 'ns-strict'],
        ['peerauthentication', 'echo-port'],
      ] as const)
        kubectlRun(['delete', kind, name, '-n', 'demo', '--ignore-not-found']);
      kubectlRun([
        'patch',
        'destinationrule',
        'echo',
        '-n',
        'demo',
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/spec/trafficPolicy"}]',
      ]);
      plain?.cleanup();
    });

    it("the echo app gets x-forwarded-client-cert naming the client's SPIFFE ID, and a 100 kB POST body whole", function () {
      pending(this, missing);
      const e = echoed(100_000);
      expect(e.headers['x-forwarded-client-cert'], JSON.stringify(e.headers)).to.match(
        /By=spiffe:\/\/cluster\.local\/ns\/demo\/sa\/default;Hash=[0-9a-f]{64};Subject="";URI=spiffe:\/\/cluster\.local\/ns\/demo\/sa\/default$/,
      );
      expect(e.bodyBytes).to.equal(100_000);
    });

    it('namespace STRICT with a port-level exception on echo: a pod without a sidecar passes on that port; DISABLE there keeps meshed clients working', async function () {
      pending(this, missing);
      plain = freshNamespace('e2e-port');
      await waitForServiceAccount(plain.ns);
      kubectl(['apply', '-n', plain.ns, '-f', '-'], JSON.stringify(clientPod('plain')));
      await waitPodReady(plain.ns, 'plain');
      const pa = (name: string, spec: object): void =>
        void kubectl(
          ['apply', '-f', '-'],
          JSON.stringify({
            apiVersion: 'security.istio.io/v1',
            kind: 'PeerAuthentication',
            metadata: { name, namespace: 'demo' },
            spec,
          }),
        );
      pa('ns-strict', { mtls: { mode: 'STRICT' } });
      await waitFor(
        'STRICT refuses the plaintext client',
        () => (fromPlain() === 'refused' ? true : undefined),
        60_000,
        1000,
      );
      pa('echo-port', {
        selector: { matchLabels: { app: 'echo' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { 8080: { mode: 'PERMISSIVE' } },
      });
      await waitFor(
        'the PERMISSIVE port serves plaintext',
        () => (/^v[12]$/.test(fromPlain()) ? true : undefined),
        60_000,
        1000,
      );
      expect(versionsSeen(5).failed ?? 0, 'meshed clients still pass').to.equal(0);
      pa('echo-port', {
        selector: { matchLabels: { app: 'echo' } },
        mtls: { mode: 'STRICT' },
        portLevelMtls: { 8080: { mode: 'DISABLE' } },
      });
      // auto-mTLS follows the server's DISABLE: the client sidecar sends plaintext (no XFCC)
      await waitFor(
        'the client to send plaintext to the DISABLE port',
        () => (echoed().headers['x-forwarded-client-cert'] === undefined ? true : undefined),
        60_000,
        1000,
      );
      expect(versionsSeen(5).failed ?? 0, 'meshed clients pass on the DISABLE port').to.equal(0);
      expect(fromPlain()).to.match(/^v[12]$/);
    });

    it('a DestinationRule with tls.mode DISABLE turns mTLS off for echo alone', async function () {
      pending(this, missing);
      kubectlRun([
        'delete',
        'peerauthentication',
        'ns-strict',
        'echo-port',
        '-n',
        'demo',
        '--ignore-not-found',
      ]);
      await waitFor(
        'mTLS again by default',
        () => (echoed().headers['x-forwarded-client-cert'] !== undefined ? true : undefined),
        60_000,
        1000,
      );
      // the demo's own DestinationRule for echo (its subsets): a second one for the same host would
      // be merged with its traffic policy ignored, as in Istio, so the policy goes on this one
      kubectl([
        'patch',
        'destinationrule',
        'echo',
        '-n',
        'demo',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { trafficPolicy: { tls: { mode: 'DISABLE' } } } }),
      ]);
      await waitFor(
        'plaintext to echo',
        () => (echoed().headers['x-forwarded-client-cert'] === undefined ? true : undefined),
        60_000,
        1000,
      );
      kubectl([
        'patch',
        'destinationrule',
        'echo',
        '-n',
        'demo',
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/spec/trafficPolicy"}]',
      ]);
      await waitFor(
        'mTLS once the DestinationRule is gone',
        () => (echoed().headers['x-forwarded-client-cert'] !== undefined ? true : undefined),
        60_000,
        1000,
      );
    });
  });

  describe('(c4) AuthorizationPolicy and RequestAuthentication on the echo sidecars (issue #14)', () => {
    const ISSUER = 'https://issuer.e2e.weft';
    const key = makeKey('rsa', 'e2e');
    const token = (sub: string, expOffset = 600): string =>
      signJwt(
        'RS256',
        key.privateKey,
        { iss: ISSUER, sub, exp: Math.floor(Date.now() / 1000) + expOffset },
        { kid: 'e2e' },
      );
    let plain: { ns: string; cleanup: () => void } | null = null;
    const created: [string, string][] = [];
    const apply = (kind: string, name: string, spec: object, annotations?: Record<string, string>): void => {
      kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'security.istio.io/v1',
          kind,
          metadata: { name, namespace: 'demo', ...(annotations ? { annotations } : {}) },
          spec,
        }),
      );
      created.push([kind, name]);
    };
    const remove = (kind: string, name: string): void =>
      void kubectlRun(['delete', kind, name, '-n', 'demo', '--ignore-not-found']);
    after(() => {
      for (const [kind, name] of created) remove(kind, name);
      plain?.cleanup();
    });
    /** The status of one request to echo (busybox wget -S prints the status line; 000: no answer). */
    const statusOf = (from: { ns: string; pod: string; container?: string }, header?: string): string => {
      const h = header ? `--header '${header}' ` : '';
      const script = `timeout 10 wget -S -O /dev/null ${h}http://echo.demo/version 2>&1 | grep -o 'HTTP/1.1 [0-9]*' | tail -1 | cut -d' ' -f2`;
      const r = kubectlRun(
        [
          'exec',
          '-n',
          from.ns,
          from.pod,
          ...(from.container ? ['-c', from.container] : []),
          '--',
          'sh',
          '-c',
          script,
        ],
        undefined,
        30_000,
      );
      return r.stdout.trim() || '000';
    };
    const client = { ns: 'demo', pod: 'deploy/client', container: 'client' };
    const becomes = (
      what: string,
      from: { ns: string; pod: string; container?: string },
      want: string,
      header?: string,
    ): Promise<true> =>
      waitFor(what, () => (statusOf(from, header) === want ? true : undefined), 60_000, 1000);
    /** Sum of a counter over both echo sidecars, for the series whose labels include `match`. */
    const echoCounter = (name: string, match: string): number =>
      kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=echo'])
        .items.map((p) =>
          kubectl([
            'get',
            '--raw',
            `/api/v1/namespaces/demo/pods/${p.metadata.name}:15090/proxy/stats/prometheus`,
          ]),
        )
        .join('\n')
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) && l.includes(match))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

    it('a deny-all policy on echo: the meshed client gets 403 RBAC, counted by the policy; deleting it restores 200', async function () {
      pending(this, missing);
      expect(statusOf(client)).to.equal('200');
      apply('AuthorizationPolicy', 'deny-all', {
        selector: { matchLabels: { app: 'echo' } },
        action: 'DENY',
        rules: [{}],
      });
      await becomes('the deny-all policy to reach the echo sidecars', client, '403');
      expect(echoCounter('weft_proxy_authz_denied_total', 'policy="demo/deny-all"')).to.be.greaterThan(0);
      const echoPod = kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=echo'])
        .items[0]!.metadata.name;
      const explained = weftctl([
        'explain',
        `${echoPod}.demo`,
        '--inbound',
        '8080',
        '--peer',
        'spiffe://cluster.local/ns/demo/sa/default',
        'GET',
        'http://echo/version',
      ]);
      expect(explained.status, explained.stdout + explained.stderr).to.equal(1);
      expect(explained.stdout).to.match(/authz +deny by demo\/deny-all rule 0/);
      remove('AuthorizationPolicy', 'deny-all');
      await becomes('traffic to flow again', client, '200');
    });

    it('ALLOW by principals: the demo service account (mTLS identity) passes, a pod without a sidecar gets 403', async function () {
      pending(this, missing);
      plain = freshNamespace('e2e-authz');
      await waitForServiceAccount(plain.ns);
      kubectl(['apply', '-n', plain.ns, '-f', '-'], JSON.stringify(clientPod('plain')));
      await waitPodReady(plain.ns, 'plain');
      const outsider = { ns: plain.ns, pod: 'plain' };
      expect(statusOf(outsider), 'PERMISSIVE, no policy: served').to.equal('200');
      apply('AuthorizationPolicy', 'only-demo', {
        selector: { matchLabels: { app: 'echo' } },
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/demo/sa/default'] } }] }],
      });
      await becomes('the ALLOW policy to refuse the pod without an identity', outsider, '403');
      expect(statusOf(client), 'the named service account').to.equal('200');
      remove('AuthorizationPolicy', 'only-demo');
    });

    it('requestPrincipals requires a valid JWT: valid → 200, none → 403, invalid → 401', async function () {
      pending(this, missing);
      apply('RequestAuthentication', 'jwt', {
        selector: { matchLabels: { app: 'echo' } },
        jwtRules: [{ issuer: ISSUER, jwks: jwks(key) }],
      });
      apply('AuthorizationPolicy', 'require-jwt', {
        selector: { matchLabels: { app: 'echo' } },
        rules: [{ from: [{ source: { requestPrincipals: [`${ISSUER}/alice`] } }] }],
      });
      await becomes('the JWT policies to reach echo', client, '403');
      expect(statusOf(client, `authorization: Bearer ${token('alice')}`), 'valid').to.equal('200');
      expect(statusOf(client, `authorization: Bearer ${token('bob')}`), 'another subject').to.equal('403');
      expect(statusOf(client, `authorization: Bearer ${token('alice', -3600)}`), 'expired').to.equal('401');
      expect(statusOf(client, 'authorization: Bearer not.a.jwt'), 'garbage').to.equal('401');
      remove('AuthorizationPolicy', 'require-jwt');
      remove('RequestAuthentication', 'jwt');
      await becomes('no JWT needed again', client, '200');
    });

    it('a dry-run DENY lets traffic through and counts what it would have denied', async function () {
      pending(this, missing);
      const before = echoCounter('weft_proxy_authz_dry_run_total', 'policy="demo/would-deny"');
      apply(
        'AuthorizationPolicy',
        'would-deny',
        { selector: { matchLabels: { app: 'echo' } }, action: 'DENY', rules: [{}] },
        { 'istio.io/dry-run': 'true' },
      );
      await waitFor(
        'the dry-run policy to be counted',
        () => {
          expect(statusOf(client), 'never enforced').to.equal('200');
          return echoCounter('weft_proxy_authz_dry_run_total', 'policy="demo/would-deny"') > before
            ? true
            : undefined;
        },
        60_000,
        1000,
      );
      remove('AuthorizationPolicy', 'would-deny');
    });
  });

  describe("(c5) the seeds' rate limits: Istio's memquota YAML as written (issue #17)", () => {
    // docs/rate-limits.md's memquota, applied as Mixer users wrote it: 5000/s for everything,
    // 100/s for ratings, 1/s when reviews calls ratings (the first matching override applies)
    const MEMQUOTA = {
      apiVersion: 'config.istio.io/v1alpha2',
      kind: 'memquota',
      metadata: { name: 'handler', namespace: 'istio-system' },
      spec: {
        quotas: [
          {
            name: 'requestcount.instance.istio-system',
            maxAmount: 5000,
            validDuration: '1s',
            overrides: [
              {
                dimensions: { destination: 'ratings', source: 'reviews' },
                maxAmount: 1,
                validDuration: '1s',
              },
              { dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' },
            ],
          },
        ],
      },
    };
    const RATINGS_URL = 'http://ratings.demo.svc.cluster.local/version';
    let createdIstioSystem = false;
    /** A load pod under its own service account: the quota's `source` is the caller's identity. */
    const callerPod = (name: string, url: string, rate: number, seconds: number): object => {
      const pod = loadPod(name, WEFT_IMAGE, url, rate, seconds) as { spec: object };
      return { ...pod, spec: { ...pod.spec, serviceAccountName: name } };
    };
    const run = async (name: string, url: string, rate: number, seconds: number): Promise<LoadResult> => {
      kubectl(['apply', '-n', 'demo', '-f', '-'], JSON.stringify(callerPod(name, url, rate, seconds)));
      await waitPodReady('demo', name);
      return waitFor(
        `the load of ${name}`,
        () => loadResult(kubectlRun(['logs', '-n', 'demo', name, '-c', 'load']).stdout),
        (seconds + 60) * 1000,
        1000,
      );
    };
    const limited = (r: LoadResult): number =>
      Object.entries(r.failures)
        .filter(([why]) => why.startsWith('HTTP 429'))
        .reduce((sum, [, n]) => sum + n, 0);
    const callers = ['reviews', 'productpage', 'details'];

    before(async function () {
      if (missing.length > 0) return;
      this.timeout(300_000);
      if (kubectlRun(['get', 'namespace', 'istio-system']).status !== 0) {
        kubectl(['create', 'namespace', 'istio-system']);
        createdIstioSystem = true;
      }
      apply('demo', [
        ...['ratings', ...callers].map((name) => ({
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name },
        })),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'ratings', labels: { app: 'ratings' } },
          spec: { selector: { app: 'ratings' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
        },
        // A pod labelled app: reviews from the start, so ratings' sidecar already holds the
        // override for reviews' service account when the reviews load pod starts sending: else
        // its first requests race weftd's push (the source resolves once such a pod exists) and
        // get ratings' 100/s (seen: 18 allowed of 60 where ~6 were due).
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: 'reviews-identity',
            labels: { app: 'reviews' },
            annotations: { 'sidecar.istio.io/inject': 'false' },
          },
          spec: {
            serviceAccountName: 'reviews',
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'sleep',
                image: IMAGES.toolbox,
                imagePullPolicy: 'IfNotPresent',
                command: ['/bin/sleep', '3600'],
              },
            ],
          },
        },
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'ratings', labels: { app: 'ratings' } },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'ratings' } },
            template: {
              metadata: { labels: { app: 'ratings' } },
              spec: {
                serviceAccountName: 'ratings',
                terminationGracePeriodSeconds: 1,
                containers: [
                  {
                    name: 'ratings',
                    image: 'weft.local/echo:1',
                    imagePullPolicy: 'IfNotPresent',
                    env: [
                      { name: 'VERSION', value: 'v1' },
                      { name: 'SERVICE_NAME', value: 'ratings' },
                    ],
                    ports: [{ name: 'http', containerPort: 8080 }],
                    readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
                  },
                ],
              },
            },
          },
        },
      ]);
      kubectl(
        ['rollout', 'status', '-n', 'demo', 'deployment/ratings', '--timeout=180s'],
        undefined,
        200_000,
      );
      kubectl(['apply', '-f', '-'], JSON.stringify(MEMQUOTA));
      // Ready: weftd accepted it and every proxy it concerns ACKed the config that holds it
      kubectl(
        ['wait', '-n', 'istio-system', 'memquota/handler', '--for=condition=Ready', '--timeout=120s'],
        undefined,
        150_000,
      );
    });

    after(() => {
      for (const name of callers)
        kubectlRun(['delete', 'pod', name, '-n', 'demo', '--ignore-not-found', '--wait=false']);
      kubectlRun(['delete', 'pod', 'reviews-identity', '-n', 'demo', '--ignore-not-found', '--wait=false']);
      kubectlRun(['delete', 'memquota', 'handler', '-n', 'istio-system', '--ignore-not-found']);
      kubectlRun(['delete', 'deployment,service', 'ratings', '-n', 'demo', '--ignore-not-found']);
      kubectlRun(['delete', 'serviceaccount', 'ratings', ...callers, '-n', 'demo', '--ignore-not-found']);
      if (createdIstioSystem) kubectlRun(['delete', 'namespace', 'istio-system', '--wait=false']);
    });

    it('memquota status: Accepted, Enforced per destination pod (no global backend in this Mesh), Ready', function () {
      pending(this, missing);
      const mq = kubectlJson<{ status?: { conditions?: Condition[] } }>([
        'get',
        'memquota',
        'handler',
        '-n',
        'istio-system',
      ]);
      const byType = Object.fromEntries((mq.status?.conditions ?? []).map((c) => [c.type, c]));
      expect(byType.Accepted?.status, JSON.stringify(byType)).to.equal('True');
      expect(byType.Enforced?.status, JSON.stringify(byType)).to.equal('True');
      expect(byType.Ready?.status, JSON.stringify(byType)).to.equal('True');
    });

    it('ratings is held to ~100 req/s (200 req/s offered for 5 s: the rest get 429), reviews → ratings to ~1 req/s', async function () {
      pending(this, missing);
      this.timeout(240_000);
      const [busy, reviews] = await Promise.all([
        run('productpage', RATINGS_URL, 200, 5),
        run('reviews', RATINGS_URL, 10, 6),
      ]);
      process.stdout.write(
        `      productpage → ratings: ${JSON.stringify(busy)}\n      reviews → ratings: ${JSON.stringify(reviews)}\n`,
      );
      expect(busy.sent).to.equal(1000);
      // every answer is 200 or 429: nothing else failed
      expect(busy.ok + limited(busy), JSON.stringify(busy)).to.equal(busy.sent);
      // 100/s over ~5 s plus the bucket's first 100 (timing on a shared node gives slack)
      expect(busy.ok, JSON.stringify(busy)).to.be.within(300, 800);
      expect(reviews.sent).to.equal(60);
      expect(reviews.ok + limited(reviews), JSON.stringify(reviews)).to.equal(reviews.sent);
      expect(reviews.ok, JSON.stringify(reviews)).to.be.within(2, 12);
    });

    it('other services are not limited: 200 req/s to echo for 5 s all pass', async function () {
      pending(this, missing);
      this.timeout(180_000);
      const r = await run('details', 'http://echo.demo.svc.cluster.local/version', 200, 5);
      process.stdout.write(`      details → echo: ${JSON.stringify(r)}\n`);
      expect(r.failures, JSON.stringify(r)).to.deep.equal({});
      expect(r.ok).to.equal(1000);
    });

    it('a limited answer is 429 with x-weft-response-flags RL, retry-after and the IETF RateLimit headers', function () {
      pending(this, missing);
      // two requests back to back from reviews (1/s): the second is limited
      const script = `
        const http = require('node:http');
        const one = () => new Promise((resolve) => http.get(process.env.URL, (res) => {
          res.resume(); res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
        }).on('error', (e) => resolve({ status: 0, error: e.message })));
        (async () => { await one(); console.log(JSON.stringify(await one())); })();`;
      const out = kubectl(
        [
          'exec',
          '-n',
          'demo',
          'reviews',
          '-c',
          'load',
          '--',
          'env',
          `URL=${RATINGS_URL}`,
          'node',
          '-e',
          script,
        ],
        undefined,
        30_000,
      );
      const answer = JSON.parse(out.trim().split('\n').pop()!) as {
        status: number;
        headers: Record<string, string>;
      };
      expect(answer.status, out).to.equal(429);
      expect(answer.headers['x-weft-response-flags'], out).to.equal('RL');
      expect(Number(answer.headers['retry-after']), out).to.be.at.least(1);
      expect(answer.headers['ratelimit'], out).to.be.a('string');
      expect(answer.headers['ratelimit-policy'], out).to.match(/;q=1;w=1$/);
    });
  });

  globalLimitSteps((ctx) => pending(ctx, missing));

  describe('(c3) workload certificate rotation under load (issue #13)', () => {
    const LOAD = 'rotation-load';
    const RATE = 200;
    const SECONDS = 110; // TTL 1m: both sides renew every ~30 s, so ≥ 3 rotations each
    after(() => {
      kubectlRun(['delete', 'pod', LOAD, '-n', 'demo', '--ignore-not-found', '--wait=false']);
    });
    const scrape = (pod: string): string =>
      kubectl(['get', '--raw', `/api/v1/namespaces/demo/pods/${pod}:15090/proxy/stats/prometheus`]);
    const echoPods = (): PodView[] =>
      kubectlJson<{ items: PodView[] }>(['get', 'pods', '-n', 'demo', '-l', 'app=echo']).items;

    it(`Mesh workloadCertTTL 1m: ${RATE} req/s for ${SECONDS} s across ≥ 3 rotations of both sidecars loses no request`, async function () {
      pending(this, missing);
      this.timeout(480_000);
      kubectl([
        'patch',
        'mesh',
        'default',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { certificates: { workloadCertTTL: '1m' } } }),
      ]);
      // the operator renders it into weftd's mesh.yaml; the kubelet updates the mount; weftd reloads
      await waitFor(
        "weftd to sign with the Mesh's 1m TTL",
        () => {
          const logs = kubectlRun(['logs', '-n', 'weft-system', 'deploy/weftd', '--since=10m']).stdout;
          return logs.split('\n').some((l) => l.includes('TTL changed') && l.includes('60000'))
            ? true
            : undefined;
        },
        180_000,
        2000,
      );
      // the echo servers start over with 1m certificates; the load pod starts with one
      kubectl(['rollout', 'restart', '-n', 'demo', 'deployment/echo-v1', 'deployment/echo-v2']);
      for (const d of ['echo-v1', 'echo-v2'])
        kubectl(['rollout', 'status', '-n', 'demo', `deployment/${d}`, '--timeout=180s'], undefined, 200_000);
      await waitFor(
        'exactly the two new echo pods, ready (the old ones gone)',
        () => {
          const pods = echoPods();
          const ready = pods.filter((p) =>
            p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          return pods.length === 2 && ready.length === 2 ? true : undefined;
        },
        120_000,
        1000,
      );
      const echo = echoPods().map((p) => p.metadata.name);
      kubectl(
        ['apply', '-n', 'demo', '-f', '-'],
        JSON.stringify(
          loadPod(LOAD, WEFT_IMAGE, 'http://echo.demo.svc.cluster.local/version', RATE, SECONDS),
        ),
      );
      await waitPodReady('demo', LOAD);
      const before = Object.fromEntries(echo.map((p) => [p, renewals(scrape(p))]));
      const result = await waitFor(
        'the load to finish',
        () => loadResult(kubectlRun(['logs', '-n', 'demo', LOAD, '-c', 'load']).stdout),
        (SECONDS + 60) * 1000,
        2000,
      );
      const after = Object.fromEntries(echo.map((p) => [p, renewals(scrape(p))]));
      const client = renewals(scrape(LOAD));
      process.stdout.write(
        `      load: ${JSON.stringify(result)}; certificates issued: client ${client}, echo during the load ${JSON.stringify(
          Object.fromEntries(echo.map((p) => [p, after[p]! - before[p]!])),
        )}\n`,
      );
      expect(result.failures, JSON.stringify(result)).to.deep.equal({});
      expect(result.sent).to.equal(RATE * SECONDS);
      expect(result.ok).to.equal(result.sent);
      // the client's first certificate and ≥ 3 renewals, all during the load (it started with it)
      expect(client).to.be.at.least(4);
      for (const p of echo) expect(after[p]! - before[p]!, `${p} renewals during the load`).to.be.at.least(3);
    });
  });

  protocolSteps((ctx) => pending(ctx, missing));

  describe('(d) deleting the Mesh', () => {
    it('removes every object it made (Deployments, Services, Secrets, RBAC, webhook configurations) and their pods', async () => {
      kubectlRun(['delete', 'namespace', 'demo', '--wait=false']);
      const r = kubectlRun(['delete', 'mesh', 'default', '--timeout=120s'], undefined, 150_000);
      expect(r.status, r.stderr).to.equal(0);
      const kinds =
        'deployments,services,secrets,configmaps,serviceaccounts,poddisruptionbudgets,clusterroles,clusterrolebindings,validatingwebhookconfigurations,mutatingwebhookconfigurations';
      const left = kubectl(['get', kinds, '-A', '-l', `${INVENTORY_LABEL}=default`, '-o', 'name']).trim();
      expect(left, 'children left after the Mesh is gone').to.equal('');
      await waitFor(
        'weftd, webhook and gateway pods to go',
        () => {
          const pods = kubectlJson<{ items: PodView[] }>([
            'get',
            'pods',
            '-n',
            'weft-system',
            '-l',
            'app.kubernetes.io/component in (control-plane,webhook,gateway)',
          ]).items;
          return pods.length === 0 ? true : undefined;
        },
        90_000,
        1000,
      );
      // The install stays: the operator is still running, ready for the next Mesh.
      const op = kubectlJson<{ status: { readyReplicas?: number } }>([
        'get',
        'deployment',
        '-n',
        'weft-system',
        'weft-operator',
      ]);
      expect(op.status.readyReplicas).to.equal(1); // one replica by default (ADR 0025)
    });
  });
});
