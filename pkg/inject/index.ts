/** Sidecar injection: one pure injector shared by the mutating webhook and `weftctl kube-inject`. */
export { ANNOTATION, NAMESPACE_LABELS, readOverrides, type PodOverrides } from './annotations.js';
export { injectPod, injectTemplate, workloadNameOf, type InjectOutcome, type PodTemplate } from './inject.js';
export {
  decideInjection,
  namespaceVote,
  podVote,
  SYSTEM_NAMESPACES,
  type InjectionDecision,
} from './policy.js';
export * from './ports.js';
export { DEFAULT_INJECTION_SETTINGS, settingsFromMesh, type InjectionSettings } from './settings.js';
export { injectManifests, type KubeInjectResult } from './workloads.js';
