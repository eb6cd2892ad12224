/**
 * RequestAuthentication → the proxy config's `jwt` block for one workload (pod), as istiod builds
 * the jwt_authn filter (pilot/pkg/security/authn):
 *
 * - which policies apply: in the root namespace or the workload's namespace; no selector and no
 *   targetRefs = every workload of that namespace (mesh-wide for the root namespace); a
 *   `selector` = workloads with all its labels; `targetRef(s)` to a Gateway
 *   (gateway.networking.k8s.io) = its pods (label `gateway.networking.k8s.io/gateway-name`) in the
 *   policy's namespace. A Service targetRef attaches to waypoints only in Istio: no sidecar or
 *   gateway here, reported as a warning. With targetRefs the selector is not read.
 * - all applicable policies are merged (not narrowest-wins, unlike PeerAuthentication): root
 *   namespace first, then by creation time and name; every jwtRule becomes one provider.
 * - keys: `jwks` inline as is; `jwksUri` (or, with neither, the issuer's OpenID discovery
 *   document) is fetched by weftd (controlplane/jwks.ts) and pushed inline. Without good keys the
 *   provider has none and says why: the proxy refuses that issuer's tokens (fail closed).
 */
import type { RequestAuthentication, JWTRule } from '../api/requestauthentication.js';
import type { PolicyTargetReference } from '../api/common.js';
import type { JwtAuthn, JwtProvider } from '../proxyconfig/jwt.js';
import { parseDurationMs } from './duration.js';

export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
/** Istio's default JWKS fetch timeout. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

/** Where weftd's fetched keys come from (controlplane/jwks.ts; tests pass a map). */
export interface JwksSource {
  /** Current keys for a URI (or the issuer's discovery when `uri` is absent), or why there are none. */
  keys(ref: { uri?: string; issuer: string; timeoutMs: number }): { jwks: string; error?: string };
}

export interface RequestAuthnInput {
  policies: readonly RequestAuthentication[];
  workload: { namespace: string; labels: Record<string, string> };
  rootNamespace: string;
  jwks: JwksSource;
}

export const EMPTY_JWKS = '{"keys":[]}';

const ref = (p: RequestAuthentication): string =>
  `RequestAuthentication ${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''}`;

function targetRefs(p: RequestAuthentication): PolicyTargetReference[] {
  return [...(p.spec?.targetRefs ?? []), ...(p.spec?.targetRef ? [p.spec.targetRef] : [])];
}

/** Does `p` apply to the workload? Warnings for references that never can. */
export function appliesTo(p: RequestAuthentication, input: RequestAuthnInput, warnings: string[]): boolean {
  const ns = p.metadata.namespace ?? 'default';
  const { workload, rootNamespace } = input;
  if (ns !== rootNamespace && ns !== workload.namespace) return false;
  const refs = targetRefs(p);
  if (refs.length > 0) {
    if (ns !== workload.namespace) return false;
    return refs.some((r) => {
      if (r.kind === 'Gateway' && (r.group ?? 'gateway.networking.k8s.io') === 'gateway.networking.k8s.io')
        return workload.labels[GATEWAY_NAME_LABEL] === r.name;
      warnings.push(
        `${ref(p)}: targetRef ${r.kind}/${r.name} selects no sidecar or gateway (Istio attaches Service targetRefs to waypoints only)`,
      );
      return false;
    });
  }
  const sel = p.spec?.selector?.matchLabels ?? {};
  return Object.entries(sel).every(([k, v]) => workload.labels[k] === v);
}

function order(root: string) {
  return (a: RequestAuthentication, b: RequestAuthentication): number => {
    const ra = (a.metadata.namespace ?? 'default') === root ? 0 : 1;
    const rb = (b.metadata.namespace ?? 'default') === root ? 0 : 1;
    if (ra !== rb) return ra - rb;
    const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
    const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
    if (ta !== tb) return ta - tb;
    return ref(a).localeCompare(ref(b));
  };
}

function provider(rule: JWTRule, source: string, jwks: JwksSource): JwtProvider {
  let keys: { jwks: string; error?: string };
  if (rule.jwks) keys = { jwks: rule.jwks };
  else {
    let timeoutMs = DEFAULT_JWKS_TIMEOUT_MS;
    // admission refuses a bad duration; an object that slipped past keeps the default
    if (rule.timeout !== undefined) timeoutMs = parseDurationMs(rule.timeout) || DEFAULT_JWKS_TIMEOUT_MS;
    keys = jwks.keys({ ...(rule.jwksUri ? { uri: rule.jwksUri } : {}), issuer: rule.issuer, timeoutMs });
  }
  return {
    issuer: rule.issuer,
    ...(rule.audiences?.length ? { audiences: rule.audiences } : {}),
    jwks: keys.jwks,
    ...(keys.error !== undefined ? { jwksError: keys.error } : {}),
    ...(rule.fromHeaders?.length
      ? {
          fromHeaders: rule.fromHeaders.map((h) => ({
            name: h.name,
            ...(h.prefix ? { prefix: h.prefix } : {}),
          })),
        }
      : {}),
    ...(rule.fromParams?.length ? { fromParams: rule.fromParams } : {}),
    ...(rule.fromCookies?.length ? { fromCookies: rule.fromCookies } : {}),
    ...(rule.forwardOriginalToken ? { forwardOriginalToken: true } : {}),
    ...(rule.outputPayloadToHeader ? { outputPayloadToHeader: rule.outputPayloadToHeader } : {}),
    ...(rule.outputClaimToHeaders?.length ? { outputClaimToHeaders: rule.outputClaimToHeaders } : {}),
    ...(rule.spaceDelimitedClaims?.length ? { spaceDelimitedClaims: rule.spaceDelimitedClaims } : {}),
    source,
  };
}

/** The `jwt` block for one workload; undefined when no RequestAuthentication with rules applies. */
export function requestAuthnFor(input: RequestAuthnInput): { jwt?: JwtAuthn; warnings: string[] } {
  const warnings: string[] = [];
  const applicable = input.policies
    .filter((p) => appliesTo(p, input, warnings))
    .sort(order(input.rootNamespace));
  const providers: JwtProvider[] = [];
  for (const p of applicable)
    (p.spec?.jwtRules ?? []).forEach((rule, i) => {
      if (typeof rule?.issuer !== 'string' || rule.issuer === '') {
        warnings.push(`${ref(p)} jwtRules[${i}]: no issuer; rule skipped`);
        return;
      }
      providers.push(provider(rule, `${ref(p)} jwtRules[${i}]`, input.jwks));
    });
  return providers.length > 0 ? { jwt: { providers }, warnings } : { warnings };
}
