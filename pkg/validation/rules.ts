/**
 * The semantic rules per kind (what Istio's webhook checks beyond the schema). Each kind's rules
 * live in their own module; this table is how `validateObject` finds them.
 */
import type { Report } from './report.js';
import type { VirtualServiceSpec } from '../api/virtualservice.js';
import type { DestinationRuleSpec } from '../api/destinationrule.js';
import type { GatewaySpec } from '../api/gateway.js';
import type { ServiceEntrySpec } from '../api/serviceentry.js';
import type { SidecarSpec } from '../api/sidecar.js';
import type { PeerAuthenticationSpec } from '../api/peerauthentication.js';
import type { AuthorizationPolicySpec } from '../api/authorizationpolicy.js';
import type { RequestAuthenticationSpec } from '../api/requestauthentication.js';
import type { MeshSpec } from '../api/mesh.js';
import { validateVirtualService } from './virtualservice.js';
import { validateDestinationRule } from './destinationrule.js';
import { validateGateway, validateServiceEntry, validateSidecar } from './networking.js';
import {
  validateAuthorizationPolicy,
  validatePeerAuthentication,
  validateRequestAuthentication,
} from './security.js';
import { validateMesh } from './mesh.js';
import { validateRateLimit } from './ratelimit.js';
import { validateMemQuota } from './memquota.js';
import {
  validateEnvoyFilter,
  validateIstioProxyConfig,
  validateTelemetry,
  validateWasmPlugin,
  validateWorkloadEntry,
  validateWorkloadGroup,
} from './served-only.js';

export interface RuleContext {
  /** The object's namespace (or the assumed default). */
  namespace: string;
  annotations: Record<string, string>;
  /** The object's labels (a few Istio rules read them, e.g. `istio.io/use-waypoint`). */
  labels: Record<string, string>;
  kind: string;
  report: Report;
  /** The mesh runs the global rate-limit backend (webhook --global-ratelimits): RateLimit scope global is admitted. */
  globalRateLimits?: boolean;
}

/** `spec` has already passed the schema, so field types are as declared. */
export type SpecRules = (spec: Record<string, unknown>, ctx: RuleContext) => void;

/** Each kind's rules receive the spec typed as its model (the schema guaranteed the shape). */
function typed<T>(fn: (spec: T, ctx: RuleContext) => void): SpecRules {
  return (spec, ctx) => {
    checkAnnotations(ctx);
    fn(spec as T, ctx);
  };
}

export const semanticRules: Record<string, SpecRules> = {
  VirtualService: typed<VirtualServiceSpec>(validateVirtualService),
  DestinationRule: typed<DestinationRuleSpec>(validateDestinationRule),
  Gateway: typed<GatewaySpec>(validateGateway),
  ServiceEntry: typed<ServiceEntrySpec>(validateServiceEntry),
  Sidecar: typed<SidecarSpec>(validateSidecar),
  PeerAuthentication: typed<PeerAuthenticationSpec>(validatePeerAuthentication),
  AuthorizationPolicy: typed<AuthorizationPolicySpec>(validateAuthorizationPolicy),
  RequestAuthentication: typed<RequestAuthenticationSpec>(validateRequestAuthentication),
  Mesh: (spec, ctx) => validateMesh(spec as MeshSpec, ctx),
  WorkloadEntry: typed(validateWorkloadEntry),
  WorkloadGroup: typed(validateWorkloadGroup),
  Telemetry: typed(validateTelemetry),
  ProxyConfig: typed(validateIstioProxyConfig),
  EnvoyFilter: typed(validateEnvoyFilter),
  WasmPlugin: typed(validateWasmPlugin),
  RateLimit: typed(validateRateLimit),
  memquota: typed(validateMemQuota),
};

const INTERNAL_ANNOTATIONS = [
  'internal.istio.io/webhook-always-reject',
  'internal.istio.io/parents',
  'internal.istio.io/parent-namespace',
];
const DRY_RUN = 'istio.io/dry-run';

/** RULES.md §0.4: annotations Istio refuses on user objects. */
function checkAnnotations(ctx: RuleContext): void {
  const path = ['metadata', 'annotations'];
  if (DRY_RUN in ctx.annotations && (ctx.kind === 'VirtualService' || ctx.kind === 'DestinationRule')) {
    ctx.report.error(
      [...path, DRY_RUN],
      `${ctx.kind} has unsupported annotation ${DRY_RUN}, please remove the annotation`,
      'object.annotation.dryRun',
    );
  }
  for (const a of INTERNAL_ANNOTATIONS) {
    if (a in ctx.annotations)
      ctx.report.error(
        [...path, a],
        `"${a}" annotation found, this is an internal annotation and cannot be set by users`,
        'object.annotation.internal',
      );
  }
}
