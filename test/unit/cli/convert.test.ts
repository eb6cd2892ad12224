/**
 * `weftctl convert`: the seeds' memquota becomes RateLimits that the webhook admits and that give
 * every pod the same budgets as the memquota itself (compared through the real translation), and
 * what cannot be converted is said, with a non-zero exit.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runConvert } from '../../../cli/commands/convert.js';
import type { MemQuota } from '../../../pkg/api/memquota.js';
import type { RateLimit } from '../../../pkg/api/ratelimit.js';
import { rateLimitsFor, type RateLimitPod } from '../../../pkg/translate/ratelimit.js';
import { validateObject } from '../../../pkg/validation/index.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'ratelimit', 'memquota-seeds.yaml');

function run(argv: string[], stdin?: string): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runConvert(argv, {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    ...(stdin !== undefined ? { readInput: () => stdin } : {}),
  });
  return { code, out, err };
}

const pods: RateLimitPod[] = [
  { namespace: 'bookinfo', labels: { app: 'ratings' }, serviceAccount: 'bookinfo-ratings' },
  { namespace: 'bookinfo', labels: { app: 'reviews' }, serviceAccount: 'bookinfo-reviews' },
  { namespace: 'bookinfo', labels: { app: 'productpage' }, serviceAccount: 'bookinfo-productpage' },
];

/** What a pod enforces, names left out: budgets and override principals in order. */
function enforced(pod: RateLimitPod, objs: { rateLimits?: RateLimit[]; memquotas?: MemQuota[] }): unknown {
  const { block } = rateLimitsFor({
    pod,
    rateLimits: objs.rateLimits ?? [],
    memquotas: objs.memquotas ?? [],
    kubeServices: [],
    pods,
    domainSuffix: 'cluster.local',
  });
  const l = block!.limits[0]!;
  return {
    budget: l.budget,
    overrides: (l.overrides ?? []).map((o) => ({ source: o.source, budget: o.budget })),
  };
}

describe('weftctl convert', () => {
  it('the seeds memquota: valid RateLimits that enforce what the memquota does, for every pod', () => {
    const r = run(['-f', FIXTURE, '-n', 'bookinfo']);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    const converted = parseAllDocuments(r.out).map((d) => d.toJS() as RateLimit);
    expect(converted.map((o) => [o.kind, o.metadata.name])).to.deep.equal([
      ['RateLimit', 'handler-requestcount-instance-istio-system-ratings'],
      ['RateLimit', 'handler-requestcount-instance-istio-system'],
    ]);
    for (const o of converted) expect(validateObject(o)).to.deep.equal({ errors: [], warnings: [] });
    const memquota = parseAllDocuments(readFileSync(FIXTURE, 'utf8'))[0]!.toJS() as MemQuota;
    for (const pod of pods)
      expect(enforced(pod, { rateLimits: converted }), pod.labels.app).to.deep.equal(
        enforced(pod, { memquotas: [memquota] }),
      );
  });

  it('json output, and other kinds skipped with a note', () => {
    const other =
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n' + readFileSync(FIXTURE, 'utf8');
    const r = run(['-f', '-', '-o', 'json'], other);
    expect(r.code).to.equal(0);
    expect((JSON.parse(r.out) as unknown[]).length).to.equal(2);
    expect(r.err).to.contain('ConfigMap x: skipped (only memquota is converted)');
  });

  it('unknown dimensions: refused, exit 1, the dimension named', () => {
    const bad = readFileSync(FIXTURE, 'utf8').replace('source: reviews', 'sourceIp: 10.0.0.1');
    const r = run(['-f', '-'], bad);
    expect(r.code).to.equal(1);
    expect(r.err).to.contain('unknown dimension "sourceIp"');
  });
});
