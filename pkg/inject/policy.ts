/**
 * Whether a pod gets a sidecar: Istio's precedence, so that labels users already have keep
 * meaning what they meant under Istio.
 *
 *   1. never: hostNetwork pods, system namespaces, the mesh's own namespace, already injected pods
 *   2. either the namespace or the pod says disabled/false → not injected
 *   3. either says enabled/true → injected
 *   4. neither → the mesh default (off unless enableNamespacesByDefault)
 *
 * The pod's `sidecar.istio.io/inject` label wins over the annotation of the same name (Istio
 * moved from the annotation to the label; both are still honoured).
 */
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { ANNOTATION, NAMESPACE_LABELS, parseBool } from './annotations.js';
import type { InjectionSettings } from './settings.js';

export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

export interface InjectionDecision {
  inject: boolean;
  /** Why, in a few words; logged and counted (`weft_injections_total{result,reason}`). */
  reason: string;
}

type Tri = boolean | undefined;

/** The namespace's vote: `disabled` on any of our labels wins over `enabled` on another. */
export function namespaceVote(labels: Readonly<Record<string, string>> | undefined): Tri {
  let vote: Tri;
  for (const key of NAMESPACE_LABELS) {
    const raw = labels?.[key];
    if (raw === undefined) continue;
    const v = raw.trim().toLowerCase();
    if (v === 'disabled' || v === 'false') return false;
    if (v === 'enabled' || v === 'true') vote = true;
  }
  return vote;
}

/** The pod's vote: label first, then annotation; unrecognised values do not vote. */
export function podVote(pod: V1Pod): Tri {
  const label = pod.metadata?.labels?.[ANNOTATION.inject];
  if (label !== undefined) return parseBool(label);
  const annotation = pod.metadata?.annotations?.[ANNOTATION.inject];
  return annotation === undefined ? undefined : parseBool(annotation);
}

function hardExclusion(pod: V1Pod, namespace: string, settings: InjectionSettings): string | undefined {
  if (pod.spec?.hostNetwork === true) return 'hostNetwork';
  if (SYSTEM_NAMESPACES.includes(namespace)) return 'system namespace';
  if (namespace === settings.meshNamespace) return 'mesh namespace';
  if (pod.metadata?.annotations?.[ANNOTATION.status] !== undefined) return 'already injected';
  return undefined;
}

export function decideInjection(
  pod: V1Pod,
  namespace: Pick<V1Namespace, 'metadata'> | undefined,
  settings: InjectionSettings,
): InjectionDecision {
  const nsName = namespace?.metadata?.name ?? pod.metadata?.namespace ?? '';
  const excluded = hardExclusion(pod, nsName, settings);
  if (excluded) return { inject: false, reason: excluded };
  const ns = namespaceVote(namespace?.metadata?.labels);
  const p = podVote(pod);
  if (ns === false) return { inject: false, reason: 'namespace disabled' };
  if (p === false) return { inject: false, reason: 'pod disabled' };
  if (ns === true) return { inject: true, reason: 'namespace enabled' };
  if (p === true) return { inject: true, reason: 'pod enabled' };
  return settings.enableNamespacesByDefault
    ? { inject: true, reason: 'enabled by default' }
    : { inject: false, reason: 'not enabled' };
}
