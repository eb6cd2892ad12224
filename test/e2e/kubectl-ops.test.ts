/**
 * What an operator does with pods every day, through the real API server → kubelet path:
 * `kubectl logs`, `kubectl exec` (with stdin and exit codes), and deletion with graceful
 * termination — a pod that handles SIGTERM goes at once, one that ignores it is killed when its
 * grace period ends, not before.
 */
import { expect } from 'chai';
import {
  apply,
  freshNamespace,
  IMAGES,
  kubectl,
  kubectlRun,
  kubectlStream,
  waitFor,
  waitForServiceAccount,
  waitPodReady,
} from './support/kube.js';

function toolboxPod(name: string, script: string, grace: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      terminationGracePeriodSeconds: grace,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'main',
          image: IMAGES.toolbox,
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', script],
        },
      ],
    },
  };
}

// `sleep 1` in a loop, so the shell gets to run its trap within a second of SIGTERM.
const HANDLES_TERM = `trap 'echo got SIGTERM; exit 0' TERM; echo started; while true; do sleep 1; done`;
const IGNORES_TERM = `trap '' TERM; echo started; while true; do sleep 1; done`;

/** Deletes a pod and waits until it is gone; returns the seconds it took. */
function timedDelete(ns: string, name: string): number {
  const t0 = Date.now();
  kubectl(['delete', 'pod', name, '-n', ns, '--wait=true', '--timeout=60s'], undefined, 90_000);
  return (Date.now() - t0) / 1000;
}

describe('e2e: kubectl logs, exec and graceful deletion', function () {
  this.timeout(180_000);
  let ns = '';
  let cleanup = (): void => undefined;

  before(async () => {
    ({ ns, cleanup } = freshNamespace('e2e-ops'));
    await waitForServiceAccount(ns);
    apply(ns, [
      toolboxPod('graceful', HANDLES_TERM, 30),
      toolboxPod('stubborn', IGNORES_TERM, 3),
      toolboxPod('worker', 'echo line-one; echo line-two >&2; exec sleep 3600', 1),
    ]);
    await Promise.all(['graceful', 'stubborn', 'worker'].map((n) => waitPodReady(ns, n)));
  });
  after(() => cleanup());

  it('kubectl logs returns stdout and stderr of the container', async () => {
    const logs = await waitFor('both log lines', () => {
      const l = kubectl(['logs', '-n', ns, 'worker']);
      return l.includes('line-one') && l.includes('line-two') ? l : undefined;
    });
    // stdout and stderr are separate pipes: their relative order is not defined.
    expect(logs.trim().split('\n').sort()).to.deep.equal(['line-one', 'line-two']);
  });

  it('kubectl exec runs in the container, passes stdin and returns the exit code', () => {
    expect(kubectl(['exec', '-n', ns, 'worker', '--', 'cat', '/etc/hostname']).trim()).to.equal('worker');
    expect(kubectl(['exec', '-i', '-n', ns, 'worker', '--', 'tr', 'a-z', 'A-Z'], 'shout\n').trim()).to.equal(
      'SHOUT',
    );
    const failing = kubectlRun(['exec', '-n', ns, 'worker', '--', 'sh', '-c', 'exit 7']);
    expect(failing.status).to.equal(7);
  });

  it('kubectl exec sees only the pod (own PID namespace, pod IP)', () => {
    const ps = kubectl(['exec', '-n', ns, 'worker', '--', 'ps', '-o', 'pid,comm']);
    expect(ps).not.to.match(/kubelet|containerd/);
    expect(kubectl(['exec', '-n', ns, 'worker', '--', 'hostname', '-i'])).to.match(/10\.244\.0\.\d+/);
  });

  it('a pod that handles SIGTERM is deleted at once, after its handler ran', async () => {
    const follow = kubectlStream(['logs', '-f', '-n', ns, 'graceful']);
    await waitFor(
      'log stream attached',
      () => (follow.output().includes('started') ? true : undefined),
      15_000,
    );
    const seconds = timedDelete(ns, 'graceful');
    await Promise.race([follow.done, new Promise((r) => setTimeout(r, 5_000))]);
    follow.stop();
    expect(follow.output()).to.include('got SIGTERM');
    // 30 s of grace allowed, but the process exits within ~1 s of the signal.
    expect(seconds).to.be.lessThan(15);
  });

  it('a pod that ignores SIGTERM is killed when its grace period (3 s) ends', () => {
    const seconds = timedDelete(ns, 'stubborn');
    expect(seconds).to.be.at.least(2.5);
    expect(seconds).to.be.lessThan(20);
  });
});
