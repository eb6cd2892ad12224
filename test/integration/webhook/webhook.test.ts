/**
 * The admission webhooks on a real kube-apiserver, driven with real kubectl: what a user sees
 * at `kubectl apply` time, and what the API server stores for injected pods.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { get } from 'node:https';
import { stringify } from 'yaml';
import type { V1Pod } from '@kubernetes/client-node';
import { injectManifests, DEFAULT_INJECTION_SETTINGS } from '../../../pkg/inject/index.js';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import {
  SCOPE_LABEL,
  startWebhook,
  waitForInjection,
  waitForValidation,
  type RunningWebhook,
} from './harness.js';

const WEBHOOK = 'validation.mesh.weft.dev';

function obj(
  apiVersion: string,
  kind: string,
  name: string,
  ns: string,
  spec: unknown,
): Record<string, unknown> {
  return { apiVersion, kind, metadata: { name, namespace: ns }, spec };
}
const vs = (name: string, ns: string, spec: unknown) =>
  obj('networking.istio.io/v1', 'VirtualService', name, ns, spec);
const route = (host: string) => [{ destination: { host } }];

/** [title, object, expected path: message (after "Kind ns/name: ")] */
function invalidTable(ns: string): [string, Record<string, unknown>, string][] {
  return [
    [
      'VirtualService with all-zero weights',
      vs('zero', ns, {
        hosts: ['reviews'],
        http: [
          {
            route: [
              { destination: { host: 'reviews', subset: 'v1' }, weight: 0 },
              { destination: { host: 'reviews', subset: 'v2' }, weight: 0 },
            ],
          },
        ],
      }),
      'spec.http[0].route: total destination weight = 0',
    ],
    [
      'VirtualService with an empty destination host',
      vs('empty-host', ns, { hosts: ['reviews'], http: [{ route: route('') }] }),
      'spec.http[0].route[0].destination.host: empty domain name not allowed',
    ],
    [
      'VirtualService with a broken regex',
      vs('regex', ns, {
        hosts: ['reviews'],
        http: [{ match: [{ uri: { regex: '(' } }], route: route('reviews') }],
      }),
      'spec.http[0].match[0].uri.regex: "(": error parsing regexp',
    ],
    [
      'DestinationRule with duplicate subsets',
      obj('networking.istio.io/v1', 'DestinationRule', 'dup', ns, {
        host: 'reviews',
        subsets: [{ name: 'v1' }, { name: 'v1' }],
      }),
      'spec.subsets[1].name: duplicate subset names: v1',
    ],
    [
      'Gateway server without hosts',
      obj('networking.istio.io/v1', 'Gateway', 'gw', ns, {
        selector: { istio: 'ingressgateway' },
        servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: [] }],
      }),
      'spec.servers[0].hosts: server config must contain at least one host',
    ],
    [
      'ServiceEntry with DNS on a wildcard host',
      obj('networking.istio.io/v1', 'ServiceEntry', 'se', ns, {
        hosts: ['*.example.com'],
        resolution: 'DNS',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      }),
      'spec.hosts[0]: DNS resolution cannot be used with wildcard host',
    ],
    [
      'namespace-wide PeerAuthentication with port-level mTLS',
      obj('security.istio.io/v1', 'PeerAuthentication', 'pa', ns, {
        portLevelMtls: { '8080': { mode: 'DISABLE' } },
      }),
      'spec.portLevelMtls: mesh/namespace-wide policy cannot have port level mTLS',
    ],
    [
      'AuthorizationPolicy with an unknown condition key',
      obj('security.istio.io/v1', 'AuthorizationPolicy', 'ap', ns, {
        action: 'ALLOW',
        rules: [{ when: [{ key: 'foo', values: ['x'] }] }],
      }),
      'spec.rules[0].when[0].key: unknown attribute "foo"',
    ],
  ];
}

function validTable(ns: string): Record<string, unknown>[] {
  return [
    vs('reviews', ns, {
      hosts: ['reviews'],
      http: [
        {
          match: [{ headers: { 'end-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'reviews', subset: 'v2' } }],
        },
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 10 },
          ],
        },
      ],
    }),
    obj('networking.istio.io/v1', 'DestinationRule', 'reviews', ns, {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    obj('security.istio.io/v1', 'PeerAuthentication', 'default', ns, { mtls: { mode: 'STRICT' } }),
  ];
}

describe('admission webhooks on a real API server (kubectl)', function () {
  this.timeout(180_000);
  let hook: RunningWebhook;
  let dir: string;
  let ns: string;
  // testCluster() exists only once the root hooks have run, so resolve it per call.
  const kubectl = (args: string[]) => testCluster().kubectl(args);

  function file(name: string, o: unknown): string {
    const path = join(dir, name);
    writeFileSync(path, stringify(o));
    return path;
  }

  before(async () => {
    await installCRDs();
    hook = await startWebhook();
    dir = mkdtempSync(join(tmpdir(), 'weft-webhook-files-'));
    ns = await freshNamespace('webhook', { labels: { [SCOPE_LABEL]: hook.scope } });
    await waitForValidation(ns);
  });
  after(async () => {
    await hook?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function fetchWebhook(path: string): Promise<{ status: number; body: string }> {
    return new Promise((ok, fail) => {
      get({ host: '127.0.0.1', port: hook.port, path, ca: hook.ca }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      }).on('error', fail);
    });
  }

  it('is ready once its caches have synced, over TLS the API server trusts', async () => {
    const r = await fetchWebhook('/readyz');
    expect(r.status).to.equal(200);
    expect(JSON.parse(r.body)).to.include({ ready: true, namespaces: true, index: true });
  });

  describe('validation', () => {
    for (const [title, , expected] of invalidTable('NS')) {
      it(`denies ${title}, naming the webhook and the field path (apply and --dry-run=server)`, async () => {
        const [, o] = invalidTable(ns).find(([t]) => t === title)!;
        const meta = o.metadata as { name: string };
        const path = file(`bad-${meta.name}.yaml`, o);
        const prefix = `Error from server (Forbidden): error when creating "${path}": admission webhook "${WEBHOOK}" denied the request: ${String(o.kind)} ${ns}/${meta.name}: ${expected}`;
        for (const extra of [[], ['--dry-run=server']]) {
          const r = await kubectl(['apply', ...extra, '-f', path]);
          expect(r.code, r.stderr).to.equal(1);
          // Cross-object warnings (e.g. subsets no DestinationRule defines yet) may come first.
          const line = r.stderr.split('\n').find((l) => l.startsWith('Error from server'));
          expect(line, `stderr was:\n${r.stderr}`).to.satisfy((l: string | undefined) =>
            l?.startsWith(prefix),
          );
        }
        const get = await kubectl([
          'get',
          String(o.kind).toLowerCase(),
          meta.name,
          '-n',
          ns,
          '--ignore-not-found',
          '-o',
          'name',
        ]);
        expect(get.stdout.trim(), 'a denied object must not be stored').to.equal('');
      });
    }

    it('applies valid objects, and --dry-run=server agrees', async () => {
      for (const o of validTable(ns)) {
        const path = file(`good-${String(o.kind)}.yaml`, o);
        const dry = await kubectl(['apply', '--dry-run=server', '-f', path]);
        expect(dry.code, dry.stderr).to.equal(0);
        expect(dry.stdout).to.match(/created \(server dry run\)/);
        const r = await kubectl(['apply', '-f', path]);
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.match(/created/);
      }
    });

    it('prints warnings on stderr and still applies', async () => {
      const o = vs('shadowed', ns, {
        hosts: ['ratings'],
        http: [{ route: route('ratings') }, { route: route('ratings') }],
      });
      const r = await kubectl(['apply', '-f', file('warn.yaml', o)]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.include(
        'Warning: spec.http[1]: virtualService rule #1 not used (only the last rule can have no matches)',
      );
    });

    it('checks across objects with the watched index: a missing subset warns until its DestinationRule exists', async () => {
      const canary = vs('canary', ns, {
        hosts: ['canary'],
        http: [{ route: [{ destination: { host: 'canary', subset: 'v2' } }] }],
      });
      const first = await kubectl(['apply', '--dry-run=server', '-f', file('canary.yaml', canary)]);
      expect(first.code, first.stderr).to.equal(0);
      expect(first.stderr).to.match(
        /Warning: spec\.http\[0\]\.route\[0\]\.destination\.subset: subset "v2" of host canary\.[^ ]+ is not defined/,
      );
      const rule = obj('networking.istio.io/v1', 'DestinationRule', 'canary', ns, {
        host: 'canary',
        subsets: [{ name: 'v2', labels: { version: 'v2' } }],
      });
      expect((await kubectl(['apply', '-f', file('canary-dr.yaml', rule)])).code).to.equal(0);
      // The webhook learns about the DestinationRule through its informer, not through this request.
      let stderr = first.stderr;
      for (let i = 0; i < 40 && /subset "v2"/.test(stderr); i++) {
        await sleep(250);
        stderr = (await kubectl(['apply', '--dry-run=server', '-f', join(dir, 'canary.yaml')])).stderr;
      }
      expect(stderr).to.not.match(/subset "v2"/);
    });

    it('denies a second VirtualService for a host another one already routes, naming it', async () => {
      const first = vs('details', ns, { hosts: ['details'], http: [{ route: route('details') }] });
      expect((await kubectl(['apply', '-f', file('details.yaml', first)])).code).to.equal(0);
      const second = vs('details-v2', ns, { hosts: ['details'], http: [{ route: route('details') }] });
      // The index learns about the first one through its informer; allow it a moment.
      let r = await kubectl(['apply', '--dry-run=server', '-f', file('details-v2.yaml', second)]);
      for (let i = 0; i < 40 && r.code === 0; i++) {
        await sleep(250);
        r = await kubectl(['apply', '--dry-run=server', '-f', join(dir, 'details-v2.yaml')]);
      }
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.include(
        `admission webhook "${WEBHOOK}" denied the request: VirtualService ${ns}/details-v2: spec.hosts[0]: host details.${ns}.svc.cluster.local is also claimed for the mesh by VirtualService ${ns}/details`,
      );
    });

    it('denies an update that breaks a stored object, and the stored object stays as it was', async () => {
      const good = vs('upd', ns, { hosts: ['upd'], http: [{ route: route('upd') }] });
      expect((await kubectl(['apply', '-f', file('upd.yaml', good)])).code).to.equal(0);
      const bad = vs('upd', ns, { hosts: ['upd'], http: [{ route: route('') }] });
      const r = await kubectl(['apply', '-f', file('upd.yaml', bad)]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(
        `admission webhook "${WEBHOOK}" denied the request: VirtualService ${ns}/upd: spec.http[0].route[0].destination.host: empty domain name not allowed`,
      );
      const stored = await kubectl([
        'get',
        'virtualservice',
        'upd',
        '-n',
        ns,
        '-o',
        'jsonpath={.spec.http[0].route[0].destination.host}',
      ]);
      expect(stored.stdout).to.equal('upd');
    });

    it('logs each request with uid, kind, object and verdict', () => {
      const lines = hook
        .logs()
        .split('\n')
        .filter((l) => l.includes('"Admission reviewed"'));
      const denied = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.verdict === 'denied' && String(l.object).includes(`${ns}/zero`));
      expect(denied).to.include({ webhook: 'validate', kind: 'VirtualService', operation: 'CREATE' });
      expect(denied?.uid).to.be.a('string');
    });
  });

  describe('injection', () => {
    const nsFor: Record<string, string> = {};
    const kinds = ['istio-enabled', 'weft-enabled', 'disabled', 'unlabelled'] as const;
    const nsLabels: Record<(typeof kinds)[number], Record<string, string>> = {
      'istio-enabled': { 'istio-injection': 'enabled' },
      'weft-enabled': { 'weft.dev/inject': 'enabled' },
      disabled: { 'istio-injection': 'disabled' },
      unlabelled: {},
    };
    // namespace × pod label → injected? (Istio: either disabled → no; either enabled → yes; neither → no)
    const matrix: [(typeof kinds)[number], string | undefined, boolean][] = [
      ['istio-enabled', undefined, true],
      ['istio-enabled', 'true', true],
      ['istio-enabled', 'false', false],
      ['weft-enabled', undefined, true],
      ['weft-enabled', 'false', false],
      ['disabled', undefined, false],
      ['disabled', 'true', false],
      ['unlabelled', undefined, false],
      ['unlabelled', 'true', true],
      ['unlabelled', 'false', false],
    ];

    before(async () => {
      for (const k of kinds)
        nsFor[k] = await freshNamespace(`inj-${k}`, {
          labels: { ...nsLabels[k], [SCOPE_LABEL]: hook.scope },
        });
      await waitForInjection(nsFor['istio-enabled']!);
    });

    async function storedPod(namespace: string, name: string): Promise<V1Pod> {
      const r = await kubectl(['get', 'pod', name, '-n', namespace, '-o', 'json']);
      expect(r.code, r.stderr).to.equal(0);
      return JSON.parse(r.stdout) as V1Pod;
    }

    const isInjected = (p: V1Pod): boolean =>
      [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].some((c) => c.name === 'weft-proxy');

    for (const [nsKind, podLabel, expected] of matrix) {
      it(`namespace ${nsKind}, pod label ${podLabel ?? 'unset'} → ${expected ? 'injected' : 'not injected'}`, async () => {
        const name = `p-${podLabel ?? 'none'}`;
        const pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name,
            namespace: nsFor[nsKind],
            labels: podLabel ? { 'sidecar.istio.io/inject': podLabel } : {},
          },
          spec: { containers: [{ name: 'app', image: 'busybox:1.36', command: ['sleep', '3600'] }] },
        };
        const r = await kubectl(['apply', '-f', file(`${nsKind}-${name}.yaml`, pod)]);
        expect(r.code, r.stderr).to.equal(0);
        const stored = await storedPod(nsFor[nsKind]!, name);
        expect(isInjected(stored)).to.equal(expected);
        expect(stored.metadata?.annotations?.['sidecar.istio.io/status'] !== undefined).to.equal(expected);
      });
    }

    it('stores the full injected pod: proxy, init container, token, status annotation', async () => {
      const stored = await storedPod(nsFor['istio-enabled']!, 'p-none');
      const inits = stored.spec!.initContainers!;
      // The mesh default is native sidecars: iptables first, then the proxy with restartPolicy Always.
      expect(inits.map((c) => c.name)).to.deep.equal(['weft-init', 'weft-proxy']);
      expect(inits[1]!.restartPolicy).to.equal('Always');
      expect(inits[1]!.securityContext?.runAsUser).to.equal(1337);
      expect(inits[0]!.securityContext?.capabilities?.add).to.deep.equal(['NET_ADMIN', 'NET_RAW']);
      const token = stored.spec!.volumes!.find((v) => v.name === 'weft-token');
      expect(token?.projected?.sources?.[0]?.serviceAccountToken?.audience).to.equal('weft-ca');
      expect(JSON.parse(stored.metadata!.annotations!['sidecar.istio.io/status']!)).to.include({
        revision: 'default',
      });
    });

    it('a Deployment in an enabled namespace gets injected pods; its own spec is left as written', async function () {
      const deploy = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: nsFor['istio-enabled'] },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] },
          },
        },
      };
      const r = await kubectl(['apply', '-f', file('deploy.yaml', deploy)]);
      expect(r.code, r.stderr).to.equal(0);
      let pods: V1Pod[] = [];
      for (let i = 0; i < 120 && pods.length === 0; i++) {
        const got = await kubectl([
          'get',
          'pods',
          '-n',
          nsFor['istio-enabled']!,
          '-l',
          'app=web',
          '-o',
          'json',
        ]);
        pods = (JSON.parse(got.stdout) as { items: V1Pod[] }).items;
        if (pods.length === 0) await sleep(500);
      }
      expect(pods, 'kube-controller-manager should have created the pod').to.have.length(1);
      expect(isInjected(pods[0]!)).to.equal(true);
      expect(pods[0]!.metadata?.labels?.['service.istio.io/canonical-name']).to.equal('web');
      const live = await kubectl([
        'get',
        'deployment',
        'web',
        '-n',
        nsFor['istio-enabled']!,
        '-o',
        'jsonpath={.spec.template.spec.containers[*].name}',
      ]);
      expect(live.stdout).to.equal('web');
    });

    it('re-injection changes nothing: a kube-injected pod is stored exactly as kube-inject printed it', async () => {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'pre-injected', namespace: nsFor['istio-enabled'] },
        spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
      };
      const settings = {
        ...structuredClone(DEFAULT_INJECTION_SETTINGS),
        meshNamespace: 'weft-system',
        discoveryAddress: 'weftd.weft-system.svc:15012',
      };
      const [injected] = injectManifests([pod], settings).objects as V1Pod[];
      const r = await kubectl(['apply', '-f', file('pre-injected.yaml', injected)]);
      expect(r.code, r.stderr).to.equal(0);
      const stored = await storedPod(nsFor['istio-enabled']!, 'pre-injected');
      expect(stored.spec!.initContainers!.map((c) => c.name)).to.deep.equal(
        injected!.spec!.initContainers!.map((c) => c.name),
      );
      expect(stored.spec!.containers.map((c) => c.name)).to.deep.equal(['app']);
      expect(stored.metadata!.annotations!['sidecar.istio.io/status']).to.equal(
        injected!.metadata!.annotations!['sidecar.istio.io/status'],
      );
      // Stored proxy args are exactly what kube-inject printed (the webhook did not touch them).
      expect(stored.spec!.initContainers![0]!.args).to.deep.equal(injected!.spec!.initContainers![0]!.args);
    });

    it('a pod with an invalid sidecar annotation is refused with the annotation named', async () => {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'bad-annotation',
          namespace: nsFor['istio-enabled'],
          annotations: { 'sidecar.istio.io/proxyCPU': 'lots' },
        },
        spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
      };
      const r = await kubectl(['apply', '-f', file('bad-annotation.yaml', pod)]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(
        /admission webhook "namespace\.sidecar-injector\.weft\.dev" denied the request: sidecar injection failed: metadata\.annotations\[sidecar\.istio\.io\/proxyCPU\]: "lots" is not a Kubernetes quantity/,
      );
    });

    it('counts what the API server sent it (denials and injections) in /metrics', async () => {
      const m = (await fetchWebhook('/metrics')).body;
      expect(m).to.match(/weft_webhook_denials_total\{kind="VirtualService"\} [1-9]/);
      expect(m).to.match(
        /weft_webhook_requests_total\{webhook="validate",kind="VirtualService",operation="CREATE",result="allowed"\} [1-9]/,
      );
      expect(m).to.match(
        /weft_webhook_injections_total\{result="injected",reason="namespace enabled"\} [1-9]/,
      );
    });
  });
});
