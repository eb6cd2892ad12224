/**
 * PeerAuthentication → the mTLS mode a workload's inbound listener enforces, per port, with the
 * policy that decided it (for access logs, refusals and `weftctl explain`). Istio's
 * ComposePeerAuthentication (pilot/pkg/security/authn/policy_applier.go), rule for rule:
 *
 * - scopes: a policy with no selector (or empty `matchLabels`) in the root namespace is mesh-wide;
 *   with no selector in the workload's namespace, namespace-wide; with a selector in the
 *   workload's namespace whose labels the workload has, workload-level. A selector policy in the
 *   root namespace is ignored (istio/api#3604).
 * - one policy per scope: the oldest (creationTimestamp) wins; a tie goes to the first by
 *   namespace/name, which is the order istiod sorts configs in.
 * - the narrowest scope that sets a mode wins; `UNSET` (or no `mtls`) inherits from the wider
 *   scope. Below the mesh-wide policy sits the Mesh's `spec.mtls.mode` (weft's mesh default, which
 *   Istio hardcodes to PERMISSIVE).
 * - `portLevelMtls` is read from the workload-level policy only (validation refuses it elsewhere,
 *   Istio ignores it); an `UNSET` port inherits the workload's mode. Ports are the workload's
 *   (container) ports, not Service ports.
 */
import type { MutualTLSMode, PeerAuthentication } from '../api/peerauthentication.js';
import type { PeerMode } from '../proxyconfig/types.js';

export type { PeerMode };

export interface PeerDecision {
  mode: PeerMode;
  /** What decided it: `PeerAuthentication demo/strict`, `... portLevelMtls[8080]`, or the mesh default. */
  policy: string;
}

export interface EffectivePeerAuthentication extends PeerDecision {
  /** Port-level overrides (workload ports). */
  ports: Record<number, PeerDecision>;
}

export interface PeerAuthenticationScope {
  /** Istio's root namespace: weft's control-plane namespace (`weft-system`). */
  rootNamespace: string;
  /** The Mesh's `spec.mtls.mode`. */
  meshMode: PeerMode;
}

export const MESH_DEFAULT_POLICY = 'Mesh spec.mtls.mode';

export function policyRef(p: PeerAuthentication): string {
  return `PeerAuthentication ${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''}`;
}

/** Older first; equal (or missing) timestamps by namespace/name. */
function olderFirst(a: PeerAuthentication, b: PeerAuthentication): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  return policyRef(a).localeCompare(policyRef(b));
}

function hasSelector(p: PeerAuthentication): boolean {
  return Object.keys(p.spec?.selector?.matchLabels ?? {}).length > 0;
}

function selects(p: PeerAuthentication, labels: Record<string, string>): boolean {
  return Object.entries(p.spec.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function modeOf(m: { mode?: MutualTLSMode } | undefined): PeerMode | null {
  const mode = m?.mode;
  return mode === undefined || mode === 'UNSET' ? null : mode;
}

/** The policy of each scope that applies to a workload (null where none does). */
export function applicablePolicies(
  policies: readonly PeerAuthentication[],
  workload: { namespace: string; labels: Record<string, string> },
  rootNamespace: string,
): {
  mesh: PeerAuthentication | null;
  namespace: PeerAuthentication | null;
  workload: PeerAuthentication | null;
} {
  const out = { mesh: null, namespace: null, workload: null } as ReturnType<typeof applicablePolicies>;
  const keep = (scope: keyof typeof out, p: PeerAuthentication): void => {
    const cur = out[scope];
    if (cur === null || olderFirst(p, cur) < 0) out[scope] = p;
  };
  for (const p of policies) {
    const ns = p.metadata.namespace ?? 'default';
    if (!hasSelector(p)) {
      if (ns === rootNamespace) keep('mesh', p);
      else if (ns === workload.namespace) keep('namespace', p);
    } else if (ns !== rootNamespace && ns === workload.namespace && selects(p, workload.labels)) {
      keep('workload', p);
    }
  }
  return out;
}

export function resolvePeerAuthentication(
  policies: readonly PeerAuthentication[],
  workload: { namespace: string; labels: Record<string, string> },
  scope: PeerAuthenticationScope,
): EffectivePeerAuthentication {
  const chosen = applicablePolicies(policies, workload, scope.rootNamespace);
  let decided: PeerDecision = { mode: scope.meshMode, policy: MESH_DEFAULT_POLICY };
  for (const p of [chosen.mesh, chosen.namespace, chosen.workload]) {
    const mode = p === null ? null : modeOf(p.spec?.mtls);
    if (mode !== null) decided = { mode, policy: policyRef(p!) };
  }
  const ports: Record<number, PeerDecision> = {};
  const w = chosen.workload;
  for (const [key, m] of Object.entries(w?.spec.portLevelMtls ?? {})) {
    const port = Number(key);
    if (!/^\d+$/.test(key) || port < 1 || port > 65535) continue; // validation refuses these
    const mode = modeOf(m);
    ports[port] = mode === null ? decided : { mode, policy: `${policyRef(w!)} portLevelMtls[${port}]` };
  }
  return { ...decided, ports };
}
