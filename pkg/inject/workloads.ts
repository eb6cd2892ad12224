/**
 * `weftctl kube-inject`: the same injector applied to the pod templates of workload manifests.
 * Injection is explicit here (the user asked for it), so namespace labels are not consulted; the
 * hard exclusions and a pod template's own `sidecar.istio.io/inject: "false"` still apply.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { WeftError } from '../errors/index.js';
import { alreadyHasOurs, injectTemplate, type PodTemplate } from './inject.js';
import { decideInjection } from './policy.js';
import { unsupportedAnnotations } from './annotations.js';
import type { InjectionSettings } from './settings.js';

export interface KubeInjectResult {
  kind: string;
  namespace?: string;
  name: string;
  injected: boolean;
  reason: string;
  /** Istio annotations on the template that weft ignores. */
  warnings?: string[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Record<string, string[]> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function getPath(obj: Obj, path: string[]): unknown {
  let cur: unknown = obj;
  for (const key of path) cur = isObj(cur) ? cur[key] : undefined;
  return cur;
}

function setPath(obj: Obj, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) cur = cur[key] as Obj;
  cur[path[path.length - 1] as string] = value;
}

/** Errors name the object and the template path, so a message about one of many documents can be acted on. */
function withObjectName<T>(what: string, path: string[], fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof WeftError)) throw err;
    const prefix = path.length > 0 ? `${path.join('.')}.` : '';
    throw new WeftError(err.code, `${what}: ${prefix}${err.message}`, { cause: err });
  }
}

function injectOne(
  obj: Obj,
  settings: InjectionSettings,
): { obj: Obj; result: KubeInjectResult } | undefined {
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : undefined;
  const path = kind === 'Pod' ? [] : TEMPLATE_PATH[kind];
  if (path === undefined) return undefined;
  const template = path.length === 0 ? obj : getPath(obj, path);
  const base = { kind, name, ...(namespace === undefined ? {} : { namespace }) };
  if (!isObj(template) || !isObj(template.spec) || !Array.isArray(template.spec.containers)) {
    throw new WeftError(
      'WEFT_INJECTION_INPUT_INVALID',
      `${kind} ${name}: ${[...path, 'spec', 'containers'].join('.')}: required`,
    );
  }
  const pod = {
    ...template,
    metadata: { ...(isObj(template.metadata) ? template.metadata : {}), namespace },
  } as V1Pod;
  // Injection was asked for explicitly: the namespace votes "enabled", so only hard exclusions and the pod's own opt-out remain.
  const decision = decideInjection(
    pod,
    { metadata: { name: namespace ?? 'default', labels: { 'istio-injection': 'enabled' } } },
    settings,
  );
  const present = alreadyHasOurs(pod.spec as NonNullable<V1Pod['spec']>);
  if (!decision.inject || present) {
    return {
      obj,
      result: {
        ...base,
        injected: false,
        reason: present ? `container ${present} already present` : decision.reason,
      },
    };
  }
  const injected = withObjectName(`${kind} ${namespace ? `${namespace}/` : ''}${name}`, path, () =>
    injectTemplate(template as PodTemplate, settings, name || 'unknown'),
  );
  const warnings = unsupportedAnnotations(pod.metadata?.annotations ?? {});
  const warned = warnings.length > 0 ? { warnings } : {};
  const out = structuredClone(obj);
  if (path.length === 0)
    return { obj: injected as Obj, result: { ...base, injected: true, reason: 'injected', ...warned } };
  setPath(out, path, injected);
  return { obj: out, result: { ...base, injected: true, reason: 'injected', ...warned } };
}

/** Injects every Pod and workload in `docs`; other objects pass through unchanged, in order. */
export function injectManifests(
  docs: unknown[],
  settings: InjectionSettings,
): { objects: unknown[]; results: KubeInjectResult[] } {
  const objects: unknown[] = [];
  const results: KubeInjectResult[] = [];
  for (const doc of docs) {
    const done = isObj(doc) ? injectOne(doc, settings) : undefined;
    objects.push(done ? done.obj : doc);
    if (done) results.push(done.result);
  }
  return { objects, results };
}
