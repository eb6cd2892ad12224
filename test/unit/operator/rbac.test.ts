/**
 * The operator's ClusterRole (config/rbac/role.yaml) must cover everything it does in a real
 * cluster, or a Mesh stalls with `ApplyRejected` only once pods run: server-side apply of every
 * kind render() emits, and — RBAC escalation prevention, since the role has neither `escalate`
 * nor `bind` — every rule of every ClusterRole it renders (for weftd and the webhook).
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Mesh } from '../../../pkg/api/mesh.js';
import { render } from '../../../pkg/render/index.js';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

const operatorRules = (parse(readFileSync('config/rbac/role.yaml', 'utf8')) as { rules: Rule[] }).rules;
/** The operator's namespaced Role (its own Lease): it may grant those rules in that namespace. */
const leaderElection = parse(readFileSync('config/rbac/leader_election_role.yaml', 'utf8')) as {
  metadata: { namespace: string };
  rules: Rule[];
};

const has = (list: string[] | undefined, v: string): boolean =>
  (list ?? []).some((x) => x === '*' || x === v);

/** Whether one of `rules` allows `verb` on `group`/`resource` (a `*` resource covers subresources too). */
export function allows(rules: Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => has(r.apiGroups, group) && has(r.resources, resource) && has(r.verbs, verb));
}

const samples = readdirSync('config/samples')
  .filter((f) => f.startsWith('mesh') && f.endsWith('.yaml'))
  .map((f) => parse(readFileSync(join('config/samples', f), 'utf8')) as Mesh);

const rendered = samples.flatMap((m) => render(m, { caBundle: 'Y2E=' }));

describe('operator RBAC (config/rbac/role.yaml) covers what the operator does', () => {
  it('the coverage check itself: exact, wildcard and missing entries', () => {
    const rules: Rule[] = [
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: ['x.io'], resources: ['*'], verbs: ['*'] },
    ];
    const cases: [string, string, string, boolean][] = [
      ['', 'pods', 'get', true],
      ['', 'pods', 'list', false],
      ['apps', 'pods', 'get', false],
      ['x.io', 'things/status', 'patch', true],
    ];
    for (const [g, r, v, want] of cases) expect(allows(rules, g, r, v), `${g}/${r} ${v}`).to.equal(want);
  });

  it('renders something to check', () => expect(rendered.length).to.be.greaterThan(10));

  const kinds = new Map<string, { group: string; resource: string }>();
  for (const o of rendered) {
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '';
    kinds.set(o.kind, { group, resource: `${o.kind.toLowerCase()}s` });
  }
  kinds.set('Secret', { group: '', resource: 'secrets' }); // the certificates, applied beside render()
  for (const [kind, { group, resource }] of kinds) {
    it(`applies, watches and prunes ${kind} (${group || 'core'}/${resource})`, () => {
      for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'])
        expect(allows(operatorRules, group, resource, verb), `${verb} ${resource}`).to.equal(true);
    });
  }

  it('holds every rule of the (Cluster)Roles it renders (no escalate/bind needed)', () => {
    const missing: string[] = [];
    for (const role of rendered.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      const held =
        role.kind === 'Role' && role.metadata.namespace === leaderElection.metadata.namespace
          ? [...operatorRules, ...leaderElection.rules]
          : operatorRules;
      for (const rule of (role as unknown as { rules: Rule[] }).rules)
        for (const g of rule.apiGroups ?? [])
          for (const r of rule.resources ?? [])
            for (const v of rule.verbs)
              if (!allows(held, g, r, v)) missing.push(`${role.metadata.name}: ${v} ${g || 'core'}/${r}`);
    }
    expect(
      missing,
      'add these to config/rbac/role.yaml (or, for Roles in its namespace, leader_election_role.yaml)',
    ).to.deep.equal([]);
  });
});
