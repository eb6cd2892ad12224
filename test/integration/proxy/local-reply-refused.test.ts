/**
 * The last line of defence on a local reply: when the downstream refuses the head the proxy
 * writes itself (node throws for a field its protocol cannot carry: an HTTP/2 connection-specific
 * field once crashed the gateway this way), the request's connection is cut and the proxy lives
 * on. Simulated here by making node:http's writeHead throw for one status, which no config can
 * reach today; without the guard the throw escapes from the socket's data handler (uncaught).
 */
import { expect } from 'chai';
import http from 'node:http';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { startProxy, type Started } from './helpers.js';

const REFUSED_STATUS = 503;

function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const r = http.get({ port, host: '127.0.0.1', path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(`status ${res.statusCode}`));
    });
    r.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
  });
}

describe('a local reply the downstream refuses cuts the connection, never the proxy', function () {
  this.timeout(30_000);
  let proxy: Started;
  const original = http.ServerResponse.prototype.writeHead;
  before(async () => {
    const config: ProxyConfig = {
      apiVersion: 'proxy.weft.dev/v1',
      kind: 'ProxyConfig',
      version: 'v1',
      listeners: [
        {
          name: 'l',
          protocol: 'HTTP',
          port: 0,
          virtualHosts: [
            {
              name: 'a',
              domains: ['*'],
              routes: [
                // a cluster with no endpoints: every request gets the proxy's own 503
                {
                  action: { type: 'route', destinations: [{ cluster: 'empty', weight: 100 }] },
                  retries: { attempts: 0, retryOn: [], retriableStatusCodes: [] },
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'empty', type: 'STATIC', endpoints: [] }],
    };
    proxy = await startProxy(config);
  });
  afterEach(() => {
    http.ServerResponse.prototype.writeHead = original;
  });
  after(async () => {
    await proxy.stop();
  });

  it('the refused 503 is a cut connection; the next request is answered', async () => {
    expect(await get(proxy.port)).to.equal('status 503');
    http.ServerResponse.prototype.writeHead = function (this: http.ServerResponse, ...args: unknown[]) {
      if (args[0] === REFUSED_STATUS) throw new TypeError('Invalid character in header content');
      return (original as (...a: unknown[]) => http.ServerResponse).apply(this, args);
    } as typeof original;
    expect(await get(proxy.port)).to.match(/^error /);
    http.ServerResponse.prototype.writeHead = original;
    expect(await get(proxy.port)).to.equal('status 503');
  });
});
