/**
 * The inbound side's pure parts: the peer identity and XFCC of a certificate, the plan's metric
 * groups (interned per peer, capped), the decision table, and the validation of a config's
 * inbound block.
 */
import { expect } from 'chai';
import { createHash, X509Certificate } from 'node:crypto';
import { clientCertDetails, peerIdentity } from '../../../proxy/inbound/peer.js';
import { InboundPlan, MAX_PEER_SERIES, NO_INBOUND_POLICY } from '../../../proxy/inbound/plan.js';
import { decide, type Arrival } from '../../../proxy/inbound/decide.js';
import { MetricsRegistry } from '../../../proxy/telemetry/metrics.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import { PROXY_CONFIG_API_VERSION, type PeerMode, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { meshRoot, leafWithSans, workloadCert } from '../../integration/proxy/mesh-identity.js';

const SELF = 'spiffe://cluster.local/ns/demo/sa/reviews';
const PEER = 'spiffe://cluster.local/ns/shop/sa/productpage';

const base = (extra: Partial<ProxyConfig> = {}): ProxyConfig => ({
  apiVersion: PROXY_CONFIG_API_VERSION,
  kind: 'ProxyConfig',
  version: '1',
  listeners: [],
  clusters: [],
  ...extra,
});

describe('inbound: peer identity and XFCC', () => {
  const root = meshRoot();

  it('XFCC is By;Hash (SHA-256 of the DER);Subject (empty, quoted);URI, as Istio sets it', () => {
    const pem = workloadCert(root, PEER).certPem;
    const cert = new X509Certificate(pem);
    const id = peerIdentity(cert, SELF);
    const hash = createHash('sha256').update(cert.raw).digest('hex');
    expect(id).to.deep.equal({
      principal: PEER,
      namespace: 'shop',
      xfcc: `By=${SELF};Hash=${hash};Subject="";URI=${PEER}`,
    });
  });

  const refused: [string, { type: number; value: string }[], RegExp][] = [
    ['no URI SAN', [{ type: 2, value: 'a.example' }], /0 URI SANs/],
    [
      'two URI SANs',
      [
        { type: 6, value: PEER },
        { type: 6, value: SELF },
      ],
      /2 URI SANs/,
    ],
    ['a URI that is not SPIFFE', [{ type: 6, value: 'https://evil.example/ns/x/sa/y' }], /not a SPIFFE ID/],
    [
      'a SPIFFE ID with XFCC separators in it',
      [{ type: 6, value: 'spiffe://td/ns/a;URI=spiffe://td/ns/admin' }],
      /not a SPIFFE ID/,
    ],
    ['a SPIFFE ID with a quote', [{ type: 6, value: 'spiffe://td/ns/"x' }], /not a SPIFFE ID/],
  ];
  for (const [title, sans, re] of refused)
    it(`refuses ${title}`, () => {
      const id = peerIdentity(new X509Certificate(leafWithSans(root, sans).certPem), SELF);
      expect(id).to.be.a('string').that.matches(re);
    });
});

describe('gateway: XFCC of a verified client certificate (SANITIZE_SET)', () => {
  const root = meshRoot();
  const details = (sans: { type: number; value: string }[], by?: string): string => {
    const cert = new X509Certificate(leafWithSans(root, sans).certPem);
    const hash = createHash('sha256').update(cert.raw).digest('hex');
    return clientCertDetails(cert, by).replace(hash, 'H');
  };
  const cases: [string, { type: number; value: string }[], string | undefined, string][] = [
    [
      'DNS SANs, no own identity (a MUTUAL gateway without one): no By',
      [
        { type: 2, value: 'client.example.com' },
        { type: 2, value: 'b.example.com' },
      ],
      undefined,
      'Hash=H;Subject="";DNS=client.example.com;DNS=b.example.com',
    ],
    [
      'a SPIFFE client at an ISTIO_MUTUAL gateway',
      [{ type: 6, value: PEER }],
      SELF,
      `By=${SELF};Hash=H;Subject="";URI=${PEER}`,
    ],
    [
      'only the first URI SAN, as Envoy',
      [
        { type: 6, value: 'urn:a' },
        { type: 6, value: 'urn:b' },
      ],
      undefined,
      'Hash=H;Subject="";URI=urn:a',
    ],
    [
      "a user CA's DNS SAN that would forge another element is quoted, never raw",
      [{ type: 2, value: 'a.example;By=spiffe://td/ns/admin' }],
      undefined,
      'Hash=H;Subject="";DNS="a.example;By=spiffe://td/ns/admin"',
    ],
    [
      'a URI SAN with a comma or a quote is quoted and escaped',
      [{ type: 6, value: 'urn:x,"y' }],
      undefined,
      'Hash=H;Subject="";URI="urn:x,\\"y"',
    ],
  ];
  for (const [title, sans, by, want] of cases)
    it(title, () => {
      expect(details(sans, by)).to.equal(want);
    });

  it('a subject or SAN with CR/LF or Unicode (U+010A is LF once written as latin1) comes out printable ASCII, escaped', () => {
    const cn = 'a\u010d\u010ax-injected: 1\u010d\u010a\u010d\u010aGET /admin HTTP/1.1';
    const cert = new X509Certificate(
      leafWithSans(root, [{ type: 2, value: 'client.example.com' }], cn).certPem,
    );
    // whatever node makes of the subject's bytes (UTF-8 decoded or latin1), none reaches the header raw
    expect(cert.subject).to.match(/[^\x20-\x7e]/);
    const xfcc = clientCertDetails(cert, undefined);
    expect(xfcc).to.match(/^[\x20-\x7e]*$/);
    expect(xfcc).to.match(/Subject="CN=a(\\x[0-9a-f]{2}|\\u[0-9a-f]{4})+x-injected: 1/);
    const raw = new X509Certificate(
      leafWithSans(root, [{ type: 2, value: 'a.example\r\nx-evil: 1' }]).certPem,
    );
    expect(clientCertDetails(raw, undefined))
      .to.match(/^[\x20-\x7e]*$/)
      .and.to.include('DNS="a.example\\x0d\\x0ax-evil: 1"');
  });
});

describe('inbound: plan and metric groups', () => {
  it('a config without an inbound block is PERMISSIVE, sniffed', () => {
    const p = new InboundPlan(
      '1',
      undefined,
      base(),
      new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' }),
    );
    expect([p.workload.mode, p.workload.policy, p.workload.protocol]).to.deep.equal([
      'PERMISSIVE',
      NO_INBOUND_POLICY,
      null,
    ]);
    expect(p.forPort(8080)).to.equal(p.workload);
  });

  it('groups are interned per peer and capped: the overflow shares source_principal="other"', () => {
    const metrics = new MetricsRegistry({ workload: 'w', namespace: 'n', app: 'a', version: 'v' });
    const plan = new InboundPlan('1', { mtls: { mode: 'STRICT' } }, base(), metrics).workload;
    const sec = (i: number) => ({
      principal: `spiffe://td/ns/n/sa/p${i}`,
      peerNamespace: 'n',
      localPrincipal: SELF,
    });
    expect(plan.httpGroup(sec(1))).to.equal(plan.httpGroup(sec(1)));
    for (let i = 0; i < MAX_PEER_SERIES + 50; i++) plan.httpGroup(sec(i)).record(200, '-', 1, 0, 0);
    const text = metrics.render();
    expect(text.match(/^istio_requests_total\{/gm)?.length).to.equal(MAX_PEER_SERIES + 1);
    expect(text).to.match(/source_principal="other"[^\n]* 50$/m);
  });
});

describe('inbound: decision table', () => {
  const tls = (meshAlpn: boolean, sni: boolean): Arrival => ({
    kind: 'tls',
    meshAlpn,
    sni,
    alpn: meshAlpn ? ['istio'] : ['h2'],
  });
  const rows: [PeerMode, Arrival, boolean, string][] = [
    ['STRICT', { kind: 'plaintext' }, true, 'refuse plaintext'],
    ['STRICT', { kind: 'empty' }, true, 'refuse empty'],
    ['STRICT', { kind: 'malformed', reason: 'x' }, true, 'refuse tls_bad_client_hello'],
    ['STRICT', tls(false, true), true, 'refuse tls_unknown_alpn'],
    ['STRICT', tls(true, false), true, 'refuse tls_no_sni'],
    ['STRICT', tls(true, true), false, 'refuse no_identity'],
    ['STRICT', tls(true, true), true, 'terminate'],
    ['PERMISSIVE', { kind: 'plaintext' }, true, 'plaintext'],
    ['PERMISSIVE', { kind: 'malformed', reason: 'x' }, true, 'plaintext'],
    ['PERMISSIVE', tls(false, true), true, 'tls-passthrough'],
    ['PERMISSIVE', tls(true, false), true, 'refuse tls_no_sni'],
    ['PERMISSIVE', tls(true, true), true, 'terminate'],
    ['PERMISSIVE', { kind: 'empty' }, true, 'refuse empty'],
    ['DISABLE', tls(true, true), true, 'plaintext'],
    ['DISABLE', { kind: 'plaintext' }, false, 'plaintext'],
  ];
  for (const [mode, arrival, identity, want] of rows)
    it(`${mode} × ${arrival.kind}${arrival.kind === 'tls' ? ` (mesh ALPN ${arrival.meshAlpn}, SNI ${arrival.sni})` : ''}${identity ? '' : ', no identity'} → ${want}`, () => {
      const d = decide(mode, arrival, identity);
      expect(d.action === 'refuse' ? `refuse ${d.reason}` : d.action).to.equal(want);
    });
});

describe('inbound: config validation', () => {
  const bad: [string, unknown, RegExp][] = [
    [
      'a mode Istio does not have',
      { mtls: { mode: 'MAYBE' } },
      /inbound\.mtls\.mode: must be one of STRICT, PERMISSIVE, DISABLE/,
    ],
    ['UNSET (resolved by weftd, never sent)', { mtls: { mode: 'UNSET' } }, /inbound\.mtls\.mode/],
    ['no mtls', {}, /inbound\.mtls: must be an object/],
    ['a port twice', { mtls: { mode: 'STRICT' }, ports: [{ port: 80 }, { port: 80 }] }, /listed twice/],
    ['port 0', { mtls: { mode: 'STRICT' }, ports: [{ port: 0 }] }, /inbound\.ports\[0\]\.port/],
    [
      'an unknown protocol',
      { mtls: { mode: 'STRICT' }, ports: [{ port: 80, protocol: 'HTTP2' }] },
      /must be HTTP or TCP/,
    ],
    [
      'a bad port-level mode',
      { mtls: { mode: 'STRICT' }, ports: [{ port: 80, mtls: { mode: 'x' } }] },
      /inbound\.ports\[0\]\.mtls\.mode/,
    ],
  ];
  for (const [title, inbound, re] of bad)
    it(`refuses ${title}`, () => {
      const problems = validateProxyConfig({ ...base(), inbound });
      expect(problems.map((p) => `${p.path}: ${p.message}`).join('\n')).to.match(re);
    });

  it('accepts what weftd sends', () => {
    expect(
      validateProxyConfig({
        ...base(),
        inbound: {
          mtls: { mode: 'STRICT', policy: 'PeerAuthentication demo/strict' },
          ports: [
            {
              port: 9080,
              protocol: 'HTTP',
              service: 'reviews.demo.svc.cluster.local',
              mtls: { mode: 'DISABLE' },
            },
          ],
        },
      }),
    ).to.deep.equal([]);
  });
});
