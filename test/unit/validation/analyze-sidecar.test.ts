/**
 * weftctl analyze: conflicting Sidecars, as Istio's analyzers report them (IST0109 multiple
 * Sidecars without selector in a namespace, IST0110 Sidecars selecting the same workload). The
 * finding is on the newer object and names the oldest, which is the one weft uses.
 */
import { expect } from 'chai';
import { analyzeObjects } from '../../../pkg/validation/index.js';

type Obj = Record<string, unknown>;
const sidecar = (name: string, ns: string, ts: string, selector?: Record<string, string>): Obj => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Sidecar',
  metadata: { name, namespace: ns, creationTimestamp: ts },
  spec: { ...(selector ? { workloadSelector: { labels: selector } } : {}), egress: [{ hosts: ['./*'] }] },
});
const T1 = '2026-01-01T00:00:00Z';
const T2 = '2026-02-01T00:00:00Z';

const findings = (objs: Obj[]) =>
  analyzeObjects(objs)
    .filter((f) => f.rule?.startsWith('analyze.sidecar.'))
    .map(
      (f) =>
        `${f.rule} ${f.object.namespace}/${f.object.name} <- ${(f.related ?? []).map((r) => r.name).join(',')}`,
    );

describe('analyze: conflicting Sidecars', () => {
  const CASES: [string, Obj[], string[]][] = [
    [
      'two selector-less Sidecars in one namespace: the newer is flagged',
      [sidecar('b', 'prod', T2), sidecar('a', 'prod', T1)],
      ['analyze.sidecar.multipleDefaults prod/b <- a'],
    ],
    [
      'one selector-less Sidecar per namespace is fine',
      [sidecar('a', 'prod', T1), sidecar('a', 'dev', T2)],
      [],
    ],
    [
      'two Sidecars selecting the same labels',
      [sidecar('a', 'prod', T1, { app: 'ratings' }), sidecar('b', 'prod', T2, { app: 'ratings' })],
      ['analyze.sidecar.selectorConflict prod/b <- a'],
    ],
    [
      'a narrower selector still overlaps (app=ratings,version=v2 is also app=ratings)',
      [
        sidecar('a', 'prod', T1, { app: 'ratings' }),
        sidecar('b', 'prod', T2, { app: 'ratings', version: 'v2' }),
      ],
      ['analyze.sidecar.selectorConflict prod/b <- a'],
    ],
    [
      'different values for one label never select the same workload',
      [sidecar('a', 'prod', T1, { app: 'ratings' }), sidecar('b', 'prod', T2, { app: 'reviews' })],
      [],
    ],
    [
      'the same selector in two namespaces is fine',
      [sidecar('a', 'prod', T1, { app: 'ratings' }), sidecar('b', 'dev', T2, { app: 'ratings' })],
      [],
    ],
    [
      'a selector Sidecar next to the namespace default is fine (it takes precedence)',
      [sidecar('default', 'prod', T1), sidecar('ratings', 'prod', T2, { app: 'ratings' })],
      [],
    ],
    [
      'three defaults: both newer ones are flagged, each naming the oldest first',
      [sidecar('c', 'prod', '2026-03-01T00:00:00Z'), sidecar('b', 'prod', T2), sidecar('a', 'prod', T1)],
      ['analyze.sidecar.multipleDefaults prod/b <- a', 'analyze.sidecar.multipleDefaults prod/c <- a,b'],
    ],
  ];
  for (const [title, objs, want] of CASES) it(title, () => expect(findings(objs).sort()).to.deep.equal(want));

  it('the message says which Sidecar weft uses', () => {
    const [f] = analyzeObjects([sidecar('b', 'prod', T2), sidecar('a', 'prod', T1)]).filter(
      (x) => x.rule === 'analyze.sidecar.multipleDefaults',
    );
    expect(f!.severity).to.equal('error');
    expect(f!.message).to.contain('weft uses the oldest (Sidecar prod/a)');
  });
});
