/**
 * Mesh objects say what became of them (issue #16): weftd's elected status writer sets
 * Accepted / ResolvedRefs / Ready / Stalled with observedGeneration on objects in a real API
 * server; `kubectl wait` works on them; a status write or a metadata-only edit causes no push;
 * a status edited by hand converges back; a standby replica writes nothing.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import type { Weftd } from '../../../controlplane/weftd.js';
import type { Condition } from '../../../controlplane/status.js';
import { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { freshNamespace, installCRDs, testCluster, waitFor } from '../../support/index.js';
import { kstatus } from '../../support/kstatus.js';
import { FakeProxy, createReviews, pod, requestToken, startTestWeftd, weftdServingDir } from './fixtures.js';
import { TOKEN_AUDIENCE } from '../../../pkg/discovery/protocol.js';

const log = createLogger('test', { silent: true });
const NET = 'networking.istio.io/v1';
const SECURITY = 'security.istio.io/v1';
const FAST = { debounce: { afterMs: 20, maxMs: 200 }, leaseTiming: { retryPeriodMs: 200 } };

describe('weftd: status conditions on mesh objects', function () {
  this.timeout(120_000);
  let kube: KubeClient;
  let ns: string;
  let dir: string;
  let weftd: Weftd;
  let standby: Weftd | undefined;
  let leaderStopped = false;

  const get = (kind: string, name: string): Promise<KubeObject | null> =>
    kube.get({ apiVersion: NET, kind, namespace: ns, name });
  const condition = (o: KubeObject | null, type: string): Condition | undefined =>
    ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
  /** `reason` too when a transient state with the same status comes first (Pending before Nacked). */
  const waitCondition = (
    kind: string,
    name: string,
    type: string,
    status: string,
    reason?: string,
  ): Promise<KubeObject> =>
    waitFor(
      `${kind} ${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
      async () => {
        const o = await get(kind, name);
        const c = condition(o, type);
        return c?.status === status &&
          (reason === undefined || c.reason === reason) &&
          (o?.status as { observedGeneration?: number }).observedGeneration === o?.metadata.generation
          ? o
          : undefined;
      },
      20_000,
    );

  before(async () => {
    kube = new KubeClient(testCluster().kubeConfig);
    await installCRDs();
    ns = await freshNamespace('status');
    dir = weftdServingDir('weftd-status');
    await createReviews(kube, ns);
    weftd = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { workloadCa: false, status: { lease: { namespace: ns, identity: 'weftd-a' }, ...FAST } },
    );
    await weftd.registry.hasSynced;
    await waitFor('weftd-a leads', () => weftd.status?.isLeader, 10_000);
  });

  after(async () => {
    await standby?.stop();
    if (!leaderStopped) await weftd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a valid VirtualService whose references resolve, and kubectl wait sees Ready', async () => {
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'good', namespace: ns },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
    });
    const waited = await testCluster().kubectl(
      ['-n', ns, 'wait', '--for=condition=Ready', 'virtualservice/good', '--timeout=30s'],
      { timeoutMs: 40_000 },
    );
    expect(waited.code, waited.stderr).to.equal(0);
    const o = await get('VirtualService', 'good');
    expect(condition(o, 'Accepted')).to.include({
      status: 'True',
      reason: 'Accepted',
      observedGeneration: 1,
    });
    expect(condition(o, 'ResolvedRefs')).to.include({ status: 'True' });
    expect(condition(o, 'Stalled')).to.include({ status: 'False' });
    expect((o?.status as { observedGeneration: number }).observedGeneration).to.equal(1);
    expect(kstatus([o])[0], 'kstatus (cli-utils) reads it as Current').to.include({ status: 'Current' });
  });

  it('says which subset and host do not exist, and turns True once they do', async () => {
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'dangling', namespace: ns },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            route: [
              { destination: { host: 'reviews', subset: 'v9' }, weight: 50 },
              { destination: { host: 'ratings' }, weight: 50 },
            ],
          },
        ],
      },
    });
    const o = await waitCondition('VirtualService', 'dangling', 'ResolvedRefs', 'False');
    const refs = condition(o, 'ResolvedRefs')!;
    expect(refs.reason).to.equal('RefNotFound');
    expect(refs.message).to.include('subset "v9"').and.include(`host ratings.${ns}.svc.cluster.local`);
    expect(condition(o, 'Stalled')).to.include({ status: 'True', reason: 'RefNotFound' });
    expect(condition(o, 'Ready')).to.include({ status: 'False' });
    expect(kstatus([o])[0], 'kstatus (cli-utils) reads it as Failed').to.include({ status: 'Failed' });

    // the subset appears in the DestinationRule and ratings becomes a Service: resolved
    await kube.mergePatch(
      { apiVersion: NET, kind: 'DestinationRule', namespace: ns, name: 'reviews' },
      {
        spec: {
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            { name: 'v2', labels: { version: 'v2' } },
            { name: 'v9', labels: { version: 'v9' } },
          ],
        },
      },
    );
    await kube.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ratings', namespace: ns },
      spec: { ports: [{ name: 'http', port: 9080 }], selector: { app: 'ratings' } },
    });
    await waitCondition('VirtualService', 'dangling', 'ResolvedRefs', 'True');
  });

  it('marks an object that got past the webhook as not Accepted, with the reason', async () => {
    // the CRD leaves value checks to the webhook (ADR 0012), and this cluster runs none
    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'invalid', namespace: ns },
      spec: {
        hosts: ['reviews'],
        http: [{ timeout: '10 seconds', route: [{ destination: { host: 'reviews' } }] }],
      },
    });
    const o = await waitCondition('VirtualService', 'invalid', 'Accepted', 'False');
    expect(condition(o, 'Accepted')!.reason).to.equal('Invalid');
    expect(condition(o, 'Accepted')!.message).to.include('invalid duration "10 seconds"');
    expect(condition(o, 'Stalled')).to.include({ status: 'True', reason: 'Invalid' });
  });

  it('follows the generation: a spec change gets a verdict for the new generation', async () => {
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name: 'invalid' },
      {
        spec: { http: [{ timeout: '10s', route: [{ destination: { host: 'reviews' } }] }] },
      },
    );
    const o = await waitCondition('VirtualService', 'invalid', 'Accepted', 'True');
    expect(o.metadata.generation).to.equal(2);
    expect(condition(o, 'Accepted')!.observedGeneration).to.equal(2);
  });

  it('pushes nothing for its own status writes or for a metadata-only edit', async () => {
    await waitCondition('VirtualService', 'good', 'Ready', 'True');
    const before = weftd.registry.generation;
    const writes = weftd.status!.counts.writes;
    // what Argo CD does: a tracking annotation and a label, no spec change
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name: 'good' },
      {
        metadata: {
          labels: { 'app.kubernetes.io/instance': 'demo' },
          annotations: { 'argocd.argoproj.io/tracking-id': 'demo:x' },
        },
      },
    );
    // a hand edit of the status: the writer puts the truth back, which is a status write too
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name: 'good' },
      {
        status: {
          observedGeneration: 1,
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'Edited',
              message: 'by hand',
              observedGeneration: 1,
              lastTransitionTime: '2020-01-01T00:00:00Z',
            },
          ],
        },
      },
      'status',
    );
    await waitFor(
      'the hand-edited status converges back',
      async () => condition(await get('VirtualService', 'good'), 'Ready')?.reason === 'Ready',
      20_000,
    );
    expect(weftd.status!.counts.writes).to.be.greaterThan(writes);
    expect(weftd.registry.generation, 'no new config generation').to.equal(before);
  });

  it('Reconciled: True once the connected proxies ACK it; a NACK names the proxy and stalls only that object', async () => {
    for (const name of ['web-1', 'picky-1']) await kube.create(pod(ns, name, { app: name }));
    const token = await requestToken(kube, ns, 'default', { audiences: [TOKEN_AUDIENCE] });
    const address = `127.0.0.1:${weftd.discoveryPort}`;
    const web = new FakeProxy(address, dir, token, 'sidecar', ns, 'web-1');
    // a proxy that cannot run any config holding this header value (as a compile error would)
    const picky = new FakeProxy(address, dir, token, 'sidecar', ns, 'picky-1', (c) =>
      JSON.stringify(c).includes('refused-by-picky') ? 'cannot compile the route' : undefined,
    );
    await web.until('web configured', () => true);
    await picky.until('picky configured', () => true);
    const good = await waitCondition('VirtualService', 'good', 'Reconciled', 'True');
    expect(condition(good, 'Ready')).to.include({ status: 'True' });

    await kube.create({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name: 'refused', namespace: ns },
      spec: {
        hosts: ['refused.example'],
        http: [
          {
            match: [{ headers: { 'x-canary': { exact: 'refused-by-picky' } } }],
            route: [{ destination: { host: 'reviews' } }],
          },
        ],
      },
    });
    // Reconciled=False/Pending comes first when the status pass runs before the NACK arrives
    const refused = await waitCondition('VirtualService', 'refused', 'Reconciled', 'False', 'Nacked');
    const r = condition(refused, 'Reconciled')!;
    expect(r.reason).to.equal('Nacked');
    expect(r.message).to.include(`${ns}/picky-1: cannot compile the route`).and.not.include('web-1');
    expect(condition(refused, 'Stalled')).to.include({ status: 'True', reason: 'Nacked' });
    expect(kstatus([refused])[0]).to.include({ status: 'Failed' });
    // what the proxies already run stays reconciled
    expect(condition(await get('VirtualService', 'good'), 'Reconciled')).to.include({ status: 'True' });

    // the change that fixes it: every proxy ACKs, Reconciled again
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name: 'refused' },
      {
        spec: { http: [{ route: [{ destination: { host: 'reviews' } }] }] },
      },
    );
    const fixed = await waitCondition('VirtualService', 'refused', 'Reconciled', 'True');
    expect(condition(fixed, 'Reconciling')).to.include({ status: 'False' });
    expect(kstatus([fixed])[0]).to.include({ status: 'Current' });
  });

  it('leaves an invalid VirtualService out of the pushed config while its status says it is not applied', async () => {
    await kube.create(pod(ns, 'honest-1', { app: 'honest-1' }));
    const token = await requestToken(kube, ns, 'default', { audiences: [TOKEN_AUDIENCE] });
    const proxy = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, 'honest-1');
    await proxy.until('honest-1 configured', () => true);
    const vsWithHeader = (name: string, host: string, value: string): KubeObject => ({
      apiVersion: NET,
      kind: 'VirtualService',
      metadata: { name, namespace: ns },
      spec: {
        hosts: [host],
        http: [
          {
            headers: { response: { set: { 'x-honest': value } } },
            route: [{ destination: { host: 'reviews' } }],
          },
        ],
      },
    });
    const invalid = (): Promise<KubeObject | null> => get('VirtualService', 'crlf');
    // a CR/LF header value (response splitting): the webhook refuses it; this cluster runs none
    await kube.create(vsWithHeader('crlf', 'crlf.example', 'honest-marker\r\nset-cookie: stolen=1'));
    // created after it: once the proxy runs this one, weftd has seen the invalid one too
    await kube.create(vsWithHeader('after', 'after.example', 'honest-sync'));
    const pushed = await proxy.until('the config with the later VirtualService', (c) =>
      JSON.stringify(c).includes('honest-sync'),
    );
    expect(JSON.stringify(pushed)).not.to.include('honest-marker').and.not.to.include('crlf.example');
    const o = await waitCondition('VirtualService', 'crlf', 'Accepted', 'False');
    expect(condition(o, 'Accepted')!.message)
      .to.include('weft does not apply this object')
      .and.include('invalid character 0x0d');
    expect(condition(o, 'Reconciled')).to.include({ status: 'False', reason: 'Invalid' });
    expect(condition(o, 'Ready')).to.include({ status: 'False', reason: 'Invalid' });
    const events = await weftd.metrics.registry.getSingleMetricAsString('weft_weftd_registry_events_total');
    expect(events).to.match(/kind="VirtualService",result="invalid"} [1-9]/);
    // what weftctl explain reads: the config without it, and it named as not applied
    const debug = (await (
      await fetch(`http://127.0.0.1:${weftd.monitoringPort}/debug/config?namespace=${ns}&pod=honest-1`)
    ).json()) as { config: unknown; notApplied?: { kind: string; name: string; error: string }[] };
    expect(JSON.stringify(debug.config)).not.to.include('honest-marker');
    expect(debug.notApplied?.find((n) => n.name === 'crlf')).to.include({ kind: 'VirtualService' });
    expect(debug.notApplied?.find((n) => n.name === 'crlf')?.error).to.include('invalid character 0x0d');

    // fixed in place: applied again, and its status says so
    await kube.mergePatch(
      { apiVersion: NET, kind: 'VirtualService', namespace: ns, name: 'crlf' },
      {
        spec: {
          http: [
            {
              headers: { response: { set: { 'x-honest': 'honest-fixed' } } },
              route: [{ destination: { host: 'reviews' } }],
            },
          ],
        },
      },
    );
    await proxy.until('the fixed VirtualService pushed', (c) => JSON.stringify(c).includes('honest-fixed'));
    await waitCondition('VirtualService', 'crlf', 'Accepted', 'True');
    expect((await invalid())?.metadata.generation).to.equal(2);
  });

  it('fails closed for an invalid DENY AuthorizationPolicy: the pushed config denies all, its status says so', async () => {
    await kube.create(pod(ns, 'closed-1', { app: 'closed-1' }));
    const token = await requestToken(kube, ns, 'default', { audiences: [TOKEN_AUDIENCE] });
    const proxy = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, 'closed-1');
    await proxy.until('closed-1 configured', () => true);
    // a `when` without values: the webhook refuses it; this cluster runs none. Left out, this
    // DENY of one caller would deny nobody: weft must deny everyone instead
    await kube.create({
      apiVersion: SECURITY,
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-broken', namespace: ns },
      spec: {
        selector: { matchLabels: { app: 'closed-1' } },
        action: 'DENY',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/x/sa/attacker'] } }],
            when: [{ key: 'request.headers[x-a]', values: [] }],
          },
        ],
      },
    });
    const pushed = (await proxy.until('the fail-closed deny-all', (c) =>
      JSON.stringify(c).includes('deny-broken'),
    )) as { authz?: unknown };
    expect(pushed.authz).to.deep.include({
      policies: [{ name: `${ns}/deny-broken`, action: 'DENY', rules: [{}] }],
    });
    const o = await waitFor(
      'deny-broken Accepted=False',
      async () => {
        const got = await kube.get({
          apiVersion: SECURITY,
          kind: 'AuthorizationPolicy',
          namespace: ns,
          name: 'deny-broken',
        });
        return condition(got, 'Accepted')?.status === 'False' ? got : undefined;
      },
      20_000,
    );
    expect(condition(o, 'Accepted')).to.include({ reason: 'Invalid' });
    expect(condition(o, 'Accepted')!.message)
      .to.include('weft does not apply this object as written: it fails validation (spec.rules[0].when[0]')
      .and.include('until it is fixed, weft denies every request to the workloads it selects (fail closed)');
    const debug = (await (
      await fetch(`http://127.0.0.1:${weftd.monitoringPort}/debug/config?namespace=${ns}&pod=closed-1`)
    ).json()) as { notApplied?: { name: string; instead?: string }[] };
    expect(debug.notApplied?.find((n) => n.name === 'deny-broken')?.instead).to.include('fail closed');
  });

  it('fails closed for an invalid REGISTRY_ONLY Sidecar: the pushed config keeps the lockdown, its status says so', async () => {
    await kube.create(pod(ns, 'locked-1', { app: 'locked-1' }));
    const token = await requestToken(kube, ns, 'default', { audiences: [TOKEN_AUDIENCE] });
    const proxy = new FakeProxy(`127.0.0.1:${weftd.discoveryPort}`, dir, token, 'sidecar', ns, 'locked-1');
    await proxy.until('locked-1 configured', () => true);
    // a host that is not `namespace/dnsName`: the webhook refuses it; this cluster runs none.
    // Left out, this Sidecar's lockdown would become ALLOW_ANY with every host of the mesh
    await kube.create({
      apiVersion: NET,
      kind: 'Sidecar',
      metadata: { name: 'lock-broken', namespace: ns },
      spec: {
        workloadSelector: { labels: { app: 'locked-1' } },
        egress: [{ hosts: ['./*', 'no slash here'] }],
        outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      },
    });
    const pushed = (await proxy.until('the fail-closed Sidecar', (c) =>
      JSON.stringify(c).includes('lock-broken'),
    )) as { scope?: unknown; outboundTrafficPolicy?: { mode?: string } };
    expect(pushed.scope).to.deep.equal({ sidecar: `${ns}/lock-broken`, via: 'workload' });
    expect(pushed.outboundTrafficPolicy?.mode).to.equal('REGISTRY_ONLY');
    const o = await waitFor(
      'lock-broken Accepted=False',
      async () => {
        const got = await get('Sidecar', 'lock-broken');
        return condition(got, 'Accepted')?.status === 'False' ? got : undefined;
      },
      20_000,
    );
    expect(condition(o, 'Accepted')).to.include({ reason: 'Invalid' });
    expect(condition(o, 'Accepted')!.message)
      .to.include('weft does not apply this object as written: it fails validation (spec.egress[0].hosts[1]')
      .and.include(
        'until it is fixed, weft applies outboundTrafficPolicy REGISTRY_ONLY to the workloads it scopes, importing only the egress hosts that can be read (./*)',
      );
    const debug = (await (
      await fetch(`http://127.0.0.1:${weftd.monitoringPort}/debug/config?namespace=${ns}&pod=locked-1`)
    ).json()) as { notApplied?: { name: string; instead?: string }[] };
    expect(debug.notApplied?.find((n) => n.name === 'lock-broken')?.instead).to.include('REGISTRY_ONLY');
  });

  it('a standby replica does not write while the leader holds the Lease, and takes over when it stops', async () => {
    standby = await startTestWeftd(
      { kube, ns, tlsDir: dir, log },
      { workloadCa: false, status: { lease: { namespace: ns, identity: 'weftd-b' }, ...FAST } },
    );
    await standby.registry.hasSynced;
    await kube.create({
      apiVersion: NET,
      kind: 'DestinationRule',
      metadata: { name: 'extra', namespace: ns },
      spec: { host: 'ratings' },
    });
    await waitCondition('DestinationRule', 'extra', 'Accepted', 'True');
    expect(standby.status!.isLeader).to.equal(false);
    expect(standby.status!.counts.writes).to.equal(0);

    leaderStopped = true;
    await weftd.stop(); // releases the Lease
    // the leader released the Lease: well under a second here, 40 s is the expiry fallback
    await waitFor('weftd-b takes over', () => standby!.status!.isLeader, 40_000);
    await kube.create({
      apiVersion: NET,
      kind: 'ServiceEntry',
      metadata: { name: 'api', namespace: ns },
      // a host and visibility of its own: another suite's entry for the same host would merge with it
      spec: {
        hosts: [`api.${ns}.example`],
        ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
        resolution: 'DNS',
        exportTo: ['.'],
      },
    });
    await waitCondition('ServiceEntry', 'api', 'Ready', 'True');
    expect(standby.status!.counts.writes).to.be.greaterThan(0);
  });
});
