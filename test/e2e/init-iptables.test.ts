/**
 * The groundwork for the sidecar's `proxy init`: an init container with NET_ADMIN/NET_RAW (and
 * every other capability dropped) installs nat rules that live in the pod's own network
 * namespace — the app container's outbound TCP is redirected to a local port — while the
 * host's rule set does not change.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import {
  apply,
  freshNamespace,
  IMAGES,
  kubectl,
  kubectlJson,
  waitForServiceAccount,
  waitPodReady,
} from './support/kube.js';

const caps = { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] };

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'captured' },
  spec: {
    terminationGracePeriodSeconds: 1,
    automountServiceAccountToken: false,
    initContainers: [
      {
        name: 'init-iptables',
        image: IMAGES.toolbox,
        imagePullPolicy: 'IfNotPresent',
        securityContext: { capabilities: caps, runAsUser: 0 },
        command: [
          'sh',
          '-c',
          [
            'set -e',
            'iptables -t nat -N WEFT_E2E_OUTPUT',
            'iptables -t nat -A WEFT_E2E_OUTPUT -p tcp --dport 9 -j REDIRECT --to-ports 15001',
            'iptables -t nat -A OUTPUT -p tcp -j WEFT_E2E_OUTPUT',
            'iptables -t nat -S',
          ].join('\n'),
        ],
      },
    ],
    containers: [
      {
        name: 'app',
        image: IMAGES.toolbox,
        imagePullPolicy: 'IfNotPresent',
        // NET_ADMIN here only so the test can read the rules back with iptables-save.
        securityContext: { capabilities: caps, runAsUser: 0 },
        // A stand-in for the proxy's outbound listener: answers "captured" on :15001.
        command: ['sh', '-c', 'nc -ll -p 15001 -e /bin/echo captured'],
      },
    ],
  },
};

function hostNatRules(): string {
  const r = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
  return r.stdout ?? '';
}

describe('e2e: init container iptables in the pod network namespace', function () {
  this.timeout(120_000);
  let ns = '';
  let cleanup = (): void => undefined;

  before(async () => {
    ({ ns, cleanup } = freshNamespace('e2e-iptables'));
    await waitForServiceAccount(ns);
    apply(ns, [pod]);
    await waitPodReady(ns, 'captured');
  });
  after(() => cleanup());

  it('the init container ran its iptables commands and exited 0', () => {
    const p = kubectlJson<{
      status: { initContainerStatuses: { state: { terminated?: { exitCode: number } } }[] };
    }>(['get', 'pod', 'captured', '-n', ns]);
    expect(p.status.initContainerStatuses[0]?.state.terminated?.exitCode).to.equal(0);
    const log = kubectl(['logs', '-n', ns, 'captured', '-c', 'init-iptables']);
    expect(log).to.include('-A WEFT_E2E_OUTPUT -p tcp -m tcp --dport 9 -j REDIRECT --to-ports 15001');
  });

  it('the rules are in the pod network namespace', () => {
    const rules = kubectl(['exec', '-n', ns, 'captured', '-c', 'app', '--', 'iptables-save', '-t', 'nat']);
    expect(rules).to.include(':WEFT_E2E_OUTPUT');
    expect(rules).to.include('-A OUTPUT -p tcp -j WEFT_E2E_OUTPUT');
  });

  it("redirects the app container's outbound TCP to the local listener", () => {
    // 10.244.0.1:9 is the node's address; nothing listens there, so only the redirect answers.
    const out = kubectl([
      'exec',
      '-n',
      ns,
      'captured',
      '-c',
      'app',
      '--',
      'sh',
      '-c',
      'echo hi | nc -w 3 10.244.0.1 9',
    ]);
    expect(out.trim()).to.equal('captured');
  });

  it("leaves the host's nat table alone", () => {
    expect(hostNatRules()).not.to.include('WEFT_E2E_OUTPUT');
  });

  it('the app container kept only the capabilities it asked for', () => {
    const status = kubectl([
      'exec',
      '-n',
      ns,
      'captured',
      '-c',
      'app',
      '--',
      'grep',
      'CapBnd',
      '/proc/self/status',
    ]);
    // NET_ADMIN (12) and NET_RAW (13): 0x3000.
    expect(status).to.match(/CapBnd:\s+0000000000003000/);
  });
});
