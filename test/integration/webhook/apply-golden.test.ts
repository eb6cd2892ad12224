/**
 * What `kubectl apply` prints for invalid variants of the seeds (Bookinfo's reviews routing, and
 * the DestinationRule cases of Istio's own CRD tests in test/data/istio-validation), against the
 * real API server with weft's CRDs and the real webhook. Each variant's stderr is pinned in
 * test/golden/webhook/apply/<name>.txt (namespace and file path replaced by NS and FILE):
 * value errors must come from the webhook, in weft's words, never from the CRD schema (a raw
 * regular expression, "should be greater than or equal to", "must validate one and only one
 * schema"); docs/adr/0012. Only a wrong type and an unknown field are the API server's own.
 *
 * After a deliberate change to a message: `WEFT_UPDATE_GOLDEN=1 npx mocha --timeout 180000
 * --require test/support/cluster-hooks.ts test/integration/webhook/apply-golden.test.ts` and
 * review the diff.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { freshNamespace, installCRDs, testCluster } from '../../support/index.js';
import { SCOPE_LABEL, startWebhook, waitForValidation, type RunningWebhook } from './harness.js';

const GOLDEN = join(import.meta.dirname, '../../golden/webhook/apply');
const CORPUS = join(import.meta.dirname, '../../data/istio-validation/invalid');

type Obj = Record<string, unknown>;

/** The seed: Bookinfo's reviews VirtualService (90/10 between v1 and v3, jason to v2). */
function reviews(http0: Obj = {}, http1: Obj = {}): Obj {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews' },
    spec: {
      hosts: ['reviews'],
      http: [
        {
          match: [{ headers: { 'end-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'reviews', subset: 'v2' } }],
          ...http0,
        },
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 90 },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 10 },
          ],
          ...http1,
        },
      ],
    },
  };
}

const REVIEWS_RULE: Obj = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews' },
  spec: {
    host: 'reviews',
    subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
  },
};

/** A corpus object, without its namespace (it is applied to the test's own). */
function corpus(file: string): Obj {
  const o = parse(readFileSync(join(CORPUS, file), 'utf8')) as { metadata: Obj };
  const { namespace: _, ...metadata } = o.metadata;
  return { ...o, metadata };
}

/** [golden name, object] */
const VARIANTS: [string, Obj][] = [
  ['vs-timeout-10-seconds', reviews({ timeout: '10 seconds' })],
  ['vs-timeout-below-1ms', reviews({ timeout: '500us' })],
  [
    'vs-negative-weight',
    reviews(
      {},
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: -10 },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 110 },
        ],
      },
    ),
  ],
  ['vs-fault-percentage-150', reviews({ fault: { abort: { httpStatus: 503, percentage: { value: 150 } } } })],
  [
    'vs-mirror-percentage-200',
    reviews({ mirror: { host: 'reviews', subset: 'v3' }, mirrorPercentage: { value: 200 } }),
  ],
  ['vs-uri-exact-and-prefix', reviews({ match: [{ uri: { exact: '/reviews', prefix: '/reviews/' } }] })],
  ['vs-retries-per-try-timeout-2-s', reviews({ retries: { attempts: 2, perTryTimeout: '2 s' } })],
  // The API server's own: a value of the wrong type, a field no schema has.
  [
    'vs-weight-ten',
    reviews({}, { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 'ten' }] }),
  ],
  ['vs-unknown-field', reviews({ timout: '10s' })],
  // Istio's own cases: its CRD tests (testdata/crds/destinationrule-invalid.yaml), its dataset, an analyzer's.
  [
    'dr-warmup-minimum-percent-150',
    corpus('crds_destinationrule-invalid__01-DestinationRule-bookinfo-ratings.yaml'),
  ],
  [
    'dr-warmup-without-duration',
    corpus('crds_destinationrule-invalid__02-DestinationRule-bookinfo-ratings.yaml'),
  ],
  [
    'dr-warmup-negative-aggression',
    corpus('crds_destinationrule-invalid__03-DestinationRule-bookinfo-ratings.yaml'),
  ],
  [
    'dr-without-host',
    corpus(
      'dataset_networking-v1alpha3-DestinationRule-invalid@26b6a59__01-DestinationRule-invalid-destination-rule.yaml',
    ),
  ],
  [
    'vs-route-without-destination',
    corpus('analyzers_virtualservice_destinationhosts__09-VirtualService-reviews-bogushost.yaml'),
  ],
  [
    'se-unknown-resolution',
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'external-svc' },
      spec: {
        hosts: ['api.example.com'],
        ports: [{ number: 443, name: 'https', protocol: 'TLS' }],
        resolution: 'DNS_PLEASE',
        endpoints: [{ address: 'api.example.com', weight: -1 }],
      },
    },
  ],
];

/** `o` under another name, for its own host (so that no cross-object check involves the others). */
const named = (name: string, o: Obj): Obj => ({
  ...o,
  metadata: { name },
  spec: {
    ...(o.spec as Obj),
    [o.kind === 'DestinationRule' ? 'host' : 'hosts']: o.kind === 'DestinationRule' ? name : [name],
  },
});

/** [golden name, object]: valid objects using fields Istio 1.30 added that weft does not act on. */
const ACCEPTED_WITH_WARNING: [string, Obj][] = [
  [
    'istio-1.30-vs-retry-ignore-previous-hosts',
    named('reviews-retries', reviews({ retries: { attempts: 2, retryIgnorePreviousHosts: false } })),
  ],
  [
    'istio-1.30-vs-mirror_percent',
    named('reviews-mirror', reviews({ mirror: { host: 'reviews', subset: 'v3' }, mirror_percent: 5 })),
  ],
  [
    'istio-1.30-dr-retry-budget',
    named('reviews-budget', {
      ...REVIEWS_RULE,
      spec: { host: 'reviews', trafficPolicy: { retryBudget: { percent: 20, minRetryConcurrency: 3 } } },
    }),
  ],
  [
    'istio-1.30-ra-jwks_uri-space-delimited-claims',
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt' },
      spec: {
        jwtRules: [
          {
            issuer: 'https://issuer.example.com',
            jwks_uri: 'https://issuer.example.com/keys',
            spaceDelimitedClaims: ['roles'],
          },
        ],
      },
    },
  ],
];

/** Lines the API server or kubectl print that mean the CRD schema, not weft, refused a value. */
const SCHEMA_WORDING =
  /should match '|should be (greater|less) than|must validate one and only one schema|Unsupported value:|Required value/;

describe("kubectl apply of the seeds' invalid variants: what the user reads (golden)", function () {
  this.timeout(180_000);
  let hook: RunningWebhook;
  let dir: string;
  let ns: string;
  const kubectl = (args: string[]) => testCluster().kubectl(args);

  before(async () => {
    await installCRDs();
    hook = await startWebhook();
    dir = mkdtempSync(join(tmpdir(), 'weft-apply-golden-'));
    ns = await freshNamespace('apply-golden', { labels: { [SCOPE_LABEL]: hook.scope } });
    await waitForValidation(ns);
    // Bookinfo's DestinationRule for reviews, so the seed's subsets exist; the webhook learns of
    // it through its informer, so wait until the valid seed applies without a warning.
    const rule = join(dir, 'reviews-dr.yaml');
    writeFileSync(rule, stringify(REVIEWS_RULE));
    const applied = await kubectl(['apply', '-n', ns, '-f', rule]);
    expect(applied.code, applied.stderr).to.equal(0);
    const seed = join(dir, 'reviews.yaml');
    writeFileSync(seed, stringify(reviews()));
    let warnings = 'not tried';
    for (let i = 0; i < 80 && warnings !== ''; i++) {
      if (i > 0) await sleep(250);
      const dry = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', seed]);
      expect(dry.code, dry.stderr).to.equal(0);
      warnings = dry.stderr;
    }
    expect(warnings, 'the valid seed applies cleanly').to.equal('');
    if (process.env.WEFT_UPDATE_GOLDEN === '1') mkdirSync(GOLDEN, { recursive: true });
  });
  after(async () => {
    await hook?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function applyGolden(name: string, object: Obj): Promise<{ code: number; stderr: string }> {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(path, stringify(object));
    const r = await kubectl(['apply', '-n', ns, '-f', path]);
    const got = `exit ${r.code}\n${r.stderr.split(path).join('FILE').split(ns).join('NS')}`;
    const file = join(GOLDEN, `${name}.txt`);
    if (process.env.WEFT_UPDATE_GOLDEN === '1') writeFileSync(file, got);
    expect(got).to.equal(readFileSync(file, 'utf8'));
    return r;
  }

  for (const [name, object] of ACCEPTED_WITH_WARNING) {
    it(`${name}: applied, with a warning (never refused)`, async () => {
      const r = await applyGolden(name, object);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/^Warning: .*accepted but not enforced/m);
    });
  }

  for (const [name, object] of VARIANTS) {
    it(name, async () => {
      const r = await applyGolden(name, object);
      expect(r.code, 'the object was refused').to.equal(1);
      if (!name.startsWith('vs-weight-ten') && !name.startsWith('vs-unknown-field')) {
        expect(r.stderr, 'refused by the webhook').to.include(
          'admission webhook "validation.mesh.weft.dev" denied',
        );
        expect(r.stderr).to.not.match(SCHEMA_WORDING);
      }
    });
  }
});
