/**
 * Every standalone overlay of config/ applied by itself to a cluster without weft, and seen to
 * work (issue #15): config/crd, config/controlplane (weftd; an injected pod gets its workload
 * certificate from it) and config/webhook (a bad VirtualService is denied at apply time, a pod
 * in a labelled namespace is injected). config/default — the operator — is mesh.test.ts (a).
 * Each overlay is deleted afterwards and must leave nothing of weft behind.
 *
 * Runs after mesh.test.ts, which removes its install; it waits for weft-system to be gone.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  clientPod,
  freshNamespace,
  kubectl,
  kubectlJson,
  kubectlRun,
  repoRoot,
  waitFor,
  waitForServiceAccount,
  waitPodReady,
  weftImageLoaded,
} from './support/kube.js';

const CERT_SECRETS = ['weft-root-ca', 'weftd-tls', 'weft-webhook-tls'];

function overlay(name: string): string {
  return join(repoRoot, 'config', name);
}

function applyOverlay(name: string): void {
  const r = kubectlRun(['apply', '--server-side', '-k', overlay(name)], undefined, 120_000);
  expect(r.status, `kubectl apply -k config/${name}: ${r.stderr}`).to.equal(0);
}

/**
 * Sends every delete of the overlay without kubectl's own wait (bounded by its --timeout, and
 * silent on what it left). The callers wait (waitNamespaceGone, leftoversAfterDelete) and name
 * what is left and why: a CRD left once after a CI run, and the log could not say whether its
 * delete had arrived.
 */
function deleteOverlay(name: string): void {
  const r = kubectlRun(
    ['delete', '-k', overlay(name), '--ignore-not-found', '--wait=false'],
    undefined,
    120_000,
  );
  expect(r.status, `kubectl delete -k config/${name}: ${r.stderr}`).to.equal(0);
}

async function waitNamespaceGone(ns: string, timeoutMs = 150_000): Promise<void> {
  await waitFor(
    `namespace ${ns} to be gone`,
    () => (kubectlRun(['get', 'namespace', ns]).status !== 0 ? true : undefined),
    timeoutMs,
    1000,
  );
}

function wait(args: string[], timeoutS: number): void {
  const r = kubectlRun(['wait', ...args, `--timeout=${timeoutS}s`], undefined, (timeoutS + 10) * 1000);
  if (r.status === 0) return;
  const pods = kubectlRun(['get', 'pods', '-n', 'weft-system', '-o', 'wide']).stdout;
  const logs = kubectlRun(['logs', '-n', 'weft-system', 'job/weft-certs', '--tail=5']);
  throw new Error(
    `kubectl wait ${args.join(' ')}: ${r.stderr.trim()}\n${pods}\n${logs.stdout}${logs.stderr}`,
  );
}

function secretVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of CERT_SECRETS) {
    const r = kubectlRun([
      'get',
      'secret',
      '-n',
      'weft-system',
      s,
      '-o',
      'jsonpath={.metadata.resourceVersion}',
    ]);
    if (r.status === 0) out[s] = r.stdout;
  }
  return out;
}

/** Runs the renewal CronJob once by hand and waits for it. */
function runRenewal(jobName: string): void {
  kubectl(['create', 'job', '-n', 'weft-system', jobName, '--from=cronjob/weft-certs-renew']);
  wait(['-n', 'weft-system', '--for=condition=Complete', `job/${jobName}`], 120);
}

/** weft's cluster-scoped objects still present (CRDs, RBAC, webhook configurations). */
function weftLeftovers(): string[] {
  const r = kubectlRun([
    'get',
    'crd,clusterrole,clusterrolebinding,validatingwebhookconfiguration,mutatingwebhookconfiguration',
    '-l',
    'app.kubernetes.io/part-of=weft',
    '-o',
    'name',
  ]);
  if (r.status !== 0) throw new Error(`kubectl get: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/**
 * What is left of weft once a delete has had time to finish: a CRD stays Terminating while the
 * API server cleans up its objects (more so on a loaded machine), so this polls before it
 * reports (up to 120 s).
 */
async function leftoversAfterDelete(): Promise<string[]> {
  const deadline = Date.now() + 120_000;
  let left = weftLeftovers();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    left = weftLeftovers();
  }
  return left.map(describeLeftover);
}

/** A leftover with what explains it: whether its delete arrived, and what finalizers hold it. */
function describeLeftover(name: string): string {
  const r = kubectlRun(['get', name, '-o', 'jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}']);
  const [deleting = '', ...finalizers] = r.stdout.trim().split(' ');
  if (r.status !== 0) return name;
  return deleting === ''
    ? `${name} (never deleted)`
    : `${name} (Terminating since ${deleting}, finalizers ${finalizers.join(' ')})`;
}

function weftctl(args: string[], input?: string): string {
  const r = spawnSync(join(repoRoot, 'bin', 'weftctl.js'), args, {
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`weftctl ${args.join(' ')} → ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe('e2e: each config/ overlay alone on a cluster without weft', function () {
  this.timeout(300_000);

  before(async function () {
    if (!weftImageLoaded()) {
      process.stdout.write('      skipped: the weft image is not on the node (hack/images/load.sh weft)\n');
      this.skip();
    }
    if (kubectlRun(['get', 'mesh', 'default']).status === 0) {
      process.stdout.write(
        '      skipped: this cluster runs a Mesh (npm start?); the suite needs a clean one\n',
      );
      this.skip();
    }
    await waitNamespaceGone('weft-system');
    expect(weftLeftovers(), 'weft objects before the suite').to.deep.equal([]);
  });

  describe('config/crd', () => {
    after(() => deleteOverlay('crd'));

    it('applies alone: every CRD is Established', () => {
      applyOverlay('crd');
      wait(['--for=condition=Established', 'crd', '-l', 'app.kubernetes.io/part-of=weft'], 60);
      const crds = kubectl(['get', 'crd', '-o', 'name'])
        .split('\n')
        .filter((l) => /istio\.io|weft/.test(l));
      expect(crds.length).to.be.at.least(15);
    });
  });

  describe('config/controlplane', () => {
    let ns: { ns: string; cleanup: () => void } | undefined;
    after(async function () {
      ns?.cleanup();
      deleteOverlay('controlplane');
      await waitNamespaceGone('weft-system');
      expect(await leftoversAfterDelete(), 'left after kubectl delete -k config/controlplane').to.deep.equal(
        [],
      );
    });

    it('applies alone: the certificates Job issues the root CA and weftd-tls, and weftd becomes Ready', () => {
      applyOverlay('controlplane');
      wait(['-n', 'weft-system', '--for=condition=Complete', 'job/weft-certs'], 120);
      expect(Object.keys(secretVersions())).to.include.members(['weft-root-ca', 'weftd-tls']);
      wait(['-n', 'weft-system', '--for=condition=Available', 'deployment/weftd'], 150);
    });

    it('a pod injected with weftctl kube-inject gets its workload certificate and becomes Ready', async () => {
      ns = freshNamespace('ovl-cp');
      await waitForServiceAccount(ns.ns);
      const pod = {
        ...clientPod('client'),
        metadata: { name: 'client', namespace: ns.ns, labels: { app: 'client' } },
      };
      const injected = weftctl(['kube-inject', '-f', '-'], stringify(pod));
      expect(injected).to.include('weft-proxy');
      kubectl(['apply', '-f', '-'], injected);
      // Ready means the sidecar holds a workload certificate from weftd's CA (issue #13).
      await waitPodReady(ns.ns, 'client', 150_000);
      const cm = kubectlJson<{ data?: Record<string, string> }>([
        'get',
        'configmap',
        '-n',
        ns.ns,
        'weft-ca-root-cert',
      ]);
      expect(Object.values(cm.data ?? {}).join('')).to.include('BEGIN CERTIFICATE');
    });

    it('the renewal CronJob run by hand changes nothing while the certificates are valid', () => {
      const before = secretVersions();
      runRenewal('weft-certs-check-cp');
      expect(secretVersions()).to.deep.equal(before);
    });
  });

  describe('config/webhook', () => {
    let ns: { ns: string; cleanup: () => void } | undefined;
    after(async function () {
      ns?.cleanup();
      deleteOverlay('webhook');
      await waitNamespaceGone('weft-system');
      expect(await leftoversAfterDelete(), 'left after kubectl delete -k config/webhook').to.deep.equal([]);
    });

    it('applies alone: the certificates Job writes the caBundle of both webhook configurations', () => {
      applyOverlay('webhook');
      wait(['-n', 'weft-system', '--for=condition=Complete', 'job/weft-certs'], 120);
      wait(['-n', 'weft-system', '--for=condition=Available', 'deployment/weft-webhook'], 150);
      for (const kind of [
        'validatingwebhookconfiguration/weft-validator',
        'mutatingwebhookconfiguration/weft-sidecar-injector',
      ]) {
        const bundles = kubectl(['get', kind, '-o', 'jsonpath={.webhooks[*].clientConfig.caBundle}'])
          .trim()
          .split(/\s+/);
        for (const b of bundles)
          expect(Buffer.from(b, 'base64').toString('utf8'), kind).to.include('BEGIN CERTIFICATE');
      }
    });

    it('kubectl apply of an invalid VirtualService is denied with the webhook message; a valid one is stored', async () => {
      ns = freshNamespace('ovl-wh');
      const vs = (weight: number): string =>
        stringify({
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'reviews', namespace: ns!.ns },
          spec: {
            hosts: ['reviews'],
            http: [
              {
                route: [
                  { destination: { host: 'reviews' }, weight },
                  { destination: { host: 'ratings' }, weight },
                ],
              },
            ],
          },
        });
      // The webhook's Service endpoints may lag its Available condition by a moment.
      const denied = await waitFor(
        'the webhook to answer',
        () => {
          const r = kubectlRun(['apply', '-f', '-'], vs(0));
          return /denied the request/.test(r.stderr) ? r : undefined;
        },
        60_000,
        1000,
      );
      expect(denied.status).to.not.equal(0);
      expect(denied.stderr).to.match(
        /admission webhook "validation\.mesh\.weft\.dev" denied the request: .*weight/,
      );
      const ok = kubectlRun(['apply', '-f', '-'], vs(50));
      expect(ok.status, ok.stderr).to.equal(0);
    });

    it('a pod in a namespace labelled istio-injection=enabled is injected (server-side dry run)', async () => {
      kubectl(['label', 'namespace', ns!.ns, 'istio-injection=enabled']);
      await waitForServiceAccount(ns!.ns);
      const pod = { ...clientPod('client'), metadata: { name: 'client', namespace: ns!.ns } };
      const out = JSON.parse(
        kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], stringify(pod)),
      ) as {
        spec: { containers: { name: string }[]; initContainers?: { name: string }[] };
      };
      const names = [...(out.spec.initContainers ?? []), ...out.spec.containers].map((c) => c.name);
      expect(names).to.include('weft-proxy');
    });
  });
});
