/**
 * RateLimit and memquota validation through the same validateObject the webhook and weftctl call:
 * the seeds' YAML is admitted; limits of 0, negative and absurd durations, unknown memquota
 * dimensions and `scope: global` are refused with clear, coded messages; overlapping and
 * shadowed overrides are warnings.
 */
import { expect } from 'chai';
import { validateObject } from '../../../pkg/validation/index.js';

type Obj = Record<string, unknown>;
const rl = (spec: Obj): Obj => ({
  apiVersion: 'mesh.weft.dev/v1alpha1',
  kind: 'RateLimit',
  metadata: { name: 'ratings', namespace: 'default' },
  spec,
});
const mq = (spec: Obj): Obj => ({
  apiVersion: 'config.istio.io/v1alpha2',
  kind: 'memquota',
  metadata: { name: 'handler', namespace: 'istio-system' },
  spec,
});

/** Istio's rate-limit sample as the seeds wrote it: 5000/s, ratings 100/s, reviews → ratings 1/s. */
export const SEEDS_MEMQUOTA = mq({
  quotas: [
    {
      name: 'requestcount.instance.istio-system',
      maxAmount: 5000,
      validDuration: '1s',
      overrides: [
        { dimensions: { destination: 'ratings', source: 'reviews' }, maxAmount: 1, validDuration: '1s' },
        { dimensions: { destination: 'ratings' }, maxAmount: 100, validDuration: '1s' },
      ],
    },
  ],
});

const rules = (o: Obj): { errors: string[]; warnings: string[] } => {
  const r = validateObject(o);
  return { errors: r.errors.map((f) => f.rule ?? ''), warnings: r.warnings.map((f) => f.rule ?? '') };
};

describe('ratelimit: validation', () => {
  const good = { targetHost: 'ratings', limit: { requests: 100, unit: 'second' } };

  it('admits a per-client-address limit on a gateway, refuses an unknown sourceKey', () => {
    const gw = {
      selector: { matchLabels: { istio: 'ingressgateway' } },
      ports: [8080],
      limit: { requests: 10, unit: 'second', per: 'source' },
      sourceKey: { by: 'clientIP' },
    };
    expect(validateObject(rl(gw))).to.deep.equal({ errors: [], warnings: [] });
    expect(validateObject(rl({ ...gw, sourceKey: { by: 'ip' } })).errors).to.have.length(1);
  });

  it('admits the seeds memquota as written, and a plain RateLimit', () => {
    expect(validateObject(SEEDS_MEMQUOTA)).to.deep.equal({ errors: [], warnings: [] });
    expect(validateObject(rl(good))).to.deep.equal({ errors: [], warnings: [] });
  });

  const refused: [string, Obj, string][] = [
    ['a limit of 0', rl({ ...good, limit: { requests: 0 } }), 'ratelimit.limit.invalid'],
    ['a negative limit', rl({ ...good, limit: { requests: -5 } }), 'ratelimit.limit.invalid'],
    [
      'a negative interval',
      rl({ ...good, limit: { requests: 1, interval: '-1s' } }),
      'ratelimit.limit.invalid',
    ],
    ['a zero interval', rl({ ...good, limit: { requests: 1, interval: '0s' } }), 'ratelimit.limit.invalid'],
    [
      'an absurd interval (1000h)',
      rl({ ...good, limit: { requests: 1, interval: '1000h' } }),
      'ratelimit.limit.invalid',
    ],
    ['burst 0', rl({ ...good, limit: { requests: 1, burst: 0 } }), 'ratelimit.limit.invalid'],
    ['scope global', rl({ ...good, scope: 'global' }), 'ratelimit.scope.global'],
    ['no destination', rl({ limit: { requests: 1 } }), 'ratelimit.target.required'],
    [
      'a target in another namespace',
      rl({ ...good, targetHost: 'ratings.other' }),
      'ratelimit.targetHost.namespace',
    ],
    ['a path without /', rl({ ...good, paths: ['api'] }), 'ratelimit.path'],
    ['a lower-case method', rl({ ...good, methods: ['get'] }), 'ratelimit.method'],
    [
      'an empty override source',
      rl({ ...good, overrides: [{ source: {}, limit: { requests: 1 } }] }),
      'ratelimit.override.source.empty',
    ],
    [
      'a bad service account',
      rl({ ...good, overrides: [{ source: { serviceAccounts: ['a/b/c'] }, limit: { requests: 1 } }] }),
      'ratelimit.override.serviceAccount',
    ],
    [
      'sourceKey by header without a name',
      rl({ ...good, sourceKey: { by: 'header' } }),
      'ratelimit.sourceKey.name',
    ],
    [
      'memquota: an unknown dimension',
      mq({
        quotas: [
          {
            name: 'q',
            maxAmount: 1,
            validDuration: '1s',
            overrides: [{ dimensions: { sourceIp: '1.2.3.4' }, maxAmount: 1 }],
          },
        ],
      }),
      'memquota.dimension.unknown',
    ],
    [
      'memquota: maxAmount 0',
      mq({ quotas: [{ name: 'q', maxAmount: 0, validDuration: '1s' }] }),
      'memquota.budget',
    ],
    ['memquota: no validDuration', mq({ quotas: [{ name: 'q', maxAmount: 10 }] }), 'memquota.budget'],
    [
      'memquota: a negative validDuration',
      mq({ quotas: [{ name: 'q', maxAmount: 10, validDuration: '-1s' }] }),
      'memquota.budget',
    ],
  ];
  for (const [title, o, rule] of refused)
    it(`refuses ${title} (${rule})`, () => {
      expect(rules(o).errors).to.include(rule);
    });

  it('without the global backend, refuses scope global naming the settings and what to use instead', () => {
    const m = validateObject(rl({ ...good, scope: 'global' })).errors[0]!.message;
    expect(m)
      .to.match(/--ratelimit-redis/)
      .and.match(/--global-ratelimits/)
      .and.match(/scope local/);
  });

  it('with the global backend, admits scope global and its failureMode', () => {
    const r = validateObject(rl({ ...good, scope: 'global', failureMode: 'deny' }), {
      globalRateLimits: true,
    });
    expect(r.errors).to.deep.equal([]);
    expect(r.warnings).to.deep.equal([]);
  });

  it('warns that failureMode on a local limit is unused; refuses an unknown mode', () => {
    expect(validateObject(rl({ ...good, failureMode: 'deny' })).warnings.map((w) => w.rule)).to.include(
      'ratelimit.failureMode.unused',
    );
    expect(
      validateObject(rl({ ...good, scope: 'global', failureMode: 'maybe' }), { globalRateLimits: true })
        .errors,
    ).to.have.length.greaterThan(0);
  });

  const warned: [string, Obj, string][] = [
    [
      'the same source twice',
      rl({
        ...good,
        overrides: [
          { source: { namespaces: ['a'] }, limit: { requests: 1 } },
          { source: { namespaces: ['a'] }, limit: { requests: 2 } },
        ],
      }),
      'ratelimit.override.shadowed',
    ],
    [
      'overlapping service accounts',
      rl({
        ...good,
        overrides: [
          { source: { serviceAccounts: ['a', 'b'] }, limit: { requests: 1 } },
          { source: { serviceAccounts: ['b', 'c'] }, limit: { requests: 2 } },
        ],
      }),
      'ratelimit.override.overlap',
    ],
    [
      'memquota: a destination-only override before a source one for the same destination',
      mq({
        quotas: [
          {
            name: 'q',
            maxAmount: 5000,
            validDuration: '1s',
            overrides: [
              { dimensions: { destination: 'ratings' }, maxAmount: 100 },
              { dimensions: { destination: 'ratings', source: 'reviews' }, maxAmount: 1 },
            ],
          },
        ],
      }),
      'memquota.override.shadowed',
    ],
    [
      'a forgeable header key',
      rl({ ...good, limit: { requests: 1, per: 'source' }, sourceKey: { by: 'header', name: 'x-user' } }),
      'ratelimit.sourceKey.forgeable',
    ],
    [
      'memquota: minDeduplicationDuration (not enforced)',
      mq({ minDeduplicationDuration: '1s' }),
      'notEnforced.memquota.minDeduplicationDuration',
    ],
  ];
  for (const [title, o, rule] of warned)
    it(`warns about ${title} (${rule})`, () => {
      const r = rules(o);
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.include(rule);
    });
});
