/**
 * A pod naming an image that was never imported must fail on the node, not reach a registry:
 * containerd's registry hosts config sends every pull to the discard port on loopback. The
 * test refuses to create such a pod unless that config is in place.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoStateDir } from '../../hack/cluster/paths.js';
import { apply, freshNamespace, kubectlJson, waitFor, waitForServiceAccount } from './support/kube.js';

const hostsToml = join(demoStateDir, 'containerd', 'certs.d', '_default', 'hosts.toml');

interface PodStatus {
  status?: { containerStatuses?: { state?: { waiting?: { reason?: string; message?: string } } }[] };
}

describe('e2e: no registry is ever contacted', function () {
  this.timeout(120_000);
  let ns = '';
  let cleanup = (): void => undefined;

  before(async function () {
    // Only against the node this repository runs, whose containerd config we can read.
    if (!existsSync(hostsToml)) this.skip();
    ({ ns, cleanup } = freshNamespace('e2e-noreg'));
    await waitForServiceAccount(ns);
  });
  after(() => cleanup());

  it('containerd sends every registry request to the discard port on loopback', () => {
    expect(readFileSync(hostsToml, 'utf8')).to.match(/^server = "http:\/\/127\.0\.0\.1:9"$/m);
  });

  it('a pod with an image that was not imported fails with ErrImagePull against loopback', async () => {
    expect(readFileSync(hostsToml, 'utf8')).to.include('127.0.0.1:9'); // never create it otherwise
    apply(ns, [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'not-imported' },
        spec: {
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 0,
          containers: [
            {
              name: 'c',
              image: 'docker.io/library/weft-e2e-not-imported:1',
              imagePullPolicy: 'IfNotPresent',
            },
          ],
        },
      },
    ]);
    const waiting = await waitFor('the pull to fail', () => {
      const w = kubectlJson<PodStatus>(['get', 'pod', 'not-imported', '-n', ns]).status
        ?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff' ? w : undefined;
    });
    expect(waiting.message ?? '').to.include('127.0.0.1:9');
    expect(waiting.message ?? '').not.to.match(/registry-1\.docker\.io|no such host/);
  });
});
