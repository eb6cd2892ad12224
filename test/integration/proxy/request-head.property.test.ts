/**
 * Property check through a real proxy to real node:http upstreams on 127.0.0.1 (fast-check,
 * fixed seed, bounded): for generated request-targets in origin or absolute form, what the
 * upstream receives as target and Host is exactly what the route decision used. The upstream
 * that answered must be the one whose rule matches the path it received, the Host it received
 * must be the authority routed on, and a refused head must reach no upstream.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { raw, reviewsEntry, startProxy, upstream, type Started, type Upstream } from './helpers.js';
import { isRejection, parseRequestHead } from '../../../proxy/router/target.js';
import type { PathNormalization } from '../../../proxy/router/path.js';

const SEED = 20261205;
const RUNS_PER_MODE = 100;

const RULES = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: reviews, subset: adm}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: api}}]
  - route: [{destination: {host: reviews, subset: def}}]
`;

/** The oracle: which subset a path the upstream received belongs to. */
const ruleFor = (path: string): string =>
  path.startsWith('/admin') ? 'adm' : path.startsWith('/api') ? 'api' : 'def';

// what llhttp lets through in a request-target: printable ASCII but '#' (refused separately)
const TOKENS = [
  'admin',
  'api',
  'x',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2f',
  '%5C',
  '\\',
  '/',
  '//',
  '%41',
  '%61pi',
  '%%32%65',
  '%00',
  ';',
  '"',
  '{',
  '^',
  '~',
];
const wirePath = fc.array(fc.constantFrom(...TOKENS), { maxLength: 8 }).map((t) => `/${t.join('')}`);
const query = fc.constantFrom('', '?', '?a=/../admin', '?x=%2e%2e');
const authority = fc.constantFrom('reviews:9080', 'reviews.default.svc.cluster.local:9080');

function statusOf(out: string): number {
  return Number(out.slice(9, 12));
}

describe('proxy request head, property-checked end to end (real upstreams)', function () {
  this.timeout(60_000);
  const ups: Upstream[] = [];
  let p: Started | null = null;
  before(async () => {
    for (const name of ['adm', 'api', 'def']) ups.push(await upstream(name));
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
  });
  after(async () => {
    for (const u of ups) await u.close();
  });

  for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES', 'NONE'] as PathNormalization[])
    it(`${mode}: the upstream gets the target and Host the route was chosen on`, async () => {
      p = await startProxy(
        `${reviewsEntry(ups)}${RULES}---
apiVersion: mesh.weft.dev/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {pathNormalization: {normalization: ${mode}}}
`,
      );
      await fc.assert(
        fc.asyncProperty(wirePath, query, authority, fc.boolean(), async (path, q, auth, absolute) => {
          for (const u of ups) u.seen.length = 0;
          const target = absolute ? `http://${auth}${path}${q}` : `${path}${q}`;
          const host = absolute ? 'decoy.example:1' : auth;
          const out = await raw(
            p!.port,
            `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
            5000,
          );
          const got = ups.flatMap((u) =>
            u.seen.map((s) => ({ name: u.name, url: s.url, host: s.headers.host })),
          );
          const head = parseRequestHead('GET', target, [host], mode);
          if (isRejection(head)) {
            expect(statusOf(out), target).to.equal(head.status);
            expect(got, target).to.deep.equal([]);
            return;
          }
          expect(statusOf(out), target).to.equal(200);
          expect(got, target).to.have.length(1);
          const seen = got[0]!;
          const seenPath = seen.url.split('?')[0]!;
          expect(seen.name, `${target} → ${seen.url}`).to.equal(ruleFor(seenPath));
          expect(seen.host, target).to.equal(auth);
          expect(seen.url, target).to.equal(head.target);
          expect(seen.url.slice(seenPath.length), 'query as sent').to.equal(q);
        }),
        { seed: SEED, numRuns: RUNS_PER_MODE },
      );
    });
});
