import { expect } from 'chai';
import type { Mesh, MeshSpec } from '../../../pkg/api/mesh.js';
import { meshKind } from '../../../pkg/api/mesh.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import {
  effectiveSpec,
  INVENTORY_LABEL,
  parseDuration,
  render,
  semanticFindings,
} from '../../../pkg/render/index.js';
import { runRender } from '../../../cli/commands/render.js';
import { parseMeshSettings } from '../../../controlplane/flags.js';

const mesh = (spec: MeshSpec, meta: Partial<Mesh['metadata']> = {}): Mesh => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'Mesh',
  metadata: { name: 'default', ...meta },
  spec,
});
const names = (objs: { kind: string; metadata: { name: string; namespace?: string } }[]): string[] =>
  objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);

describe('render', () => {
  it('renders the control plane, webhook and configurations (Separate)', () => {
    const out = names(render(mesh({ controlPlane: { mode: 'Separate' } })));
    for (const want of [
      'ServiceAccount/weft-system/weftd',
      'ClusterRole//weftd',
      'ClusterRoleBinding//weftd',
      'ConfigMap/weft-system/weft-mesh-config',
      'Deployment/weft-system/weftd',
      'Service/weft-system/weftd',
      'Deployment/weft-system/weft-webhook',
      'Service/weft-system/weft-webhook',
      'ValidatingWebhookConfiguration//weft-validator',
      'MutatingWebhookConfiguration//weft-sidecar-injector',
    ]) {
      expect(out).to.include(want);
    }
    expect(out.filter((n) => n.startsWith('PodDisruptionBudget'))).to.deep.equal([]);
    expect(out.filter((n) => n.startsWith('Namespace'))).to.deep.equal([]);
  });

  it('is deterministic', () => {
    const spec: MeshSpec = { gateways: [{ name: 'b' }, { name: 'a', namespace: 'edge' }] };
    expect(JSON.stringify(render(mesh(spec)))).to.equal(JSON.stringify(render(mesh(structuredClone(spec)))));
  });

  const pdbTable: Array<[string, MeshSpec, string[]]> = [
    ['1 replica: no PDB', { controlPlane: { replicas: 1 } }, []],
    ['0 replicas: no PDB', { controlPlane: { replicas: 0 } }, []],
    [
      '2 replicas, Separate: weftd and webhook PDBs',
      { controlPlane: { mode: 'Separate', replicas: 2 } },
      ['weft-webhook', 'weftd'],
    ],
    ['2 replicas, Combined: one PDB, on the pods serving both', { controlPlane: { replicas: 2 } }, ['weftd']],
    ['0 replicas, Combined: one pod still runs (admission), no PDB', { controlPlane: { replicas: 0 } }, []],
    ['gateway with 3 replicas', { gateways: [{ name: 'gw', replicas: 3 }] }, ['gw']],
    ['gateway with 1 replica', { gateways: [{ name: 'gw', replicas: 1 }] }, []],
  ];
  for (const [title, spec, want] of pdbTable) {
    it(`PDBs: ${title}`, () => {
      const pdbs = render(mesh(spec)).filter((o) => o.kind === 'PodDisruptionBudget');
      expect(pdbs.map((p) => p.metadata.name).sort()).to.deep.equal(want);
    });
  }

  it('weftd and the webhook serve 5 s into their deletion (preStop sleep); a rollout must not fail an apply', () => {
    type Container = { name: string; lifecycle?: { preStop?: { sleep?: { seconds: number } } } };
    const preStop = (objs: ReturnType<typeof render>, name: string): unknown => {
      const d = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name) as
        { spec: { template: { spec: { containers: Container[] } } } } | undefined;
      expect(d, name).to.not.equal(undefined);
      return d!.spec.template.spec.containers[0]!.lifecycle?.preStop;
    };
    const separate = render(mesh({ controlPlane: { mode: 'Separate' } }));
    expect(preStop(separate, 'weftd')).to.deep.equal({ sleep: { seconds: 5 } });
    expect(preStop(separate, 'weft-webhook')).to.deep.equal({ sleep: { seconds: 5 } });
    // Combined: weftd alone answers the API server's admission calls
    expect(preStop(render(mesh({ controlPlane: { mode: 'Combined' } })), 'weftd')).to.deep.equal({
      sleep: { seconds: 5 },
    });
    // gateways drain themselves on SIGTERM (readiness fails at once, 5 s of in-flight requests)
    const gw = render(mesh({ gateways: [{ name: 'ingress', namespace: 'istio-ingress' }] }));
    expect(preStop(gw, 'ingress')).to.equal(undefined);
  });

  it('puts every gateway in its namespace with the spec replicas, ports and service type', () => {
    const objs = render(
      mesh({
        gateways: [
          {
            name: 'in',
            namespace: 'edge',
            replicas: 2,
            serviceType: 'NodePort',
            ports: [{ name: 'http', port: 80, targetPort: 8080 }],
          },
        ],
      }),
    );
    const dep = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'in') as unknown as {
      metadata: { namespace: string };
      spec: { replicas: number };
    };
    expect(dep.metadata.namespace).to.equal('edge');
    expect(dep.spec.replicas).to.equal(2);
    const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'in') as unknown as {
      spec: { type: string; ports: unknown[] };
    };
    expect(svc.spec.type).to.equal('NodePort');
    expect(svc.spec.ports).to.deep.equal([{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }]);
  });

  it('labels every object with the standard and inventory labels, and never copies Mesh labels', () => {
    const objs = render(
      mesh(
        { gateways: [{ name: 'g' }] },
        {
          labels: { 'app.kubernetes.io/instance': 'argo-app', 'argocd.argoproj.io/instance': 'x' },
          annotations: { 'argocd.argoproj.io/tracking-id': 'x' },
        },
      ),
    );
    for (const o of objs) {
      expect(o.metadata.labels?.['app.kubernetes.io/managed-by'], o.metadata.name).to.equal('weft-operator');
      expect(o.metadata.labels?.['app.kubernetes.io/part-of']).to.equal('weft');
      expect(o.metadata.labels?.[INVENTORY_LABEL]).to.equal('default');
      expect(JSON.stringify(o)).to.not.include('argo');
    }
  });

  it('adds a controller owner reference only when the Mesh has a uid', () => {
    expect(render(mesh({})).every((o) => o.metadata.ownerReferences === undefined)).to.equal(true);
    const owned = render(mesh({}, { uid: 'u-1' }));
    for (const o of owned) {
      expect(o.metadata.ownerReferences).to.deep.equal([
        {
          apiVersion: 'mesh.weft.dev/v1alpha1',
          kind: 'Mesh',
          name: 'default',
          uid: 'u-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
  });

  it('puts caBundle in both webhook configurations when given, and spells out defaulted fields', () => {
    const objs = render(mesh({}), { caBundle: 'Q0E=' });
    const hooks = objs.filter((o) => o.kind.endsWith('WebhookConfiguration')) as unknown as {
      webhooks: Record<string, unknown>[];
    }[];
    expect(hooks).to.have.length(2);
    for (const h of hooks) {
      for (const w of h.webhooks) {
        expect((w.clientConfig as { caBundle?: string }).caBundle).to.equal('Q0E=');
        for (const f of [
          'matchPolicy',
          'namespaceSelector',
          'objectSelector',
          'timeoutSeconds',
          'failurePolicy',
          'sideEffects',
          'admissionReviewVersions',
        ])
          expect(w).to.have.property(f);
        for (const r of w.rules as { scope?: string }[]) expect(r.scope).to.be.a('string');
      }
    }
    const none = render(mesh({})).filter((o) => o.kind.endsWith('WebhookConfiguration'));
    expect(JSON.stringify(none)).to.not.include('caBundle');
  });

  it('refuses a Mesh without a name, and schema-inexpressible errors, naming the field', () => {
    expect(() => render({ ...mesh({}), metadata: {} })).to.throw(/metadata.name/);
    try {
      render(mesh({ gateways: [{ name: 'a' }, { name: 'a' }] }));
      expect.fail('should throw');
    } catch (err) {
      expect(isWeftError(err, 'WEFT_MESH_INVALID')).to.equal(true);
      expect((err as Error).message).to.include('spec.gateways[1]');
    }
  });
});

describe('semanticFindings (what the CRD schema cannot express)', () => {
  const table: Array<[string, MeshSpec, string[]]> = [
    ['empty spec is fine', {}, []],
    [
      'duplicate gateway',
      { gateways: [{ name: 'a' }, { name: 'a', namespace: 'weft-system' }] },
      ['spec.gateways[1]'],
    ],
    [
      'same name, other namespaces is fine',
      {
        gateways: [
          { name: 'a', namespace: 'x' },
          { name: 'a', namespace: 'y' },
        ],
      },
      [],
    ],
    ['gateway name not a DNS label', { gateways: [{ name: 'Bad_Name' }] }, ['spec.gateways[0].name']],
    [
      'gateway namespace not a DNS label',
      { gateways: [{ name: 'ok', namespace: 'No' }] },
      ['spec.gateways[0].namespace'],
    ],
    ['reserved gateway name', { gateways: [{ name: 'weftd' }] }, ['spec.gateways[0].name']],
    ['reserved name ok in another namespace', { gateways: [{ name: 'weftd', namespace: 'edge' }] }, []],
    [
      'duplicate port',
      {
        gateways: [
          {
            name: 'g',
            ports: [
              { name: 'a', port: 80 },
              { name: 'b', port: 80 },
            ],
          },
        ],
      },
      ['spec.gateways[0].ports[1].port'],
    ],
    [
      'nodePort on ClusterIP',
      {
        gateways: [
          { name: 'g', serviceType: 'ClusterIP', ports: [{ name: 'a', port: 80, nodePort: 30080 }] },
        ],
      },
      ['spec.gateways[0].ports[0].nodePort'],
    ],
    ['bad serving TTL', { certificates: { servingCertTTL: '1 year' } }, ['spec.certificates.servingCertTTL']],
    ['bad workload TTL', { certificates: { workloadCertTTL: '5d' } }, ['spec.certificates.workloadCertTTL']],
    [
      'serving TTL too short',
      { certificates: { servingCertTTL: '10m' } },
      ['spec.certificates.servingCertTTL'],
    ],
    [
      'root shorter than serving',
      { certificates: { selfSigned: { rootCertTTL: '2h' }, servingCertTTL: '3h' } },
      ['spec.certificates.selfSigned.rootCertTTL'],
    ],
    [
      'bad root TTL',
      { certificates: { selfSigned: { rootCertTTL: 'x' } } },
      ['spec.certificates.selfSigned.rootCertTTL'],
    ],
    [
      'both CA modes',
      { certificates: { selfSigned: {}, caSecretRef: { name: 'ca' } } },
      ['spec.certificates'],
    ],
    ['CA secret alone is fine', { certificates: { caSecretRef: { name: 'ca' }, servingCertTTL: '2h' } }, []],
    [
      'a Redis address that is not HOST:PORT',
      { rateLimits: { redisAddress: 'redis' } },
      ['spec.rateLimits.redisAddress'],
    ],
    ['a Redis address', { rateLimits: { redisAddress: 'redis.weft-system:6379' } }, []],
    [
      'AUTH without a Redis, a username without a password, a bad Secret name',
      { rateLimits: { passwordSecret: 'Bad_Name', username: 'has space' } },
      [
        'spec.rateLimits.passwordSecret',
        'spec.rateLimits.username',
        'spec.rateLimits.passwordSecret',
        'spec.rateLimits.username',
      ],
    ],
    [
      'a username without passwordSecret',
      { rateLimits: { redisAddress: 'r:6379', username: 'weftd' } },
      ['spec.rateLimits.username'],
    ],
    [
      'redis.deploy without a password Secret, and with a redisAddress of its own',
      { rateLimits: { redisAddress: 'r:6379', redis: { deploy: true } } },
      ['spec.rateLimits.redisAddress', 'spec.rateLimits.passwordSecret'],
    ],
    [
      'redis.deploy with its password Secret',
      { rateLimits: { passwordSecret: 'redis-auth', redis: { deploy: true } } },
      [],
    ],
    [
      'AUTH with an ACL user',
      { rateLimits: { redisAddress: 'r:6379', passwordSecret: 'redis-auth', username: 'weftd' } },
      [],
    ],
  ];
  for (const [title, spec, paths] of table) {
    it(title, () => expect(semanticFindings(spec).map((f) => f.path)).to.deep.equal(paths));
  }
});

describe('render: global rate limits (spec.rateLimits.redisAddress)', () => {
  const args = (objs: ReturnType<typeof render>, name: string): string[] => {
    const d = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === name) as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    return d.spec.template.spec.containers[0]!.args;
  };
  const separate = { controlPlane: { mode: 'Separate' as const } };
  it('off by default: neither weftd nor the webhook gets a flag', () => {
    const out = render(mesh(separate));
    expect(args(out, 'weftd').join(' ')).to.not.contain('ratelimit');
    expect(args(out, 'weft-webhook')).to.not.include('--global-ratelimits');
  });
  it('set: weftd keeps buckets in that Redis, the webhook admits scope global', () => {
    const out = render(mesh({ ...separate, rateLimits: { redisAddress: 'redis.weft-system:6379' } }));
    expect(args(out, 'weftd')).to.include('--ratelimit-redis=redis.weft-system:6379');
    expect(args(out, 'weft-webhook')).to.include('--global-ratelimits');
    // Combined: the in-process webhook admits scope global exactly when weftd has --ratelimit-redis
    const combined = render(mesh({ rateLimits: { redisAddress: 'redis.weft-system:6379' } }));
    expect(args(combined, 'weftd')).to.include.members([
      '--ratelimit-redis=redis.weft-system:6379',
      '--webhook-port=9443',
    ]);
  });
  it('passwordSecret: its password key mounted (no subPath: rotation reaches the file), weftd AUTHs with it', () => {
    const out = render(
      mesh({ rateLimits: { redisAddress: 'r:6379', passwordSecret: 'redis-auth', username: 'weftd' } }),
    );
    expect(args(out, 'weftd')).to.include.members([
      '--ratelimit-redis-password-file=/etc/weft/ratelimit-redis/password',
      '--ratelimit-redis-username=weftd',
    ]);
    const pod = (
      out.find((o) => o.kind === 'Deployment' && o.metadata.name === 'weftd') as unknown as {
        spec: { template: { spec: { volumes: unknown[]; containers: { volumeMounts: unknown[] }[] } } };
      }
    ).spec.template.spec;
    expect(pod.volumes).to.deep.include({
      name: 'ratelimit-redis-auth',
      secret: {
        secretName: 'redis-auth',
        items: [{ key: 'password', path: 'password' }],
        defaultMode: 0o440,
      },
    });
    expect(pod.containers[0]!.volumeMounts).to.deep.include({
      name: 'ratelimit-redis-auth',
      mountPath: '/etc/weft/ratelimit-redis',
      readOnly: true,
    });
    expect(JSON.stringify(out)).to.not.include('password":"'); // a reference, never a value
  });
  it('redis.deploy: weft-redis (Deployment, Service, ServiceAccount) from the local image, requirepass from the Secret; weftd uses it', () => {
    const out = render(
      mesh({ ...separate, rateLimits: { passwordSecret: 'redis-auth', redis: { deploy: true } } }),
    );
    expect(args(out, 'weftd')).to.include.members([
      '--ratelimit-redis=weft-redis.weft-system:6379',
      '--ratelimit-redis-password-file=/etc/weft/ratelimit-redis/password',
    ]);
    expect(args(out, 'weft-webhook')).to.include('--global-ratelimits');
    const names = out.filter((o) => o.metadata.name === 'weft-redis').map((o) => o.kind);
    expect(names.sort()).to.deep.equal(['Deployment', 'Service', 'ServiceAccount']);
    const pod = (
      out.find((o) => o.kind === 'Deployment' && o.metadata.name === 'weft-redis') as unknown as {
        spec: {
          template: {
            spec: {
              volumes: unknown[];
              containers: { image: string; args: string[]; readinessProbe: unknown }[];
            };
          };
        };
      }
    ).spec.template.spec;
    const c = pod.containers[0]!;
    expect(c.image).to.equal('weft.local/redis:1');
    expect(c.args.slice(0, 2)).to.deep.equal(['/bin/sh', '-c']);
    expect(c.args[2]).to.include('pw="$(cat /etc/weft/ratelimit-redis/password)" && [ -n "$pw" ] ||');
    expect(c.args[2]).to.include('--requirepass "$pw"');
    expect(c.args[2]).to.include("--save '' --appendonly no");
    expect(c.readinessProbe).to.deep.include({ tcpSocket: { port: 6379 } });
    expect(pod.volumes).to.deep.include({
      name: 'ratelimit-redis-auth',
      secret: {
        secretName: 'redis-auth',
        items: [{ key: 'password', path: 'password' }],
        defaultMode: 0o440,
      },
    });
  });
  it('redis.deploy without a password Secret: the Mesh is refused, saying why', () => {
    expect(() => render(mesh({ rateLimits: { redis: { deploy: true } } }))).to.throw(
      /spec\.rateLimits\.passwordSecret: redis\.deploy needs passwordSecret/,
    );
  });
});

describe('parseDuration', () => {
  const table: Array<[string, number | null]> = [
    ['1h', 3_600_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['8760h', 8760 * 3_600_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['', null],
    ['h', null],
    ['5d', null],
    ['-1h', null],
    ['1 h', null],
    ['1h ', null],
  ];
  for (const [text, want] of table)
    it(`${JSON.stringify(text)} → ${want}`, () => expect(parseDuration(text)).to.equal(want));
});

describe('effectiveSpec defaults match the CRD schema defaults', () => {
  const props = meshKind.specSchema.properties as Record<
    string,
    { properties?: Record<string, { default?: unknown }>; default?: unknown }
  >;
  it('trustDomain, controlPlane, mtls, certificates', () => {
    const eff = effectiveSpec({});
    expect(eff.trustDomain).to.equal(props.trustDomain!.default);
    expect(eff.controlPlane.replicas).to.equal(props.controlPlane!.properties!.replicas!.default);
    expect(eff.controlPlane.image).to.equal(props.controlPlane!.properties!.image!.default);
    expect(eff.controlPlane.mode).to.equal(props.controlPlane!.properties!.mode!.default);
    expect(eff.mtlsMode).to.equal(props.mtls!.properties!.mode!.default);
    expect(eff.certificates.workloadCertTTL).to.equal(
      props.certificates!.properties!.workloadCertTTL!.default,
    );
    expect(eff.certificates.servingCertTTLms).to.equal(
      parseDuration(String(props.certificates!.properties!.servingCertTTL!.default)),
    );
  });
  it('pathNormalization (BASE, as Istio), and DEFAULT resolved to BASE', () => {
    expect(effectiveSpec({}).pathNormalization.normalization).to.equal(
      props.pathNormalization!.properties!.normalization!.default,
    );
    expect(effectiveSpec({}).pathNormalization.normalization).to.equal('BASE');
    expect(
      effectiveSpec({ pathNormalization: { normalization: 'DEFAULT' } }).pathNormalization,
    ).to.deep.equal({
      normalization: 'BASE',
    });
    expect(
      effectiveSpec({ pathNormalization: { normalization: 'MERGE_SLASHES' } }).pathNormalization
        .normalization,
    ).to.equal('MERGE_SLASHES');
  });
  it("defaultConfig.proxyHeaders reaches mesh.yaml in Istio's shape, and weftd reads it back", () => {
    const meshYaml = (spec: MeshSpec): string => {
      const cm = render(mesh(spec)).find(
        (o) => o.kind === 'ConfigMap' && o.metadata.name === 'weft-mesh-config',
      )!;
      return (cm as unknown as { data: Record<string, string> }).data['mesh.yaml']!;
    };
    expect(meshYaml({})).to.not.include('defaultConfig');
    const ph = { attemptCount: { disabled: true }, envoyDebugHeaders: { disabled: true } };
    const text = meshYaml({ defaultConfig: { proxyHeaders: ph } });
    expect(parseMeshSettings(text).proxyHeaders).to.deep.equal(ph);
  });
  it('defaultConfig.onDemandHosts: on by default, reaches mesh.yaml only when off, and weftd reads it back', () => {
    const meshYaml = (spec: MeshSpec): string => {
      const cm = render(mesh(spec)).find(
        (o) => o.kind === 'ConfigMap' && o.metadata.name === 'weft-mesh-config',
      )!;
      return (cm as unknown as { data: Record<string, string> }).data['mesh.yaml']!;
    };
    for (const on of [meshYaml({}), meshYaml({ defaultConfig: { onDemandHosts: true } })]) {
      expect(on).to.not.include('defaultConfig');
      expect(parseMeshSettings(on).onDemandHosts).to.equal(true);
    }
    const off = meshYaml({ defaultConfig: { onDemandHosts: false } });
    expect(parseMeshSettings(off).onDemandHosts).to.equal(false);
    expect(parseMeshSettings(off).proxyHeaders).to.deep.equal({});
  });
});

describe('weftctl render: bad input is a clear error, never a stack trace', () => {
  const run = (
    text: string,
    args: string[] = ['-f', 'in.yaml'],
  ): { code: number; out: string; err: string } => {
    let out = '';
    let err = '';
    const code = runRender(args, {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      readInput: () => text,
    });
    return { code, out, err };
  };
  const table: Array<[string, string, string[] | undefined, RegExp]> = [
    ['YAML syntax', 'a: [', undefined, /^WEFT_YAML_SYNTAX: in.yaml: document 1/],
    [
      'not a Mesh',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
      undefined,
      /^WEFT_UNKNOWN_KIND: .*ConfigMap, not a Mesh/,
    ],
    ['empty file', '', undefined, /^WEFT_NOT_AN_OBJECT: in.yaml holds no Mesh/],
    [
      'schema violation',
      'apiVersion: mesh.weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {controlPlane: {replicas: -1}}\n',
      undefined,
      /^WEFT_MESH_INVALID: .*spec.controlPlane.replicas/,
    ],
    [
      'semantic violation',
      'apiVersion: mesh.weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {gateways: [{name: a}, {name: a}]}\n',
      undefined,
      /^WEFT_MESH_INVALID: .*spec.gateways/,
    ],
    [
      'two Meshes',
      'apiVersion: mesh.weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: a}\n---\napiVersion: mesh.weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: b}\n',
      undefined,
      /^WEFT_MESH_CONFLICT/,
    ],
    ['no -f', '', [], /-f FILE is required/],
    ['unknown flag', '', ['--nope'], /unknown argument "--nope"/],
  ];
  for (const [title, text, args, re] of table) {
    it(title, () => {
      const r = run(text, args);
      expect(r.code).to.equal(1);
      expect(r.out).to.equal('');
      expect(r.err).to.match(re);
      expect(r.err).to.not.match(/\n\s+at /);
    });
  }
  it('a missing file names the file and the errno', () => {
    let err = '';
    expect(
      runRender(['-f', '/nonexistent/x.yaml'], { stdout: () => undefined, stderr: (t) => (err += t) }),
    ).to.equal(1);
    expect(err).to.match(/^WEFT_INPUT_UNREADABLE: cannot read \/nonexistent\/x.yaml: ENOENT/);
  });
});

describe('render with a webhook outside the cluster (--webhook-url)', () => {
  it('points every webhook at the URL with the path, and no Service', () => {
    const hooks = render(mesh({}), { webhookUrl: 'https://127.0.0.1:9443/', caBundle: 'Q0E=' }).filter((o) =>
      o.kind.endsWith('WebhookConfiguration'),
    ) as unknown as {
      webhooks: { clientConfig: { url?: string; service?: unknown; caBundle?: string } }[];
    }[];
    const urls = hooks.flatMap((h) => h.webhooks.map((w) => w.clientConfig.url));
    expect(urls).to.include('https://127.0.0.1:9443/validate');
    expect(urls).to.include('https://127.0.0.1:9443/inject');
    expect(
      hooks
        .flatMap((h) => h.webhooks)
        .every((w) => w.clientConfig.service === undefined && w.clientConfig.caBundle === 'Q0E='),
    ).to.equal(true);
  });
});

describe('render: control-plane mode (ADR 0024)', () => {
  type Obj = ReturnType<typeof render>[number];
  interface PodSpec {
    serviceAccountName: string;
    containers: {
      args: string[];
      ports: { name: string; containerPort: number }[];
      resources: unknown;
      readinessProbe: { httpGet: { path: string; port: number } };
      volumeMounts: { name: string; mountPath: string }[];
    }[];
    volumes: { name: string; secret?: { secretName: string } }[];
  }
  const find = (objs: Obj[], kind: string, name: string): Obj | undefined =>
    objs.find((o) => o.kind === kind && o.metadata.name === name);
  const podSpec = (objs: Obj[], name: string): PodSpec =>
    (find(objs, 'Deployment', name) as unknown as { spec: { template: { spec: PodSpec } } }).spec.template
      .spec;
  const replicasOf = (objs: Obj[], name: string): number =>
    (find(objs, 'Deployment', name) as unknown as { spec: { replicas: number } }).spec.replicas;
  const selectorOf = (objs: Obj[], name: string): unknown =>
    (find(objs, 'Service', name) as unknown as { spec: { selector: unknown } }).spec.selector;

  const modeTable: [string, MeshSpec, 'Combined' | 'Separate'][] = [
    ['no controlPlane: Combined (the default)', {}, 'Combined'],
    ['controlPlane without mode: Combined', { controlPlane: { replicas: 2 } }, 'Combined'],
    ['mode Combined', { controlPlane: { mode: 'Combined' } }, 'Combined'],
    ['mode Separate', { controlPlane: { mode: 'Separate' } }, 'Separate'],
  ];
  for (const [title, spec, want] of modeTable)
    it(`mode: ${title}`, () => {
      expect(effectiveSpec(spec).controlPlane.mode).to.equal(want);
      const out = render(mesh(spec));
      expect(!!find(out, 'Deployment', 'weft-webhook'), 'a webhook Deployment').to.equal(want === 'Separate');
      expect(!!find(out, 'ServiceAccount', 'weft-webhook')).to.equal(want === 'Separate');
      expect(podSpec(out, 'weftd').containers[0]!.args.includes('--webhook-port=9443')).to.equal(
        want === 'Combined',
      );
    });

  it('Combined: weftd serves the webhook port with the webhook Secret, and the Service keeps its name and port', () => {
    const out = render(mesh({}));
    const pod = podSpec(out, 'weftd');
    const c = pod.containers[0]!;
    expect(c.args).to.include.members(['--webhook-port=9443', '--webhook-tls-dir=/etc/weft/webhook-tls']);
    expect(c.ports).to.deep.include({ name: 'https-webhook', containerPort: 9443, protocol: 'TCP' });
    expect(c.volumeMounts).to.deep.include({
      name: 'webhook-tls',
      mountPath: '/etc/weft/webhook-tls',
      readOnly: true,
    });
    expect(c.volumeMounts).to.deep.include({ name: 'tls', mountPath: '/etc/weft/tls', readOnly: true });
    expect(pod.volumes.map((v) => v.secret?.secretName).filter(Boolean)).to.deep.equal([
      'weftd-tls',
      'weft-webhook-tls',
    ]);
    // one pod backs both Services: its /ready is weftd's and the webhook's together
    expect(c.readinessProbe.httpGet).to.deep.include({ path: '/ready', port: 15014 });
    // the webhook Service reaches weftd's pods that serve the webhook port, never others
    expect(selectorOf(out, 'weft-webhook')).to.deep.equal({ 'weft.dev/admission-webhook': 'true' });
    const template = find(out, 'Deployment', 'weftd') as unknown as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    expect(template.spec.template.metadata.labels).to.include({ 'weft.dev/admission-webhook': 'true' });
    const separate = render(mesh({ controlPlane: { mode: 'Separate' } }));
    expect(selectorOf(separate, 'weft-webhook'), 'Separate: as before').to.deep.equal({
      app: 'weft-webhook',
      'app.kubernetes.io/name': 'weft-webhook',
    });
    const svc = find(out, 'Service', 'weft-webhook') as unknown as { spec: { ports: unknown[] } };
    expect(svc.spec.ports).to.deep.equal([
      { name: 'https-webhook', port: 443, targetPort: 9443, protocol: 'TCP' },
    ]);
    // the webhook configurations are the same objects in both modes (same Service, same caBundle)
    const sep = render(mesh({ controlPlane: { mode: 'Separate' } }), { caBundle: 'Q0E=' });
    const comb = render(mesh({}), { caBundle: 'Q0E=' });
    for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'])
      expect(comb.filter((o) => o.kind === kind)).to.deep.equal(sep.filter((o) => o.kind === kind));
  });

  const replicaTable: [number, number, number][] = [
    // [spec replicas, Separate weftd / webhook → Combined]
    [0, 0, 1],
    [1, 1, 1],
    [2, 2, 2],
    [5, 5, 5],
  ];
  for (const [spec, sepWeftd, comb] of replicaTable)
    it(`replicas ${spec}: Separate weftd ${sepWeftd} and webhook ${Math.max(1, Math.min(spec, 3))}, Combined ${comb} (never fewer admission pods)`, () => {
      const sep = render(mesh({ controlPlane: { mode: 'Separate', replicas: spec } }));
      expect(replicasOf(sep, 'weftd')).to.equal(sepWeftd);
      const sepWebhook = replicasOf(sep, 'weft-webhook');
      const combined = render(mesh({ controlPlane: { replicas: spec } }));
      expect(replicasOf(combined, 'weftd')).to.equal(comb);
      expect(comb).to.be.at.least(sepWebhook);
    });

  it('Combined requests what the two Deployments requested together, unless the Mesh sets resources', () => {
    expect(podSpec(render(mesh({})), 'weftd').containers[0]!.resources).to.deep.equal({
      requests: { cpu: '150m', memory: '192Mi' },
    });
    const set = { requests: { cpu: '1', memory: '1Gi' } };
    expect(
      podSpec(render(mesh({ controlPlane: { resources: set } })), 'weftd').containers[0]!.resources,
    ).to.deep.equal(set);
  });

  /** Every (apiGroup, resource, verb, resourceName) a ServiceAccount is granted by the ClusterRoles bound to it. */
  function grants(objs: Obj[], sa: string): Set<string> {
    const out = new Set<string>();
    const bindings = objs.filter(
      (o) =>
        o.kind === 'ClusterRoleBinding' &&
        (o as unknown as { subjects: { name: string }[] }).subjects.some((s) => s.name === sa),
    );
    for (const b of bindings) {
      const role = find(
        objs,
        'ClusterRole',
        (b as unknown as { roleRef: { name: string } }).roleRef.name,
      ) as unknown as {
        rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
      };
      for (const r of role.rules)
        for (const g of r.apiGroups)
          for (const res of r.resources)
            for (const v of r.verbs)
              for (const n of r.resourceNames ?? ['*']) out.add(`${g}/${res}/${v}/${n}`);
    }
    return out;
  }

  it("RBAC: Combined binds the union of weftd's and the webhook's ClusterRoles to weftd's ServiceAccount", () => {
    const sep = render(mesh({ controlPlane: { mode: 'Separate' } }));
    const comb = render(mesh({}));
    const union = new Set([...grants(sep, 'weftd'), ...grants(sep, 'weft-webhook')]);
    expect([...grants(comb, 'weftd')].sort()).to.deep.equal([...union].sort());
    expect(grants(comb, 'weft-webhook').size, 'no ServiceAccount weft-webhook is bound').to.equal(0);
    // the roles themselves are the same objects in both modes: each says what its half needs
    for (const name of ['weftd', 'weft-webhook'])
      expect(find(comb, 'ClusterRole', name)).to.deep.equal(find(sep, 'ClusterRole', name));
    // namespaced grants (the CA Secret, the status Lease) are weftd's in both modes
    const roleBindingSubjects = (objs: Obj[]): string[] =>
      objs
        .filter((o) => o.kind === 'RoleBinding')
        .flatMap((o) => (o as unknown as { subjects: { name: string }[] }).subjects.map((s) => s.name));
    expect(roleBindingSubjects(comb)).to.deep.equal(roleBindingSubjects(sep));
  });

  it('switching modes changes only what the mode decides (the rest of the render is the same objects)', () => {
    const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const sep = new Map(render(mesh({ controlPlane: { mode: 'Separate' } })).map((o) => [key(o), o]));
    const comb = new Map(render(mesh({})).map((o) => [key(o), o]));
    const onlySeparate = [...sep.keys()].filter((k) => !comb.has(k)).sort();
    expect(onlySeparate, 'pruned when switching to Combined').to.deep.equal([
      'Deployment/weft-system/weft-webhook',
      'ServiceAccount/weft-system/weft-webhook',
    ]);
    expect(
      [...comb.keys()].filter((k) => !sep.has(k)),
      'nothing new in Combined',
    ).to.deep.equal([]);
    const changed = [...comb.keys()]
      .filter((k) => JSON.stringify(comb.get(k)) !== JSON.stringify(sep.get(k)))
      .sort();
    expect(changed).to.deep.equal([
      'ClusterRoleBinding//weft-webhook',
      'Deployment/weft-system/weftd',
      'Service/weft-system/weft-webhook',
    ]);
  });

  for (const bad of ['combined', 'Both', ''])
    it(`refuses mode ${JSON.stringify(bad)}, naming the field, instead of picking one`, () => {
      const spec = { controlPlane: { mode: bad } } as unknown as MeshSpec;
      expect(semanticFindings(spec)).to.deep.include({
        path: 'spec.controlPlane.mode',
        message: `${JSON.stringify(bad)} is not Combined or Separate`,
      });
      expect(() => render(mesh(spec))).to.throw(/spec\.controlPlane\.mode/);
    });

  it('refuses an unknown mode through the schema (the webhook validates Mesh objects with it)', () => {
    const modeSchema = (
      meshKind.specSchema.properties as Record<string, { properties: Record<string, { enum?: unknown[] }> }>
    ).controlPlane!.properties.mode!;
    expect(modeSchema.enum).to.deep.equal(['Combined', 'Separate']);
  });
});
