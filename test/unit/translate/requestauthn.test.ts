/**
 * RequestAuthentication → a workload's jwt block (which policies apply, merged in Istio's order,
 * every JWTRule field carried), and weftd's JWKS resolver against a loopback JWKS server: fetched
 * keys pushed inline, refresh picks up a rotated key, a failure keeps the last good keys, and
 * with none the proxy is told to refuse (fail closed).
 */
import { expect } from 'chai';
import type { RequestAuthentication } from '../../../pkg/api/requestauthentication.js';
import { requestAuthnFor, type JwksSource } from '../../../pkg/translate/requestauthn.js';
import { JwksResolver } from '../../../controlplane/jwks.js';
import { createLogger } from '../../../pkg/log/index.js';
import { jwks, makeKey, startJwksServer } from '../../support/jwt.js';

const ROOT = 'weft-system';
const noFetch: JwksSource = { keys: () => ({ jwks: '{"keys":[]}', error: 'no fetch in this test' }) };

function ra(
  ns: string,
  name: string,
  spec: RequestAuthentication['spec'],
  created = '2026-01-01T00:00:00Z',
): RequestAuthentication {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { namespace: ns, name, creationTimestamp: created },
    spec: { jwtRules: [{ issuer: `iss-${ns}-${name}`, jwks: '{"keys":[]}' }], ...spec },
  };
}

const issuers = (policies: RequestAuthentication[], ns: string, labels: Record<string, string>): string[] =>
  requestAuthnFor({
    policies,
    workload: { namespace: ns, labels },
    rootNamespace: ROOT,
    jwks: noFetch,
  }).jwt?.providers.map((p) => p.issuer) ?? [];

describe('RequestAuthentication selection (pkg/translate/requestauthn.ts)', () => {
  const cases: [string, RequestAuthentication[], string, Record<string, string>, string[]][] = [
    [
      'root namespace, no selector: mesh-wide',
      [ra(ROOT, 'all', {})],
      'demo',
      { app: 'a' },
      ['iss-weft-system-all'],
    ],
    ['namespace, no selector: that namespace', [ra('demo', 'ns', {})], 'demo', {}, ['iss-demo-ns']],
    ['another namespace: not applied', [ra('other', 'ns', {})], 'demo', {}, []],
    [
      'selector matching',
      [ra('demo', 's', { selector: { matchLabels: { app: 'a' } } })],
      'demo',
      { app: 'a', v: '1' },
      ['iss-demo-s'],
    ],
    [
      'selector not matching',
      [ra('demo', 's', { selector: { matchLabels: { app: 'b' } } })],
      'demo',
      { app: 'a' },
      [],
    ],
    [
      'selector needs every label',
      [ra('demo', 's', { selector: { matchLabels: { app: 'a', v: '2' } } })],
      'demo',
      { app: 'a', v: '1' },
      [],
    ],
    [
      'root namespace selector applies in any namespace',
      [ra(ROOT, 's', { selector: { matchLabels: { app: 'a' } } })],
      'demo',
      { app: 'a' },
      ['iss-weft-system-s'],
    ],
    [
      'empty matchLabels = namespace-wide',
      [ra('demo', 's', { selector: { matchLabels: {} } })],
      'demo',
      { app: 'a' },
      ['iss-demo-s'],
    ],
    [
      'targetRefs Gateway selects its pods',
      [
        ra('demo', 'g', {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        }),
      ],
      'demo',
      { 'gateway.networking.k8s.io/gateway-name': 'gw' },
      ['iss-demo-g'],
    ],
    [
      'targetRef (singular) Gateway',
      [ra('demo', 'g', { targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' } })],
      'demo',
      { 'gateway.networking.k8s.io/gateway-name': 'gw' },
      ['iss-demo-g'],
    ],
    [
      'targetRefs Gateway: other gateway not selected',
      [
        ra('demo', 'g', {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        }),
      ],
      'demo',
      { 'gateway.networking.k8s.io/gateway-name': 'other' },
      [],
    ],
    [
      'targetRefs Gateway: plain pods not selected',
      [
        ra('demo', 'g', {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        }),
      ],
      'demo',
      { app: 'a' },
      [],
    ],
    [
      'targetRefs Gateway in another namespace',
      [
        ra('other', 'g', {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        }),
      ],
      'demo',
      { 'gateway.networking.k8s.io/gateway-name': 'gw' },
      [],
    ],
    [
      'targetRefs Service: waypoints only',
      [ra('demo', 's', { targetRefs: [{ group: '', kind: 'Service', name: 'a' }] })],
      'demo',
      { app: 'a' },
      [],
    ],
    [
      'merged: root first, then oldest first',
      [
        ra('demo', 'new', {}, '2026-03-01T00:00:00Z'),
        ra('demo', 'old', { selector: { matchLabels: { app: 'a' } } }, '2026-02-01T00:00:00Z'),
        ra(ROOT, 'mesh', {}, '2026-04-01T00:00:00Z'),
      ],
      'demo',
      { app: 'a' },
      ['iss-weft-system-mesh', 'iss-demo-old', 'iss-demo-new'],
    ],
  ];
  for (const [name, policies, ns, labels, want] of cases)
    it(name, () => expect(issuers(policies, ns, labels)).to.deep.equal(want));

  it('a Service targetRef is reported', () => {
    const { warnings } = requestAuthnFor({
      policies: [ra('demo', 's', { targetRefs: [{ group: '', kind: 'Service', name: 'a' }] })],
      workload: { namespace: 'demo', labels: {} },
      rootNamespace: ROOT,
      jwks: noFetch,
    });
    expect(warnings.join()).to.contain('waypoints');
  });

  it('every JWTRule field reaches the provider; jwksUri keys come from weftd with the rule timeout', () => {
    const asked: unknown[] = [];
    const src: JwksSource = { keys: (r) => (asked.push(r), { jwks: '{"keys":[1]}' }) };
    const p = ra('demo', 'full', {
      jwtRules: [
        {
          issuer: 'https://i',
          audiences: ['a'],
          jwksUri: 'https://i/keys',
          fromHeaders: [{ name: 'x-t', prefix: 'T ' }],
          fromParams: ['tok'],
          fromCookies: ['c'],
          forwardOriginalToken: true,
          outputPayloadToHeader: 'x-p',
          outputClaimToHeaders: [{ header: 'x-s', claim: 'sub' }],
          timeout: '2s',
        },
      ],
    });
    const { jwt } = requestAuthnFor({
      policies: [p],
      workload: { namespace: 'demo', labels: {} },
      rootNamespace: ROOT,
      jwks: src,
    });
    expect(asked).to.deep.equal([{ uri: 'https://i/keys', issuer: 'https://i', timeoutMs: 2000 }]);
    expect(jwt!.providers[0]).to.deep.equal({
      issuer: 'https://i',
      audiences: ['a'],
      jwks: '{"keys":[1]}',
      fromHeaders: [{ name: 'x-t', prefix: 'T ' }],
      fromParams: ['tok'],
      fromCookies: ['c'],
      forwardOriginalToken: true,
      outputPayloadToHeader: 'x-p',
      outputClaimToHeaders: [{ header: 'x-s', claim: 'sub' }],
      source: 'RequestAuthentication demo/full jwtRules[0]',
    });
  });

  it('neither jwks nor jwksUri: keys by OpenID discovery of the issuer (default 5 s timeout)', () => {
    const asked: unknown[] = [];
    const src: JwksSource = { keys: (r) => (asked.push(r), { jwks: '{"keys":[]}', error: 'x' }) };
    const { jwt } = requestAuthnFor({
      policies: [ra('demo', 'd', { jwtRules: [{ issuer: 'https://i' }] })],
      workload: { namespace: 'demo', labels: {} },
      rootNamespace: ROOT,
      jwks: src,
    });
    expect(asked).to.deep.equal([{ issuer: 'https://i', timeoutMs: 5000 }]);
    expect(jwt!.providers[0]).to.include({ jwks: '{"keys":[]}', jwksError: 'x' });
  });

  it('no jwtRules: no block', () => {
    expect(
      requestAuthnFor({
        policies: [ra('demo', 'e', { jwtRules: [] })],
        workload: { namespace: 'demo', labels: {} },
        rootNamespace: ROOT,
        jwks: noFetch,
      }).jwt,
    ).to.equal(undefined);
  });
});

describe('weftd JWKS resolver (controlplane/jwks.ts) against a loopback server', () => {
  const log = createLogger('jwks-test', { silent: true });
  const k1 = makeKey('P-256', 'k1');
  const k2 = makeKey('P-256', 'k2');
  let resolver: JwksResolver | null = null;
  afterEach(() => resolver?.stop());

  const changed = (r: JwksResolver): Promise<void> => new Promise((resolve) => (r.onChange = resolve));

  it('fetches on first use (fail closed until then), pushes inline, refresh picks up a rotated key', async () => {
    const srv = await startJwksServer(jwks(k1));
    try {
      resolver = new JwksResolver({ log, refreshMs: 50 });
      const ref = { uri: srv.url, issuer: 'i', timeoutMs: 2000 };
      const first = changed(resolver);
      expect(resolver.keys(ref)).to.include({ jwks: '{"keys":[]}' }).and.to.have.property('error');
      await first;
      expect(JSON.parse(resolver.keys(ref).jwks).keys[0].kid).to.equal('k1');
      const rotated = changed(resolver);
      srv.set(jwks(k2));
      await rotated;
      expect(JSON.parse(resolver.keys(ref).jwks).keys[0].kid).to.equal('k2');
    } finally {
      await srv.close();
    }
  });

  for (const [name, breakIt] of [
    ['a 500', (s: Awaited<ReturnType<typeof startJwksServer>>) => s.set('oops', 500)],
    ['garbage', (s: Awaited<ReturnType<typeof startJwksServer>>) => s.set('<html>')],
    ['JSON without keys', (s: Awaited<ReturnType<typeof startJwksServer>>) => s.set('{"k":[]}')],
    ['a hang (timeout)', (s: Awaited<ReturnType<typeof startJwksServer>>) => s.hang(true)],
  ] as const)
    it(`after ${name}, the last good keys stay`, async () => {
      const srv = await startJwksServer(jwks(k1));
      try {
        resolver = new JwksResolver({ log, refreshMs: 30, retryMs: 30 });
        const ref = { uri: srv.url, issuer: 'i', timeoutMs: 200 };
        const first = changed(resolver);
        resolver.keys(ref);
        await first;
        const failed = changed(resolver);
        breakIt(srv);
        await failed;
        const got = resolver.keys(ref);
        expect(JSON.parse(got.jwks).keys[0].kid).to.equal('k1');
        expect(resolver.list()[0]!.error).to.contain('last good keys kept');
        expect(resolver.stats.fetchFailed).to.be.greaterThan(0);
      } finally {
        await srv.close();
      }
    });

  it('never fetched successfully: empty key set with the reason (the proxy refuses that issuer)', async () => {
    const srv = await startJwksServer('not json');
    try {
      resolver = new JwksResolver({ log, refreshMs: 1000, retryMs: 1000 });
      const ref = { uri: srv.url, issuer: 'i', timeoutMs: 500 };
      const done = changed(resolver);
      resolver.keys(ref);
      await done;
      const got = resolver.keys(ref);
      expect(got.jwks).to.equal('{"keys":[]}');
      expect(got.error).to.contain('not JSON');
    } finally {
      await srv.close();
    }
  });

  it('a response larger than the cap is refused', async () => {
    const srv = await startJwksServer(JSON.stringify({ keys: [{ pad: 'x'.repeat(5000) }] }));
    try {
      resolver = new JwksResolver({ log, maxBytes: 1000, refreshMs: 1000, retryMs: 1000 });
      const done = changed(resolver);
      resolver.keys({ uri: srv.url, issuer: 'i', timeoutMs: 500 });
      await done;
      expect(resolver.list()[0]!.error).to.contain('larger than 1000');
    } finally {
      await srv.close();
    }
  });

  it('OpenID discovery: issuer/.well-known/openid-configuration → jwks_uri', async () => {
    const srv = await startJwksServer('');
    const base = srv.url.replace('/jwks.json', '');
    // one server: the discovery document and the keys share the body switch below
    srv.set(JSON.stringify({ jwks_uri: srv.url, keys: [k1.jwk] }));
    try {
      resolver = new JwksResolver({ log, refreshMs: 1000 });
      const done = changed(resolver);
      resolver.keys({ issuer: base, timeoutMs: 1000 });
      await done;
      expect(JSON.parse(resolver.keys({ issuer: base, timeoutMs: 1000 }).jwks).keys[0].kid).to.equal('k1');
      expect(srv.hits).to.equal(2);
    } finally {
      await srv.close();
    }
  });

  it('bounded: the least recently used URI is dropped past maxEntries', () => {
    resolver = new JwksResolver({ log, maxEntries: 2 });
    resolver.stop(); // no fetches: only the bookkeeping
    for (const u of ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b', 'http://127.0.0.1:9/c'])
      resolver.keys({ uri: u, issuer: 'i', timeoutMs: 10 });
    expect(resolver.list().map((e) => e.key)).to.deep.equal(['http://127.0.0.1:9/b', 'http://127.0.0.1:9/c']);
  });
});
