/**
 * Every kind weft serves, in one list. The CRD generator, the validator and the webhook
 * configuration all read it, so adding a kind here is the only step that makes it "known".
 */
import type { KindDefinition } from './kind.js';
import { virtualServiceKind } from './virtualservice.js';
import { destinationRuleKind } from './destinationrule.js';
import { gatewayKind } from './gateway.js';
import { serviceEntryKind } from './serviceentry.js';
import { sidecarKind } from './sidecar.js';
import { peerAuthenticationKind } from './peerauthentication.js';
import { authorizationPolicyKind } from './authorizationpolicy.js';
import { requestAuthenticationKind } from './requestauthentication.js';
import { meshKind } from './mesh.js';
import { workloadEntryKind, workloadGroupKind } from './workloadentry.js';
import { telemetryKind } from './telemetry.js';
import { istioProxyConfigKind } from './proxyconfig.js';
import { envoyFilterKind } from './envoyfilter.js';
import { wasmPluginKind } from './wasmplugin.js';
import { rateLimitKind } from './ratelimit.js';
import { memQuotaKind } from './memquota.js';

/** The Istio kinds the validating webhook covers (same groups, kinds and versions as Istio). */
export const meshKinds: readonly KindDefinition[] = [
  virtualServiceKind,
  destinationRuleKind,
  gatewayKind,
  serviceEntryKind,
  sidecarKind,
  peerAuthenticationKind,
  authorizationPolicyKind,
  requestAuthenticationKind,
];

/**
 * Istio kinds weft serves and validates so that real-world Istio YAML applies, but that no
 * cross-object check involves (the webhook does not index them). All but WorkloadEntry are not
 * acted on (each is listed in pkg/api/not-enforced.ts, and admitted with a warning); WorkloadEntry
 * objects are the endpoints of ServiceEntries that select them (weftd watches them).
 */
export const servedOnlyKinds: readonly KindDefinition[] = [
  workloadEntryKind,
  workloadGroupKind,
  telemetryKind,
  istioProxyConfigKind,
  envoyFilterKind,
  wasmPluginKind,
];

/**
 * Rate limits (ADR 0013): weft's own RateLimit and Istio's Mixer-era `memquota`, both enforced as
 * local limits in the destination sidecars (weftd watches them; no cross-object webhook check).
 */
export const rateLimitKinds: readonly KindDefinition[] = [rateLimitKind, memQuotaKind];

/** All kinds: the Istio ones, weft's own `Mesh`, and the rate-limit kinds. */
export const kindDefinitions: KindDefinition[] = [
  ...meshKinds,
  ...servedOnlyKinds,
  meshKind,
  ...rateLimitKinds,
];

const byGroupKind = new Map(kindDefinitions.map((d) => [`${d.group}/${d.kind}`, d]));

/**
 * The definition for an object's apiVersion and kind, or undefined when weft does not serve
 * that exact version (e.g. `security.istio.io/v1alpha3`) or kind.
 */
export function findKind(apiVersion: string, kind: string): KindDefinition | undefined {
  const slash = apiVersion.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const def = byGroupKind.get(`${apiVersion.slice(0, slash)}/${kind}`);
  return def && def.versions.includes(apiVersion.slice(slash + 1)) ? def : undefined;
}

/** The definition for a group and kind regardless of version (Istio ignores the version). */
export function findGroupKind(group: string, kind: string): KindDefinition | undefined {
  return byGroupKind.get(`${group}/${kind}`);
}
