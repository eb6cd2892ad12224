/**
 * The weft image (ADR 0004) runs in a pod on the node under every component name it is
 * tagged with. Skipped unless it was loaded (`npm run build && hack/images/load.sh weft`).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { demoStateDir } from '../../hack/cluster/paths.js';
import {
  apply,
  freshNamespace,
  kubectl,
  kubectlJson,
  waitFor,
  waitForServiceAccount,
} from './support/kube.js';

const socket = join(demoStateDir, 'containerd', 'containerd.sock');

function loadedImages(): string[] {
  const r = spawnSync('ctr', ['--address', socket, '--namespace', 'k8s.io', 'images', 'ls', '-q'], {
    encoding: 'utf8',
  });
  return (r.stdout ?? '').split('\n').filter((l) => l !== '');
}

function runOnce(name: string, image: string, args: string[]): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      containers: [{ name: 'weft', image, imagePullPolicy: 'IfNotPresent', args }],
    },
  };
}

describe('e2e: the weft image runs on the node', function () {
  this.timeout(120_000);
  let ns = '';
  let cleanup = (): void => undefined;

  before(async function () {
    if (!loadedImages().includes('ghcr.io/weft-mesh/weft:0.1.0')) this.skip();
    ({ ns, cleanup } = freshNamespace('e2e-image'));
    await waitForServiceAccount(ns);
    apply(ns, [
      runOnce('weftctl', 'ghcr.io/weft-mesh/weft:0.1.0', ['weftctl', '--help']),
      runOnce('unknown', 'ghcr.io/weft-mesh/weft-proxy:0.1.0', ['no-such-component']),
    ]);
  });
  after(() => cleanup());

  const finished = (pod: string): Promise<string> =>
    waitFor(`${pod} to finish`, () => {
      const p = kubectlJson<{ status: { phase?: string } }>(['get', 'pod', pod, '-n', ns]).status.phase;
      return p === 'Succeeded' || p === 'Failed' ? p : undefined;
    });

  it('`weft weftctl --help` runs the CLI as a non-root user', async () => {
    expect(await finished('weftctl')).to.equal('Succeeded');
    expect(kubectl(['logs', '-n', ns, 'weftctl'])).to.include('Usage: weftctl');
  });

  it('an unknown component fails with a clear message and exit code 2 (any alias)', async () => {
    expect(await finished('unknown')).to.equal('Failed');
    expect(kubectl(['logs', '-n', ns, 'unknown'])).to.include('weft: unknown component "no-such-component"');
    const p = kubectlJson<{
      status: { containerStatuses: { state: { terminated?: { exitCode: number } } }[] };
    }>(['get', 'pod', 'unknown', '-n', ns]);
    expect(p.status.containerStatuses[0]?.state.terminated?.exitCode).to.equal(2);
  });
});
