/**
 * weftctl explain with AuthorizationPolicy in the config: the proxy's own explain names the
 * policy and rule that decides, the text says it, and a denied request is not "routed".
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { explainRequest, explainText } from '../../../cli/explainer.js';
import type { AuthorizationPolicy } from '../../../pkg/api/authorizationpolicy.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { translateAuthz } from '../../../pkg/translate/authz.js';
import { configFromText } from '../../../proxy/config/load.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'reviews.yaml');
const HOST = 'reviews.bookinfo.svc.cluster.local';

function withPolicies(listeners?: string[]): ProxyConfig {
  const base = configFromText(readFileSync(FIXTURE, 'utf8'), FIXTURE).config;
  const policies = [
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-admin', namespace: 'bookinfo' },
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*', '/reviews/admin'] } }] }] },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'audit', namespace: 'bookinfo' },
      spec: { action: 'AUDIT', rules: [{}] },
    },
  ] as AuthorizationPolicy[];
  const { block } = translateAuthz({ policies, pod: { namespace: 'bookinfo', labels: {} } });
  return { ...base, authz: { ...block!, ...(listeners ? { listeners } : {}) } };
}

describe('weftctl explain: AuthorizationPolicy', () => {
  it('a denied request names the policy and rule, and is not routed', () => {
    const r = explainRequest(withPolicies(), {
      method: 'GET',
      url: `http://${HOST}:9080/admin/x`,
      headers: [],
    });
    expect(r.routed).to.equal(false);
    expect(r.explain.outcome).to.equal('403 RBAC: denied by DENY policy bookinfo/no-admin rule 0');
    const text = explainText(r);
    expect(text).to.include('authorization deny: denied by DENY policy bookinfo/no-admin rule 0');
  });
  it('an allowed request shows the decision and the AUDIT mark, then the route', () => {
    const r = explainRequest(withPolicies(), {
      method: 'GET',
      url: `http://${HOST}:9080/reviews/1`,
      headers: [['end-user', 'jason']],
    });
    expect(r.routed).to.equal(true);
    const text = explainText(r);
    expect(text).to.include('authorization allow: no ALLOW policy applies');
    expect(text).to.include('audited by bookinfo/audit');
  });
  it('a sidecar block (listeners: []) does not guard the outbound listener explain runs on', () => {
    const r = explainRequest(withPolicies([]), {
      method: 'GET',
      url: `http://${HOST}:9080/reviews/admin`,
      headers: [['end-user', 'jason']],
    });
    expect(r.explain.authz).to.equal(undefined);
    expect(r.routed).to.equal(true);
  });
});
