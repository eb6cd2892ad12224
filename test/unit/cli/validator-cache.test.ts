/**
 * weftctl's compiled-validator cache (cli/validator-cache.ts): a validator loaded from the cache
 * reports exactly what ajv's own compile reports, for a table of invalid objects of several kinds;
 * a corrupt file, a directory others may write to, or WEFTCTL_CACHE=off mean compiling without it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { cacheDir, cacheFile, cachingCompiler, privateDir } from '../../../cli/validator-cache.js';
import { findKind } from '../../../pkg/api/registry.js';
import { newAjv, objectSchema, shareRepeats } from '../../../pkg/validation/schema.js';

const schemaOf = (apiVersion: string, kind: string) =>
  shareRepeats(objectSchema(findKind(apiVersion, kind)!));
const NET = 'networking.istio.io/v1';
const SEC = 'security.istio.io/v1';
const cases: Array<[string, string, Record<string, unknown>]> = [
  [NET, 'VirtualService', { spec: { hosts: 'reviews' } }],
  [
    NET,
    'VirtualService',
    { spec: { hosts: ['r'], http: [{ route: [{ destination: { host: 1 } }], timeout: 'soon' }] } },
  ],
  [
    NET,
    'VirtualService',
    { spec: { hosts: ['r'], http: [{ match: [{ uri: { exact: 'a', prefix: 'b' } }] }] } },
  ],
  [
    NET,
    'VirtualService',
    { spec: { hosts: ['r'], http: [{ route: [{ destination: { host: 'r' }, weight: -1 }] }] } },
  ],
  [NET, 'DestinationRule', { spec: { host: 'r', trafficPolicy: { loadBalancer: { simple: 'FASTEST' } } } }],
  [NET, 'DestinationRule', { spec: { host: 'r', subsets: [{ name: 1, labels: { a: 2 } }] } }],
  [NET, 'Gateway', { spec: { servers: [{ port: { number: 'x' }, hosts: [] }] } }],
  [SEC, 'AuthorizationPolicy', { spec: { action: 'MAYBE', rules: [{ from: 'x' }] } }],
  [SEC, 'PeerAuthentication', { spec: { mtls: { mode: 'SOMETIMES' } } }],
  [NET, 'VirtualService', { spec: { hosts: ['r'], http: [{ route: [{ destination: { host: 'r' } }] }] } }],
];
const errorsOf = (fn: { (o: unknown): unknown; errors?: unknown }, obj: unknown): string => {
  const ok = fn(obj);
  return JSON.stringify({ ok, errors: fn.errors ?? null });
};

describe('weftctl validator cache', function () {
  this.timeout(60_000); // ajv compiles a handful of kinds
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'weft-vcache-')), 'cache');
  });
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('a cached validator (second compiler, files only) reports exactly what ajv reports, for every case', () => {
    const reference = newAjv();
    const first = cachingCompiler(dir);
    const second = cachingCompiler(dir);
    for (const [apiVersion, kind, body] of cases) {
      const obj = { apiVersion, kind, metadata: { name: 'x', namespace: 'default' }, ...body };
      const schema = schemaOf(apiVersion, kind);
      const want = errorsOf(reference.compile(schemaOf(apiVersion, kind)), obj);
      expect(errorsOf(first(schema), obj), `${kind} compiled`).to.equal(want);
      expect(errorsOf(second(schemaOf(apiVersion, kind)), obj), `${kind} from the cache`).to.equal(want);
    }
    const files = readdirSync(dir);
    expect(files.length).to.equal(new Set(cases.map(([, k]) => k)).size);
    expect(files.every((f) => /^validator-[0-9a-f]{40}\.cjs$/.test(f))).to.equal(true);
    expect(privateDir(dir)).to.equal(true);
  });

  it('a different schema gets a different file (the key covers the schema)', () => {
    const a = schemaOf(NET, 'VirtualService');
    const b = structuredClone(a) as { properties: Record<string, unknown> };
    b.properties.extra = { type: 'string' };
    expect(cacheFile(dir, a)).to.not.equal(cacheFile(dir, b));
    expect(cacheFile(dir, a)).to.equal(cacheFile(dir, schemaOf(NET, 'VirtualService')));
  });

  it('a corrupt or non-function cache file is replaced by a fresh compile', () => {
    const schema = schemaOf(SEC, 'PeerAuthentication');
    const obj = {
      apiVersion: SEC,
      kind: 'PeerAuthentication',
      metadata: { name: 'x' },
      spec: { mtls: { mode: 'NO' } },
    };
    const want = errorsOf(newAjv().compile(schemaOf(SEC, 'PeerAuthentication')), obj);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const junk of ['module.exports = ', 'module.exports = 42;']) {
      writeFileSync(cacheFile(dir, schema), junk, { mode: 0o600 });
      // a fresh compiler per round: require() keeps what it loaded once
      expect(errorsOf(cachingCompiler(dir)(schema), obj), junk).to.equal(want);
    }
  });

  it('a cache directory others can write to is neither read nor written', () => {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    const schema = schemaOf(SEC, 'PeerAuthentication');
    writeFileSync(cacheFile(dir, schema), 'module.exports = () => true;');
    const fn = cachingCompiler(dir)(schema);
    expect(fn({ apiVersion: SEC, kind: 'PeerAuthentication', spec: { mtls: { mode: 'NO' } } })).to.equal(
      false,
    );
    expect(privateDir(dir)).to.equal(false);
    expect(readdirSync(dir)).to.have.length(1);
  });

  it('where the cache lives: XDG_CACHE_HOME (absolute only), else ~/.cache; WEFTCTL_CACHE=off turns it off', () => {
    expect(cacheDir({ XDG_CACHE_HOME: '/x/cache' })).to.equal('/x/cache/weft/weftctl');
    expect(cacheDir({ XDG_CACHE_HOME: 'relative' })).to.match(/\/\.cache\/weft\/weftctl$/);
    expect(cacheDir({})).to.match(/\/\.cache\/weft\/weftctl$/);
    expect(cacheDir({ WEFTCTL_CACHE: 'off', XDG_CACHE_HOME: '/x' })).to.equal(undefined);
  });
});
