/**
 * PeerAuthentication resolution: Istio's documented precedence (the examples of
 * peer_authentication.proto and the cases of istiod's TestComposePeerAuthentication), with the
 * deciding policy named for each result.
 */
import { expect } from 'chai';
import type { MutualTLSMode, PeerAuthentication } from '../../../pkg/api/index.js';
import {
  MESH_DEFAULT_POLICY,
  resolvePeerAuthentication,
  type EffectivePeerAuthentication,
  type PeerMode,
} from '../../../pkg/translate/peerauth.js';

const ROOT = 'weft-system';
const FOO = { namespace: 'foo', labels: { app: 'finance', stage: 'prod' } };

function pa(
  ref: string,
  spec: {
    selector?: Record<string, string>;
    mode?: MutualTLSMode;
    ports?: Record<string, MutualTLSMode | undefined>;
    created?: string;
  } = {},
): PeerAuthentication {
  const [namespace, name] = ref.split('/') as [string, string];
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: {
      name,
      namespace,
      ...(spec.created ? { creationTimestamp: spec.created } : {}),
    },
    spec: {
      ...(spec.selector ? { selector: { matchLabels: spec.selector } } : {}),
      ...(spec.mode ? { mtls: { mode: spec.mode } } : {}),
      ...(spec.ports
        ? {
            portLevelMtls: Object.fromEntries(
              Object.entries(spec.ports).map(([p, m]) => [p, m === undefined ? {} : { mode: m }]),
            ),
          }
        : {}),
    },
  };
}

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:00:01Z';

interface Case {
  name: string;
  policies: PeerAuthentication[];
  meshMode?: PeerMode;
  workload?: { namespace: string; labels: Record<string, string> };
  want: EffectivePeerAuthentication;
}

const mesh = (mode: PeerMode = 'PERMISSIVE') => ({ mode, policy: MESH_DEFAULT_POLICY, ports: {} });
const by = (mode: PeerMode, ref: string, ports: EffectivePeerAuthentication['ports'] = {}) => ({
  mode,
  policy: `PeerAuthentication ${ref}`,
  ports,
});

const CASES: Case[] = [
  { name: 'no policy: the mesh default (PERMISSIVE)', policies: [], want: mesh() },
  { name: 'no policy: Mesh spec.mtls.mode STRICT', policies: [], meshMode: 'STRICT', want: mesh('STRICT') },
  {
    name: 'mesh-wide policy in the root namespace',
    policies: [pa(`${ROOT}/default`, { mode: 'STRICT' })],
    want: by('STRICT', `${ROOT}/default`),
  },
  {
    name: 'mesh-wide policy overrides the Mesh default',
    policies: [pa(`${ROOT}/default`, { mode: 'PERMISSIVE' })],
    meshMode: 'STRICT',
    want: by('PERMISSIVE', `${ROOT}/default`),
  },
  {
    name: 'a root policy with an empty selector is still mesh-wide',
    policies: [pa(`${ROOT}/default`, { mode: 'STRICT', selector: {} })],
    want: by('STRICT', `${ROOT}/default`),
  },
  {
    name: 'a selector policy in the root namespace is ignored',
    policies: [pa(`${ROOT}/finance`, { mode: 'STRICT', selector: { app: 'finance' } })],
    want: mesh(),
  },
  {
    name: 'namespace beats mesh',
    policies: [pa(`${ROOT}/default`, { mode: 'STRICT' }), pa('foo/default', { mode: 'PERMISSIVE' })],
    want: by('PERMISSIVE', 'foo/default'),
  },
  {
    name: "another namespace's policy does not apply",
    policies: [pa('bar/default', { mode: 'STRICT' })],
    want: mesh(),
  },
  {
    name: 'workload beats namespace (the finance example)',
    policies: [
      pa('foo/default', { mode: 'PERMISSIVE' }),
      pa('foo/finance', { mode: 'STRICT', selector: { app: 'finance' } }),
    ],
    want: by('STRICT', 'foo/finance'),
  },
  {
    name: 'workload beats mesh',
    policies: [
      pa(`${ROOT}/default`, { mode: 'DISABLE' }),
      pa('foo/w', { mode: 'STRICT', selector: { app: 'finance' } }),
    ],
    want: by('STRICT', 'foo/w'),
  },
  {
    name: 'a selector that does not match the workload does not apply',
    policies: [pa('foo/other', { mode: 'STRICT', selector: { app: 'other' } })],
    want: mesh(),
  },
  {
    name: 'a selector needs every label',
    policies: [pa('foo/partial', { mode: 'STRICT', selector: { app: 'finance', stage: 'dev' } })],
    want: mesh(),
  },
  {
    name: 'a selector in another namespace does not apply',
    policies: [pa('bar/finance', { mode: 'STRICT', selector: { app: 'finance' } })],
    want: mesh(),
  },
  {
    name: 'several mesh policies: the oldest wins',
    policies: [
      pa(`${ROOT}/now`, { mode: 'DISABLE', created: T1 }),
      pa(`${ROOT}/earlier`, { mode: 'STRICT', created: T0 }),
    ],
    want: by('STRICT', `${ROOT}/earlier`),
  },
  {
    name: 'several namespace policies with the same age: the first by name wins',
    policies: [
      pa('foo/second-later', { mode: 'STRICT', created: T0 }),
      pa('foo/second-ago', { mode: 'PERMISSIVE', created: T0 }),
    ],
    want: by('PERMISSIVE', 'foo/second-ago'),
  },
  {
    name: 'several workload policies: the oldest wins even if another selector is narrower',
    policies: [
      pa('foo/newer', { mode: 'DISABLE', selector: { app: 'finance' }, created: T1 }),
      pa('foo/older', { mode: 'PERMISSIVE', selector: { stage: 'prod' }, created: T0 }),
    ],
    want: by('PERMISSIVE', 'foo/older'),
  },
  {
    name: 'UNSET at the root inherits the Mesh default',
    policies: [pa(`${ROOT}/default`, { mode: 'UNSET' })],
    meshMode: 'STRICT',
    want: mesh('STRICT'),
  },
  {
    name: 'UNSET workload inherits from the mesh policy',
    policies: [pa(`${ROOT}/default`, { mode: 'STRICT' }), pa('foo/w', { selector: { app: 'finance' } })],
    want: by('STRICT', `${ROOT}/default`),
  },
  {
    name: 'UNSET workload inherits from the namespace policy',
    policies: [
      pa('foo/default', { mode: 'STRICT' }),
      pa('foo/w', { selector: { app: 'finance' }, mode: 'UNSET' }),
    ],
    want: by('STRICT', 'foo/default'),
  },
  {
    name: 'mesh → UNSET namespace → UNSET workload',
    policies: [
      pa(`${ROOT}/default`, { mode: 'STRICT' }),
      pa('foo/default', { mode: 'UNSET' }),
      pa('foo/w', { selector: { app: 'finance' } }),
    ],
    want: by('STRICT', `${ROOT}/default`),
  },
  {
    name: 'empty namespace and workload policies inherit all the way down',
    policies: [pa('foo/default'), pa('foo/w', { selector: { app: 'finance' } })],
    want: mesh(),
  },
  {
    name: 'the oldest workload policy is chosen even when it is UNSET (no fall-through to a newer one)',
    policies: [
      pa('foo/older', { selector: { app: 'finance' }, created: T0 }),
      pa('foo/newer', { mode: 'DISABLE', selector: { app: 'finance' }, created: T1 }),
    ],
    want: mesh(),
  },
  {
    name: 'port level: STRICT but port 8080 plaintext (the proto example)',
    policies: [
      pa('foo/default', { selector: { app: 'finance' }, mode: 'STRICT', ports: { '8080': 'DISABLE' } }),
    ],
    want: by('STRICT', 'foo/default', {
      8080: { mode: 'DISABLE', policy: 'PeerAuthentication foo/default portLevelMtls[8080]' },
    }),
  },
  {
    name: 'port level with UNSET workload mode: inherit, then override one port (the proto example)',
    policies: [
      pa('foo/default', { mode: 'STRICT' }),
      pa('foo/finance', { selector: { app: 'finance' }, mode: 'UNSET', ports: { '8080': 'DISABLE' } }),
    ],
    want: by('STRICT', 'foo/default', {
      8080: { mode: 'DISABLE', policy: 'PeerAuthentication foo/finance portLevelMtls[8080]' },
    }),
  },
  {
    name: 'port level UNSET and empty ports inherit the workload mode (istiod "port level" case)',
    policies: [
      pa(`${ROOT}/default`, { mode: 'STRICT' }),
      pa('foo/w', {
        selector: { app: 'finance' },
        ports: { '80': 'DISABLE', '90': 'UNSET', '100': undefined },
      }),
    ],
    want: by('STRICT', `${ROOT}/default`, {
      80: { mode: 'DISABLE', policy: 'PeerAuthentication foo/w portLevelMtls[80]' },
      90: { mode: 'STRICT', policy: `PeerAuthentication ${ROOT}/default` },
      100: { mode: 'STRICT', policy: `PeerAuthentication ${ROOT}/default` },
    }),
  },
  {
    name: 'port level on a namespace-wide policy is ignored',
    policies: [pa('foo/default', { mode: 'STRICT', ports: { '8080': 'DISABLE' } })],
    want: by('STRICT', 'foo/default'),
  },
  {
    name: 'port level of a workload policy that is not chosen is ignored',
    policies: [
      pa('foo/older', { mode: 'STRICT', selector: { app: 'finance' }, created: T0 }),
      pa('foo/newer', {
        mode: 'STRICT',
        selector: { app: 'finance' },
        created: T1,
        ports: { '8080': 'DISABLE' },
      }),
    ],
    want: by('STRICT', 'foo/older'),
  },
  {
    name: 'a workload in the root namespace gets the root policy (no selector)',
    workload: { namespace: ROOT, labels: { app: 'weftd' } },
    policies: [pa(`${ROOT}/default`, { mode: 'STRICT' })],
    want: by('STRICT', `${ROOT}/default`),
  },
];

describe('PeerAuthentication resolution (Istio precedence)', () => {
  for (const c of CASES)
    it(c.name, () => {
      const got = resolvePeerAuthentication(c.policies, c.workload ?? FOO, {
        rootNamespace: ROOT,
        meshMode: c.meshMode ?? 'PERMISSIVE',
      });
      expect(got).to.deep.equal(c.want);
    });

  it('does not depend on the order policies are listed in', () => {
    const policies = [
      pa(`${ROOT}/default`, { mode: 'DISABLE', created: T0 }),
      pa('foo/b', { mode: 'PERMISSIVE', selector: { app: 'finance' }, created: T0 }),
      pa('foo/a', { mode: 'STRICT', selector: { stage: 'prod' }, created: T0 }),
      pa('foo/default', { mode: 'PERMISSIVE', created: T1 }),
    ];
    const scope = { rootNamespace: ROOT, meshMode: 'PERMISSIVE' as const };
    const want = resolvePeerAuthentication(policies, FOO, scope);
    expect(want.policy).to.equal('PeerAuthentication foo/a');
    expect(resolvePeerAuthentication([...policies].reverse(), FOO, scope)).to.deep.equal(want);
  });
});
