/**
 * The sidecar's outbound TCP table (proxy/sidecar/outbound-tcp.ts): a service's own address and
 * port is found first; a port's catch-all (DNS ServiceEntries without addresses, Istio's
 * 0.0.0.0:<port> listener) is never what `find` returns, only what `catchAll(port)` does, so a
 * specific VIP service always wins over it.
 */
import { expect } from 'chai';
import type { OutboundTcpService } from '../../../pkg/proxyconfig/types.js';
import { compileOutboundTcp } from '../../../proxy/sidecar/outbound-tcp.js';
import { TcpGroup } from '../../../proxy/telemetry/metrics.js';
import { firstL4Route } from '../../../proxy/tcp-route.js';

const catchAll: OutboundTcpService = {
  name: '0.0.0.0:443',
  addresses: ['0.0.0.0/0', '::/0'],
  port: 443,
  tlsRoutes: [
    {
      name: 'api.example.test:443',
      match: [{ sniHosts: ['api.example.test'] }],
      destinations: [{ cluster: 'outbound|443||api.example.test', weight: 100 }],
    },
  ],
  catchAll: true,
};
const vip: OutboundTcpService = {
  name: 'secure.example.com:443',
  addresses: ['10.96.0.21'],
  port: 443,
  tcpRoutes: [
    { name: 'default', destinations: [{ cluster: 'outbound|443||secure.example.com', weight: 100 }] },
  ],
};

describe('proxy/sidecar/outbound-tcp: VIP services before the catch-all', () => {
  // the catch-all listed first: order in the config must not matter
  const table = compileOutboundTcp([catchAll, vip], () => new TcpGroup(''))!;

  it('a VIP service is found by its address; any other address is not a service', () => {
    expect(table.find('10.96.0.21', 443)?.name).to.equal('secure.example.com:443');
    expect(table.find('203.0.113.9', 443)).to.equal(null);
    expect(table.find('2001:db8::1', 443)).to.equal(null);
  });
  it('the catch-all is the port’s, whatever the address', () => {
    expect(table.catchAll(443)?.name).to.equal('0.0.0.0:443');
    expect(table.catchAll(8443)).to.equal(null);
  });
  it('its routes take the entry’s host only', () => {
    const l4 = table.catchAll(443)!.l4;
    const route = (sni: string) =>
      firstL4Route(l4.tls, { port: 443, address: '203.0.113.9', sni })?.name ?? null;
    expect(route('api.example.test')).to.equal('api.example.test:443');
    expect(route('evil.example.net')).to.equal(null);
    expect(route('x.api.example.test')).to.equal(null);
  });
});
