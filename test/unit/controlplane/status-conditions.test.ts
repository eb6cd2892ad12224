/**
 * Mesh objects' status conditions (controlplane/status.ts), the Istio-object change filter that
 * keeps status writes and metadata-only edits from causing pushes (registry.ts), and the
 * whole-cluster reference checks behind ResolvedRefs (pkg/validation/analyze.ts).
 */
import { expect } from 'chai';
import {
  objectStatus,
  reconciliation,
  statusUpToDate,
  type ProxyProgress,
  type Verdict,
} from '../../../controlplane/status.js';
import { changeMatters } from '../../../controlplane/registry.js';
import { reachOf } from '../../../controlplane/statuswriter.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { analyze, REFERENCE_RULES } from '../../../pkg/validation/analyze.js';
import { failClosed, failClosedText } from '../../../pkg/translate/failclosed.js';

const NOW = new Date('2026-12-06T12:00:00.000Z');
const LATER = new Date('2026-12-06T13:00:00.000Z');

const vs = (extra: Partial<KubeObject> = {}, generation = 3): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'demo', generation, ...extra.metadata },
  spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
  ...(extra.status ? { status: extra.status } : {}),
});

const clean: Verdict = { validation: { errors: [], warnings: [] }, unresolved: [], notes: [] };
const byType = (s: ReturnType<typeof objectStatus>): Record<string, { status: string; reason: string }> =>
  Object.fromEntries(s.conditions.map((c) => [c.type, { status: c.status, reason: c.reason }]));

describe('status conditions of mesh objects', () => {
  const table: [string, Verdict, Record<string, [string, string]>][] = [
    [
      'a clean object',
      clean,
      {
        Accepted: ['True', 'Accepted'],
        ResolvedRefs: ['True', 'ResolvedRefs'],
        Ready: ['True', 'Ready'],
        Stalled: ['False', 'Ready'],
      },
    ],
    [
      'an object with a not-enforced field',
      { ...clean, validation: { errors: [], warnings: [{ path: 'spec.x', message: 'not enforced' }] } },
      { Accepted: ['True', 'AcceptedWithWarnings'], Ready: ['True', 'Ready'], Stalled: ['False', 'Ready'] },
    ],
    [
      'an object losing a host conflict (a note, not a blocker)',
      { ...clean, notes: [{ path: 'spec.hosts[0]', message: 'another VirtualService wins' }] },
      { Accepted: ['True', 'AcceptedWithWarnings'], Ready: ['True', 'Ready'] },
    ],
    [
      'an invalid object',
      { ...clean, validation: { errors: [{ path: 'spec.http[0].timeout', message: 'bad' }], warnings: [] } },
      { Accepted: ['False', 'Invalid'], Ready: ['False', 'Invalid'], Stalled: ['True', 'Invalid'] },
    ],
    [
      'an object naming a missing subset',
      { ...clean, unresolved: [{ path: 'spec.http[0].route[0].destination.subset', message: 'no v9' }] },
      {
        Accepted: ['True', 'Accepted'],
        ResolvedRefs: ['False', 'RefNotFound'],
        Ready: ['False', 'RefNotFound'],
        Stalled: ['True', 'RefNotFound'],
      },
    ],
    [
      'a Gateway whose TLS credential cannot be served',
      { ...clean, badCredentials: ['server https (port 443): tls.key of Secret shop/cert does not match'] },
      {
        Accepted: ['True', 'Accepted'],
        ResolvedRefs: ['False', 'InvalidCertificateRef'],
        Ready: ['False', 'InvalidCertificateRef'],
        Stalled: ['True', 'InvalidCertificateRef'],
      },
    ],
    [
      'a missing reference and a bad credential: RefNotFound, both named',
      {
        ...clean,
        unresolved: [{ path: 'spec.x', message: 'no host' }],
        badCredentials: ['server s (port 443): Secret shop/cert not found'],
      },
      { ResolvedRefs: ['False', 'RefNotFound'], Stalled: ['True', 'RefNotFound'] },
    ],
    [
      'an invalid object that also names a missing host: invalid comes first',
      {
        validation: { errors: [{ path: 'spec', message: 'bad' }], warnings: [] },
        unresolved: [{ path: 'spec.http[0].route[0].destination.host', message: 'no host' }],
        notes: [],
      },
      {
        Accepted: ['False', 'Invalid'],
        ResolvedRefs: ['False', 'RefNotFound'],
        Stalled: ['True', 'Invalid'],
      },
    ],
    [
      'an invalid object every proxy ACKed past: not Reconciled (weftd left it out)',
      {
        ...clean,
        validation: { errors: [{ path: 'spec', message: 'bad' }], warnings: [] },
        reconciled: { type: 'Reconciled', status: 'True', reason: 'Reconciled', message: 'runs' },
      },
      {
        Accepted: ['False', 'Invalid'],
        Reconciled: ['False', 'Invalid'],
        Reconciling: ['False', 'Done'],
        Ready: ['False', 'Invalid'],
        Stalled: ['True', 'Invalid'],
      },
    ],
    [
      'an invalid RateLimit: its Enforced cannot say True',
      {
        ...clean,
        validation: { errors: [{ path: 'spec', message: 'bad' }], warnings: [] },
        extra: [{ type: 'Enforced', status: 'True', reason: 'Local', message: 'enforced' }],
      },
      { Accepted: ['False', 'Invalid'], Enforced: ['False', 'Invalid'] },
    ],
    [
      'a warning-only object stays Reconciled (warnings do not leave it out)',
      {
        ...clean,
        validation: { errors: [], warnings: [{ path: 'spec.x', message: 'not enforced' }] },
        reconciled: { type: 'Reconciled', status: 'True', reason: 'Reconciled', message: 'runs' },
      },
      {
        Accepted: ['True', 'AcceptedWithWarnings'],
        Reconciled: ['True', 'Reconciled'],
        Ready: ['True', 'Ready'],
      },
    ],
  ];
  for (const [title, verdict, want] of table) {
    it(title, () => {
      const got = byType(objectStatus(vs(), verdict, NOW));
      for (const [type, [status, reason]] of Object.entries(want))
        expect(got[type], type).to.deep.equal({ status, reason });
    });
  }

  it('an invalid security object says what weft enforces instead (fail closed), Reconciled too', () => {
    const ap: KubeObject = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-y', namespace: 'demo', generation: 2 },
      spec: {
        action: 'DENY',
        selector: { matchLabels: { app: 'reviews' } },
        rules: [{ when: [{ key: 'request.headers[x]', values: [] }] }],
      },
    };
    const errors = [{ path: 'spec.rules[0].when[0]', message: 'values or notValues must be set' }];
    const closed = failClosed(ap, errors)!;
    const status = objectStatus(
      ap,
      {
        ...clean,
        validation: { errors, warnings: [] },
        failClosed: failClosedText(ap, closed, 'weft-system'),
        reconciled: { type: 'Reconciled', status: 'True', reason: 'Reconciled', message: 'runs' },
      },
      NOW,
    );
    const accepted = status.conditions.find((c) => c.type === 'Accepted')!;
    expect(accepted).to.include({ status: 'False', reason: 'Invalid' });
    expect(accepted.message).to.equal(
      'weft does not apply this object as written: it fails validation (spec.rules[0].when[0]: values or notValues must be set); until it is fixed, weft denies every request to the workloads it selects (fail closed)',
    );
    const reconciled = status.conditions.find((c) => c.type === 'Reconciled')!;
    expect(reconciled).to.include({ status: 'False', reason: 'Invalid' });
    expect(reconciled.message).to.include('fail-closed stand-in');
  });

  it('what each stand-in enforces, in words: ALLOW, PeerAuthentication, an unreadable selector, the root namespace', () => {
    const obj = (kind: string, namespace: string, spec: Record<string, unknown>): KubeObject => ({
      apiVersion: 'security.istio.io/v1',
      kind,
      metadata: { name: 'p', namespace },
      spec,
    });
    const text = (o: KubeObject, path = 'spec.rules[0]'): string | null => {
      const closed = failClosed(o, [{ path, message: 'bad' }]);
      return closed === null ? null : failClosedText(o, closed, 'weft-system');
    };
    expect(text(obj('AuthorizationPolicy', 'demo', { rules: [{}] }))).to.equal(
      'weft applies it as an ALLOW policy that matches nothing on the workloads it selects: only other ALLOW policies let requests in (fail closed)',
    );
    expect(text(obj('AuthorizationPolicy', 'demo', { action: 'AUDIT', rules: [{}] }))).to.equal(null);
    expect(text(obj('VirtualService', 'demo', {}))).to.equal(null);
    expect(
      text(obj('PeerAuthentication', 'demo', { mtls: { mode: 'DISABLE' } }), 'spec.portLevelMtls'),
    ).to.equal('weft requires mutual TLS (STRICT) on every port of the workloads it selects (fail closed)');
    expect(
      text(
        obj('RequestAuthentication', 'demo', { jwtRules: [{ issuer: 'https://idp' }] }),
        'spec.jwtRules[0].jwksUri',
      ),
    ).to.equal(
      'weft refuses (401) every request to the workloads it selects that carries a token of its issuers, or of an issuer no valid RequestAuthentication names (fail closed)',
    );
    const dryRun = { ...obj('AuthorizationPolicy', 'demo', { action: 'DENY', rules: [{}] }) };
    dryRun.metadata = { ...dryRun.metadata, annotations: { 'istio.io/dry-run': 'true' } };
    expect(text(dryRun)).to.equal(
      'in dry run (istio.io/dry-run) only logged, not enforced: weft denies every request to the workloads it selects (fail closed)',
    );
    const wildcard = { selector: { matchLabels: { app: 'a*' } }, action: 'DENY', rules: [{}] };
    expect(text(obj('AuthorizationPolicy', 'demo', wildcard), 'spec.selector.matchLabels.app')).to.equal(
      'weft denies every request to every workload in namespace demo (fail closed: its selector cannot be read)',
    );
    expect(
      text(obj('AuthorizationPolicy', 'weft-system', wildcard), 'spec.selector.matchLabels.app'),
    ).to.equal(
      'weft denies every request to every workload in the mesh (fail closed: its selector cannot be read, and weft-system is the root namespace)',
    );
  });

  it('an invalid Sidecar says what weft enforces instead: REGISTRY_ONLY and the hosts it imports', () => {
    const sc = (namespace: string, spec: Record<string, unknown>): KubeObject => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 's', namespace },
      spec,
    });
    const text = (o: KubeObject, path: string): string =>
      failClosedText(o, failClosed(o, [{ path, message: 'bad' }], 'weft-system')!, 'weft-system');
    expect(text(sc('demo', { egress: [{ hosts: ['./*', 'bad'] }] }), 'spec.egress[0].hosts[1]')).to.equal(
      'weft applies outboundTrafficPolicy REGISTRY_ONLY to the workloads it scopes, importing only the egress hosts that can be read (./*): traffic to any other host is refused (fail closed)',
    );
    expect(text(sc('demo', { egress: [{ hosts: ['bad'] }] }), 'spec.egress[0].hosts[0]')).to.equal(
      'weft applies outboundTrafficPolicy REGISTRY_ONLY to the workloads it scopes, importing only ./*, weft-system/* (its own namespace and the root namespace: its egress hosts cannot be read): traffic to any other host is refused (fail closed)',
    );
    expect(
      text(
        sc('weft-system', { workloadSelector: { labels: { app: 'a b' } } }),
        'spec.workloadSelector.labels',
      ),
    ).to.equal(
      'weft applies outboundTrafficPolicy REGISTRY_ONLY to every workload in the mesh that no Sidecar of its own namespace scopes, importing every host in the registry: traffic to any other host is refused (fail closed: its selector cannot be read, and weft-system is the root namespace)',
    );
  });

  it('every condition and the status carry the generation (kstatus compares them)', () => {
    const s = objectStatus(vs({}, 7), clean, NOW);
    expect(s.observedGeneration).to.equal(7);
    expect(s.conditions.map((c) => c.observedGeneration)).to.deep.equal([7, 7, 7, 7]);
  });

  it('keeps lastTransitionTime while a condition keeps its status, moves it on a change', () => {
    const first = objectStatus(vs(), clean, NOW);
    const same = objectStatus(vs({ status: first }), clean, LATER);
    expect(same.conditions.map((c) => c.lastTransitionTime)).to.deep.equal(
      first.conditions.map(() => '2026-12-06T12:00:00Z'),
    );
    const broken = objectStatus(
      vs({ status: first }),
      { ...clean, unresolved: [{ path: 'p', message: 'm' }] },
      LATER,
    );
    const at = Object.fromEntries(broken.conditions.map((c) => [c.type, c.lastTransitionTime]));
    expect(at).to.deep.equal({
      Accepted: '2026-12-06T12:00:00Z',
      ResolvedRefs: '2026-12-06T13:00:00Z',
      Ready: '2026-12-06T13:00:00Z',
      Stalled: '2026-12-06T13:00:00Z',
    });
  });

  it('lists five findings and counts the rest; a message stays under 1 KiB', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({
      path: `spec.http[${i}]`,
      message: 'x'.repeat(100),
    }));
    const s = objectStatus(vs(), { ...clean, unresolved: many }, NOW);
    const refs = s.conditions.find((c) => c.type === 'ResolvedRefs')!;
    expect(refs.message.length).to.be.at.most(1024);
    const few = objectStatus(
      vs(),
      { ...clean, unresolved: many.slice(0, 7).map((f) => ({ ...f, message: 'm' })) },
      NOW,
    );
    expect(few.conditions.find((c) => c.type === 'ResolvedRefs')!.message).to.match(/\(and 2 more\)$/);
  });

  it('is up to date only when the live status says exactly what weft would write', () => {
    const desired = objectStatus(vs(), clean, NOW);
    expect(statusUpToDate(vs({ status: desired }), desired)).to.equal(true);
    expect(statusUpToDate(vs(), desired), 'no status yet').to.equal(false);
    const stale = { ...desired, observedGeneration: 2 };
    expect(statusUpToDate(vs({ status: stale }), desired), 'older generation').to.equal(false);
    const edited = {
      ...desired,
      conditions: desired.conditions.map((c) => (c.type === 'Ready' ? { ...c, status: 'False' } : c)),
    };
    expect(statusUpToDate(vs({ status: edited }), desired), 'edited by hand').to.equal(false);
    const extra = { ...desired, conditions: [...desired.conditions, { type: 'Other', status: 'True' }] };
    expect(statusUpToDate(vs({ status: extra }), desired), "another writer's condition").to.equal(true);
  });
});

describe('Reconciled: do the connected proxies run the object?', () => {
  const proxy = (name: string, runningAt: number, extra: Partial<ProxyProgress> = {}): ProxyProgress => ({
    name,
    namespace: name.includes('/') ? name.split('/')[0]! : 'demo',
    acks: true,
    runningAt,
    ...extra,
  });
  const table: [string, number, ProxyProgress[], string, string][] = [
    ['no proxy connected', 5, [], 'True', 'Reconciled'],
    [
      'every proxy ran a config computed after the change',
      5,
      [proxy('a', 5), proxy('b', 9)],
      'True',
      'Reconciled',
    ],
    ['one proxy has not ACKed since the change', 5, [proxy('a', 5), proxy('b', 4)], 'False', 'Pending'],
    [
      'an older proxy that sends no ACKs is not counted',
      5,
      [proxy('a', 6), proxy('old', 0, { acks: false })],
      'True',
      'Reconciled',
    ],
    [
      'a proxy behind that NACKed its newest config',
      5,
      [proxy('a', 6), proxy('b', 3, { nackError: 'bad' })],
      'False',
      'Nacked',
    ],
    [
      'a NACK of a later config does not concern an object it already runs',
      5,
      [proxy('a', 6, { nackError: 'bad' })],
      'True',
      'Reconciled',
    ],
  ];
  for (const [title, changedAt, proxies, status, reason] of table)
    it(title, () => expect(reconciliation(changedAt, proxies)).to.include({ status, reason }));

  it("a NACK names the object's own namespace's proxies and their errors", () =>
    expect(
      reconciliation(5, [proxy('demo/a', 1, { nackError: 'EADDRINUSE' }), proxy('demo/b', 9)], 'demo')
        .message,
    ).to.equal('1 of 2 proxies rejected the config holding it and run an older one: demo/a: EADDRINUSE'));

  it("another namespace's NACK is counted, never quoted (its text is not written into this object)", () =>
    expect(
      reconciliation(5, [proxy('tenant/x', 1, { nackError: 'secret text' }), proxy('demo/b', 9)], 'demo')
        .message,
    ).to.equal(
      '1 of 2 proxies rejected the config holding it and run an older one: 1 in other namespaces (weftctl proxy-status there says why)',
    ));

  it('a proxy that has not answered its newest push for over a minute holds nothing back', () => {
    const r = reconciliation(5, [proxy('demo/a', 5), proxy('demo/mute', 1, { unansweredMs: 61_000 })]);
    expect(r).to.include({ status: 'True', reason: 'Reconciled' });
    expect(r.message).to.match(/1 not answering for over 60 s, not counted/);
    expect(reconciliation(5, [proxy('demo/slow', 1, { unansweredMs: 5_000 })])).to.include({
      reason: 'Pending',
    });
  });

  const withReconciled = (reconciled: ReturnType<typeof reconciliation>) =>
    byType(objectStatus(vs(), { ...clean, reconciled }, NOW));
  it('pending: not Ready, Reconciling (kstatus InProgress), not Stalled', () =>
    expect(withReconciled(reconciliation(5, [proxy('a', 1)]))).to.deep.include({
      Ready: { status: 'False', reason: 'Pending' },
      Reconciling: { status: 'True', reason: 'Pending' },
      Stalled: { status: 'False', reason: 'Pending' },
    }));
  it('nacked: not Ready, Stalled (kstatus Failed), not Reconciling', () =>
    expect(withReconciled(reconciliation(5, [proxy('a', 1, { nackError: 'x' })]))).to.deep.include({
      Ready: { status: 'False', reason: 'Nacked' },
      Stalled: { status: 'True', reason: 'Nacked' },
      Reconciling: { status: 'False', reason: 'Done' },
    }));
  it('reconciled: Ready, neither Stalled nor Reconciling', () =>
    expect(withReconciled(reconciliation(5, [proxy('a', 5)]))).to.deep.include({
      Reconciled: { status: 'True', reason: 'Reconciled' },
      Ready: { status: 'True', reason: 'Ready' },
      Stalled: { status: 'False', reason: 'Ready' },
      Reconciling: { status: 'False', reason: 'Done' },
    }));
});

describe('which Istio object changes can change proxy config', () => {
  const obj = (meta: Record<string, unknown>, kind = 'VirtualService'): KubeObject => ({
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name: 'x', namespace: 'n', generation: 1, ...meta },
    spec: {},
  });
  const cases: [string, Parameters<typeof changeMatters>, boolean][] = [
    ['an add', ['VirtualService', 'add', obj({})], true],
    ['a delete', ['VirtualService', 'delete', obj({})], true],
    [
      'a spec change',
      ['VirtualService', 'update', { ...obj({ generation: 2 }), spec: { hosts: ['a'] } }, obj({})],
      true,
    ],
    ['a status write', ['VirtualService', 'update', { ...obj({}), status: { a: 1 } }, obj({})], false],
    [
      "Argo CD's tracking annotation and instance label",
      [
        'VirtualService',
        'update',
        obj({
          labels: { 'app.kubernetes.io/instance': 'demo' },
          annotations: { 'argocd.argoproj.io/tracking-id': 't' },
        }),
        obj({}),
      ],
      false,
    ],
    [
      'a WorkloadEntry label (its endpoint labels)',
      ['WorkloadEntry', 'update', obj({ labels: { v: '2' } }, 'WorkloadEntry'), obj({}, 'WorkloadEntry')],
      true,
    ],
    [
      "an AuthorizationPolicy's istio.io/dry-run annotation",
      [
        'AuthorizationPolicy',
        'update',
        obj({ annotations: { 'istio.io/dry-run': 'true' } }, 'AuthorizationPolicy'),
        obj({}, 'AuthorizationPolicy'),
      ],
      true,
    ],
  ];
  for (const [title, args, want] of cases)
    it(`${title} ${want ? 'matters' : 'does not matter'}`, () =>
      expect(changeMatters(...args)).to.equal(want));
});

describe('whole-cluster reference checks (ResolvedRefs)', () => {
  const route = (host: string): KubeObject => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: `to-${host.replace(/\W/g, '-')}`, namespace: 'demo' },
    spec: { hosts: ['front'], gateways: ['edge'], http: [{ route: [{ destination: { host } }] }] },
  });
  const known = new Set(['ratings.demo.svc.cluster.local', 'api.example.com']);
  const rules = (host: string, wholeCluster = true): string[] =>
    analyze([route(host)], 'default', { knownHost: (h) => known.has(h), wholeCluster })
      .map((f) => f.rule!)
      .sort();

  it('a short name resolved in the namespace and a known external host resolve', () => {
    expect(rules('ratings')).to.deep.equal(['analyze.gateway.undefined']);
    expect(rules('api.example.com')).to.deep.equal(['analyze.gateway.undefined']);
  });
  it('an unknown host is a reference finding', () =>
    expect(rules('nope')).to.include('analyze.host.undefined'));
  it('wildcard destinations are left alone', () =>
    expect(rules('*.example.com')).not.to.include('analyze.host.undefined'));
  it('without wholeCluster a missing gateway is not reported when the input has no Gateway', () =>
    expect(rules('ratings', false)).to.deep.equal([]));
  it('every reference rule is one analyze can produce', () =>
    expect([...REFERENCE_RULES].sort()).to.deep.equal([
      'analyze.gateway.undefined',
      'analyze.host.undefined',
      'analyze.subset.undefined',
    ]));
});

describe('which proxies an object can affect (Reconciled counts only those)', () => {
  const o = (kind: string, namespace: string, spec: Record<string, unknown> = {}): KubeObject => ({
    apiVersion: 'x/v1',
    kind,
    metadata: { name: 'o', namespace },
    spec,
  });
  const table: [string, KubeObject, string, boolean][] = [
    ['a VirtualService exported everywhere (default)', o('VirtualService', 'a'), 'b', true],
    ['a VirtualService exportTo "."', o('VirtualService', 'a', { exportTo: ['.'] }), 'b', false],
    [
      'a VirtualService exportTo "." in its own namespace',
      o('VirtualService', 'a', { exportTo: ['.'] }),
      'a',
      true,
    ],
    ['a DestinationRule exportTo [c]', o('DestinationRule', 'a', { exportTo: ['c'] }), 'c', true],
    ['an AuthorizationPolicy of another namespace', o('AuthorizationPolicy', 'a'), 'b', false],
    ['an AuthorizationPolicy in the root namespace', o('AuthorizationPolicy', 'weft-system'), 'b', true],
    ['a memquota in istio-system', o('memquota', 'istio-system'), 'b', true],
    ['a RateLimit of another namespace', o('RateLimit', 'a'), 'b', false],
    ['a Gateway (gateway pods anywhere)', o('Gateway', 'a'), 'b', true],
  ];
  for (const [title, obj, ns, want] of table)
    it(`${title} → proxies in ${ns}: ${want}`, () => expect(reachOf(obj, 'weft-system')(ns)).to.equal(want));
});
