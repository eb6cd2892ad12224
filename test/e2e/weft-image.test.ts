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

/**
 * What pods exec in the image (the injector's postStart `proxy wait`, `kubectl exec -- weftctl`),
 * as the rendered pods run it: uid 1337, read-only root, every capability dropped. The
 * proxy's native addon must load there too.
 */
const asPodsRunIt = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'shims' },
  spec: {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    containers: [
      {
        name: 'weft',
        image: 'ghcr.io/weft-mesh/weft-proxy:0.1.0',
        imagePullPolicy: 'IfNotPresent',
        command: ['sh', '-c'],
        args: [
          [
            'set -e',
            'for c in proxy weftd weftctl weft; do command -v "$c"; done',
            'weftctl --help | head -1',
            'for f in /opt/weft/dist/proxy/native/*.node; do node -e "require(process.argv[1]); console.log(\'loaded\', process.argv[1])" "$f"; done',
            'if touch /opt/weft/x 2>/dev/null; then echo "root is writable"; exit 1; fi',
            'echo all-ok',
          ].join('\n'),
        ],
        securityContext: {
          runAsUser: 1337,
          runAsGroup: 1337,
          runAsNonRoot: true,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        },
      },
    ],
  },
};

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
      asPodsRunIt,
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

  it('has proxy, weftd, weftctl on PATH and loads the native addon as uid 1337 on a read-only root', async () => {
    const phase = await finished('shims');
    const logs = kubectl(['logs', '-n', ns, 'shims']);
    expect(phase, logs).to.equal('Succeeded');
    for (const c of ['proxy', 'weftd', 'weftctl']) expect(logs).to.include(`/usr/local/bin/${c}`);
    expect(logs).to.include('weftctl: command line for weft');
    expect(logs).to.match(/loaded \/opt\/weft\/dist\/proxy\/native\/\S+\.node/);
    expect(logs).to.include('all-ok');
  });
});
