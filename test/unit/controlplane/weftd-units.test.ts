/**
 * weftd's pure parts: flags and mesh config, token review answers and the review cache, the
 * push debouncer (with a manual clock), pod-change filtering, authorization, workload naming.
 */
import { expect } from 'chai';
import {
  bearerToken,
  cachedAuthenticator,
  identityFromReview,
  tokenExpiryMs,
  type Identity,
} from '../../../controlplane/auth.js';
import { ConfigGenerator, telemetryFor, workloadName } from '../../../controlplane/configgen.js';
import { Debouncer, type DebounceClock } from '../../../controlplane/debounce.js';
import { authorize } from '../../../controlplane/discovery.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import { DEFAULT_MESH, parseFlags, parseMeshSettings } from '../../../controlplane/flags.js';
import { podChangeMatters, type PodInfo, type Snapshot } from '../../../controlplane/registry.js';
import { encodeMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';
import { servicesFromKube } from '../../../pkg/translate/kube.js';
import { isWeftError, type ErrorCode } from '../../../pkg/errors/index.js';
import type { KubeObject } from '../../../pkg/kube/types.js';

function code(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    return isWeftError(err) ? err.code : undefined;
  }
  return undefined;
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}

describe('weftd flags', () => {
  it('defaults match the rendered Deployment and istiod', () => {
    expect(parseFlags([], {})).to.deep.equal({
      help: false,
      tlsDir: '/etc/weft/tls',
      statusLease: { namespace: 'weft-system', name: 'weftd-status' },
      host: '0.0.0.0',
      port: 15012,
      monitoringPort: 15014,
      domainSuffix: 'cluster.local',
      caSecret: { namespace: 'weft-system', name: 'weft-root-ca' },
      pushDebounceMs: 100,
      pushDebounceMaxMs: 10_000,
      shadowHostSuffix: false,
    });
  });

  const SHADOW_ENV: [string | undefined, boolean | 'error'][] = [
    [undefined, false],
    ['', false],
    ['true', false],
    ['1', false],
    ['TRUE', false],
    ['false', true],
    ['0', true],
    [' False ', true],
    ['no', 'error'],
    ['yes please', 'error'],
  ];
  for (const [v, want] of SHADOW_ENV)
    it(`DISABLE_SHADOW_HOST_SUFFIX=${JSON.stringify(v)} → ${String(want)} (istiod's switch, default true)`, () => {
      const env = v === undefined ? {} : { DISABLE_SHADOW_HOST_SUFFIX: v };
      if (want === 'error')
        expect(() => parseFlags([], env)).to.throw(/DISABLE_SHADOW_HOST_SUFFIX.*true or false/);
      else expect(parseFlags([], env).shadowHostSuffix).to.equal(want);
    });

  it('reads every flag', () => {
    const o = parseFlags([
      '--config=/etc/weft/config/mesh.yaml',
      '--tls-dir=/tls/',
      '--kubeconfig',
      '/k',
      '--port=0',
      '--monitoring-port=9',
      '--domain-suffix=corp.internal.',
      '--ca-secret=mesh/root',
      '--push-debounce=250ms',
      '--push-debounce-max=2s',
    ]);
    expect(o).to.deep.include({
      configFile: '/etc/weft/config/mesh.yaml',
      tlsDir: '/tls',
      kubeconfig: '/k',
      port: 0,
      monitoringPort: 9,
      domainSuffix: 'corp.internal',
      caSecret: { namespace: 'mesh', name: 'root' },
      pushDebounceMs: 250,
      pushDebounceMaxMs: 2000,
    });
  });

  const bad: [string, string[], RegExp][] = [
    ['a port that is not a number', ['--port=abc'], /--port: abc is not a port number/],
    ['a port out of range', ['--monitoring-port=70000'], /--monitoring-port/],
    ['an unknown flag', ['--bogus'], /Unknown option '--bogus'.*--help/],
    ['a positional argument', ['serve'], /serve/],
    ['a CA secret without a namespace', ['--ca-secret=root'], /--ca-secret: root is not NAMESPACE\/NAME/],
    ['a CA secret with too many parts', ['--ca-secret=a/b/c'], /NAMESPACE\/NAME/],
    [
      'a debounce that is not a duration',
      ['--push-debounce=soon'],
      /--push-debounce: soon is not a duration/,
    ],
    ['a domain suffix that is not DNS', ['--domain-suffix=Bad_Suffix'], /--domain-suffix/],
    ['both ports the same', ['--port=15012', '--monitoring-port=15012'], /must differ/],
    [
      'a status Lease without a name',
      ['--status-lease=weft-system'],
      /--status-lease: .* NAMESPACE\/NAME or none/,
    ],
    ['a webhook port that is not a number', ['--webhook-port=x'], /--webhook-port: x is not a port number/],
    ['the webhook on the discovery port', ['--webhook-port=15012'], /--webhook-port must differ/],
    ['the webhook on the monitoring port', ['--webhook-port=15014'], /--webhook-port must differ/],
    [
      'a webhook certificate without the webhook',
      ['--webhook-tls-dir=/x'],
      /--webhook-tls-dir needs --webhook-port/,
    ],
  ];
  it('--webhook-port runs the webhook in-process (combined control plane, ADR 0024); absent: weftd alone', () => {
    expect(parseFlags([], {})).not.to.have.property('webhook');
    expect(parseFlags(['--webhook-port=9443'], {}).webhook).to.deep.equal({
      port: 9443,
      tlsDir: '/etc/weft/webhook-tls',
    });
    expect(parseFlags(['--webhook-port=0', '--webhook-tls-dir=/w/'], {}).webhook).to.deep.equal({
      port: 0,
      tlsDir: '/w',
    });
  });
  it('--status-lease=none turns status writes off; NS/NAME names the Lease', () => {
    expect(parseFlags(['--status-lease=none'], {})).not.to.have.property('statusLease');
    expect(parseFlags(['--status-lease=mesh/writer'], {}).statusLease).to.deep.equal({
      namespace: 'mesh',
      name: 'writer',
    });
  });

  for (const [title, argv, re] of bad) {
    it(`refuses ${title} with WEFT_WEFTD_CONFIG`, () => {
      expect(code(() => parseFlags(argv))).to.equal('WEFT_WEFTD_CONFIG');
      expect(message(() => parseFlags(argv))).to.match(re);
    });
  }
});

describe('weftd mesh config (mesh.yaml)', () => {
  it('reads what render() writes', () => {
    const yaml = [
      'trustDomain: corp.example',
      'mtls:',
      '  mode: STRICT',
      'workloadCertTTL: 12h',
      'telemetry:',
      '  metrics: true',
      '  tracingSamplingPercent: 5',
      '  accessLog: false',
      'pathNormalization:',
      '  normalization: MERGE_SLASHES',
    ].join('\n');
    expect(parseMeshSettings(yaml)).to.deep.equal({
      trustDomain: 'corp.example',
      rootNamespace: 'weft-system',
      mtlsMode: 'STRICT',
      workloadCertTtlMs: 12 * 3600_000,
      telemetry: { metrics: true, accessLog: false, tracingSamplingPercent: 5 },
      pathNormalization: { normalization: 'MERGE_SLASHES' },
      extensionProviders: [],
      gatewayNumTrustedProxies: 0,
      proxyHeaders: {},
      onDemandHosts: true,
    });
  });

  it('defaultConfig.onDemandHosts (ADR 0023): on by default, a boolean only', () => {
    expect(DEFAULT_MESH.onDemandHosts).to.equal(true);
    expect(parseMeshSettings('defaultConfig: {onDemandHosts: true}').onDemandHosts).to.equal(true);
    expect(parseMeshSettings('defaultConfig: {onDemandHosts: false}').onDemandHosts).to.equal(false);
    expect(() => parseMeshSettings('defaultConfig: {onDemandHosts: yes please}')).to.throw(
      /defaultConfig\.onDemandHosts must be true or false/,
    );
  });

  const PROXY_HEADERS: [string, Record<string, unknown> | RegExp][] = [
    ['defaultConfig: {}', {}],
    ['defaultConfig: {proxyHeaders: {}}', {}],
    [
      'defaultConfig: {proxyHeaders: {envoyDebugHeaders: {disabled: true}}}',
      { envoyDebugHeaders: { disabled: true } },
    ],
    [
      'defaultConfig: {proxyHeaders: {attemptCount: {disabled: false}, envoyDebugHeaders: {}}}',
      { attemptCount: { disabled: false }, envoyDebugHeaders: {} },
    ],
    ['defaultConfig: {proxyHeaders: {server: {disabled: true}}}', /proxyHeaders\.server is not supported/],
    [
      'defaultConfig: {proxyHeaders: {attemptCount: {disabled: yes please}}}',
      /attemptCount\.disabled must be true or false/,
    ],
    ['defaultConfig: {proxyHeaders: {attemptCount: true}}', /attemptCount must be a mapping/],
    [
      'defaultConfig: {proxyHeaders: {attemptCount: {enabled: true}}}',
      /attemptCount\.enabled is not supported/,
    ],
    ['defaultConfig: {proxyHeaders: [1]}', /proxyHeaders must be a mapping/],
    ['defaultConfig: {discoveryAddress: x}', /defaultConfig\.discoveryAddress is not supported/],
    ['defaultConfig: 3', /defaultConfig must be a mapping/],
  ];
  for (const [yaml, want] of PROXY_HEADERS)
    it(`mesh.yaml ${yaml} → ${want instanceof RegExp ? `refused ${String(want)}` : JSON.stringify(want)}`, () => {
      if (want instanceof RegExp) expect(() => parseMeshSettings(yaml)).to.throw(want);
      else expect(parseMeshSettings(yaml).proxyHeaders).to.deep.equal(want);
    });

  it("path normalization defaults to BASE, and Istio's DEFAULT means BASE", () => {
    expect(DEFAULT_MESH.pathNormalization).to.deep.equal({ normalization: 'BASE' });
    expect(parseMeshSettings('pathNormalization: {normalization: DEFAULT}').pathNormalization).to.deep.equal({
      normalization: 'BASE',
    });
    expect(parseMeshSettings('pathNormalization: {}').pathNormalization).to.deep.equal({
      normalization: 'BASE',
    });
  });

  it('an empty file or absent fields keep the defaults', () => {
    expect(parseMeshSettings('')).to.deep.equal(DEFAULT_MESH);
    expect(parseMeshSettings('trustDomain: x')).to.deep.equal({ ...DEFAULT_MESH, trustDomain: 'x' });
    expect(parseMeshSettings('rootNamespace: istio-system').rootNamespace).to.equal('istio-system');
  });

  const bad: [string, string, RegExp][] = [
    ['not YAML', 'a: [', /not YAML/],
    ['a list', '- a', /must be a mapping/],
    ['an empty trust domain', 'trustDomain: ""', /trustDomain/],
    ['a root namespace that is not a namespace name', 'rootNamespace: Istio_System', /rootNamespace/],
    ['an unknown mTLS mode', 'mtls: {mode: MAYBE}', /mtls.mode must be STRICT, PERMISSIVE or DISABLE/],
    ['a TTL that is not a duration', 'workloadCertTTL: 1 day', /workloadCertTTL/],
    ['a zero TTL', 'workloadCertTTL: 0s', /workloadCertTTL/],
    ['a non-boolean accessLog', 'telemetry: {accessLog: "yes"}', /telemetry.accessLog/],
    ['a sampling percent over 100', 'telemetry: {tracingSamplingPercent: 101}', /tracingSamplingPercent/],
    [
      'an unknown path normalization',
      'pathNormalization: {normalization: merge}',
      /pathNormalization.normalization must be one of DEFAULT, NONE, BASE/,
    ],
  ];
  for (const [title, yaml, re] of bad) {
    it(`refuses ${title}, naming the file`, () => {
      expect(code(() => parseMeshSettings(yaml, '/etc/mesh.yaml'))).to.equal('WEFT_WEFTD_CONFIG');
      expect(message(() => parseMeshSettings(yaml, '/etc/mesh.yaml')))
        .to.match(re)
        .and.to.contain('/etc/mesh.yaml');
    });
  }
});

describe('weftd auth: TokenReview answers', () => {
  const sa = (ns: string, name: string) => `system:serviceaccount:${ns}:${name}`;
  const ok: [string, Parameters<typeof identityFromReview>[0], Identity][] = [
    [
      'a service account',
      { authenticated: true, audiences: ['weft-ca'], user: { username: sa('shop', 'reviews') } },
      { namespace: 'shop', serviceAccount: 'reviews' },
    ],
    [
      'a pod-bound token names its pod',
      {
        authenticated: true,
        user: {
          username: sa('shop', 'reviews'),
          extra: { 'authentication.kubernetes.io/pod-name': ['reviews-1'] },
        },
      },
      { namespace: 'shop', serviceAccount: 'reviews', podName: 'reviews-1' },
    ],
  ];
  for (const [title, status, want] of ok)
    it(`accepts ${title}`, () => expect(identityFromReview(status)).to.deep.equal(want));

  const denied: [string, Parameters<typeof identityFromReview>[0], RegExp][] = [
    ['an unauthenticated token', { authenticated: false, error: 'token expired' }, /token expired/],
    [
      'another audience',
      { authenticated: true, audiences: ['api'], user: { username: sa('a', 'b') } },
      /audience weft-ca/,
    ],
    [
      'a user that is not a service account',
      { authenticated: true, user: { username: 'alice' } },
      /not a service account/,
    ],
    [
      'a malformed service account name',
      { authenticated: true, user: { username: 'system:serviceaccount:a' } },
      /not a service account/,
    ],
  ];
  for (const [title, status, re] of denied) {
    it(`refuses ${title} with WEFT_UNAUTHENTICATED`, () => {
      expect(code(() => identityFromReview(status))).to.equal('WEFT_UNAUTHENTICATED');
      expect(message(() => identityFromReview(status))).to.match(re);
    });
  }

  const headers: [string | undefined, string][] = [
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer   x ', 'x'],
    ['Basic abc', ''],
    ['Bearer', ''],
    [undefined, ''],
  ];
  for (const [h, want] of headers)
    it(`bearerToken(${String(h)})`, () => expect(bearerToken(h)).to.equal(want));

  it('reads a JWT exp; anything else has none', () => {
    const jwt = (payload: object): string =>
      `h.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.s`;
    expect(tokenExpiryMs(jwt({ exp: 1700000000 }))).to.equal(1700000000_000);
    expect(tokenExpiryMs(jwt({}))).to.equal(undefined);
    expect(tokenExpiryMs('opaque')).to.equal(undefined);
    expect(tokenExpiryMs('a.!!!.c')).to.equal(undefined);
  });
});

describe('weftd auth: review cache', () => {
  const id: Identity = { namespace: 'a', serviceAccount: 'b' };

  it('reviews a token once within the TTL, again after it; refusals are not cached', async () => {
    let now = 0;
    let calls = 0;
    let refuse = false;
    const auth = cachedAuthenticator(
      async (t) => {
        calls++;
        if (refuse || t === 'bad') throw new Error('denied');
        return id;
      },
      { ttlMs: 1000, now: () => now },
    );
    expect(await auth('t')).to.deep.equal({ identity: id, cached: false });
    expect(await auth('t')).to.deep.equal({ identity: id, cached: true });
    expect(calls).to.equal(1);
    now = 1001;
    expect((await auth('t')).cached).to.equal(false);
    expect(calls).to.equal(2);
    for (let i = 0; i < 2; i++) await auth('bad').catch(() => undefined);
    expect(calls).to.equal(4);
    refuse = true;
    expect((await auth('t')).cached, 'still cached while within the TTL').to.equal(true);
  });

  it('concurrent misses for one token share one review (a burst of rate-limit checks)', async () => {
    let calls = 0;
    let answer: (id: Identity) => void = () => undefined;
    const auth = cachedAuthenticator(() => {
      calls++;
      return new Promise<Identity>((resolve) => (answer = resolve));
    });
    const burst = Array.from({ length: 20 }, () => auth('t'));
    answer(id);
    const results = await Promise.all(burst);
    expect(calls).to.equal(1);
    expect(results.every((r) => r.identity === id)).to.equal(true);
    expect((await auth('t')).cached).to.equal(true);
    expect(calls).to.equal(1);
    // a refused review is shared too, and not cached
    let refuse: (e: Error) => void = () => undefined;
    const refusing = cachedAuthenticator(() => {
      calls++;
      return new Promise<Identity>((_, reject) => (refuse = reject));
    });
    const denied = Array.from({ length: 5 }, () =>
      refusing('x').then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    refuse(new Error('denied'));
    expect(await Promise.all(denied)).to.deep.equal(Array(5).fill('denied'));
    expect(calls).to.equal(2);
    void refusing('x').catch(() => undefined);
    expect(calls).to.equal(3);
  });

  it('renews an entry in the background in its last third: callers never wait once a token is known', async () => {
    let now = 0;
    let calls = 0;
    let refuse = false;
    const auth = cachedAuthenticator(
      async () => {
        calls++;
        if (refuse) throw new Error('denied');
        return id;
      },
      { ttlMs: 900, now: () => now },
    );
    await auth('t');
    now = 500; // before two thirds: no review
    expect((await auth('t')).cached).to.equal(true);
    expect(calls).to.equal(1);
    now = 700; // last third: served from the cache, one review renews it
    expect((await auth('t')).cached).to.equal(true);
    expect((await auth('t')).cached).to.equal(true);
    await new Promise((r) => setImmediate(r));
    expect(calls).to.equal(2);
    now = 1300; // past the first entry's TTL, within the renewed one's (700 + 900)
    expect((await auth('t')).cached).to.equal(true);
    await new Promise((r) => setImmediate(r));
    expect(calls, 'renewed at 1300 (past 700 + 600)').to.equal(3);
    // a background refusal leaves the entry to end at its TTL (as without the renewal)
    refuse = true;
    now = 2000; // last third of the entry renewed at 1300 (ends 2200)
    expect((await auth('t')).cached).to.equal(true);
    await new Promise((r) => setImmediate(r));
    expect(calls).to.equal(4);
    now = 2200;
    expect(
      await auth('t').then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    ).to.equal('denied');
  });

  it('never keeps a review past the token expiry', async () => {
    let now = 1_000_000;
    let calls = 0;
    const auth = cachedAuthenticator(
      async () => {
        calls++;
        return id;
      },
      { ttlMs: 60_000, now: () => now },
    );
    const token = `h.${Buffer.from(JSON.stringify({ exp: 1001 })).toString('base64url')}.s`; // expires at 1_001_000 ms
    await auth(token);
    now = 1_000_500;
    expect((await auth(token)).cached).to.equal(true);
    now = 1_001_000;
    expect((await auth(token)).cached).to.equal(false);
    expect(calls).to.equal(2);
  });
});

describe('weftd authorize', () => {
  const req = { kind: 'sidecar' as const, namespace: 'shop', pod: 'reviews-1' };
  const cases: [string, Identity, ErrorCode | undefined][] = [
    ['same namespace, unbound token', { namespace: 'shop', serviceAccount: 'r' }, undefined],
    [
      'same namespace, token bound to this pod',
      { namespace: 'shop', serviceAccount: 'r', podName: 'reviews-1' },
      undefined,
    ],
    ['another namespace', { namespace: 'blog', serviceAccount: 'r' }, 'WEFT_FORBIDDEN'],
    [
      'token bound to another pod',
      { namespace: 'shop', serviceAccount: 'r', podName: 'reviews-2' },
      'WEFT_FORBIDDEN',
    ],
  ];
  for (const [title, id, want] of cases)
    it(title, () => expect(code(() => authorize(id, req))).to.equal(want));
});

describe('weftd push debouncer', () => {
  /** Timers fire only when the test advances the clock. */
  class ManualClock implements DebounceClock {
    t = 0;
    private timers = new Map<number, { at: number; fn: () => void }>();
    private id = 0;
    now = (): number => this.t;
    setTimer = (fn: () => void, ms: number): unknown => {
      this.timers.set(++this.id, { at: this.t + ms, fn });
      return this.id;
    };
    clearTimer = (h: unknown): void => void this.timers.delete(h as number);
    advance(ms: number): void {
      const end = this.t + ms;
      for (;;) {
        const due = [...this.timers.entries()]
          .filter(([, v]) => v.at <= end)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        this.timers.delete(due[0]);
        this.t = due[1].at;
        due[1].fn();
      }
      this.t = end;
    }
  }

  function setup(afterMs = 100, maxMs = 1000) {
    const clock = new ManualClock();
    const fired: number[] = [];
    const d = new Debouncer((first) => fired.push(first), { afterMs, maxMs }, clock);
    return { clock, fired, d };
  }

  it('fires once, afterMs after the last change of a burst, with the burst start', () => {
    const { clock, fired, d } = setup();
    d.trigger();
    clock.advance(50);
    d.trigger();
    clock.advance(99);
    expect(fired).to.deep.equal([]);
    clock.advance(1);
    expect(fired).to.deep.equal([0]);
    expect(d.pending).to.equal(false);
  });

  it('fires by maxMs after the first change when changes never stop', () => {
    const { clock, fired, d } = setup(100, 300);
    for (let i = 0; i < 10; i++) {
      d.trigger();
      clock.advance(50);
    }
    // without the cap nothing would have fired yet: a change came every 50 ms
    expect(fired).to.deep.equal([0]);
    clock.advance(100);
    expect(fired, 'the second burst began at 300').to.deep.equal([0, 300]);
  });

  it('a stopped debouncer never fires', () => {
    const { clock, fired, d } = setup();
    d.trigger();
    d.stop();
    d.trigger();
    clock.advance(10_000);
    expect(fired).to.deep.equal([]);
  });
});

describe('weftd pod changes and workloads', () => {
  const podObj = (labels: Record<string, string>, ip?: string, phase = 'Pending'): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'n', labels },
    status: { phase, ...(ip ? { podIP: ip } : {}) },
  });
  const cases: [string, Parameters<typeof podChangeMatters>, boolean][] = [
    ['an add', ['add', podObj({})], true],
    ['a delete', ['delete', podObj({})], true],
    [
      'a status-only update',
      ['update', podObj({ a: '1' }, '10.0.0.1', 'Running'), podObj({ a: '1' }, '10.0.0.1')],
      false,
    ],
    ['a label change', ['update', podObj({ a: '2' }), podObj({ a: '1' })], true],
    ['an IP assigned', ['update', podObj({}, '10.0.0.1'), podObj({})], true],
  ];
  for (const [title, args, want] of cases)
    it(`${title} ${want ? 'matters' : 'does not matter'}`, () =>
      expect(podChangeMatters(...args)).to.equal(want));

  const names: [string, Parameters<typeof workloadName>[0], string][] = [
    [
      'a ReplicaSet pod → its Deployment',
      {
        name: 'reviews-v1-7d9f8b6c5-x2x9q',
        generateName: 'reviews-v1-7d9f8b6c5-',
        labels: { 'pod-template-hash': '7d9f8b6c5' },
      },
      'reviews-v1',
    ],
    [
      'a DaemonSet or Job pod → its owner',
      { name: 'agent-abcde', generateName: 'agent-', labels: {} },
      'agent',
    ],
    ['a bare pod → its name', { name: 'debug', labels: {} }, 'debug'],
  ];
  for (const [title, pod, want] of names)
    it(`workloadName: ${title}`, () => expect(workloadName(pod)).to.equal(want));

  it('telemetry carries the workload and the mesh access-log setting', () => {
    expect(
      telemetryFor(
        { name: 'r-1', namespace: 'shop', labels: { app: 'reviews', version: 'v2' } },
        { ...DEFAULT_MESH, telemetry: { ...DEFAULT_MESH.telemetry, accessLog: false } },
      ),
    ).to.deep.equal({
      accessLog: false,
      workload: { name: 'r-1', namespace: 'shop', app: 'reviews', version: 'v2' },
    });
  });
});

describe('weftd config generation', () => {
  const services = servicesFromKube(
    [
      {
        metadata: { name: 'reviews', namespace: 'shop' },
        spec: { clusterIP: '10.0.0.7', ports: [{ name: 'http', port: 9080 }] },
      },
    ],
    [],
    [],
  );
  const snapshot = (generation: number): Snapshot => ({
    generation,
    services,
    kubeServices: [],
    virtualServices: [],
    destinationRules: [],
    serviceEntries: [],
    gateways: [],
    peerAuthentications: [],
  });
  const gen = (): ConfigGenerator =>
    new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH, // the sidecars here look at other namespaces' services
      log: createLogger('t', { silent: true }),
    });
  const pod = (name: string, labels: Record<string, string> = { app: 'a' }): PodInfo => ({
    name,
    namespace: 'shop',
    labels,
  });

  it('the spliced line is the same message encodeMessage writes', () => {
    const g = gen().forProxy(snapshot(1), 'sidecar', pod('a-1'));
    expect(JSON.parse(g.encode())).to.deep.equal(
      JSON.parse(encodeMessage({ type: 'config', version: g.version, config: g.config })),
    );
    expect(g.encode().endsWith('}\n')).to.equal(true);
    expect(g.config.listeners[0]).to.deep.include({ name: 'outbound', address: '0.0.0.0', port: 15001 });
  });

  it('versions: same for pods of one workload, different for another workload, stable across generations with equal content', () => {
    const g = gen();
    const a1 = g.forProxy(snapshot(1), 'sidecar', pod('a-1'));
    expect(g.forProxy(snapshot(1), 'sidecar', pod('a-1')).version).to.equal(a1.version);
    expect(g.forProxy(snapshot(1), 'sidecar', pod('b-1', { app: 'b' })).version).to.not.equal(a1.version);
    expect(
      g.forProxy(snapshot(2), 'sidecar', pod('a-1')).version,
      'a new generation with the same content',
    ).to.equal(a1.version);
  });

  it("every proxy gets the mesh's path normalization; changing it changes every version (a push)", () => {
    const g = gen();
    const side = g.forProxy(snapshot(1), 'sidecar', pod('a-1'));
    const gw = g.forProxy(snapshot(1), 'gateway', pod('gw-1'));
    expect(side.config.pathNormalization).to.deep.equal({ normalization: 'BASE' });
    expect(JSON.parse(side.encode()).config.pathNormalization).to.deep.equal({ normalization: 'BASE' });
    expect(gw.config.pathNormalization).to.deep.equal({ normalization: 'BASE' });
    g.setMesh({ ...DEFAULT_MESH, pathNormalization: { normalization: 'DECODE_AND_MERGE_SLASHES' } });
    const side2 = g.forProxy(snapshot(1), 'sidecar', pod('a-1'));
    const gw2 = g.forProxy(snapshot(1), 'gateway', pod('gw-1'));
    expect(JSON.parse(side2.encode()).config.pathNormalization).to.deep.equal({
      normalization: 'DECODE_AND_MERGE_SLASHES',
    });
    expect(gw2.config.pathNormalization).to.deep.equal({ normalization: 'DECODE_AND_MERGE_SLASHES' });
    expect(side2.version).to.not.equal(side.version);
    expect(gw2.version).to.not.equal(gw.version);
  });

  it("PeerAuthentication: a sidecar's inbound block, spliced into its line, and its version", () => {
    const strict = {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'strict', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'a' } }, mtls: { mode: 'STRICT' as const } },
    };
    const g = gen();
    const before = g.forProxy(snapshot(1), 'sidecar', pod('a-1'));
    expect(before.config.inbound).to.deep.equal({
      mtls: { mode: 'PERMISSIVE', policy: 'Mesh spec.mtls.mode' },
    });
    const snap = { ...snapshot(2), peerAuthentications: [strict] };
    const a = g.forProxy(snap, 'sidecar', pod('a-1'));
    expect(a.config.inbound).to.deep.equal({
      mtls: { mode: 'STRICT', policy: 'PeerAuthentication shop/strict' },
    });
    expect(a.version).to.not.equal(before.version);
    expect(JSON.parse(a.encode())).to.deep.equal(
      JSON.parse(encodeMessage({ type: 'config', version: a.version, config: a.config })),
    );
    const b = g.forProxy(snap, 'sidecar', pod('b-1', { app: 'b' }));
    expect(b.config.inbound?.mtls.mode, 'a pod the selector does not match').to.equal('PERMISSIVE');
    expect(b.version).to.equal(g.forProxy(snapshot(1), 'sidecar', pod('b-1', { app: 'b' })).version);
  });

  it("auto-mTLS reads the destination's PeerAuthentication: a namespace DISABLE (or a port-level one) gets plaintext", () => {
    const meshed: Snapshot['services'] = [
      {
        host: 'db.data.svc.cluster.local',
        namespace: 'data',
        addresses: [],
        ports: [{ number: 5432, name: 'http', protocol: 'HTTP', targetPort: 5432 }],
        endpoints: [
          {
            address: '10.1.0.9',
            labels: { app: 'db', 'security.istio.io/tlsMode': 'istio' },
            serviceAccount: 'db',
          },
        ],
      },
    ];
    const pa = (name: string, ns: string, spec: object): Snapshot['peerAuthentications'][number] =>
      ({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name, namespace: ns },
        spec,
      }) as Snapshot['peerAuthentications'][number];
    const dbCluster = (peerAuthentications: Snapshot['peerAuthentications'], generation: number) =>
      gen()
        .forProxy({ ...snapshot(generation), services: meshed, peerAuthentications }, 'sidecar', pod('a-1'))
        .config.clusters.find((c) => c.service === 'db.data.svc.cluster.local')!;
    expect(dbCluster([], 1).tls).to.include({ mode: 'ISTIO_MUTUAL', auto: true });
    const off = dbCluster([pa('off', 'data', { mtls: { mode: 'DISABLE' } })], 2);
    expect(off.tls, 'namespace DISABLE').to.equal(undefined);
    expect(off.endpoints[0]!.labels!['security.istio.io/tlsMode']).to.equal('disabled');
    const port = dbCluster(
      [
        pa('db', 'data', {
          selector: { matchLabels: { app: 'db' } },
          mtls: { mode: 'STRICT' },
          portLevelMtls: { 5432: { mode: 'DISABLE' } },
        }),
      ],
      3,
    );
    expect(port.tls, 'portLevelMtls DISABLE on the endpoint port').to.equal(undefined);
    const other = dbCluster([pa('off', 'other', { mtls: { mode: 'DISABLE' } })], 4);
    expect(other.tls, "another namespace's policy").to.include({ mode: 'ISTIO_MUTUAL' });
  });

  it('a gateway pod no Gateway selects gets an empty config whose line round-trips', () => {
    const g = gen().forProxy(snapshot(1), 'gateway', pod('gw-1'));
    expect(g.config.listeners).to.deep.equal([]);
    expect(JSON.parse(g.encode())).to.deep.equal({ type: 'config', version: g.version, config: g.config });
  });
});
