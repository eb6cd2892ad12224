/**
 * ServiceEntry exportTo through weftd's config generator: a sidecar (or gateway) sees only the
 * entries exported to its namespace; namespaces with the same view share one translation, and
 * the spliced config line carries the view's clusters.
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import { WHOLE_SCOPE_MESH } from '../../support/mesh.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { ServiceEntry } from '../../../pkg/api/index.js';
import { createLogger } from '../../../pkg/log/index.js';
import { exportedTo, hiddenEntriesKey } from '../../../pkg/translate/serviceentry.js';
import { translate } from '../../../pkg/translate/index.js';

const entry = (name: string, ns: string, exportTo?: string[]): ServiceEntry => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: ns },
  spec: {
    hosts: [`${name}.example.com`],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    resolution: 'STATIC',
    endpoints: [{ address: '10.0.0.1' }],
    ...(exportTo ? { exportTo } : {}),
  },
});

// Istio's exportTo for a ServiceEntry in namespace `a` seen from a proxy in `ns`
const EXPORT: [string[] | undefined, string, boolean][] = [
  [undefined, 'a', true],
  [undefined, 'b', true],
  [[], 'b', true],
  [['*'], 'b', true],
  [['.'], 'a', true],
  [['.'], 'b', false],
  [['b'], 'b', true],
  [['b'], 'a', false],
  [['.', 'b'], 'a', true],
  [['.', 'b'], 'c', false],
  [['~'], 'a', false],
  [['~'], 'b', false],
];

describe('ServiceEntry exportTo', () => {
  for (const [to, ns, visible] of EXPORT)
    it(`exportTo ${JSON.stringify(to)} of namespace a, proxy in ${ns}: ${visible ? 'visible' : 'hidden'}`, () =>
      expect(exportedTo(entry('x', 'a', to), ns)).to.equal(visible));

  it('the translator leaves out the entries a namespace does not see (standalone: all)', () => {
    const ses = [entry('public', 'a'), entry('private', 'a', ['.'])];
    const hosts = (ns?: string): string[] =>
      translate({ serviceEntries: ses, ...(ns ? { proxyNamespace: ns } : {}) })
        .config.clusters.map((c) => c.service!)
        .sort();
    expect(hosts('a')).to.deep.equal(['private.example.com', 'public.example.com']);
    expect(hosts('b')).to.deep.equal(['public.example.com']);
    expect(hosts()).to.deep.equal(['private.example.com', 'public.example.com']);
  });

  it('the view key: empty when every entry is seen, else the hidden ones', () => {
    const ses = [entry('public', 'a'), entry('private', 'a', ['.'])];
    expect(hiddenEntriesKey(ses, 'a')).to.equal('');
    expect(hiddenEntriesKey(ses, 'b')).to.equal('a/private');
  });

  const snapshot = (serviceEntries: ServiceEntry[]): Snapshot => ({
    generation: 1,
    services: [],
    peerAuthentications: [],
    kubeServices: [],
    virtualServices: [],
    destinationRules: [],
    serviceEntries,
    gateways: [],
    authorizationPolicies: [],
  });
  const pod = (namespace: string, name = 'p-1'): PodInfo => ({ name, namespace, labels: { app: 'x' } });

  it('weftd: each sidecar gets the entries exported to its namespace, in the config and the encoded line', () => {
    const g = new ConfigGenerator({
      domainSuffix: 'cluster.local',
      mesh: WHOLE_SCOPE_MESH,
      log: createLogger('t', { silent: true }),
    });
    const snap = snapshot([entry('public', 'a'), entry('private', 'a', ['.']), entry('tob', 'a', ['b'])]);
    const services = (ns: string): string[] => {
      const gc = g.forProxy(snap, 'sidecar', pod(ns));
      const line = JSON.parse(gc.encode()) as { config: { clusters: { service: string }[] } };
      const fromLine = line.config.clusters.map((c) => c.service);
      expect(fromLine).to.deep.equal(gc.config.clusters.map((c) => c.service));
      return fromLine.sort();
    };
    expect(services('a')).to.deep.equal(['private.example.com', 'public.example.com']);
    expect(services('b')).to.deep.equal(['public.example.com', 'tob.example.com']);
    expect(services('c')).to.deep.equal(['public.example.com']);
    expect(g.forProxy(snap, 'sidecar', pod('c')).version).to.not.equal(
      g.forProxy(snap, 'sidecar', pod('a')).version,
    );
  });
});
