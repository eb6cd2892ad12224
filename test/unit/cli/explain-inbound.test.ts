/**
 * `weftctl explain --inbound`: what the inbound listener does with a plaintext or an mTLS client
 * on a port, from a config's inbound block, with the proxy's own plan and decision; the STRICT
 * refusal in the words the proxy logs.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../cli/main.js';
import { configFromText } from '../../../proxy/config/load.js';
import { explainInbound } from '../../../proxy/inbound/explain.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'inbound.yaml');
const CONFIG = configFromText(readFileSync(FIXTURE, 'utf8'), FIXTURE).config;
const PEER = 'spiffe://cluster.local/ns/shop/sa/productpage';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

describe('weftctl explain --inbound', () => {
  const cases: [
    string,
    Parameters<typeof explainInbound>[1],
    { accepted: boolean; outcome: RegExp; mode: string },
  ][] = [
    [
      'plaintext to a STRICT port is refused, naming the policy',
      { port: 9080, from: '10.244.0.7' },
      {
        accepted: false,
        mode: 'STRICT',
        outcome:
          /^refused: plaintext from 10\.244\.0\.7 refused by PeerAuthentication demo\/strict on port 9080: not TLS$/,
      },
    ],
    [
      'an mTLS peer on a STRICT HTTP port is accepted, with XFCC',
      { port: 9080, peer: PEER },
      {
        accepted: true,
        mode: 'STRICT',
        outcome: new RegExp(`HTTP forwarded to the app with x-forwarded-client-cert URI=${PEER}`),
      },
    ],
    [
      'an mTLS peer on a TCP port is piped',
      { port: 5432, peer: PEER },
      { accepted: true, mode: 'STRICT', outcome: /piped to the app as TCP/ },
    ],
    [
      'plaintext on the port-level DISABLE port is accepted',
      { port: 9090 },
      { accepted: true, mode: 'DISABLE', outcome: /^accepted as plaintext: sniffed/ },
    ],
    [
      'mTLS on a DISABLE port is not terminated',
      { port: 9090, peer: PEER },
      { accepted: true, mode: 'DISABLE', outcome: /not terminated \(DISABLE\)/ },
    ],
    [
      'a port without an entry takes the workload mode',
      { port: 7000 },
      { accepted: false, mode: 'STRICT', outcome: /refused by PeerAuthentication demo\/strict on port 7000/ },
    ],
    [
      'a workload without a certificate refuses mTLS',
      { port: 9080, peer: PEER, hasIdentity: false },
      { accepted: false, mode: 'STRICT', outcome: /\(no_identity\)/ },
    ],
  ];
  for (const [title, q, want] of cases)
    it(title, () => {
      const e = explainInbound(CONFIG, q);
      expect(e.accepted).to.equal(want.accepted);
      expect(e.mode).to.equal(want.mode);
      expect(e.outcome).to.match(want.outcome);
    });

  it('mTLS on a DISABLE port declared HTTP is not served: the ClientHello fails to parse as HTTP', () => {
    const cfg = {
      ...CONFIG,
      inbound: {
        ...CONFIG.inbound!,
        ports: [
          ...(CONFIG.inbound!.ports ?? []),
          { port: 9091, protocol: 'HTTP' as const, mtls: { mode: 'DISABLE' as const, policy: 'p' } },
        ],
      },
    };
    const e = explainInbound(cfg, { port: 9091, peer: PEER });
    expect(e).to.deep.include({ mode: 'DISABLE', accepted: false });
    expect(e.outcome).to.match(
      /declared HTTP: the TLS bytes fail to parse .*400, flag DPE.*nothing reaches the app/,
    );
    expect(explainInbound(cfg, { port: 9091 }).accepted, 'plaintext on it is served').to.equal(true);
  });

  it('a config without an inbound block is PERMISSIVE', () => {
    const { inbound: _dropped, ...withoutInbound } = CONFIG;
    const e = explainInbound(withoutInbound, { port: 9080 });
    expect(e).to.deep.include({ mode: 'PERMISSIVE', accepted: true });
  });

  it('prints the decision line by line, exit 1 when refused', async () => {
    const r = await run(['explain', '--config', FIXTURE, '--inbound', '9080', '--from', '10.244.0.7']);
    expect(r.code, r.err).to.equal(1);
    expect(r.out).to.equal(
      [
        'config        version inbound-1',
        'inbound       port 9080, HTTP, reviews.demo.svc.cluster.local',
        'mtls          STRICT (PeerAuthentication demo/strict)',
        'connection    plaintext from 10.244.0.7',
        'outcome       refused: plaintext from 10.244.0.7 refused by PeerAuthentication demo/strict on port 9080: not TLS',
        '',
      ].join('\n'),
    );
  });

  it('exit 0 and the principal for an accepted mTLS peer; JSON on -o json', async () => {
    const r = await run(['explain', '--config', FIXTURE, '--inbound', '9080', '--peer', PEER, '-o', 'json']);
    expect(r.code, r.err).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.include({
      connectionSecurityPolicy: 'mutual_tls',
      sourcePrincipal: PEER,
    });
  });

  const bad: [string, string[], RegExp][] = [
    ['a port out of range', ['--inbound', '70000'], /--inbound needs a port/],
    [
      'a peer that is not a SPIFFE ID',
      ['--inbound', '9080', '--peer', 'productpage'],
      /--peer needs a SPIFFE ID/,
    ],
    ['--peer without --inbound', ['--peer', 'spiffe://cluster.local/ns/a/sa/b'], /add --inbound PORT/],
  ];
  for (const [title, args, re] of bad)
    it(`refuses ${title} (exit 2)`, async () => {
      const r = await run(['explain', '--config', FIXTURE, ...args]);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(re);
    });
});

describe('weftctl explain --inbound: AuthorizationPolicy on the connection and the request', () => {
  const withAuthz = translateAuthz({
    policies: [
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'shop-reads', namespace: 'demo' },
        spec: {
          rules: [
            {
              from: [{ source: { namespaces: ['shop'] } }],
              to: [{ operation: { methods: ['GET'], ports: ['9080'] } }],
            },
          ],
        },
      } as AuthorizationPolicy,
    ],
    pod: { namespace: 'demo', labels: {} },
  }).block!;
  const cfg = { ...CONFIG, authz: { ...withAuthz, listeners: [] } };

  const cases: [string, Parameters<typeof explainInbound>[1], boolean, RegExp][] = [
    [
      'a GET from the shop peer is allowed, naming the rule',
      { port: 9080, peer: PEER, request: { method: 'GET', url: 'http://reviews/x' } },
      true,
      /the request is allowed: allowed by ALLOW policy demo\/shop-reads rule 0$/,
    ],
    [
      'a POST from the same peer is denied (403 RBAC)',
      { port: 9080, peer: PEER, request: { method: 'POST', url: '/x' } },
      false,
      /^the request is denied: 403 RBAC: no ALLOW policy matched$/,
    ],
    [
      'another namespace is denied',
      { port: 9080, peer: 'spiffe://cluster.local/ns/other/sa/x', request: { method: 'GET', url: '/x' } },
      false,
      /403 RBAC: no ALLOW policy matched/,
    ],
    [
      'a TCP port: the rule has HTTP-only fields, so no TCP connection is allowed (Istio)',
      { port: 5432, peer: PEER },
      false,
      /^refused: the connection is closed, no ALLOW policy matched$/,
    ],
    [
      'an HTTP port without a request: says policies apply per request',
      { port: 9080, peer: PEER },
      true,
      /checked by 1 AuthorizationPolicies \(add METHOD URL to evaluate one\)$/,
    ],
  ];
  for (const [name, q, accepted, outcome] of cases)
    it(name, () => {
      const e = explainInbound(cfg, q);
      expect(e.accepted, e.outcome).to.equal(accepted);
      expect(e.outcome).to.match(outcome);
    });
});
