/**
 * The mutating webhook's handler: reads the pod's namespace (for its injection labels) and
 * the current mesh settings, runs the shared injector, and answers with the JSON Patch.
 */
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import {
  allowed,
  denied,
  patched,
  type AdmissionRequest,
  type AdmissionResponse,
} from '../pkg/admission/index.js';
import { isWeftError, WeftError } from '../pkg/errors/index.js';
import { injectPod, type InjectionSettings } from '../pkg/inject/index.js';
import { checkShape } from '../pkg/validation/limits.js';

export interface InjectDeps {
  /** The namespace object (for its labels); undefined when it cannot be found. */
  namespace(name: string): Promise<Pick<V1Namespace, 'metadata'> | undefined>;
  settings(): InjectionSettings;
}

export interface InjectHandlerOutcome {
  response: AdmissionResponse;
  verdict: 'patched' | 'allowed' | 'denied';
  result: 'injected' | 'skipped' | 'failed';
  reason: string;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function skipped(req: AdmissionRequest, reason: string): InjectHandlerOutcome {
  return { response: allowed(req.uid), verdict: 'allowed', result: 'skipped', reason };
}

export async function handleInject(req: AdmissionRequest, deps: InjectDeps): Promise<InjectHandlerOutcome> {
  if (req.kind.kind !== 'Pod' || req.kind.group !== '') return skipped(req, `not a pod (${req.kind.kind})`);
  if (req.operation !== 'CREATE') return skipped(req, `${req.operation} not injected`);
  if (req.subResource) return skipped(req, `subresource ${req.subResource}`);
  const obj = req.object;
  if (!isObj(obj) || !isObj(obj.spec) || !Array.isArray(obj.spec.containers)) {
    throw new WeftError(
      'WEFT_ADMISSION_MALFORMED',
      'request.object: a Pod with spec.containers is required for CREATE',
    );
  }
  // The injector copies and diffs the pod recursively: bound it first. A Pod's schema nests
  // ~15 levels, so the API server never sends one near these limits.
  const shape = checkShape(obj);
  if (shape)
    throw new WeftError(
      'WEFT_ADMISSION_MALFORMED',
      `request.object: ${shape.kind === 'depth' ? `nests deeper than ${shape.limit} levels` : `has more than ${shape.limit} values`}; no Pod the API server stores does`,
    );
  const pod = obj as V1Pod;
  const nsName = req.namespace ?? pod.metadata?.namespace ?? 'default';
  const namespace = (await deps.namespace(nsName)) ?? { metadata: { name: nsName } };
  try {
    const out = injectPod(pod, namespace, deps.settings());
    if (!out.injected) return skipped(req, out.reason);
    return {
      response: patched(req.uid, out.patch, out.warnings),
      verdict: 'patched',
      result: 'injected',
      reason: out.reason,
    };
  } catch (err) {
    // A bad annotation is the user's to fix: say exactly which, and refuse the pod rather than
    // start it without the proxy they asked for.
    if (!isWeftError(err, 'WEFT_INJECTION_ANNOTATION_INVALID')) throw err;
    const response = denied(req.uid, `sidecar injection failed: ${err.message}`, undefined, 400);
    return { response, verdict: 'denied', result: 'failed', reason: 'invalid annotation' };
  }
}
