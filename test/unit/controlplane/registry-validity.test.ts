/**
 * weftd leaves mesh objects that fail validation out of every config (controlplane/validity.ts,
 * registry.ts): the registry's snapshot (what every config is built from) holds an object only
 * when `validateObject` (the webhook's own function) finds no error in it; warnings never leave
 * an object out; an update that makes it valid brings it back; a delete evicts its verdict. One
 * validation per object version, however many events, snapshots and status passes read it; a
 * warn log and an `invalid` registry event once per invalid version.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import winston from 'winston';
import {
  createKubeRegistry,
  type KubeRegistry,
  type RegistryEventResult,
} from '../../../controlplane/registry.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import { ObjectValidity } from '../../../controlplane/validity.js';
import type { KubeClient } from '../../../pkg/kube/client.js';
import type { InformerEventType, InformerHandler } from '../../../pkg/kube/informer.js';
import type { InformerSource } from '../../../pkg/kube/shared-informers.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import type { Logger } from '../../../pkg/log/index.js';
import { authorize, compileAuthz } from '../../../proxy/authz/engine.js';
import { requestAuthnFor } from '../../../pkg/translate/requestauthn.js';
import { FAIL_CLOSED_ISSUER } from '../../../pkg/translate/failclosed.js';

/** An informer the test drives: `emit` updates the cache and tells the handlers. */
class FakeInformer {
  readonly cache = new Map<string, KubeObject>();
  readonly handlers: InformerHandler<KubeObject>[] = [];
  readonly hasSynced = Promise.resolve();
  readonly isSynced = true;
  on(h: InformerHandler<KubeObject>): void {
    this.handlers.push(h);
  }
  list(): KubeObject[] {
    return [...this.cache.values()];
  }
  get(name: string, namespace?: string): KubeObject | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }
  start(): void {}
  stop(): void {}
  emit(type: InformerEventType, obj: KubeObject): void {
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const old = this.cache.get(key);
    if (type === 'delete') this.cache.delete(key);
    else this.cache.set(key, obj);
    for (const h of this.handlers) h(type, obj, old);
  }
}

interface World {
  registry: KubeRegistry;
  informers: Map<string, FakeInformer>;
  vs: FakeInformer;
  events: RegistryEventResult[];
  warnings: Record<string, unknown>[];
}

function world(): World {
  const informers = new Map<string, FakeInformer>();
  const source = ((opts: { kind: string }) => {
    const inf = new FakeInformer();
    informers.set(opts.kind, inf);
    return inf;
  }) as unknown as InformerSource;
  const warnings: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString()) as Record<string, unknown>;
      if (line.level === 'warn') warnings.push(line);
      done();
    },
  });
  const log: Logger = winston.createLogger({
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  const registry = createKubeRegistry({} as KubeClient, log, 'cluster.local', source);
  const events: RegistryEventResult[] = [];
  registry.onEvent((kind, result) => {
    if (kind === 'VirtualService') events.push(result);
  });
  return { registry, informers, vs: informers.get('VirtualService')!, events, warnings };
}

const ROUTE = { destination: { host: 'reviews' } };

const vs = (
  http: Record<string, unknown>,
  generation = 1,
  metadata: Partial<KubeObject['metadata']> = {},
): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: {
    name: 'reviews',
    namespace: 'demo',
    uid: 'u1',
    generation,
    resourceVersion: `${generation}`,
    ...metadata,
  },
  spec: { hosts: ['reviews'], http: [{ route: [ROUTE], ...http }] },
});

const VALID = vs({});
/** A response-header value with CR/LF: header injection, refused by the webhook. */
const CRLF = vs({ headers: { response: { set: { 'x-a': 'a\r\nset-cookie: x=1' } } } }, 2);
/** An unknown field: a warning (the API server drops it), never an error. */
const WARNING_ONLY = vs({ notAField: 1 });

const applied = (w: World): string[] =>
  w.registry.snapshot().virtualServices.map((v) => v.metadata.name ?? '');

describe('registry: objects that fail validation are in no config', () => {
  const table: [string, KubeObject, boolean][] = [
    ['a valid VirtualService', VALID, true],
    ['a VirtualService with a CR/LF header value', CRLF, false],
    ['a VirtualService with a warning only (unknown field)', WARNING_ONLY, true],
    [
      'a VirtualService with the istio.io/dry-run annotation (refused by Istio)',
      vs({}, 1, { annotations: { 'istio.io/dry-run': 'true' } }),
      false,
    ],
  ];
  for (const [title, obj, inConfig] of table)
    it(`${title}: ${inConfig ? 'applied' : 'left out'}, status verdict agrees`, () => {
      const w = world();
      w.vs.emit('add', obj);
      expect(applied(w)).to.deep.equal(inConfig ? ['reviews'] : []);
      const verdict = w.registry.validation(obj);
      expect(verdict.errors.length === 0).to.equal(inConfig);
      expect(w.events).to.deep.equal([inConfig ? 'changed' : 'invalid']);
      expect(w.warnings).to.have.length(inConfig ? 0 : 1);
      if (obj === WARNING_ONLY) expect(verdict.warnings).to.have.length.greaterThan(0);
    });

  it('validates once per version; status writes, resyncs and reads reuse it; a delete evicts', () => {
    const validity = new ObjectValidity({ log: winston.createLogger({ silent: true }) });
    validity.judge(CRLF);
    validity.judge({ ...CRLF, metadata: { ...CRLF.metadata, resourceVersion: '7' }, status: { x: 1 } });
    validity.applies(CRLF);
    validity.validation(CRLF);
    expect(validity.validations).to.equal(1);
    expect(validity.judge(vs({}, 3))).to.include({ valid: true, wasValid: false, fresh: true });
    validity.judge(vs({}, 3, { labels: { team: 'a' } })); // labels are read by rules: a new version
    expect(validity.validations).to.equal(3);
    expect(validity.size).to.equal(1);
    validity.forget(CRLF);
    expect(validity.size).to.equal(0);
  });

  it('logs once per invalid version, at warn, naming kind/namespace/name and the first error', () => {
    const w = world();
    w.vs.emit('add', CRLF);
    // a status write and a resync of the same version: no new validation, no new log line
    w.vs.emit('update', { ...CRLF, metadata: { ...CRLF.metadata, resourceVersion: '99' }, status: { a: 1 } });
    w.vs.emit('update', w.vs.get('reviews', 'demo')!);
    w.registry.snapshot();
    w.registry.validation(w.vs.get('reviews', 'demo')!);
    expect(w.warnings).to.have.length(1);
    expect(w.warnings[0]).to.include({ kind: 'VirtualService', namespace: 'demo', name: 'reviews' });
    expect(String(w.warnings[0]!.error)).to.match(/^spec\.http\[0\]\.headers\.response\.set\.x-a: .*0x0d/);
    expect(w.events).to.deep.equal(['invalid', 'ignored', 'ignored']);
  });

  it('valid → invalid → valid: leaves, comes back, each flip moves the generation', () => {
    const w = world();
    w.vs.emit('add', VALID);
    const g0 = w.registry.generation;
    w.vs.emit('update', CRLF);
    expect(applied(w)).to.deep.equal([]);
    expect(w.registry.generation).to.be.greaterThan(g0);
    const g1 = w.registry.generation;
    w.vs.emit('update', vs({}, 3));
    expect(applied(w)).to.deep.equal(['reviews']);
    expect(w.registry.generation).to.be.greaterThan(g1);
    expect(w.events).to.deep.equal(['changed', 'invalid', 'changed']);
  });

  it('an annotation alone (no spec change) that makes it invalid still pushes it out', () => {
    const w = world();
    w.vs.emit('add', VALID);
    const g0 = w.registry.generation;
    w.vs.emit('update', vs({}, 1, { resourceVersion: '5', annotations: { 'istio.io/dry-run': 'true' } }));
    expect(w.registry.generation).to.be.greaterThan(g0);
    expect(applied(w)).to.deep.equal([]);
  });

  it('a delete evicts the verdict; the same name recreated valid is applied', () => {
    const w = world();
    w.vs.emit('add', CRLF);
    w.vs.emit('delete', CRLF);
    expect(applied(w)).to.deep.equal([]);
    w.vs.emit('add', vs({}, 1, { uid: 'u2' }));
    expect(applied(w)).to.deep.equal(['reviews']);
    expect(w.registry.validation(w.vs.get('reviews', 'demo')!).errors).to.deep.equal([]);
  });

  it('every mesh kind, not only routes: an invalid DENY AuthorizationPolicy is replaced by a deny-all', () => {
    const w = world();
    const ap = (name: string, when: unknown): KubeObject => ({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: 'demo', uid: name, generation: 1 },
      spec: { action: 'DENY', rules: [{ when: [when] }] },
    });
    w.informers
      .get('AuthorizationPolicy')!
      .emit('add', ap('good', { key: 'request.headers[x]', values: ['1'] }));
    w.informers.get('AuthorizationPolicy')!.emit('add', ap('bad', { key: 'request.headers[x]', values: [] }));
    const bad = w.registry.snapshot().authorizationPolicies!.find((p) => p.metadata.name === 'bad');
    expect(bad?.spec).to.deep.equal({ action: 'DENY', rules: [{}] });
    expect(w.warnings.map((l) => l.kind)).to.deep.equal(['AuthorizationPolicy']);
    expect(String(w.warnings[0]!.message)).to.include('fail-closed stand-in');
  });

  it('the generated config holds the valid object and not the invalid one', () => {
    const w = world();
    w.informers.get('Service')!.emit('add', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'reviews', namespace: 'demo' },
      spec: { clusterIP: '10.0.0.9', ports: [{ name: 'http', port: 9080 }], selector: { app: 'reviews' } },
    });
    const generator = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: winston.createLogger({ silent: true }),
    });
    const config = (): string =>
      JSON.stringify(
        generator.forProxy(w.registry.snapshot(), 'sidecar', { name: 'p', namespace: 'demo', labels: {} })
          .config,
      );
    w.vs.emit('add', vs({ headers: { response: { set: { 'x-a': 'marker-valid' } } } }));
    expect(config()).to.include('marker-valid');
    w.vs.emit('update', CRLF);
    expect(config()).not.to.include('set-cookie');
    expect(config()).not.to.include('marker-valid');
  });
});

/**
 * Security objects fail CLOSED (pkg/translate/failclosed.ts): an AuthorizationPolicy or
 * PeerAuthentication that fails validation is not simply left out (that would stop a DENY from
 * denying, or turn "allow only X" into "allow all"); weftd enforces a stand-in in its place.
 * Each row is decided by the proxy's own engine over the config weftd generates.
 */
describe('registry: invalid security objects fail closed', () => {
  const X = 'cluster.local/ns/demo/sa/x';
  const Y = 'cluster.local/ns/demo/sa/y';
  /** A `when` with no values: refused by the webhook (and by validateObject). */
  const BROKEN = { when: [{ key: 'request.headers[x-a]', values: [] }] };
  const FROM_X = { from: [{ source: { principals: [X] } }] };
  const ap = (name: string, spec: Record<string, unknown>, namespace = 'demo'): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace, uid: `ap-${namespace}-${name}`, generation: 1 },
    spec,
  });
  const REVIEWS = { matchLabels: { app: 'reviews' } };
  const dryRun = (o: KubeObject): KubeObject => ({
    ...o,
    metadata: { ...o.metadata, annotations: { 'istio.io/dry-run': 'true' } },
  });
  /** A wildcard: refused by Istio's webhook; which workloads it meant cannot be known. */
  const BAD_SELECTOR = { matchLabels: { app: 'review*' } };

  function decide(policies: KubeObject[], caller: string): 'allow' | 'deny' {
    const w = world();
    for (const p of policies) w.informers.get('AuthorizationPolicy')!.emit('add', p);
    const generator = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: winston.createLogger({ silent: true }),
    });
    const pod = { name: 'reviews-1', namespace: 'demo', labels: { app: 'reviews' } };
    const block = generator.forProxy(w.registry.snapshot(), 'sidecar', pod).config.authz;
    if (block === undefined) return 'allow';
    const [namespace, , , , sa] = caller.split('/').slice(1);
    return authorize(compileAuthz(block), {
      method: 'GET',
      host: 'reviews',
      path: '/',
      headers: { 'x-a': '1' },
      port: 9080,
      destinationIp: '10.0.0.2',
      sourceIp: '10.0.0.3',
      remoteIp: '10.0.0.3',
      peer: { principal: caller, namespace: namespace!, serviceAccount: sa! },
    }).decision;
  }

  const table: [string, KubeObject[], { x: 'allow' | 'deny'; y: 'allow' | 'deny' }][] = [
    ['no policy', [], { x: 'allow', y: 'allow' }],
    [
      'a valid ALLOW for X only',
      [ap('allow-x', { selector: REVIEWS, rules: [FROM_X] })],
      { x: 'allow', y: 'deny' },
    ],
    [
      'an invalid ALLOW, the only one: matches nothing, so every request is denied',
      [ap('allow-x', { selector: REVIEWS, rules: [{ ...FROM_X, ...BROKEN }] })],
      { x: 'deny', y: 'deny' },
    ],
    [
      'an invalid ALLOW beside a valid ALLOW for X: only X',
      [
        ap('allow-x', { selector: REVIEWS, rules: [FROM_X] }),
        ap('allow-broken', { selector: REVIEWS, rules: [{ ...BROKEN }] }),
      ],
      { x: 'allow', y: 'deny' },
    ],
    [
      'an invalid DENY of Y: denies every request',
      [
        ap('deny-y', {
          selector: REVIEWS,
          action: 'DENY',
          rules: [{ from: [{ source: { principals: [Y] } }], ...BROKEN }],
        }),
      ],
      { x: 'deny', y: 'deny' },
    ],
    [
      'an invalid CUSTOM: denies every request',
      [ap('ext', { selector: REVIEWS, action: 'CUSTOM', rules: [{}] })], // no provider: invalid
      { x: 'deny', y: 'deny' },
    ],
    [
      'an action that cannot be read: treated as DENY',
      [ap('odd', { selector: REVIEWS, action: 'allow', rules: [FROM_X] })],
      { x: 'deny', y: 'deny' },
    ],
    [
      'an invalid DENY in dry run (istio.io/dry-run): its deny-all is logged, not enforced',
      [dryRun(ap('deny-dry', { selector: REVIEWS, action: 'DENY', rules: [{ ...BROKEN }] }))],
      { x: 'allow', y: 'allow' },
    ],
    [
      'an invalid AUDIT: no effect (it never decides)',
      [ap('audit', { selector: REVIEWS, action: 'AUDIT', rules: [{ ...BROKEN }] })],
      { x: 'allow', y: 'allow' },
    ],
    [
      'an invalid DENY selecting other workloads: no effect here',
      [
        ap('deny-other', {
          selector: { matchLabels: { app: 'other' } },
          action: 'DENY',
          rules: [{ ...BROKEN }],
        }),
      ],
      { x: 'allow', y: 'allow' },
    ],
    [
      'an invalid DENY whose selector cannot be read: the whole namespace',
      [ap('deny-ns', { selector: BAD_SELECTOR, action: 'DENY', rules: [{}] })],
      { x: 'deny', y: 'deny' },
    ],
    [
      'the same in another namespace: not this one',
      [ap('deny-ns', { selector: BAD_SELECTOR, action: 'DENY', rules: [{}] }, 'elsewhere')],
      { x: 'allow', y: 'allow' },
    ],
    [
      'the same in the root namespace: mesh-wide',
      [ap('deny-mesh', { selector: BAD_SELECTOR, action: 'DENY', rules: [{}] }, 'weft-system')],
      { x: 'deny', y: 'deny' },
    ],
    [
      'valid DENY of Y beside a valid ALLOW for X: unchanged',
      [
        ap('allow-x', { selector: REVIEWS, rules: [FROM_X] }),
        ap('deny-y', {
          selector: REVIEWS,
          action: 'DENY',
          rules: [{ from: [{ source: { principals: [Y] } }] }],
        }),
      ],
      { x: 'allow', y: 'deny' },
    ],
  ];
  for (const [title, policies, want] of table)
    it(`${title}: X ${want.x}, Y ${want.y}`, () => {
      expect({ x: decide(policies, X), y: decide(policies, Y) }).to.deep.equal(want);
    });

  const pa = (name: string, spec: Record<string, unknown>, namespace = 'demo'): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace, uid: `pa-${namespace}-${name}`, generation: 1 },
    spec,
  });
  function inboundMode(objects: KubeObject[]): { mode: string; ports: Record<number, string> } {
    const w = world();
    for (const o of objects) w.informers.get('PeerAuthentication')!.emit('add', o);
    const generator = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: winston.createLogger({ silent: true }),
    });
    const pod = { name: 'reviews-1', namespace: 'demo', labels: { app: 'reviews' } };
    const inbound = generator.forProxy(w.registry.snapshot(), 'sidecar', pod).config.inbound!;
    const ports: Record<number, string> = {};
    for (const p of inbound.ports ?? []) if (p.mtls) ports[p.port] = p.mtls.mode;
    return { mode: inbound.mtls.mode, ports };
  }
  const paTable: [string, KubeObject[], { mode: string; ports: Record<number, string> }][] = [
    [
      'a valid DISABLE: unchanged',
      [pa('off', { selector: REVIEWS, mtls: { mode: 'DISABLE' } })],
      { mode: 'DISABLE', ports: {} },
    ],
    [
      'an invalid DISABLE (port-level mTLS without a selector): STRICT',
      [pa('off', { mtls: { mode: 'DISABLE' }, portLevelMtls: { '9080': { mode: 'DISABLE' } } })],
      { mode: 'STRICT', ports: {} },
    ],
    [
      'an invalid PERMISSIVE whose selector cannot be read: STRICT for the namespace',
      [pa('loose', { selector: BAD_SELECTOR, mtls: { mode: 'PERMISSIVE' } })],
      { mode: 'STRICT', ports: {} },
    ],
    [
      'an invalid port-level DISABLE on a workload policy: STRICT on every port',
      [
        pa('ports', {
          selector: REVIEWS,
          mtls: { mode: 'STRICT' },
          portLevelMtls: { '0': { mode: 'DISABLE' } },
        }),
      ],
      { mode: 'STRICT', ports: {} },
    ],
  ];
  for (const [title, objects, want] of paTable)
    it(`PeerAuthentication: ${title}`, () => expect(inboundMode(objects)).to.deep.equal(want));
});

describe('registry: an invalid RequestAuthentication refuses tokens (fail closed)', () => {
  const ra = (name: string, spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name, namespace: 'demo', uid: `ra-${name}`, generation: 1 },
    spec,
  });
  const providers = (obj: KubeObject): unknown[] => {
    const w = world();
    w.informers.get('RequestAuthentication')!.emit('add', obj);
    const { jwt } = requestAuthnFor({
      policies: w.registry.snapshot().requestAuthentications!,
      workload: { namespace: 'demo', labels: { app: 'reviews' } },
      rootNamespace: 'weft-system',
      jwks: { keys: () => ({ jwks: '{"keys":[]}', error: 'not fetched in this test' }) },
    });
    return (jwt?.providers ?? []).map((p) => ({
      issuer: p.issuer,
      jwks: p.jwks,
      fromHeaders: p.fromHeaders,
    }));
  };

  it('a valid one is applied as written', () =>
    expect(providers(ra('ok', { jwtRules: [{ issuer: 'https://idp', jwks: '{"keys":[]}' }] }))).to.deep.equal(
      [{ issuer: 'https://idp', jwks: '{"keys":[]}', fromHeaders: undefined }],
    ));
  it('an invalid jwksUri: its issuer with no keys, where its tokens are looked for', () =>
    expect(
      providers(
        ra('bad-uri', {
          selector: { matchLabels: { app: 'reviews' } },
          jwtRules: [{ issuer: 'https://idp', jwksUri: 'not a uri', fromHeaders: [{ name: 'x-jwt' }] }],
        }),
      ),
    ).to.deep.equal([{ issuer: 'https://idp', jwks: '{"keys":[]}', fromHeaders: [{ name: 'x-jwt' }] }]));
  it('an issuer that cannot be read: an issuer no token has, so unknown issuers are refused', () =>
    expect(providers(ra('no-issuer', { jwtRules: [{ issuer: '', jwks: '{"keys":[]}' }] }))).to.deep.equal([
      { issuer: FAIL_CLOSED_ISSUER, jwks: '{"keys":[]}', fromHeaders: undefined },
    ]));
});

/**
 * An invalid Sidecar fails closed too (failclosed.ts `sidecar`): left out, its workloads would see
 * the whole mesh and a REGISTRY_ONLY lockdown would silently become ALLOW_ANY. Each row is the
 * config weftd generates for demo/reviews-1: its outbound policy and the services it imports.
 */
describe('registry: an invalid Sidecar fails closed (REGISTRY_ONLY, the egress hosts it can read)', () => {
  const sidecar = (name: string, spec: Record<string, unknown>, namespace = 'demo'): KubeObject => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Sidecar',
    metadata: { name, namespace, uid: `sc-${namespace}-${name}`, generation: 1 },
    spec,
  });
  const service = (name: string, namespace: string, ip: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { clusterIP: ip, ports: [{ name: 'http', port: 9080 }], selector: { app: name } },
  });
  const LOCKED = { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } };
  /** Not `namespace/dnsName`: refused by Istio's webhook. */
  const BAD_HOST = 'reviews no slash';
  /** A label value with a space: refused; which workloads it meant cannot be known. */
  const BAD_SELECTOR = { workloadSelector: { labels: { app: 'rev iews' } } };

  function outbound(sidecars: KubeObject[]): { mode: string; sees: string[] } {
    const w = world();
    const services = w.informers.get('Service')!;
    services.emit('add', service('reviews', 'demo', '10.0.0.1'));
    services.emit('add', service('ratings', 'other', '10.0.0.2'));
    services.emit('add', service('shared', 'weft-system', '10.0.0.3'));
    for (const s of sidecars) w.informers.get('Sidecar')!.emit('add', s);
    const generator = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: winston.createLogger({ silent: true }),
    });
    const pod = { name: 'reviews-1', namespace: 'demo', labels: { app: 'reviews' } };
    const { config } = generator.forProxy(w.registry.snapshot(), 'sidecar', pod);
    const services_ = new Set(config.clusters.map((c) => c.service));
    return {
      mode: config.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY',
      sees: ['reviews.demo', 'ratings.other', 'shared.weft-system'].filter((h) =>
        services_.has(`${h}.svc.cluster.local`),
      ),
    };
  }
  const ALL = ['reviews.demo', 'ratings.other', 'shared.weft-system'];

  const table: [string, KubeObject[], { mode: string; sees: string[] }][] = [
    ['no Sidecar', [], { mode: 'ALLOW_ANY', sees: ALL }],
    [
      'a valid REGISTRY_ONLY Sidecar importing ./*',
      [sidecar('lock', { ...LOCKED, egress: [{ hosts: ['./*'] }] })],
      { mode: 'REGISTRY_ONLY', sees: ['reviews.demo'] },
    ],
    [
      'the same with one bad host beside ./*: REGISTRY_ONLY kept, the hosts it can read',
      [sidecar('lock', { ...LOCKED, egress: [{ hosts: ['./*', BAD_HOST] }] })],
      { mode: 'REGISTRY_ONLY', sees: ['reviews.demo'] },
    ],
    [
      'no egress host can be read: its own namespace and the root namespace',
      [sidecar('lock', { ...LOCKED, egress: [{ hosts: [BAD_HOST] }] })],
      { mode: 'REGISTRY_ONLY', sees: ['reviews.demo', 'shared.weft-system'] },
    ],
    [
      'an egress list out of order (an error on the whole list): the fallback, not */*',
      [
        sidecar('lock', {
          ...LOCKED,
          egress: [
            { hosts: ['*/*'] },
            { port: { number: 9080, protocol: 'HTTP', name: 'h' }, hosts: ['*/*'] },
          ],
        }),
      ],
      { mode: 'REGISTRY_ONLY', sees: ['reviews.demo', 'shared.weft-system'] },
    ],
    [
      'a readable ALLOW_ANY with an invalid ingress port: tightened to REGISTRY_ONLY, */* kept',
      [
        sidecar('open', {
          outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
          egress: [{ hosts: ['*/*'] }],
          ingress: [{ port: { number: 0, protocol: 'HTTP', name: 'h' } }],
        }),
      ],
      { mode: 'REGISTRY_ONLY', sees: ALL },
    ],
    [
      'no egress written, a selector that cannot be read: the namespace, every registry host',
      [sidecar('lock', { ...LOCKED, ...BAD_SELECTOR })],
      { mode: 'REGISTRY_ONLY', sees: ALL },
    ],
    [
      'an invalid Sidecar selecting other workloads: no effect here',
      [
        sidecar('lock', {
          ...LOCKED,
          workloadSelector: { labels: { app: 'other' } },
          egress: [{ hosts: [BAD_HOST] }],
        }),
      ],
      { mode: 'ALLOW_ANY', sees: ALL },
    ],
    [
      'a selector that cannot be read in another namespace: not this one',
      [sidecar('lock', { ...LOCKED, ...BAD_SELECTOR, egress: [{ hosts: ['./*'] }] }, 'other')],
      { mode: 'ALLOW_ANY', sees: ALL },
    ],
    [
      'the same in the root namespace: the mesh default',
      [sidecar('lock', { ...LOCKED, ...BAD_SELECTOR, egress: [{ hosts: ['./*'] }] }, 'weft-system')],
      { mode: 'REGISTRY_ONLY', sees: ['reviews.demo'] },
    ],
  ];
  for (const [title, sidecars, want] of table)
    it(`${title}: ${want.mode}, sees ${want.sees.join(' ')}`, () =>
      expect(outbound(sidecars)).to.deep.equal(want));

  it('the stand-in keeps its name (the config names the Sidecar in force)', () => {
    const w = world();
    w.informers.get('Sidecar')!.emit('add', sidecar('lock', { ...LOCKED, egress: [{ hosts: [BAD_HOST] }] }));
    expect(w.registry.snapshot().sidecars).to.deep.equal([
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: 'lock', namespace: 'demo', uid: 'sc-demo-lock', generation: 1 },
        spec: {
          egress: [{ hosts: ['./*', 'weft-system/*'] }],
          outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
        },
      },
    ]);
  });
});

describe('registry: per-kind generations (configgen carries translations across generations with them)', () => {
  const dr: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'demo', uid: 'u2', generation: 1 },
    spec: { host: 'reviews' },
  };

  it('move for a change a config reads, per kind, and not for a status write', () => {
    const w = world();
    w.vs.emit('add', VALID);
    const first = w.registry.snapshot().kindGenerations!;
    expect(first.VirtualService).to.be.a('number');
    // a status write replaces the informer's object (a new identity) but changes nothing read
    w.vs.emit('update', { ...VALID, status: { conditions: [] } } as KubeObject);
    expect(w.registry.snapshot().kindGenerations!.VirtualService).to.equal(first.VirtualService);
    w.informers.get('DestinationRule')!.emit('add', dr);
    const second = w.registry.snapshot().kindGenerations!;
    expect(second.VirtualService).to.equal(first.VirtualService);
    expect(second.DestinationRule).to.be.greaterThan(first.VirtualService!);
    w.vs.emit('update', vs({ timeout: '3s' }, 2));
    expect(w.registry.snapshot().kindGenerations!.VirtualService).to.be.greaterThan(second.DestinationRule!);
    w.vs.emit('delete', vs({ timeout: '3s' }, 2));
    expect(w.registry.snapshot().kindGenerations!.VirtualService).to.equal(w.registry.generation);
  });
});
