/**
 * Properties of the request head (router/target.ts) and path normalization (router/path.ts),
 * fast-check with fixed seeds and bounded runs: whatever the client sends, normalization is
 * idempotent and leaves no dot segment, backslash, or (merging modes) empty segment; a path an
 * RFC 3986 / WHATWG resolver puts under a prefix is under that prefix after normalization too
 * (no bypass of a prefix rule); the absolute-form and origin-form of one request route alike.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { normalizePath, type PathNormalization } from '../../../proxy/router/path.js';
import { parseRequestHead, isRejection, type RequestHead } from '../../../proxy/router/target.js';
import { syntheticView } from '../../../proxy/router/explain.js';
import { compileConfig, findVHost, type CompiledHttpListener } from '../../../proxy/compile/compile.js';
import { selectRoute } from '../../../proxy/router/exchange.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

const SEED = 20261205;
const RUNS = 2000;
const MODES: PathNormalization[] = ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

/** Pieces attackers combine: dots and their escapes, slashes and theirs, nested escapes. */
const TOKENS = [
  'admin',
  'api',
  'x',
  'A',
  '.',
  '..',
  '...',
  '%2e',
  '%2E',
  '%2e%2e',
  '.%2e',
  '%2E.',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '\\',
  '/',
  '//',
  '%41',
  '%61dmin',
  '%7e',
  '%25',
  '%252e',
  '%252f',
  '%',
  '%%',
  '%3',
  '%32',
  '%65',
  '%%32%65',
  '%c0%ae',
  ';',
  '..;',
  '"',
  '{',
  '|',
  '^',
  '~',
  '-',
  '_',
];

const tokenPath = fc
  .array(fc.constantFrom(...TOKENS), { maxLength: 12 })
  .chain((toks) => fc.constantFrom('/', '\\', '').map((lead) => lead + toks.join('')));
const separatedPath = fc
  .array(fc.constantFrom(...TOKENS), { maxLength: 8 })
  .map((toks) => `/${toks.join('/')}`);
/** Any byte string (what a latin1-decoded target can hold, and more). */
const bytePath = fc
  .string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 })
  .map((s) => `/${s}`);
const anyPath = fc.oneof(tokenPath, separatedPath, bytePath);

const segments = (p: string): string[] => p.split('/').map((s) => s.replace(/%2e/gi, '.'));

/** How a WHATWG URL parser (browsers, Node's URL, many frameworks) resolves a path. */
function whatwgPath(raw: string): string | null {
  try {
    return new URL(`http://h${raw.startsWith('/') || raw.startsWith('\\') ? '' : '/'}${raw}`).pathname;
  } catch {
    return null;
  }
}

/** An upstream that decodes escaped slashes, merges them and resolves dot segments. */
function decodingPath(raw: string): string | null {
  const decoded = raw.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  const p = whatwgPath(decoded);
  return p === null ? null : p.replace(/\/{2,}/g, '/');
}

const under = (p: string, prefix: string): boolean => p === prefix || p.startsWith(`${prefix}/`);

const params = { seed: SEED, numRuns: RUNS };

describe('proxy request head properties (fast-check, seeded)', function () {
  this.timeout(20_000);

  it('normalization is idempotent in every mode', () => {
    fc.assert(
      fc.property(anyPath, fc.constantFrom<PathNormalization>('NONE', ...MODES), (raw, mode) => {
        const once = normalizePath(raw, mode);
        if (once !== null) expect(normalizePath(once, mode)).to.equal(once);
      }),
      params,
    );
  });

  it('a normalized path starts with / and has no dot segment (in any spelling) and no raw backslash', () => {
    fc.assert(
      fc.property(anyPath, fc.constantFrom(...MODES), (raw, mode) => {
        const p = normalizePath(raw, mode);
        if (p === null) return;
        expect(p.startsWith('/'), p).to.equal(true);
        expect(p.includes('\\'), p).to.equal(false);
        for (const s of segments(p)) expect(s === '.' || s === '..', `${raw} → ${p}`).to.equal(false);
      }),
      params,
    );
  });

  it('merging modes leave no empty segment; DECODE_AND_MERGE_SLASHES leaves no escaped slash', () => {
    fc.assert(
      fc.property(
        anyPath,
        fc.constantFrom<PathNormalization>('MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'),
        (raw, mode) => {
          const p = normalizePath(raw, mode);
          if (p === null) return;
          expect(p.includes('//'), `${raw} → ${p}`).to.equal(false);
          if (mode === 'DECODE_AND_MERGE_SLASHES')
            expect(/%2f|%5c/i.test(p), `${raw} → ${p}`).to.equal(false);
        },
      ),
      params,
    );
  });

  it('what a WHATWG resolver puts under /admin is under /admin after normalization (no prefix bypass)', () => {
    fc.assert(
      fc.property(anyPath, fc.constantFrom(...MODES), (raw, mode) => {
        const p = normalizePath(raw, mode);
        const seen = whatwgPath(raw);
        if (p === null || seen === null) return;
        if (under(seen, '/admin'))
          expect(under(p, '/admin'), `${raw}: upstream ${seen}, matched ${p}`).to.equal(true);
      }),
      params,
    );
  });

  it('DECODE_AND_MERGE_SLASHES: what a decoding, slash-merging upstream puts under /admin is under /admin', () => {
    fc.assert(
      fc.property(anyPath, (raw) => {
        const p = normalizePath(raw, 'DECODE_AND_MERGE_SLASHES');
        const seen = decodingPath(raw);
        if (p === null || seen === null) return;
        if (under(seen, '/admin'))
          expect(under(p, '/admin'), `${raw}: upstream ${seen}, matched ${p}`).to.equal(true);
      }),
      params,
    );
  });

  it('a normalized path is a fixed point of the WHATWG resolver: the upstream resolves it to itself', () => {
    fc.assert(
      fc.property(anyPath, fc.constantFrom(...MODES), (raw, mode) => {
        const p = normalizePath(raw, mode);
        if (p === null) return;
        expect(whatwgPath(p), `${raw} → ${p}`).to.equal(p);
      }),
      params,
    );
  });

  it('the query is never touched', () => {
    const query = fc.string({
      unit: fc.constantFrom('a', '/', '.', '%', '2', 'e', '=', '&', '?', '\\'),
      maxLength: 20,
    });
    fc.assert(
      fc.property(separatedPath, query, fc.constantFrom(...MODES), (path, q, mode) => {
        const h = parseRequestHead('GET', `${path}?${q}`, ['a'], mode);
        if (isRejection(h)) return;
        expect(h.query).to.equal(q);
        expect(h.target).to.equal(`${h.path}?${q}`);
      }),
      params,
    );
  });

  describe('absolute-form and origin-form of one request', () => {
    const authority = fc.constantFrom(
      'reviews',
      'reviews:9080',
      'admin.internal:8080',
      '10.1.2.3:80',
      '[::1]:9080',
    );
    const wirePath = fc.oneof(tokenPath, separatedPath).filter((p) => p.startsWith('/') && !p.includes('#'));
    const cfg: ProxyConfig = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'p',
      listeners: [
        {
          name: 'l',
          protocol: 'HTTP',
          port: 0,
          virtualHosts: [
            {
              name: 'all',
              domains: ['*'],
              routes: [
                { match: [{ uri: { prefix: '/admin' } }], action: { type: 'directResponse', status: 403 } },
                { match: [{ uri: { exact: '/api' } }], action: { type: 'directResponse', status: 201 } },
                {
                  match: [{ authority: { exact: 'reviews:9080' } }],
                  action: { type: 'directResponse', status: 202 },
                },
                { action: { type: 'directResponse', status: 200 } },
              ],
            },
          ],
        },
      ],
      clusters: [],
    };

    it('parse to the same authority, path, query and target', () => {
      fc.assert(
        fc.property(
          authority,
          wirePath,
          fc.constantFrom<PathNormalization>('NONE', ...MODES),
          (auth, path, mode) => {
            const origin = parseRequestHead('GET', path, [auth], mode);
            const absolute = parseRequestHead('GET', `http://${auth}${path}`, ['decoy.example:1'], mode);
            if (isRejection(origin)) expect(absolute).to.deep.equal(origin);
            else expect(absolute).to.deep.equal({ ...(origin as RequestHead), form: 'absolute' });
          },
        ),
        params,
      );
    });

    for (const mode of ['NONE', ...MODES] as PathNormalization[])
      it(`choose the same route (${mode})`, () => {
        const { config } = compileConfig(
          { ...cfg, pathNormalization: { normalization: mode } },
          { metrics: new MetricsRegistry({ workload: '', namespace: '', app: '', version: '' }) },
        );
        const l = config.listeners[0] as CompiledHttpListener;
        const decide = (path: string, host: string): number | string => {
          const v = syntheticView({ path, headers: { host } }, config.pathNormalization, 80);
          if (isRejection(v)) return `${v.status}`;
          const sel = selectRoute(findVHost(l, v.authority)!, v);
          return sel === null ? 'NR' : sel.route.index;
        };
        fc.assert(
          fc.property(authority, wirePath, (auth, path) => {
            expect(decide(`http://${auth}${path}`, 'decoy:1')).to.equal(decide(path, auth));
          }),
          { seed: SEED, numRuns: 500 },
        );
      });
  });
});
