/**
 * weftd's config generation with RequestAuthentication: a selected pod gets the jwt block (and a
 * new version, and a line encodeMessage would write); a pod no policy selects keeps its config and
 * version untouched; gateways get it too.
 */
import { expect } from 'chai';
import { ConfigGenerator } from '../../../controlplane/configgen.js';
import { DEFAULT_MESH } from '../../../controlplane/flags.js';
import type { PodInfo, Snapshot } from '../../../controlplane/registry.js';
import type { RequestAuthentication } from '../../../pkg/api/requestauthentication.js';
import { encodeMessage } from '../../../pkg/discovery/protocol.js';
import { createLogger } from '../../../pkg/log/index.js';

const ra: RequestAuthentication = {
  apiVersion: 'security.istio.io/v1',
  kind: 'RequestAuthentication',
  metadata: { name: 'jwt', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'a' } }, jwtRules: [{ issuer: 'https://i', jwks: '{"keys":[]}' }] },
};

const snapshot = (requestAuthentications?: RequestAuthentication[]): Snapshot => ({
  generation: 1,
  services: [],
  kubeServices: [],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  peerAuthentications: [],
  ...(requestAuthentications ? { requestAuthentications } : {}),
});

const gen = (): ConfigGenerator =>
  new ConfigGenerator({
    domainSuffix: 'cluster.local',
    mesh: DEFAULT_MESH,
    log: createLogger('t', { silent: true }),
    jwks: { keys: () => ({ jwks: '{"keys":[]}', error: 'none' }) },
  });
const pod = (labels: Record<string, string>): PodInfo => ({ name: 'p-1', namespace: 'shop', labels });

describe('weftd config generation: RequestAuthentication', () => {
  for (const kind of ['sidecar', 'gateway'] as const) {
    it(`${kind}: a selected pod gets the jwt block, a new version and a line encodeMessage would write`, () => {
      const g = gen();
      const without = g.forProxy(snapshot(), kind, pod({ app: 'a' }));
      const withRa = g.forProxy(snapshot([ra]), kind, pod({ app: 'a' }));
      expect(without.config.jwt).to.equal(undefined);
      expect(withRa.config.jwt!.providers.map((p) => p.issuer)).to.deep.equal(['https://i']);
      // sidecars: not on the outbound listener (the app's own requests); gateways: every listener
      expect(withRa.config.jwt!.listeners).to.deep.equal(kind === 'sidecar' ? [] : undefined);
      expect(withRa.version).to.not.equal(without.version);
      expect(withRa.config.version).to.equal(withRa.version);
      expect(JSON.parse(withRa.encode())).to.deep.equal(
        JSON.parse(encodeMessage({ type: 'config', version: withRa.version, config: withRa.config })),
      );
    });
    it(`${kind}: a pod no policy selects keeps its version`, () => {
      const g = gen();
      const a = g.forProxy(snapshot(), kind, pod({ app: 'b' }));
      const b = g.forProxy(snapshot([ra]), kind, pod({ app: 'b' }));
      expect(b.version).to.equal(a.version);
      expect(b.config.jwt).to.equal(undefined);
    });
  }
});
