/**
 * weftd and RequestAuthentication against a real API server: the policy is watched and selects
 * the gateway pod; its `jwksUri` is fetched by weftd from a loopback JWKS server and the keys are
 * pushed inline; a rotated key is picked up by the refresh; when the server fails the last good
 * keys stay, and a URI that never answered gives an empty key set with the reason (the proxy
 * refuses that issuer: fail closed). The config weftd would push is read from /debug/config.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Weftd } from '../../../controlplane/weftd.js';
import { createCA, issueServing } from '../../../pkg/certs/index.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import { createLogger } from '../../../pkg/log/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { jwks, makeKey, startJwksServer } from '../../support/jwt.js';
import { pod, startTestWeftd } from './fixtures.js';

const log = createLogger('test', { silent: true });
const HOUR = 3600_000;

describe('weftd: RequestAuthentication with a jwksUri (real API server, loopback JWKS server)', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let weftd: Weftd;
  let dir: string;
  let ns: string;
  let srv: Awaited<ReturnType<typeof startJwksServer>>;
  const k1 = makeKey('rsa', 'k1');
  const k2 = makeKey('rsa', 'k2');

  const configOf = async (podName: string): Promise<ProxyConfig | undefined> => {
    const res = await fetch(
      `http://127.0.0.1:${weftd.monitoringPort}/debug/config?namespace=${ns}&pod=${podName}`,
    );
    return ((await res.json()) as { config?: ProxyConfig }).config;
  };

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('weftd-jwt');
    srv = await startJwksServer(jwks(k1));
    const now = new Date();
    const ca = createCA({ commonName: 'weftd-test-ca', ttlMs: HOUR, now });
    const leaf = issueServing(ca, {
      commonName: 'weftd',
      dnsNames: ['weftd.weft-system.svc'],
      ttlMs: HOUR,
      now,
    });
    dir = mkdtempSync(join(tmpdir(), 'weftd-jwt-'));
    writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
    await kube.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app', namespace: ns } });
    await kube.create(pod(ns, 'ingress-1', { istio: 'ingressgateway', 'weft.dev/gateway': 'true' }, 'app'));
    await kube.create(pod(ns, 'other-1', { app: 'other' }, 'app'));
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { workloadCa: false, jwks: { refreshMs: 300, retryMs: 300 } },
    );
    await weftd.registry.hasSynced;
  });

  after(async () => {
    await weftd?.stop();
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches jwksUri, pushes the keys inline to the selected gateway only, follows a rotation, keeps keys on failure', async () => {
    await kube.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: ns },
      spec: {
        selector: { matchLabels: { istio: 'ingressgateway' } },
        jwtRules: [{ issuer: 'https://idp.test', jwksUri: srv.url, audiences: ['shop'] }],
      },
    });
    const kidsOf = (c: ProxyConfig | undefined): string[] | null => {
      const p = c?.jwt?.providers[0];
      if (!p) return null;
      return (JSON.parse(p.jwks) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    };
    const first = await waitFor('the gateway config with the fetched key', async () => {
      const c = await configOf('ingress-1');
      return kidsOf(c)?.[0] === 'k1' ? c : null;
    });
    expect(first!.jwt!.providers[0]).to.deep.include({
      issuer: 'https://idp.test',
      audiences: ['shop'],
      source: `RequestAuthentication ${ns}/jwt jwtRules[0]`,
    });
    expect(first!.jwt!.providers[0]).to.not.have.property('jwksError');
    expect((await configOf('other-1'))?.jwt).to.equal(undefined);

    srv.set(jwks(k2));
    await waitFor('the rotated key', async () =>
      (kidsOf(await configOf('ingress-1')) ?? [])[0] === 'k2' ? true : null,
    );

    const hits = srv.hits;
    srv.set('<html>oops</html>', 500);
    await waitFor('a failed refresh', async () => (srv.hits > hits + 1 ? true : null));
    expect(kidsOf(await configOf('ingress-1'))).to.deep.equal(['k2']);
    expect(weftd.jwks.list().find((e) => e.key === srv.url)!.error).to.contain('last good keys kept');
  });

  it('a jwksUri that never answers: the provider has no keys and says why (the proxy refuses: fail closed)', async () => {
    await kube.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'dead', namespace: ns },
      spec: {
        selector: { matchLabels: { app: 'other' } },
        jwtRules: [
          { issuer: 'https://dead.test', jwksUri: 'http://127.0.0.1:9/jwks.json', timeout: '500ms' },
        ],
      },
    });
    const p = await waitFor('the failed fetch reported', async () => {
      const prov = (await configOf('other-1'))?.jwt?.providers[0];
      return prov?.jwksError?.includes('fetch failed') ? prov : null;
    });
    expect(p.jwks).to.equal('{"keys":[]}');
  });
});
