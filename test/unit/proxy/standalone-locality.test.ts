/**
 * Standalone mode (Istio YAML in a file) has no locality: an explicit localityLbSetting cannot be
 * applied, and the loader says so instead of ignoring it silently (issue #15).
 */
import { expect } from 'chai';
import { configFromText } from '../../../proxy/config/load.js';

const SE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
    - {address: 127.0.0.2, locality: us-east/a}
    - {address: 127.0.0.3, locality: us-west/b}
`;

function dr(trafficPolicy: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.example.com
  trafficPolicy:
${trafficPolicy}`;
}

const OUTLIER = '    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}\n';

describe('standalone proxy: localityLbSetting', () => {
  const cases: { name: string; policy: string; warns: boolean }[] = [
    { name: 'no DestinationRule', policy: '', warns: false },
    { name: 'outlier detection alone (the mesh default, nothing explicit)', policy: OUTLIER, warns: false },
    {
      name: 'distribute',
      policy:
        "    loadBalancer:\n      localityLbSetting:\n        distribute: [{from: 'us-east/*', to: {'us-east/*': 80, 'us-west/*': 20}}]\n",
      warns: true,
    },
    {
      name: 'failover with outlier detection',
      policy: `${OUTLIER}    loadBalancer:\n      localityLbSetting:\n        failover: [{from: us-east, to: us-west}]\n`,
      warns: true,
    },
    {
      name: 'failoverPriority with outlier detection',
      policy: `${OUTLIER}    loadBalancer:\n      localityLbSetting:\n        failoverPriority: [topology.kubernetes.io/region]\n`,
      warns: true,
    },
    {
      name: 'enabled: false',
      policy: `${OUTLIER}    loadBalancer:\n      localityLbSetting:\n        enabled: false\n`,
      warns: false,
    },
  ];
  for (const c of cases)
    it(`${c.name}: ${c.warns ? 'warns' : 'no warning'}`, () => {
      const text = c.policy === '' ? SE : SE + dr(c.policy);
      const { warnings } = configFromText(text, 'standalone.yaml');
      const about = warnings.filter((w) => w.includes('localityLbSetting is not applied in standalone mode'));
      expect(about.length, warnings.join('\n')).to.equal(c.warns ? 1 : 0);
    });
});
