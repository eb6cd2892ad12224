/**
 * Cluster-scoped objects: RBAC for weftd and the webhook, and the two webhook configurations.
 *
 * The webhook configurations spell out every field the API server would otherwise default
 * (matchPolicy, selectors, scope, timeouts, ...) so a GitOps diff of `weftctl render` output
 * against the live object is empty. `caBundle` is the one field the operator fills in at run
 * time; `weftctl render` leaves it out (see docs/operator.md for the Argo CD ignoreDifferences).
 */
import type { KubeObject } from '../kube/types.js';
import { standardLabels } from './labels.js';
import { MESH_NAMESPACE } from './spec.js';

const ISTIO_KINDS: Record<string, string[]> = {
  'networking.istio.io': ['virtualservices', 'destinationrules', 'gateways', 'serviceentries', 'sidecars'],
  'security.istio.io': ['peerauthentications', 'authorizationpolicies', 'requestauthentications'],
};

export const WEBHOOK_SERVICE = { name: 'weft-webhook', namespace: MESH_NAMESPACE, port: 443 } as const;
export const WEBHOOK_PATHS = { validate: '/validate', inject: '/inject' } as const;
export const VALIDATING_WEBHOOK_NAME = 'weft-validator';
export const MUTATING_WEBHOOK_NAME = 'weft-sidecar-injector';

function clusterRole(mesh: string, name: string, component: string, rules: unknown[]): KubeObject {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name, labels: standardLabels(mesh, name, component) }, rules };
}

function clusterRoleBinding(mesh: string, name: string, component: string, saNamespace: string): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: standardLabels(mesh, name, component) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace: saNamespace }],
  };
}

const READ = ['get', 'list', 'watch'];

export function weftdRbac(mesh: string): KubeObject[] {
  const rules = [
    { apiGroups: [''], resources: ['services', 'endpoints', 'pods', 'namespaces', 'nodes', 'configmaps'], verbs: READ },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
    ...Object.entries(ISTIO_KINDS).flatMap(([group, resources]) => [
      { apiGroups: [group], resources, verbs: READ },
      { apiGroups: [group], resources: resources.map((r) => `${r}/status`), verbs: ['get', 'patch', 'update'] },
    ]),
    { apiGroups: ['mesh.weft.dev'], resources: ['meshes'], verbs: READ },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  ];
  return [clusterRole(mesh, 'weftd', 'control-plane', rules), clusterRoleBinding(mesh, 'weftd', 'control-plane', MESH_NAMESPACE)];
}

export function webhookRbac(mesh: string): KubeObject[] {
  const rules = [
    { apiGroups: [''], resources: ['namespaces', 'services', 'configmaps'], verbs: READ },
    ...Object.entries(ISTIO_KINDS).map(([group, resources]) => ({ apiGroups: [group], resources, verbs: READ })),
    { apiGroups: ['mesh.weft.dev'], resources: ['meshes'], verbs: READ },
  ];
  return [clusterRole(mesh, 'weft-webhook', 'webhook', rules), clusterRoleBinding(mesh, 'weft-webhook', 'webhook', MESH_NAMESPACE)];
}

/** Namespaces no weft webhook may ever act in: the cluster's own and the mesh's. */
const EXCLUDED_NAMESPACES = ['kube-system', 'kube-node-lease', MESH_NAMESPACE];

/**
 * Normally the in-cluster Service. With `url` (a webhook running outside the cluster, as in
 * `npm start` and the integration tests, where the API server cannot reach Services) the
 * configurations call `<url><path>` instead, as envtest does.
 */
function clientConfig(path: string, caBundle: string | undefined, url: string | undefined): Record<string, unknown> {
  const target = url
    ? { url: `${url.replace(/\/$/, '')}${path}` }
    : { service: { name: WEBHOOK_SERVICE.name, namespace: WEBHOOK_SERVICE.namespace, path, port: WEBHOOK_SERVICE.port } };
  return { ...target, ...(caBundle ? { caBundle } : {}) };
}

export interface WebhookTarget {
  caBundle?: string | undefined;
  url?: string | undefined;
}

const namespaceSelector = {
  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: EXCLUDED_NAMESPACES }],
};

export function validatingWebhook(mesh: string, target: WebhookTarget = {}): KubeObject {
  const rules = [
    ...Object.entries(ISTIO_KINDS).map(([group, resources]) => ({
      apiGroups: [group],
      apiVersions: ['*'],
      operations: ['CREATE', 'UPDATE'],
      resources,
      scope: '*',
    })),
    { apiGroups: ['mesh.weft.dev'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['meshes'], scope: 'Cluster' },
  ];
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: VALIDATING_WEBHOOK_NAME, labels: standardLabels(mesh, VALIDATING_WEBHOOK_NAME, 'webhook') },
    webhooks: [
      {
        name: 'validate.mesh.weft.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(WEBHOOK_PATHS.validate, target.caBundle, target.url),
        rules,
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        timeoutSeconds: 5,
        namespaceSelector,
        objectSelector: {},
      },
    ],
  };
}

export function mutatingWebhook(mesh: string, target: WebhookTarget = {}): KubeObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: MUTATING_WEBHOOK_NAME, labels: standardLabels(mesh, MUTATING_WEBHOOK_NAME, 'webhook') },
    webhooks: [
      {
        name: 'inject.mesh.weft.dev',
        admissionReviewVersions: ['v1'],
        clientConfig: clientConfig(WEBHOOK_PATHS.inject, target.caBundle, target.url),
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        timeoutSeconds: 10,
        reinvocationPolicy: 'IfNeeded',
        namespaceSelector,
        // Never weft's own pods (gateways run the proxy already).
        objectSelector: { matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'NotIn', values: ['weft'] }] },
      },
    ],
  };
}
