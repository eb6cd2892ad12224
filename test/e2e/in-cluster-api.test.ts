/**
 * In-cluster clients (weft's operator, weftd, the webhook) find kube-apiserver the standard
 * way: https://kubernetes.default.svc with the projected service-account token and CA. On the
 * local node that is kube-proxy → the node IP (the advertised address) → apiserver-forward →
 * kube-apiserver on 127.0.0.1, with the serving certificate valid for every name on the way.
 */
import { expect } from 'chai';
import {
  apply,
  freshNamespace,
  IMAGES,
  kubectl,
  kubectlJson,
  waitFor,
  waitForServiceAccount,
} from './support/kube.js';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';

// Verifies TLS against the mounted CA (NODE_EXTRA_CA_CERTS) and authenticates with the token.
const SCRIPT = `
const fs = require('node:fs');
const token = fs.readFileSync('${SA}/token', 'utf8');
const ns = fs.readFileSync('${SA}/namespace', 'utf8');
(async () => {
  const version = await (await fetch('https://kubernetes.default.svc/version')).json();
  const r = await fetch('https://kubernetes.default.svc.cluster.local/api/v1/namespaces/' + ns + '/pods', { headers: { authorization: 'Bearer ' + token } });
  const body = await r.json();
  console.log(JSON.stringify({ gitVersion: version.gitVersion, status: r.status, message: body.message ?? '' }));
})().catch((e) => { console.log(JSON.stringify({ error: String(e.cause ?? e) })); process.exit(1); });
`;

describe('e2e: in-cluster access to kube-apiserver from a pod', function () {
  this.timeout(120_000);
  let ns = '';
  let cleanup = (): void => undefined;

  before(async () => {
    ({ ns, cleanup } = freshNamespace('e2e-api'));
    await waitForServiceAccount(ns);
    apply(ns, [
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'api-client' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'client',
              image: IMAGES.echo,
              imagePullPolicy: 'IfNotPresent',
              command: ['node', '-e', SCRIPT],
              env: [{ name: 'NODE_EXTRA_CA_CERTS', value: `${SA}/ca.crt` }],
            },
          ],
        },
      },
    ]);
  });
  after(() => cleanup());

  it('the kubernetes Service points at the node IP', () => {
    const slice = kubectlJson<{ items: { endpoints: { addresses: string[] }[] }[] }>([
      'get',
      'endpointslices',
      '-n',
      'default',
      '-l',
      'kubernetes.io/service-name=kubernetes',
    ]);
    expect(slice.items[0]?.endpoints[0]?.addresses).to.deep.equal(['10.244.0.1']);
  });

  it('a pod reaches https://kubernetes.default.svc with verified TLS and its own token', async () => {
    const phase = await waitFor(
      'api-client to finish',
      () => {
        const p = kubectlJson<{ status: { phase?: string } }>(['get', 'pod', 'api-client', '-n', ns]).status
          .phase;
        return p === 'Succeeded' || p === 'Failed' ? p : undefined;
      },
      90_000,
    );
    const out = kubectl(['logs', '-n', ns, 'api-client']).trim();
    expect(phase, out).to.equal('Succeeded');
    const r = JSON.parse(out) as { gitVersion: string; status: number; message: string };
    expect(r.gitVersion).to.equal('v1.36.3');
    // Authenticated as the pod's service account; RBAC grants it nothing, so 403 names it.
    expect(r.status).to.equal(403);
    expect(r.message).to.include(`system:serviceaccount:${ns}:default`);
  });
});
