/** AuthorizationPolicy in the proxy: what the request paths (gateway, sidecar inbound) import. */
export type { AuthzAttributes } from './attributes.js';
export {
  authorize,
  compileAuthz,
  guardsListener,
  matchCustom,
  NO_ALLOW_MATCHED,
  type AuthzDecision,
  type CompiledAuthz,
} from './engine.js';
export {
  authorizeAllReadings,
  authorizeRequest,
  authzGate,
  RBAC_DENIED_BODY,
  type AuthzOutcome,
  type AuthzDenial,
} from './gate.js';
