/**
 * The ValidatingWebhookConfiguration and MutatingWebhookConfiguration for weft, built in one
 * place: the operator's render function, `config/webhook/` (generated from this) and the local
 * demo all call it, so the safe defaults below exist once.
 *
 * Every field the API server would default is written out (matchPolicy, namespaceSelector,
 * objectSelector, rules[].scope, timeoutSeconds, failurePolicy, sideEffects,
 * admissionReviewVersions, reinvocationPolicy), so `kubectl diff` and Argo CD see no drift.
 */
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1LabelSelector,
  V1LabelSelectorRequirement,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1RuleWithOperations,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import type { KindDefinition } from '../api/kind.js';
import { kindDefinitions } from '../api/registry.js';
import { SYSTEM_NAMESPACES } from '../inject/policy.js';

export const VALIDATING_WEBHOOK_NAME = 'validation.mesh.weft.dev';
export const VALIDATE_PATH = '/validate';
export const INJECT_PATH = '/inject';
/** Namespaces labelled with this = "disabled" are skipped by every weft webhook (an escape hatch, as Linkerd's). */
export const OPT_OUT_LABEL = 'weft.dev/admission-webhooks';

/** Either a Service in the cluster, or a URL (a webhook running outside the cluster, as in the local demo). */
export type WebhookTarget = { service: { namespace: string; name: string; port?: number } } | { url: string };

export interface WebhookConfigOptions {
  target: WebhookTarget;
  /** base64 of the PEM CA bundle; leave out when cert-manager's CA injector fills it in. */
  caBundle?: string;
  /** The mesh's own namespace; never injected (weftd must start without weftd). */
  meshNamespace: string;
  /** Where the webhook itself runs, if not the mesh namespace; never injected (no self-hosting deadlock). */
  webhookNamespace?: string;
  validatingName?: string;
  mutatingName?: string;
  labels?: Record<string, string>;
  /** Default 5 s: validation is a pure function; a slow answer means something is wrong. */
  validationTimeoutSeconds?: number;
  /** Default 10 s. */
  injectionTimeoutSeconds?: number;
  /**
   * Default Fail: a pod in a mesh namespace that starts without its sidecar escapes mTLS and
   * policy silently. The selectors below limit the blast radius to opted-in namespaces, and
   * never select the webhook's own namespace, so Fail cannot deadlock the webhook itself.
   */
  injectionFailurePolicy?: 'Fail' | 'Ignore';
  /** Istio's enableNamespacesByDefault: also inject pods of unlabelled namespaces. */
  enableNamespacesByDefault?: boolean;
  /** Kinds to validate; default every kind weft serves. */
  kinds?: readonly KindDefinition[];
}

function clientConfig(
  target: WebhookTarget,
  path: string,
  caBundle: string | undefined,
): AdmissionregistrationV1WebhookClientConfig {
  const cfg: AdmissionregistrationV1WebhookClientConfig =
    'url' in target
      ? { url: `${target.url.replace(/\/+$/, '')}${path}` }
      : {
          service: {
            namespace: target.service.namespace,
            name: target.service.name,
            path,
            port: target.service.port ?? 443,
          },
        };
  if (caBundle !== undefined) cfg.caBundle = caBundle;
  return cfg;
}

function notIn(key: string, values: string[]): V1LabelSelectorRequirement {
  return { key, operator: 'NotIn', values };
}

/** One rule per API group, covering every served version of that group's kinds. */
export function validationRules(kinds: readonly KindDefinition[]): V1RuleWithOperations[] {
  const groups = new Map<
    string,
    { versions: Set<string>; resources: Set<string>; clusterScoped: boolean; namespaced: boolean }
  >();
  for (const def of kinds) {
    const g = groups.get(def.group) ?? {
      versions: new Set(),
      resources: new Set(),
      clusterScoped: false,
      namespaced: false,
    };
    for (const v of def.versions) g.versions.add(v);
    g.resources.add(def.plural);
    if (def.scope === 'Cluster') g.clusterScoped = true;
    else g.namespaced = true;
    groups.set(def.group, g);
  }
  return [...groups.entries()].map(([group, g]) => ({
    apiGroups: [group],
    apiVersions: [...g.versions].sort(),
    operations: ['CREATE', 'UPDATE'],
    resources: [...g.resources].sort(),
    scope: g.clusterScoped && g.namespaced ? '*' : g.clusterScoped ? 'Cluster' : 'Namespaced',
  }));
}

function metadata(
  name: string,
  labels: Record<string, string> | undefined,
): { name: string; labels: Record<string, string> } {
  return {
    name,
    labels: {
      'app.kubernetes.io/name': 'weft',
      'app.kubernetes.io/component': 'webhook',
      'app.kubernetes.io/part-of': 'weft',
      ...labels,
    },
  };
}

export function buildValidatingWebhookConfiguration(
  opts: WebhookConfigOptions,
): V1ValidatingWebhookConfiguration {
  const webhook: V1ValidatingWebhook = {
    name: VALIDATING_WEBHOOK_NAME,
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(opts.target, VALIDATE_PATH, opts.caBundle),
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    // System namespaces never hold mesh config; skipping them keeps a broken webhook from blocking them.
    namespaceSelector: {
      matchExpressions: [
        notIn('kubernetes.io/metadata.name', [...SYSTEM_NAMESPACES]),
        notIn(OPT_OUT_LABEL, ['disabled']),
      ],
    },
    objectSelector: {},
    rules: validationRules(opts.kinds ?? kindDefinitions),
    sideEffects: 'None',
    timeoutSeconds: opts.validationTimeoutSeconds ?? 5,
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: metadata(opts.validatingName ?? 'weft-validator', opts.labels),
    webhooks: [webhook],
  };
}

/**
 * Istio's precedence, encoded in selectors so the API server calls the injector only for pods
 * that may be injected (the handler re-checks everything, so a selector that is too broad costs
 * a call, never a wrong injection):
 *   - namespace `istio-injection=enabled` (unless `weft.dev/inject` disables it), pod not opted out
 *   - namespace `weft.dev/inject=enabled|true` (unless istio-injection is set), pod not opted out
 *   - namespace with neither label, pod label `sidecar.istio.io/inject=true`
 */
function injectionSelectors(
  opts: WebhookConfigOptions,
): { suffix: string; ns: V1LabelSelectorRequirement[]; pod: V1LabelSelector }[] {
  const never = [
    ...SYSTEM_NAMESPACES,
    opts.meshNamespace,
    ...(opts.webhookNamespace ? [opts.webhookNamespace] : []),
  ];
  const base = [
    notIn('kubernetes.io/metadata.name', [...new Set(never)]),
    notIn(OPT_OUT_LABEL, ['disabled']),
  ];
  // weft's own pods (gateways already run the proxy) are never sent to the injector.
  const notWeft = notIn('app.kubernetes.io/part-of', ['weft']);
  const podNotOptedOut: V1LabelSelector = {
    matchExpressions: [notIn('sidecar.istio.io/inject', ['false']), notWeft],
  };
  const podOptedIn: V1LabelSelector = {
    matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'In', values: ['true'] }, notWeft],
  };
  return [
    {
      suffix: 'namespace',
      ns: [
        ...base,
        { key: 'istio-injection', operator: 'In', values: ['enabled'] },
        notIn('weft.dev/inject', ['disabled', 'false']),
      ],
      pod: podNotOptedOut,
    },
    {
      suffix: 'weft-namespace',
      ns: [
        ...base,
        { key: 'weft.dev/inject', operator: 'In', values: ['enabled', 'true'] },
        notIn('istio-injection', ['enabled', 'disabled']),
      ],
      pod: podNotOptedOut,
    },
    {
      suffix: 'object',
      ns: [
        ...base,
        notIn('istio-injection', ['enabled', 'disabled']),
        notIn('weft.dev/inject', ['enabled', 'true', 'disabled', 'false']),
      ],
      pod: opts.enableNamespacesByDefault ? podNotOptedOut : podOptedIn,
    },
  ];
}

export function buildMutatingWebhookConfiguration(
  opts: WebhookConfigOptions,
): V1MutatingWebhookConfiguration {
  const webhooks: V1MutatingWebhook[] = injectionSelectors(opts).map((sel) => ({
    name: `${sel.suffix}.sidecar-injector.weft.dev`,
    admissionReviewVersions: ['v1'],
    clientConfig: clientConfig(opts.target, INJECT_PATH, opts.caBundle),
    failurePolicy: opts.injectionFailurePolicy ?? 'Fail',
    // Skip pods that are already injected without a call (the handler is idempotent anyway).
    matchConditions: [
      {
        name: 'not-already-injected',
        expression:
          "!has(object.metadata.annotations) || !('sidecar.istio.io/status' in object.metadata.annotations)",
      },
    ],
    matchPolicy: 'Equivalent',
    namespaceSelector: { matchExpressions: sel.ns },
    objectSelector: sel.pod,
    // Another mutator may add containers after us; IfNeeded lets us see the final pod (idempotent by the status annotation).
    reinvocationPolicy: 'IfNeeded',
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ],
    sideEffects: 'None',
    timeoutSeconds: opts.injectionTimeoutSeconds ?? 10,
  }));
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: metadata(opts.mutatingName ?? 'weft-sidecar-injector', opts.labels),
    webhooks,
  };
}

export function buildWebhookConfigurations(
  opts: WebhookConfigOptions,
): [V1ValidatingWebhookConfiguration, V1MutatingWebhookConfiguration] {
  return [buildValidatingWebhookConfiguration(opts), buildMutatingWebhookConfiguration(opts)];
}
