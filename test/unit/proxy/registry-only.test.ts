/**
 * outboundTrafficPolicy REGISTRY_ONLY's destination set (proxy/sidecar/registry-only.ts): an
 * original destination passes only when its address (IP or inside a CIDR) lists its port.
 */
import { expect } from 'chai';
import { compileRegistryOnly } from '../../../proxy/sidecar/registry-only.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';

describe('REGISTRY_ONLY destinations', () => {
  const r = compileRegistryOnly({
    mode: 'REGISTRY_ONLY',
    destinations: [
      { address: '10.96.0.10', ports: [5432] },
      { address: '10.0.0.0/8', ports: [443] },
      { address: 'fd00::1', ports: [80] },
      { address: '::/0', ports: [9000] },
    ],
  })!;
  const table: [string, number, boolean][] = [
    ['10.96.0.10', 5432, true],
    ['10.96.0.10', 5433, false],
    ['10.96.0.11', 5432, false],
    ['10.1.2.3', 443, true],
    ['11.1.2.3', 443, false],
    ['fd00::1', 80, true],
    ['fd00::2', 80, false],
    ['::ffff:10.96.0.10', 5432, true],
    ['2001:db8::1', 9000, true],
    ['10.96.0.10', 9000, false],
    ['not-an-ip', 5432, false],
  ];
  for (const [address, port, want] of table)
    it(`${address}:${port} ${want ? 'passes' : 'is closed'}`, () =>
      expect(r.allows(address, port)).to.equal(want));

  it('no policy (ALLOW_ANY): nothing to check', () => expect(compileRegistryOnly(undefined)).to.equal(null));

  it('the config validator refuses a bad policy', () => {
    const cfg = (p: unknown) => ({
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [],
      clusters: [],
      outboundTrafficPolicy: p,
    });
    expect(
      validateProxyConfig(
        cfg({ mode: 'REGISTRY_ONLY', destinations: [{ address: '10.0.0.1', ports: [80] }] }),
      ),
    ).to.deep.equal([]);
    const paths = (p: unknown) => validateProxyConfig(cfg(p)).map((x) => x.path);
    expect(paths({ mode: 'ALLOW_ANY', destinations: [] })).to.deep.equal(['outboundTrafficPolicy.mode']);
    expect(
      paths({ mode: 'REGISTRY_ONLY', destinations: [{ address: 'db.example.com', ports: [80] }] }),
    ).to.deep.equal(['outboundTrafficPolicy.destinations[0].address']);
    expect(
      paths({ mode: 'REGISTRY_ONLY', destinations: [{ address: '10.0.0.0/33', ports: [0] }] }),
    ).to.deep.equal([
      'outboundTrafficPolicy.destinations[0].address',
      'outboundTrafficPolicy.destinations[0].ports[0]',
    ]);
    expect(paths({ mode: 'REGISTRY_ONLY' })).to.deep.equal(['outboundTrafficPolicy.destinations']);
  });
});
