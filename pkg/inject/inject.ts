/**
 * THE injector: a pure function from (pod, namespace, mesh settings) to the injected pod and the
 * JSON Patch between them. The mutating webhook and `weftctl kube-inject` both call it, so what
 * a user previews is what the cluster stores.
 *
 * The patch is computed by diffing the request object with the injected copy (fast-json-patch
 * `compare`) rather than by hand-writing operations, so the injection code stays declarative and
 * the patch can never disagree with the object the golden files show.
 */
import type { V1Container, V1Namespace, V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { WeftError } from '../errors/index.js';
import { ANNOTATION, readOverrides, unsupportedAnnotations, type PodOverrides } from './annotations.js';
import { decideInjection } from './policy.js';
import { INIT_CONTAINER, PORT_PROMETHEUS, PROXY_CONTAINER } from './ports.js';
import { rewriteProbes, type AppProber } from './probes.js';
import { parseQuantity } from './quantity.js';
import type { InjectionSettings } from './settings.js';
import { initContainer, proxyContainer, proxyVolumes } from './templates.js';

/** A pod, or a workload's pod template: the part the injector reads and writes. */
export interface PodTemplate {
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

export type InjectOutcome =
  | { injected: true; reason: string; pod: V1Pod; patch: Operation[]; warnings: string[] }
  | { injected: false; reason: string };

const LIMIT_ANNOTATION = {
  cpu: [ANNOTATION.proxyCPU, ANNOTATION.proxyCPULimit],
  memory: [ANNOTATION.proxyMemory, ANNOTATION.proxyMemoryLimit],
} as const;

/** The API server rejects requests above limits with an error about a container the user never wrote; say which annotation. */
function checkRequestsWithinLimits(requests: Record<string, string>, limits: Record<string, string>): void {
  for (const resource of ['cpu', 'memory'] as const) {
    const req = requests[resource];
    const lim = limits[resource];
    if (req === undefined || lim === undefined) continue;
    if ((parseQuantity(req) ?? 0) > (parseQuantity(lim) ?? Infinity)) {
      const [reqKey, limKey] = LIMIT_ANNOTATION[resource];
      throw new WeftError(
        'WEFT_INJECTION_ANNOTATION_INVALID',
        `metadata.annotations[${reqKey}]: proxy ${resource} request ${req} is above its limit ${lim}; raise ${limKey} too`,
      );
    }
  }
}

/** Istio's canonical service labels: existing labels win, then the common app labels, then the workload name. */
function canonicalLabels(meta: V1ObjectMeta, workloadName: string): Record<string, string> {
  const l = meta.labels ?? {};
  return {
    'service.istio.io/canonical-name':
      l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l.app ?? workloadName,
    'service.istio.io/canonical-revision':
      l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l.version ?? 'latest',
  };
}

/** A pod's workload name: `reviews-v1-5f7c8d9b4-` (generateName with the ReplicaSet hash) → `reviews-v1`. */
export function workloadNameOf(meta: V1ObjectMeta | undefined): string {
  const hash = meta?.labels?.['pod-template-hash'];
  const gen = meta?.generateName;
  if (gen) {
    const trimmed = gen.replace(/-$/, '');
    return hash && trimmed.endsWith(`-${hash}`) ? trimmed.slice(0, -hash.length - 1) : trimmed;
  }
  return meta?.name ?? 'unknown';
}

function statusAnnotation(native: boolean, volumes: string[], revision: string): string {
  // Istio's key order, so tools that read sidecar.istio.io/status (Kiali, istioctl) parse it.
  return JSON.stringify({
    initContainers: native ? [INIT_CONTAINER, PROXY_CONTAINER] : [INIT_CONTAINER],
    containers: native ? [] : [PROXY_CONTAINER],
    volumes,
    imagePullSecrets: null,
    revision,
  });
}

function podMetadata(
  meta: V1ObjectMeta,
  opts: {
    native: boolean;
    volumes: string[];
    settings: InjectionSettings;
    firstApp: string | undefined;
    workloadName: string;
  },
): V1ObjectMeta {
  const annotations: Record<string, string> = { ...meta.annotations };
  annotations[ANNOTATION.status] = statusAnnotation(opts.native, opts.volumes, opts.settings.revision);
  if (opts.firstApp !== undefined) {
    annotations[ANNOTATION.defaultContainer] ??= opts.firstApp;
    annotations[ANNOTATION.defaultLogsContainer] ??= opts.firstApp;
  }
  // Only when the user has no scrape config of their own: we must not redirect their scraping.
  if (!Object.keys(annotations).some((k) => k.startsWith('prometheus.io/'))) {
    annotations['prometheus.io/scrape'] = 'true';
    annotations['prometheus.io/port'] = String(PORT_PROMETHEUS);
    annotations['prometheus.io/path'] = '/stats/prometheus';
  }
  const labels: Record<string, string> = {
    ...meta.labels,
    ...canonicalLabels(meta, opts.workloadName),
    'security.istio.io/tlsMode': meta.labels?.['security.istio.io/tlsMode'] ?? 'istio',
  };
  return { ...meta, labels, annotations };
}

/** Probe rewriting opts out per pod with `sidecar.istio.io/rewriteAppHTTPProbers: "false"`. */
function rewriteIfWanted(
  containers: V1Container[],
  settings: InjectionSettings,
  o: PodOverrides,
): Record<string, AppProber> {
  return (o.rewriteAppProbes ?? settings.rewriteAppProbes) ? rewriteProbes(containers) : {};
}

function alreadyHasOurs(spec: V1PodSpec): string | undefined {
  const names = [...(spec.initContainers ?? []), ...spec.containers].map((c) => c.name);
  return names.find((n) => n === PROXY_CONTAINER || n === INIT_CONTAINER);
}

/**
 * Injects a pod or pod template (no policy check: callers decide). Returns a new object; the
 * input is not modified. Throws WEFT_INJECTION_ANNOTATION_INVALID for bad annotations.
 */
export function injectTemplate<T extends PodTemplate>(
  template: T,
  settings: InjectionSettings,
  workloadName: string,
): T {
  if (!template.spec || !Array.isArray(template.spec.containers)) {
    throw new WeftError(
      'WEFT_INJECTION_INPUT_INVALID',
      'spec.containers: required (the object has no pod spec)',
    );
  }
  const out = structuredClone(template);
  const spec = out.spec as V1PodSpec;
  const meta = out.metadata ?? {};
  const overrides = readOverrides(meta.annotations ?? {});
  const resources = { ...settings.resources.requests, ...overrides.requests };
  checkRequestsWithinLimits(resources, { ...settings.resources.limits, ...overrides.limits });

  const native = overrides.nativeSidecar ?? settings.nativeSidecar;
  const hold = overrides.holdApplicationUntilProxyStarts ?? settings.holdApplicationUntilProxyStarts;
  const appContainers = spec.containers;
  const probers = rewriteIfWanted(appContainers, settings, overrides);
  const proxy = proxyContainer({ settings, overrides, probers, native, hold });
  const init = initContainer(settings, overrides);
  const appInits = spec.initContainers ?? [];

  if (native) {
    // iptables first, then the proxy (gated by its startup probe), then the app's init containers,
    // which therefore already have a working mesh network.
    spec.initContainers = [init, proxy, ...appInits];
  } else {
    // The iptables init container goes last so the app's own init containers keep plain networking
    // (nothing would serve the redirected traffic yet). The proxy goes last among containers so
    // `kubectl exec/logs` default to the app, unless it must start first.
    spec.initContainers = [...appInits, init];
    spec.containers = hold ? [proxy, ...appContainers] : [...appContainers, proxy];
  }
  const volumes = proxyVolumes(settings);
  spec.volumes = [...(spec.volumes ?? []), ...volumes];
  out.metadata = podMetadata(meta, {
    native,
    volumes: volumes.map((v) => v.name),
    settings,
    firstApp: appContainers[0]?.name,
    workloadName,
  });
  return out;
}

/** The webhook's entry point: policy, then injection, then the patch. */
export function injectPod(
  pod: V1Pod,
  namespace: Pick<V1Namespace, 'metadata'> | undefined,
  settings: InjectionSettings,
): InjectOutcome {
  const decision = decideInjection(pod, namespace, settings);
  if (!decision.inject) return { injected: false, reason: decision.reason };
  if (pod.spec && Array.isArray(pod.spec.containers)) {
    const existing = alreadyHasOurs(pod.spec);
    if (existing) return { injected: false, reason: `container ${existing} already present` };
  }
  const injected = injectTemplate(pod, settings, workloadNameOf(pod.metadata));
  const patch = fastJsonPatch.compare(pod, injected);
  const warnings = unsupportedAnnotations(pod.metadata?.annotations ?? {});
  return { injected: true, reason: decision.reason, pod: injected, patch, warnings };
}

export { alreadyHasOurs };
