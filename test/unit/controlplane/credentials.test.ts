/**
 * DestinationRule `tls.credentialName` delivery (controlplane/credentials.ts, configgen.ts) and
 * its use by the proxy (proxy/upstream/tls.ts originationContext): which Secret keys Istio reads
 * (`cert`/`key`/`cacert`, `tls.crt`/`tls.key`/`ca.crt`, the CA in `<name>-cacert`), every way a
 * Secret can be unusable (each an error, never key material in it), which proxies get
 * credentials (gateways, from their own namespace), the version following the Secret, and the
 * redaction of private keys in dumps.
 */
import { expect } from 'chai';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import {
  PROXY_CONFIG_API_VERSION,
  REDACTED,
  type Cluster,
  redactCredentials,
  type ProxyConfig,
  type UpstreamCredential,
  type UpstreamTls,
} from '../../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import {
  credentialFromSecrets,
  credentialNames,
  SecretCredentials,
  secretNameOf,
  type CredentialSource,
} from '../../../controlplane/credentials.js';
import { ApiError, type KubeClient } from '../../../pkg/kube/client.js';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import { credentialSummaries, originationContext } from '../../../proxy/upstream/tls.js';
import { ClusterTable } from '../../../proxy/compile/compile.js';
import { secureOptions } from '../../../proxy/gateway-tls.js';
import type { GatewayTlsServer } from '../../../pkg/proxyconfig/types.js';
import type { DestinationRule, Gateway, ServiceEntry, VirtualService } from '../../../pkg/api/index.js';

const HOUR = 3600_000;
const now = new Date();
const ca: KeyPairPem = createCA({ commonName: 'client-ca', ttlMs: HOUR, now });
const leaf: KeyPairPem = issueServing(ca, {
  commonName: 'client',
  dnsNames: ['client.test'],
  ttlMs: HOUR,
  now,
});
const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

/** A usable credential as weftd delivers it (client certificate, key, CA). */
const good: UpstreamCredential = {
  source: 'edge/api-client',
  certChain: leaf.certPem,
  privateKey: leaf.keyPem,
  caCertificates: ca.certPem,
};

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const gatewayServer = (mode: 'SIMPLE' | 'MUTUAL'): GatewayTlsServer => ({
  name: 'edge/gw[0]',
  sniHosts: ['a.example.com'],
  mode,
  credentialName: 'c',
});

function secret(name: string, data: Record<string, string>, ns = 'edge'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  } as KubeObject;
}

describe('credentialName: Secret → credential (Istio key rules)', () => {
  const usable: [string, KubeObject | undefined, KubeObject | undefined, Partial<UpstreamCredential>][] = [
    [
      'Opaque cert/key/cacert',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem }),
      undefined,
      { source: 'edge/c', certChain: leaf.certPem, privateKey: leaf.keyPem, caCertificates: ca.certPem },
    ],
    [
      'kubernetes.io/tls tls.crt/tls.key/ca.crt',
      secret('c', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem }),
      undefined,
      { source: 'edge/c', certChain: leaf.certPem, privateKey: leaf.keyPem, caCertificates: ca.certPem },
    ],
    [
      'the CA in <name>-cacert (cacert)',
      secret('c', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem }),
      secret('c-cacert', { cacert: ca.certPem }),
      { source: 'edge/c, edge/c-cacert', caCertificates: ca.certPem, certChain: leaf.certPem },
    ],
    [
      'the CA in <name>-cacert (ca.crt)',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem }),
      secret('c-cacert', { 'ca.crt': ca.certPem }),
      { caCertificates: ca.certPem },
    ],
    [
      'a CA-only Secret (SIMPLE)',
      secret('c', { cacert: ca.certPem }),
      undefined,
      { caCertificates: ca.certPem },
    ],
    [
      'only <name>-cacert (SIMPLE)',
      undefined,
      secret('c-cacert', { 'ca.crt': ca.certPem }),
      { source: 'edge/c-cacert' },
    ],
    [
      'the Secret’s own CA wins over <name>-cacert',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem }),
      secret('c-cacert', { cacert: leaf.certPem }),
      { caCertificates: ca.certPem },
    ],
    [
      'cert/key take precedence over tls.crt/tls.key (Istio checks them first)',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem, 'tls.crt': 'junk', 'tls.key': 'junk' }),
      undefined,
      { certChain: leaf.certPem },
    ],
  ];
  for (const [title, s, caS, want] of usable)
    it(`usable: ${title}`, () => {
      const got = credentialFromSecrets('edge', 'c', s, caS);
      expect(got.error).to.equal(undefined);
      expect(got).to.include(want);
    });

  const unusable: [string, KubeObject | undefined, KubeObject | undefined, RegExp][] = [
    ['no Secret', undefined, undefined, /^Secret edge\/c not found$/],
    ['a key without a certificate', secret('c', { key: leaf.keyPem }), undefined, /has key but no cert/],
    [
      'tls.crt without tls.key',
      secret('c', { 'tls.crt': leaf.certPem }),
      undefined,
      /has tls\.crt but no tls\.key/,
    ],
    [
      'none of the expected keys (names listed, values never)',
      secret('c', { password: 'hunter2', token: 'abc' }),
      undefined,
      /none of the expected keys .*it has: password, token$/,
    ],
    [
      'a certificate that is not PEM',
      secret('c', { cert: 'garbage', key: leaf.keyPem }),
      undefined,
      /holds no PEM certificate/,
    ],
    [
      'a PEM block that is not X.509',
      secret('c', {
        cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
        key: leaf.keyPem,
      }),
      undefined,
      /certificate 1 is not valid PEM\/X\.509/,
    ],
    [
      'a key that is not PEM',
      secret('c', { cert: leaf.certPem, key: 'not a key' }),
      undefined,
      /^key of Secret edge\/c is not a PEM private key$/,
    ],
    [
      'a key of another certificate',
      secret('c', { cert: leaf.certPem, key: otherKey }),
      undefined,
      /does not match the certificate in cert/,
    ],
    [
      'a CA that is not PEM',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem, cacert: 'nope' }),
      undefined,
      /the CA of credential edge\/c holds no PEM certificate/,
    ],
    [
      'a CRL (crl)',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem, crl: 'x' }),
      undefined,
      /has a CRL \(crl\)/,
    ],
    [
      'a CRL (ca.crl)',
      secret('c', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crl': 'x' }),
      undefined,
      /has a CRL \(ca\.crl\)/,
    ],
    [
      '<name>-cacert without a CA key',
      secret('c', { cert: leaf.certPem, key: leaf.keyPem }),
      secret('c-cacert', { x: 'y' }),
      /c-cacert has no cacert or ca\.crt key/,
    ],
  ];
  for (const [title, s, caS, want] of unusable)
    it(`unusable: ${title}`, () => {
      const got = credentialFromSecrets('edge', 'c', s, caS);
      expect(got.error).to.match(want);
      expect(got.privateKey, 'no key material is delivered with an error').to.equal(undefined);
      expect(got.error).to.not.contain('PRIVATE KEY');
      expect(got.error).to.not.contain('hunter2');
    });
});

describe('credentialName: which clusters, which proxies', () => {
  const tlsCluster = (name: string, tls: UpstreamTls) => ({
    name,
    service: 'x',
    port: 443,
    endpoints: [],
    tls,
  });
  it('credentialNames: SIMPLE/MUTUAL clusters naming one, deduplicated and sorted', () => {
    expect(
      credentialNames({
        clusters: [
          tlsCluster('a', { mode: 'MUTUAL', credentialName: 'b-cred' }),
          tlsCluster('b', { mode: 'SIMPLE', credentialName: 'a-cred' }),
          tlsCluster('c', { mode: 'MUTUAL', credentialName: 'b-cred' }),
          tlsCluster('d', { mode: 'ISTIO_MUTUAL' }),
          tlsCluster('e', { mode: 'MUTUAL', clientCertificate: '/f', privateKey: '/k' }),
          { name: 'f', service: 'x', port: 80, endpoints: [] },
        ],
      }),
    ).to.deep.equal(['a-cred', 'b-cred']);
  });

  // a gateway pod in "edge" routing to an external host whose DR says MUTUAL + credentialName
  const meta = (kind: string, name: string, ns: string) => ({
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace: ns, creationTimestamp: '2026-01-01T00:00:00Z' },
  });
  const snapshot: Snapshot = {
    generation: 1,
    services: [],
    kubeServices: [],
    virtualServices: [
      {
        ...meta('VirtualService', 'api', 'edge'),
        spec: {
          hosts: ['api.example.test'],
          gateways: ['public'],
          http: [{ route: [{ destination: { host: 'api.example.test' } }] }],
        },
      } as VirtualService,
    ],
    destinationRules: [
      {
        ...meta('DestinationRule', 'api', 'edge'),
        spec: {
          host: 'api.example.test',
          trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: 'api-client' } },
        },
      } as DestinationRule,
    ],
    serviceEntries: [
      {
        ...meta('ServiceEntry', 'api', 'edge'),
        spec: {
          hosts: ['api.example.test'],
          ports: [{ number: 443, name: 'http', protocol: 'HTTP' }],
          resolution: 'STATIC',
          endpoints: [{ address: '10.0.0.1' }],
        },
      } as ServiceEntry,
    ],
    gateways: [
      {
        ...meta('Gateway', 'public', 'edge'),
        spec: {
          selector: { gw: 'yes' },
          servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
        },
      } as Gateway,
    ],
    peerAuthentications: [],
  };
  const pod = (ns: string, labels: Record<string, string>): PodInfo => ({ name: 'p', namespace: ns, labels });

  function generator(creds: Record<string, UpstreamCredential>): { gen: ConfigGenerator; asked: string[] } {
    const asked: string[] = [];
    const credentials: CredentialSource = {
      get: (ns, name) => {
        asked.push(`${ns}/${name}`);
        return creds[`${ns}/${name}`] ?? { source: `${ns}/${name}`, error: `Secret ${ns}/${name} not found` };
      },
    };
    return {
      gen: new ConfigGenerator({
        domainSuffix: 'cluster.local',
        mesh: DEFAULT_MESH,
        log: createLogger('t', { silent: true }),
        credentials,
      }),
      asked,
    };
  }

  it('a gateway gets the credentials its clusters name, read from its own namespace', () => {
    const { gen, asked } = generator({ 'edge/api-client': good });
    const g = gen.forProxy(snapshot, 'gateway', pod('edge', { gw: 'yes' }));
    expect(g.config.clusters.map((c) => c.tls)).to.deep.equal([
      { mode: 'MUTUAL', sni: 'api.example.test', credentialName: 'api-client' },
    ]);
    expect(g.config.credentials).to.deep.equal({ 'api-client': good });
    expect(asked).to.deep.equal(['edge/api-client']);
    expect(validateProxyConfig(g.config)).to.deep.equal([]);
    expect(
      JSON.parse(g.encode()).config.credentials['api-client'].privateKey,
      'the stream carries the key',
    ).to.equal(leaf.keyPem);
  });

  it('a gateway in another namespace asks for the Secret in its own namespace, not the DestinationRule’s', () => {
    const { gen, asked } = generator({ 'edge/api-client': good });
    const g = gen.forProxy(snapshot, 'gateway', pod('other', { gw: 'yes' }));
    expect(asked).to.deep.equal(['other/api-client']);
    expect(g.config.credentials!['api-client']!.error).to.equal('Secret other/api-client not found');
  });

  it('sidecars get no credentials (Istio: credentialName at sidecars only with a DR workloadSelector)', () => {
    const { gen, asked } = generator({ 'edge/api-client': good });
    const s = gen.forProxy(snapshot, 'sidecar', pod('edge', { app: 'x' }));
    expect(s.config.credentials).to.equal(undefined);
    expect(asked).to.deep.equal([]);
  });

  it('the version follows the credential: a rotated or fixed Secret is a new config', () => {
    const creds: Record<string, UpstreamCredential> = {};
    const { gen } = generator(creds);
    const p = pod('edge', { gw: 'yes' });
    const missing = gen.forProxy(snapshot, 'gateway', p).version;
    creds['edge/api-client'] = good;
    const loaded = gen.forProxy(snapshot, 'gateway', p).version;
    expect(loaded).to.not.equal(missing);
    expect(gen.forProxy(snapshot, 'gateway', p).version, 'same Secret, same version').to.equal(loaded);
    creds['edge/api-client'] = {
      ...good,
      certChain: issueServing(ca, { commonName: 'c2', dnsNames: ['c2'], ttlMs: HOUR, now }).certPem,
    };
    expect(gen.forProxy(snapshot, 'gateway', p).version).to.not.equal(loaded);
  });

  it('dumps show the private key as REDACTED, certificates as they are; the config is not changed', () => {
    const cfg: ProxyConfig = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: '1',
      listeners: [],
      clusters: [],
      credentials: { a: good, b: { source: 'edge/b', error: 'Secret edge/b not found' } },
    };
    const shown = redactCredentials(cfg);
    expect(shown.credentials!.a).to.deep.equal({ ...good, privateKey: REDACTED });
    expect(shown.credentials!.b).to.deep.equal(cfg.credentials!.b);
    expect(JSON.stringify(shown)).to.not.contain('PRIVATE KEY');
    expect(cfg.credentials!.a!.privateKey).to.equal(leaf.keyPem);
    expect(redactCredentials(undefined)).to.equal(undefined);
  });

  it('validateProxyConfig: credentials must be a map of objects with a source and string fields', () => {
    const base = {
      apiVersion: PROXY_CONFIG_API_VERSION,
      kind: 'ProxyConfig',
      version: '1',
      listeners: [],
      clusters: [],
    };
    expect(validateProxyConfig({ ...base, credentials: [] }).map((p) => p.path)).to.deep.equal([
      'credentials',
    ]);
    expect(
      validateProxyConfig({ ...base, credentials: { a: { certChain: 1 } } }).map((p) => p.path),
    ).to.deep.equal(['credentials["a"].source', 'credentials["a"].certChain']);
  });
});

describe('proxy: originationContext with a delivered credential (fails closed)', () => {
  const mutual: UpstreamTls = { mode: 'MUTUAL', credentialName: 'api-client' };
  const cases: [string, UpstreamTls, UpstreamCredential | undefined, RegExp][] = [
    [
      'not delivered (a sidecar)',
      mutual,
      undefined,
      /tls\.credentialName api-client was not delivered to this proxy/,
    ],
    [
      'delivered with an error',
      mutual,
      { source: 'edge/api-client', error: 'Secret edge/api-client not found' },
      /^tls\.credentialName api-client \(edge\/api-client\): Secret edge\/api-client not found$/,
    ],
    [
      'MUTUAL from a CA-only Secret',
      mutual,
      { source: 'edge/api-client', caCertificates: ca.certPem },
      /MUTUAL needs a client certificate and key/,
    ],
    [
      'no CA (Istio never falls back to the system roots here)',
      mutual,
      { source: good.source, certChain: leaf.certPem, privateKey: leaf.keyPem },
      /no CA certificate to verify the server with/,
    ],
    [
      'SIMPLE without a CA',
      { mode: 'SIMPLE', credentialName: 'api-client' },
      { source: 'edge/api-client' },
      /no CA certificate/,
    ],
  ];
  for (const [title, cfg, cred, want] of cases)
    it(`refused: ${title}`, () => expect(() => originationContext(cfg, cred)).to.throw(want));

  it('usable: MUTUAL with cert, key and CA; SIMPLE with the CA; MUTUAL without a CA under insecureSkipVerify', () => {
    expect(originationContext(mutual, good)).to.be.an('object');
    expect(
      originationContext(
        { mode: 'SIMPLE', credentialName: 'c' },
        { source: 's', caCertificates: ca.certPem },
      ),
    ).to.be.an('object');
    const { caCertificates: _ca, ...noCa } = good;
    expect(originationContext({ ...mutual, insecureSkipVerify: true }, noCa)).to.be.an('object');
  });
});

/** list/watch/get of Secrets by name: `secrets` holds what exists; `forbidden` names answer 403. */
function fakeKube(secrets: Map<string, KubeObject>, forbidden: Set<string>, listed: string[] = []) {
  const nameOf = (o: { fieldSelector?: string }): string =>
    (o.fieldSelector ?? '').replace('metadata.name=', '');
  return {
    list: async (_v: string, _k: string, o: { fieldSelector?: string }) => {
      listed.push(o.fieldSelector ?? '');
      if (forbidden.has(nameOf(o))) throw new ApiError(403, 'Forbidden', 'secrets is forbidden');
      const s = secrets.get(nameOf(o));
      return { items: s ? [s] : [], resourceVersion: '1' };
    },
    // a watch that stays open until the informer stops
    watch: (_v: string, _k: string, o: { signal: AbortSignal }) =>
      new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve())),
    get: async (key: { name: string }) => {
      if (forbidden.has(key.name)) throw new ApiError(403, 'Forbidden', 'secrets is forbidden');
      return secrets.get(key.name) ?? null;
    },
  } as unknown as KubeClient;
}

describe('SecretCredentials: states while reading (fake API client)', () => {
  const quiet = createLogger('t', { silent: true });
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

  it('not read yet → usable after the LIST (a change is signalled), watching only what is needed', async () => {
    const secrets = new Map([
      ['c', secret('c', { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem })],
    ]);
    let changes = 0;
    const store = new SecretCredentials(fakeKube(secrets, new Set()), quiet, () => changes++);
    expect(store.get('edge', 'c').error).to.equal('Secret edge/c not read yet');
    await settle();
    expect(changes).to.be.greaterThan(0);
    expect(store.get('edge', 'c')).to.deep.include({ certChain: leaf.certPem, caCertificates: ca.certPem });
    expect(store.watching(), 'the CA was in the Secret: no -cacert watch').to.deep.equal(['edge/c']);
    store.stop();
  });

  it('a Secret weftd may not read (403) → the credential says so (fail closed), not "not read yet" forever', async () => {
    const store = new SecretCredentials(fakeKube(new Map(), new Set(['c'])), quiet, () => undefined);
    store.get('edge', 'c');
    await settle();
    expect(store.get('edge', 'c').error).to.equal(
      'weftd may not read Secret edge/c (403): grant its service account get/list/watch on it',
    );
    store.stop();
  });

  it('no CA in the Secret: <name>-cacert is watched too; a forbidden -cacert leaves cert and key usable, without a CA', async () => {
    // RBAC granting exactly the named Secret (docs/controlplane.md) must serve a gateway SIMPLE
    // server, as in Istio, which reads <name>-cacert only for MUTUAL
    const secrets = new Map([['c', secret('c', { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem })]]);
    const store = new SecretCredentials(fakeKube(secrets, new Set(['c-cacert'])), quiet, () => undefined);
    store.get('edge', 'c');
    await settle();
    store.get('edge', 'c');
    await settle();
    expect(store.watching()).to.deep.equal(['edge/c', 'edge/c-cacert']);
    const cred = store.get('edge', 'c');
    expect(cred.error).to.equal(undefined);
    expect(cred).to.deep.include({ certChain: leaf.certPem, privateKey: leaf.keyPem });
    expect(cred.caCertificates, 'no CA: MUTUAL and origination refuse it').to.equal(undefined);
    expect(() => secureOptions(gatewayServer('SIMPLE'), cred)).to.not.throw();
    expect(() => secureOptions(gatewayServer('MUTUAL'), cred)).to.throw(/no ca\.crt/);
    store.stop();
  });

  it('a forbidden -cacert is the reason when the Secret has no certificate and key to fall back on', async () => {
    const secrets = new Map([['c', secret('c', { other: 'x' })]]);
    const store = new SecretCredentials(fakeKube(secrets, new Set(['c-cacert'])), quiet, () => undefined);
    store.get('edge', 'c');
    await settle();
    store.get('edge', 'c');
    await settle();
    expect(store.get('edge', 'c').error).to.match(/may not read Secret edge\/c-cacert \(403\)/);
    store.stop();
  });

  it("never weft's own Secrets (weftd may read a gateway namespace's Secrets, weft-system included): its CA by name, unwatched; operator-issued ones; service-account tokens", async () => {
    const material = { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem };
    const inWeftSystem = (name: string, extra: Partial<KubeObject> & { type?: string } = {}): KubeObject => {
      const o = secret(name, material, 'weft-system');
      return { ...o, ...extra, metadata: { ...o.metadata, ...extra.metadata } };
    };
    const secrets = new Map([
      ['user-ca', inWeftSystem('user-ca')],
      [
        'weftd-tls',
        inWeftSystem('weftd-tls', {
          metadata: { name: 'weftd-tls', labels: { 'app.kubernetes.io/managed-by': 'weft-operator' } },
        }),
      ],
      ['sa-token', inWeftSystem('sa-token', { type: 'kubernetes.io/service-account-token' })],
      ['site', inWeftSystem('site')],
    ]);
    const store = new SecretCredentials(
      fakeKube(secrets, new Set()),
      quiet,
      () => undefined,
      undefined,
      undefined,
      new Set(['weft-system/user-ca']),
    );
    for (const n of ['user-ca', 'weftd-tls', 'sa-token', 'site']) store.get('weft-system', n);
    await settle();
    expect(store.get('weft-system', 'user-ca').error).to.equal(
      "Secret weft-system/user-ca is weftd's CA; weft never delivers it as a credential",
    );
    expect(store.watching(), 'the CA is not even watched').to.not.include('weft-system/user-ca');
    const own = store.get('weft-system', 'weftd-tls');
    expect(own.error).to.equal(
      "Secret weft-system/weftd-tls is weft's own (app.kubernetes.io/managed-by=weft-operator); weft never delivers it as a credential",
    );
    expect(own.privateKey).to.equal(undefined);
    expect(store.get('weft-system', 'sa-token').error).to.match(
      /is a service-account token, never a credential$/,
    );
    expect(store.get('weft-system', 'site').error, "the user's own Secret there is served").to.equal(
      undefined,
    );
    store.stop();
  });

  it('watches at most maxWatched Secrets: past it a credential is an error, not another API watch', async () => {
    const secrets = new Map([
      ['a', secret('a', { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem })],
    ]);
    const store = new SecretCredentials(fakeKube(secrets, new Set()), quiet, () => undefined, undefined, 1);
    store.get('edge', 'a');
    await settle();
    expect(store.get('edge', 'a').error).to.equal(undefined);
    expect(store.get('edge', 'b').error).to.equal(
      'Secret edge/b is not watched: weftd already watches 1 credential Secrets',
    );
    expect(store.watching()).to.deep.equal(['edge/a']);
    store.stop();
  });

  it('counts usable and unusable credentials for weft_weftd_credentials', async () => {
    const secrets = new Map([
      ['good', secret('good', { cert: leaf.certPem, key: leaf.keyPem, cacert: ca.certPem })],
    ]);
    const counts: { usable: number; unusable: number }[] = [];
    const store = new SecretCredentials(
      fakeKube(secrets, new Set()),
      quiet,
      () => undefined,
      (c) => counts.push(c),
    );
    store.get('edge', 'good');
    store.get('edge', 'missing');
    await settle();
    store.get('edge', 'good');
    store.get('edge', 'missing');
    await settle();
    store.get('edge', 'missing');
    expect(counts.at(-1)).to.deep.equal({ usable: 1, unusable: 1 });
    store.stop();
  });
});

describe('proxy: a changed credential is a changed cluster (ClusterTable.adopt)', () => {
  const def = (): Cluster => ({
    name: 'c',
    service: 'api.example.test',
    port: 443,
    endpoints: [{ address: '127.0.0.1', port: 1 }],
    tls: { mode: 'MUTUAL', credentialName: 'api-client' },
  });
  const table = (cred: UpstreamCredential): ClusterTable =>
    new ClusterTable(new Map([['c', def()]]), undefined, undefined, { 'api-client': cred });

  it('the same credential keeps the live runtime (and its pools); a rotated one replaces it', () => {
    const first = table(good);
    const rt = first.get('c')!;
    const same = table({ ...good });
    expect(same.adopt(first)).to.deep.equal([]);
    expect(same.get('c')).to.equal(rt);
    const other = issueServing(ca, { commonName: 'c2', dnsNames: ['c2'], ttlMs: HOUR, now });
    const rotated = table({ ...good, certChain: other.certPem, privateKey: other.keyPem });
    expect(rotated.adopt(same)).to.deep.equal([rt]);
    expect(rotated.get('c')).to.not.equal(rt);
    const broken = table({ source: good.source, error: 'Secret edge/api-client not found' });
    expect(broken.adopt(rotated)).to.have.length(1);
  });
});

describe('proxy: /certs lists delivered credentials (proxy-config secret), never their keys', () => {
  it('Istio SDS names, the chain’s leaf and the CAs, valid / expired / error', () => {
    const creds = { 'api-client': good, bad: { source: 'edge/bad', error: 'Secret edge/bad not found' } };
    const s = credentialSummaries(creds);
    expect(s.map((x) => [x.name, x.state, x.error])).to.deep.equal([
      ['kubernetes://api-client', 'valid', undefined],
      ['kubernetes://bad', 'error', 'Secret edge/bad not found'],
    ]);
    expect(s[0]!.certificate!.serialNumber).to.equal(new X509Certificate(leaf.certPem).serialNumber);
    expect(s[0]!.roots.map((r) => r.serialNumber)).to.deep.equal([
      new X509Certificate(ca.certPem).serialNumber,
    ]);
    expect(JSON.stringify(s)).to.not.contain('PRIVATE KEY');
    const later = credentialSummaries(creds, Date.now() + 2 * HOUR);
    expect(later[0]!.state).to.equal('expired');
    expect(later[0]!.certificate!.valid).to.equal(false);
  });
});

describe('credentialName → Secret name (nothing else is watched)', () => {
  const cases: [string, string | RegExp][] = [
    ['client-cred', 'client-cred'],
    ['kubernetes://client-cred', 'client-cred'],
    ['certs.example.com', 'certs.example.com'],
    ['configmap://ca', /a CA from a ConfigMap \(configmap:\/\/\) is not supported yet/],
    ['Client-Cred', /is not a Secret name/],
    ['a,metadata.namespace=kube-system', /is not a Secret name/], // a field selector injection
    ['ns/name', /is not a Secret name/],
    ['kubernetes://', /is not a Secret name/],
    ['a'.repeat(247), /is not a Secret name/], // its -cacert would be too long
  ];
  for (const [given, want] of cases)
    it(`${JSON.stringify(given.length > 40 ? `${given.slice(0, 10)}…(${given.length})` : given)}`, () => {
      const got = secretNameOf(given);
      if (typeof want === 'string') expect(got).to.equal(want);
      else expect((got as { error: string }).error).to.match(want);
    });

  it('a SecretCredentials never watches a name that is not a Secret name', async () => {
    const listed: string[] = [];
    const kube = fakeKube(new Map(), new Set(), listed);
    const store = new SecretCredentials(kube, createLogger('t', { silent: true }), () => undefined);
    expect(store.get('edge', 'a,metadata.name=b').error).to.match(/is not a Secret name/);
    expect(store.get('edge', 'configmap://ca').error).to.match(/ConfigMap/);
    await new Promise((r) => setTimeout(r, 10));
    expect(listed).to.deep.equal([]);
    expect(store.watching()).to.deep.equal([]);
    store.stop();
  });
});
