import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { allowedUpgrade, declinedUpgrade, takesUpgrade } from '../../../proxy/upgrade.js';
import { validateProxyConfig } from '../../../pkg/proxyconfig/validate.js';
import type { CompiledHttpListener } from '../../../proxy/compile/compile.js';

const req = (headers: Record<string, string>, httpVersion = '1.1'): IncomingMessage =>
  ({ headers, httpVersion }) as unknown as IncomingMessage;
const listener = (types: string[]): CompiledHttpListener =>
  ({ upgradeTypes: new Set(types) }) as unknown as CompiledHttpListener;

describe('proxy upgrade decisions (Envoy upgrade_configs; RFC 9110 §7.8)', () => {
  it('allowedUpgrade: the whole Upgrade value, case-insensitive, HTTP/1.1 only', () => {
    const table: [Record<string, string>, string, string[], string | null][] = [
      [{ upgrade: 'websocket' }, '1.1', ['websocket'], 'websocket'],
      [{ upgrade: 'WebSocket' }, '1.1', ['websocket'], 'websocket'],
      [{ upgrade: ' websocket ' }, '1.1', ['websocket'], 'websocket'],
      [{ upgrade: 'h2c' }, '1.1', ['websocket'], null], // Istio: not allowed unless configured
      [{ upgrade: 'made-up' }, '1.1', ['websocket'], null],
      [{ upgrade: 'made-up' }, '1.1', ['websocket', 'made-up'], 'made-up'],
      [{ upgrade: 'websocket, h2c' }, '1.1', ['websocket'], null], // a list is not a configured type
      [{ upgrade: 'websocket' }, '1.0', ['websocket'], null], // Upgrade is ignored in HTTP/1.0
      [{}, '1.1', ['websocket'], null],
      [{ upgrade: 'websocket' }, '1.1', [], null],
    ];
    for (const [h, v, types, want] of table)
      expect(allowedUpgrade(req(h, v), listener(types)), JSON.stringify([h, v, types])).to.equal(want);
  });

  it('takesUpgrade: every upgrade without a body is taken off node:http; with a body it stays there', () => {
    const table: [Record<string, string>, boolean][] = [
      [{}, true],
      [{ 'content-length': '0' }, true],
      [{ 'content-length': '5' }, false],
      [{ 'transfer-encoding': 'chunked' }, false],
    ];
    for (const [h, want] of table) expect(takesUpgrade(req(h)), JSON.stringify(h)).to.equal(want);
  });

  it('declinedUpgrade: what node:http flags as an upgrade (Upgrade plus the Connection token)', () => {
    const table: [Record<string, string>, boolean][] = [
      [{ upgrade: 'websocket', connection: 'Upgrade' }, true],
      [{ upgrade: 'h2c', connection: 'Upgrade, HTTP2-Settings' }, true],
      [{ upgrade: 'websocket', connection: 'keep-alive,upgrade' }, true],
      [{ upgrade: 'websocket' }, false],
      [{ upgrade: 'websocket', connection: 'keep-alive' }, false],
      [{ upgrade: 'websocket', connection: 'upgraded' }, false],
      [{ connection: 'upgrade' }, false],
    ];
    for (const [h, want] of table) expect(declinedUpgrade(req(h)), JSON.stringify(h)).to.equal(want);
  });

  it('config: upgradeTypes must be HTTP tokens (optionally token/version)', () => {
    const cfg = (upgradeTypes: unknown): unknown => ({
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v',
      listeners: [{ name: 'l', protocol: 'HTTP', port: 0, virtualHosts: [], upgradeTypes }],
      clusters: [],
    });
    expect(validateProxyConfig(cfg(['websocket', 'CONNECT-UDP', 'made-up/1.0']))).to.deep.equal([]);
    expect(validateProxyConfig(cfg(undefined))).to.deep.equal([]);
    for (const bad of [['web socket'], ['websocket\r\nx: y'], [''], [7], 'websocket'])
      expect(validateProxyConfig(cfg(bad)), JSON.stringify(bad)).to.have.length(1);
  });
});
