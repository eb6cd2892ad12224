/**
 * ServiceEntry workloadSelector through weftd's real registry (informers over a fake API client)
 * and config generator, and through the standalone loader: WorkloadEntries (and pods, in weftd)
 * become the entry's endpoints.
 */
import { expect } from 'chai';
import { observe } from '../api/not-enforced-probe.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

const entry = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: 'ratings', namespace: 'default' },
  spec: {
    hosts: ['ratings.example.com'],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    workloadSelector: { labels: { app: 'ratings' } },
  },
};
const vm = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name: 'ratings-vm', namespace: 'default' },
  spec: { address: '10.0.2.1', labels: { app: 'ratings' }, ports: { http: 8080 } },
};
// the probe world's client pod (app: client, 10.1.0.5) is selected by a selector on app: client
const byPod = {
  ...entry,
  metadata: { name: 'clients', namespace: 'default' },
  spec: { ...entry.spec, hosts: ['clients.example.com'], workloadSelector: { labels: { app: 'client' } } },
};

const endpointsOf = (cfg: unknown, host: string): string[] =>
  ((cfg as { sidecar?: ProxyConfig } & ProxyConfig).sidecar ?? (cfg as ProxyConfig)).clusters
    .filter((c) => c.service === host)
    .flatMap((c) => c.endpoints.map((e) => `${e.address}:${e.port}`));

describe('weftd and standalone: ServiceEntry workloadSelector endpoints', () => {
  it('a WorkloadEntry with matching labels is an endpoint (weftd and standalone)', async () => {
    const o = await observe([entry, vm]);
    expect(endpointsOf(o.weftd, 'ratings.example.com')).to.deep.equal(['10.0.2.1:8080']);
    expect(endpointsOf(o.standalone, 'ratings.example.com')).to.deep.equal(['10.0.2.1:8080']);
  });
  it('without the WorkloadEntry: no endpoint', async () => {
    const o = await observe([entry]);
    expect(endpointsOf(o.weftd, 'ratings.example.com')).to.deep.equal([]);
  });
  it('weftd: a selected pod is an endpoint at its IP', async () => {
    const o = await observe([byPod]);
    expect(endpointsOf(o.weftd, 'clients.example.com')).to.deep.equal(['10.1.0.5:80']);
  });
});
