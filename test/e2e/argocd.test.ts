/**
 * Argo CD for real (issue #16): argo-cd v3.6.2's application controller and repo server (built
 * from the Go module, hack/build-argocd.sh) sync a local git repository into the real node
 * cluster, with weft installed (webhook and weftd as pods) and weft's health Lua in argocd-cm:
 *
 *   (a) an Application with a namespace, a Service, a VirtualService and a DestinationRule syncs
 *       and becomes Synced + Healthy — the Istio objects' health is weftd's Ready condition read
 *       by our Lua (Argo CD has no health check of its own for networking.istio.io);
 *   (b) a second (hard) refresh stays Synced: no diff, no new sync;
 *   (c) a commit with an invalid VirtualService fails the sync with the webhook's message in
 *       status.operationState, and the live object keeps its last good spec;
 *   (c2) a commit routing to a subset no DestinationRule defines syncs (the webhook only warns)
 *       and is Degraded, with weftd's Stalled message as the VirtualService's health;
 *   (d) a commit that fixes it and changes the route weights syncs and becomes Healthy again;
 *   (e) deleting the Application prunes everything, namespace included (no finalizer deadlock).
 *
 * Redis, the repo server and the controller run on loopback as our child processes and are
 * killed by PID; namespace argocd, Argo CD's CRDs, the temp dir and (when this suite installed
 * it) weft go in `after`. Needs the weft image on the node (hack/test-e2e.sh loads it).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  ARGOCD_CRDS,
  applyCrds,
  argoCdConfig,
  argoCdModuleDir,
  clusterSecret,
  ensureArgoCd,
  GitRepo,
  type Proc,
  repoServerEnv,
  rssMb,
  startProc,
  stopProc,
  tail,
  untilListening,
  weftHealthData,
} from './support/argocd.js';
import { freePorts } from '../support/ports.js';
import {
  kubeconfig,
  kubectl,
  kubectlJson,
  kubectlRun,
  repoRoot,
  waitFor,
  WEFT_IMAGE,
  weftImageLoaded,
} from './support/kube.js';

const APP = 'weft-e2e';
/** Argo CD's own waits: a sync of four objects took ~20 s on two cores; health follows weftd. */
const SYNC_TIMEOUT_MS = 180_000;
const WEBHOOK = 'validation.mesh.weft.dev';

interface Condition {
  type: string;
  status: string;
  message?: string;
}
interface ResourceStatus {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
  status?: string;
  health?: { status?: string; message?: string };
}
interface SyncResultResource {
  kind: string;
  name: string;
  status?: string;
  message?: string;
}
interface Application {
  metadata: { annotations?: Record<string, string>; finalizers?: string[] };
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string };
    reconciledAt?: string;
    resources?: ResourceStatus[];
    operationState?: {
      phase?: string;
      message?: string;
      finishedAt?: string;
      syncResult?: { revision?: string; resources?: SyncResultResource[] };
    };
    conditions?: { type: string; message: string }[];
  };
}
interface IstioObject {
  metadata: { generation?: number };
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

function getApp(): Application | undefined {
  const r = kubectlRun(['get', 'applications.argoproj.io', APP, '-n', 'argocd', '-o', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout) as Application) : undefined;
}

/** The Application's state in one line, for timeouts and assertion messages. */
function summary(app: Application | undefined): string {
  if (app === undefined) return 'application: missing';
  const s = app.status;
  const res = (s?.resources ?? []).map(
    (r) =>
      `${r.kind}/${r.name}:${r.status ?? '?'}/${r.health?.status ?? '-'}${r.health?.message ? `(${r.health.message})` : ''}`,
  );
  return [
    `sync=${s?.sync?.status ?? '?'}@${(s?.sync?.revision ?? '').slice(0, 8)} health=${s?.health?.status ?? '?'}`,
    `op=${s?.operationState?.phase ?? '-'}@${(s?.operationState?.syncResult?.revision ?? '').slice(0, 8)}: ${s?.operationState?.message ?? ''}`,
    `resources: ${res.join(' ')}`,
    ...(s?.conditions ?? []).map((c) => `condition ${c.type}: ${c.message}`),
  ].join('\n  ');
}

/** Asks the controller to re-read git now (it removes the annotation when done). */
function hardRefresh(): void {
  kubectl([
    'annotate',
    'applications.argoproj.io',
    APP,
    '-n',
    'argocd',
    'argocd.argoproj.io/refresh=hard',
    '--overwrite',
  ]);
}

function manifests(
  ns: string,
  weights: [number, number],
  abortPercent?: number,
  secondSubset = 'v2',
): Record<string, string> {
  const http: Record<string, unknown> = {
    route: [
      { destination: { host: 'web', subset: 'v1' }, weight: weights[0] },
      { destination: { host: 'web', subset: secondSubset }, weight: weights[1] },
    ],
  };
  if (abortPercent !== undefined)
    http.fault = { abort: { httpStatus: 503, percentage: { value: abortPercent } } };
  const objs = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: ns },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'web', namespace: ns },
      spec: {
        host: 'web',
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web', namespace: ns },
      spec: { hosts: ['web'], http: [http] },
    },
  ];
  return { 'app/mesh.yaml': objs.map((o) => stringify(o)).join('---\n') };
}

function meshExists(): boolean {
  return kubectlRun(['get', 'mesh', 'default']).status === 0;
}

/** weft installed as `npm start` / the mesh suite do it; the webhook answering and weftd up. */
function installWeft(): void {
  kubectl(['apply', '--server-side', '-k', join(repoRoot, 'config/default')], undefined, 120_000);
  kubectl(
    ['-n', 'weft-system', 'rollout', 'status', 'deployment/weft-operator', '--timeout=150s'],
    undefined,
    170_000,
  );
  kubectl(['apply', '-f', join(repoRoot, 'config/samples/mesh.yaml')]);
}

/** The sample Mesh runs the Combined control plane (ADR 0024): weftd's pods serve admission too. */
const SERVING_DEPLOYMENTS = ['weftd'];

async function waitWeftServing(): Promise<void> {
  for (const d of SERVING_DEPLOYMENTS)
    await waitFor(
      `deployment weft-system/${d}`,
      () => (kubectlRun(['get', 'deployment', '-n', 'weft-system', d]).status === 0 ? true : undefined),
      120_000,
      1000,
    );
  for (const d of SERVING_DEPLOYMENTS)
    kubectl(
      ['-n', 'weft-system', 'rollout', 'status', `deployment/${d}`, '--timeout=180s'],
      undefined,
      200_000,
    );
  // The webhook's Service endpoints and kube-proxy's rules follow readiness by a moment.
  await waitFor(
    'the validating webhook to deny an invalid VirtualService',
    () => {
      const a = kubectlRun(['apply', '--dry-run=server', '-f', '-'], stringify(badProbe));
      if (a.status === 0) throw new Error('the invalid VirtualService was accepted');
      return /denied the request/.test(a.stderr) ? true : undefined;
    },
    120_000,
    1000,
  );
}

const badProbe = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'probe', namespace: 'default' },
  spec: {
    hosts: ['probe'],
    http: [
      {
        fault: { abort: { httpStatus: 503, percentage: { value: 150 } } },
        route: [{ destination: { host: 'probe' } }],
      },
    ],
  },
};

describe('e2e: Argo CD v3.6.2 syncs Istio objects through weft (issue #16)', function () {
  this.timeout(SYNC_TIMEOUT_MS + 60_000);
  let work = '';
  let repo: GitRepo | undefined;
  let ns = '';
  let server = '';
  let installedWeft = false;
  let argoSetUp = false;
  const procs: Proc[] = [];
  let good = '';

  const diag = (): string =>
    `${summary(getApp())}\n${procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? 'running'}):\n${tail(p, 8)}`).join('\n')}`;

  /** Waits for `check` on the Application; on timeout, prints its state and the processes' logs. */
  async function waitApp<T>(
    what: string,
    check: (a: Application) => T | undefined,
    ms = SYNC_TIMEOUT_MS,
  ): Promise<T> {
    return waitFor(
      what,
      () => {
        for (const p of procs)
          if (p.child.exitCode !== null) throw new Error(`${p.name} exited: ${tail(p, 5)}`);
        const a = getApp();
        return a === undefined ? undefined : check(a);
      },
      ms,
      1000,
    ).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n  ${diag()}`);
    });
  }

  before(async function () {
    this.timeout(40 * 60_000); // a cold Argo CD build (test-e2e.sh builds it before mocha)
    if (!weftImageLoaded()) {
      process.stdout.write(`      skipped: ${WEFT_IMAGE} is not on the node (hack/images/load.sh weft)\n`);
      this.skip();
    }
    if (kubectlRun(['get', 'namespace', 'argocd']).status === 0) {
      process.stdout.write(
        '      skipped: namespace argocd exists (a real Argo CD?); the suite needs its own\n',
      );
      this.skip();
    }
    const bin = await ensureArgoCd();
    const moduleDir = argoCdModuleDir();
    if (!meshExists()) {
      installedWeft = true;
      installWeft();
    }
    await waitWeftServing();

    work = mkdtempSync(join(tmpdir(), 'weft-argocd-e2e-'));
    argoSetUp = true;
    kubectl(['create', 'namespace', 'argocd']);
    applyCrds(moduleDir);
    // Not `kubectl wait`: it fails while a just-created CRD has no conditions yet.
    for (const crd of ARGOCD_CRDS)
      await waitFor(`CRD ${crd} Established`, () =>
        kubectl([
          'get',
          'crd',
          crd,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Established")].status}',
        ]) === 'True'
          ? true
          : undefined,
      );
    const cluster = clusterSecret();
    server = cluster.server;
    kubectl(
      ['apply', '-f', '-'],
      [...argoCdConfig(weftHealthData()), cluster.secret].map((o) => stringify(o)).join('---\n'),
    );

    // Argo CD's three daemons on loopback ports; a daemon that finds its port taken at start (by
    // a process outside this suite between the choice and the bind) is started again on new ports
    const startArgoCd = async (): Promise<{ started: Proc[]; repoPort: number }> => {
      const [redisPort, repoPort, repoMetrics, ctrlMetrics] = (await freePorts(4)) as [
        number,
        number,
        number,
        number,
      ];
      const started: Proc[] = [];
      started.push(
        startProc(
          'redis',
          'redis-server',
          ['--port', `${redisPort}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
          work,
        ),
      );
      const redis = `127.0.0.1:${redisPort}`;
      started.push(
        startProc(
          'repo-server',
          join(bin, '..', 'argocd-repo-server'),
          [
            '--redis',
            redis,
            '--address',
            '127.0.0.1',
            '--port',
            `${repoPort}`,
            '--metrics-address',
            '127.0.0.1',
            '--metrics-port',
            `${repoMetrics}`,
            '--disable-tls',
            '--client-ca-path',
            '',
          ],
          work,
          repoServerEnv(moduleDir, work),
        ),
      );
      started.push(
        startProc(
          'application-controller',
          join(bin, '..', 'argocd-application-controller'),
          [
            '--kubeconfig',
            kubeconfig,
            '-n',
            'argocd',
            '--redis',
            redis,
            '--repo-server',
            `127.0.0.1:${repoPort}`,
            '--repo-server-plaintext',
            '--repo-server-client-cert-path',
            '',
            '--repo-server-client-cert-key-path',
            '',
            '--metrics-port',
            `${ctrlMetrics}`,
            // Argo CD v3 keeps resources' health out of the Application by default (only the
            // aggregate); the suite reads each Istio object's verdict there.
            '--persist-resource-health',
          ],
          work,
        ),
      );
      return { started, repoPort };
    };
    for (let attempt = 1; ; attempt++) {
      const { started, repoPort } = await startArgoCd();
      procs.push(...started);
      const failed = await untilListening(repoPort, started);
      if (failed === undefined) break;
      const why = tail(failed, 3);
      if (attempt === 3 || !/address already in use/i.test(why))
        throw new Error(`Argo CD's ${failed.name} exited at start:\n${why}`);
      process.stdout.write(
        `      ${failed.name} found its port taken; starting Argo CD again on new ports\n`,
      );
      for (const p of started) await stopProc(p);
      procs.splice(procs.length - started.length);
    }

    // The namespace comes from git, created by Argo CD's sync.
    ns = `e2e-argocd-${randomBytes(3).toString('hex')}`;
    repo = new GitRepo(work);
    good = repo.commit('web: 90/10', manifests(ns, [90, 10]));
  });

  after(async function () {
    this.timeout(420_000);
    if (argoSetUp) {
      // The Application first, while the controller runs: its resources finalizer needs it.
      kubectlRun(
        ['delete', 'applications.argoproj.io', '--all', '-n', 'argocd', '--timeout=120s'],
        undefined,
        130_000,
      );
      // Still there (the controller died?): drop the finalizer so nothing deadlocks.
      if (getApp() !== undefined)
        kubectlRun([
          'patch',
          'applications.argoproj.io',
          APP,
          '-n',
          'argocd',
          '--type=merge',
          '-p',
          '{"metadata":{"finalizers":null}}',
        ]);
      const rss = procs.map((p) => `${p.name} ${rssMb(p) ?? '?'} MB`).join(', ');
      process.stdout.write(`      RSS at the end: ${rss}\n`);
      for (const p of procs.reverse()) await stopProc(p);
      if (ns !== '')
        kubectlRun(['delete', 'namespace', ns, '--ignore-not-found', '--timeout=90s'], undefined, 100_000);
      kubectlRun(
        ['delete', 'namespace', 'argocd', '--ignore-not-found', '--timeout=120s'],
        undefined,
        130_000,
      );
      kubectlRun(['delete', 'crd', ...ARGOCD_CRDS, '--ignore-not-found', '--timeout=60s'], undefined, 70_000);
    }
    if (work !== '') rmSync(work, { recursive: true, force: true });
    if (installedWeft) {
      kubectlRun(['delete', 'mesh', 'default', '--ignore-not-found', '--timeout=90s'], undefined, 100_000);
      kubectlRun(
        ['delete', '-k', join(repoRoot, 'config/default'), '--ignore-not-found', '--timeout=120s'],
        undefined,
        150_000,
      );
    }
  });

  it("(a) the Application syncs and is Synced + Healthy; the VirtualService is Healthy from weftd's Ready via our Lua", async () => {
    kubectl(
      ['apply', '-f', '-'],
      stringify({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: APP, namespace: 'argocd', finalizers: ['resources-finalizer.argocd.argoproj.io'] },
        spec: {
          project: 'default',
          source: { repoURL: repo!.url, targetRevision: 'main', path: 'app' },
          destination: { server, namespace: ns },
          syncPolicy: {
            automated: { prune: true, selfHeal: true },
            // Argo CD's default retries a failed automated sync 5 times with backoff (~3 min)
            // before a newer commit is taken; one quick retry keeps the suite's waits short.
            retry: { limit: 1, backoff: { duration: '2s', factor: 2, maxDuration: '10s' } },
          },
        },
      }),
    );
    const app = await waitApp('Synced + Healthy at the first commit', (a) =>
      a.status?.sync?.status === 'Synced' &&
      a.status.sync.revision === good &&
      a.status.health?.status === 'Healthy'
        ? a
        : undefined,
    );
    const vs = kubectlJson<IstioObject>(['get', 'virtualservices.networking.istio.io', 'web', '-n', ns]);
    const ready = vs.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.status, 'weftd wrote Ready on the VirtualService').to.equal('True');
    expect(vs.status?.observedGeneration).to.equal(vs.metadata.generation);
    const res = app.status?.resources?.find((r) => r.kind === 'VirtualService');
    // Argo CD has no health check for networking.istio.io: a health here is our Lua's verdict,
    // and its message is the Ready condition's.
    expect(res?.health?.status, summary(app)).to.equal('Healthy');
    expect(res?.health?.message).to.equal(ready?.message);
    const dr = app.status?.resources?.find((r) => r.kind === 'DestinationRule');
    expect(dr?.health?.status, summary(app)).to.equal('Healthy');
  });

  it('(b) a second hard refresh stays Synced: no diff, no new sync', async () => {
    const before = getApp();
    const finished = before?.status?.operationState?.finishedAt;
    const reconciled = before?.status?.reconciledAt ?? '';
    hardRefresh();
    const app = await waitApp('the hard refresh to finish', (a) =>
      a.metadata.annotations?.['argocd.argoproj.io/refresh'] === undefined &&
      (a.status?.reconciledAt ?? '') > reconciled
        ? a
        : undefined,
    );
    expect(app.status?.sync?.status, summary(app)).to.equal('Synced');
    expect(app.status?.health?.status, summary(app)).to.equal('Healthy');
    for (const r of app.status?.resources ?? []) expect(r.status, `${r.kind}/${r.name}`).to.equal('Synced');
    expect(app.status?.operationState?.finishedAt, 'no new sync operation').to.equal(finished);
  });

  it("(c) an invalid VirtualService fails the sync with the webhook's message; the live object keeps its spec", async () => {
    const liveBefore = kubectlJson<IstioObject>([
      'get',
      'virtualservices.networking.istio.io',
      'web',
      '-n',
      ns,
    ]);
    const bad = repo!.commit('web: abort 150%', manifests(ns, [90, 10], 150));
    hardRefresh();
    const app = await waitApp("the sync of the invalid commit to fail with the webhook's message", (a) => {
      const op = a.status?.operationState;
      return op?.syncResult?.revision === bad && op.phase !== 'Running' && op.phase !== 'Succeeded'
        ? a
        : undefined;
    });
    const op = app.status!.operationState!;
    expect(op.phase, summary(app)).to.be.oneOf(['Failed', 'Error']);
    expect(op.message, summary(app)).to.match(
      new RegExp(`admission webhook "${WEBHOOK.replace(/\./g, '\\.')}" denied the request`),
    );
    expect(op.message).to.include(`VirtualService ${ns}/web`);
    expect(op.message).to.match(/spec\.http\[0\]\.fault\.abort\.percentage/);
    const entry = op.syncResult?.resources?.find((r) => r.kind === 'VirtualService');
    expect(entry?.status, summary(app)).to.equal('SyncFailed');
    expect(entry?.message).to.include(WEBHOOK);
    expect(app.status?.sync?.status).to.equal('OutOfSync');
    const live = kubectlJson<IstioObject>(['get', 'virtualservices.networking.istio.io', 'web', '-n', ns]);
    expect(live.metadata.generation, 'the webhook kept the bad spec out').to.equal(
      liveBefore.metadata.generation,
    );
    expect(JSON.stringify(live.spec)).not.to.include('fault');
  });

  it("(c2) a VirtualService naming a subset no DestinationRule defines syncs (a warning) and is Degraded with weftd's message", async () => {
    const dangling = repo!.commit('web: route to subset v3', manifests(ns, [90, 10], undefined, 'v3'));
    hardRefresh();
    const app = await waitApp('Synced + Degraded at the dangling-subset commit', (a) =>
      a.status?.sync?.status === 'Synced' &&
      a.status.sync.revision === dangling &&
      a.status.health?.status === 'Degraded'
        ? a
        : undefined,
    );
    const vs = kubectlJson<IstioObject>(['get', 'virtualservices.networking.istio.io', 'web', '-n', ns]);
    const stalled = vs.status?.conditions?.find((c) => c.type === 'Stalled');
    expect(stalled?.status, 'weftd wrote Stalled=True').to.equal('True');
    expect(vs.status?.observedGeneration).to.equal(vs.metadata.generation);
    const res = app.status?.resources?.find((r) => r.kind === 'VirtualService');
    expect(res?.health?.status, summary(app)).to.equal('Degraded');
    expect(res?.health?.message).to.equal(stalled?.message);
    expect(res?.health?.message).to.include('v3');
  });

  it('(d) a commit that fixes it and moves the weights to 50/50 syncs and becomes Healthy', async () => {
    const fixed = repo!.commit('web: 50/50', manifests(ns, [50, 50]));
    hardRefresh();
    const app = await waitApp('Synced + Healthy at the fixing commit', (a) =>
      a.status?.sync?.status === 'Synced' &&
      a.status.sync.revision === fixed &&
      a.status.health?.status === 'Healthy' &&
      a.status.operationState?.phase === 'Succeeded'
        ? a
        : undefined,
    );
    expect(app.status?.operationState?.syncResult?.revision).to.equal(fixed);
    const vs = kubectlJson<IstioObject>(['get', 'virtualservices.networking.istio.io', 'web', '-n', ns]);
    const route = (vs.spec.http as { route: { weight: number }[] }[])[0]!.route;
    expect(route.map((r) => r.weight)).to.deep.equal([50, 50]);
    // Healthy means weftd has judged this generation, not a stale Ready from the last one.
    expect(vs.status?.observedGeneration).to.equal(vs.metadata.generation);
    expect(vs.status?.conditions?.find((c) => c.type === 'Ready')?.status).to.equal('True');
    const rss = procs.map((p) => `${p.name} ${rssMb(p) ?? '?'} MB`).join(', ');
    process.stdout.write(`      RSS after five syncs: ${rss}\n`);
  });

  it('(e) deleting the Application prunes everything, its namespace included', async () => {
    kubectl(['delete', 'applications.argoproj.io', APP, '-n', 'argocd', '--wait=false']);
    await waitFor(
      'the Application to be gone (its resources finalizer done)',
      () => (getApp() === undefined ? true : undefined),
      150_000,
      1000,
    ).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n  ${diag()}`);
    });
    await waitFor(
      `namespace ${ns} to be gone`,
      () => (kubectlRun(['get', 'namespace', ns]).status !== 0 ? true : undefined),
      150_000,
      1000,
    );
    const left = kubectlRun([
      'get',
      'virtualservices.networking.istio.io,destinationrules.networking.istio.io',
      '-A',
      '-o',
      'name',
    ]);
    expect(left.stdout).not.to.include(`${ns}`);
  });
});
