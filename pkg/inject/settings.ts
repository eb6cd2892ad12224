/**
 * Mesh-wide injection settings: what the injector needs to know besides the pod and its
 * namespace. The webhook builds them from the active `Mesh` (spec.injection) and falls back to
 * these defaults when no Mesh exists, so injection works before the operator has run.
 */
import type { MeshInjection } from '../api/mesh.js';
import { WEFT_IMAGES } from '../api/images.js';
import { TOKEN_AUDIENCE } from '../discovery/protocol.js';

export interface InjectionSettings {
  /** Image of the sidecar and of the `proxy init` container (the same binary). */
  proxyImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Proxy (and init container) resources unless a pod annotation overrides them. */
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  /** Run the proxy as a native sidecar (init container with restartPolicy: Always). Needs Kubernetes ≥ 1.29 everywhere. */
  nativeSidecar: boolean;
  /** Start app containers only once the proxy is ready (ignored in native mode, where it is implied). */
  holdApplicationUntilProxyStarts: boolean;
  /** Rewrite kubelet probes of app containers through the proxy's health port. */
  rewriteAppProbes: boolean;
  /** The mesh's own namespace: never injected (the control plane must not depend on itself). */
  meshNamespace: string;
  /** Audience of the projected service-account token the proxy presents to weftd's CA. */
  tokenAudience: string;
  /** Where the proxy finds weftd (config push and CSR). */
  discoveryAddress: string;
  /** Recorded in the status annotation, as Istio's `revision`. */
  revision: string;
  /** Inject pods of namespaces with no injection label (Istio's enableNamespacesByDefault; off by default). */
  enableNamespacesByDefault: boolean;
}

/** Defaults equal the Mesh CRD's schema defaults (pkg/api/mesh.ts), so "no Mesh" and "empty Mesh" inject alike. */
export const DEFAULT_INJECTION_SETTINGS: Readonly<InjectionSettings> = Object.freeze({
  proxyImage: WEFT_IMAGES.proxy,
  imagePullPolicy: 'IfNotPresent',
  // Istio's sidecar defaults: small requests so injection never makes a pod unschedulable.
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2', memory: '1Gi' } },
  nativeSidecar: true,
  holdApplicationUntilProxyStarts: true,
  rewriteAppProbes: true,
  meshNamespace: 'weft-system',
  tokenAudience: TOKEN_AUDIENCE,
  discoveryAddress: 'weftd.weft-system.svc:15012',
  revision: 'default',
  enableNamespacesByDefault: false,
});

function stringMap(value: unknown): Record<string, string> | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  }
  return out;
}

/**
 * Settings for a Mesh: its `spec.injection` over the defaults, and the mesh namespace / discovery
 * address the operator installs weftd into. Fields the Mesh leaves out keep the defaults.
 */
export function settingsFromMesh(
  injection: MeshInjection | undefined,
  base: Readonly<InjectionSettings> = DEFAULT_INJECTION_SETTINGS,
): InjectionSettings {
  const out: InjectionSettings = structuredClone(base) as InjectionSettings;
  if (!injection) return out;
  if (typeof injection.proxyImage === 'string' && injection.proxyImage !== '')
    out.proxyImage = injection.proxyImage;
  if (typeof injection.nativeSidecar === 'boolean') out.nativeSidecar = injection.nativeSidecar;
  if (typeof injection.holdApplicationUntilProxyStarts === 'boolean') {
    out.holdApplicationUntilProxyStarts = injection.holdApplicationUntilProxyStarts;
  }
  const requests = stringMap(injection.resources?.requests);
  const limits = stringMap(injection.resources?.limits);
  if (requests) out.resources.requests = { ...out.resources.requests, ...requests };
  if (limits) out.resources.limits = { ...out.resources.limits, ...limits };
  return out;
}
