/**
 * Which of a Gateway's TLS credentials its gateway pods cannot serve (gatewaycredentials.ts),
 * behind the Gateway's ResolvedRefs=False (InvalidCertificateRef).
 */
import { expect } from 'chai';
import { gatewayCredentialProblems } from '../../../controlplane/gatewaycredentials.js';
import type { CredentialLookup } from '../../../controlplane/gatewaycredentials.js';
import type { Gateway, Server } from '../../../pkg/api/index.js';
import type { UpstreamCredential } from '../../../pkg/proxyconfig/types.js';

const gateway = (servers: Server[]): Gateway => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'public', namespace: 'shop' },
  spec: { selector: { istio: 'ingress' }, servers },
});

const https = (mode: string, credentialName: string | undefined, name = 'https'): Server => ({
  port: { number: 443, name, protocol: 'HTTPS' },
  hosts: ['shop.example.com'],
  name,
  tls: { mode: mode as 'SIMPLE', ...(credentialName !== undefined ? { credentialName } : {}) },
});

const PAIR = { certChain: 'CERT', privateKey: 'KEY' };

/**
 * Credentials by `namespace/name`, as gateways asked for them; a `null` entry: no gateway reads
 * that one (peek answers undefined).
 */
function source(creds: Record<string, Omit<UpstreamCredential, 'source'> | null>): CredentialLookup {
  return (namespace, name) => {
    const key = `${namespace}/${name}`;
    if (creds[key] === null) return undefined;
    return { source: key, ...(creds[key] ?? { error: `Secret ${key} not found` }) };
  };
}

describe('Gateway TLS credentials judged for status', () => {
  type Creds = Record<string, Omit<UpstreamCredential, 'source'> | null>;
  const cases: [string, Server[], Creds, string[], RegExp[]][] = [
    ['a usable SIMPLE credential', [https('SIMPLE', 'cert')], { 'edge/cert': PAIR }, ['edge'], []],
    [
      'a usable MUTUAL credential with its CA',
      [https('MUTUAL', 'cert')],
      { 'edge/cert': { ...PAIR, caCertificates: 'CA' } },
      ['edge'],
      [],
    ],
    [
      'a missing Secret',
      [https('SIMPLE', 'cert')],
      {},
      ['edge'],
      [/^server https \(port 443\): Secret edge\/cert not found$/],
    ],
    [
      'a key that does not match the certificate (the error weftd already computed)',
      [https('SIMPLE', 'cert')],
      { 'edge/cert': { error: 'tls.key of Secret edge/cert does not match the certificate in tls.crt' } },
      ['edge'],
      [/does not match the certificate/],
    ],
    [
      'MUTUAL without a CA',
      [https('MUTUAL', 'cert')],
      { 'edge/cert': PAIR },
      ['edge'],
      [/holds no CA to verify clients.*MUTUAL needs/],
    ],
    [
      'a CA-only Secret for a SIMPLE server',
      [https('SIMPLE', 'cert')],
      { 'edge/cert': { caCertificates: 'CA' } },
      ['edge'],
      [/holds no certificate and key/],
    ],
    [
      'a Secret not listed yet is no verdict',
      [https('SIMPLE', 'cert')],
      { 'edge/cert': { error: 'Secret edge/cert not read yet' } },
      ['edge'],
      [],
    ],
    [
      'judged in every namespace where a selected pod runs',
      [https('SIMPLE', 'cert')],
      { 'edge/cert': PAIR },
      ['edge', 'edge-2'],
      [/Secret edge-2\/cert not found/],
    ],
    ['no selected pod: nothing to judge', [https('SIMPLE', 'cert')], {}, [], []],
    [
      'a Secret no gateway reads is not judged (no oracle for other namespaces)',
      [https('SIMPLE', 'cert')],
      { 'edge/cert': PAIR, 'tenant-b/cert': null },
      ['edge', 'tenant-b'],
      [],
    ],
    [
      'PASSTHROUGH and ISTIO_MUTUAL name no Secret',
      [https('PASSTHROUGH', 'cert'), https('ISTIO_MUTUAL', 'cert', 'm')],
      {},
      ['edge'],
      [],
    ],
    ['a server without credentialName', [https('SIMPLE', undefined)], {}, ['edge'], []],
    [
      'two servers, one broken: the broken one is named',
      [https('SIMPLE', 'good', 'a'), https('SIMPLE', 'bad', 'b')],
      { 'edge/good': PAIR },
      ['edge'],
      [/^server b \(port 443\): Secret edge\/bad not found$/],
    ],
  ];
  for (const [name, servers, creds, namespaces, expected] of cases)
    it(name, () => {
      const problems = gatewayCredentialProblems(gateway(servers), new Set(namespaces), source(creds));
      expect(problems).to.have.length(expected.length, problems.join('\n'));
      expected.forEach((re, i) => expect(problems[i]).to.match(re));
    });

  it('an unnamed server is named by its index; problems are capped', () => {
    const many = Array.from({ length: 30 }, (_, i): Server => ({ ...https('SIMPLE', `c${i}`), name: '' }));
    const problems = gatewayCredentialProblems(gateway(many), new Set(['edge']), source({}));
    expect(problems).to.have.length(10);
    expect(problems[0]).to.match(/^server servers\[0\] \(port 443\)/);
  });
});
