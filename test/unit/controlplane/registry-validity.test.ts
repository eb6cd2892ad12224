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
import { ObjectValidity } from '../../../controlplane/validity.js';
import type { KubeClient } from '../../../pkg/kube/client.js';
import type { InformerEventType, InformerHandler } from '../../../pkg/kube/informer.js';
import type { InformerSource } from '../../../pkg/kube/shared-informers.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import type { Logger } from '../../../pkg/log/index.js';

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

  it('every mesh kind, not only routes: an invalid AuthorizationPolicy is left out too', () => {
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
    expect(w.registry.snapshot().authorizationPolicies!.map((p) => p.metadata.name)).to.deep.equal(['good']);
    expect(w.warnings.map((l) => l.kind)).to.deep.equal(['AuthorizationPolicy']);
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
      mesh: DEFAULT_MESH,
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
